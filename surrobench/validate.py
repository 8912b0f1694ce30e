"""Does the surrogate rank optimizers the way real training does? (issue 15)

Every optimizer runs, with the same seeds, on several *sides* of one problem: the configs that
have complete logged runs, reached by nearest-config snapping (:mod:`surrobench.snap`):

* ``real``: the logged runs replayed (a replicated config answers with the run the trial's seed
  picks, cycling through its logged seeds), on one clock (the in-sample runtime model);
* ``oof``: surrogates that never saw the config they answer (grouped K-fold by config), same clock;
* ``insample``: the surrogate fitted on every config, same clock;

  both draw with the logged seed of the run the real side replays for the job (so a config
  logged once answers every repeated ask alike on every side, as the real side does);
* ``oof_redraw``: the out-of-fold surrogates again, every seed shifted by :data:`REDRAW_OFFSET`:
  another realization of the same draws. The real side is one realization too (mostly one logged
  run per config), so ``oof`` against ``oof_redraw`` is what a surrogate whose draws had exactly
  the distribution of real runs could reach against ``real``: the *draw ceiling*;
* ``real_times`` / ``oof_times``: the same answers with the logged seconds on the real side and
  each fold's own runtime model on the surrogate side;
* ``half_a`` / ``half_b``: surrogates fitted on disjoint halves of the configs, on the full space
  (not snapped): the data-robustness check.

Budgets are simulated seconds worth a share of the logged configs: ``fraction * n_configs``
25-epoch runs at the mean cost of the logged configs on the clock. Optimizers are ranked by
median hypervolume at the budget over the seeds (all evaluated points; ties by mean rank).
:func:`agreement` compares two sides: Kendall tau-b between their median hypervolumes, the share
of optimizer pairs both sides order the same way (with a bootstrap over seeds for each pair),
and the *ranking noise ceiling*: tau between rankings from disjoint halves of the seeds on the
first side (mean over random splits).

Every run on the logged set is also scored by the logs: ``hv_logged`` is the hypervolume of
its jobs with each answer replaced by the logged validation error of the answered config at
that epoch (the mean of its logged runs). On a surrogate side it splits the gap to the real
side in two: ``hv - hv_logged`` is optimism (the surrogate promised more than the configs a
method found deliver), ``hv_logged`` against the real side's ``hv`` is steering (did the
surrogate lead the method to configs as good as real training would have).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from ._paths import check_writable_dir
from .metrics import friedman, hv_over_time, hypervolume, nemenyi_critical_difference, rank_test, time_grid
from .simulator import Budget, run_seeds, simulate
from .snap import SnappedOptimizer, Snapper
from .surrogate.noise import DEFAULT_NOISE_TIME

__all__ = ["Side", "run_sides", "logged_errors", "agreement", "noise_ceiling", "seeds_for_ceiling", "cross_half_tau", "rankings", "compare_sides", "separations", "separation_shares", "pair_differences", "seed_spread", "validate",
           "write_validation", "headline", "budget_seconds", "ValidationResults", "COMPARISONS", "DEFAULT_BUDGETS",
           "SIDES", "DEFAULT_SIDES", "REDRAW_OFFSET"]

logger = logging.getLogger(__name__)

DEFAULT_BUDGETS = (0.02, 0.05, 0.10, 0.20)
"""Budgets as shares of the logged configs (evaluations worth 2, 5, 10 and 20 %)."""

COMPARISONS = (("real", "oof"), ("oof", "oof_redraw"), ("real", "insample"), ("real_times", "oof_times"),
               ("half_a", "half_b"))
"""(reference side, compared side) pairs that :func:`validate` reports."""


@dataclass
class Side:
    """A benchmark and, when the optimizers reach it through snapping, the set they snap to."""

    benchmark: Any
    snapper: Snapper | None = None


def run_cell(side: Side, cls, settings: Mapping[str, Any], seed: int, seconds: float) -> pd.DataFrame:
    """One simulated run: the result table plus the asked config id and snap distance of each job."""
    bench = side.benchmark
    problem = bench.problem(n_workers=1, budget=Budget(seconds=seconds))
    opt_seed, bench_seed = run_seeds(seed)
    optimizer = cls(problem, seed=opt_seed, **settings)
    if side.snapper is not None:
        optimizer = SnappedOptimizer(optimizer, side.snapper)
    table = simulate(bench, optimizer, problem, seed=bench_seed)
    if side.snapper is not None:
        by_job = dict(enumerate(optimizer.ledger))  # job ids count the jobs handed out, in order
        table["asked_config_id"] = [by_job[j][0] for j in table["job_id"]]
        table["snap_distance"] = [by_job[j][2] for j in table["job_id"]]
    else:
        table["asked_config_id"] = table["config_id"]
        table["snap_distance"] = 0.0
    return table


NOISELESS_SIDES = ("real", "real_times")
"""Sides answered by the logged runs: no surrogate's seed noise decides them (the ``real`` side's
clock is the in-sample surrogate's runtime model, which has no seed noise)."""

# The columns a stored cell must hold: a run's result table and what snapping asked (run_cell).
_CELL_COLUMNS = ("job_id", "trial", "worker", "start", "end", "config_id", "epoch", "from_epoch", "val_error",
                 "log10_params", "asked_config_id", "snap_distance")


