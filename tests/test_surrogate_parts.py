"""The surrogate's parts: features, noise draws, merged model, folds, statistics, CLI."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import load_tool
from surrobench.cli import main
from surrobench.model_size import n_params
from surrobench.model_size import sizes_of_valid as sizes
from surrobench.space import sample, validate
from surrobench.surrogate.fast import check_agreement, merge_boosters
from surrobench.surrogate.features import FEATURES, feature_row, features, size_bounds
from surrobench.surrogate.fit import group_folds
from surrobench.surrogate.noise import NoiseModel, calibrate, epoch_correlation, logit, sigmoid, standard_normals
from surrobench.surrogate.quality import best_runs, dip_share, early_cut_share, rerun_pairs, stats, verdict
from test_surrogate_synth import fitted, synthetic_logs

SHAPES = [((3, 16, 16), 17), ((1, 8, 8), 10), ((1, 28, 28), 10)]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES))
def test_size_columns_are_the_exact_count(seed, shape):
    cfg = validate(sample(seed=seed))
    count, macs = sizes(cfg, *shape)
    assert count == n_params(cfg, *shape)
    assert macs > 0
    row, n = feature_row(cfg, *shape, 680)
    assert n == count and len(row) == len(FEATURES) and row[13] == pytest.approx(math.log10(count))


def test_size_bounds_enclose_every_config():
    for shape, n_classes in SHAPES:
        lo, hi = size_bounds(shape, n_classes)
        sizes_seen = [math.log10(n_params(c, shape, n_classes)) for c in sample(seed=1, n=300)]
        assert lo <= min(sizes_seen) and max(sizes_seen) <= hi
    assert size_bounds((3, 16, 16), 17)[1] > 8.0  # the largest flowers17 nets pass the reference point


def test_features_validate_their_input():
    with pytest.raises(ValueError, match="n_conv_l"):
        features([{"n_conv_l": 9}], (3, 16, 16), 17, 680)


def test_standard_normals_are_a_fixed_pure_function():
    keys = np.array([1, 2, 2**64 - 1], dtype=np.uint64)
    seeds = np.array([0, 0, 7], dtype=np.uint64)
    z = standard_normals(keys, seeds, 50)
    assert z.shape == (3, 50)
    np.testing.assert_array_equal(z, standard_normals(keys, seeds, 50))
    np.testing.assert_array_equal(z[1:2], standard_normals(keys[1:2], seeds[1:2], 50))  # batch-independent
    # pinned values: a change here changes every published benchmark answer
    np.testing.assert_allclose(z[0, :3], [1.42302221, -0.15018589, -0.87753163], atol=1e-8)
    assert not np.allclose(standard_normals(keys[:1], np.array([1], dtype=np.uint64), 50), z[:1])
    big = standard_normals(np.arange(20000, dtype=np.uint64), np.zeros(20000, dtype=np.uint64), 50)
    assert abs(big.mean()) < 0.01 and abs(big.std() - 1) < 0.01
    assert abs(np.corrcoef(big[:, 0], big[:, 1])[0, 1]) < 0.03


def test_mixing_matrix_gives_the_calibrated_process():
    noise = NoiseModel(0.3, 0.5, 0.8, 0.9, 3, 2, 1, 6)
    z = np.random.default_rng(0).standard_normal((40000, 50))
    eps = z @ noise.mixing_matrix(25)
    assert eps[:, :25].std(axis=0).mean() == pytest.approx(0.3, rel=0.03)
    assert eps[:, 25:].std(axis=0).mean() == pytest.approx(0.5, rel=0.03)
    assert np.corrcoef(eps[:, 10], eps[:, 11])[0, 1] == pytest.approx(0.8, abs=0.02)
    assert np.corrcoef(eps[:, 10], eps[:, 35])[0, 1] == pytest.approx(0.9, abs=0.02)
    d = noise.to_dict()
    assert NoiseModel.from_dict(d) == noise
    with pytest.raises(ValueError, match="out of range"):
        NoiseModel.from_dict({**d, "rho": 1.0})
    with pytest.raises(ValueError, match="lack"):
        NoiseModel.from_dict({"sigma_val": 1.0})


def test_mixing_matrix_with_a_level_keeps_long_range_correlation():
    noise = NoiseModel(0.3, 0.5, 0.5, 0.9, 3, 2, 1, 6, level=0.4)
    z = np.random.default_rng(1).standard_normal((40000, 50))
    eps = z @ noise.mixing_matrix(25)
    assert eps[:, :25].std(axis=0).mean() == pytest.approx(0.3, rel=0.03)
    assert np.corrcoef(eps[:, 10], eps[:, 11])[0, 1] == pytest.approx(0.4 + 0.6 * 0.5, abs=0.02)
    assert np.corrcoef(eps[:, 8], eps[:, 24])[0, 1] == pytest.approx(0.4, abs=0.02)  # the AR(1) part forgot
    assert np.corrcoef(eps[:, 8], eps[:, 24 + 25])[0, 1] == pytest.approx(0.9 * 0.4, abs=0.02)
    np.testing.assert_allclose(epoch_correlation(3, 0.4, 0.5)[0], [1.0, 0.7, 0.55])
    d = noise.to_dict()
    assert d["level"] == 0.4 and NoiseModel.from_dict(d) == noise
    with pytest.raises(ValueError, match="out of range"):
        NoiseModel.from_dict({**d, "level": 1.0})
    with pytest.raises(ValueError, match="must be numbers"):
        NoiseModel.from_dict({**d, "level": "high"})


def test_noise_of_files_without_a_level_is_the_old_ar1_process():
    d = NoiseModel(0.3, 0.5, 0.8, 0.9, 3, 2, 1, 6).to_dict()
    del d["level"]
    old = NoiseModel.from_dict(d)
    assert old.level == 0.0
    idx = np.arange(25)
    chol = np.linalg.cholesky(0.8 ** np.abs(idx[:, None] - idx[None, :]))
    np.testing.assert_array_equal(old.mixing_matrix(25)[:25, :25], chol.T * 0.3)  # same draws as before


@pytest.mark.parametrize("level, rho", [(0.0, 0.6), (0.4, 0.3), (0.6, 0.8)])
def test_calibration_recovers_level_and_rho(level, rho):
    rng = np.random.default_rng(7)
    noise = NoiseModel(0.25, 0.25, rho, 0.8, 0, 0, 0, 0, level=level)
    n_configs, n_seeds = 150, 3
    mean = np.linspace(0.0, -1.5, 25)  # a learner curve in logits, the same for every config (removed anyway)
    z = rng.standard_normal((n_configs * n_seeds, 50)) @ noise.mixing_matrix(25)
    val = sigmoid(mean + z[:, :25] + rng.normal(0, 0.5, (n_configs, 1)).repeat(n_seeds, axis=0))
    test = sigmoid(mean + z[:, 25:])
    ids = np.repeat([f"c{i}" for i in range(n_configs)], n_seeds)
    fitted_noise = calibrate(ids, val, test, 0.94, 340, 340)
    assert fitted_noise.level == pytest.approx(level, abs=0.08)
    assert fitted_noise.rho == pytest.approx(rho, abs=0.08)
    assert fitted_noise.sigma_val == pytest.approx(0.25, rel=0.05)
    assert fitted_noise.n_learner_groups == n_configs


def test_dip_share_counts_runs_better_part_way_than_at_their_end():
    curves = np.array([np.linspace(0.9, 0.4, 25), np.r_[np.linspace(0.9, 0.3, 13), np.linspace(0.31, 0.4, 12)]])
    assert dip_share(curves, 13) == 0.5  # the second run is 0.1 better at epoch 13 than at 25
    assert dip_share(curves, 5) == 0.0
    assert dip_share(curves[:0], 13) is None


def test_best_runs_keeps_the_runs_that_end_best_each_by_its_own_final_error():
    curves = np.column_stack([np.full(6, 0.5), [0.6, 0.3, 0.9, 0.4, 0.8, 0.7]])
    assert best_runs(curves)[:, -1].tolist() == [0.3, 0.4]  # the lowest third of final errors
    assert best_runs(curves, 0.5)[:, -1].tolist() == [0.6, 0.3, 0.4]  # in their order, not sorted
    assert len(best_runs(curves[:0])) == 0 and len(best_runs(curves, 1.0)) == 6
    with pytest.raises(ValueError, match="share: must lie in"):
        best_runs(curves, 0.0)


def test_early_cut_share_counts_the_best_runs_an_early_cut_keeps():
    final = np.linspace(0.30, 0.49, 20)  # run 0 and run 1 end best (the best 10 %)
    early = np.linspace(0.60, 0.79, 20)  # in the same order at epoch 3 ...
    early[1] = 0.95  # ... but run 1 starts slowly: last at epoch 3
    curves = np.column_stack([early, early, early, np.linspace(early, final, 22).T])
    assert curves.shape == (20, 25)
    assert early_cut_share(curves, 3, keep=1 / 3, best=0.1) == 0.5  # run 0 kept, run 1 cut
    assert early_cut_share(curves, 3, keep=1.0, best=0.1) == 1.0  # keeping everything loses nothing
    assert early_cut_share(curves, 25, keep=1 / 3, best=0.1) == 1.0  # the final epoch ranks them as the end does
    with pytest.raises(ValueError, match="at least one run"):
        early_cut_share(curves[:0], 3)
    with pytest.raises(ValueError, match="epoch: must lie in 1..25"):
        early_cut_share(curves, 0)
    with pytest.raises(ValueError, match="keep and best"):
        early_cut_share(curves, 3, keep=0.0)


def test_calibration_needs_replicated_learners():
    val = np.full((4, 25), 0.5)
    with pytest.raises(ValueError, match="seed noise: needs at least 2 configs"):
        calibrate(np.array(["a", "b", "c", "d"]), val, val, 0.94, 340, 340)


def test_merged_booster_agrees_with_its_parts():
    _, s, _ = fitted()
    merged = merge_boosters(s.parts)
    assert check_agreement(merged, s.parts, len(FEATURES)) < 1e-5
    x = features(sample(seed=3, n=20), (3, 16, 16), 17, 680)
    out = merged.inplace_predict(x)
    p = s.curve.learns.inplace_predict(x)
    np.testing.assert_allclose(1 / (1 + np.exp(-out[:, 0])), p, rtol=1e-5)
    # The runtime outputs are the booster's correction of the clock's physics (log scale).
    np.testing.assert_allclose(np.exp(out[:, -2] + s.runtime.clock.log_seconds(x)[:, 0]), s.runtime.predict(x)[0],
                               rtol=1e-5)


def test_group_folds_never_split_a_config():
    groups = np.array(list("aabbbcddeeffgh"))
    folds = group_folds(groups, 3, seed=1)
    for g in set(groups):
        assert len(set(folds[groups == g])) == 1
    assert set(folds) == {0, 1, 2}
    np.testing.assert_array_equal(folds, group_folds(groups, 3, seed=1))
    with pytest.raises(ValueError, match="at least 9 distinct configs"):
        group_folds(groups, 9, seed=0)


def test_statistics_and_verdict():
    s = stats(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
    assert s["kendall_tau"] == pytest.approx(1.0) and s["spearman_rho"] == pytest.approx(1.0)
    assert s["mae"] == pytest.approx(0.25) and s["r2"] == pytest.approx(1 - 1 / 8.75)
    assert stats(np.ones(3), np.arange(3.0))["kendall_tau"] is None
    a, b = rerun_pairs(np.array(["x", "x", "y", "z", "z", "z"]))
    assert len(a) == 2 + 6 and all(a != b)
    assert verdict(0.7, 0.5).startswith("the surrogate predicts a fresh rerun better than another rerun does")
    assert "worse than" in verdict(0.4, 0.5) and "as well as" in verdict(0.501, 0.499)
    assert "no verdict" in verdict(None, 0.5)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_fit_quality_publish(tmp_path, capsys):
    logs = synthetic_logs(tmp_path / "logs", n_configs=40, n_replicated=7)
    out = tmp_path / "s"
    code = main(["fit", str(logs), "--out", str(out), "--grid", "quick", "--holdout", "0.5", "--name", "cli-surrogate",
                 "--publish", str(tmp_path / "pub")])
    assert code == 0
    text = capsys.readouterr().out
    assert "quality card of surrogate 'cli-surrogate'" in text and "published" in text
    assert main(["quality", str(tmp_path / "pub" / "cli-surrogate.tar.gz"), "--parity", str(tmp_path / "p.png")]) == 0
    assert "the surrogate predicts a fresh rerun" in capsys.readouterr().out
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")
    assert main(["quality", str(out), "--parity", str(tmp_path / "no-dir" / "p.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "parity: cannot write" in captured.err
    assert main(["quality", str(out), "--json"]) == 0
    assert "noise_ceiling" in json.loads(capsys.readouterr().out)
    assert main(["publish", str(out), "--out-dir", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "cli-surrogate.tar.gz.sha256").is_file()
    # a second fit into the same directory needs --force
    assert main(["fit", str(logs), "--out", str(out), "--grid", "quick"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_cli_refuses_damaged_files_with_one_line(tmp_path, capsys):
    _, _, directory = fitted()
    import shutil

    copy = tmp_path / "s"
    shutil.copytree(directory, copy)
    data = bytearray((copy / "runtime.ubj").read_bytes())
    data[10] ^= 0xFF
    (copy / "runtime.ubj").write_bytes(bytes(data))
    assert main(["quality", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runtime.ubj does not match its sha256" in err[0]
    assert main(["fit", str(tmp_path / "nothing")]) == 2
    assert "neither a file nor a directory" in capsys.readouterr().err
    assert main(["fit", str(tmp_path), "--holdout", "0.9"]) == 2
    assert "holdout" in capsys.readouterr().err


# ------------------------------------------------------------------ the log-epoch clock of the noise


def test_log_epoch_correlation_is_its_formula_and_the_default_is_untouched():
    got = epoch_correlation(4, 0.2, 0.5, jitter=0.3, time="log-epoch")
    t = np.log([1.0, 2.0, 3.0, 4.0])
    want = 0.3 * np.eye(4) + 0.7 * (0.2 + 0.8 * 0.5 ** np.abs(t[:, None] - t[None, :]))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(np.diag(got), np.ones(4))
    # a lag late in training is shorter than the same lag early: epochs 3-4 move together more than 1-2
    assert got[2, 3] > got[0, 1]
    idx = np.arange(5)
    np.testing.assert_array_equal(epoch_correlation(5, 0.4, 0.5), 0.4 + 0.6 * 0.5 ** np.abs(idx[:, None] - idx[None, :]))
    with pytest.raises(ValueError, match="time: must be one of epoch, log-epoch"):
        epoch_correlation(5, 0.4, 0.5, time="hours")


@pytest.mark.parametrize("level, rho, jitter", [(0.0, 0.6, 0.3), (0.3, 0.4, 0.1)])
def test_calibration_recovers_the_log_epoch_process(level, rho, jitter):
    rng = np.random.default_rng(11)
    noise = NoiseModel(0.25, 0.25, rho, 0.8, 0, 0, 0, 0, level=level, jitter=jitter, time="log-epoch")
    n_configs, n_seeds = 200, 3
    mean = np.linspace(0.0, -1.5, 25)
    z = rng.standard_normal((n_configs * n_seeds, 50)) @ noise.mixing_matrix(25)
    val = sigmoid(mean + z[:, :25] + rng.normal(0, 0.5, (n_configs, 1)).repeat(n_seeds, axis=0))
    test = sigmoid(mean + z[:, 25:])
    ids = np.repeat([f"c{i}" for i in range(n_configs)], n_seeds)
    fitted_noise = calibrate(ids, val, test, 0.94, 340, 340, time="log-epoch")
    assert fitted_noise.time == "log-epoch"
    assert fitted_noise.level == pytest.approx(level, abs=0.1)
    assert fitted_noise.rho == pytest.approx(rho, abs=0.1)
    assert fitted_noise.jitter == pytest.approx(jitter, abs=0.06)
    assert fitted_noise.sigma_val == pytest.approx(0.25, rel=0.05)
    # the same residuals under the epoch clock: no jitter, and a poorer description of them
    from surrobench.surrogate.noise import correlation_loglik, replicated_residuals

    on_epochs = calibrate(ids, val, test, 0.94, 340, 340)
    res = replicated_residuals(ids, val, test, 0.94, 340, 340)
    assert on_epochs.jitter == 0.0 and on_epochs.time == "epoch"
    assert correlation_loglik(fitted_noise.correlation(25), res) > correlation_loglik(on_epochs.correlation(25), res)
    with pytest.raises(ValueError, match="time: must be one of"):
        calibrate(ids, val, test, 0.94, 340, 340, time="log")


def test_log_epoch_noise_is_written_and_read_and_old_dicts_keep_their_keys():
    default = NoiseModel(0.3, 0.5, 0.8, 0.9, 3, 2, 1, 6, level=0.2).to_dict()
    assert "jitter" not in default and "time" not in default  # files written as before
    noise = NoiseModel(0.3, 0.5, 0.6, 0.9, 3, 2, 1, 6, jitter=0.25, time="log-epoch")
    d = noise.to_dict()
    assert d["time"] == "log-epoch" and d["jitter"] == 0.25 and "log epochs + jitter" in d["process"]
    assert NoiseModel.from_dict(json.loads(json.dumps(d))) == noise
    np.testing.assert_allclose(noise.mixing_matrix(25)[:25, :25].T @ noise.mixing_matrix(25)[:25, :25],
                               0.09 * noise.correlation(25), atol=1e-12)
    with pytest.raises(ValueError, match="noise parameters: time: must be one of epoch, log-epoch, got 'minutes'"):
        NoiseModel.from_dict({**d, "time": "minutes"})
    with pytest.raises(ValueError, match="out of range"):
        NoiseModel.from_dict({**d, "jitter": 1.0})
    with pytest.raises(ValueError, match="must be finite"):
        NoiseModel.from_dict({**d, "jitter": float("nan")})


def test_a_surrogate_fitted_on_the_log_epoch_clock_keeps_it(tmp_path):
    from surrobench.surrogate import fit_surrogate, load_surrogate, save_surrogate

    logs = synthetic_logs(tmp_path / "logs")
    with pytest.raises(ValueError, match="noise_time: must be one of epoch, log-epoch, log-epoch-early, empirical, bank, bank-logged, auto, got 'days'"):
        fit_surrogate(logs, grid="quick", noise_time="days")
    s = fit_surrogate(logs, grid="quick", plot=False, noise_time="log-epoch")
    assert s.noise.time == "log-epoch" and s.manifest["noise"]["time"] == "log-epoch"
    assert s.noise.early == 0.0 and "early" not in s.manifest["noise"]
    assert "on the log-epoch clock" in s.quality["seed_noise"]["note"]
    again = load_surrogate(save_surrogate(s, tmp_path / "s"))
    assert again.noise == s.noise
    x = np.asarray(features([sample(seed=3)], (3, 16, 16), 17, 680), dtype=float)
    keys, seeds = np.array([123], dtype=np.uint64), np.array([4], dtype=np.uint64)
    np.testing.assert_array_equal(again.predict(x, keys, seeds)[0], s.predict(x, keys, seeds)[0])
    with pytest.raises(SystemExit) as stop:
        main(["fit", str(logs), "--noise-time", "days"])
    assert stop.value.code == 2


# ------------------------------------------------------------------ the measured covariance: no process


def test_the_measured_covariance_is_the_residuals_own_mixes_to_it_and_round_trips():
    from surrobench.surrogate.noise import replicated_residuals

    planted = NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0, jitter=0.2, time="log-epoch", early=2.0, decay=3.0)
    ids, val, test = _planted_runs(planted)
    noise = calibrate(ids, val, test, 0.94, 340, 340, time="empirical")
    res = replicated_residuals(ids, val, test, 0.94, 340, 340)
    measured = res.scatter / res.dof
    assert noise.level == noise.rho == noise.jitter == noise.early == 0.0 and noise.time == "epoch"
    np.testing.assert_allclose(noise.sigma_val**2 * noise.shape(25), measured, rtol=1e-12)
    assert np.mean(noise.sd_profile(25) ** 2) == pytest.approx(1.0)  # sigma stays the sd over all epochs
    np.testing.assert_allclose(noise.correlation(25), measured / np.sqrt(np.outer(np.diag(measured), np.diag(measured))),
                               rtol=1e-10)
    cov = noise.mixing_matrix(25).T @ noise.mixing_matrix(25)
    np.testing.assert_allclose(cov[:25, :25], measured, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.sqrt(np.diag(cov[25:, 25:])), noise.sigma_test * noise.sd_profile(25), rtol=1e-10)
    np.testing.assert_allclose(noise.shape(6), noise.shape(25)[:6, :6])  # fewer epochs: the leading block
    with pytest.raises(ValueError, match="covers 25 epochs, got 30"):
        noise.shape(30)
    d = json.loads(json.dumps(noise.to_dict()))
    assert d["process"] == "measured covariance between epochs" and len(d["matrix"]) == 25
    assert NoiseModel.from_dict(d) == noise
    assert "matrix" not in calibrate(ids, val, test, 0.94, 340, 340).to_dict()  # the processes' files as before
    bad = np.array(d["matrix"])
    for matrix, words in [(bad[:, :24].tolist(), "finite square matrix"), ((bad + np.triu(bad, 1) * 0.1).tolist(), "symmetric"),
                          ((bad - 2 * np.eye(25) * bad.max()).tolist(), "positive definite"),
                          ([[1.0, float("nan")], [float("nan"), 1.0]], "finite square"), ("abc", "matrix of numbers")]:
        with pytest.raises(ValueError, match=f"noise parameters: matrix must be .*{words}"):
            NoiseModel.from_dict({**d, "matrix": matrix})


def _round_trip_draws(s, tmp_path, n: int):
    """``n`` seeded draws of one config from ``s`` saved and loaded again (the same noise, the same draws as
    ``s``'s, a row alone as in the batch), and the feature rows they were drawn for."""
    from surrobench.surrogate import load_surrogate, save_surrogate

    again = load_surrogate(save_surrogate(s, tmp_path / "s"))
    assert again.noise == s.noise
    x = np.repeat(np.asarray(features([sample(seed=3)], (3, 16, 16), 17, 680), dtype=float), n, axis=0)
    keys, seeds = np.full(n, 123, dtype=np.uint64), np.arange(n, dtype=np.uint64)
    curves = again.predict(x, keys, seeds)[0]
    np.testing.assert_array_equal(curves, s.predict(x, keys, seeds)[0])
    np.testing.assert_array_equal(curves[7:8], again.predict(x[7:8], keys[7:8], seeds[7:8])[0])  # alone as in a batch
    return curves, x


def test_a_surrogate_fitted_with_the_measured_covariance_keeps_it(tmp_path):
    from surrobench.surrogate import fit_surrogate

    s = fit_surrogate(synthetic_logs(tmp_path / "logs"), grid="quick", plot=False, noise_time="empirical")
    assert s.noise.matrix is not None and s.manifest["noise"]["matrix"] == [list(r) for r in s.noise.matrix]
    assert "the measured covariance between epochs" in s.quality["seed_noise"]["note"]
    curves, _ = _round_trip_draws(s, tmp_path, 400)
    learned = curves[:, 24] < 0.9
    z = np.log(curves[learned, :25]) - np.log1p(-curves[learned, :25])
    drawn = np.cov(z, rowvar=False)
    planted = s.noise.sigma_val**2 * s.noise.shape(25)
    assert learned.sum() > 100
    np.testing.assert_allclose(np.sqrt(np.diag(drawn)), np.sqrt(np.diag(planted)), rtol=0.2)


# ------------------------------------------------------------------ the noise's size by config


def _sized_runs(noise: NoiseModel, n_configs: int = 400, n_seeds: int = 3, seed: int = 7):
    """Replicated learners whose final errors spread over 0.1..0.8, with ``noise`` drawn at each
    config's true final error (its size by config included)."""
    rng = np.random.default_rng(seed)
    final = rng.uniform(-2.2, 1.3, n_configs)  # logit of the final validation error
    mean = final[:, None] + np.linspace(1.5, 0.0, 25)[None, :]
    z = rng.standard_normal((n_configs * n_seeds, 50)) @ noise.mixing_matrix(25)
    z = noise.resize(z, np.repeat(sigmoid(final), n_seeds))
    val = sigmoid(np.repeat(mean, n_seeds, axis=0) + z[:, :25])
    test = sigmoid(np.repeat(mean, n_seeds, axis=0) + z[:, 25:])
    return np.repeat([f"c{i}" for i in range(n_configs)], n_seeds), val, test


def test_resize_scales_the_run_level_shift_and_the_wobble_by_their_own_factors():
    noise = NoiseModel(0.2, 0.3, 0.5, 0.8, 0, 0, 0, 0, level=0.3, size="by-error", size_level=1.0,
                       size_wobble=0.25, size_ref=0.2, size_lo=0.1, size_hi=0.25)
    shared = NoiseModel(0.2, 0.3, 0.5, 0.8, 0, 0, 0, 0, level=0.3)
    rows = np.random.default_rng(0).standard_normal((4, 50))
    e = np.array([0.5, 0.2, 0.05, 0.9])  # v 0.25, 0.16, 0.0475 (clipped to 0.1), 0.09 (clipped to 0.1)
    level, wobble = noise.size_factors(e)
    np.testing.assert_allclose(level, [0.8, 1.25, 2.0, 2.0])
    np.testing.assert_allclose(wobble, np.array([0.8, 1.25, 2.0, 2.0]) ** 0.25)
    out = noise.resize(rows, e)
    for block in (slice(0, 25), slice(25, 50)):
        mean, got = rows[:, block].mean(axis=1), out[:, block].mean(axis=1)
        np.testing.assert_allclose(got, level * mean)
        np.testing.assert_allclose(out[:, block] - got[:, None], wobble[:, None] * (rows[:, block] - mean[:, None]))
    assert shared.size_factors(e) is None and shared.resize(rows, e) is rows


def test_calibration_recovers_a_planted_size_by_config_and_finds_none_where_there_is_none():
    from surrobench.surrogate.noise import fit_noise_size, replicated_residuals

    base = dict(sigma_val=0.25, sigma_test=0.25, rho=0.6, kappa=0.8, n_groups=0, n_learner_groups=0, n_flip_groups=0,
                n_runs=0, level=0.4)
    planted = NoiseModel(**base, size="by-error", size_level=1.0, size_wobble=0.0, size_ref=0.2, size_lo=0.01,
                         size_hi=0.25)
    ids, val, test = _sized_runs(planted)
    res = replicated_residuals(ids, val, test, 0.94, 340, 340)
    level, wobble, ref, lo, hi, gain = fit_noise_size(res)
    assert level == pytest.approx(1.0, abs=0.3) and wobble == pytest.approx(0.0, abs=0.15) and gain > 20
    v = res.final_spread()
    assert lo == v.min() and hi == v.max() and lo < ref < hi
    noise = calibrate(ids, val, test, 0.94, 340, 340, size="by-error")
    assert (noise.size, noise.size_level, noise.size_wobble) == ("by-error", level, wobble)
    plain = calibrate(ids, val, test, 0.94, 340, 340)
    assert plain.size == "shared" and "size" not in plain.to_dict()
    # the process is fitted on the rescaled residuals: the planted level share, which one size for
    # all blurs with the configs' different shifts
    assert abs(noise.level - 0.4) < abs(plain.level - 0.4) + 0.02
    ids, val, test = _sized_runs(NoiseModel(**base))  # one size for all
    level, wobble, *_, gain = fit_noise_size(replicated_residuals(ids, val, test, 0.94, 340, 340))
    assert abs(level) < 0.35 and abs(wobble) < 0.15 and gain < 6


def test_a_noise_sized_by_config_round_trips_and_bad_sizes_are_refused():
    noise = NoiseModel(0.2, 0.3, 0.5, 0.8, 3, 2, 1, 6, level=0.3, size="by-error", size_level=0.9,
                       size_wobble=0.2, size_ref=0.21, size_lo=0.11, size_hi=0.25)
    d = json.loads(json.dumps(noise.to_dict()))
    assert d["size"] == "by-error" and d["process"].endswith("shift and wobble sized by the config's final error")
    assert NoiseModel.from_dict(d) == noise
    for key, value, words in [("size", "huge", "size: must be one of shared, by-error, by-level, got 'huge'"),
                              ("size_level", 5.0, "size out of range"), ("size_wobble", float("nan"), "size out of range"),
                              ("size_lo", 0.0, "size out of range"), ("size_hi", 0.3, "size out of range"),
                              ("size_ref", -1.0, "size out of range"), ("size_level", "x", "must be numbers")]:
        with pytest.raises(ValueError, match=words):
            NoiseModel.from_dict({**d, key: value})
    without = {k: v for k, v in d.items() if k != "size_wobble"}
    with pytest.raises(ValueError, match="noise parameters lack 'size_wobble'"):
        NoiseModel.from_dict(without)


def test_the_size_by_level_follows_the_final_error_itself_and_round_trips():
    noise = NoiseModel(0.2, 0.3, 0.5, 0.8, 3, 2, 1, 6, level=0.3, size="by-level", size_level=-2.0,
                       size_wobble=-0.5, size_ref=0.6, size_lo=0.45, size_hi=0.9)
    e = np.array([0.3, 0.6, 0.75, 0.95])  # v = e, clipped to [0.45, 0.9]
    level, wobble = noise.size_factors(e)
    np.testing.assert_allclose(level, (np.array([0.45, 0.6, 0.75, 0.9]) / 0.6) ** 2.0)
    np.testing.assert_allclose(wobble, (np.array([0.45, 0.6, 0.75, 0.9]) / 0.6) ** 0.5)
    d = json.loads(json.dumps(noise.to_dict()))
    assert d["process"].endswith("shift and wobble sized by the level of the config's final error")
    assert NoiseModel.from_dict(d) == noise
    with pytest.raises(ValueError, match=r"size out of range .* size_hi <= 1\)"):
        NoiseModel.from_dict({**d, "size_hi": 1.2})
    with pytest.raises(ValueError, match=r"size_hi <= 0.25\)"):  # e (1 - e) is at most 0.25
        NoiseModel.from_dict({**d, "size": "by-error"})


def test_calibration_recovers_a_planted_size_by_level_where_the_spread_of_the_error_cannot():
    """Noise that grows with the final error between 0.4 and 0.9, as flowers17's replicated runs' does:
    by-level recovers its powers; e (1 - e), which hardly moves below 0.6, describes it worse."""
    from surrobench.surrogate.noise import fit_noise_size, replicated_residuals

    base = dict(sigma_val=0.25, sigma_test=0.25, rho=0.6, kappa=0.8, n_groups=0, n_learner_groups=0, n_flip_groups=0,
                n_runs=0, level=0.4)
    planted = NoiseModel(**base, size="by-level", size_level=-2.0, size_wobble=-0.5, size_ref=0.6, size_lo=0.3,
                         size_hi=0.95)
    rng = np.random.default_rng(5)
    n_configs, n_seeds = 150, 3
    final = rng.uniform(logit(0.4), logit(0.9), n_configs)
    mean = final[:, None] + np.linspace(1.5, 0.0, 25)[None, :]
    z = rng.standard_normal((n_configs * n_seeds, 50)) @ planted.mixing_matrix(25)
    z = planted.resize(z, np.repeat(sigmoid(final), n_seeds))
    val = sigmoid(np.repeat(mean, n_seeds, axis=0) + z[:, :25])
    test = sigmoid(np.repeat(mean, n_seeds, axis=0) + z[:, 25:])
    ids = np.repeat([f"c{i}" for i in range(n_configs)], n_seeds)
    res = replicated_residuals(ids, val, test, 0.99, 340, 340)
    level, wobble, ref, lo, hi, gain = fit_noise_size(res, "by-level")
    assert level == pytest.approx(-2.0, abs=0.5) and wobble == pytest.approx(-0.5, abs=0.2)
    assert lo == pytest.approx(sigmoid(res.val_mean[:, -1]).min()) and 0.35 <= lo < ref < hi <= 0.95
    *_, gain_spread = fit_noise_size(res, "by-error")
    assert gain > gain_spread + 10
    noise = calibrate(ids, val, test, 0.99, 340, 340, size="by-level")
    assert (noise.size, noise.size_level, noise.size_wobble, noise.size_ref) == ("by-level", level, wobble, ref)


def test_a_surrogate_fitted_with_a_noise_sized_by_config_keeps_it(tmp_path):
    from surrobench.cli import NOISE_SIZES as CLI_SIZES
    from surrobench.surrogate import fit_surrogate, load_surrogate, save_surrogate
    from surrobench.surrogate.noise import NOISE_SIZES

    assert CLI_SIZES == NOISE_SIZES
    logs = synthetic_logs(tmp_path / "logs")
    with pytest.raises(ValueError, match="noise_size: must be one of shared, by-error, by-level, got 'big'"):
        fit_surrogate(logs, grid="quick", noise_size="big")
    s = fit_surrogate(logs, grid="quick", plot=False, noise_time="empirical", noise_size="by-error")
    assert s.noise.size == "by-error" and s.manifest["noise"]["size"] == "by-error" and s.noise.matrix is not None
    assert "sized by the config's final error e" in s.quality["seed_noise"]["note"]
    again = load_surrogate(save_surrogate(s, tmp_path / "s"))
    assert again.noise == s.noise
    x = np.repeat(np.asarray(features([sample(seed=3), sample(seed=4)], (3, 16, 16), 17, 680), dtype=float), 200, axis=0)
    keys = np.repeat(np.array([123, 456], dtype=np.uint64), 200)
    seeds = np.tile(np.arange(200, dtype=np.uint64), 2)
    curves = again.predict(x, keys, seeds)[0]
    np.testing.assert_array_equal(curves, s.predict(x, keys, seeds)[0])
    np.testing.assert_array_equal(curves[7:8], again.predict(x[7:8], keys[7:8], seeds[7:8])[0])  # alone as in a batch
    # the same draws as the unsized noise, rescaled: a learner's logit noise is resize() of the shared one
    import dataclasses

    from surrobench.surrogate.model import Surrogate

    shared = Surrogate(s.manifest, s.curve, s.runtime, dataclasses.replace(s.noise, size="shared"), fast=s.fast)
    plain = shared.predict(x, keys, seeds)[0]
    learned = (curves[:, 24] < 0.85) & (plain[:, 24] < 0.85)
    assert learned.sum() > 100
    logit = lambda c: np.log(c) - np.log1p(-c)  # noqa: E731
    mean = s.curve.tail(logit(s.curve.learner(np.asarray(s.fast.inplace_predict(x), float).reshape(len(x), -1)[:, 1:-2])))
    got = logit(np.clip(curves[learned], 1e-12, 1)) - mean[learned]
    want = s.noise.resize(logit(np.clip(plain[learned], 1e-12, 1)) - mean[learned], sigmoid(mean[learned, 24]))
    inside = np.all((curves[learned] > s.curve.lower + 1e-9) & (curves[learned] < s.curve.upper - 1e-9), axis=1) & \
        np.all((plain[learned] > s.curve.lower + 1e-9) & (plain[learned] < s.curve.upper - 1e-9), axis=1)
    assert inside.sum() > 50
    np.testing.assert_allclose(got[inside], want[inside], atol=1e-6)
    with pytest.raises(SystemExit) as stop:
        main(["fit", str(logs), "--noise-size", "big"])
    assert stop.value.code == 2


# ------------------------------------------------------------------ early noise: sds that fall over the first epochs


def test_early_noise_correlation_and_sd_are_their_formulas_and_zero_changes_nothing():
    from surrobench.surrogate.noise import epoch_sd

    got = epoch_correlation(4, 0.2, 0.5, jitter=0.3, time="log-epoch", early=1.5, decay=2.0)
    t = np.log([1.0, 2.0, 3.0, 4.0])
    extra = 1.5 * np.exp(-np.arange(4) / 2.0)
    cov = 0.3 * np.eye(4) + 0.7 * (0.2 + 0.8 * 0.5 ** np.abs(t[:, None] - t[None, :])) + np.diag(extra)
    np.testing.assert_allclose(got, cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov))), rtol=1e-12)
    sd = epoch_sd(4, 1.5, 2.0)
    np.testing.assert_allclose(sd, np.sqrt((1 + extra) / np.mean(1 + extra)), rtol=1e-12)
    assert np.mean(sd**2) == pytest.approx(1.0) and np.all(np.diff(sd) < 0)  # falls over the epochs, RMS 1
    np.testing.assert_array_equal(epoch_sd(6), np.ones(6))
    for time in ("epoch", "log-epoch"):  # early 0 is the process without it, bit for bit
        np.testing.assert_array_equal(epoch_correlation(6, 0.3, 0.4, jitter=0.2, time=time, early=0.0, decay=3.0),
                                      epoch_correlation(6, 0.3, 0.4, jitter=0.2, time=time))
    with pytest.raises(ValueError, match="decay: must be > 0 with early noise, got 0.0"):
        epoch_correlation(4, 0.2, 0.5, time="log-epoch", early=1.0, decay=0.0)
    with pytest.raises(ValueError, match="time: must be one of epoch, log-epoch, got 'log-epoch-early'"):
        epoch_correlation(4, 0.2, 0.5, time="log-epoch-early")  # a process option, not a clock


