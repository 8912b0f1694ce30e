"""surrobench: cheap, honest comparisons of multi-objective optimizers for joint NAS + HPO."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "load"]


def load(path_or_archive=None, *, noise: bool = True):
    """The benchmark of a surrogate: a directory, an archive, a shipped name ("flowers17",
    "digits"), or nothing for the shipped flowers17 surrogate. See :func:`surrobench.benchmark.load`."""
    from .benchmark import load as _load

    return _load(path_or_archive, noise=noise)
