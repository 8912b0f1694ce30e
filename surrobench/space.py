"""The joint NAS + HPO search space of the Bag-of-Baselines CNN (13 hyperparameters).

A config is a plain dict holding exactly its active hyperparameters. Everything here
is pure Python/numpy so that optimizers, surrogates and the benchmark share it
without torch.

>>> cfg = sample(seed=0)
>>> validate(cfg) == cfg
True
>>> encode([cfg]).shape
(1, 13)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "Hyperparameter",
    "HYPERPARAMETERS",
    "NAMES",
    "MIN_EPOCH",
    "MAX_EPOCH",
    "REFERENCE_POINT",
    "INACTIVE",
    "sample",
    "validate",
    "validate_epoch",
    "is_active",
    "active_names",
    "default_config",
    "config_id",
    "canonical_json",
    "encode",
    "decode",
    "as_rng",
]

MIN_EPOCH = 1
MAX_EPOCH = 25
REFERENCE_POINT = (1.0, 8.0)
"""The hypervolume reference point of (validation error, log10 #params): 0 % accuracy and 10**8
parameters, the original's thresholds (docs/problem.md §4). Every module takes it from here."""
INACTIVE = -1.0
"""Value of an inactive hyperparameter's column in :func:`encode` (outside every active range)."""


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: ``kind`` is ``"int"``, ``"float"`` or ``"cat"``."""

    name: str
    kind: str
    lower: float | None = None
    upper: float | None = None
    log: bool = False
    choices: tuple = ()
    default: Any = None
    depth_key: str | None = None  # active when config[depth_key] > depth_index
    depth_index: int = 0
    _draw: tuple = field(init=False, repr=False, compare=False)  # (low, width) of the uniform a draw uses

    def __post_init__(self) -> None:
        if self.kind == "cat":
            object.__setattr__(self, "_draw", ())
            return
        lo, hi = float(self.lower), float(self.upper)
        if self.kind == "int":
            # Each integer owns the interval [k - 0.5, k + 0.5] (in log space where log).
            lo, hi = lo - 0.5, hi + 0.5
        if self.log:
            lo, hi = math.log(lo), math.log(hi)
        object.__setattr__(self, "_draw", (lo, hi - lo))

    def to_unit(self, value: Any) -> float:
        """Map an (active, valid) value to its encoding: [0, 1] for numbers, index for categories."""
        if self.kind == "cat":
            return float(self.choices.index(value))
        lo, hi, v = float(self.lower), float(self.upper), float(value)
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        return (v - lo) / (hi - lo)

    def from_unit(self, u: float) -> Any:
        """Inverse of :meth:`to_unit` (rounding integers, clipping to the domain)."""
        if self.kind == "cat":
            idx = int(round(float(u)))
            return self.choices[min(max(idx, 0), len(self.choices) - 1)]
        u = min(max(float(u), 0.0), 1.0)
        lo, hi = float(self.lower), float(self.upper)
        if self.log:
            v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        else:
            v = lo + u * (hi - lo)
        if self.kind == "int":
            return int(min(max(round(v), self.lower), self.upper))
        return min(max(v, lo), hi)

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw from the prior: uniform, or log-uniform where ``log`` (integers by rounding)."""
        if self.kind == "cat":
            return self.choices[int(rng.integers(len(self.choices)))]
        # rng.uniform(lo, hi) is lo + (hi - lo) * rng.random(): the same draw and the same
        # arithmetic (tested bit for bit), without uniform()'s argument handling per call.
        return self.from_uniform(rng.random())

    def from_uniform(self, u: float) -> Any:
        """The prior draw of a number whose uniform in [0, 1) is ``u`` (what :meth:`sample` makes
        of ``rng.random()``); numbers only."""
        lo, width = self._draw
        v = lo + width * u
        if self.log:
            v = math.exp(v)
        if self.kind == "int":
            return int(min(max(round(v), self.lower), self.upper))
        return float(min(max(v, self.lower), self.upper))


def _hp(name, kind, **kw) -> Hyperparameter:
    return Hyperparameter(name=name, kind=kind, **kw)


HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    _hp("n_conv_l", "int", lower=1, upper=3, default=3),
    _hp("n_conv_0", "int", lower=16, upper=1024, log=True, default=128),
    _hp("n_conv_1", "int", lower=16, upper=1024, log=True, default=128, depth_key="n_conv_l", depth_index=1),
    _hp("n_conv_2", "int", lower=16, upper=1024, log=True, default=128, depth_key="n_conv_l", depth_index=2),
    _hp("n_fc_l", "int", lower=1, upper=3, default=3),
    _hp("n_fc_0", "int", lower=2, upper=512, log=True, default=32),
    _hp("n_fc_1", "int", lower=2, upper=512, log=True, default=32, depth_key="n_fc_l", depth_index=1),
    _hp("n_fc_2", "int", lower=2, upper=512, log=True, default=32, depth_key="n_fc_l", depth_index=2),
    _hp("kernel_size", "cat", choices=(3, 5, 7), default=5),
    _hp("lr_init", "float", lower=1e-5, upper=1.0, log=True, default=1e-3),
    _hp("batch_norm", "cat", choices=(False, True), default=False),
    _hp("batch_size", "int", lower=1, upper=512, log=True, default=128),
    _hp("global_avg_pooling", "cat", choices=(False, True), default=True),
)
NAMES: tuple[str, ...] = tuple(h.name for h in HYPERPARAMETERS)
_BY_NAME = {h.name: h for h in HYPERPARAMETERS}
_NAME_SET = frozenset(NAMES)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from an int seed, a generator (returned as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed: must be a non-negative int, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(seed)


def is_active(name: str, config: Mapping[str, Any]) -> bool:
    """Whether hyperparameter ``name`` is active given the depths in ``config``."""
    hp = _BY_NAME[name]
    if hp.depth_key is None:
        return True
    return int(config[hp.depth_key]) > hp.depth_index


def active_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(n for n in NAMES if is_active(n, config))


def _ordered(values: Mapping[str, Any]) -> dict[str, Any]:
    return {n: values[n] for n in NAMES if n in values and is_active(n, values)}


def default_config() -> dict[str, Any]:
    """The space's default configuration (three conv and three fc layers)."""
    return _ordered({h.name: h.default for h in HYPERPARAMETERS})


def _draw_runs() -> tuple[tuple[bool, tuple], ...]:
    """``HYPERPARAMETERS`` cut into runs of consecutive numbers (``True``) and single categories."""
    runs: list[tuple[bool, list]] = []
    for hp in HYPERPARAMETERS:
        numeric = hp.kind != "cat"
        if numeric and runs and runs[-1][0]:
            runs[-1][1].append(hp)
        else:
            runs.append((numeric, [hp]))
    return tuple((numeric, tuple(hps)) for numeric, hps in runs)


_DRAW_RUNS = _draw_runs()


def sample(seed: int | np.random.Generator | None = None, n: int | None = None):
    """Draw one config (``n=None``) or a list of ``n`` configs from the priors.

    Every hyperparameter is drawn, active or not, in the order of ``NAMES`` (so a seed always
    means the same configs: the collector's plans rely on it), and only the active ones are
    kept. The uniforms of consecutive numbers are drawn in one ``rng.random(k)`` call (the same
    generator calls as ``k`` calls of ``rng.random()``) and only the active ones are turned into
    values: the configs and the generator's state are those of one
    :meth:`Hyperparameter.sample` per hyperparameter (tested). The result is in canonical form
    (what :func:`validate` returns for it; tested).
    """
    rng = as_rng(seed)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        return [sample(rng) for _ in range(int(n))]
    values: dict[str, Any] = {}
    for numeric, hps in _DRAW_RUNS:
        if numeric:
            draws = rng.random(len(hps)).tolist() if len(hps) > 1 else (rng.random(),)
        else:
            draws = (hps[0].sample(rng),)
        for hp, drawn in zip(hps, draws):
            if hp.depth_key is None or values[hp.depth_key] > hp.depth_index:  # a depth comes before its layers
                values[hp.name] = hp.from_uniform(drawn) if numeric else drawn
    return values


def _check_value(hp: Hyperparameter, value: Any) -> Any:
    # The common case first: an exact Python value in range (bool is not int here: type() is exact).
    kind, t = hp.kind, type(value)
    if kind == "int":
        if t is int and hp.lower <= value <= hp.upper:
            return value
    elif kind == "float":
        if t is float and hp.lower <= value <= hp.upper:  # NaN fails the comparison
            return value
    elif t is bool or t is int:
        if value in hp.choices and (t is bool) == (hp.choices == (False, True)):
            return value
    name = hp.name
    if hp.kind == "cat":
        if hp.choices == (False, True):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name}: must be a bool, got {value!r}")
            return bool(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name}: must be one of {list(hp.choices)}, got {value!r}")
        if int(value) not in hp.choices:
            raise ValueError(f"{name}: must be one of {list(hp.choices)}, got {value!r}")
        return int(value)
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: must be {'an int' if hp.kind == 'int' else 'a number'}, got bool {value!r}")
    if hp.kind == "int":
        if not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name}: must be an int, got {type(value).__name__} {value!r}")
        value = int(value)
    else:
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name}: must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name}: must be finite, got {value!r}")
    if not (hp.lower <= value <= hp.upper):
        raise ValueError(f"{name}: must lie in [{hp.lower:g}, {hp.upper:g}], got {value!r}")
    return value


