"""The torch network equals the closed-form count for every config and input shape (docs/problem.md §2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surrobench import space
from surrobench.model_size import n_params

from conftest import TINY_CONFIG, configs

torch = pytest.importorskip("torch")
from surrobench.training.network import build_network  # noqa: E402

SHAPES = [((3, 16, 16), 17), ((1, 28, 28), 10), ((1, 8, 8), 10)]


def _meta_network(cfg, shape, n_classes):
    with torch.device("meta"):  # no memory: 1024-channel layers are free to build
        return build_network(cfg, shape, n_classes)


@settings(max_examples=50, deadline=None)
@given(configs(), st.sampled_from(SHAPES))
def test_closed_form_equals_torch_count(cfg, shape_classes):
    shape, n_classes = shape_classes
    net = _meta_network(cfg, shape, n_classes)
    assert n_params(cfg, shape, n_classes) == sum(p.numel() for p in net.parameters() if p.requires_grad)
    out = net(torch.empty((2, *shape), device="meta"))  # the layers fit together
    assert tuple(out.shape) == (2, n_classes)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(SHAPES))
def test_closed_form_equals_torch_count_for_sampled_configs(seed, shape_classes):
    cfg = space.sample(seed)
    net = _meta_network(cfg, *shape_classes)
    assert n_params(cfg, *shape_classes) == sum(p.numel() for p in net.parameters())


def test_layer_order_follows_the_paper():
    cfg = {**TINY_CONFIG, "n_conv_l": 2, "n_conv_1": 16, "batch_norm": True, "global_avg_pooling": True}
    kinds = [type(m).__name__ for m in _meta_network(cfg, (1, 8, 8), 10)]
    conv_block = ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d"]  # batch norm after the ReLU
    assert kinds == conv_block * 2 + ["AdaptiveAvgPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    conv = _meta_network({**TINY_CONFIG, "kernel_size": 7}, (1, 8, 8), 10)[0]
    assert conv.kernel_size == (7, 7) and conv.padding == (3, 3)


def test_network_validates_config():
    with pytest.raises(ValueError, match="n_fc_0"):
        build_network({**TINY_CONFIG, "n_fc_0": 1}, (1, 8, 8), 10)
