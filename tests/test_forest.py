"""The fast single-row paths answer exactly what the batch paths answer.

The numpy forest equals XGBoost's own prediction (missing values included), the seed normals
of one row equal that row of a batch (and the fused seed-and-config normals equal the two
apart), the clock of one row equals its row of a batch, and a simulated job's one call equals
``cost`` and ``query``.
"""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

import surrobench
from surrobench.benchmark import SurrogateBenchmark
from surrobench.records import Job
from surrobench.space import sample, validate
from surrobench.surrogate.features import feature_row
from surrobench.surrogate.forest import Forest
from surrobench.surrogate.model import exact_forest
from surrobench.surrogate.noise import config_normals, draw_normals, standard_normals


@pytest.fixture(scope="module")
def shipped():
    return surrobench.load()


def _rows(rng, n, n_features, missing=0.25):
    x = rng.uniform(-1.5, 12.0, size=(n, n_features))
    x[rng.random(x.shape) < missing] = np.nan
    x[rng.random(n) < 0.05] = np.nan  # whole rows missing
    return x


def _xgb(booster, x):
    return np.asarray(booster.inplace_predict(x), dtype=np.float32).reshape(len(x), -1)


def test_shipped_fast_model_replayed_bit_for_bit(shipped):
    fast = shipped.surrogate.fast
    forest = Forest.from_booster(fast)
    rng = np.random.default_rng(0)
    x = _rows(rng, 1500, forest.n_features)
    assert np.array_equal(forest.predict(x), _xgb(fast, x))
    # Values exactly at split thresholds go right (XGBoost goes left only when x < threshold).
    at = rng.choice(forest.threshold[forest.threshold != 0], size=x.shape).astype(float)
    at[rng.random(at.shape) < 0.2] = np.nan
    assert np.array_equal(forest.predict(at), _xgb(fast, at))
    # Feature rows of real configs: inactive widths are NaN (missing).
    cfgs = [validate(c) for c in sample(seed=1, n=500)]
    rows = np.array([feature_row(c, shipped.task.input_shape, shipped.task.n_classes, shipped._n_train)[0] for c in cfgs])
    assert np.isnan(rows).any()
    assert np.array_equal(forest.predict(rows), _xgb(fast, rows))


@pytest.mark.parametrize("max_depth", [1, 4, 6])
def test_trained_multi_target_booster_replayed_bit_for_bit(max_depth):
    rng = np.random.default_rng(max_depth)
    x = _rows(rng, 400, 5, missing=0.3)
    filled = np.nan_to_num(x, nan=3.0)
    y = np.column_stack([np.sin(filled[:, 0]) + filled[:, 1], filled[:, 2] * filled[:, 3], -filled[:, 4]])
    booster = xgb.train({"max_depth": max_depth, "tree_method": "hist", "nthread": 1, "base_score": 0.3,
                         "multi_strategy": "one_output_per_tree"}, xgb.DMatrix(x, label=y), 30)
    forest = Forest.from_booster(booster)
    assert forest.n_outputs == 3 and 1 <= forest.depth <= max_depth
    probe = _rows(np.random.default_rng(99), 800, 5, missing=0.4)
    assert np.array_equal(forest.predict(probe), _xgb(booster, probe))
    assert forest.predict(probe[:0]).shape == (0, 3)


def test_single_leaf_trees():
    x = np.arange(20.0).reshape(10, 2)
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=np.full(10, 2.5)), 3)
    forest = Forest.from_booster(booster)
    assert forest.depth == 0
    assert np.array_equal(forest.predict(x), _xgb(booster, x))


def test_models_it_cannot_replay_are_refused():
    x = np.random.default_rng(0).random((50, 3))
    logistic = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, label=x[:, 0] > 0.5), 2)
    with pytest.raises(ValueError, match="identity-link"):
        Forest.from_booster(logistic)
    assert exact_forest(logistic) is None  # the surrogate then keeps XGBoost for every row
    vector = xgb.train({"multi_strategy": "multi_output_tree", "tree_method": "hist", "nthread": 1},
                       xgb.DMatrix(x, label=np.column_stack([x[:, 0], x[:, 1]])), 2)
    with pytest.raises(ValueError, match="vector-leaf"):
        Forest.from_booster(vector)


def test_wrong_width_is_a_value_error(shipped):
    forest = Forest.from_booster(shipped.surrogate.fast)
    with pytest.raises(ValueError, match="shape"):
        forest.predict(np.zeros((2, forest.n_features + 1)))


