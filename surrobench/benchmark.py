"""The benchmark (docs/problem.md §5): one interface, three back-ends.

* :class:`SurrogateBenchmark` answers from fitted XGBoost models (cheap; seeded noise);
* :class:`TabularBenchmark` replays logged runs exactly (a config never logged is an error);
* :class:`LiveBenchmark` trains for real with :func:`surrobench.training.train` (torch is
  imported only when it trains).

A back-end provides one primitive, ``_curves(cfg, cid, seed, epochs)``: the :class:`Curves` of
one training run. :class:`Benchmark` builds the rest on it, the same for every back-end:
``answer(job, seed=)`` (what the simulator calls) and the thin wrappers ``query(config, epoch,
seed=)``, ``trajectory(config, seed=)`` (:class:`Result` records), ``cost(config, epoch,
from_epoch=, seed=)`` in seconds and ``job(...)`` with both in one call; each validates its input
strictly (``ValueError`` naming what is wrong). A back-end that answers many configs faster in
one batch also overrides :meth:`Benchmark.prefetch` (the surrogate does).

Every benchmark states its :class:`~surrobench.records.Task` (``bench.task``: dataset facts,
objectives, reference point, epochs) and makes problems of it (``bench.problem(n_workers=,
budget=)``).

Cost of a job that trains from ``from_epoch`` (a checkpoint; 0 = from scratch) to
``epoch``: the train seconds of epochs ``from_epoch + 1 .. epoch`` plus one evaluation.
Cumulative train time never decreases with epochs.

>>> from surrobench.space import default_config
>>> bench = load()                      # the shipped flowers17 surrogate
>>> r = bench.query(default_config(), 10, seed=1)
>>> 0.0 <= r.val_error <= 1.0 and r.epoch == 10 and r.cost > r.train_time > 0
True
>>> bench.task.dataset, bench.task.input_shape, bench.task.n_classes
('flowers17', (3, 16, 16), 17)
"""

from __future__ import annotations

import abc
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .datasets import info as dataset_info
from .model_size import log10_params
from .records import Budget, Job, Objective, Problem, Task, task_objectives
from .space import MAX_EPOCH, MIN_EPOCH, REFERENCE_POINT, id_of_valid, validate, validate_epoch
from .surrogate.features import FEATURES, feature_row, size_bounds

__all__ = [
    "Objective",
    "Task",
    "Result",
    "Curves",
    "Benchmark",
    "SurrogateBenchmark",
    "TabularBenchmark",
    "LiveBenchmark",
    "make_task",
    "load",
    "shipped_surrogates",
    "resolve_surrogate",
    "REFERENCE_POINT",
]


def make_task(dataset: str, input_shape: Sequence[int] | None = None, n_classes: int | None = None, *,
              min_epoch: int = MIN_EPOCH, max_epoch: int = MAX_EPOCH) -> Task:
    """The :class:`~surrobench.records.Task` of ``dataset``: its input shape and classes (a known
    dataset's, :data:`surrobench.datasets.DATASETS`, where not given), validation error in [0, 1]
    and log10 parameters within the exact bounds of the space, both minimised, the reference point
    :data:`surrobench.space.REFERENCE_POINT`, and epochs ``min_epoch..max_epoch``.

    >>> make_task("digits").input_shape, make_task("digits").n_classes
    ((1, 8, 8), 10)
    """
    if input_shape is None or n_classes is None:
        if input_shape is not None or n_classes is not None:
            raise ValueError("make_task: give both input_shape and n_classes, or neither (a known dataset's)")
        known = dataset_info(dataset)
        input_shape, n_classes = known.input_shape, known.n_classes
    objectives = task_objectives(size_bounds(input_shape, n_classes))
    return Task(dataset, tuple(input_shape), n_classes, objectives, REFERENCE_POINT, min_epoch, max_epoch)


