"""MO-ASHA: asynchronous successive halving with multi-objective promotions.

ASHA (Li et al., 2020) with the promotion rule of multi-objective ASHA (Schmucker et al., 2021):
the results of a rung are ordered by non-dominated front, then by hypervolume contribution within
the front (larger first). Whenever a worker is free, the best result of the highest rung that is
in the top ``1/eta`` of its rung and not promoted yet continues from its checkpoint to the next
rung; if no rung has one, a new config from the priors starts at the lowest rung. So it never
waits for a rung to fill, and every worker is busy all the time: the method of the set that keeps
many workers busy, which none of the paper's baselines do.

>>> from surrobench.records import Problem
>>> MOASHA(Problem(), seed=0).rungs
[1, 3, 9, 25]
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import moocore
import numpy as np

from ..records import Job, Observation, Problem
from ..space import REFERENCE_POINT, as_rng, sample

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


def front_contributions(front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """:func:`_contributions` of one front sorted by the first objective (so the second falls), in
    closed form: a point inside ``ref`` owns the box up to its right neighbour's first objective
    and its left neighbour's second (``ref`` at the ends); equal points own nothing. The same
    numbers as moocore's, bit for bit (tested), without a call per front."""
    out = np.zeros(len(front))
    inside = (front < ref).all(axis=1)
    pts = front[inside]
    if len(pts):
        right = np.append(pts[1:, 0], ref[0])
        up = np.concatenate([[ref[1]], pts[:-1, 1]])
        out[inside] = (right - pts[:, 0]) * (up - pts[:, 1])
    return out


@dataclass
class _Result:
    trial: int
    config: dict


