"""MO-BOHB: Hyperband brackets whose configs come from a multi-objective TPE (docs/problem.md §7).

As the original runs it (Bag of Baselines, Flowers settings): first 50 random configs at the
maximum budget; then Hyperband with eta = 2 between a fifth of the maximum and the maximum
(6.25/12.5/25 epochs in the original, here 6/12/25), brackets cycling from the most aggressive
one. Each new config is random with probability 1/6 (or while no budget has more than
``min_points_in_model`` = 2 x 13 + 1 observations); otherwise, at the largest budget with that many
observations, the observations are split into good and bad: whole non-dominated fronts while they
fit in ``floor(gamma * n)``, gamma = 0.10, the partial front filled greedily by hypervolume
contribution. Each hyperparameter is then drawn on its own: 24 candidates from the good Parzen
estimator, the one with the best ratio l/g is kept (univariate TPE with the original's "James"
bandwidths and a wide prior component, uniform weights).

Differences from the original, on purpose:

* Integers get a proper discrete kernel: the mass of each Gaussian kernel over the integer's bin
  [k - 1/2, k + 1/2] in the normalised (log where log) scale, computed for the candidates drawn. The original integrates from
  x + q/2 to x + q/2 (zero, floored at machine epsilon) for linear integers, so l/g ranks nothing,
  and treats log-scale integers as continuous.
* Inactive hyperparameters: each estimator is fitted on the configs where the hyperparameter is
  active (the good/bad split is made once over all observations of the budget, not per
  hyperparameter over the configs where it is active).
* Promotion keeps exactly ``n_{i+1}`` configs (fronts, then hypervolume contribution); the original
  keeps the whole partial front as well.
* The estimators are refitted once the observations at the model's budget have grown by 2 %
  (``refit_growth``; every new observation while there are fewer than 50, and always with
  ``refit_growth=0`` as in the original), so that a long run on a fast surrogate -- tens of
  thousands of jobs -- stays tractable; l/g of an integer is computed for the candidates drawn.
* Several workers: as in BOHB, when no bracket has a job to give (all wait for results), the next
  bracket starts; the optimizer never answers "nothing to run".
* Each estimator has at most ``max_kernels`` = 512 kernels (since issue 16): where the good or the
  bad configs are more, an evenly spaced selection of them (in the order they were observed) is
  fitted, so that a decision costs O(1) and not O(observations) -- a simulated day on the surrogate
  holds ten thousand results at the lowest budget. The split into good and bad still uses every
  observation, and no random numbers are drawn for the selection, so decisions only change once a
  model holds more than 512 good or bad configs (``max_kernels=None``: every observation, as before;
  hypervolume before and after in docs/performance.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from ..records import Job, Observation, Problem
from ..space import HYPERPARAMETERS, Hyperparameter, as_rng, sample
from ._common import Outstanding, clip_epoch, restrict, select_rank_hv

__all__ = ["MOBOHB", "ParzenEstimator", "CategoricalEstimator", "UnivariateTPE", "ConfigSampler", "tpe_sample"]

_EPS = np.finfo(float).eps


# --------------------------------------------------------------------------- Parzen estimators


def _transform(hp: Hyperparameter):
    """(forward, inverse) between numeric values and the estimator's [0, 1] scale (vectorised).

    Integers own [k - 1/2, k + 1/2], so their domain is widened by half a unit at both ends."""
    a, b, log = _span(hp)
    t, tinv = (np.log, np.exp) if log else ((lambda v: v), (lambda v: v))

    def fwd(v):
        return (t(np.asarray(v, dtype=float)) - a) / (b - a)

    def inv(u):
        return tinv(a + np.asarray(u, dtype=float) * (b - a))

    return fwd, inv


def _span(hp: Hyperparameter) -> tuple[float, float, bool]:
    """``(a, b, log)`` of :func:`_transform`: a value is ``a + u * (b - a)``, exponentiated if ``log``."""
    lo, hi = float(hp.lower), float(hp.upper)
    if hp.kind == "int":
        lo, hi = lo - 0.5, hi + 0.5
    return (float(np.log(lo)), float(np.log(hi)), True) if hp.log else (lo, hi, False)


def _cdf(p: np.ndarray) -> np.ndarray:
    """The table that :func:`_choice` draws from, computed once per estimator."""
    cdf = p.cumsum()
    cdf /= cdf[-1]
    return cdf


def _choice(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """``rng.choice(len(p), size=n, p=p)`` without its checks of ``p``, which cost more than the draw
    here: numpy draws it exactly so (the same uniform numbers, the same indices; tested)."""
    return cdf.searchsorted(rng.random(n), side="right")


class ParzenEstimator:
    """Mixture of Gaussians truncated to [0, 1]: one per observation plus a prior N(0.5, 1), all
    weighted equally; bandwidth of each = the larger gap to its neighbours, clipped to
    [1 / min(100, n), 1] (the "James" rule of the original MO-TPE).

    Densities and masses are evaluated on the distinct kernels, each weighted by how many
    observations share it: integers repeat (a depth has three values, a width about a thousand), so
    a model of thousands of observations has far fewer distinct kernels. The same mixture; the
    sums are rounded differently (since issue 16).

    >>> pe = ParzenEstimator([0.2, 0.25])
    >>> bool(pe.log_pdf(np.array([0.22]))[0] > pe.log_pdf(np.array([0.9]))[0])
    True
    """

    def __init__(self, values):
        mus = np.append(np.asarray(values, dtype=float), 0.5)
        n = mus.size
        order = np.argsort(mus, kind="stable")
        s = mus[order]
        padded = np.concatenate([[s[0]], s, [s[-1]]])
        gaps = np.maximum(padded[1:-1] - padded[:-2], padded[2:] - padded[1:-1])
        sigmas = np.empty(n)
        sigmas[order] = np.clip(gaps, 1.0 / min(100.0, n), 1.0)
        sigmas[-1] = 1.0  # the prior component
        self.mus, self.sigmas = mus, sigmas
        self.weights = np.full(n, 1.0 / n)
        self._cdf = _cdf(self.weights)
        self._lo = ndtr((0.0 - mus) / sigmas)
        self._z = np.maximum(ndtr((1.0 - mus) / sigmas) - self._lo, _EPS)
        by = np.lexsort((sigmas, mus))  # the distinct kernels (in the order of np.unique's rows), for densities
        km, ks = mus[by], sigmas[by]
        head = np.flatnonzero(np.concatenate([[True], (km[1:] != km[:-1]) | (ks[1:] != ks[:-1])]))
        self._kmu, self._ksigma = km[head], ks[head]
        self._kweight = np.diff(np.append(head, n)) / n
        self._kz = np.maximum(ndtr((1.0 - self._kmu) / self._ksigma) - ndtr((0.0 - self._kmu) / self._ksigma), _EPS)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.sample_from(rng.random(2 * n))

    def sample_from(self, uniforms: np.ndarray) -> np.ndarray:
        """``len(uniforms) // 2`` draws from the uniform numbers that :meth:`sample` would draw:
        the first half picks the kernels (as :func:`_choice`), the second places the draws."""
        n = len(uniforms) // 2
        comp = self._cdf.searchsorted(uniforms[:n], side="right")
        u = self._lo[comp] + uniforms[n:] * self._z[comp]
        # np.minimum/np.maximum: np.clip's values without its Python layers (u and x are never NaN or -0.0)
        x = self.mus[comp] + self.sigmas[comp] * ndtri(np.minimum(np.maximum(u, _EPS), 1 - _EPS))
        return np.minimum(np.maximum(x, 0.0), 1.0)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density at ``x`` (continuous hyperparameters)."""
        z = (np.asarray(x, dtype=float)[:, None] - self._kmu) / self._ksigma
        dens = np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * self._ksigma * self._kz)
        return np.log(dens @ self._kweight + _EPS)

    def log_mass(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Log probability of the intervals [lo, hi] (the bins of integer values)."""
        lo = np.asarray(lo, dtype=float)[:, None]
        hi = np.asarray(hi, dtype=float)[:, None]
        mass = (ndtr((hi - self._kmu) / self._ksigma) - ndtr((lo - self._kmu) / self._ksigma)) / self._kz
        return np.log(np.maximum(mass @ self._kweight, _EPS))


class CategoricalEstimator:
    """Aitchison-Aitken kernels (mass ``top`` on the observed choice) plus a uniform component."""

    def __init__(self, indices, n_choices: int, top: float = 0.9):
        idx = np.asarray(indices, dtype=int)
        k = n_choices
        probs = np.full((idx.size + 1, k), (1.0 - top) / (k - 1))
        probs[np.arange(idx.size), idx] = top
        probs[-1] = 1.0 / k
        self.probs = probs.mean(axis=0)
        self._cdf = _cdf(self.probs)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _choice(rng, self._cdf, n)

    def sample_from(self, uniforms: np.ndarray) -> np.ndarray:
        """What :meth:`sample` gives for these uniform numbers (one per draw)."""
        return self._cdf.searchsorted(uniforms, side="right")

    def log_pmf(self, idx: np.ndarray) -> np.ndarray:
        return np.log(self.probs[np.asarray(idx, dtype=int)])


class UnivariateTPE:
    """Good (l) and bad (g) estimators of one hyperparameter and the l/g choice between candidates.

    ``good`` and ``bad`` are the hyperparameter's values in the good and bad configs where it is
    active (an empty list leaves only the prior component)."""

    def __init__(self, hp: Hyperparameter, good: list, bad: list):
        self.hp = hp
        if hp.kind == "cat":
            self.l = CategoricalEstimator([hp.choices.index(v) for v in good], len(hp.choices))
            self.g = CategoricalEstimator([hp.choices.index(v) for v in bad], len(hp.choices))
        else:
            self._fwd, self._inv = _transform(hp)
            self.l = ParzenEstimator(self._fwd(good))
            self.g = ParzenEstimator(self._fwd(bad))
            if hp.kind == "int":  # log l/g of each integer value, computed when first drawn (NaN: not yet)
                self._ratio = np.full(int(hp.upper) + 1, np.nan)

    def log_ratio(self, ints: np.ndarray) -> np.ndarray:
        """log l/g of integer values, from the kernels' masses over their bins [k - 1/2, k + 1/2]
        (each value computed once per model: candidates drawn from l repeat)."""
        ints = np.asarray(ints, dtype=int)
        out = self._ratio[ints]
        missing = np.isnan(out)
        if missing.any():
            new = np.unique(ints[missing]).astype(float)
            lo, hi = self._fwd(new - 0.5), self._fwd(new + 0.5)
            self._ratio[new.astype(int)] = self.l.log_mass(lo, hi) - self.g.log_mass(lo, hi)
            out = self._ratio[ints]
        return out

    def _best_float(self, cands: np.ndarray) -> float:
        """The value of the candidate (in the [0, 1] scale) with the largest l/g."""
        hp = self.hp
        score = self.l.log_pdf(cands) - self.g.log_pdf(cands)
        return float(min(max(float(self._inv(cands[int(np.argmax(score))])), hp.lower), hp.upper))

    def uniforms_needed(self, n_candidates: int) -> int:
        """How many uniform numbers :meth:`sample` draws for ``n_candidates`` candidates."""
        return n_candidates if self.hp.kind == "cat" else 2 * n_candidates

    def sample(self, rng: np.random.Generator, n_candidates: int = 24):
        """The candidate with the largest l/g among ``n_candidates`` draws from l."""
        return self.sample_from(rng.random(self.uniforms_needed(n_candidates)))

    def sample_from(self, uniforms: np.ndarray):
        """:meth:`sample` from the uniform numbers it would draw (:meth:`uniforms_needed` of them), so that
        a config's hyperparameters take theirs from one block (the same numbers as one draw each)."""
        hp = self.hp
        cands = self.l.sample_from(uniforms)
        if hp.kind == "cat":
            score = self.l.log_pmf(cands) - self.g.log_pmf(cands)
            return hp.choices[int(cands[int(np.argmax(score))])]
        if hp.kind == "float":
            return self._best_float(cands)
        ints = np.minimum(np.maximum(np.rint(self._inv(cands)), hp.lower), hp.upper).astype(int)
        score = self.log_ratio(ints)
        return int(ints[int(np.argmax(score))])  # ties go to the first drawn


def tpe_sample(hp: Hyperparameter, good: list, bad: list, rng: np.random.Generator, n_candidates: int = 24):
    """One value of ``hp`` by univariate TPE (see :class:`UnivariateTPE`)."""
    return UnivariateTPE(hp, good, bad).sample(rng, n_candidates)


class ConfigSampler:
    """One TPE draw of every hyperparameter at once: the numbers of :meth:`UnivariateTPE.sample_from`
    for each of ``models``, with the numeric hyperparameters' kernel picks, placements, inverse
    transforms, roundings and cached l/g of integers done in a few array operations for all of
    them together instead of a dozen per hyperparameter (since issue 16; a decision costs tens of
    microseconds less per hyperparameter).

    The same element-wise operations in the same order, so the same numbers: each row picks its
    kernels by its own ``searchsorted``; what is computed for many values at once (the masses of
    integers drawn the first time, the densities of a continuous hyperparameter) is computed by the
    model's own methods on the same arrays as before.
    """

    def __init__(self, models: Sequence[UnivariateTPE], n_candidates: int):
        self.models = list(models)
        self.n = n = int(n_candidates)
        sizes = [m.uniforms_needed(n) for m in self.models]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        self.n_uniforms = int(sum(sizes))
        self.numeric = [i for i, m in enumerate(self.models) if m.hp.kind != "cat"]
        self.ints = [i for i in self.numeric if self.models[i].hp.kind == "int"]
        num = [self.models[i] for i in self.numeric]
        # the continuous rows (among the numeric ones) and the categorical models' slices of the block
        self._floats = [(row, self.models[i]) for row, i in enumerate(self.numeric) if self.models[i].hp.kind == "float"]
        self._cats = [(self.models[i], int(starts[i]), int(starts[i] + sizes[i]))
                      for i, m in enumerate(self.models) if m.hp.kind == "cat"]
        # where each numeric row's kernel picks and placements lie in the block of uniform numbers
        self._pick = np.array([np.arange(starts[i], starts[i] + n) for i in self.numeric], dtype=np.intp).reshape(-1, n)
        self._place = self._pick + n
        offsets = np.concatenate([[0], np.cumsum([m.l.mus.size for m in num])[:-1]]).astype(np.intp)
        self._offsets = offsets[:, None]
        self._lo = np.concatenate([m.l._lo for m in num]) if num else np.empty(0)
        self._z = np.concatenate([m.l._z for m in num]) if num else np.empty(0)
        self._mus = np.concatenate([m.l.mus for m in num]) if num else np.empty(0)
        self._sigmas = np.concatenate([m.l.sigmas for m in num]) if num else np.empty(0)
        self._cdfs = [m.l._cdf for m in num]
        spans = [_span(m.hp) for m in num]
        self._a = np.array([[a] for a, _, _ in spans]).reshape(-1, 1)
        self._width = np.array([[b - a] for a, b, _ in spans]).reshape(-1, 1)
        self._log = np.array([log for _, _, log in spans], dtype=bool)
        # the integer rows (positions among the numeric ones), their bounds and one flat l/g cache
        self._int_rows = np.array([self.numeric.index(i) for i in self.ints], dtype=np.intp)
        ints = [self.models[i] for i in self.ints]
        self._lower = np.array([[float(m.hp.lower)] for m in ints]).reshape(-1, 1)
        self._upper = np.array([[float(m.hp.upper)] for m in ints]).reshape(-1, 1)
        lengths = [m._ratio.size for m in ints]
        self._ratio = np.concatenate([m._ratio for m in ints]) if ints else np.empty(0)
        cut = np.concatenate([[0], np.cumsum(lengths)]).astype(np.intp)
        for m, a, b in zip(ints, cut[:-1], cut[1:]):
            m._ratio = self._ratio[a:b]  # the models fill the shared cache
        self._ratio_offsets = cut[:-1, None]

    def sample_from(self, uniforms: np.ndarray) -> dict:
        """Every model's :meth:`UnivariateTPE.sample_from` value, by name, from the block of uniform
        numbers they would take theirs from (``n_uniforms`` of them, in the models' order)."""
        out: dict[str, Any] = {}
        if self.numeric:
            picks = uniforms[self._pick]
            comp = np.empty(picks.shape, dtype=np.intp)
            for row, cdf in enumerate(self._cdfs):
                comp[row] = cdf.searchsorted(picks[row], side="right")
            comp += self._offsets
            u = self._lo[comp] + uniforms[self._place] * self._z[comp]
            x = self._mus[comp] + self._sigmas[comp] * ndtri(np.minimum(np.maximum(u, _EPS), 1 - _EPS))
            cands = np.minimum(np.maximum(x, 0.0), 1.0)
            values = self._a + cands * self._width
            values[self._log] = np.exp(values[self._log])
            if self.ints:
                ints = np.minimum(np.maximum(np.rint(values[self._int_rows]), self._lower), self._upper).astype(int)
                scores = self._ratio[ints + self._ratio_offsets]
                for row in np.flatnonzero(np.isnan(scores).any(axis=1)):
                    scores[row] = self.models[self.ints[row]].log_ratio(ints[row])
                best = ints[np.arange(len(ints)), np.argmax(scores, axis=1)]
                for i, v in zip(self.ints, best.tolist()):
                    out[self.models[i].hp.name] = v
        for row, m in self._floats:
            out[m.hp.name] = m._best_float(cands[row])
        for m, a, b in self._cats:
            out[m.hp.name] = m.sample_from(uniforms[a:b])
        return {m.hp.name: out[m.hp.name] for m in self.models}


def _evenly(items: list, at_most: int | None) -> list:
    """``items`` if they are at most ``at_most``, else ``at_most`` of them evenly spaced (first and last kept).

    >>> _evenly(list(range(10)), 4)
    [0, 3, 6, 9]
    """
    if at_most is None or len(items) <= at_most:
        return items
    if at_most == 1:
        return items[:1]
    return [items[i] for i in np.rint(np.linspace(0, len(items) - 1, at_most)).astype(int)]


# --------------------------------------------------------------------------- Hyperband


class _Bracket:
    def __init__(self, ident: int, epochs: list[int], sizes: list[int], random_only: bool):
        self.ident, self.epochs, self.sizes, self.random_only = ident, epochs, sizes, random_only
        self.stage = 0
        self.to_sample = sizes[0]
        self.promote: list[tuple] = []  # (config, trial, epoch reached) waiting for a job
        self.results: list[tuple] = []  # (config, objectives, trial, epoch) of the current stage

    @property
    def has_job(self) -> bool:
        return self.to_sample > 0 or bool(self.promote)


class MOBOHB:
    """MO-BOHB: Hyperband (eta 2; 6/12/25 epochs) with a multi-objective TPE sampler."""

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int | np.random.Generator | None = None,
        eta: float = 2,
        min_budget: float | None = None,
        max_budget: float | None = None,
        n_initial: int = 50,
        gamma: float = 0.10,
        n_candidates: int = 24,
        random_fraction: float = 1 / 6,
        min_points_in_model: int | None = None,
        continue_trials: bool = False,
        ref_point: tuple[float, float] | None = None,
        refit_growth: float = 0.02,
        max_kernels: int | None = 512,
    ):
        if eta <= 1 or not 0 < gamma < 1 or not 0 <= random_fraction <= 1 or n_candidates < 1 or n_initial < 0:
            raise ValueError("MOBOHB: need eta > 1, 0 < gamma < 1, 0 <= random_fraction <= 1, "
                             "n_candidates >= 1, n_initial >= 0")
        self.problem = problem
        self.seed = seed
        self.eta = eta
        self.max_budget = float(problem.max_epoch if max_budget is None else max_budget)
        self.min_budget = float(max(problem.min_epoch, problem.max_epoch / 5) if min_budget is None else min_budget)
        if not 0 < self.min_budget <= self.max_budget:
            raise ValueError(f"MOBOHB: need 0 < min_budget <= max_budget, got {self.min_budget:g} and {self.max_budget:g}")
        self.n_initial = int(n_initial)
        self.gamma = gamma
        self.n_candidates = int(n_candidates)
        self.random_fraction = random_fraction
        self.min_points_in_model = 2 * len(HYPERPARAMETERS) + 1 if min_points_in_model is None else int(min_points_in_model)
        self.continue_trials = bool(continue_trials)
        self.ref_point = ref_point
        if refit_growth < 0:
            raise ValueError(f"MOBOHB: refit_growth must be >= 0, got {refit_growth}")
        self.refit_growth = refit_growth
        if max_kernels is not None and max_kernels < 1:
            raise ValueError(f"MOBOHB: max_kernels must be >= 1 or None, got {max_kernels}")
        self.max_kernels = max_kernels

        n_rungs = max(1, -int(math.log(self.min_budget / self.max_budget) / math.log(eta)) + 1)
        raw = [self.max_budget * eta ** (-k) for k in range(n_rungs - 1, -1, -1)]
        self.budgets = sorted({clip_epoch(b, problem) for b in raw})  # 6, 12, 25 for 1..25

        self._rng = as_rng(seed)
        self._out = Outstanding()
        self._brackets: list[_Bracket] = []
        self._n_brackets = 0
        self._history: dict[int, list[tuple]] = {}  # epoch -> [(config, objectives)]
        self._model_cache: dict[int, tuple[int, ConfigSampler | None]] = {}
        if self.n_initial:
            self._brackets.append(self._new_bracket([problem.max_epoch], [self.n_initial], random_only=True))

    def _new_bracket(self, epochs, sizes, random_only=False) -> _Bracket:
        b = _Bracket(self._n_brackets, epochs, sizes, random_only)
        self._n_brackets += 1
        return b

    def _next_hyperband_bracket(self) -> _Bracket:
        n_rungs = len(self.budgets)
        hb = self._n_brackets - (1 if self.n_initial else 0)
        s = n_rungs - 1 - hb % n_rungs
        n0 = int(math.floor(n_rungs / (s + 1)) * self.eta**s)
        sizes = [max(int(n0 * self.eta ** (-i)), 1) for i in range(s + 1)]
        return self._new_bracket(self.budgets[-s - 1:], sizes)

    # ------------------------------------------------------------------ ask

    def ask(self) -> Job:
        bracket = next((b for b in self._brackets if b.has_job), None)
        if bracket is None:
            bracket = self._next_hyperband_bracket()
            self._brackets.append(bracket)
        epoch = bracket.epochs[bracket.stage]
        tag = f"mobohb:b{bracket.ident}:s{bracket.stage}"
        if bracket.promote:
            config, trial, reached = bracket.promote.pop(0)
            if self.continue_trials and reached < epoch:
                job = Job(config, epoch, trial=trial, from_epoch=reached, tag=tag)
            else:
                job = Job(config, epoch, tag=tag)
        else:
            bracket.to_sample -= 1
            job = Job._from_valid(self._sample(bracket.random_only), epoch, tag=tag)  # sample()'s or restrict()'s
        return self._out.add(job, bracket)

    def _sample(self, random_only: bool) -> dict:
        u = self._rng.random()
        budget = self._model_budget()
        if random_only or budget is None or u < self.random_fraction:
            return sample(self._rng)
        sampler = self._model(budget)
        if sampler is None:
            return sample(self._rng)
        # one block of uniform numbers, taken in the order the hyperparameters would draw theirs
        return restrict(sampler.sample_from(self._rng.random(sampler.n_uniforms)))

    def _model_budget(self) -> int | None:
        ok = [e for e, h in self._history.items() if len(h) > self.min_points_in_model]
        return max(ok) if ok else None

    def _model(self, epoch: int) -> ConfigSampler | None:
        """The per-hyperparameter estimators fitted to the good/bad split at ``epoch``; refitted
        once the observations there have grown by ``refit_growth`` (at least one)."""
        hist = self._history[epoch]
        cached = self._model_cache.get(epoch)
        if cached is not None and (len(hist) == cached[0] or len(hist) < cached[0] * (1 + self.refit_growth)):
            return cached[1]
        good, bad = self.split(epoch)
        good, bad = _evenly(good, self.max_kernels), _evenly(bad, self.max_kernels)
        models = None
        if good:
            models = ConfigSampler([UnivariateTPE(hp, [c[hp.name] for c in good if hp.name in c],
                                                  [c[hp.name] for c in bad if hp.name in c]) for hp in HYPERPARAMETERS],
                                   self.n_candidates)
        self._model_cache[epoch] = (len(hist), models)
        return models

    def split(self, epoch: int) -> tuple[list, list]:
        """Good and bad configs observed at ``epoch``: fronts, then HV contribution, gamma of them good."""
        hist = self._history[epoch]
        n_good = int(math.floor(self.gamma * len(hist)))
        pts = np.array([o for _, o in hist])
        chosen = set(select_rank_hv(pts, n_good, ref=self.ref_point).tolist())
        good = [c for i, (c, _) in enumerate(hist) if i in chosen]
        bad = [c for i, (c, _) in enumerate(hist) if i not in chosen]
        return good, bad

    # ------------------------------------------------------------------ tell

    def tell(self, observation: Observation) -> None:
        bracket = self._out.pop(observation)
        self._history.setdefault(observation.epoch, []).append((observation.config, observation.objectives))
        bracket.results.append((observation.config, observation.objectives, observation.trial, observation.epoch))
        if len(bracket.results) < bracket.sizes[bracket.stage]:
            return
        if bracket.stage == len(bracket.epochs) - 1:
            self._brackets.remove(bracket)
            return
        pts = np.array([r[1] for r in bracket.results])
        keep = select_rank_hv(pts, bracket.sizes[bracket.stage + 1], ref=self.ref_point)
        bracket.promote = [(bracket.results[i][0], bracket.results[i][2], bracket.results[i][3]) for i in sorted(keep)]
        bracket.results = []
        bracket.stage += 1
