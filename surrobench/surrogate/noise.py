"""Seed noise: calibrated on replicated runs, drawn deterministically from (config, seed).

Model. A run that learns has a curve ``sigmoid(logit(m_e) + eps_e)`` around the surrogate's
learner curve ``m``; ``eps`` is Gaussian on the logit scale with sd ``sigma`` at every
epoch and the correlation ``level + (1 - level) * rho ** |i - j|`` between epochs ``i`` and
``j``: a share ``level`` of the variance is a shift of the whole run (one number per seed),
the rest an AR(1) wobble with lag-one correlation ``rho``. A rerun's curve is shifted and
wobbles; it neither jitters independently per epoch nor forgets, ten epochs on, where it
was (with ``level = 0``, the AR(1) process of surrogates built before the level existed,
the noise at epoch 9 was independent of the noise at epoch 25, and draws dipped below their
own final error more often than logged runs do; the quality card counts these dips). The test-error noise is the
validation noise correlated with coefficient ``kappa`` (the same network is evaluated). A
run that stays at chance has no seed noise. The logit scale keeps every draw in [0, 1].

The log-epoch clock (``time="log-epoch"``, chosen when the surrogate is fitted; not the
default). In the replicated flowers17 runs the residuals of epochs 3 or 6 apart move together
more late in training than early (``tools/noise_clock.py`` prints the correlation by lag), which no
process stationary in epochs gives. The process below describes both ends more tightly than the
runs (docs/surrogates.md has every process against the runs, and what each does to a ``validate``
study). It runs the AR(1) wobble on
``log(epoch)``, so that a lag late in training is shorter than the same lag early, and lets a
share ``jitter`` of the variance be independent at every epoch: the correlation is
``jitter * [i == j] + (1 - jitter) * (level + (1 - level) * rho ** |log i - log j|)``. Its
marginal sd is still ``sigma`` at every epoch.

Early noise (``time="log-epoch-early"``, opt-in too). The replicated runs' sd is not one number
either: larger in the first epochs than at the end (``tools/noise_clock.py`` prints it by epoch).
This process adds to the log-epoch covariance above an independent variance
``early * exp(-(i - 1) / decay)`` at epoch ``i`` (in units of the rest), so the first epochs
jitter more and correlate less with the others; ``sigma`` becomes the root mean square of the
epochs' sds (:func:`epoch_sd` gives their profile; the test noise shares it). A file records it as
the log-epoch clock with ``early`` and ``decay``.

The measured covariance (``time="empirical"``, opt-in too). No process: the noise has the
covariance of the replicated runs' residuals itself (their pooled scatter over the degrees of
freedom, ``n_epochs x n_epochs``), so every epoch's sd and every pair's correlation are the runs'
by construction. A file stores it as ``matrix``, that covariance over ``sigma_val ** 2`` (its
diagonal averages 1); the test noise shares it, correlated with ``kappa`` as above.

Noise size by config (``size="by-error"``, opt-in, with any process). Every process above gives
every config the same noise, but the replicated runs' noise grows with the config's final error,
and not evenly: split each run's residual curve into its mean over the epochs (the run-level
shift) and the rest (the wobble around it); on flowers17's replicated learners the shift's sd
(logit) roughly doubles from the best third by final error to the worst third, the wobble's grows
by about 15 % (``tools/noise_clock.py --by-config``). One size
for all overstates the shift of the configs that learn well, where optimizers look, and understates
it for the rest. With ``size="by-error"`` a config's noise (validation and test, the same factors)
has its shift scaled by ``(v / size_ref) ** -size_level`` and its wobble by
``(v / size_ref) ** -size_wobble``, with ``v = e * (1 - e)`` of its final validation error ``e`` (a
draw: its learner curve after the tail map; the calibration: the replicated config's mean curve),
``v`` clipped to the range the replicated learners span (``size_lo``, ``size_hi``: no
extrapolation) and ``size_ref`` their geometric mean (weighted by degrees of freedom), so that
``sigma`` keeps its meaning. The two powers maximise the Gaussian likelihood of the validation
residuals under one pooled covariance (profiled out) of the residuals so rescaled
(:func:`fit_noise_size`); the process is then fitted as above on the rescaled residuals. Files
without it (``size`` absent) draw as before.

Noise size by level (``size="by-level"``, opt-in). The same, with ``v = e`` itself: the final
error's level rather than its binomial spread. On flowers17 the learners' final errors lie between
about 0.4 and 0.9, where ``e * (1 - e)`` hardly tells a config at 0.45 from one at 0.6 (0.248 and
0.240) while the replicated runs' noise does (``tools/noise_clock.py --by-config`` prints the sd by
thirds of the final error, and both sizes' likelihood gains: ``v = e`` describes the runs better);
``size_lo`` and ``size_hi`` are then errors (in (0, 1]).

The residual bank (``time="bank"``; the shipped flowers17 surrogates' on 2026-12-07, before the search by the
mapped curve below). No distribution: the replicated learners' residual
curves themselves (validation and test, each run's around its config's mean, scaled to one run's
variance), kept with each banked config's key, its out-of-fold predicted learner curve (:func:`bank_key`:
the shape from epoch 5 on relative to the last epoch, and the last epoch's level). A learning draw takes
the residual curve of a run of one of the :data:`BANK_NEAREST` banked configs whose keys are nearest its own
predicted curve, the config and the run picked by its (config, seed) stream. On flowers17 a run's
deviation from its config's mean curve is not independent of that curve's shape (a config whose curve is
flat late has runs that stay close to it late), which no noise drawn apart from the curve has
(``tools/noise_clock.py --dips``); the bank's does. It carries its configs' sizes: size ``"shared"`` only.

``time="bank-logged"`` (since 2026-12-07, later that day, what the default ``"auto"`` of ``surrobench fit`` and
``validate`` takes where the logs allow, and the shipped flowers17 surrogates') keeps the same residual curves
but searches them otherwise (``bank_search="mapped"``):
each banked config's key is its logged mean curve (the mean its residuals are taken around), and a draw
searches the keys with the curve it is centred on, its predicted learner curve after the tail map, which is
what stands for a real run's mean. A draw's noise then comes from real configs whose real curves look like
the one drawn; with ``"bank"`` (``bank_search="predicted"``) it comes from configs whose predicted curves look
like its unmapped prediction, while the tail map bends the curve it is added to (docs/surrogates.md, "What is
left"): the draws' best curves dipped part-way more than the logged ones, and a ranking study at 20 % of the
logged configs put SH-EMOA ahead of NSGA-II where the real runs confidently do not; searched by the mapped
curve, the dips come near the logs' (the best configs' reruns then spread less than theirs) and the flip
is gone (docs/surrogates.md, "Searching the bank by the mapped curve").

Calibration. On configs that were run with several seeds and learned under all of them:
residuals of each seed's logit curve around the per-config mean, pooled with the
``n - 1`` degrees of freedom of each config. ``sigma`` and ``kappa`` are their moments;
``level`` and ``rho`` (and ``jitter`` on the log-epoch clock) maximise the Gaussian
likelihood of the validation residuals (on a grid of step :data:`CORR_STEP`, ``sigma``
profiled out; with early noise all five by a bounded Nelder-Mead, :func:`fit_early_noise`).

Learns or not. A seeded draw is an outcome, never a blend: it learns when
``Phi(sqrt(r) * z_config + sqrt(1 - r) * z_seed) < p``, with ``p`` the (calibrated)
probability that the config learns, ``z_config`` a standard normal of the config alone
and ``z_seed`` one of the (config, seed) pair. Every seed learns with probability ``p``;
the correlation ``r`` between seeds of one config sets how often seeds disagree
("flips"): :func:`fit_learn_corr` picks ``r`` so that the expected flip rate of the
replicated configs equals the measured one.

Config noise (``config_noise="unexplained"``, opt-in, with any process). Seed noise is what
changes between runs of one config; a config the models never saw also differs from its prediction
by what its hyperparameters do not tell them (on flowers17's learners, out of fold, the final
logit's residual around the best monotone function of the prediction is well beyond the seed
noise: docs/surrogates.md). Without this part the tail map stretches the predictions until the draws have
the runs' spread, so the draws' order of configs is as predictable from the hyperparameters as the
predictions' own. With it every draw adds, after the tail map, an offset curve of its config alone
(the same for every seed): ``u = F s(e, z) z``, ``z`` standard normals hashed from the config id, ``F``
the leading factor of the unexplained covariance (:func:`fit_config_factor`: the out-of-fold
residuals' covariance less the seed noise's), a shift of the whole curve, and ``s(e, z)`` its size,
measured by the config's final error ``e`` and apart for the two halves (``z`` below 0: a config
better than its prediction; above: worse). On flowers17 the residuals are skewed: far more configs
run much worse than predicted than much better, and the worst learners' residuals are more than twice
the best's. Each half is measured where it matters, from the residuals' 5 % or 95 % quantile in
:data:`CONFIG_BINS` bins of final error, less the seed noise of that bin, and scaled by
:data:`CONFIG_SCALE`. The tail map is fitted with the offsets in its simulated draws, so the
draws keep the runs' quantiles while less of their order is the prediction's.

Draws. Standard normals come from a counter-based hash (SplitMix64) of the config id,
the seed and the position: the same (config, seed) gives the same curve on every
machine and every numpy version, and 10,000 trajectories need no Python loop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from ..space import MAX_EPOCH

__all__ = [
    "NoiseModel",
    "DEFAULT_NOISE_TIME",
    "auto_time",
    "calibrate",
    "standard_normals",
    "config_normals",
    "draw_normals",
    "learn_uniforms",
    "expected_flip_rate",
    "fit_learn_corr",
    "flip_share",
    "replicated_learning",
    "logit",
    "sigmoid",
    "LEARN_MARGIN",
    "learns",
    "epoch_correlation",
    "fit_correlation",
    "fit_log_time_correlation",
    "replicated_residuals",
    "Residuals",
    "correlation_loglik",
    "CORR_STEP",
    "NOISE_TIMES",
    "NOISE_CLOCKS",
    "NOISE_SIZES",
    "fit_noise_size",
    "unit_residuals",
    "config_spread_loglik",
    "fit_config_spread",
    "SPREAD_PARTS",
    "check_noise_time",
    "check_noise",
    "bank_key",
    "BANK_NEAREST",
    "epoch_sd",
    "fit_early_noise",
    "EARLY_BOUNDS",
    "CONFIG_NOISES",
    "CONFIG_RANK",
    "CONFIG_SCALE",
    "CONFIG_FORM",
    "fit_config_factor",
    "check_config_noise",
]

CORR_STEP = 0.01
"""Grid step of the calibrated ``level`` and ``rho``."""

NOISE_SIZES = ("shared", "by-error", "by-level")
"""How the seed noise's size varies between configs (``surrobench fit --noise-size``): ``"shared"``,
one size for every config (the default), ``"by-error"``, a size that follows ``e * (1 - e)`` of the
config's final error ``e``, or ``"by-level"``, one that follows ``e`` itself (``size_level`` and
``size_wobble``, see the module docstring)."""

SIZE_POWER_BOUNDS = (-3.0, 3.0)  # the range searched for size_level and size_wobble (and accepted in files)
_SIZE_TOP = {"by-error": 0.25, "by-level": 1.0}  # the largest v of each size


def size_variable(size: str, final_val_error) -> np.ndarray:
    """The variable ``v`` a config's noise size follows: ``e * (1 - e)`` of its final validation error
    ``e`` (``"by-error"``) or ``e`` itself (``"by-level"``)."""
    e = np.asarray(final_val_error, dtype=float)
    return e if size == "by-level" else e * (1.0 - e)

_SIZE_FIELDS = ("size", "size_level", "size_wobble", "size_ref", "size_lo", "size_hi")
_BANK_FIELDS = ("bank", "bank_sizes", "bank_keys", "bank_nearest", "bank_search")

CONFIG_NOISES = ("none", "unexplained")
"""Whether draws add an offset per config for what the models cannot tell from its hyperparameters
(``surrobench fit --config-noise``): ``"none"`` (the default; every file without it) or
``"unexplained"`` (the module docstring's config noise, :attr:`NoiseModel.config_factor`)."""

CONFIG_RANK = 1
"""How many leading factors of the unexplained covariance the config noise keeps: one, on flowers17
a shift of the whole curve (more factors let a config's offset be good early and bad late, and the
draws dip below their final error far more often than the runs do: docs/surrogates.md)."""
CONFIG_BINS = 10
"""The config noise's size is measured in this many bins of equal count by the prediction's final error."""
CONFIG_SCALE = 0.5
"""The config noise's sizes are the measured ones times this. Offsets drawn independently for every
config at the measured size give the logged configs, drawn out of fold, a front (the hypervolume of
all of them) well above the logged front, where the seed noise alone gives about the logged one;
halved, about that too (``tools/pool_front.py``; docs/surrogates.md). A measured choice, not a
derivation."""
CONFIG_FORM = f"two halves, {CONFIG_BINS} bins, scale {CONFIG_SCALE:g}"
"""How the config noise is sized, as a validate study records it (its stored runs are keyed by it)."""
CONFIG_TAIL = 1.6448536269514722
"""Each half of the config noise is sized from the residuals' quantile this many sds out (5 % / 95 %)."""
_CONFIG_NOISE_SALT = np.uint64(0x5BD1E9955BD1E995)  # keys XOR this: the config noise's own stream
_CONFIG_FIELDS = ("config_factor", "config_levels", "config_sds", "config_sds_upper")

NOISE_CLOCKS = ("epoch", "log-epoch")
"""The clocks the seed noise's wobble can run on (see :func:`epoch_correlation`)."""

NOISE_TIMES = ("epoch", "log-epoch", "log-epoch-early", "empirical", "bank", "bank-logged", "auto")
"""The seed-noise processes :func:`calibrate` fits (``surrobench fit --noise-time``): ``"bank"``, no
distribution at all: the replicated runs' own residual curves, each draw taking that of a run of a
config whose predicted curve is near its own (:meth:`NoiseModel.bank_noise`); ``"bank-logged"``, the same
curves, each draw taking that of a run of a config whose logged mean curve is near the draw's mapped
curve (``bank_search="mapped"``); ``"empirical"``, the
replicated runs' measured covariance between epochs (``matrix``); a clock of :data:`NOISE_CLOCKS`;
``"log-epoch-early"``, the log-epoch clock plus a larger independent noise in the first epochs
(``early``, ``decay``); and ``"auto"`` (:func:`auto_time`): the measured residuals themselves where
they are enough to measure a covariance between epochs (``"bank-logged"`` with one size, ``"empirical"``
with a size by config), else the epoch clock."""

DEFAULT_NOISE_TIME = "auto"
"""The process that ``surrobench fit`` and ``surrobench validate`` (and :func:`surrobench.surrogate.fit_surrogate`,
:func:`surrobench.validate.validate`) use unless told otherwise: on logs like flowers17's (well over a
hundred replicated learners) the residual bank searched by the mapped curve (``"bank-logged"``) the shipped flowers17
surrogates were fitted with (since 2026-12-07), so that a
refit with the defaults follows the shipped recipe and a ranking study with the defaults measures the shipped
surrogate; on logs with too few replicated runs for the bank, the epoch clock (:func:`auto_time`). The
low-level :func:`calibrate` keeps ``"epoch"``."""

BANK_SEARCHES = ("predicted", "mapped")
"""How a residual bank is searched (:attr:`NoiseModel.bank_search`): ``"predicted"`` (``time="bank"``): the
keys are the banked configs' out-of-fold predicted curves, searched by a draw's unmapped prediction;
``"mapped"`` (``time="bank-logged"``): the keys are their logged mean curves, searched by a draw's curve after
the tail map."""

BANK_NEAREST = 3
"""With a residual bank: how many replicated configs of nearest key a draw takes its residual curve from."""
BANK_FROM_EPOCH = 5
"""With ``time="bank"``: a curve's key is its shape from this epoch (1-based) on, relative to its last epoch, and
its last epoch's level (validation logits; :func:`bank_key`)."""


def bank_key(z: np.ndarray) -> np.ndarray:
    """The keys by which the residual bank is searched: of validation logit curves ``z`` (rows, at least
    MAX_EPOCH columns), their shape from :data:`BANK_FROM_EPOCH` on relative to the last epoch, and
    the last epoch's level ((rows, MAX_EPOCH - BANK_FROM_EPOCH + 2))."""
    z = np.asarray(z, dtype=float)[:, :MAX_EPOCH]
    return np.column_stack([z[:, BANK_FROM_EPOCH - 1:] - z[:, -1:], z[:, -1]])


def check_noise_time(value, name: str = "time", choices: tuple[str, ...] = NOISE_TIMES) -> str:
    """``value`` if it is one of ``choices`` (:data:`NOISE_TIMES`), else a one-line ``ValueError`` naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def auto_time(res: "Residuals", size: str = "shared") -> str:
    """The process ``time="auto"`` resolves to for the replicated residuals ``res`` (in the units
    :func:`calibrate` fits them in) and the noise's ``size``: the measured residuals themselves
    (``"bank-logged"`` with size ``"shared"``, ``"empirical"`` with a size by config) when their pooled
    covariance between epochs is positive definite, which needs more degrees of freedom (runs less
    configs) than epochs; else ``"epoch"``, two parameters that a few replicated configs can fit."""
    n_ep = res.val.shape[1]
    if res.dof <= n_ep:
        return "epoch"
    try:  # the matrix calibrate would keep, checked as it checks it
        _checked_matrix(_pooled_matrix(res, math.sqrt(float(np.sum(res.val**2)) / (res.dof * n_ep))))
    except ValueError:
        return "epoch"
    return "bank-logged" if size == "shared" else "empirical"


def _pooled_matrix(res: "Residuals", sigma_val: float) -> np.ndarray:
    """The replicated residuals' pooled covariance between epochs over ``sigma_val ** 2`` (symmetrised)."""
    scatter = res.scatter
    return (scatter + scatter.T) / (2 * res.dof * sigma_val**2)


def check_noise(time, size, names: tuple[str, str] = ("noise_time", "noise_size")) -> tuple[str, str]:
    """``(time, size)`` if each is known (:data:`NOISE_TIMES`, :data:`NOISE_SIZES`) and they go together (a
    residual bank carries its configs' sizes: ``"bank"`` and ``"bank-logged"`` only with ``"shared"``; ``"auto"``
    goes with any), else a one-line ``ValueError``."""
    check_noise_time(time, names[0])
    check_noise_time(size, names[1], NOISE_SIZES)
    if time in ("bank", "bank-logged") and size != "shared":
        raise ValueError(f"{names[1]}: a residual bank ({names[0]} {time!r}) carries its configs' sizes; "
                         f"it takes {names[1]} 'shared', got {size!r}")
    return time, size


LEARN_MARGIN = 0.05
"""A run "learns" when its validation error drops at least this far below chance at some epoch."""

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SEED_SALT = np.uint64(0xD1B54A32D192ED03)
_CONFIG_SALT = np.uint64(0x8CB92BA72F3D8DD7)  # keys XOR this: a stream of the config alone


def learns(val: np.ndarray, chance: float) -> np.ndarray:
    """Which runs (rows of validation curves) learn: min error below chance - LEARN_MARGIN."""
    return np.nanmin(np.atleast_2d(val), axis=1) < chance - LEARN_MARGIN


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


_S11, _S27, _S30, _S31 = (np.uint64(v) for v in (11, 27, 30, 31))
_MASK = (1 << 64) - 1


def _finalize(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _finalize_int(x: int) -> int:
    """:func:`_finalize` of one value as a Python int (cheaper than numpy for a single row)."""
    x = ((x ^ (x >> 30)) * int(_M1)) & _MASK
    x = ((x ^ (x >> 27)) * int(_M2)) & _MASK
    return x ^ (x >> 31)


_STEPS: dict[int, np.ndarray] = {}  # (1, 2 * half) counter offsets by half, computed once


def _steps(half: int) -> np.ndarray:
    steps = _STEPS.get(half)
    if steps is None:
        with np.errstate(over="ignore"):
            steps = np.arange(1, 2 * half + 1, dtype=np.uint64).reshape(1, -1) * _GAMMA
        steps.flags.writeable = False
        _STEPS[half] = steps
    return steps


def _state_int(key: int, seed: int) -> int:
    """The stream state of one (key, seed) pair as a Python int (cheaper than numpy for one row)."""
    gamma = int(_GAMMA)
    return _finalize_int(_finalize_int((key + gamma) & _MASK) ^ ((seed * int(_SEED_SALT) + gamma) & _MASK))


def _states(keys: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(rows, 1) stream states of (key, seed) columns of uint64."""
    if keys.size == 1 and seeds.size == 1:
        return np.array([[_state_int(int(keys[0, 0]), int(seeds[0, 0]))]], dtype=np.uint64)
    # uint64 arithmetic on arrays wraps silently (numpy checks overflow on scalars only).
    return _finalize(_finalize(keys + _GAMMA) ^ (seeds * _SEED_SALT + _GAMMA))


def _uniforms(bits: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) from the top 53 bits."""
    return ((bits >> _S11).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def standard_normals(config_keys: np.ndarray, seeds: np.ndarray, n: int) -> np.ndarray:
    """(len(keys), n) standard normals, a pure function of (key, seed, column).

    ``config_keys`` are uint64 (the first 16 hex digits of a config id), ``seeds`` uint64.
    """
    keys = np.asarray(config_keys, dtype=np.uint64).reshape(-1, 1)
    seeds = np.asarray(seeds, dtype=np.uint64).reshape(-1, 1)
    half = (n + 1) // 2
    u = _uniforms(_finalize(_states(keys, seeds) + _steps(half)))
    u1, u2 = u[:, :half], u[:, half:]
    r = np.sqrt(-2.0 * np.log(u1))
    return np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], axis=1)[:, :n]


_PAIRS: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # draw_normals' (counter offsets, config columns) by half


def draw_normals(config_keys: np.ndarray, seeds: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(standard_normals(keys, seeds, n), config_normals(keys))`` in one pass, bit for bit (tested).

    A draw needs both: the two counter streams are hashed side by side in one array, so that
    one row costs one set of numpy calls instead of two.
    """
    keys = np.asarray(config_keys, dtype=np.uint64).reshape(-1, 1)
    seeds = np.asarray(seeds, dtype=np.uint64).reshape(-1, 1)
    half = (n + 1) // 2
    if half not in _PAIRS:
        one, two = _steps(1)[0]
        seed_steps = _steps(half)[0]
        # u1 of the seed stream, u1 of the config stream, then both u2: two contiguous halves
        steps = np.concatenate([seed_steps[:half], [one], seed_steps[half:], [two]]).reshape(1, -1)
        column = np.tile(np.r_[np.zeros(half, bool), True], 2)  # the config stream's columns
        steps.flags.writeable = column.flags.writeable = False
        _PAIRS[half] = steps, column
    steps, column = _PAIRS[half]
    state = np.where(column, _states(keys ^ _CONFIG_SALT, np.zeros_like(seeds)), _states(keys, seeds))
    u = _uniforms(_finalize(state + steps))
    u1, u2 = u[:, : half + 1], u[:, half + 1 :]
    r = np.sqrt(-2.0 * np.log(u1))
    angle = 2 * np.pi * u2
    cos, sin = r * np.cos(angle), r * np.sin(angle)
    return np.concatenate([cos[:, :half], sin[:, :half]], axis=1)[:, :n], cos[:, half]


def config_normals(config_keys: np.ndarray) -> np.ndarray:
    """(len(keys),) standard normals of the config alone (the same for every seed)."""
    keys = np.asarray(config_keys, dtype=np.uint64).reshape(-1)
    return standard_normals(keys ^ _CONFIG_SALT, np.zeros(len(keys), dtype=np.uint64), 2)[:, 0]


def learn_uniforms(config_keys: np.ndarray, z_seed: np.ndarray, corr: float,
                   z_config: np.ndarray | None = None) -> np.ndarray:
    """Uniforms in (0, 1) that decide learning: ``Phi(sqrt(r) z_config + sqrt(1 - r) z_seed)``.

    ``z_seed`` holds one standard normal per row, drawn from the (config, seed) pair;
    ``z_config`` is ``config_normals(config_keys)``, computed here when not given.
    """
    z = np.asarray(z_seed, dtype=float)
    if corr > 0:
        if z_config is None:
            z_config = config_normals(config_keys)
        z = math.sqrt(corr) * z_config + math.sqrt(1.0 - corr) * z
    return ndtr(z)


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(64)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def expected_flip_rate(p: np.ndarray, n_seeds: np.ndarray, corr: float) -> np.ndarray:
    """P(the ``n`` seeds of a config disagree about learning) for learn probability ``p``
    under seed correlation ``corr`` (Gauss-Hermite over the config's normal)."""
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)[:, None]
    n = np.asarray(n_seeds, float)[:, None]
    r = min(max(float(corr), 0.0), 0.999)
    q = ndtr((ndtri(p) - math.sqrt(r) * _NODES[None, :]) / math.sqrt(1.0 - r))  # P(learn | z_config)
    return 1.0 - np.sum(_WEIGHTS * (q**n + (1.0 - q) ** n), axis=1)


def flip_share(config_ids: np.ndarray, learned: np.ndarray) -> tuple[int, int]:
    """(configs whose runs disagree about learning, configs with several runs)."""
    ids, inv, counts = np.unique(np.asarray(config_ids), return_inverse=True, return_counts=True)
    learned = np.asarray(learned, bool)
    n_learn = np.bincount(inv, weights=learned.astype(float), minlength=len(ids))
    rep = counts >= 2
    flips = rep & (n_learn > 0) & (n_learn < counts)
    return int(flips.sum()), int(rep.sum())


def fit_learn_corr(p: np.ndarray, n_seeds: np.ndarray, n_flips: int) -> float:
    """The seed correlation whose expected number of flipping configs equals ``n_flips``.

    ``p`` and ``n_seeds`` describe the replicated configs. The expected rate falls as the
    correlation grows; if even independent seeds flip less often than measured, 0.
    """
    p, n_seeds = np.asarray(p, float), np.asarray(n_seeds, float)
    if len(p) == 0:
        return 0.0
    target = float(n_flips)
    if expected_flip_rate(p, n_seeds, 0.0).sum() <= target:
        return 0.0
    lo, hi = 0.0, 0.999
    if expected_flip_rate(p, n_seeds, hi).sum() >= target:
        return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if expected_flip_rate(p, n_seeds, mid).sum() > target:
            lo = mid
        else:
            hi = mid
    return round(0.5 * (lo + hi), 6)


@dataclass(frozen=True)
class NoiseModel:
    """Calibrated seed-noise parameters (logit scale) and what they rest on."""

    sigma_val: float
    sigma_test: float
    rho: float
    kappa: float
    n_groups: int  # replicated configs (several seeds)
    n_learner_groups: int  # ... that learned under every seed: the calibration set
    n_flip_groups: int  # ... whose seeds disagreed about learning at all
    n_runs: int
    level: float = 0.0  # share of the variance that shifts the whole run (0 in files without it)
    jitter: float = 0.0  # share of the variance independent at every epoch (0 in files without it)
    time: str = "epoch"  # the wobble's clock: "epoch" or "log-epoch" ("epoch" in files without it)
    early: float = 0.0  # extra independent variance at epoch 1, in units of the late variance (0: none)
    decay: float = 0.0  # ... falling by a factor e every ``decay`` epochs (0 when early is 0)
    # the measured covariance over sigma_val ** 2 (time "empirical"), rows of epochs; None: a process
    matrix: tuple[tuple[float, ...], ...] | None = None
    # the noise's size by config (module docstring): "shared" (files without it), or "by-error" / "by-level" with the
    # run-level shift scaled by (v / size_ref) ** -size_level and the wobble by (v / size_ref) ** -size_wobble,
    # v = clip(e * (1 - e), size_lo, size_hi) of a config's final validation error e ("by-level": v = clip(e, ...))
    size: str = "shared"
    size_level: float = 0.0
    size_wobble: float = 0.0
    size_ref: float = 0.25
    size_lo: float = 0.25
    size_hi: float = 0.25
    # time "bank": the replicated learners' residual curves, one row per run ([validation | test] logits, each
    # scaled to one run's variance), grouped by config (bank_sizes runs each, in order), and each config's key
    # (bank_key of its out-of-fold predicted learner curve; None until the fit has predicted them)
    bank: tuple[tuple[float, ...], ...] | None = None
    bank_sizes: tuple[int, ...] | None = None
    bank_keys: tuple[tuple[float, ...], ...] | None = None
    bank_nearest: int = BANK_NEAREST
    # how the bank is searched (BANK_SEARCHES): "predicted" (files without it): keys of out-of-fold predicted
    # curves, searched by a draw's unmapped prediction; "mapped": keys of logged mean curves, by its mapped curve
    bank_search: str = "predicted"
    # config_noise "unexplained": the offset u = F (s(e, z) z) each config adds to every draw after the tail map
    # ([validation | test] logits): F (2 * epochs, k) its shape, scaled to sd 1 at the final validation epoch,
    # s(e, z) its size there, piecewise linear in the config's final validation error e through the knots
    # (config_levels, config_sds), flat beyond them; with config_sds_upper, config_sds size the normals z below 0
    # and config_sds_upper those above (a two-piece normal); without it (files of the symmetric form), one size
    # for both; config_factor None (files without it): no offset
    config_factor: tuple[tuple[float, ...], ...] | None = None
    config_levels: tuple[float, ...] | None = None
    config_sds: tuple[float, ...] | None = None
    config_sds_upper: tuple[float, ...] | None = None

    @property
    def config_noise(self) -> str:
        """``"unexplained"`` where draws add a config's offset (:attr:`config_factor`), else ``"none"``."""
        return "none" if self.config_factor is None else "unexplained"

    def config_offsets(self, config_keys: np.ndarray, final_val_error: np.ndarray) -> np.ndarray:
        """Each config's offset curve (rows of [validation | test] logits) for configs whose final
        validation error (after the tail map) is given: a pure function of the key (uint64) and that
        error; a ``ValueError`` without config noise."""
        factor = self._config_array()
        if factor is None:
            raise ValueError("config offsets: this noise model has no config noise (config_noise 'none')")
        keys = np.asarray(config_keys, dtype=np.uint64).reshape(-1)
        z = standard_normals(keys ^ _CONFIG_NOISE_SALT, np.zeros(len(keys), dtype=np.uint64), factor.shape[1])
        return self.config_curves(z, final_val_error)

    def config_curves(self, z: np.ndarray, final_val_error: np.ndarray) -> np.ndarray:
        """The offset curves of standard normals ``z`` ((n, k)) for configs of the given final errors."""
        factor = self._config_array()
        e = np.asarray(final_val_error, dtype=float).reshape(-1)
        sd = np.interp(e, self.config_levels, self.config_sds)
        if self.config_sds_upper is None:  # one size for both halves (the symmetric form)
            return (z @ factor.T) * sd[:, None]
        upper = np.interp(e, self.config_levels, self.config_sds_upper)
        return (np.where(z < 0, sd[:, None], upper[:, None]) * z) @ factor.T

    def config_variance(self) -> float:
        """The config offsets' mean square at the final validation epoch, averaged over the knots (0 without
        config noise): what the tail map's first guess takes off the runs' spread."""
        if self.config_factor is None:
            return 0.0
        lower = np.square(self.config_sds)
        upper = lower if self.config_sds_upper is None else np.square(self.config_sds_upper)
        return float(np.mean(0.5 * (lower + upper)))

    def _config_array(self) -> np.ndarray | None:
        if self.config_factor is None:
            return None
        cached = self.__dict__.get("_config_cache")
        if cached is None:
            cached = np.asarray(self.config_factor, dtype=float)
            object.__setattr__(self, "_config_cache", cached)
        return cached

    @property
    def bank_by_mapped(self) -> bool:
        """Whether draws search the residual bank with their curve after the tail map (``bank_search="mapped"``)
        rather than with their unmapped prediction; ``False`` without a bank."""
        return self.bank is not None and self.bank_search == "mapped"

    def size_factors(self, final_val_error: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The factors of each config's run-level shift and of its wobble, from its final validation
        error (``None`` when the noise has one size for every config)."""
        if self.size == "shared":
            return None
        r = np.clip(size_variable(self.size, final_val_error), self.size_lo, self.size_hi) / self.size_ref
        return r ** -self.size_level, r ** -self.size_wobble

    def resize(self, noise: np.ndarray, final_val_error: np.ndarray) -> np.ndarray:
        """Noise rows (validation epochs, then as many test epochs) of unit-size configs, scaled to the
        configs whose final validation errors are given (rows unchanged with one size for all)."""
        factors = self.size_factors(final_val_error)
        if factors is None:
            return noise
        level, wobble = factors[0][:, None], factors[1][:, None]
        half = noise.shape[1] // 2
        out = noise * wobble
        for block in (slice(0, half), slice(half, 2 * half)):
            out[:, block] += (level - wobble) * noise[:, block].mean(axis=1, keepdims=True)
        return out

    def with_bank_keys(self, predicted: np.ndarray) -> "NoiseModel":
        """This model with the bank's keys: ``predicted`` holds each banked config's predicted learner curve
        (validation logits, rows in the order of the bank's configs; out of fold, as a draw's config is)."""
        if self.bank is None:
            raise ValueError("bank keys: this noise model has no residual bank (time 'bank')")
        keys = bank_key(predicted)
        if len(keys) != len(self.bank_sizes) or not np.all(np.isfinite(keys)):
            raise ValueError(f"bank keys: expected {len(self.bank_sizes)} finite predicted curves, got {len(keys)}")
        return replace(self, bank_keys=tuple(tuple(float(v) for v in row) for row in np.round(keys, 6)))

    def bank_noise(self, normals: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Noise rows ([validation | test] logits) for curves whose predicted learner curve (validation
        logits) is ``z``: each row the residual curve of a run of one of the :data:`BANK_NEAREST` banked configs
        whose keys (:func:`bank_key`) are nearest ``z``'s, the config and the run picked by the uniforms
        ``Phi(normals[:, 0])`` and ``Phi(normals[:, 1])`` (a pure function of the row's config and seed).
        Every step is row by row, so a row's noise is the same alone or in a batch."""
        arrays = self._bank_arrays()
        if arrays is None:
            raise ValueError("bank noise: this noise model has no residual bank with keys (time 'bank', fitted)")
        bank, starts, sizes, keys = arrays
        key = bank_key(z)
        # one reduction over each (row, banked config) pair's contiguous key columns: the same sums
        # whatever the batch (tested), a fifth of the time of a loop over the columns
        dist = np.add.reduce((key[:, None, :] - keys[None, :, :]) ** 2, axis=2)
        near = np.argsort(dist, axis=1, kind="stable")[:, : self.bank_nearest]
        rows = np.arange(len(key))
        which = np.minimum((ndtr(normals[:, 0]) * near.shape[1]).astype(int), near.shape[1] - 1)
        group = near[rows, which]
        run = np.minimum((ndtr(normals[:, 1]) * sizes[group]).astype(int), sizes[group] - 1)
        return bank[starts[group] + run]

    def _bank_arrays(self):
        if self.bank is None or self.bank_keys is None:
            return None
        cached = self.__dict__.get("_bank_cache")
        if cached is None:
            sizes = np.asarray(self.bank_sizes, dtype=int)
            cached = (np.asarray(self.bank, dtype=float), np.r_[0, np.cumsum(sizes)[:-1]], sizes,
                      np.asarray(self.bank_keys, dtype=float))
            object.__setattr__(self, "_bank_cache", cached)
        return cached

    def to_dict(self) -> dict:
        if self.bank is not None:
            nearest = "predicted curve" if self.bank_search == "predicted" else "logged mean curve to its mapped curve"
            process = (f"residual curves of {len(self.bank)} replicated runs, each draw a run of one of the "
                       f"{self.bank_nearest} configs of nearest {nearest}")
        elif self.matrix is not None:
            process = "measured covariance between epochs"
        else:
            process = "level + AR(1) over epochs" if self.time == "epoch" else "level + AR(1) over log epochs"
        if self.jitter:
            process += " + jitter"
        if self.early:
            process += " + early noise"
        out = {"scale": "logit", "process": process, **asdict(self)}
        if self.time == "epoch" and not self.jitter:  # written as before the log-epoch clock existed
            del out["jitter"], out["time"]
        if not self.early:  # ... and before the early noise
            del out["early"], out["decay"]
        if self.matrix is None:  # ... and before the measured covariance
            del out["matrix"]
        else:
            out["matrix"] = [list(row) for row in self.matrix]
        if self.bank is None:  # ... and before the residual bank
            for k in _BANK_FIELDS:
                del out[k]
        else:
            out["bank"] = [list(row) for row in self.bank]
            out["bank_sizes"] = list(self.bank_sizes)
            out["bank_keys"] = None if self.bank_keys is None else [list(row) for row in self.bank_keys]
            if self.bank_search == "predicted":  # written as before the search by the mapped curve
                del out["bank_search"]
        if self.config_factor is None:  # ... and before the config noise
            for k in _CONFIG_FIELDS:
                del out[k]
        else:
            out["config_factor"] = [list(row) for row in self.config_factor]
            out["config_levels"], out["config_sds"] = list(self.config_levels), list(self.config_sds)
            if self.config_sds_upper is None:  # written as before the two halves
                del out["config_sds_upper"]
            else:
                out["config_sds_upper"] = list(self.config_sds_upper)
        if self.size == "shared":  # ... and before the size by config
            for k in _SIZE_FIELDS:
                del out[k]
        else:
            out["process"] += (", shift and wobble sized by the config's final error" if self.size == "by-error"
                               else ", shift and wobble sized by the level of the config's final error")
        if self.config_factor is not None:
            sizes = self.config_sds + (self.config_sds_upper or ())
            out["process"] += (f"; plus an offset per config for what the models leave unexplained (sd "
                               f"{min(sizes):.3f} to {max(sizes):.3f} by the config's final error"
                               + (", the better and the worse half apart)" if self.config_sds_upper else ")"))
        return out

    def _matrix(self, n_epochs: int) -> np.ndarray:
        m = np.asarray(self.matrix, dtype=float)
        if n_epochs > len(m):
            raise ValueError(f"n_epochs: the measured covariance covers {len(m)} epochs, got {n_epochs}")
        return m[:n_epochs, :n_epochs]

    def correlation(self, n_epochs: int = MAX_EPOCH) -> np.ndarray:
        """The (n_epochs, n_epochs) correlation of the validation noise between epochs."""
        if self.matrix is not None:
            m = self._matrix(n_epochs)
            sd = np.sqrt(np.diag(m))
            return m / np.outer(sd, sd)
        return epoch_correlation(n_epochs, self.level, self.rho, jitter=self.jitter, time=self.time,
                                 early=self.early, decay=self.decay)

    def sd_profile(self, n_epochs: int = MAX_EPOCH) -> np.ndarray:
        """(n_epochs,) sd of each epoch's noise relative to ``sigma``: ones without early noise, else
        :func:`epoch_sd` (root mean square 1, so ``sigma`` stays the sd over all epochs); with the
        measured covariance, the square root of its diagonal."""
        if self.matrix is not None:
            return np.sqrt(np.diag(self._matrix(n_epochs)))
        return epoch_sd(n_epochs, self.early, self.decay)

    def shape(self, n_epochs: int = MAX_EPOCH) -> np.ndarray:
        """The covariance of the validation noise divided by ``sigma_val ** 2``: the correlation
        scaled by :meth:`sd_profile` (the correlation itself without early noise)."""
        if self.matrix is not None:
            return self._matrix(n_epochs)
        if not self.early:
            return self.correlation(n_epochs)
        sd = self.sd_profile(n_epochs)
        return self.correlation(n_epochs) * np.outer(sd, sd)

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseModel":
        fields = ("sigma_val", "sigma_test", "rho", "kappa", "n_groups", "n_learner_groups", "n_flip_groups", "n_runs")
        try:
            values = {k: d[k] for k in fields}
            values["level"] = d.get("level", 0.0)  # surrogates built before the level: pure AR(1)
            values["jitter"] = d.get("jitter", 0.0)  # ... before the jitter and the log-epoch clock
            values["early"] = d.get("early", 0.0)  # ... before the early noise
            values["decay"] = d.get("decay", 0.0)
            time = d.get("time", "epoch")
            matrix = d.get("matrix")  # surrogates built before the measured covariance: none
            size = d.get("size", "shared")  # ... before the size by config: one size
            if size != "shared":
                values.update({k: d[k] for k in _SIZE_FIELDS[1:]})
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"noise parameters lack {exc}") from None
        check_noise_time(time, "noise parameters: time", NOISE_CLOCKS)
        check_noise_time(size, "noise parameters: size", NOISE_SIZES)
        matrix = None if matrix is None else _checked_matrix(matrix)
        bank = _checked_bank(d) if d.get("bank") is not None else {}  # surrogates built before the bank: none
        if bank and size != "shared":
            raise ValueError("noise parameters: a residual bank carries its configs' sizes; size must be 'shared'")
        # surrogates built before the config noise: none
        config = {} if d.get("config_factor") is None else _checked_config(d)
        try:
            out = cls(**{k: (int(v) if k.startswith("n_") else float(v)) for k, v in values.items()}, time=time,
                      matrix=matrix, size=size, **config, **bank)
        except (TypeError, ValueError):
            raise ValueError("noise parameters must be numbers") from None
        lo, hi = SIZE_POWER_BOUNDS
        if not all(math.isfinite(getattr(out, k)) for k in _SIZE_FIELDS[1:]) or not (
                lo <= out.size_level <= hi and lo <= out.size_wobble <= hi and out.size_ref > 0
                and 0 < out.size_lo <= out.size_hi <= _SIZE_TOP.get(size, 0.25)):
            raise ValueError(f"noise parameters: size out of range (size_level and size_wobble in [{lo:g}, {hi:g}], "
                             f"size_ref > 0, 0 < size_lo <= size_hi <= {_SIZE_TOP.get(size, 0.25):g})")
        if not all(math.isfinite(x) for x in (out.sigma_val, out.sigma_test, out.rho, out.kappa, out.level, out.jitter,
                                               out.early, out.decay)):
            raise ValueError("noise parameters must be finite")
        if (out.sigma_val < 0 or out.sigma_test < 0 or not -1 < out.rho < 1 or not -1 <= out.kappa <= 1
                or not 0 <= out.level < 1 or not 0 <= out.jitter < 1 or out.early < 0
                or (out.early > 0 and out.decay <= 0)):
            raise ValueError("noise parameters out of range (sigma >= 0, |rho| < 1, |kappa| <= 1, 0 <= level < 1, "
                             "0 <= jitter < 1, early >= 0, decay > 0 with early noise)")
        return out

    def mixing_matrix(self, n_epochs: int = MAX_EPOCH) -> np.ndarray:
        """M with ``eps = z @ M`` for z of shape (n, 2 * n_epochs): [val noise | test noise]."""
        chol = np.linalg.cholesky(self.correlation(n_epochs))  # eta = z @ chol.T has the calibrated correlation
        k2 = math.sqrt(max(0.0, 1.0 - self.kappa**2))
        m = np.zeros((2 * n_epochs, 2 * n_epochs))
        m[:n_epochs, :n_epochs] = chol.T * self.sigma_val
        m[:n_epochs, n_epochs:] = chol.T * (self.kappa * self.sigma_test)
        m[n_epochs:, n_epochs:] = chol.T * (k2 * self.sigma_test)
        if self.early or self.matrix is not None:  # column j of each block is epoch j's noise: scale it by its sd
            m *= np.tile(self.sd_profile(n_epochs), 2)[None, :]
        return m


def _checked_config(d: dict) -> dict[str, Any]:
    try:
        f = np.asarray(d["config_factor"], dtype=float)
        levels = np.asarray(d["config_levels"], dtype=float)
        sds = np.asarray(d["config_sds"], dtype=float)
        upper = None if d.get("config_sds_upper") is None else np.asarray(d["config_sds_upper"], dtype=float)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"noise parameters: config noise needs config_factor, config_levels and config_sds "
                         f"as numbers ({exc})") from None
    if f.ndim != 2 or f.shape[0] != 2 * MAX_EPOCH or not 1 <= f.shape[1] <= 2 * MAX_EPOCH or not np.all(np.isfinite(f)):
        raise ValueError(f"noise parameters: config_factor must be a finite {2 * MAX_EPOCH} x k matrix "
                         f"(1 <= k <= {2 * MAX_EPOCH}), got shape {f.shape}")
    if (levels.ndim != 1 or levels.shape != sds.shape or len(levels) < 1 or not np.all(np.isfinite(levels))
            or not np.all(np.isfinite(sds)) or np.any(np.diff(levels) <= 0) or np.any(sds < 0)
            or np.any((levels <= 0) | (levels >= 1))):
        raise ValueError("noise parameters: config_levels must be increasing errors in (0, 1) and config_sds as "
                         "many sds >= 0")
    if upper is not None and (upper.shape != sds.shape or not np.all(np.isfinite(upper)) or np.any(upper < 0)):
        raise ValueError("noise parameters: config_sds_upper must be as many finite sds >= 0 as config_levels")
    return {"config_factor": tuple(tuple(float(v) for v in row) for row in f),
            "config_levels": tuple(float(v) for v in levels), "config_sds": tuple(float(v) for v in sds),
            "config_sds_upper": None if upper is None else tuple(float(v) for v in upper)}


def check_config_noise(value, name: str = "config_noise") -> str:
    """``value`` if it is one of :data:`CONFIG_NOISES`, else a one-line ``ValueError``."""
    if value not in CONFIG_NOISES:
        raise ValueError(f"{name}: must be one of {', '.join(CONFIG_NOISES)}, got {value!r}")
    return value


def fit_config_factor(pred: np.ndarray, truth: np.ndarray, res: "Residuals", rank: int = CONFIG_RANK,
                      bins: int = CONFIG_BINS, scale: float = CONFIG_SCALE
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """``(F, levels, lower, upper, facts)`` of the config noise (see :class:`NoiseModel`).

    ``pred`` are out-of-fold predicted logits of runs that learned, ``truth`` their measured logits
    (both (n, outputs): [validation | test]), ``res`` the replicated learners' residuals. Per output,
    the best monotone function of the prediction (isotonic regression) is what the prediction tells;
    what is left, less the seed noise (the replicated runs' pooled covariance around their configs'
    means), is what a config adds that its hyperparameters do not tell. Its shape ``F`` is the
    leading ``rank`` eigen-pairs of that covariance, scaled to sd 1 at the final validation epoch.
    Its size there is measured in ``bins`` bins of equal count by the final error the monotone
    function gives, apart for each half: per bin, the distance from the residuals' median to their
    5 % quantile (``lower``: configs better than predicted) and to their 95 % quantile (``upper``), in
    sds of a normal (:data:`CONFIG_TAIL`), less the seed noise of the bin's replicated configs in
    quadrature (never below 0), times ``scale``; ``levels`` are the bins' median errors. The quadrature
    is exact for a symmetric normal; for residuals as skewed as flowers17's it leaves the two halves
    nearer each other than they are (the sum's median moves toward its long half), which measured
    better: a study of the form that undid this (each half solved so that it, plus the seed noise,
    gives the residuals' two distances) put the GP methods back above the real runs
    (docs/surrogates.md). ``facts``: ``unexplained_sd`` and ``seed_sd`` of the final validation logit
    over all runs, ``held`` (the share of the positive eigenvalues' sum the factors hold)."""
    from sklearn.isotonic import IsotonicRegression

    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    if pred.shape != truth.shape or pred.ndim != 2 or len(pred) < 10 * bins:
        raise ValueError(f"config noise: needs at least {10 * bins} runs of matching predicted and measured curves, "
                         f"got {pred.shape} and {truth.shape}")
    if isinstance(scale, bool) or not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"config noise: scale must be a number > 0, got {scale!r}")
    final = truth.shape[1] // 2 - 1
    left, told = np.empty_like(truth), np.empty(len(truth))
    for j in range(truth.shape[1]):
        fitted = IsotonicRegression(out_of_bounds="clip").fit(pred[:, j], truth[:, j]).predict(pred[:, j])
        left[:, j] = truth[:, j] - fitted
        if j == final:
            told = sigmoid(fitted)
    seed_rows = np.hstack([res.val, res.test])
    if seed_rows.shape[1] != truth.shape[1]:
        raise ValueError(f"config noise: the residuals have {seed_rows.shape[1]} outputs, the curves {truth.shape[1]}")
    unexplained = np.cov(left, rowvar=False) - seed_rows.T @ seed_rows / res.dof
    w, v = np.linalg.eigh(unexplained)
    w, v = w[::-1], v[:, ::-1]
    k = int(min(rank, np.count_nonzero(w > 0)))
    if k == 0 or unexplained[final, final] <= 0:
        raise ValueError("config noise: the runs' residuals are no larger than the seed noise (nothing unexplained)")
    factor = v[:, :k] * np.sqrt(w[:k])[None, :]
    factor = factor / np.sqrt((factor[final] ** 2).sum())
    # the size at the final epoch by the told final error, bin by bin (quantile edges; a replicated config
    # belongs to the bin that holds its mean final error), each half from its own tail quantile
    edges = np.quantile(told, np.linspace(0.0, 1.0, bins + 1))
    which = np.clip(np.searchsorted(edges, told, side="right") - 1, 0, bins - 1)
    groups = np.repeat(np.arange(len(res.sizes)), res.sizes)
    group_bin = np.clip(np.searchsorted(edges, sigmoid(res.val_mean[:, -1]), side="right") - 1, 0, bins - 1)
    seed_all = float((res.val[:, -1] ** 2).sum() / res.dof)
    tail = 0.5 * math.erfc(CONFIG_TAIL / math.sqrt(2.0))  # the normal's share below -CONFIG_TAIL: 0.05
    levels, lower, upper = [], [], []
    for b in range(bins):
        mine = which == b
        if not mine.any():  # tied edges (a flat stretch of the monotone fit): an empty bin
            continue
        level = float(np.median(told[mine]))
        if levels and level <= levels[-1]:  # a tied level: the first bin of it is its knot
            continue
        rows = group_bin[groups] == b
        dof = int((res.sizes[group_bin == b] - 1).sum())
        seed_var = float((res.val[rows, -1] ** 2).sum() / dof) if dof >= 10 else seed_all
        lo, mid, hi = np.quantile(left[mine, final], [tail, 0.5, 1.0 - tail])
        levels.append(level)
        lower.append(scale * math.sqrt(max(((mid - lo) / CONFIG_TAIL) ** 2 - seed_var, 0.0)))
        upper.append(scale * math.sqrt(max(((hi - mid) / CONFIG_TAIL) ** 2 - seed_var, 0.0)))
    levels, lower, upper = np.asarray(levels), np.asarray(lower), np.asarray(upper)
    if not np.any(lower > 0) and not np.any(upper > 0):
        raise ValueError("config noise: in every bin of final error the runs' residuals are no larger than the seed "
                         "noise (nothing unexplained)")
    facts = {"unexplained_sd": math.sqrt(max(float(unexplained[final, final]), 0.0)), "seed_sd": math.sqrt(seed_all),
             "held": float(w[:k].sum() / w[w > 0].sum())}
    return factor, levels, lower, upper, facts


def _checked_bank(d: dict) -> dict[str, Any]:
    """The residual bank's fields of a noise dict, checked (one-line ``ValueError`` naming what is wrong)."""
    try:
        bank = np.asarray(d["bank"], dtype=float)
        sizes = np.asarray(d["bank_sizes"], dtype=float)
        keys = None if d.get("bank_keys") is None else np.asarray(d["bank_keys"], dtype=float)
        nearest = d.get("bank_nearest", BANK_NEAREST)
        search = d.get("bank_search", "predicted")  # surrogates built before the search by the mapped curve
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"noise parameters: the residual bank is malformed ({exc})") from None
    if (bank.ndim != 2 or bank.shape[1] != 2 * MAX_EPOCH or not np.all(np.isfinite(bank)) or sizes.ndim != 1
            or len(sizes) < 2 or np.any(sizes < 2) or np.any(sizes != np.round(sizes)) or sizes.sum() != len(bank)):
        raise ValueError(f"noise parameters: the residual bank must hold runs x {2 * MAX_EPOCH} finite numbers in "
                         "groups of at least 2 runs (bank_sizes summing to its rows), and at least 2 groups")
    width = MAX_EPOCH - BANK_FROM_EPOCH + 2
    if keys is not None and (keys.shape != (len(sizes), width) or not np.all(np.isfinite(keys))):
        raise ValueError(f"noise parameters: bank_keys must hold one row of {width} finite numbers per bank group")
    if isinstance(nearest, bool) or not isinstance(nearest, int) or not 1 <= nearest <= len(sizes):
        raise ValueError(f"noise parameters: bank_nearest must be an int in 1..{len(sizes)}, got {nearest!r}")
    check_noise_time(search, "noise parameters: bank_search", BANK_SEARCHES)
    return {"bank": tuple(tuple(float(v) for v in row) for row in bank),
            "bank_sizes": tuple(int(v) for v in sizes),
            "bank_keys": None if keys is None else tuple(tuple(float(v) for v in row) for row in keys),
            "bank_nearest": nearest, "bank_search": search}


def _checked_matrix(matrix) -> tuple[tuple[float, ...], ...]:
    """A measured covariance: square, finite, symmetric and positive definite (``ValueError`` else)."""
    try:
        m = np.array(matrix, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("noise parameters: matrix must be a square matrix of numbers") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not 2 <= len(m) <= MAX_EPOCH or not np.all(np.isfinite(m)):
        raise ValueError(f"noise parameters: matrix must be a finite square matrix of 2..{MAX_EPOCH} epochs")
    if not np.allclose(m, m.T, rtol=0.0, atol=1e-12 * max(1.0, float(np.abs(m).max()))):
        raise ValueError("noise parameters: matrix must be symmetric")
    try:
        np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        raise ValueError("noise parameters: matrix must be positive definite") from None
    return tuple(tuple(float(v) for v in row) for row in m)


def epoch_correlation(n_epochs: int, level: float, rho: float, *, jitter: float = 0.0, time: str = "epoch",
                      early: float = 0.0, decay: float = 0.0) -> np.ndarray:
    """(n_epochs, n_epochs) correlation ``level + (1 - level) * rho ** |i - j|`` between epochs
    ``i`` and ``j``; with ``time="log-epoch"`` the lag is ``|log i - log j|`` (epochs from 1),
    and a ``jitter`` share of the variance is independent at every epoch:
    ``jitter * [i == j] + (1 - jitter) * (level + (1 - level) * rho ** lag)``.

    With ``early > 0`` the epochs' variances differ: that covariance (variance 1 at every epoch)
    plus an independent variance ``early * exp(-(i - 1) / decay)`` at epoch ``i``, returned as its
    correlation (the sd profile is :func:`epoch_sd`)."""
    idx = np.arange(n_epochs)
    if time == "epoch" and not jitter and not early:  # the process of every surrogate built before the jitter
        return level + (1.0 - level) * float(rho) ** np.abs(idx[:, None] - idx[None, :])
    check_noise_time(time, "time", NOISE_CLOCKS)
    t = idx.astype(float) if time == "epoch" else np.log(idx + 1.0)
    wobble = level + (1.0 - level) * float(rho) ** np.abs(t[:, None] - t[None, :])
    corr = jitter * np.eye(n_epochs) + (1.0 - jitter) * wobble
    if not early:
        return corr
    corr[np.diag_indices(n_epochs)] += _early_variance(n_epochs, early, decay)
    sd = np.sqrt(np.diag(corr))
    return corr / np.outer(sd, sd)


def _early_variance(n_epochs: int, early: float, decay: float) -> np.ndarray:
    if early and not decay > 0:
        raise ValueError(f"decay: must be > 0 with early noise, got {decay!r}")
    return early * np.exp(-np.arange(n_epochs) / decay) if early else np.zeros(n_epochs)


def epoch_sd(n_epochs: int, early: float = 0.0, decay: float = 0.0) -> np.ndarray:
    """(n_epochs,) sd of the seed noise at each epoch relative to its root mean square over the
    epochs: ``sqrt(v_i / mean(v))`` with ``v_i = 1 + early * exp(-(i - 1) / decay)`` (ones without
    early noise)."""
    v = 1.0 + _early_variance(n_epochs, early, decay)
    return np.sqrt(v / v.mean())


def _correlation_loglik(corr: np.ndarray, scatter: np.ndarray, dof: int) -> float:
    """Gaussian log likelihood (up to a constant) of residuals with scatter ``scatter`` under
    correlation ``corr``, the sd profiled out."""
    p = scatter.shape[0]
    chol = np.linalg.cholesky(corr)
    logdet = 2.0 * float(np.log(np.diag(chol)).sum())
    inv_chol = np.linalg.solve(chol, np.eye(p))
    quad = float(np.sum((inv_chol @ scatter) * inv_chol))  # tr(R^-1 S)
    return -0.5 * (dof * p * math.log(max(quad / (dof * p), 1e-300)) + dof * logdet)


def fit_correlation(scatter: np.ndarray, dof: int, step: float = CORR_STEP) -> tuple[float, float]:
    """``(level, rho)`` maximising the Gaussian likelihood of residuals with pooled scatter
    matrix ``scatter`` (sum of outer products, ``dof`` degrees of freedom), the sd profiled out.

    A grid over ``0 <= level <= 0.95`` and ``0 <= rho <= 0.98``; ties go to the smaller
    values (the grid is scanned in increasing order and only a strictly better point wins).
    """
    scatter = np.asarray(scatter, float)
    p = scatter.shape[0]
    best, out = -math.inf, (0.0, 0.0)
    levels = np.round(np.arange(0.0, 0.95 + step / 2, step), 6)
    rhos = np.round(np.arange(0.0, 0.98 + step / 2, step), 6)
    for level in levels:
        for rho in rhos:
            ll = _correlation_loglik(epoch_correlation(p, level, rho), scatter, dof)
            if ll > best + 1e-9:
                best, out = ll, (float(level), float(rho))
    return out


def fit_log_time_correlation(scatter: np.ndarray, dof: int, step: float = CORR_STEP) -> tuple[float, float, float]:
    """``(level, rho, jitter)`` of the log-epoch process (:func:`epoch_correlation` with
    ``time="log-epoch"``) maximising the likelihood of :func:`fit_correlation`: a grid of step
    0.05 over ``0 <= level <= 0.95``, ``0 <= rho <= 0.98`` and ``0 <= jitter <= 0.9``, then a grid
    of ``step`` within 0.05 of its best point. Ties go to the smaller values (scanned in
    increasing order, only a strictly better point wins)."""
    scatter = np.asarray(scatter, float)
    p = scatter.shape[0]

    def search(levels, rhos, jitters):
        best, out = -math.inf, (0.0, 0.0, 0.0)
        for jitter in jitters:
            for level in levels:
                for rho in rhos:
                    try:
                        ll = _correlation_loglik(epoch_correlation(p, level, rho, jitter=jitter, time="log-epoch"),
                                                 scatter, dof)
                    except np.linalg.LinAlgError:  # rho near 1 without jitter: late epochs almost one value
                        continue
                    if ll > best + 1e-9:
                        best, out = ll, (float(level), float(rho), float(jitter))
        return out

    def grid(lo, hi, by):
        return np.round(np.arange(lo, hi + by / 2, by), 6)

    level, rho, jitter = search(grid(0.0, 0.95, 0.05), grid(0.0, 0.98, 0.05), grid(0.0, 0.9, 0.05))
    return search(grid(max(0.0, level - 0.05), min(0.95, level + 0.05), step),
                  grid(max(0.0, rho - 0.05), min(0.98, rho + 0.05), step),
                  grid(max(0.0, jitter - 0.05), min(0.9, jitter + 0.05), step))


EARLY_BOUNDS = ((0.0, 0.95), (0.0, 0.98), (0.0, 0.9), (0.0, 20.0), (0.1, 25.0))
"""The ranges :func:`fit_early_noise` searches: level, rho, jitter, early, decay (epochs)."""


def fit_early_noise(scatter: np.ndarray, dof: int, *, time: str = "log-epoch",
                    start: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[float, float, float, float, float]:
    """``(level, rho, jitter, early, decay)`` of the process of :func:`epoch_correlation` on clock
    ``time`` with early noise, maximising the likelihood of :func:`fit_correlation` (the covariance
    ``sigma**2 * shape``, one overall scale profiled out, so the epochs' sds may differ).

    ``start`` is the fitted ``(level, rho, jitter)`` of the clock without early noise. The search:
    early in {0.25, 0.5, 1, 2, 4} by decay in {0.5, 1, 2, 4} epochs at ``start``, then a bounded
    Nelder-Mead over all five (:data:`EARLY_BOUNDS`) from the two best grid points, rounded to
    0.001. Deterministic for given residuals. Where no early noise beats ``start``, early 0."""
    from scipy.optimize import minimize

    scatter = np.asarray(scatter, float)
    p = scatter.shape[0]
    check_noise_time(time, "time", NOISE_CLOCKS)

    def loss(x) -> float:
        level, rho, jitter, early, decay = (float(v) for v in x)
        try:
            corr = epoch_correlation(p, level, rho, jitter=jitter, time=time, early=early, decay=decay)
            sd = epoch_sd(p, early, decay)
            return -_correlation_loglik(corr * np.outer(sd, sd), scatter, dof)
        except (np.linalg.LinAlgError, ValueError):
            return math.inf

    lo, hi = np.array(EARLY_BOUNDS).T
    base = np.array([*start, 0.0, 1.0])
    grid = sorted((loss([*start, e, d]), e, d) for e in (0.25, 0.5, 1.0, 2.0, 4.0) for d in (0.5, 1.0, 2.0, 4.0))
    best = None
    for _, e, d in grid[:2]:
        x0 = np.clip(np.array([*start, e, d]), lo, hi)
        step = 0.1 * (hi - lo)
        simplex = np.vstack([x0] + [x0 + np.where(np.arange(5) == i, np.where(x0 + step <= hi, step, -step), 0.0)
                                    for i in range(5)])
        r = minimize(loss, x0, method="Nelder-Mead", bounds=EARLY_BOUNDS,
                     options={"initial_simplex": simplex, "xatol": 1e-5, "fatol": 1e-7, "maxiter": 5000, "maxfev": 5000})
        if best is None or r.fun < best.fun:
            best = r
    x = np.clip(np.round(best.x, 3), lo, hi)
    if x[3] <= 0 or not loss(x) < loss(base):
        return (*(float(v) for v in start), 0.0, 0.0)
    return tuple(float(v) for v in x)  # type: ignore[return-value]


@dataclass(frozen=True)
class Residuals:
    """Logit residuals of replicated learners around their config's mean: what the noise is fitted on."""

    val: np.ndarray  # (runs, epochs) validation residuals, rows grouped by config
    test: np.ndarray  # (runs, epochs) test residuals
    dof: int  # sum over configs of (runs - 1)
    n_groups: int  # replicated configs (several seeds)
    n_learner_groups: int  # ... that learned under every seed
    n_flip_groups: int  # ... whose seeds disagreed about learning at all
    n_runs: int  # runs of the learner groups
    sizes: np.ndarray | None = None  # (learner groups,) runs of each, in the order of the rows
    val_mean: np.ndarray | None = None  # (learner groups, epochs) each group's mean validation logit curve
    first_rows: np.ndarray | None = None  # (learner groups,) the input row of each group's first run

    @property
    def scatter(self) -> np.ndarray:
        """Pooled scatter matrix of the validation residuals (epochs x epochs)."""
        return self.val.T @ self.val

    def final_spread(self, size: str = "by-error") -> np.ndarray:
        """``v`` of each learner group's final validation error ``e`` (its mean curve's): ``e * (1 - e)``,
        or ``e`` for ``size="by-level"`` (:func:`size_variable`)."""
        return size_variable(size, sigmoid(self.val_mean[:, -1]))


def fit_noise_size(res: Residuals, size: str = "by-error") -> tuple[float, float, float, float, float, float]:
    """``(size_level, size_wobble, size_ref, size_lo, size_hi, gain)`` of the noise's size by config
    (module docstring) for the replicated learners ``res``.

    Config ``g``'s residual rows ``r`` are rescaled to ``T_g r`` with ``T_g = a_g P + b_g (I - P)``,
    ``P`` the projection on the run-level shift (the mean over the epochs), ``a_g = v_g ** level``
    and ``b_g = v_g ** wobble``; the two powers maximise the Gaussian likelihood of the validation
    residuals, ``-dof / 2 * log det(S) + sum_g dof_g * log det(T_g)`` with ``S`` the pooled
    covariance of the rescaled residuals (profiled out), by Nelder-Mead from the best point of a grid
    over :data:`SIZE_POWER_BOUNDS` (rounded to 3 decimals). Also returns ``size_ref`` (the groups'
    geometric mean ``v``, weighted by their degrees of freedom), the range of ``v``, and how much
    the log likelihood rises over one size for all (both powers 0)."""
    from scipy.optimize import minimize

    v = res.final_spread(size)
    dof_g = res.sizes - 1
    ref = float(np.exp(dof_g @ np.log(v) / res.dof))
    logr = np.log(v / ref)
    n_ep = res.val.shape[1]
    proj = np.full((n_ep, n_ep), 1.0 / n_ep)
    rest = np.eye(n_ep) - proj
    starts = np.r_[0, np.cumsum(res.sizes)[:-1]]
    scatters = np.stack([res.val[a:a + n].T @ res.val[a:a + n] for a, n in zip(starts, res.sizes)])
    shift = proj @ scatters @ proj  # the blocks of T S T^T: a^2 shift + a b cross + b^2 wobble
    cross = proj @ scatters @ rest
    cross = cross + cross.transpose(0, 2, 1)
    wobble = rest @ scatters @ rest

    def nll(powers) -> float:  # minus the profile log likelihood, up to a constant
        la, lb = float(powers[0]) * logr, float(powers[1]) * logr
        cov = (np.tensordot(np.exp(2 * la), shift, axes=1) + np.tensordot(np.exp(la + lb), cross, axes=1)
               + np.tensordot(np.exp(2 * lb), wobble, axes=1)) / res.dof
        sign, logdet = np.linalg.slogdet(cov)
        return math.inf if sign <= 0 else 0.5 * res.dof * logdet - float(dof_g @ (la + (n_ep - 1) * lb))

    lo, hi = SIZE_POWER_BOUNDS
    grid = np.linspace(lo, hi, 13)
    start = min(((a, b) for a in grid for b in grid), key=nll)
    fit = minimize(nll, np.array(start), method="Nelder-Mead", bounds=[SIZE_POWER_BOUNDS] * 2,
                   options={"xatol": 1e-5, "fatol": 1e-8, "maxiter": 2000})
    powers = np.clip(np.round(fit.x, 3), lo, hi)
    if not nll(powers) <= nll((0.0, 0.0)):  # pragma: no cover - the grid holds (0, 0)
        powers = np.zeros(2)
    return (float(powers[0]), float(powers[1]), ref, float(v.min()), float(v.max()),
            float(nll((0.0, 0.0)) - nll(powers)))


def replicated_residuals(
    config_ids: np.ndarray, val: np.ndarray, test: np.ndarray, chance: float, n_val: int, n_test: int
) -> Residuals:
    """Residuals of each seed's logit curve around its config's mean, for the configs run with
    several seeds that learned under all of them (``ValueError`` if fewer than two)."""
    config_ids = np.asarray(config_ids)
    is_learner = learns(val, chance)
    ids, inverse, counts = np.unique(config_ids, return_inverse=True, return_counts=True)
    zv, zt, means, sizes, firsts, dof = [], [], [], [], [], 0
    n_groups = n_learner = n_flip = n_runs = 0
    for g in np.flatnonzero(counts >= 2):
        rows = np.flatnonzero(inverse == g)
        n_groups += 1
        lr = is_learner[rows]
        if lr.any() and not lr.all():
            n_flip += 1
        if not lr.all():
            continue
        n_learner += 1
        n_runs += len(rows)
        lv = logit(np.clip(val[rows], 0.5 / n_val, 1 - 0.5 / n_val))
        lt = logit(np.clip(test[rows], 0.5 / n_test, 1 - 0.5 / n_test))
        means.append(lv.mean(axis=0))
        sizes.append(len(rows))
        firsts.append(rows[0])
        zv.append(lv - means[-1])
        zt.append(lt - lt.mean(axis=0))
        dof += len(rows) - 1
    if n_learner < 2:
        raise ValueError(
            f"seed noise: needs at least 2 configs run with several seeds that learn under all of them; "
            f"found {n_learner} (of {n_groups} replicated configs)"
        )
    return Residuals(np.vstack(zv), np.vstack(zt), dof, n_groups, n_learner, n_flip, n_runs,
                     np.asarray(sizes), np.vstack(means), np.asarray(firsts))


def unit_residuals(res: Residuals, size: str = "shared") -> tuple[Residuals, dict[str, Any]]:
    """``res`` rescaled to configs of unit size (each config's residuals divided by the factors of
    :func:`fit_noise_size` for ``size``), and the size fields of the :class:`NoiseModel` (none for
    ``"shared"``, which returns ``res`` itself)."""
    check_noise_time(size, "size", NOISE_SIZES)
    if size == "shared":
        return res, {}
    sized = dict(zip(_SIZE_FIELDS, (size, *fit_noise_size(res, size)[:5])))
    inverse = NoiseModel(0, 0, 0, 0, 0, 0, 0, 0, **{**sized, "size_level": -sized["size_level"],
                                                    "size_wobble": -sized["size_wobble"]})
    n_ep = res.val.shape[1]
    unit = inverse.resize(np.hstack([res.val, res.test]), np.repeat(sigmoid(res.val_mean[:, -1]), res.sizes))
    return replace(res, val=unit[:, :n_ep], test=unit[:, n_ep:]), sized


SPREAD_PARTS = ("wobble", "all")
_SPREAD_NODES = 40  # Gauss-Hermite nodes over each config's variance factor


def config_spread_loglik(res: Residuals, spread: float, part: str = "wobble") -> float:
    """Gaussian log likelihood of the validation residuals ``res`` (up to a constant; covariance
    ``S``, their pooled one) when each config's noise ``part`` (``"wobble"``: the residual around the
    run's mean over the epochs; ``"all"``: the whole residual) has a variance factor of its own,
    ``W = exp(spread * z - spread ** 2 / 2)`` with ``z`` a standard normal of the config (a lognormal
    factor of mean 1, so that ``S`` keeps its meaning), integrated over ``z`` (Gauss-Hermite).
    ``spread = 0`` is one size for every config."""
    if part not in SPREAD_PARTS:
        raise ValueError(f"part: must be one of {', '.join(SPREAD_PARTS)}, got {part!r}")
    if not (math.isfinite(spread) and spread >= 0):
        raise ValueError(f"spread: must be a finite number >= 0, got {spread!r}")
    n_ep = res.val.shape[1]
    cov = res.scatter / res.dof
    starts = np.r_[0, np.cumsum(res.sizes)[:-1]]
    scatters = np.stack([res.val[a:a + n].T @ res.val[a:a + n] for a, n in zip(starts, res.sizes)])
    dof_g = res.sizes - 1
    proj = np.full((n_ep, n_ep), 1.0 / n_ep)
    nodes, weights = np.polynomial.hermite_e.hermegauss(_SPREAD_NODES if spread > 0 else 1)
    terms = []
    for z in nodes:
        root = math.exp((spread * z - spread**2 / 2) / 2)
        t = proj + root * (np.eye(n_ep) - proj) if part == "wobble" else root * np.eye(n_ep)
        c = t @ cov @ t
        _, logdet = np.linalg.slogdet(c)
        terms.append(-0.5 * np.einsum("ij,gji->g", np.linalg.inv(c), scatters) - 0.5 * dof_g * logdet)
    a = np.array(terms) + np.log(weights / weights.sum())[:, None]
    top = a.max(axis=0)
    return float(np.sum(top + np.log(np.exp(a - top).sum(axis=0))))


def fit_config_spread(res: Residuals, part: str = "wobble") -> tuple[float, float]:
    """``(spread, gain)``: the spread of :func:`config_spread_loglik` that maximises it (bounded search
    over [0, 3], rounded to 3 decimals) and how much the log likelihood rises over one size for every config."""
    from scipy.optimize import minimize_scalar

    base = config_spread_loglik(res, 0.0, part)
    fit = minimize_scalar(lambda t: -config_spread_loglik(res, t, part), bounds=(0.0, 3.0), method="bounded",
                          options={"xatol": 1e-4})
    spread = round(float(fit.x), 3)
    gain = config_spread_loglik(res, spread, part) - base
    return (spread, gain) if gain > 0 else (0.0, 0.0)


def calibrate(
    config_ids: np.ndarray, val: np.ndarray, test: np.ndarray, chance: float, n_val: int, n_test: int,
    *, time: str = "epoch", size: str = "shared",
) -> NoiseModel:
    """Fit the noise model on curve runs (one per (config, seed)); see the module docstring.

    ``time="log-epoch"`` fits the log-epoch process with jitter (:func:`fit_log_time_correlation`)
    instead of the level + AR(1) over epochs; ``time="log-epoch-early"`` that process plus early
    noise (:func:`fit_early_noise`): the epochs' sds then differ, ``sigma`` being their root mean
    square (the validation and the test noise share the profile); ``time="empirical"`` takes the
    residuals' pooled covariance itself (``matrix``: the runs' sds and correlations by epoch);
    ``time="bank"`` keeps, besides that covariance, the residual curves themselves (``bank``; the fit adds
    each banked config's key with :meth:`NoiseModel.with_bank_keys`), which the draws take instead of
    Gaussian noise (:meth:`NoiseModel.bank_noise`; size ``"shared"`` only: the bank carries its sizes);
    ``time="bank-logged"`` the same bank keyed here by each banked config's logged mean curve, searched by a
    draw's mapped curve (``bank_search="mapped"``).
    ``size="by-error"`` (or ``"by-level"``) lets the noise's size follow the config's final error (:func:`fit_noise_size`);
    the process is then fitted on the residuals divided by their config's factor. ``time="auto"`` picks one of
    these for the data (:func:`auto_time`); the model's fields say which (``bank``, ``matrix``)."""
    check_noise(time, size, ("time", "size"))
    res, sized = unit_residuals(replicated_residuals(config_ids, val, test, chance, n_val, n_test), size)
    if time == "auto":
        time = auto_time(res, size)
    zv_all, zt_all, dof = res.val, res.test, res.dof
    n_ep = zv_all.shape[1]
    sigma_val = math.sqrt(float(np.sum(zv_all**2)) / (dof * n_ep))
    sigma_test = math.sqrt(float(np.sum(zt_all**2)) / (dof * n_ep))
    early = decay = 0.0
    matrix = None
    bank: dict[str, Any] = {}
    if time in ("bank", "bank-logged"):
        # each run's residual curve around its config's mean, scaled to one run's variance (n / (n - 1))
        scale = np.sqrt(np.repeat(res.sizes / (res.sizes - 1.0), res.sizes))[:, None]
        runs = np.round(np.hstack([zv_all, zt_all]) * scale, 6)
        bank = {"bank": tuple(tuple(float(v) for v in row) for row in runs),
                "bank_sizes": tuple(int(n) for n in res.sizes)}
        if time == "bank-logged":  # keyed by the logged mean curves the residuals are taken around
            keys = np.round(bank_key(res.val_mean), 6)
            bank.update(bank_keys=tuple(tuple(float(v) for v in row) for row in keys), bank_search="mapped")
    if time in ("empirical", "bank", "bank-logged"):  # no process: the pooled covariance itself, over sigma_val ** 2
        time, level, rho, jitter = "epoch", 0.0, 0.0, 0.0
        matrix = _checked_matrix(_pooled_matrix(res, sigma_val))
    elif time == "epoch":
        (level, rho), jitter = fit_correlation(res.scatter, dof), 0.0
    else:
        level, rho, jitter = fit_log_time_correlation(res.scatter, dof)
    if time == "log-epoch-early":
        time = "log-epoch"
        level, rho, jitter, early, decay = fit_early_noise(res.scatter, dof, time=time, start=(level, rho, jitter))
    kappa = float(np.sum(zv_all * zt_all) / max(math.sqrt(np.sum(zv_all**2) * np.sum(zt_all**2)), 1e-300))
    return NoiseModel(
        sigma_val=sigma_val,
        sigma_test=sigma_test,
        rho=rho,
        level=level,
        jitter=jitter,
        time=time,
        early=early,
        decay=decay,
        kappa=float(np.clip(kappa, -1.0, 1.0)),
        matrix=matrix,
        n_groups=res.n_groups,
        n_learner_groups=res.n_learner_groups,
        n_flip_groups=res.n_flip_groups,
        n_runs=res.n_runs,
        **sized,
        **bank,
    )


def correlation_loglik(corr: np.ndarray, residuals: Residuals) -> float:
    """The Gaussian log likelihood (up to a constant, the sd profiled out) that the calibration
    maximises, of ``residuals`` under the validation correlation ``corr``."""
    return _correlation_loglik(corr, residuals.scatter, residuals.dof)


def replicated_learning(config_ids: np.ndarray, p: np.ndarray, learned: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per replicated config (several runs): its mean P(learns) and number of runs, and how
    many replicated configs flipped (their runs disagree about learning)."""
    ids, inv, counts = np.unique(np.asarray(config_ids), return_inverse=True, return_counts=True)
    mean_p = np.bincount(inv, weights=np.asarray(p, float), minlength=len(ids)) / counts
    rep = counts >= 2
    n_flips, _ = flip_share(config_ids, learned)
    return mean_p[rep], counts[rep], n_flips
