"""Trainer throughput: surrobench's collector path vs the original evaluation loop, in one run.

The reference re-implements how the Bag-of-Baselines code evaluates a config: the arrays are
reloaded from disk for every evaluation, batches come from a DataLoader over a TensorDataset,
loss and accuracy are pulled to the host after every batch (also while evaluating, with the
training batch size), one config at a time with torch's default thread count.

surrobench's path is ``surrobench.training.train`` as the collector runs it: data loaded once
per process and kept on the device, shuffling by index, statistics accumulated on the device
and read once per epoch, evaluation in large chunks under inference mode, and on a CPU one
thread per job with one job per core (tiny batches do not parallelise inside an operator).

Both train the same seeded configs for the same epochs; the printed ratio is configs per
minute of surrobench over the reference. Example::

    python tools/bench_training.py --dataset flowers17 --data-dir ../shared/data/flowers17
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surrobench import space  # noqa: E402
from surrobench.datasets import info  # noqa: E402
from surrobench.model_size import conv_widths  # noqa: E402


def bench_configs(seed: int, n: int, max_cost: float, dataset: str) -> list[dict]:
    """``n`` configs drawn from the priors with ``seed``, skipping those whose cost proxy
    (multiply-adds of the conv stack per epoch) exceeds ``max_cost`` so the run stays short."""
    rng = np.random.default_rng(seed)
    ds = info(dataset)
    out = []
    while len(out) < n:
        cfg = space.sample(rng)
        c, h, w = ds.input_shape
        k = cfg["kernel_size"]
        macs = 0.0
        for width in conv_widths(cfg):
            macs += c * width * k * k * h * w
            c, h, w = width, h // 2, w // 2
        steps = math.ceil(ds.sizes[0] / cfg["batch_size"])
        cost = 3 * macs * ds.sizes[0] + 2e5 * steps  # fwd+bwd work + per-step overhead
        if cost <= max_cost:
            out.append(cfg)
    return out


def _reference_arrays(dataset: str, data_dir):
    """What the original loop does at the start of every evaluation: read the arrays."""
    if dataset == "flowers17":
        d = Path(data_dir)
        arrays = {}
        for s in ("train", "val", "test"):
            x = np.load(d / f"x_{s}.npy").transpose(0, 3, 1, 2).astype(np.float32)
            y = np.load(d / f"y_{s}.npy").argmax(1)
            arrays[s] = (x, y)
        return arrays
    from surrobench.datasets import load  # digits / fashion_mnist: the loader reads its source again

    sp = load(dataset, data_dir)
    return {"train": (sp.x_train, sp.y_train), "val": (sp.x_val, sp.y_val), "test": (sp.x_test, sp.y_test)}


def reference_train(cfg: dict, dataset: str, data_dir, epochs: int, seed: int) -> list[float]:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from surrobench.training.network import build_network

    arrays = _reference_arrays(dataset, data_dir)
    ds = info(dataset)
    torch.manual_seed(seed)
    model = build_network(cfg, ds.input_shape, ds.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr_init"])
    crit = torch.nn.CrossEntropyLoss()

    def loader(split, shuffle):
        x, y = arrays[split]
        return DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=cfg["batch_size"], shuffle=shuffle)

    train_loader = loader("train", True)
    val_errors = []
    for _ in range(epochs):
        model.train()
        for data, target in train_loader:
            opt.zero_grad()
            out = model(data)
            loss = crit(out, target)
            loss.backward()
            opt.step()
            _ = loss.item(), (out.argmax(1) == target).float().mean().item()
        for split in ("val", "test"):
            model.eval()
            correct = 0
            with torch.no_grad():
                for data, target in loader(split, False):
                    correct += (model(data).argmax(1) == target).sum().item()
            if split == "val":
                val_errors.append(1 - correct / len(arrays[split][1]))
    return val_errors


def _surrobench_one(cfg, dataset, data_dir, epochs, seed, threads):
    from surrobench.training import train

    return train(cfg, dataset, epochs=epochs, seed=seed, data_dir=data_dir, threads=threads, device="cpu")["status"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="flowers17", choices=["flowers17", "digits", "fashion_mnist"])
    p.add_argument("--data-dir")
    p.add_argument("--n-configs", type=int, default=12)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-cost", type=float, default=3e10, help="skip configs above this cost proxy")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="surrobench jobs (one thread each)")
    args = p.parse_args()
    if args.dataset == "flowers17" and not args.data_dir:
        p.error("--data-dir is required for flowers17")

    import torch
    from joblib import Parallel, delayed

    configs = bench_configs(args.seed, args.n_configs, args.max_cost, args.dataset)
    print(f"{len(configs)} configs (seed {args.seed}), {args.epochs} epochs each, {args.dataset}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} (default threads {torch.get_num_threads()})")

    t0 = time.perf_counter()
    for i, cfg in enumerate(configs):
        reference_train(cfg, args.dataset, args.data_dir, args.epochs, seed=i)
    t_ref = time.perf_counter() - t0

    default_threads = torch.get_num_threads()
    t0 = time.perf_counter()
    for i, cfg in enumerate(configs):
        _surrobench_one(cfg, args.dataset, args.data_dir, args.epochs, i, default_threads)
    t_seq = time.perf_counter() - t0

    t0 = time.perf_counter()
    Parallel(n_jobs=args.jobs)(
        delayed(_surrobench_one)(cfg, args.dataset, args.data_dir, args.epochs, i, 1) for i, cfg in enumerate(configs)
    )
    t_par = time.perf_counter() - t0

    def rate(t):
        return len(configs) / t * 60

    print(f"{'path':<58} {'seconds':>8} {'configs/min':>12} {'ratio':>6}")
    print(f"{'reference loop (original evaluation), sequential':<58} {t_ref:8.1f} {rate(t_ref):12.2f} {1.0:6.2f}")
    print(f"{'surrobench trainer, sequential, default threads':<58} {t_seq:8.1f} {rate(t_seq):12.2f} {t_ref / t_seq:6.2f}")
    label = f"surrobench collector path, {args.jobs} jobs x 1 thread"
    print(f"{label:<58} {t_par:8.1f} {rate(t_par):12.2f} {t_ref / t_par:6.2f}")


if __name__ == "__main__":
    main()
