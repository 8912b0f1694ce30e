"""Training data of a surrogate: the usable runs of a logs directory as aligned arrays.

A run serves the learning-curve models when it recorded all 25 epochs with status ``ok``
or ``diverged`` (a diverged run's filled chance-level epochs are its real outcome). One
run per (config, seed) is kept: a run re-timed alone (``plan.retime``) repeats the seed of
an earlier run, so it serves the runtime model but not the curves a second time. The
runtime model uses runs that had their device alone (``jobs_on_device == 1``), and of a
diverged run only the epochs with a recorded time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..datasets import info as dataset_info
from ..logs import iter_records
from ..space import MAX_EPOCH, config_id, encode, validate

__all__ = ["RunData", "load_run_data", "runs_hash", "pick_device"]

USABLE_STATUS = ("ok", "diverged")


def _floats(values: list, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    for i, v in enumerate(values[:n]):
        if v is not None:
            out[i] = float(v)
    return out


@dataclass
class RunData:
    """Aligned per-run arrays (``n`` runs x 25 epochs where two-dimensional)."""

    dataset: str
    configs: list[dict[str, Any]]
    config_ids: np.ndarray
    seeds: np.ndarray
    keys: np.ndarray
    plan_seeds: np.ndarray  # the run's plan seed (-1 where the record names none)
    devices: np.ndarray
    alone: np.ndarray  # jobs_on_device == 1
    curve_run: np.ndarray  # serves the learning-curve models
    val: np.ndarray
    test: np.ndarray
    train_time: np.ndarray  # NaN where not recorded
    eval_time: np.ndarray
    wall_time: np.ndarray  # seconds of the whole run (NaN if not recorded)
    data_hash: str

    def __len__(self) -> int:
        return len(self.config_ids)

    def encoded(self) -> np.ndarray:
        return encode(self.configs, inactive=np.nan)

    def subset(self, mask: np.ndarray) -> "RunData":
        mask = np.asarray(mask)
        pick = np.flatnonzero(mask) if mask.dtype == bool else mask
        return RunData(
            dataset=self.dataset,
            configs=[self.configs[i] for i in pick],
            data_hash=self.data_hash,
            **{
                name: getattr(self, name)[pick]
                for name in (
                    "config_ids", "seeds", "keys", "plan_seeds", "devices", "alone", "curve_run",
                    "val", "test", "train_time", "eval_time", "wall_time",
                )
            },
        )


def runs_hash(records: list[dict[str, Any]]) -> str:
    """sha256 over the canonical JSON of the records, sorted: the identity of a training set."""
    lines = sorted(json.dumps({k: v for k, v in r.items() if k != "_file"}, sort_keys=True, separators=(",", ":"))
                   for r in records)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def _usable(rec: dict[str, Any]) -> bool:
    curve = rec.get("curve") or {}
    return rec.get("status") in USABLE_STATUS and len(curve.get("val_error", [])) >= 1


def load_run_data(path: str | os.PathLike, dataset: str | None = None) -> RunData:
    """The usable runs under ``path`` (a logs file or directory) for one dataset."""
    records = [r for r in iter_records(path)]
    datasets = Counter(r.get("dataset") for r in records)
    if not records:
        raise ValueError(f"logs: {path} holds no run records (every line skipped, or none there)")
    if dataset is None:
        if len(datasets) != 1:
            found = ", ".join(f"{d} ({n} runs)" for d, n in sorted(datasets.items(), key=str)) or "none"
            raise ValueError(f"dataset: {path} holds runs of several or no datasets ({found}); pass --dataset")
        dataset = next(iter(datasets))
    dataset_info(dataset)
    records = [r for r in records if r.get("dataset") == dataset and _usable(r)]
    if not records:
        raise ValueError(f"logs: {path} holds no usable runs (status ok or diverged) of dataset {dataset!r}")
    # Retimed runs last, then by key: the first run of each (config, seed) serves the curves.
    records.sort(key=lambda r: (bool((r.get("plan") or {}).get("retime", False)), str(r.get("key")), r.get("seed", 0)))
    seen: set[tuple[str, int]] = set()
    rows: dict[str, list] = {k: [] for k in ("configs", "config_ids", "seeds", "keys", "plan_seeds", "devices", "alone",
                                             "curve_run",
                                             "val", "test", "train_time", "eval_time", "wall_time")}
    for rec in records:
        cfg = validate(rec["config"])
        cid = config_id(cfg)
        if rec.get("config_id") not in (None, cid):
            raise ValueError(
                f"logs: run {rec.get('key')} has config_id {rec.get('config_id')} but its config hashes to {cid}"
            )
        curve = rec["curve"]
        full = len(curve.get("val_error", [])) == MAX_EPOCH and len(curve.get("test_error", [])) == MAX_EPOCH
        pair = (cid, int(rec.get("seed", 0)))
        serves_curve = full and pair not in seen
        if serves_curve:
            seen.add(pair)
        rows["configs"].append(cfg)
        rows["config_ids"].append(cid)
        rows["seeds"].append(int(rec.get("seed", 0)))
        rows["keys"].append(str(rec.get("key")))
        plan = rec.get("plan")
        plan_seed = plan.get("seed") if isinstance(plan, dict) else None
        rows["plan_seeds"].append(int(plan_seed) if isinstance(plan_seed, int) and not isinstance(plan_seed, bool) else -1)
        rows["devices"].append(str(rec.get("device")))
        rows["alone"].append(rec.get("jobs_on_device") == 1)
        rows["curve_run"].append(serves_curve)
        wall = rec.get("wall_time")
        rows["wall_time"].append(float(wall) if isinstance(wall, (int, float)) else np.nan)
        for name, src in (("val", "val_error"), ("test", "test_error"), ("train_time", "train_time"),
                          ("eval_time", "eval_time")):
            rows[name].append(_floats(curve.get(src, []), MAX_EPOCH))
    arrays = {k: np.asarray(v) for k, v in rows.items() if k != "configs"}
    return RunData(dataset=dataset, configs=rows["configs"], data_hash=runs_hash(records), **arrays)


def pick_device(data: RunData, device: str | None = None) -> str:
    """The device whose clock the runtime model uses: ``device`` or the one with most lone runs."""
    timed = data.alone & np.isfinite(data.train_time).any(axis=1)
    counts = Counter(data.devices[timed].tolist())
    if device is not None:
        if counts.get(device, 0) == 0:
            known = ", ".join(f"{d!r} ({n})" for d, n in counts.most_common()) or "none"
            raise ValueError(f"device: no run had {device!r} alone; devices with lone runs: {known}")
        return device
    if not counts:
        raise ValueError("logs: no run had its device alone (jobs_on_device == 1); the runtime model needs some")
    best = max(counts.values())
    return sorted(d for d, n in counts.items() if n == best)[0]
