"""Does a variant of the residual bank rank optimizers as the real runs do? Its surrogate side of a stored study.

``python tools/noise_clock.py --bank-spread`` compares quality cards of the shipped seed noise (the
residual bank searched by the mapped curve, ``bank-logged``) with banks that lend each draw the runs of
more nearest configs, or search with the last epoch's level weighted more; no ranking study had
compared them. This tool runs the out-of-fold surrogate side of a ``surrobench validate`` study with
one such variant (``--variant``, a column of that table; ``shipped`` fits the shipped setting again,
which must give the study's own ``oof`` runs: a check of the logs and the code) on the study's own
logs, seeds and budgets, and sets it beside the study's stored sides (its ``final.csv``): the real
runs and the shipped setting's surrogate. It prints, per budget, Kendall tau against the real runs
for both surrogate sides (with, for each flipped pair, the share of bootstrap resamples of the seeds
in which the sides agree and in which the real runs keep their order: a confident flip has at most
0.22 and at least 0.98), the pairs each separates (``surrobench.validate.separations``) and each
method's between-seed sd of hypervolume over the real runs' (``surrobench.validate.seed_spread``),
and writes ``final.csv`` with the three sides (``real``, ``oof``, ``variant``) and ``metadata.json``
to ``--out``; ``--report`` prints the same from such a folder without running anything.

The study's logs must be the logs it was run on (their content hash is checked against the study's
``metadata.json``): ``git archive <commit> training_logs/flowers17 | tar -x -C DIR`` recovers them.
The variant is fitted and drawn in this process (the bank's search is patched while it runs), so it
runs on one core.

    python tools/bank_variant_study.py STUDY LOGS [--variant "level x3, 6 nearest"] [--seeds N] --out DIR
    python tools/bank_variant_study.py --report DIR   # the same report from what --out wrote
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from noise_clock import BANK_SPREAD, card_draws  # noqa: E402
from validate_separations import spread  # noqa: E402

from surrobench.validate import agreement, separations  # noqa: E402

VARIANTS = dict(BANK_SPREAD)


def variant_side(study: Path, logs: Path, variant: str, seeds: list[int], n_boot: int) -> pd.DataFrame:
    """The variant's out-of-fold side of ``study``, as rows of a ``final.csv`` (side ``variant``)."""
    from surrobench.logged import logged_set
    from surrobench.validate import validate

    meta = json.loads((study / "metadata.json").read_text())
    logged = logged_set(logs, meta["dataset"])
    if logged.data.data_hash != meta["training_data"]:
        raise ValueError(f"logs: {logs} are not the logs the study was run on (content hash "
                         f"{logged.data.data_hash[:12]}..., the study's {meta['training_data'][:12]}...)")
    budgets = [b["share"] for b in meta["budgets"].values()]
    with card_draws(**VARIANTS[variant]):
        results = validate(logs, dataset=meta["dataset"], optimizers=meta["optimizers"], seeds=seeds, budgets=budgets,
                           folds=meta["folds"], grid=meta["grid"], noise_time=meta.get("noise_time", "epoch"),
                           noise_size=meta.get("noise_size", "shared"), sides=("oof",), seed=meta["seed"],
                           n_boot=n_boot, n_jobs=1)
    final = results.final.copy()
    for name, b in meta["budgets"].items():
        got = final.loc[final["budget"] == name, "seconds"]
        if len(got) and abs(float(got.iloc[0]) - b["seconds"]) > 1e-6 * b["seconds"]:
            raise ValueError(f"budget {name}: {float(got.iloc[0]):.1f} s here, {b['seconds']:.1f} s in the study")
    final["side"] = "variant"
    return final


