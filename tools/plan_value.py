"""What a run is worth: surrogate quality gained from random runs against targeted runs.

A held-out random plan (never used for fitting) judges every fit. The surrogate's curve models
are fitted on the base runs (every run that belongs to neither arm nor the held-out plan) plus
one arm: the random arm (runs of ``--random`` plans) or the targeted arm (runs of ``--targeted``
plans, e.g. ``optimizers7`` or ``uncertain8``). Both arms are cut to the same cost: runs in
collection order until their summed cost reaches the smaller arm's total, where a run's cost is its
logged wall time or, with ``--clock``, what its config costs on one surrogate's device clock (so
runs trained under different loads or devices are costed alike). Each fit is
judged on the held-out configs: Kendall tau of final validation error over all of them and over
their best 20 %, and the largest gap between the held-out runs' distribution and out-of-sample
draws (the rows of the quality card's draws table). ``--repeats`` refits every row with further
seeds (mean ± sd), and a paired bootstrap over the held-out runs gives a 90 % interval for the
difference between the arms.

    python tools/plan_value.py training_logs/flowers17 --heldout 2001,5 --random 1,2,4 \
        --targeted optimizers6,optimizers7 --clock flowers17-cpu --repeats 5

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


def arm_rows(data: RunData, plans: set[str], budget: float | None, cost: np.ndarray | None = None) -> np.ndarray:
    """Curve runs of ``plans`` in collection order, cut at ``budget`` seconds of ``cost`` (default: wall time)."""
    rows = [i for i in np.flatnonzero(data.curve_run) if plan_of(data.keys[i]) in plans]
    if budget is None:
        return np.asarray(rows, dtype=int)
    seconds = np.nan_to_num((data.wall_time if cost is None else cost)[rows], nan=0.0)
    keep = np.cumsum(seconds) <= budget + 1e-9
    return np.asarray(rows, dtype=int)[keep]


def clock_seconds(data: RunData, clock: str) -> np.ndarray:
    """Every run's cost on one device: the clock of surrogate ``clock`` for its config's full run.

    Logged wall times mix devices and loads (a CPU shared with other work is slower); the same
    device clock for both arms makes "the same CPU cost" mean the same work.
    """
    from surrobench.benchmark import load

    bench = load(clock)
    return np.array([bench.cost(cfg, MAX_EPOCH) for cfg in data.configs], dtype=float)


def fit_predict(data, train, held, info, grid, seed):
    """Fit the curve models on ``train`` (tuned as ``surrobench fit`` tunes them); predict ``held``.

    Returns the predicted final validation error and one seeded draw per held-out run.
    """
    x = features(data.configs, info.input_shape, info.n_classes, info.sizes[0])
    cargs = curve_args(info)
    params, _ = tune(curve_cv_score, x[train], data.val[train], data.test[train], data.config_ids[train], grid,
                     seed=seed, n_folds=3, **cargs)
    model = fit_curve_model(x[train], data.val[train], data.test[train], params, seed=seed, **cargs)
    noise = calibrate(data.config_ids[train], data.val[train], data.test[train], info.chance_error, info.sizes[1],
                      info.sizes[2])
    pred = model.mean(x[held])[:, MAX_EPOCH - 1]
    margin, learner = model.raw(x[held])
    p = model.learn_probability(margin)
    keys = np.array([int(c[:16], 16) for c in data.config_ids[held]], dtype=np.uint64)
    drawn = model.draw(p, learner, keys, data.seeds[held].astype(np.uint64), noise.mixing_matrix(MAX_EPOCH))
    return pred, drawn[:, MAX_EPOCH - 1]


def scores(pred, drawn, truth, chance) -> dict[str, float]:
    """Overall tau, tau among the best 20 % (by measured error) and the draws' largest gap."""
    top = np.argsort(truth, kind="stable")[: max(3, int(round(0.2 * len(truth))))]
    logged, draws = distribution(truth, chance), distribution(drawn, chance)
    gap = max(abs(logged[k] - draws[k]) for k, _ in DIST_ROWS if logged[k] is not None and draws[k] is not None)
    return {"tau": stats(pred, truth)["kendall_tau"], "top20_tau": stats(pred[top], truth[top])["kendall_tau"],
            "max_gap": gap}


