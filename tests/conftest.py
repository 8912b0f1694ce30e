"""Shared fixtures: data locations, tiny configs and synthetic run records (the trainer's schema)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import strategies as st

from surrobench import space

FLOWERS_DIR = Path(__file__).resolve().parents[2] / "shared/data/flowers17"
CURVE_KEYS = ("train_loss", "train_acc", "val_error", "test_error", "train_time", "eval_time")

TINY_CONFIG = {
    "n_conv_l": 1,
    "n_conv_0": 16,
    "n_fc_l": 1,
    "n_fc_0": 32,
    "kernel_size": 3,
    "lr_init": 1e-2,
    "batch_norm": False,
    "batch_size": 64,
    "global_avg_pooling": False,
}
"""Small and quick (34 steps an epoch on digits), yet learns digits well within two epochs."""


def tiny_sample(rng):
    """A stand-in for ``space.sample`` that draws only cheap configs (for collector tests)."""
    return space.validate(
        {
            **TINY_CONFIG,
            "n_conv_0": int(rng.integers(16, 33)),
            "n_fc_0": int(rng.integers(2, 33)),
            "lr_init": float(rng.uniform(1e-3, 1e-2)),
            "batch_size": int(rng.integers(64, 257)),
        }
    )


@st.composite
def configs(draw):
    """Any valid config, drawn hyperparameter by hyperparameter (reaches the domain's edges)."""
    values = {}
    for hp in space.HYPERPARAMETERS:
        if hp.depth_key is not None and values[hp.depth_key] <= hp.depth_index:
            continue
        if hp.kind == "cat":
            values[hp.name] = draw(st.sampled_from(hp.choices))
        elif hp.kind == "int":
            values[hp.name] = draw(st.integers(int(hp.lower), int(hp.upper)))
        else:
            values[hp.name] = draw(st.floats(hp.lower, hp.upper, allow_nan=False))
    return values


def make_record(
    config: dict | None = None,
    *,
    dataset: str = "digits",
    seed: int = 0,
    epochs: int = 3,
    n_recorded: int | None = None,
    status: str = "ok",
    device: str = "cpu:Test CPU",
    key: str | None = None,
    retime: bool = False,
    jobs_on_device: int = 1,
) -> dict:
    """A run record with the fields and types :func:`surrobench.training.trainer.train` writes."""
    cfg = space.validate(config if config is not None else TINY_CONFIG)
    n = epochs if n_recorded is None else n_recorded
    curve = {
        "train_loss": [round(2.0 / (e + 1), 7) for e in range(n)],
        "train_acc": [round(min(0.5 + 0.1 * e, 0.99), 7) for e in range(n)],
        "val_error": [round(max(0.6 - 0.1 * e, 0.05), 7) for e in range(n)],
        "test_error": [round(max(0.65 - 0.1 * e, 0.05), 7) for e in range(n)],
        "train_time": [0.25 + 0.01 * e for e in range(n)],
        "eval_time": [0.05] * n,
    }
    cid = space.config_id(cfg)
    return {
        "schema": 1,
        "dataset": dataset,
        "config": cfg,
        "config_id": cid,
        "seed": seed,
        "epochs": epochs,
        "n_params": 1234,
        "status": status,
        "message": "",
        "curve": curve,
        "device": device,
        "device_type": device.split(":")[0],
        "jobs_on_device": jobs_on_device,
        "threads": 1,
        "versions": {"surrobench": "0.1.0", "python": "3.12.0", "torch": "2.13.0", "numpy": "2.0.0"},
        "host": "testhost",
        "started_at": "2026-01-01T00:00:00+00:00",
        "wall_time": 1.5,
        "key": key or f"{dataset}/e{epochs}/s0/c{cid}/r{seed}{'-alone' if retime else ''}",
        "plan": {"seed": 0, "index": 0, "replicate": 0, "retime": retime},
    }


def load_tool(name: str):
    """The module of ``tools/NAME.py`` (the tools are scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def write_records(path: Path, records) -> Path:
    """Write records as JSON lines (the collector's format) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, separators=(",", ":"), allow_nan=False) + "\n")
    return path


@pytest.fixture
def flowers_dir() -> Path:
    if not all((FLOWERS_DIR / f"{p}_{s}.npy").is_file() for p in "xy" for s in ("train", "val", "test")):
        pytest.skip(f"flowers17 arrays not found in {FLOWERS_DIR}")
    return FLOWERS_DIR


@pytest.fixture
def parallel_csv(monkeypatch) -> list:
    """Tables of more than 10 rows are formatted in blocks by 2 processes (as on a 2-core machine), and
    the returned list collects every path that ``DataFrame.to_csv`` writes in this process, so a test
    can tell a table formatted by the workers from one written here."""
    import pandas as pd

    import surrobench.compare as compare_module

    monkeypatch.setattr(compare_module, "PARALLEL_CSV_ROWS", 10)
    monkeypatch.setattr(compare_module.os, "cpu_count", lambda: 2)
    written_here: list = []
    to_csv = pd.DataFrame.to_csv

    def spy(frame, path=None, *args, **kwargs):
        written_here.append(path)
        return to_csv(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", spy)
    return written_here
