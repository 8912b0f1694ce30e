"""Optimizers on the ask/tell protocol of :mod:`surrobench.records`.

``OPTIMIZERS`` maps a name to a class built as ``cls(problem, seed=..., **settings)``.
"""

from .random_search import RandomSearch

OPTIMIZERS = {
    "random": RandomSearch,
}

__all__ = ["OPTIMIZERS", "RandomSearch"]
