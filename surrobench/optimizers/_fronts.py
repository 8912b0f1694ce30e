"""The first non-dominated fronts of a growing set of two-objective results, kept exact incrementally.

MO-ASHA keeps one :class:`Fronts` per rung (promotion reaches only the fronts that hold a rung's top
third); Bulk & Cut keeps one for its population (parents come from the first two fronts). A full
non-dominated sort per decision costs O(n log n) and more with many fronts (a simulated day holds
tens of thousands of results); here a result costs O(log^2 n) plus the points it pushes through the
kept fronts, and the rest waits in a pool sorted only when a front beyond the kept ones is asked for.
The fronts equal ``moocore.pareto_rank``'s (tested): weak dominance, equal points share a front.
"""

from __future__ import annotations

import bisect
import math

import moocore
import numpy as np

__all__ = ["Fronts", "front_contributions"]


def front_contributions(front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The hypervolume contribution of each row of one front sorted by the first objective (so the
    second falls; rows not inside ``ref`` contribute 0), in closed form: a point inside ``ref`` owns the box up to its right neighbour's first objective
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


class Fronts:
    """Results (two minimised objectives) whose first non-dominated fronts are kept exact one result at a time.

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
    ``n_open[r]`` counts the results of front ``r`` not promoted yet (:meth:`promote`: taken by the
    optimizer, e.g. MO-ASHA's promotions); ``version[r]`` counts the
    changes of front ``r``, so that its order by contribution (:meth:`ordered`) is computed once
    per change, not once per promotion.
    """

    def __init__(self):
        self.results: list = []  # what each result stands for (MO-ASHA: its trial and config)
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

    def add(self, result, objectives) -> None:
        index = len(self.results)
        p = (float(objectives[0]), float(objectives[1]), index)
        self.results.append(result)
        self.points.append(p[:2])
        if index == len(self._xy):
            self._xy = np.vstack([self._xy, np.empty_like(self._xy)])
        self._xy[index] = p[:2]
        self.promoted.append(False)
        self.front_of.append(-1)
        fronts, dominated = self.fronts, self._dominated
        lo = hi = len(fronts)
        if hi and not dominated(p, fronts[-1]):  # else to the pool, as most results on a MO-ASHA rung go
            lo = 0
            while lo < hi:  # the first front none of whose members dominates p
                mid = (lo + hi) // 2
                if dominated(p, fronts[mid]):
                    lo = mid + 1
                else:
                    hi = mid
        moved, level = [p], lo
        while moved:
            if level == len(fronts):  # beyond the kept fronts
                for m in moved:
                    old = self.front_of[m[2]]
                    if old >= 0 and not self.promoted[m[2]]:
                        self.n_open[old] -= 1
                    self.front_of[m[2]] = -1
                    self.pool.append(m[2])
                return
            front = fronts[level]
            start = bisect.bisect_left(front, (moved[0][0], -math.inf, -math.inf))  # only these can be dominated
            keep, pushed, stop = [], [], len(front)
            # _dominated(m, moved) for the members in error order, as a merge: the moved point that
            # can dominate m is the last one whose error is not above m's (j only moves forward)
            j, last, floor = 0, len(moved) - 1, moved[-1][1]
            d0, d1 = moved[0][0], moved[0][1]
            for pos in range(start, len(front)):
                m = front[pos]
                m0, m1 = m[0], m[1]
                if m1 < floor:  # sizes fall along the front: no moved point dominates the rest
                    stop = pos
                    break
                while j < last and moved[j + 1][0] <= m0:
                    j += 1
                    d0, d1 = moved[j][0], moved[j][1]
                (pushed if d1 <= m1 and (d0 != m0 or d1 != m1) else keep).append(m)
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
        # front_contributions in Python floats (the same IEEE operations in the same order; fronts
        # are short, and numpy's per-call cost was most of it), then np.lexsort((index, error,
        # -contribution))'s order as one sort of tuples (tested against both). Along a front the
        # error rises and the size falls, so the members inside ``ref`` are one run front[a:b].
        front = self.fronts[level]
        r0, r1 = float(ref[0]), float(ref[1])
        a, b = 0, len(front)
        while a < b and not front[a][1] < r1:
            a += 1
        while b > a and not front[b - 1][0] < r0:
            b -= 1
        keys = [(-0.0, m[0], m[2]) for m in front[:a]]  # outside: no contribution
        up, append = r1, keys.append
        for m, right in zip(front[a:b], front[a + 1 : b] + [(r0,)]):
            append((-((right[0] - m[0]) * (up - m[1])), m[0], m[2]))
            up = m[1]
        keys += [(-0.0, m[0], m[2]) for m in front[b:]]
        keys.sort()
        out = [k[2] for k in keys]
        self._ordered[level] = (self.version[level], out)
        return out

    def front(self, r: int) -> list | None:
        """Front ``r`` (the pool peeled as far as needed), or ``None`` where there are fewer fronts."""
        while r >= len(self.fronts) and self.pool:
            self.peel(1)
        return self.fronts[r] if r < len(self.fronts) else None

    def promote(self, index: int) -> None:
        self.promoted[index] = True
        self.n_open[self.front_of[index]] -= 1
