import numpy as np
import pandas as pd
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


# ------------------------------------------------------------------ which differences the seeds show

from scipy.stats import friedmanchisquare  # noqa: E402

from surrobench.metrics import bonferroni_dunn_critical_difference, friedman, nemenyi_critical_difference, rank_test  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.int64, st.tuples(st.integers(2, 12), st.integers(3, 7)), elements=st.integers(0, 4)))
def test_friedman_is_scipys_statistic_ties_included(x):
    if all(len(set(row)) == 1 for row in x):  # every block all tied: scipy divides by zero
        assert friedman(x)[:2] == (0.0, 1.0)
        return
    stat, p, mean = friedman(x)
    ref = friedmanchisquare(*(-x).T)
    assert stat == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    assert mean.sum() == pytest.approx(x.shape[1] * (x.shape[1] + 1) / 2)


def test_friedman_of_two_methods_is_the_sign_statistic():
    # k = 2, no ties: chi2 = (wins - losses)^2 / n
    a = np.array([3.0, 2.0, 5.0, 4.0, 9.0, 1.0, 7.0])
    b = np.array([1.0, 3.0, 4.0, 2.0, 8.0, 0.0, 6.0])  # a wins 6 of 7
    stat, _, mean = friedman(np.column_stack([a, b]))
    assert stat == pytest.approx((6 - 1) ** 2 / 7)
    assert mean.tolist() == pytest.approx([1 + 1 / 7, 2 - 1 / 7])


# Demšar (2006), Table 5: q_alpha / sqrt(2) of Nemenyi's test for k = 2..10 methods
DEMSAR_005 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
DEMSAR_010 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]


@pytest.mark.parametrize("alpha, table", [(0.05, DEMSAR_005), (0.10, DEMSAR_010)])
def test_nemenyi_critical_difference_matches_demsars_table(alpha, table):
    for k, q in zip(range(2, 11), table):
        for n in (5, 10, 30):
            scale = np.sqrt(k * (k + 1) / (6 * n))
            assert nemenyi_critical_difference(k, n, alpha) / scale == pytest.approx(q, abs=1e-3)  # the table's digits


@pytest.mark.parametrize("k, n, alpha", [(1, 10, 0.05), (3, 0, 0.05), (3, 10, 0.0), (3, 10, 1.5), (True, 10, 0.05)])
def test_nemenyi_rejects_bad_input(k, n, alpha):
    with pytest.raises(ValueError):
        nemenyi_critical_difference(k, n, alpha)


def _final(values: dict[str, list[float]], n_workers: int = 1) -> pd.DataFrame:
    rows = [{"optimizer": name, "seed": s, "n_workers": n_workers, "hv": v}
            for name, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_rank_test_on_a_planted_order():
    rng = np.random.default_rng(0)
    base = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}  # every seed ranks a > b > c > d
    t = rank_test(_final({k: list(v + 0.1 * rng.random(10)) for k, v in base.items()}))
    assert t.n_seeds == 10 and list(t.mean_ranks) == ["a", "b", "c", "d"]
    assert list(t.mean_ranks.values()) == [1.0, 2.0, 3.0, 4.0]
    assert t.critical_difference == pytest.approx(2.569 * np.sqrt(20 / 60), abs=1e-3)  # 1.483
    assert t.rejects and t.p_value < 1e-5
    assert t.separated("a", "c") and t.separated("d", "b") and not t.separated("a", "b")
    assert t.groups == [("a", "b"), ("b", "c"), ("c", "d")]
    assert t.ahead() == {"a": ["c", "d"], "b": ["d"]}
    assert "a ahead of c, d; b ahead of d;" in t.describe()
    with pytest.raises(ValueError, match="'e'"):
        t.separated("a", "e")


def test_rank_test_where_the_seeds_cannot_tell():
    t = rank_test(_final({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 1.0, 4.0, 3.0], "c": [1.5, 1.5, 3.5, 3.5]}))
    assert not t.rejects and t.p_value > 0.5
    assert t.groups == [tuple(t.mean_ranks)] and t.ahead() == {}
    assert not t.separated("a", "b")
    assert "separate none of the 3 optimizers" in t.describe()
    tied = rank_test(_final({"a": [1.0, 1.0], "b": [1.0, 1.0]}))
    assert (tied.statistic, tied.p_value) == (0.0, 1.0)


def test_rank_test_uses_the_seeds_every_optimizer_ran_and_says_what_is_wrong():
    f = _final({"a": [3.0, 3.0, 3.0, 3.0], "b": [1.0, 1.0, 1.0, 1.0]})
    t = rank_test(f[~((f["optimizer"] == "b") & (f["seed"] == 3))])
    assert t.n_seeds == 3
    with pytest.raises(ValueError, match="2 optimizers"):
        rank_test(f[f["optimizer"] == "a"])
    with pytest.raises(ValueError, match="2 seeds"):
        rank_test(f[f["seed"] == 0])
    both = pd.concat([f, f.assign(n_workers=4)])
    with pytest.raises(ValueError, match="several worker counts"):
        rank_test(both)
    assert rank_test(both, n_workers=4).n_workers == 4
    with pytest.raises(ValueError, match="not among"):
        rank_test(both, n_workers=8)
    with pytest.raises(ValueError, match="no column 'test_hv'"):
        rank_test(f, column="test_hv")


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_bonferroni_dunn_critical_difference_is_the_corrected_normal_quantile(alpha):
    from statistics import NormalDist

    for k in range(2, 11):
        q = NormalDist().inv_cdf(1 - alpha / (2 * (k - 1)))  # Demšar (2006), section 3.2.2 and Table 5b
        for n in (5, 10, 30):
            scale = np.sqrt(k * (k + 1) / (6 * n))
            assert bonferroni_dunn_critical_difference(k, n, alpha) / scale == pytest.approx(q, rel=1e-9)
            assert bonferroni_dunn_critical_difference(k, n, alpha) <= nemenyi_critical_difference(k, n, alpha) + 1e-12
    if alpha == 0.05:  # three of Table 5b's printed values
        for k, printed in ((2, 1.960), (3, 2.241), (10, 2.773)):
            assert bonferroni_dunn_critical_difference(k, 6, alpha) / np.sqrt(k * (k + 1) / 36) == pytest.approx(printed, abs=1e-3)
    with pytest.raises(ValueError):
        bonferroni_dunn_critical_difference(1, 10)


def test_rank_test_against_a_control():
    rng = np.random.default_rng(0)
    base = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}  # every seed ranks a > b > c > d
    final = _final({k: list(v + 0.1 * rng.random(10)) for k, v in base.items()})
    t = rank_test(final, control="b")
    assert t.control == "b" and t.critical_difference == pytest.approx(2.394 * np.sqrt(20 / 60), abs=1e-3)  # 1.382
    assert t.separated("b", "d") and not t.separated("a", "b") and not t.separated("b", "c")
    assert not t.separated("a", "d")  # not a pair with the control: not tested
    assert rank_test(final).separated("a", "d")  # Nemenyi tests every pair
    assert t.groups == [("a", "b", "c"), ("d",)]
    assert t.ahead() == {"b": ["d"]}  # the control's pairs only
    assert t.describe().endswith("Separated by these seeds: b ahead of d; these seeds cannot tell b from a, c.")
    assert "b behind a" in rank_test(final, control="b", alpha=0.5).describe()  # a wider net: 1 rank apart
    with pytest.raises(ValueError, match="control: 'e' is not among the optimizers"):
        rank_test(final, control="e")
