"""Exact closed-form trainable parameter count of the search space's CNN (no torch needed).

The model-size objective is ``log10(n_params)``; it is computed, never predicted.

>>> from surrobench.space import default_config
>>> n_params(default_config(), (3, 16, 16), 17)
835985
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .space import validate

__all__ = ["n_params", "log10_params", "sizes_of_valid", "conv_widths", "fc_widths"]


def conv_widths(config: Mapping[str, Any]) -> list[int]:
    return [int(config[f"n_conv_{i}"]) for i in range(int(config["n_conv_l"]))]


def fc_widths(config: Mapping[str, Any]) -> list[int]:
    return [int(config[f"n_fc_{j}"]) for j in range(int(config["n_fc_l"]))]


def _check_shape(input_shape: Sequence[int], n_classes: int) -> tuple[int, int, int]:
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"input_shape must be (channels, height, width) with positive sizes, got {input_shape!r}")
    if int(n_classes) < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes!r}")
    c, h, w = (int(d) for d in input_shape)
    return c, h, w


def n_params(config: Mapping[str, Any], input_shape: Sequence[int], n_classes: int) -> int:
    """Trainable parameters of the network for ``config`` on inputs of shape (C, H, W).

    Conv2d: c_in*c_out*k*k + c_out; BatchNorm2d: 2*c_out (running statistics are buffers);
    each MaxPool2d(2) floors the spatial size; the flattened width is the last conv width
    (global average pooling) or width*H*W; Linear: in*out + out; then the classifier.
    """
    cfg = validate(config)
    _check_shape(input_shape, n_classes)
    return sizes_of_valid(cfg, input_shape, n_classes)[0]


def sizes_of_valid(cfg: Mapping[str, Any], input_shape: Sequence[int], n_classes: int) -> tuple[int, int]:
    """(:func:`n_params`, multiply-accumulates per example) of a config that
    :func:`~surrobench.space.validate` returned, without validating it again (the hot path of the
    surrogate's features). Convolutions run at full resolution, then pooling."""
    c, h, w = (int(d) for d in input_shape)
    k = int(cfg["kernel_size"])
    bn = bool(cfg["batch_norm"])
    params = macs = 0
    for i in range(int(cfg["n_conv_l"])):
        width = int(cfg[f"n_conv_{i}"])
        params += c * width * k * k + width + (2 * width if bn else 0)
        macs += h * w * c * width * k * k
        c, h, w = width, h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"input_shape {tuple(input_shape)} is too small for {cfg['n_conv_l']} pooling layers")
    flat = c if cfg["global_avg_pooling"] else c * h * w
    for j in range(int(cfg["n_fc_l"])):
        width = int(cfg[f"n_fc_{j}"])
        params += flat * width + width
        macs += flat * width
        flat = width
    return params + flat * int(n_classes) + int(n_classes), macs + flat * int(n_classes)


def log10_params(config: Mapping[str, Any], input_shape: Sequence[int], n_classes: int) -> float:
    """The model-size objective, log10 of :func:`n_params`."""
    return math.log10(n_params(config, input_shape, n_classes))
