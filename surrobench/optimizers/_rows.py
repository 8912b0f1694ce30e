"""Configs as rows of values, for optimizers that score hundreds of candidates per decision.

A *row* holds one float per hyperparameter in the order of :data:`~surrobench.space.NAMES`: the
value itself (integers and ``kernel_size`` as floats, booleans as 0/1), NaN where inactive. Rows
are exact (every value of the space is a float exactly), so a row's bytes identify its config.
Sampling, encoding, the exact model size and local moves work on whole blocks of rows with
numpy; only the chosen candidate becomes a config again (:func:`to_config`, validated).

>>> from surrobench.space import encode, sample
>>> cfgs = sample(0, 3)
>>> bool(np.allclose(encode_rows(rows_of(cfgs)), encode(cfgs)))
True
>>> [to_config(r) for r in rows_of(cfgs)] == cfgs
True
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .._ufuncs import clip
from ..space import HYPERPARAMETERS, INACTIVE, NAMES, validate

__all__ = ["rows_of", "to_config", "sample_rows", "encode_rows", "log10_size_rows", "mutate_rows", "row_key"]

_N = len(HYPERPARAMETERS)
_COL = {name: j for j, name in enumerate(NAMES)}
_CONV, _FC = [_COL[f"n_conv_{i}"] for i in range(3)], [_COL[f"n_fc_{i}"] for i in range(3)]
_DEPTH_OF = {_COL["n_conv_l"]: _CONV, _COL["n_fc_l"]: _FC}  # a depth column -> its width columns
_KIND = [h.kind for h in HYPERPARAMETERS]
_BOOL = [h.kind == "cat" and h.choices == (False, True) for h in HYPERPARAMETERS]
_CHOICES = [tuple(float(c) for c in h.choices) for h in HYPERPARAMETERS]
_NUMERIC = np.array([h.kind != "cat" for h in HYPERPARAMETERS])
_LOG = np.array([h.log for h in HYPERPARAMETERS])
_LO_A = np.array([float(h.lower) if h.lower is not None else 0.0 for h in HYPERPARAMETERS])
_HI_A = np.array([float(h.upper) if h.upper is not None else 1.0 for h in HYPERPARAMETERS])
_LO, _HI = _LO_A.tolist(), _HI_A.tolist()
_TLO = np.where(_LOG, np.log(_LO_A, where=_LOG, out=np.zeros(_N)), _LO_A)
_THI = np.where(_LOG, np.log(_HI_A, where=_LOG, out=np.ones(_N)), _HI_A)
_INT = np.array([h.kind == "int" for h in HYPERPARAMETERS])
_CATS = [j for j, h in enumerate(HYPERPARAMETERS) if h.kind == "cat"]
_IS_DEPTH = np.array([j in _DEPTH_OF for j in range(_N)])
_CONDITIONAL = [(j, _COL[h.depth_key], h.depth_index) for j, h in enumerate(HYPERPARAMETERS) if h.depth_key is not None]


def rows_of(configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Rows (m, 13) of valid configs."""
    nan = math.nan
    return np.array([[float(c.get(n, nan)) for n in NAMES] for c in configs], dtype=float).reshape(len(configs), _N)


def row_key(row: np.ndarray) -> bytes:
    """A hashable identity of a row (its bytes: NaN is always the same NaN here)."""
    return row.tobytes()


def to_config(row: np.ndarray) -> dict[str, Any]:
    """The validated config of a row."""
    out: dict[str, Any] = {}
    for j, name in enumerate(NAMES):
        v = float(row[j])
        if v != v:
            continue
        out[name] = bool(v) if _BOOL[j] else float(v) if _KIND[j] == "float" else int(v)
    return validate(out)


def _draw_plan() -> tuple[tuple, ...]:
    """The prior draws of a row as runs of columns: ``("cat", column, choices)`` or ``("num",
    columns, low, width)`` for a run of consecutive numeric columns, whose uniforms are drawn in
    one call (a block of ``rng.random`` fills row by row, so the stream is that of one call per
    column); ``low + width * u`` is ``rng.uniform``'s own arithmetic (an integer's range widened
    by half a step each side, in log where log)."""
    plan, run = [], []
    for j, h in enumerate(HYPERPARAMETERS + (None,)):
        if h is not None and h.kind != "cat":
            lo, hi = float(h.lower), float(h.upper)
            if h.kind == "int":
                lo, hi = lo - 0.5, hi + 0.5
            if h.log:
                lo, hi = math.log(lo), math.log(hi)
            run.append((j, lo, hi - lo))
            continue
        if run:
            cols, lows, widths = zip(*run)
            plan.append(("num", np.array(cols), np.array(lows)[:, None], np.array(widths)[:, None]))
            run = []
        if h is not None:
            plan.append(("cat", j, np.asarray(_CHOICES[j])))
    return tuple(plan)


_DRAW_PLAN = _draw_plan()
_LOG_COLS, _INT_COLS, _NUM_COLS = np.flatnonzero(_LOG), np.flatnonzero(_INT), np.flatnonzero(_NUMERIC)


