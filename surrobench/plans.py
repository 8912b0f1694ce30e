"""Targeted collection plans: configs where optimizers go, and where the surrogate is unsure.

Random plans (:func:`surrobench.training.collect.plan_items`) cover the space as its priors
do; comparisons are decided among the best configs, where random plans put few runs. Two
targeted kinds, each a seeded choice that :func:`~surrobench.training.collect.seeded_items`
turns into a plan (sharded and resumed like the random ones, its kind and source recorded in
every run's ``plan`` field):

* :func:`configs_from_results` — *where optimizers go*: the configs of a ``compare`` results
  folder that ended on a run's Pareto front (full fidelity) or were among its last trials,
  deduplicated, then a seeded sample;
* :func:`uncertain_configs` — *where the surrogate is unsure*: from a large seeded pool of
  prior samples, the configs on which curve models fitted on bootstrap resamples of the
  logged configs disagree most about final validation error, or whose learn probability is
  nearest one half.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from .space import HYPERPARAMETERS, config_id, sample, validate

__all__ = ["configs_from_results", "uncertain_configs", "configs_from_table"]

MAX_PLAN = 100_000


def _check_n(n: Any, seed: Any) -> tuple[int, int]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= MAX_PLAN:
        raise ValueError(f"n_configs: must be an int in 1..{MAX_PLAN}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed: must be a non-negative int, got {seed!r}")
    return int(n), int(seed)


def configs_from_table(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """The configs of a runs table (``config_<name>`` columns; empty cells are inactive)."""
    out = []
    for row in runs[[f"config_{hp.name}" for hp in HYPERPARAMETERS]].itertuples(index=False):
        cfg = {}
        for hp, value in zip(HYPERPARAMETERS, row):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if hp.kind == "int":
                value = int(round(float(value)))
            elif hp.kind == "float":
                value = float(value)
            elif isinstance(value, (np.bool_, bool)):
                value = bool(value)
            elif isinstance(value, (np.integer, float)):
                value = int(value)
            cfg[hp.name] = value
        out.append(validate(cfg))
    return out


def configs_from_results(path: str | os.PathLike, n: int, seed: int, *, late_share: float = 0.2) -> list[dict]:
    """``n`` distinct configs (fewer if the folder has fewer) where the optimizers of a results
    folder went: every full-fidelity config on a run's final Pareto front, and the configs of
    each run's last ``late_share`` of jobs; a seeded sample, in a seeded order."""
    from .compare import read_results
    from .metrics import pareto_mask

    n, seed = _check_n(n, seed)
    if not 0.0 <= late_share <= 1.0:
        raise ValueError(f"late_share: must lie in [0, 1], got {late_share!r}")
    runs = read_results(path).runs
    if runs.empty:
        raise ValueError(f"results: {path} holds no finished jobs")
    picked = []
    for _, run in runs.groupby(["optimizer", "seed", "n_workers"], sort=True):
        full = run[run["epoch"] == run["epoch"].max()]
        if len(full):
            picked.append(full[pareto_mask(full[["val_error", "log10_params"]].to_numpy())])
        late = run.sort_values("end", kind="stable")
        picked.append(late.iloc[int(math.floor(len(late) * (1.0 - late_share))):])
    table = pd.concat(picked).drop_duplicates("config_id").sort_values("config_id", kind="stable")
    configs = configs_from_table(table)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0971]))
    order = rng.permutation(len(configs))[: min(n, len(configs))]
    return [configs[i] for i in order]


def uncertain_configs(
    logs: str | os.PathLike,
    n: int,
    seed: int,
    *,
    dataset: str | None = None,
    pool: int = 20_000,
    n_boot: int = 8,
    exclude_logged: bool = True,
) -> list[dict]:
    """``n`` configs of a seeded prior pool on which the surrogate is least sure.

    ``n_boot`` curve models (the project's fitting code, the default grid's middle setting)
    are fitted on bootstrap resamples of the logged configs; a config's score is the
    between-model sd of its mean final validation error plus the sd of a Bernoulli at its
    mean learn probability (largest at one half), both on the error scale. The top ``n`` by
    score, in score order. Configs already logged are skipped.
    """
    from .datasets import info as dataset_info
    from .surrogate.build import curve_args
    from .surrogate.data import load_run_data
    from .surrogate.features import features
    from .surrogate.fit import fit_curve_model

    n, seed = _check_n(n, seed)
    if not 2 <= n_boot <= 64 or not n <= pool <= 1_000_000:
        raise ValueError(f"n_boot must lie in 2..64 and pool in n..1,000,000, got {n_boot} and {pool}")
    data = load_run_data(logs, dataset)
    cur = data.subset(data.curve_run)
    info = dataset_info(data.dataset)
    x = features(cur.configs, info.input_shape, info.n_classes, info.sizes[0])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB007]))
    candidates = sample(rng, n=pool)
    if exclude_logged:
        logged = set(cur.config_ids.tolist())
        candidates = [c for c in candidates if config_id(c) not in logged]
    xc = features(candidates, info.input_shape, info.n_classes, info.sizes[0])
    ids = np.unique(cur.config_ids)
    params = {"max_depth": 3, "min_child_weight": 1.0, "subsample": 1.0, "learning_rate": 0.05, "n_rounds": 200}
    finals, probs = [], []
    for b in range(n_boot):
        chosen = rng.choice(ids, size=len(ids), replace=True)
        counts = pd.Series(chosen).value_counts()
        rows = np.concatenate([np.repeat(np.flatnonzero(cur.config_ids == c), k) for c, k in counts.items()])
        model = fit_curve_model(x[rows], cur.val[rows], cur.test[rows], params, seed=seed + b, **curve_args(info))
        p, _ = model.parts(xc)
        finals.append(model.mean(xc)[:, cur.val.shape[1] - 1])
        probs.append(p)
    finals, probs = np.asarray(finals), np.asarray(probs)
    p_mean = probs.mean(axis=0)
    score = finals.std(axis=0) + np.sqrt(p_mean * (1 - p_mean)) * 0.1
    order = np.argsort(-score, kind="stable")[:n]
    return [candidates[i] for i in order]
