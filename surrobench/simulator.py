"""A discrete-event simulation of optimizers running on n workers against a benchmark (docs/problem.md §6).

Three parts, each readable alone:

* :class:`EventQueue` -- the jobs running, a heap of :class:`Event` records ordered by end time,
  ties by job id (the order the jobs started), so a run is a pure function of its seeds when the
  overhead model is ``"none"``;
* :class:`TrialLedger` -- the training runs: which config each trains, how far it got, whether
  it is running, and its benchmark seed (:func:`trial_seed`, kept when a trial is continued); it
  refuses a job that would continue or start from a trial it must not;
* :func:`simulate` -- the loop: whenever a worker is free the optimizer is asked for a job, the
  benchmark answers it when it starts (``benchmark.answer(job, seed=)``), and the clock jumps to
  the next completion, which the optimizer is told.

The optimizer's own decision time is charged by an :class:`Overhead` model: it works as a single
thread, so a decision starts once both the optimizer and the simulated time are there, and the job
it produced starts when it ends.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ._numbers import is_number
from .records import (
    MAX_BUDGET_SECONDS,
    MAX_EVALUATIONS,
    MAX_WORKERS,
    Budget,
    Job,
    Observation,
    Optimizer,
    Problem,
    as_budget,
)
from .space import NAMES

__all__ = ["Overhead", "Budget", "as_budget", "as_overhead", "simulate", "trial_seed", "run_seeds", "Event",
           "EventQueue", "TrialLedger", "RESULT_COLUMNS", "MAX_WORKERS", "MAX_BUDGET_SECONDS", "MAX_EVALUATIONS"]


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


def as_overhead(overhead: Overhead | str | float) -> Overhead:
    """``overhead`` itself, a model name (``none``, ``measured``) or fixed seconds per decision."""
    if isinstance(overhead, Overhead):
        return overhead
    if isinstance(overhead, str):
        return Overhead(overhead)
    if is_number(overhead):
        return Overhead("fixed", seconds=float(overhead))
    raise ValueError(f"overhead: expected an Overhead, none, measured or seconds per decision, got {overhead!r}")


_CONFIG_COLUMNS = [(n, f"config_{n}") for n in NAMES]
RESULT_COLUMNS = [
    "job_id", "trial", "worker", "start", "end", "decided", "config_id", "epoch", "from_epoch", "parent", "tag",
    "val_error", "test_error", "log10_params", "cost", "overhead",
] + [column for _, column in _CONFIG_COLUMNS]


def run_seeds(seed: int) -> tuple[int, int]:
    """The optimizer's seed and the simulator's run seed of a comparison's run ``seed``: independent
    streams from ``SeedSequence([seed, 0x5EED])`` (how :func:`surrobench.compare.compare` and
    :mod:`surrobench.validate` seed their runs)."""
    seq = np.random.SeedSequence([int(seed), 0x5EED])
    opt_seed, bench_seed = (int(s.generate_state(1)[0]) for s in seq.spawn(2))
    return opt_seed, bench_seed


def trial_seed(run_seed: int, trial: int) -> int:
    """The benchmark seed of a trial: independent streams from ``SeedSequence([run_seed, trial])``."""
    return int(np.random.SeedSequence([int(run_seed), int(trial)]).generate_state(1)[0] & 0x7FFFFFFF)


# ------------------------------------------------------------------------------ the event queue


@dataclass(order=True, slots=True)
class Event:
    """A running job, due to finish at ``end``; events order by (end, job_id) and nothing else.
    (Not frozen: a frozen dataclass costs a few microseconds more per job; nothing changes an event.)"""

    end: float
    job_id: int
    worker: int = field(compare=False)
    trial: int = field(compare=False)
    job: Job = field(compare=False)
    start: float = field(compare=False)
    cost: float = field(compare=False)
    overhead: float = field(compare=False)  # simulated seconds the decision that made the job took
    result: Any = field(compare=False)  # the benchmark's answer, told when the job finishes


class EventQueue:
    """The running jobs, earliest end first; of equal ends, the job that started first."""

    def __init__(self):
        self._heap: list[Event] = []

    def push(self, event: Event) -> None:
        heapq.heappush(self._heap, event)

    def pop(self) -> Event:
        return heapq.heappop(self._heap)

    def __len__(self) -> int:
        return len(self._heap)


# ------------------------------------------------------------------------------ the trial ledger


class TrialLedger:
    """The training runs of one simulation: their configs, epochs reached and benchmark seeds.

    :meth:`open` admits a job and returns its trial: a new id for a new run (``job.trial`` is
    None), else the trial it continues. It raises a one-line ``ValueError`` for a job that
    continues a trial never started, with another config, while it runs, or past the epochs it
    reached, and for a job that starts from a parent never started or not trained that far.
    """

    def __init__(self, run_seed: int):
        self.run_seed = int(run_seed)
        self.n_trials = 0  # trials get ids 0, 1, 2, ... in the order they start
        self._config: dict[int, str] = {}  # trial -> config id
        self._epochs: dict[int, int] = {}  # trial -> epochs reached by its finished jobs
        self._running: set[int] = set()
        self._seeds: dict[int, int] = {}

    def seed(self, trial: int) -> int:
        """The benchmark seed of ``trial`` (it may lie ahead: new trials get consecutive ids)."""
        s = self._seeds.get(trial)
        if s is None:
            s = self._seeds[trial] = trial_seed(self.run_seed, trial)
        return s

    def reached(self, trial: int) -> int:
        return self._epochs.get(trial, 0)

    def open(self, job: Job) -> int:
        if job.trial is None:
            if job.parent is not None:
                self._check_parent(job)
            trial = self.n_trials
            self.n_trials += 1
            self._config[trial] = job.config_id
        else:
            trial = job.trial
            self._check_continuation(job)
        self._running.add(trial)
        return trial

    def close(self, trial: int, epoch: int) -> None:
        """``trial``'s job finished after ``epoch`` epochs."""
        self._running.discard(trial)
        if epoch > self._epochs.get(trial, 0):
            self._epochs[trial] = epoch

    def _check_parent(self, job: Job) -> None:
        parent = job.parent
        if parent not in self._config:
            raise ValueError(f"job starts from the checkpoint of trial {parent}, which was never started")
        if self.reached(parent) < job.from_epoch:
            raise ValueError(f"job starts from trial {parent} at epoch {job.from_epoch}, "
                             f"but it has only reached epoch {self.reached(parent)}")

    def _check_continuation(self, job: Job) -> None:
        trial = job.trial
        if trial not in self._config:
            raise ValueError(f"job continues trial {trial}, which was never started")
        if self._config[trial] != job.config_id:
            raise ValueError(f"job continues trial {trial} with another config than the trial's")
        if trial in self._running:
            raise ValueError(f"job continues trial {trial} while it is still running")
        if self.reached(trial) < job.from_epoch:
            raise ValueError(f"job continues trial {trial} from epoch {job.from_epoch}, "
                             f"but it has only reached epoch {self.reached(trial)}")


