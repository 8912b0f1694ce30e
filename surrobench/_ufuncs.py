"""numpy's ``clip`` ufunc itself, for the hot paths.

``np.clip(a, lo, hi)`` on an array checks its bounds in Python before it calls this ufunc: a few
microseconds per call, and a benchmark answer or an optimizer decision makes several. With both
bounds given it returns the ufunc's result, so the ufunc gives the same numbers (tested). Where
numpy does not export it under either name, ``np.clip`` itself is used. (``np.clip(a, lo, None)``
is ``np.maximum(a, lo)``, which the hot paths call directly.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["clip"]

try:
    from numpy._core.umath import clip
except ImportError:  # pragma: no cover - numpy < 2
    try:
        from numpy.core.umath import clip
    except ImportError:
        clip = np.clip
