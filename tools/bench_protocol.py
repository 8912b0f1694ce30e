"""The paper's protocol, costed: one seed of each optimizer over 24 simulated hours (issue 16).

For each optimizer it runs one seed with one worker on the shipped surrogate (seeded as ``surrobench
compare`` seeds its run of that seed, so that seed ``s`` here is the protocol's cell ``s``; until
2026-12-06 the tool gave the optimizer and the simulator the seed itself) and prints the jobs,
the decisions (asks), the CPU milliseconds per decision (median of the asks; mean of asks and tells
per ask), the run's CPU seconds and how they split between the optimizer (ask, tell, upcoming),
the benchmark (answer, prefetch, query, cost) and the simulator (the rest), and the benchmark's and
simulator's CPU microseconds per job (``b+s us/job``). CPU time
(``time.process_time``) is used throughout: the machine is shared, and wall time would count the
other processes. From the per-optimizer CPU seconds it estimates the full protocol
(``surrobench compare``'s defaults: every optimizer, 10 seeds, one worker) on ``--cores`` cores,
and what a protocol of ``--goal-minutes`` (issue 16: 10) leaves the optimizers once the benchmark
and the simulator have taken their part: how many times less CPU they would need.
Each run uses one BLAS thread, as ``compare`` runs every cell.

One seed is a rough estimate: how much work a day holds differs from seed to seed (on the shipped
surrogate the protocol's ten Bulk & Cut runs cost 13 to 81 CPU s, docs/performance.md). ``--costed-seeds N`` runs seeds
``--seed`` .. ``--seed`` + N - 1 of every optimizer instead and prints, per optimizer, the medians
over them (jobs, decisions, the per-run median decision), the mean decision and the mean CPU
seconds per run with their range; the estimate then rests on the mean CPU seconds per run. With
``--costed-seeds 10`` the runs are the protocol's 90 cells, one at a time (the jobs are those of
``docs/results/protocol/final.csv``).

Side by side in the same run:

* ``--before REV``: the same measurements for another git revision (unpacked with ``git archive``
  and run in a subprocess that imports it), printed as before / after columns and their ratio; the
  trees take turns optimizer by optimizer, so that the machine's drift falls on both sides;
* Optuna's NSGA-II and TPE samplers (``surrobench.bridges.optuna``) on the same benchmark, CPU ms
  per trial (ask and tell) over ``--optuna-trials`` trials, as a ratio to surrobench's NSGA-II;
  skipped with one line when Optuna is not installed;
* the simulator and benchmark alone (random search, look-ahead on): microseconds per job for
  1, 16 and 256 workers, in each quarter of a run of ``--scan-jobs`` jobs, so a cost that grows
  with the finished jobs shows as a rising row.

    python tools/bench_protocol.py [--hours 24] [--seed 0] [--costed-seeds 1] [--optimizers all]
        [--before REV] [--cores 2] [--seeds 10] [--goal-minutes 10] [--scan-jobs 40000] [--optuna-trials 300]
        [--settings JSON] [--profile K]

``--profile K`` runs each run under cProfile and prints its ``K`` costliest functions by own time,
with their own and inclusive shares of the run (the table's seconds then include the profiler's
overhead, which weighs most on many small Python calls).

``--settings`` passes optimizer settings to this tree's runs only (the ``--before`` side keeps its
defaults), to cost a setting against the defaults.

Numbers on a busy machine vary run to run; read the ratios.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ORDER = ["random", "nsga2", "shemoa", "moasha", "mobohb", "mobananas", "bulkcut", "msehvi", "ehvi"]


def _import_tree(tree: str | None):
    sys.path.insert(0, str(tree) if tree else str(ROOT))


class CpuLedger:
    """CPU seconds spent in wrapped calls, by part."""

    def __init__(self):
        self.seconds = {"optimizer": 0.0, "benchmark": 0.0}
        self.asks: list[float] = []
        self.tells = 0

    def timed(self, part: str, fn, record_ask: bool = False):
        clock = time.process_time

        def wrapper(*args, **kwargs):
            t0 = clock()
            out = fn(*args, **kwargs)
            spent = clock() - t0
            self.seconds[part] += spent
            if record_ask:
                self.asks.append(spent)
            return out

        return wrapper


class TimedOptimizer:
    def __init__(self, optimizer, ledger: CpuLedger):
        self._opt = optimizer
        self.problem = getattr(optimizer, "problem", None)
        self.ask = ledger.timed("optimizer", optimizer.ask, record_ask=True)
        self.tell = ledger.timed("optimizer", optimizer.tell)
        if getattr(optimizer, "upcoming", None) is not None:
            self.upcoming = ledger.timed("optimizer", optimizer.upcoming)


class TimedBenchmark:
    def __init__(self, bench, ledger: CpuLedger):
        self._bench = bench
        for name in ("answer", "prefetch", "query", "cost", "job"):
            fn = getattr(bench, name, None)
            if fn is not None:
                setattr(self, name, ledger.timed("benchmark", fn))

    def __getattr__(self, name):
        return getattr(self._bench, name)


def _run_seeds(seed: int) -> tuple[int, int]:
    """The optimizer's and the simulator's seeds that ``surrobench compare`` gives its run ``seed``,
    so that seed ``s`` here is cell ``s`` of the protocol."""
    try:
        from surrobench.simulator import run_seeds
    except ImportError:  # a --before tree from before run_seeds: its compare derived them inline, the same way
        import numpy as np

        return tuple(int(s.generate_state(1)[0]) for s in np.random.SeedSequence([int(seed), 0x5EED]).spawn(2))
    return run_seeds(seed)


def profile_lines(profile, top: int) -> list[str]:
    """The ``top`` functions of a finished ``cProfile.Profile`` by their own time: own and inclusive
    seconds, each as a share of the run's profiled time (the sum of every function's own time)."""
    import pstats

    stats = pstats.Stats(profile).stats  # (file, line, name) -> (primitive calls, calls, own, inclusive, callers)
    total = sum(v[2] for v in stats.values()) or 1.0
    lines = [f"{'own s':>8} {'own %':>6} {'incl s':>8} {'incl %':>6} {'calls':>9}  function"]
    for (path, line, func), (_, calls, own, incl, _) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}({func})" if line else func
        lines.append(f"{own:8.2f} {100 * own / total:6.1f} {incl:8.2f} {100 * incl / total:6.1f} {calls:9d}  {where}")
    return lines


def run_one(bench_factory, name: str, hours: float, seed: int, settings: dict | None = None,
            profile_top: int = 0) -> dict:
    """One run, timed by part; with ``profile_top``, under cProfile too (slower, so its CPU seconds
    are not comparable), and its ``profile_top`` costliest functions printed."""
    from threadpoolctl import threadpool_limits

    from surrobench.optimizers import OPTIMIZERS
    from surrobench.simulator import Budget, simulate

    opt_seed, bench_seed = _run_seeds(seed)
    ledger = CpuLedger()
    bench = TimedBenchmark(bench_factory(), ledger)
    problem = bench.problem(n_workers=1, budget=Budget(seconds=hours * 3600.0))
    opt = TimedOptimizer(OPTIMIZERS[name](problem, seed=opt_seed, **(settings or {})), ledger)
    profile = cProfile.Profile() if profile_top else contextlib.nullcontext()
    t0, c0 = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=1, user_api="blas"), profile:  # one BLAS thread, as compare runs every cell
        table = simulate(bench, opt, problem, seed=bench_seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if profile_top:
        print(f"profile of {name} seed {seed} ({len(table)} jobs, {cpu:.1f} cpu s under the profiler), "
              f"the {profile_top} costliest functions by own time:")
        print("\n".join(profile_lines(profile, profile_top)))
    asks = ledger.asks
    return {
        "optimizer": name, "jobs": len(table), "decisions": len(asks), "wall_s": wall, "cpu_s": cpu,
        "ms_median": 1e3 * statistics.median(asks) if asks else float("nan"),
        "ms_mean": 1e3 * ledger.seconds["optimizer"] / max(1, len(asks)),
        "optimizer_s": ledger.seconds["optimizer"], "benchmark_s": ledger.seconds["benchmark"],
    }


def scan_workers(bench_factory, workers: list[int], jobs: int, seed: int) -> list[dict]:
    """Random search with the look-ahead: CPU microseconds per job in each quarter of the run."""
    from surrobench.optimizers import RandomSearch
    from surrobench.simulator import Budget, simulate

    out = []
    for n in workers:
        stamps: list[float] = []
        clock = time.process_time
        t0 = clock()
        bench = bench_factory()
        problem = bench.problem(n_workers=n, budget=Budget(evaluations=jobs))
        simulate(bench, RandomSearch(problem, seed=seed), problem, seed=seed,
                 on_observation=lambda obs: stamps.append(clock()))
        quarter = len(stamps) // 4
        edges = [t0] + [stamps[(k + 1) * quarter - 1] for k in range(4)]
        out.append({"workers": n, "jobs": len(stamps),
                    "us_per_job": [1e6 * (edges[k + 1] - edges[k]) / quarter for k in range(4)]})
    return out


def optuna_trials(bench_factory, samplers: list[str], trials: int, seed: int) -> dict[str, float] | None:
    """CPU ms per trial (ask + tell) of Optuna's samplers on the same benchmark, or None without Optuna."""
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        return None
    from surrobench.bridges.optuna import resolve
    from surrobench.simulator import Budget, simulate

    out = {}
    for s in samplers:
        cls, settings = resolve(f"optuna-{s}")
        ledger = CpuLedger()
        bench = bench_factory()
        problem = bench.problem(n_workers=1, budget=Budget(evaluations=trials))
        simulate(bench, TimedOptimizer(cls(problem, seed=seed, **settings), ledger), problem, seed=seed)
        out[s] = 1e3 * ledger.seconds["optimizer"] / max(1, len(ledger.asks))
    return out


