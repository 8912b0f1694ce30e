"""MO-ASHA: asynchronous successive halving with multi-objective promotions.

ASHA (Li et al., 2020) with the promotion rule of multi-objective ASHA (Schmucker et al., 2021):
the results of a rung are ordered by non-dominated front, then by hypervolume contribution within
the front (larger first). Whenever a worker is free, the best result of the highest rung that is
in the top ``1/eta`` of its rung and not promoted yet continues from its checkpoint to the next
rung; if no rung has one, a new config from the priors starts at the lowest rung. So it never
waits for a rung to fill, and every worker is busy all the time: the method of the set that keeps
many workers busy, which none of the paper's baselines do.

>>> from surrobench.benchmark import make_task
>>> from surrobench.records import Problem
>>> MOASHA(Problem(make_task("flowers17")), seed=0).rungs
[1, 3, 9, 25]
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import moocore
import numpy as np

from ..records import Job, Observation, Problem
from ..space import REFERENCE_POINT, as_rng, sample
from ._fronts import Fronts, front_contributions

__all__ = ["MOASHA", "rung_epochs", "front_contributions"]

_BLOCK = 256  # new configs drawn at once (announced by upcoming)
_PEEL_MARGIN, _PEEL_SHARE = 64, 32  # a peel moves in this many results more than needed, plus 1/32 of the rung


def rung_epochs(min_epoch: int, max_epoch: int, eta: float) -> list[int]:
    """Epochs of the rungs: ``min_epoch * eta^k`` (rounded) below ``max_epoch``, then ``max_epoch``."""
    rungs, k = [], 0
    while True:
        e = int(round(min_epoch * eta**k))
        if e >= max_epoch:
            break
        if not rungs or e > rungs[-1]:
            rungs.append(e)
        k += 1
    return rungs + [int(max_epoch)]


def _contributions(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume contribution of each row of one front (rows not inside ``ref`` contribute 0)."""
    out = np.zeros(len(points))
    inside = (points < ref).all(axis=1)
    if inside.any():
        out[inside] = moocore.hv_contributions(points[inside], ref=ref)
    return out


@dataclass
class _Result:
    trial: int
    config: dict
    config_id: str


