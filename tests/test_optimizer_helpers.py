"""Shared optimizer helpers: Pareto orders and selections against brute force, valid children."""

import math

import moocore
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surrobench._ufuncs import clip
from surrobench.optimizers import _common as C
from surrobench.optimizers.mobohb import CategoricalEstimator, ParzenEstimator, UnivariateTPE, tpe_sample
from surrobench.space import HYPERPARAMETERS, sample, validate

from conftest import configs

_HP = {hp.name: hp for hp in HYPERPARAMETERS}

# Small integer grids make ties and duplicates common.
point_sets = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25).map(
    lambda p: np.array(p, dtype=float)
)


def _dominates(a, b):
    return bool(np.all(a <= b) and np.any(a < b))


def _brute_ranks(pts):
    ranks = np.full(len(pts), -1)
    left, r = set(range(len(pts))), 0
    while left:
        front = {i for i in left if not any(_dominates(pts[j], pts[i]) for j in left)}
        for i in front:
            ranks[i] = r
        left -= front
        r += 1
    return ranks


def _hv(pts, ref):
    return moocore.hypervolume(np.asarray(pts, dtype=float).reshape(-1, 2), ref=ref) if len(pts) else 0.0


@settings(max_examples=60, deadline=None)
@given(pts=point_sets)
def test_nondominated_ranks_match_brute_force(pts):
    assert C.nondominated_ranks(pts).tolist() == _brute_ranks(pts).tolist()


@settings(max_examples=40, deadline=None)
@given(pts=point_sets, seed=st.integers(0, 1000))
def test_crowding_distance_is_order_invariant_and_extremes_are_infinite(pts, seed):
    pts = np.unique(pts, axis=0)
    d = C.crowding_distance(pts)
    perm = np.random.default_rng(seed).permutation(len(pts))
    np.testing.assert_allclose(C.crowding_distance(pts[perm]), d[perm])
    for j in range(2):
        assert np.isinf(d[pts[:, j] == pts[:, j].min()]).any() and np.isinf(d[pts[:, j] == pts[:, j].max()]).any()
    assert (d >= 0).all()


def test_crowding_distance_known_values():
    pts = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    # interior: (x_{i+1} - x_{i-1}) / 4 + (y_{i-1} - y_{i+1}) / 4
    assert C.crowding_distance(pts).tolist() == [np.inf, 3 / 4 + 3 / 4, 3 / 4 + 2 / 4, np.inf]


@settings(max_examples=80, deadline=None)
@given(pts=point_sets, seed=st.integers(0, 2**32 - 1), noise=st.booleans())
def test_crowding_by_front_equals_crowding_distance_per_front_bit_for_bit(pts, seed, noise):
    arr = np.asarray(pts, dtype=float).reshape(-1, 2)
    if noise:  # irrational spans and gaps as well as the grid's ties
        arr = arr + np.random.default_rng(seed).random(arr.shape) * 0.5
    ranks = C.nondominated_ranks(arr)
    expected = np.zeros(len(arr))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        expected[idx] = C.crowding_distance(arr[idx])
    np.testing.assert_array_equal(C.crowding_by_front(arr, ranks), expected)


@settings(max_examples=40, deadline=None)
@given(pts=point_sets)
def test_nsga_order_is_a_permutation_sorted_by_front(pts):
    order = C.nsga_order(pts)
    assert sorted(order.tolist()) == list(range(len(pts)))
    ranks = C.nondominated_ranks(pts)[order]
    assert (np.diff(ranks) >= 0).all()


@settings(max_examples=40, deadline=None)
@given(pts=point_sets, k=st.integers(0, 25))
def test_select_rank_hv_takes_whole_fronts_then_greedy_hv(pts, k):
    chosen = C.select_rank_hv(pts, k)
    k = min(k, len(pts))
    assert len(chosen) == len(set(chosen.tolist())) == k
    ranks = C.nondominated_ranks(pts)
    if k:
        worst = ranks[chosen].max()
        # every row of a better front is taken
        assert set(np.flatnonzero(ranks < worst)) <= set(chosen.tolist())


