"""Compare optimizers × seeds × worker counts on a benchmark, on a simulated wall-clock.

Each (optimizer, seed, n_workers) cell is one :func:`~surrobench.simulator.simulate` run;
cells run in parallel through joblib (any joblib back-end). The results are tidy tables:
``runs`` (one row per finished job) and ``hv`` (hypervolume over a common time grid).

With ``cells_dir``, every finished cell's table is stored there at once (one ``.npz`` file of
plain arrays, written whole and renamed into place), named by a key of everything that decides
it: the benchmark's ``describe()`` (for a surrogate its checksum), the optimizer's class, label
and settings, the seed, the worker count, the budget, the overhead model and the surrobench
version. ``resume=True`` reads the stored cells whose key matches instead of running them again,
so an interrupted comparison goes on where it stopped and one more optimizer or seed costs only
its own runs. The key does not see code: after changing an optimizer's code, do not resume.

Every run uses one BLAS thread, wherever it runs: in this process (``n_jobs=1``, by default as many
as the machine has cores) or in a joblib worker (which has the cores divided by the jobs). So how
many cells run at once does not change a run's BLAS threads. The models' matrices are small, and a
run's GP calls then need not limit the threads one call at a time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import platform
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from . import __version__
from ._numbers import MAX_JOBS, as_int, is_int
from ._paths import check_writable_dir
from ._workers import die_with
from .metrics import RankTest, hv_over_time, rank_test, seed_blocks, test_hypervolume, time_grid
from .optimizers import OPTIMIZERS, check_setting_type, settings_of
from .simulator import MAX_WORKERS, Budget, Overhead, as_budget, as_overhead, run_seeds, simulate

__all__ = ["Results", "compare", "resolve_optimizers", "check_settings", "write_results", "read_results", "summary_table", "markdown_summary", "settings_line", "rank_test_lines", "load_benchmark",
           "simulated",
           "MAX_SEEDS", "MAX_WORKER_COUNTS", "MAX_JOBS"]

DAY = 24 * 3600.0
# Ceilings (documented in the README); MAX_WORKERS, MAX_BUDGET_SECONDS and MAX_EVALUATIONS are the simulator's.
MAX_SEEDS = 1000
MAX_GRID = 100_000  # points of the hypervolume-over-time grid
MAX_WORKER_COUNTS = 64
MAX_CELL_BYTES = 1 << 30  # a stored cell's arrays, unpacked (a day of 1024 workers is far less)
# Relative cost of one run per optimizer (24 simulated hours, one worker: the mean CPU seconds of the
# protocol's ten runs of each, over random search's, rounded; `python tools/bench_protocol.py
# --costed-seeds 10` on 2026-12-07 with the surrogate refitted on 3,778 runs, docs/performance.md). compare
# starts the costliest runs first (longest processing time first, so a long run does not start last;
# the results do not depend on the order), and the progress bar's first estimate uses it until runs
# of that optimizer finish.
PRIOR_RUN_COST = {"random": 1.0, "nsga2": 19.0, "shemoa": 24.0, "moasha": 20.0, "mobohb": 35.0,
                  "mobananas": 49.0, "bulkcut": 33.0, "msehvi": 41.0, "ehvi": 75.0}


def _prior_cost(label: str) -> float:
    """:data:`PRIOR_RUN_COST` of an optimizer, the median of the known ones for another name."""
    return PRIOR_RUN_COST.get(label, sorted(PRIOR_RUN_COST.values())[len(PRIOR_RUN_COST) // 2])


logger = logging.getLogger(__name__)


def _unknown_optimizer(name: str) -> str:
    """One line: the unknown name, a close match if there is one, and every name there is."""
    import difflib

    from .bridges.optuna import SAMPLERS  # names only: optuna itself is not imported

    known = [*OPTIMIZERS, *(f"optuna-{s}" for s in SAMPLERS)]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"optimizer: unknown name {name!r}{hint} (known: {', '.join(known)})"


def resolve_optimizers(optimizers: Iterable | Mapping | None) -> dict[str, tuple[type, dict]]:
    """Names (from ``OPTIMIZERS``, or ``optuna-<sampler>`` for an Optuna sampler, see
    :mod:`surrobench.bridges.optuna`), ``{label: class}`` or ``{label: (class, settings)}`` → one dict."""
    if optimizers is None:
        return {name: (cls, {}) for name, cls in OPTIMIZERS.items()}
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    items = optimizers.items() if isinstance(optimizers, Mapping) else ((o, o) for o in optimizers)
    out: dict[str, tuple[type, dict]] = {}
    for label, spec in items:
        settings: dict = {}
        if isinstance(spec, tuple):
            spec, settings = spec
        if isinstance(spec, str) and spec.startswith("optuna-"):
            from .bridges.optuna import resolve  # imports optuna only when such an optimizer is built

            spec, defaults = resolve(spec)
            settings = {**defaults, **settings}
        if isinstance(spec, str):
            if spec not in OPTIMIZERS:
                raise ValueError(_unknown_optimizer(spec))
            spec = OPTIMIZERS[spec]
        if not callable(getattr(spec, "__call__", None)):
            raise ValueError(f"optimizer {label!r}: expected a name or a class, got {spec!r}")
        label = label if isinstance(label, str) else getattr(spec, "__name__", str(spec))
        out[label] = (spec, dict(settings))
    if not out:
        raise ValueError("optimizer: give at least one")
    return out


def check_settings(opts: Mapping[str, tuple[type, dict]], problem) -> None:
    """Refuse, before any run, a setting an optimizer of ``opts`` (from :func:`resolve_optimizers`)
    does not have or a value it does not take: each one with settings is built once against
    ``problem`` (with seed 0, then dropped), and its refusal becomes a one-line ``ValueError`` that
    names the label. ``seed`` is no setting: every run gets its own from the seeds compared."""
    import difflib

    for label, (cls, settings) in opts.items():
        if not settings:
            continue
        name = getattr(cls, "__name__", repr(cls))
        for reserved in ("problem", "seed"):
            if reserved in settings:
                raise ValueError(f"optimizer {label!r}: {reserved!r} is not a setting (each run gets its "
                                 f"{'seed from the seeds compared' if reserved == 'seed' else 'problem from the benchmark'})")
        known = settings_of(cls)
        unknown = [] if known is None else [k for k in settings if k not in known]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"optimizer {label!r}: {name} has no setting {unknown[0]!r}{hint} "
                             f"(its settings: {', '.join(known) or 'none'})")
        for key, value in settings.items():
            wrong = check_setting_type(cls, key, value)
            if wrong:
                raise ValueError(f"optimizer {label!r}: setting {key!r} {wrong}")
        try:
            cls(problem, seed=0, **settings)
        except Exception as exc:  # whatever a constructor raises on a bad value, one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            kind = "" if isinstance(exc, ValueError) else f"{type(exc).__name__}: "
            raise ValueError(f"optimizer {label!r} ({name}) refuses its settings: {kind}{first}") from None


_BENCH_CACHE: dict[str, Any] = {}


def load_benchmark(spec):
    """The benchmark ``compare`` runs against: ``spec`` itself, or the surrogate it names (None:
    the shipped default; a path or a shipped name), loaded once per process and kept, so that
    every run of a comparison in that process shares one benchmark and its answer cache."""
    if spec is None or isinstance(spec, (str, os.PathLike)):
        key = str(spec)
        if key not in _BENCH_CACHE:
            import surrobench

            _BENCH_CACHE[key] = surrobench.load(spec)
        return _BENCH_CACHE[key]
    return spec


def as_seeds(seeds: Iterable[int]) -> list[int]:
    """The run seeds of a comparison or a validation study as a list: 1..``MAX_SEEDS`` distinct
    ints >= 0. An int alone is refused: the CLI's ``--seeds 3`` means three seeds, so ``3`` here
    would be ambiguous.

    >>> as_seeds(range(3))
    [0, 1, 2]
    >>> as_seeds([4, 4])
    Traceback (most recent call last):
    ...
    ValueError: seeds: 4 is given twice (a seed's runs are the same every time)
    """
    if is_int(seeds):
        raise ValueError(f"seeds: expected the seeds themselves, e.g. range({int(seeds)}) or [{int(seeds)}], "
                         f"got the int {int(seeds)}")
    seeds = [as_int(s, "seeds", low=0) for s in _at_most(seeds, MAX_SEEDS, "seeds", "seeds", one_int=False)]
    twice = next((s for s, n in Counter(seeds).items() if n > 1), None)
    if twice is not None:
        raise ValueError(f"seeds: {twice} is given twice (a seed's runs are the same every time)")
    return seeds


def _at_most(values: Iterable, most: int, name: str, what: str, *, one_int: bool = True) -> list:
    """The first values of an iterable, refused if it is empty or longer than ``most`` (read lazily:
    ``range(10**20)`` is refused, not materialised). ``one_int``: the caller takes an int alone too
    (the message says so)."""
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError
        head = list(itertools.islice(values, most + 1))
    except TypeError:
        expected = "an int or an iterable of ints" if one_int else "an iterable of ints"
        raise ValueError(f"{name}: expected {expected}, got {values!r:.60}") from None
    if not 1 <= len(head) <= most:
        raise ValueError(f"{name}: expected 1..{most} {what}, got {'more' if head else 'none'}")
    return head


def _parallelism(n_jobs: int, n_tasks: int, backend: str | None) -> int:
    """Never more parallel jobs than runs, nor (for processes on this machine) than its CPUs."""
    n_jobs = min(n_jobs, max(n_tasks, 1))
    if backend is None:
        from joblib.parallel import get_active_backend

        backend = type(get_active_backend()[0]).__name__
    if str(backend).lower().startswith(("loky", "multiprocessing")):
        n_jobs = min(n_jobs, os.cpu_count() or 1)
    return n_jobs


def _cell(bench_spec, label, cls, settings, seed, n_workers, budget, overhead, on_time=None, parent_pid=None):
    """One run: its cell ``(label, seed, n_workers)``, its result table and the wall seconds it
    took. ``on_time(simulated seconds)`` is called as the run's clock advances (every 1 % of a time
    budget), when given; ``parent_pid`` makes a worker process exit when the process that started
    it is gone."""
    if parent_pid is not None:
        die_with(parent_pid)
    started = time.perf_counter()
    bench = load_benchmark(bench_spec)
    problem = bench.problem(n_workers=n_workers, budget=budget)
    opt_seed, bench_seed = run_seeds(seed)
    optimizer = cls(problem, seed=opt_seed, **settings)
    watch = None
    if on_time is not None and budget.seconds is not None:
        step, next_at = budget.seconds / 100.0, [0.0]

        def watch(obs):
            if obs.end >= next_at[0]:
                next_at[0] = obs.end + step
                on_time(obs.end)

    with threadpool_limits(limits=1, user_api="blas"):  # as in a joblib worker, also when run in this process
        table = simulate(bench, optimizer, problem, seed=bench_seed, overhead=overhead, on_observation=watch)
    return (label, seed, n_workers), table.assign(optimizer=label, seed=seed, n_workers=n_workers), \
        time.perf_counter() - started


def _cell_key(describe, label, cls, settings, seed, n_workers, budget, overhead) -> str:
    """What decides a cell's table, hashed (see the module docstring)."""
    ident = {
        "surrobench": __version__, "benchmark": describe, "label": label,
        "optimizer": f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}",
        "settings": settings, "seed": seed, "n_workers": n_workers,
        "budget": [budget.seconds, budget.evaluations], "overhead": [overhead.model, overhead.seconds, overhead.scale],
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=repr).encode()).hexdigest()[:20]