def test_early_noise_mixes_to_its_covariance_and_round_trips():
    noise = NoiseModel(0.3, 0.5, 0.6, 0.9, 3, 2, 1, 6, jitter=0.25, time="log-epoch", early=1.2, decay=3.0)
    m = noise.mixing_matrix(25)
    cov = m.T @ m
    np.testing.assert_allclose(cov[:25, :25], 0.09 * noise.shape(25), atol=1e-12)
    sd = noise.sd_profile(25)
    np.testing.assert_allclose(np.sqrt(np.diag(cov[25:, 25:])), 0.5 * sd, rtol=1e-12)  # test noise: same profile
    np.testing.assert_allclose(cov[:25, 25:], 0.9 * 0.3 * 0.5 * noise.shape(25), atol=1e-12)
    d = noise.to_dict()
    assert d["early"] == 1.2 and d["decay"] == 3.0 and d["process"].endswith("+ early noise")
    assert NoiseModel.from_dict(json.loads(json.dumps(d))) == noise
    plain = NoiseModel(0.3, 0.5, 0.6, 0.9, 3, 2, 1, 6, jitter=0.25, time="log-epoch")
    assert "early" not in plain.to_dict() and "decay" not in plain.to_dict()  # files written as before
    np.testing.assert_array_equal(plain.shape(25), plain.correlation(25))
    with pytest.raises(ValueError, match="out of range"):
        NoiseModel.from_dict({**d, "early": -0.1})
    with pytest.raises(ValueError, match="out of range"):
        NoiseModel.from_dict({**d, "decay": 0.0})
    with pytest.raises(ValueError, match="must be finite"):
        NoiseModel.from_dict({**d, "decay": float("inf")})
    with pytest.raises(ValueError, match="noise parameters: time: must be one of epoch, log-epoch, got 'log-epoch-early'"):
        NoiseModel.from_dict({**d, "time": "log-epoch-early"})