@settings(max_examples=60, deadline=None)
@given(pts=point_sets, data=st.data())
def test_greedy_gains_equal_hypervolume_differences(pts, data):
    front = np.unique(pts[C.nondominated_ranks(pts) == 0], axis=0)
    ref = front.max(axis=0) + 1.0
    idx = list(range(len(front)))
    taken = data.draw(st.lists(st.sampled_from(idx), unique=True, max_size=len(idx)))
    rest = np.array([i for i in idx if i not in taken], dtype=int)
    if len(rest) == 0:
        return
    gains = C._greedy_gains(front, taken, rest, ref)
    base = _hv(front[taken], ref)
    brute = [_hv(front[taken + [int(i)]], ref) - base for i in rest]
    np.testing.assert_allclose(gains, brute, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(pts=point_sets)
def test_smallest_contributor_matches_brute_force(pts):
    victim = C.smallest_contributor(pts, ref=(10.0, 10.0))
    ranks = C.nondominated_ranks(pts)
    last = np.flatnonzero(ranks == ranks.max())
    assert victim in last
    if len(last) > 1:
        front = pts[last]
        total = _hv(front, (10.0, 10.0))
        contrib = [total - _hv(np.delete(front, i, axis=0), (10.0, 10.0)) for i in range(len(front))]
        assert contrib[list(last).index(victim)] == pytest.approx(min(contrib))


def test_sms_order_puts_the_knee_before_crowded_points():
    pts = np.array([[0.0, 1.0], [0.5, 0.5], [0.51, 0.49], [1.0, 0.0], [2.0, 2.0]])
    order = C.sms_order(pts, ref=(3.0, 3.0))
    assert order[-1] == 4  # the dominated point is last
    assert set(order[:2].tolist()) == {0, 3}  # extremes contribute most with a far reference point


def test_inputs_are_not_mutated():
    pts = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])
    copy = pts.copy()
    C.nsga_order(pts), C.sms_order(pts), C.select_rank_hv(pts, 2), C.smallest_contributor(pts)
    np.testing.assert_array_equal(pts, copy)


# --------------------------------------------------------------------------- variation operators

OPERATORS = {
    "mutate_resample": lambda a, b, rng, md: C.mutate_resample(a, rng, mutable_depths=md),
    "mutate_gaussian": lambda a, b, rng, md: C.mutate_gaussian(a, rng, mutable_depths=md),
    "uniform_crossover": lambda a, b, rng, md: C.uniform_crossover(a, b, rng, mutable_depths=md),
    "sbx_crossover": lambda a, b, rng, md: C.sbx_crossover(a, b, rng),
    "polynomial_mutation": lambda a, b, rng, md: C.polynomial_mutation(a, rng, p_var=0.5),
}


@pytest.mark.parametrize("op", sorted(OPERATORS))
@settings(max_examples=40, deadline=None)
@given(a=configs(), b=configs(), seed=st.integers(0, 2**32 - 1), md=st.booleans())
def test_children_are_always_valid(op, a, b, seed, md):
    a, b = validate(a), validate(b)
    child = OPERATORS[op](a, b, np.random.default_rng(seed), md)
    assert validate(child) == child
    if not md and op in ("mutate_resample", "mutate_gaussian", "uniform_crossover"):
        assert (child["n_conv_l"], child["n_fc_l"]) == (a["n_conv_l"], a["n_fc_l"])


@pytest.mark.parametrize("op", ["mutate_resample", "uniform_crossover", "sbx_crossover"])
def test_depth_changes_add_and_drop_widths(op):
    rng = np.random.default_rng(0)
    a = validate({"n_conv_l": 1, "n_conv_0": 64, "n_fc_l": 3, "n_fc_0": 8, "n_fc_1": 8, "n_fc_2": 8, "kernel_size": 3,
                  "lr_init": 1e-3, "batch_norm": False, "batch_size": 32, "global_avg_pooling": True})
    b = validate({"n_conv_l": 3, "n_conv_0": 512, "n_conv_1": 300, "n_conv_2": 200, "n_fc_l": 1, "n_fc_0": 100,
                  "kernel_size": 7, "lr_init": 1e-2, "batch_norm": True, "batch_size": 8, "global_avg_pooling": False})
    depths = set()
    for _ in range(300):
        child = OPERATORS[op](a, b, rng, True)
        assert validate(child) == child
        depths.add((child["n_conv_l"], child["n_fc_l"]))
        if op == "uniform_crossover" and child["n_conv_l"] == 3:
            assert (child["n_conv_1"], child["n_conv_2"]) == (300, 200)  # taken from the parent that has them
    assert len(depths) > 2