def _cell_path(directory: Path, label: str, seed: int, n_workers: int, key: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40]
    return directory / f"{slug}-seed{seed}-w{n_workers}-{key}.npz"


def _save_cell(path: Path, table: pd.DataFrame) -> bool:
    """Store ``table`` as plain arrays and their dtypes (nothing pickled); False, with a warning,
    if a column holds something other than numbers, booleans and text."""
    arrays = {
        "columns": np.array([str(c) for c in table.columns], dtype=str),
        "dtypes": np.array([str(t) for t in table.dtypes], dtype=str),
    }
    for i, name in enumerate(table.columns):
        values = table[name].to_numpy()
        if values.dtype.kind == "O":
            if not all(isinstance(v, str) for v in values):
                logger.warning("cell %s not stored: column %s holds values other than numbers and text", path.name, name)
                return False
            values = np.array(list(values), dtype=str)
        arrays[f"c{i}"] = values
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return True


def _load_cell(path: Path, required: Iterable[str] | None = None) -> pd.DataFrame | None:
    """A stored cell's table, dtypes as stored, or None (with a warning) if it cannot be read or
    lacks one of the ``required`` columns (default: those of a comparison's ``runs`` table)."""
    try:
        # the file opened here, not by np.load, which leaves it open when the archive is truncated
        with open(path, "rb") as f:
            unpacked = sum(info.file_size for info in zipfile.ZipFile(f).infolist())
            if unpacked > MAX_CELL_BYTES:
                raise ValueError(f"it unpacks to {unpacked} bytes, more than a cell may ({MAX_CELL_BYTES})")
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                columns, dtypes = [str(c) for c in z["columns"]], [str(t) for t in z["dtypes"]]
                frame = pd.DataFrame({c: z[f"c{i}"] for i, c in enumerate(columns)}, columns=columns)
        for c, dtype in zip(columns, dtypes):
            if str(frame[c].dtype) != dtype:
                frame[c] = frame[c].astype(dtype)
        missing = [c for c in (RESULT_TABLE_COLUMNS["runs"] if required is None else required) if c not in frame.columns]
        if missing:
            raise ValueError(f"it lacks the column(s) {', '.join(missing)}")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        logger.warning("stored cell %s is unreadable (%s); running it again", path.name, exc)
        return None
    return frame


