"""Train one configuration with the paper's protocol and record its learning curve (docs/problem.md §2).

Faults are data: a non-finite loss ends the run as ``diverged`` (remaining epochs at
chance-level error), an out-of-memory error is ``oom``, anything else is ``error``.
The data live on the training device for the whole run; clocks are read only after the
device has been synchronised.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import platform
import socket
import time
import traceback
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..datasets import Splits, info, load
from ..model_size import n_params as closed_form_n_params
from ..space import MAX_EPOCH, config_id, validate, validate_epoch
from .network import build_network

__all__ = ["train", "choose_device", "device_name", "CURVE_KEYS", "SCHEMA_VERSION"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CURVE_KEYS = ("train_loss", "train_acc", "val_error", "test_error", "train_time", "eval_time")
EVAL_ACTIVATION_BUDGET = 256 * 2**20  # bytes of the largest activation per evaluation chunk


def choose_device(preferred: str | torch.device | None = None) -> torch.device:
    """``preferred`` if given, else CUDA, then Apple MPS, then the CPU."""
    if preferred is not None:
        try:
            dev = torch.device(preferred)
        except (RuntimeError, TypeError, ValueError):
            dev = None
        if dev is None or dev.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device: expected cpu, cuda, cuda:N or mps, got {preferred!r}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: {preferred!r} requested but CUDA is not available")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device: {preferred!r} requested but MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    """A human-readable device name, e.g. ``cuda:NVIDIA H200`` or ``cpu:<processor model>``."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return f"mps:{platform.machine()}"
    return f"cpu:{_cpu_model()}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _versions() -> dict[str, str]:
    return {
        "surrobench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


class _OnDevice:
    """A dataset's splits as tensors on the training device (created once per process)."""

    def __init__(self, splits: Splits, device: torch.device):
        self.splits = splits
        self.device = device
        t = lambda a: torch.as_tensor(a).to(device)  # noqa: E731
        self.x_train, self.y_train = t(splits.x_train), t(splits.y_train)
        self.x_val, self.y_val = t(splits.x_val), t(splits.y_val)
        self.x_test, self.y_test = t(splits.x_test), t(splits.y_test)


_CACHE: dict[tuple, _OnDevice] = {}


def _data_on(dataset: str | Splits, data_dir, device: torch.device) -> _OnDevice:
    if isinstance(dataset, Splits):
        return _OnDevice(dataset, device)
    key = (dataset, str(data_dir), str(device))
    if key not in _CACHE:
        _CACHE.clear()  # one dataset per process at a time keeps device memory bounded
        _CACHE[key] = _OnDevice(load(dataset, data_dir), device)
    return _CACHE[key]


def _eval_chunk(config: Mapping[str, Any], input_shape) -> int:
    """Largest evaluation batch whose biggest activation stays under the budget."""
    _, h, w = input_shape
    widest = max(int(config[f"n_conv_{i}"]) for i in range(int(config["n_conv_l"])))
    per_example = 4 * widest * h * w
    return max(1, EVAL_ACTIVATION_BUDGET // per_example)


@torch.inference_mode()
def _error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int) -> torch.Tensor:
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), chunk):
        logits = model(x[start : start + chunk])
        wrong += (logits.argmax(1) != y[start : start + chunk]).sum()
    return wrong


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def train(
    config: Mapping[str, Any],
    dataset: str | Splits = "digits",
    *,
    epochs: int = MAX_EPOCH,
    seed: int = 0,
    device: str | torch.device | None = None,
    data_dir=None,
    threads: int | None = None,
    jobs_on_device: int = 1,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``config`` for ``epochs`` epochs and return the run record (a JSON-ready dict).

    ``dataset`` is a dataset name (loaded once per process and kept on the device) or a
    :class:`~surrobench.datasets.Splits`. ``jobs_on_device`` is how many jobs shared the
    device while this one ran; it is recorded so the runtime model can use lone runs only.
    """
    cfg = validate(config)
    if not isinstance(dataset, Splits):
        info(dataset)
    epochs = validate_epoch(epochs, name="epochs")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
    if threads is not None:
        torch.set_num_threads(int(threads))
    dev = choose_device(device)

    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "dataset": dataset.name if isinstance(dataset, Splits) else dataset,
        "config": cfg,
        "config_id": config_id(cfg),
        "seed": int(seed),
        "epochs": epochs,
        "n_params": None,
        "status": "ok",
        "message": "",
        "curve": {k: [] for k in CURVE_KEYS},
        "device": device_name(dev),
        "device_type": dev.type,
        "jobs_on_device": int(jobs_on_device),
        "threads": torch.get_num_threads(),
        "versions": _versions(),
        "host": socket.gethostname(),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_time": None,
    }
    if extra:
        record.update(extra)
    t_start = time.perf_counter()
    try:
        _run(record, cfg, dataset, data_dir, dev, epochs, int(seed))
    except Exception as exc:  # faults are data: the collection goes on
        record["status"] = "oom" if _is_oom(exc) else "error"
        record["message"] = f"{type(exc).__name__}: {exc}"[:2000]
        if record["status"] == "error":
            logger.warning("run %s failed: %s", record["config_id"], traceback.format_exc())
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    record["wall_time"] = round(time.perf_counter() - t_start, 6)
    return record


def _run(record, cfg, dataset, data_dir, dev, epochs, seed) -> None:
    data = _data_on(dataset, data_dir, dev)
    info = data.splits.info
    torch.manual_seed(seed)
    model = build_network(cfg, info.input_shape, info.n_classes)
    n = sum(p.numel() for p in model.parameters())
    expected = closed_form_n_params(cfg, info.input_shape, info.n_classes)
    if n != expected:  # pragma: no cover - guarded by property tests
        raise RuntimeError(f"closed-form parameter count {expected} != torch's {n}")
    record["n_params"] = n
    model.to(dev)
    # One fused kernel per step on CUDA; the multi-tensor path elsewhere. Same update rule.
    fast = {"fused": True} if dev.type == "cuda" else {"foreach": True}
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr_init"], **fast)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    bs = int(cfg["batch_size"])
    n_train = len(data.x_train)
    chunk = _eval_chunk(cfg, info.input_shape)
    curve = record["curve"]
    for epoch in range(1, epochs + 1):
        _sync(dev)
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n_train, generator=gen).to(dev)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        for start in range(0, n_train, bs):
            idx = perm[start : start + bs]
            xb, yb = data.x_train[idx], data.y_train[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
        _sync(dev)
        t1 = time.perf_counter()
        train_loss = float(loss_sum) / n_train
        if not math.isfinite(train_loss):
            _mark_diverged(record, epoch, epochs, info.chance_error, t1 - t0)
            return
        model.eval()
        val_wrong = _error(model, data.x_val, data.y_val, chunk)
        test_wrong = _error(model, data.x_test, data.y_test, chunk)
        val_err = int(val_wrong) / len(data.x_val)  # int() synchronises the device
        test_err = int(test_wrong) / len(data.x_test)
        _sync(dev)
        t2 = time.perf_counter()
        curve["train_loss"].append(round(train_loss, 7))
        curve["train_acc"].append(round(int(correct) / n_train, 7))
        curve["val_error"].append(round(val_err, 7))
        curve["test_error"].append(round(test_err, 7))
        curve["train_time"].append(round(t1 - t0, 6))
        curve["eval_time"].append(round(t2 - t1, 6))


def _mark_diverged(record, epoch: int, epochs: int, chance: float, spent: float) -> None:
    """Keep epochs before ``epoch``; fill the rest at chance-level error, times unknown (None)."""
    record["status"] = "diverged"
    record["message"] = f"non-finite training loss in epoch {epoch} (after {spent:.3f} s)"
    record["diverged_at"] = epoch
    curve = record["curve"]
    for _ in range(epoch, epochs + 1):
        curve["train_loss"].append(None)
        curve["train_acc"].append(None)
        curve["val_error"].append(round(chance, 7))
        curve["test_error"].append(round(chance, 7))
        curve["train_time"].append(None)
        curve["eval_time"].append(None)
