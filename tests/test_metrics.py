import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from surrobench.metrics import hv_over_time, hypervolume, hypervolume_trace, pareto_front, pareto_mask, ranks_over_time

REF = [1.0, 8.0]
pts = arrays(np.float64, st.tuples(st.integers(1, 30), st.just(2)),
             elements=st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False))


def _scaled(p):
    return np.column_stack([p[:, 0], 1.0 + 7.0 * p[:, 1]])


def test_closed_form_cases():
    assert hypervolume([[0.5, 4.0]], ref=REF) == pytest.approx(0.5 * 4.0)
    # two points: two rectangles minus their overlap [0.6, 1] x [6, 8]
    assert hypervolume([[0.2, 6.0], [0.6, 3.0]], ref=REF) == pytest.approx(0.8 * 2.0 + 0.4 * 5.0 - 0.4 * 2.0)
    assert hypervolume([[0.0, 0.0]], ref=REF) == pytest.approx(8.0)
    assert hypervolume([[1.0, 4.0]], ref=REF) == 0.0  # on the reference boundary
    assert hypervolume([[1.5, 9.0]], ref=REF) == 0.0
    assert hypervolume(np.empty((0, 2)), ref=REF) == 0.0


@settings(max_examples=40, deadline=None)
@given(p=pts)
def test_hypervolume_matches_a_brute_force_grid_count(p):
    p = np.round(p * 20) / 20  # points on a 1/20 lattice: the grid count is exact at cell centres
    n = 200
    xs = (np.arange(n) + 0.5) / n
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    cells = np.zeros_like(X, dtype=bool)
    for a, b in p:
        cells |= (X > a) & (Y > b)
    assert hypervolume(p, ref=[1.0, 1.0]) == pytest.approx(cells.mean(), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(p=pts, q=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_hypervolume_never_drops_when_a_point_is_added_and_ignores_dominated_points(p, q):
    p = _scaled(p)
    before = hypervolume(p, ref=REF)
    assert hypervolume(np.vstack([p, [q[0], 1 + 7 * q[1]]]), ref=REF) >= before - 1e-12
    front = p[pareto_mask(p)]
    assert hypervolume(front, ref=REF) == pytest.approx(before)
    dominated = front + 0.01
    assert hypervolume(np.vstack([p, dominated]), ref=REF) == pytest.approx(before)


@settings(max_examples=40, deadline=None)
@given(p=pts, perm_seed=st.integers(0, 1000))
def test_pareto_filter_is_idempotent_and_order_invariant(p, perm_seed):
    copy = p.copy()
    f1 = pareto_front(p)
    assert np.array_equal(p, copy)  # inputs are not mutated
    assert np.array_equal(pareto_front(f1), f1)
    perm = np.random.default_rng(perm_seed).permutation(len(p))
    assert np.array_equal(pareto_front(p[perm]), f1)
    # no kept point is dominated by any point
    for a in f1:
        assert not (((p <= a).all(axis=1)) & ((p < a).any(axis=1))).any()


@settings(max_examples=20, deadline=None)
@given(p=pts)
def test_trace_ends_at_the_hypervolume_and_never_decreases(p):
    p = _scaled(p)
    t = hypervolume_trace(p, ref=REF)
    assert np.all(np.diff(t) >= -1e-12)
    assert t[-1] == pytest.approx(hypervolume(p, ref=REF))


@settings(max_examples=40, deadline=None)
@given(p=pts, block=st.sampled_from([1, 3, 8, 1024]))
def test_trace_is_the_hypervolume_of_every_prefix_whatever_the_screening_block(p, block):
    # the block screening skips rows that cannot change the front: every prefix's value is still
    # exactly moocore's hypervolume of that prefix's front
    import surrobench.metrics as M

    p = _scaled(p)
    saved = M._TRACE_BLOCK
    M._TRACE_BLOCK = block
    try:
        t = hypervolume_trace(p, ref=REF)
    finally:
        M._TRACE_BLOCK = saved
    for k in range(len(p)):
        inside = p[: k + 1][(p[: k + 1] < np.asarray(REF)).all(axis=1)]
        expected = hypervolume(pareto_front(inside), ref=REF) if len(inside) else 0.0
        assert t[k] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_hv_over_time_on_a_grid_and_max_fidelity_filter():
    import pandas as pd

    df = pd.DataFrame({"job_id": [0, 1, 2], "end": [10.0, 20.0, 30.0], "epoch": [5, 25, 25],
                       "val_error": [0.2, 0.5, 0.4], "log10_params": [4.0, 5.0, 3.0]})
    grid = np.array([5.0, 10.0, 25.0, 40.0])
    all_pts = hv_over_time(df, grid, ref=REF)
    assert all_pts.tolist() == pytest.approx([0.0, 0.8 * 4.0, hypervolume(df.iloc[:2][["val_error", "log10_params"]], ref=REF),
                                             hypervolume(df[["val_error", "log10_params"]], ref=REF)])
    full = hv_over_time(df, grid, ref=REF, max_epoch=25)
    assert full[1] == 0.0 and full[2] == pytest.approx(0.5 * 3.0)


def test_ranks_over_time():
    import pandas as pd

    hv = pd.DataFrame({"optimizer": ["a", "b", "a", "b"], "seed": [0, 0, 1, 1], "time": [1.0] * 4, "hv": [2.0, 1.0, 1.0, 1.0]})
    r = ranks_over_time(hv).set_index("optimizer")["rank"]
    assert r["a"] == pytest.approx((1 + 1.5) / 2) and r["b"] == pytest.approx((2 + 1.5) / 2)


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        hypervolume([[np.nan, 1.0]], ref=REF)
    with pytest.raises(ValueError, match="ref"):
        hypervolume([[0.5, 1.0]], ref=[1.0])
