"""Synthetic logs with a known truth, and the surrogate's recovery of it.

The logs are JSON lines in the trainer's record format. Each config has a known final
validation error (a smooth function of lr, batch size, depth and width) or stays at chance
(lr >= 0.05 or batch size < 4, about a third of the space); learning curves decay from
chance towards the final error; seeds add logit-scale AR(1) noise of known sd, epoch
correlation and val-test correlation. Per-epoch seconds follow the network's MACs and
steps; most runs share a GPU (16 jobs, slower clock), some ran alone on a CPU. A few
configs diverge at epoch 3 (chance-level afterwards, times missing).

Other test files import :func:`synthetic_logs` and :func:`fitted` from here.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from surrobench.datasets import DATASETS
from surrobench.model_size import sizes_of_valid as sizes
from surrobench.space import config_id, encode, sample, validate

TRUE_SIGMA = 0.30
TRUE_RHO = 0.80
TRUE_KAPPA = 0.90
INFO = DATASETS["flowers17"]
CHANCE = INFO.chance_error
CPU = "cpu:Synthetic CPU"
GPU = "cuda:Synthetic GPU"


def true_final(cfg) -> float | None:
    """The known final validation error of a config (None: stays at chance)."""
    if cfg["lr_init"] >= 0.05 or cfg["batch_size"] < 4:
        return None
    u = encode([cfg])[0]
    lr = (math.log10(cfg["lr_init"]) + 3.0) / 2.0  # 0 at lr 1e-3
    return float(np.clip(0.3 + 0.25 * lr * lr + 0.08 * (3 - cfg["n_conv_l"]) + 0.15 * (1.0 - u[1]), 0.1, 0.85))


def true_seconds(cfg) -> tuple[float, float]:
    """Seconds per training epoch and per evaluation on the lone CPU."""
    _, macs = sizes(cfg, INFO.input_shape, INFO.n_classes)
    steps = math.ceil(INFO.sizes[0] / cfg["batch_size"])
    return 3e-9 * macs * INFO.sizes[0] + 2e-3 * steps, 1e-9 * macs * (INFO.sizes[1] + INFO.sizes[2]) + 1e-3


def _ar1(rng, n: int) -> np.ndarray:
    out = np.empty(n)
    out[0] = rng.standard_normal()
    for e in range(1, n):
        out[e] = TRUE_RHO * out[e - 1] + math.sqrt(1 - TRUE_RHO**2) * rng.standard_normal()
    return out


def _curves(cfg, rng, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    final = true_final(cfg)
    if final is None:
        flat = np.full(25, round(CHANCE, 7))
        return flat, flat.copy()
    epochs = np.arange(25)
    mean = final + (CHANCE - 0.02 - final) * np.exp(-epochs / 4.0)
    z = _ar1(rng, 25)
    zt = TRUE_KAPPA * z + math.sqrt(1 - TRUE_KAPPA**2) * _ar1(rng, 25)
    logit = np.log(mean) - np.log1p(-mean) + shift
    val = 1.0 / (1.0 + np.exp(-(logit + TRUE_SIGMA * z)))
    test = 1.0 / (1.0 + np.exp(-(logit + 0.02 + TRUE_SIGMA * zt)))
    return np.round(val, 7), np.round(test, 7)


def _record(cfg, seed, key, device, jobs, rng, *, diverge_at=None, retime=False, shift=0.0) -> dict:
    val, test = _curves(cfg, rng, shift)
    per_epoch, per_eval = true_seconds(cfg)
    slow = 3.0 if jobs > 1 else 1.0
    train_t = list(np.round(per_epoch * slow * np.exp(0.05 * rng.standard_normal(25)), 6))
    eval_t = list(np.round(per_eval * slow * np.exp(0.05 * rng.standard_normal(25)), 6))
    status = "ok"
    val, test = val.tolist(), test.tolist()
    if diverge_at is not None:
        status = "diverged"
        for e in range(diverge_at - 1, 25):
            val[e] = test[e] = round(CHANCE, 7)
            train_t[e] = eval_t[e] = None
    return {
        "schema": 1, "dataset": "flowers17", "config": cfg, "config_id": config_id(cfg), "seed": seed, "epochs": 25,
        "n_params": sizes(cfg, INFO.input_shape, INFO.n_classes)[0], "status": status, "message": "",
        "curve": {"train_loss": [1.0] * 25, "train_acc": [0.5] * 25, "val_error": val, "test_error": test,
                  "train_time": train_t, "eval_time": eval_t},
        "device": device, "device_type": device.split(":")[0], "jobs_on_device": jobs, "threads": 1,
        "versions": {}, "host": "synthetic", "started_at": "2026-01-01T00:00:00+00:00", "wall_time": 1.0,
        "key": key, "plan": {"seed": 7, "index": 0, "replicate": 0, "retime": retime},
    }


def synthetic_logs(
    directory: Path, *, n_configs: int = 140, n_replicated: int = 24, n_seeds: int = 3, seed: int = 0,
    config_shift: float = 0.0,
) -> Path:
    """Write the synthetic logs (one JSON-lines file) into ``directory`` and return it. ``config_shift``
    gives each config a logit shift of that sd, the same for all its seeds, that its hyperparameters do
    not tell (0: none, the logs as before)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    configs = [validate(c) for c in sample(seed=seed + 1, n=n_configs)]
    learners = [i for i, c in enumerate(configs) if true_final(c) is not None]
    chance = [i for i in range(n_configs) if i not in learners]
    replicated = set(learners[: n_replicated - 4]) | set(chance[:4])
    lines = []
    for i, cfg in enumerate(configs):
        n = n_seeds if i in replicated else 1
        lone = i % 3 == 0
        shift = config_shift * float(np.random.default_rng([seed, i, 99]).standard_normal()) if config_shift else 0.0
        for r in range(n):
            device, jobs = (CPU, 1) if lone and r == 0 else (GPU, 16)
            diverge = 3 if (i % 29 == 5 and n == 1) else None
            lines.append(_record(cfg, 1000 + 17 * i + r, f"synth/c{i}/r{r}", device, jobs, rng, diverge_at=diverge,
                                 shift=shift))
        if i % 10 == 1:  # a few lone GPU re-timings, so --device has a choice
            lines.append(_record(cfg, 1000 + 17 * i, f"synth/c{i}/r0-alone", GPU, 1, rng, retime=True, shift=shift))
    path = directory / "synthetic.jsonl"
    with open(path, "w") as f:
        for rec in lines:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return directory


