"""Integer arguments as the library takes them: Python ints and numpy integers, never bools;
``ValueError`` naming the argument otherwise."""

from __future__ import annotations

import numbers
from typing import Any

MAX_JOBS = 256  # parallel jobs of compare and collect: more would only thrash one machine


def is_int(value: Any) -> bool:
    """True for a Python or numpy integer (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def is_number(value: Any) -> bool:
    """True for a Python or numpy int or float (not a bool)."""
    return isinstance(value, (numbers.Integral, numbers.Real)) and not isinstance(value, bool) \
        and type(value).__name__ != "bool_"


def as_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python int in ``low..high``."""
    if not is_int(value):
        span = _span(low, high)
        raise ValueError(f"{name}: must be an int{span}, got {type(value).__name__} {value!r:.60}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: must be an int{_span(low, high)}, got {value!r:.60}")
    return value


def _span(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" in {low}..{high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""
