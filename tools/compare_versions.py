"""Quality before vs after a change: hypervolume at equal evaluations, two versions side by side.

Each version of surrobench (a git revision, unpacked with ``git archive`` into a temporary folder,
or the working tree for ``--after .``) runs in its own subprocess, so both import their own code.
For every benchmark, optimizer and seed it runs ``--evaluations`` jobs with one worker (the
overhead model ``none``: results depend on decisions only) and records the hypervolume of
(validation error, log10 params) against the benchmark's reference point. The table shows, per
benchmark and optimizer, the median and quartiles over the seeds for both versions, the
number of seeds where after >= before, and the number where the two hypervolumes are equal to the
last bit (a change that only rounds differently leaves them so unless a decision changed).

    python tools/compare_versions.py --before a20cfb2 --optimizers msehvi,ehvi \\
        --benchmarks toy,flowers17 --seeds 10 --evaluations 300 [--cache DIR]

``--cache DIR`` keeps each version's raw numbers as JSON (keyed by revision and settings), so a
rerun only runs what is missing; the working tree is never cached.

``--before-settings`` and ``--after-settings`` take a JSON object of optimizer settings (keywords of
every optimizer compared) for that side, so one revision can be compared with a setting against its
defaults:

    python tools/compare_versions.py --before 12d85f7 --after 12d85f7 --after-settings '{"at_cap": [8, 32]}'
"""

from __future__ import annotations

import argparse
import hashlib
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
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "/tests")
import surrobench
from surrobench.metrics import hypervolume
from surrobench.optimizers import OPTIMIZERS
from surrobench.records import Problem
from surrobench.simulator import Budget, simulate
assert surrobench.__file__.startswith(sys.argv[1]), surrobench.__file__
bench_name, opt, seeds, evaluations = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
settings = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
if bench_name == "toy":
    from toybench import ToyBenchmark
    bench = ToyBenchmark()
else:  # a shipped name is read from the working tree's files (they are not in git)
    bench = surrobench.load(sys.argv[6] + "/surrobench/_data/" + bench_name + "-surrogate.tar.gz")
ref = [float(v) for v in bench.reference_point]
out = {}
for seed in seeds:
    t0 = time.process_time()
    if "task" in Problem.__dataclass_fields__:  # since issue 17 a problem holds the task and the budget
        problem = bench.problem(n_workers=1, budget=Budget(evaluations=evaluations))
        table = simulate(bench, OPTIMIZERS[opt](problem, seed=seed, **settings), problem, seed=seed)
    else:
        table = simulate(bench, OPTIMIZERS[opt](Problem(n_workers=1), seed=seed, **settings), Budget(evaluations=evaluations),
                         n_workers=1, seed=seed)
    out[str(seed)] = {"hv": hypervolume(table[["val_error", "log10_params"]].to_numpy(), ref=ref),
                      "cpu_s": time.process_time() - t0}
print(json.dumps(out))
"""


def unpack(revision: str, into: Path) -> Path:
    """The tree of ``revision`` unpacked under ``into`` (``.`` means the working tree itself)."""
    if revision == ".":
        return ROOT
    dest = into / revision.replace("/", "_")
    if not dest.exists():
        data = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "surrobench", "tests/toybench.py"],
                              check=True, capture_output=True).stdout
        dest.mkdir(parents=True)
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(dest)
    return dest


def run_version(tree: Path, bench: str, opt: str, seeds: list[int], evaluations: int, settings: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(tree), bench, opt, json.dumps(seeds), str(evaluations),
                           str(ROOT), json.dumps(settings)],
                          check=True, capture_output=True, text=True, env=env, cwd=str(tree))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def results(revision: str, tree: Path, bench: str, opt: str, seeds: list[int], evaluations: int,
            cache: Path | None, settings: dict) -> dict:
    path = None
    if cache is not None and revision != ".":
        tag = "" if not settings else "-" + hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        path = cache / f"{revision}-{bench}-{opt}-{evaluations}{tag}.json"
        done = json.loads(path.read_text()) if path.exists() else {}
        missing = [s for s in seeds if str(s) not in done]
    else:
        done, missing = {}, seeds
    if missing:
        done.update(run_version(tree, bench, opt, missing, evaluations, settings))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(done, indent=1))
    return {s: done[str(s)] for s in seeds}


def _settings(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object of optimizer settings")
    return value


def quartiles(values) -> str:
    q25, q50, q75 = np.quantile(np.asarray(values, dtype=float), [0.25, 0.5, 0.75])
    return f"{q50:8.4f} [{q25:.4f}, {q75:.4f}]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, help="git revision of the reference version")
    p.add_argument("--after", default=".", help="git revision, or . for the working tree (default)")
    p.add_argument("--optimizers", default="msehvi,ehvi")
    p.add_argument("--benchmarks", default="toy,flowers17")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--evaluations", type=int, default=300)
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--only", choices=["before", "after"], default=None, help="run one version only (fills the cache)")
    p.add_argument("--before-settings", type=_settings, default={}, help="JSON object of optimizer settings")
    p.add_argument("--after-settings", type=_settings, default={}, help="JSON object of optimizer settings")
    args = p.parse_args(argv)
    settings = {"before": args.before_settings, "after": args.after_settings}
    seeds = list(range(args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": unpack(args.before, Path(tmp)), "after": unpack(args.after, Path(tmp))}
        revs = {"before": args.before, "after": args.after}
        shown = {v: revs[v] + (f" {json.dumps(settings[v])}" if settings[v] else "") for v in revs}
        print(f"hypervolume after {args.evaluations} evaluations, 1 worker, seeds 0..{args.seeds - 1}: "
              f"median [q25, q75]; before = {shown['before']}, after = {shown['after']}")
        print(f"{'benchmark':10} {'optimizer':10} {'before':>27} {'after':>27} {'after>=before':>13} "
              f"{'equal':>6} {'cpu s/run before':>16} {'after':>6}")
        for bench in args.benchmarks.split(","):
            for opt in args.optimizers.split(","):
                res = {}
                for v in (["before", "after"] if args.only is None else [args.only]):
                    res[v] = results(revs[v], trees[v], bench, opt, seeds, args.evaluations, args.cache, settings[v])
                if args.only is not None:
                    continue
                hb = [res["before"][s]["hv"] for s in seeds]
                ha = [res["after"][s]["hv"] for s in seeds]
                cb = np.median([res["before"][s]["cpu_s"] for s in seeds])
                ca = np.median([res["after"][s]["cpu_s"] for s in seeds])
                wins = sum(a >= b for a, b in zip(ha, hb))
                equal = sum(a == b for a, b in zip(ha, hb))
                print(f"{bench:10} {opt:10} {quartiles(hb):>27} {quartiles(ha):>27} {wins:>10}/{len(seeds)} "
                      f"{equal:>6} {cb:16.1f} {ca:6.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
