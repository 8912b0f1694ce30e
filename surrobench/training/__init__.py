"""The real-training stage: the network, the trainer and the ground-truth collector.

This is the only part of surrobench that needs torch (``pip install "surrobench[train]"``);
torch is imported when ``build_network``, ``train`` or ``choose_device`` is first used.
"""

__all__ = ["build_network", "choose_device", "train"]


def __getattr__(name):
    if name == "build_network":
        from .network import build_network

        return build_network
    if name in ("train", "choose_device"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
