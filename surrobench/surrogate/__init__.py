"""Surrogate models of the benchmark: fitted from training logs, judged, published, loaded.

>>> from surrobench.surrogate import fit_surrogate, save_surrogate, publish, load_surrogate
>>> s = fit_surrogate("training_logs/flowers17")              # doctest: +SKIP
>>> save_surrogate(s, "build/flowers17-surrogate")            # doctest: +SKIP
>>> publish("build/flowers17-surrogate", "data")              # doctest: +SKIP

The command line does the same in one step (how the shipped defaults are refitted)::

    surrobench fit training_logs/flowers17 --out build/flowers17-surrogate --force --publish data

Torch is never imported here.
"""

from .build import REFERENCE_POINT, SCHEMA_VERSION, fit_models, fit_surrogate
from .files import SurrogateFileError, load_surrogate, publish, save_surrogate, unpack_archive
from .fit import GRIDS
from .model import Surrogate
from .noise import NoiseModel
from .quality import format_card, format_comparison, format_summary

__all__ = [
    "fit_surrogate",
    "fit_models",
    "save_surrogate",
    "load_surrogate",
    "publish",
    "unpack_archive",
    "format_card",
    "format_summary",
    "format_comparison",
    "Surrogate",
    "NoiseModel",
    "SurrogateFileError",
    "GRIDS",
    "SCHEMA_VERSION",
    "REFERENCE_POINT",
]
