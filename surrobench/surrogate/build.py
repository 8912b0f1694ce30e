"""``fit_surrogate``: from a logs directory to a complete surrogate with its quality card."""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import platform
from typing import Any

import numpy as np

from .. import __version__
from ..datasets import info as dataset_info
from ..space import HYPERPARAMETERS, MAX_EPOCH, MIN_EPOCH
from .data import RunData, load_run_data, pick_device
from .features import FEATURES, features, size_bounds
from .fit import (
    GRIDS,
    MIN_TUNE_CONFIGS,
    RUNTIME_FIXED,
    curve_cv_score,
    fit_curve_model,
    fit_runtime_model,
    group_folds,
    runtime_cv_score,
    tune,
)
from .model import Surrogate
from .noise import calibrate, learns
from .quality import build_card, parity_png

__all__ = ["fit_surrogate", "fit_models", "SCHEMA_VERSION", "REFERENCE_POINT", "space_description", "objectives_description"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REFERENCE_POINT = (1.0, 8.0)
INNER_FOLDS = 3
FINAL_FOLDS = 5


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
    return [
        {"name": "val_error", "direction": "min", "lower": 0.0, "upper": 1.0},
        {"name": "log10_params", "direction": "min", "lower": bounds[0], "upper": bounds[1]},
    ]


def _runtime_rows(data: RunData, device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lone runs on ``device``: indices, median seconds per epoch and per evaluation, 25-epoch cost."""
    rows = np.flatnonzero(data.alone & (data.devices == device) & np.isfinite(data.train_time).any(axis=1))
    rows = rows[np.isfinite(data.eval_time[rows]).any(axis=1)]
    per_epoch = np.nanmedian(data.train_time[rows], axis=1)
    per_eval = np.nanmedian(data.eval_time[rows], axis=1)
    tt = data.train_time[rows]
    full = np.isfinite(tt).all(axis=1)
    cost = np.where(full, np.nansum(tt, axis=1) + data.eval_time[rows, -1], MAX_EPOCH * per_epoch + per_eval)
    return rows, per_epoch, per_eval, cost


def _tune_runtime(x, per_epoch, per_eval, groups, grid, *, device, seed, n_folds):
    if len(np.unique(groups)) < MIN_TUNE_CONFIGS:
        return dict(RUNTIME_FIXED), None
    return tune(runtime_cv_score, x, per_epoch, per_eval, groups, grid, device=device, seed=seed, n_folds=n_folds)


def _curve_args(info) -> dict[str, Any]:
    n_val, n_test = info.sizes[1], info.sizes[2]
    lower = np.r_[np.full(MAX_EPOCH, 0.5 / n_val), np.full(MAX_EPOCH, 0.5 / n_test)]
    return {"chance_error": info.chance_error, "lower": lower, "upper": 1.0 - lower}


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
) -> Surrogate:
    """Fit every model on the runs under ``logs`` and judge them on held-out configs.

    ``holdout`` is the share of configs held out per fold of the outer cross-validation
    (0.2: five folds); ``grid`` names an entry of :data:`~.fit.GRIDS` or is a grid itself;
    ``device`` picks whose clock the runtime model learns (default: the device with the
    most lone runs). ``plot=False`` skips the parity plot. Linear algebra runs on one
    thread (many tiny problems; threads only contend).
    """
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    with threadpool_limits(limits=1) if threadpool_limits else contextlib.nullcontext():
        return _fit(logs, dataset=dataset, device=device, seed=seed, holdout=holdout, grid=grid, name=name, plot=plot)


def _fit(logs, *, dataset, device, seed, holdout, grid, name, plot) -> Surrogate:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
    if not 0.05 <= float(holdout) <= 0.5:
        raise ValueError(f"holdout: must lie in [0.05, 0.5] (share of configs held out per fold), got {holdout!r}")
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"grid: unknown grid {grid!r} (known: {', '.join(GRIDS)})")
        grid_name, grid = grid, GRIDS[grid]
    else:
        grid_name = "custom"
    n_outer = max(2, int(round(1.0 / float(holdout))))
    data = load_run_data(logs, dataset)
    info = dataset_info(data.dataset)
    shape, n_classes, n_train = info.input_shape, info.n_classes, info.sizes[0]
    cur = data.subset(data.curve_run)
    if len(np.unique(cur.config_ids)) < max(n_outer, FINAL_FOLDS):
        n = len(np.unique(cur.config_ids))
        raise ValueError(f"logs: {n} configs with complete curves are too few to fit and judge a surrogate")
    x = features(cur.configs, shape, n_classes, n_train)
    cargs = _curve_args(info)
    noise = calibrate(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    rt_device = pick_device(data, device)
    rt_rows, per_epoch, per_eval, cost25 = _runtime_rows(data, rt_device)
    rt_x = features([data.configs[i] for i in rt_rows], shape, n_classes, n_train)
    rt_groups = data.config_ids[rt_rows]
    logger.info("%s: %d curve runs, %d configs; runtime on %s from %d lone runs", data.dataset, len(cur),
                len(np.unique(cur.config_ids)), rt_device, len(rt_rows))

    # Outer cross-validation: every config is predicted once by models that never saw it.
    folds = group_folds(cur.config_ids, n_outer, seed)
    oof = np.zeros((len(cur), 2 * MAX_EPOCH))
    oof_p = np.zeros(len(cur))
    for f in range(n_outer):
        tr, te = folds != f, folds == f
        params, _ = tune(curve_cv_score, x[tr], cur.val[tr], cur.test[tr], cur.config_ids[tr], grid,
                         seed=seed, n_folds=INNER_FOLDS, **cargs)
        model = fit_curve_model(x[tr], cur.val[tr], cur.test[tr], params, seed=seed, **cargs)
        oof_p[te], _ = model.parts(x[te])
        oof[te] = model.mean(x[te])
        logger.info("outer fold %d/%d: %s", f + 1, n_outer, params)
    rt_oof = np.full(len(rt_rows), np.nan)
    n_rt_configs = len(np.unique(rt_groups))
    if n_rt_configs >= 2:
        rt_folds = group_folds(rt_groups, min(n_outer, n_rt_configs), seed)
        for f in range(rt_folds.max() + 1):
            tr, te = rt_folds != f, rt_folds == f
            params, _ = _tune_runtime(rt_x[tr], per_epoch[tr], per_eval[tr], rt_groups[tr], grid,
                                      device=rt_device, seed=seed, n_folds=INNER_FOLDS)
            model_rt = fit_runtime_model(rt_x[tr], per_epoch[tr], per_eval[tr], params, device=rt_device, seed=seed)
            ep, ev = model_rt.predict(rt_x[te])
            rt_oof[te] = MAX_EPOCH * ep + ev

    # The shipped models: tuned and refitted on everything.
    curve_params, curve_score = tune(curve_cv_score, x, cur.val, cur.test, cur.config_ids, grid,
                                     seed=seed, n_folds=FINAL_FOLDS, **cargs)
    curve = fit_curve_model(x, cur.val, cur.test, curve_params, seed=seed, **cargs)
    rt_params, rt_score = _tune_runtime(rt_x, per_epoch, per_eval, rt_groups, grid, device=rt_device, seed=seed,
                                        n_folds=min(FINAL_FOLDS, max(2, n_rt_configs)))
    runtime = fit_runtime_model(rt_x, per_epoch, per_eval, rt_params, device=rt_device, seed=seed)
    logger.info("final: curves %s (cv tau %.3f); runtime %s", curve_params, curve_score, rt_params)

    learn = learns(cur.val, info.chance_error)
    name = name or f"{data.dataset}-surrogate"
    manifest = _manifest(
        name=name, data=data, cur=cur, info=info, rt_device=rt_device, rt_rows=rt_rows, noise=noise,
        curve=curve, curve_params=curve_params, curve_score=curve_score, rt_params=rt_params, rt_score=rt_score,
        grid=grid, grid_name=grid_name, seed=seed, n_outer=n_outer,
    )
    surrogate = Surrogate(manifest=manifest, curve=curve, runtime=runtime, noise=noise)
    ok = np.isfinite(rt_oof)
    runtime_card = {
        "target": "seconds of a 25-epoch run: 25 training epochs plus one evaluation",
        "device": rt_device,
        "n_runs": int(len(rt_rows)),
        "n_configs": int(n_rt_configs),
        "seconds": _log_stats(rt_oof[ok], cost25[ok]) if ok.sum() >= 2 else None,
        "note": (
            "per-epoch seconds are predicted once per config, so cumulative time grows linearly with epochs; "
            "no lone run was repeated, so runtime carries no seed noise"
            + ("" if n_rt_configs >= MIN_TUNE_CONFIGS else
               f"; fewer than {MIN_TUNE_CONFIGS} configs ran alone, so the runtime model uses fixed hyperparameters")
        ),
    }
    card = build_card(
        config_ids=cur.config_ids, val=cur.val, test=cur.test, oof=oof, oof_learn_p=oof_p, learn=learn,
        runtime=runtime_card, seed_noise=_seed_noise_card(surrogate, cur, x, noise),
        protocol=(
            f"{n_outer}-fold cross-validation grouped by config (seed {seed}): every number is on configs held out "
            f"from fitting; XGBoost hyperparameters were tuned inside each fold by {INNER_FOLDS}-fold grouped CV "
            "on Kendall tau of final-epoch validation error"
        ),
    )
    card["shipped"] = (
        f"The shipped models were refitted on all {len(cur)} curve runs and {len(rt_rows)} lone runs "
        f"(curves: {FINAL_FOLDS}-fold grouped CV tau {curve_score:.3f} with {_params_text(curve_params)})."
    )
    manifest["quality"] = card
    if plot:
        surrogate.parity_png = parity_png(
            val=cur.val, oof=oof, learn=learn, rt_pred=rt_oof[ok], rt_true=cost25[ok],
            title=f"{name}: held-out configs ({n_outer}-fold CV), tau {_fmt_tau(card['final_val_error']['kendall_tau'])}",
        )
    return surrogate


def _fmt_tau(tau: float | None) -> str:
    return "n/a" if tau is None else f"{tau:.2f}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _log_stats(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from .quality import stats

    s = stats(pred, truth)
    s["r2"] = stats(np.log10(pred), np.log10(truth))["r2"]
    return s


def _seed_noise_card(surrogate: Surrogate, cur: RunData, x: np.ndarray, noise) -> dict[str, Any]:
    ids, inv, counts = np.unique(cur.config_ids, return_inverse=True, return_counts=True)
    groups = np.flatnonzero(counts >= 2)
    out = {"n_configs": int(len(groups)), "measured_sd": None, "surrogate_sd": None}
    if len(groups):
        sq, dof, sim = 0.0, 0, []
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
        out["measured_sd"] = float(np.sqrt(sq / dof))
        out["surrogate_sd"] = float(np.sqrt(np.mean(sim)))
    out["note"] = (
        f"calibrated on {noise.n_learner_groups} configs that learned under every seed "
        f"(logit-scale sd {noise.sigma_val:.3f} val / {noise.sigma_test:.3f} test, epoch correlation {noise.rho:.2f}, "
        f"val-test correlation {noise.kappa:.2f}); {noise.n_flip_groups} of {noise.n_groups} replicated configs "
        "flipped between learning and chance across seeds, which the draws do not reproduce"
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


def _manifest(*, name, data, cur, info, rt_device, rt_rows, noise, curve, curve_params, curve_score, rt_params,
              rt_score, grid, grid_name, seed, n_outer) -> dict[str, Any]:
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
            },
            "runtime": {"file": "runtime.ubj", "device": rt_device,
                        "outputs": ["log seconds per training epoch", "log seconds per evaluation"]},
            "fast": {"file": "fast.ubj", "built_from": ["learns", "curves", "runtime"],
                     "outputs": "learns margin, curve scores, log seconds per epoch, log seconds per evaluation"},
        },
        "tuning": {
            "criterion": "Kendall tau-b of out-of-fold final-epoch validation error, folds grouped by config",
            "grid_name": grid_name,
            "grid": {k: list(v) for k, v in grid.items()},
            "seed": seed,
            "outer_folds": n_outer,
            "curves": {"params": curve_params, "cv_kendall_tau": curve_score, "folds": FINAL_FOLDS},
            "runtime": {"params": rt_params, "cv_kendall_tau": rt_score,
                        "tuned": rt_score is not None},
        },
        "noise": noise.to_dict(),
    }


def fit_models(
    data: RunData,
    *,
    device: str | None = None,
    seed: int = 0,
    grid: str | dict = "default",
    name: str | None = None,
) -> Surrogate:
    """The models of :func:`fit_surrogate` fitted on ``data`` alone, tuned the same way, not judged.

    The step :func:`fit_surrogate` ships (grouped-CV tuning of the curve and runtime models, the
    noise calibration, the refit on everything), for callers that judge the surrogate themselves,
    e.g. on configs held out of ``data`` (:mod:`surrobench.validate`). Its quality card says only
    that it was not judged; it is fitted on the runs of ``data`` (a subset of a logs directory's
    :class:`~.data.RunData`), with the runtime clock of ``device`` (default: most lone runs).
    """
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"grid: unknown grid {grid!r} (known: {', '.join(GRIDS)})")
        grid_name, grid = grid, GRIDS[grid]
    else:
        grid_name = "custom"
    info = dataset_info(data.dataset)
    shape, n_classes, n_train = info.input_shape, info.n_classes, info.sizes[0]
    cur = data.subset(data.curve_run)
    n_configs = len(np.unique(cur.config_ids))
    if n_configs < FINAL_FOLDS:
        raise ValueError(f"data: {n_configs} configs with complete curves are too few to tune a surrogate "
                         f"({FINAL_FOLDS}-fold grouped CV)")
    with threadpool_limits(limits=1) if threadpool_limits else contextlib.nullcontext():
        x = features(cur.configs, shape, n_classes, n_train)
        cargs = _curve_args(info)
        noise = calibrate(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
        rt_device = pick_device(data, device)
        rt_rows, per_epoch, per_eval, _ = _runtime_rows(data, rt_device)
        rt_x = features([data.configs[i] for i in rt_rows], shape, n_classes, n_train)
        rt_groups = data.config_ids[rt_rows]
        n_rt_configs = len(np.unique(rt_groups))
        curve_params, curve_score = tune(curve_cv_score, x, cur.val, cur.test, cur.config_ids, grid,
                                         seed=seed, n_folds=FINAL_FOLDS, **cargs)
        curve = fit_curve_model(x, cur.val, cur.test, curve_params, seed=seed, **cargs)
        rt_params, rt_score = _tune_runtime(rt_x, per_epoch, per_eval, rt_groups, grid, device=rt_device, seed=seed,
                                            n_folds=min(FINAL_FOLDS, max(2, n_rt_configs)))
        runtime = fit_runtime_model(rt_x, per_epoch, per_eval, rt_params, device=rt_device, seed=seed)
    manifest = _manifest(
        name=name or f"{data.dataset}-surrogate", data=data, cur=cur, info=info, rt_device=rt_device,
        rt_rows=rt_rows, noise=noise, curve=curve, curve_params=curve_params, curve_score=curve_score,
        rt_params=rt_params, rt_score=rt_score, grid=grid, grid_name=grid_name, seed=seed, n_outer=0,
    )
    manifest["quality"] = {
        "noise_ceiling": {"verdict": "not judged"},
        "protocol": f"fitted by fit_models on {len(cur)} curve runs of {n_configs} configs; not judged here",
    }
    return Surrogate(manifest=manifest, curve=curve, runtime=runtime, noise=noise)
