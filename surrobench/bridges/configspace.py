"""The search space as a ConfigSpace ``ConfigurationSpace`` (ConfigSpace 1.x), conditions included.

>>> cs = to_configspace(seed=0)                      # doctest: +SKIP
>>> cfg = cs.sample_configuration()                  # doctest: +SKIP
>>> space.validate(cfg) == space.validate(dict(cfg))  # Configurations are accepted as they are  # doctest: +SKIP
True

Hyperparameters, ranges, log scales, defaults and priors (uniform, log-uniform where log) are those
of :mod:`surrobench.space`; a width of depth index *i* is active when its depth is greater than *i*
(``n_conv_1`` when ``n_conv_l > 1``), as a ``GreaterThanCondition``. Configs of either side are
valid on the other: ``space.validate`` accepts a ``Configuration`` (and returns a plain dict), and
:func:`to_configuration` turns a surrobench config into a ``Configuration``.
"""

from __future__ import annotations

import io
import os
from typing import Any, Mapping

from .. import space
from .._numbers import as_int

__all__ = ["to_configspace", "to_configspace_json", "to_configuration"]


def _import():
    try:
        import ConfigSpace
    except ImportError:
        raise ValueError("the ConfigSpace bridge needs ConfigSpace 1.x: pip install 'surrobench[configspace]'") from None
    major = int(str(getattr(ConfigSpace, "__version__", "0")).split(".")[0] or 0)
    if major < 1:
        raise ValueError(f"the ConfigSpace bridge needs ConfigSpace >= 1.0, found {ConfigSpace.__version__}")
    return ConfigSpace


def to_configspace(*, seed: int | None = None, name: str = "surrobench") -> Any:
    """The 13 hyperparameters and their depth conditions as a ``ConfigSpace.ConfigurationSpace``."""
    CS = _import()
    if seed is not None:
        seed = as_int(seed, "seed", low=0, high=2**32 - 1)
    cs = CS.ConfigurationSpace(name=name, seed=seed)
    hps = {}
    for hp in space.HYPERPARAMETERS:
        if hp.kind == "cat":
            hps[hp.name] = CS.Categorical(hp.name, list(hp.choices), default=hp.default)
        elif hp.kind == "int":
            hps[hp.name] = CS.Integer(hp.name, (int(hp.lower), int(hp.upper)), log=hp.log, default=hp.default)
        else:
            hps[hp.name] = CS.Float(hp.name, (float(hp.lower), float(hp.upper)), log=hp.log, default=hp.default)
    cs.add(list(hps.values()))
    cs.add([
        CS.GreaterThanCondition(hps[hp.name], hps[hp.depth_key], hp.depth_index)
        for hp in space.HYPERPARAMETERS if hp.depth_key is not None
    ])
    return cs


def to_configspace_json(path: str | os.PathLike | None = None, *, indent: int = 2) -> str:
    """The ConfigSpace JSON of :func:`to_configspace` (what ``ConfigurationSpace.from_json`` reads);
    also written to ``path`` when given."""
    buffer = io.StringIO()
    to_configspace().to_json(buffer, indent=indent)
    text = buffer.getvalue()
    if path is not None:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise ValueError(f"path: cannot write {path}: {exc.strerror or exc}") from None
    return text


def to_configuration(config: Mapping[str, Any], configspace: Any = None) -> Any:
    """A surrobench config (validated first) as a ``Configuration`` of ``configspace``
    (default: :func:`to_configspace`); ConfigSpace checks it against the conditions too."""
    cfg = space.validate(config)
    cs = to_configspace() if configspace is None else configspace
    CS = _import()
    conf = CS.Configuration(cs, values=cfg)
    try:
        conf.check_valid_configuration()
    except (ValueError, CS.exceptions.ForbiddenValueError) as exc:  # pragma: no cover - validate() ran first
        raise ValueError(f"config is not valid in the ConfigurationSpace: {exc}") from None
    return conf
