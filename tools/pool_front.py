"""The front of every logged config, as the out-of-fold surrogates draw it and as the logs hold it.

``surrobench validate`` runs optimizers on the logged configs twice: replayed from the logs
(``real``) and answered by out-of-fold surrogates that never saw the config answering (``oof``).
Before any optimizer runs, the two sides differ in what the whole set of configs offers. This tool
answers every logged config at 25 epochs on both sides, with the seeds a validate run's job of
seed ``s`` gets (``s`` in ``0..seeds-1``), and prints per seed-noise setting, means over the seeds:

* ``pool hv``: the hypervolume of all those answers (validation error, log10 parameters) on each
  side, and the oof side's less the real side's: the most an optimizer could find; a surrogate whose
  draws offer a better front than the runs lets every method that searches hard report more than the
  real runs give (the *level* of ``tools/validate_dips.py`` and ``tools/validate_fronts.py``);
* the same difference per band of log10 parameters (``tools/validate_fronts.py``'s exact split:
  the bands add up to the whole);
* ``best k``: the mean validation error of the ``k`` best answers on each side;
* ``picked k``: over the ``k`` configs the oof side answers best, their oof answer less their real
  one (negative: the surrogate's favourites look better than they run).

Each setting fits the ``folds`` out-of-fold surrogates as ``surrobench validate`` does (about a
minute per setting with the quick grid on one core)::

    python tools/pool_front.py training_logs/flowers17 --config-noise none,unexplained --grid quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from validate_fronts import DEFAULT_EDGES, band_hypervolumes  # noqa: E402

from surrobench.metrics import hypervolume  # noqa: E402
from surrobench.space import MAX_EPOCH, REFERENCE_POINT  # noqa: E402

TOP = (5, 20, 100)


def answers(bench, configs, seeds) -> np.ndarray:
    """(seeds, configs, 2): validation error and log10 parameters of every config at 25 epochs."""
    out = np.empty((len(seeds), len(configs), 2))
    for j, s in enumerate(seeds):
        for i, config in enumerate(configs):
            r = bench.query(config, MAX_EPOCH, seed=s)
            out[j, i] = r.val_error, r.log10_params
    return out


def pool_stats(drawn: np.ndarray, logged: np.ndarray, edges: np.ndarray, top=TOP) -> dict:
    """What :func:`main` prints for one setting; ``drawn`` and ``logged`` as :func:`answers` gives them."""
    ref = tuple(REFERENCE_POINT)
    hv_d = float(np.mean([hypervolume(d, ref=ref) for d in drawn]))
    hv_l = float(np.mean([hypervolume(t, ref=ref) for t in logged]))
    bands = np.mean([band_hypervolumes(d[:, 1], d[:, 0], edges) - band_hypervolumes(t[:, 1], t[:, 0], edges)
                     for d, t in zip(drawn, logged)], axis=0)
    e_d, e_l = drawn[..., 0], logged[..., 0]
    best = {k: (float(np.sort(e_d, axis=1)[:, :k].mean()), float(np.sort(e_l, axis=1)[:, :k].mean())) for k in top}
    picked = {}
    for k in top:
        order = np.argsort(e_d, axis=1, kind="stable")[:, :k]
        picked[k] = float(np.mean(np.take_along_axis(e_d, order, 1) - np.take_along_axis(e_l, order, 1)))
    return {"hv_drawn": hv_d, "hv_logged": hv_l, "bands": bands, "best": best, "picked": picked}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="?", default="training_logs/flowers17")
    ap.add_argument("--config-noise", default="none,unexplained", help="comma-separated settings to fit and draw")
    ap.add_argument("--grid", default="quick")
    ap.add_argument("--noise-time", default="bank-logged")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=3, help="validate's job seeds 0..N-1")
    ap.add_argument("--seed", type=int, default=0, help="the folds' and the fits' seed, as validate's --seed")
    args = ap.parse_args(argv)
    from surrobench.logged import SetBenchmark, fold_surrogates, logged_set, routed_surrogates
    from surrobench.surrogate.noise import check_config_noise

    try:
        settings = [check_config_noise(v, "--config-noise") for v in args.config_noise.split(",")]
        if args.seeds < 1:
            raise ValueError(f"--seeds: must be at least 1, got {args.seeds}")
        logged = logged_set(args.logs)
    except (ValueError, OSError) as exc:
        print(f"pool_front: {exc}", file=sys.stderr)
        return 2
    seeds = list(range(args.seeds))
    real = SetBenchmark(logged.tabular, logged.ids, name="real")
    truth = answers(real, logged.configs, seeds)
    edges = np.r_[min(float(truth[..., 1].min()), DEFAULT_EDGES[0]), DEFAULT_EDGES, REFERENCE_POINT[1]]
    print(f"{args.logs}: {len(logged)} configs, {len(logged.data)} runs; out-of-fold surrogates of {args.folds} folds "
          f"({args.grid} grid, noise time {args.noise_time}); job seeds 0..{args.seeds - 1}, means over them")
    print(f"logged: pool hv {np.mean([hypervolume(t, ref=tuple(REFERENCE_POINT)) for t in truth]):.3f}; "
          + "  ".join(f"best {k} {np.sort(truth[..., 0], axis=1)[:, :k].mean():.3f}" for k in TOP))
    head = " ".join(f"{a:g}-{b:g}".rjust(8) for a, b in zip(edges[:-1], edges[1:]))
    for setting in settings:
        fold_of_id, fitted = fold_surrogates(logged, args.folds, seed=args.seed, grid=args.grid,
                                             noise_time=args.noise_time, config_noise=setting)
        oof = SetBenchmark(routed_surrogates(fold_of_id, fitted), logged.ids, name="oof", seeds_from=logged.tabular)
        s = pool_stats(answers(oof, logged.configs, seeds), truth, edges)
        print(f"\nconfig noise {setting}: pool hv {s['hv_drawn']:.3f} drawn, {s['hv_drawn'] - s['hv_logged']:+.3f} "
              "against the logs")
        print(f"  by log10 params {head}")
        print("  drawn - logged  " + " ".join(f"{v:+8.3f}" for v in s["bands"]))
        print("  best k drawn/logged   " + "  ".join(f"{k}: {a:.3f}/{b:.3f}" for k, (a, b) in s["best"].items()))
        print("  picked k drawn-logged " + "  ".join(f"{k}: {v:+.3f}" for k, v in s["picked"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
