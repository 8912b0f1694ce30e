"""Slow starters that end well: what an early cut of successive halving loses, logged runs against draws.

Fits a surrogate on the logs as ``surrobench fit`` does (the quality card's 5-fold out-of-fold draws:
every run drawn by models that never saw its config, 8 draws per run) and compares the logged curves
with those draws:

* the card's row "what an early cut keeps": of the best 5 % of runs by final validation error, the
  share among the best third at epochs 1, 3 and 9 (where MO-ASHA and SH-EMOA cut);
* the logged best runs an early cut at epoch 3 loses: their error there, and how their configs
  differ from the best runs it keeps (median batch size and initial learning rate);
* the spread of starting speed among the runs that end best: the variance of the log-odds progress
  from epoch 3 to 25 among the best 20 % of learning runs;
* the mean curves: mean validation error at epochs 1 and 3, binned by batch size and final error.

    python tools/early_cut.py training_logs/flowers17 [--device "cuda:NVIDIA H200"] [--noise-time epoch]
        [--noise-size shared] [--grid default]

A fit takes a few minutes on one core (the default grid).

``--fast-starts DIR`` writes instead, without fitting, a copy of the logs in which the best 5 % of
curve runs that an early cut at epoch 1 or 3 would lose start as fast as the ones it keeps (their
validation error at epochs 1-9 lowered to the kept runs' median there, never raised). A ``validate``
study of the real side on that copy against the logs themselves asks whether the slow starters are
what costs MO-ASHA on real runs:

    python tools/early_cut.py training_logs/flowers17 --fast-starts /tmp/fast
    surrobench validate /tmp/fast --optimizers moasha,nsga2,shemoa --budget 0.2 --seeds 30 --sides real
    surrobench validate training_logs/flowers17 --optimizers moasha,nsga2,shemoa --budget 0.2 --seeds 30 --sides real
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surrobench.logs import read_runs  # noqa: E402
from surrobench.surrogate import build  # noqa: E402
from surrobench.surrogate.noise import DEFAULT_NOISE_TIME, NOISE_SIZES, NOISE_TIMES  # noqa: E402
from surrobench.surrogate.quality import CUT_BEST, CUT_EPOCHS, CUT_KEEP, early_cut_share  # noqa: E402

LEARN_GAP = 0.05  # a run learns when its final error is this far below chance


def out_of_fold_draws(logs: str, device: str | None, noise_time: str, grid: str = "default",
                      noise_size: str = "shared"):
    """(config ids, logged curves, draws (k, runs, epochs), chance-level error) as the fit's quality
    card sees them."""
    seen = {}
    card = build.draw_card

    def capture(**kwargs):
        seen.update(kwargs)
        return card(**kwargs)

    build.draw_card = capture
    try:
        build.fit_surrogate(logs, device=device, plot=False, noise_time=noise_time, noise_size=noise_size, grid=grid)
    finally:
        build.draw_card = card
    return (np.asarray(seen["config_ids"]), np.asarray(seen["val"], float), np.asarray(seen["drawn"], float),
            float(seen["chance"]))


def write_fast_starts(logs: str, out: str) -> str:
    """Write the logs with the slow-starting best runs made fast (see the module docstring) into
    ``out`` (one file per logs file, the same names); returns a one-line summary. The curve runs
    are the ones a fit uses (:func:`surrobench.surrogate.data.load_run_data`)."""
    from surrobench.logs import log_files
    from surrobench.surrogate.data import load_run_data

    data = load_run_data(logs)
    cur = data.subset(data.curve_run)
    val = np.asarray(cur.val, float)[:, :25]
    best = val[:, -1] <= np.quantile(val[:, -1], CUT_BEST)
    lost = best & ((val[:, 0] > np.quantile(val[:, 0], CUT_KEEP)) | (val[:, 2] > np.quantile(val[:, 2], CUT_KEEP)))
    template = np.median(val[best & ~lost, :9], axis=0)
    faster = {str(k) for k in cur.keys[lost]}
    target = Path(out)
    target.mkdir(parents=True, exist_ok=False)
    for f in log_files(logs):
        lines = []
        for line in f.read_text().splitlines():
            rec = json.loads(line) if line.strip() else None
            if rec is not None and rec.get("key") in faster:
                v = rec["curve"]["val_error"]
                rec["curve"]["val_error"] = [float(min(x, t)) for x, t in zip(v[:9], template)] + v[9:]
                line = json.dumps(rec)
            lines.append(line + "\n")
        (target / f.name).write_text("".join(lines))
    return (f"{len(cur)} curve runs, {int(best.sum())} in the best 5 %, {int(lost.sum())} of them made to start fast "
            f"(epochs 1-9 at most {np.round(template, 3).tolist()}); written to {target}")


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs")
    p.add_argument("--device", default=None, help="whose clock the fit learns (does not change the curves)")
    p.add_argument("--noise-time", default=DEFAULT_NOISE_TIME, choices=NOISE_TIMES,
                   help="the fit's seed-noise process (default: %(default)s, as surrobench fit)")
    p.add_argument("--noise-size", default="shared", choices=NOISE_SIZES, help="the fit's seed-noise size")
    p.add_argument("--grid", default="default", choices=("default", "quick"), help="XGBoost grid of the fit")
    p.add_argument("--fast-starts", metavar="DIR", help="write the counterfactual logs to DIR (a new folder) and stop")
    args = p.parse_args(argv)
    if args.fast_starts:
        if Path(args.fast_starts).exists():
            print(f"early_cut.py: --fast-starts: {args.fast_starts} exists; name a new folder", file=sys.stderr)
            return 2
        print(write_fast_starts(args.logs, args.fast_starts))
        return 0
    ids, val, drawn, chance = out_of_fold_draws(args.logs, args.device, args.noise_time, args.grid, args.noise_size)
    configs = read_runs(args.logs).drop_duplicates("config_id").set_index("config_id")
    size = "" if args.noise_size == "shared" else f", sized {args.noise_size}"
    print(f"{len(val)} curve runs, {drawn.shape[0]} out-of-fold draws each, seed noise over {args.noise_time}{size}")

    print("best 5 % of runs by final error that are in the best third at epoch (logged / drawn, mean of draws):")
    for e in CUT_EPOCHS:
        drawn_share = np.mean([early_cut_share(d, e) for d in drawn])
        print(f"  epoch {e}: {early_cut_share(val, e):.3f} / {drawn_share:.3f}")

    final = val[:, -1]
    best = final <= np.quantile(final, CUT_BEST)
    cut = np.quantile(val[:, 2], CUT_KEEP)
    lost = best & (val[:, 2] > cut)
    kept = best & ~lost
    print(f"logged: the cut at epoch 3 keeps errors <= {cut:.3f}; it loses {lost.sum()} of the {best.sum()} best runs "
          f"(their epoch-3 error: median {np.median(val[lost, 2]):.3f}; the kept ones' {np.median(val[kept, 2]):.3f})")
    for name in ("batch_size", "lr_init"):
        col = configs[f"config_{name}"].astype(float)
        print(f"  median {name}: lost {col.loc[ids[lost]].median():.4g}, kept {col.loc[ids[kept]].median():.4g}")

    print("variance of log-odds progress from epoch 3 to 25 among the best 20 % of learning runs:")
    for label, curves in [("logged", val)] + [(f"draw {k}", drawn[k]) for k in range(drawn.shape[0])]:
        learn = curves[:, -1] < chance - LEARN_GAP
        top = learn & (curves[:, -1] <= np.quantile(curves[learn, -1], 0.2))
        progress = log_odds(curves[:, 2]) - log_odds(curves[:, -1])
        print(f"  {label:8} {progress[top].var():.3f}")

    print("mean validation error at epochs 1 and 3 by batch size and final error (logged / drawn, all draws):")
    batch = configs.loc[ids, "config_batch_size"].to_numpy(dtype=float)
    for lo, hi in ((1, 16), (16, 64), (64, 513)):
        for f_lo, f_hi in ((0.3, 0.55), (0.55, 0.7), (0.7, 0.85)):
            rows = (batch >= lo) & (batch < hi)
            real = rows & (final >= f_lo) & (final < f_hi)
            sel = [rows & (d[:, -1] >= f_lo) & (d[:, -1] < f_hi) for d in drawn]
            d1 = np.concatenate([d[s, 0] for d, s in zip(drawn, sel)])
            d3 = np.concatenate([d[s, 2] for d, s in zip(drawn, sel)])
            if real.sum() < 5 or len(d3) < 5:
                continue
            print(f"  batch [{lo:3d},{hi:3d}) final [{f_lo:.2f},{f_hi:.2f}): n {real.sum():4d} / {len(d3) / len(drawn):6.1f}  "
                  f"epoch 1 {val[real, 0].mean():.3f} / {d1.mean():.3f}  epoch 3 {val[real, 2].mean():.3f} / {d3.mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