def _planted_runs(noise: NoiseModel, n_configs: int = 300, n_seeds: int = 3, seed: int = 5):
    rng = np.random.default_rng(seed)
    mean = np.linspace(0.0, -1.5, 25)
    z = rng.standard_normal((n_configs * n_seeds, 50)) @ noise.mixing_matrix(25)
    val = sigmoid(mean + z[:, :25] + rng.normal(0, 0.5, (n_configs, 1)).repeat(n_seeds, axis=0))
    test = sigmoid(mean + z[:, 25:])
    return np.repeat([f"c{i}" for i in range(n_configs)], n_seeds), val, test


def test_calibration_recovers_planted_early_noise_and_finds_none_where_there_is_none():
    from surrobench.surrogate.noise import correlation_loglik, replicated_residuals

    planted = NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0, jitter=0.2, time="log-epoch", early=2.0, decay=3.0)
    ids, val, test = _planted_runs(planted)
    fitted_noise = calibrate(ids, val, test, 0.94, 340, 340, time="log-epoch-early")
    assert fitted_noise.time == "log-epoch"  # the clock; the early noise is in early and decay
    assert fitted_noise.early == pytest.approx(2.0, rel=0.3) and fitted_noise.decay == pytest.approx(3.0, rel=0.3)
    assert fitted_noise.rho == pytest.approx(0.5, abs=0.1) and fitted_noise.jitter == pytest.approx(0.2, abs=0.08)
    # the epoch-1 sd the runs have, which the log-epoch clock alone (one sd) cannot give
    res = replicated_residuals(ids, val, test, 0.94, 340, 340)
    measured = np.sqrt(np.diag(res.scatter) / res.dof)
    drawn = fitted_noise.sigma_val * fitted_noise.sd_profile(25)
    assert drawn[0] == pytest.approx(measured[0], rel=0.1) and drawn[-1] == pytest.approx(measured[-1], rel=0.1)
    alone = calibrate(ids, val, test, 0.94, 340, 340, time="log-epoch")
    assert correlation_loglik(fitted_noise.shape(25), res) > correlation_loglik(alone.shape(25), res) + 10
    # residuals with one sd at every epoch: early noise too small to matter (or none)
    ids, val, test = _planted_runs(NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0, jitter=0.2, time="log-epoch"))
    flat = calibrate(ids, val, test, 0.94, 340, 340, time="log-epoch-early")
    assert np.ptp(flat.sd_profile(25)) < 0.15


