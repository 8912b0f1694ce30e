"""A fast synthetic benchmark with a known structure, for simulator, metrics and optimizer tests.

Validation error falls with the epochs towards a floor that depends smoothly on the config
(best near lr 1e-3, batch size 32, three conv layers, wide first layer); model size is the exact
count on the task's shape (flowers17's, or a known dataset's with ``dataset=``), so the trade-off
between the two objectives is real. Cost per
epoch grows with the parameter count. Seeds add a small, reproducible shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from surrobench.benchmark import make_task
from surrobench.model_size import log10_params
from surrobench.records import Problem
from surrobench.space import config_id, validate, validate_epoch


@dataclass(frozen=True)
class ToyResult:
    val_error: float
    test_error: float
    log10_params: float
    cost: float
    epoch: int


TASK = make_task("toy", (3, 16, 16), 17)
"""The toy's task over all 25 epochs, for optimizers built without a benchmark at hand."""


class ToyBenchmark:
    dataset = "toy"
    min_epoch = 1
    max_epoch = 25
    reference_point = np.array([1.0, 8.0])

    def __init__(self, noise: float = 0.01, dataset: str = "toy"):
        self.noise, self.dataset = noise, dataset
        self._task = TASK if dataset == "toy" else make_task(dataset)
        self._shape = (self._task.input_shape, self._task.n_classes)

    @property
    def task(self):
        """Its task ("toy": flowers17's shape under a name of its own), over its epochs."""
        return replace(self._task, min_epoch=self.min_epoch, max_epoch=self.max_epoch)

    def problem(self, n_workers=1, budget=None):
        return Problem(self.task, n_workers=n_workers, budget=budget)

    def answer(self, job, *, seed=0):
        """(cost, result) of a Job, from ``cost`` and ``query`` (which subclasses may restrict)."""
        cost = self.cost(job.config, job.epoch, from_epoch=job.from_epoch, seed=seed)
        return cost, self.query(job.config, job.epoch, seed=seed)

    def _floor(self, cfg) -> float:
        lr = math.log10(cfg["lr_init"]) + 3.0
        bs = math.log2(cfg["batch_size"]) - 5.0
        width = math.log2(cfg["n_conv_0"]) - 10.0
        depth = 3 - cfg["n_conv_l"]
        return min(0.95, 0.15 + 0.06 * lr * lr + 0.02 * bs * bs + 0.02 * width * width + 0.05 * depth)

    def query(self, config, epoch, *, seed=0):
        cfg = validate(config)
        epoch = validate_epoch(epoch)
        floor = self._floor(cfg)
        shift = self.noise * np.random.default_rng([int(config_id(cfg), 16) % 2**32, seed]).standard_normal()
        err = floor + (0.95 - floor) * math.exp(-epoch / 5.0) + shift
        err = min(max(err, 0.0), 1.0)
        size = log10_params(cfg, *self._shape)
        return ToyResult(err, min(max(err + 0.01, 0.0), 1.0), size, self.cost(cfg, epoch, seed=seed), epoch)

    def cost(self, config, epoch, *, from_epoch=0, seed=0):
        cfg = validate(config)
        per_epoch = 1.0 + 10 ** (log10_params(cfg, (3, 16, 16), 17) - 5.0)  # one clock for every shape
        return per_epoch * (epoch - from_epoch) + 0.5

    def describe(self):
        return {"name": "toy", "noise": self.noise}


def benchmark_named(name: str):
    """``"toy"``: a :class:`ToyBenchmark`; anything else as ``surrobench.load`` takes it (a shipped
    name, a folder, an archive). For the tools that run on either."""
    if name == "toy":
        return ToyBenchmark()
    import surrobench

    return surrobench.load(name)