def report(final: pd.DataFrame, variant: str, n_boot: int) -> str:
    """Tau, separations and spread of the shipped (``oof``) and the variant's side against the real runs."""
    lines = []
    for side, name in (("oof", "shipped"), ("variant", variant)):
        summary, pairs = agreement(final, "real", side, n_boot=n_boot)
        pairs = pairs.set_index(["budget", "a", "b"])
        for r in summary.itertuples(index=False):
            shares = [(pair, pairs.loc[(r.budget, *pair.split("/"))]) for pair in filter(None, r.flipped.split(", "))]
            flips = [f"{pair} (sides agree {row['p_agree']:.2f}, real keeps {row['p_reference']:.2f})"
                     for pair, row in shares]
            lines.append(f"{name}: budget {r.budget}: tau {r.tau:.2f} (on half the seeds {r.tau_halves:.2f} vs ranking "
                         f"noise ceiling {r.noise_ceiling:.2f}), pairwise agreement {r.pairwise_agreement:.2f}"
                         + (f"; flipped: {', '.join(flips)}" if flips else ""))
        table = separations(final, "real", side)
        for r in table.itertuples(index=False):
            lines.append(f"  separated at {r.budget}: real {r.reference_separated}, {name} {r.compared_separated}, "
                         f"same way {r.same_way}; reversed: {r.reversed or '-'}; only {name}: {r.only_compared or '-'}; "
                         f"only real: {r.only_reference or '-'}")
        lines += spread(final, "real", side, name).splitlines()
    return "\n".join(lines)


def header(meta: dict) -> str:
    return (f"{meta['study']} ({meta['n_runs']:,} logged runs, {len(meta['seeds'])} seeds): the shipped bank (oof) "
            f"and the variant '{meta['variant']}' against the real runs")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", type=Path, nargs="?", help="a stored surrobench validate study (its final.csv and metadata.json)")
    p.add_argument("logs", type=Path, nargs="?", help="the logs the study was run on")
    p.add_argument("--variant", default="level x3, 6 nearest", choices=list(VARIANTS),
                   help="the bank variant, a column of noise_clock.py --bank-spread (default: level x3, 6 nearest)")
    p.add_argument("--seeds", type=int, default=None, help="the study's first N seeds (default: all of them)")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for tau's pairs (default: 1000)")
    p.add_argument("--out", type=Path, help="folder for final.csv (the three sides) and metadata.json")
    p.add_argument("--report", type=Path, metavar="DIR", help="print the report of a folder --out wrote, run nothing")
    args = p.parse_args(argv)
    if args.report is not None:
        for name in ("final.csv", "metadata.json"):
            if not (args.report / name).is_file():
                print(f"bank_variant_study: {args.report / name} not found", file=sys.stderr)
                return 2
        meta = json.loads((args.report / "metadata.json").read_text())
        print(header(meta))
        print(report(pd.read_csv(args.report / "final.csv"), meta["variant"], meta.get("n_boot", args.boot)))
        return 0
    if args.study is None or args.logs is None or args.out is None:
        print("bank_variant_study: give STUDY LOGS --out DIR, or --report DIR", file=sys.stderr)
        return 2
    for name in ("final.csv", "metadata.json"):
        if not (args.study / name).is_file():
            print(f"bank_variant_study: {args.study / name} not found", file=sys.stderr)
            return 2
    stored = pd.read_csv(args.study / "final.csv")
    study_meta = json.loads((args.study / "metadata.json").read_text())
    seeds = [int(s) for s in study_meta["seeds"]][: args.seeds]
    if not seeds or not {"real", "oof"} <= set(stored["side"]):
        print(f"bank_variant_study: {args.study} needs the sides real and oof and at least one seed", file=sys.stderr)
        return 2
    start = time.process_time()
    try:
        variant = variant_side(args.study, args.logs, args.variant, seeds, args.boot)
    except ValueError as exc:
        print(f"bank_variant_study: {exc}", file=sys.stderr)
        return 2
    stored = stored[stored["side"].isin(["real", "oof"]) & stored["seed"].isin(seeds)]
    final = pd.concat([stored, variant[[c for c in stored.columns if c in variant.columns]]], ignore_index=True)
    meta = {"study": str(args.study), "variant": args.variant, "settings": VARIANTS[args.variant],
            "n_runs": study_meta["n_runs"], "training_data": study_meta["training_data"], "seeds": seeds,
            "n_boot": args.boot, "cpu_s": round(time.process_time() - start, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    final.to_csv(args.out / "final.csv", index=False)
    (args.out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(header(meta) + f" ({meta['cpu_s']:.0f} cpu s)")
    print(report(final, args.variant, args.boot))
    same = variant.merge(stored[stored["side"] == "oof"], on=["budget", "optimizer", "seed"], suffixes=("", "_oof"))
    print(f"runs equal to the study's oof side (hypervolume): {int((same['hv'] == same['hv_oof']).sum())} of {len(variant)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
