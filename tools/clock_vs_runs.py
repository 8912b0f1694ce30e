"""Runtime quality against the number of lone runs a device's clock is fitted on.

For each device, a share of its lone-run configs is held out; the clock is fitted (as
``surrobench fit`` and ``surrobench calibrate`` fit it: physics with non-negative
coefficients plus a light XGBoost correction) on the first N of the remaining configs in a
seeded order, for N in ``--sizes`` (and all of them), and judged on the held-out lone runs:
Kendall tau and R^2 of log seconds of a 25-epoch run. In the same run, the reference: the
booster alone (how schema-1 surrogates learned the clock, with their fixed settings). Mean ± sd over ``--repeats``
hold-out draws.

    python tools/clock_vs_runs.py training_logs/flowers17 --device "cuda:NVIDIA H200" \\
        [--device "cpu:AMD EPYC" --plans 4,5] [--sizes 5,10,20,40] [--repeats 20] [--holdout 0.25]

``--plans`` (one per ``--device``, or none) keeps only the lone runs of those plan seeds.
Seconds on one core.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from surrobench.datasets import info as dataset_info
from surrobench.space import MAX_EPOCH
from surrobench.surrogate.build import eval_examples, fit_runtime, runtime_rows
from surrobench.surrogate.data import load_run_data
from surrobench.surrogate.features import features
from surrobench.surrogate.fit import fit_runtime_model
from surrobench.surrogate.quality import stats

BOOSTER_ALONE = {"max_depth": 2, "min_child_weight": 1.0, "subsample": 1.0, "learning_rate": 0.1, "n_rounds": 150}
"""The reference: the schema-1 runtime model (XGBoost on the features, no physics) with its fixed settings."""


def judge(model, x, cost25):
    ep, ev = model.predict(x)
    s = stats(np.log10(MAX_EPOCH * ep + ev), np.log10(cost25))
    return s["kendall_tau"], s["r2"]


def device_rows(data, device, plans, info):
    rows, per_epoch, per_eval, cost25 = runtime_rows(data, device)
    if plans is not None:
        keep = np.isin(data.plan_seeds[rows], plans)
        rows, per_epoch, per_eval, cost25 = rows[keep], per_epoch[keep], per_eval[keep], cost25[keep]
    x = features([data.configs[i] for i in rows], info.input_shape, info.n_classes, info.sizes[0])
    return x, per_epoch, per_eval, cost25, data.config_ids[rows]


def study(data, device, plans, sizes, repeats, holdout, seed):
    info = dataset_info(data.dataset)
    x, per_epoch, per_eval, cost25, ids = device_rows(data, device, plans, info)
    uniq = np.unique(ids)
    n_held = max(3, int(round(holdout * len(uniq))))
    results: dict[str, list] = {}
    for r in range(repeats):
        rng = np.random.default_rng(np.random.SeedSequence([seed, r]))
        order = uniq[rng.permutation(len(uniq))]
        held, rest = order[:n_held], order[n_held:]
        te = np.isin(ids, held)
        for n in [*[s for s in sizes if s < len(rest)], len(rest)]:
            tr = np.isin(ids, rest[:n])
            model, _, _ = fit_runtime(x[tr], per_epoch[tr], per_eval[tr], ids[tr], device=device,
                                      n_train=info.sizes[0], n_eval=eval_examples(info), seed=seed)
            ref = fit_runtime_model(x[tr], per_epoch[tr], per_eval[tr], BOOSTER_ALONE, device=device, seed=seed)
            label = str(n) if n < len(rest) else f"all ({len(rest)})"
            results.setdefault(label, []).append((*judge(model, x[te], cost25[te]), *judge(ref, x[te], cost25[te])))
    return len(uniq), n_held, results


def _cell(values):
    v = np.array([a for a in values if a is not None], float)
    if len(v) == 0:
        return "n/a"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs")
    p.add_argument("--device", action="append", required=True)
    p.add_argument("--plans", action="append", help="comma-separated plan seeds, one option per --device, in order")
    p.add_argument("--sizes", default="5,10,20,40")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--holdout", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
        plans = [None] * len(args.device)
        for i, text in enumerate(args.plans or []):
            plans[i] = [int(v) for v in text.split(",")]
        data = load_run_data(args.logs)
    except ValueError as exc:
        print(f"clock_vs_runs: error: {exc}", file=sys.stderr)
        return 2
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover
        pass
    print(f"held-out lone runs ({args.holdout:g} of each device's configs), {args.repeats} draws, mean ± sd; "
          "tau and R² of log10 seconds of a 25-epoch run")
    print()
    print("| device (lone runs used) | lone configs for fitting | τ: physics + correction | R²: physics + correction "
          "| τ: booster alone | R²: booster alone |")
    print("|---|---|---|---|---|---|")
    for device, pl in zip(args.device, plans):
        try:
            n_configs, n_held, res = study(data, device, pl, sizes, args.repeats, args.holdout, args.seed)
        except ValueError as exc:
            print(f"clock_vs_runs: error: {exc}", file=sys.stderr)
            return 2
        what = f"{device}" + (f", plans {','.join(map(str, pl))}" if pl else "") + f": {n_configs} configs, {n_held} held out"
        for label, rows in res.items():
            cols = list(zip(*rows))
            print(f"| {what} | {label} | {_cell(cols[0])} | {_cell(cols[1])} | {_cell(cols[2])} | {_cell(cols[3])} |")
            what = ""
    return 0


if __name__ == "__main__":
    sys.exit(main())