@dataclass(frozen=True)
class Result:
    """The answer for one (config, epoch, seed).

    ``cost`` is the seconds of a job trained from scratch to ``epoch`` (``train_time``, the
    cumulative train seconds of epochs 1..epoch, plus ``eval_time``, one evaluation).
    """

    val_error: float
    test_error: float
    log10_params: float
    cost: float
    train_time: float
    eval_time: float
    epoch: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Curves:
    """One training run as a back-end knows it, per epoch 1..n (at least the epochs asked for):
    errors, cumulative train seconds and the seconds of the evaluation after each epoch, and the
    network's exact log10 parameter count."""

    val_error: np.ndarray
    test_error: np.ndarray
    train_time: np.ndarray  # cumulative: epochs 1..e
    eval_time: np.ndarray
    log10_params: float

    def result(self, epoch: int) -> Result:
        i = epoch - 1
        train, evals = float(self.train_time[i]), float(self.eval_time[i])
        return Result(float(self.val_error[i]), float(self.test_error[i]), self.log10_params, train + evals, train,
                      evals, epoch)

    def cost(self, epoch: int, from_epoch: int = 0) -> float:
        """Seconds of epochs ``from_epoch + 1 .. epoch`` plus one evaluation."""
        done = float(self.train_time[from_epoch - 1]) if from_epoch else 0.0
        return float(self.train_time[epoch - 1]) - done + float(self.eval_time[epoch - 1])


