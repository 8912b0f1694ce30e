"""Faithful simulated runs: draws that are outcomes, tails that match, clocks from physics.

Each truth is planted: a flip rate (seed correlation of the learn decision), tails that a
shrinking model compresses, a clock that is exactly linear in the work terms. Each test
also shows that the check it makes would catch the wrong model.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from surrobench.space import sample, validate
from surrobench.surrogate.clock import EVAL_TERMS, TRAIN_TERMS, fit_clock, work_terms
from surrobench.surrogate.features import features
from surrobench.surrogate.fit import fit_tail_map
from surrobench.surrogate.noise import (
    expected_flip_rate,
    fit_learn_corr,
    flip_share,
    learn_uniforms,
    logit,
    sigmoid,
    standard_normals,
)
from surrobench.surrogate.quality import distribution

from test_surrogate_synth import CHANCE, CPU, INFO, fitted, true_seconds

N_TRAIN, N_EVAL = INFO.sizes[0], INFO.sizes[1] + INFO.sizes[2]


def _x(n: int, seed: int) -> np.ndarray:
    return features(sample(seed=seed, n=n), INFO.input_shape, INFO.n_classes, N_TRAIN)


# ------------------------------------------------------------------------------ the clock


def test_planted_linear_clock_is_recovered_exactly():
    true_train = np.array([0.01, 2e-3, 3e-4, 2e-11, 1e-9])
    true_eval = np.array([5e-3, 1e-3, 4e-11])
    x = _x(40, 1)
    wt, we = work_terms(x, N_TRAIN, N_EVAL)
    clock = fit_clock(x, wt @ true_train, we @ true_eval, n_train=N_TRAIN, n_eval=N_EVAL)
    np.testing.assert_allclose(clock.train, true_train, rtol=1e-5)
    np.testing.assert_allclose(clock.eval, true_eval, rtol=1e-5)
    held = _x(200, 2)
    wt2, we2 = work_terms(held, N_TRAIN, N_EVAL)
    np.testing.assert_allclose(np.exp(clock.log_seconds(held)), np.column_stack([wt2 @ true_train, we2 @ true_eval]),
                               rtol=1e-5)
    assert len(clock.train) == len(TRAIN_TERMS) and len(clock.eval) == len(EVAL_TERMS)


def test_clock_from_20_noisy_lone_runs_ranks_held_out_configs():
    """5 % timing noise, 20 lone runs: log-time R^2 >= 0.95 and tau >= 0.9 on 200 held-out configs."""
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    true_train = np.array([0.02, 5e-4, 5e-5, 6e-11, 5e-9])
    x = _x(20, 3)
    wt, we = work_terms(x, N_TRAIN, N_EVAL)
    clock = fit_clock(x, wt @ true_train * np.exp(0.05 * rng.standard_normal(20)), we @ [0.01, 1e-3, 2e-11],
                      n_train=N_TRAIN, n_eval=N_EVAL)
    held = _x(200, 4)
    truth = np.log(work_terms(held, N_TRAIN, N_EVAL)[0] @ true_train)
    pred = clock.log_seconds(held)[:, 0]
    r2 = 1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert r2 >= 0.95 and kendalltau(pred, truth).statistic >= 0.9
    # A clock that ignores the arithmetic (steps only) fails the same check.
    steps_only = fit_clock(x, wt[:, 1] * 1e-3, we @ [0.01, 1e-3, 2e-11], n_train=N_TRAIN, n_eval=N_EVAL)
    bad = steps_only.log_seconds(held)[:, 0]
    assert 1 - np.sum((truth - bad) ** 2) / np.sum((truth - truth.mean()) ** 2) < 0.95


def test_fitted_surrogate_learns_the_planted_cpu_clock():
    """Synthetic truth: 3e-9 s per example x MAC and 2e-3 s per step on the lone CPU."""
    _, s, _ = fitted()
    clock = s.runtime.clock
    assert s.runtime.device == CPU
    assert clock.train[TRAIN_TERMS.index("examples_x_macs")] == pytest.approx(3e-9, rel=0.15)
    assert clock.train[TRAIN_TERMS.index("steps")] == pytest.approx(2e-3, rel=0.25)
    configs = [validate(c) for c in sample(seed=98, n=60)]
    per_epoch, _ = s.runtime.predict(features(configs, INFO.input_shape, INFO.n_classes, N_TRAIN))
    truth = np.array([true_seconds(c)[0] for c in configs])
    assert np.median(np.abs(np.log(per_epoch / truth))) < math.log(1.15)


def test_clock_refuses_bad_input():
    x = _x(3, 5)
    with pytest.raises(ValueError, match="at least 2 lone runs"):
        fit_clock(x[:1], [1.0], [1.0], n_train=N_TRAIN, n_eval=N_EVAL)
    with pytest.raises(ValueError, match="positive and finite"):
        fit_clock(x, [1.0, -1.0, 2.0], [1.0, 1.0, 1.0], n_train=N_TRAIN, n_eval=N_EVAL)


# ----------------------------------------------------------------------- learns or not


def _planted_flips(r: float, n_configs: int = 3000, n_seeds: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 0.6, n_configs)
    zc = rng.standard_normal(n_configs)
    zs = rng.standard_normal((n_configs, n_seeds))
    from scipy.special import ndtr

    learned = ndtr(math.sqrt(r) * zc[:, None] + math.sqrt(1 - r) * zs) < p[:, None]
    ids = np.repeat(np.arange(n_configs), n_seeds).astype(str)
    return p, learned.ravel(), ids


@pytest.mark.parametrize("r", [0.0, 0.5, 0.9])
def test_planted_seed_correlation_is_recovered(r):
    p, learned, ids = _planted_flips(r)
    flips, n_rep = flip_share(ids, learned)
    fitted_r = fit_learn_corr(p, np.full(len(p), 3), flips)
    assert abs(fitted_r - r) <= 0.08
    # Independent seeds (r = 0) would predict a different flip count whenever r is not 0.
    if r > 0:
        assert expected_flip_rate(p, np.full(len(p), 3), 0.0).sum() > 1.2 * flips


def test_drawn_flips_match_the_expected_rate():
    """The draw's own learn decisions (hash of config and seed) flip at the modelled rate."""
    rng = np.random.default_rng(1)
    n, seeds, r = 4000, 3, 0.6
    p = rng.uniform(0.05, 0.95, n)
    keys = np.arange(n, dtype=np.uint64) * np.uint64(7919) + np.uint64(11)
    decided = np.stack([
        learn_uniforms(keys, standard_normals(keys, np.full(n, s, dtype=np.uint64), 52)[:, 50], r) < p
        for s in range(seeds)
    ], axis=1)
    assert abs(decided.mean() - p.mean()) < 0.015  # every seed learns with probability p
    flips = np.mean(decided.any(axis=1) & ~decided.all(axis=1))
    assert abs(flips - expected_flip_rate(p, np.full(n, seeds), r).mean()) < 0.02
    assert abs(flips - expected_flip_rate(p, np.full(n, seeds), 0.0).mean()) > 0.05


