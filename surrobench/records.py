"""Immutable records exchanged between the benchmark, the simulator and the optimizers.

The benchmark states its :class:`Task` (dataset facts, objectives, reference point, fidelity
range) and makes a :class:`Problem` of it (``bench.problem(n_workers=, budget=)``): the task, the
workers and the :class:`Budget`. An optimizer is built for a problem, asked for a :class:`Job`
whenever a worker is free and told an :class:`Observation` for every job that finished. It never
sees the benchmark: the problem is all it knows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

from ._numbers import as_int, is_int, is_number
from .space import MAX_EPOCH, MIN_EPOCH, REFERENCE_POINT, id_of_valid, validate, validate_epoch

__all__ = ["Objective", "Task", "Budget", "as_budget", "Problem", "Job", "Observation", "Optimizer",
           "MAX_WORKERS", "MAX_BUDGET_SECONDS", "MAX_EVALUATIONS"]

# Ceilings: a run past them would not end in useful time or memory (documented in the README).
MAX_WORKERS = 1024
MAX_BUDGET_SECONDS = 30 * 24 * 3600.0
MAX_EVALUATIONS = 100_000


@dataclass(frozen=True)
class Objective:
    """An objective with its direction and the bounds of its values."""

    name: str
    direction: str = "min"
    lower: float = -math.inf
    upper: float = math.inf


def task_objectives(size_bounds: tuple[float, float]) -> tuple[Objective, Objective]:
    """The two objectives of the problem, both minimised: validation error in [0, 1] and log10 of
    the parameter count within ``size_bounds`` (the exact bounds of the space for a dataset)."""
    lo, hi = size_bounds
    return Objective("val_error", "min", 0.0, 1.0), Objective("log10_params", "min", lo, hi)


@dataclass(frozen=True)
class Task:
    """What is optimised, as the benchmark states it (``bench.task``; made by
    :func:`surrobench.benchmark.make_task`).

    ``input_shape`` (C, H, W) and ``n_classes`` are the dataset's facts the optimizers may use
    (the exact parameter count, the chance-level error); ``objectives`` are minimised, in the order
    of :attr:`Observation.objectives`; ``reference_point`` is the hypervolume's (one per objective);
    jobs train ``min_epoch..max_epoch`` epochs.
    """

    dataset: str
    input_shape: tuple[int, int, int]
    n_classes: int
    objectives: tuple[Objective, ...]
    reference_point: tuple[float, ...] = REFERENCE_POINT
    min_epoch: int = MIN_EPOCH
    max_epoch: int = MAX_EPOCH

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset: must be a non-empty str, got {self.dataset!r}")
        shape = tuple(self.input_shape)
        if len(shape) != 3 or not all(is_int(d) and d >= 1 for d in shape):
            raise ValueError(f"input_shape: must be (channels, height, width), positive ints, got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", tuple(int(d) for d in shape))
        object.__setattr__(self, "n_classes", as_int(self.n_classes, "n_classes", low=2))
        objectives = tuple(self.objectives)
        if not objectives or not all(isinstance(o, Objective) for o in objectives):
            raise ValueError(f"objectives: must be a non-empty sequence of Objective, got {self.objectives!r}")
        object.__setattr__(self, "objectives", objectives)
        ref = tuple(float(v) for v in self.reference_point)
        if len(ref) != len(objectives) or not all(math.isfinite(v) for v in ref):
            raise ValueError(f"reference_point: must be {len(objectives)} finite numbers, got {self.reference_point!r}")
        object.__setattr__(self, "reference_point", ref)
        object.__setattr__(self, "min_epoch", validate_epoch(self.min_epoch, name="min_epoch"))
        object.__setattr__(self, "max_epoch", validate_epoch(self.max_epoch, name="max_epoch"))
        if self.min_epoch > self.max_epoch:
            raise ValueError(f"min_epoch {self.min_epoch} exceeds max_epoch {self.max_epoch}")

    @property
    def chance_error(self) -> float:
        """The error of guessing: ``1 - 1/n_classes``."""
        return 1.0 - 1.0 / self.n_classes


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
        if self.seconds is not None and not (
                is_number(self.seconds) and math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"budget: seconds must be positive and finite, got {self.seconds!r}")
        if self.seconds is not None and self.seconds > MAX_BUDGET_SECONDS:
            raise ValueError(f"budget: seconds must be at most {MAX_BUDGET_SECONDS:g} (30 simulated days), got {self.seconds!r}")
        if self.evaluations is not None:
            if not is_int(self.evaluations) or not 1 <= self.evaluations <= MAX_EVALUATIONS:
                raise ValueError(f"budget: evaluations must be an int in 1..{MAX_EVALUATIONS}, got {self.evaluations!r}")
            object.__setattr__(self, "evaluations", int(self.evaluations))


def as_budget(budget: Budget | float) -> Budget:
    """``budget`` itself, or a plain number of simulated seconds as a :class:`Budget`."""
    if isinstance(budget, Budget):
        return budget
    if is_number(budget):
        return Budget(seconds=float(budget))
    raise ValueError(f"budget: expected a Budget or simulated seconds, got {budget!r}")


@dataclass(frozen=True)
class Problem:
    """What an optimizer may know about the run it takes part in: the task, the workers, the budget.

    Made by the benchmark (``bench.problem(n_workers=8, budget=3600)``) or directly from a task.
    ``budget`` is a :class:`Budget`, a number of simulated seconds, or ``None`` where it is not
    known (an optimizer used on its own; :func:`~surrobench.simulator.simulate` needs one).
    """

    task: Task
    n_workers: int = 1
    budget: Budget | None = None

    def __post_init__(self):
        if not isinstance(self.task, Task):
            raise ValueError(f"task: must be a surrobench.records.Task (bench.task), got {type(self.task).__name__}")
        object.__setattr__(self, "n_workers", as_int(self.n_workers, "n_workers", low=1, high=MAX_WORKERS))
        if self.budget is not None:
            object.__setattr__(self, "budget", as_budget(self.budget))

    @property
    def min_epoch(self) -> int:
        return self.task.min_epoch

    @property
    def max_epoch(self) -> int:
        return self.task.max_epoch

    @property
    def time_budget(self) -> float | None:
        """Simulated seconds, if the budget is time."""
        return None if self.budget is None else self.budget.seconds

    @property
    def max_evaluations(self) -> int | None:
        """Number of jobs, if the budget is evaluations."""
        return None if self.budget is None else self.budget.evaluations


@dataclass(frozen=True, eq=False)
class Job:
    """Train ``config`` until it has seen ``epoch`` epochs.

    ``trial`` is ``None`` for a new training run (from scratch, a fresh seed), or the trial id
    of an earlier job to continue from its checkpoint at ``from_epoch`` (only the epochs
    from_epoch+1..epoch are paid). The paper's methods always start from scratch.
    ``parent`` (with ``trial=None``) starts a new training run from the checkpoint of another
    trial, whose config may differ (a network morphism, as Bulk & Cut grows and prunes networks):
    the new run inherits ``from_epoch`` epochs of training and pays only ``from_epoch+1..epoch``
    of its own config; the parent must have reached ``from_epoch``.
    ``tag`` is free text for the optimizer's own bookkeeping (e.g. a rung), kept in the results.
    """

    config: Mapping[str, Any]
    epoch: int
    trial: int | None = None
    from_epoch: int = 0
    tag: str = ""
    parent: int | None = None
    config_id: str = field(init=False)

    def __post_init__(self):
        cfg = validate(self.config)
        object.__setattr__(self, "config", cfg)
        object.__setattr__(self, "config_id", id_of_valid(cfg))
        self._check_fields()

    @classmethod
    def _from_valid(cls, config: dict, epoch: int, *, config_id: str | None = None, trial: int | None = None,
                    from_epoch: int = 0, tag: str = "", parent: int | None = None) -> "Job":
        """A job whose ``config`` is already canonical: what :func:`~surrobench.space.validate` or
        :func:`~surrobench.space.sample` returned, or another job's config, not changed since;
        ``config_id`` is its id when known (e.g. the job it continues). For optimizers handing on
        a config they drew or were told: the config is neither validated nor hashed again, every
        other field is checked as :class:`Job` checks it; the same job as ``Job(config, ...)``
        (tested)."""
        job = object.__new__(cls)
        for name, value in (("config", config), ("epoch", epoch), ("trial", trial), ("from_epoch", from_epoch),
                            ("tag", tag), ("parent", parent),
                            ("config_id", id_of_valid(config) if config_id is None else config_id)):
            object.__setattr__(job, name, value)
        job._check_fields()
        return job

    def _check_fields(self) -> None:
        """Checks (and makes exact ints of) every field but the config."""
        epoch, trial, parent, from_epoch = self.epoch, self.trial, self.parent, self.from_epoch
        if type(epoch) is not int or not MIN_EPOCH <= epoch <= MAX_EPOCH:
            object.__setattr__(self, "epoch", validate_epoch(epoch))
        for name, value in (("trial", trial), ("parent", parent)):
            if value is None or (type(value) is int and value >= 0):
                continue
            if not is_int(value) or value < 0:
                raise ValueError(f"{name}: must be a non-negative int or None, got {value!r}")
            object.__setattr__(self, name, int(value))
        if type(from_epoch) is not int and is_int(from_epoch):
            object.__setattr__(self, "from_epoch", int(from_epoch))
        if self.trial is not None and self.parent is not None:
            raise ValueError("parent: a job either continues its trial or starts a new one from a parent, not both")
        if self.trial is None and self.parent is None and self.from_epoch != 0:
            raise ValueError("from_epoch: a new trial starts from scratch (from_epoch=0); give trial or parent to continue one")
        if isinstance(self.from_epoch, bool) or not isinstance(self.from_epoch, int):
            raise ValueError(f"from_epoch: must be an int, got {self.from_epoch!r}")
        if not 0 <= self.from_epoch < self.epoch:
            raise ValueError(f"from_epoch: must lie in 0..epoch-1 ({self.epoch - 1}), got {self.from_epoch}")


@dataclass(frozen=True, eq=False)
class Observation:
    """What the optimizer is told when a job finished (objectives are minimised)."""

    job: Job
    job_id: int
    trial: int
    val_error: float
    test_error: float
    log10_params: float
    cost: float
    start: float
    end: float
    worker: int

    @property
    def objectives(self) -> tuple[float, float]:
        """(validation error, log10 parameter count): the pair every optimizer minimises."""
        return (self.val_error, self.log10_params)

    @property
    def config(self) -> Mapping[str, Any]:
        return self.job.config

    @property
    def epoch(self) -> int:
        return self.job.epoch


@runtime_checkable
class Optimizer(Protocol):
    """The ask/tell protocol (the README's "Bring your own optimizer" says the same).

    * Built as ``cls(problem, seed=..., **settings)``: ``problem`` is a :class:`Problem` (its
      task: dataset facts, objectives, fidelity range; the number of workers; the budget); ``seed``
      is an int, a ``numpy.random.Generator`` or None, and all of the optimizer's randomness comes
      from it (same seed, same jobs). Dataset facts (``problem.task.input_shape``, ``n_classes``)
      come from the task, never from a default. The benchmark's own noise is seeded by the
      simulator, one seed per trial, kept when a trial is continued.
    * ``ask()`` is called whenever a worker is free. It returns a :class:`Job` — ``Job(config,
      epoch)`` trains a new run from scratch until it has seen ``epoch`` epochs
      (``problem.min_epoch..max_epoch``); ``Job(config, epoch, trial=t, from_epoch=e)`` continues
      trial ``t`` (the same config) from its checkpoint at epoch ``e``, paying only epochs
      ``e+1..epoch``; ``Job(child, epoch, parent=t, from_epoch=e)`` starts a new run of another
      config from trial ``t``'s checkpoint — or ``None`` for "nothing to run yet" (e.g. a
      synchronous rung waiting for results). After ``None`` it is asked again once the next job
      has finished and been told. ``None`` while nothing is running is a deadlock and an error.
      It may be asked again before any tell: up to ``n_workers`` jobs can be outstanding.
    * ``tell(observation)`` is called exactly once for every job that finished within the budget,
      in order of completion time (ties in a fixed order), before the freed worker is offered to
      ``ask``. ``observation.objectives`` is (val_error, log10_params), both minimised;
      ``observation.trial`` is the id to continue from. Jobs still running at the end of a time
      budget are never told.
    * Optional, for speed only: ``upcoming()`` returns the jobs the next asks will return, in
      order. The simulator then lets the benchmark predict them in one batch
      (``Benchmark.prefetch``); a hint never changes a result, and the first one that does not
      come true switches them off for the rest of the run.
    """

    def ask(self) -> Job | None: ...

    def tell(self, observation: Observation) -> None: ...