@dataclass
class Results:
    """Tidy results of :func:`compare` and their metadata."""

    runs: pd.DataFrame
    hv: pd.DataFrame
    final: pd.DataFrame
    metadata: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        return summary_table(self.final)

    def rank_tests(self, *, column: str = "hv", alpha: float = 0.05, control: str | None = None) -> dict[int, RankTest]:
        """Which optimizers the seeds separate, per worker count (:func:`surrobench.metrics.rank_test`):
        Friedman's test and Nemenyi's critical difference of the mean ranks of ``column`` (with a
        ``control``, Bonferroni-Dunn's, that optimizer against each other one). Worker counts with
        fewer than 2 optimizers or 2 seeds that every optimizer ran are left out."""
        if control is not None and control not in set(self.final["optimizer"]):
            raise ValueError(f"control: {control!r} is not among the optimizers "
                             f"({', '.join(sorted(set(self.final['optimizer'])))})")
        out = {}
        for n_workers, group in self.final.groupby("n_workers", sort=True):
            blocks = seed_blocks(group, column)
            if blocks.shape[0] >= 2 and blocks.shape[1] >= 2 and (control is None or control in blocks.columns):
                out[int(n_workers)] = rank_test(group, column=column, alpha=alpha, control=control)
        return out


def _hv_tables(runs: pd.DataFrame, cells, ref, max_epoch: int, horizon: float, n_grid: int):
    ends = runs["end"].to_numpy()
    t_min = float(ends[ends > 0].min()) if (ends > 0).any() else horizon / 1e3
    grid = time_grid(min(t_min, horizon / 10), horizon, n_grid)
    hv_rows, final_rows = [], []
    groups = {k: g for k, g in runs.groupby(["optimizer", "seed", "n_workers"], sort=False)}
    for label, seed, n_workers in cells:
        g = groups.get((label, seed, n_workers), runs.iloc[:0])
        hv_all = hv_over_time(g, grid, ref=ref)
        hv_max = hv_over_time(g, grid, ref=ref, max_epoch=max_epoch)
        hv_rows.append(pd.DataFrame({
            "optimizer": label, "seed": seed, "n_workers": n_workers, "time": grid, "hv": hv_all, "hv_max_fidelity": hv_max,
        }))
        final_rows.append({
            "optimizer": label, "seed": seed, "n_workers": n_workers,
            "hv": hv_all[-1], "hv_max_fidelity": hv_max[-1],
            "test_hv": test_hypervolume(g, ref=ref), "test_hv_max_fidelity": test_hypervolume(g, ref=ref, max_epoch=max_epoch),
            "jobs": len(g), "epochs_trained": int((g["epoch"] - g["from_epoch"]).sum()) if len(g) else 0,
        })
    final = pd.DataFrame(final_rows)
    final["rank"] = final.groupby(["n_workers", "seed"])["hv"].rank(ascending=False, method="average")
    return pd.concat(hv_rows, ignore_index=True), final


