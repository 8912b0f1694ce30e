"""Fitting the surrogate's XGBoost models and tuning their hyperparameters.

Hyperparameters are chosen by cross-validation grouped by config (all seeds of a config
fall in the same fold), on a rank-aware criterion: Kendall's tau-b between predicted and
measured final-epoch validation error (tau-b, because of the ties at chance level), over all
configs and among the best 20 % (:func:`curve_criterion`). The
number of boosting rounds costs nothing to tune: each fold is fitted once with the most
rounds and predicted with every shorter ``iteration_range``.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any, Callable, Mapping

import numpy as np
import xgboost as xgb
from scipy.stats import kendalltau

from .clock import Clock
from .model import N_OUT, CurveModel, RuntimeModel, TailMap
from .noise import learns, sigmoid

__all__ = [
    "GRIDS",
    "RUNTIME_FIXED",
    "RUNTIME_GRID",
    "group_folds",
    "fit_curve_model",
    "fit_calibration",
    "fit_tail_map",
    "tail_levels",
    "chance_bank",
    "fit_runtime_model",
    "tune",
    "curve_cv_score",
    "curve_criterion",
    "runtime_cv_score",
]

logger = logging.getLogger(__name__)

GRIDS: dict[str, dict[str, tuple]] = {
    "default": {
        "max_depth": (2, 3, 4),
        "min_child_weight": (1.0, 3.0),
        "subsample": (0.7, 1.0),
        "learning_rate": (0.05,),
        "n_rounds": (100, 200, 400),
    },
    "quick": {
        "max_depth": (3,),
        "min_child_weight": (2.0,),
        "subsample": (0.8,),
        "learning_rate": (0.1,),
        "n_rounds": (40, 80),
    },
}
"""Hyperparameter grids; ``n_rounds`` values share one fit per fold."""

RUNTIME_FIXED = {"max_depth": 1, "min_child_weight": 3.0, "subsample": 1.0, "learning_rate": 0.05, "n_rounds": 20}
"""The runtime booster's hyperparameters when too few configs ran alone to tune them
(< MIN_TUNE_CONFIGS): a light correction of the physics, which does the work."""

RUNTIME_GRID = {
    "max_depth": (1, 2),
    "min_child_weight": (3.0,),
    "subsample": (1.0,),
    "learning_rate": (0.05,),
    "n_rounds": (10, 40, 150),
}
"""The runtime booster's grid: it corrects the physics (:mod:`.clock`), so it stays shallow."""

MIN_TUNE_CONFIGS = 20
N_COMPONENTS = 4


