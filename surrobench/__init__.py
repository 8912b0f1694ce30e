"""surrobench: cheap, honest comparisons of multi-objective optimizers for joint NAS + HPO."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
