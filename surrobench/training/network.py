"""The search space's CNN as a torch module (docs/problem.md §2)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import nn

from ..model_size import conv_widths, fc_widths
from ..space import validate

__all__ = ["build_network"]


def build_network(config: Mapping[str, Any], input_shape: Sequence[int], n_classes: int) -> nn.Sequential:
    """Conv(k, same padding) -> ReLU -> [BatchNorm] -> MaxPool(2) per conv layer, then optional
    global average pooling, Flatten, Linear -> ReLU per fc layer and the classifier.

    PyTorch's default initialisation; the caller seeds torch before building.
    """
    cfg = validate(config)
    c, h, w = (int(d) for d in input_shape)
    k = int(cfg["kernel_size"])
    layers: list[nn.Module] = []
    for width in conv_widths(cfg):
        layers += [nn.Conv2d(c, width, k, padding=(k - 1) // 2), nn.ReLU()]
        if cfg["batch_norm"]:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.MaxPool2d(2))
        c, h, w = width, h // 2, w // 2
    if cfg["global_avg_pooling"]:
        layers.append(nn.AdaptiveAvgPool2d(1))
        h = w = 1
    layers.append(nn.Flatten())
    flat = c * h * w
    for width in fc_widths(cfg):
        layers += [nn.Linear(flat, width), nn.ReLU()]
        flat = width
    layers.append(nn.Linear(flat, int(n_classes)))
    return nn.Sequential(*layers)
