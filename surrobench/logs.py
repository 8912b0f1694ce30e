"""Reading training logs: JSON-lines files, one finished run per line.

A line torn by a killed collector is skipped with a warning; it never hides the lines
before it. Every complete record is checked once, here, against the record schema
(:func:`check_record`); one that fails is skipped with an :class:`InvalidRecordWarning`
``FILE:LINE: field: problem``, so no later stage (a summary, a fit) ever sees it.
:func:`read_logs` turns a file or a directory into one tidy table, a row per run x epoch,
with the config as ``config_<name>`` columns.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .space import HYPERPARAMETERS, MAX_EPOCH, MIN_EPOCH, NAMES, config_id, validate

__all__ = [
    "log_files",
    "iter_records",
    "read_logs",
    "read_runs",
    "coverage",
    "summarize",
    "format_summary",
    "curve_sample",
    "check_record",
    "TornLineWarning",
    "InvalidRecordWarning",
    "STATUSES",
]

CURVE_KEYS = ("train_loss", "train_acc", "val_error", "test_error", "train_time", "eval_time")
STATUSES = ("ok", "diverged", "error", "oom")


class TornLineWarning(UserWarning):
    """A log line that is not a complete JSON record (e.g. a collector killed mid-write)."""


class InvalidRecordWarning(TornLineWarning):
    """A complete JSON line that is no valid run record; the message is ``FILE:LINE: field: problem``."""


class _Invalid(ValueError):
    pass


def _int(rec: dict, field: str, low: int, high: float = math.inf, *, required: bool = True, within: str = "") -> None:
    value = rec.get(field)
    if value is None:
        if required:
            raise _Invalid(f"{within}{field}: missing")
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        span = f"in {low}..{high}" if high != math.inf else f">= {low}"
        raise _Invalid(f"{within}{field}: must be an int {span}, got {value!r:.60}")


def _text(rec: dict, field: str, *, required: bool = True) -> None:
    if field not in rec or rec[field] is None:
        if required:
            raise _Invalid(f"{field}: missing")
        return
    if not isinstance(rec[field], str) or (required and not rec[field]):
        raise _Invalid(f"{field}: must be {'a non-empty' if required else 'a'} string, got {rec[field]!r:.60}")


_CURVE_RANGE = {"train_acc": (0.0, 1.0), "val_error": (0.0, 1.0), "test_error": (0.0, 1.0)}


def _curve(rec: dict) -> None:
    curve = rec.get("curve")
    if not isinstance(curve, dict):
        raise _Invalid(f"curve: must be an object of per-epoch lists, got {curve!r:.60}")
    for key in CURVE_KEYS:
        if not isinstance(curve.get(key, []), list):
            raise _Invalid(f"curve.{key}: must be a list, got {curve[key]!r:.60}")
    n = len(curve.get("val_error", []))
    for key in CURVE_KEYS:
        values = curve.get(key, [])
        if len(values) > rec["epochs"]:
            raise _Invalid(f"curve.{key}: {len(values)} values for {rec['epochs']} epochs")
        if key in curve and len(values) != n:
            raise _Invalid(f"curve.{key}: {len(values)} values, curve.val_error has {n}")
        low, high = _CURVE_RANGE.get(key, (0.0, math.inf))
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and low <= v <= high):
                where = f"[{low:g}, {high:g}]" if high != math.inf else f">= {low:g}"
                raise _Invalid(f"curve.{key}[{i}]: must be a finite number in {where} or null, got {v!r:.60}")


def check_record(rec: Any) -> dict[str, Any]:
    """Raise ``ValueError("field: problem")`` unless ``rec`` is a run record of the collector's
    schema: the fields every stage reads, of the right types and ranges, the config valid and
    matching its ``config_id``, curve values finite (errors and accuracy in [0, 1]); returns
    ``rec`` with its config in canonical form."""
    if not isinstance(rec, dict):
        raise _Invalid(f"record: must be a JSON object, got {type(rec).__name__}")
    _int(rec, "schema", 1, required=False)
    _text(rec, "dataset")
    _text(rec, "key")
    if not isinstance(rec.get("config"), dict):
        raise _Invalid(f"config: must be an object of hyperparameters, got {rec.get('config')!r:.60}")
    try:
        config = validate(rec["config"])
    except ValueError as exc:
        raise _Invalid(f"config.{exc}") from None
    if rec.get("config_id") is not None and rec["config_id"] != config_id(config):
        raise _Invalid(f"config_id: {rec['config_id']!r:.40} but the config hashes to {config_id(config)}")
    _int(rec, "seed", 0)
    _int(rec, "epochs", MIN_EPOCH, MAX_EPOCH)
    if rec.get("status") not in STATUSES:
        raise _Invalid(f"status: must be one of {', '.join(STATUSES)}, got {rec.get('status')!r:.60}")
    _curve(rec)
    _int(rec, "n_params", 0, required=False)
    _int(rec, "jobs_on_device", 1, required=False)
    for field in ("device", "device_type", "message", "host"):
        _text(rec, field, required=False)
    wall = rec.get("wall_time")
    if wall is not None and (isinstance(wall, bool) or not isinstance(wall, (int, float)) or not (math.isfinite(wall) and wall >= 0)):
        raise _Invalid(f"wall_time: must be a finite number >= 0 or null, got {wall!r:.60}")
    plan = rec.get("plan")
    if plan is not None:
        if not isinstance(plan, dict):
            raise _Invalid(f"plan: must be an object, got {plan!r:.60}")
        if not isinstance(plan.get("retime", False), bool):
            raise _Invalid(f"plan.retime: must be true or false, got {plan.get('retime')!r:.60}")
        for field in ("seed", "index", "replicate"):
            _int(plan, field, 0, required=False, within="plan.")
    return {**rec, "config": config}


def log_files(path: str | os.PathLike) -> list[Path]:
    """The ``*.jsonl`` files of a file or (recursively) a directory, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"logs: {path} is neither a file nor a directory")
    return sorted(path.rglob("*.jsonl"))


