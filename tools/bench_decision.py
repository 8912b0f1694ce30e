"""CPU milliseconds per decision at the GP's 500-point cap, this tree beside another revision.

Each optimizer is fed ``--observations`` results of its own random initial design on the toy
benchmark (``n_init`` set to that number, so the GP holds its full 500-point subset), then makes
``--decisions`` asks, each told at once; the CPU time (``time.process_time``) of every ask is
recorded. The other revision runs the same in a subprocess that imports it (``git archive``); both
run with one BLAS thread, as ``surrobench compare`` runs every cell.
Prints the median, mean and maximum per optimizer and the ratio of medians.

    python tools/bench_decision.py --before a20cfb2 [--optimizers msehvi,ehvi] [--observations 600]
        [--decisions 40] [--after-settings '{"at_cap": [8, 32]}'] [--repeats 1]

``--after-settings`` passes a JSON object of optimizer settings to this tree's optimizers (the
other revision runs its defaults), to time a setting against the defaults. ``--repeats R`` measures
both sides R times, alternating, and pools the decisions: on a shared machine the speed drifts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

_RUNNER = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "/tests")
from surrobench.optimizers import OPTIMIZERS
from surrobench.records import Observation, Problem
from toybench import ToyBenchmark
name, n, k = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
settings = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
bench = ToyBenchmark()
problem = bench.problem() if hasattr(bench, "problem") else Problem()  # since issue 17 a problem holds the task
opt = OPTIMIZERS[name](problem, seed=0, n_init=n, **settings)
def tell(job, i):
    r = bench.query(job.config, job.epoch)
    opt.tell(Observation(job=job, job_id=i, trial=i, val_error=r.val_error, test_error=r.test_error,
                         log10_params=r.log10_params, cost=1.0, start=float(i), end=i + 1.0, worker=0))
for i in range(n):
    tell(opt.ask(), i)
ms = []
for i in range(n, n + k):
    t0 = time.process_time()
    job = opt.ask()
    ms.append(1e3 * (time.process_time() - t0))
    tell(job, i)
print(json.dumps(ms))
"""


def measure(tree: Path, name: str, n: int, k: int, settings: dict | None = None) -> list[float]:
    out = subprocess.run([sys.executable, "-c", _RUNNER, str(tree), str(ROOT), name, str(n), str(k),
                          json.dumps(settings or {})], check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1"))  # as compare's cells
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True)
    p.add_argument("--optimizers", default="msehvi,ehvi")
    p.add_argument("--observations", type=int, default=600)
    p.add_argument("--decisions", type=int, default=40)
    p.add_argument("--after-settings", type=json.loads, default={}, help="JSON object of optimizer settings")
    p.add_argument("--repeats", type=int, default=1,
                   help="measure both sides this many times, alternating, and pool the decisions (default: 1)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "surrobench", "tests/toybench.py"],
                              check=True, capture_output=True).stdout
        before = Path(tmp) / "before"
        before.mkdir()
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(before)
        print(f"CPU ms per decision after {args.observations} observations (GP subset at its cap), "
              f"{args.decisions} decisions; before = {args.before}"
              + (f", after with {json.dumps(args.after_settings)}" if args.after_settings else ""))
        print(f"{'optimizer':10} {'before med':>10} {'mean':>8} {'max':>8} {'after med':>10} {'mean':>8} {'max':>8} "
              f"{'ratio':>6}")
        for name in args.optimizers.split(","):
            b, a = [], []
            for _ in range(max(1, args.repeats)):  # alternating, so that a drift of the machine's speed hits both
                b += measure(before, name, args.observations, args.decisions)
                a += measure(ROOT, name, args.observations, args.decisions, args.after_settings)
            b, a = np.array(b), np.array(a)
            print(f"{name:10} {np.median(b):10.2f} {b.mean():8.2f} {b.max():8.1f} {np.median(a):10.2f} {a.mean():8.2f} "
                  f"{a.max():8.1f} {np.median(b) / np.median(a):5.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