def summary_table(final: pd.DataFrame) -> pd.DataFrame:
    """Hypervolume at the budget per optimizer (and worker count): median, quartiles, mean rank."""
    q = lambda p: (lambda s: s.quantile(p))  # noqa: E731
    table = final.groupby(["n_workers", "optimizer"]).agg(
        hv_median=("hv", "median"), hv_q25=("hv", q(0.25)), hv_q75=("hv", q(0.75)),
        hv_max_fidelity=("hv_max_fidelity", "median"), test_hv=("test_hv", "median"),
        mean_rank=("rank", "mean"), jobs=("jobs", "median"), seeds=("seed", "nunique"),
    )
    return table.sort_values(["n_workers", "mean_rank", "hv_median"], ascending=[True, True, False])


def compare(
    benchmark=None,
    optimizers=None,
    *,
    seeds: Iterable[int] = range(10),
    n_workers: Iterable[int] | int = (1,),
    budget: Budget | float | None = None,
    overhead: Overhead | str | float = "none",
    n_jobs: int = 1,
    backend: str | None = None,
    n_grid: int = 200,
    on_cell: Callable[[], None] | None = None,
    on_run: Callable[[str, int, int, float | None], None] | None = None,
    on_time: Callable[[str, int, int, float], None] | None = None,
    cells_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> Results:
    """Run every optimizer with every seed and worker count; default: the shipped flowers17
    surrogate, all optimizers, 10 seeds, 24 simulated hours, one worker.

    ``benchmark`` is a benchmark object, a surrogate path/archive or ``None``; passing a path
    lets each parallel worker load it once instead of receiving a copy. ``budget`` is a
    :class:`~surrobench.simulator.Budget` or a number of simulated seconds; ``overhead`` an
    :class:`~surrobench.simulator.Overhead`, ``"none"``, ``"measured"`` or fixed seconds per
    decision. ``cells_dir`` stores every finished cell as it arrives and ``resume`` reuses the
    stored ones (see the module docstring). ``on_cell`` is called once per cell, stored or run;
    ``on_run(label, seed, n_workers, seconds)`` too, with the run's wall seconds (``None`` for a
    stored cell), for progress estimates. With ``n_jobs=1`` the runs are made in this process and
    ``on_time(label, seed, n_workers, simulated_seconds)`` follows each run's clock.
    """
    from joblib import Parallel, delayed

    budget = Budget(seconds=DAY) if budget is None else as_budget(budget)
    overhead = as_overhead(overhead)
    workers = _at_most([n_workers] if is_int(n_workers) else n_workers, MAX_WORKER_COUNTS, "n_workers", "worker counts")
    workers = [as_int(w, "n_workers", low=1, high=MAX_WORKERS) for w in workers]
    seeds = as_seeds(seeds)
    n_jobs = as_int(n_jobs, "n_jobs", low=1, high=MAX_JOBS)
    n_grid = as_int(n_grid, "n_grid", low=2, high=MAX_GRID)
    if resume and cells_dir is None:
        raise ValueError("resume: needs cells_dir, the folder where the cells were stored")
    opts = resolve_optimizers(optimizers)
    store = None if cells_dir is None else check_writable_dir(cells_dir, "cells_dir")
    bench = load_benchmark(benchmark)
    if not callable(getattr(bench, "problem", None)) or not callable(getattr(bench, "answer", None)):
        raise ValueError(f"benchmark: expected a benchmark (problem(), answer()), a surrogate path or name, or None; "
                         f"got {type(benchmark).__name__} {benchmark!r:.60}")
    check_settings(opts, bench.problem(n_workers=workers[0], budget=budget))
    describe = bench.describe() if callable(getattr(bench, "describe", None)) else {}  # the key of stored cells
    if store is not None and not describe:
        raise ValueError("cells_dir: the benchmark has no describe() to key its stored cells by")
    if store is not None and "checksum" in describe and describe["checksum"] is None:
        raise ValueError("cells_dir: the surrogate was never saved, so it has no checksum to key its stored cells by")
    spec = benchmark if isinstance(benchmark, (str, os.PathLike)) or benchmark is None else bench
    cells = [(label, int(s), w) for w in workers for label in opts for s in seeds]
    paths = {}
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
        for label, s, w in cells:
            key = _cell_key(describe, label, opts[label][0], opts[label][1], s, w, budget, overhead)
            paths[label, s, w] = _cell_path(store, label, s, w, key)
    tables: dict[tuple, pd.DataFrame] = {}
    if resume:
        for cell in cells:
            table = _load_cell(paths[cell]) if paths[cell].is_file() else None
            if table is not None:
                tables[cell] = table
                if on_cell is not None:
                    on_cell()
                if on_run is not None:
                    on_run(*cell, None)
    todo = sorted((cell for cell in cells if cell not in tables), key=lambda cell: -_prior_cost(cell[0]))
    n_jobs = _parallelism(n_jobs, len(todo), backend)

    def clock(label, s, w):  # only in this process (a callback does not travel to parallel workers)
        if on_time is None or n_jobs != 1:
            return None
        return lambda seconds: on_time(label, s, w, seconds)

    tasks = (delayed(_cell)(spec, label, opts[label][0], opts[label][1], s, w, budget, overhead, clock(label, s, w),
                            os.getpid())
             for label, s, w in todo)
    # as they finish (the results do not depend on the order): a progress bar hears of each run
    # when it ends, not when every run started before it has ended too
    for cell, table, seconds in Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")(tasks):
        tables[cell] = table
        if store is not None:
            _save_cell(paths[cell], table)
        if on_cell is not None:
            on_cell()
        if on_run is not None:
            on_run(*cell, seconds)
    runs = pd.concat([tables[cell] for cell in cells], ignore_index=True)
    horizon = budget.seconds if budget.seconds is not None else max(float(runs["end"].max()) if len(runs) else 1.0, 1.0)
    ref = np.asarray(bench.reference_point, dtype=float)
    hv, final = _hv_tables(runs, cells, ref, bench.max_epoch, horizon, n_grid)
    describe = bench.describe() if callable(getattr(bench, "describe", None)) else {}  # after the runs
    metadata = {
        "surrobench": __version__,
        "python": platform.python_version(),
        "versions": _versions(),
        "blas": blas_kernels(),
        "benchmark": describe,
        "reference_point": ref.tolist(),
        "max_epoch": bench.max_epoch,
        "optimizers": {k: {"class": f"{v[0].__module__}.{v[0].__qualname__}", "settings": v[1]} for k, v in opts.items()},
        "seeds": seeds,
        "n_workers": workers,
        "budget": {"seconds": budget.seconds, "evaluations": budget.evaluations},
        "overhead": {"model": overhead.model, "seconds": overhead.seconds, "scale": overhead.scale},
    }
    return Results(runs=runs, hv=hv, final=final, metadata=metadata)


def _versions() -> dict[str, str]:
    import joblib
    import moocore
    import sklearn

    return {"numpy": np.__version__, "pandas": pd.__version__, "joblib": joblib.__version__,
            "moocore": getattr(moocore, "__version__", "?"), "scikit-learn": sklearn.__version__}


def blas_kernels() -> list[dict[str, str]]:
    """The BLAS libraries loaded in this process and the CPU kernel each one uses.

    The Gaussian-process and Bayesian-optimisation methods compare acquisition values that differ in
    the last bits between BLAS kernels (OpenBLAS picks one by CPU: ``Zen``, ``SkylakeX``, ``Haswell``,
    ...), so the same seed can take a different path on another CPU. Runs are bit-identical where the
    kernel is the same; to replay a table made elsewhere, set ``OPENBLAS_CORETYPE`` to the kernel it
    records here.
    """
    from threadpoolctl import threadpool_info

    return [{"library": d.get("internal_api", "?"), "prefix": d.get("prefix", "?"), "version": str(d.get("version")),
             "architecture": str(d.get("architecture"))}
            for d in threadpool_info() if d.get("user_api") == "blas"]


def _table_format() -> str:
    try:
        import pyarrow  # noqa: F401

        return "parquet"
    except ImportError:
        return "csv"


PARALLEL_CSV_ROWS = 200_000
"""Tables with at least this many rows are formatted as CSV in row blocks by several processes."""


def _csv_block(frame: pd.DataFrame, header: bool) -> str:
    return frame.to_csv(index=False, header=header)


def _write_csv(frame: pd.DataFrame, path: Path, n_jobs: int) -> None:
    """``frame.to_csv(path, index=False)``, the same bytes; a large table is formatted in row blocks
    by ``n_jobs`` processes (formatting is the slow part: about 50,000 rows a second on one core)."""
    n_jobs = max(1, min(int(n_jobs), os.cpu_count() or 1))
    if n_jobs == 1 or len(frame) < PARALLEL_CSV_ROWS:
        frame.to_csv(path, index=False)
        return
    from joblib import Parallel, delayed

    bounds = np.linspace(0, len(frame), 4 * n_jobs + 1).astype(int)
    blocks = (delayed(_csv_block)(frame.iloc[a:b], i == 0) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])))
    with open(path, "w", encoding="utf-8", newline="") as f:
        for text in Parallel(n_jobs=n_jobs, return_as="generator")(blocks):  # in order, written as they come
            f.write(text)


