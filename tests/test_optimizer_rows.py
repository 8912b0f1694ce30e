"""Configs as rows (surrobench.optimizers._rows): each vectorised step equals the per-config one."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from surrobench.model_size import log10_params
from surrobench.optimizers._bo import mutate
from surrobench.optimizers._rows import (
    encode_rows, log10_size_rows, mutate_rows, row_key, rows_of, sample_rows, to_config,
)
from surrobench.space import HYPERPARAMETERS, NAMES, encode, sample, validate

SHAPES = [((3, 16, 16), 17), ((1, 8, 8), 10), ((3, 32, 32), 100)]


def _sample_rows_by_column(rng, m, drop_inactive=True):
    """sample_rows as it was written first: one generator call and one transform per column."""
    out = np.empty((m, len(HYPERPARAMETERS)))
    for j, h in enumerate(HYPERPARAMETERS):
        if h.kind == "cat":
            out[:, j] = np.asarray([float(c) for c in h.choices])[rng.integers(len(h.choices), size=m)]
            continue
        lo, hi = float(h.lower), float(h.upper)
        if h.kind == "int":
            lo, hi = lo - 0.5, hi + 0.5
        v = np.exp(rng.uniform(math.log(lo), math.log(hi), m)) if h.log else rng.uniform(lo, hi, m)
        out[:, j] = np.clip(np.rint(v) if h.kind == "int" else v, float(h.lower), float(h.upper))
    if drop_inactive:
        for j, h in enumerate(HYPERPARAMETERS):
            if h.depth_key is not None:
                out[out[:, NAMES.index(h.depth_key)] <= h.depth_index, j] = np.nan
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 70), st.booleans())
def test_sample_rows_draws_the_bits_of_one_call_per_column(seed, m, drop_inactive):
    """Grouped draws and transforms give the column-by-column draw bit for bit, and leave the
    generator where it would have been."""
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    assert sample_rows(a, m, drop_inactive=drop_inactive).tobytes() == \
        _sample_rows_by_column(b, m, drop_inactive).tobytes()
    assert a.random() == b.random()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_sampled_rows_are_valid_configs_and_encode_size_and_key_like_the_configs(seed):
    rows = sample_rows(np.random.default_rng(seed), 64)
    cfgs = [to_config(r) for r in rows]  # to_config validates
    np.testing.assert_array_equal(rows_of(cfgs), rows)
    np.testing.assert_allclose(encode_rows(rows), encode(cfgs), rtol=0, atol=1e-12)
    for shape, classes in SHAPES:
        np.testing.assert_allclose(log10_size_rows(rows, shape, classes),
                                   [log10_params(c, shape, classes) for c in cfgs], rtol=0, atol=1e-12)
    assert len({row_key(r) for r in rows}) == len({tuple(sorted(c.items())) for c in cfgs})


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_mutated_rows_are_valid_and_change_one_or_two_hyperparameters(seed):
    rng = np.random.default_rng(seed)
    parents = rows_of(sample(rng, 200))
    children = mutate_rows(parents, rng)
    assert children.shape == parents.shape and not np.shares_memory(children, parents)
    for p, c in zip(parents, children):
        child = to_config(c)  # raises if invalid
        changed = {n for n, a, b in zip(NAMES, p, c) if not (a == b or (np.isnan(a) and np.isnan(b)))}
        depths = changed & {"n_conv_l", "n_fc_l"}
        assert 1 <= len(changed) <= 2 + len(depths)  # a depth change adds or drops one width as well
        assert child != to_config(p)


def _log10_size_rows_layer_by_layer(rows, input_shape, n_classes):
    """log10_size_rows as it was written first: one layer at a time."""
    from surrobench.optimizers import _rows as R

    rows = np.asarray(rows, dtype=float)
    m = len(rows)
    c = np.full(m, float(input_shape[0]))
    h = np.full(m, float(input_shape[1]))
    w = np.full(m, float(input_shape[2]))
    k2 = rows[:, R._COL["kernel_size"]] ** 2
    bn = rows[:, R._COL["batch_norm"]]
    total = np.zeros(m)
    for i, col in enumerate(R._CONV):
        on = rows[:, R._COL["n_conv_l"]] > i
        width = np.where(on, rows[:, col], 0.0)
        total += np.where(on, c * width * k2 + width + 2.0 * bn * width, 0.0)
        c = np.where(on, width, c)
        h, w = np.where(on, h // 2, h), np.where(on, w // 2, w)
    flat = np.where(rows[:, R._COL["global_avg_pooling"]] > 0, c, c * h * w)
    for i, col in enumerate(R._FC):
        on = rows[:, R._COL["n_fc_l"]] > i
        width = np.where(on, rows[:, col], 0.0)
        total += np.where(on, flat * width + width, 0.0)
        flat = np.where(on, width, flat)
    total += flat * n_classes + n_classes
    return np.log10(total)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 70), st.booleans(),
       st.sampled_from(SHAPES + [((3, 4, 4), 2), ((2, 7, 9), 1000)]))
def test_log10_size_rows_gives_the_bits_of_the_layer_by_layer_count(seed, m, drop_inactive, shape):
    """All layers at once give the layer-by-layer count's bits (exact integers), also where
    inactive widths hold numbers and where pooling floors the image to nothing."""
    rows = sample_rows(np.random.default_rng(seed), m, drop_inactive=drop_inactive)
    assert log10_size_rows(rows, *shape).tobytes() == _log10_size_rows_layer_by_layer(rows, *shape).tobytes()


def _mutate_rows_every_entry(parents, rng, step=0.15):
    """mutate_rows as it was written first: every entry's move computed, the changed ones kept."""
    from surrobench.optimizers import _rows as R

    parents = np.asarray(parents, dtype=float)
    m = len(parents)
    if not m:
        return parents.copy()
    n_changed = 1 + rng.integers(2, size=m)
    keys = rng.random((m, R._N))
    steps = rng.normal(0.0, step, size=(m, R._N))
    signs = np.where(rng.random((m, R._N)) < 0.5, -1.0, 1.0)
    other = rng.random((m, R._N))
    fresh = sample_rows(rng, m, drop_inactive=False)
    r = np.arange(m)
    picks = np.argsort(np.where(np.isnan(parents), np.inf, keys), axis=1)[:, :2]
    chosen = np.zeros((m, R._N), dtype=bool)
    chosen[r, picks[:, 0]] = True
    chosen[r[n_changed == 2], picks[n_changed == 2, 1]] = True
    moved = R._from_unit(encode_rows(parents) + steps)
    same = R._INT & (moved == parents)
    bumped = np.clip(parents + signs, R._LO_A, R._HI_A)
    bumped = np.where(bumped == parents, np.where(parents == R._LO_A, parents + 1, parents - 1), bumped)
    moved = np.where(same, bumped, moved)
    for j in R._CATS:
        choices = np.asarray(R._CHOICES[j])
        at = np.searchsorted(choices, parents[:, j])
        pick = np.minimum((other[:, j] * (len(choices) - 1)).astype(int), len(choices) - 2)
        moved[:, j] = choices[np.where(pick < at, pick, pick + 1)]
    out = np.where(chosen & ~R._IS_DEPTH, moved, parents)
    for d, widths in R._DEPTH_OF.items():
        rows = np.flatnonzero(chosen[:, d])
        old = out[rows, d]
        new = np.where(old == R._LO_A[d], old + 1, np.where(old == R._HI_A[d], old - 1, old + signs[rows, d]))
        cols = np.asarray(widths)[np.minimum(old, new).astype(int)]
        out[rows, cols] = np.where(new > old, fresh[rows, cols], np.nan)
        out[rows, d] = new
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 130), st.sampled_from([0.15, 0.05, 0.6]), st.booleans())
def test_mutate_rows_gives_the_bits_of_computing_every_entry(seed, m, step, repeated):
    """Computing only the changed entries gives what computing every entry gave, bit for bit, and
    leaves the generator where it was left (parents of every depth, repeated parents as a
    refinement asks, steps that push numbers past their bounds)."""
    rng = np.random.default_rng(seed)
    parents = sample_rows(rng, m if not repeated else min(m, 2))
    if repeated and len(parents):
        parents = np.repeat(parents, -(-m // len(parents)), axis=0)[:m]
    a, b = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    assert mutate_rows(parents, a, step=step).tobytes() == _mutate_rows_every_entry(parents, b, step).tobytes()
    assert a.random() == b.random()


def test_mutate_of_a_config_is_one_row_of_mutate_rows():
    cfg = sample(3)
    assert mutate(cfg, np.random.default_rng(7)) == to_config(mutate_rows(rows_of([cfg]), np.random.default_rng(7))[0])
    assert validate(mutate(cfg, np.random.default_rng(8)))


def test_prior_rows_follow_the_priors_of_the_space():
    """The vectorised draw and space.sample draw from the same distributions (2,000 each)."""
    rows = sample_rows(np.random.default_rng(0), 2000)
    ref = rows_of(sample(1, 2000))
    for j, name in enumerate(NAMES):
        a, b = rows[:, j], ref[:, j]
        assert abs(np.isnan(a).mean() - np.isnan(b).mean()) < 0.05, name
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        assert abs(a.mean() - b.mean()) <= 0.12 * b.std() + 1e-9, name