def group_folds(groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per row: groups shuffled with ``seed``, then dealt round-robin."""
    uniq = np.unique(np.asarray(groups))
    if len(uniq) < n_folds:
        raise ValueError(f"cross-validation: needs at least {n_folds} distinct configs, got {len(uniq)}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = dict(zip(uniq[order].tolist(), (np.arange(len(uniq)) % n_folds).tolist()))
    return np.array([fold_of[g] for g in np.asarray(groups).tolist()], dtype=int)


def _booster_params(params: Mapping[str, Any], seed: int, **extra) -> dict[str, Any]:
    return {
        "tree_method": "hist",
        "max_depth": int(params["max_depth"]),
        "eta": float(params["learning_rate"]),
        "min_child_weight": float(params["min_child_weight"]),
        "subsample": float(params["subsample"]),
        "seed": int(seed),
        "nthread": 1,
        "verbosity": 0,
        **extra,
    }


def _grid_points(grid: Mapping[str, tuple]) -> list[dict[str, Any]]:
    keys = [k for k in grid if k != "n_rounds"]
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def curve_criterion(pred: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> float:
    """The curve models' tuning criterion: the mean of Kendall's tau-b of final-epoch validation
    error over all held-out runs and among the configs whose measured (seed-mean) error is in the
    best 20 %. The overall tau is flat across the grid; the best configs, where comparisons are
    decided, are what the hyperparameters change."""
    ids, inv = np.unique(np.asarray(groups), return_inverse=True)
    counts = np.bincount(inv)
    truth_c = np.bincount(inv, weights=truth) / counts
    pred_c = np.bincount(inv, weights=pred) / counts
    top = np.argsort(truth_c, kind="stable")[: max(3, int(round(0.2 * len(ids))))]
    return 0.5 * (_tau(pred, truth) + _tau(pred_c[top], truth_c[top]))


def _tau(pred: np.ndarray, truth: np.ndarray) -> float:
    if np.ptp(pred) == 0 or np.ptp(truth) == 0:
        return -1.0
    tau = kendalltau(pred, truth).statistic
    return float(tau) if math.isfinite(tau) else -1.0


def fit_curve_model(
    x: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    params: Mapping[str, Any],
    *,
    chance_error: float,
    lower: np.ndarray,
    upper: np.ndarray,
    seed: int = 0,
    n_components: int = N_COMPONENTS,
) -> CurveModel:
    """Fit the learns-classifier on all runs and the PCA-score regressor on runs that learn."""
    learn = learns(val, chance_error)
    if learn.sum() < 2:
        raise ValueError(f"curves: needs at least 2 runs that learn (error below chance - 0.05), got {int(learn.sum())}")
    y = np.hstack([val, test])
    chance_curve = y[~learn].mean(axis=0) if (~learn).any() else np.full(N_OUT, chance_error)
    rounds = int(params["n_rounds"])
    clf = xgb.train(
        _booster_params(params, seed, objective="binary:logistic", base_score=0.5),
        xgb.DMatrix(x, label=learn.astype(float), nthread=1),
        rounds,
    )
    ly = y[learn]
    mean = ly.mean(axis=0)
    _, _, vt = np.linalg.svd(ly - mean, full_matrices=False)
    k = max(1, min(n_components, len(ly) - 1, N_OUT))
    components = vt[:k]
    scores = (ly - mean) @ components.T
    reg = xgb.train(
        _booster_params(params, seed, objective="reg:squarederror", multi_strategy="one_output_per_tree"),
        xgb.DMatrix(x[learn], label=scores, nthread=1),
        rounds,
    )
    return CurveModel(clf, reg, mean, components, chance_curve, np.asarray(lower, float), np.asarray(upper, float))


TAIL_LEVELS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
"""Quantile levels of the tail map's knots (beyond them it extends with the central slope)."""
TAIL_EXTRA = (0.002, 0.005, 0.01, 0.99, 0.995, 0.998)
"""Levels further out, used where at least :data:`TAIL_BEYOND` runs lie beyond them: the best
runs' own quantiles, which an optimizer that evaluates thousands of configs reaches."""
TAIL_BEYOND = 5
TAIL_DRAWS = 16
"""Seeded noise draws per run with which the map's draws are simulated while it is matched (fewer
where the runs are many: at most 40,000 simulated draws in all, at least one per run)."""
TAIL_ROUNDS = 40
TAIL_SEARCH_EVERY = 10
"""With a residual bank searched by the mapped curve (``bank_search="mapped"``), the map's simulated draws
search the bank again with the current map every this many rounds (each search costs about as much as the
rounds between; the picks change little once the knots settle)."""
TAIL_MIN_SLOPE = 0.2
"""The least slope of the map between knots (and beyond them): matched to a short measured tail,
the best predictions keep their order instead of collapsing onto one value."""
MAX_BANK = 256


def fit_calibration(margin: np.ndarray, learned: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``P(learns) = sigmoid(a * margin + b)`` fitted on out-of-fold margins."""
    from sklearn.linear_model import LogisticRegression

    learned = np.asarray(learned, bool)
    if learned.all() or not learned.any():
        return 1.0, 0.0
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(margin, float).reshape(-1, 1), learned)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return (a, b) if a > 0 else (1.0, 0.0)


def tail_levels(n: int) -> np.ndarray:
    """The knots' quantile levels for ``n`` runs: :data:`TAIL_LEVELS`, and those of :data:`TAIL_EXTRA`
    with at least :data:`TAIL_BEYOND` runs beyond them."""
    extra = [a for a in TAIL_EXTRA if min(a, 1.0 - a) * n >= TAIL_BEYOND]
    return np.array(sorted(set(TAIL_LEVELS) | set(extra)))


def _ordered_knots(xq: np.ndarray, yq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots that increase: ``xq`` strictly, ``yq`` with at least the least slope between knots,
    enforced outward from the middle knot (the best-measured one), so that a tail that cannot rise
    or fall further stays put instead of dragging the middle with it."""
    xq = np.maximum.accumulate(xq, axis=1) + np.arange(xq.shape[1]) * 1e-9
    yq = yq.copy()
    step = TAIL_MIN_SLOPE * np.diff(xq, axis=1)
    mid = yq.shape[1] // 2
    for k in range(mid + 1, yq.shape[1]):
        yq[:, k] = np.maximum(yq[:, k], yq[:, k - 1] + step[:, k - 1])
    for k in range(mid - 1, -1, -1):
        yq[:, k] = np.minimum(yq[:, k], yq[:, k + 1] - step[:, k])
    return xq, yq


def _tail_knots(xq: np.ndarray, yq: np.ndarray, levels: np.ndarray) -> TailMap:
    """The map through increasing knots ``(xq, yq)`` (rows: outputs), extended linearly beyond them
    with the central (5 % to 95 %) slope."""
    i, j = list(levels).index(0.05), list(levels).index(0.95)
    slope = np.clip((yq[:, j] - yq[:, i]) / np.maximum(xq[:, j] - xq[:, i], 1e-9), TAIL_MIN_SLOPE, 5.0)
    far = 50.0
    x = np.column_stack([xq[:, 0] - far, xq, xq[:, -1] + far])
    y = np.column_stack([yq[:, 0] - far * slope, yq, yq[:, -1] + far * slope])
    return TailMap(x, y)


def fit_tail_map(pred: np.ndarray, truth: np.ndarray, noise_sd: np.ndarray, *, noise: Any = None,
                 seed: int = 0) -> TailMap:
    """Quantile mapping of predicted learner logits onto measured ones (see :class:`~.model.TailMap`).

    ``pred`` are out-of-fold logits of runs that learned, ``truth`` their measured logits
    (both (n, N_OUT)), ``noise_sd`` the seed noise sd per output. A draw is the map of a prediction
    plus the seed noise, so the map is matched to what the draws give: its knots (one per level of
    :func:`tail_levels`, per output) are moved until the quantiles of ``map(pred) + noise`` (the noise
    simulated with up to :data:`TAIL_DRAWS` seeded draws per run) equal the measured quantiles at every
    level (:data:`TAIL_ROUNDS` rounds at most). With ``noise`` (the :class:`~.noise.NoiseModel` the draws will use) the simulated noise is
    the draws' own, sized by config where the model says so (by the final error the map gives) or taken
    from its residual bank (searched by ``pred``, or with ``bank_search="mapped"`` by the mapped ``pred``,
    again every :data:`TAIL_SEARCH_EVERY` rounds), and with its config noise (``config_factor``) each
    simulated draw adds a config offset after the map, as the draws do;
    without it, independent with sd ``noise_sd``. Started from the measured quantiles narrowed so that the noise restores
    their variance; where the measured tail is shorter than the noise's own, the knots rise until the
    draws' tail is no longer than the runs' (within the least slope, :data:`TAIL_MIN_SLOPE`).
    """
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    if len(pred) < 10:
        raise ValueError(f"tail map: needs at least 10 runs that learn, got {len(pred)}")
    sd = np.asarray(noise_sd, float)
    levels = tail_levels(len(pred))
    xq = np.quantile(pred, levels, axis=0).T
    tq = np.quantile(truth, levels, axis=0).T
    m, var = truth.mean(axis=0), truth.var(axis=0)
    spread = sd**2
    if noise is not None and noise.config_factor is not None:  # the config offsets' variance too (their mean size)
        spread = spread + (np.asarray(noise.config_factor, dtype=float) ** 2).sum(axis=1) * noise.config_variance()
    shrink = np.sqrt(np.clip(1.0 - spread / np.maximum(var, 1e-12), 0.1, 1.0))
    xq, yq = _ordered_knots(xq, m[:, None] + (tq - m[:, None]) * shrink[:, None])
    tail = _tail_knots(xq, yq, levels)
    if not np.any(sd > 0):
        return tail
    n, n_out = pred.shape
    draws = max(1, min(TAIL_DRAWS, 40_000 // n))
    normals = np.random.default_rng(seed).standard_normal((draws * n, n_out))
    banked = noise is not None and noise.bank is not None
    searched = banked and noise.bank_by_mapped  # the bank searched by the mapped curve: in the loop
    if banked and not searched:  # the residual bank, searched by the unmapped prediction: the same rows whatever the map
        eps = noise.bank_noise(normals[:, :2], np.tile(pred, (draws, 1)))
    elif not banked:
        eps = normals * sd[None, :] if noise is None else normals @ noise.mixing_matrix(n_out // 2)
    sized = noise is not None and noise.size != "shared"
    config_z = None
    if noise is not None and noise.config_factor is not None:  # one config offset per simulated draw, sized each round
        config_z = np.random.default_rng([seed, 1]).standard_normal((draws * n, len(noise.config_factor[0])))
    for r in range(TAIL_ROUNDS):
        mapped = np.tile(tail(pred), (draws, 1))
        if config_z is not None:
            mapped = mapped + noise.config_curves(config_z, sigmoid(mapped[:, n_out // 2 - 1]))
        if searched and r % TAIL_SEARCH_EVERY == 0:  # the bank searched by the mapped curves, as the draws search it
            eps = noise.bank_noise(normals[:, :2], mapped)
        drawn = (mapped + (noise.resize(eps, sigmoid(mapped[:, n_out // 2 - 1])) if sized else eps)).T
        gap = tq - np.quantile(drawn, levels, axis=1).T
        if np.abs(gap).max() < 1e-3:
            break
        xq, yq = _ordered_knots(xq, yq + gap)
        tail = _tail_knots(xq, yq, levels)
    return tail


def chance_bank(curves: np.ndarray, seed: int = 0, size: int = MAX_BANK) -> np.ndarray:
    """A seeded sample (at most ``size``) of logged chance-level curves, rounded to 6 digits."""
    curves = np.asarray(curves, float)
    if len(curves) > size:
        curves = curves[np.sort(np.random.default_rng(seed).choice(len(curves), size, replace=False))]
    return np.round(curves, 6)


def fit_runtime_model(
    x: np.ndarray,
    per_epoch: np.ndarray,
    per_eval: np.ndarray,
    params: Mapping[str, Any],
    *,
    device: str,
    seed: int = 0,
    clock: Clock | None = None,
) -> RuntimeModel:
    """Log seconds per training epoch and per evaluation: the booster learns what ``clock``
    (the device's physics) leaves unexplained, or the whole log where there is none."""
    y = np.column_stack([np.log(per_epoch), np.log(per_eval)])
    if clock is not None:
        y = y - clock.log_seconds(x)
    booster = xgb.train(
        _booster_params(params, seed, objective="reg:squarederror", multi_strategy="one_output_per_tree"),
        xgb.DMatrix(x, label=y, nthread=1),
        int(params["n_rounds"]),
    )
    return RuntimeModel(booster, device, clock)


def curve_cv_score(x, val, test, groups, grid, *, chance_error, lower, upper, seed, n_folds):
    """:func:`curve_criterion` of out-of-fold final-epoch validation error for every grid point."""
    folds = group_folds(groups, n_folds, seed)
    rounds = sorted(grid["n_rounds"])
    results = []
    for point in _grid_points(grid):
        params = {**point, "n_rounds": rounds[-1]}
        oof = np.zeros((len(rounds), len(x)))
        for f in range(n_folds):
            tr, te = folds != f, folds == f
            model = fit_curve_model(
                x[tr], val[tr], test[tr], params, chance_error=chance_error, lower=lower, upper=upper, seed=seed
            )
            for i, r in enumerate(rounds):
                oof[i, te] = model.mean(x[te], rounds=r)[:, val.shape[1] - 1]
        for i, r in enumerate(rounds):
            results.append(({**point, "n_rounds": r}, curve_criterion(oof[i], val[:, -1], groups)))
    return results


def runtime_cv_score(x, per_epoch, per_eval, groups, grid, *, device, seed, n_folds, clock_fit=None):
    """Kendall tau of out-of-fold seconds per training epoch for every grid point.

    ``clock_fit(rows)`` fits the physics on the training rows of a fold (none: booster alone).
    """
    folds = group_folds(groups, n_folds, seed)
    rounds = sorted(grid["n_rounds"])
    results = []
    for point in _grid_points(grid):
        params = {**point, "n_rounds": rounds[-1]}
        oof = np.zeros((len(rounds), len(x)))
        for f in range(n_folds):
            tr, te = folds != f, folds == f
            clock = None if clock_fit is None else clock_fit(np.flatnonzero(tr))
            model = fit_runtime_model(x[tr], per_epoch[tr], per_eval[tr], params, device=device, seed=seed, clock=clock)
            base = 0.0 if clock is None else clock.log_seconds(x[te])[:, 0]
            for i, r in enumerate(rounds):
                out = model.booster.inplace_predict(x[te], iteration_range=(0, r))
                oof[i, te] = np.asarray(out).reshape(-1, 2)[:, 0] + base
        for i, r in enumerate(rounds):
            results.append(({**point, "n_rounds": r}, _tau(oof[i], per_epoch)))
    return results


def tune(score: Callable[..., list], *args, **kwargs) -> tuple[dict[str, Any], float]:
    """The grid point with the best criterion (the first one among equals) and its score."""
    results = score(*args, **kwargs)
    best_params, best = results[0]
    for params, value in results[1:]:
        if value > best:
            best_params, best = params, value
    return best_params, best