def iter_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield every complete, valid run record under ``path`` (see :func:`check_record`); warn
    about and skip torn lines (:class:`TornLineWarning`) and invalid records
    (:class:`InvalidRecordWarning`)."""
    for file in log_files(path):
        with open(file, "rb") as f:
            for lineno, raw in enumerate(_lines(f), 1):
                if raw is None:
                    warnings.warn(f"{file}:{lineno}: record: longer than {MAX_LINE_BYTES} bytes, no run record",
                                  InvalidRecordWarning, stacklevel=2)
                    continue
                if not raw.strip():
                    continue
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("no line end")
                    rec = json.loads(raw, parse_constant=_no_constant)
                except (ValueError, RecursionError):
                    warnings.warn(f"{file}:{lineno}: skipping a torn or invalid log line", TornLineWarning, stacklevel=2)
                    continue
                try:
                    rec = check_record(rec)
                except _Invalid as exc:
                    warnings.warn(f"{file}:{lineno}: {exc}", InvalidRecordWarning, stacklevel=2)
                    continue
                rec["_file"] = str(file)
                yield rec


MAX_LINE_BYTES = 4 * 2**20  # a run record is a few kB


def _lines(f) -> Iterator[bytes | None]:
    """The lines of a binary file, each read with a bounded buffer; ``None`` for a line past
    ``MAX_LINE_BYTES`` (the rest of which is skipped in chunks, never held)."""
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = f.readline(2**20)
            yield None
            continue
        yield line


def _no_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _incomplete(rec: dict[str, Any]) -> bool:
    curve = rec.get("curve", {})
    n = rec.get("epochs", 0)
    return rec.get("status") == "ok" and any(len(curve.get(k, [])) != n for k in CURVE_KEYS)


def _plan_name(plan: dict[str, Any]) -> str:
    """A run's plan as ``"<kind> <seed>"`` ("random 5", "optimizers 6", "calibrate 0"), or "none"."""
    if "seed" not in plan:
        return "none"
    return f"{plan.get('kind') or 'random'} {plan['seed']}"


def read_runs(path: str | os.PathLike) -> pd.DataFrame:
    """One row per run: identity, status, device, timing, size and ``config_<name>`` columns
    (integer and boolean hyperparameters as pandas' nullable ``Int64`` and ``boolean``, NA
    where inactive, so that a row's non-NA values are a valid config)."""
    rows = []
    for rec in iter_records(path):
        plan = rec.get("plan") or {}
        row = {
            "key": rec.get("key"),
            "dataset": rec.get("dataset"),
            "config_id": rec.get("config_id"),
            "seed": rec.get("seed"),
            "epochs": rec.get("epochs"),
            "status": rec.get("status"),
            "device": rec.get("device"),
            "device_type": rec.get("device_type"),
            "jobs_on_device": rec.get("jobs_on_device"),
            "retime": bool(plan.get("retime", False)),
            "plan": _plan_name(plan),
            "n_params": rec.get("n_params"),
            "n_recorded": len(rec["curve"].get("val_error", [])),
            "incomplete": _incomplete(rec),
            "wall_time": rec.get("wall_time"),
            "file": rec["_file"],
        }
        for name in NAMES:
            row[f"config_{name}"] = rec["config"].get(name)
        rows.append(row)
    runs = pd.DataFrame(rows)
    if not runs.empty:  # integers and booleans stay so (NA where inactive): a row rebuilds a valid config
        runs = runs.astype(_CONFIG_DTYPES)
    return runs