def test_halving_budgets_follow_the_original_and_respect_the_problem():
    from dataclasses import replace

    from surrobench.records import Problem

    from toybench import TASK

    def epochs(lo, hi):
        return Problem(replace(TASK, min_epoch=lo, max_epoch=hi))

    assert C.halving_budgets(5, 25, 2, Problem(TASK)) == [7, 13, 25]
    assert C.halving_budgets(5, 25, 3, Problem(TASK)) == [9, 25]
    assert C.halving_budgets(2, 10, 2, epochs(6, 10)) == [6, 10]
    assert C.halving_budgets(0.2, 1, 2, epochs(1, 1)) == [1]


# --------------------------------------------------------------------------- MO-TPE estimators


def test_discrete_kernel_masses_sum_to_one():
    hp = _HP["n_conv_l"]  # 1..3, linear: bins of width 1/3 in the estimator's scale
    pe = ParzenEstimator([0.5, 0.9])
    edges = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    assert np.exp(pe.log_mass(edges[:-1], edges[1:])).sum() == pytest.approx(1.0)
    tpe = UnivariateTPE(hp, [1, 1, 1], [3, 3, 3, 3])
    lo, hi = tpe._fwd(np.array([0.5, 1.5, 2.5])), tpe._fwd(np.array([1.5, 2.5, 3.5]))
    assert np.exp(tpe.l.log_mass(lo, hi)).sum() == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(0, 8), min_size=0, max_size=60), spread=st.booleans())
def test_parzen_estimator_on_distinct_kernels_equals_the_mixture_of_every_observation(values, spread):
    from scipy.special import ndtr

    x = np.asarray(values, dtype=float) / (8.0 if spread else 80.0)  # many repeats, as integers give
    pe = ParzenEstimator(x)
    assert pe._kweight.sum() == pytest.approx(1.0) and len(pe._kmu) <= len(pe.mus)
    z_all = np.maximum(ndtr((1.0 - pe.mus) / pe.sigmas) - ndtr(-pe.mus / pe.sigmas), np.finfo(float).eps)
    at = np.linspace(0.0, 1.0, 23)
    dens = np.exp(-0.5 * ((at[:, None] - pe.mus) / pe.sigmas) ** 2) / (np.sqrt(2 * np.pi) * pe.sigmas * z_all)
    np.testing.assert_allclose(pe.log_pdf(at), np.log(dens @ pe.weights + np.finfo(float).eps), rtol=1e-12, atol=1e-12)
    lo, hi = at[:-1], at[1:]
    mass = (ndtr((hi[:, None] - pe.mus) / pe.sigmas) - ndtr((lo[:, None] - pe.mus) / pe.sigmas)) / z_all
    np.testing.assert_allclose(pe.log_mass(lo, hi), np.log(np.maximum(mass @ pe.weights, np.finfo(float).eps)),
                               rtol=1e-10, atol=1e-12)


def test_integer_tpe_ranks_integers():
    # The original's bin [x + q/2, x + q/2] makes l/g constant for integers; here the good value wins.
    rng = np.random.default_rng(0)
    picks = [tpe_sample(_HP["n_conv_l"], [1] * 5, [3] * 20 + [2] * 20, rng) for _ in range(50)]
    assert np.mean(np.array(picks) == 1) > 0.9
    widths = [tpe_sample(_HP["batch_size"], [30, 32, 34, 32], [1, 2, 500, 300, 200, 3], rng) for _ in range(50)]
    assert 16 <= np.median(widths) <= 64