def test_a_surrogate_fitted_with_early_noise_keeps_it(tmp_path):
    from surrobench.cli import NOISE_TIMES as CLI_TIMES
    from surrobench.surrogate import fit_surrogate, load_surrogate, save_surrogate
    from surrobench.surrogate.noise import NOISE_TIMES

    assert CLI_TIMES == NOISE_TIMES
    import dataclasses

    from surrobench.surrogate.model import Surrogate

    s = fit_surrogate(synthetic_logs(tmp_path / "logs"), grid="quick", plot=False, noise_time="log-epoch-early")
    assert s.noise.time == "log-epoch" and s.manifest["noise"].get("early", 0.0) == s.noise.early
    # the synthetic runs have one sd at every epoch; plant early noise in the fitted surrogate
    planted = dataclasses.replace(s.noise, early=1.5, decay=2.0)
    t = Surrogate(manifest={**s.manifest, "noise": planted.to_dict()}, curve=s.curve, runtime=s.runtime,
                  noise=planted, fast=s.fast)
    again = load_surrogate(save_surrogate(t, tmp_path / "s"))
    assert again.noise == planted and again.noise.early == 1.5
    x = np.repeat(np.asarray(features([sample(seed=3)], (3, 16, 16), 17, 680), dtype=float), 400, axis=0)
    keys, seeds = np.full(400, 123, dtype=np.uint64), np.arange(400, dtype=np.uint64)
    curves = again.predict(x, keys, seeds)[0]
    np.testing.assert_array_equal(curves, t.predict(x, keys, seeds)[0])
    learned = curves[:, 24] < 0.9
    z = np.log(curves[learned, :25]) - np.log1p(-curves[learned, :25])
    plain = s.predict(x, keys, seeds)[0][learned, :25]
    z0 = np.log(plain) - np.log1p(-plain)
    assert learned.sum() > 100 and z[:, 0].std() > 1.2 * z0[:, 0].std() and z[:, 24].std() < z0[:, 24].std()


def test_noise_clock_tool_averages_the_lags_it_names_and_compares_the_processes(tmp_path):
    tool = load_tool("noise_clock")
    corr = np.arange(36, dtype=float).reshape(6, 6)
    assert tool.mean_correlation(corr, 1, (2, 3)) == np.mean([corr[1, 2], corr[2, 3]])
    assert tool.mean_correlation(corr, 3, (2, 6)) == np.mean([corr[1, 4], corr[2, 5]])  # pairs past the end dropped
    lines = tool.rows(str(synthetic_logs(tmp_path / "logs")), None)
    assert lines[0].startswith("flowers17: the seed noise rests on ")
    assert lines[1] == "sd (logit) at epochs 1, 2, 5, 13, 25"
    names = ["replicated runs (measured)", "fitted, epoch", "fitted, log-epoch", "fitted, log-epoch-early",
             "fitted, empirical"]
    assert [ln.split("  ")[0] for ln in lines[2:7]] == names and [ln.split("  ")[0] for ln in lines[9:]] == names
    sd = {ln.split("  ")[0]: [float(v) for v in ln.split()[-5:]] for ln in lines[2:7]}
    assert len(set(sd["fitted, epoch"])) == 1 and len(set(sd["fitted, log-epoch"])) == 1  # one sd for every epoch
    assert all(0 < v < 1 for v in sd["replicated runs (measured)"])
    assert sd["fitted, empirical"] == sd["replicated runs (measured)"]  # the measured covariance, by construction
    assert "jitter" in lines[-3] and "jitter" not in lines[-4] and lines[-1].endswith("the measured covariance (25 x 25)")
    measured = [float(v) for v in lines[9].split()[3:]]
    assert len(measured) == 6 and all(-1 <= v <= 1 for v in measured)
    assert lines[-1].split()[2:8] == lines[9].split()[3:]  # every lag's correlation is the runs'
    liks = [float(ln.split()[8]) for ln in lines[10:]]
    assert liks[-1] == max(liks)  # the unconstrained covariance: the largest likelihood
    sized = tool.by_config_rows(str(tmp_path / "logs"), None)
    spread = sized[-2:]  # the random size of each config's own, after one size and after the size by level
    assert spread[0].startswith("a random size of each config's own, after one size (")
    assert spread[1].startswith("a random size of each config's own, after the size by level (")
    for line in spread:
        found = re.findall(r"(wobble|whole noise) s ([0-9.]+), log likelihood ([+-][0-9.]+)", line)
        assert [f[0] for f in found] == ["wobble", "whole noise"]
        assert all(0 <= float(s) <= 3 and float(gain) >= 0 for _, s, gain in found)
    sized = sized[:-2]
    assert sized[-2].startswith("size by config (fit --noise-size by-error): shift x (v / ")
    assert sized[-1].startswith("size by config (fit --noise-size by-level): shift x (v / ")
    assert "v = the final error e in [" in sized[-1] and "v = e (1 - e) of the final error in [" in sized[-2]
    for line in sized[-2:]:
        assert float(line.split("log likelihood ")[1].split()[0]) >= 0  # never below one size for all


def test_noise_clock_cards_put_each_process_and_size_in_its_own_column(monkeypatch, capsys):
    import surrobench.surrogate as surrogate_pkg

    tool = load_tool("noise_clock")
    asked = []

    def fake_fit(logs, *, dataset, plot, noise_time, noise_size="shared"):
        asked.append((noise_time, noise_size))
        k = ("epoch", "log-epoch", "log-epoch-early", "empirical").index(noise_time) + 4 * (noise_size == "by-error")
        drawn = [0.1 * (k + 1), 0.01 * (k + 1)]
        thirds = {"edges": [0.4, 0.5, 0.6, 0.8], "measured_sd": [0.03, 0.04, 0.05], "surrogate_sd": [k, 2 * k, 3 * k]}
        tails = {"level": 0.01, "epochs": [3, 25], "logged": [0.55, 0.44], "drawn": [0.5 + 0.01 * k, 0.4]}
        best = {"epochs": [9, 19], "logged": [0.03, 0.04], "drawn": [0.2 * (k + 1), 0.02 * (k + 1)]}
        quality = {"draws": {"dips": {"epochs": [9, 19], "logged": [0.05, 0.06], "drawn": drawn}, "max_gap": 0.02,
                             "tails": tails, "dips_best": best},
                   "seed_noise": {"measured_sd": 0.04, "surrogate_sd": 0.001 * k, "by_final_error": thirds}}
        return type("Fitted", (), {"quality": quality})()

    monkeypatch.setattr(surrogate_pkg, "fit_surrogate", fake_fit)
    assert tool.main(["logs", "--cards", "--processes", "empirical, epoch", "--sizes", "shared,by-error"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert asked == [("empirical", "shared"), ("empirical", "by-error"), ("epoch", "shared"), ("epoch", "by-error")]
    assert "each noise process and size" in lines[0]
    assert lines[1].split() == ["logged", "empirical", "empirical/by-error", "epoch", "epoch/by-error"]
    assert lines[2].split()[-5:] == ["0.050", "0.400", "0.800", "0.100", "0.500"]
    # the dips of the best third of runs, each column its own card's
    assert lines[4].startswith("  best third of them, at epoch 9") and lines[5].startswith("  best third of them, at epoch 19")
    assert lines[4].split()[-5:] == ["0.030", "0.800", "1.600", "0.200", "1.000"]
    lines = lines[:4] + lines[6:]
    assert lines[4].split()[-5:] == ["0.0400", "0.0030", "0.0070", "0.0000", "0.0040"]
    assert lines[5].startswith("  learners, best third [0.40, 0.50]") and lines[7].startswith("  learners, worst third [0.60, 0.80]")
    assert lines[7].split()[-5:] == ["0.0500", "9.0000", "21.0000", "0.0000", "12.0000"]
    assert lines[8].startswith("best 1 % of runs at epoch 3 (quantile)")
    assert lines[8].split()[-5:] == ["0.550", "0.530", "0.570", "0.500", "0.540"]
    assert lines[9].startswith("best 1 % of runs at epoch 25") and lines[10].startswith("largest gap")
    for bad, words in [(["logs", "--cards", "--processes", "weeks"], "unknown process weeks (known: epoch,"),
                       (["logs", "--cards", "--sizes", ""], "unknown size (none given) (known: shared, by-error, by-level)"),
                       (["logs", "--sizes", "by-error"], "--processes and --sizes pick the columns of --cards")]:
        with pytest.raises(SystemExit) as stop:
            tool.main(bad)
        assert stop.value.code == 2 and words in capsys.readouterr().err


def test_noise_clock_cards_put_each_process_in_its_own_column(monkeypatch):
    import surrobench.surrogate as surrogate_pkg

    tool = load_tool("noise_clock")

    def fake_fit(logs, *, dataset, plot, noise_time, noise_size):
        assert noise_size == "shared"
        k = ("epoch", "log-epoch", "log-epoch-early", "empirical").index(noise_time)
        drawn = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]][k]
        quality = {"draws": {"dips": {"epochs": [9, 19], "logged": [0.05, 0.06], "drawn": drawn},
                             "max_gap": 0.01 * (k + 1)},
                   "seed_noise": {"measured_sd": 0.04, "surrogate_sd": 0.041 + 0.001 * k}}
        return type("Fitted", (), {"quality": quality})()

    monkeypatch.setattr(surrogate_pkg, "fit_surrogate", fake_fit)
    lines = tool.card_rows("logs", None)
    assert lines[1].split() == ["logged", "epoch", "log-epoch", "log-epoch-early", "empirical"]
    assert lines[2].split()[-5:] == ["0.050", "0.100", "0.300", "0.500", "0.700"]
    assert lines[3].split()[-5:] == ["0.060", "0.200", "0.400", "0.600", "0.800"]
    assert lines[4].split()[-5:] == ["0.0400", "0.0410", "0.0420", "0.0430", "0.0440"]
    assert lines[5].split()[-4:] == ["0.010", "0.020", "0.030", "0.040"]