def _names(args) -> list[str]:
    return DEFAULT_ORDER if args.optimizers == "all" else args.optimizers.split(",")


def measure(args, names: list[str] | None = None, extras: bool = True) -> dict:
    """Runs of ``names`` (default: ``--optimizers``); with ``extras``, the scan and Optuna too."""
    import surrobench
    from surrobench.benchmark import SurrogateBenchmark

    loaded = surrobench.load(args.benchmark)

    def bench_factory():  # an empty answer cache for every run, the surrogate loaded once
        return SurrogateBenchmark(loaded.surrogate)

    runs = []
    for name in _names(args) if names is None else names:
        for seed in range(args.seed, args.seed + args.costed_seeds):
            runs.append(run_one(bench_factory, name, args.hours, seed, args.settings, args.profile))
            runs[-1]["seed"] = seed
            print(f"  measured {name} seed {seed}: {runs[-1]['jobs']} jobs, {runs[-1]['cpu_s']:.1f} cpu s", file=sys.stderr,
                  flush=True)
    result = {"surrobench": surrobench.__file__, "runs": runs}
    if not extras:
        return result
    if args.scan_jobs:
        result["scan"] = scan_workers(bench_factory, [int(w) for w in args.scan_workers.split(",")], args.scan_jobs,
                                      args.seed)
    if args.optuna_trials:
        result["optuna"] = optuna_trials(bench_factory, ["nsga2", "tpe"], args.optuna_trials, args.seed)
    return result


