"""Random search: i.i.d. configs from the priors, each trained for the full budget."""

from __future__ import annotations

import numpy as np

from ..records import Job, Observation, Problem
from ..space import as_rng, sample

__all__ = ["RandomSearch"]


class RandomSearch:
    """Random search: a fresh config from the priors at ``epoch`` (default: the maximum) on every ask; never waits."""

    def __init__(self, problem: Problem, *, seed: int | np.random.Generator | None = None, epoch: int | None = None):
        self.problem = problem
        self.seed = seed
        self.epoch = problem.max_epoch if epoch is None else epoch
        if not problem.min_epoch <= self.epoch <= problem.max_epoch:
            raise ValueError(f"epoch: must lie in {problem.min_epoch}..{problem.max_epoch}, got {self.epoch}")
        self._rng = as_rng(seed)

    def ask(self) -> Job:
        return Job(sample(self._rng), self.epoch, tag="random")

    def tell(self, observation: Observation) -> None:
        pass
