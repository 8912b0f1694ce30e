"""Multi-objective metrics over (n, m) arrays of minimised objectives (hypervolume via moocore).

>>> hypervolume([[0.5, 4.0]], ref=[1.0, 8.0])
2.0
>>> pareto_mask([[0.5, 4.0], [0.6, 5.0], [0.4, 6.0]]).tolist()
[True, False, True]
"""

from __future__ import annotations

from typing import Sequence

import moocore
import numpy as np
import pandas as pd

__all__ = [
    "pareto_mask",
    "pareto_front",
    "hypervolume",
    "hypervolume_trace",
    "hv_over_time",
    "final_pareto",
    "test_hypervolume",
    "time_grid",
    "ranks_over_time",
]


def _points(points, name: str = "points") -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.ndim != 2:
        arr = arr.reshape(-1, 2) if arr.size == 0 else arr
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected an (n, m) array, got shape {np.shape(points)}")
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _ref(ref, m: int) -> np.ndarray:
    r = np.asarray(ref, dtype=float).ravel()
    if r.shape != (m,) or not np.isfinite(r).all():
        raise ValueError(f"ref: expected {m} finite coordinates, got {ref!r}")
    return r


def pareto_mask(points) -> np.ndarray:
    """Boolean mask of the non-dominated rows (minimisation); duplicates are all kept."""
    arr = _points(points)
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(arr, keep_weakly=True), dtype=bool)


def pareto_front(points) -> np.ndarray:
    """The non-dominated rows, sorted by the first objective, duplicates removed."""
    arr = _points(points)
    front = np.unique(arr[pareto_mask(arr)], axis=0)
    return front[np.lexsort(front.T[::-1])] if len(front) else front


def hypervolume(points, *, ref: Sequence[float]) -> float:
    """Hypervolume dominated by ``points`` and bounded by ``ref``; points not better than ``ref`` in
    every objective contribute nothing."""
    arr = _points(points)
    r = _ref(ref, arr.shape[1] if arr.size else len(np.ravel(ref)))
    if arr.size == 0:
        return 0.0
    inside = arr[(arr < r).all(axis=1)]
    if len(inside) == 0:
        return 0.0
    return float(moocore.hypervolume(inside, ref=r))


_TRACE_BLOCK = 1024


def hypervolume_trace(points, *, ref: Sequence[float]) -> np.ndarray:
    """Hypervolume of the first k points for every k (one value per row, in row order).

    Rows are screened a block at a time: a row outside ``ref`` or weakly dominated by the front
    at the start of its block cannot change the front (a member that later leaves it does so for
    a row that dominates it in turn), so only the other rows are walked one by one."""
    arr = _points(points)
    r = _ref(ref, arr.shape[1] if arr.size else len(np.ravel(ref)))
    out = np.zeros(len(arr))
    front = np.empty((0, arr.shape[1] if arr.size else len(r)))
    hv = 0.0
    for start in range(0, len(arr), _TRACE_BLOCK):
        block = arr[start:start + _TRACE_BLOCK]
        live = (block < r).all(axis=1)
        if len(front):
            live &= ~(front[None, :, :] <= block[:, None, :]).all(axis=2).any(axis=1)
        at = start
        for i in np.flatnonzero(live):
            p = block[i]
            if not (front <= p).all(axis=1).any():
                out[at:start + i] = hv
                front = np.vstack([front[~(p <= front).all(axis=1)], p])
                hv = float(moocore.hypervolume(front, ref=r))
                at = start + i
        out[at:start + len(block)] = hv
    return out


def time_grid(t_min: float, t_max: float, n: int = 200) -> np.ndarray:
    """A logarithmic time grid from ``t_min`` to ``t_max`` (both > 0)."""
    if not (0 < t_min < t_max):
        raise ValueError(f"time grid: need 0 < t_min < t_max, got {t_min}, {t_max}")
    return np.geomspace(t_min, t_max, n)


def hv_over_time(
    results: pd.DataFrame, grid: np.ndarray, *, ref: Sequence[float], max_epoch: int | None = None
) -> np.ndarray:
    """Hypervolume of (val_error, log10_params) of the jobs finished by each grid time.

    With ``max_epoch=None`` every evaluated point counts whatever its epochs (the paper's
    bookkeeping); with ``max_epoch`` given, only jobs that reached it.
    """
    df = results if max_epoch is None else results[results["epoch"] >= max_epoch]
    df = df.sort_values(["end", "job_id"], kind="stable")
    trace = hypervolume_trace(df[["val_error", "log10_params"]].to_numpy(), ref=ref)
    idx = np.searchsorted(df["end"].to_numpy(), np.asarray(grid, dtype=float), side="right")
    return np.where(idx > 0, trace[np.maximum(idx - 1, 0)] if len(trace) else 0.0, 0.0)


def final_pareto(results: pd.DataFrame, *, max_epoch: int | None = None) -> pd.DataFrame:
    """The rows whose (val_error, log10_params) are non-dominated (optionally full-fidelity only)."""
    df = results if max_epoch is None else results[results["epoch"] >= max_epoch]
    if df.empty:
        return df
    return df[pareto_mask(df[["val_error", "log10_params"]].to_numpy())]


def test_hypervolume(results: pd.DataFrame, *, ref: Sequence[float], max_epoch: int | None = None) -> float:
    """Hypervolume of (test_error, log10_params) of the final validation Pareto set."""
    front = final_pareto(results, max_epoch=max_epoch)
    return hypervolume(front[["test_error", "log10_params"]].to_numpy(), ref=ref) if len(front) else 0.0


def ranks_over_time(hv: pd.DataFrame) -> pd.DataFrame:
    """Mean rank of each optimizer at each time point (1 = best, ties share the average rank).

    ``hv`` has columns optimizer, seed, time, hv (and optionally n_workers): optimizers are ranked
    against each other within every (seed, time[, n_workers]) and the ranks are averaged over seeds.
    """
    keys = [k for k in ("n_workers", "seed", "time") if k in hv.columns]
    ranked = hv.assign(rank=hv.groupby(keys)["hv"].rank(ascending=False, method="average"))
    group = [k for k in ("n_workers", "optimizer", "time") if k in hv.columns]
    return ranked.groupby(group, as_index=False)["rank"].mean()