def sample_rows(rng: np.random.Generator, m: int, *, drop_inactive: bool = True) -> np.ndarray:
    """``m`` rows drawn from the priors (those of :func:`surrobench.space.sample`, vectorised:
    the same distributions, another use of the generator); every column is drawn, and the
    inactive ones are set to NaN unless ``drop_inactive`` is false.

    The generator is used column by column, in the order of the columns (a category's
    ``rng.integers``, a number's ``rng.uniform``), consecutive numeric columns in one call."""
    out = np.empty((m, _N))
    for step in _DRAW_PLAN:
        if step[0] == "cat":
            out[:, step[1]] = step[2][rng.integers(len(step[2]), size=m)]
        else:
            out[:, step[1]] = (step[2] + step[3] * rng.random((len(step[1]), m))).T
    out[:, _LOG_COLS] = np.exp(out[:, _LOG_COLS])
    out[:, _INT_COLS] = np.rint(out[:, _INT_COLS])
    out[:, _NUM_COLS] = clip(out[:, _NUM_COLS], _LO_A[_NUMERIC], _HI_A[_NUMERIC])  # one clip for all columns
    if drop_inactive:
        for j, depth, index in _CONDITIONAL:
            out[out[:, depth] <= index, j] = np.nan
    return out


def encode_rows(rows: np.ndarray) -> np.ndarray:
    """:func:`surrobench.space.encode` of rows: numbers to [0, 1] (log scale where log), categories
    to their index, inactive to -1."""
    rows = np.asarray(rows, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(_LOG, np.log(np.where(_LOG, rows, 1.0)), rows)
    unit = (t - _TLO) / (_THI - _TLO)
    out = np.where(_NUMERIC, unit, rows)
    ks = _COL["kernel_size"]
    out[:, ks] = (rows[:, ks] - 3.0) / 2.0  # 3, 5, 7 -> 0, 1, 2
    return np.where(np.isnan(rows), INACTIVE, out)


def log10_size_rows(rows: np.ndarray, input_shape: Sequence[int], n_classes: int) -> np.ndarray:
    """:func:`surrobench.model_size.log10_params` of rows, vectorised.

    Every count is an integer below 2**53 held exactly in float64, so the sums are exact in any
    order: all layers are summed at once (an inactive layer's width reads as 0) and give the
    closed form's integer, then its log10.
    """
    rows = np.asarray(rows, dtype=float)
    m = len(rows)
    c, h, w = (float(d) for d in input_shape)
    n_conv = rows[:, _COL["n_conv_l"]].astype(np.intp)
    n_fc = rows[:, _COL["n_fc_l"]].astype(np.intp)
    conv = np.where(np.arange(len(_CONV)) < n_conv[:, None], rows[:, _CONV], 0.0)  # widths, 0 where inactive
    fc = np.where(np.arange(len(_FC)) < n_fc[:, None], rows[:, _FC], 0.0)
    r = np.arange(m)
    k2 = rows[:, _COL["kernel_size"]] ** 2
    per_unit = 1.0 + 2.0 * rows[:, _COL["batch_norm"]]  # bias, plus BatchNorm's scale and shift
    into = np.empty_like(conv)  # the input channels of each conv layer
    into[:, 0] = c
    into[:, 1:] = conv[:, :-1]
    total = ((into * k2[:, None] + per_unit[:, None]) * conv).sum(axis=1)
    last = conv[r, n_conv - 1]
    pooled = 2.0 ** n_conv  # each layer pools by 2 (floor): h // 2**n
    flat = np.where(rows[:, _COL["global_avg_pooling"]] > 0, last, last * (h // pooled) * (w // pooled))
    into = np.empty_like(fc)
    into[:, 0] = flat
    into[:, 1:] = fc[:, :-1]
    total += ((into + 1.0) * fc).sum(axis=1)
    last = fc[r, n_fc - 1]
    total += last * n_classes + n_classes
    return np.log10(total)


_TW = _THI - _TLO  # the encoding's width per column (the same numbers encode_rows divides by)
_N_CHOICES = np.array([len(c) for c in _CHOICES])
_CHOICE_TABLE = np.array([list(c) + [math.inf] * (max(map(len, _CHOICES)) - len(c)) for c in _CHOICES])  # padded
_IS_CAT = ~_NUMERIC
_MOVES_NUMBER = _NUMERIC & ~_IS_DEPTH  # numbers that move by a step (a depth moves by a layer)
_WIDTH_COL = np.full((_N, 4), -1, dtype=np.intp)  # depth column, min(old, new) depth -> the layer's width column
for _d, _widths in _DEPTH_OF.items():
    _WIDTH_COL[_d, : len(_widths)] = _widths
_PRIOR_LOW, _PRIOR_WIDTH = np.zeros(_N), np.zeros(_N)  # a prior number is low + width * u (sample_rows' plan)
for _step in _DRAW_PLAN:
    if _step[0] == "num":
        _PRIOR_LOW[_step[1]], _PRIOR_WIDTH[_step[1]] = _step[2][:, 0], _step[3][:, 0]
del _d, _widths, _step


def _prior_uniforms(rng: np.random.Generator, m: int) -> np.ndarray:
    """The generator calls of ``sample_rows(rng, m, drop_inactive=False)``, in its order: the
    uniforms of the numeric columns as an (n_columns, m) array (NaN rows for categories, whose
    draws are made and dropped), so that a caller transforms only the entries it uses."""
    raw = np.full((_N, m), np.nan)
    for step in _DRAW_PLAN:
        if step[0] == "cat":
            rng.integers(len(step[2]), size=m)
        else:
            raw[step[1]] = rng.random((len(step[1]), m))
    return raw


def mutate_rows(parents: np.ndarray, rng: np.random.Generator, *, step: float = 0.15) -> np.ndarray:
    """One local move per parent row: one or two active hyperparameters changed.

    A number moves by ``N(0, step)`` in its [0, 1] encoding (an integer that rounds back to its
    value moves by one instead), a category takes another value, a depth moves by one layer (a
    new layer's width is drawn from its prior, a removed layer's width is dropped). The random
    numbers are drawn for the whole block at once; the result rows are always valid.

    The generator draws, for the whole block, the changed-count, a key per column (the changed
    columns are the one or two active ones with the smallest keys), a Gaussian step, a sign and a
    uniform per column, then a prior row (:func:`sample_rows`' calls) per parent; only the changed
    entries are then computed (since issue 16: the same numbers as computing every entry and
    keeping the changed ones, which this function did before; tested bit for bit).
    """
    parents = np.asarray(parents, dtype=float)
    m = len(parents)
    if not m:
        return parents.copy()
    two = rng.integers(2, size=m) == 1
    keys = rng.random((m, _N))
    steps = rng.normal(0.0, step, size=(m, _N))
    down = rng.random((m, _N)) < 0.5  # the sign of an integer's or a depth's move
    other = rng.random((m, _N))
    prior = _prior_uniforms(rng, m)  # widths for new layers
    keys[np.isnan(parents)] = np.inf
    picks = np.argsort(keys, axis=1)[:, :2]
    rows = np.concatenate([np.arange(m), np.flatnonzero(two)])
    cols = np.concatenate([picks[:, 0], picks[two, 1]])
    old = parents[rows, cols]
    out = parents.copy()

    # numbers: a Gaussian step in the encoding; an integer that rounds back moves by one
    at = _MOVES_NUMBER[cols]
    r, c, p = rows[at], cols[at], old[at]
    log = _LOG[c]
    t = p.copy()
    t[log] = np.log(p[log])
    u = clip((t - _TLO[c]) / _TW[c] + steps[r, c], 0.0, 1.0)
    v = _TLO[c] + u * _TW[c]
    v[log] = np.exp(v[log])
    whole = _INT[c]
    v[whole] = np.rint(v[whole])
    v = clip(v, _LO_A[c], _HI_A[c])
    same = whole & (v == p)
    if same.any():
        ps, lo, hi = p[same], _LO_A[c[same]], _HI_A[c[same]]
        bumped = clip(ps + np.where(down[r[same], c[same]], -1.0, 1.0), lo, hi)
        v[same] = np.where(bumped == ps, np.where(ps == lo, ps + 1, ps - 1), bumped)
    out[r, c] = v

    # categories: another value, uniformly
    at = _IS_CAT[cols]
    r, c, p = rows[at], cols[at], old[at]
    k = _N_CHOICES[c]
    index = (_CHOICE_TABLE[c] < p[:, None]).sum(axis=1)  # the old value's index (choices are sorted)
    pick = np.minimum((other[r, c] * (k - 1)).astype(int), k - 2)
    out[r, c] = _CHOICE_TABLE[c, np.where(pick < index, pick, pick + 1)]

    # depths last: one layer more (its width from the prior) or less (its width dropped)
    at = _IS_DEPTH[cols]
    if at.any():
        r, c, p = rows[at], cols[at], old[at]
        new = np.where(p == _LO_A[c], p + 1, np.where(p == _HI_A[c], p - 1, p + np.where(down[r, c], -1.0, 1.0)))
        w = _WIDTH_COL[c, np.minimum(p, new).astype(int)]  # the layer added or removed
        grown = new > p
        fresh = np.full(len(r), np.nan)
        if grown.any():  # sample_rows' transform of these entries of its draw
            wg = w[grown]
            x = _PRIOR_LOW[wg] + _PRIOR_WIDTH[wg] * prior[wg, r[grown]]
            x[_LOG[wg]] = np.exp(x[_LOG[wg]])
            x[_INT[wg]] = np.rint(x[_INT[wg]])
            fresh[grown] = clip(x, _LO_A[wg], _HI_A[wg])
        out[r, w] = fresh
        out[r, c] = new
    return out


def _from_unit(units: np.ndarray) -> np.ndarray:
    """Values of the numeric columns of encoded rows (clipped to [0, 1], integers rounded);
    :meth:`~surrobench.space.Hyperparameter.from_unit`, vectorised."""
    u = clip(units, 0.0, 1.0)
    t = _TLO + u * (_THI - _TLO)
    v = np.where(_LOG, np.exp(np.where(_LOG, t, 0.0)), t)
    v = np.where(_INT, np.rint(v), v)
    return clip(v, _LO_A, _HI_A)