def paired_bootstrap(pred_a, pred_b, truth, n_boot: int = 400, seed: int = 0) -> dict[str, tuple[float, float]]:
    """90 % intervals of tau(b) - tau(a), overall and best 20 %, resampling the held-out runs."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {"tau": [], "top20_tau": []}
    n = len(truth)
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        t = truth[i]
        top = i[np.argsort(t, kind="stable")[: max(3, int(round(0.2 * n)))]]
        for name, rows in (("tau", i), ("top20_tau", top)):
            a, b = stats(pred_a[rows], truth[rows])["kendall_tau"], stats(pred_b[rows], truth[rows])["kendall_tau"]
            if a is not None and b is not None:
                out[name].append(b - a)
    return {k: (float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95))) for k, v in out.items() if v}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs")
    p.add_argument("--heldout", required=True, help="the held-out random plan(s), e.g. 5")
    p.add_argument("--random", required=True, help="random plan(s) of the random arm, e.g. 6")
    p.add_argument("--targeted", required=True, help="targeted plan(s), e.g. optimizers7,uncertain8")
    p.add_argument("--clock", help="cost every run by this surrogate's clock (e.g. flowers17-cpu) instead of "
                   "its logged wall time")
    p.add_argument("--grid", default="quick", choices=sorted(GRIDS))
    p.add_argument("--seed", type=int, default=0, help="seed of the first fit (folds, subsampling)")
    p.add_argument("--repeats", type=int, default=1, help="fits per row, seeds --seed, --seed+1, ...")
    args = p.parse_args(argv)
    if not 1 <= args.repeats <= 100:
        p.error(f"--repeats must be between 1 and 100, got {args.repeats}")
    try:
        data = load_run_data(args.logs)
        info = dataset_info(data.dataset)
        held_plans, rand_plans, targ_plans = _names(args.heldout), _names(args.random), _names(args.targeted)
        held = arm_rows(data, held_plans, None)
        rand_all, targ_all = arm_rows(data, rand_plans, None), arm_rows(data, targ_plans, None)
        if min(len(held), len(rand_all), len(targ_all)) < 5:
            raise ValueError(f"needs at least 5 curve runs in each of the held-out plan ({len(held)}), the random arm "
                             f"({len(rand_all)}) and the targeted arm ({len(targ_all)})")
        seconds = data.wall_time if args.clock is None else clock_seconds(data, args.clock)
        cost = min(np.nansum(seconds[rand_all]), np.nansum(seconds[targ_all]))
        used = held_plans | rand_plans | targ_plans
        base = np.asarray([i for i in np.flatnonzero(data.curve_run) if plan_of(data.keys[i]) not in used], dtype=int)
        held_ids = set(data.config_ids[held].tolist())
        base = base[~np.isin(data.config_ids[base], list(held_ids))]
        rows = {"base only": base,
                "base + random arm": np.r_[base, arm_rows(data, rand_plans, cost, seconds)],
                "base + targeted arm": np.r_[base, arm_rows(data, targ_plans, cost, seconds)]}
        for name in ("base + random arm", "base + targeted arm"):
            rows[name] = rows[name][~np.isin(data.config_ids[rows[name]], list(held_ids))]
        truth = data.val[held, -1]
        fits = {name: [fit_predict(data, r, held, info, GRIDS[args.grid], args.seed + k) for k in range(args.repeats)]
                for name, r in rows.items()}
    except ValueError as exc:
        print(f"plan_value: error: {exc}", file=sys.stderr)
        return 2
    print(f"held-out plan(s) {sorted(held_plans)}: {len(held)} runs; each arm cut to {cost / 3600:.2f} hours "
          f"({'logged wall time' if args.clock is None else 'on the clock of ' + args.clock}) "
          f"({len(rand_all)} random and {len(targ_all)} targeted runs available); {args.repeats} fit(s) per row "
          f"(seeds {args.seed}..{args.seed + args.repeats - 1}), mean ± sd over the fits")
    print()
    print("| training runs | runs | τ final val. error | τ best 20 % | largest gap of the draws |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        s = [scores(pred, drawn, truth, info.chance_error) for pred, drawn in fits[name]]
        cell = {k: _mean_sd([x[k] for x in s]) for k in ("tau", "top20_tau", "max_gap")}
        print(f"| {name} | {len(r)} | {cell['tau']} | {cell['top20_tau']} | {cell['max_gap']} |")
    mean_pred = {name: np.mean([pred for pred, _ in f], axis=0) for name, f in fits.items()}
    ci = paired_bootstrap(mean_pred["base + random arm"], mean_pred["base + targeted arm"], truth, seed=args.seed)
    print()
    print("targeted − random, 90 % paired bootstrap over the held-out runs (predictions averaged over the fits): "
          + ", ".join(f"{'τ' if k == 'tau' else 'τ best 20 %'} [{lo:+.3f}, {hi:+.3f}]" for k, (lo, hi) in ci.items()))
    return 0


def _mean_sd(values) -> str:
    v = np.asarray([x for x in values if x is not None], float)
    if not len(v):
        return "–"
    return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


if __name__ == "__main__":
    sys.exit(main())