def test_surrogate_answers_the_same_with_and_without_the_forest(shipped):
    surrogate = shipped.surrogate
    assert surrogate._forest is not None
    cfgs = [validate(c) for c in sample(seed=5, n=40)]
    x = np.array([feature_row(c, shipped.task.input_shape, shipped.task.n_classes, shipped._n_train)[0] for c in cfgs])
    keys = np.arange(1, 41, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    seeds = np.arange(40, dtype=np.uint64)
    singles = [surrogate.predict(x[i : i + 1], keys[i : i + 1], seeds[i : i + 1]) for i in range(40)]
    forest, surrogate._forest = surrogate._forest, None
    try:
        batch = surrogate.predict(x, keys, seeds)  # XGBoost's own call
        single_xgb = surrogate.predict(x[:1], keys[:1], seeds[:1])
    finally:
        surrogate._forest = forest
    for i, one in enumerate(singles):
        for got, want in zip(one, batch):
            assert np.array_equal(got[0], want[i])
    for got, want in zip(singles[0], single_xgb):
        assert np.array_equal(got, want)


def test_one_row_seed_normals_equal_the_batch_rows():
    rng = np.random.default_rng(4)
    keys = rng.integers(0, 2**63, 300, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    seeds = rng.integers(0, 2**63, 300, dtype=np.uint64)
    keys[:2] = [0, 2**64 - 1]
    seeds[:2] = [2**64 - 1, 0]
    batch = standard_normals(keys, seeds, 50)
    for i in range(300):
        assert np.array_equal(standard_normals(keys[i : i + 1], seeds[i : i + 1], 50)[0], batch[i])
    assert np.array_equal(standard_normals(keys[:1], seeds[:1], 7)[0], standard_normals(keys[:2], seeds[:2], 7)[0])


@pytest.mark.parametrize("noise", [True, False])
def test_job_equals_cost_and_query(noise):
    bench = SurrogateBenchmark(surrobench.load().surrogate, noise=noise)
    fresh = SurrogateBenchmark(bench.surrogate, noise=noise, cache_size=0)  # nothing cached
    cfgs = [validate(c) for c in sample(seed=8, n=30)]
    for i, cfg in enumerate(cfgs):
        epoch, start = 1 + i % 25, (i * 7) % (1 + i % 25)
        cost, result = bench.job(cfg, epoch, from_epoch=start, seed=i)
        assert cost == fresh.cost(cfg, epoch, from_epoch=start, seed=i)
        assert result == fresh.query(cfg, epoch, seed=i)
    with pytest.raises(ValueError, match="from_epoch"):
        bench.job(cfgs[0], 5, from_epoch=5)


@pytest.mark.parametrize("noise", [True, False])
def test_answer_and_prefetch_equal_the_checked_calls(noise):
    """``answer`` (a Job record) and a batch ``prefetch`` give exactly what ``job`` gives."""
    surrogate = surrobench.load().surrogate
    fresh = SurrogateBenchmark(surrogate, noise=noise, cache_size=0)
    jobs = [Job(c, 1 + i % 25, tag="t") for i, c in enumerate(sample(seed=9, n=300))]
    jobs += [Job(jobs[0].config, 20, trial=3, from_epoch=7), Job(jobs[1].config, 9, parent=2, from_epoch=4)]
    seeds = list(range(len(jobs)))
    prefetched = SurrogateBenchmark(surrogate, noise=noise)
    prefetched.prefetch(jobs, seeds)
    # The last two jobs repeat configs under other seeds: other answers with noise, the same without.
    assert len(prefetched._cache) == (302 if noise else 300)
    calls = []
    forest_predict = surrogate.predict
    try:
        surrogate.predict = lambda *a: calls.append(1) or forest_predict(*a)
        got = [prefetched.answer(j, seed=s) for j, s in zip(jobs, seeds)]
    finally:
        del surrogate.predict
    assert calls == []  # every answer came from the one batch
    for job, s, (cost, result) in zip(jobs, seeds, got):
        want = fresh.job(job.config, job.epoch, from_epoch=job.from_epoch, seed=s)
        assert (cost, result) == want
        assert fresh.answer(job, seed=s) == want  # the single-row path too


def test_prefetch_respects_the_cache_and_refuses_bad_input():
    surrogate = surrobench.load().surrogate
    bench = SurrogateBenchmark(surrogate, cache_size=50)
    jobs = [Job(c, 25) for c in sample(seed=3, n=120)]
    bench.prefetch(jobs[:30], range(30))
    assert len(bench._cache) == 30
    bench.prefetch(jobs[30:], range(30, 120))  # would not fit: emptied first, then the first 50 kept
    assert len(bench._cache) == 50
    assert (jobs[30].config_id, 30) in bench._cache and (jobs[80].config_id, 80) not in bench._cache
    SurrogateBenchmark(surrogate, cache_size=0).prefetch(jobs, range(120))  # nothing to keep: a no-op
    with pytest.raises(ValueError, match="seeds"):
        bench.prefetch(jobs[:3], [1, 2])
    with pytest.raises(ValueError, match="Job"):
        bench.prefetch([jobs[0].config], [1])
    with pytest.raises(ValueError, match="Job"):
        bench.answer(jobs[0].config, seed=1)
    with pytest.raises(ValueError, match="seed"):
        bench.answer(jobs[0], seed=-1)


@pytest.mark.parametrize("n", [1, 2, 7, 52])
def test_fused_draw_normals_equal_the_seed_and_config_streams_apart(n):
    rng = np.random.default_rng(8)
    keys = rng.integers(0, 2**63, 200, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    seeds = rng.integers(0, 2**63, 200, dtype=np.uint64)
    keys[:2] = [0, 2**64 - 1]
    seeds[:2] = [2**64 - 1, 0]
    normals, z_config = draw_normals(keys, seeds, n)
    assert np.array_equal(normals, standard_normals(keys, seeds, n))
    assert np.array_equal(z_config, config_normals(keys))
    for i in range(0, 200, 3):  # the one-row path (Python-int hashing) equals the batch rows
        one, one_config = draw_normals(keys[i : i + 1], seeds[i : i + 1], n)
        assert np.array_equal(one[0], normals[i]) and one_config[0] == z_config[i]


@pytest.mark.parametrize("name", ["flowers17", "flowers17-cpu"])
def test_clock_of_one_row_equals_its_batch_row(name):
    """The one-row clock (Python floats between numpy's powers and logarithm) against the batch path."""
    bench = surrobench.load(name)
    clock = bench.surrogate.runtime.clock
    assert clock is not None
    cfgs = [validate(c) for c in sample(seed=17, n=400)]
    x = np.array([feature_row(c, bench.task.input_shape, bench.task.n_classes, bench._n_train)[0] for c in cfgs])
    batch = clock.log_seconds(x)
    assert batch.shape == (400, 2) and np.all(np.isfinite(batch))
    for i in range(400):
        assert np.array_equal(clock.log_seconds(x[i : i + 1]), batch[i : i + 1])