def _cell_key(study: Mapping[str, Any], side: str, seconds: float, label: str, cls, settings, seed: int) -> str:
    """What decides one run of a study: the study's identity (logs, fits), the side, the budget's
    seconds, the optimizer (class, label, settings), the seed and the surrobench version. The
    sides answered by the logs (``real``, ``real_times``) draw no seed noise, so the noise's clock,
    size and config noise are not part of their key: studies that differ only in them share those runs."""
    from . import __version__

    if side in NOISELESS_SIDES:
        study = {k: v for k, v in study.items()
                 if k not in ("noise_time", "noise_size", "config_noise", "config_noise_form")}
    ident = {
        "surrobench": __version__, "study": dict(study), "side": side, "seconds": float(seconds), "label": label,
        "optimizer": f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}",
        "settings": settings, "seed": int(seed),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=repr).encode()).hexdigest()[:20]


def _cell_path(store: Path, side: str, budget: str, label: str, seed: int, key: str) -> Path:
    slug = "-".join("".join(c if c.isalnum() or c in "_" else "_" for c in part)[:40]
                    for part in (side, budget.replace("%", "pct"), label))
    return store / f"{slug}-seed{seed}-{key}.npz"


def _task(side_name, side, label, cls, settings, todo):
    """The runs ``todo`` = [(budget name, seconds, seed, path or None)] of one side and optimizer;
    each is stored at its path as soon as it is made, when it has one."""
    from .compare import _save_cell

    out = []
    for budget_name, seconds, seed, path in todo:
        table = run_cell(side, cls, settings, seed, seconds)
        if path is not None:
            _save_cell(path, table)
        out.append(((side_name, budget_name, label, seed), table))
    return out


