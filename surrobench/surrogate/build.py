"""``fit_surrogate``: from a logs directory to a complete surrogate with its quality card."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import os
import platform
import re
from typing import Any

import numpy as np

from .. import __version__
from ..datasets import info as dataset_info
from ..records import task_objectives
from ..space import HYPERPARAMETERS, MAX_EPOCH, MIN_EPOCH, REFERENCE_POINT
from .data import RunData, load_run_data, pick_device
from .features import FEATURES, features, size_bounds
from .clock import fit_clock
from .fit import (
    GRIDS,
    MIN_TUNE_CONFIGS,
    RUNTIME_FIXED,
    RUNTIME_GRID,
    chance_bank,
    curve_cv_score,
    fit_calibration,
    fit_curve_model,
    fit_runtime_model,
    fit_tail_map,
    group_folds,
    runtime_cv_score,
    tune,
)
from .model import RuntimeModel, Surrogate, combine
from .noise import (CONFIG_SCALE, DEFAULT_NOISE_TIME, calibrate, check_config_noise, check_noise, fit_config_factor,
                    fit_learn_corr, learns, logit, replicated_learning, replicated_residuals, sigmoid)
from .quality import build_card, draw_card, parity_png

__all__ = [
    "fit_surrogate",
    "fit_models",
    "check_noise_data",
    "fit_runtime",
    "runtime_oof",
    "runtime_rows",
    "curve_args",
    "eval_examples",
    "runtime_card",
    "SCHEMA_VERSION",
    "REFERENCE_POINT",
    "INNER_FOLDS",
    "space_description",
    "objectives_description",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
INNER_FOLDS = 3
FINAL_FOLDS = 5
DRAWS_PER_RUN = 8


def space_description() -> list[dict[str, Any]]:
    out = []
    for hp in HYPERPARAMETERS:
        d: dict[str, Any] = {"name": hp.name, "kind": hp.kind, "default": hp.default}
        if hp.kind == "cat":
            d["choices"] = list(hp.choices)
        else:
            d.update(lower=hp.lower, upper=hp.upper, log=hp.log)
        d["active_when"] = "always" if hp.depth_key is None else f"{hp.depth_key} >= {hp.depth_index + 1}"
        out.append(d)
    return out


def objectives_description(bounds: tuple[float, float]) -> list[dict[str, Any]]:
    """The manifest's objectives: the task's (:func:`surrobench.records.task_objectives`) as dicts."""
    return [dataclasses.asdict(o) for o in task_objectives(bounds)]


def runtime_rows(data: RunData, device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lone runs on ``device``: indices, median seconds per epoch and per evaluation, 25-epoch cost."""
    rows = np.flatnonzero(data.alone & (data.devices == device) & np.isfinite(data.train_time).any(axis=1))
    rows = rows[np.isfinite(data.eval_time[rows]).any(axis=1)]
    per_epoch = np.nanmedian(data.train_time[rows], axis=1)
    per_eval = np.nanmedian(data.eval_time[rows], axis=1)
    tt = data.train_time[rows]
    full = np.isfinite(tt).all(axis=1)
    cost = np.where(full, np.nansum(tt, axis=1) + data.eval_time[rows, -1], MAX_EPOCH * per_epoch + per_eval)
    return rows, per_epoch, per_eval, cost


def fit_runtime(x, per_epoch, per_eval, groups, *, device: str, n_train: int, n_eval: int, seed: int = 0,
                n_folds: int = FINAL_FOLDS) -> tuple[RuntimeModel, dict[str, Any], float | None]:
    """One device's runtime model from its lone runs: the physics (:mod:`.clock`) fitted on all
    of them, the booster's correction tuned by grouped CV (physics refitted inside every fold)
    where at least ``MIN_TUNE_CONFIGS`` configs ran alone, fixed and light below that.
    Returns the model, the booster's hyperparameters and their CV score (None if fixed)."""
    clock = fit_clock(x, per_epoch, per_eval, n_train=n_train, n_eval=n_eval)
    n_configs = len(np.unique(groups))
    if n_configs < MIN_TUNE_CONFIGS:
        params, score = dict(RUNTIME_FIXED), None
    else:
        def clock_fit(rows):
            return fit_clock(x[rows], per_epoch[rows], per_eval[rows], n_train=n_train, n_eval=n_eval)

        params, score = tune(runtime_cv_score, x, per_epoch, per_eval, groups, RUNTIME_GRID, device=device, seed=seed,
                             n_folds=min(n_folds, n_configs), clock_fit=clock_fit)
    return fit_runtime_model(x, per_epoch, per_eval, params, device=device, seed=seed, clock=clock), params, score