_CONFIG_DTYPES = {
    f"config_{hp.name}": "boolean" if hp.choices == (False, True) else "float64" if hp.kind == "float" else "Int64"
    for hp in HYPERPARAMETERS
}


def read_logs(path: str | os.PathLike) -> pd.DataFrame:
    """One tidy row per run x epoch (``epoch`` 1-based) with the curve's values and the config."""
    frames = []
    for rec in iter_records(path):
        curve = rec["curve"]
        n = len(curve.get("val_error", []))
        if n == 0:
            continue
        frame = {
            "key": [rec.get("key")] * n,
            "dataset": rec.get("dataset"),
            "config_id": rec.get("config_id"),
            "seed": rec.get("seed"),
            "status": rec.get("status"),
            "device": rec.get("device"),
            "jobs_on_device": rec.get("jobs_on_device"),
            "retime": bool((rec.get("plan") or {}).get("retime", False)),
            "n_params": rec.get("n_params"),
            "epoch": np.arange(1, n + 1),
        }
        for k in CURVE_KEYS:
            values = curve.get(k, [])
            frame[k] = np.array([np.nan if v is None else v for v in values] + [np.nan] * (n - len(values)), float)
        for name in NAMES:
            frame[f"config_{name}"] = rec["config"].get(name, np.nan)
        frames.append(pd.DataFrame(frame))
    if not frames:
        cols = ["key", "dataset", "config_id", "seed", "status", "device", "jobs_on_device", "retime", "n_params", "epoch"]
        return pd.DataFrame(columns=cols + list(CURVE_KEYS) + [f"config_{n}" for n in NAMES])
    return pd.concat(frames, ignore_index=True)


_BATCH_MAX = int(dict(zip(NAMES, HYPERPARAMETERS))["batch_size"].upper)


def _decade(batch_size: float) -> str:
    if not (isinstance(batch_size, (int, float, np.number)) and batch_size >= 1):
        return "unknown"
    k = int(np.floor(np.log10(batch_size)))
    return f"{10**k}-{min(10 ** (k + 1) - 1, _BATCH_MAX)}"


def _decade_order(labels: pd.Index) -> pd.Index:
    return labels.map(lambda t: int(t.split("-")[0]) if t[0].isdigit() else np.inf)


