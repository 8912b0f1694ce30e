"""Where along the front a surrogate side's hypervolume parts from the real side's, per optimizer.

``tools/validate_dips.py`` splits a surrogate side's level against the real side (its median
hypervolume less the real side's) into *search* (what the configs it found are worth on the logs,
``hv_logged``, less the real side's ``hv``) and *optimism* (``hv - hv_logged``: what its draws add).
This tool says where on the front each part lies. In two objectives the hypervolume is an integral
over model size: with ``f(x)`` the lowest validation error among a run's points of at most ``x``
log10 parameters (1, the reference, where there is none),

    hv = integral of (1 - f(x)) dx from the smallest size to the reference's 8,

so the hypervolume between two sizes is exact and the bands add up to the whole. Per run, and per
band of log10 parameters, the tool computes it for the side's points (``hv``), for the same jobs
scored by the logs (``hv_logged``: each answer replaced by the mean logged validation error of the
answered config at that epoch, as ``surrobench validate`` scores them), and for the real side's run
of the same optimizer, seed and budget. Then, per budget, surrogate side and optimizer, the means
over the seeds of

* ``level``: the band's ``hv`` less the real run's;
* ``search``: its ``hv_logged`` less the real run's ``hv``;
* ``optimism``: its ``hv`` less its ``hv_logged``;

which add exactly (level = search + optimism, in every band and over the bands; means, not the
medians ``validate_dips.py`` prints). A band's value is an area: divided by the band's width it is
how far below (positive) or above the other front lies on average across those sizes. The last
band runs to the reference point (log10 parameters 8), so beyond the largest point of a front it
holds that front's best error over its whole width: a gap in the best error weighs most there.

Last, the optimism of each run is split by the epoch of the side's point that makes its front at each
size: ``at_25`` where that point was trained the full 25 epochs, ``part_way`` where it was trained
less (a lucky dip of a drawn learning curve shows there).

The logs must be those the study was run on (their content hash is in its ``metadata.json``):
check out the study's commit's logs, or pass them with ``--logs``.

    surrobench validate training_logs/flowers17 --budget 0.02,0.1 --seeds 60 --grid quick --sides real,oof --noise-time bank-logged --out build/study
    python tools/validate_fronts.py build/study
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from surrobench.space import MAX_EPOCH, REFERENCE_POINT

COLUMNS = ["epoch", "val_error", "log10_params", "side", "budget", "optimizer", "seed", "config_id"]
KEYS = ["budget", "optimizer", "side", "seed"]
DEFAULT_EDGES = (3.5, 4.0, 4.5, 5.0, 5.5, 6.0)


def band_hypervolumes(size: np.ndarray, error: np.ndarray, edges: np.ndarray,
                      ref: tuple[float, float] = REFERENCE_POINT) -> np.ndarray:
    """The hypervolume of the points ``(error, size)`` (minimised, bounded by ``ref`` = (error, size))
    between consecutive ``edges`` of size: ``len(edges) - 1`` areas. ``edges`` that start at or below
    the smallest size and end at ``ref``'s size add up to the points' hypervolume."""
    size = np.asarray(size, dtype=float)
    error = np.asarray(error, dtype=float)
    edges = np.asarray(edges, dtype=float)
    ref_err, ref_size = float(ref[0]), float(ref[1])
    keep = (size < ref_size) & (error < ref_err)
    out = np.zeros(len(edges) - 1)
    if not keep.any():
        return out
    order = np.argsort(size[keep], kind="stable")
    xs = size[keep][order]
    best = np.minimum.accumulate(error[keep][order])  # f on [xs[k], xs[k+1])
    step = np.r_[True, best[1:] < best[:-1]]  # only where f drops
    xs, best = xs[step], best[step]
    right = np.r_[xs[1:], ref_size]
    lo, hi = edges[:-1, None], edges[1:, None]
    overlap = np.clip(np.minimum(right[None, :], hi) - np.maximum(xs[None, :], lo), 0.0, None)
    return overlap @ (ref_err - best)


def read_runs(folder: Path) -> pd.DataFrame:
    """The columns of ``runs.csv`` this tool needs."""
    return pd.read_csv(folder / "runs.csv", usecols=COLUMNS)


def logged_column(runs: pd.DataFrame, errors: pd.Series) -> np.ndarray:
    """Each job's answer as the logs give it (``errors`` by ``(config_id, epoch)``, see
    :func:`surrobench.validate.logged_errors`); a ``ValueError`` naming a job the logs lack."""
    at = pd.MultiIndex.from_arrays([runs["config_id"], runs["epoch"].astype(int)])
    logged = errors.reindex(at).to_numpy(dtype=float)
    missing = np.isnan(logged)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(f"logs: {int(missing.sum())} of {len(runs)} jobs answer configs the logs do not hold, e.g. "
                         f"{runs['config_id'].iloc[i]} at epoch {int(runs['epoch'].iloc[i])}")
    return logged


def split(runs: pd.DataFrame, logged: np.ndarray, edges=DEFAULT_EDGES, reference: str = "real",
          max_epoch: int = MAX_EPOCH) -> pd.DataFrame:
    """One row per budget, surrogate side, optimizer, seed and band: ``hv``, ``hv_logged``, the real
    run's ``hv_real``, ``level``, ``search`` and ``optimism`` (see the module docstring), and the
    optimism split by the epoch of the side's front point, ``at_25`` and ``part_way``."""
    cuts = np.r_[-np.inf, np.asarray(edges, dtype=float), REFERENCE_POINT[1]]
    if np.any(np.diff(cuts) <= 0):
        raise ValueError(f"edges: expected increasing sizes below {REFERENCE_POINT[1]:g}, got {list(edges)}")
    cuts[0] = min(float(runs["log10_params"].min()), cuts[1]) if len(runs) else cuts[1] - 1.0
    names = [f"..{cuts[1]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(cuts[1:-1], cuts[2:])]
    runs = runs.assign(logged=logged)
    real: dict[tuple, np.ndarray] = {}
    sides = []
    for key, g in runs.groupby(KEYS, sort=False):
        size = g["log10_params"].to_numpy()
        hv = band_hypervolumes(size, g["val_error"].to_numpy(), cuts)
        if key[2] == reference:
            real[key[0], key[1], key[3]] = hv
            continue
        hv_logged = band_hypervolumes(size, g["logged"].to_numpy(), cuts)
        # optimism where the side's front point was trained to the end, and where part-way
        full_err = np.where(g["epoch"].to_numpy() >= max_epoch, g["val_error"].to_numpy(), np.inf)
        at_25 = _front_gap(size, g["val_error"].to_numpy(), g["logged"].to_numpy(), full_err, cuts)
        sides.append((key, hv, hv_logged, at_25))
    rows = []
    for (budget, optimizer, side, seed), hv, hv_logged, at_25 in sides:
        ref = real.get((budget, optimizer, seed))
        if ref is None:
            continue
        for k, name in enumerate(names):
            rows.append({"budget": budget, "side": side, "optimizer": optimizer, "seed": seed, "band": name,
                         "hv": hv[k], "hv_logged": hv_logged[k], "hv_real": ref[k], "level": hv[k] - ref[k],
                         "search": hv_logged[k] - ref[k], "optimism": hv[k] - hv_logged[k],
                         "at_25": at_25[k], "part_way": hv[k] - hv_logged[k] - at_25[k]})
    return pd.DataFrame(rows, columns=["budget", "side", "optimizer", "seed", "band", "hv", "hv_logged", "hv_real",
                                       "level", "search", "optimism", "at_25", "part_way"])


def _front_gap(size, drawn, logged, full_err, cuts) -> np.ndarray:
    """Per band, the integral of ``f_logged - f_drawn`` over the sizes where the drawn front's point
    was trained to the end (``full_err`` is finite there)."""
    grid = np.unique(np.r_[size[size < cuts[-1]], cuts])
    grid = grid[(grid >= cuts[0]) & (grid <= cuts[-1])]
    left, width = grid[:-1], np.diff(grid)
    f_drawn, who = _staircase(size, drawn, left)
    f_logged, _ = _staircase(size, logged, left)
    full = np.zeros(len(left), dtype=bool)
    has = who >= 0
    full[has] = np.isfinite(full_err[who[has]])
    gap = (f_logged - f_drawn) * width * full
    band = np.searchsorted(cuts, left, side="right") - 1
    return np.bincount(band, weights=gap, minlength=len(cuts) - 1)[:len(cuts) - 1]


def _staircase(size: np.ndarray, error: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f`` at the sizes ``at`` (the lowest error of at most that size, clipped at the reference's
    error) and the index of the point that makes it (-1 where none does)."""
    ref_err = REFERENCE_POINT[0]
    order = np.argsort(size, kind="stable")
    err = error[order]
    low = np.minimum.accumulate(err)
    new = np.r_[True, low[1:] < low[:-1]] if len(err) else np.zeros(0, dtype=bool)
    arg = np.maximum.accumulate(np.where(new, np.arange(len(err)), 0))  # running argmin, the first of equal errors
    pos = np.searchsorted(size[order], at, side="right") - 1
    idx = np.where(pos >= 0, order[arg[np.maximum(pos, 0)]], -1)
    f = np.where(pos >= 0, np.minimum(error[np.maximum(idx, 0)], ref_err), ref_err)
    idx = np.where(f < ref_err, idx, -1)
    return f, idx


def summary(table: pd.DataFrame, what: str) -> list[tuple[str, str, pd.DataFrame]]:
    """Per budget and surrogate side: optimizers x bands of ``what``'s mean over the seeds, with a
    ``total`` column (the bands' sum)."""
    out = []
    for (budget, side), g in table.groupby(["budget", "side"], sort=False):
        wide = g.groupby(["optimizer", "band"], sort=False)[what].mean().unstack("band")
        wide = wide[list(dict.fromkeys(g["band"]))]
        wide["total"] = wide.sum(axis=1)
        out.append((str(budget), str(side), wide.sort_values("total", ascending=False)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="the --out folder of surrobench validate (with its runs.csv)")
    p.add_argument("--logs", type=Path, help="the logs the study was run on (default: the path in its metadata.json)")
    p.add_argument("--edges", default=",".join(f"{e:g}" for e in DEFAULT_EDGES),
                   help="band edges in log10 parameters (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        for name in ("runs.csv", "metadata.json"):
            if not (args.folder / name).is_file():
                raise ValueError(f"{args.folder / name} not found (run surrobench validate --out {args.folder})")
        try:
            edges = [float(e) for e in args.edges.split(",") if e.strip()]
        except ValueError:
            raise ValueError(f"--edges: expected comma-separated log10 parameter counts, got {args.edges!r}") from None
        meta = json.loads((args.folder / "metadata.json").read_text())
        logs = args.logs or Path(meta["logs"])
        from surrobench.logged import logged_set
        from surrobench.validate import logged_errors

        logged = logged_set(logs, meta["dataset"])
        if logged.data.data_hash != meta["training_data"]:
            raise ValueError(f"logs: {logs} are not the logs the study was run on (content hash "
                             f"{logged.data.data_hash[:12]}..., the study's {meta['training_data'][:12]}...)")
        runs = read_runs(args.folder)
        table = split(runs, logged_column(runs, logged_errors(logged.data.config_ids, logged.data.val)), edges)
    except (ValueError, OSError, KeyError) as exc:
        print(f"validate_fronts: {exc}", file=sys.stderr)
        return 2
    print(f"{args.folder}: means over {table['seed'].nunique()} seeds; bands of log10 parameters "
          f"(the last runs to the reference point, {REFERENCE_POINT[1]:g}); areas in hypervolume units")
    fmt = lambda v: f"{v:+.3f}"  # noqa: E731
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        for what, said in (("level", "the side's hv less the real run's"),
                           ("search", "the side's hv_logged less the real run's hv"),
                           ("optimism", "the side's hv less its hv_logged"),
                           ("at_25", "optimism where the side's front point was trained 25 epochs"),
                           ("part_way", "optimism where it was trained part-way")):
            for budget, side, wide in summary(table, what):
                print(f"\nbudget {budget}, {side}: {what} ({said})")
                print(wide.to_string(float_format=fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
