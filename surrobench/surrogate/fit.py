"""Fitting the surrogate's XGBoost models and tuning their hyperparameters.

Hyperparameters are chosen by cross-validation grouped by config (all seeds of a config
fall in the same fold), on a rank-aware criterion: Kendall's tau-b between predicted and
measured final-epoch validation error (tau-b, because of the ties at chance level). The
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

from .model import N_OUT, CurveModel, RuntimeModel
from .noise import learns

__all__ = [
    "GRIDS",
    "RUNTIME_FIXED",
    "group_folds",
    "fit_curve_model",
    "fit_runtime_model",
    "tune",
    "curve_cv_score",
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

RUNTIME_FIXED = {"max_depth": 2, "min_child_weight": 1.0, "subsample": 1.0, "learning_rate": 0.1, "n_rounds": 150}
"""Runtime-model hyperparameters when too few configs ran alone to tune them (< MIN_TUNE_CONFIGS)."""

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


def fit_runtime_model(
    x: np.ndarray, per_epoch: np.ndarray, per_eval: np.ndarray, params: Mapping[str, Any], *, device: str, seed: int = 0
) -> RuntimeModel:
    """Log seconds per training epoch and per evaluation, two outputs of one booster."""
    y = np.column_stack([np.log(per_epoch), np.log(per_eval)])
    booster = xgb.train(
        _booster_params(params, seed, objective="reg:squarederror", multi_strategy="one_output_per_tree"),
        xgb.DMatrix(x, label=y, nthread=1),
        int(params["n_rounds"]),
    )
    return RuntimeModel(booster, device)


def curve_cv_score(x, val, test, groups, grid, *, chance_error, lower, upper, seed, n_folds):
    """Kendall tau of out-of-fold final-epoch validation error for every grid point."""
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
            results.append(({**point, "n_rounds": r}, _tau(oof[i], val[:, -1])))
    return results


def runtime_cv_score(x, per_epoch, per_eval, groups, grid, *, device, seed, n_folds):
    """Kendall tau of out-of-fold seconds per training epoch for every grid point."""
    folds = group_folds(groups, n_folds, seed)
    rounds = sorted(grid["n_rounds"])
    results = []
    for point in _grid_points(grid):
        params = {**point, "n_rounds": rounds[-1]}
        oof = np.zeros((len(rounds), len(x)))
        for f in range(n_folds):
            tr, te = folds != f, folds == f
            model = fit_runtime_model(x[tr], per_epoch[tr], per_eval[tr], params, device=device, seed=seed)
            for i, r in enumerate(rounds):
                out = model.booster.inplace_predict(x[te], iteration_range=(0, r))
                oof[i, te] = np.asarray(out).reshape(-1, 2)[:, 0]
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