def test_draws_are_outcomes_and_the_mean_is_the_mixture():
    _, s, _ = fitted()
    configs = [validate(c) for c in sample(seed=77, n=600)]
    x = features(configs, INFO.input_shape, INFO.n_classes, N_TRAIN)
    keys = np.array([int(i[:16], 16) for i in (__import__("surrobench").space.config_id(c) for c in configs)],
                    dtype=np.uint64)
    seeds = np.arange(600, dtype=np.uint64)
    drawn, _, _ = s.predict(x, keys, seeds)
    bank = s.curve.chance_bank
    assert bank is not None and len(bank) >= 1
    is_bank = (drawn[:, None, :] == bank[None, :, :]).all(axis=2).any(axis=1)
    p, learner = s.curve.parts(x)
    # A draw that is not a logged chance curve is a learner: never a blend of the two.
    assert abs(np.mean(is_bank) - np.mean(1 - p)) < 0.05
    assert np.mean(drawn[~is_bank, -1] >= CHANCE - 0.05) < 0.05
    mean, _, _ = s.predict(x)
    np.testing.assert_allclose(mean, np.clip(p[:, None] * learner + (1 - p[:, None]) * s.curve.chance_curve, 0, 1))
    # Same (config, seed), same outcome; another seed may differ.
    again, _, _ = s.predict(x[:50], keys[:50], seeds[:50])
    np.testing.assert_array_equal(again, drawn[:50])