def test_float_and_categorical_tpe():
    rng = np.random.default_rng(1)
    lrs = [tpe_sample(_HP["lr_init"], [1e-3, 1.2e-3, 8e-4], [0.5, 0.9, 1e-5, 2e-5], rng) for _ in range(30)]
    assert 1e-4 < np.median(lrs) < 1e-2
    ks = [tpe_sample(_HP["kernel_size"], [3, 3, 3], [5, 7, 5, 7], rng) for _ in range(30)]
    assert np.mean(np.array(ks) == 3) > 0.9
    est = CategoricalEstimator([0, 0, 1], 3)
    assert est.probs.sum() == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), max_size=30), st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_parzen_draws_equal_the_two_draw_recipe(values, n, seed):
    # kernels from one block of 2n uniforms: the numbers of choice-then-place, drawn one call each
    from scipy.special import ndtri

    pe, eps = ParzenEstimator(values), np.finfo(float).eps
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    comp = pe._cdf.searchsorted(a.random(n), side="right")
    u = pe._lo[comp] + a.random(n) * pe._z[comp]
    expected = np.clip(pe.mus[comp] + pe.sigmas[comp] * ndtri(np.clip(u, eps, 1 - eps)), 0.0, 1.0)
    np.testing.assert_array_equal(pe.sample(b, n), expected)
    assert a.bit_generator.state == b.bit_generator.state


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 30))
def test_tpe_draws_of_a_config_from_one_block_equal_one_draw_per_hyperparameter(seed, n):
    good, bad = sample(seed, 6), sample(seed + 1, 40)
    models = [UnivariateTPE(hp, [c[hp.name] for c in good if hp.name in c], [c[hp.name] for c in bad if hp.name in c])
              for hp in HYPERPARAMETERS]
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    one_each = [m.sample(a, n) for m in models]
    sizes = [m.uniforms_needed(n) for m in models]
    block = np.split(b.random(sum(sizes)), np.cumsum(sizes)[:-1])
    assert [m.sample_from(u) for m, u in zip(models, block)] == one_each
    assert a.bit_generator.state == b.bit_generator.state


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 30), st.integers(1, 60), st.integers(1, 300))
def test_config_sampler_equals_the_models_drawing_one_by_one(seed, n, n_good, n_bad):
    from surrobench.optimizers.mobohb import ConfigSampler

    good, bad = sample(seed, n_good), sample(seed + 1, n_bad)

    def models():
        return [UnivariateTPE(hp, [c[hp.name] for c in good if hp.name in c], [c[hp.name] for c in bad if hp.name in c])
                for hp in HYPERPARAMETERS]

    one_by_one, joint = models(), ConfigSampler(models(), n)
    sizes = [m.uniforms_needed(n) for m in one_by_one]
    assert joint.n_uniforms == sum(sizes)
    rng = np.random.default_rng(seed)
    for _ in range(8):  # later draws hit the integers' cached l/g, filled by earlier ones
        block = rng.random(joint.n_uniforms)
        expected = {m.hp.name: m.sample_from(u) for m, u in zip(one_by_one, np.split(block, np.cumsum(sizes)[:-1]))}
        got = joint.sample_from(block)
        assert got == expected and list(got) == list(expected)
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_tpe_without_good_values_falls_back_to_the_prior():
    rng = np.random.default_rng(2)
    values = [tpe_sample(_HP["n_conv_2"], [], [16, 17, 18], rng) for _ in range(30)]
    assert all(16 <= v <= 1024 for v in values) and len(set(values)) > 5



@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.integers(1, 40), st.integers(0, 2**31 - 1), st.booleans())
def test_mobohb_choice_draws_exactly_as_generator_choice(n, size, seed, uniform):
    from surrobench.optimizers.mobohb import _cdf, _choice

    p = np.full(n, 1.0 / n) if uniform else np.random.default_rng(seed + 1).random(n) + 1e-3
    p = p / p.sum()
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    np.testing.assert_array_equal(_choice(a, _cdf(p), size), b.choice(n, size=size, p=p))
    assert a.random() == b.random()  # the generator advanced by the same amount


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=30))
def test_moasha_front_contributions_equal_moocore_bit_for_bit(cells):
    from surrobench.optimizers.moasha import _contributions, front_contributions

    pts = np.array(cells, dtype=float) / np.array([10.0, 1.25])  # some outside ref, duplicates possible
    front = pts[np.asarray(moocore.pareto_rank(pts)) == 0]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    ref = np.array([1.0, 8.0])
    np.testing.assert_array_equal(front_contributions(front, ref), _contributions(front, ref))


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=60),
       level=st.integers(0, 3))