def runtime_oof(x, per_epoch, per_eval, groups, *, device: str, n_train: int, n_eval: int, seed: int = 0,
                n_folds: int = 5) -> np.ndarray:
    """Out-of-fold seconds of a 25-epoch run for every lone run (folds grouped by config);
    NaN where there are fewer than 2 configs."""
    out = np.full(len(per_epoch), np.nan)
    n_configs = len(np.unique(groups))
    if n_configs < 2:
        return out
    folds = group_folds(groups, min(n_folds, n_configs), seed)
    for f in range(folds.max() + 1):
        tr, te = folds != f, folds == f
        model, _, _ = fit_runtime(x[tr], per_epoch[tr], per_eval[tr], groups[tr], device=device, n_train=n_train,
                                  n_eval=n_eval, seed=seed, n_folds=INNER_FOLDS)
        ep, ev = model.predict(x[te])
        out[te] = MAX_EPOCH * ep + ev
    return out


def curve_args(info) -> dict[str, Any]:
    """The dataset facts :func:`~.fit.fit_curve_model` needs: chance error and the curves' bounds."""
    n_val, n_test = info.sizes[1], info.sizes[2]
    lower = np.r_[np.full(MAX_EPOCH, 0.5 / n_val), np.full(MAX_EPOCH, 0.5 / n_test)]
    return {"chance_error": info.chance_error, "lower": lower, "upper": 1.0 - lower}


def eval_examples(info) -> int:
    """Examples one evaluation passes through the network (validation and test split)."""
    return int(info.sizes[1] + info.sizes[2])


def fit_surrogate(
    logs: str | os.PathLike,
    *,
    dataset: str | None = None,
    device: str | None = None,
    seed: int = 0,
    holdout: float = 0.2,
    grid: str | dict = "default",
    name: str | None = None,
    plot: bool = True,
    clock_plans=None,
    noise_time: str = DEFAULT_NOISE_TIME,
    noise_size: str = "shared",
    config_noise: str = "none",
) -> Surrogate:
    """Fit every model on the runs under ``logs`` and judge them on held-out configs.

    ``holdout`` is the share of configs held out per fold of the outer cross-validation
    (0.2: five folds); ``grid`` names an entry of :data:`~.fit.GRIDS` or is a grid itself;
    ``device`` picks whose clock the runtime model learns (default: the device with the
    most lone runs); ``clock_plans`` (plan seeds) restricts its lone runs to those plans, e.g.
    to the collections that ran on one machine under the same load. ``plot=False`` skips the
    parity plot. ``noise_time`` is the seed noise's process (:data:`~.noise.NOISE_TIMES`:
    ``"auto"``, the default (:data:`~.noise.DEFAULT_NOISE_TIME`: the shipped surrogates' ``"bank"`` where the
    logs' reruns can measure it, else ``"epoch"``), ``"bank"``, ``"epoch"``, ``"log-epoch"``,
    ``"log-epoch-early"`` or ``"empirical"``; see :mod:`~.noise`) and
    ``noise_size`` how its size varies between configs (:data:`~.noise.NOISE_SIZES`: ``"shared"``, the
    default, ``"by-error"`` or ``"by-level"``); ``config_noise`` whether the draws add an offset per config
    for what the models leave unexplained (:data:`~.noise.CONFIG_NOISES`: ``"none"``, the default, or
    ``"unexplained"``; see :mod:`~.noise`). Linear algebra runs on one
    thread (many tiny problems; threads only contend).
    """
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    with threadpool_limits(limits=1) if threadpool_limits else contextlib.nullcontext():
        return _fit(logs, dataset=dataset, device=device, seed=seed, holdout=holdout, grid=grid, name=name, plot=plot,
                    clock_plans=clock_plans, noise_time=noise_time, noise_size=noise_size, config_noise=config_noise)


