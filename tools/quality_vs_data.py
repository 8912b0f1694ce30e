"""Surrogate quality against the amount of training data, beside the noise ceiling.

A fixed share of configs is held out (all runs of a config together, so replicates never
straddle; configs with a lone run on the clock device are held out in the same share as the
rest). The surrogate is fitted, exactly as ``surrobench fit`` fits its shipped models (the
same features, XGBoost grid tuned by grouped CV, learns-classifier plus curve regressor,
runtime model on lone runs of one device), on nested seeded subsets of the remaining configs
(by default 25 %, 50 % and 100 %), and every fit is judged on the same held-out configs:

* final-epoch validation error: Kendall tau-b and R^2;
* seconds of a 25-epoch run on the clock device (lone runs only): tau and R^2 on log10 seconds.

The noise ceiling is rerun vs rerun on every replicated config (final-epoch validation
error). The whole procedure is repeated with ``--repeats`` different hold-out draws; the
table shows the mean and the standard deviation over them. Finally the final-error tau is
extrapolated linearly in log(number of training configs) to the ceiling: a rough guide.

    python tools/quality_vs_data.py training_logs/flowers17 [--device "cuda:NVIDIA H200"]
        [--fractions 0.25,0.5,1] [--holdout 0.2] [--repeats 10] [--grid default] [--seed 0] [--json out.json]

About six minutes on one core for flowers17 with 493 curve runs (``--grid quick``: seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from surrobench.datasets import info as dataset_info
from surrobench.space import MAX_EPOCH
from surrobench.surrogate.build import INNER_FOLDS, curve_args, eval_examples, fit_runtime, runtime_rows
from surrobench.surrogate.data import load_run_data, pick_device
from surrobench.surrogate.features import features
from surrobench.surrogate.fit import GRIDS, curve_cv_score, fit_curve_model, tune
from surrobench.surrogate.quality import rerun_pairs, rerun_stats, stats


def split(curve_ids, rt_ids, *, holdout, fractions, rng):
    """Held-out config ids and nested training-id sets (one per fraction), stratified by lone timing."""
    all_ids = np.union1d(curve_ids, rt_ids)
    timed = np.isin(all_ids, rt_ids)
    held, orders = [], []
    for stratum in (all_ids[timed], all_ids[~timed]):
        perm = stratum[rng.permutation(len(stratum))]
        n_out = int(round(holdout * len(perm)))
        held.append(perm[:n_out])
        orders.append(perm[n_out:])
    train_sets = [
        np.concatenate([order[: int(round(f * len(order)))] for order in orders]) for f in fractions
    ]
    return np.concatenate(held), train_sets


def fit_and_judge(ctx, train_ids, held_ids, grid, seed):
    """Curves and runtime fitted on ``train_ids``, judged on ``held_ids``; a dict of numbers."""
    tr, te = np.isin(ctx["cur_ids"], train_ids), np.isin(ctx["cur_ids"], held_ids)
    params, _ = tune(curve_cv_score, ctx["x"][tr], ctx["val"][tr], ctx["test"][tr], ctx["cur_ids"][tr], grid,
                     seed=seed, n_folds=INNER_FOLDS, **ctx["cargs"])
    model = fit_curve_model(ctx["x"][tr], ctx["val"][tr], ctx["test"][tr], params, seed=seed, **ctx["cargs"])
    pred = model.mean(ctx["x"][te])[:, MAX_EPOCH - 1]
    s_val = stats(pred, ctx["val"][te, -1])
    out = {
        "n_train_configs": int(len(np.unique(ctx["cur_ids"][tr]))),
        "n_train_runs": int(tr.sum()),
        "n_test_runs": int(te.sum()),
        "val_tau": s_val["kendall_tau"],
        "val_r2": s_val["r2"],
    }
    rtr, rte = np.isin(ctx["rt_ids"], train_ids), np.isin(ctx["rt_ids"], held_ids)
    out["n_train_runtime_configs"] = int(len(np.unique(ctx["rt_ids"][rtr])))
    out["n_test_runtime_runs"] = int(rte.sum())
    out["rt_tau"] = out["rt_r2"] = None
    if out["n_train_runtime_configs"] >= 2 and rte.sum() >= 3:
        rt_model, _, _ = fit_runtime(ctx["rt_x"][rtr], ctx["per_epoch"][rtr], ctx["per_eval"][rtr], ctx["rt_ids"][rtr],
                                     device=ctx["device"], n_train=ctx["n_train"], n_eval=ctx["n_eval"], seed=seed,
                                     n_folds=INNER_FOLDS)
        ep, ev = rt_model.predict(ctx["rt_x"][rte])
        s_rt = stats(np.log10(MAX_EPOCH * ep + ev), np.log10(ctx["cost25"][rte]))
        out["rt_tau"], out["rt_r2"] = s_rt["kendall_tau"], s_rt["r2"]
    return out


def _mean_sd(values):
    v = np.array([x for x in values if x is not None], float)
    if len(v) == 0:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def _cell(values):
    m, sd = _mean_sd(values)
    if m is None:
        return "n/a"
    return f"{m:.2f}" if sd is None else f"{m:.2f} ± {sd:.2f}"


def extrapolate(n_configs, taus, target):
    """Training configs at which a line through (log n, tau) reaches ``target``; None if it never does."""
    if target is None or len(n_configs) < 2:
        return None
    slope, intercept = np.polyfit(np.log(n_configs), taus, 1)
    if slope <= 0:
        return None
    return float(math.exp((target - intercept) / slope))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs", help="logs directory of one dataset (e.g. training_logs/flowers17)")
    p.add_argument("--dataset", help="needed if the logs hold several datasets")
    p.add_argument("--device", help="whose clock the runtime model learns (default: the device with most lone runs)")
    p.add_argument("--fractions", default="0.25,0.5,1", help="nested training fractions (default: %(default)s)")
    p.add_argument("--holdout", type=float, default=0.2, help="share of configs held out (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=10, help="hold-out draws (default: %(default)s)")
    p.add_argument("--grid", default="default", choices=sorted(GRIDS),
                   help="XGBoost grid, as for surrobench fit (default: %(default)s; quick: seconds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write every number to this JSON file")
    args = p.parse_args(argv)
    try:
        args.fractions = sorted(float(f) for f in args.fractions.split(","))
    except ValueError:
        p.error(f"--fractions: not a comma-separated list of numbers: {args.fractions!r}")
    if not args.fractions or not all(0 < f <= 1 for f in args.fractions):
        p.error("--fractions: every fraction must lie in (0, 1]")
    if not 0.05 <= args.holdout <= 0.5:
        p.error("--holdout: must lie in [0.05, 0.5]")
    if args.repeats < 1 or args.seed < 0:
        p.error("--repeats must be >= 1 and --seed >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover
        pass
    started = time.perf_counter()
    try:
        data = load_run_data(args.logs, args.dataset)
        device = pick_device(data, args.device)
    except ValueError as exc:
        print(f"quality_vs_data: error: {exc}", file=sys.stderr)
        return 2
    info = dataset_info(data.dataset)
    shape, n_classes, n_train = info.input_shape, info.n_classes, info.sizes[0]
    cur = data.subset(data.curve_run)
    rt_rows, per_epoch, per_eval, cost25 = runtime_rows(data, device)
    ctx = {
        "x": features(cur.configs, shape, n_classes, n_train), "val": cur.val, "test": cur.test,
        "cur_ids": cur.config_ids, "cargs": curve_args(info), "device": device, "n_train": n_train,
        "n_eval": eval_examples(info),
        "rt_x": features([data.configs[i] for i in rt_rows], shape, n_classes, n_train),
        "rt_ids": data.config_ids[rt_rows], "per_epoch": per_epoch, "per_eval": per_eval, "cost25": cost25,
    }
    grid = GRIDS[args.grid]
    results = []
    for r in range(args.repeats):
        rng = np.random.default_rng(np.random.SeedSequence([args.seed, r]))
        held, train_sets = split(cur.config_ids, ctx["rt_ids"], holdout=args.holdout, fractions=args.fractions,
                                 rng=rng)
        for frac, ids in zip(args.fractions, train_sets):
            row = {"repeat": r, "fraction": frac, **fit_and_judge(ctx, ids, held, grid, args.seed)}
            results.append(row)
            print(f"repeat {r} fraction {frac:g}: {row}", file=sys.stderr)

    rerun = rerun_stats(cur.config_ids, cur.val[:, -1])
    a, _ = rerun_pairs(cur.config_ids)
    n_rep = int(len(np.unique(cur.config_ids[a]))) if len(a) else 0
    print(f"{data.dataset}: {len(cur)} curve runs of {len(np.unique(cur.config_ids))} configs; runtime clock {device} "
          f"({len(rt_rows)} lone runs of {len(np.unique(ctx['rt_ids']))} configs); hold-out {args.holdout:g} of "
          f"configs, {args.repeats} draws (mean ± sd), grid {args.grid!r}, seed {args.seed}")
    print()
    print("| training data | configs (runs) | final val. error τ | final val. error R² | "
          "runtime τ | runtime R² (log s) | lone-timed configs |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for frac in args.fractions:
        rows = [x for x in results if x["fraction"] == frac]
        n_cfg = float(np.mean([x["n_train_configs"] for x in rows]))
        n_runs = float(np.mean([x["n_train_runs"] for x in rows]))
        n_rt = float(np.mean([x["n_train_runtime_configs"] for x in rows]))
        summary.append((n_cfg, _mean_sd([x["val_tau"] for x in rows])[0]))
        print(f"| {frac:.0%} | {n_cfg:.0f} ({n_runs:.0f}) | {_cell([x['val_tau'] for x in rows])} | "
              f"{_cell([x['val_r2'] for x in rows])} | {_cell([x['rt_tau'] for x in rows])} | "
              f"{_cell([x['rt_r2'] for x in rows])} | {n_rt:.0f} |")
    print(f"| noise ceiling: rerun vs rerun | {n_rep} replicated configs | {rerun['kendall_tau']:.2f} | "
          f"{rerun['r2']:.2f} | n/a | n/a | |")
    print()
    n_now = summary[-1][0]
    target = rerun["kendall_tau"]
    ok = [(n, t) for n, t in summary if t is not None]
    n_star = extrapolate([n for n, _ in ok], [t for _, t in ok], target)
    per_repeat = []
    for r in range(args.repeats):
        mine = [x for x in results if x["repeat"] == r and x["val_tau"] is not None]
        per_repeat.append(extrapolate([x["n_train_configs"] for x in mine], [x["val_tau"] for x in mine], target))
    found = sorted(v for v in per_repeat if v is not None)
    if ok and target is not None and ok[-1][1] >= target:
        print(f"final-error tau {ok[-1][1]:.2f} at 100 % already reaches the noise ceiling {target:.2f}")
    elif n_star is None:
        print("final-error tau does not grow with the data here: no extrapolation to the ceiling")
    else:
        print(f"rough extrapolation (tau linear in log #configs): tau {target:.2f} (the ceiling) at about "
              f"{n_star:,.0f} training configs, {n_star / n_now:.0f}x the {n_now:.0f} used at 100 %")
        if found:
            q25, q50, q75 = np.percentile(found, [25, 50, 75])
            print(f"  the same line through each draw alone: median {q50:,.0f} configs, quartiles {q25:,.0f} to "
                  f"{q75:,.0f} ({len(found)} of {args.repeats} draws grow with the data)")
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "settings": {k: v for k, v in vars(args).items() if k != "json"}, "device": device,
            "results": results, "rerun": rerun, "n_replicated_configs": n_rep, "extrapolated_configs": n_star,
            "extrapolated_configs_per_draw": per_repeat,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
