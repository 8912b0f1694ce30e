"""Model inputs: the space's fixed 13-column encoding plus three closed-form size columns.

The size columns (log10 parameters, log10 multiply-accumulates per example, log10
optimizer steps per epoch) are exact functions of the config; they give the runtime
model the physics it could not learn from a few dozen lone runs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..model_size import n_params, sizes_of_valid
from ..space import HYPERPARAMETERS, NAMES, validate

__all__ = ["FEATURES", "features", "feature_row", "size_bounds"]

FEATURES: tuple[str, ...] = NAMES + ("log10_params", "log10_macs", "log10_steps")


def feature_row(cfg: Mapping[str, Any], input_shape: Sequence[int], n_classes: int, n_train: int) -> tuple[list[float], int]:
    """Features of one validated config and its exact parameter count."""
    row = [hp.to_unit(cfg[hp.name]) if hp.name in cfg else math.nan for hp in HYPERPARAMETERS]
    n, macs = sizes_of_valid(cfg, input_shape, n_classes)
    row.append(math.log10(n))
    row.append(math.log10(macs))
    row.append(math.log10(math.ceil(n_train / int(cfg["batch_size"]))))
    return row, n


def features(configs, input_shape: Sequence[int], n_classes: int, n_train: int) -> np.ndarray:
    """(n, len(FEATURES)) float array; every config is validated (``ValueError`` if invalid)."""
    rows = [feature_row(validate(c), input_shape, n_classes, n_train)[0] for c in configs]
    return np.asarray(rows, dtype=float).reshape(len(rows), len(FEATURES))


def size_bounds(input_shape: Sequence[int], n_classes: int) -> tuple[float, float]:
    """Exact min and max of log10(parameters) over the space (parameters grow with every width)."""
    values = []
    for n_conv in (1, 2, 3):
        for n_fc in (1, 2, 3):
            for k in (3, 5, 7):
                for bn in (False, True):
                    for gap in (False, True):
                        for conv_w, fc_w in ((16, 2), (1024, 512)):
                            cfg = {"n_conv_l": n_conv, "n_fc_l": n_fc, "kernel_size": k, "lr_init": 1e-3,
                                   "batch_norm": bn, "batch_size": 32, "global_avg_pooling": gap}
                            cfg.update({f"n_conv_{i}": conv_w for i in range(n_conv)})
                            cfg.update({f"n_fc_{j}": fc_w for j in range(n_fc)})
                            try:
                                values.append(math.log10(n_params(cfg, input_shape, n_classes)))
                            except ValueError:  # too many pooling layers for the input
                                continue
    return min(values), max(values)
