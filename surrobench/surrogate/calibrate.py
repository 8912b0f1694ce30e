"""A simulated clock for any device: a few lone runs on it, and a surrogate that keeps its curves.

The learning curves of a config do not depend on the device that trains it; its seconds
do. :func:`spanning_configs` picks a small seeded set of configs that span the work range
of the space (optimizer steps x layers, the launch-bound axis of small networks on a GPU;
examples x multiply-accumulates, the arithmetic that bounds a CPU); trained alone on a
device (``surrobench calibrate``), their timings fit that device's clock
(:func:`~.build.fit_runtime`: physics with a few coefficients, plus a light correction),
and :func:`with_clock` writes a surrogate whose curves are those of a base surrogate and
whose clock is the new device's.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Sequence

import numpy as np

from ..datasets import info as dataset_info
from ..space import sample
from .build import SCHEMA_VERSION, eval_examples, fit_runtime, runtime_card, runtime_oof, runtime_rows
from .clock import work_terms
from .data import load_run_data, pick_device
from .features import features
from .model import Surrogate

__all__ = ["MIN_CLOCK_RUNS", "spanning_configs", "with_clock"]

MIN_CLOCK_RUNS = 5
"""Fewest lone runs (of distinct configs) a device's clock is fitted on."""

_POOL = 4000


def spanning_configs(n: int, seed: int, dataset: str) -> list[dict[str, Any]]:
    """``n`` configs that span the space's work range, the same for a seed on every machine.

    From a seeded pool of prior samples, the central 96 % on both work axes (steps x layers
    and examples x MACs, log scale, standardised), farthest-point selection starting at the
    pool's median: the first picks are the extremes of the usual range, then it fills in.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not MIN_CLOCK_RUNS <= n <= 1000:
        raise ValueError(f"n_configs: a calibration trains {MIN_CLOCK_RUNS} to 1000 configs, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
    info = dataset_info(dataset)
    pool = sample(np.random.default_rng(np.random.SeedSequence([int(seed), 0xC10C])), n=_POOL)
    x = features(pool, info.input_shape, info.n_classes, info.sizes[0])
    wt, _ = work_terms(x, info.sizes[0], eval_examples(info))
    axes = np.log(np.column_stack([wt[:, 2], wt[:, 3]]))  # steps x layers, examples x MACs
    lo, hi = np.quantile(axes, 0.02, axis=0), np.quantile(axes, 0.98, axis=0)
    inside = np.flatnonzero(np.all((axes >= lo) & (axes <= hi), axis=1))
    z = (axes[inside] - axes[inside].mean(axis=0)) / axes[inside].std(axis=0)
    chosen = [int(np.argmin(np.sum((z - np.median(z, axis=0)) ** 2, axis=1)))]
    dist = np.sum((z - z[chosen[0]]) ** 2, axis=1)
    while len(chosen) < n:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.sum((z - z[nxt]) ** 2, axis=1))
    return [pool[inside[i]] for i in chosen]


def with_clock(
    base: Surrogate,
    logs: str | os.PathLike,
    *,
    device: str | None = None,
    keys: Sequence[str] | None = None,
    plans: Sequence[int] | None = None,
    name: str | None = None,
    seed: int = 0,
) -> Surrogate:
    """``base``'s curves with the clock of ``device``, fitted on its lone runs under ``logs``.

    ``keys`` or ``plans`` restrict the runs (e.g. to one calibration); ``device`` defaults to
    the device with the most lone runs among them. Raises ``ValueError`` when the device has
    fewer than :data:`MIN_CLOCK_RUNS` lone runs of distinct configs, or the logs are of
    another dataset than ``base``.
    """
    data = load_run_data(logs, base.dataset)
    if keys is not None:
        data = data.subset(np.isin(data.keys, np.asarray(list(keys), dtype=str)))
    if plans is not None:
        data = data.subset(np.isin(data.plan_seeds, np.asarray(list(plans), dtype=int)))
    if len(data) == 0:
        raise ValueError(f"logs: {logs} holds none of the runs asked for")
    rt_device = pick_device(data, device)
    rows, per_epoch, per_eval, cost25 = runtime_rows(data, rt_device)
    groups = data.config_ids[rows]
    n_configs = len(np.unique(groups))
    if n_configs < MIN_CLOCK_RUNS:
        raise ValueError(
            f"calibration: {n_configs} configs ran alone on {rt_device!r}; a clock needs at least {MIN_CLOCK_RUNS}"
        )
    info = dataset_info(base.dataset)
    x = features([data.configs[i] for i in rows], info.input_shape, info.n_classes, info.sizes[0])
    runtime, params, score = fit_runtime(x, per_epoch, per_eval, groups, device=rt_device, n_train=info.sizes[0],
                                         n_eval=eval_examples(info), seed=seed)
    oof = runtime_oof(x, per_epoch, per_eval, groups, device=rt_device, n_train=info.sizes[0],
                      n_eval=eval_examples(info), seed=seed)
    manifest = copy.deepcopy(base.manifest)
    manifest.pop("files", None)
    manifest.pop("manifest_sha256", None)
    if int(manifest.get("schema_version", 1)) < SCHEMA_VERSION:  # the clock needs schema 2: say what the base lacks
        a, b = base.curve.calibration
        manifest["models"]["learns_calibration"] = {"a": a, "b": b}
        manifest["models"]["draws"] = {"learn_corr": base.curve.learn_corr, "chance_bank": None}
        manifest["models"]["curves"]["tail_map"] = None
        manifest["schema_version"] = SCHEMA_VERSION
    manifest["name"] = name or f"{base.dataset}-{_slug(rt_device)}-surrogate"
    manifest["devices"]["runtime_clock"] = rt_device
    manifest["models"]["runtime"].update(
        device=rt_device, clock=runtime.clock.to_dict(), clock_plans=None if plans is None else sorted(int(p) for p in plans)
    )
    manifest["training_data"]["n_runtime_runs"] = int(len(rows))
    manifest["training_data"]["runtime_run_keys"] = sorted(data.keys[rows].tolist())
    manifest["tuning"]["runtime"].update(params=params, cv_kendall_tau=score, tuned=score is not None)
    manifest["quality"]["runtime"] = runtime_card(rt_device, rows, n_configs, oof, cost25, runtime)
    manifest["quality"]["shipped"] = (
        f"Curves of {base.name!r}; clock of {rt_device} fitted on {len(rows)} lone runs of {n_configs} configs."
    )
    return Surrogate(manifest=manifest, curve=base.curve, runtime=runtime, noise=base.noise)


def _slug(device: str) -> str:
    kind = device.split(":", 1)[0]
    return "".join(c if c.isalnum() else "-" for c in kind.lower()).strip("-") or "device"