def _fit(logs, *, dataset, device, seed, holdout, grid, name, plot, clock_plans, noise_time, noise_size,
         config_noise) -> Surrogate:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
    if not 0.05 <= float(holdout) <= 0.5:
        raise ValueError(f"holdout: must lie in [0.05, 0.5] (share of configs held out per fold), got {holdout!r}")
    grid_name, grid = resolve_grid(grid)
    check_noise(noise_time, noise_size)
    check_config_noise(config_noise)
    n_outer = max(2, int(round(1.0 / float(holdout))))
    data = load_run_data(logs, dataset)
    info = dataset_info(data.dataset)
    shape, n_classes, n_train = info.input_shape, info.n_classes, info.sizes[0]
    cur = data.subset(data.curve_run)
    if len(np.unique(cur.config_ids)) < max(n_outer, FINAL_FOLDS):
        n = len(np.unique(cur.config_ids))
        raise ValueError(f"logs: {n} configs with complete curves are too few to fit and judge a surrogate")
    x, cargs, noise, noise_sd, learn, y_logit = _curve_inputs(cur, info, noise_time, noise_size)
    rt_device = pick_device(data, device)
    rt_rows, per_epoch, per_eval, cost25 = runtime_rows(data, rt_device)
    if clock_plans is not None:
        keep = np.isin(data.plan_seeds[rt_rows], np.asarray(list(clock_plans), dtype=int))
        if keep.sum() < 2:
            raise ValueError(f"clock_plans: plans {sorted(clock_plans)} hold {int(keep.sum())} lone runs on "
                             f"{rt_device!r}; the clock needs at least 2")
        rt_rows, per_epoch, per_eval, cost25 = rt_rows[keep], per_epoch[keep], per_eval[keep], cost25[keep]
    rt_x = features([data.configs[i] for i in rt_rows], shape, n_classes, n_train)
    rt_groups = data.config_ids[rt_rows]
    logger.info("%s: %d curve runs, %d configs; runtime on %s from %d lone runs", data.dataset, len(cur),
                len(np.unique(cur.config_ids)), rt_device, len(rt_rows))

    # Outer cross-validation: every config is predicted once by models that never saw it.
    folds = group_folds(cur.config_ids, n_outer, seed)
    oof_margin = np.zeros(len(cur))
    oof_learner = np.zeros((len(cur), 2 * MAX_EPOCH))
    fold_models = []
    for f in range(n_outer):
        tr, te = folds != f, folds == f
        params, _ = tune(curve_cv_score, x[tr], cur.val[tr], cur.test[tr], cur.config_ids[tr], grid,
                         seed=seed, n_folds=INNER_FOLDS, **cargs)
        model = fit_curve_model(x[tr], cur.val[tr], cur.test[tr], params, seed=seed, **cargs)
        oof_margin[te], oof_learner[te] = model.raw(x[te])
        fold_models.append(model)
        logger.info("outer fold %d/%d: %s", f + 1, n_outer, params)
    noise = _with_bank_keys(noise, cur, info, oof_learner)
    noise = _with_config_noise(noise, config_noise, cur, info, oof_learner, learn, y_logit)
    oof_z = logit(oof_learner)
    # Calibration (P(learns), tail map) for the shipped model: fitted on every out-of-fold
    # prediction. For the card, each fold's calibration is fitted on the other folds only.
    calibration, tail, bank, learn_corr = _draw_parts(cur, oof_margin, oof_learner, learn, y_logit, noise_sd, seed,
                                                      noise)
    oof_p = np.zeros(len(cur))
    oof_mapped = np.zeros(len(cur))  # final-epoch validation error of the mapped learner
    for f, model in enumerate(fold_models):
        te, other = folds == f, (folds != f)
        model.calibration = fit_calibration(oof_margin[other], learn[other])
        model.tail = fit_tail_map(oof_z[other & learn], y_logit[other & learn], noise_sd, noise=noise, seed=seed)
        oof_p[te] = model.learn_probability(oof_margin[te])
        oof_mapped[te] = sigmoid(model.tail(oof_z[te])[:, MAX_EPOCH - 1])
    oof = combine(oof_p, oof_learner, fold_models[0].chance_curve)
    # DRAWS_PER_RUN out-of-fold draws per logged run: its own seed, then others.
    oof_draw = np.zeros((DRAWS_PER_RUN, len(cur), MAX_EPOCH))
    mix = noise.mixing_matrix(MAX_EPOCH)
    keys = np.array([int(c[:16], 16) for c in cur.config_ids], dtype=np.uint64)
    for f, model in enumerate(fold_models):
        te = folds == f
        model.chance_bank, model.learn_corr = bank, learn_corr
        for k in range(DRAWS_PER_RUN):
            seeds = cur.seeds[te].astype(np.uint64) + np.uint64(k * 2**32)
            oof_draw[k, te] = model.draw(oof_p[te], oof_learner[te], keys[te], seeds, mix,
                                         noise.resize if noise.size != "shared" else None,
                                         noise.bank_noise if noise.bank is not None else None,
                                         noise.bank_by_mapped,
                                         noise.config_offsets if noise.config_factor is not None else None
                                         )[:, :MAX_EPOCH]

    rt_oof = runtime_oof(rt_x, per_epoch, per_eval, rt_groups, device=rt_device, n_train=n_train,
                         n_eval=eval_examples(info), seed=seed, n_folds=n_outer)
    n_rt_configs = len(np.unique(rt_groups))

    # The shipped models: tuned and refitted on everything.
    curve_params, curve_score = tune(curve_cv_score, x, cur.val, cur.test, cur.config_ids, grid,
                                     seed=seed, n_folds=FINAL_FOLDS, **cargs)
    curve = fit_curve_model(x, cur.val, cur.test, curve_params, seed=seed, **cargs)
    curve.calibration, curve.tail, curve.chance_bank, curve.learn_corr = calibration, tail, bank, learn_corr
    runtime, rt_params, rt_score = fit_runtime(rt_x, per_epoch, per_eval, rt_groups, device=rt_device, n_train=n_train,
                                               n_eval=eval_examples(info), seed=seed)
    logger.info("final: curves %s (cv tau %.3f); runtime %s", curve_params, curve_score, rt_params)

    name = name or f"{data.dataset}-surrogate"
    manifest = _manifest(
        name=name, data=data, cur=cur, info=info, rt_device=rt_device, rt_rows=rt_rows, noise=noise,
        curve=curve, runtime=runtime, curve_params=curve_params, curve_score=curve_score, rt_params=rt_params,
        rt_score=rt_score, grid=grid, grid_name=grid_name, seed=seed, n_outer=n_outer, clock_plans=clock_plans,
    )
    surrogate = Surrogate(manifest=manifest, curve=curve, runtime=runtime, noise=noise)
    ok = np.isfinite(rt_oof)
    rt_card = runtime_card(rt_device, rt_rows, n_rt_configs, rt_oof, cost25, runtime)
    card = build_card(
        config_ids=cur.config_ids, val=cur.val, test=cur.test, oof=oof, oof_learn_p=oof_p, learn=learn,
        runtime=rt_card, seed_noise=_seed_noise_card(surrogate, cur, x, noise, info.chance_error),
        draws=draw_card(config_ids=cur.config_ids, val=cur.val, drawn=oof_draw, learner_pred=oof_mapped,
                        chance=info.chance_error, learn_corr=learn_corr, oof_p=oof_p),
        protocol=(
            f"{n_outer}-fold cross-validation grouped by config (seed {seed}): every number is on configs held out "
            f"from fitting; XGBoost hyperparameters were tuned inside each fold by {INNER_FOLDS}-fold grouped CV "
            "on Kendall tau of final-epoch validation error (mean of all configs and the best 20 %)"
        ),
    )
    card["shipped"] = (
        f"The shipped models were refitted on all {len(cur)} curve runs and {len(rt_rows)} lone runs "
        f"(curves: {FINAL_FOLDS}-fold grouped CV criterion {curve_score:.3f} with {_params_text(curve_params)}). "
        f"Curve runs per plan: {runs_per_plan(cur.keys)}."
    )
    manifest["quality"] = card
    if plot:
        surrogate.parity_png = parity_png(
            val=cur.val, oof=oof, learn=learn, rt_pred=rt_oof[ok], rt_true=cost25[ok],
            title=f"{name}: held-out configs ({n_outer}-fold CV), tau {_fmt_tau(card['final_val_error']['kendall_tau'])}",
        )
    return surrogate


