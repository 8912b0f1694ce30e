"""The ground-truth collector: a seeded plan of runs, executed in parallel, logged safely.

* Config ``k`` of plan ``S`` is drawn from ``SeedSequence([S, k])``: the same on every
  machine. ``shard=(i, n)`` takes the configs with ``k % n == i``.
* A fraction of configs is trained with several seeds (replicates, for seed noise); another
  sample is re-run alone on its device when several jobs share one (honest timing).
* Each finished run is one JSON line written by the parent process only, to a file of its
  own (flushed and fsynced). Re-running the same command skips the runs already logged in
  the output directory; a killed collector loses only the runs that were in flight.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .._numbers import MAX_JOBS, as_int
from .._paths import check_writable_dir
from .._workers import die_with
from ..datasets import info as dataset_info
from ..datasets import load as load_dataset
from ..logs import iter_records
from ..space import config_id, sample, validate_epoch

__all__ = ["PlanItem", "plan_items", "seeded_items", "collect", "pending_runs", "CollectSummary", "LogWriter",
           "parse_shard", "PlanLock", "MAX_N_CONFIGS", "MAX_REPLICATES", "MAX_SHARDS", "MAX_JOBS", "MAX_SEED"]

logger = logging.getLogger(__name__)

# Ceilings (documented in the README): a plan is drawn whole before the first run starts.
MAX_N_CONFIGS = 100_000
MAX_REPLICATES = 100
MAX_SHARDS = 10_000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class PlanItem:
    """One run of a plan: config ``index`` of plan ``plan_seed``, ``replicate`` j, training ``seed``.

    ``kind`` is ``"random"`` for the seeded random plans; other kinds (``"calibrate"``, a
    device's clock) carry their configs from elsewhere and name it in ``source``.
    """

    plan_seed: int
    index: int
    replicate: int
    config: dict
    seed: int
    retime: bool = False
    kind: str = "random"
    source: str | None = None

    def key(self, dataset: str, epochs: int) -> str:
        tag = "-alone" if self.retime else ""
        plan = f"s{self.plan_seed}" if self.kind == "random" else f"{self.kind}{self.plan_seed}"
        return f"{dataset}/e{epochs}/{plan}/c{self.index}/r{self.replicate}{tag}"

    @property
    def stem(self) -> str:
        """The plan's part of a log file's name."""
        return f"plan{self.plan_seed}" if self.kind == "random" else f"{self.kind}{self.plan_seed}"

    def record(self) -> dict[str, Any]:
        """The ``plan`` field of the run's record."""
        out: dict[str, Any] = {"seed": self.plan_seed, "index": self.index, "replicate": self.replicate,
                               "retime": self.retime}
        if self.kind != "random":
            out.update(kind=self.kind, source=self.source)
        return out


def _checked_replicates(replicate_fraction: float, n_replicates: int) -> int:
    """``n_replicates`` as an int, once both replicate settings of a plan are checked."""
    if not 0.0 <= replicate_fraction <= 1.0:
        raise ValueError(f"replicate_fraction: must lie in [0, 1], got {replicate_fraction}")
    return as_int(n_replicates, "n_replicates", low=1, high=MAX_REPLICATES)


def seeded_items(kind: str, plan_seed: int, configs: list[dict], *, source: str | None = None,
                 replicate_fraction: float = 0.0, n_replicates: int = 3) -> list[PlanItem]:
    """A plan of given configs: config ``k`` runs with the seed drawn from
    ``SeedSequence([plan_seed, k, 1])``, and a seeded ``replicate_fraction`` of the configs (those
    whose draw from ``SeedSequence([plan_seed, k, 4])`` falls below it, the same on every shard)
    also with ``n_replicates - 1`` more seeds (replicate ``j`` from ``SeedSequence([plan_seed, k, 3,
    j])``), right after it. The first run of a config is the same whatever the fraction, so a plan
    drawn without replicates gains only new runs when resumed with them."""
    n_replicates = _checked_replicates(replicate_fraction, n_replicates)
    plan_seed = int(plan_seed)
    out = []
    for k, cfg in enumerate(configs):
        seed = int(np.random.default_rng(np.random.SeedSequence([plan_seed, k, 1])).integers(0, 2**31 - 1))
        out.append(PlanItem(plan_seed, k, 0, dict(cfg), seed, kind=kind, source=source))
        draw = np.random.default_rng(np.random.SeedSequence([plan_seed, k, 4])).random()
        if draw < replicate_fraction:
            for j in range(1, n_replicates):
                more = int(np.random.default_rng(np.random.SeedSequence([plan_seed, k, 3, j])).integers(0, 2**31 - 1))
                out.append(PlanItem(plan_seed, k, j, dict(cfg), more, kind=kind, source=source))
    return out


def retime_items(items: list[PlanItem], retime_fraction: float) -> list[PlanItem]:
    """Lone re-timing runs for a seeded ``retime_fraction`` of a given plan's configs: for each
    first replicate whose draw from ``SeedSequence([plan_seed, index, 2])`` falls below the
    fraction, the same config and seed again with ``retime=True`` (the same on every machine and
    shard, like the random plans' re-timings)."""
    if not 0.0 <= retime_fraction <= 1.0:
        raise ValueError(f"retime_fraction: must lie in [0, 1], got {retime_fraction}")
    if retime_fraction == 0.0:
        return []
    return [replace(it, retime=True) for it in items
            if it.replicate == 0 and not it.retime
            and np.random.default_rng(np.random.SeedSequence([it.plan_seed, it.index, 2])).random() < retime_fraction]


def _config_draw(plan_seed: int, index: int, replicate_fraction: float, n_replicates: int, retime_fraction: float):
    rng = np.random.default_rng(np.random.SeedSequence([int(plan_seed), int(index)]))
    config = sample(rng)
    replicated = rng.random() < replicate_fraction
    retimed = rng.random() < retime_fraction
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=max(n_replicates, 1))]
    return config, replicated, retimed, seeds


