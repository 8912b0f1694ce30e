"""The search space: sampling, validation, ids, encoding (docs/problem.md §1)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surrobench import space
from surrobench.space import HYPERPARAMETERS, INACTIVE, NAMES

seeds = st.integers(0, 2**32 - 1)
BY_NAME = {hp.name: hp for hp in HYPERPARAMETERS}
PY_TYPE = {"int": int, "float": float}


def _expected_type(hp):
    if hp.kind == "cat":
        return type(hp.choices[0])
    return PY_TYPE[hp.kind]


# --- sampling ---------------------------------------------------------------------------


@given(seeds)
def test_sampled_config_validates_unchanged(seed):
    cfg = space.sample(seed)
    out = space.validate(cfg)
    assert out == cfg
    assert list(out) == list(cfg) == [n for n in NAMES if n in cfg]
    assert tuple(cfg) == space.active_names(cfg)
    for name, value in cfg.items():
        assert type(value) is _expected_type(BY_NAME[name]), name  # True == 1, so check types


def test_sampling_is_seeded():
    assert space.sample(7, n=20) == space.sample(7, n=20)
    assert space.sample(7, n=20) != space.sample(8, n=20)
    assert space.sample(np.random.default_rng(7)) == space.sample(7)


def test_generator_is_used_and_advanced():
    rng = np.random.default_rng(3)
    first, second = space.sample(rng), space.sample(rng)
    assert first != second
    assert space.sample(np.random.default_rng(3), n=2) == [first, second]


@given(seeds)
def test_sample_draws_every_hyperparameter_in_order_then_drops_the_inactive(seed):
    """The stream is fixed (a plan seed must always mean the same configs): per config, each
    hyperparameter's own ``sample`` in the order of NAMES, active or not."""
    rng = np.random.default_rng(seed)
    expected = []
    for _ in range(3):
        values = {hp.name: hp.sample(rng) for hp in HYPERPARAMETERS}
        expected.append({n: v for n, v in values.items() if space.is_active(n, values)})
    mine = np.random.default_rng(seed)
    got = space.sample(mine, n=3)
    assert mine.bit_generator.state == rng.bit_generator.state  # the same generator calls
    assert got == expected and [list(c) for c in got] == [list(c) for c in expected]
    assert [type(v) for c in got for v in c.values()] == [type(v) for c in expected for v in c.values()]


def _reference_draw(hp, rng):
    """A prior draw written as the space first defined it (``Generator.uniform`` per value)."""
    if hp.kind == "cat":
        return hp.choices[int(rng.integers(len(hp.choices)))]
    lo, hi = float(hp.lower), float(hp.upper)
    if hp.kind == "int":
        lo, hi = lo - 0.5, hi + 0.5
    v = math.exp(rng.uniform(math.log(lo), math.log(hi))) if hp.log else rng.uniform(lo, hi)
    if hp.kind == "int":
        return int(min(max(round(v), hp.lower), hp.upper))
    return float(min(max(v, hp.lower), hp.upper))


@settings(max_examples=25)
@given(seeds)
def test_prior_draws_are_those_of_generator_uniform_bit_for_bit(seed):
    """``Hyperparameter.sample`` draws ``lo + (hi - lo) * rng.random()`` for speed: every value and
    the generator's state afterwards must equal ``rng.uniform(lo, hi)``'s (plan seeds and every
    optimizer's stream depend on it)."""
    fast, ref = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(200):
        for hp in HYPERPARAMETERS:
            a, b = hp.sample(fast), _reference_draw(hp, ref)
            assert type(a) is type(b) and a == b, hp.name
    assert fast.bit_generator.state == ref.bit_generator.state


@pytest.mark.parametrize("bad", ["0", 1.5, True, [1]])
def test_bad_seed_refused(bad):
    with pytest.raises(ValueError, match="seed"):
        space.sample(bad)


@pytest.mark.parametrize("bad", [-1, 2.0, True])
def test_bad_n_refused(bad):
    with pytest.raises(ValueError, match="n must"):
        space.sample(0, n=bad)


def test_log_scale_sampling():
    cfgs = space.sample(0, n=4000)
    bs = np.array([c["batch_size"] for c in cfgs])
    # Log-uniform over 1..512: the median sits near the geometric centre sqrt(1 * 512) ~ 22.6
    # (within a factor of two), nowhere near the arithmetic centre 256.5.
    assert abs(math.log(np.median(bs)) - math.log(math.sqrt(512))) < math.log(2)
    assert bs.min() == 1 and bs.max() <= 512
    log_lr = np.log10([c["lr_init"] for c in cfgs])
    # log10(lr) ~ U(-5, 0): mean -2.5, and 2/5 of the draws lie below 1e-3.
    assert abs(log_lr.mean() - (-2.5)) < 0.1
    assert abs(np.mean(log_lr < -3) - 0.4) < 0.03
    depths = np.bincount([c["n_conv_l"] for c in cfgs], minlength=4)[1:] / len(cfgs)
    np.testing.assert_allclose(depths, 1 / 3, atol=0.03)


