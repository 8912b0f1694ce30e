"""Random search: i.i.d. configs from the priors, each trained for the full budget."""

from __future__ import annotations

from collections import deque

import numpy as np

from ..records import Job, Observation, Problem
from ..space import as_rng, sample

__all__ = ["RandomSearch"]


class RandomSearch:
    """Random search: a fresh config from the priors at ``epoch`` (default: the maximum) on every ask; never waits.

    Configs are drawn ``block`` at a time (the same stream as one at a time: a seed gives the
    same jobs whatever the block); :meth:`upcoming` tells the simulator which jobs the next asks
    will return, so that a benchmark able to answer many configs at once (the surrogate)
    predicts a whole block in one call.
    """

    def __init__(self, problem: Problem, *, seed: int | np.random.Generator | None = None, epoch: int | None = None,
                 block: int = 256):
        self.problem = problem
        self.seed = seed
        self.epoch = problem.max_epoch if epoch is None else epoch
        if not problem.min_epoch <= self.epoch <= problem.max_epoch:
            raise ValueError(f"epoch: must lie in {problem.min_epoch}..{problem.max_epoch}, got {self.epoch}")
        if isinstance(block, bool) or not isinstance(block, int) or block < 1:
            raise ValueError(f"block: must be a positive int, got {block!r}")
        self.block = block
        self._rng = as_rng(seed)
        self._queue: deque[Job] = deque()

    def ask(self) -> Job:
        if not self._queue:
            self._queue.extend(Job._from_valid(sample(self._rng), self.epoch, tag="random") for _ in range(self.block))
        return self._queue.popleft()

    def upcoming(self) -> tuple[Job, ...]:
        """The jobs the next asks will return, in order (already drawn; no randomness is used)."""
        return tuple(self._queue)

    def tell(self, observation: Observation) -> None:
        pass