def check_seed(seed: Any) -> int:
    """A seed is a non-negative int below 2**64."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed: must be a non-negative int below 2**64, got {seed!r}")
    return int(seed)


def _check_job(job: Any) -> Job:
    if not isinstance(job, Job):
        raise ValueError(f"job: must be a surrobench.records.Job, got {type(job).__name__}")
    return job


class Benchmark(abc.ABC):
    """The interface every back-end shares. Subclasses provide :meth:`_curves` (and may batch
    :meth:`prefetch`); everything else is built on it here."""

    backend: str = "abstract"

    def __init__(self, task: Task):
        if not isinstance(task, Task):
            raise ValueError(f"task: must be a surrobench.records.Task, got {type(task).__name__}")
        self.task = task

    @property
    def dataset(self) -> str:
        return self.task.dataset

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return self.task.objectives

    @property
    def min_epoch(self) -> int:
        return self.task.min_epoch

    @property
    def max_epoch(self) -> int:
        return self.task.max_epoch

    @property
    def reference_point(self) -> np.ndarray:
        """(1.0, 8.0): validation error 1, 10**8 parameters (a fresh array on every call)."""
        return np.array(self.task.reference_point, dtype=float)

    def problem(self, n_workers: int = 1, budget: Budget | float | None = None) -> Problem:
        """A :class:`~surrobench.records.Problem` on this benchmark's task: ``n_workers`` workers and
        ``budget`` (a :class:`~surrobench.records.Budget` or simulated seconds)."""
        return Problem(self.task, n_workers=n_workers, budget=budget)

    @abc.abstractmethod
    def _curves(self, cfg: dict[str, Any], cid: str, seed: int, epochs: int) -> Curves:
        """The run of the validated config ``cfg`` (id ``cid``) with ``seed``, to at least ``epochs`` epochs."""

    def _log10_params(self, cfg: Mapping[str, Any]) -> float:
        return log10_params(cfg, self.task.input_shape, self.task.n_classes)

    def answer(self, job: Job, *, seed: int = 0) -> tuple[float, Result]:
        """``(cost, result)`` of a :class:`~surrobench.records.Job` record (what the simulator calls).

        A record was validated when it was made, so it is not validated again; the answer is the
        same as ``job(job.config, job.epoch, from_epoch=job.from_epoch, seed=seed)``.
        """
        job = _check_job(job)
        curves = self._curves(job.config, job.config_id, check_seed(seed), job.epoch)
        return curves.cost(job.epoch, job.from_epoch), curves.result(job.epoch)

    def query(self, config: Mapping[str, Any], epoch: int, *, seed: int = 0) -> Result:
        """Objectives and cost of ``config`` trained ``epoch`` epochs with ``seed``."""
        cfg = validate(config)
        epoch = validate_epoch(epoch)
        return self._curves(cfg, id_of_valid(cfg), check_seed(seed), epoch).result(epoch)

    def trajectory(self, config: Mapping[str, Any], *, seed: int = 0) -> list[Result]:
        """Results at every epoch 1..25 (the same numbers as 25 queries)."""
        cfg = validate(config)
        curves = self._curves(cfg, id_of_valid(cfg), check_seed(seed), self.max_epoch)
        return [curves.result(e) for e in range(1, self.max_epoch + 1)]

    def _check_cost_args(self, config, epoch, from_epoch, seed) -> tuple[dict[str, Any], int, int, int]:
        cfg = validate(config)
        epoch = validate_epoch(epoch)
        if isinstance(from_epoch, (bool, np.bool_)) or not isinstance(from_epoch, (int, np.integer)):
            raise ValueError(f"from_epoch: must be an int in 0..{epoch - 1}, got {from_epoch!r}")
        if not 0 <= int(from_epoch) < epoch:
            raise ValueError(f"from_epoch: must lie in 0..{epoch - 1} (below epoch {epoch}), got {from_epoch!r}")
        return cfg, epoch, int(from_epoch), check_seed(seed)

    def cost(self, config: Mapping[str, Any], epoch: int, *, from_epoch: int = 0, seed: int = 0) -> float:
        """Seconds to train from a checkpoint at ``from_epoch`` (0: from scratch) to ``epoch``, plus
        one evaluation; from scratch it equals ``query(config, epoch).cost`` exactly."""
        return self.job(config, epoch, from_epoch=from_epoch, seed=seed)[0]

    def job(self, config: Mapping[str, Any], epoch: int, *, from_epoch: int = 0, seed: int = 0) -> tuple[float, Result]:
        """``(cost(config, epoch, from_epoch=, seed=), query(config, epoch, seed=))`` in one call."""
        cfg, epoch, from_epoch, seed = self._check_cost_args(config, epoch, from_epoch, seed)
        curves = self._curves(cfg, id_of_valid(cfg), seed, epoch)
        return curves.cost(epoch, from_epoch), curves.result(epoch)

    def prefetch(self, jobs: Sequence[Job], seeds: Sequence[int]) -> None:
        """A hint that ``jobs`` (Job records, one seed each) will be asked for soon.

        Back-ends that answer many configs faster in one batch (the surrogate) prepare their
        answers; the others ignore it. A hint never changes an answer, and a wrong one only
        costs the time spent on it.
        """
        return None  # the tabular and live back-ends answer one job at a time

    def describe(self) -> dict[str, Any]:
        task = self.task
        return {
            "backend": self.backend,
            "dataset": task.dataset,
            "input_shape": list(task.input_shape),
            "n_classes": task.n_classes,
            "objectives": [asdict(o) for o in task.objectives],
            "reference_point": list(task.reference_point),
            "fidelity": {"name": "epoch", "min": task.min_epoch, "max": task.max_epoch},
            "cost": "train seconds of epochs from_epoch+1..epoch plus one evaluation",
        }


# ------------------------------------------------------------------------------------ surrogate


class SurrogateBenchmark(Benchmark):
    """Answers from a fitted surrogate (see :mod:`surrobench.surrogate`).

    With ``noise=True`` (default) every seed is a draw of the seed noise calibrated on
    replicated runs: the same (config, seed) always gives the same curve, different seeds
    differ. ``noise=False`` gives the mean curve for every seed. Runtime carries no seed
    noise (no lone run was ever repeated). The curves of the last ``cache_size``
    (config, seed) pairs are kept, so that ``cost`` and ``query`` of one job predict once.
    """

    backend = "surrogate"

    def __init__(self, surrogate, *, noise: bool = True, cache_size: int = 4096):
        from .surrogate import Surrogate, load_surrogate

        if not isinstance(surrogate, Surrogate):
            surrogate = load_surrogate(surrogate)
        if not isinstance(noise, bool):
            raise ValueError(f"noise: must be True or False, got {noise!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size: must be a non-negative int, got {cache_size!r}")
        self.surrogate = surrogate
        self.noise = noise
        self.cache_size = cache_size
        self._cache: dict[tuple[str, int], Curves] = {}
        super().__init__(make_task(surrogate.dataset, surrogate.input_shape, surrogate.n_classes))
        self._n_train = surrogate.n_train
        self._epochs = np.arange(1, MAX_EPOCH + 1, dtype=float)

    def _predict(self, cfgs: Sequence[Mapping[str, Any]], ids: Sequence[str], seeds: Sequence[int]):
        """One batched model call for validated configs: (curves (n, 50), seconds per epoch (n,),
        seconds per evaluation (n,), log10 parameters (n,))."""
        rows, sizes = [], []
        for cfg in cfgs:
            row, n = feature_row(cfg, self.task.input_shape, self.task.n_classes, self._n_train)
            rows.append(row)
            sizes.append(math.log10(n))
        x = np.asarray(rows, dtype=float).reshape(len(rows), len(FEATURES))
        if self.noise:
            keys = np.array([int(cid, 16) for cid in ids], dtype=np.uint64)
            curves, per_epoch, per_eval = self.surrogate.predict(x, keys, np.array(seeds, dtype=np.uint64))
        else:
            curves, per_epoch, per_eval = self.surrogate.predict(x)
        return curves, per_epoch, per_eval, sizes

    def _remember(self, keys: Sequence[tuple[str, int]], predicted) -> list[Curves]:
        """Curves of a batch, kept in the cache (rows are shared through it, so read-only)."""
        curves, per_epoch, per_eval, sizes = predicted
        curves.flags.writeable = False
        out = []
        for i, key in enumerate(keys):
            evals = np.full(MAX_EPOCH, float(per_eval[i]))
            one = Curves(curves[i, :MAX_EPOCH], curves[i, MAX_EPOCH:], self._epochs * float(per_epoch[i]), evals,
                         sizes[i])
            if self.cache_size:
                if len(self._cache) >= self.cache_size:
                    self._cache.clear()
                self._cache[key] = one
            out.append(one)
        return out

    def _curves(self, cfg, cid, seed, epochs):
        key = (cid, seed if self.noise else 0)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._remember([key], self._predict([cfg], [cid], [seed]))[0]
        return hit

    def prefetch(self, jobs: Sequence[Job], seeds: Sequence[int]) -> None:
        """Predict the answers of ``jobs`` (one seed each) in one batch and keep them in the answer cache.

        One batched prediction costs a fifth of what the same configs cost one at a time, with the
        same numbers. At most ``cache_size`` jobs are taken; the cache is emptied first when they
        would not fit beside what it holds.
        """
        jobs, seeds = list(jobs), list(seeds)
        if len(jobs) != len(seeds):
            raise ValueError(f"seeds: got {len(seeds)} seeds for {len(jobs)} jobs")
        todo: dict[tuple[str, int], Job] = {}
        for job, seed in zip(jobs, seeds):
            if not isinstance(job, Job):
                raise ValueError(f"jobs: must be surrobench.records.Job records, got {type(job).__name__}")
            key = (job.config_id, check_seed(seed) if self.noise else 0)
            if key not in self._cache and len(todo) < self.cache_size:
                todo.setdefault(key, job)
        if not todo:
            return
        if len(self._cache) + len(todo) > self.cache_size:
            self._cache.clear()
        keys = list(todo)
        self._remember(keys, self._predict([j.config for j in todo.values()], [k[0] for k in keys],
                                           [k[1] for k in keys]))

    def trajectories(self, configs: Sequence[Mapping[str, Any]], *, seed: int | Sequence[int] = 0) -> dict[str, np.ndarray]:
        """Many trajectories in one vectorised pass: arrays of shape (n, 25) (``log10_params``: (n,)).

        ``seed`` is one seed for all configs or one per config; row i equals
        ``trajectory(configs[i], seed=seed_i)``.
        """
        cfgs = [validate(c) for c in configs]
        n = len(cfgs)
        seeds = [check_seed(seed)] * n if np.ndim(seed) == 0 else [check_seed(s) for s in seed]
        if len(seeds) != n:
            raise ValueError(f"seed: got {len(seeds)} seeds for {n} configs")
        curves, per_epoch, per_eval, sizes = self._predict(cfgs, [id_of_valid(c) for c in cfgs], seeds)
        train = per_epoch[:, None] * self._epochs[None, :]
        evals = np.repeat(per_eval[:, None], MAX_EPOCH, axis=1)
        return {
            "val_error": curves[:, :MAX_EPOCH],
            "test_error": curves[:, MAX_EPOCH:],
            "log10_params": np.asarray(sizes),
            "train_time": train,
            "eval_time": evals,
            "cost": train + evals,
        }

    def describe(self) -> dict[str, Any]:
        m = self.surrogate.manifest
        out = super().describe()
        out.update(
            surrogate=m["name"],
            checksum=m.get("manifest_sha256"),  # lists the sha256 of every model file; None until saved
            noise=self.noise,
            noise_model=_noise_summary(m["noise"]),
            runtime_device=m["devices"]["runtime_clock"],
            training_data=m["training_data"]["sha256"],
            n_runs=m["training_data"]["n_runs"],
            versions=m["versions"],
            quality_verdict=m["quality"]["noise_ceiling"]["verdict"],
        )
        return out


def _noise_summary(noise: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's seed-noise parameters for a results folder's metadata, a residual bank's curves and
    keys (hundreds of rows, in the surrogate file the checksum names) replaced by how many there are."""
    out = dict(noise)
    if out.get("bank") is not None:
        out["bank"] = f"{len(out['bank'])} residual curves of {len(out['bank_sizes'])} configs"
        out.pop("bank_sizes", None)
        out.pop("bank_keys", None)
    return out


