"""Bulk & Cut (approximation): the paper's network-morphism baseline as moves in the search space.

The original (automl/multi-obj-baselines, ``bulkandcut``) runs three phases of its time budget:

1. 35 %: new random networks, each trained 25 epochs;
2. 40 %, "bulk up": a parent from the first non-dominated front (probability 0.85, else the
   second) is grown by one layer through a network morphism (the child inherits the parent's
   weights) and trained 25 more epochs;
3. 25 %, "cut": a front member loses about 10 % of its units and the child is trained 8 epochs by
   distillation from its parent.

Weights cannot be inherited from a surrogate, so this is an approximation (docs/problem.md §7), and its name
says so. Grow adds one conv or fc layer (a depth below 3, chosen at random) whose width copies a
neighbour's (the morphism's identity layer), cut multiplies every width by 0.9 (rounded, clipped to
the domain); a child keeps its parent's other hyperparameters. As in the original, every network's
learning rate (the initial ones too) comes from a small contextual Bayesian optimisation: a GP on
(log10 lr, depth, log10 params) minimising a lower confidence bound (2.5 standard deviations) over
log10 lr in [-5, 0] (phases 1-2) or [-5, -2] (phase 3), each range with its own GP. The original's
targets are the validation loss (phases 1-2) and the training loss (phase 3); only errors are
observed here, so both use the validation error. Since issue 16 the GP keeps its conditioning
subset between suggestions and extends its Cholesky factor (:mod:`surrobench.optimizers._gp`), so
past 200 results the learning rates suggested differ from earlier versions'; and the bound is
minimised over 64 random learning rates, not 256 (one dimension; the posterior of the candidates
was most of a suggestion's time), which changes every suggestion after the first two results.

A child continues from its parent's checkpoint (``Job(child, parent=trial, from_epoch=...)``): a new
training run of the child's config that inherits the parent's training and pays only the epochs the
original trains the child, on the child's clock. Its errors are the benchmark's for the child at the
maximum epoch, reached after its own epochs on top of what it inherited: a cut child trains
``cut_epochs`` (8) and inherits the rest (from epoch 17 to 25), which stands for pruning a trained
network and distilling it; a grown child trains its full 25 epochs (``from_epoch=0``), since the
benchmark has no epochs beyond 25 to stand for the parent's 25 inherited ones. So a grown child is
scored as a network trained 25 epochs (pessimistic next to a morphism that starts from the parent's
accuracy), and a cut child as fully trained after 8 (optimistic next to a real pruning).

Parents are chosen as in the original ("Paretslon-greedy"): the first front with probability 0.85,
else the second; to grow, networks with both depths at 3 or above 10^8 parameters are excluded and
the rest weighted by (chance-level error - error)^2; to cut, networks below 10^2 parameters (or with
nothing left to cut) are excluded and those not cut yet preferred, uniformly. Where the chosen front
has no eligible member the next fronts are tried in turn, and with none at all a random network
starts instead (tagged ``init``).

Phases split the budget the optimizer is told in ``problem``: simulated seconds when
``problem.time_budget`` is set, where the current time is the latest ``end`` among the observations
told so far (the optimizer has no other clock), else the number of jobs ``problem.max_evaluations``
(35/40/25 % of the asks), else a default of 24 simulated hours (the paper's budget).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..model_size import log10_params
from ..records import Job, Observation, Problem
from ..space import HYPERPARAMETERS, as_rng, sample, validate
from ._common import dataset_facts
from ._fronts import Fronts
from ._gp import GP

__all__ = ["BulkAndCut", "grow", "cut"]

_BY_NAME = {h.name: h for h in HYPERPARAMETERS}
_LAYERS = {"n_conv_l": "n_conv_", "n_fc_l": "n_fc_"}
DAY = 24 * 3600.0


def _depth(config: Mapping[str, Any]) -> int:
    return int(config["n_conv_l"]) + int(config["n_fc_l"])


def _widths(config: Mapping[str, Any], depth: str) -> list[int]:
    return [int(config[f"{_LAYERS[depth]}{i}"]) for i in range(int(config[depth]))]


def _with_widths(config: Mapping[str, Any], depth: str, widths: list[int]) -> dict:
    cfg = {k: v for k, v in config.items() if not k.startswith(_LAYERS[depth])}
    cfg[depth] = len(widths)
    cfg.update({f"{_LAYERS[depth]}{i}": w for i, w in enumerate(widths)})
    return validate(cfg)


def grow(config: Mapping[str, Any], rng: np.random.Generator) -> dict | None:
    """One more conv or fc layer (where the depth is below 3), inserted at a random position with
    the width of a neighbour; ``None`` if both depths are at their maximum."""
    growable = [d for d in _LAYERS if int(config[d]) < int(_BY_NAME[d].upper)]
    if not growable:
        return None
    depth = growable[int(rng.integers(len(growable)))]
    widths = _widths(config, depth)
    pos = int(rng.integers(len(widths) + 1))
    widths.insert(pos, widths[max(pos - 1, 0)])
    return _with_widths(config, depth, widths)


def cut(config: Mapping[str, Any], factor: float = 0.9) -> dict | None:
    """Every conv and fc width times ``factor`` (rounded, clipped to the domain); ``None`` if no
    width can shrink."""
    cfg = dict(config)
    for depth in _LAYERS:
        lower = int(_BY_NAME[f"{_LAYERS[depth]}0"].lower)
        cfg = _with_widths(cfg, depth, [max(lower, int(round(w * factor))) for w in _widths(cfg, depth)])
    return None if cfg == dict(validate(config)) else cfg


class LearningRateBO:
    """The original's constrained BO of the learning rate, with (depth, log10 params) as context.

    A GP (:class:`~surrobench.optimizers._gp.GP`, at most ``max_points`` observations) on
    (log10 lr, total depth, log10 params), scaled to [0, 1], models the validation error; a
    suggestion minimises ``mean - 2.5 std`` over ``n_candidates`` random log10 lr in ``[low, high]``
    with the context fixed (a uniform draw while fewer than two results are known).
    """

    def __init__(self, low: float, high: float, *, max_points: int = 200, n_candidates: int = 64, alpha: float = 2.5):
        self.low, self.high, self.alpha, self.n_candidates = float(low), float(high), float(alpha), int(n_candidates)
        self.gp = GP(3, max_points=max_points, max_fit_points=min(max_points, 100))
        self._X = np.empty((64, 3))  # the rows and errors registered, the first self._n, grown by doubling
        self._y = np.empty(64)
        self._n = 0
        self._fitted = 0

    @staticmethod
    def _row(lr_exp, depth: int, size: float) -> list:
        return [(lr_exp + 5.0) / 5.0, (depth - 2) / 4.0, size / 8.0]

    def register(self, lr: float, depth: int, size: float, error: float) -> None:
        n = self._n
        if n == len(self._X):
            self._X = np.vstack([self._X, np.empty_like(self._X)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._X[n] = self._row(math.log10(lr), depth, size)
        self._y[n] = float(error)
        self._n = n + 1

    def suggest(self, depth: int, size: float, rng: np.random.Generator) -> float:
        """A learning rate for a network of this depth and log10 size."""
        exps = rng.uniform(self.low, self.high, self.n_candidates)
        n = self._n
        if n < 2:
            exp = float(exps[0])
        else:
            if self._fitted != n:
                y = self._y[:n]
                self.gp.fit(self._X[:n], y, lambda: np.argsort(y, kind="stable"), rng)
                self._fitted = n
            X = np.empty((len(exps), 3))  # _row of every candidate, in numpy (the same numbers)
            X[:, 0], X[:, 1], X[:, 2] = self._row(exps, depth, size)
            mean, std = self.gp.predict(X)
            exp = float(exps[int(np.argmin(mean - self.alpha * std))])
        lr = _BY_NAME["lr_init"]
        return min(max(10.0**exp, float(lr.lower)), float(lr.upper))


@dataclass
class _Member:
    config: dict
    objectives: tuple[float, float]
    cut_factor: float
    trial: int  # its training run, whose checkpoint a child continues
    n_bulk: int = 0
    n_cut: int = 0
    _cut: tuple = ()  # (cut_child,) once computed

    @property
    def cut_child(self) -> dict | None:
        """What a cut would give (None: nothing to cut); computed when first asked for, since only
        members of the fronts are ever asked (cut is a pure function of the config)."""
        if not self._cut:
            self._cut = (cut(self.config, self.cut_factor),)
        return self._cut[0]


class BulkAndCut:
    """Bulk & Cut (approximation): random networks, then grown, then cut front members.

    Settings:

    * ``budget_split=(0.35, 0.40, 0.25)``: shares of the budget of the three phases.
    * ``cut_epochs=8``: epochs a cut child trains on top of its parent's checkpoint (the original's
      round(25 / 3)); grown children and initial networks train ``problem.max_epoch`` epochs.
    * ``cut_factor=0.9``: width multiplier of a cut.
    * ``p_first_front=0.85``: probability of choosing the parent from the first front (else the second).
    * ``n_classes=None``: for the chance-level error ``1 - 1/n_classes`` in the original's bulk-up
      parent weights, ``(chance error - error)^2`` (default: the problem's task's).
    * ``time_budget=None``: simulated seconds to split when ``problem`` gives neither a time nor an
      evaluation budget (default: 24 hours).
    * ``max_log10_params=8.0``, ``min_log10_params=2.0``: as the original, networks above 10^8
      parameters are not grown and networks below 10^2 are not cut.
    * ``lr_bo=True``: learning rates from :class:`LearningRateBO` as the original; ``False`` keeps
      the prior's (initial networks) and the parent's (children).
    * ``input_shape=None``: with ``n_classes``, the dataset whose closed-form parameter count is the
      BO's size context (default: the problem's task's).

    See the module docstring for what is approximated and why.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int | np.random.Generator | None = None,
        budget_split: Sequence[float] = (0.35, 0.40, 0.25),
        cut_epochs: int = 8,
        cut_factor: float = 0.9,
        p_first_front: float = 0.85,
        n_classes: int | None = None,
        time_budget: float | None = None,
        max_log10_params: float = 8.0,
        min_log10_params: float = 2.0,
        lr_bo: bool = True,
        input_shape: Sequence[int] | None = None,
    ):
        self.problem = problem
        self.seed = seed
        split = tuple(float(s) for s in budget_split)
        if len(split) != 3 or any(s < 0 for s in split) or not math.isclose(sum(split), 1.0):
            raise ValueError(f"budget_split: expected three non-negative shares summing to 1, got {budget_split!r}")
        self.budget_split = split
        self.boundaries = (split[0], split[0] + split[1])
        self.init_epochs = problem.max_epoch
        self.cut_epochs = min(max(int(cut_epochs), 1), problem.max_epoch)
        start = problem.max_epoch - self.cut_epochs  # the checkpoint a cut child starts from
        self._cut_from = 0 if start <= 0 or problem.min_epoch == problem.max_epoch else min(
            max(start, problem.min_epoch), problem.max_epoch - 1)
        if not 0 < cut_factor < 1:
            raise ValueError(f"cut_factor: must lie in (0, 1), got {cut_factor!r}")
        self.cut_factor = float(cut_factor)
        self.p_first_front = float(p_first_front)
        self.input_shape, self.n_classes = dataset_facts(problem, input_shape, n_classes)
        self.chance_error = 1.0 - 1.0 / self.n_classes
        self.lr_bo = bool(lr_bo)
        self._bo = {"grow": LearningRateBO(-5.0, 0.0), "cut": LearningRateBO(-5.0, -2.0)}
        self.max_log10_params, self.min_log10_params = float(max_log10_params), float(min_log10_params)
        if problem.time_budget is not None:
            self.budget_kind, self.budget = "seconds", float(problem.time_budget)
        elif problem.max_evaluations is not None:
            self.budget_kind, self.budget = "evaluations", float(problem.max_evaluations)
        else:
            self.budget_kind, self.budget = "seconds", float(DAY if time_budget is None else time_budget)
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise ValueError(f"time_budget: must be positive and finite, got {time_budget!r}")
        self._rng = as_rng(seed)
        self._now = 0.0  # latest end among the observations told
        self._asked = 0
        self._population: list[_Member] = []
        self._fronts = Fronts()  # the population's first non-dominated fronts (index = population index)
        self._running: dict[int, tuple[str, float]] = {}  # id(job) -> (phase, size context)

    # -- phases -----------------------------------------------------------------------------
    def progress(self) -> float:
        """Fraction of the budget used, as far as the optimizer can tell."""
        used = self._now if self.budget_kind == "seconds" else self._asked
        return used / self.budget

    def phase(self) -> str:
        """``"init"``, ``"bulk"`` or ``"cut"``, from :meth:`progress`."""
        p = self.progress()
        return "init" if p < self.boundaries[0] else "bulk" if p < self.boundaries[1] else "cut"

    # -- ask / tell -------------------------------------------------------------------------
    def ask(self) -> Job:
        phase = self.phase()
        self._asked += 1
        child, parent = (None, None) if phase == "init" else self._offspring(phase)
        if child is None:
            phase, child, parent = "init", sample(self._rng), None
        size = log10_params(child, self.input_shape, self.n_classes)
        if self.lr_bo:
            bo = self._bo["cut" if phase == "cut" else "grow"]
            child = {**child, "lr_init": bo.suggest(_depth(child), size, self._rng)}
        if parent is None:
            job = Job(child, self.init_epochs, tag=phase)
        else:
            start = self._cut_from if phase == "cut" else 0
            job = Job(child, self.init_epochs, parent=parent.trial, from_epoch=start, tag=phase)
        self._running[id(job)] = (phase, size)
        return job

    def tell(self, observation: Observation) -> None:
        self._now = max(self._now, float(observation.end))
        phase, size = self._running.pop(id(observation.job), (None, 0.0))
        if phase is None:
            return
        cfg = observation.config
        self._bo["cut" if phase == "cut" else "grow"].register(cfg["lr_init"], _depth(cfg), size, observation.val_error)
        self._fronts.add(None, observation.objectives)
        config = dict(observation.config)
        self._population.append(_Member(config, observation.objectives, self.cut_factor, observation.trial))

    # -- selection (the original's "Paretslon-greedy") --------------------------------------
    def _eligible(self, member: _Member, phase: str) -> bool:
        if phase == "bulk":
            growable = int(member.config["n_conv_l"]) < 3 or int(member.config["n_fc_l"]) < 3
            return growable and member.objectives[1] <= self.max_log10_params
        return member.objectives[1] >= self.min_log10_params and member.cut_child is not None

    def _offspring(self, phase: str) -> tuple[dict | None, _Member | None]:
        if not self._population:
            return None, None
        fronts = self._fronts
        first = 0 if self._rng.random() < self.p_first_front or fronts.front(1) is None else 1
        # The chosen front first; where none of it qualifies, the next fronts in turn.
        for r in itertools.chain([first], (r for r in itertools.count() if r != first)):
            front = fronts.front(r)
            if front is None:
                return None, None
            members = (self._population[i] for i in sorted(m[2] for m in front))  # population order
            candidates = [m for m in members if self._eligible(m, phase)]
            if candidates:
                break
        if phase == "bulk":
            weights = np.array([(self.chance_error - m.objectives[0]) ** 2 for m in candidates])
            p = weights / weights.sum() if weights.sum() > 0 else None
            parent = candidates[int(self._rng.choice(len(candidates), p=p))]
            parent.n_bulk += 1
            return grow(parent.config, self._rng), parent
        fresh = [m for m in candidates if m.n_cut == 0]
        pool = fresh or candidates
        parent = pool[int(self._rng.integers(len(pool)))]
        parent.n_cut += 1
        return parent.cut_child, parent