def test_early_cut_tool_compares_the_logged_runs_with_their_out_of_fold_draws(tmp_path, capsys):
    from surrobench.logs import read_logs
    from surrobench.surrogate import build

    tool = load_tool("early_cut")
    logs = synthetic_logs(tmp_path / "logs")
    card = build.draw_card
    assert tool.main([str(logs), "--grid", "quick"]) == 0
    assert build.draw_card is card  # the fit's card is its own again
    out = capsys.readouterr().out
    table = read_logs(logs)
    table = table[~table["retime"].astype(bool)]  # the lone re-timings are clock runs, not curve runs
    curves = table.pivot_table(index="key", columns="epoch", values="val_error").dropna().to_numpy()
    assert out.startswith(f"{len(curves)} curve runs, 8 out-of-fold draws each")
    for e in (1, 3, 9):  # the logged share is the one the curves give; the drawn one a share too
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(f"epoch {e}:"))
        logged, drawn = (float(v) for v in line.split(":")[1].split("/"))
        assert logged == round(early_cut_share(curves, e), 3)
        assert 0.0 <= drawn <= 1.0
    assert "median batch_size" in out and "variance of log-odds progress" in out


def test_early_cut_tool_fits_with_the_noise_it_is_given(monkeypatch):
    from surrobench.surrogate import build

    tool = load_tool("early_cut")
    asked = {}

    def fake_fit(logs, **kwargs):
        asked.update(kwargs)
        raise RuntimeError("fitted")

    monkeypatch.setattr(build, "fit_surrogate", fake_fit)
    with pytest.raises(RuntimeError, match="fitted"):
        tool.main(["logs", "--noise-time", "empirical", "--noise-size", "by-level"])
    assert asked["noise_time"] == "empirical" and asked["noise_size"] == "by-level"


def test_early_cut_tool_writes_fast_starting_logs(tmp_path, capsys):
    import json

    tool = load_tool("early_cut")
    logs = synthetic_logs(tmp_path / "logs")
    assert tool.main([str(logs), "--fast-starts", str(tmp_path / "fast")]) == 0
    assert "made to start fast" in capsys.readouterr().out
    (src,) = sorted(logs.glob("*.jsonl"))
    before = [json.loads(line) for line in src.read_text().splitlines()]
    after = [json.loads(line) for line in (tmp_path / "fast" / src.name).read_text().splitlines()]
    assert len(before) == len(after)
    changed = 0
    for b, a in zip(before, after):
        vb, va = b["curve"]["val_error"], a["curve"]["val_error"]
        assert {k: v for k, v in b.items() if k != "curve"} == {k: v for k, v in a.items() if k != "curve"}
        assert va[9:] == vb[9:] and all(x <= y for x, y in zip(va[:9], vb[:9]))  # only lowered, only early
        changed += va != vb
    assert changed > 0
    assert tool.main([str(logs), "--fast-starts", str(tmp_path / "fast")]) == 2  # never over an existing folder
    assert "exists; name a new folder" in capsys.readouterr().err


def test_noise_clock_by_config_finds_noise_planted_to_grow_with_final_error():
    from surrobench.surrogate.noise import replicated_residuals

    tool = load_tool("noise_clock")
    rng = np.random.default_rng(7)
    n_configs, n_seeds = 150, 3
    # the configs' final logit errors, up to a constant: the worst third, well apart, wobbles three times as much
    offset = np.r_[rng.uniform(-1.5, -0.5, 100), rng.uniform(0.5, 1.0, 50)]
    scale = np.where(offset > 0, 0.3, 0.1)
    mean = np.linspace(1.0, -0.5, 25)
    z = rng.standard_normal((n_configs * n_seeds, 25)) * scale.repeat(n_seeds)[:, None]
    val = sigmoid(mean + offset.repeat(n_seeds)[:, None] + z)
    res = replicated_residuals(np.repeat([f"c{i}" for i in range(n_configs)], n_seeds), val, val, 0.94, 340, 340)
    assert list(res.sizes) == [n_seeds] * n_configs and res.val_mean.shape == (n_configs, 25)
    lines = tool.sd_by_thirds(res)
    assert lines[0].split() == ["configs", "sd", "epochs", "2-8", "sd", "epochs", "15-25", "sd", "epoch", "25", "shift",
                                "sd", "wobble", "sd"]
    by_error = lines[lines.index("final validation error (mean curve)") + 1:]
    sds = [[float(v) for v in ln.split()[-5:]] for ln in by_error[:3]]
    assert [int(ln.split()[-6]) for ln in by_error[:3]] == [50, 50, 50]
    for k, planted in enumerate((1.0, 1.0, 1.0, 0.2, 1.0)):  # the windows and the wobble: the planted sd; the shift,
        low, mid, high = (row[k] for row in sds)  # the mean of 25 independent epochs: a fifth of it
        rel = 0.35 if k == 2 else 0.2  # the last epoch alone: 100 degrees of freedom per third
        assert low == pytest.approx(0.1 * planted, rel=rel) and mid == pytest.approx(0.1 * planted, rel=rel)
        assert high == pytest.approx(0.3 * planted, rel=rel)
    assert by_error[3].startswith("  Spearman") and min(float(by_error[3].split()[k]) for k in (-15, -9, -6, -3)) > 0.5
    # the late fall is the same for every config here: its thirds cannot separate the planted noise
    by_fall = lines[2:5]
    assert max(float(ln.split()[-1]) for ln in by_fall) < 0.3 and min(float(ln.split()[-1]) for ln in by_fall) > 0.1
    # a property of the configs given beside them (the planted offset: its top third wobbles most) gets its thirds
    ids = np.repeat([f"c{i}" for i in range(n_configs)], n_seeds)
    assert list(ids[res.first_rows]) == sorted(set(ids))  # each learner group's first run, in the groups' order
    extra = tool.sd_by_thirds(res, {"planted offset": offset[[int(c[1:]) for c in ids[res.first_rows]]]})
    assert extra[:len(lines)] == lines and extra[len(lines)] == "planted offset"
    wobble = [float(ln.split()[-1]) for ln in extra[len(lines) + 1:len(lines) + 4]]
    assert wobble[0] == pytest.approx(0.1, rel=0.2) and wobble[2] == pytest.approx(0.3, rel=0.2)


def test_draw_card_counts_the_dips_of_the_runs_that_end_best_on_their_own_row():
    from surrobench.surrogate.quality import draw_card

    n = 30
    final = np.linspace(0.40, 0.69, n)  # every run learns (chance 0.94); the first ten end best
    val = np.tile(final[:, None], (1, 25)) + 0.05
    val[:, -1] = final
    val[:10, 12] = final[:10] - 0.05  # the best third dips at epoch 13
    drawn = val.copy()
    drawn[:10, 12] = final[:10] + 0.01  # the draws of the best end ...
    drawn[20:, 12] = final[20:] - 0.05  # ... do not dip, the worst third's do
    card = draw_card(config_ids=np.array([f"{i:016x}" for i in range(n)]), val=val, drawn=drawn[None],
                     learner_pred=final, chance=0.94, learn_corr=0.0, oof_p=np.ones(n))
    at13 = card["dips"]["epochs"].index(13)
    assert card["dips"]["logged"][at13] == pytest.approx(1 / 3) == card["dips"]["drawn"][at13]  # all runs: alike
    assert card["dips_best"]["logged"][at13] == 1.0 and card["dips_best"]["drawn"][at13] == 0.0  # the best: not


def _spread_residuals(spread: float, part: str, n_configs: int = 160, n_seeds: int = 3, seed: int = 0):
    """Replicated residuals (Residuals of unit size) whose configs' ``part`` has a planted lognormal variance factor."""
    from surrobench.surrogate.noise import Residuals

    rng = np.random.default_rng(seed)
    base = NoiseModel(sigma_val=0.25, sigma_test=0.25, rho=0.7, kappa=0.8, n_groups=0, n_learner_groups=0,
                      n_flip_groups=0, n_runs=0, level=0.4)
    chol = np.linalg.cholesky(base.correlation(25)) * 0.25
    proj = np.full((25, 25), 1 / 25)
    rows = []
    for _ in range(n_configs):
        root = np.exp((spread * rng.standard_normal() - spread**2 / 2) / 2)
        t = proj + root * (np.eye(25) - proj) if part == "wobble" else root * np.eye(25)
        eps = rng.standard_normal((n_seeds, 25)) @ chol.T @ t.T
        rows.append(eps - eps.mean(axis=0))
    val = np.vstack(rows)
    sizes = np.full(n_configs, n_seeds)
    return Residuals(val, val.copy(), n_configs * (n_seeds - 1), n_configs, n_configs, 0, len(val), sizes,
                     np.zeros((n_configs, 25)))


def test_a_random_size_per_config_is_found_where_planted_and_not_where_there_is_none():
    from surrobench.surrogate.noise import config_spread_loglik, fit_config_spread

    for part in ("wobble", "all"):
        spread, gain = fit_config_spread(_spread_residuals(0.8, part), part)
        assert spread == pytest.approx(0.8, abs=0.25) and gain > 20
    spread, gain = fit_config_spread(_spread_residuals(0.0, "wobble"), "wobble")
    assert spread < 0.3 and 0.0 <= gain < 4
    res = _spread_residuals(0.8, "wobble")
    # the wobble's spread describes a wobble spread better than a spread of the whole noise does
    assert config_spread_loglik(res, 0.8, "wobble") > config_spread_loglik(res, 0.8, "all")
    with pytest.raises(ValueError, match="part: must be one of wobble, all"):
        config_spread_loglik(res, 0.5, "shift")
    with pytest.raises(ValueError, match="spread: must be a finite number >= 0"):
        config_spread_loglik(res, -0.1)