# -------------------------------------------------------------------------------------- tabular


def _fill_times(train: np.ndarray, evals: np.ndarray, wall: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Epochs without a recorded time (after a divergence) cost the run's median epoch."""
    train, evals = np.asarray(train, float).copy(), np.asarray(evals, float).copy()
    for arr in (train, evals):
        ok = np.isfinite(arr)
        if ok.any():
            arr[~ok] = np.median(arr[ok])
        else:
            arr[:] = (wall if math.isfinite(wall) and wall > 0 else 1.0) / n
    return train, evals


class TabularBenchmark(Benchmark):
    """Replays logged runs exactly: the logged errors and the logged seconds of each epoch.

    Runs with all 25 epochs recorded (status ``ok`` or ``diverged``) are replayed; one run
    per (config, seed), a re-timed duplicate only if nothing else was logged. Seed rule:
    ``seed`` equal to a logged seed of the config replays that run; any other seed replays
    run ``seed % n`` of the config's ``n`` runs (ordered by their log key). A config never
    logged is a ``ValueError`` naming its config_id. ``device`` keeps only runs on that
    device. Epochs without a recorded time (after a divergence) cost the run's median epoch.
    """

    backend = "tabular"

    def __init__(self, logs_path: str | os.PathLike, dataset: str, *, device: str | None = None):
        from .surrogate.data import load_run_data

        super().__init__(make_task(dataset))
        data = load_run_data(logs_path, dataset)
        full = np.isfinite(data.val).all(axis=1) & np.isfinite(data.test).all(axis=1)
        if device is not None:
            full &= data.devices == device
            if not full.any():
                raise ValueError(f"device: no complete run of {dataset} on {device!r} in {logs_path}")
        self.logs_path = str(logs_path)
        self.device = device
        self.data_hash = data.data_hash
        self._runs: dict[str, list[dict[str, Any]]] = {}
        order = sorted(np.flatnonzero(full), key=lambda i: (not data.curve_run[i], data.keys[i]))
        for i in order:
            runs = self._runs.setdefault(data.config_ids[i], [])
            if any(r["seed"] == int(data.seeds[i]) for r in runs):
                continue  # a re-timed duplicate of a seed already replayed
            train, evals = _fill_times(data.train_time[i], data.eval_time[i], data.wall_time[i], MAX_EPOCH)
            curves = Curves(data.val[i].copy(), data.test[i].copy(), np.cumsum(train), evals,
                            self._log10_params(data.configs[i]))
            runs.append({"seed": int(data.seeds[i]), "key": str(data.keys[i]), "device": str(data.devices[i]),
                         "val": curves.val_error, "test": curves.test_error, "train": train, "eval": evals,
                         "curves": curves})
        for runs in self._runs.values():
            runs.sort(key=lambda r: r["key"])
        if not self._runs:
            raise ValueError(f"logs: no complete run of {dataset} in {logs_path}")

    @property
    def config_ids(self) -> list[str]:
        return sorted(self._runs)

    def seeds(self, config: Mapping[str, Any]) -> list[int]:
        """The logged seeds of ``config``, in replay order."""
        return [r["seed"] for r in self._lookup(id_of_valid(validate(config)))]

    def _lookup(self, cid: str) -> list[dict[str, Any]]:
        runs = self._runs.get(cid)
        if runs is None:
            raise ValueError(
                f"config: {cid} was never logged for {self.dataset} in {self.logs_path} (the tabular back-end "
                f"replays only the {len(self._runs)} logged configs; use the surrogate back-end for others)"
            )
        return runs

    def run_for(self, config: Mapping[str, Any], seed: int = 0) -> dict[str, Any]:
        """The logged run replayed for (config, seed)."""
        return self._run(id_of_valid(validate(config)), check_seed(seed))

    def replayed_seed(self, config_id: str, seed: int = 0) -> int:
        """The logged seed of the run that (``config_id``, ``seed``) replays (the seed rule above).

        Another benchmark that draws with this seed treats repeated asks for a config as this one
        does: a config logged once answers every ask alike, one logged twice cycles through two.
        """
        return self._run(config_id, check_seed(seed))["seed"]

    def _run(self, cid: str, seed: int) -> dict[str, Any]:
        runs = self._lookup(cid)
        return next((r for r in runs if r["seed"] == seed), None) or runs[seed % len(runs)]

    def _curves(self, cfg, cid, seed, epochs):
        return self._run(cid, seed)["curves"]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        devices = sorted({r["device"] for runs in self._runs.values() for r in runs})
        out.update(logs=self.logs_path, device=self.device, devices=devices, n_configs=len(self._runs),
                   n_runs=sum(len(r) for r in self._runs.values()), training_data=self.data_hash,
                   seed_rule="a logged seed replays its run; any other seed s replays run s % n (runs ordered by key)")
        return out


# ----------------------------------------------------------------------------------------- live


class LiveBenchmark(Benchmark):
    """Trains for real with the docs/problem.md §2 protocol; trajectories cached per (config_id, seed).

    With a constant learning rate the first e epochs of a longer run are the same as an
    e-epoch run of the same seed, so ``query`` trains only to the epoch asked for (or reuses
    a longer cached run). Costs are the run's own measured seconds. Diverged runs answer
    chance-level error; ``oom`` and ``error`` runs raise ``RuntimeError``.
    """

    backend = "live"

    def __init__(self, dataset: str, data_dir: str | os.PathLike | None = None, device: str | None = None,
                 *, threads: int | None = None):
        super().__init__(make_task(dataset))
        self.data_dir = data_dir
        self.device = device
        self.threads = threads
        self._cache: dict[tuple[str, int], dict[str, Any]] = {}

    def _curves(self, cfg, cid, seed, epochs):
        cached = self._cache.get((cid, seed))
        if cached is None or cached["epochs"] < epochs:
            try:
                from .training import train  # torch only here
            except ImportError as exc:
                raise ImportError(f"live back-end needs torch ({exc}): pip install 'surrobench[train]'") from exc

            record = train(cfg, self.dataset, epochs=epochs, seed=seed, device=self.device, data_dir=self.data_dir,
                           threads=self.threads, jobs_on_device=1)
            if record["status"] not in ("ok", "diverged"):
                raise RuntimeError(f"live: training {cid} (seed {seed}) ended with status {record['status']}: "
                                   f"{record['message']}")
            c = record["curve"]
            train_s, eval_s = _fill_times(
                [np.nan if v is None else v for v in c["train_time"]],
                [np.nan if v is None else v for v in c["eval_time"]],
                float(record.get("wall_time") or 0.0), epochs,
            )
            curves = Curves(np.asarray(c["val_error"], float), np.asarray(c["test_error"], float), np.cumsum(train_s),
                            eval_s, self._log10_params(cfg))
            cached = {"epochs": epochs, "curves": curves, "device": record["device"]}
            self._cache[(cid, seed)] = cached
        return cached["curves"]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(device=self.device, data_dir=None if self.data_dir is None else str(self.data_dir),
                   cached_runs=len(self._cache))
        return out


# ------------------------------------------------------------------------------------- loading

_SHIPPED = Path(__file__).resolve().parent / "_data"


def shipped_surrogates() -> dict[str, Path]:
    """Shipped surrogate archives by dataset name (``surrobench/_data/<dataset>-surrogate.tar.gz``)."""
    if not _SHIPPED.is_dir():
        return {}
    return {p.name[: -len("-surrogate.tar.gz")]: p for p in sorted(_SHIPPED.glob("*-surrogate.tar.gz"))}


def resolve_surrogate(path_or_name: str | os.PathLike) -> str:
    """The path of a surrogate given as a directory, an archive or a shipped name
    (``"flowers17"``, ``"flowers17-cpu"``, ``"digits"``: see :func:`shipped_surrogates`)."""
    try:
        text = os.fspath(path_or_name)
    except TypeError:
        raise ValueError(f"surrogate: expected a path or a shipped name (str), got {type(path_or_name).__name__} "
                         f"{path_or_name!r:.60}") from None
    if isinstance(text, bytes):
        raise ValueError("path_or_archive: must be a str or path, not bytes")
    if not os.path.exists(text) and "/" not in text and os.sep not in text and not text.endswith((".tar.gz", ".tgz")):
        shipped = shipped_surrogates()
        if text not in shipped:
            raise ValueError(
                f"surrogate: {text!r} is neither a path nor a shipped surrogate (shipped: {', '.join(shipped) or 'none'})"
            )
        return str(shipped[text])
    return text


def load(path_or_archive: str | os.PathLike | None = None, *, noise: bool = True) -> SurrogateBenchmark:
    """A :class:`SurrogateBenchmark` from a surrogate directory, an archive, or a shipped name.

    No argument: the shipped flowers17 surrogate (the H200's clock). A bare name picks a
    shipped surrogate: ``"digits"``, or ``"flowers17-cpu"`` (the same curves on a 2-core CPU's
    clock). Files are verified before use (see :mod:`surrobench.surrogate.files`).
    """
    return SurrogateBenchmark(resolve_surrogate("flowers17" if path_or_archive is None else path_or_archive), noise=noise)