def plan_items(
    plan_seed: int,
    n_configs: int,
    *,
    shard: tuple[int, int] = (0, 1),
    replicate_fraction: float = 0.1,
    n_replicates: int = 3,
    retime_fraction: float = 0.0,
) -> list[PlanItem]:
    """The runs of a plan's shard, in plan order; re-timing runs (if any) come first."""
    i, n = shard
    if not (0 <= i < n):
        raise ValueError(f"shard: must be i/n with 0 <= i < n, got {i}/{n}")
    n_replicates = _checked_replicates(replicate_fraction, n_replicates)
    if not 0.0 <= retime_fraction <= 1.0:
        raise ValueError(f"retime_fraction: must lie in [0, 1], got {retime_fraction}")
    n_configs = as_int(n_configs, "n_configs", low=0, high=MAX_N_CONFIGS)
    plan_seed = as_int(plan_seed, "plan_seed", low=0, high=MAX_SEED)
    runs: list[PlanItem] = []
    alone: list[PlanItem] = []
    for k in range(i, n_configs, n):
        config, replicated, retimed, seeds = _config_draw(plan_seed, k, replicate_fraction, n_replicates, retime_fraction)
        for j in range(n_replicates if replicated else 1):
            runs.append(PlanItem(plan_seed, k, j, config, seeds[j]))
        if retimed:
            alone.append(PlanItem(plan_seed, k, 0, config, seeds[0], retime=True))
    return alone + runs


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), with a clear error for anything else."""
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ValueError(f"shard: expected i/n such as 0/4, got {text!r}") from None
    if not (1 <= n <= MAX_SHARDS and 0 <= i < n):
        raise ValueError(f"shard: must be i/n with 0 <= i < n <= {MAX_SHARDS}, got {text!r}")
    return i, n


class LogWriter:
    """Appends records as JSON lines to a file only this writer uses; each line is fsynced."""

    def __init__(self, directory: Path, stem: str):
        self.directory = directory
        # To the microsecond: two collects of one plan, in one process and one second, must not collide.
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40]
        self.path = directory / f"{stem}-{host}-{os.getpid()}-{stamp}.jsonl"
        self._f = None

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        if self._f is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            # "x": never append to a file some other collector may hold.
            self._f = open(self.path, "x", encoding="utf-8")
        self._f.write(line)
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


@dataclass
class CollectSummary:
    planned: int = 0
    skipped: int = 0
    finished: int = 0
    statuses: dict = field(default_factory=dict)
    seconds: float = 0.0
    stopped_early: bool = False
    stopped_by: str = ""  # what stopped it early: "the time limit" or "a stop request" (a signal, Ctrl-C)
    path: Path | None = None

    def line(self) -> str:
        st = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "none"
        where = f"; wrote {self.path}" if self.path else ""
        left = self.planned - self.skipped - self.finished
        stop = f"; stopped by {self.stopped_by or 'the time limit'} with {left} not started" if self.stopped_early else ""
        return (
            f"collected {self.finished} runs ({st}) in {self.seconds:.0f} s; "
            f"{self.skipped} of {self.planned} planned were already done{stop}{where}"
        )


def _run_one(item: PlanItem, dataset: str, epochs: int, data_dir, device, threads, jobs_on_device: int, key: str,
             parent_pid: int | None = None):
    from .trainer import train  # imported in the worker: torch loads there

    if parent_pid is not None:
        die_with(parent_pid)  # a killed collector's workers stop training too
    extra = {"key": key, "plan": item.record()}
    return train(
        item.config,
        dataset,
        epochs=epochs,
        seed=item.seed,
        device=device,
        data_dir=data_dir,
        threads=threads,
        jobs_on_device=jobs_on_device,
        extra=extra,
    )


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - the training extra is required to collect
        return 0


@dataclass
class _Plan:
    """The runs of one shard of a plan as :func:`collect` resolves its arguments (before resuming)."""

    dataset: str
    epochs: int
    items: list[PlanItem]
    stem: str
    name: str  # e.g. "optimizers plan 43 shard 0/1 of flowers17"
    devices: list
    jobs_per_device: int
    n_jobs: int

    @classmethod
    def resolve(cls, dataset, *, plan_seed, n_configs, epochs, shard, replicate_fraction, n_replicates,
                retime_fraction, n_jobs, device, items) -> "_Plan":
        dataset_info(dataset)
        epochs = validate_epoch(epochs, name="epochs")
        n_jobs = as_int(n_jobs, "n_jobs", low=1, high=MAX_JOBS)
        n_gpus = _cuda_count() if device in (None, "cuda") else 0
        devices = [f"cuda:{g}" for g in range(n_gpus)] if n_gpus else [device]
        jobs_per_device = int(np.ceil(n_jobs / len(devices)))
        if retime_fraction is None:
            retime_fraction = 0.03 if jobs_per_device > 1 else 0.0
        if items is None:
            items = plan_items(
                plan_seed,
                n_configs,
                shard=shard,
                replicate_fraction=replicate_fraction,
                n_replicates=n_replicates,
                retime_fraction=retime_fraction if jobs_per_device > 1 else 0.0,
            )
            stem, kind, items_seed = f"plan{plan_seed}-shard{shard[0]}of{shard[1]}", None, None
        else:
            stems = {it.stem for it in items}
            kind, items_seed = (items[0].kind, items[0].plan_seed) if items else ("empty", 0)
            if len(stems) > 1:
                raise ValueError(f"items: runs of one plan only, got {sorted(stems)}")
            if not (0 <= shard[0] < shard[1]):
                raise ValueError(f"shard: must be i/n with 0 <= i < n, got {shard[0]}/{shard[1]}")
            items = [it for it in items if it.index % shard[1] == shard[0]]
            if jobs_per_device > 1:
                items = retime_items(items, retime_fraction) + [it for it in items if not it.retime]
            stem = f"{stems.pop() if stems else 'empty'}-shard{shard[0]}of{shard[1]}"
        what = f"plan {plan_seed}" if kind is None else f"{kind} plan {items_seed}"
        name = f"{what} shard {shard[0]}/{shard[1]} of {dataset}"
        return cls(dataset, epochs, items, stem, name, devices, jobs_per_device, n_jobs)

    def todo(self, directory: Path) -> list[PlanItem]:
        """The runs not logged in ``directory`` yet, in the plan's order.

        A run counts as logged by its key. A logged key whose config or seed is not the plan's is
        refused (``ValueError``) rather than skipped: the plan was drawn from other inputs (a
        ``--plan-from`` folder that changed since), and resuming it would mix two plans under one name.
        """
        logged: dict[str, tuple[Any, Any]] = {}
        if directory.is_dir():
            for rec in iter_records(directory):
                if rec.get("key") is not None:
                    logged.setdefault(rec["key"], (rec.get("config_id"), rec.get("seed")))
        todo, clashes = [], []
        for it in self.items:
            key = it.key(self.dataset, self.epochs)
            if key not in logged:
                todo.append(it)
            elif logged[key] != (config_id(it.config), it.seed):
                clashes.append(key)
        if clashes:
            raise ValueError(
                f"{self.name}: {len(clashes)} logged run(s) have this plan's keys but another config or seed "
                f"(first {clashes[0]}): the plan was made from other inputs than the logged runs (another "
                f"--plan-from folder, --configs or --n-configs?); use a plan seed no earlier collection used")
        return todo


def pending_runs(
    dataset: str = "digits",
    *,
    out_dir: str | os.PathLike = "training_logs",
    plan_seed: int = 0,
    n_configs: int = 30,
    epochs: int = 25,
    shard: tuple[int, int] = (0, 1),
    replicate_fraction: float = 0.1,
    n_replicates: int = 3,
    retime_fraction: float | None = None,
    n_jobs: int = 1,
    device: str | None = None,
    items: list[PlanItem] | None = None,
) -> tuple[list[PlanItem], int, str]:
    """What :func:`collect` with the same arguments would run: the runs not logged in
    ``out_dir/<dataset>/`` yet, in the order it starts them, the number of runs of this shard of
    the plan (logged or not), and the plan's name. Reads the logs only: nothing is trained,
    locked or written, and the dataset's files are not needed."""
    plan = _Plan.resolve(dataset, plan_seed=plan_seed, n_configs=n_configs, epochs=epochs, shard=shard,
                         replicate_fraction=replicate_fraction, n_replicates=n_replicates,
                         retime_fraction=retime_fraction, n_jobs=n_jobs, device=device, items=items)
    todo = plan.todo(Path(out_dir) / dataset)
    return todo, len(plan.items), plan.name