def test_noise_clock_dips_puts_the_replicated_runs_beside_draws_around_their_own_means(tmp_path):
    from surrobench.datasets import info as dataset_info
    from surrobench.surrogate.data import load_run_data
    from surrobench.surrogate.noise import replicated_residuals
    from surrobench.surrogate.quality import best_runs, dip_share

    tool = load_tool("noise_clock")
    logs = str(synthetic_logs(tmp_path / "logs"))
    lines = tool.dips_rows(logs, None, draws=3)
    assert lines == tool.dips_rows(logs, None, draws=3)  # seeded
    assert lines[2].split() == ["e", "5", "e", "9", "e", "13", "e", "19"] * 2
    names = [ln[:50].strip() for ln in lines[3:]]
    assert names[0] == "logged" and all(n.startswith("drawn: ") for n in names[1:]) and len(names) == 6
    assert names[-1] == "drawn: residuals of the 3 configs of nearest curve"
    cells = [[float(v) for v in ln[50:].split()] for ln in lines[3:]]
    assert all(len(c) == 8 and all(0.0 <= v <= 1.0 for v in c) for c in cells)
    # the logged row: the dips of the runs of the configs that learned under every seed, counted apart
    data = load_run_data(logs)
    cur = data.subset(data.curve_run)
    info = dataset_info(data.dataset)
    res = replicated_residuals(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    runs = cur.val[np.isin(cur.config_ids, cur.config_ids[res.first_rows])]
    assert len(runs) == len(res.val) and str(len(runs)) in lines[0]
    want = [dip_share(runs, e) for e in (5, 9, 13, 19)] + [dip_share(best_runs(runs), e) for e in (5, 9, 13, 19)]
    assert cells[0] == pytest.approx(want, abs=6e-4)


def test_the_residual_bank_keeps_the_runs_own_residual_curves_and_draws_from_the_configs_of_nearest_curve():
    from surrobench.surrogate.noise import bank_key, check_noise, replicated_residuals

    planted = NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0, level=0.3)
    ids, val, test = _planted_runs(planted)
    noise = calibrate(ids, val, test, 0.94, 340, 340, time="bank")
    res = replicated_residuals(ids, val, test, 0.94, 340, 340)
    scale = np.sqrt(np.repeat(res.sizes / (res.sizes - 1), res.sizes))[:, None]  # one run's variance
    np.testing.assert_allclose(np.asarray(noise.bank), np.hstack([res.val, res.test]) * scale, atol=6e-7)
    assert noise.bank_sizes == tuple(res.sizes) and noise.bank_keys is None
    assert noise.matrix == calibrate(ids, val, test, 0.94, 340, 340, time="empirical").matrix  # the covariance too
    with pytest.raises(ValueError, match="no residual bank with keys"):
        noise.bank_noise(np.zeros((1, 2)), np.zeros((1, 50)))
    # keys: each banked config's predicted curve; here the config means themselves
    keyed = noise.with_bank_keys(res.val_mean)
    np.testing.assert_allclose(np.asarray(keyed.bank_keys), bank_key(res.val_mean), atol=6e-7)
    one = replace(keyed, bank_nearest=1)
    rng = np.random.default_rng(0)
    normals = rng.standard_normal((200, 2))
    starts = np.r_[0, np.cumsum(res.sizes)[:-1]]
    for g in (0, 5, len(res.sizes) - 1):  # a curve equal to a config's key draws that config's runs only
        z = np.repeat(res.val_mean[g:g + 1], 200, axis=0)
        rows = one.bank_noise(normals, np.hstack([z, z]))
        mine = np.asarray(one.bank)[starts[g]:starts[g] + res.sizes[g]]
        assert all(any(np.array_equal(r, m) for m in mine) for r in rows)
        assert len({r.tobytes() for r in rows}) == res.sizes[g]  # every run of it, picked by the uniforms
        three = keyed.bank_noise(normals, np.hstack([z, z]))  # ... and with three configs, theirs
        near = np.argsort(((bank_key(z[:1]) - np.asarray(keyed.bank_keys)) ** 2).sum(axis=1), kind="stable")[:3]
        pool = np.vstack([np.asarray(keyed.bank)[starts[h]:starts[h] + res.sizes[h]] for h in near])
        assert all(any(np.array_equal(r, m) for m in pool) for r in three)
    z = res.val_mean[rng.integers(0, len(res.sizes), 50)] + rng.normal(0, 0.3, (50, 25))
    batch = keyed.bank_noise(normals[:50], np.hstack([z, z]))
    for i in (0, 17, 49):  # a row alone as in the batch
        np.testing.assert_array_equal(keyed.bank_noise(normals[i:i + 1], np.hstack([z, z])[i:i + 1])[0], batch[i])
    chunks = [keyed.bank_noise(normals[:50][i:i + 7], np.hstack([z, z])[i:i + 7]) for i in range(0, 50, 7)]
    np.testing.assert_array_equal(np.vstack(chunks), batch)  # ... and in batches of another size
    d = json.loads(json.dumps(keyed.to_dict()))
    assert "residual curves of" in d["process"] and NoiseModel.from_dict(d) == keyed
    assert "bank" not in calibrate(ids, val, test, 0.94, 340, 340, time="empirical").to_dict()  # others as before
    for bad, words in [({"bank": [[0.0] * 49] * len(noise.bank)}, "runs x 50 finite numbers"),
                       ({"bank_sizes": [1] * len(noise.bank)}, "groups of at least 2 runs"),
                       ({"bank_keys": [[0.0] * 3] * len(noise.bank_sizes)}, "one row of 22 finite numbers"),
                       ({"bank_nearest": 0}, "bank_nearest must be an int in 1.."),
                       ({"size": "by-level", "size_level": 1.0, "size_wobble": 0.0, "size_ref": 0.5, "size_lo": 0.4,
                         "size_hi": 0.8}, "size must be 'shared'")]:
        with pytest.raises(ValueError, match=f"noise parameters: .*{words}"):
            NoiseModel.from_dict({**d, **bad})
    with pytest.raises(ValueError, match="noise_size: a residual bank .* takes noise_size 'shared', got 'by-level'"):
        check_noise("bank", "by-level")
    with pytest.raises(ValueError, match="size: a residual bank"):
        calibrate(ids, val, test, 0.94, 340, 340, time="bank", size="by-level")


def test_a_surrogate_fitted_with_the_residual_bank_draws_its_noise_from_the_bank(tmp_path, capsys):
    from surrobench.surrogate import fit_surrogate
    from surrobench.surrogate.noise import logit as to_logit

    logs = synthetic_logs(tmp_path / "logs")
    s = fit_surrogate(logs, grid="quick", plot=False, noise_time="bank")
    assert s.noise.bank is not None and s.noise.bank_keys is not None
    assert "drawn from a bank of the" in s.quality["seed_noise"]["note"]
    from surrobench.benchmark import SurrogateBenchmark

    described = SurrogateBenchmark(s).describe()["noise_model"]  # a results folder's metadata: the bank counted
    assert described["bank"] == f"{len(s.noise.bank)} residual curves of {len(s.noise.bank_sizes)} configs"
    assert "bank_keys" not in described and described["matrix"] == s.manifest["noise"]["matrix"]
    curves, x = _round_trip_draws(s, tmp_path, 300)
    # a learning draw is its mapped learner curve plus a banked run's residual curve, exactly
    out = np.asarray(s.fast.inplace_predict(x[:1]), dtype=float).reshape(1, -1)
    learner = s.curve.learner(out[:, 1:s._k + 1])
    mapped = s.curve.tail(to_logit(learner))[0]
    learned = curves[:, 24] < 0.85
    assert learned.sum() > 50
    bank = np.asarray(s.noise.bank)
    noise = to_logit(np.clip(curves[learned], 1e-12, 1 - 1e-12)) - mapped
    hits = [np.min(np.abs(bank - row).max(axis=1)) for row in noise]
    assert max(hits) < 1e-6
    with pytest.raises(ValueError, match="has no keys"):
        type(s)(manifest=s.manifest, curve=s.curve, runtime=s.runtime, noise=replace(s.noise, bank_keys=None))
    assert main(["fit", str(logs), "--out", str(tmp_path / "x"), "--noise-time", "bank", "--noise-size", "by-level"]) == 2
    assert "noise_size: a residual bank" in capsys.readouterr().err


def test_a_bank_keyed_by_the_logged_means_is_the_same_bank_searched_by_the_mapped_curve():
    from surrobench.surrogate.noise import bank_key, check_noise, replicated_residuals

    planted = NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0, level=0.3)
    ids, val, test = _planted_runs(planted)
    bank = calibrate(ids, val, test, 0.94, 340, 340, time="bank")
    logged = calibrate(ids, val, test, 0.94, 340, 340, time="bank-logged")
    res = replicated_residuals(ids, val, test, 0.94, 340, 340)
    assert logged.bank == bank.bank and logged.bank_sizes == bank.bank_sizes and logged.matrix == bank.matrix
    assert bank.bank_search == "predicted" and logged.bank_search == "mapped"
    np.testing.assert_allclose(np.asarray(logged.bank_keys), bank_key(res.val_mean), atol=6e-7)  # keyed already
    d = json.loads(json.dumps(logged.to_dict()))
    assert d["bank_search"] == "mapped" and "logged mean curve" in d["process"]
    assert NoiseModel.from_dict(d) == logged
    keyed = json.loads(json.dumps(bank.with_bank_keys(res.val_mean).to_dict()))
    assert "bank_search" not in keyed  # a bank searched by the prediction is written as before
    assert NoiseModel.from_dict(keyed).bank_search == "predicted"
    with pytest.raises(ValueError, match="noise parameters: bank_search: must be one of predicted, mapped, got 'x'"):
        NoiseModel.from_dict({**d, "bank_search": "x"})
    with pytest.raises(ValueError, match="noise_size: a residual bank \\(noise_time 'bank-logged'\\) carries"):
        check_noise("bank-logged", "by-level")