class MOASHA:
    """MO-ASHA: asynchronous successive halving, promotions by (non-dominated rank, HV contribution).

    Settings:

    * ``eta=3``: reduction factor; the top ``1/eta`` of a rung may be promoted.
    * ``min_epoch=None``: epochs of the lowest rung (default ``problem.min_epoch``); the rungs are
      ``min_epoch * eta^k`` below ``problem.max_epoch``, then ``problem.max_epoch`` (1, 3, 9, 25).
    * ``ref_point=(1.0, 8.0)``: reference point of the hypervolume contributions (docs/problem.md §4).

    A promotion continues the trial: ``Job(config, next_rung, trial=obs.trial, from_epoch=rung)``,
    paying only the new epochs. ``ask`` never returns ``None``. Ties within a front (equal
    contributions, e.g. points outside the reference box) go to the lower error, then the earlier
    result. New configs are drawn 256 at a time and announced by :meth:`upcoming` (the same
    configs in the same order as drawing them one at a time).
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int | np.random.Generator | None = None,
        eta: float = 3,
        min_epoch: int | None = None,
        ref_point: Sequence[float] = REFERENCE_POINT,
    ):
        self.problem = problem
        self.seed = seed
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta > 1:
            raise ValueError(f"eta: must be a number > 1, got {eta!r}")
        self.eta = eta
        self.min_epoch = problem.min_epoch if min_epoch is None else min_epoch
        if isinstance(self.min_epoch, bool) or not isinstance(self.min_epoch, int) or not (
            problem.min_epoch <= self.min_epoch <= problem.max_epoch
        ):
            raise ValueError(
                f"min_epoch: must be an int in {problem.min_epoch}..{problem.max_epoch}, got {min_epoch!r}"
            )
        self.ref_point = tuple(float(v) for v in ref_point)
        if len(self.ref_point) != 2 or not all(math.isfinite(v) for v in self.ref_point):
            raise ValueError(f"ref_point: expected two finite numbers, got {ref_point!r}")
        self.rungs = rung_epochs(self.min_epoch, problem.max_epoch, eta)
        self._rng = as_rng(seed)
        self._ref = np.asarray(self.ref_point)
        self._rungs = [Fronts() for _ in self.rungs]
        self._next: list[int | None | bool] = [False for _ in self.rungs]  # cached candidate; False: stale
        self._new: deque[Job] = deque()  # the next new configs, drawn a block at a time

    def order(self, k: int) -> np.ndarray:
        """Indices of rung ``k``'s results, best first: by front, then contribution (for inspection)."""
        pts = np.array(self._rungs[k].points, dtype=float).reshape(-1, 2)
        if not len(pts):
            return np.zeros(0, dtype=int)
        ranks = np.asarray(moocore.pareto_rank(pts))
        hvc = np.zeros(len(pts))
        for r in np.unique(ranks):
            idx = np.flatnonzero(ranks == r)
            hvc[idx] = _contributions(pts[idx], np.asarray(self.ref_point))
        return np.lexsort((np.arange(len(pts)), pts[:, 0], -hvc, ranks))

    def candidate(self, k: int) -> int | None:
        """Index of the best result of rung ``k`` that is in the rung's top ``1/eta`` and not promoted yet.

        Only the best front holding an unpromoted result needs ordering: every unpromoted result
        behind it ranks lower still.
        """
        cached = self._next[k]
        if cached is not False:
            return cached
        self._next[k] = None
        rung = self._rungs[k]
        n_top = int(len(rung) // self.eta)
        if n_top == 0 or k == len(self.rungs) - 1:
            return None
        ahead, r = 0, 0
        while True:
            opened = next(itertools.compress(itertools.count(r), rung.n_open[r:]), len(rung.fronts))
            ahead += sum(map(len, rung.fronts[r:opened]))  # fronts all promoted: they only count
            if ahead >= n_top:
                return None
            if opened < len(rung.fronts):
                break
            if not rung.pool:
                return None
            rung.peel(n_top - ahead + _PEEL_MARGIN + len(rung) // _PEEL_SHARE)
            r = opened
        promoted = rung.promoted
        for pos, i in enumerate(rung.ordered(opened, self._ref)):
            if not promoted[i]:
                self._next[k] = i if ahead + pos < n_top else None
                break
        return self._next[k]

    def ask(self) -> Job:
        for k in range(len(self.rungs) - 2, -1, -1):
            i = self.candidate(k)
            if i is not None:
                best = self._rungs[k].results[i]
                self._rungs[k].promote(i)
                self._next[k] = False
                return Job._from_valid(best.config, self.rungs[k + 1], config_id=best.config_id, trial=best.trial,
                                       from_epoch=self.rungs[k], tag=f"rung{k + 1}")
        if not self._new:  # the generator draws only these: the same configs as one at a time
            self._new.extend(Job._from_valid(sample(self._rng), self.rungs[0], tag="rung0") for _ in range(_BLOCK))
        return self._new.popleft()

    def upcoming(self) -> tuple[Job, ...]:
        """The next new configs' jobs, in the order the asks that start new trials will return
        them (promotions come in between): the simulator lets the surrogate predict them in one
        batch. No randomness is used."""
        return tuple(self._new)

    def tell(self, observation: Observation) -> None:
        if observation.epoch not in self.rungs:
            return
        k = self.rungs.index(observation.epoch)
        job = observation.job
        self._rungs[k].add(_Result(observation.trial, job.config, job.config_id), observation.objectives)
        self._next[k] = False

    def rung_sizes(self) -> list[int]:
        """How many results each rung holds (for inspection)."""
        return [len(r) for r in self._rungs]

    def __repr__(self) -> str:
        return f"MOASHA(rungs={self.rungs}, eta={self.eta}, sizes={self.rung_sizes()})"