class _Rung:
    """The results of one rung; its first non-dominated fronts kept exact one result at a time.

    ``fronts[r]`` lists front ``r`` as ``(val error, log10 params, index)``, sorted, so the size
    falls along a front. Promotion only reaches the fronts that hold the rung's top ``1/eta``, so
    only the first fronts are kept: every other result waits in ``pool`` (its front is
    ``len(fronts)`` or later, ``front_of`` is -1) until :meth:`peel` moves the pool's next fronts in
    with one non-dominated sort (moocore). A new result finds its front by bisection (a point
    dominated by a member of front ``r`` is dominated by a member of every earlier front), then
    pushes the members it dominates one front back, and those push theirs, down to the last kept
    front, whose pushed members join the pool. On a fast surrogate rung 0 holds thousands of fronts
    (results at chance-level error differ only in size, one front each), and a cascade through all
    of them cost hundreds of front updates per result; now it stops where promotion stops looking.
    ``n_open[r]`` counts the results of front ``r`` not promoted yet; ``version[r]`` counts the
    changes of front ``r``, so that its order by contribution (:meth:`ordered`) is computed once
    per change, not once per promotion.
    """

    def __init__(self):
        self.results: list[_Result] = []
        self.points: list[tuple[float, float]] = []
        self.promoted: list[bool] = []
        self.fronts: list[list[tuple[float, float, int]]] = []
        self.front_of: list[int] = []
        self.n_open: list[int] = []
        self.pool: list[int] = []  # results in no kept front (index)
        self.version: list[int] = []
        self._ordered: dict[int, tuple[int, list[int]]] = {}  # level -> (version, indices by contribution)
        self._xy = np.empty((64, 2))  # self.points as an array, grown by doubling (for peel)

    def __len__(self) -> int:
        return len(self.results)

    @staticmethod
    def _dominated(point: tuple, front: list) -> bool:
        """Whether a member of the sorted ``front`` dominates ``point``."""
        j = bisect.bisect_right(front, (point[0], math.inf, math.inf)) - 1  # last member with f0 <= point's
        return j >= 0 and front[j][1] <= point[1] and front[j][:2] != point[:2]

    def add(self, result: _Result, objectives) -> None:
        index = len(self.results)
        p = (float(objectives[0]), float(objectives[1]), index)
        self.results.append(result)
        self.points.append(p[:2])
        if index == len(self._xy):
            self._xy = np.vstack([self._xy, np.empty_like(self._xy)])
        self._xy[index] = p[:2]
        self.promoted.append(False)
        self.front_of.append(-1)
        lo, hi = 0, len(self.fronts)
        while lo < hi:  # the first front none of whose members dominates p
            mid = (lo + hi) // 2
            if self._dominated(p, self.fronts[mid]):
                lo = mid + 1
            else:
                hi = mid
        moved, level = [p], lo
        while moved:
            if level == len(self.fronts):  # beyond the kept fronts
                for m in moved:
                    old = self.front_of[m[2]]
                    if old >= 0 and not self.promoted[m[2]]:
                        self.n_open[old] -= 1
                    self.front_of[m[2]] = -1
                    self.pool.append(m[2])
                return
            front = self.fronts[level]
            start = bisect.bisect_left(front, (moved[0][0], -math.inf, -math.inf))  # only these can be dominated
            keep, pushed, stop = [], [], len(front)
            for pos in range(start, len(front)):
                m = front[pos]
                if m[1] < moved[-1][1]:  # sizes fall along the front: no moved point dominates the rest
                    stop = pos
                    break
                (pushed if self._dominated(m, moved) else keep).append(m)
            front[start:stop] = sorted(keep + moved) if keep or len(moved) > 1 else moved
            self.version[level] += 1
            for m in moved:
                old = self.front_of[m[2]]
                if not self.promoted[m[2]]:
                    self.n_open[level] += 1
                    if old >= 0:
                        self.n_open[old] -= 1
                self.front_of[m[2]] = level
            moved, level = pushed, level + 1

    def peel(self, n_points: int) -> None:
        """Moves the pool's next fronts into ``fronts``, whole fronts until at least ``n_points``
        results have moved (or the pool is empty)."""
        if not self.pool or n_points <= 0:
            return
        idx = np.array(self.pool)
        pts = self._xy[idx]
        ranks = np.asarray(moocore.pareto_rank(pts))
        take = min(int(np.searchsorted(np.cumsum(np.bincount(ranks)), n_points)) + 1, int(ranks.max()) + 1)
        inner = ranks < take
        sel = np.flatnonzero(inner)
        sel = sel[np.lexsort((idx[sel], pts[sel, 1], pts[sel, 0], ranks[sel]))]
        first = len(self.fronts)
        self.fronts.extend([] for _ in range(take))
        self.n_open.extend(0 for _ in range(take))
        self.version.extend(0 for _ in range(take))
        for r, i in zip(ranks[sel].tolist(), idx[sel].tolist()):
            self.fronts[first + r].append(self.points[i] + (i,))
            self.front_of[i] = first + r
            if not self.promoted[i]:
                self.n_open[first + r] += 1
        self.pool = idx[~inner].tolist()

    def ordered(self, level: int, ref: np.ndarray) -> list[int]:
        """Indices of front ``level``'s results by hypervolume contribution (larger first), then
        error, then index; computed again only after the front changed."""
        hit = self._ordered.get(level)
        if hit is not None and hit[0] == self.version[level]:
            return hit[1]
        arr = np.array(self.fronts[level])
        pts, idx = arr[:, :2], arr[:, 2].astype(int)
        out = idx[np.lexsort((idx, pts[:, 0], -front_contributions(pts, ref)))].tolist()
        self._ordered[level] = (self.version[level], out)
        return out

    def promote(self, index: int) -> None:
        self.promoted[index] = True
        self.n_open[self.front_of[index]] -= 1


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
        self._rungs = [_Rung() for _ in self.rungs]
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
                return Job(best.config, self.rungs[k + 1], trial=best.trial, from_epoch=self.rungs[k],
                           tag=f"rung{k + 1}")
        if not self._new:  # the generator draws only these: the same configs as one at a time
            self._new.extend(Job(sample(self._rng), self.rungs[0], tag="rung0") for _ in range(_BLOCK))
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
        self._rungs[k].add(_Result(observation.trial, dict(observation.config)), observation.objectives)
        self._next[k] = False

    def rung_sizes(self) -> list[int]:
        """How many results each rung holds (for inspection)."""
        return [len(r) for r in self._rungs]

    def __repr__(self) -> str:
        return f"MOASHA(rungs={self.rungs}, eta={self.eta}, sizes={self.rung_sizes()})"