def test_the_tail_map_is_matched_with_the_bank_searched_as_the_draws_search_it(monkeypatch):
    from surrobench.surrogate import fit as fit_module
    from surrobench.surrogate.fit import fit_tail_map
    from surrobench.surrogate.noise import replicated_residuals

    planted = NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0, level=0.3)
    ids, val, test = _planted_runs(planted, n_configs=40, n_seeds=3)
    by_prediction = calibrate(ids, val, test, 0.94, 340, 340, time="bank")
    by_mapped = calibrate(ids, val, test, 0.94, 340, 340, time="bank-logged")
    by_prediction = by_prediction.with_bank_keys(replicated_residuals(ids, val, test, 0.94, 340, 340).val_mean)
    assert not by_prediction.bank_by_mapped and by_mapped.bank_by_mapped
    rng = np.random.default_rng(1)
    truth = rng.normal(0.5, 0.6, (300, 50))
    pred = 0.5 + 0.5 * (truth - 0.5) + rng.normal(0, 0.1, (300, 50))  # shrunk toward the mean: the map widens it
    searched = []
    real = NoiseModel.bank_noise

    def spy(self, normals, z):
        searched.append(np.array(z))
        return real(self, normals, z)

    monkeypatch.setattr(NoiseModel, "bank_noise", spy)
    monkeypatch.setattr(fit_module, "TAIL_ROUNDS", 25)
    fit_tail_map(pred, truth, np.full(50, 0.2), noise=by_prediction)
    tiled = np.tile(pred, (len(searched[0]) // len(pred), 1))
    assert len(searched) == 1 and np.array_equal(searched[0], tiled)  # once, with the prediction itself
    searched.clear()
    fit_tail_map(pred, truth, np.full(50, 0.2), noise=by_mapped)
    assert len(searched) == 3  # rounds 0, 10 and 20 of 25: searched again as the map moves
    assert not np.allclose(searched[0], tiled)  # ... with the mapped curves, not the prediction
    assert not np.allclose(searched[-1], searched[0])


def test_a_surrogate_with_the_bank_keyed_by_logged_means_searches_it_with_the_mapped_curve(tmp_path):
    from surrobench.surrogate import build, fit_surrogate
    from surrobench.surrogate.noise import bank_key
    from surrobench.surrogate.noise import logit as to_logit

    logs = synthetic_logs(tmp_path / "logs")
    searched = []
    real_fit_tail_map = build.fit_tail_map

    def spy(*args, **kwargs):  # the map is matched with the draws' own search (by the mapped curve)
        searched.append(kwargs["noise"].bank_search)
        return real_fit_tail_map(*args, **kwargs)

    build.fit_tail_map = spy
    try:
        s = fit_surrogate(logs, grid="quick", plot=False, noise_time="bank-logged")
    finally:
        build.fit_tail_map = real_fit_tail_map
    assert searched and set(searched) == {"mapped"}
    assert s.noise.bank_search == "mapped" and s.manifest["noise"]["bank_search"] == "mapped"
    curves, x = _round_trip_draws(s, tmp_path, 300)
    out = np.asarray(s.fast.inplace_predict(x[:1]), dtype=float).reshape(1, -1)
    unmapped = to_logit(s.curve.learner(out[:, 1:s._k + 1]))
    mapped = s.curve.tail(unmapped)[0]
    learned = curves[:, 24] < 0.85
    assert learned.sum() > 50
    noise = to_logit(np.clip(curves[learned], 1e-12, 1 - 1e-12)) - mapped  # mapped curve + a banked residual
    bank, keys = np.asarray(s.noise.bank), np.asarray(s.noise.bank_keys)
    starts = np.r_[0, np.cumsum(s.noise.bank_sizes)[:-1]]

    def pool(z):  # the runs of the three banked configs whose keys are nearest z's
        near = np.argsort(((bank_key(z[None, :]) - keys) ** 2).sum(axis=1), kind="stable")[:3]
        return np.vstack([bank[starts[h]:starts[h] + s.noise.bank_sizes[h]] for h in near])

    by_mapped, by_unmapped = pool(mapped), pool(unmapped[0])
    assert max(np.min(np.abs(by_mapped - row).max(axis=1)) for row in noise) < 1e-6
    assert not all(np.min(np.abs(by_unmapped - row).max(axis=1)) < 1e-6 for row in noise)  # not the old search


def test_auto_noise_takes_the_measured_residuals_where_they_are_enough_and_the_epoch_clock_else():
    from surrobench.surrogate.noise import auto_time, replicated_residuals

    planted = NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0)
    ids, val, test = _planted_runs(planted, n_configs=40, n_seeds=3)  # 80 degrees of freedom over 25 epochs
    res = replicated_residuals(ids, val, test, 0.94, 340, 340)
    assert res.dof > 25 and auto_time(res) == "bank-logged" and auto_time(res, "by-level") == "empirical"
    assert calibrate(ids, val, test, 0.94, 340, 340, time="auto") == \
        calibrate(ids, val, test, 0.94, 340, 340, time="bank-logged")
    assert calibrate(ids, val, test, 0.94, 340, 340, time="auto", size="by-level") == \
        calibrate(ids, val, test, 0.94, 340, 340, time="empirical", size="by-level")
    # 12 configs run twice: 12 degrees of freedom, too few for a covariance over 25 epochs
    few_ids, few_val, few_test = _planted_runs(planted, n_configs=12, n_seeds=2)
    few = replicated_residuals(few_ids, few_val, few_test, 0.94, 340, 340)
    assert few.dof == 12 and auto_time(few) == "epoch" and auto_time(few, "by-level") == "epoch"
    with pytest.raises(ValueError, match="positive definite"):
        calibrate(few_ids, few_val, few_test, 0.94, 340, 340, time="bank")
    assert calibrate(few_ids, few_val, few_test, 0.94, 340, 340, time="auto") == \
        calibrate(few_ids, few_val, few_test, 0.94, 340, 340, time="epoch")


def test_the_default_noise_is_the_shipped_surrogates_on_their_logs():
    import surrobench
    from surrobench.cli import DEFAULT_NOISE_TIME as CLI_DEFAULT
    from surrobench.cli import build_parser
    from surrobench.datasets import info as dataset_info
    from surrobench.surrogate.data import load_run_data
    from surrobench.surrogate.noise import DEFAULT_NOISE_TIME

    assert CLI_DEFAULT == DEFAULT_NOISE_TIME == "auto"
    parser = build_parser()
    assert parser.parse_args(["fit", "logs"]).noise_time == DEFAULT_NOISE_TIME
    assert parser.parse_args(["validate", "logs"]).noise_time == DEFAULT_NOISE_TIME
    shipped = surrobench.load("flowers17").surrogate.noise
    assert shipped.bank is not None and shipped.bank_search == "mapped"  # shipped with the bank searched by the mapped curve
    data = load_run_data(Path(__file__).resolve().parents[1] / "training_logs" / "flowers17")
    info = dataset_info(data.dataset)
    cur = data.subset(data.curve_run)
    noise = calibrate(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2], time="auto")
    assert noise.bank is not None and noise.bank_search == "mapped"  # on the shipped logs, the default is the shipped noise


def test_the_card_names_the_process_auto_took(tmp_path):
    from surrobench.surrogate import fit_surrogate

    _, epoch_fit, _ = fitted()  # fitted with --noise-time epoch
    assert "on the epoch clock: run-level share" in epoch_fit.quality["seed_noise"]["note"]
    s = fit_surrogate(synthetic_logs(tmp_path / "logs"), grid="quick", plot=False)  # the default, auto
    assert s.noise.bank_search == "mapped" and "drawn from a bank of the" in s.quality["seed_noise"]["note"]


def test_noise_clock_card_draws_leave_out_the_parts_asked_and_put_them_back():
    from surrobench.surrogate import build, model
    from surrobench.surrogate.noise import logit

    tool = load_tool("noise_clock")
    _, s, _ = fitted()
    curve = s.curve
    draw, fitted_noise = model.CurveModel.draw, build.calibrate
    n = 40
    p = np.ones(n)  # every row learns
    learner = np.clip(np.linspace(0.9, 0.4, n)[:, None] + np.linspace(0.1, 0.0, curve.chance_curve.shape[0])[None, :],
                      0.05, 0.95)
    keys, seeds = np.arange(n, dtype=np.uint64), np.arange(n, dtype=np.uint64) + 7
    mix = s.noise.mixing_matrix(25)
    full = curve.draw(p, learner, keys, seeds, mix)
    with tool.card_draws(noise=False, tail=False):
        assert np.allclose(curve.draw(p, learner, keys, seeds, mix), learner)  # the predicted curves themselves
    with tool.card_draws(noise=False):
        mapped = curve.draw(p, learner, keys, seeds, mix)
        assert np.allclose(mapped, 1 / (1 + np.exp(-curve.tail(logit(learner)))))
        assert not np.allclose(mapped, full) and not np.allclose(mapped, learner)
    with tool.card_draws(noise=False, shift=True):  # the mapped last epoch, every epoch moved as much
        moved = logit(curve.draw(p, learner, keys, seeds, mix)) - logit(learner)
        mapped_last = curve.tail(logit(learner))
        assert np.allclose(moved[:, :25], (mapped_last[:, 24] - logit(learner)[:, 24])[:, None])
        assert np.allclose(moved[:, 25:], (mapped_last[:, 49] - logit(learner)[:, 49])[:, None])
        assert np.ptp(moved[:, :25], axis=1).max() < 1e-9 and np.ptp(moved[:, 25:], axis=1).max() < 1e-9  # no bend
    with tool.card_draws(tail=False):
        assert curve.tail is not None  # only the draw leaves it out
        assert not np.allclose(curve.draw(p, learner, keys, seeds, mix), full)
    assert model.CurveModel.draw is draw and build.calibrate is fitted_noise and curve.tail is not None
    assert np.array_equal(curve.draw(p, learner, keys, seeds, mix), full)
    ids, val, test = _planted_runs(NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0), n_configs=40, n_seeds=3)
    with tool.card_draws(nearest=1):
        assert build.calibrate(ids, val, test, 0.94, 340, 340, time="bank").bank_nearest == 1
    assert build.calibrate is fitted_noise
    assert build.calibrate(ids, val, test, 0.94, 340, 340, time="bank").bank_nearest == 3
    with pytest.raises(RuntimeError):  # put back on the way out of an error too
        with tool.card_draws(tail=False, nearest=6):
            raise RuntimeError("stop")
    assert model.CurveModel.draw is draw and build.calibrate is fitted_noise


def _fitted_with_card(k: int):
    """A stand-in for a fitted surrogate whose card's draws rows read 0.1 k (dips at epoch 9) and 0.001 k (sd)."""
    quality = {"draws": {"dips": {"epochs": [9], "logged": [0.05], "drawn": [0.1 * k]}, "max_gap": 0.02},
               "seed_noise": {"measured_sd": 0.04, "surrogate_sd": 0.001 * k}}
    return type("Fitted", (), {"quality": quality})()