def _as_mapping(config: Any) -> Mapping[str, Any]:
    """Any mapping as is (a ConfigSpace 1.x ``Configuration`` is one); ConfigSpace 0.x objects via
    their ``get_dictionary()``. Never imports ConfigSpace."""
    if type(config) is dict:
        return config
    if not isinstance(config, Mapping) and callable(getattr(config, "get_dictionary", None)):
        config = config.get_dictionary()
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a dict (or a ConfigSpace Configuration), got {type(config).__name__}")
    return config


def validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the canonical form of ``config`` (exact Python types, fixed key order): a plain dict.

    ``config`` is a dict or any other mapping, e.g. a ConfigSpace ``Configuration`` or an Optuna
    trial's ``params`` (numpy scalars become Python ints, floats and bools).

    Raises ``ValueError`` naming the key and the rule for an unknown key, an inactive key
    present, an active key missing, a wrong type or a value out of range.
    """
    config = _as_mapping(config)
    if not _NAME_SET.issuperset(config):
        unknown = sorted(set(config) - _NAME_SET, key=str)
        raise ValueError(f"{unknown[0]}: unknown hyperparameter (known: {', '.join(NAMES)})")
    out: dict[str, Any] = {}
    for hp in HYPERPARAMETERS:
        if hp.depth_key is not None:
            active = out[hp.depth_key] > hp.depth_index
            if not active:
                if hp.name in config:
                    raise ValueError(
                        f"{hp.name}: inactive because {hp.depth_key}={out[hp.depth_key]} "
                        f"(needs {hp.depth_key} >= {hp.depth_index + 1}); remove it"
                    )
                continue
        if hp.name not in config:
            raise ValueError(f"{hp.name}: missing (active hyperparameters must be given)")
        out[hp.name] = _check_value(hp, config[hp.name])
    return out


def validate_epoch(epoch: Any, *, name: str = "epoch") -> int:
    """Check a fidelity in ``MIN_EPOCH..MAX_EPOCH`` and return it as an int."""
    if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)):
        raise ValueError(f"{name}: must be an int in {MIN_EPOCH}..{MAX_EPOCH}, got {epoch!r}")
    if not MIN_EPOCH <= int(epoch) <= MAX_EPOCH:
        raise ValueError(f"{name}: must lie in {MIN_EPOCH}..{MAX_EPOCH}, got {epoch!r}")
    return int(epoch)


def canonical_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a validated config: sorted keys, no whitespace, floats as repr."""
    return _json_of_valid(validate(config))


