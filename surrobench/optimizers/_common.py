"""Helpers shared by the evolutionary and multi-fidelity optimizers.

Objective arrays are ``(n, 2)`` and minimised. Orders:

* :func:`nsga_order` -- non-dominated front, then crowding distance (NSGA-II).
* :func:`sms_order` -- non-dominated front, then hypervolume contribution (SMS-EMOA).
* :func:`select_rank_hv` -- the best ``k`` rows: whole fronts while they fit, the partial front
  filled greedily by hypervolume contribution (MO-TPE's good/bad split, MO-BOHB's promotions).

Variation operators take and return valid configs. They work on a *full* assignment of all 13
hyperparameters: values a config lacks (inactive) are taken from a partner where it has them, else
drawn from the prior, so a child whose depth grows gets sensible widths and a child whose depth
shrinks drops its extra widths.

>>> crowding_distance([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]]).tolist()
[inf, 2.0, inf]
>>> nondominated_ranks([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [3.0, 3.0]]).tolist()
[0, 0, 1, 2]
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import moocore
import numpy as np
from scipy.special import ndtr, ndtri

from ..model_size import log10_params
from ..records import Job, Observation, Problem
from ..space import _DRAW_RUNS, HYPERPARAMETERS, NAMES, REFERENCE_POINT, is_active, sample, validate

__all__ = [
    "DEPTHS",
    "REFERENCE_POINT",
    "nondominated_ranks",
    "crowding_distance",
    "crowding_by_front",
    "nsga_order",
    "sms_order",
    "hv_contributions",
    "select_rank_hv",
    "smallest_contributor",
    "full_values",
    "restrict",
    "mutate_resample",
    "mutate_gaussian",
    "uniform_crossover",
    "sbx_crossover",
    "polynomial_mutation",
    "clip_epoch",
    "halving_budgets",
    "dataset_facts",
    "Outstanding",
]

DEPTHS = ("n_conv_l", "n_fc_l")
"""The depth hyperparameters; SH-EMOA and MO-BANANAS keep them fixed under variation by default."""

_HP = {hp.name: hp for hp in HYPERPARAMETERS}


# --------------------------------------------------------------------------- Pareto orders


def _objectives(points) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.ndim != 2 or (arr.size and not np.isfinite(arr).all()):
        raise ValueError(f"objectives: expected a finite (n, m) array, got shape {arr.shape}")
    return arr


def nondominated_ranks(points) -> np.ndarray:
    """Front index of every row (0 = non-dominated); equal rows share a front."""
    arr = _objectives(points)
    if len(arr) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(arr), dtype=int)


def crowding_distance(points) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (extremes get ``inf``; of equal rows,
    the first in the input is taken as the extreme)."""
    arr = _objectives(points)
    n = len(arr)
    dist = np.zeros(n)
    if n <= 2:
        dist[:] = np.inf
        return dist
    m = arr.shape[1]
    for j in range(m):
        # ties in objective j are ordered by the others, so distinct rows get the same distances in any order
        order = np.lexsort([arr[:, c] for c in reversed(range(m)) if c != j] + [arr[:, j]])
        col = arr[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def _ref_beyond(arr: np.ndarray, ref: Sequence[float] | None) -> np.ndarray:
    """A reference point strictly worse than every row: ``ref`` widened where rows pass it."""
    worst = arr.max(axis=0)
    base = worst + 0.1 * np.abs(worst) + 1e-9 if ref is None else np.asarray(ref, dtype=float)
    return np.maximum(base, worst + 1e-9)


def hv_contributions(points, *, ref: Sequence[float] | None = None) -> np.ndarray:
    """Exclusive hypervolume contribution of every row (dominated and duplicated rows get 0).

    ``ref`` defaults to the nadir widened by 10 %; it is widened where a row lies beyond it.
    """
    arr = _objectives(points)
    if len(arr) == 0:
        return np.zeros(0)
    return np.asarray(moocore.hv_contributions(arr, ref=_ref_beyond(arr, ref)), dtype=float)


def crowding_by_front(points, ranks) -> np.ndarray:
    """:func:`crowding_distance` of every row within its front (``ranks``), all fronts at once: the
    same sorts (front first, then the objective, then the others, then the index) and the same
    arithmetic in the same order, so the same numbers bit for bit (tested), without a call per front."""
    arr = _objectives(points)
    ranks = np.asarray(ranks)
    n, m = arr.shape
    dist = np.zeros(n)
    if n == 0:
        return dist
    for j in range(m):
        order = np.lexsort([arr[:, c] for c in reversed(range(m)) if c != j] + [arr[:, j], ranks])
        col, r = arr[order, j], ranks[order]
        change = r[1:] != r[:-1]
        first, last = np.concatenate([[True], change]), np.concatenate([change, [True]])
        segment = np.cumsum(first) - 1
        span = (col[last] - col[first])[segment]
        inner = np.flatnonzero(~first & ~last & (span > 0))
        dist[order[inner]] += (col[inner + 1] - col[inner - 1]) / span[inner]
        dist[order[first | last]] = np.inf
    return dist


def nsga_order(points) -> np.ndarray:
    """Row indices, best first: by front, then by crowding distance (larger first), then index."""
    arr = _objectives(points)
    ranks = nondominated_ranks(arr)
    return np.lexsort((np.arange(len(arr)), -crowding_by_front(arr, ranks), ranks))


def contributions_by_front(points, ranks, *, ref: Sequence[float] | None = None) -> np.ndarray:
    """:func:`hv_contributions` of every row within its front (``ranks``), each front with its own
    widened reference point. Two objectives: all fronts in one vectorised pass, in closed form (a
    row owns the box up to its right neighbour's first objective and its left neighbour's second
    within its front sorted by the first; equal rows own nothing), the same numbers as moocore's
    per front, bit for bit (tested). Other dimensions: one moocore call per front."""
    arr = _objectives(points)
    ranks = np.asarray(ranks)
    n = len(arr)
    contrib = np.zeros(n)
    if n == 0:
        return contrib
    if arr.shape[1] != 2:
        for r in np.unique(ranks):
            idx = np.flatnonzero(ranks == r)
            contrib[idx] = hv_contributions(arr[idx], ref=ref)
        return contrib
    order = np.lexsort((arr[:, 1], arr[:, 0], ranks))  # by front, then along it (the size falls)
    pts, r = arr[order], ranks[order]
    first = np.concatenate([[True], r[1:] != r[:-1]])
    last = np.concatenate([r[1:] != r[:-1], [True]])
    starts = np.flatnonzero(first)
    segment = np.cumsum(first) - 1
    worst = np.maximum.reduceat(pts, starts, axis=0)  # each front's _ref_beyond, row by row
    base = worst + 0.1 * np.abs(worst) + 1e-9 if ref is None else np.asarray(ref, dtype=float)[None, :]
    front_ref = np.maximum(base, worst + 1e-9)[segment]
    # np.roll's values (the next row's first objective, the previous row's second), without its per-call cost
    right = np.where(last, front_ref[:, 0], np.concatenate((pts[1:, 0], pts[:1, 0])))
    up = np.where(first, front_ref[:, 1], np.concatenate((pts[-1:, 1], pts[:-1, 1])))
    contrib[order] = (right - pts[:, 0]) * (up - pts[:, 1])
    return contrib


def sms_order(points, *, ref: Sequence[float] | None = None) -> np.ndarray:
    """Row indices, best first: by front, then by hypervolume contribution within the front."""
    arr = _objectives(points)
    ranks = nondominated_ranks(arr)
    contrib = contributions_by_front(arr, ranks, ref=ref)
    return np.lexsort((np.arange(len(arr)), -contrib, ranks))


def select_rank_hv(points, k: int, *, ref: Sequence[float] | None = None) -> np.ndarray:
    """Indices of ``k`` rows: whole fronts while they fit, then the partial front filled greedily,
    each time with the row that adds the most hypervolume to the rows already taken from it."""
    arr = _objectives(points)
    k = max(0, min(int(k), len(arr)))
    if k == 0:
        return np.zeros(0, dtype=int)
    ranks = nondominated_ranks(arr)
    chosen: list[int] = []
    r = 0
    while len(chosen) + int((ranks == r).sum()) <= k:
        chosen.extend(np.flatnonzero(ranks == r).tolist())
        r += 1
        if len(chosen) == k:
            return np.asarray(chosen, dtype=int)
    rest = np.flatnonzero(ranks == r)
    ref_pt = _ref_beyond(arr, ref)
    taken: list[int] = []
    while len(chosen) < k:
        gains = _greedy_gains(arr, taken, rest, ref_pt)
        best = int(rest[int(np.argmax(gains))])  # first of equal gains: deterministic
        rest = rest[rest != best]
        taken.append(best)
        chosen.append(best)
    return np.asarray(chosen, dtype=int)


def _greedy_gains(arr: np.ndarray, taken: list[int], rest: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume each row of ``rest`` adds to the rows ``taken`` (all from one front)."""
    if arr.shape[1] != 2:
        base = moocore.hypervolume(arr[taken], ref=ref) if taken else 0.0
        return np.array([moocore.hypervolume(arr[taken + [int(i)]], ref=ref) - base for i in rest])
    # Two objectives, mutually non-dominated rows: a row adds the rectangle between itself, the
    # next taken row to its right (its x) and the next taken row to its left (its y).
    pts = arr[rest]
    if taken:
        s = arr[taken]
        s = s[np.argsort(s[:, 0], kind="stable")]
        right = np.searchsorted(s[:, 0], pts[:, 0], side="left")
        x_hi = np.where(right < len(s), s[np.minimum(right, len(s) - 1), 0], ref[0])
        left = right - 1
        y_hi = np.where(left >= 0, s[np.maximum(left, 0), 1], ref[1])
    else:
        x_hi = np.full(len(pts), ref[0])
        y_hi = np.full(len(pts), ref[1])
    return np.maximum(x_hi - pts[:, 0], 0.0) * np.maximum(y_hi - pts[:, 1], 0.0)


def smallest_contributor(points, *, ref: Sequence[float] | None = None) -> int:
    """SMS-EMOA's victim: the row of the last front with the smallest hypervolume contribution."""
    arr = _objectives(points)
    ranks = nondominated_ranks(arr)
    last = np.flatnonzero(ranks == ranks.max())
    if len(last) == 1:
        return int(last[0])
    return int(last[int(np.argmin(hv_contributions(arr[last], ref=ref)))])


# --------------------------------------------------------------------------- variation


def full_values(config: Mapping[str, Any], rng: np.random.Generator, fallback: Mapping[str, Any] | None = None) -> dict:
    """All 13 hyperparameters: the config's values, else ``fallback``'s, else a prior draw.

    A prior value is drawn for every hyperparameter (used or not), so the number of draws from
    ``rng`` does not depend on the config. The uniforms of consecutive numbers are drawn in one
    ``rng.random(k)`` call, which makes the same generator calls as ``k`` calls of ``rng.random()``,
    and only the draws used are turned into values: the values and the generator's state are those
    of one :meth:`~surrobench.space.Hyperparameter.sample` per hyperparameter (tested).
    """
    out = {}
    for numeric, hps in _DRAW_RUNS:
        if numeric:
            draws = rng.random(len(hps)).tolist() if len(hps) > 1 else [rng.random()]
        else:  # one category: its draw is made whether it is used or not
            draws = [hps[0].sample(rng)]
        for hp, drawn in zip(hps, draws):
            name = hp.name
            if name in config:
                out[name] = config[name]
            elif fallback is not None and name in fallback:
                out[name] = fallback[name]
            else:
                out[name] = hp.from_uniform(drawn) if numeric else drawn
    return out


def restrict(values: Mapping[str, Any]) -> dict:
    """The valid config holding the active ones of a full assignment ``values``."""
    return validate({n: values[n] for n in NAMES if is_active(n, values)})


def _mutable(name: str, mutable_depths: bool) -> bool:
    return mutable_depths or name not in DEPTHS


def mutate_resample(config, rng: np.random.Generator, *, n_keys: int = 5, mutable_depths: bool = False) -> dict:
    """SH-EMOA's uniform mutation: pick ``n_keys`` of the config's hyperparameters and redraw the
    mutable ones among them from their priors (the original picks among all keys and skips the
    depths, so fewer than ``n_keys`` may change)."""
    values = full_values(config, rng)
    keys = list(config.keys())
    picks = rng.choice(len(keys), size=min(int(n_keys), len(keys)), replace=False)
    for i in sorted(int(p) for p in picks):
        name = keys[i]
        if _mutable(name, mutable_depths):
            values[name] = _HP[name].sample(rng)
    return restrict(values)


def _truncnorm_unit(rng: np.random.Generator, mu: float, sd: float) -> float:
    """One draw of N(mu, sd) truncated to [0, 1] (inverse CDF)."""
    lo, hi = ndtr((0.0 - mu) / sd), ndtr((1.0 - mu) / sd)
    return float(np.clip(mu + sd * ndtri(lo + rng.random() * (hi - lo)), 0.0, 1.0))


def mutate_gaussian(config, rng: np.random.Generator, *, n_keys: int = 3, sd: float = 1 / 3,
                    mutable_depths: bool = False) -> dict:
    """MO-BANANAS' mutation: pick ``n_keys`` of the config's hyperparameters; numbers move by a
    normal step of ``sd`` truncated to the domain, in the normalised (log where log) scale;
    categories are redrawn from the prior."""
    values = full_values(config, rng)
    keys = list(config.keys())
    picks = rng.choice(len(keys), size=min(int(n_keys), len(keys)), replace=False)
    for i in sorted(int(p) for p in picks):
        name = keys[i]
        if not _mutable(name, mutable_depths):
            continue
        hp = _HP[name]
        if hp.kind == "cat":
            values[name] = hp.sample(rng)
        else:
            values[name] = hp.from_unit(_truncnorm_unit(rng, hp.to_unit(values[name]), sd))
    return restrict(values)


def uniform_crossover(a, b, rng: np.random.Generator, *, p_swap: float = 0.5, mutable_depths: bool = False) -> dict:
    """Uniform crossover: each hyperparameter comes from ``b`` with probability ``p_swap``, else
    from ``a``; depths stay ``a``'s unless ``mutable_depths``. Widths that the child's depth
    activates come from whichever parent has them (else the prior)."""
    va = full_values(a, rng, fallback=b)
    vb = full_values(b, rng, fallback=a)
    coins = rng.random(len(NAMES)) < p_swap
    child = {n: (vb[n] if coin and _mutable(n, mutable_depths) else va[n]) for n, coin in zip(NAMES, coins)}
    return restrict(child)


def sbx_crossover(a, b, rng: np.random.Generator, *, eta: float = 15.0, p_var: float = 0.5) -> dict:
    """Simulated binary crossover (Deb & Agrawal, bounded form) of every numeric hyperparameter in
    the normalised scale, each with probability ``p_var``; categories are swapped with probability
    ``p_var``. Returns one of the two children, chosen at random."""
    va = full_values(a, rng, fallback=b)
    vb = full_values(b, rng, fallback=a)
    c1, c2 = dict(va), dict(vb)
    for hp in HYPERPARAMETERS:
        n = hp.name
        u_var, u_beta, u_side = rng.random(3)
        if u_var >= p_var:
            continue
        if hp.kind == "cat":
            c1[n], c2[n] = vb[n], va[n]
            continue
        x1, x2 = sorted((hp.to_unit(va[n]), hp.to_unit(vb[n])))
        if x2 - x1 < 1e-14:
            continue
        y1 = 0.5 * (x1 + x2 - _sbx_beta(u_beta, eta, 1.0 + 2.0 * x1 / (x2 - x1)) * (x2 - x1))
        y2 = 0.5 * (x1 + x2 + _sbx_beta(u_beta, eta, 1.0 + 2.0 * (1.0 - x2) / (x2 - x1)) * (x2 - x1))
        y1, y2 = min(max(y1, 0.0), 1.0), min(max(y2, 0.0), 1.0)
        if u_side < 0.5:
            y1, y2 = y2, y1
        c1[n], c2[n] = hp.from_unit(y1), hp.from_unit(y2)
    return restrict(c1 if rng.random() < 0.5 else c2)


def _sbx_beta(u: float, eta: float, beta: float) -> float:
    alpha = 2.0 - beta ** -(eta + 1.0)
    if u <= 1.0 / alpha:
        return (u * alpha) ** (1.0 / (eta + 1.0))
    return (1.0 / (2.0 - u * alpha)) ** (1.0 / (eta + 1.0))


def polynomial_mutation(config, rng: np.random.Generator, *, eta: float = 20.0, p_var: float | None = None) -> dict:
    """Polynomial mutation (Deb) of each numeric hyperparameter with probability ``p_var``
    (default 1/13) in the normalised scale; a mutated category is redrawn from the prior."""
    p = 1.0 / len(NAMES) if p_var is None else float(p_var)
    values = full_values(config, rng)
    for hp in HYPERPARAMETERS:
        n = hp.name
        u_var, u = rng.random(2)
        if u_var >= p:
            continue
        if hp.kind == "cat":
            values[n] = hp.sample(rng)
            continue
        x = hp.to_unit(values[n])
        power = 1.0 / (eta + 1.0)
        if u < 0.5:
            val = 2.0 * u + (1.0 - 2.0 * u) * (1.0 - x) ** (eta + 1.0)
            delta = val**power - 1.0
        else:
            val = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * x ** (eta + 1.0)
            delta = 1.0 - val**power
        values[n] = hp.from_unit(min(max(x + delta, 0.0), 1.0))
    return restrict(values)


# --------------------------------------------------------------------------- fidelities and bookkeeping


def clip_epoch(value: float, problem: Problem) -> int:
    """An epoch count from a (possibly fractional) budget: truncated, then clipped to the problem."""
    return int(min(max(int(math.floor(value + 1e-9)), problem.min_epoch), problem.max_epoch))


def halving_budgets(min_budget: float, max_budget: float, eta: float, problem: Problem) -> list[int]:
    """The original SH-EMOA / MO-BANANAS budget ladder, smallest first: ``max_budget``, then
    ``ceil(b / eta)`` while it stays above ``min_budget``; clipped to the problem, duplicates dropped."""
    budgets = []
    b = float(max_budget)
    while b > min_budget and (not budgets or b < budgets[-1]):  # ceil(1 / eta) = 1 would loop forever
        budgets.append(b)
        b = math.ceil(b / eta)
    if not budgets:
        budgets = [float(max_budget)]
    epochs = sorted({clip_epoch(x, problem) for x in budgets})
    return epochs


def dataset_facts(problem: Problem, input_shape: Sequence[int] | None = None,
                  n_classes: int | None = None) -> tuple[tuple[int, ...], int]:
    """``(input_shape, n_classes)`` an optimizer computes sizes for: each as given, else the
    problem's task's (never a default dataset's); a shape too small for the space is a ``ValueError``."""
    shape = problem.task.input_shape if input_shape is None else tuple(int(d) for d in input_shape)
    classes = problem.task.n_classes if n_classes is None else int(n_classes)
    log10_params(sample(0), shape, classes)  # fails early on a bad shape
    return shape, classes


class Outstanding:
    """Jobs asked and not yet told, keyed by the job object; each with the asker's own record."""

    def __init__(self):
        self._jobs: dict[int, tuple[Job, Any]] = {}

    def add(self, job: Job, info: Any) -> Job:
        self._jobs[id(job)] = (job, info)
        return job

    def pop(self, observation: Observation) -> Any:
        try:
            job, info = self._jobs.pop(id(observation.job))
        except KeyError:
            raise ValueError("tell: an observation of a job this optimizer did not ask for (or told twice)") from None
        if job is not observation.job:  # pragma: no cover - id reuse is impossible while we hold the job
            raise ValueError("tell: unknown job")
        return info

    def __len__(self) -> int:
        return len(self._jobs)