def unpack(revision: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "surrobench"], check=True,
                          capture_output=True).stdout
    dest = into / "tree"
    dest.mkdir()
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dest)
    return dest


def pooled(runs: list[dict]) -> list[dict]:
    """The runs of each optimizer (several seeds) as one row, optimizers in their order: medians of
    the jobs, decisions and per-run median decision; the mean decision over all asks; mean CPU,
    wall, optimizer and benchmark seconds per run, and the CPU seconds' range; the benchmark's and
    the simulator's CPU microseconds per job over all the runs. One run stays itself."""
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["optimizer"], []).append(r)
    out = []
    for name, rs in by.items():
        mean = lambda key: statistics.fmean(r[key] for r in rs)  # noqa: E731
        decisions = sum(r["decisions"] for r in rs)
        out.append({
            "optimizer": name, "seeds": len(rs),
            "jobs": statistics.median(r["jobs"] for r in rs), "decisions": statistics.median(r["decisions"] for r in rs),
            "ms_median": statistics.median(r["ms_median"] for r in rs),
            "ms_mean": 1e3 * sum(r["optimizer_s"] for r in rs) / max(1, decisions),
            "cpu_s": mean("cpu_s"), "wall_s": mean("wall_s"), "optimizer_s": mean("optimizer_s"),
            "benchmark_s": mean("benchmark_s"), "cpu_min": min(r["cpu_s"] for r in rs),
            "cpu_max": max(r["cpu_s"] for r in rs),
            # the benchmark and the simulator (all but the optimizer) per job, over all the runs
            "outside_us_per_job": 1e6 * sum(r["cpu_s"] - r["optimizer_s"] for r in rs) / max(1, sum(r["jobs"] for r in rs)),
        })
    return out


