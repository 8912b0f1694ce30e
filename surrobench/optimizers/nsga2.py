"""NSGA-II (Deb et al., 2002) at the maximum budget, generational and asynchronous.

A population of ``population_size`` random configs; then offspring, one per free worker: two
binary tournaments (front, then crowding distance) pick the parents, simulated binary crossover
(probability 0.9, eta 15) and polynomial mutation (probability 1/13 per hyperparameter, eta 20) in
the normalised scale of :mod:`surrobench.space` (categories: uniform swap and redraw; widths that a
new depth activates come from the parent that has them, else the prior, so every child is valid).
A child equal to a config already asked is re-drawn (up to ``max_retries`` times).

Generations: as soon as ``population_size`` offspring have been told, parents and offspring are
merged and the best ``population_size`` survive (fronts, then crowding distance). Offspring asked
before that are drawn from the current parents and join the next generation's pool when they
return; the optimizer never waits, so with one worker this is textbook NSGA-II and with many it is
its usual asynchronous variant. Until the first population is complete, free workers get more
random configs, which join the first selection.

Look-ahead: the configs of the asks that must come before the next selection (``population_size``
minus the offspring told and the jobs running) depend on nothing a result can change, so they are
drawn together on the first of those asks, in the order and from the same generator calls as one
at a time, and announced by :meth:`upcoming`: a benchmark that answers a batch faster (the
surrogate) predicts them in one call. The jobs are the same as drawing each on its own ask.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..records import Job, Observation, Problem
from ..space import as_rng, id_of_valid, sample
from ._common import Outstanding, nsga_order, polynomial_mutation, sbx_crossover

__all__ = ["NSGA2"]


class NSGA2:
    """NSGA-II: SBX + polynomial mutation, fronts + crowding distance, at the maximum epoch."""

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int | np.random.Generator | None = None,
        population_size: int = 20,
        crossover_probability: float = 0.9,
        crossover_eta: float = 15.0,
        mutation_eta: float = 20.0,
        mutation_probability: float | None = None,
        epoch: int | None = None,
        max_retries: int = 10,
    ):
        if population_size < 2:
            raise ValueError(f"NSGA2: population_size must be >= 2, got {population_size}")
        if not 0 <= crossover_probability <= 1:
            raise ValueError(f"NSGA2: crossover_probability must lie in [0, 1], got {crossover_probability}")
        if not crossover_eta >= 0 or not mutation_eta >= 0:
            raise ValueError(f"NSGA2: crossover_eta and mutation_eta must be >= 0, got {crossover_eta}, {mutation_eta}")
        if max_retries < 0:
            raise ValueError(f"NSGA2: max_retries must be >= 0, got {max_retries}")
        self.problem = problem
        self.seed = seed
        self.population_size = int(population_size)
        self.crossover_probability = crossover_probability
        self.crossover_eta = crossover_eta
        self.mutation_eta = mutation_eta
        self.mutation_probability = mutation_probability
        self.epoch = problem.max_epoch if epoch is None else int(epoch)
        if not problem.min_epoch <= self.epoch <= problem.max_epoch:
            raise ValueError(f"NSGA2: epoch must lie in {problem.min_epoch}..{problem.max_epoch}, got {self.epoch}")
        self.max_retries = int(max_retries)

        self._rng = as_rng(seed)
        self._out = Outstanding()
        self._parents: list[tuple] = []  # (config, objectives)
        self._rank: np.ndarray | None = None  # position of each parent in the NSGA-II order
        self._offspring: list[tuple] = []
        self._asked_ids: set[str] = set()  # every config drawn (asked, or drawn ahead to be asked)
        self._ahead: deque[Job] = deque()  # jobs drawn ahead for the asks before the next selection
        self.generation = 0

    def ask(self) -> Job:
        if not self._ahead:
            for _ in range(self._certain_asks()):
                self._ahead.append(self._draw())
        return self._out.add(self._ahead.popleft(), None)

    def _certain_asks(self) -> int:
        """How many asks, this one included, must come before the next selection (at least 1).

        The selection needs ``population_size - len(offspring)`` more results, and before the
        k-th ask from now at most ``len(running) + k - 1`` results can arrive."""
        return max(1, self.population_size - len(self._offspring) - len(self._out))

    def upcoming(self) -> tuple[Job, ...]:
        """The jobs the next asks return (drawn already; no randomness is used)."""
        return tuple(self._ahead)

    def _draw(self) -> Job:
        if not self._parents:
            job = Job._from_valid(sample(self._rng), self.epoch, tag="nsga2:init")
        else:
            child, child_id = self._child()
            job = Job._from_valid(child, self.epoch, config_id=child_id, tag=f"nsga2:g{self.generation}")
        self._asked_ids.add(job.config_id)
        return job

    def _tournament(self) -> dict:
        i, j = self._rng.integers(len(self._parents), size=2)
        return self._parents[int(i) if self._rank[i] <= self._rank[j] else int(j)][0]

    def _child(self) -> tuple[dict, str]:
        for _ in range(self.max_retries + 1):
            a, b = self._tournament(), self._tournament()
            if self._rng.random() < self.crossover_probability:
                child = sbx_crossover(a, b, self._rng, eta=self.crossover_eta)
            else:
                child = dict(a)
            child = polynomial_mutation(child, self._rng, eta=self.mutation_eta, p_var=self.mutation_probability)
            child_id = id_of_valid(child)
            if child_id not in self._asked_ids:  # polynomial_mutation returns a valid config
                break
        return child, child_id

    def tell(self, observation: Observation) -> None:
        self._out.pop(observation)
        self._offspring.append((observation.config, observation.objectives))
        if len(self._offspring) >= self.population_size:
            pool = self._parents + self._offspring
            order = nsga_order(np.array([o for _, o in pool]))[: self.population_size]
            self._parents = [pool[i] for i in order]
            self._offspring = []
            self._rank = np.empty(len(self._parents))
            self._rank[:] = np.arange(len(self._parents))  # parents are stored best first
            self.generation += 1