class _Lookahead:
    """Prefetch hints: an optimizer that knows its next jobs (``upcoming()``) lets a benchmark that
    answers batches faster (``prefetch``) predict them at once. New trials get consecutive ids, so
    their seeds are known ahead; a wrong guess only costs time, never changes an answer. After the
    first hint that did not come true, no more are asked for."""

    def __init__(self, optimizer: Any, benchmark: Any, ledger: TrialLedger):
        self.upcoming = getattr(optimizer, "upcoming", None)
        self.prefetch = getattr(benchmark, "prefetch", None)
        self.on = self.upcoming is not None and self.prefetch is not None
        self.ledger = ledger
        self.hinted: dict[int, str] = {}  # trial -> config id the hint announced for it

    def started(self, trial: int, job: Job) -> None:
        """The new trial ``trial`` started with ``job``."""
        announced = self.hinted.pop(trial, None)
        if announced is None and job.parent is None:
            ahead = [job] + [j for j in self.upcoming() if isinstance(j, Job) and j.trial is None and j.parent is None]
            for i, j in enumerate(ahead[1:], start=1):
                self.hinted[trial + i] = j.config_id
            self.prefetch(ahead, [self.ledger.seed(trial + i) for i in range(len(ahead))])
        elif announced is not None and announced != job.config_id:
            self.on = False
            self.hinted.clear()


# ------------------------------------------------------------------------------ the loop


def _checked_problem(problem: Any, benchmark: Any, budget: Any, n_workers: Any) -> Problem:
    """The problem of a run, after checking the arguments that repeat it agree with it."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a surrobench.records.Problem (bench.problem(n_workers=, budget=)), "
                         f"got {type(problem).__name__}")
    if problem.budget is None:
        raise ValueError("problem: has no budget; make it with bench.problem(n_workers=, budget=)")
    if budget is not None and as_budget(budget) != problem.budget:
        raise ValueError(f"budget: {as_budget(budget)} given to simulate, but the problem's is {problem.budget}")
    if n_workers is not None and n_workers != problem.n_workers:
        raise ValueError(f"n_workers: {n_workers!r} given to simulate, but the problem has {problem.n_workers}")
    task = getattr(benchmark, "task", None)
    if task is not None:
        mine, theirs = problem.task, task
        for name in ("dataset", "input_shape", "n_classes"):
            if getattr(mine, name) != getattr(theirs, name):
                raise ValueError(f"problem: its task's {name} {getattr(mine, name)!r} is not the benchmark's "
                                 f"{getattr(theirs, name)!r}")
    return problem


@dataclass
class _Clock:
    """Simulated time and the optimizer's: a decision starts when both are there."""

    overhead: Overhead
    now: float = 0.0
    optimizer_free: float = 0.0  # when the optimizer finishes its current decision

    @property
    def next_start(self) -> float:
        return max(self.now, self.optimizer_free)

    def decide(self, fn: Callable, *args) -> tuple[Any, float]:
        """``fn(*args)`` and the simulated seconds it is charged."""
        measured = self.overhead.model == "measured"
        t0 = time.perf_counter() if measured else 0.0
        out = fn(*args)
        spent = self.overhead.charge(time.perf_counter() - t0 if measured else 0.0)
        self.optimizer_free = self.next_start + spent
        return out, spent