def test_noise_clock_card_parts_fits_each_column_with_its_parts(monkeypatch, capsys):
    import surrobench.surrogate as surrogate_pkg
    from surrobench.surrogate import build, model

    tool = load_tool("noise_clock")
    draw, fitted_noise = model.CurveModel.draw, build.calibrate
    seen = []

    def fake_fit(logs, *, dataset, plot, noise_time):
        assert noise_time == "bank"
        seen.append((model.CurveModel.draw is draw, build.calibrate is fitted_noise))
        return _fitted_with_card(len(seen))

    monkeypatch.setattr(surrogate_pkg, "fit_surrogate", fake_fit)
    assert tool.main(["logs", "--card-parts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # shipped, no tail map, no noise, neither: the draw patched but not the fit; 1 and 6 nearest: the fit's noise
    assert seen == [(True, True), (False, True), (False, True), (False, True), (True, False), (True, False),
                    (False, True)]
    assert "residual bank" in lines[0]
    assert lines[1].split() == ["logged", "shipped", "no", "tail", "map", "no", "noise", "neither", "1", "nearest", "6",
                                "nearest", "one", "shift"]
    assert lines[2].split()[-8:] == ["0.050", "0.100", "0.200", "0.300", "0.400", "0.500", "0.600", "0.700"]
    assert model.CurveModel.draw is draw and build.calibrate is fitted_noise


def test_noise_clock_card_draws_weighs_the_bank_keys_level_and_puts_it_back():
    from surrobench.surrogate import noise as noise_module

    tool = load_tool("noise_clock")
    key = noise_module.bank_key
    z = np.random.default_rng(3).normal(size=(4, 25))
    plain = key(z)
    with tool.card_draws(level_weight=10.0):
        weighted = noise_module.bank_key(z)
        assert np.allclose(weighted[:, :-1], plain[:, :-1]) and np.allclose(weighted[:, -1], 10.0 * plain[:, -1])
        # calibrate keys the bank through the module's function: a bank fitted inside is keyed with the weight
        ids, val, test = _planted_runs(NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0), n_configs=40, n_seeds=3)
        bank = calibrate(ids, val, test, 0.94, 340, 340, time="bank-logged")
    unweighted = calibrate(ids, val, test, 0.94, 340, 340, time="bank-logged")
    assert noise_module.bank_key is key
    a, b = np.asarray(bank.bank_keys), np.asarray(unweighted.bank_keys)
    assert np.allclose(a[:, :-1], b[:, :-1]) and np.allclose(a[:, -1], np.round(10.0 * b[:, -1], 6), atol=1e-5)
    assert not np.allclose(a[:, -1], b[:, -1])
    with pytest.raises(RuntimeError):
        with tool.card_draws(level_weight=3.0):
            raise RuntimeError("stop")
    assert noise_module.bank_key is key


def test_noise_clock_bank_spread_fits_each_column_with_its_bank(monkeypatch, capsys):
    import surrobench.surrogate as surrogate_pkg
    from surrobench.surrogate import build
    from surrobench.surrogate import noise as noise_module

    tool = load_tool("noise_clock")
    fitted_noise, key = build.calibrate, noise_module.bank_key
    z = np.ones((1, 25)) * 0.5
    seen = []

    def fake_fit(logs, *, dataset, plot, noise_time):
        assert noise_time == "bank-logged"
        ids, val, test = _planted_runs(NoiseModel(0.25, 0.25, 0.5, 0.8, 0, 0, 0, 0), n_configs=40, n_seeds=3)
        nearest = build.calibrate(ids, val, test, 0.94, 340, 340, time="bank-logged").bank_nearest
        seen.append((nearest, round(float(noise_module.bank_key(z)[0, -1]), 6)))
        return _fitted_with_card(len(seen))

    monkeypatch.setattr(surrogate_pkg, "fit_surrogate", fake_fit)
    assert tool.main(["logs", "--bank-spread"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert seen == [(3, 0.5), (6, 0.5), (10, 0.5), (3, 1.5), (3, 5.0), (6, 1.5)]
    assert "mapped curve" in lines[0]
    assert lines[2].split()[-6:] == ["0.100", "0.200", "0.300", "0.400", "0.500", "0.600"]
    assert build.calibrate is fitted_noise and noise_module.bank_key is key


def _planted_config_noise(lower_sd, upper_sd, seed_sd=0.15, n=6000, n_out=50, seed=0):
    """Runs whose final logit is a monotone function of the prediction, plus a shift of the whole curve per
    config (a two-piece normal: ``lower_sd(level)`` below 0, ``upper_sd(level)`` above), plus seed noise;
    with the replicated runs' residuals of that seed noise."""
    from surrobench.surrogate.noise import Residuals

    rng = np.random.default_rng(seed)
    pred = rng.normal(0.0, 0.6, (n, 1)) + np.zeros((1, n_out))  # one prediction per run, every output alike
    told = np.tanh(pred)  # a monotone function of the prediction: what it tells
    level = sigmoid(told[:, :1])
    z = rng.normal(0.0, 1.0, (n, 1))
    shift = np.where(z < 0, lower_sd(level), upper_sd(level)) * z  # a shift of its whole curve
    truth = told + shift + rng.normal(0.0, seed_sd, (n, n_out))
    # the replicated runs' residuals: 600 configs of 3 runs at levels spread like the runs', centred on their means
    reps = rng.normal(0.0, seed_sd, (600, 3, n_out))
    reps = (reps - reps.mean(axis=1, keepdims=True)).reshape(-1, n_out)
    means = np.tanh(rng.normal(0.0, 0.6, (600, 1))) + np.zeros((1, n_out // 2))
    res = Residuals(reps[:, :n_out // 2], reps[:, n_out // 2:], dof=1200, n_groups=600, n_learner_groups=600,
                    n_flip_groups=0, n_runs=1800, sizes=np.full(600, 3), val_mean=means)
    return pred, told, truth, res


def test_config_factor_recovers_what_the_prediction_leaves_beyond_the_seed_noise():
    from surrobench.surrogate.noise import CONFIG_BINS, CONFIG_SCALE, fit_config_factor

    rng = np.random.default_rng(1)
    size = lambda level: 0.1 + 0.4 * level  # what a config adds grows with its error: 0.3 to 0.4 here
    pred, told, truth, res = _planted_config_noise(size, size)
    factor, levels, lower, upper, facts = fit_config_factor(pred, truth, res)
    assert factor.shape == (50, 1) and np.sqrt((factor[24] ** 2).sum()) == pytest.approx(1.0)
    assert np.allclose(factor[:, 0], factor[0, 0], rtol=0.1)  # a shift: every output alike
    assert facts["seed_sd"] == pytest.approx(0.15, rel=0.05) and facts["held"] > 0.8
    assert len(levels) == CONFIG_BINS and np.all(np.diff(levels) > 0)
    expected = CONFIG_SCALE * size(levels)  # the planted size at each bin's level, scaled
    np.testing.assert_allclose(lower, expected, atol=0.04)
    np.testing.assert_allclose(upper, expected, atol=0.04)
    # the scale is a factor on both halves
    _, _, lower2, upper2, _ = fit_config_factor(pred, truth, res, scale=2 * CONFIG_SCALE)
    np.testing.assert_allclose(lower2, 2 * lower)
    np.testing.assert_allclose(upper2, 2 * upper)
    # nothing beyond the seed noise: refused
    with pytest.raises(ValueError, match="no larger than the seed noise"):
        fit_config_factor(pred, told + rng.normal(0.0, 0.05, truth.shape), res)
    with pytest.raises(ValueError, match="needs at least 100 runs"):
        fit_config_factor(pred[:20], truth[:20], res)
    with pytest.raises(ValueError, match="scale must be a number > 0"):
        fit_config_factor(pred, truth, res, scale=0.0)


def test_config_factor_sizes_the_better_and_the_worse_half_apart():
    """Residuals skewed as flowers17's (far more configs run much worse than predicted than much better):
    the half of configs better than predicted gets the smaller size. Without seed noise each half is
    recovered; with it the quadrature leaves them nearer each other (the documented bias)."""
    from surrobench.surrogate.noise import fit_config_factor

    lower_sd, upper_sd = (lambda e: 0.1 + 0.0 * e), (lambda e: 0.5 + 0.0 * e)
    pred, told, truth, res = _planted_config_noise(lower_sd, upper_sd, seed_sd=0.01)
    _, levels, lower, upper, _ = fit_config_factor(pred, truth, res, scale=1.0)
    np.testing.assert_allclose(lower, 0.1, atol=0.03)
    np.testing.assert_allclose(upper, 0.5, atol=0.06)
    pred, told, truth, res = _planted_config_noise(lower_sd, upper_sd, seed_sd=0.15)
    _, levels, lower, upper, _ = fit_config_factor(pred, truth, res, scale=1.0)
    assert np.all(upper > lower + 0.15)
    assert 0.1 < np.mean(lower) < 0.25 and 0.35 < np.mean(upper) < 0.5  # pulled toward each other


def test_config_noise_is_one_offset_per_config_kept_in_files(tmp_path):
    from surrobench.cli import CONFIG_NOISES as CLI_CONFIG
    from surrobench.surrogate import fit_surrogate, load_surrogate, save_surrogate
    from surrobench.surrogate.noise import CONFIG_NOISES

    assert CLI_CONFIG == CONFIG_NOISES
    logs = synthetic_logs(tmp_path / "logs")
    with pytest.raises(ValueError, match="config_noise: must be one of none, unexplained, got 'some'"):
        fit_surrogate(logs, grid="quick", config_noise="some")
    logs = synthetic_logs(tmp_path / "shifted", config_shift=0.5)  # each config shifted by what they do not say
    s = fit_surrogate(logs, grid="quick", plot=False, config_noise="unexplained")
    assert s.noise.config_noise == "unexplained" and len(s.manifest["noise"]["config_factor"]) == 50
    assert "offset per config" in s.manifest["noise"]["process"]
    assert re.search(r"plus each config's own offset .* logit-scale sd at the final epoch \(better / worse half\) "
                     r"(0\.\d{3}/0\.\d{3} at error 0\.\d\d(, )?)+", s.quality["seed_noise"]["note"])
    assert "the better and the worse half apart" in s.manifest["noise"]["process"]
    again = load_surrogate(save_surrogate(s, tmp_path / "s"))
    assert again.noise == s.noise
    keys = np.array([123, 456, 123], dtype=np.uint64)
    levels, sds = again.noise.config_levels, again.noise.config_sds
    assert max(sds) > 0
    offsets = again.noise.config_offsets(keys, np.full(3, levels[int(np.argmax(sds))]))
    np.testing.assert_array_equal(offsets[0], offsets[2])  # a pure function of the config and its error
    assert not np.allclose(offsets[0], offsets[1])
    for inside, beyond in ((levels[0], levels[0] - 0.1), (levels[-1], levels[-1] + 0.1)):  # flat beyond the knots
        np.testing.assert_array_equal(again.noise.config_offsets(keys, [inside] * 3),
                                      again.noise.config_offsets(keys, [beyond] * 3))
    # the draws: a config's offset is shared by its seeds; without it the same seeds draw the seed noise alone
    x = np.repeat(np.asarray(features([sample(seed=3)], (3, 16, 16), 17, 680), dtype=float), 300, axis=0)
    seeds = np.arange(300, dtype=np.uint64)
    one = np.full(300, 123, dtype=np.uint64)
    curves = again.predict(x, one, seeds)[0]
    np.testing.assert_array_equal(curves[5:6], again.predict(x[5:6], one[5:6], seeds[5:6])[0])  # alone as in a batch
    bare = replace(again.noise, config_factor=None)
    assert bare.config_noise == "none" and "config_factor" not in bare.to_dict()
    with pytest.raises(ValueError, match="no config noise"):
        bare.config_offsets(keys, np.full(3, 0.6))
    # a file's factor of the wrong shape is refused with one line
    bad = dict(s.manifest["noise"], config_factor=[[0.1, 0.2]] * 7)
    with pytest.raises(ValueError, match="config_factor must be a finite 50 x k matrix"):
        NoiseModel.from_dict(bad)
    with pytest.raises(ValueError, match="config_levels must be increasing errors in"):
        NoiseModel.from_dict(dict(s.manifest["noise"], config_levels=[0.7, 0.5] + [0.9] * (len(levels) - 2)))
    with pytest.raises(ValueError, match="needs config_factor, config_levels and config_sds"):
        NoiseModel.from_dict({k: v for k, v in s.manifest["noise"].items() if k != "config_sds"})
    with pytest.raises(ValueError, match="config_sds_upper must be as many finite sds >= 0 as config_levels"):
        NoiseModel.from_dict(dict(s.manifest["noise"], config_sds_upper=[0.1]))
    # a file of the symmetric form (no config_sds_upper) loads and draws one size for both halves
    symmetric = NoiseModel.from_dict({k: v for k, v in s.manifest["noise"].items() if k != "config_sds_upper"})
    assert symmetric.config_sds_upper is None and "config_sds_upper" not in symmetric.to_dict()


def test_config_noise_moves_every_seed_of_a_config_alike():
    """Drawn through CurveModel.draw with a planted factor: the mean over many seeds of a config is its
    mapped curve plus its offset (the seed noise averages out; the offset does not)."""
    from surrobench.surrogate.model import CurveModel

    factor = np.ones((50, 1))  # a shift, every output alike; 0.5 logit per unit normal at errors up to 0.5
    noise = NoiseModel(0.1, 0.1, 0.5, 0.8, 10, 10, 0, 30, config_factor=tuple(map(tuple, factor)),
                       config_levels=(0.5, 0.9), config_sds=(0.5, 1.0))
    curve = CurveModel.__new__(CurveModel)
    curve.tail, curve.learn_corr, curve.chance_bank = None, 0.0, None
    curve.chance_curve = np.full(50, 0.94)
    n = 4000
    learner = np.full((n, 50), 0.5)
    mix = noise.mixing_matrix(25)
    for key in (7, 8):
        keys = np.full(n, key, dtype=np.uint64)
        drawn = curve.draw(np.ones(n), learner, keys, np.arange(n, dtype=np.uint64), mix, config=noise.config_offsets)
        offset = noise.config_offsets(keys[:1], [0.5])[0]
        np.testing.assert_allclose(logit(drawn).mean(axis=0), offset, atol=0.01)
        plain = curve.draw(np.ones(n), learner, keys, np.arange(n, dtype=np.uint64), mix)
        np.testing.assert_allclose(logit(drawn) - logit(plain), np.broadcast_to(offset, (n, 50)), atol=1e-9)
        # a config drawn at error 0.9 gets twice the offset (sd 1.0 there against 0.5)
        high = curve.draw(np.ones(4), np.full((4, 50), 0.9), keys[:4], np.arange(4, dtype=np.uint64), mix,
                          config=noise.config_offsets)
        low = curve.draw(np.ones(4), np.full((4, 50), 0.9), keys[:4], np.arange(4, dtype=np.uint64), mix)
        np.testing.assert_allclose(logit(high) - logit(low), np.broadcast_to(2 * offset, (4, 50)), atol=1e-9)


def test_config_offsets_of_the_better_and_the_worse_half_have_their_own_sizes():
    factor = np.ones((50, 1))
    noise = NoiseModel(0.1, 0.1, 0.5, 0.8, 10, 10, 0, 30, config_factor=tuple(map(tuple, factor)),
                       config_levels=(0.5, 0.9), config_sds=(0.2, 0.2), config_sds_upper=(0.6, 0.6))
    keys = np.arange(20_000, dtype=np.uint64)
    offsets = noise.config_offsets(keys, np.full(len(keys), 0.7))
    final = offsets[:, 24]
    np.testing.assert_array_equal(offsets, np.repeat(final[:, None], 50, axis=1))  # a shift of the whole curve
    assert np.mean(final < 0) == pytest.approx(0.5, abs=0.02)
    assert np.sqrt(np.mean(final[final < 0] ** 2)) == pytest.approx(0.2, rel=0.03)
    assert np.sqrt(np.mean(final[final > 0] ** 2)) == pytest.approx(0.6, rel=0.03)
    assert noise.config_variance() == pytest.approx(0.5 * (0.2**2 + 0.6**2))
    # without the upper sizes, one size for both halves from the same normals: the lower half is unchanged
    symmetric = replace(noise, config_sds_upper=None)
    same = symmetric.config_offsets(keys, np.full(len(keys), 0.7))[:, 24]
    np.testing.assert_allclose(same[final < 0], final[final < 0])
    np.testing.assert_allclose(same[final > 0], final[final > 0] / 3)
    assert symmetric.config_variance() == pytest.approx(0.2**2)
    assert replace(noise, config_factor=None).config_variance() == 0.0