def resolve_grid(grid: str | dict) -> tuple[str, dict]:
    """(name, grid) of a grid given by name (an entry of :data:`~.fit.GRIDS`) or as a dict."""
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"grid: unknown grid {grid!r} (known: {', '.join(GRIDS)})")
        return grid, GRIDS[grid]
    return "custom", grid


def check_noise_data(data: RunData) -> None:
    """``ValueError`` unless :func:`fit_models` can fit the seed noise on ``data``: its curve runs
    must hold at least two configs run with several seeds that learn under all of them. Cheap (no
    model is fitted), so that a study of several fits can refuse a subset up front."""
    info = dataset_info(data.dataset)
    cur = data.subset(data.curve_run)
    replicated_residuals(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])


def _curve_inputs(cur: RunData, info, noise_time: str = DEFAULT_NOISE_TIME, noise_size: str = "shared"):
    """What fitting the curve models needs of the curve runs: features, the dataset's bounds, the
    seed-noise model and its sd per output, which runs learn, and the measured curves' logits."""
    x = features(cur.configs, info.input_shape, info.n_classes, info.sizes[0])
    cargs = curve_args(info)
    noise = calibrate(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2],
                      time=noise_time, size=noise_size)
    profile = noise.sd_profile(MAX_EPOCH)
    noise_sd = np.r_[noise.sigma_val * profile, noise.sigma_test * profile]
    learn = learns(cur.val, info.chance_error)
    y_logit = logit(np.clip(np.hstack([cur.val, cur.test]), cargs["lower"], cargs["upper"]))
    return x, cargs, noise, noise_sd, learn, y_logit