def test_fronts_order_by_contribution_equals_the_numpy_lexsort(cells, level):
    from surrobench.optimizers._fronts import Fronts, front_contributions

    fronts = Fronts()
    for c in cells:  # some beyond ref, duplicates possible
        fronts.add(None, (c[0] / 10.0, c[1] / 1.25))
    front = fronts.front(level)
    if front is None:
        return
    ref = np.array([1.0, 8.0])
    arr = np.array(front)
    pts, idx = arr[:, :2], arr[:, 2].astype(int)
    expected = idx[np.lexsort((idx, pts[:, 0], -front_contributions(pts, ref)))].tolist()
    assert fronts.ordered(level, ref) == expected


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=40),
       scale=st.sampled_from([(10.0, 1.25), (7.0, 3.0), (1.0, 1.0)]), with_ref=st.booleans())
def test_contributions_by_front_equal_moocore_per_front_bit_for_bit(cells, scale, with_ref):
    # the vectorised closed form of every front at once, against one moocore call per front
    pts = np.array(cells, dtype=float) / np.array(scale)  # duplicates and points beyond ref possible
    ranks = C.nondominated_ranks(pts)
    ref = (1.0, 8.0) if with_ref else None
    expected = np.zeros(len(pts))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        expected[idx] = C.hv_contributions(pts[idx], ref=ref)
    np.testing.assert_array_equal(C.contributions_by_front(pts, ranks, ref=ref), expected)


def _full_values_one_draw_each(config, rng, fallback=None):
    """``full_values`` as first written: one ``Hyperparameter.sample`` per hyperparameter."""
    out = {}
    for hp in HYPERPARAMETERS:
        drawn = hp.sample(rng)
        if hp.name in config:
            out[hp.name] = config[hp.name]
        elif fallback is not None and hp.name in fallback:
            out[hp.name] = fallback[hp.name]
        else:
            out[hp.name] = drawn
    return out


@settings(max_examples=60)
@given(configs(), configs(), st.integers(0, 2**32 - 1), st.booleans())
def test_full_values_draws_what_one_sample_per_hyperparameter_draws(a, b, seed, with_fallback):
    """The batched uniforms of ``full_values`` keep every value and the generator's state of one
    ``sample`` per hyperparameter (every variation operator, and so every run, depends on it)."""
    fast, ref = np.random.default_rng(seed), np.random.default_rng(seed)
    fallback = b if with_fallback else None
    for _ in range(5):
        got, expected = C.full_values(a, fast, fallback), _full_values_one_draw_each(a, ref, fallback)
        assert list(got) == list(expected)
        assert all(type(got[k]) is type(expected[k]) and got[k] == expected[k] for k in expected)
        assert fast.bit_generator.state == ref.bit_generator.state
        a = C.restrict(got) if seed % 2 else {}  # also a config of another depth, and the empty one


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.5, 1e-300, math.inf, -math.inf, math.nan]),
                min_size=1, max_size=20),
       st.sampled_from([(0.0, 1.0), (-0.0, 0.0), (-1.0, 1e-300), (0.5, 0.5)]))
def test_the_clip_ufunc_gives_np_clips_bits(values, bounds):
    """The hot paths call numpy's clip ufunc directly: the same bits as np.clip, signed zeros,
    infinities and NaN included, with scalar and array bounds and on integers."""
    a = np.array(values)
    lo, hi = bounds
    assert clip(a, lo, hi).tobytes() == np.clip(a, lo, hi).tobytes()
    los, his = np.full(len(a), lo), np.full(len(a), hi)
    assert clip(a, los, his).tobytes() == np.clip(a, los, his).tobytes()
    assert np.maximum(a, lo).tobytes() == np.clip(a, lo, None).tobytes()
    ints = np.arange(-3, 4)
    assert clip(ints, 0, 2).tobytes() == np.clip(ints, 0, 2).tobytes()
