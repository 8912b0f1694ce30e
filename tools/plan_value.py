"""What a run is worth: surrogate quality gained from random runs against targeted runs.

A held-out random plan (never used for fitting) judges every fit. The surrogate's curve models
are fitted on the base runs (every run that belongs to neither arm nor the held-out plan) plus
one arm: the random arm (runs of ``--random`` plans) or the targeted arm (runs of ``--targeted``
plans, e.g. ``optimizers7`` or ``uncertain8``). Both arms are cut to the same CPU cost: runs
in collection order until their summed wall time reaches the smaller arm's total. Each fit is
judged on the held-out configs: Kendall tau of final validation error over all of them and over
their best 20 %, and the largest gap between the held-out runs' distribution and out-of-sample
draws (the rows of the quality card's draws table).

    python tools/plan_value.py training_logs/flowers17 --heldout 5 --random 6 --targeted optimizers7

The plan names are the key prefixes of the runs (``s5`` or ``5`` for random plan 5,
``optimizers7`` for the targeted plan of seed 7); see docs/collecting.md.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from surrobench.datasets import info as dataset_info
from surrobench.space import MAX_EPOCH
from surrobench.surrogate.build import curve_args
from surrobench.surrogate.data import RunData, load_run_data
from surrobench.surrogate.features import features
from surrobench.surrogate.fit import GRIDS, curve_cv_score, fit_curve_model, tune
from surrobench.surrogate.noise import calibrate
from surrobench.surrogate.quality import DIST_ROWS, distribution, stats


def plan_of(key: str) -> str:
    """The plan part of a run key (``flowers17/e25/s5/c3/r0`` -> ``s5``)."""
    parts = key.split("/")
    return parts[2] if len(parts) > 2 else ""


def _names(text: str) -> set[str]:
    return {f"s{t}" if t.isdigit() else t for t in text.split(",") if t}


def arm_rows(data: RunData, plans: set[str], budget: float | None) -> np.ndarray:
    """Curve runs of ``plans`` in collection order, cut at ``budget`` seconds of wall time."""
    rows = [i for i in np.flatnonzero(data.curve_run) if plan_of(data.keys[i]) in plans]
    if budget is None:
        return np.asarray(rows, dtype=int)
    wall = np.nan_to_num(data.wall_time[rows], nan=0.0)
    keep = np.cumsum(wall) <= budget + 1e-9
    return np.asarray(rows, dtype=int)[keep]


def judge(data, train, held, info, grid, seed):
    x = features(data.configs, info.input_shape, info.n_classes, info.sizes[0])
    cargs = curve_args(info)
    params, _ = tune(curve_cv_score, x[train], data.val[train], data.test[train], data.config_ids[train], grid,
                     seed=seed, n_folds=3, **cargs)
    model = fit_curve_model(x[train], data.val[train], data.test[train], params, seed=seed, **cargs)
    noise = calibrate(data.config_ids[train], data.val[train], data.test[train], info.chance_error, info.sizes[1],
                      info.sizes[2])
    pred = model.mean(x[held])[:, MAX_EPOCH - 1]
    truth = data.val[held, -1]
    out = {"tau": stats(pred, truth)["kendall_tau"]}
    top = np.argsort(truth, kind="stable")[: max(3, int(round(0.2 * len(held))))]
    out["top20_tau"] = stats(pred[top], truth[top])["kendall_tau"]
    margin, learner = model.raw(x[held])
    p = model.learn_probability(margin)
    keys = np.array([int(c[:16], 16) for c in data.config_ids[held]], dtype=np.uint64)
    drawn = model.draw(p, learner, keys, data.seeds[held].astype(np.uint64), noise.mixing_matrix(MAX_EPOCH))
    logged, draws = distribution(truth, info.chance_error), distribution(drawn[:, MAX_EPOCH - 1], info.chance_error)
    out["max_gap"] = max(abs(logged[k] - draws[k]) for k, _ in DIST_ROWS if logged[k] is not None and draws[k] is not None)
    out["n_train"] = int(len(train))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs")
    p.add_argument("--heldout", required=True, help="the held-out random plan(s), e.g. 5")
    p.add_argument("--random", required=True, help="random plan(s) of the random arm, e.g. 6")
    p.add_argument("--targeted", required=True, help="targeted plan(s), e.g. optimizers7,uncertain8")
    p.add_argument("--grid", default="quick", choices=sorted(GRIDS))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        data = load_run_data(args.logs)
        info = dataset_info(data.dataset)
        held_plans, rand_plans, targ_plans = _names(args.heldout), _names(args.random), _names(args.targeted)
        held = arm_rows(data, held_plans, None)
        rand_all, targ_all = arm_rows(data, rand_plans, None), arm_rows(data, targ_plans, None)
        if min(len(held), len(rand_all), len(targ_all)) < 5:
            raise ValueError(f"needs at least 5 curve runs in each of the held-out plan ({len(held)}), the random arm "
                             f"({len(rand_all)}) and the targeted arm ({len(targ_all)})")
        cost = min(np.nansum(data.wall_time[rand_all]), np.nansum(data.wall_time[targ_all]))
        used = held_plans | rand_plans | targ_plans
        base = np.asarray([i for i in np.flatnonzero(data.curve_run) if plan_of(data.keys[i]) not in used], dtype=int)
        held_ids = set(data.config_ids[held].tolist())
        base = base[~np.isin(data.config_ids[base], list(held_ids))]
        rows = {"base only": base,
                "base + random arm": np.r_[base, arm_rows(data, rand_plans, cost)],
                "base + targeted arm": np.r_[base, arm_rows(data, targ_plans, cost)]}
        for name in ("base + random arm", "base + targeted arm"):
            rows[name] = rows[name][~np.isin(data.config_ids[rows[name]], list(held_ids))]
        results = {name: judge(data, r, held, info, GRIDS[args.grid], args.seed) for name, r in rows.items()}
    except ValueError as exc:
        print(f"plan_value: error: {exc}", file=sys.stderr)
        return 2
    print(f"held-out plan(s) {sorted(held_plans)}: {len(held)} runs; each arm cut to {cost / 3600:.2f} CPU hours")
    print()
    print("| training runs | runs | τ final val. error | τ best 20 % | largest gap of the draws |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['n_train']} | {r['tau']:.3f} | {r['top20_tau']:.3f} | {r['max_gap']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