def collect(
    dataset: str = "digits",
    *,
    out_dir: str | os.PathLike = "training_logs",
    plan_seed: int = 0,
    n_configs: int = 30,
    epochs: int = 25,
    shard: tuple[int, int] = (0, 1),
    replicate_fraction: float = 0.1,
    n_replicates: int = 3,
    retime_fraction: float | None = None,
    n_jobs: int = 1,
    backend: str | None = None,
    device: str | None = None,
    threads: int | None = 1,
    data_dir=None,
    time_limit: float | None = None,
    stop: threading.Event | None = None,
    on_record: Callable[[dict, CollectSummary], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
    items: list[PlanItem] | None = None,
) -> CollectSummary:
    """Run (the rest of) a plan and append each finished run to ``out_dir/<dataset>/``.

    ``backend`` is a joblib backend name (``loky`` by default; ``dask`` or ``ray`` once
    registered by the caller). On GPUs, ``n_jobs`` jobs share the visible devices round-robin;
    when more than one job shares a device, ``retime_fraction`` (default 0.03) of the configs
    are first re-run alone so the runtime model has honest timings (for at most a quarter of
    ``time_limit``). After ``time_limit``
    seconds, or once ``stop`` is set, nothing new starts and the running jobs finish.
    ``items`` replaces the seeded random plan by given runs (e.g. :func:`seeded_items`, whose
    replicates are its own), all of one plan kind and seed, of which ``shard`` takes those with
    ``index % n == i``; ``plan_seed``, ``n_configs``, ``replicate_fraction`` and ``n_replicates``
    are then ignored, and a shared
    device re-times a seeded ``retime_fraction`` of them alone (:func:`retime_items`).
    """
    plan = _Plan.resolve(dataset, plan_seed=plan_seed, n_configs=n_configs, epochs=epochs, shard=shard,
                         replicate_fraction=replicate_fraction, n_replicates=n_replicates,
                         retime_fraction=retime_fraction, n_jobs=n_jobs, device=device, items=items)
    if time_limit is not None and time_limit <= 0:
        raise ValueError(f"time_limit: must be positive, got {time_limit}")
    epochs, devices, jobs_per_device, n_jobs = plan.epochs, plan.devices, plan.jobs_per_device, plan.n_jobs
    if dataset != "digits":  # missing or tampered files are the caller's error, not an "error" record per run
        load_dataset(dataset, data_dir)
    directory = check_writable_dir(Path(out_dir) / dataset, "out")
    with PlanLock(directory, plan.stem, plan.name):
        todo = plan.todo(directory)
        summary = CollectSummary(planned=len(plan.items), skipped=len(plan.items) - len(todo))
        if on_plan is not None:
            on_plan(len(todo))
        _run_plan(todo, LogWriter(directory, plan.stem), summary, dataset=dataset, epochs=epochs, data_dir=data_dir,
                  devices=devices, threads=threads, n_jobs=n_jobs, jobs_per_device=jobs_per_device, backend=backend,
                  time_limit=time_limit, stop=stop, on_record=on_record)
    return summary


def _run_plan(todo: list[PlanItem], writer: LogWriter, summary: CollectSummary, *, dataset, epochs, data_dir,
              devices, threads, n_jobs, jobs_per_device, backend, time_limit, stop, on_record) -> None:
    """Train ``todo`` (lone re-timing runs first) and append each record as it arrives."""
    from joblib import Parallel, delayed

    t0 = time.monotonic()
    deadline = None if time_limit is None else t0 + float(time_limit)
    stop = stop or threading.Event()

    # Lone re-timing runs keep the device idle but for one job: they may use at most a
    # quarter of the time limit, so the packed runs always get most of it.
    alone_deadline = None if time_limit is None else t0 + float(time_limit) / 4

    def open_for_new(alone: bool = False) -> bool:
        if alone and alone_deadline is not None and time.monotonic() >= alone_deadline:
            return False
        if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            summary.stopped_early = True
            summary.stopped_by = summary.stopped_by or ("a stop request" if stop.is_set() else "the time limit")
            return False
        return True

    def tasks(batch: list[PlanItem], jobs: int) -> Iterator:
        for pos, it in enumerate(batch):
            if not open_for_new(alone=it.retime):
                return
            dev = devices[pos % len(devices)]
            yield delayed(_run_one)(it, dataset, epochs, data_dir, dev, threads, jobs, it.key(dataset, epochs),
                                    os.getpid())

    alone = [it for it in todo if it.retime]
    packed = [it for it in todo if not it.retime]
    try:
        for batch, jobs, workers in ((alone, 1, len(devices)), (packed, jobs_per_device, n_jobs)):
            if not batch:
                continue
            workers = min(workers, len(batch))  # never more workers than runs
            parallel = Parallel(n_jobs=workers, backend=backend, return_as="generator_unordered", pre_dispatch="n_jobs")
            for record in parallel(tasks(batch, jobs)):
                writer.write(record)
                summary.finished += 1
                summary.statuses[record["status"]] = summary.statuses.get(record["status"], 0) + 1
                summary.path = writer.path
                if on_record is not None:
                    on_record(record, summary)
    finally:
        writer.close()
        summary.seconds = time.monotonic() - t0


class PlanLock:
    """An exclusive lock on one (plan, shard) in a logs folder, held while it is collected:
    ``.<stem>.lock``, locked with ``flock`` (so the lock of a killed collector goes with it) and
    holding the holder's pid and host. A second collector of the same (plan, shard) is refused
    with a message naming the holder, instead of training the same runs twice."""

    def __init__(self, directory: Path, stem: str, what: str):
        self.path = directory / f".{stem}.lock"
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> "PlanLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise ValueError(
                    f"out: {self.what} is being collected into {self.path.parent} by {holder} "
                    f"(lock {self.path}); not training its runs a second time"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file that its last holder removed while we waited
                break
            os.close(fd)
        earlier = os.read(fd, 200).decode("utf-8", "replace").strip()
        if earlier:  # a holder that ended without removing the file (killed): its flock went with it
            logger.warning("%s: taking over the stale lock of %s (no longer running)", self.path, earlier)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            os.close(self._fd)  # releases the lock
            self._fd = None
