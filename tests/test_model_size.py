"""The closed-form parameter count (no torch needed; torch's count is checked in test_network.py)."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given

import surrobench.benchmark
import surrobench.cli
import surrobench.compare
import surrobench.model_size
import surrobench.optimizers.moasha
import surrobench.space
from surrobench import space
from surrobench.model_size import log10_params, n_params

from conftest import configs

SHAPES = [((3, 16, 16), 17), ((1, 28, 28), 10), ((1, 8, 8), 10)]


SMALL = {
    "n_conv_l": 1,
    "n_conv_0": 16,
    "n_fc_l": 1,
    "n_fc_0": 8,
    "kernel_size": 3,
    "lr_init": 1e-2,
    "batch_norm": False,
    "batch_size": 128,
    "global_avg_pooling": True,
}


def test_hand_counted_small_network():
    # conv 1->16, k=3: 1*16*9 + 16 = 160; global pooling -> 16; fc 16->8: 136; classifier 8->10: 90.
    assert n_params(SMALL, (1, 8, 8), 10) == 160 + 136 + 90
    # without pooling the fc layer sees 16 channels x 4 x 4 after one MaxPool(2): 256*8 + 8.
    assert n_params({**SMALL, "global_avg_pooling": False}, (1, 8, 8), 10) == 160 + 2056 + 90
    # batch norm adds a weight and a bias per channel.
    assert n_params({**SMALL, "batch_norm": True}, (1, 8, 8), 10) == 160 + 32 + 136 + 90
    # kernel 7: 1*16*49 + 16; an RGB input triples the first layer's weights.
    assert n_params({**SMALL, "kernel_size": 7}, (1, 8, 8), 10) == 800 + 136 + 90
    assert n_params(SMALL, (3, 8, 8), 10) == 3 * 144 + 16 + 136 + 90


def test_hand_counted_default_on_flowers():
    # 3 conv layers of 128 with k=5: 3*128*25+128, then twice 128*128*25+128; gap; fc 128->32, 32->32 twice; 32->17.
    expected = (3 * 128 * 25 + 128) + 2 * (128 * 128 * 25 + 128) + (128 * 32 + 32) + 2 * (32 * 32 + 32) + (32 * 17 + 17)
    assert n_params(space.default_config(), (3, 16, 16), 17) == expected


def test_floor_pooling_on_fashion_mnist():
    # 28 -> 14 -> 7 -> 3 (MaxPool floors): without global pooling the fc layer sees c * 3 * 3.
    cfg = {**space.default_config(), "global_avg_pooling": False}
    with_gap = n_params({**cfg, "global_avg_pooling": True}, (1, 28, 28), 10)
    assert n_params(cfg, (1, 28, 28), 10) - with_gap == 128 * (3 * 3 - 1) * 32


@given(configs())
def test_classes_add_one_row_per_class(cfg):
    last = cfg[f"n_fc_{cfg['n_fc_l'] - 1}"]
    for shape, k in SHAPES:
        assert n_params(cfg, shape, k + 1) - n_params(cfg, shape, k) == last + 1


@given(configs())
def test_log10_params(cfg):
    for shape, k in SHAPES:
        assert log10_params(cfg, shape, k) == pytest.approx(math.log10(n_params(cfg, shape, k)))


@pytest.mark.parametrize(
    "shape, n_classes",
    [((16, 16), 17), ((3, 16, 16, 1), 17), ((3, 0, 16), 17), ((-1, 8, 8), 10), ((1, 8, 8), 1), ((1, 8, 8), 0)],
)
def test_bad_shape_or_classes_refused(shape, n_classes):
    with pytest.raises(ValueError, match="input_shape|n_classes"):
        n_params(SMALL, shape, n_classes)


def test_too_small_for_pooling_refused():
    three = space.default_config()
    assert n_params(three, (1, 8, 8), 10) > 0  # 8 -> 4 -> 2 -> 1
    with pytest.raises(ValueError, match="too small"):
        n_params(three, (1, 4, 4), 10)


def test_invalid_config_refused():
    with pytest.raises(ValueError, match="kernel_size"):
        n_params({**SMALL, "kernel_size": 4}, (1, 8, 8), 10)


@pytest.mark.parametrize("module", [surrobench.space, surrobench.model_size, surrobench.benchmark,
                                    surrobench.optimizers.moasha, surrobench.optimizers, surrobench.cli, surrobench.compare],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