def config_id(config: Mapping[str, Any]) -> str:
    """Stable id of a config: the first 16 hex digits of the sha256 of its canonical JSON."""
    return id_of_valid(validate(config))


def _json_of_valid(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def id_of_valid(config: dict[str, Any]) -> str:
    """:func:`config_id` of a config that :func:`validate` returned, without validating it again."""
    return hashlib.sha256(_json_of_valid(config).encode()).hexdigest()[:16]


def encode(configs: Iterable[Mapping[str, Any]], *, inactive: float = INACTIVE) -> np.ndarray:
    """Numeric encoding with one fixed column per hyperparameter, in the order of ``NAMES``.

    Numbers map to [0, 1] (in log space where the scale is log), categories to their index
    (kernel_size 3/5/7 -> 0/1/2, booleans False/True -> 0/1), inactive columns to
    ``inactive`` (-1 by default; pass ``np.nan`` for models that treat missing values).
    """
    rows = []
    for cfg in configs:
        cfg = validate(cfg)
        rows.append([hp.to_unit(cfg[hp.name]) if hp.name in cfg else inactive for hp in HYPERPARAMETERS])
    return np.asarray(rows, dtype=float).reshape(len(rows), len(NAMES))


def decode(x: Sequence[float]) -> dict[str, Any]:
    """Config from one encoded row (rounded and clipped; inactive columns are ignored)."""
    x = np.asarray(x, dtype=float)
    if x.shape != (len(NAMES),):
        raise ValueError(f"encoded row must have {len(NAMES)} columns, got shape {x.shape}")
    for hp, v in zip(HYPERPARAMETERS, x):
        if hp.depth_key is None and not np.isfinite(v):
            raise ValueError(f"encoded row: column {hp.name} must be a finite number, got {float(v)!r}")
    values = {hp.name: hp.from_unit(v) for hp, v in zip(HYPERPARAMETERS, x) if hp.depth_key is None}
    for hp, v in zip(HYPERPARAMETERS, x):
        if hp.depth_key is not None and values[hp.depth_key] > hp.depth_index:
            # An inactive column made active (depth grew): fall back to the default width.
            values[hp.name] = hp.default if not np.isfinite(v) or v < 0 else hp.from_unit(v)
    return validate(_ordered(values))