# ---------------------------------------------------------------------------------- tails


def test_planted_tails_are_restored_by_the_tail_map():
    """A model that halves every deviation from the mean compresses the draws' tails; the map
    fitted on its out-of-fold predictions restores every quantile within 0.02."""
    rng = np.random.default_rng(2)
    n, sd = 3000, 0.2
    mu = rng.normal(0.0, 0.8, (n, 1)) + np.linspace(1.0, 0.0, 50)[None, :]  # true config logits
    truth = mu + sd * rng.standard_normal((n, 50))  # one seed each
    pred = mu.mean() + 0.5 * (mu - mu.mean()) + 0.15 * rng.standard_normal((n, 1))  # shrunk, noisy
    tail = fit_tail_map(pred[: n // 2], truth[: n // 2], np.full(50, sd))
    held = slice(n // 2, n)
    drawn = tail(pred[held]) + sd * rng.standard_normal((n - n // 2, 50))
    levels = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9]
    gap = np.abs(np.quantile(sigmoid(drawn[:, -1]), levels) - np.quantile(sigmoid(truth[held, -1]), levels))
    assert gap.max() <= 0.02
    unmapped = pred[held] + sd * rng.standard_normal((n - n // 2, 50))
    bad = np.abs(np.quantile(sigmoid(unmapped[:, -1]), levels) - np.quantile(sigmoid(truth[held, -1]), levels))
    assert bad.max() > 0.02
    # Monotone per output: the map never reorders configs.
    order = np.argsort(pred[held][:, 0], kind="stable")
    assert np.all(np.diff(tail(pred[held])[order, 7]) >= 0)


def _skewed_tail(n=4000, sd=0.2, seed=3):
    """Configs whose logits have a short lower tail (a floor, as the best runs of a dataset have), one
    seed each, and a model that shrinks them halfway to the mean and blurs them."""
    rng = np.random.default_rng(seed)
    mu = -1.0 + rng.gamma(2.0, 0.5, (n, 1)) + np.linspace(1.0, 0.0, 50)[None, :]
    truth = mu + sd * rng.standard_normal((n, 50))
    pred = mu.mean() + 0.5 * (mu - mu.mean()) + 0.15 * rng.standard_normal((n, 1))
    return pred, truth, rng


@pytest.mark.parametrize("rounds, matched", [(None, True), (0, False)])
def test_the_tail_map_is_matched_to_the_draws_it_makes_down_to_the_best_runs(monkeypatch, rounds, matched):
    """Narrowing the measured quantiles by the noise's variance restores the spread but not a short
    lower tail: the draws then reach below the best runs. Matched (the default), the draws' quantiles
    equal the measured ones from the best 1 % up; unmatched (no rounds), they are off by 0.1 logit there."""
    import surrobench.surrogate.fit as fit_mod

    if rounds is not None:
        monkeypatch.setattr(fit_mod, "TAIL_ROUNDS", rounds)
    sd = 0.2
    pred, truth, rng = _skewed_tail(sd=sd)
    tail = fit_tail_map(pred, truth, np.full(50, sd))
    levels = [0.01, 0.02, 0.05, 0.5, 0.95, 0.99]
    assert set(levels) <= set(fit_mod.tail_levels(len(pred)))
    drawn = tail(pred)[:, :, None] + sd * rng.standard_normal((len(pred), 50, 8))
    gap = np.abs(np.quantile(drawn[:, -1].ravel(), levels) - np.quantile(truth[:, -1], levels))
    if matched:
        assert gap.max() < 0.03
    else:
        assert gap[0] > 0.08
    order = np.argsort(pred[:, 0], kind="stable")  # monotone: never reorders configs
    assert np.all(np.diff(tail(pred)[order, 7]) > 0)


def test_the_tail_map_is_matched_with_the_noise_the_draws_use():
    """With the noise model of the draws (here one whose size follows the final error's level), the map
    is matched to draws with that noise, which independent noise of one sd would not reproduce."""
    from surrobench.surrogate.model import MAX_EPOCH
    from surrobench.surrogate.noise import NoiseModel

    noise = NoiseModel(0.25, 0.25, 0.6, 0.8, 0, 0, 0, 0, level=0.4, size="by-level", size_level=-2.0,
                       size_wobble=-0.5, size_ref=0.6, size_lo=0.3, size_hi=0.95)
    pred, truth, rng = _skewed_tail(sd=0.0)
    mix = noise.mixing_matrix(MAX_EPOCH)
    eps = rng.standard_normal((len(pred), 50)) @ mix
    truth = truth + noise.resize(eps, sigmoid(truth[:, MAX_EPOCH - 1]))
    sd = np.full(50, 0.25)
    levels = [0.01, 0.05, 0.5, 0.95, 0.99]
    gaps = {}
    for name, model in (("model", noise), ("plain", None)):
        tail = fit_tail_map(pred, truth, sd, noise=model)
        z = np.tile(tail(pred), (8, 1))
        drawn = z + noise.resize(rng.standard_normal(z.shape) @ mix, sigmoid(z[:, MAX_EPOCH - 1]))
        gaps[name] = np.abs(np.quantile(drawn[:, MAX_EPOCH - 1], levels) - np.quantile(truth[:, MAX_EPOCH - 1], levels))
    assert gaps["model"].max() < 0.04 and gaps["plain"].max() > 2 * gaps["model"].max()


def test_distribution_rows():
    final = np.array([0.5, 0.6, 0.7, 0.95, 0.94, 0.941])
    d = distribution(final, 16 / 17)
    assert d["near_chance"] == pytest.approx(0.5)
    assert d["learner_q50"] == pytest.approx(0.6)
    assert d["best_5"] == pytest.approx(np.quantile(final, 0.05))
    assert d["best_1"] == pytest.approx(np.quantile(final, 0.01))


def test_card_reports_draws_out_of_fold():
    _, s, _ = fitted()
    draws = s.quality["draws"]
    logged, drawn = draws["logged"], draws["drawn"]
    # The synthetic truth learns or not by its config alone: the classifier is near certain,
    # so the near-chance share of the draws follows the logs closely, and seeds never flip.
    assert abs(logged["near_chance"] - drawn["near_chance"]) <= 0.05
    assert draws["flips"]["measured"] == 0 and draws["flips"]["drawn"] <= 2
    assert draws["max_gap"] is not None and draws["max_gap"] < 0.1
    from surrobench.surrogate import format_card

    text = format_card(s.manifest)
    assert "seeded draws" in text and "flips" in text and "best 20 %" in text
    dips = draws["dips"]  # learning runs below their final error part-way, logged vs drawn
    assert dips["epochs"] == [5, 9, 13, 19] and len(dips["logged"]) == len(dips["drawn"]) == 4
    assert all(0.0 <= v <= 1.0 for v in dips["logged"] + dips["drawn"])
    assert "below their final error" in text
    old = {**s.manifest, "quality": {**s.quality, "draws": {k: v for k, v in draws.items() if k != "dips"}}}
    assert "below their final error" not in format_card(old)  # cards written before the row still print
    best = draws["dips_best"]  # the same among the best third of runs by their own final error
    assert best["epochs"] == dips["epochs"] and best["share"] == pytest.approx(1 / 3)
    assert all(0.0 <= v <= 1.0 for v in best["logged"] + best["drawn"])
    assert "... the best third of them (by their own final error): 5: " in text
    old = {**s.manifest, "quality": {**s.quality, "draws": {k: v for k, v in draws.items() if k != "dips_best"}}}
    assert "the best third of them" not in format_card(old)
    cut = draws["early_cut"]  # the best runs that an early cut keeps, logged vs drawn
    assert cut["epochs"] == [1, 3, 9] and len(cut["logged"]) == len(cut["drawn"]) == 3
    assert all(0.0 <= v <= 1.0 for v in cut["logged"] + cut["drawn"])
    assert "what an early cut keeps" in text
    old = {**s.manifest, "quality": {**s.quality, "draws": {k: v for k, v in draws.items() if k != "early_cut"}}}
    assert "what an early cut keeps" not in format_card(old)
    tails = draws["tails"]  # the best 1 % of runs' error at low and full fidelity, logged vs drawn
    assert tails["epochs"] == [1, 3, 9, 25] and tails["level"] == 0.01
    assert tails["logged"][-1] == pytest.approx(logged["best_1"])  # all runs' 1 % quantile at the last epoch
    assert all(abs(a - b) < 0.1 for a, b in zip(tails["logged"], tails["drawn"]))
    assert "the best 1 % of runs' validation error (its quantile) at epoch (logged / drawn): 1: " in text
    assert "best 1 % of runs (1 % quantile)" in text
    stripped = {k: v for k, v in draws.items() if k != "tails"}
    stripped["logged"] = {k: v for k, v in logged.items() if k != "best_1"}
    stripped["drawn"] = {k: v for k, v in drawn.items() if k != "best_1"}
    old_text = format_card({**s.manifest, "quality": {**s.quality, "draws": stripped}})
    assert "best 1 %" not in old_text and "best 5 % of runs" in old_text  # cards written before the rows still print


def test_logit_helpers_round_trip():
    p = np.array([0.01, 0.5, 0.99])
    np.testing.assert_allclose(sigmoid(logit(p)), p)


# ------------------------------------------------------------------------------ calibrate


def _calibration_logs(root, *, n_logged: int, jobs: int = 1, seed: int = 0, n_configs: int = 5):
    from surrobench.surrogate.calibrate import spanning_configs
    from surrobench.training.collect import seeded_items
    from test_surrogate_synth import _record

    rng = np.random.default_rng(seed)
    items = seeded_items("calibrate", seed, spanning_configs(n_configs, seed, "flowers17"), source="test")
    directory = root / "flowers17"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "calibrate0.jsonl", "w") as fh:
        for it in items[:n_logged]:
            rec = _record(it.config, it.seed, it.key("flowers17", 3), "cpu:Laptop", jobs, rng)
            rec["plan"] = it.record()
            fh.write(json.dumps(rec) + "\n")
    return root


def test_spanning_configs_are_seeded_and_span_the_work_range():
    from surrobench.surrogate.calibrate import spanning_configs

    a = spanning_configs(20, 3, "flowers17")
    assert a == spanning_configs(20, 3, "flowers17") and a != spanning_configs(20, 4, "flowers17")
    wt, _ = work_terms(features(a, INFO.input_shape, INFO.n_classes, N_TRAIN), N_TRAIN, N_EVAL)
    pool, _ = work_terms(_x(2000, 9), N_TRAIN, N_EVAL)
    for col in (2, 3):  # steps x layers, examples x MACs: from near the pool's 5 % to its 95 % quantile
        assert np.min(wt[:, col]) <= np.quantile(pool[:, col], 0.05)
        assert np.max(wt[:, col]) >= np.quantile(pool[:, col], 0.95)
    with pytest.raises(ValueError, match="5 to 1000 configs"):
        spanning_configs(3, 0, "flowers17")


def test_with_clock_keeps_the_curves_and_learns_the_new_device(tmp_path):
    from surrobench.surrogate.calibrate import with_clock

    _, base, _ = fitted()
    logs = _calibration_logs(tmp_path, n_logged=5, n_configs=5)
    s = with_clock(base, logs / "flowers17")
    assert s.manifest["devices"]["runtime_clock"] == "cpu:Laptop"
    assert s.curve is base.curve
    configs = [validate(c) for c in sample(seed=5, n=50)]
    per_epoch, _ = s.runtime.predict(features(configs, INFO.input_shape, INFO.n_classes, N_TRAIN))
    truth = np.array([true_seconds(c)[0] for c in configs])
    assert np.median(np.abs(np.log(per_epoch / truth))) < math.log(1.3)


def test_calibrate_cli(tmp_path, capsys):
    from surrobench.cli import main

    _, _, base_dir = fitted()
    logs = _calibration_logs(tmp_path / "logs", n_logged=5)
    out = tmp_path / "laptop"
    common = ["calibrate", "--no-train", "--base", str(base_dir), "--logs", str(logs), "--n-configs", "5",
              "--epochs", "3"]
    assert main([*common, "--out", str(out)]) == 0
    assert "cpu:Laptop" in capsys.readouterr().out
    import surrobench

    assert surrobench.load(out).describe()["runtime_device"] == "cpu:Laptop"

    # Bad input: one line, exit 2, nothing written.
    few = _calibration_logs(tmp_path / "few", n_logged=3)
    assert main([*common[:-4], "--logs", str(few), "--n-configs", "5", "--epochs", "3",
                 "--out", str(tmp_path / "x1")]) == 2
    assert "a clock needs at least 5" in capsys.readouterr().err
    shared = _calibration_logs(tmp_path / "shared", n_logged=5, jobs=16)
    assert main([*common[:-4], "--logs", str(shared), "--n-configs", "5", "--epochs", "3",
                 "--out", str(tmp_path / "x2")]) == 2
    assert "alone" in capsys.readouterr().err
    bad = tmp_path / "configs.json"
    bad.write_text(json.dumps([{"n_conv_l": 9}] * 5))
    assert main([*common, "--configs", str(bad), "--out", str(tmp_path / "x3")]) == 2
    err = capsys.readouterr().err
    assert "config 0" in err and "n_conv_l" in err and len(err.strip().splitlines()) == 1
    assert main([*common[:-4], "--logs", str(logs), "--n-configs", "3", "--out", str(tmp_path / "x4")]) == 2
    assert "5 to 1000" in capsys.readouterr().err
    assert not any((tmp_path / f"x{i}").exists() for i in range(1, 5))


# ------------------------------------------------------------------------ shipped surrogates


def test_shipped_default_meets_the_draw_goals():
    """The shipped flowers17 card (out of fold): near-chance share within 0.03 of the logs, every
    distribution row within 0.02, the drawn flips' expectation equal to the measured flips."""
    import surrobench

    card = surrobench.load().surrogate.quality
    draws = card["draws"]
    assert abs(draws["logged"]["near_chance"] - draws["drawn"]["near_chance"]) <= 0.03
    assert draws["max_gap"] <= 0.02
    assert draws["flips"]["expected"] == pytest.approx(draws["flips"]["measured"], abs=0.5)


def test_shipped_cpu_clock_keeps_the_default_curves():
    import surrobench

    gpu, cpu = surrobench.load(), surrobench.load("flowers17-cpu")
    assert cpu.describe()["runtime_device"].startswith("cpu:")
    assert gpu.describe()["runtime_device"].startswith("cuda:")
    for cfg in sample(seed=12, n=5):
        a, b = gpu.trajectory(cfg, seed=3), cpu.trajectory(cfg, seed=3)
        assert [r.val_error for r in a] == [r.val_error for r in b]
        assert b[-1].cost > a[-1].cost  # a 2-core CPU is slower than an H200 for every config


def test_quality_without_a_path_prints_the_default_card(capsys):
    from surrobench.cli import main

    assert main(["quality"]) == 0
    out = capsys.readouterr().out
    assert "quality card of surrogate 'flowers17-surrogate'" in out and "seeded draws" in out
    assert main(["quality", "flowers17-cpu"]) == 0
    assert "cpu:AMD EPYC" in capsys.readouterr().out


def test_quality_markdown_prints_the_cards_drawn_and_logged_rows(capsys):
    """The README's table of the card is this command's output: each cell is the card's own number."""
    import copy

    import surrobench
    from surrobench.cli import main
    from surrobench.surrogate import format_summary

    card = surrobench.load().surrogate.quality
    assert main(["quality", "--markdown"]) == 0
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in capsys.readouterr().out.splitlines()[2:]]
    cells = {label: (drawn, logged) for label, drawn, logged in rows}
    tails, noise = card["draws"]["tails"], card["seed_noise"]
    at3 = tails["epochs"].index(3)
    assert cells["best 1 % of runs' validation error at epochs 3 / 9 / 25"][0].startswith(f"{tails['drawn'][at3]:.3f} / ")
    assert cells["the same, best third of the replicated learners"] == (
        f"{noise['by_final_error']['surrogate_sd'][0]:.4f}", f"{noise['by_final_error']['measured_sd'][0]:.4f}")
    cut = card["draws"]["early_cut"]
    assert cells["best 5 % of runs already in the best third at epoch 3"][1] == \
        f"{100 * cut['logged'][cut['epochs'].index(3)]:.1f} %"
    old = copy.deepcopy(card)
    del old["draws"]["early_cut"]  # a card written before the row existed
    with pytest.raises(ValueError, match="written before the rows"):
        format_summary(old)
    assert main(["quality", "--markdown", "--json"]) == 2


def test_a_clock_on_a_schema_1_base_survives_saving(tmp_path):
    """A calibration of a schema-1 surrogate writes schema 2, so the clock is loaded back with it."""
    import copy

    from surrobench.surrogate import load_surrogate, save_surrogate
    from surrobench.surrogate.calibrate import with_clock
    from surrobench.surrogate.model import Surrogate

    _, base, _ = fitted()
    old = copy.deepcopy(base.manifest)
    old["schema_version"] = 1
    for key in ("learns_calibration", "draws"):
        old["models"].pop(key)
    old["models"]["curves"].pop("tail_map")
    v1 = Surrogate(manifest=old, curve=copy.copy(base.curve), runtime=base.runtime, noise=base.noise)
    v1.curve.calibration, v1.curve.tail, v1.curve.chance_bank, v1.curve.learn_corr = (1.0, 0.0), None, None, 0.0
    logs = _calibration_logs(tmp_path, n_logged=5)
    s = with_clock(v1, logs / "flowers17")
    loaded = load_surrogate(save_surrogate(s, tmp_path / "out"))
    x = _x(20, 8)
    np.testing.assert_allclose(loaded.runtime.predict(x)[0], s.runtime.predict(x)[0], rtol=1e-6)
    assert loaded.manifest["schema_version"] == 2


def test_quality_against_puts_two_cards_side_by_side(capsys):
    """`surrobench quality B --against A`: each card's own numbers, B - A for the held-out rows and
    |gap B| - |gap A| for the drawn-against-logged ones; a row one card lacks is n/a."""
    import copy

    import surrobench
    from surrobench.cli import main
    from surrobench.surrogate import format_comparison

    shipped = surrobench.load().surrogate.manifest
    card = shipped["quality"]
    assert main(["quality", "flowers17", "--against", "flowers17-cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A = flowers17-cpu: ") and "\nB = flowers17: " in out
    assert "clocks of different devices: A cpu:AMD EPYC" in out  # the curves are the same, the clocks not
    tau = f"{card['final_val_error']['kendall_tau']:.3f}"
    rows = {line.rsplit(None, 3)[0].strip(): line.split()[-3:] for line in out.splitlines() if line.startswith("  ")}
    assert rows["final-epoch validation error, Kendall tau"] == [tau, tau, "+0.000"]

    better = copy.deepcopy(shipped)
    better["quality"]["final_val_error"]["kendall_tau"] += 0.05
    better["quality"]["seed_noise"]["surrogate_sd"] = card["seed_noise"]["measured_sd"]  # no gap left
    del better["quality"]["draws"]["early_cut"]  # a card written before the row existed
    text = format_comparison(shipped, better, name_a="old", name_b="new")
    lines = {line.rsplit(None, 3)[0].strip(): line.split()[-3:] for line in text.splitlines() if line.startswith("  ")}
    assert lines["final-epoch validation error, Kendall tau"] == [tau, f"{card['final_val_error']['kendall_tau'] + 0.05:.3f}",
                                                                  "+0.050"]
    gap = card["seed_noise"]["surrogate_sd"] - card["seed_noise"]["measured_sd"]
    assert lines["between-seed sd of final error"] == [f"{gap:+.4f}", "+0.0000", f"{-abs(gap):+.4f}"]
    assert lines["best 5 % of runs in the best third at epoch 3 (share)"][1:] == ["n/a", "n/a"]
    md = format_comparison(shipped, better, markdown=True)
    assert "| held out (higher is better; MAE lower) | A | B | B - A |" in md
    assert "| final-epoch validation error, Kendall tau | " + tau in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert all(line.replace("\\|", "").count("|") == 5 for line in table)  # four cells each, |B| escaped

    for argv in (["quality", "--against", "flowers17", "--json"], ["quality", "--against", "no-such-surrogate"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