def run_sides(
    sides: Mapping[str, Side],
    optimizers: Mapping[str, tuple[type, dict]],
    seeds: Sequence[int],
    budgets: Mapping[str, float],
    *,
    n_jobs: int = 1,
    n_grid: int = 60,
    on_task: Callable[[], None] | None = None,
    logged_errors: pd.Series | None = None,
    cells_dir: str | os.PathLike | None = None,
    study: Mapping[str, Any] | None = None,
    resume: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every optimizer x seed x budget on every side: ``(runs, final, hv)`` tidy tables.

    ``optimizers`` is what :func:`~surrobench.compare.resolve_optimizers` returns; ``budgets``
    maps a budget's name to simulated seconds. ``final`` has one row per run (hypervolume at the
    budget, jobs, distinct configs answered, mean snap distance, rank among the optimizers of
    its side, budget and seed); ``hv`` the hypervolume on a log time grid per run.

    With ``logged_errors`` (validation error indexed by ``(config_id, epoch)``, see
    :func:`logged_errors`), ``final`` also has ``hv_logged``: the hypervolume of the same jobs
    with each answer replaced by the logged one, i.e. what the points a run found on its side
    are worth on real runs (NaN on a side whose configs were not all logged). On a surrogate
    side, ``hv - hv_logged`` is the surrogate's optimism about what the method found, and
    ``hv_logged`` below the real side's ``hv`` means the surrogate steered it to worse configs.

    With ``cells_dir``, every run's table is stored there as soon as it is made (one ``.npz`` of
    plain arrays per run, written whole and renamed into place, as :func:`~surrobench.compare.compare`
    stores its cells), named by a key of ``study`` (a JSON-able description of what the sides'
    benchmarks were built from: :func:`validate` passes the logs' hash and dataset, the folds, the
    tuning grid, the seed and the XGBoost version), the side's name, the budget's seconds, the optimizer and the seed.
    ``resume=True`` reads the stored runs whose key matches instead of making them again, so an
    interrupted study goes on where it stopped. The key does not see code or benchmark objects:
    after changing either, do not resume. The tables are the same, in the same order, whichever
    runs were stored.
    """
    from joblib import Parallel, delayed

    from .compare import _load_cell

    seeds = [int(s) for s in seeds]
    if resume and cells_dir is None:
        raise ValueError("resume: needs cells_dir, the folder where the runs were stored")
    if cells_dir is not None and study is None:
        raise ValueError("cells_dir: needs study, the description of the sides that keys the stored runs")
    store = None
    if cells_dir is not None:
        store = check_writable_dir(cells_dir, "cells_dir")
        store.mkdir(parents=True, exist_ok=True)
    order = [(name, budget_name, label, seed) for name in sides for label in optimizers
             for budget_name in budgets for seed in seeds]  # the tables' order, stored or not
    tables: dict[tuple, pd.DataFrame] = {}
    tasks = []
    for name, side in sides.items():
        for label, (cls, settings) in optimizers.items():
            todo = []
            for budget_name, seconds in budgets.items():
                for seed in seeds:
                    path = None
                    if store is not None:
                        key = _cell_key(study, name, seconds, label, cls, settings, seed)
                        path = _cell_path(store, name, budget_name, label, seed, key)
                    stored = _load_cell(path, _CELL_COLUMNS) if resume and path.is_file() else None
                    if stored is not None:
                        tables[name, budget_name, label, seed] = stored
                    else:
                        todo.append((budget_name, float(seconds), seed, path))
            if todo:
                tasks.append((name, side, label, cls, settings, todo))
            elif on_task is not None:
                on_task()  # every run of this side and optimizer was stored
    calls = (delayed(_task)(*t) for t in tasks)
    for chunk in Parallel(n_jobs=n_jobs, return_as="generator")(calls):
        tables.update(chunk)
        if on_task is not None:
            on_task()
    runs, finals, hvs = [], [], []
    for side_name, budget_name, label, seed in order:
        table = tables[side_name, budget_name, label, seed]
        ref = np.asarray(sides[side_name].benchmark.reference_point, dtype=float)
        seconds = float(budgets[budget_name])
        grid = time_grid(seconds / 1e3, seconds, n_grid)
        curve = hv_over_time(table, grid, ref=ref)
        keys = {"side": side_name, "budget": budget_name, "optimizer": label, "seed": seed}
        runs.append(table.assign(**keys))
        hvs.append(pd.DataFrame({**keys, "time": grid, "hv": curve}))
        row = {**keys, "seconds": seconds, "hv": float(curve[-1]), "jobs": len(table),
               "configs": int(table["config_id"].nunique()),
               "mean_snap_distance": float(table["snap_distance"].mean()) if len(table) else 0.0}
        if logged_errors is not None:
            row["hv_logged"] = _hv_logged(table, logged_errors, ref)
        finals.append(row)
    final = pd.DataFrame(finals)
    final["rank"] = final.groupby(["side", "budget", "seed"])["hv"].rank(ascending=False, method="average")
    return pd.concat(runs, ignore_index=True), final, pd.concat(hvs, ignore_index=True)


def _settings_note(opts: Mapping[str, tuple]) -> dict:
    """The optimizers' settings for a study's metadata, where any has some (earlier studies' keys unchanged)."""
    settings = {label: dict(s) for label, (_, s) in opts.items() if s}
    return {"optimizer_settings": settings} if settings else {}


def logged_errors(config_ids: Sequence[str], val: np.ndarray) -> pd.Series:
    """Validation error by ``(config_id, epoch)``: the mean over a config's logged runs
    (``val`` holds one row per run, epochs 1..n)."""
    val = np.asarray(val, dtype=float)
    frame = pd.DataFrame(val, index=pd.Index(np.asarray(config_ids), name="config_id"),
                         columns=pd.RangeIndex(1, val.shape[1] + 1, name="epoch"))
    return frame.groupby(level=0).mean().stack()


def _hv_logged(table: pd.DataFrame, errors: pd.Series, ref: np.ndarray) -> float:
    if table.empty:
        return 0.0
    at = pd.MultiIndex.from_arrays([table["config_id"], table["epoch"].astype(int)])
    logged = errors.reindex(at).to_numpy(dtype=float)
    if np.isnan(logged).any():
        return float("nan")
    return hypervolume(np.column_stack([logged, table["log10_params"].to_numpy(dtype=float)]), ref=ref)


def rankings(final: pd.DataFrame) -> pd.DataFrame:
    """Per side, budget and optimizer: median hypervolume over the seeds, its quartiles, mean rank."""
    g = final.groupby(["side", "budget", "optimizer"])
    extra = {"hv_logged_median": ("hv_logged", "median")} if "hv_logged" in final else {}
    table = g.agg(hv_median=("hv", "median"), hv_q25=("hv", lambda s: s.quantile(0.25)),
                  hv_q75=("hv", lambda s: s.quantile(0.75)), **extra, mean_rank=("rank", "mean"),
                  configs=("configs", "median"), seeds=("seed", "nunique")).reset_index()
    return table.sort_values(["side", "budget", "hv_median"], ascending=[True, True, False], ignore_index=True)


def _matrix(final: pd.DataFrame, side: str, budget: str, labels: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
    sub = final[(final["side"] == side) & (final["budget"] == budget)]
    table = sub.pivot(index="optimizer", columns="seed", values="hv")
    return table.loc[list(labels), list(seeds)].to_numpy(dtype=float)


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def _half_splits(n: int, n_splits: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n_splits):
        perm = rng.permutation(n)
        yield perm[: n // 2], perm[n // 2: 2 * (n // 2)]


def noise_ceiling(hv: np.ndarray, *, n_splits: int = 200, seed: int = 0) -> float:
    """Mean Kendall tau between the median-hypervolume rankings of two disjoint random halves of
    the seeds (``hv``: optimizers x seeds); NaN with fewer than 2 seeds.

    >>> round(noise_ceiling(np.array([[1.0, 1.1, 1.2, 1.3], [2.0, 2.1, 2.2, 2.3], [3.0, 3.1, 3.2, 3.3]])), 3)
    1.0
    """
    return cross_half_tau(hv, hv, n_splits=n_splits, seed=seed)


def seeds_for_ceiling(ceiling: float, n_seeds: int, target: float = 0.8) -> float:
    """Seeds at which the ranking noise ceiling would reach ``target``: a Spearman-Brown estimate.

    The ceiling measured with halves of ``n_seeds // 2`` seeds is turned into a correlation
    (``r = sin(pi tau / 2)``, exact for normal scores), stepped up to the half size ``k`` times as
    large at which it reaches the target's correlation, and doubled (two halves). An estimate, as
    good as the assumption that more seeds only average noise away; NaN where the ceiling is not
    positive, ``n_seeds`` where it is already met.

    >>> seeds_for_ceiling(0.8, 24)
    24.0
    >>> seeds_for_ceiling(0.5, 24)
    194.0
    """
    if not np.isfinite(ceiling) or ceiling <= 0 or n_seeds < 2:
        return float("nan")
    if ceiling >= target:
        return float(n_seeds)
    r, r_t = np.sin(np.pi * ceiling / 2), np.sin(np.pi * target / 2)
    k = r_t * (1 - r) / (r * (1 - r_t))
    return float(2 * np.ceil(k * (n_seeds // 2)))


def cross_half_tau(reference: np.ndarray, compared: np.ndarray, *, n_splits: int = 200, seed: int = 0) -> float:
    """Mean Kendall tau between the ranking of ``reference`` on one random half of the seeds and that
    of ``compared`` on the other half (both optimizers x seeds, the same seeds): the number to read
    beside :func:`noise_ceiling`, which is this with ``compared = reference``."""
    n = reference.shape[1]
    if n < 2:
        return float("nan")
    taus = [_tau(np.median(reference[:, a], axis=1), np.median(compared[:, b], axis=1))
            for a, b in _half_splits(n, n_splits, seed)]
    return float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan")


def agreement(final: pd.DataFrame, reference: str, compared: str, *, n_boot: int = 1000,
              seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How far side ``compared`` ranks the optimizers as side ``reference`` does, per budget.

    Returns ``(summary, pairs)``. ``summary``: one row per budget with ``tau`` (Kendall tau-b
    between the two sides' median hypervolumes over all seeds), ``tau_halves`` (the same on disjoint
    halves of the seeds, :func:`cross_half_tau`), ``noise_ceiling`` (of the reference side, see
    :func:`noise_ceiling`: read ``tau_halves`` against it), ``pairwise_agreement`` (share of the
    ``pairs`` of optimizers ordered alike; ``identical_pairs``, two optimizers with the same runs
    on both sides, e.g. methods that start with the same random configs, are left out) and
    ``flipped`` (the pairs ordered differently). ``pairs``: per pair, each side's order, whether
    they agree and ``p_agree``, the share of bootstrap resamples of the seeds (the same seeds on
    both sides) in which they agree; ``p_reference`` the share in which the reference side keeps
    its own order.
    """
    rows, pair_rows = [], []
    both = final[final["side"].isin([reference, compared])]
    rng = np.random.default_rng(seed)
    for budget in sorted(both["budget"].unique(), key=lambda b: float(both.loc[both["budget"] == b, "seconds"].iloc[0])):
        ref_sub = both[(both["side"] == reference) & (both["budget"] == budget)]
        cmp_sub = both[(both["side"] == compared) & (both["budget"] == budget)]
        labels = sorted(set(ref_sub["optimizer"]) & set(cmp_sub["optimizer"]))
        seeds = sorted(set(ref_sub["seed"]) & set(cmp_sub["seed"]))
        if len(labels) < 2 or not seeds:
            continue
        h_ref = _matrix(final, reference, budget, labels, seeds)
        h_cmp = _matrix(final, compared, budget, labels, seeds)
        m_ref, m_cmp = np.median(h_ref, axis=1), np.median(h_cmp, axis=1)
        idx = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
        b_ref = np.median(h_ref[:, idx], axis=2)  # optimizers x resamples
        b_cmp = np.median(h_cmp[:, idx], axis=2)
        agree, flipped, twins = [], [], 0
        for i, j in itertools.combinations(range(len(labels)), 2):
            s_ref, s_cmp = np.sign(m_ref[i] - m_ref[j]), np.sign(m_cmp[i] - m_cmp[j])
            same = bool(s_ref == s_cmp)
            if np.array_equal(h_ref[i], h_ref[j]) and np.array_equal(h_cmp[i], h_cmp[j]):
                twins += 1  # the same runs on both sides (e.g. two methods that start with the same random configs)
                continue
            agree.append(same)
            if not same:
                flipped.append(f"{labels[i]}/{labels[j]}")
            bs_ref, bs_cmp = np.sign(b_ref[i] - b_ref[j]), np.sign(b_cmp[i] - b_cmp[j])
            pair_rows.append({
                "reference": reference, "compared": compared, "budget": budget, "a": labels[i], "b": labels[j],
                "reference_order": int(s_ref), "compared_order": int(s_cmp), "agree": same,
                "p_agree": float(np.mean(bs_ref == bs_cmp)), "p_reference": float(np.mean(bs_ref == s_ref)),
            })
        ceiling = noise_ceiling(h_ref, seed=seed)
        rows.append({
            "reference": reference, "compared": compared, "budget": budget,
            "seconds": float(ref_sub["seconds"].iloc[0]), "optimizers": len(labels), "seeds": len(seeds),
            "tau": _tau(m_ref, m_cmp), "tau_halves": cross_half_tau(h_ref, h_cmp, seed=seed),
            "noise_ceiling": ceiling,
            "seeds_for_ceiling_0.8": seeds_for_ceiling(ceiling, len(seeds)),
            "pairwise_agreement": float(np.mean(agree)) if agree else float("nan"), "pairs": len(agree),
            "identical_pairs": twins, "flipped": ", ".join(flipped),
        })
    return pd.DataFrame(rows), pd.DataFrame(pair_rows)


def _paired_blocks(final: pd.DataFrame, reference: str, compared: str):
    """Per budget (in budget order), the two sides' hypervolumes as (seed, optimizer) tables over the
    optimizers and seeds both sides ran; budgets with fewer than 2 of either are left out."""
    for name in ("side", "budget", "optimizer", "seed", "hv"):
        if name not in final.columns:
            raise ValueError(f"final: no column {name!r}")
    by_seconds = "seconds" in final.columns
    for budget in sorted(final["budget"].unique(), key=lambda b: float(final.loc[final["budget"] == b, "seconds"].iloc[0])
                         if by_seconds else str(b)):
        sub = final[final["budget"] == budget]
        ref, cmp_ = (sub[sub["side"] == side].pivot_table(index="seed", columns="optimizer", values="hv",
                                                           aggfunc="first") for side in (reference, compared))
        labels = sorted(set(ref.columns) & set(cmp_.columns))
        seeds = sorted(set(ref.index) & set(cmp_.index))
        if len(labels) < 2 or len(seeds) < 2:
            continue
        ref, cmp_ = ref.loc[seeds, labels], cmp_.loc[seeds, labels]
        if ref.isna().any().any() or cmp_.isna().any().any():
            raise ValueError(f"final: budget {budget}: the sides' complete seeds differ (a side lacks a run of "
                             f"{', '.join(labels)} for some of the seeds both ran)")
        yield budget, ref, cmp_


def separations(final: pd.DataFrame, reference: str = "real", compared: str = "oof", *,
                alpha: float = 0.05) -> pd.DataFrame:
    """Do the pairs one side separates hold on the other? Per budget, each side's
    :func:`surrobench.metrics.rank_test` (Friedman's test and Nemenyi's critical difference of the
    mean ranks over the seeds both sides ran, at ``alpha``) and how their separated pairs compare.

    One row per budget: ``seeds``, ``critical_difference``, ``reference_separated`` and
    ``compared_separated`` (how many pairs each side separates), ``same_way`` (pairs both separate in
    the same order), and three lists of pairs as ``a>b`` (``a`` ahead): ``reversed`` (both separate
    them, in opposite orders: a confident wrong answer), ``only_compared`` (separated on the
    compared side alone: a difference real runs do not show at these seeds) and ``only_reference``
    (one the compared side misses). Where a side's Friedman test does not reject, it separates none.
    """
    rows = []
    for budget, ref_t, cmp_t in _paired_blocks(final, reference, compared):
        labels = list(ref_t.columns)
        tests = [rank_test(t.stack().rename("hv").reset_index(), alpha=alpha) for t in (ref_t, cmp_t)]
        ref, cmp_ = tests
        same, reversed_, only_cmp, only_ref = 0, [], [], []
        for a, b in itertools.combinations(labels, 2):
            s_ref, s_cmp = ref.separated(a, b), cmp_.separated(a, b)
            r_first = ref.mean_ranks[a] < ref.mean_ranks[b]
            c_first = cmp_.mean_ranks[a] < cmp_.mean_ranks[b]
            if s_ref and s_cmp:
                if r_first == c_first:
                    same += 1
                else:
                    reversed_.append(f"{a}>{b}" if c_first else f"{b}>{a}")
            elif s_cmp:
                only_cmp.append(f"{a}>{b}" if c_first else f"{b}>{a}")
            elif s_ref:
                only_ref.append(f"{a}>{b}" if r_first else f"{b}>{a}")
        rows.append({
            "reference": reference, "compared": compared, "budget": budget, "optimizers": len(labels),
            "seeds": ref.n_seeds, "critical_difference": ref.critical_difference,
            "reference_separated": sum(ref.separated(a, b) for a, b in itertools.combinations(labels, 2)),
            "compared_separated": sum(cmp_.separated(a, b) for a, b in itertools.combinations(labels, 2)),
            "same_way": same, "reversed": ", ".join(reversed_), "only_compared": ", ".join(only_cmp),
            "only_reference": ", ".join(only_ref),
        })
    return pd.DataFrame(rows)


def separation_shares(final: pd.DataFrame, reference: str = "real", compared: str = "oof", *,
                      alpha: float = 0.05, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """How firmly each side separates each pair: the share of bootstrap resamples of the seeds (the
    same resampled seeds on both sides) in which the side's Friedman test rejects and the pair's mean
    ranks lie more than Nemenyi's critical difference apart, per budget and ordered pair.

    One row per budget and ordered pair ``a``/``b`` (both orders of every pair):
    ``reference_share`` and ``compared_share``, the shares of resamples in which each side separates
    them with ``a`` ahead. A pair :func:`separations` lists as separated on one side alone, with
    shares far apart, is a difference of the sides, not the luck of the seeds drawn.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot: must be an int >= 1, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for budget, ref_t, cmp_t in _paired_blocks(final, reference, compared):
        labels, seeds = list(ref_t.columns), list(ref_t.index)
        x_ref, x_cmp = ref_t.to_numpy(float), cmp_t.to_numpy(float)
        cd = nemenyi_critical_difference(len(labels), len(seeds), alpha)
        counts = {side: np.zeros((len(labels), len(labels))) for side in ("ref", "cmp")}
        for _ in range(int(n_boot)):
            idx = rng.integers(0, len(seeds), size=len(seeds))
            for side, x in (("ref", x_ref), ("cmp", x_cmp)):
                _, p, mean = friedman(x[idx])
                if p < alpha:
                    counts[side] += (mean[None, :] - mean[:, None]) > cd  # [i, j]: i ahead of j
        for a, b in itertools.permutations(range(len(labels)), 2):
            rows.append({"reference": reference, "compared": compared, "budget": budget,
                         "a": labels[a], "b": labels[b], "reference_share": counts["ref"][a, b] / n_boot,
                         "compared_share": counts["cmp"][a, b] / n_boot})
    return pd.DataFrame(rows, columns=["reference", "compared", "budget", "a", "b", "reference_share",
                                       "compared_share"])


def pair_differences(final: pd.DataFrame, reference: str = "real", compared: str = "oof") -> pd.DataFrame:
    """Why a side separates a pair: the per-seed difference of hypervolume between the two
    methods on each side, over the seeds both sides ran (the blocks of :func:`separations`).

    One row per budget and ordered pair ``a``/``b``: ``reference_mean`` and ``reference_sd``, the
    mean and standard deviation over the seeds of ``hv[a] - hv[b]`` on the reference side, and the
    same on the compared side. A pair the compared side alone separates with about the reference's
    mean difference but a smaller sd is separated because its runs vary less from seed to seed; one
    with a larger mean, because the surrogate moves one method's level against the other's.
    """
    rows = []
    for budget, ref_t, cmp_t in _paired_blocks(final, reference, compared):
        labels = list(ref_t.columns)
        x = {side: t.to_numpy(float) for side, t in (("reference", ref_t), ("compared", cmp_t))}
        for a, b in itertools.permutations(range(len(labels)), 2):
            row = {"reference": reference, "compared": compared, "budget": budget, "a": labels[a], "b": labels[b]}
            for side, values in x.items():
                d = values[:, a] - values[:, b]
                row[f"{side}_mean"], row[f"{side}_sd"] = float(d.mean()), float(d.std(ddof=1))
            rows.append(row)
    return pd.DataFrame(rows, columns=["reference", "compared", "budget", "a", "b", "reference_mean", "reference_sd",
                                       "compared_mean", "compared_sd"])


def seed_spread(final: pd.DataFrame, reference: str = "real", compared: str = "oof") -> pd.DataFrame:
    """How much each method's hypervolume varies from seed to seed on each side: per budget and
    optimizer, the standard deviation over the seeds both sides ran (``reference_sd``,
    ``compared_sd``) and their ``ratio`` (compared over reference). A ratio below 1 is a side whose
    runs vary less than real ones, which lets it separate pairs the real runs cannot."""
    rows = []
    for budget, ref_t, cmp_t in _paired_blocks(final, reference, compared):
        ref_sd, cmp_sd = ref_t.std(ddof=1), cmp_t.std(ddof=1)
        for label in ref_t.columns:
            r, c = float(ref_sd[label]), float(cmp_sd[label])
            rows.append({"reference": reference, "compared": compared, "budget": budget, "optimizer": label,
                         "reference_sd": r, "compared_sd": c, "ratio": c / r if r > 0 else math.nan})
    return pd.DataFrame(rows, columns=["reference", "compared", "budget", "optimizer", "reference_sd", "compared_sd",
                                       "ratio"])


@dataclass
class ValidationResults:
    """Tidy tables of a validation study and its metadata."""

    runs: pd.DataFrame
    final: pd.DataFrame
    hv: pd.DataFrame
    ranking: pd.DataFrame
    summary: pd.DataFrame
    pairs: pd.DataFrame
    metadata: dict = field(default_factory=dict)

    TABLES = ("runs", "final", "hv", "ranking", "summary", "pairs")


def compare_sides(final: pd.DataFrame, comparisons: Iterable[tuple[str, str]], *, n_boot: int = 1000,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`agreement` for every (reference, compared) pair whose two sides were run."""
    present = set(final["side"])
    out = [agreement(final, a, b, n_boot=n_boot, seed=seed) for a, b in comparisons if a in present and b in present]
    if not out:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat([o[0] for o in out], ignore_index=True), pd.concat([o[1] for o in out], ignore_index=True)


SIDES = ("real", "oof", "oof_redraw", "insample", "real_times", "oof_times", "half_a", "half_b")
"""Every side :func:`validate` knows."""

DEFAULT_SIDES = ("real", "oof", "insample", "real_times", "oof_times", "half_a", "half_b")
"""The sides a study runs unless told otherwise (``oof_redraw`` is asked for by name)."""

REDRAW_OFFSET = 2**40
"""Added to every seed on the ``oof_redraw`` side (far from any logged seed)."""
"""Every side :func:`validate` can run (see the module docstring)."""

MIN_CONFIGS_PER_FOLD = 2


def budget_seconds(fractions: Sequence[float], n_configs: int, mean_cost: float) -> dict[str, float]:
    """``{"10%": seconds}``: ``fraction * n_configs`` 25-epoch runs at ``mean_cost`` seconds each."""
    out = {}
    for f in fractions:
        if not 0 < float(f) <= 1:
            raise ValueError(f"budget: a share of the logged configs in (0, 1], got {f!r}")
        out[f"{100 * float(f):g}%"] = float(f) * n_configs * mean_cost
    return out


def validate(
    logs=None,
    *,
    dataset: str | None = None,
    optimizers=None,
    seeds: Iterable[int] = range(20),
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    folds: int = 5,
    grid: str = "default",
    noise_time: str = DEFAULT_NOISE_TIME,
    noise_size: str = "shared",
    config_noise: str = "none",
    sides: Sequence[str] = DEFAULT_SIDES,
    n_jobs: int = 1,
    seed: int = 0,
    n_boot: int = 1000,
    on_stage: Callable[[str], None] | None = None,
    on_task: Callable[[], None] | None = None,
    cells_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> ValidationResults:
    """The whole study from a logs directory (default ``training_logs/flowers17``); see the module docstring.

    ``folds`` (>= 5) is K of the grouped K-fold; ``grid`` the tuning grid of every fitted surrogate
    (:data:`~surrobench.surrogate.GRIDS`); ``noise_time`` the process of their seed noise (``"auto"``,
    the default: the shipped surrogates' ``"bank"`` where the logs' reruns can measure it, else ``"epoch"``;
    ``"bank"``, ``"epoch"``, ``"log-epoch"``, ``"log-epoch-early"`` or ``"empirical"``) and ``noise_size`` how its size varies
    between configs (``"shared"``, ``"by-error"`` or ``"by-level"``; see :mod:`surrobench.surrogate.noise`);
    ``config_noise`` whether their draws add an offset per config for what the models leave unexplained
    (``"none"`` or ``"unexplained"``); ``seed`` the
    seed of the folds, the fits and the bootstrap.
    ``cells_dir`` stores every run as it is made and ``resume`` reuses the stored ones (see
    :func:`run_sides`; they are keyed by the logs' content hash, the dataset, the folds, the grid,
    the seed and the XGBoost version). The surrogates are fitted again on a resume (they are
    deterministic), so an interrupted study saves its runs, not its fits.
    Everything that can be refused is refused before anything is fitted or run.
    """
    from .compare import as_seeds, blas_kernels, check_settings, resolve_optimizers
    from .logged import SetBenchmark, check_fits, fold_surrogates, full_cost, half_surrogates, logged_set, routed_surrogates
    from .surrogate import GRIDS, fit_models
    from .surrogate.noise import CONFIG_FORM, check_config_noise, check_noise

    stage = on_stage or (lambda text: logger.info("%s", text))
    opts = resolve_optimizers(optimizers)
    seeds = as_seeds(seeds)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 5:
        raise ValueError(f"folds: grouped K-fold needs K >= 5, got {folds!r}")
    if grid not in GRIDS:
        raise ValueError(f"grid: unknown grid {grid!r} (known: {', '.join(GRIDS)})")
    check_noise(noise_time, noise_size)
    check_config_noise(config_noise)
    unknown = [s for s in sides if s not in SIDES]
    if unknown or not sides:
        raise ValueError(f"sides: unknown {', '.join(unknown) or 'none given'} (known: {', '.join(SIDES)})")
    budgets = list(budgets)
    budget_seconds(budgets, 1, 1.0)  # checks the shares
    if resume and cells_dir is None:
        raise ValueError("resume: needs cells_dir, the folder where the runs were stored")
    if cells_dir is not None:
        check_writable_dir(cells_dir, "cells_dir")
    logs = "training_logs/flowers17" if logs is None else logs
    logged = logged_set(logs, dataset)
    if len(logged) < MIN_CONFIGS_PER_FOLD * folds:
        raise ValueError(f"logs: {len(logged)} configs with complete runs in {logs} are too few for {folds} folds "
                         f"(at least {MIN_CONFIGS_PER_FOLD * folds}: {MIN_CONFIGS_PER_FOLD} per fold)")
    check_fits(logged, folds, seed=seed, oof=bool({"oof", "oof_times", "oof_redraw"} & set(sides)),
               halves=bool({"half_a", "half_b"} & set(sides)))
    from .records import Problem

    check_settings(opts, Problem(logged.tabular.task, budget=Budget(seconds=24 * 3600.0)))  # before any fit

    from .benchmark import SurrogateBenchmark

    stage(f"fitting the in-sample surrogate on {len(logged)} configs ({grid} grid)")
    clock = SurrogateBenchmark(fit_models(logged.data, device=logged.device, seed=seed, grid=grid,
                                          noise_time=noise_time, noise_size=noise_size, config_noise=config_noise),
                               noise=False)
    mean_cost = float(full_cost(clock, logged.configs).mean())
    snapper = Snapper(logged.configs)
    built: dict[str, Side] = {}
    if {"real", "insample", "real_times"} & set(sides):
        built["real"] = Side(SetBenchmark(logged.tabular, logged.ids, clock=clock, name="real"), snapper)
        built["real_times"] = Side(SetBenchmark(logged.tabular, logged.ids, name="real_times"), snapper)
        built["insample"] = Side(SetBenchmark(SurrogateBenchmark(clock.surrogate, noise=True), logged.ids, clock=clock,
                                              name="insample", seeds_from=logged.tabular), snapper)
    if {"oof", "oof_times", "oof_redraw"} & set(sides):
        stage(f"fitting {folds} out-of-fold surrogates")
        routes = routed_surrogates(*fold_surrogates(logged, folds, seed=seed, grid=grid, noise_time=noise_time,
                                                    noise_size=noise_size, config_noise=config_noise))
        built["oof"] = Side(SetBenchmark(routes, logged.ids, clock=clock, name="oof", seeds_from=logged.tabular),
                            snapper)
        built["oof_times"] = Side(SetBenchmark(routes, logged.ids, name="oof_times", seeds_from=logged.tabular),
                                  snapper)
        built["oof_redraw"] = Side(SetBenchmark(routes, logged.ids, clock=clock, name="oof_redraw",
                                                seeds_from=logged.tabular, seed_offset=REDRAW_OFFSET), snapper)
    if {"half_a", "half_b"} & set(sides):
        stage("fitting two surrogates on disjoint halves of the configs")
        for name, s in zip(("half_a", "half_b"), half_surrogates(logged, seed=seed, grid=grid, noise_time=noise_time,
                                                                 noise_size=noise_size, config_noise=config_noise)):
            built[name] = Side(SurrogateBenchmark(s, noise=True))
    run = {name: built[name] for name in sides}
    seconds = budget_seconds(budgets, len(logged), mean_cost)
    stage(f"running {len(opts)} optimizers x {len(seeds)} seeds x {len(seconds)} budgets on {len(run)} sides")
    errors = logged_errors(logged.data.config_ids, logged.data.val)
    import xgboost

    study = {"training_data": logged.data.data_hash, "dataset": logged.dataset, "n_configs": len(logged),
             "folds": folds, "grid": grid, "seed": seed, "xgboost": xgboost.__version__}
    clock_note = {} if noise_time == "epoch" else {"noise_time": noise_time}  # keys of earlier studies unchanged
    if noise_size != "shared":
        clock_note["noise_size"] = noise_size
    if config_noise != "none":  # the form too: the runs of another form are not this one's
        clock_note["config_noise"] = config_noise
        clock_note["config_noise_form"] = CONFIG_FORM
    study.update(clock_note)
    runs, final, hv = run_sides(run, opts, seeds, seconds, n_jobs=n_jobs, on_task=on_task, logged_errors=errors,
                                cells_dir=cells_dir, study=study, resume=resume)
    summary, pairs = compare_sides(final, COMPARISONS, n_boot=n_boot, seed=seed)
    metadata = {
        "logs": str(logs), "dataset": logged.dataset, "n_configs": len(logged), "n_runs": int(len(logged.data)),
        "training_data": logged.data.data_hash, "clock_device": logged.device, "mean_full_cost": mean_cost,
        "budgets": {k: {"share": f, "seconds": v} for f, (k, v) in zip(budgets, seconds.items())},
        "optimizers": list(opts), **_settings_note(opts), "seeds": seeds, "folds": folds, "grid": grid, "seed": seed,
        "sides": list(run),
        "comparisons": [list(c) for c in COMPARISONS], "n_boot": n_boot, "blas": blas_kernels(), **clock_note,
    }
    return ValidationResults(runs=runs, final=final, hv=hv, ranking=rankings(final), summary=summary, pairs=pairs,
                             metadata=metadata)


def write_validation(results: ValidationResults, directory, *, plots: bool = True, n_jobs: int = 1) -> list:
    """Write the tables (CSV) and ``metadata.json`` into ``directory``, and the side-by-side plots.

    A large table (``runs`` of a long study holds millions of job rows) is formatted in row blocks by
    ``n_jobs`` processes, the same bytes as with one (see :func:`surrobench.compare.write_results`)."""
    import json
    import os
    from pathlib import Path

    from ._paths import check_writable_dir
    from .compare import _write_csv

    d = check_writable_dir(directory, "out")
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ValidationResults.TABLES:
        tmp = d / f".{name}.csv.tmp"
        _write_csv(getattr(results, name), tmp, n_jobs)
        os.replace(tmp, d / f"{name}.csv")
        written.append(d / f"{name}.csv")
    tmp = d / ".metadata.json.tmp"
    tmp.write_text(json.dumps(results.metadata, indent=2, default=str) + "\n")
    os.replace(tmp, d / "metadata.json")
    written.append(d / "metadata.json")
    if plots:
        from .plots import plot_hv_side_by_side

        for budget in results.final.drop_duplicates("budget").sort_values("seconds")["budget"]:
            for a, b in COMPARISONS:
                sub = results.hv[(results.hv["budget"] == budget) & results.hv["side"].isin([a, b])]
                if set(sub["side"]) == {a, b}:
                    path = d / f"hv_{a}_vs_{b}_{budget.rstrip('%')}pct.png"
                    written.append(plot_hv_side_by_side(sub, path, panels=[a, b],
                                                        title=f"budget {budget} of the logged configs"))
    return [Path(p) for p in written]


def _more_seeds(row) -> str:
    need = row.get("seeds_for_ceiling_0.8", float("nan"))
    if not np.isfinite(need) or need <= row["seeds"]:
        return ""
    return f"; a noise ceiling of 0.8 needs about {int(need)} seeds"


def headline(results: ValidationResults) -> str:
    """The lines ``surrobench validate`` prints: per comparison and budget, tau beside the noise ceiling."""
    lines = []
    names = {"oof": "out-of-fold surrogate", "oof_redraw": "the same surrogate, other draws: the draw ceiling",
             "insample": "in-sample surrogate",
             "oof_times": "out-of-fold surrogate, own runtimes", "half_b": "surrogate fitted on the other half"}
    for _, r in results.summary.iterrows():
        lines.append(
            f"{r['reference']} vs {r['compared']} ({names.get(r['compared'], r['compared'])}), budget {r['budget']}: "
            f"tau {r['tau']:.2f} (on half the seeds {r['tau_halves']:.2f} vs ranking noise ceiling "
            f"{r['noise_ceiling']:.2f}), pairwise agreement {r['pairwise_agreement']:.2f} of {r['pairs']} pairs "
            f"({r['seeds']} seeds{_more_seeds(r)})"
            + (f"; flipped: {r['flipped']}" if r["flipped"] else "")
        )
    return "\n".join(lines)