@functools.lru_cache(maxsize=None)
def fitted():
    """(logs directory, fitted surrogate, its saved directory), fitted once per test session."""
    from surrobench.surrogate import fit_surrogate, save_surrogate

    root = Path(tempfile.mkdtemp(prefix="surrobench-synth-"))
    logs = synthetic_logs(root / "logs")
    # the epoch clock: these tests check its seed properties (every seed its own curve). The default (auto)
    # takes the residual bank on logs with this many reruns, whose draws of a config take one of a few logged
    # reruns' residual curves (its tests: test_surrogate_parts.py)
    surrogate = fit_surrogate(logs, grid="quick", seed=0, name="synthetic-surrogate", noise_time="epoch")
    directory = save_surrogate(surrogate, root / "synthetic-surrogate")
    return logs, surrogate, directory


# ---------------------------------------------------------------------------------------- tests


def test_synthetic_logs_are_what_they_claim(tmp_path):
    from surrobench.logs import read_runs

    runs = read_runs(synthetic_logs(tmp_path))
    assert (runs["status"] == "diverged").sum() >= 2
    assert (runs.groupby("config_id")["seed"].nunique() >= 3).sum() == 24
    assert set(runs.loc[runs["jobs_on_device"] == 1, "device"]) == {CPU, GPU}


def test_ranking_recovered_on_held_out_configs():
    """Tolerance: tau of final-epoch validation error >= 0.6 on held-out configs (truth is learnable)."""
    _, s, _ = fitted()
    card = s.quality
    assert card["final_val_error"]["kendall_tau"] >= 0.6
    assert card["all_epochs_val_error"]["kendall_tau"] >= 0.6
    assert card["learns_vs_chance"]["auc"] >= 0.9
    assert card["final_val_error"]["mae"] <= 0.08