def goal_line(total: float, outside: float, args, names: list[str] | None = None) -> str:
    """What a protocol of ``--goal-minutes`` on ``--cores`` cores (perfect packing) leaves the
    optimizers per seed, given the CPU seconds per seed of the runs (``total``) and of their
    benchmark and simulator (``outside``, all but the optimizer), which a faster optimizer does not
    touch. ``names``: the optimizers measured; fewer than the protocol's nine are said to be a part."""
    budget = args.goal_minutes * 60.0 * args.cores / args.seeds  # cpu s per seed of the goal
    head = (f"benchmark + simulator: {outside:.1f} of the {total:.1f} cpu s per seed ({100.0 * outside / total:.0f} %)"
            if total > 0 else "benchmark + simulator: no cpu time measured")
    part = names is not None and set(names) != set(DEFAULT_ORDER)
    if part:
        head += f" (the {len(set(names))} optimizers measured, not the protocol's nine)"
    room, opt = budget - outside, total - outside
    if room <= 0:
        return (f"{head}; a {args.goal_minutes:g}-minute protocol on {args.cores} cores ({budget:.1f} cpu s per seed) "
                "is exceeded by the benchmark and simulator alone")
    if opt > room:
        verdict = f"{opt / room:.1f}x less than their {opt:.1f}"
    else:
        verdict = f"more than their {opt:.1f}" + ("" if part else ": the goal is met")
    return (f"{head}; a {args.goal_minutes:g}-minute protocol on {args.cores} cores ({budget:.1f} cpu s per seed) "
            f"leaves the optimizers {room:.1f} cpu s per seed, {verdict}")


