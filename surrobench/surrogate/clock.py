"""The simulated clock's physics: seconds from the exact work a config asks of a device.

A training epoch of a config costs about

    c0 + c1 * steps + c2 * steps * layers + c3 * examples * MACs + c4 * steps * params

seconds on a given device: a fixed cost per epoch, a cost per optimizer step (data
slicing, the optimizer's call), a cost per layer and step (kernel launches: on a GPU the
small networks of this space are launch-bound), the arithmetic of the forward and
backward passes (multiply-accumulates per example times examples), and the optimizer's
update of every parameter at every step. One evaluation (validation and test split)
costs ``d0 + d1 * layers + d2 * examples * MACs``. Every term is an exact function of the
config and the dataset; only the coefficients belong to the device. They are fitted by
non-negative least squares on *relative* error (every run counts alike, fast or slow),
so a few lone runs of a device suffice; an XGBoost model of the remaining log-ratio
(:mod:`.fit`) adds what the physics misses once there are enough runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from ..space import HYPERPARAMETERS, NAMES
from .features import FEATURES

__all__ = ["TRAIN_TERMS", "EVAL_TERMS", "Clock", "work_terms", "fit_clock"]

TRAIN_TERMS = ("epoch", "steps", "steps_x_layers", "examples_x_macs", "steps_x_params")
EVAL_TERMS = ("evaluation", "layers", "examples_x_macs")

_COL = {name: i for i, name in enumerate(FEATURES)}
_HP = {hp.name: hp for hp in HYPERPARAMETERS}


def _int_from_unit(x: np.ndarray, name: str) -> np.ndarray:
    hp = _HP[name]
    assert hp.kind == "int" and not hp.log
    return np.rint(hp.lower + x[:, _COL[name]] * (hp.upper - hp.lower))


def _layers(x: np.ndarray) -> np.ndarray:
    """Modules a forward pass runs: per conv block a conv, an activation and a pooling (and a
    batch norm where on), per dense layer a matrix product and an activation, one output layer."""
    n_conv = _int_from_unit(x, "n_conv_l")
    n_fc = _int_from_unit(x, "n_fc_l")
    bn = x[:, _COL["batch_norm"]]  # the choice's index: 1 is True
    return n_conv * (3.0 + bn) + 2.0 * n_fc + 1.0


def work_terms(x: np.ndarray, n_train: int, n_eval: int) -> tuple[np.ndarray, np.ndarray]:
    """The work columns (:data:`TRAIN_TERMS`, :data:`EVAL_TERMS`) of feature rows ``x``.

    ``n_train`` examples are trained on per epoch, ``n_eval`` evaluated per evaluation.
    """
    x = np.asarray(x, dtype=float)
    assert x.ndim == 2 and x.shape[1] == len(FEATURES) and NAMES == FEATURES[: len(NAMES)]
    params = 10.0 ** x[:, _COL["log10_params"]]
    macs = 10.0 ** x[:, _COL["log10_macs"]]
    steps = 10.0 ** x[:, _COL["log10_steps"]]
    layers = _layers(x)
    ones = np.ones(len(x))
    train = np.column_stack([ones, steps, steps * layers, n_train * macs, steps * params])
    evals = np.column_stack([ones, layers, n_eval * macs])
    return train, evals


_TINY = 1e-9  # seconds: the physics' floor (its logarithm stays finite)
_POWERS = np.array([_COL["log10_params"], _COL["log10_macs"], _COL["log10_steps"]])
# (lower, upper - lower, column) of the integer layer counts, as _int_from_unit decodes them
_INT_LAYERS = tuple((_HP[n].lower, _HP[n].upper - _HP[n].lower, _COL[n]) for n in ("n_conv_l", "n_fc_l"))


def _dot(w: np.ndarray, c: tuple[float, ...]) -> np.ndarray:
    """``w @ c`` term by term: the same bits for a row alone as in any batch (no BLAS)."""
    out = w[:, 0] * c[0]
    for j in range(1, len(c)):
        out = out + w[:, j] * c[j]
    return out


@dataclass(frozen=True)
class Clock:
    """Coefficients of one device (seconds per unit of each work term)."""

    train: tuple[float, ...]
    eval: tuple[float, ...]
    n_train: int
    n_eval: int

    def log_seconds(self, x: np.ndarray) -> np.ndarray:
        """(n, 2) log seconds per training epoch and per evaluation, from the physics alone."""
        x = np.asarray(x, dtype=float)
        if x.shape == (1, len(FEATURES)):
            return self._log_seconds_row(x[0])
        wt, we = work_terms(x, self.n_train, self.n_eval)
        return np.log(np.column_stack([np.maximum(_dot(wt, self.train), _TINY), np.maximum(_dot(we, self.eval), _TINY)]))

    def _log_seconds_row(self, row: np.ndarray) -> np.ndarray:
        """:meth:`log_seconds` of one row, bit for bit (tested): the powers and the logarithm in
        numpy, the sums and products between them as Python floats (the same IEEE operations in
        the same order as :func:`work_terms` and :func:`_dot`, without some forty array calls)."""
        params, macs, steps = (10.0 ** row.take(_POWERS)).tolist()
        v = row.tolist()
        n_conv = float(round(_INT_LAYERS[0][0] + v[_INT_LAYERS[0][2]] * _INT_LAYERS[0][1]))
        n_fc = float(round(_INT_LAYERS[1][0] + v[_INT_LAYERS[1][2]] * _INT_LAYERS[1][1]))
        layers = n_conv * (3.0 + v[_COL["batch_norm"]]) + 2.0 * n_fc + 1.0
        t, e = self.train, self.eval
        train = 1.0 * t[0]
        for w, c in zip((steps, steps * layers, self.n_train * macs, steps * params), t[1:]):
            train = train + w * c
        evals = 1.0 * e[0]
        for w, c in zip((layers, self.n_eval * macs), e[1:]):
            evals = evals + w * c
        return np.log(np.array([[max(train, _TINY), max(evals, _TINY)]]))

    def to_dict(self) -> dict:
        return {
            "model": "seconds = work terms x non-negative coefficients (fitted on relative error)",
            "train_terms": list(TRAIN_TERMS),
            "train": list(self.train),
            "eval_terms": list(EVAL_TERMS),
            "eval": list(self.eval),
            "n_train": self.n_train,
            "n_eval": self.n_eval,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Clock":
        try:
            train = tuple(float(v) for v in d["train"])
            evals = tuple(float(v) for v in d["eval"])
            n_train, n_eval = int(d["n_train"]), int(d["n_eval"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"clock: malformed coefficients ({exc})") from None
        if len(train) != len(TRAIN_TERMS) or len(evals) != len(EVAL_TERMS):
            raise ValueError(f"clock: needs {len(TRAIN_TERMS)} training and {len(EVAL_TERMS)} evaluation coefficients")
        if not all(np.isfinite(v) and v >= 0 for v in train + evals) or n_train < 1 or n_eval < 1:
            raise ValueError("clock: coefficients must be finite and non-negative, example counts positive")
        if sum(train) <= 0 or sum(evals) <= 0:
            raise ValueError("clock: coefficients must not all be zero")
        return cls(train, evals, n_train, n_eval)


def _relative_nnls(w: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative c minimising sum((w @ c / y - 1)^2), columns scaled for conditioning."""
    a = w / y[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    c, _ = nnls(a / scale, np.ones(len(y)))
    c = c / scale
    if not np.any(c > 0):  # pragma: no cover - nnls returns a positive solution for positive data
        c[0] = float(np.median(y))
    return c


def fit_clock(x: np.ndarray, per_epoch: np.ndarray, per_eval: np.ndarray, *, n_train: int, n_eval: int) -> Clock:
    """Fit one device's coefficients on its lone runs (feature rows, median seconds)."""
    per_epoch, per_eval = np.asarray(per_epoch, float), np.asarray(per_eval, float)
    if len(per_epoch) < 2:
        raise ValueError(f"clock: needs at least 2 lone runs, got {len(per_epoch)}")
    if not (np.all(np.isfinite(per_epoch)) and np.all(per_epoch > 0) and np.all(np.isfinite(per_eval))
            and np.all(per_eval > 0)):
        raise ValueError("clock: seconds must be positive and finite")
    wt, we = work_terms(x, n_train, n_eval)
    return Clock(tuple(_relative_nnls(wt, per_epoch).tolist()), tuple(_relative_nnls(we, per_eval).tolist()),
                 int(n_train), int(n_eval))
