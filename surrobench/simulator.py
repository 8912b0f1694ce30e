"""A discrete-event simulation of optimizers running on n workers against a benchmark (docs/problem.md §6).

Whenever a worker is free the optimizer is asked for a job; the clock jumps to the next
completion; ties are broken by a sequence counter, so a run is a pure function of its seeds
when the overhead model is ``"none"``. The optimizer's own decision time is charged by an
:class:`Overhead` model: it works as a single thread, so a decision starts once both the
optimizer and the simulated time are there, and the job it produced starts when it ends.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from ._numbers import as_int, is_int
from .records import Job, Observation, Optimizer
from .space import NAMES

__all__ = ["Overhead", "Budget", "as_budget", "as_overhead", "simulate", "trial_seed", "RESULT_COLUMNS",
           "MAX_WORKERS", "MAX_BUDGET_SECONDS", "MAX_EVALUATIONS"]

# Ceilings: a run past them would not end in useful time or memory (documented in the README).
MAX_WORKERS = 1024
MAX_BUDGET_SECONDS = 30 * 24 * 3600.0
MAX_EVALUATIONS = 100_000


@dataclass(frozen=True)
class Overhead:
    """How the optimizer's decision time is charged: ``none`` (default, reproducible byte for
    byte), ``measured`` (the real seconds of each ask and tell, scaled by ``scale``) or ``fixed``
    (``seconds`` per ask and per tell)."""

    model: str = "none"
    seconds: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        if self.model not in ("none", "measured", "fixed"):
            raise ValueError(f"overhead: model must be none, measured or fixed, got {self.model!r}")
        if not (math.isfinite(self.seconds) and 0 <= self.seconds <= MAX_BUDGET_SECONDS):
            raise ValueError(f"overhead: seconds must lie in 0..{MAX_BUDGET_SECONDS:g}, got {self.seconds!r}")
        if self.model == "fixed" and self.seconds == 0:
            raise ValueError("overhead: the fixed model needs seconds > 0")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"overhead: scale must be positive, got {self.scale!r}")

    def charge(self, real_seconds: float) -> float:
        if self.model == "none":
            return 0.0
        if self.model == "fixed":
            return self.seconds
        return real_seconds * self.scale


@dataclass(frozen=True)
class Budget:
    """Simulated seconds (``seconds``) and/or a number of jobs (``evaluations``); at least one.

    With a time budget, only jobs that finish within it count (and are told); no job starts
    after it. With an evaluation budget, exactly that many jobs are started and all finish.
    """

    seconds: float | None = None
    evaluations: int | None = None

    def __post_init__(self):
        if self.seconds is None and self.evaluations is None:
            raise ValueError("budget: give seconds, evaluations or both")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"budget: seconds must be positive and finite, got {self.seconds!r}")
        if self.seconds is not None and self.seconds > MAX_BUDGET_SECONDS:
            raise ValueError(f"budget: seconds must be at most {MAX_BUDGET_SECONDS:g} (30 simulated days), got {self.seconds!r}")
        if self.evaluations is not None:
            if not is_int(self.evaluations) or not 1 <= self.evaluations <= MAX_EVALUATIONS:
                raise ValueError(f"budget: evaluations must be an int in 1..{MAX_EVALUATIONS}, got {self.evaluations!r}")
            object.__setattr__(self, "evaluations", int(self.evaluations))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def as_overhead(overhead: Overhead | str | float) -> Overhead:
    """``overhead`` itself, a model name (``none``, ``measured``) or fixed seconds per decision."""
    if isinstance(overhead, Overhead):
        return overhead
    if isinstance(overhead, str):
        return Overhead(overhead)
    if _is_number(overhead):
        return Overhead("fixed", seconds=float(overhead))
    raise ValueError(f"overhead: expected an Overhead, none, measured or seconds per decision, got {overhead!r}")


def as_budget(budget: Budget | float) -> Budget:
    """``budget`` itself, or a plain number of simulated seconds as a :class:`Budget`."""
    if isinstance(budget, Budget):
        return budget
    if _is_number(budget):
        return Budget(seconds=float(budget))
    raise ValueError(f"budget: expected a Budget or simulated seconds, got {budget!r}")


RESULT_COLUMNS = [
    "job_id", "trial", "worker", "start", "end", "decided", "config_id", "epoch", "from_epoch", "parent", "tag",
    "val_error", "test_error", "log10_params", "cost", "overhead",
] + [f"config_{n}" for n in NAMES]


def trial_seed(run_seed: int, trial: int) -> int:
    """The benchmark seed of a trial: independent streams from ``SeedSequence([run_seed, trial])``."""
    return int(np.random.SeedSequence([int(run_seed), int(trial)]).generate_state(1)[0] & 0x7FFFFFFF)


def simulate(
    benchmark: Any,
    optimizer: Optimizer,
    budget: Budget | float,
    *,
    n_workers: int = 1,
    seed: int = 0,
    overhead: Overhead | str | float = "none",
    on_observation: Callable[[Observation], None] | None = None,
) -> pd.DataFrame:
    """Run ``optimizer`` against ``benchmark`` and return one row per finished job.

    ``benchmark`` answers ``query(config, epoch, seed=)`` (a result with ``val_error``,
    ``test_error``, ``log10_params``) and ``cost(config, epoch, from_epoch=, seed=)``; if it
    also answers ``answer(job, seed=)`` or ``job(config, epoch, from_epoch=, seed=)`` (both at
    once, as every :class:`~surrobench.benchmark.Benchmark` does), that one call is made when
    the job starts. If the optimizer has ``upcoming()`` and the benchmark ``prefetch(jobs,
    seeds)``, the announced new trials are prefetched in one call (a speed hint only).
    ``budget`` is a :class:`Budget` or a number of simulated seconds.
    ``seed`` fixes the benchmark seeds of the trials (one per training run, kept when a job
    continues a trial). Raises ``RuntimeError`` if the optimizer answers "nothing to run" while
    no job is running (a deadlock), and ``ValueError`` for an invalid job.
    """
    n_workers = as_int(n_workers, "n_workers", low=1, high=MAX_WORKERS)
    budget = as_budget(budget)
    overhead = as_overhead(overhead)
    clock = time.perf_counter
    horizon = math.inf if budget.seconds is None else float(budget.seconds)
    max_jobs = math.inf if budget.evaluations is None else budget.evaluations

    free = list(range(n_workers))  # a heap: the lowest free worker id is used first
    running: list[tuple[float, int, int, Job, int, float, float, float, Any]] = []
    answer = getattr(benchmark, "answer", None)
    if answer is None and getattr(benchmark, "job", None) is not None:
        both = benchmark.job

        def answer(job: Job, *, seed: int):
            return both(job.config, job.epoch, from_epoch=job.from_epoch, seed=seed)

    # Look-ahead: an optimizer that knows its next jobs (``upcoming()``) lets a benchmark that
    # answers batches faster (``prefetch``) predict them at once. New trials get consecutive ids,
    # so their seeds are known ahead; a wrong guess only costs time, never changes an answer.
    # After the first hint that did not come true, no more are asked for.
    upcoming = getattr(optimizer, "upcoming", None)
    prefetch = getattr(benchmark, "prefetch", None)
    hinted: dict[int, str] = {}  # trial -> config id the hint announced for it
    hints_on = upcoming is not None and prefetch is not None
    seeds: dict[int, int] = {}  # trial -> its benchmark seed
    trial_epochs: dict[int, int] = {}  # trial -> epochs reached by its finished jobs
    trial_busy: set[int] = set()
    trial_config: dict[int, str] = {}
    rows: list[dict] = []
    now = 0.0
    opt_free = 0.0  # when the optimizer finishes its current decision
    started = 0
    next_trial = 0

    def decide(fn, *args):
        nonlocal opt_free
        t0 = clock() if overhead.model == "measured" else 0.0
        out = fn(*args)
        spent = overhead.charge(clock() - t0 if overhead.model == "measured" else 0.0)
        opt_free = max(opt_free, now) + spent
        return out, spent

    while True:
        # Fill free workers while the optimizer has something to run.
        while free and started < max_jobs:
            if max(now, opt_free) >= horizon:
                break
            job, spent = decide(optimizer.ask)
            if job is None:
                break
            if not isinstance(job, Job):
                raise ValueError(f"optimizer.ask must return a Job or None, got {type(job).__name__}")
            start = max(now, opt_free)
            if start >= horizon:
                break
            if job.trial is None:
                if job.parent is not None:
                    if job.parent not in trial_config:
                        raise ValueError(f"job starts from the checkpoint of trial {job.parent}, which was never started")
                    if trial_epochs.get(job.parent, 0) < job.from_epoch:
                        raise ValueError(
                            f"job starts from trial {job.parent} at epoch {job.from_epoch}, "
                            f"but it has only reached epoch {trial_epochs.get(job.parent, 0)}"
                        )
                trial = next_trial
                next_trial += 1
                trial_config[trial] = job.config_id
                if hints_on:
                    announced = hinted.pop(trial, None)
                    if announced is None and job.parent is None:
                        ahead = [job] + [j for j in upcoming() if isinstance(j, Job) and j.trial is None
                                         and j.parent is None]
                        for i, j in enumerate(ahead):
                            hinted[trial + i] = j.config_id
                            if trial + i not in seeds:
                                seeds[trial + i] = trial_seed(seed, trial + i)
                        hinted.pop(trial)
                        prefetch(ahead, [seeds[trial + i] for i in range(len(ahead))])
                    elif announced is not None and announced != job.config_id:
                        hints_on = False
                        hinted.clear()
            else:
                trial = job.trial
                if trial not in trial_config:
                    raise ValueError(f"job continues trial {trial}, which was never started")
                if trial_config[trial] != job.config_id:
                    raise ValueError(f"job continues trial {trial} with another config than the trial's")
                if trial in trial_busy:
                    raise ValueError(f"job continues trial {trial} while it is still running")
                if trial_epochs.get(trial, 0) < job.from_epoch:
                    raise ValueError(
                        f"job continues trial {trial} from epoch {job.from_epoch}, "
                        f"but it has only reached epoch {trial_epochs.get(trial, 0)}"
                    )
            s = seeds.get(trial)
            if s is None:
                s = seeds[trial] = trial_seed(seed, trial)
            if answer is not None:
                cost, res = answer(job, seed=s)
            else:
                cost, res = benchmark.cost(job.config, job.epoch, from_epoch=job.from_epoch, seed=s), None
            cost = float(cost)
            worker = heapq.heappop(free)
            trial_busy.add(trial)
            heapq.heappush(running, (start + cost, started, worker, job, trial, start, cost, spent, res))
            started += 1
        if not running:
            if started < max_jobs and max(now, opt_free) < horizon and free:
                raise RuntimeError(
                    "optimizer answered 'nothing to run yet' while no job was running: it would wait forever"
                )
            break
        end, job_id, worker, job, trial, start, cost, spent, res = heapq.heappop(running)
        if end > horizon:
            break  # this and every later completion lie beyond the budget
        now = end
        heapq.heappush(free, worker)
        trial_busy.discard(trial)
        trial_epochs[trial] = max(trial_epochs.get(trial, 0), job.epoch)
        if res is None:
            res = benchmark.query(job.config, job.epoch, seed=seeds[trial])
        obs = Observation(
            job=job, job_id=job_id, trial=trial, val_error=float(res.val_error), test_error=float(res.test_error),
            log10_params=float(res.log10_params), cost=cost, start=start, end=end, worker=worker,
        )
        row = {
            "job_id": job_id, "trial": trial, "worker": worker, "start": start, "end": end, "decided": start - spent,
            "config_id": job.config_id, "epoch": job.epoch, "from_epoch": job.from_epoch,
            "parent": -1 if job.parent is None else job.parent, "tag": job.tag,
            "val_error": obs.val_error, "test_error": obs.test_error, "log10_params": obs.log10_params,
            "cost": cost, "overhead": spent,
        }
        for n in NAMES:
            row[f"config_{n}"] = job.config.get(n, np.nan)
        rows.append(row)
        decide(optimizer.tell, obs)
        if on_observation is not None:
            on_observation(obs)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
