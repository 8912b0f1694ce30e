"""Where a surrogate side's hypervolume comes from, per optimizer: low-epoch points, and optimism.

Reads what ``surrobench validate`` wrote (``runs.csv`` and ``final.csv`` of its ``--out``
folder) and prints, per budget, optimizer and side, medians over the seeds:

* ``best_any``: the lowest validation error a run saw at any epoch (every evaluated point counts
  in the hypervolume, as in the paper);
* ``best_25``: the lowest it saw at the full 25 epochs;
* ``early_best``: the share of runs whose lowest error was seen only below 25 epochs, i.e. a
  point better part-way through training than anything the run trained to the end;
* ``hv`` and ``hv_logged``: the run's hypervolume and the same jobs scored by the logs (what the
  configs it found are worth on real runs; see ``surrobench.validate``).

A surrogate side whose ``early_best`` and ``best_any - best_25`` are far from the real side's may be
rewarding lucky dips of its learning-curve draws; ``hv - hv_logged`` is its optimism.

Then, per budget, each surrogate side's levels against the real side's, optimizer by optimizer
(medians over the seeds, as above): ``level``, its median hypervolume less the real side's (what a
user reads off the table); ``search``, the median ``hv_logged`` of its runs less the real side's
(whether its runs find configs as good on the logs as the real runs find); ``optimism``, its ``hv``
less its ``hv_logged`` (what its draws add to the configs found); and over the optimizers the mean
absolute value of each and the spread (sd) of ``level``, whose differences between methods are what
can move a ranking. A perfect surrogate has ``level`` 0 but not ``search`` or ``optimism`` 0: the
real runs' hypervolume also holds the luck of the runs they picked, which ``hv_logged`` of
another side's picks does not.

Last, for the runs whose best point was trained part-way, per budget, optimizer and side: how many
runs, how many distinct configs those best points are (a study's share can rest on a config or two
that many runs reach), ``dip``, the median of the side's own 25-epoch answer for the config less the best point's error (how
far the curve came back up), and ``real_gap``, the median of the real side's 25-epoch answer for the
config less the side's (how much better than its real run the side draws the config; any optimizer's
runs of that budget count).

    surrobench validate --budget 0.1,0.2 --seeds 120 --grid quick --sides real,oof --noise-time epoch --out docs/results/validate_large
    python tools/validate_dips.py docs/results/validate_large
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ["epoch", "val_error", "side", "budget", "optimizer", "seed", "config_id"]


def dips(folder: Path, max_epoch: int = 25, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per budget, optimizer and side (medians over the seeds; ``early_best`` a share)."""
    runs = read_runs(folder) if runs is None else runs
    final = pd.read_csv(folder / "final.csv")
    keys = ["budget", "optimizer", "side", "seed"]
    best_any = runs.groupby(keys)["val_error"].min().rename("best_any")
    best_25 = runs[runs["epoch"] >= max_epoch].groupby(keys)["val_error"].min().rename("best_25")
    per_run = pd.concat([best_any, best_25], axis=1)
    per_run["early_best"] = per_run["best_25"].isna() | (per_run["best_any"] < per_run["best_25"])
    per_run = per_run.reset_index()
    cols = ["hv", "hv_logged"] if "hv_logged" in final else ["hv"]
    per_run = per_run.merge(final[keys + cols], on=keys, how="left")
    out = per_run.groupby(["budget", "optimizer", "side"]).agg(
        best_any=("best_any", "median"), best_25=("best_25", "median"), early_best=("early_best", "mean"),
        **{c: (c, "median") for c in cols}).reset_index()
    return out


def read_runs(folder: Path) -> pd.DataFrame:
    """The columns of ``runs.csv`` the tables here need."""
    return pd.read_csv(folder / "runs.csv", usecols=COLUMNS)


def early_points(runs: pd.DataFrame, max_epoch: int = 25, reference: str = "real") -> pd.DataFrame:
    """One row per budget, optimizer and side with runs whose best point (lowest validation error) was
    trained part-way: ``runs`` of them, distinct ``configs`` of those points, the median ``dip`` and
    ``real_gap`` (see the module docstring; NaN where a config has no 25-epoch answer on a side)."""
    keys = ["budget", "optimizer", "side", "seed"]
    best = runs.loc[runs.groupby(keys)["val_error"].idxmin()]
    early = best[best["epoch"] < max_epoch]
    full = runs[runs["epoch"] >= max_epoch].groupby(["budget", "side", "config_id"])["val_error"].median()
    rows = []
    for (budget, optimizer, side), g in early.groupby(["budget", "optimizer", "side"]):
        own = full.get((budget, side))
        ref = full.get((budget, reference))
        own_25 = g["config_id"].map(own) if own is not None else pd.Series(float("nan"), index=g.index)
        ref_25 = g["config_id"].map(ref) if ref is not None else pd.Series(float("nan"), index=g.index)
        rows.append({"budget": budget, "optimizer": optimizer, "side": side, "runs": len(g),
                     "configs": g["config_id"].nunique(), "dip": (own_25 - g["val_error"]).median(),
                     "real_gap": (ref_25 - own_25).median() if side != reference else float("nan")})
    return pd.DataFrame(rows, columns=["budget", "optimizer", "side", "runs", "configs", "dip", "real_gap"])


def levels(table: pd.DataFrame, reference: str = "real") -> list[tuple[str, str, pd.DataFrame]]:
    """Per budget and surrogate side: one row per optimizer (``level``, ``search``, ``optimism``; see
    above), from :func:`dips`'s table; nothing where the ``reference`` side or ``hv_logged`` is missing."""
    if "hv_logged" not in table or reference not in set(table["side"]):
        return []
    out = []
    for budget in sorted(set(table["budget"]), key=str):
        at = table[table["budget"] == budget].set_index(["side", "optimizer"])
        if reference not in at.index.get_level_values(0):
            continue
        real = at.loc[reference]
        for side in sorted(set(at.index.get_level_values(0)) - {reference}):
            mine = at.loc[side]
            both = mine.index.intersection(real.index)
            mine, ref = mine.loc[both], real.loc[both]
            out.append((str(budget), side, pd.DataFrame({
                "level": mine["hv"] - ref["hv"],
                "search": mine["hv_logged"] - ref["hv_logged"],
                "optimism": mine["hv"] - mine["hv_logged"]})))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="the --out folder of surrobench validate")
    args = p.parse_args(argv)
    for name in ("runs.csv", "final.csv"):
        if not (args.folder / name).is_file():
            print(f"validate_dips: {args.folder / name} not found (run surrobench validate --out {args.folder})",
                  file=sys.stderr)
            return 2
    runs = read_runs(args.folder)
    table = dips(args.folder, runs=runs)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        for budget, side, lv in levels(table):
            print(f"\nbudget {budget}, {side} against real (median hypervolumes; level = search + optimism"
                  " only roughly, medians do not add):")
            print(lv.to_string(float_format=lambda v: f"{v:+.3f}"))
            mean_abs = lv.abs().mean()
            print(f"mean |level| {mean_abs['level']:.3f}, |search| {mean_abs['search']:.3f}, "
                  f"|optimism| {mean_abs['optimism']:.3f}; sd of level over the optimizers {lv['level'].std():.3f}")
        early = early_points(runs)
        if len(early):
            print("\nruns whose best point was trained part-way (dip: the side's 25-epoch answer for the config less"
                  " that point; real_gap: the real side's 25-epoch answer less the side's; medians):")
            print(early.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
