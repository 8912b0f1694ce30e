"""Do the pairs a surrogate separates hold on real runs? Per stored ``surrobench validate`` study.

For each study folder (what ``surrobench validate --out`` wrote; only its ``final.csv`` is read, so the
stored summaries in ``docs/results`` serve) and each budget, both sides get the test that ``surrobench
compare`` prints under its table: Friedman's test over the seeds and, where it rejects, Nemenyi's
critical difference of the mean ranks (``alpha`` 0.05; ``surrobench.metrics.rank_test``). Then the
pairs each side separates are compared (``surrobench.validate.separations``): ``same_way``, separated
by both in the same order; ``reversed``, by both in opposite orders (a confident wrong answer);
``only_compared``, by the surrogate side alone (a difference the real runs do not show at these seeds);
``only_reference``, by the real runs alone (one the surrogate misses). Pairs read ``a>b``: ``a`` ahead
on the side that separates them (``reversed``: on the surrogate side).

Then, for each pair the sides judge differently, how firmly each side separates it: the share of
``--boot`` bootstrap resamples of the seeds (the same resampled seeds on both sides) in which it does
(``surrobench.validate.separation_shares``; seeded, so the output is the same every time). Shares
far apart say the sides differ; shares near each other, that the seeds drawn decided it. Beside
the shares, why: the mean and the sd over the seeds of the pair's difference of hypervolume on each
side (``surrobench.validate.pair_differences``). A surrogate side that separates a pair with the real
runs' mean difference but a smaller sd does so because its runs vary less from seed to seed; one with
a larger mean, because it moves one method's level against the other's. Last, per budget, each
method's between-seed sd of hypervolume on the surrogate side over the real runs'
(``surrobench.validate.seed_spread``): below 1, runs that vary less than real ones.

    python tools/validate_separations.py [FOLDER ...] [--compared oof] [--alpha 0.05] [--boot 200]

With no folder: the four stored studies, the shipped setting's first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surrobench.validate import pair_differences, seed_spread, separation_shares, separations  # noqa: E402

STORED = ("docs/results/validate_mapped", "docs/results/validate_mapped_2_10", "docs/results/validate_large",
          "docs/results/validate")
SHOWN = ["budget", "seeds", "critical_difference", "reference_separated", "compared_separated", "same_way",
         "reversed", "only_compared", "only_reference"]


def describe(folder: Path) -> str:
    """The study in a few words, from its metadata.json where there is one."""
    meta_path = folder / "metadata.json"
    if not meta_path.is_file():
        return str(folder)
    meta = json.loads(meta_path.read_text())
    runs, noise = meta.get("n_runs"), meta.get("noise_time")
    bits = [f"{runs:,} logged runs" if isinstance(runs, int) else "", f"seed noise {noise}" if noise else "",
            f"config noise {meta['config_noise']}" + (f" ({meta['config_noise_form']})" if meta.get("config_noise_form")
                                                      else "")
            if meta.get("config_noise", "none") != "none" else ""]
    bits = [b for b in bits if b]
    return f"{folder}" + (f" ({', '.join(bits)})" if bits else "")


def disputed(final: pd.DataFrame, table: pd.DataFrame, args) -> str:
    """The pairs the two sides judge differently, with each side's bootstrap share of separating them."""
    pairs = []  # (budget, a, b, which list), a ahead as the list has it
    for row in table.itertuples(index=False):
        for column in ("reversed", "only_compared", "only_reference"):
            for pair in filter(None, getattr(row, column).split(", ")):
                pairs.append((row.budget, *pair.split(">"), column.replace("only_", "only ")))
    if not pairs:
        return "  the sides separate the same pairs: no bootstrap needed"
    shares = separation_shares(final, args.reference, args.compared, alpha=args.alpha, n_boot=args.boot)
    shares = shares.set_index(["budget", "a", "b"])
    diffs = pair_differences(final, args.reference, args.compared).set_index(["budget", "a", "b"])
    rows = [{"budget": budget, "pair": f"{a}>{b}", "as listed": listed,
             f"{args.reference} share": shares.loc[(budget, a, b), "reference_share"],
             f"{args.compared} share": shares.loc[(budget, a, b), "compared_share"],
             f"{args.reference} d": diffs.loc[(budget, a, b), "reference_mean"],
             f"{args.reference} sd": diffs.loc[(budget, a, b), "reference_sd"],
             f"{args.compared} d": diffs.loc[(budget, a, b), "compared_mean"],
             f"{args.compared} sd": diffs.loc[(budget, a, b), "compared_sd"]}
            for budget, a, b, listed in pairs]
    table = pd.DataFrame(rows).to_string(index=False, float_format="{:.3f}".format)
    return (f"  the pairs the sides judge differently: the share of {args.boot} bootstrap resamples of the seeds "
            f"in which each side separates them in the order shown, and the mean (d) and sd over the seeds "
            f"of the first's hypervolume minus the second's:\n"
            + "\n".join("  " + line for line in table.splitlines()))


def spread(final: pd.DataFrame, reference: str, compared: str, name: str | None = None) -> str:
    """Each method's between-seed sd of hypervolume, compared side (called ``name``) over reference
    side, per budget."""
    table = seed_spread(final, reference, compared)
    wide = table.pivot(index="budget", columns="optimizer", values="ratio").loc[list(dict.fromkeys(table["budget"]))]
    wide.columns.name, wide.index.name = None, "budget"
    text = wide.reset_index().to_string(index=False, float_format="{:.2f}".format)
    return (f"  between-seed sd of hypervolume, {name or compared} over {reference}:\n"
            + "\n".join("  " + line for line in text.splitlines()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", type=Path, help="--out folders of surrobench validate (default: the stored four)")
    p.add_argument("--reference", default="real", help="the side taken as truth (default: real)")
    p.add_argument("--compared", default="oof", help="the side checked against it (default: oof)")
    p.add_argument("--alpha", type=float, default=0.05, help="the tests' level (default: 0.05)")
    p.add_argument("--boot", type=int, default=200, help="bootstrap resamples of the seeds (default: 200; 0: none)")
    args = p.parse_args(argv)
    folders = args.folders or [ROOT / f for f in STORED]
    for folder in folders:
        if not (folder / "final.csv").is_file():
            print(f"validate_separations: {folder / 'final.csv'} not found (run surrobench validate --out {folder})",
                  file=sys.stderr)
            return 2
    for i, folder in enumerate(folders):
        try:
            table = separations(pd.read_csv(folder / "final.csv"), args.reference, args.compared, alpha=args.alpha)
        except ValueError as exc:
            print(f"validate_separations: {folder}: {exc}", file=sys.stderr)
            return 2
        shown = folder.resolve().relative_to(ROOT) if folder.resolve().is_relative_to(ROOT) else folder
        print(("\n" if i else "") + f"{describe(Path(shown))}: {args.reference} vs {args.compared}, alpha {args.alpha:g}")
        if table.empty:
            print("  (no budget with both sides, 2 optimizers and 2 seeds)")
            continue
        shown_table = table[SHOWN].rename(columns={"critical_difference": "cd", "reference_separated": args.reference,
                                                   "compared_separated": args.compared})
        with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 80):
            print(shown_table.to_string(index=False, formatters={"cd": "{:.2f}".format}))
        final = pd.read_csv(folder / "final.csv")
        if args.boot > 0:
            print(disputed(final, table, args))
        print(spread(final, args.reference, args.compared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
