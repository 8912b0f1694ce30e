"""Optimizers on the ask/tell protocol of :mod:`surrobench.records`.

``OPTIMIZERS`` maps a name to a class built as ``cls(problem, seed=..., **settings)``.
"""

from .bulkcut import BulkAndCut
from .ehvi import EHVI
from .moasha import MOASHA
from .mobananas import MOBANANAS
from .mobohb import MOBOHB
from .msehvi import MSEHVI
from .nsga2 import NSGA2
from .random_search import RandomSearch
from .shemoa import SHEMOA

OPTIMIZERS = {
    "random": RandomSearch,
    "shemoa": SHEMOA,
    "mobohb": MOBOHB,
    "mobananas": MOBANANAS,
    "nsga2": NSGA2,
    "msehvi": MSEHVI,
    "ehvi": EHVI,
    "bulkcut": BulkAndCut,  # Bulk & Cut (approximation): see surrobench.optimizers.bulkcut
    "moasha": MOASHA,
}

__all__ = ["OPTIMIZERS", "RandomSearch", "SHEMOA", "MOBOHB", "MOBANANAS", "NSGA2", "MSEHVI", "EHVI", "BulkAndCut", "MOASHA"]
