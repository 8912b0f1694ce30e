"""Immutable records exchanged between optimizers and the simulator.

An optimizer is asked for a :class:`Job` whenever a worker is free and is told an
:class:`Observation` for every job that finished. It never sees the benchmark: it knows the
:class:`Problem` (fidelity range, workers, budget) it was built for, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

from ._numbers import as_int, is_int
from .space import MAX_EPOCH, MIN_EPOCH, id_of_valid, validate, validate_epoch

__all__ = ["Problem", "Job", "Observation", "Optimizer"]


@dataclass(frozen=True)
class Problem:
    """What an optimizer may know about the run it takes part in."""

    min_epoch: int = MIN_EPOCH
    max_epoch: int = MAX_EPOCH
    n_workers: int = 1
    time_budget: float | None = None  # simulated seconds, if the budget is time
    max_evaluations: int | None = None  # number of jobs, if the budget is evaluations

    def __post_init__(self):
        validate_epoch(self.min_epoch, name="min_epoch")
        validate_epoch(self.max_epoch, name="max_epoch")
        if self.min_epoch > self.max_epoch:
            raise ValueError(f"min_epoch {self.min_epoch} exceeds max_epoch {self.max_epoch}")
        object.__setattr__(self, "n_workers", as_int(self.n_workers, "n_workers", low=1))
        if is_int(self.max_evaluations):
            object.__setattr__(self, "max_evaluations", int(self.max_evaluations))


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
        object.__setattr__(self, "epoch", validate_epoch(self.epoch))
        object.__setattr__(self, "config_id", id_of_valid(cfg))
        for name in ("trial", "parent"):
            value = getattr(self, name)
            if value is not None and type(value) is not int:
                if not is_int(value) or value < 0:
                    raise ValueError(f"{name}: must be a non-negative int or None, got {value!r}")
                object.__setattr__(self, name, int(value))
            elif value is not None and value < 0:
                raise ValueError(f"{name}: must be a non-negative int or None, got {value!r}")
        if type(self.from_epoch) is not int and is_int(self.from_epoch):
            object.__setattr__(self, "from_epoch", int(self.from_epoch))
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

    * Built as ``cls(problem, seed=..., **settings)``: ``problem`` is a :class:`Problem` (fidelity
      range, number of workers, budget); ``seed`` is an int, a ``numpy.random.Generator`` or None,
      and all of the optimizer's randomness comes from it (same seed, same jobs). The benchmark's
      own noise is seeded by the simulator, one seed per trial, kept when a trial is continued.
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
