"""CPU microseconds per new-config answer of the shipped surrogate benchmark, side by side with
another revision in the same run.

A sequential optimizer pays one such answer per job: one config, one seed, nothing cached. The
tool answers ``--configs`` prior configs (seeded) through ``SurrogateBenchmark.answer`` with the
cache off, takes the best of ``--repeats`` passes, and does so for this tree and, with
``--before REV``, for that revision (unpacked with ``git archive``), alternating the two in
subprocesses ``--rounds`` times so that a change of load hits both. It prints each round and the
ratio of the best passes.

    python tools/bench_answer.py [--before REV] [--configs 4000] [--repeats 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_protocol import ROOT, unpack  # noqa: E402


def measure(tree: Path, configs: int, repeats: int) -> float:
    """Best CPU seconds per answer over ``repeats`` passes, importing surrobench from ``tree``."""
    sys.path.insert(0, str(tree))
    import numpy as np

    import surrobench
    from surrobench.benchmark import SurrogateBenchmark
    from surrobench.records import Job
    from surrobench.space import sample

    # this checkout's shipped file, so that every revision answers from the same surrogate
    shipped = ROOT / "surrobench" / "_data" / "flowers17-surrogate.tar.gz"
    bench = SurrogateBenchmark(surrobench.load(str(shipped)).surrogate, cache_size=0)
    jobs = [Job(c, 25) for c in sample(0, n=configs)]
    for job in jobs[:100]:  # warm up
        bench.answer(job, seed=1)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for i, job in enumerate(jobs):
            bench.answer(job, seed=i)
        best = min(best, (time.process_time() - t0) / len(jobs))
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default=None, help="git revision to measure side by side")
    p.add_argument("--configs", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--tree", default=None, help=argparse.SUPPRESS)  # internal: measure this tree, print JSON
    args = p.parse_args(argv)
    if min(args.configs, args.repeats, args.rounds) < 1:
        p.error("--configs, --repeats and --rounds must be positive")
    if args.tree:
        print(json.dumps({"seconds": measure(Path(args.tree), args.configs, args.repeats)}))
        return 0

    def run(tree: Path) -> float:
        out = subprocess.run([sys.executable, __file__, "--tree", str(tree), "--configs", str(args.configs),
                              "--repeats", str(args.repeats)], check=True, capture_output=True, text=True).stdout
        return json.loads(out.splitlines()[-1])["seconds"]

    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT}
        if args.before:
            trees = {args.before: unpack(args.before, Path(tmp)), "this tree": ROOT}
        best = {name: float("inf") for name in trees}
        print(f"CPU us per new-config answer (flowers17 surrogate, cache off, {args.configs} configs, "
              f"best of {args.repeats} passes)")
        for r in range(args.rounds):
            for name, tree in trees.items():
                s = run(tree)
                best[name] = min(best[name], s)
                print(f"round {r + 1}  {name:<12} {1e6 * s:8.1f}")
        if args.before:
            print(f"before / this tree: {best[args.before] / best['this tree']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
