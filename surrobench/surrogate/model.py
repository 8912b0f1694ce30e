"""A fitted surrogate in memory: its XGBoost boosters, its manifest, and fast prediction.

Three boosters answer everything, whatever the number of epochs:

* ``learns``: P(the config learns at all) — about half of the flowers17 configs stay at
  chance-level error for all 25 epochs, a point mass no regressor should average over;
* ``curves``: the learner curve (validation and test error at epochs 1..25) as a few
  principal-component scores, so a whole trajectory is one multi-output prediction;
* ``runtime``: log seconds per training epoch and per evaluation, on one device's clock.

For speed the three are also merged into one booster (:mod:`.fast`), so that a whole
trajectory costs one XGBoost call; its trees are also exported to numpy (:mod:`.forest`),
which answers a few rows several times faster than that call, with the same numbers. The
mean curve is ``p * learner + (1 - p) * chance_curve``; a seeded draw puts the seed noise
(see :mod:`.noise`) on the learner part. Every value is a convex combination of numbers in
[0, 1], so it lies in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

from ..space import MAX_EPOCH
from .fast import check_agreement, merge_boosters, probe_rows
from .forest import Forest
from .noise import NoiseModel, logit, sigmoid, standard_normals

__all__ = ["CurveModel", "RuntimeModel", "Surrogate", "N_OUT"]

N_OUT = 2 * MAX_EPOCH  # validation error at epochs 1..25, then test error at epochs 1..25
FOREST_ROWS = 8  # up to this many rows the numpy forest is faster than XGBoost's call; beyond, XGBoost


def exact_forest(booster: xgb.Booster) -> Forest | None:
    """The booster's trees as a :class:`Forest` if it reproduces the booster bit for bit on the
    probe rows (missing values and values exactly at thresholds included), else ``None``
    (XGBoost then answers every row)."""
    try:
        forest = Forest.from_booster(booster)
    except ValueError:
        return None
    at = np.full((64, forest.n_features), np.nan)
    thresholds = forest.threshold.ravel()
    at[np.arange(len(thresholds)) % 64, forest.feature.ravel() % forest.n_features] = thresholds
    x = np.vstack([probe_rows(forest.n_features, 256), at])
    want = np.asarray(booster.inplace_predict(x), dtype=np.float32).reshape(len(x), -1)
    return forest if np.array_equal(forest.predict(x), want) else None


def _predict(booster: xgb.Booster, x: np.ndarray, rounds: int | None = None) -> np.ndarray:
    if rounds is None:
        return booster.inplace_predict(x)
    return booster.inplace_predict(x, iteration_range=(0, int(rounds)))


@dataclass
class CurveModel:
    """Classifier ``learns`` + principal-component regressor ``curves`` of learner curves."""

    learns: xgb.Booster
    curves: xgb.Booster
    pca_mean: np.ndarray  # (N_OUT,)
    components: np.ndarray  # (k, N_OUT)
    chance_curve: np.ndarray  # (N_OUT,) mean curve of runs that stay at chance
    lower: np.ndarray  # (N_OUT,) half a sample above 0 (val, then test split)
    upper: np.ndarray

    def parts(self, x: np.ndarray, rounds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """P(learns) of shape (n,) and the learner curves of shape (n, N_OUT)."""
        n = len(x)
        p = np.asarray(_predict(self.learns, x, rounds), dtype=float).reshape(n)
        scores = np.asarray(_predict(self.curves, x, rounds), dtype=float).reshape(n, len(self.components))
        learner = np.clip(self.pca_mean + scores @ self.components, self.lower, self.upper)
        return p, learner

    def mean(self, x: np.ndarray, rounds: int | None = None) -> np.ndarray:
        p, learner = self.parts(x, rounds)
        return combine(p, learner, self.chance_curve)


def _rowwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` computed the same way for every row, whatever the batch size (no BLAS):
    a config's answer in a batch equals its answer alone, bit for bit."""
    return np.einsum("ij,jk->ik", a, b, optimize=False)


def combine(p: np.ndarray, learner: np.ndarray, chance_curve: np.ndarray) -> np.ndarray:
    p = p[:, None]
    return np.clip(p * learner + (1.0 - p) * chance_curve, 0.0, 1.0)


@dataclass
class RuntimeModel:
    """Seconds per training epoch and per evaluation (two outputs, log scale)."""

    booster: xgb.Booster
    device: str

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.exp(np.asarray(self.booster.inplace_predict(x), dtype=float).reshape(len(x), 2))
        return out[:, 0], out[:, 1]


@dataclass
class Surrogate:
    """Everything a benchmark needs; built by :func:`~.fit.fit_surrogate` or :func:`~.files.load_surrogate`."""

    manifest: dict[str, Any]
    curve: CurveModel
    runtime: RuntimeModel
    noise: NoiseModel
    parity_png: bytes | None = None
    fast: xgb.Booster | None = None
    _mix: np.ndarray = field(init=False, repr=False)
    _forest: Forest | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._mix = self.noise.mixing_matrix(MAX_EPOCH)
        if self.fast is None:
            self.fast = merge_boosters(self.parts)
            n_features = self.curve.learns.num_features()
            if check_agreement(self.fast, self.parts, n_features) > 1e-4:  # pragma: no cover - xgboost format change
                raise RuntimeError("fast model: merged booster disagrees with its parts")
        self._k = len(self.curve.components)
        self._forest = exact_forest(self.fast)

    @property
    def parts(self) -> list[tuple[xgb.Booster, bool]]:
        """The separate boosters, in the fast model's output order, and whether each is logistic."""
        return [(self.curve.learns, True), (self.curve.curves, False), (self.runtime.booster, False)]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]["name"]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.manifest["dataset"]["input_shape"])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return int(self.manifest["dataset"]["n_classes"])

    @property
    def n_train(self) -> int:
        return int(self.manifest["dataset"]["split_sizes"][0])

    @property
    def quality(self) -> dict[str, Any]:
        return self.manifest["quality"]

    def predict(self, x: np.ndarray, config_keys: np.ndarray | None = None, seeds: np.ndarray | None = None):
        """Curves (n, 50) and seconds per epoch / per evaluation (n,) for feature rows ``x``.

        Without ``config_keys`` the mean curves; with them (uint64 keys and seeds, one per
        row) the seeded draws.
        """
        n, k = len(x), self._k
        if self._forest is not None and n <= FOREST_ROWS:
            raw = self._forest.predict(x)
        else:
            raw = self.fast.inplace_predict(x)
        out = np.asarray(raw, dtype=float).reshape(n, k + 3)
        p = sigmoid(out[:, 0])
        scores = out[:, 1 : k + 1]
        learner = np.clip(self.curve.pca_mean + _rowwise(scores, self.curve.components), self.curve.lower, self.curve.upper)
        seconds = np.exp(out[:, k + 1 :])
        if config_keys is not None:
            z = standard_normals(config_keys, seeds, N_OUT)
            learner = sigmoid(logit(learner) + _rowwise(z, self._mix))
        return combine(p, learner, self.curve.chance_curve), seconds[:, 0], seconds[:, 1]
