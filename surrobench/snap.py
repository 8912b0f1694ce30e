"""Nearest-config snapping: a search space restricted to a finite set of configs (issue 15).

A benchmark that can answer only some configs (the ones with logged runs) still lets an
optimizer propose any config of the space: :class:`Snapper` finds the nearest config of the
set, and :class:`SnappedOptimizer` hands that config to the simulator instead of the one asked
for, so the optimizer is told the config that was answered (its exact size is the objective)
and the results record both.

Distance (the same rule on every side): the space's fixed encoding (:func:`surrobench.space.encode`),
with each category's index scaled to [0, 1] so that every hyperparameter spans the same range;
a hyperparameter active in both configs adds its squared difference, one active in exactly one
of them adds 1 (whatever its value), one inactive in both adds nothing. So the value of an
inactive hyperparameter never decides a match. An exact match is at distance 0 and answers
itself; ties go to the smallest config id.

>>> from surrobench.space import default_config, sample
>>> snapper = Snapper(sample(seed=0, n=20) + [default_config()])
>>> snapper.snap(default_config()) == default_config()
True
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .records import Job, Observation
from .space import HYPERPARAMETERS, encode, id_of_valid, validate

__all__ = ["Snapper", "SnappedOptimizer", "unit_encode"]

_SCALE = np.array([max(len(hp.choices) - 1, 1) if hp.kind == "cat" else 1.0 for hp in HYPERPARAMETERS])


def unit_encode(configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """:func:`~surrobench.space.encode` with categories scaled to [0, 1] and inactive columns NaN."""
    return encode(configs, inactive=np.nan) / _SCALE


def distances(query: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Distance from one unit-encoded row to every row of ``table`` (see the module docstring)."""
    q_on, t_on = np.isfinite(query), np.isfinite(table)
    both = q_on[None, :] & t_on
    diff = np.where(both, np.nan_to_num(table) - np.nan_to_num(query)[None, :], 0.0)
    one = (q_on[None, :] ^ t_on).sum(axis=1)
    return np.sqrt((diff * diff).sum(axis=1) + one)


class Snapper:
    """The nearest config of a finite set, for any config of the space.

    ``configs`` are distinct valid configs (a duplicate is a ``ValueError``); they are kept in
    order of their config ids, which is also the tie order.
    """

    def __init__(self, configs: Sequence[Mapping[str, Any]]):
        cfgs = [validate(c) for c in configs]
        if not cfgs:
            raise ValueError("configs: the set to snap to is empty")
        ids = [id_of_valid(c) for c in cfgs]
        if len(set(ids)) != len(ids):
            raise ValueError("configs: the set to snap to holds a config twice")
        order = np.argsort(ids, kind="stable")
        self.configs: list[dict[str, Any]] = [cfgs[i] for i in order]
        self.ids: list[str] = [ids[i] for i in order]
        self._index = {cid: i for i, cid in enumerate(self.ids)}
        self._table = unit_encode(self.configs)
        self._memo: dict[str, tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self.configs)

    def __contains__(self, config_id: str) -> bool:
        return config_id in self._index

    def nearest(self, config: Mapping[str, Any]) -> tuple[int, float]:
        """(index into ``configs`` of the nearest config, its distance)."""
        cfg = validate(config)
        cid = id_of_valid(cfg)
        hit = self._index.get(cid)
        if hit is not None:
            return hit, 0.0
        memo = self._memo.get(cid)
        if memo is None:
            d = np.round(distances(unit_encode([cfg])[0], self._table), 12)  # equal sums, equal distances
            i = int(np.argmin(d))  # the first of the smallest: the smallest config id
            memo = self._memo[cid] = (i, float(d[i]))
        return memo

    def snap(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The nearest config of the set (``config`` itself when it is in the set)."""
        return dict(self.configs[self.nearest(config)[0]])


class SnappedOptimizer:
    """An optimizer whose every job is moved to the nearest config of ``snapper``'s set.

    The job the wrapped optimizer returned is re-pointed at the answered config before the
    simulator sees it (the same record, so the optimizer's own bookkeeping, keyed by its job
    objects, finds it when told); its observation then carries the answered config and that
    config's exact size. ``ledger`` holds, per job handed out (in the simulator's job-id order),
    the asked config id, the answered config id and their distance.
    """

    def __init__(self, optimizer, snapper: Snapper):
        self.optimizer = optimizer
        self.snapper = snapper
        self.ledger: list[tuple[str, str, float]] = []

    def ask(self) -> Job | None:
        job = self.optimizer.ask()
        if job is None:
            return None
        if not isinstance(job, Job):
            raise ValueError(f"optimizer.ask must return a Job or None, got {type(job).__name__}")
        asked = job.config_id
        i, dist = self.snapper.nearest(job.config)
        answered = self.snapper.ids[i]
        if answered != asked:
            object.__setattr__(job, "config", dict(self.snapper.configs[i]))  # a valid config of the set
            object.__setattr__(job, "config_id", answered)
        self.ledger.append((asked, answered, dist))
        return job

    def tell(self, observation: Observation) -> None:
        self.optimizer.tell(observation)