def test_noise_level_recovered():
    """Tolerance: sd within 20 %, epoch and val-test correlations within 0.12 of the truth."""
    _, s, _ = fitted()
    noise = s.noise
    assert abs(noise.sigma_val - TRUE_SIGMA) <= 0.2 * TRUE_SIGMA
    assert abs(noise.sigma_test - TRUE_SIGMA) <= 0.2 * TRUE_SIGMA
    assert abs(noise.rho - TRUE_RHO) <= 0.12
    assert abs(noise.kappa - TRUE_KAPPA) <= 0.12
    assert noise.n_flip_groups == 0


def test_seed_draws_spread_like_reruns():
    """Between-seed sd of final validation error: the draws within 35 % of the measured one."""
    _, s, _ = fitted()
    sn = s.quality["seed_noise"]
    assert sn["measured_sd"] > 0
    assert abs(sn["surrogate_sd"] - sn["measured_sd"]) <= 0.35 * sn["measured_sd"]


def test_seed_draws_spread_like_reruns_in_each_third_of_final_error():
    """The planted noise has one size on the logit scale: the card's thirds of the replicated
    learners, measured and drawn, within 40 % of each other, and the card prints them."""
    from surrobench.surrogate.quality import format_card

    _, s, _ = fitted()
    thirds = s.quality["seed_noise"]["by_final_error"]
    assert sum(thirds["n_configs"]) >= 9 and thirds["edges"] == sorted(thirds["edges"])
    for measured, drawn in zip(thirds["measured_sd"], thirds["surrogate_sd"]):
        assert measured > 0 and abs(drawn - measured) <= 0.4 * measured
    text = format_card(s.manifest)
    assert "configs that learned under every seed, by thirds of their mean final validation error" in text
    line = next(ln for ln in text.splitlines() if "by thirds of their mean final" in ln)
    assert line.count("measured ") == 3 and f"drawn {thirds['surrogate_sd'][2]:.4f}" in line


def test_runtime_uses_lone_runs_of_one_device():
    _, s, _ = fitted()
    rt = s.quality["runtime"]
    assert rt["device"] == CPU  # the device with most lone runs
    assert s.manifest["devices"]["runtime_clock"] == CPU
    assert rt["n_runs"] == len([i for i in range(140) if i % 3 == 0])
    assert rt["seconds"]["r2"] >= 0.8  # on log seconds; the shared-GPU runs (3x slower) are not used
    configs = [validate(c) for c in sample(seed=99, n=40)]
    from surrobench.surrogate.features import features

    x = features(configs, INFO.input_shape, INFO.n_classes, INFO.sizes[0])
    per_epoch, _ = s.runtime.predict(x)
    truth = np.array([true_seconds(c)[0] for c in configs])
    assert np.median(np.abs(np.log(per_epoch / truth))) < math.log(1.6)


def test_device_option_picks_another_clock(tmp_path):
    from surrobench.surrogate import fit_surrogate

    logs, _, _ = fitted()
    s = fit_surrogate(logs, grid="quick", device=GPU, holdout=0.5, plot=False)
    assert s.manifest["devices"]["runtime_clock"] == GPU
    assert s.quality["runtime"]["n_runs"] == len([i for i in range(140) if i % 10 == 1])
    with pytest.raises(ValueError, match="no run had 'tpu:x' alone"):
        fit_surrogate(logs, grid="quick", device="tpu:x")


def test_quality_card_states_its_protocol_and_verdict():
    from surrobench.surrogate import format_card

    _, s, _ = fitted()
    text = format_card(s.manifest)
    assert "held out from fitting" in text
    assert "the surrogate predicts a fresh rerun" in text
    assert "rests on" in text and CPU in text
    nc = s.quality["noise_ceiling"]
    assert nc["n_configs"] == 24
    assert nc["rerun"]["final_val_error"]["kendall_tau"] is not None
    assert s.parity_png.startswith(b"\x89PNG")
    assert s.manifest["tuning"]["curves"]["params"]["n_rounds"] in (40, 80)
