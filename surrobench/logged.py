"""Benchmarks over the logged configs only: real replays or held-out surrogates, on one clock (issue 15).

:func:`logged_set` reads a logs directory into the configs that have complete logged runs and
the :class:`~surrobench.benchmark.TabularBenchmark` that replays them. :class:`SetBenchmark`
answers only those configs, each from a benchmark of its own choosing (the replay, or the
surrogate whose fold never saw it), with its seconds taken either from the answering
benchmark or from one ``clock`` benchmark for every side (so that two sides differ only in
their learning curves). :func:`fold_surrogates` fits one surrogate per fold of configs with the
project's own fitting and tuning (:func:`~surrobench.surrogate.fit_models`).
Optimizers reach these configs through :class:`~surrobench.snap.SnappedOptimizer`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .benchmark import SurrogateBenchmark, TabularBenchmark
from .records import Budget, Job, Problem, Task
from .space import MAX_EPOCH, config_id, validate
from .surrogate.data import RunData, load_run_data, pick_device
from .surrogate.noise import DEFAULT_NOISE_TIME

__all__ = ["LoggedSet", "logged_set", "SetBenchmark", "fold_runs", "half_runs", "check_fits", "fold_surrogates", "half_surrogates",
           "routed_surrogates", "full_cost"]


@dataclass
class LoggedSet:
    """The configs with complete logged runs (sorted by config id), their runs and their replay."""

    dataset: str
    logs: str
    configs: list[dict[str, Any]]
    ids: list[str]
    data: RunData
    tabular: TabularBenchmark
    device: str  # whose clock the runtime models learn

    def __len__(self) -> int:
        return len(self.ids)


def logged_set(logs: str | os.PathLike, dataset: str | None = None) -> LoggedSet:
    """The logged set of ``logs`` (a directory or file of training logs) for ``dataset``."""
    data = load_run_data(logs, dataset)
    tabular = TabularBenchmark(logs, data.dataset)
    by_id = {cid: cfg for cid, cfg in zip(data.config_ids.tolist(), data.configs)}
    ids = tabular.config_ids
    return LoggedSet(dataset=data.dataset, logs=str(logs), configs=[by_id[c] for c in ids], ids=ids, data=data,
                     tabular=tabular, device=pick_device(data))


class SetBenchmark:
    """Answers the configs of a set, each from its own benchmark; a config outside it is a ``ValueError``.

    ``answers`` is one benchmark for every config or ``{config_id: benchmark}``; each answers
    ``answer``, ``query`` and ``cost``, and all share one task (the first's). With ``clock`` (a
    benchmark), every job costs what ``clock.cost`` says (seed 0: no seed noise), whatever answered it.
    With ``seeds_from`` (a :class:`~surrobench.benchmark.TabularBenchmark` of the set), a job of seed
    ``s`` is answered with the logged seed of the run the replay gives (config, ``s``)
    (:meth:`~surrobench.benchmark.TabularBenchmark.replayed_seed`): repeated asks for a config draw
    exactly as often anew as the real side replays another logged run, instead of once per trial.
    ``seed_offset`` is added to every seed the answering benchmarks get: with a surrogate, another
    realization of the same draws (same rule of repeats, other outcomes).
    """

    def __init__(self, answers: Any, ids: Sequence[str], *, clock: Any = None, name: str = "set",
                 seeds_from: TabularBenchmark | None = None, seed_offset: int = 0):
        self._ids = frozenset(ids)
        if not self._ids:
            raise ValueError("ids: the set is empty")
        if isinstance(answers, Mapping):
            missing = sorted(self._ids - set(answers))
            if missing:
                raise ValueError(f"answers: no benchmark for {len(missing)} configs of the set, e.g. {missing[0]}")
            self._route, self._all = dict(answers), None
            first = next(iter(self._route.values()))
        else:
            self._route, self._all = None, answers
            first = answers
        if seeds_from is not None:
            unseen = sorted(self._ids - set(seeds_from.config_ids))
            if unseen:
                raise ValueError(f"seeds_from: {len(unseen)} of the set's configs were never logged there, e.g. {unseen[0]}")
        if isinstance(seed_offset, bool) or not isinstance(seed_offset, (int, np.integer)) or not 0 <= seed_offset < 2**63:
            raise ValueError(f"seed_offset: must be an int in [0, 2**63), got {seed_offset!r}")
        self.clock = clock
        self.seeds_from = seeds_from
        self.seed_offset = int(seed_offset)
        self.name = name
        self.task: Task = first.task
        self.dataset = self.task.dataset
        self.min_epoch, self.max_epoch = self.task.min_epoch, self.task.max_epoch
        self.reference_point = np.asarray(self.task.reference_point, dtype=float)

    def problem(self, n_workers: int = 1, budget: Budget | float | None = None) -> Problem:
        """A problem on the set's task (as :meth:`surrobench.benchmark.Benchmark.problem`)."""
        return Problem(self.task, n_workers=n_workers, budget=budget)

    def _bench(self, cid: str):
        if cid not in self._ids:
            raise ValueError(f"config: {cid} is not one of the {len(self._ids)} configs of {self.name}; snap it first")
        return self._route[cid] if self._route is not None else self._all

    def _seed(self, cid: str, seed: int) -> int:
        base = seed if self.seeds_from is None else self.seeds_from.replayed_seed(cid, seed)
        return (base + self.seed_offset) % 2**64

    def answer(self, job: Job, *, seed: int = 0):
        bench = self._bench(job.config_id)
        cost, res = bench.answer(job, seed=self._seed(job.config_id, seed))
        if self.clock is not None:
            cost = self.clock.cost(job.config, job.epoch, from_epoch=job.from_epoch, seed=0)
        return float(cost), res

    def query(self, config: Mapping[str, Any], epoch: int, *, seed: int = 0):
        cfg = validate(config)
        cid = config_id(cfg)
        return self._bench(cid).query(cfg, epoch, seed=self._seed(cid, seed))

    def cost(self, config: Mapping[str, Any], epoch: int, *, from_epoch: int = 0, seed: int = 0) -> float:
        cfg = validate(config)
        cid = config_id(cfg)
        bench = self._bench(cid)
        if self.clock is not None:
            return float(self.clock.cost(cfg, epoch, from_epoch=from_epoch, seed=0))
        return float(bench.cost(cfg, epoch, from_epoch=from_epoch, seed=self._seed(cid, seed)))

    def describe(self) -> dict[str, Any]:
        return {"backend": "set", "name": self.name, "n_configs": len(self._ids),
                "clock": None if self.clock is None else getattr(self.clock, "describe", dict)(),
                "seeds": "drawn per job" if self.seeds_from is None else "the logged seed the replay gives",
                "seed_offset": self.seed_offset}