# --- config ids -------------------------------------------------------------------------


@given(seeds)
def test_config_id_is_sha256_of_canonical_json(seed):
    cfg = space.sample(seed)
    text = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    assert space.config_id(cfg) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert space.canonical_json(cfg) == text


@given(seeds)
def test_config_id_ignores_key_order_and_numpy_types(seed):
    cfg = space.sample(seed)
    shuffled = dict(reversed(list(cfg.items())))
    numpyish = {k: (np.int64(v) if type(v) is int else v) for k, v in cfg.items()}
    assert space.config_id(shuffled) == space.config_id(cfg) == space.config_id(numpyish)


@given(seeds, seeds)
def test_different_configs_have_different_ids(a, b):
    ca, cb = space.sample(a), space.sample(b)
    assert (space.config_id(ca) == space.config_id(cb)) == (ca == cb)


def test_small_change_changes_id():
    cfg = space.default_config()
    other = {**cfg, "lr_init": math.nextafter(cfg["lr_init"], 1.0)}
    assert space.config_id(other) != space.config_id(cfg)


# --- validation -------------------------------------------------------------------------


def _with(name: str, value) -> dict:
    """The default config with one valid value changed (keys made inactive are dropped)."""
    cfg = {**space.default_config(), name: value}
    return {k: v for k, v in cfg.items() if space.is_active(k, cfg)}


def _active_base(name: str) -> dict:
    cfg = space.default_config()  # three conv and three fc layers: all 13 are active
    assert name in cfg
    return cfg


def _bad_values():
    cases = []
    for hp in HYPERPARAMETERS:
        if hp.kind == "int":
            cases += [
                (hp.name, int(hp.lower) - 1, "below"),
                (hp.name, int(hp.upper) + 1, "above"),
                (hp.name, str(hp.default), "str"),
                (hp.name, float(hp.default), "float"),
                (hp.name, True, "bool"),
                (hp.name, None, "none"),
            ]
        elif hp.kind == "float":
            cases += [
                (hp.name, hp.lower / 10, "below"),
                (hp.name, hp.upper * 10, "above"),
                (hp.name, str(hp.default), "str"),
                (hp.name, True, "bool"),
                (hp.name, float("nan"), "nan"),
                (hp.name, float("inf"), "inf"),
            ]
        elif hp.choices == (False, True):
            cases += [(hp.name, 1, "int"), (hp.name, "True", "str"), (hp.name, None, "none")]
        else:
            cases += [
                (hp.name, min(hp.choices) - 2, "below"),
                (hp.name, max(hp.choices) + 2, "above"),
                (hp.name, 4, "not a choice"),
                (hp.name, float(hp.default), "float"),
                (hp.name, True, "bool"),
                (hp.name, str(hp.default), "str"),
            ]
    return cases


@pytest.mark.parametrize("name, value, why", _bad_values(), ids=lambda x: str(x))
def test_bad_value_refused_naming_key(name, value, why):
    cfg = {**_active_base(name), name: value}
    with pytest.raises(ValueError, match=rf"^{name}:"):
        space.validate(cfg)


@pytest.mark.parametrize("hp", [h for h in HYPERPARAMETERS if h.kind != "cat"], ids=lambda h: h.name)
def test_bounds_are_inclusive(hp):
    cast = PY_TYPE[hp.kind]
    for value in (cast(hp.lower), cast(hp.upper)):
        assert space.validate(_with(hp.name, value))[hp.name] == value


@pytest.mark.parametrize("name", NAMES)
def test_missing_active_key_refused(name):
    cfg = _active_base(name)
    del cfg[name]
    with pytest.raises(ValueError, match=rf"^{name}:.*missing"):
        space.validate(cfg)


@pytest.mark.parametrize(
    "depth_key, depth, extra",
    [
        ("n_conv_l", 1, "n_conv_1"),
        ("n_conv_l", 1, "n_conv_2"),
        ("n_conv_l", 2, "n_conv_2"),
        ("n_fc_l", 1, "n_fc_1"),
        ("n_fc_l", 2, "n_fc_2"),
    ],
)
def test_inactive_key_present_refused(depth_key, depth, extra):
    cfg = _with(depth_key, depth)
    assert extra not in cfg and space.validate(cfg) == cfg
    cfg[extra] = BY_NAME[extra].default
    with pytest.raises(ValueError, match=rf"^{extra}:.*inactive"):
        space.validate(cfg)


