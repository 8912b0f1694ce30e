"""Compare optimizers × seeds × worker counts on a benchmark, on a simulated wall-clock.

Each (optimizer, seed, n_workers) cell is one :func:`~surrobench.simulator.simulate` run;
cells run in parallel through joblib (any joblib back-end). The results are tidy tables:
``runs`` (one row per finished job) and ``hv`` (hypervolume over a common time grid).
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from . import __version__
from ._paths import check_writable_dir
from .metrics import hv_over_time, test_hypervolume, time_grid
from .optimizers import OPTIMIZERS
from .records import Problem
from .simulator import Budget, Overhead, as_budget, simulate

__all__ = ["Results", "compare", "resolve_optimizers", "write_results", "read_results", "summary_table"]

DAY = 24 * 3600.0


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
                raise ValueError(f"optimizer: unknown name {spec!r} (known: {', '.join(OPTIMIZERS)})")
            spec = OPTIMIZERS[spec]
        if not callable(getattr(spec, "__call__", None)):
            raise ValueError(f"optimizer {label!r}: expected a name or a class, got {spec!r}")
        label = label if isinstance(label, str) else getattr(spec, "__name__", str(spec))
        out[label] = (spec, dict(settings))
    if not out:
        raise ValueError("optimizer: give at least one")
    return out


_BENCH_CACHE: dict[str, Any] = {}


def _benchmark(spec):
    if spec is None or isinstance(spec, (str, os.PathLike)):
        key = str(spec)
        if key not in _BENCH_CACHE:
            import surrobench

            _BENCH_CACHE[key] = surrobench.load(spec)
        return _BENCH_CACHE[key]
    return spec


def _cell(bench_spec, label, cls, settings, seed, n_workers, budget, overhead):
    bench = _benchmark(bench_spec)
    problem = Problem(
        min_epoch=bench.min_epoch, max_epoch=bench.max_epoch, n_workers=n_workers,
        time_budget=budget.seconds, max_evaluations=budget.evaluations,
    )
    seq = np.random.SeedSequence([int(seed), 0x5EED])
    opt_seed, bench_seed = (int(s.generate_state(1)[0]) for s in seq.spawn(2))
    optimizer = cls(problem, seed=opt_seed, **settings)
    table = simulate(bench, optimizer, budget, n_workers=n_workers, seed=bench_seed, overhead=overhead)
    return table.assign(optimizer=label, seed=seed, n_workers=n_workers)


@dataclass
class Results:
    """Tidy results of :func:`compare` and their metadata."""

    runs: pd.DataFrame
    hv: pd.DataFrame
    final: pd.DataFrame
    metadata: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        return summary_table(self.final)


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
    overhead: Overhead | str = "none",
    n_jobs: int = 1,
    backend: str | None = None,
    n_grid: int = 200,
    on_cell: Callable[[], None] | None = None,
) -> Results:
    """Run every optimizer with every seed and worker count; default: the shipped flowers17
    surrogate, all optimizers, 10 seeds, 24 simulated hours, one worker.

    ``benchmark`` is a benchmark object, a surrogate path/archive or ``None``; passing a path
    lets each parallel worker load it once instead of receiving a copy. ``budget`` is a
    :class:`~surrobench.simulator.Budget` or a number of simulated seconds.
    """
    from joblib import Parallel, delayed

    budget = Budget(seconds=DAY) if budget is None else as_budget(budget)
    if isinstance(overhead, str):
        overhead = Overhead(overhead)
    workers = [n_workers] if isinstance(n_workers, int) else list(n_workers)
    if not workers or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in workers):
        raise ValueError(f"n_workers: expected positive ints, got {n_workers!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds: expected non-negative ints, got {seeds!r}")
    opts = resolve_optimizers(optimizers)
    bench = _benchmark(benchmark)
    spec = benchmark if isinstance(benchmark, (str, os.PathLike)) or benchmark is None else bench
    cells = [(label, int(s), w) for w in workers for label in opts for s in seeds]
    tasks = (delayed(_cell)(spec, label, opts[label][0], opts[label][1], s, w, budget, overhead) for label, s, w in cells)
    tables = []
    for table in Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")(tasks):
        tables.append(table)
        if on_cell is not None:
            on_cell()
    runs = pd.concat(tables, ignore_index=True)
    horizon = budget.seconds if budget.seconds is not None else max(float(runs["end"].max()) if len(runs) else 1.0, 1.0)
    ref = np.asarray(bench.reference_point, dtype=float)
    hv, final = _hv_tables(runs, cells, ref, bench.max_epoch, horizon, n_grid)
    describe = bench.describe() if hasattr(bench, "describe") else {}
    metadata = {
        "surrobench": __version__,
        "python": platform.python_version(),
        "versions": _versions(),
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


def _table_format() -> str:
    try:
        import pyarrow  # noqa: F401

        return "parquet"
    except ImportError:
        return "csv"


def write_results(results: Results, directory: str | os.PathLike) -> Path:
    """Write ``runs``, ``hv`` and ``final`` (parquet where pyarrow is there, else CSV) and
    ``metadata.json`` into ``directory``; existing result files there are replaced.

    Each file is written beside its final name and then renamed over it (metadata last), so no
    file is ever left half-written.
    """
    d = check_writable_dir(directory, "out")
    d.mkdir(parents=True, exist_ok=True)
    fmt = _table_format()
    for name in ("runs", "hv", "final"):
        frame = getattr(results, name)
        tmp = d / f".{name}.{fmt}.tmp"
        frame.to_parquet(tmp, index=False) if fmt == "parquet" else frame.to_csv(tmp, index=False)
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


def read_results(directory: str | os.PathLike) -> Results:
    """Read what :func:`write_results` wrote."""
    d = Path(directory)
    meta_path = d / "metadata.json"
    if not meta_path.is_file():
        raise ValueError(f"results: {d} holds no metadata.json (not a surrobench results directory)")
    meta = json.loads(meta_path.read_text())
    fmt = meta.get("table_format", "csv")
    tables = {}
    for name in ("runs", "hv", "final"):
        path = d / f"{name}.{fmt}"
        if not path.is_file():
            raise ValueError(f"results: {path} is missing")
        tables[name] = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    return Results(metadata=meta, **tables)