def full_cost(bench: Any, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Seconds of a 25-epoch run from scratch of each config on ``bench``'s clock (seed 0)."""
    return np.array([float(bench.cost(c, MAX_EPOCH, seed=0)) for c in configs])


def fold_runs(logged: LoggedSet, folds: int, *, seed: int = 0) -> tuple[dict[str, int], list[np.ndarray]]:
    """``({config_id: fold}, [mask of the runs fold k's surrogate is fitted on: every other fold's]``),
    folds grouped by config."""
    from .surrogate.fit import group_folds

    ids = np.asarray(logged.ids)
    fold_of_id = dict(zip(logged.ids, group_folds(ids, folds, seed).tolist()))
    run_fold = np.array([fold_of_id.get(c, -1) for c in logged.data.config_ids.tolist()])
    return fold_of_id, [(run_fold != k) & (run_fold != -1) for k in range(folds)]


def half_runs(logged: LoggedSet, *, seed: int = 0) -> list[np.ndarray]:
    """Masks of the runs of two disjoint halves of the configs."""
    from .surrogate.fit import group_folds

    half = dict(zip(logged.ids, group_folds(np.asarray(logged.ids), 2, seed + 1).tolist()))
    run_half = np.array([half.get(c, -1) for c in logged.data.config_ids.tolist()])
    return [run_half == h for h in (0, 1)]


def check_fits(logged: LoggedSet, folds: int, *, seed: int = 0, oof: bool = True, halves: bool = True) -> None:
    """``ValueError`` naming the first surrogate of a study (in-sample, out-of-fold, half) whose runs
    could not fit the seed noise (:func:`~surrobench.surrogate.build.check_noise_data`), before any is fitted."""
    from .surrogate.build import check_noise_data

    subsets = [("the in-sample surrogate (every config)", np.ones(len(logged.data), dtype=bool))]
    if oof:
        subsets += [(f"the out-of-fold surrogate of fold {k + 1} of {folds} (the other folds' configs)", mask)
                    for k, mask in enumerate(fold_runs(logged, folds, seed=seed)[1])]
    if halves:
        subsets += [(f"the surrogate of half {'ab'[h]} of the configs", mask)
                    for h, mask in enumerate(half_runs(logged, seed=seed))]
    for what, mask in subsets:
        try:
            check_noise_data(logged.data.subset(mask))
        except ValueError as exc:
            raise ValueError(f"logs: {what} cannot be fitted: {exc}; log more configs with several seeds "
                             f"(surrobench collect --replicate-fraction) or leave out the sides that need it "
                             f"(--sides)") from None


def fold_surrogates(logged: LoggedSet, folds: int, *, seed: int = 0, grid: str = "default", noise_time: str = DEFAULT_NOISE_TIME,
                    noise_size: str = "shared", config_noise: str = "none"):
    """``({config_id: fold}, [surrogate of fold k fitted on every other fold])``, folds grouped by config."""
    from .surrogate import fit_models

    fold_of_id, masks = fold_runs(logged, folds, seed=seed)
    surrogates = [
        fit_models(logged.data.subset(mask), device=logged.device, seed=seed, grid=grid,
                   name=f"{logged.dataset}-fold{k}", noise_time=noise_time, noise_size=noise_size,
                   config_noise=config_noise)
        for k, mask in enumerate(masks)
    ]
    return fold_of_id, surrogates


def half_surrogates(logged: LoggedSet, *, seed: int = 0, grid: str = "default", noise_time: str = DEFAULT_NOISE_TIME,
                    noise_size: str = "shared", config_noise: str = "none"):
    """Two surrogates fitted on disjoint halves of the configs (the data-robustness check)."""
    from .surrogate import fit_models

    return [fit_models(logged.data.subset(mask), device=logged.device, seed=seed, grid=grid,
                       name=f"{logged.dataset}-half{'ab'[h]}", noise_time=noise_time, noise_size=noise_size,
                       config_noise=config_noise)
            for h, mask in enumerate(half_runs(logged, seed=seed))]


def routed_surrogates(fold_of_id: Mapping[str, int], surrogates: Sequence[Any]) -> dict[str, SurrogateBenchmark]:
    """``{config_id: SurrogateBenchmark of the fold that never saw it}`` (seeded draws)."""
    benches = [SurrogateBenchmark(s, noise=True) for s in surrogates]
    return {cid: benches[k] for cid, k in fold_of_id.items()}
