"""How long ``compare`` takes to write its runs table, one process against several, in one run.

Builds a runs table of at least ``--rows`` rows from 24-hour random-search runs on the shipped
surrogate (about 8,700 jobs a seed; the paper's protocol writes about 3.3 million rows), then
writes it with :func:`surrobench.compare.write_results` first with one process (the reference,
``DataFrame.to_csv``), then with ``--jobs`` processes formatting row blocks, and checks that the
two ``runs.csv`` files have the same bytes. Wall seconds (the point is the wall clock), best of
``--repeats``.

    python tools/bench_write.py [--rows 600000] [--jobs 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from surrobench.compare import compare, write_results  # noqa: E402
from surrobench.simulator import Budget  # noqa: E402


def table(rows: int):
    """A comparison whose runs table holds at least ``rows`` rows (random search, 24 h per seed)."""
    runs, seed = [], 0
    while sum(len(r) for r in runs) < rows:
        part = compare(None, ["random"], seeds=range(seed, seed + 8), budget=Budget(seconds=24 * 3600))
        runs.append(part.runs)
        seed += 8
    part.runs = pd.concat(runs, ignore_index=True)
    return part


def best_wall(results, directory: Path, n_jobs: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        write_results(results, directory, n_jobs=n_jobs)
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=600_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    results = table(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        serial = best_wall(results, one, 1, args.repeats)
        parallel = best_wall(results, many, args.jobs, args.repeats)
        same = filecmp.cmp(one / "runs.csv", many / "runs.csv", shallow=False)
        size = (one / "runs.csv").stat().st_size / 1e6
    n = len(results.runs)
    print(f"runs table: {n:,} rows, {size:.0f} MB of CSV; write_results, wall seconds (best of {args.repeats})")
    print(f"{'processes':>9} {'seconds':>8} {'rows/s':>9} {'ratio':>6}")
    print(f"{1:>9} {serial:8.2f} {n / serial:9,.0f} {1.0:6.2f}")
    print(f"{args.jobs:>9} {parallel:8.2f} {n / parallel:9,.0f} {parallel / serial:6.2f}")
    print(f"same bytes: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