@pytest.mark.parametrize("key", ["n_conv_3", "dropout", "lr", 0])
def test_unknown_key_refused(key):
    cfg = {**space.default_config(), key: 1}
    with pytest.raises(ValueError, match=rf"^{key}:.*unknown"):
        space.validate(cfg)


def test_non_mapping_refused():
    with pytest.raises(ValueError, match="dict"):
        space.validate([("n_conv_l", 1)])


def test_validate_does_not_mutate_input():
    cfg = {**space.default_config(), "n_conv_0": np.int64(64)}
    before = dict(cfg)
    space.validate(cfg)
    assert cfg == before and type(cfg["n_conv_0"]) is np.int64


@pytest.mark.parametrize("bad", [0, 26, -1, 1.5, 3.0, True, False, "3", None])
def test_validate_epoch_refuses(bad):
    with pytest.raises(ValueError, match="epoch"):
        space.validate_epoch(bad)


@pytest.mark.parametrize("good", [1, 13, 25, np.int64(7)])
def test_validate_epoch_accepts(good):
    out = space.validate_epoch(good)
    assert out == good and type(out) is int


# --- encoding ---------------------------------------------------------------------------


@settings(max_examples=50)
@given(st.lists(seeds, min_size=1, max_size=5))
def test_encode_columns(seed_list):
    cfgs = [space.sample(s) for s in seed_list]
    x = space.encode(cfgs)
    x_nan = space.encode(cfgs, inactive=np.nan)
    assert x.shape == (len(cfgs), 13)
    for row, row_nan, cfg in zip(x, x_nan, cfgs):
        for j, hp in enumerate(HYPERPARAMETERS):
            if hp.name not in cfg:
                assert row[j] == INACTIVE and np.isnan(row_nan[j])
            elif hp.kind == "cat":
                assert row[j] == hp.choices.index(cfg[hp.name]) == row_nan[j]
            else:
                assert 0.0 <= row[j] <= 1.0 and row[j] == row_nan[j]


def test_encode_fixed_positions_and_log_scale():
    cfg = space.default_config()
    row = dict(zip(NAMES, space.encode([cfg])[0]))
    assert list(NAMES)[:2] == ["n_conv_l", "n_conv_0"] and len(NAMES) == 13
    assert row["n_conv_l"] == 1.0 and row["n_fc_l"] == 1.0  # depth 3 of 1..3
    # 128 = sqrt(16 * 1024) and 32 = sqrt(2 * 512): geometric midpoints encode to 0.5.
    for name in ("n_conv_0", "n_conv_1", "n_conv_2", "n_fc_0", "n_fc_1", "n_fc_2"):
        assert row[name] == pytest.approx(0.5)
    assert row["lr_init"] == pytest.approx(0.4)  # log10(1e-3) is 2/5 of the way from -5 to 0
    assert row["kernel_size"] == 1.0  # 5 in (3, 5, 7)
    assert row["batch_norm"] == 0.0 and row["global_avg_pooling"] == 1.0
    row = dict(zip(NAMES, space.encode([_with("n_conv_l", 1)])[0]))
    assert row["n_conv_l"] == 0.0 and row["n_conv_1"] == INACTIVE and row["n_conv_2"] == INACTIVE


@pytest.mark.parametrize("hp", [h for h in HYPERPARAMETERS if h.kind != "cat"], ids=lambda h: h.name)
def test_encode_bounds_map_to_unit_interval(hp):
    cast = PY_TYPE[hp.kind]
    j = NAMES.index(hp.name)
    lo = space.encode([_with(hp.name, cast(hp.lower))])[0, j]
    hi = space.encode([_with(hp.name, cast(hp.upper))])[0, j]
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(1.0)


def test_encode_empty_and_invalid():
    assert space.encode([]).shape == (0, 13)
    with pytest.raises(ValueError, match="batch_size"):
        space.encode([{**space.default_config(), "batch_size": 0}])


@given(seeds)
def test_decode_inverts_encode(seed):
    cfg = space.sample(seed)
    assert space.decode(space.encode([cfg])[0]) == cfg
    assert space.decode(space.encode([cfg], inactive=np.nan)[0]) == cfg


def test_decode_grown_depth_uses_default_width():
    row = space.encode([_with("n_conv_l", 1)])[0]
    row[NAMES.index("n_conv_l")] = 0.5  # depth 2
    out = space.decode(row)
    assert out["n_conv_l"] == 2 and out["n_conv_1"] == BY_NAME["n_conv_1"].default and "n_conv_2" not in out


def test_decode_wrong_shape_refused():
    with pytest.raises(ValueError, match="13"):
        space.decode(np.zeros(12))