def report(after: dict, before: dict | None, args) -> None:
    hours = f"{args.hours:g}"
    several = args.costed_seeds > 1
    seeds = (f"seeds {args.seed}..{args.seed + args.costed_seeds - 1} per optimizer (jobs, decisions and ms/dec med: "
             "medians over the seeds; cpu s: mean per run, with its range)" if several
             else f"one seed ({args.seed}) per optimizer")
    print(f"{seeds}, {hours} simulated hours, 1 worker, shipped surrogate; CPU time"
          + (f"; settings {json.dumps(args.settings)} (this tree only)" if args.settings else ""))
    counts = collections.Counter(r["optimizer"] for r in after["runs"])
    repeated = [f"{name} {n // args.costed_seeds}x" for name, n in counts.items() if n > args.costed_seeds]
    if repeated:  # an optimizer named more than once in --optimizers: its runs are pooled into one row
        print(f"repeated in --optimizers, each row pools its runs (both sides): {', '.join(repeated)}")
    cols = (f"{'optimizer':10} {'jobs':>7} {'decisions':>9} {'ms/dec med':>10} {'ms/dec mean':>11} {'cpu s':>7} "
            f"{'wall s':>7} {'opt %':>6} {'bench %':>7} {'sim %':>6} {'b+s us/job':>10}")
    if several:
        cols += f" {'cpu s range':>13}"
    if before:
        cols += f" | {'before: jobs':>12} {'ms/dec med':>10} {'ms/dec mean':>11} {'cpu s':>7}  {'mean ratio':>10}"
    print(cols)
    prior = {r["optimizer"]: r for r in pooled(before["runs"])} if before else {}
    total = outside = 0.0
    for r in pooled(after["runs"]):
        sim = max(0.0, r["cpu_s"] - r["optimizer_s"] - r["benchmark_s"])
        pct = lambda v: 100.0 * v / r["cpu_s"] if r["cpu_s"] > 0 else 0.0  # noqa: E731
        line = (f"{r['optimizer']:10} {r['jobs']:7.0f} {r['decisions']:9.0f} {r['ms_median']:10.3f} {r['ms_mean']:11.3f} "
                f"{r['cpu_s']:7.1f} {r['wall_s']:7.1f} {pct(r['optimizer_s']):6.1f} {pct(r['benchmark_s']):7.1f} "
                f"{pct(sim):6.1f} {r['outside_us_per_job']:10.0f}")
        if several:
            line += f" {r['cpu_min']:6.1f}-{r['cpu_max']:<6.1f}"
        b = prior.get(r["optimizer"])
        if b:
            line += (f" | {b['jobs']:12.0f} {b['ms_median']:10.3f} {b['ms_mean']:11.3f} {b['cpu_s']:7.1f}  "
                     f"{b['ms_mean'] / r['ms_mean'] if r['ms_mean'] > 0 else float('nan'):9.1f}x")
        print(line)
        total += r["cpu_s"]
        outside += r["cpu_s"] - r["optimizer_s"]
    per = f"cpu s per seed (the mean run of each over {args.costed_seeds} seeds)" if several else "cpu s per seed"
    print(f"sum over optimizers: {total:.1f} {per}; protocol estimate ({args.seeds} seeds on {args.cores} "
          f"cores, perfect packing): {total * args.seeds / args.cores / 60:.1f} min")
    print(goal_line(total, outside, args, [r["optimizer"] for r in after["runs"]]))
    if "optuna" in after:
        opt = after["optuna"]
        if opt is None:
            print("optuna: not installed, skipped (pip install optuna to compare its samplers)")
        else:
            ours = {r["optimizer"]: r["ms_mean"] for r in after["runs"]}
            ref = ours.get("nsga2")
            for s, ms in opt.items():
                ratio = f"{ms / ref:.1f}x surrobench nsga2" if ref else ""
                print(f"optuna-{s}: {ms:.3f} cpu ms per trial ({args.optuna_trials} trials)  {ratio}")
    if "scan" in after:
        print(f"simulator + benchmark, random search: cpu us per job by quarter of a {args.scan_jobs}-job run")
        print(f"{'workers':>7} {'jobs':>7} {'q1':>8} {'q2':>8} {'q3':>8} {'q4':>8} {'q4/q1':>6}")
        for s in after["scan"]:
            q = s["us_per_job"]
            print(f"{s['workers']:7d} {s['jobs']:7d} {q[0]:8.1f} {q[1]:8.1f} {q[2]:8.1f} {q[3]:8.1f} {q[3] / q[0]:6.2f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--costed-seeds", type=int, default=1,
                   help="run this many seeds of each optimizer, from --seed on (default 1)")
    p.add_argument("--optimizers", default="all")
    p.add_argument("--benchmark", default=None, help="surrogate folder (default: the shipped one)")
    p.add_argument("--before", default=None, help="git revision to measure side by side")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--goal-minutes", type=float, default=10.0,
                   help="the protocol's target wall time on --cores cores (issue 16: 10), for the line saying what it leaves the optimizers")
    p.add_argument("--scan-workers", default="1,16,256")
    p.add_argument("--scan-jobs", type=int, default=40000)
    p.add_argument("--optuna-trials", type=int, default=300)
    p.add_argument("--settings", type=json.loads, default={},
                   help="JSON object of optimizer settings for this tree's runs (not --before's), e.g. '{\"at_cap\": [8, 32]}'")
    p.add_argument("--profile", type=int, default=0, metavar="K",
                   help="run under cProfile and print each run's K costliest functions by own time "
                        "(the table's CPU seconds then include the profiler's overhead)")
    p.add_argument("--tree", default=None, help=argparse.SUPPRESS)  # internal: measure this tree, print JSON
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.costed_seeds < 1:
        p.error(f"--costed-seeds: expected an integer >= 1, got {args.costed_seeds}")
    if args.profile < 0:
        p.error(f"--profile: expected an integer >= 0, got {args.profile}")
    if args.profile and args.before:
        p.error("--profile: not with --before (the profiler's overhead would fall on one side only)")
    _import_tree(args.tree)
    if args.json:
        print(json.dumps(measure(args)))
        return 0
    before = None
    if args.before:
        # The two trees take turns optimizer by optimizer (before first for the first, after first for
        # the next, ...), so that the machine's drift over the minutes of a run falls on both sides.
        before, runs = {"runs": []}, []
        with tempfile.TemporaryDirectory() as tmp:
            tree = unpack(args.before, Path(tmp))
            for i, name in enumerate(_names(args)):
                for side in ("before", "after") if i % 2 == 0 else ("after", "before"):
                    if side == "after":
                        runs += measure(args, [name], extras=False)["runs"]
                    else:
                        before["runs"] += _measure_other(tree, name, args)["runs"]
        after = measure(args, [], extras=True)
        after["runs"] = runs
    else:
        after = measure(args)
    report(after, before, args)
    return 0


def _measure_other(tree: Path, name: str, args) -> dict:
    """One optimizer's run in the unpacked tree ``tree``, in a subprocess that imports it."""
    cmd = [sys.executable, __file__, "--tree", str(tree), "--json", "--hours", str(args.hours), "--seed",
           str(args.seed), "--costed-seeds", str(args.costed_seeds), "--optimizers", name, "--scan-jobs", "0",
           "--optuna-trials", "0"]
    # the shipped surrogates are not in git: the other tree reads this one's
    cmd += ["--benchmark", args.benchmark or str(ROOT / "surrobench" / "_data" / "flowers17-surrogate.tar.gz")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(tree)))
    if out.returncode:
        sys.exit(f"the run of {args.before} failed:\n{out.stderr}")
    print(f"  measured {name} at {args.before}", file=sys.stderr, flush=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
