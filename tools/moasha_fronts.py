"""Where MO-ASHA's front updates go, rung by rung (issue 16: its simulated day should cost <= 10 s).

MO-ASHA keeps the first non-dominated fronts of each rung exact as results arrive
(:class:`surrobench.optimizers._fronts.Fronts`): a result dominated by the last kept front goes to
the pool at once, any other one enters its front and pushes the members it dominates one front back,
and those push theirs, down to the last kept front. This tool runs MO-ASHA seeded as ``surrobench
compare`` seeds its run ``--seed`` (one worker, ``--hours`` simulated hours), watches every
``Fronts.add`` without changing it, and prints per rung: the results added, how many went straight to
the pool, the kept fronts (at the end, and the median a result met), and for the results that entered
a kept front, how many fronts each changed (the length of its push) and the wall microseconds an add
took. The run's jobs are printed too, so that a change that moved a decision shows.

``--benchmark`` takes ``toy`` or what ``surrobench.load`` takes (a name, a folder, an archive).

    python tools/moasha_fronts.py [--seed 0] [--hours 24] [--benchmark flowers17]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from surrobench.optimizers import MOASHA  # noqa: E402
from surrobench.optimizers._fronts import Fronts  # noqa: E402
from toybench import benchmark_named  # noqa: E402


def watch(run):
    """``run()`` with every ``Fronts.add`` watched: ``(run()'s value, {fronts: [(kept fronts met,
    fronts changed, seconds), ...]})``, one tuple per add, in order."""
    seen: dict[int, tuple[Fronts, list]] = {}
    add = Fronts.add

    def watched(self, result, objectives):
        kept, versions = len(self.fronts), list(self.version)
        t0 = time.perf_counter()
        add(self, result, objectives)
        seconds = time.perf_counter() - t0
        changed = sum(1 for i, v in enumerate(versions) if self.version[i] != v)
        seen.setdefault(id(self), (self, []))[1].append((kept, changed, seconds))

    Fronts.add = watched
    try:
        value = run()
    finally:
        Fronts.add = add
    return value, seen


def rung_rows(optimizer: MOASHA, seen: dict) -> list[dict]:
    """One row per rung of ``optimizer``: what :func:`watch` saw of its fronts."""
    rows = []
    for k, fronts in enumerate(optimizer._rungs):
        adds = seen.get(id(fronts), (fronts, []))[1]
        entered = [(changed, seconds) for _, changed, seconds in adds if changed]
        rows.append({
            "rung": k, "epochs": optimizer.rungs[k], "results": len(adds), "to_pool": len(adds) - len(entered),
            "fronts_end": len(fronts.fronts), "fronts_met": statistics.median(m for m, _, _ in adds) if adds else 0,
            "entered": len(entered),
            "changed": statistics.mean(c for c, _ in entered) if entered else 0.0,
            "us_entered": 1e6 * statistics.mean(s for _, s in entered) if entered else 0.0,
            "seconds": sum(s for _, _, s in adds),
        })
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="the run of `surrobench compare` to repeat (default 0)")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    p.add_argument("--benchmark", default="flowers17")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from surrobench.simulator import Budget, run_seeds, simulate

    bench = benchmark_named(args.benchmark)
    problem = bench.problem(n_workers=1, budget=Budget(seconds=args.hours * 3600.0))
    opt_seed, bench_seed = run_seeds(args.seed)
    optimizer = MOASHA(problem, seed=opt_seed)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        table, seen = watch(lambda: simulate(bench, optimizer, problem, seed=bench_seed))
    wall = time.perf_counter() - t0
    rows = rung_rows(optimizer, seen)
    print(f"MO-ASHA, run {args.seed} of `surrobench compare`, {args.hours:g} simulated hours, 1 worker, "
          f"{args.benchmark}: {len(table)} jobs, {wall:.1f} s wall (watched)")
    print(f"{'rung':>4} {'epochs':>6} {'results':>8} {'to pool':>8} {'fronts':>7} {'met':>5} {'entered':>8} "
          f"{'changed':>8} {'us/add':>7} {'add s':>6}")
    for r in rows:
        print(f"{r['rung']:>4} {r['epochs']:>6} {r['results']:>8} {r['to_pool']:>8} {r['fronts_end']:>7} "
              f"{r['fronts_met']:>5.0f} {r['entered']:>8} {r['changed']:>8.1f} {r['us_entered']:>7.1f} "
              f"{r['seconds']:>6.2f}")
    print("fronts: kept at the end; met: the median a result met; entered: results that went into a kept front; "
          "changed: fronts each of those changed (the push); us/add: wall microseconds of such an add; "
          "add s: all adds of the rung")
    return 0


if __name__ == "__main__":
    sys.exit(main())
