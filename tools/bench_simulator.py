"""Simulator speed: one 24-hour random-search run on the shipped surrogate (1 and 16 workers).

For each number of workers it prints the wall time of the run (median of ``--repeats``),
simulated seconds per real second, and, measured in the same process on the same jobs:

* ``bare``: the benchmark calls alone — one ``job`` call (cost and result) per job, in a
  plain loop; run / bare is what the simulator, the optimizer and the record keeping add;
* ``xgb``: the same run on the previous path — every new config answered by XGBoost's own
  ``inplace_predict`` on the merged booster, ``cost`` and ``query`` called separately —
  and xgb / run, the speed-up. The two runs must give identical result tables (checked).

Every measurement uses a fresh benchmark (an empty answer cache) on the same loaded surrogate.
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
from surrobench.simulator import Budget, simulate, trial_seed  # noqa: E402

DAY = 24 * 3600.0


class PreviousPath:
    """The benchmark as the simulator used it before: ``cost`` at the start, ``query`` at the end."""

    def __init__(self, bench: SurrogateBenchmark):
        self.bench = bench

    def cost(self, config, epoch, *, from_epoch=0, seed=0):
        return self.bench.cost(config, epoch, from_epoch=from_epoch, seed=seed)

    def query(self, config, epoch, *, seed=0):
        return self.bench.query(config, epoch, seed=seed)


def one_run(bench, n_workers: int, seed: int):
    jobs = []
    t0 = time.perf_counter()
    table = simulate(bench, RandomSearch(Problem(n_workers=n_workers), seed=seed), Budget(seconds=DAY),
                     n_workers=n_workers, seed=seed, on_observation=lambda o: jobs.append((o.config, o.epoch, o.trial)))
    return time.perf_counter() - t0, jobs, table


def bare_calls(bench, jobs, seed: int) -> float:
    """The benchmark work of the same jobs without the simulator around it."""
    seeds = [trial_seed(seed, trial) for _, _, trial in jobs]
    t0 = time.perf_counter()
    for (cfg, epoch, _), s in zip(jobs, seeds):
        bench.job(cfg, epoch, seed=s)
    return time.perf_counter() - t0


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

    def fresh(s):
        return SurrogateBenchmark(s)

    print(f"benchmark: {surrogate.name}; budget 24 simulated hours; random search; median of {args.repeats}")
    print(f"{'workers':>7} {'jobs':>7} {'run s':>8} {'sim s/real s':>12} {'bare s':>8} {'run/bare':>8} "
          f"{'xgb s':>8} {'xgb/run':>7} {'same':>5}")
    for n_workers in (int(w) for w in args.workers.split(",")):
        runs, bares, olds, same = [], [], [], True
        for r in range(args.repeats):
            wall, jobs, table = one_run(fresh(surrogate), n_workers, seed=r)
            runs.append(wall)
            bares.append(bare_calls(fresh(surrogate), jobs, seed=r))
            wall_old, _, table_old = one_run(PreviousPath(fresh(old)), n_workers, seed=r)
            olds.append(wall_old)
            same &= table.equals(table_old)
        run, bare, prev = (statistics.median(v) for v in (runs, bares, olds))
        print(f"{n_workers:>7} {len(jobs):>7} {run:>8.3f} {DAY / run:>12.0f} {bare:>8.3f} {run / bare:>8.2f} "
              f"{prev:>8.3f} {prev / run:>7.2f} {'yes' if same else 'NO':>5}")


if __name__ == "__main__":
    main()
