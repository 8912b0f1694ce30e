"""Bayesian optimisation with exact two-objective EHVI, shared by MS-EHVI and EHVI.

The loop: ``n_init`` configs from the priors, then one config per ask that maximises the expected
hypervolume improvement of (validation error, log10 params) over the current front, all at the
maximum fidelity. Validation error is a :class:`~surrobench.optimizers._gp.GP`; model size is
either the exact closed-form count (MS-EHVI, the "mixed surrogate") or a second GP (EHVI).

The acquisition is maximised over the mixed space by scoring ``n_candidates`` configs from the
priors plus ``n_local`` local moves (one or two hyperparameters of a front member changed: a
numeric one shifted by a Gaussian step of 0.15 in its [0, 1] encoding, a category or a depth
changed), then ``n_refine`` x 16 local moves around the best ``n_refine`` of those; every candidate
is a valid config, and configs already evaluated or running are excluded.

Candidates are rows of values (:mod:`surrobench.optimizers._rows`): drawn, moved, encoded and
sized for the whole block with numpy, scored in one vectorised EHVI pass, and only the winner
becomes a config. Changed decisions (issue 16): before, 256 prior configs + 128 local moves +
8 x 16 refinements were built one dict at a time with the generator used per value; then 64 + 128
+ 4 x 16 rows were drawn in blocks (the same distributions, other random numbers), and the GP
keeps its conditioning subset between decisions (:mod:`surrobench.optimizers._gp`); now 32 + 64 +
2 x 16 rows (half as many: the posterior of the candidates on the 500-point subset is most of a
decision's time). The first ``n_init`` configs are drawn as before. ``tools/compare_versions.py``
shows the hypervolume at equal evaluations before and after each change (docs/performance.md).

``at_cap=(prior configs, local moves)`` (off by default) scores a smaller first block once there
are more observations than the GP's subset holds (``max_gp_points``): there, every first-block
candidate costs kernel rows against the whole subset, and the refinements win nearly every decision
(``tools/ehvi_winners.py``). ``at_cap=(8, 32)`` changes the decisions past the cap; its cost and
hypervolume against the defaults are in docs/performance.md.

Only the candidates that can still win are scored exactly (branch and bound, :meth:`GPEHVI._score`):
an O(n) upper bound on every candidate's EHVI prunes the rest, which saves most of the O(n^2)
posterior solves at the 500-point cap. The winner and the refined candidates are those of scoring
every candidate, except that the exact scores are now computed in smaller blocks, whose rounding can
differ in the last bits: a near-tie (two scores within about 1e-16 of each other) could go the other
way. In every run we compared (10 seeds x 800 evaluations on the toy benchmark and on flowers17;
runs of 3 and 2 simulated hours at 1 and 4 workers; the 24-hour protocol table) no decision changed.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping, Sequence

import moocore
import numpy as np

from ..model_size import log10_params
from ..records import Job, Observation, Problem
from ..space import HYPERPARAMETERS, REFERENCE_POINT, as_rng, sample
from ._common import dataset_facts
from ._ehvi import ehvi_over_strips, front_strips
from ._fronts import Fronts
from ._gp import GP
from ._rows import encode_rows, log10_size_rows, mutate_rows, row_key, rows_of, sample_rows, to_config

__all__ = ["GPEHVI", "mutate"]

_MOVES_PER_REFINED = 16
_FIRST_ROUND = 16  # candidates scored exactly before the bound prunes (see GPEHVI._score)
_MARGIN = 1e-9  # relative slack of the EHVI bound's inputs and value over rounding


def _key(config: Mapping[str, Any]) -> bytes:
    """A hashable identity of a validated config: the bytes of its row (:mod:`._rows`)."""
    return row_key(rows_of([config])[0])


def mutate(config: Mapping[str, Any], rng: np.random.Generator, *, step: float = 0.15) -> dict[str, Any]:
    """A local move: one or two active hyperparameters of ``config`` changed (always a valid config).

    ``config`` must be valid already. A number moves by ``N(0, step)`` in its [0, 1] encoding (an
    integer that rounds back to its value moves by one instead), a category takes another value, a
    depth moves by one layer (a new layer's width is drawn from its prior, a removed layer's width is
    dropped). One row of :func:`~surrobench.optimizers._rows.mutate_rows`.
    """
    return to_config(mutate_rows(rows_of([config]), rng, step=step)[0])


class GPEHVI:
    """The shared implementation; use :class:`~surrobench.optimizers.msehvi.MSEHVI` or
    :class:`~surrobench.optimizers.ehvi.EHVI`."""

    def __init__(
        self,
        problem: Problem,
        *,
        exact_size: bool,
        seed: int | np.random.Generator | None = None,
        n_init: int = 50,
        ref_point: Sequence[float] = REFERENCE_POINT,
        input_shape: Sequence[int] | None = None,
        n_classes: int | None = None,
        max_gp_points: int = 500,
        max_fit_points: int = 200,
        refit_growth: float = 1.25,
        n_candidates: int = 32,
        n_local: int = 64,
        n_refine: int = 2,
        at_cap: Sequence[int] | None = None,
        epoch: int | None = None,
    ):
        self.problem = problem
        self.seed = seed
        self.exact_size = bool(exact_size)
        self.epoch = problem.max_epoch if epoch is None else epoch
        if not problem.min_epoch <= self.epoch <= problem.max_epoch:
            raise ValueError(f"epoch: must lie in {problem.min_epoch}..{problem.max_epoch}, got {self.epoch}")
        self.ref_point = tuple(float(v) for v in ref_point)
        if len(self.ref_point) != 2 or not all(math.isfinite(v) for v in self.ref_point):
            raise ValueError(f"ref_point: expected two finite numbers, got {ref_point!r}")
        for name, value, low in (("n_init", n_init, 0), ("n_candidates", n_candidates, 1),
                                 ("n_local", n_local, 0), ("n_refine", n_refine, 0),
                                 ("max_gp_points", max_gp_points, 2), ("max_fit_points", max_fit_points, 2)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name}: must be an int >= {low}, got {value!r}")
        if isinstance(refit_growth, bool) or not isinstance(refit_growth, (int, float)) or not refit_growth >= 1.0:
            raise ValueError(f"refit_growth: must be a number >= 1, got {refit_growth!r}")
        self.n_init, self.n_candidates = int(n_init), int(n_candidates)
        self.n_local, self.n_refine = int(n_local), int(n_refine)
        if at_cap is not None:
            at_cap = tuple(at_cap)
            if len(at_cap) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in at_cap) \
                    or at_cap[0] < 1 or at_cap[1] < 0:
                raise ValueError(f"at_cap: expected None or (prior configs >= 1, local moves >= 0), got {at_cap!r}")
            at_cap = (int(at_cap[0]), int(at_cap[1]))
        self.at_cap = at_cap
        self.input_shape, self.n_classes = dataset_facts(problem, input_shape, n_classes)
        self._rng = as_rng(seed)
        gp_settings = dict(max_points=max_gp_points, max_fit_points=max_fit_points, refit_growth=refit_growth)
        self.gp_error = GP(len(HYPERPARAMETERS), **gp_settings)
        self.gp_size = None if self.exact_size else GP(len(HYPERPARAMETERS), **gp_settings)
        self._asked = 0
        self._pending: dict[int, Job] = {}  # id(job) -> job still running
        self._configs: list[dict] = []
        self._error: list[float] = []
        self._size: list[float] = []
        self._objectives = np.empty((64, 2))  # (error, size) of the first len(self._error) observations
        self._fronts = Fronts()  # their first non-dominated fronts, kept as they come (index = observation)
        # the observed configs as rows (._rows) and encoded, the first len(self._error) of each, grown by doubling
        self._rows = np.empty((64, len(HYPERPARAMETERS)))
        self._X = np.empty((64, len(HYPERPARAMETERS)))
        self._seen: set[bytes] = set()  # configs evaluated or running at self.epoch (as _key)

    # -- model size -----------------------------------------------------------------------
    def size(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The exact model-size objective, log10 of the closed-form parameter count."""
        return np.array([log10_params(c, self.input_shape, self.n_classes) for c in configs])

    def _check_size(self, obs: Observation) -> None:
        if abs(float(self.size([obs.config])[0]) - obs.log10_params) > 1e-6:
            raise ValueError(
                f"MS-EHVI: the observed log10_params {obs.log10_params:.6f} is not the exact count for "
                f"input_shape={self.input_shape}, n_classes={self.n_classes}: build the optimizer with the benchmark's "
                "problem (bench.problem()) or the benchmark's input_shape and n_classes"
            )

    # -- ask / tell -----------------------------------------------------------------------
    def ask(self) -> Job:
        self._asked += 1
        if self._asked <= self.n_init or len(self._error) < 2:
            cfg, tag = self._fresh_random(), "init"
        else:
            cfg, tag = self._propose(), "ehvi"
        job = Job(cfg, self.epoch, tag=tag)
        self._pending[id(job)] = job
        self._seen.add(_key(job.config))
        return job

    def tell(self, observation: Observation) -> None:
        job = self._pending.pop(id(observation.job), None)
        if job is None or observation.epoch != self.epoch:
            return
        if self.exact_size:
            self._check_size(observation)
        self._configs.append(dict(observation.config))
        row = rows_of([observation.config])
        n = len(self._error)
        if n == len(self._rows):
            self._rows = np.vstack([self._rows, np.empty_like(self._rows)])
            self._X = np.vstack([self._X, np.empty_like(self._X)])
            self._objectives = np.vstack([self._objectives, np.empty_like(self._objectives)])
        self._rows[n] = row[0]
        self._X[n] = encode_rows(row)[0]
        self._error.append(float(observation.val_error))
        self._size.append(float(observation.log10_params))
        self._objectives[n] = self._error[-1], self._size[-1]
        self._fronts.add(None, self._objectives[n])

    def _fresh_random(self) -> dict:
        for _ in range(100):
            cfg = sample(self._rng)
            if _key(cfg) not in self._seen:
                return cfg
        return cfg

    # -- acquisition ----------------------------------------------------------------------
    def _propose(self) -> dict:
        n = len(self._error)
        X, objectives = self._X[:n], self._objectives[:n]
        err, size = objectives[:, 0], objectives[:, 1]

        @functools.cache
        def order():  # best first: by front, then error; needed only when a GP picks its subset
            return np.lexsort((err, np.asarray(moocore.pareto_rank(objectives))))

        self.gp_error.fit(X, err, order, self._rng)
        if self.gp_size is not None:
            self.gp_size.fit(X, size, order, self._rng)
        first = np.array(sorted(m[2] for m in self._fronts.front(0)))  # the non-dominated, in observation order
        pending = rows_of([j.config for j in self._pending.values()])
        Xp = encode_rows(pending) if len(pending) else None
        front = objectives[first]
        if len(pending):  # kriging believer: running jobs count at their predicted objectives
            believed = np.column_stack([self.gp_error.predict(Xp)[0], self._size_model(pending, Xp, None)[0]])
            front = np.vstack([front, believed])

        strips = front_strips(front, self.ref_point)
        members = self._rows[first]
        n_prior, n_local = self._block_sizes(n)
        parents = members[self._rng.integers(len(members), size=n_local)]
        pool, scores = self._score(np.vstack([sample_rows(self._rng, n_prior),
                                              mutate_rows(parents, self._rng)]), strips, Xp, max(1, self.n_refine))
        if self.n_refine and len(pool):
            best = np.argsort(-scores, kind="stable")[: self.n_refine]
            moves = mutate_rows(np.repeat(pool[best], _MOVES_PER_REFINED, axis=0), self._rng)
            more, more_scores = self._score(moves, strips, Xp, 1, floor=float(scores.max()))
            pool, scores = np.vstack([pool, more]), np.concatenate([scores, more_scores])
        if not len(pool):
            return self._fresh_random()
        return to_config(pool[int(np.argmax(scores))])

    def _block_sizes(self, n: int) -> tuple[int, int]:
        """How many prior configs and local moves a decision scores first, with ``n`` observations:
        ``at_cap`` (when given) once they are more than the GP's subset holds, else
        ``n_candidates`` and ``n_local``."""
        if self.at_cap is not None and n > self.gp_error.max_points:
            return self.at_cap
        return self.n_candidates, self.n_local

    def _size_model(self, rows, X, pending):
        if self.gp_size is None:
            return log10_size_rows(rows, self.input_shape, self.n_classes), np.zeros(len(rows))
        return self.gp_size.predict(X, pending)

    def _score(self, rows: np.ndarray, strips, Xp, top: int, floor: float = -math.inf) -> tuple[np.ndarray, np.ndarray]:
        """The candidate rows not evaluated or running yet (duplicates dropped) that can be among the
        ``top`` best by EHVI over the front's ``strips`` (:func:`~surrobench.optimizers._ehvi.front_strips`)
        or reach ``floor``, and their EHVI, in the order given.

        Branch and bound: the GPs' :meth:`~surrobench.optimizers._gp.GP.bound` gives every candidate
        its mean and an upper bound on its standard deviation in O(n), and EHVI grows with the
        standard deviation and falls with the mean (the improvement is convex and non-increasing in
        each objective), so EHVI at (mean - margin, bound) bounds the EHVI from above. Candidates are
        scored exactly (:meth:`~surrobench.optimizers._gp.GP.predict`, O(n^2) each) in the order of
        their bounds: first the ``_FIRST_ROUND`` highest, then every one whose bound still reaches
        the ``top``-th best exact score (or ``floor``). The others cannot be chosen, so are dropped.
        """
        keep, ids = [], set()
        for i, row in enumerate(rows):
            cid = row.tobytes()
            if cid not in self._seen and cid not in ids:
                ids.add(cid)
                keep.append(i)
        rows = rows[keep]
        if not len(rows):
            return rows, np.empty(0)
        Xc = encode_rows(rows)
        err = self.gp_error.bound(Xc)
        size = (log10_size_rows(rows, self.input_shape, self.n_classes), np.zeros(len(rows)), None) \
            if self.gp_size is None else self.gp_size.bound(Xc)
        size_scale = None if self.gp_size is None else self.gp_size.scale
        upper = ehvi_over_strips(*_loosened(err, self.gp_error.scale), *_loosened(size, size_scale), *strips)
        upper *= 1.0 + _MARGIN
        order = np.argsort(-upper, kind="stable")
        scored = np.zeros(len(rows), dtype=bool)
        scores = np.full(len(rows), -math.inf)
        batch = order[:_FIRST_ROUND]
        batch = batch[upper[batch] >= floor]
        while len(batch):
            batch = np.sort(batch)
            scored[batch] = True
            mean_e, std_e = self.gp_error.predict(Xc[batch], Xp, kernel=err[2][batch])
            if self.gp_size is None:
                mean_s, std_s = size[0][batch], size[1][batch]
            else:
                mean_s, std_s = self.gp_size.predict(Xc[batch], Xp, kernel=size[2][batch])
            scores[batch] = ehvi_over_strips(mean_e, std_e, mean_s, std_s, *strips)
            ranked = np.sort(scores[scored])[::-1]
            bar = max(floor, float(ranked[top - 1])) if len(ranked) >= top else floor  # fewer than top: all
            batch = np.flatnonzero(~scored & (upper >= bar))
        return rows[scored], scores[scored]


def _loosened(bound, scale) -> tuple[np.ndarray, np.ndarray]:
    """A GP's (mean, std bound) moved by margins far above rounding (lower mean, larger spread):
    the bound's mean is the exact one's only up to rounding. An exact size (``scale`` None) stays."""
    mean, std = bound[0], bound[1]
    if scale is None:
        return mean, std
    return mean - _MARGIN * (np.abs(mean) + scale), std * (1.0 + _MARGIN) + _MARGIN * scale