def write_results(results: Results, directory: str | os.PathLike, *, n_jobs: int = 1) -> Path:
    """Write ``runs``, ``hv`` and ``final`` (parquet where pyarrow is there, else CSV) and
    ``metadata.json`` into ``directory``; existing result files there are replaced.

    Each file is written beside its final name and then renamed over it (metadata last), so no
    file is ever left half-written. ``n_jobs`` processes format a large CSV table (the runs of a
    24-hour comparison: millions of rows) in blocks; the bytes are those of one process.
    """
    d = check_writable_dir(directory, "out")
    d.mkdir(parents=True, exist_ok=True)
    fmt = _table_format()
    for name in ("runs", "hv", "final"):
        frame = getattr(results, name)
        tmp = d / f".{name}.{fmt}.tmp"
        frame.to_parquet(tmp, index=False) if fmt == "parquet" else _write_csv(frame, tmp, n_jobs)
        os.replace(tmp, d / f"{name}.{fmt}")
    meta = dict(results.metadata, table_format=fmt)
    tmp = d / ".metadata.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
    os.replace(tmp, d / "metadata.json")
    return d


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not math.isfinite(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


# What a results folder's tables must hold (what report and its plots read); all of it non-null.
_CELL = ["optimizer", "seed", "n_workers"]
RESULT_TABLE_COLUMNS = {
    "runs": _CELL + ["job_id", "trial", "worker", "start", "end", "config_id", "epoch", "from_epoch", "val_error",
                     "log10_params"],
    "hv": _CELL + ["time", "hv", "hv_max_fidelity"],
    "final": _CELL + ["hv", "hv_max_fidelity", "jobs", "epochs_trained", "rank"],
}


def read_results(directory: str | os.PathLike, *, summary_only: bool = False) -> Results:
    """Read what :func:`write_results` wrote, checking each file: ``metadata.json`` a JSON object,
    each table readable with its columns (non-null), and the tables consistent with each other
    (every cell's jobs in ``runs``, the same time grid for every cell in ``hv``), so that a
    damaged or truncated file is refused with a one-line ``ValueError`` naming it.
    ``summary_only`` reads ``metadata.json`` and ``final`` alone (``runs`` and ``hv`` come back
    empty): enough for :meth:`Results.summary`, e.g. of a comparison whose large tables were
    not kept."""
    d = Path(directory)
    meta_path = d / "metadata.json"
    if not meta_path.is_file():
        raise ValueError(f"results: {d} holds no metadata.json (not a surrobench results directory)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ValueError(f"results: {meta_path} is damaged (not valid JSON: {str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"results: {meta_path} is not a JSON object")
    fmt = meta.get("table_format", "csv")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"results: {meta_path} has table_format {fmt!r:.40}, expected csv or parquet")
    budget = meta.get("budget", {})
    if not isinstance(budget, dict) or not isinstance(meta.get("reference_point", []), list):
        raise ValueError(f"results: {meta_path} has a malformed budget or reference_point")
    names = ("final",) if summary_only else tuple(RESULT_TABLE_COLUMNS)
    tables = {name: _read_table(d / f"{name}.{fmt}", fmt, RESULT_TABLE_COLUMNS[name]) for name in names}
    expected = [meta.get(k) for k in ("optimizers", "seeds", "n_workers")]
    if all(isinstance(v, (list, dict)) for v in expected):
        n_cells = len(expected[0]) * len(expected[1]) * len(expected[2])
        if len(tables["final"]) != n_cells:
            raise ValueError(f"results: {d / f'final.{fmt}'} holds {len(tables['final'])} cells, metadata.json "
                             f"lists {n_cells}: damaged or truncated")
    if summary_only:
        return Results(runs=pd.DataFrame(columns=RESULT_TABLE_COLUMNS["runs"]),
                       hv=pd.DataFrame(columns=RESULT_TABLE_COLUMNS["hv"]), final=tables["final"], metadata=meta)
    _check_consistent(d, fmt, **tables)
    return Results(metadata=meta, **tables)


def simulated(seconds: float) -> str:
    """A simulated duration in words: "24 simulated hours", "10 simulated minutes", "1 simulated hour"."""
    for unit, size in (("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
        if seconds >= size or unit == "second":
            value = seconds / size
            text = f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.2f}".rstrip("0")
            return f"{text} simulated {unit}{'' if text == '1' else 's'}"
    raise AssertionError  # pragma: no cover


def markdown_summary(results: Results, *, control: str | None = None) -> str:
    """:meth:`Results.summary` as a markdown table, with what it was measured on above it and which
    differences its seeds separate below it (:meth:`Results.rank_tests`, with ``control`` if given)."""
    table = results.summary().reset_index()
    meta = results.metadata
    budget = meta.get("budget", {}) or {}
    what = []
    if budget.get("seconds"):
        what.append(simulated(float(budget["seconds"])))
    if budget.get("evaluations"):
        what.append(f"{budget['evaluations']} evaluations")
    bench = meta.get("benchmark", {}) or {}
    name = bench.get("surrogate") or bench.get("name") or "benchmark"
    seeds = int(table["seeds"].max()) if len(table) else 0
    several = table["n_workers"].nunique() > 1
    head = (f"{name} ({bench.get('runtime_device', 'its clock')}), {' / '.join(what)}, "
            f"{seeds} seeds, reference point {meta.get('reference_point')}; median over seeds")
    cols = ["workers"] if several else []
    lines = [head, "", "| " + " | ".join(cols + ["optimizer", "median HV", "q25", "q75", "max-fidelity HV", "test HV",
                                                  "mean rank", "jobs (median)"]) + " |",
             "|" + "---|" * (len(cols) + 8)]
    for row in table.itertuples(index=False):
        cells = [str(row.n_workers)] if several else []
        cells += [row.optimizer, f"{row.hv_median:.3f}", f"{row.hv_q25:.3f}", f"{row.hv_q75:.3f}",
                  f"{row.hv_max_fidelity:.3f}", f"{row.test_hv:.3f}", f"{row.mean_rank:.1f}", f"{row.jobs:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    tests = rank_test_lines(results, control=control)
    named = settings_line(meta)
    return "\n".join(lines + ([""] + tests if tests else []) + ([""] + [named] if named else [])) + "\n"


def settings_line(metadata: Mapping[str, Any]) -> str | None:
    """One line naming each compared optimizer that runs with settings or under a label other than its
    name, as ``label = Class(key=value, ...)`` (from ``metadata.json``); ``None`` where there is none.

    >>> settings_line({"optimizers": {"nsga2": {"class": "surrobench.optimizers.nsga2.NSGA2", "settings": {}},
    ...     "nsga2-40": {"class": "surrobench.optimizers.nsga2.NSGA2", "settings": {"population_size": 40}}}})
    'settings: nsga2-40 = NSGA2(population_size=40)'
    """
    parts = []
    for label, spec in (metadata.get("optimizers") or {}).items():
        spec = spec if isinstance(spec, Mapping) else {}
        cls_name = str(spec.get("class", "?")).rsplit(".", 1)[-1]
        settings = spec.get("settings") or {}
        known = OPTIMIZERS.get(label)
        if settings or (known is not None and known.__name__ != cls_name):
            parts.append(f"{label} = {cls_name}({', '.join(f'{k}={v!r}' for k, v in settings.items())})")
        elif known is None and cls_name in {c.__name__ for c in OPTIMIZERS.values()}:
            parts.append(f"{label} = {cls_name}()")  # one of ours under another label
    return "settings: " + "; ".join(parts) if parts else None


def rank_test_lines(results: Results, *, control: str | None = None) -> list[str]:
    """:meth:`Results.rank_tests` in words, one line per worker count (named where there are several)."""
    tests = results.rank_tests(control=control)
    return [(f"{n} worker{'' if n == 1 else 's'}: " if len(tests) > 1 else "") + test.describe()
            for n, test in tests.items()]


def _read_table(path: Path, fmt: str, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise ValueError(f"results: {path} is missing")
    try:
        if fmt == "csv":
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(size - 1, 0))
                if f.read(1) != b"\n":
                    raise ValueError("truncated (no final line end)")
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except (ValueError, OSError, ImportError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"results: {path} is damaged or unreadable ({text[:200]})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"results: {path} lacks the column(s) {', '.join(missing)}")
    holes = [c for c in columns if frame[c].isna().any()]
    if holes:
        raise ValueError(f"results: {path} has empty values in {', '.join(holes)} (damaged or truncated)")
    numeric = [c for c in columns if c not in ("optimizer", "config_id") and not pd.api.types.is_numeric_dtype(frame[c])]
    if numeric:
        raise ValueError(f"results: {path} has non-numbers in {', '.join(numeric)}")
    if frame.empty and path.stem != "runs":
        raise ValueError(f"results: {path} holds no rows")
    return frame


def _check_consistent(d: Path, fmt: str, *, runs: pd.DataFrame, hv: pd.DataFrame, final: pd.DataFrame) -> None:
    if final.duplicated(_CELL).any():
        raise ValueError(f"results: {d / f'final.{fmt}'} lists a (optimizer, seed, n_workers) cell twice")
    cells = final.set_index(_CELL)["jobs"]
    counted = runs.groupby(_CELL).size().reindex(cells.index, fill_value=0)
    if len(runs) != int(cells.sum()) or not (counted == cells).all():
        raise ValueError(f"results: {d / f'runs.{fmt}'} holds {len(runs)} jobs, final.{fmt} counts {int(cells.sum())}: "
                         "damaged or truncated")
    grid = hv.groupby(_CELL).size()
    if len(grid) != len(cells) or grid.nunique() != 1:
        raise ValueError(f"results: {d / f'hv.{fmt}'} does not hold one equal time grid per cell of final.{fmt}: "
                         "damaged or truncated")
