"""The real-training stage: the network, the trainer and the ground-truth collector.

This is the only part of surrobench that needs torch (``pip install "surrobench[train]"``).
"""

from .network import build_network
from .trainer import choose_device, train

__all__ = ["build_network", "choose_device", "train"]
