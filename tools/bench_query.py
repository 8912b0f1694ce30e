"""Query latency and throughput of the shipped surrogate, side by side with XGBoost's own call.

In one run, on the same surrogate and never-seen configs (drawn from the space's priors,
none of them in the surrogate's training data):

* a full trajectory (validation and test error, train and eval time, all 25 epochs) for a
  new config, against one single-row ``Booster.inplace_predict`` on one of the surrogate's
  own models (``curves.ubj``; also ``fast.ubj``, the merged model the trajectory calls);
* a single (config, epoch) query;
* the naive path for comparison: one single-row call per target per epoch (4 x 25 calls);
* throughput on 10,000 configs (``SurrogateBenchmark.trajectories``: validation, features,
  prediction, seed noise) against ``inplace_predict`` on the same 10,000 feature rows;
* the merged model's raw sums for 1 to 32 rows in one call, the numpy forest (rows walked one at
  a time) against ``fast.ubj``'s ``inplace_predict``, and where the one overtakes the other: the
  surrogate uses the forest up to ``surrobench.surrogate.model.FOREST_ROWS`` rows.

Latencies are medians over many repetitions (each repetition a different config), with the
benchmark's answer cache off.
Target: a full trajectory costs at most 5x one single-row XGBoost predict call.

    python tools/bench_query.py [--surrogate PATH] [--repeats 2000] [--n 10000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import surrobench  # noqa: E402
from surrobench.space import config_id, sample  # noqa: E402
from surrobench.surrogate.features import features  # noqa: E402
from surrobench.surrogate.model import FOREST_ROWS  # noqa: E402

CALL_ROWS = (1, 2, 4, 8, 10, 12, 16, 20, 32)

TARGET = 5.0


def fresh_configs(bench, n: int, seed: int) -> list[dict]:
    seen = set(bench.surrogate.manifest["training_data"]["config_ids"])
    out = [c for c in sample(seed=seed, n=n + 50) if config_id(c) not in seen]
    return out[:n]


def median_us(fn, items) -> float:
    for item in items[:50]:  # warm-up
        fn(item)
    times = []
    gc.disable()
    try:
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return statistics.median(times) * 1e6


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--surrogate", help="surrogate directory or archive (default: the shipped flowers17 surrogate)")
    p.add_argument("--repeats", type=int, default=2000)
    p.add_argument("--n", type=int, default=10_000, help="configs for the throughput test")
    args = p.parse_args(argv)

    from surrobench.benchmark import SurrogateBenchmark

    s = surrobench.load(args.surrogate).surrogate
    bench = SurrogateBenchmark(s, cache_size=0)  # every call predicts: no answer comes from a cache
    shape, n_classes, n_train = s.input_shape, s.n_classes, s.n_train
    configs = fresh_configs(bench, args.repeats, seed=20261127)
    rows = [features([c], shape, n_classes, n_train) for c in configs]
    curves_booster, fast_booster = s.curve.curves, s.fast
    boosters = [s.curve.learns, s.curve.curves, s.runtime.booster]

    ref_curves = median_us(lambda x: curves_booster.inplace_predict(x), rows)
    ref_fast = median_us(lambda x: fast_booster.inplace_predict(x), rows)
    idx = list(range(len(configs)))
    traj = median_us(lambda i: bench.trajectory(configs[i], seed=i), idx)
    query = median_us(lambda i: bench.query(configs[i], 1 + i % 25, seed=i), idx)

    def naive(x):  # one call per target per epoch: 4 targets (val, test, train time, eval time) x 25
        for _ in range(25):
            for b in (boosters[0], boosters[1], boosters[2], boosters[2]):
                b.inplace_predict(x)

    naive_us = median_us(naive, rows[: max(50, len(rows) // 20)])

    many = fresh_configs(bench, args.n, seed=7)
    x_many = features(many, shape, n_classes, n_train)
    for _ in range(2):
        t0 = time.perf_counter()
        bench.trajectories(many, seed=list(range(len(many))))
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        curves_booster.inplace_predict(x_many)
        t_xgb = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast_booster.inplace_predict(x_many)
        t_fast = time.perf_counter() - t0

    print(f"surrogate {s.name} (dataset {s.dataset}); xgboost single-row calls on this machine, nthread=1;")
    print(f"medians over {len(configs)} never-seen configs")
    print()
    print(f"{'what':<58}{'time':>12}{'x curves.ubj call':>20}")
    line = "{:<58}{:>9.1f} us{:>19.2f}x"
    print(line.format("xgboost inplace_predict, 1 row, curves.ubj (reference)", ref_curves, 1.0))
    print(line.format("xgboost inplace_predict, 1 row, fast.ubj (all outputs)", ref_fast, ref_fast / ref_curves))
    print(line.format("trajectory(config, seed): 4 targets x 25 epochs", traj, traj / ref_curves))
    print(line.format("query(config, epoch, seed)", query, query / ref_curves))
    print(line.format("naive path: one call per target per epoch (100 calls)", naive_us, naive_us / ref_curves))
    print()
    n = len(many)
    print(f"throughput on {n} configs (all 25 epochs, seeded noise):")
    print(f"  trajectories(): {t_ours:8.3f} s  = {n / t_ours:10.0f} configs/s  (validation, features, predict, noise)")
    print(f"  xgboost inplace_predict, {n} rows, curves.ubj: {t_xgb:8.3f} s = {n / t_xgb:10.0f} rows/s")
    print(f"  xgboost inplace_predict, {n} rows, fast.ubj:   {t_fast:8.3f} s = {n / t_fast:10.0f} rows/s")
    print(f"  ratio trajectories / curves.ubj predict: {t_ours / t_xgb:.1f}x")
    print()
    if s._forest is not None:
        x_rows = features(fresh_configs(bench, 400 + max(CALL_ROWS), seed=11), shape, n_classes, n_train)
        print(f"raw sums of fast.ubj for k rows in one call (median over 400 calls; the surrogate walks the "
              f"numpy forest up to {FOREST_ROWS} rows):")
        print(f"{'rows':>6}{'forest us':>12}{'xgboost us':>12}{'forest/xgboost':>16}")
        starts = list(range(400))
        for k in CALL_ROWS:
            f_us = median_us(lambda i: s._forest.predict(x_rows[i:i + k]), starts)
            x_us = median_us(lambda i: fast_booster.inplace_predict(x_rows[i:i + k]), starts)
            print(f"{k:>6}{f_us:>12.1f}{x_us:>12.1f}{f_us / x_us:>15.2f}x")
        print()
    ratio = traj / ref_curves
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"target (trajectory <= {TARGET:g}x one single-row predict): {verdict} ({ratio:.2f}x)")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
