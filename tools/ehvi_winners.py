"""Where the GP methods' chosen configs come from: prior draws, local moves, or refinements (issue 16).

A decision of MS-EHVI or EHVI (:mod:`surrobench.optimizers._bo`) scores a first block of configs
drawn from the priors and local moves around front members, then local moves around the best of
those (the refinement), and proposes the best of all. This tool runs each optimizer with one worker
for ``--evaluations`` jobs per seed and counts, for every decision, which part its winner came from,
separately for decisions below the GP's subset cap (``max_gp_points`` observations) and past it.
It changes nothing in the optimizer: it watches the blocks that are scored. The last column says
how hard the branch and bound of ``GPEHVI._score`` works: the configs a scored block holds and how
many of them it had to score exactly (the rest its bound ruled out), per block on average.

``--benchmarks`` takes ``toy`` or what ``surrobench.load`` takes (a name, a folder, an archive).

    python tools/ehvi_winners.py [--optimizers msehvi,ehvi] [--benchmarks toy,flowers17] [--seeds 3]
        [--evaluations 1500] [--settings '{"at_cap": [8, 32]}']
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from surrobench.optimizers import OPTIMIZERS, _bo  # noqa: E402
from surrobench.optimizers._rows import row_key, rows_of  # noqa: E402
from toybench import benchmark_named  # noqa: E402

PARTS = ("prior", "local", "refine", "fresh")


def watch(counts: collections.Counter) -> None:
    """Wrap GPEHVI._propose (once) so that each decision's winner is counted in ``counts`` by part."""
    if hasattr(_bo.GPEHVI._propose, "counts"):
        _bo.GPEHVI._propose.counts[0] = counts
        return
    propose = _bo.GPEHVI._propose

    def wrapped(self):
        n = len(self._error)
        blocks, exact = [], []
        score = self._score

        def scoring(rows, *args, **kwargs):
            blocks.append(rows)
            out = score(rows, *args, **kwargs)
            exact.append((len(rows), len(out[0])))
            return out

        self._score = scoring
        try:
            config = propose(self)
        finally:
            del self._score
        won = row_key(rows_of([config])[0])
        n_prior = self._block_sizes(n)[0] if hasattr(self, "_block_sizes") else self.n_candidates
        part = "fresh"  # nothing scored could be proposed: a random config
        for i, row in enumerate(blocks[0] if blocks else []):
            if row_key(row) == won:
                part = "prior" if i < n_prior else "local"
                break
        else:
            if len(blocks) > 1 and any(row_key(r) == won for r in blocks[1]):
                part = "refine"
        stage = "past cap" if n > self.gp_error.max_points else "below cap"
        tally = wrapped.counts[0]
        tally[stage, part] += 1
        tally[stage, "blocks"] += len(exact)
        tally[stage, "configs"] += sum(c for c, _ in exact)
        tally[stage, "exact"] += sum(e for _, e in exact)
        return config

    wrapped.counts = [counts]
    _bo.GPEHVI._propose = wrapped


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizers", default="msehvi,ehvi")
    p.add_argument("--benchmarks", default="toy,flowers17")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--evaluations", type=int, default=1500)
    p.add_argument("--settings", type=json.loads, default={}, help="JSON object of optimizer settings")
    args = p.parse_args(argv)
    from surrobench.simulator import Budget, simulate

    print(f"winners of the decisions, 1 worker, {args.evaluations} evaluations, seeds 0..{args.seeds - 1}"
          + (f", settings {json.dumps(args.settings)}" if args.settings else ""))
    print(f"{'benchmark':10} {'optimizer':10} {'decisions':>16} " + " ".join(f"{p:>7}" for p in PARTS)
          + "  exact/block")
    for bench_name in args.benchmarks.split(","):
        for opt in args.optimizers.split(","):
            counts: collections.Counter = collections.Counter()
            watch(counts)
            for seed in range(args.seeds):
                bench = benchmark_named(bench_name)
                problem = bench.problem(n_workers=1, budget=Budget(evaluations=args.evaluations))
                simulate(bench, OPTIMIZERS[opt](problem, seed=seed, **args.settings), problem, seed=seed)
            for stage in ("below cap", "past cap"):
                total = sum(counts[stage, part] for part in PARTS)
                shares = " ".join(f"{100 * counts[stage, part] / max(total, 1):6.1f}%" for part in PARTS)
                blocks = max(counts[stage, "blocks"], 1)
                exact = f"{counts[stage, 'exact'] / blocks:.1f}/{counts[stage, 'configs'] / blocks:.1f}"
                print(f"{bench_name:10} {opt:10} {stage:>9} {total:6d} {shares}  {exact:>11}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
