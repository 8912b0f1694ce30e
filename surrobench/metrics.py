"""Multi-objective metrics over (n, m) arrays of minimised objectives (hypervolume via moocore).

>>> hypervolume([[0.5, 4.0]], ref=[1.0, 8.0])
2.0
>>> pareto_mask([[0.5, 4.0], [0.6, 5.0], [0.4, 6.0]]).tolist()
[True, False, True]
"""

from __future__ import annotations

from dataclasses import dataclass
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
    "RankTest",
    "friedman",
    "nemenyi_critical_difference",
    "bonferroni_dunn_critical_difference",
    "rank_test",
    "seed_blocks",
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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"time grid: need an int n >= 2 (the grid ends at t_max), got {n!r}")
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


# ------------------------------------------------------------------ which differences the seeds show

# Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", JMLR 7: Friedman's
# test over blocks (here: seeds) and Nemenyi's critical difference for the mean ranks.


@dataclass(frozen=True)
class RankTest:
    """Which optimizers a comparison's seeds separate (:func:`rank_test`).

    ``mean_ranks`` maps each optimizer to its mean rank over the seeds (1 = best), best first.
    ``statistic`` and ``p_value`` are Friedman's test (ties corrected) that every optimizer ranks
    alike; ``critical_difference`` is Nemenyi's: two mean ranks further apart than it are separated
    at level ``alpha`` (two-sided, family-wise over all pairs). With a ``control`` it is
    Bonferroni-Dunn's, and only the pairs with the control are tested. Where Friedman's test does
    not reject, no pair is separated.
    """

    n_seeds: int
    mean_ranks: dict
    statistic: float
    p_value: float
    alpha: float
    critical_difference: float
    column: str = "hv"
    n_workers: int | None = None
    control: str | None = None

    @property
    def rejects(self) -> bool:
        """Whether Friedman's test rejects "every optimizer ranks alike" at ``alpha``."""
        return self.p_value < self.alpha

    def separated(self, a: str, b: str) -> bool:
        """Whether the seeds separate optimizers ``a`` and ``b`` (see the class). Against a
        ``control``, only pairs with the control are tested: any other pair is not separated."""
        for name in (a, b):
            if name not in self.mean_ranks:
                raise ValueError(f"optimizer: {name!r} is not in this test ({', '.join(self.mean_ranks)})")
        if self.control is not None and self.control not in (a, b):
            return False
        return self.rejects and abs(self.mean_ranks[a] - self.mean_ranks[b]) > self.critical_difference

    @property
    def groups(self) -> list[tuple[str, ...]]:
        """The critical-difference diagram's bars: the largest runs of optimizers, consecutive by mean
        rank, that the seeds do not separate (one run of all of them where Friedman's test does not
        reject). An optimizer separated from every other is a run of its own."""
        names = list(self.mean_ranks)
        if not self.rejects:
            return [tuple(names)]
        if self.control is not None:  # one bar: the optimizers within the critical difference of the control
            near = tuple(n for n in names if not self.separated(n, self.control))
            return [near] + [(n,) for n in names if n not in near]
        ranks = np.array([self.mean_ranks[n] for n in names])
        out: list[tuple[str, ...]] = []
        last_end = -1
        for i in range(len(names)):
            end = int(np.searchsorted(ranks, ranks[i] + self.critical_difference, side="right")) - 1
            if end > last_end:  # not inside the run before it
                out.append(tuple(names[i:end + 1]))
                last_end = end
        return out

    def ahead(self) -> dict[str, list[str]]:
        """For each optimizer, the optimizers it is separated from and ranks ahead of (mean rank
        lower by more than the critical difference), in rank order; only those ahead of some."""
        names = list(self.mean_ranks)
        out = {a: [b for b in names if self.mean_ranks[a] < self.mean_ranks[b] and self.separated(a, b)]
               for a in names}
        return {a: behind for a, behind in out.items() if behind}

    def describe(self) -> str:
        """What the seeds separate, in a few sentences."""
        what = "" if self.column == "hv" else f" ({self.column})"
        head = f"Friedman test over {self.n_seeds} seeds{what}: p = {self.p_value:.2g}"
        if not self.rejects:
            return (f"{head} >= {self.alpha:g}: these seeds separate none of the {len(self.mean_ranks)} "
                    f"optimizers.")
        if self.control is not None:
            c = self.control
            ahead = [n for n in self.mean_ranks if self.separated(n, c) and self.mean_ranks[c] < self.mean_ranks[n]]
            behind = [n for n in self.mean_ranks if self.separated(n, c) and self.mean_ranks[n] < self.mean_ranks[c]]
            alike = [n for n in self.mean_ranks if n != c and not self.separated(n, c)]
            parts = ([f"{c} ahead of {', '.join(ahead)}"] if ahead else []) + \
                    ([f"{c} behind {', '.join(behind)}"] if behind else [])
            return (f"{head}. Bonferroni-Dunn critical difference against {c} at alpha {self.alpha:g}: "
                    f"{self.critical_difference:.2f} mean ranks. Separated by these seeds: "
                    f"{'; '.join(parts) or 'none'}" + (f"; these seeds cannot tell {c} from {', '.join(alike)}."
                                                      if alike else "."))
        pairs = "; ".join(f"{a} ahead of {', '.join(behind)}" for a, behind in self.ahead().items())
        return (f"{head}. Nemenyi critical difference at alpha {self.alpha:g}: {self.critical_difference:.2f} "
                f"mean ranks. Separated by these seeds: {pairs or 'no pair'}; these seeds cannot tell the "
                f"other pairs apart.")