def _with_bank_keys(noise, cur: RunData, info, oof_learner: np.ndarray):
    """``noise`` with its residual bank's keys (time ``"bank"``): each banked config's out-of-fold predicted
    learner curve, as a draw of a config the surrogate never saw searches the bank; others unchanged."""
    if noise.bank is None or noise.bank_search == "mapped":  # "mapped": keyed by the logged mean curves already
        return noise
    res = replicated_residuals(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    if tuple(int(n) for n in res.sizes) != tuple(noise.bank_sizes):  # pragma: no cover - same data, same groups
        raise RuntimeError("residual bank: its groups differ from the replicated learners'")
    return noise.with_bank_keys(logit(oof_learner[res.first_rows]))


def _with_config_noise(noise, config_noise: str, cur: RunData, info, oof_learner: np.ndarray, learn: np.ndarray,
                       y_logit: np.ndarray):
    """``noise`` with the config noise's factor (``config_noise="unexplained"``: :func:`~.noise.fit_config_factor`
    on the out-of-fold predictions of the runs that learned), or unchanged (``"none"``)."""
    if config_noise == "none":
        return noise
    res = replicated_residuals(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    factor, levels, lower, upper, facts = fit_config_factor(logit(oof_learner[learn]), y_logit[learn], res)
    logger.info("config noise: unexplained sd %.3f of the final validation logit (seed noise %.3f); sized (better / "
                "worse half, times %g) %s by final error; %d factors hold %.0f %% of it", facts["unexplained_sd"],
                facts["seed_sd"], CONFIG_SCALE,
                ", ".join(f"{lo:.3f}/{hi:.3f} at {e:.2f}" for e, lo, hi in zip(levels, lower, upper)),
                factor.shape[1], 100 * facts["held"])
    return dataclasses.replace(noise, config_factor=tuple(tuple(float(v) for v in row) for row in np.round(factor, 6)),
                               config_levels=tuple(round(float(v), 6) for v in levels),
                               config_sds=tuple(round(float(v), 6) for v in lower),
                               config_sds_upper=tuple(round(float(v), 6) for v in upper))


def _draw_parts(cur: RunData, oof_margin, oof_learner, learn, y_logit, noise_sd, seed, noise=None):
    """What the seeded draws need, from out-of-fold predictions of every curve run: the learn
    calibration, the tail map, the chance-level curves, and the seed correlation of learning
    (fitted so that the replicated configs flip as often as measured)."""
    calibration = fit_calibration(oof_margin, learn)
    tail = fit_tail_map(logit(oof_learner)[learn], y_logit[learn], noise_sd, noise=noise, seed=seed)
    bank = chance_bank(np.hstack([cur.val, cur.test])[~learn], seed) if (~learn).any() else None
    a, b = calibration
    rep_p, rep_n, n_flips = replicated_learning(cur.config_ids, sigmoid(a * oof_margin + b), learn)
    return calibration, tail, bank, fit_learn_corr(rep_p, rep_n, n_flips)


def fit_models(
    data: RunData,
    *,
    device: str | None = None,
    seed: int = 0,
    grid: str | dict = "default",
    name: str | None = None,
    noise_time: str = DEFAULT_NOISE_TIME,
    noise_size: str = "shared",
    config_noise: str = "none",
) -> Surrogate:
    """The models of :func:`fit_surrogate` fitted on ``data`` alone, tuned the same way, not judged.

    The step :func:`fit_surrogate` ships (grouped-CV tuning of the curve models, the noise
    calibration, the refit on everything, the device's clock), for callers that judge the
    surrogate themselves, e.g. on configs held out of ``data`` (:mod:`surrobench.validate`).
    What the seeded draws need (learn calibration, tail map, seed correlation) comes from
    out-of-fold predictions of a grouped CV with the tuned hyperparameters (not re-tuned per
    fold, unlike :func:`fit_surrogate`'s judging folds). The quality card says only that it was
    not judged; the clock is ``device``'s (default: most lone runs).
    """
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    grid_name, grid = resolve_grid(grid)
    check_noise(noise_time, noise_size)
    check_config_noise(config_noise)
    info = dataset_info(data.dataset)
    shape, n_classes, n_train = info.input_shape, info.n_classes, info.sizes[0]
    cur = data.subset(data.curve_run)
    n_configs = len(np.unique(cur.config_ids))
    if n_configs < FINAL_FOLDS:
        raise ValueError(f"data: {n_configs} configs with complete curves are too few to tune a surrogate "
                         f"({FINAL_FOLDS}-fold grouped CV)")
    with threadpool_limits(limits=1) if threadpool_limits else contextlib.nullcontext():
        x, cargs, noise, noise_sd, learn, y_logit = _curve_inputs(cur, info, noise_time, noise_size)
        curve_params, curve_score = tune(curve_cv_score, x, cur.val, cur.test, cur.config_ids, grid,
                                         seed=seed, n_folds=FINAL_FOLDS, **cargs)
        folds = group_folds(cur.config_ids, FINAL_FOLDS, seed)
        oof_margin, oof_learner = np.zeros(len(cur)), np.zeros((len(cur), 2 * MAX_EPOCH))
        for f in range(FINAL_FOLDS):
            tr, te = folds != f, folds == f
            model = fit_curve_model(x[tr], cur.val[tr], cur.test[tr], curve_params, seed=seed, **cargs)
            oof_margin[te], oof_learner[te] = model.raw(x[te])
        curve = fit_curve_model(x, cur.val, cur.test, curve_params, seed=seed, **cargs)
        noise = _with_bank_keys(noise, cur, info, oof_learner)
        noise = _with_config_noise(noise, config_noise, cur, info, oof_learner, learn, y_logit)
        curve.calibration, curve.tail, curve.chance_bank, curve.learn_corr = _draw_parts(
            cur, oof_margin, oof_learner, learn, y_logit, noise_sd, seed, noise)
        rt_device = pick_device(data, device)
        rt_rows, per_epoch, per_eval, _ = runtime_rows(data, rt_device)
        rt_x = features([data.configs[i] for i in rt_rows], shape, n_classes, n_train)
        runtime, rt_params, rt_score = fit_runtime(rt_x, per_epoch, per_eval, data.config_ids[rt_rows],
                                                   device=rt_device, n_train=n_train, n_eval=eval_examples(info),
                                                   seed=seed)
    manifest = _manifest(
        name=name or f"{data.dataset}-surrogate", data=data, cur=cur, info=info, rt_device=rt_device,
        rt_rows=rt_rows, noise=noise, curve=curve, runtime=runtime, curve_params=curve_params,
        curve_score=curve_score, rt_params=rt_params, rt_score=rt_score, grid=grid, grid_name=grid_name, seed=seed,
        n_outer=0, clock_plans=None,
    )
    manifest["quality"] = {
        "noise_ceiling": {"verdict": "not judged"},
        "protocol": f"fitted by fit_models on {len(cur)} curve runs of {n_configs} configs; not judged here",
    }
    return Surrogate(manifest=manifest, curve=curve, runtime=runtime, noise=noise)


def runtime_card(device: str, rows: np.ndarray, n_configs: int, oof: np.ndarray, cost25: np.ndarray,
                 runtime: RuntimeModel) -> dict[str, Any]:
    """The card's runtime section: out-of-fold seconds of a 25-epoch run against the lone runs'."""
    ok = np.isfinite(oof)
    return {
        "target": "seconds of a 25-epoch run: 25 training epochs plus one evaluation",
        "device": device,
        "n_runs": int(len(rows)),
        "n_configs": int(n_configs),
        "seconds": _log_stats(oof[ok], cost25[ok]) if ok.sum() >= 2 else None,
        "clock": runtime.clock.to_dict() if runtime.clock is not None else None,
        "note": (
            "seconds = the device's physics (exact work terms x coefficients fitted on its lone runs) x an XGBoost "
            "correction; per-epoch seconds are predicted once per config, so cumulative time grows linearly with "
            "epochs; runtime carries no seed noise"
            + ("" if n_configs >= MIN_TUNE_CONFIGS else
               f"; fewer than {MIN_TUNE_CONFIGS} configs ran alone, so the correction uses fixed light hyperparameters")
        ),
    }


def _fmt_tau(tau: float | None) -> str:
    return "n/a" if tau is None else f"{tau:.2f}"


def runs_per_plan(keys) -> str:
    """``"random 5 (13), optimizers 6 (25)"``: runs counted by the plan part of their keys.

    A key reads ``<dataset>/e<epochs>/<plan>/c<index>/r<replicate>``; random plans are ``s<seed>``,
    targeted ones ``<kind><seed>`` (e.g. ``optimizers7``).
    """
    counts: dict[tuple[str, int], int] = {}
    for key in keys:
        parts = str(key).split("/")
        m = re.fullmatch(r"([a-z_]*?)(\d+)", parts[2]) if len(parts) > 2 else None
        name = ("random" if m.group(1) in ("", "s") else m.group(1), int(m.group(2))) if m else ("other", -1)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{kind} {seed} ({n})" if seed >= 0 else f"{kind} ({n})" for (kind, seed), n in sorted(counts.items()))


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _log_stats(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from .quality import stats

    s = stats(pred, truth)
    s["r2"] = stats(np.log10(pred), np.log10(truth))["r2"]
    return s


def _seed_noise_card(surrogate: Surrogate, cur: RunData, x: np.ndarray, noise, chance: float) -> dict[str, Any]:
    """The between-seed sd of final validation error on the replicated configs, measured and drawn
    (20 seeds each, in sample): pooled over all of them, and over those that learned under every
    seed by thirds of their mean final error (of the draws, those that learned)."""
    ids, inv, counts = np.unique(cur.config_ids, return_inverse=True, return_counts=True)
    groups = np.flatnonzero(counts >= 2)
    out = {"n_configs": int(len(groups)), "measured_sd": None, "surrogate_sd": None}
    if len(groups):
        sq, dof, sim = 0.0, 0, []
        learner = []  # (mean final error, squared deviations, dof, drawn variance of the learned draws)
        for g in groups:
            rows = np.flatnonzero(inv == g)
            y = cur.val[rows, -1]
            sq += float(np.sum((y - y.mean()) ** 2))
            dof += len(rows) - 1
            n_draw = 20
            keys = np.full(n_draw, int(ids[g][:16], 16), dtype=np.uint64)
            seeds = np.arange(n_draw, dtype=np.uint64)
            curves, _, _ = surrogate.predict(np.repeat(x[rows[:1]], n_draw, axis=0), keys, seeds)
            sim.append(float(np.var(curves[:, MAX_EPOCH - 1], ddof=1)))
            drawn = curves[learns(curves[:, :MAX_EPOCH], chance), MAX_EPOCH - 1]
            if learns(cur.val[rows], chance).all() and len(drawn) >= 2:
                learner.append((float(y.mean()), float(np.sum((y - y.mean()) ** 2)), len(rows) - 1,
                                float(np.var(drawn, ddof=1))))
        out["measured_sd"] = float(np.sqrt(sq / dof))
        out["surrogate_sd"] = float(np.sqrt(np.mean(sim)))
        if len(learner) >= 3:
            mean, ss, dfs, var = (np.array(c) for c in zip(*learner))
            edges = np.quantile(mean, [0, 1 / 3, 2 / 3, 1])
            third = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, 2)
            out["by_final_error"] = {
                "what": "configs that learned under every seed, by thirds of their mean final validation error "
                        "(draws: those that learned)",
                "edges": [float(e) for e in edges],
                "n_configs": [int(np.sum(third == k)) for k in range(3)],
                "measured_sd": [float(np.sqrt(ss[third == k].sum() / dfs[third == k].sum())) for k in range(3)],
                "surrogate_sd": [float(np.sqrt(var[third == k].mean())) for k in range(3)],
            }
    if noise.matrix is not None:
        corr, sd = noise.correlation(MAX_EPOCH), noise.sd_profile(MAX_EPOCH)
        process = (f"the measured covariance between epochs: correlation of epochs 1-2 {corr[0, 1]:.2f} and "
                   f"24-25 {corr[-2, -1]:.2f}, 19-25 {corr[18, -1]:.2f}, sd at epoch 1 {sd[0]:.2f} and 25 "
                   f"{sd[-1]:.2f} times the overall sd")
    elif noise.time == "epoch" and not noise.jitter:
        process = (f"on the epoch clock: run-level share {noise.level:.2f}, epoch-to-epoch correlation "
                   f"{noise.level + (1 - noise.level) * noise.rho:.2f}")
    else:
        corr = noise.correlation(MAX_EPOCH)
        process = (f"on the {noise.time} clock: run-level share {noise.level:.2f}, jitter {noise.jitter:.2f}, "
                   f"correlation of epochs 1-2 {corr[0, 1]:.2f} and 24-25 {corr[-2, -1]:.2f}, 19-25 {corr[18, -1]:.2f}")
        if noise.early:
            sd = noise.sd_profile(MAX_EPOCH)
            process += (f", early noise (sd at epoch 1 {sd[0]:.2f} and 25 {sd[-1]:.2f} times the overall sd, "
                        f"decay {noise.decay:.1f} epochs)")
    if noise.bank is not None:
        nearest = ("whose predicted curves are nearest its own" if noise.bank_search == "predicted"
                   else "whose logged mean curves are nearest its curve after the tail map")
        process = (f"drawn from a bank of the {len(noise.bank)} replicated runs' residual curves, each draw a run of "
                   f"one of the {noise.bank_nearest} banked configs {nearest}; " + process)
    if noise.size != "shared":
        level, wobble = noise.size_factors(np.array([0.3, 0.5, 0.7]))
        process += ("; sized by the config's final error e: run-level shift times "
                    f"{level[0]:.2f}, {level[1]:.2f}, {level[2]:.2f} and wobble times {wobble[0]:.2f}, {wobble[1]:.2f}, "
                    f"{wobble[2]:.2f} at e = 0.3, 0.5, 0.7")
    if noise.config_factor is not None:
        upper = noise.config_sds if noise.config_sds_upper is None else noise.config_sds_upper
        process += ("; plus each config's own offset (the same for every seed) for what the models leave "
                    "unexplained: logit-scale sd at the final epoch " + ("(better / worse half) " if
                                                                          noise.config_sds_upper else "")
                    + ", ".join(f"{lo:.3f}" + (f"/{hi:.3f}" if noise.config_sds_upper else "") + f" at error {e:.2f}"
                                for e, lo, hi in zip(noise.config_levels, noise.config_sds, upper)))
    out["note"] = (
        f"calibrated on {noise.n_learner_groups} configs that learned under every seed "
        f"(logit-scale sd {noise.sigma_val:.3f} val / {noise.sigma_test:.3f} test, {process}, "
        f"val-test correlation {noise.kappa:.2f}); {noise.n_flip_groups} of {noise.n_groups} replicated configs "
        "flipped between learning and chance across seeds (the draws' flip rate: see draws)"
    )
    return out


def _versions() -> dict[str, str]:
    import sklearn
    import xgboost

    return {
        "surrobench": __version__,
        "xgboost": xgboost.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def _manifest(*, name, data, cur, info, rt_device, rt_rows, noise, curve, runtime, curve_params, curve_score,
              rt_params, rt_score, grid, grid_name, seed, n_outer, clock_plans) -> dict[str, Any]:
    devices, counts = np.unique(cur.devices, return_counts=True)
    return {
        "format": "surrobench-surrogate",
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": {
            "name": info.name,
            "input_shape": list(info.input_shape),
            "n_classes": info.n_classes,
            "chance_error": info.chance_error,
            "split_sizes": list(info.sizes),
        },
        "search_space": space_description(),
        "features": list(FEATURES),
        "objectives": objectives_description(size_bounds(info.input_shape, info.n_classes)),
        "reference_point": list(REFERENCE_POINT),
        "fidelity": {"name": "epoch", "min": MIN_EPOCH, "max": MAX_EPOCH},
        "devices": {
            "runtime_clock": rt_device,
            "curve_runs": {str(d): int(c) for d, c in zip(devices, counts)},
        },
        "training_data": {
            "sha256": data.data_hash,
            "n_runs": int(len(data)),
            "n_curve_runs": int(len(cur)),
            "n_configs": int(len(np.unique(cur.config_ids))),
            "n_runtime_runs": int(len(rt_rows)),
            "config_ids": sorted(set(data.config_ids.tolist())),
        },
        "versions": _versions(),
        "models": {
            "learns": {"file": "learns.ubj", "objective": "binary:logistic",
                       "definition": "min validation error over epochs below chance - 0.05"},
            "curves": {
                "file": "curves.ubj",
                "outputs": "principal-component scores of [val_error epochs 1..25, test_error epochs 1..25] "
                           "of runs that learn",
                "pca_mean": curve.pca_mean.tolist(),
                "pca_components": curve.components.tolist(),
                "chance_curve": curve.chance_curve.tolist(),
                "lower": curve.lower.tolist(),
                "upper": curve.upper.tolist(),
                "tail_map": curve.tail.to_dict() if curve.tail is not None else None,
            },
            "learns_calibration": {"a": curve.calibration[0], "b": curve.calibration[1],
                                   "definition": "P(learns) = sigmoid(a * margin + b), fitted on out-of-fold margins"},
            "draws": {
                "learn_corr": curve.learn_corr,
                "chance_bank": None if curve.chance_bank is None else curve.chance_bank.tolist(),
                "definition": "a seeded draw learns when Phi(sqrt(r) z_config + sqrt(1 - r) z_seed) < P(learns), "
                              "r = learn_corr; otherwise it is one of the chance_bank curves (logged runs that "
                              "stayed at chance), picked by the seed",
            },
            "runtime": {"file": "runtime.ubj", "device": rt_device, "clock": runtime.clock.to_dict(),
                        "clock_plans": None if clock_plans is None else sorted(int(v) for v in clock_plans),
                        "outputs": ["log seconds per training epoch", "log seconds per evaluation"],
                        "definition": "log seconds = log(physics of the clock) + booster output"},
            "fast": {"file": "fast.ubj", "built_from": ["learns", "curves", "runtime"],
                     "outputs": "learns margin, curve scores, log seconds per epoch, log seconds per evaluation"},
        },
        "tuning": {
            "criterion": "mean of Kendall tau-b of out-of-fold final-epoch validation error over all configs and "
                         "among the best 20 % (seed means), folds grouped by config",
            "grid_name": grid_name,
            "grid": {k: list(v) for k, v in grid.items()},
            "seed": seed,
            "outer_folds": n_outer,
            "curves": {"params": curve_params, "cv_criterion": curve_score, "folds": FINAL_FOLDS},
            "runtime": {"params": rt_params, "cv_kendall_tau": rt_score, "tuned": rt_score is not None,
                        "grid": {k: list(v) for k, v in RUNTIME_GRID.items()}},
        },
        "noise": noise.to_dict(),
    }
