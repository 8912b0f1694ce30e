"""A fitted surrogate in memory: its XGBoost boosters, its manifest, and fast prediction.

Three boosters answer everything, whatever the number of epochs:

* ``learns``: P(the config learns at all) — about half of the flowers17 configs stay at
  chance-level error for all 25 epochs, a point mass no regressor should average over;
  its output is recalibrated (Platt scaling fitted on out-of-fold predictions);
* ``curves``: the learner curve (validation and test error at epochs 1..25) as a few
  principal-component scores, so a whole trajectory is one multi-output prediction; a
  monotone map per output (:class:`TailMap`, fitted on out-of-fold predictions) undoes,
  in the seeded draws, the regression toward the mean that every fitted model shows on
  configs it never saw;
* ``runtime``: log seconds per training epoch and per evaluation on one device's clock:
  the device's physics (:mod:`.clock`) plus the booster's correction of its log.

For speed the three are also merged into one booster (:mod:`.fast`), so that a whole
trajectory costs one XGBoost call; its trees are also exported to numpy (:mod:`.forest`),
which answers a few rows several times faster than that call, with the same numbers. The
mean curve is ``p * learner + (1 - p) * chance_curve``. A seeded draw is an outcome a real
run could have (see :mod:`.noise`): it learns (the learner curve with seed noise) or stays
at chance (one of the logged chance-level curves), decided from ``p`` and the seed.
Every value lies in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.special import ndtr

from .._ufuncs import clip
from ..space import MAX_EPOCH
from .clock import Clock
from .fast import check_agreement, merge_boosters, probe_rows
from .forest import Forest
from .noise import NoiseModel, draw_normals, learn_uniforms, logit, sigmoid

__all__ = ["CurveModel", "RuntimeModel", "Surrogate", "TailMap", "N_OUT"]

N_OUT = 2 * MAX_EPOCH  # validation error at epochs 1..25, then test error at epochs 1..25
# Up to this many rows the numpy forest answers (the same sums), beyond it XGBoost's call: the forest costs
# 60-80 us a row, XGBoost's call a fixed 0.5-0.7 ms plus about 20 us a row, so they meet at 12-20 rows
# (tools/bench_query.py prints the scan). MO-BANANAS announces 10 new trials at a time.
FOREST_ROWS = 12


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


def _predict(booster: xgb.Booster, x: np.ndarray, rounds: int | None = None, margin: bool = False) -> np.ndarray:
    kind = "margin" if margin else "value"
    if rounds is None:
        return booster.inplace_predict(x, predict_type=kind)
    return booster.inplace_predict(x, iteration_range=(0, int(rounds)), predict_type=kind)


@dataclass(frozen=True)
class TailMap:
    """A monotone piecewise-linear map per output, in logit space, extended linearly beyond
    its end knots: quantile ``a`` of the out-of-fold predictions goes to the value from which
    the draws, adding their seed noise, have quantile ``a`` of the measured learner curves
    (:func:`~.fit.fit_tail_map`; maps fitted before 2026-12-06 went to the measured quantile
    narrowed by the noise's variance, and draw as they did). Monotone per output, so it never
    reorders configs at any epoch."""

    x: np.ndarray  # (N_OUT, K) strictly increasing knots (predicted logits)
    y: np.ndarray  # (N_OUT, K) non-decreasing targets

    def __post_init__(self) -> None:
        x, y = np.asarray(self.x, float), np.asarray(self.y, float)
        if x.ndim != 2 or x.shape != y.shape or x.shape[1] < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("tail map: knots must be two finite matrices of one shape with at least 2 columns")
        if not (np.all(np.diff(x, axis=1) > 0) and np.all(np.diff(y, axis=1) >= 0)):
            raise ValueError("tail map: knots must increase")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        # flat copies for np.take (one gather per array instead of fancy indexing by (row, knot));
        # the slopes padded to K columns (the last is never indexed) so one flat index serves all
        slope = np.zeros_like(x)
        slope[:, :-1] = np.diff(y, axis=1) / np.diff(x, axis=1)
        object.__setattr__(self, "_flat", (x.ravel(), y.ravel(), slope.ravel()))
        object.__setattr__(self, "_base", np.arange(x.shape[0])[None, :] * x.shape[1])

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Map logits ``z`` of shape (n, N_OUT)."""
        k = self.x.shape[1]
        at = clip((self.x[None, :, :] <= z[:, :, None]).sum(axis=2) - 1, 0, k - 2) + self._base
        x, y, slope = self._flat
        return y.take(at) + (z - x.take(at)) * slope.take(at)

    def to_dict(self) -> dict:
        return {"scale": "logit", "x": self.x.tolist(), "y": self.y.tolist()}


@dataclass
class CurveModel:
    """Classifier ``learns`` + principal-component regressor ``curves`` of learner curves,
    their out-of-fold calibration, and what a draw needs (chance curves, seed correlation)."""

    learns: xgb.Booster
    curves: xgb.Booster
    pca_mean: np.ndarray  # (N_OUT,)
    components: np.ndarray  # (k, N_OUT)
    chance_curve: np.ndarray  # (N_OUT,) mean curve of runs that stay at chance
    lower: np.ndarray  # (N_OUT,) half a sample above 0 (val, then test split)
    upper: np.ndarray
    calibration: tuple[float, float] = (1.0, 0.0)  # P(learns) = sigmoid(a * margin + b)
    tail: TailMap | None = None
    chance_bank: np.ndarray | None = None  # (m, N_OUT) logged curves of runs that stayed at chance
    learn_corr: float = 0.0  # correlation of the learn decision between seeds of a config

    def raw(self, x: np.ndarray, rounds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The boosters' own answer: learns margin (n,) and learner curves (n, N_OUT)."""
        n = len(x)
        margin = np.asarray(_predict(self.learns, x, rounds, margin=True), dtype=float).reshape(n)
        scores = np.asarray(_predict(self.curves, x, rounds), dtype=float).reshape(n, len(self.components))
        return margin, self.learner(scores)

    def learner(self, scores: np.ndarray) -> np.ndarray:
        return clip(self.pca_mean + _rowwise(scores, self.components), self.lower, self.upper)

    def learn_probability(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated P(learns) from the classifier's margin."""
        a, b = self.calibration
        return sigmoid(a * margin + b)

    def parts(self, x: np.ndarray, rounds: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """P(learns) of shape (n,) and the learner curves of shape (n, N_OUT)."""
        margin, learner = self.raw(x, rounds)
        return self.learn_probability(margin), learner

    def mean(self, x: np.ndarray, rounds: int | None = None) -> np.ndarray:
        p, learner = self.parts(x, rounds)
        return combine(p, learner, self.chance_curve)

    def draw(self, p: np.ndarray, learner: np.ndarray, config_keys: np.ndarray, seeds: np.ndarray,
             mix: np.ndarray, size=None, bank=None, bank_mapped: bool = False, config=None) -> np.ndarray:
        """Seeded outcomes: a learner curve (its logits through the tail map, plus seed noise)
        or a logged chance-level curve. The mean curve keeps the unmapped learner: the best
        point prediction; the draws need the spread of real runs. ``size`` (a noise model's
        :meth:`~.noise.NoiseModel.resize`, or ``None``: one size for all) scales each learner's noise
        by its final validation error after the tail map. ``bank`` (a noise model's
        :meth:`~.noise.NoiseModel.bank_noise`) takes each learner's noise from the residual bank,
        searched by its unmapped learner curve (``bank_mapped``: by its curve after the tail map, for a
        bank keyed by logged mean curves), instead of ``mix``. ``config`` (a noise model's
        :meth:`~.noise.NoiseModel.config_offsets`, or ``None``) adds each config's offset curve after the
        tail map (sized by its final validation error there), before the bank is searched, the noise
        sized and the seed noise added."""
        normals, z_config = draw_normals(config_keys, seeds, N_OUT + 2)
        learned = learn_uniforms(config_keys, normals[:, N_OUT], self.learn_corr, z_config) < p
        # each row's outcome is computed for that row alone (every step is row by row, _rowwise
        # included): a learner's curve, or a chance-level one; a row costs only its own branch
        out = np.empty((len(learned), N_OUT))
        n_learned = int(np.count_nonzero(learned))
        if n_learned:
            rows = slice(None) if n_learned == len(learned) else learned
            z = logit(learner[rows])
            if bank is not None and not bank_mapped:
                noise = bank(normals[rows, :2], z)
            if self.tail is not None:
                z = self.tail(z)
            if config is not None:
                z = z + config(config_keys if n_learned == len(learned) else np.asarray(config_keys)[learned],
                               sigmoid(z[:, MAX_EPOCH - 1]))
            if bank is not None and bank_mapped:
                noise = bank(normals[rows, :2], z)
            if bank is None:
                noise = _rowwise(normals[rows, :N_OUT], mix)
                if size is not None:
                    noise = size(noise, sigmoid(z[:, MAX_EPOCH - 1]))
            out[rows] = sigmoid(z + noise)
        if n_learned < len(learned):
            rows = ~learned
            bank = self.chance_bank if self.chance_bank is not None else self.chance_curve[None, :]
            pick = np.minimum((ndtr(normals[rows, N_OUT + 1]) * len(bank)).astype(int), len(bank) - 1)
            out[rows] = bank[pick]
        return clip(out, 0.0, 1.0)


def _rowwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` computed the same way for every row, whatever the batch size (no BLAS):
    a config's answer in a batch equals its answer alone, bit for bit."""
    return np.einsum("ij,jk->ik", a, b, optimize=False)


def combine(p: np.ndarray, learner: np.ndarray, chance_curve: np.ndarray) -> np.ndarray:
    p = p[:, None]
    return clip(p * learner + (1.0 - p) * chance_curve, 0.0, 1.0)


@dataclass
class RuntimeModel:
    """Seconds per training epoch and per evaluation on one device: the device's physics
    (``clock``; none in surrogates of schema 1) times the booster's correction (log scale)."""

    booster: xgb.Booster
    device: str
    clock: Clock | None = None

    def log_seconds(self, x: np.ndarray, booster_out: np.ndarray | None = None) -> np.ndarray:
        out = self.booster.inplace_predict(x) if booster_out is None else booster_out
        out = np.asarray(out, dtype=float).reshape(len(x), 2)
        return out if self.clock is None else out + self.clock.log_seconds(x)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.exp(self.log_seconds(x))
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
        self._size = None if self.noise.size == "shared" else self.noise.resize
        if self.noise.bank is not None and self.noise.bank_keys is None:
            raise ValueError("noise parameters: the residual bank has no keys (fit the surrogate again)")
        self._bank = None if self.noise.bank is None else self.noise.bank_noise
        self._bank_mapped = self.noise.bank_by_mapped
        self._config = None if self.noise.config_factor is None else self.noise.config_offsets
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
        p = self.curve.learn_probability(out[:, 0])
        learner = self.curve.learner(out[:, 1 : k + 1])
        seconds = np.exp(self.runtime.log_seconds(x, out[:, k + 1 :]))
        if config_keys is None:
            curves = combine(p, learner, self.curve.chance_curve)
        else:
            curves = self.curve.draw(p, learner, config_keys, seeds, self._mix, self._size, self._bank,
                                     self._bank_mapped, self._config)
        return curves, seconds[:, 0], seconds[:, 1]