def nemenyi_critical_difference(k: int, n_seeds: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of mean ranks for ``k`` methods over ``n_seeds`` blocks:
    ``q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 n))``, ``q_alpha`` the studentized range's upper
    ``alpha`` quantile for ``k`` means and infinite degrees of freedom (Demšar 2006, Table 5a)."""
    from scipy.stats import studentized_range

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k: need at least 2 methods, got {k!r}")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
        raise ValueError(f"n_seeds: need at least 1, got {n_seeds!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha: must lie in (0, 1), got {alpha!r}")
    q = float(studentized_range.ppf(1.0 - float(alpha), int(k), np.inf))
    return q / np.sqrt(2.0) * float(np.sqrt(k * (k + 1) / (6.0 * n_seeds)))


def bonferroni_dunn_critical_difference(k: int, n_seeds: int, alpha: float = 0.05) -> float:
    """The critical difference of mean ranks for comparing one control with the other ``k - 1``
    methods over ``n_seeds`` blocks (Bonferroni-Dunn): ``z_(1 - alpha / (2 (k - 1))) * sqrt(k (k + 1) /
    (6 n))`` (Demšar 2006, Table 5b). Smaller than Nemenyi's, which tests all pairs."""
    from scipy.stats import norm

    nemenyi_critical_difference(k, n_seeds, alpha)  # the same checks of the input
    z = float(norm.ppf(1.0 - float(alpha) / (2.0 * (int(k) - 1))))
    return z * float(np.sqrt(k * (k + 1) / (6.0 * n_seeds)))


def friedman(values: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Friedman's test on a (blocks, methods) array, larger values better: (chi-square statistic,
    p-value, mean ranks with 1 = best). Tied values share their average rank, and the statistic is
    corrected for ties (it equals :func:`scipy.stats.friedmanchisquare`'s, which needs 3 methods or
    more; this also takes 2). Where every block ties every method, the statistic is 0 and p 1."""
    from scipy.stats import chi2, rankdata

    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise ValueError(f"values: need a (blocks, methods) array with 2 methods or more, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("values: must be finite")
    n, k = x.shape
    ranks = rankdata(-x, axis=1, method="average")
    sums = ranks.sum(axis=0)
    ties = 0.0
    for row in x:
        _, counts = np.unique(row, return_counts=True)
        ties += float(np.sum(counts**3 - counts))
    denominator = 1.0 - ties / (n * k * (k * k - 1))
    if denominator <= 0:
        return 0.0, 1.0, sums / n
    stat = (12.0 / (n * k * (k + 1)) * float(np.sum(sums**2)) - 3.0 * n * (k + 1)) / denominator
    stat = max(stat, 0.0)
    return stat, float(chi2.sf(stat, k - 1)), sums / n


def seed_blocks(final: pd.DataFrame, column: str = "hv") -> pd.DataFrame:
    """``column`` as a (seed, optimizer) table of the seeds every optimizer ran (one worker count)."""
    return final.pivot_table(index="seed", columns="optimizer", values=column, aggfunc="first").dropna()


def rank_test(final: pd.DataFrame, *, column: str = "hv", alpha: float = 0.05,
              n_workers: int | None = None, control: str | None = None) -> RankTest:
    """Which optimizers the seeds of a comparison separate: Friedman's test and Nemenyi's critical
    difference over the per-seed ranks of ``column`` (larger is better), as in Demšar (2006).

    ``final`` has one row per (optimizer, seed[, n_workers]) (:attr:`surrobench.compare.Results.final`).
    Every seed is a block: :func:`surrobench.compare.compare` gives run ``s`` of every optimizer the
    same optimizer and benchmark seeds, so the runs of one seed are paired. Seeds that some optimizer
    lacks are left out. With several worker counts, ``n_workers`` picks one.

    Nemenyi's test is conservative and depends on which optimizers are compared (Benavoli et al.,
    JMLR 2016): a pair it does not separate may still differ; read "not separated" as "these seeds
    cannot tell", not as "alike".

    ``control`` (an optimizer's name): test only that optimizer against each other one, with
    Bonferroni-Dunn's critical difference (:func:`bonferroni_dunn_critical_difference`), which is
    smaller: the question "is my method better than each baseline?".
    """
    for name in ("optimizer", "seed", column):
        if name not in final.columns:
            raise ValueError(f"final: no column {name!r}")
    df = final
    if "n_workers" in df.columns:
        counts = sorted(int(w) for w in df["n_workers"].unique())
        if n_workers is None:
            if len(counts) > 1:
                raise ValueError(f"n_workers: the results hold several worker counts ({counts}); pick one")
            n_workers = counts[0] if counts else None
        elif int(n_workers) not in counts:
            raise ValueError(f"n_workers: {n_workers} is not among the results' worker counts {counts}")
        if n_workers is not None:
            df = df[df["n_workers"] == n_workers]
    table = seed_blocks(df, column)
    if table.shape[1] < 2:
        raise ValueError(f"final: need 2 optimizers or more to rank, got {table.shape[1]}")
    if table.shape[0] < 2:
        raise ValueError(f"final: need 2 seeds or more that every optimizer ran, got {table.shape[0]}")
    if control is not None and control not in set(map(str, table.columns)):
        raise ValueError(f"control: {control!r} is not among the optimizers ({', '.join(map(str, table.columns))})")
    stat, p, mean = friedman(table.to_numpy())
    order = sorted(range(len(mean)), key=lambda i: (mean[i], str(table.columns[i])))
    k, n = table.shape[1], table.shape[0]
    cd = (nemenyi_critical_difference if control is None else bonferroni_dunn_critical_difference)(k, n, alpha)
    return RankTest(n_seeds=int(n), mean_ranks={str(table.columns[i]): float(mean[i]) for i in order},
                    statistic=float(stat), p_value=float(p), alpha=float(alpha), critical_difference=float(cd),
                    column=column, n_workers=None if n_workers is None else int(n_workers), control=control)