def coverage(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Runs per network depth, batch-size decade, status and device: one column per dataset.

    ``runs`` is a :func:`read_runs` table. Keys: ``depth`` (index n_conv_l, n_fc_l),
    ``batch_size`` (decades 1-9, 10-99, 100-512), ``status`` and ``device``. Every run
    counts, re-timed ones included; cells without runs hold 0; a record without the value
    counts as NA (``unknown`` for the batch size).
    """
    if runs.empty:
        return {k: pd.DataFrame() for k in ("depth", "batch_size", "status", "device")}
    runs = runs.assign(
        n_conv_l=runs["config_n_conv_l"].astype("Int64"),
        n_fc_l=runs["config_n_fc_l"].astype("Int64"),
        batch_size=runs["config_batch_size"].map(_decade),
    )
    out = {}
    for name, index in (("depth", ["n_conv_l", "n_fc_l"]), ("batch_size", ["batch_size"]),
                        ("status", ["status"]), ("device", ["device"])):
        table = runs.groupby(index + ["dataset"], dropna=False).size().unstack("dataset", fill_value=0)
        if name == "batch_size":
            table = table.sort_index(key=_decade_order)
        table.columns.name = "runs"
        out[name] = table
    return out


def summarize(path: str | os.PathLike) -> dict[str, Any]:
    """Counts by dataset, device and status; replicated configs; incomplete records; torn lines
    and invalid records (``FILE:LINE: field: problem``), both skipped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TornLineWarning)
        runs = read_runs(path)
    torn = [str(w.message) for w in caught
            if issubclass(w.category, TornLineWarning) and not issubclass(w.category, InvalidRecordWarning)]
    invalid = [str(w.message) for w in caught if issubclass(w.category, InvalidRecordWarning)]
    out: dict[str, Any] = {"runs": len(runs), "torn_lines": torn, "invalid_records": invalid}
    if runs.empty:
        out.update(by=pd.DataFrame(), replicates=pd.DataFrame(), incomplete=[])
        return out
    by = runs.groupby(["dataset", "device", "status"], dropna=False).size().unstack("status", fill_value=0)
    out["by"] = by
    seeds = runs[~runs["retime"]].groupby(["dataset", "config_id"])["seed"].nunique()
    rep = seeds[seeds > 1]
    out["replicates"] = (
        rep.groupby(level="dataset").agg(configs="size", runs="sum") if len(rep) else pd.DataFrame(columns=["configs", "runs"])
    )
    out["configs"] = runs.groupby("dataset")["config_id"].nunique()
    out["retimed"] = runs[runs["retime"]].groupby("dataset").size()
    out["plans"] = runs.groupby(["dataset", "plan"]).size()
    out["incomplete"] = runs.loc[runs["incomplete"], ["file", "key"]].values.tolist()
    out["status_counts"] = Counter(runs["status"])
    out["coverage"] = coverage(runs)
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of :func:`summarize`."""
    lines = [f"{summary['runs']} runs"]
    if summary["runs"]:
        lines.append("")
        lines.append("runs by dataset, device and status:")
        lines.append(summary["by"].to_string())
        lines.append("")
        lines.append("distinct configs: " + ", ".join(f"{d} {n}" for d, n in summary["configs"].items()))
        rep = summary["replicates"]
        if len(rep):
            lines.append(
                "replicated configs (several seeds): "
                + ", ".join(f"{d} {int(r.configs)} configs / {int(r.runs)} runs" for d, r in rep.iterrows())
            )
        else:
            lines.append("replicated configs (several seeds): none")
        if len(summary["retimed"]):
            lines.append("re-timed alone on their device: " + ", ".join(f"{d} {n}" for d, n in summary["retimed"].items()))
        if "plans" in summary:
            for dataset, per_plan in summary["plans"].groupby(level="dataset"):
                lines.append(f"runs per plan, {dataset}: "
                             + ", ".join(f"{plan} ({n})" for (_, plan), n in per_plan.items()))
        inc = summary["incomplete"]
        lines.append(f"incomplete records: {len(inc)}")
        lines += [f"  {f}: {k}" for f, k in inc[:20]]
        titles = {"depth": "network depth (n_conv_l, n_fc_l)", "batch_size": "batch-size decade",
                  "status": "status", "device": "device"}
        for name, table in summary.get("coverage", {}).items():
            lines += ["", f"coverage: runs per {titles[name]}:", table.to_string()]
    if summary["torn_lines"]:
        lines.append(f"torn lines skipped: {len(summary['torn_lines'])}")
        lines += [f"  {m}" for m in summary["torn_lines"][:20]]
    if summary.get("invalid_records"):
        lines.append(f"invalid records skipped: {len(summary['invalid_records'])}")
        lines += [f"  {m}" for m in summary["invalid_records"][:20]]
    return "\n".join(lines)


def curve_sample(
    path: str | os.PathLike, *, color_by: str = "lr_init", n: int = 200, seed: int = 0
) -> pd.DataFrame:
    """Validation-error curves of up to ``n`` runs per dataset, drawn with ``seed``: the data of a plot.

    One tidy row per run x epoch: ``dataset``, ``key``, ``status``, ``epoch``, ``val_error``
    and ``value``, the run's ``color_by`` hyperparameter (NaN where it is inactive).
    """
    if color_by not in NAMES:
        raise ValueError(f"color_by: unknown hyperparameter {color_by!r} (known: {', '.join(NAMES)})")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: must be a positive int, got {n!r}")
    df = read_logs(path)
    df = df[df["val_error"].notna()]
    rng = np.random.default_rng(seed)
    keep = []
    for _, keys in df.groupby("dataset", sort=True)["key"]:
        uniq = keys.unique()
        keep.extend(uniq[np.sort(rng.permutation(len(uniq))[:n])] if len(uniq) > n else uniq)
    df = df[df["key"].isin(keep)]
    out = df[["dataset", "key", "status", "epoch", "val_error", f"config_{color_by}"]]
    return out.rename(columns={f"config_{color_by}": "value"}).reset_index(drop=True)