def _row(event: Event, obs: Observation) -> dict[str, Any]:
    job = event.job
    row = {
        "job_id": event.job_id, "trial": event.trial, "worker": event.worker, "start": event.start, "end": event.end,
        "decided": event.start - event.overhead, "config_id": job.config_id, "epoch": job.epoch,
        "from_epoch": job.from_epoch, "parent": -1 if job.parent is None else job.parent, "tag": job.tag,
        "val_error": obs.val_error, "test_error": obs.test_error, "log10_params": obs.log10_params,
        "cost": event.cost, "overhead": event.overhead,
    }
    config = job.config
    for n, column in _CONFIG_COLUMNS:
        row[column] = config.get(n, np.nan)
    return row


def simulate(
    benchmark: Any,
    optimizer: Optimizer,
    problem: Problem,
    *,
    seed: int = 0,
    overhead: Overhead | str | float = "none",
    on_observation: Callable[[Observation], None] | None = None,
    budget: Budget | float | None = None,
    n_workers: int | None = None,
) -> pd.DataFrame:
    """Run ``optimizer`` against ``benchmark`` on ``problem`` and return one row per finished job.

    ``problem`` (``bench.problem(n_workers=, budget=)``) gives the workers and the budget; it must
    have a budget, and its task must be the benchmark's (dataset, input shape, classes).
    ``budget`` and ``n_workers`` may repeat the problem's (older calls); a value that differs is a
    ``ValueError``. ``benchmark`` answers ``answer(job, seed=)`` with ``(cost, result)`` (a result
    has ``val_error``, ``test_error``, ``log10_params``), called when the job starts. If the
    optimizer has ``upcoming()`` and the benchmark ``prefetch(jobs, seeds)``, the announced new
    trials are prefetched in one call (a speed hint only). ``seed`` fixes the benchmark seeds of
    the trials (one per training run, kept when a job continues a trial). Raises ``RuntimeError``
    if the optimizer answers "nothing to run" while no job is running (a deadlock), and
    ``ValueError`` for an invalid job.
    """
    problem = _checked_problem(problem, benchmark, budget, n_workers)
    answer = benchmark.answer
    horizon = math.inf if problem.budget.seconds is None else float(problem.budget.seconds)
    max_jobs = math.inf if problem.budget.evaluations is None else problem.budget.evaluations
    clock = _Clock(as_overhead(overhead))
    queue = EventQueue()
    ledger = TrialLedger(seed)
    lookahead = _Lookahead(optimizer, benchmark, ledger)
    free = list(range(problem.n_workers))  # a heap: the lowest free worker id is used first
    rows: list[dict] = []
    started = 0
    while True:
        while free and started < max_jobs and clock.next_start < horizon:  # fill the free workers
            job, spent = clock.decide(optimizer.ask)
            if job is None:
                break
            if not isinstance(job, Job):
                raise ValueError(f"optimizer.ask must return a Job or None, got {type(job).__name__}")
            start = clock.next_start
            if start >= horizon:
                break
            trial = ledger.open(job)
            if lookahead.on and job.trial is None:
                lookahead.started(trial, job)
            cost, result = answer(job, seed=ledger.seed(trial))
            cost = float(cost)
            queue.push(Event(start + cost, started, heapq.heappop(free), trial, job, start, cost, spent, result))
            started += 1
        if not queue:
            if started < max_jobs and clock.next_start < horizon and free:
                raise RuntimeError(
                    "optimizer answered 'nothing to run yet' while no job was running: it would wait forever"
                )
            break
        event = queue.pop()
        if event.end > horizon:
            break  # this and every later completion lie beyond the budget
        clock.now = event.end
        heapq.heappush(free, event.worker)
        ledger.close(event.trial, event.job.epoch)
        res = event.result
        obs = Observation(
            job=event.job, job_id=event.job_id, trial=event.trial, val_error=float(res.val_error),
            test_error=float(res.test_error), log10_params=float(res.log10_params), cost=event.cost,
            start=event.start, end=event.end, worker=event.worker,
        )
        rows.append(_row(event, obs))
        clock.decide(optimizer.tell, obs)
        if on_observation is not None:
            on_observation(obs)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
