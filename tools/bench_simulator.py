"""Simulator speed: one 24-hour random-search run on the shipped surrogate, 1 and 16 workers.

Prints the wall time of each run, simulated seconds per real second, and, side by side in the
same run, the reference: the bare benchmark calls the same jobs need (``query`` and ``cost`` for
the same configs and seeds, in a plain loop). Their ratio is what the simulator, the optimizer
and the record-keeping add on top of the benchmark. Target: the 24-hour run under 2 s.

    python tools/bench_simulator.py [--benchmark PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import surrobench  # noqa: E402
from surrobench.optimizers import RandomSearch  # noqa: E402
from surrobench.records import Problem  # noqa: E402
from surrobench.simulator import Budget, simulate, trial_seed  # noqa: E402

DAY = 24 * 3600.0


def one_run(bench, n_workers: int, seed: int):
    jobs = []
    t0 = time.perf_counter()
    simulate(bench, RandomSearch(Problem(n_workers=n_workers), seed=seed), Budget(seconds=DAY),
             n_workers=n_workers, seed=seed, on_observation=lambda o: jobs.append((o.config, o.epoch, o.trial)))
    return time.perf_counter() - t0, jobs


def bare_calls(bench, jobs, seed: int) -> float:
    """The benchmark work of the same jobs without the simulator around it."""
    t0 = time.perf_counter()
    for cfg, epoch, trial in jobs:
        s = trial_seed(seed, trial)
        bench.cost(cfg, epoch, seed=s)
        bench.query(cfg, epoch, seed=s)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", help="surrogate directory or archive (default: the shipped flowers17 one)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    bench = surrobench.load(args.benchmark)
    print(f"benchmark: {bench.describe().get('name', bench.dataset)}; budget 24 simulated hours; random search")
    print(f"{'workers':>7} {'jobs':>6} {'wall s (median)':>16} {'sim s / real s':>15} {'bare calls s':>13} {'ratio':>6}")
    for n_workers in (1, 16):
        walls, bares = [], []
        for r in range(args.repeats):
            wall, jobs = one_run(bench, n_workers, seed=r)
            walls.append(wall)
            bares.append(bare_calls(bench, jobs, seed=r))
        walls.sort()
        bares.sort()
        wall, bare = walls[len(walls) // 2], bares[len(bares) // 2]
        print(f"{n_workers:>7} {len(jobs):>6} {wall:>16.3f} {DAY / wall:>15.0f} {bare:>13.3f} {wall / bare:>6.2f}")


if __name__ == "__main__":
    main()
