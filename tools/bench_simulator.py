"""Simulator speed: one 24-hour random-search run on the shipped surrogate (1 and 16 workers).

For each number of workers it prints the wall time of the run (median of ``--repeats``) and
simulated seconds per real second, and, in the same process on the same jobs, two references:

* ``single``: the same run with the look-ahead hidden — random search's ``upcoming`` is not
  offered, so every new config is predicted alone (numpy forest, one row) when its job starts;
  single / run is what predicting a block of configs in one batch buys;
* ``xgb``: the path before the numpy forest — every new config answered by XGBoost's own
  ``inplace_predict`` one row at a time, ``cost`` and ``query`` called separately; xgb / run.

The three runs must give identical result tables (``same``). Every measurement uses a fresh
benchmark (an empty answer cache) on the same loaded surrogate.
Target: the 1-worker 24-hour run (about 10,000 jobs) under 2 s.

    python tools/bench_simulator.py [--benchmark PATH] [--repeats 3] [--workers 1,16]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import surrobench  # noqa: E402
from surrobench.benchmark import SurrogateBenchmark  # noqa: E402
from surrobench.optimizers import RandomSearch  # noqa: E402
from surrobench.records import Problem  # noqa: E402
from surrobench.simulator import Budget, simulate  # noqa: E402

DAY = 24 * 3600.0


class PreviousPath:
    """The benchmark as the simulator used it first: ``cost`` and ``query`` called apart."""

    def __init__(self, bench: SurrogateBenchmark):
        self.bench = bench
        self.task = bench.task

    def answer(self, job, *, seed=0):
        return self.cost(job.config, job.epoch, from_epoch=job.from_epoch, seed=seed), \
            self.query(job.config, job.epoch, seed=seed)

    def cost(self, config, epoch, *, from_epoch=0, seed=0):
        return self.bench.cost(config, epoch, from_epoch=from_epoch, seed=seed)

    def query(self, config, epoch, *, seed=0):
        return self.bench.query(config, epoch, seed=seed)


class OneByOne(RandomSearch):
    """Random search without its look-ahead: the simulator cannot prefetch."""

    upcoming = None


def one_run(bench, n_workers: int, seed: int, optimizer=RandomSearch):
    t0 = time.perf_counter()
    problem = Problem(bench.task, n_workers=n_workers, budget=Budget(seconds=DAY))
    table = simulate(bench, optimizer(problem, seed=seed), problem, seed=seed)
    return time.perf_counter() - t0, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", help="surrogate directory or archive (default: the shipped flowers17 one)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", default="1,16", help="comma-separated numbers of workers (default 1,16)")
    args = p.parse_args()
    surrogate = surrobench.load(args.benchmark).surrogate
    if surrogate._forest is None:
        sys.exit("this surrogate's booster could not be exported to the numpy forest: nothing to compare")
    old = copy.copy(surrogate)
    old._forest = None  # every row through XGBoost's inplace_predict

    print(f"benchmark: {surrogate.name}; budget 24 simulated hours; random search; median of {args.repeats}")
    print(f"{'workers':>7} {'jobs':>7} {'run s':>8} {'sim s/real s':>12} {'single s':>8} {'single/run':>10} "
          f"{'xgb s':>8} {'xgb/run':>7} {'same':>5}")
    for n_workers in (int(w) for w in args.workers.split(",")):
        runs, singles, olds, same = [], [], [], True
        for r in range(args.repeats):
            wall, table = one_run(SurrogateBenchmark(surrogate), n_workers, seed=r)
            runs.append(wall)
            wall_single, table_single = one_run(SurrogateBenchmark(surrogate), n_workers, seed=r, optimizer=OneByOne)
            singles.append(wall_single)
            wall_old, table_old = one_run(PreviousPath(SurrogateBenchmark(old)), n_workers, seed=r)
            olds.append(wall_old)
            same &= table.equals(table_single) and table.equals(table_old)
        run, single, prev = (statistics.median(v) for v in (runs, singles, olds))
        print(f"{n_workers:>7} {len(table):>7} {run:>8.3f} {DAY / run:>12.0f} {single:>8.3f} {single / run:>10.2f} "
              f"{prev:>8.3f} {prev / run:>7.2f} {'yes' if same else 'NO':>5}")


if __name__ == "__main__":
    main()
