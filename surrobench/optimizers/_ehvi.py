"""Exact hypervolume improvement and its expectation for two minimised objectives.

The region that a new point ``y`` could add to the hypervolume of a front (inside the box
bounded by ``ref``) splits into vertical strips: with the front's points inside the box sorted
by the first objective, ``a_1 < ... < a_n`` and ``b_1 > ... > b_n``, strip ``i`` spans
``[a_i, a_{i+1})`` in the first objective (``a_0 = -inf``, ``a_{n+1} = ref_1``) and lies below
``b_i`` in the second (``b_0 = ref_2``). So

    HVI(y) = sum_i  (a_{i+1} - max(y_1, a_i))^+ * (b_i - y_2)^+

and, for independent ``y_1``, ``y_2`` with ``G_k(t) = E[(t - y_k)^+]``,

    EHVI = sum_i (G_1(a_{i+1}) - G_1(a_i)) * G_2(b_i),

because ``(a_{i+1} - max(y_1, a_i))^+ = (a_{i+1} - y_1)^+ - (a_i - y_1)^+``. For a Gaussian,
``G(t) = (t - mu) Phi(z) + sigma phi(z)`` with ``z = (t - mu) / sigma``; for a known value
(``sigma = 0``, the mixed surrogate's exact model size) ``G(t) = (t - mu)^+``, which leaves the
one-dimensional integral over the strips that lie above the known value. O(n) per candidate.

>>> front = [[0.5, 4.0]]
>>> float(hvi([[0.25, 2.0]], front, ref=(1.0, 8.0))[0])  # 0.75 * 6 - 0.5 * 4
2.5
>>> float(ehvi([0.25], [0.0], [2.0], [0.0], front, ref=(1.0, 8.0))[0])
2.5
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import ndtr

from .._ufuncs import clip

__all__ = ["hvi", "ehvi", "ehvi_over_strips", "front_strips"]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def front_strips(front, ref: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Strip edges ``a`` (n + 2 values, from -inf to ref_1) and levels ``b`` (n + 1 values,
    from ref_2) of the non-dominated points of ``front`` that lie strictly inside ``ref``."""
    r = np.asarray(ref, dtype=float).ravel()
    if r.shape != (2,) or not np.isfinite(r).all():
        raise ValueError(f"ref: expected two finite coordinates, got {ref!r}")
    pts = np.asarray(front, dtype=float).reshape(-1, 2)
    if len(pts) and not np.isfinite(pts).all():
        raise ValueError("front: contains NaN or infinite values")
    pts = pts[(pts < r).all(axis=1)]
    if len(pts):
        pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]  # by f1, then f2
        # Sorted so, a point is non-dominated iff its f2 is below every earlier f2 (a repeat is not).
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(pts[:-1, 1])])
        pts = pts[pts[:, 1] < best_before]
    a = np.concatenate([[-np.inf], pts[:, 0], [r[0]]])
    b = np.concatenate([[r[1]], pts[:, 1]])
    return a, b


def hvi(points, front, *, ref: Sequence[float]) -> np.ndarray:
    """Exact hypervolume improvement of each row of ``points`` (m, 2) over ``front``."""
    y = np.asarray(points, dtype=float).reshape(-1, 2)
    a, b = front_strips(front, ref)
    lo = np.maximum(y[:, :1], a[None, :-1])
    width = np.maximum(a[None, 1:] - lo, 0.0)
    height = np.maximum(b[None, :] - y[:, 1:], 0.0)
    return (width * height).sum(axis=1)


def _expected_shortfall(t: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``E[(t - Y)^+]`` for ``Y ~ N(mean, std^2)``, row per candidate, column per ``t``
    (``t = -inf`` gives 0; ``std = 0`` gives ``(t - mean)^+``).

    The common cases take shortcuts with the same numbers: finite means with only some ``t``
    infinite (the strips' first edge), and every ``std`` positive (a GP) or every one zero (an
    exact model size), where the general formula's selections would pick one branch everywhere.
    """
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (np.abs(mean) < 1e300).all()
            and (np.abs(t[np.isfinite(t)]) < 1e300).all()):
        return _expected_shortfall_general(t, mean, std)
    columns = np.isfinite(t)  # a difference is infinite exactly where its t is
    if not columns.all():
        out = np.zeros((len(mean), len(t)))
        out[:, columns] = _expected_shortfall(t[columns], mean, std)
        return out
    positive = std > 0
    if positive.all():
        diff = t[None, :] - mean[:, None]
        sd = std[:, None]
        with np.errstate(over="ignore"):  # a tiny std: |z| -> inf, clipped next
            z = clip(diff / sd, -40.0, 40.0)
        return diff * ndtr(z) + sd * _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    if not positive.any():
        return np.maximum(t[None, :] - mean[:, None], 0.0)
    return _expected_shortfall_general(t, mean, std)


def _expected_shortfall_general(t: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """:func:`_expected_shortfall` element by element: any mix of infinite values and zero spreads."""
    mean = mean[:, None]
    std = std[:, None]
    diff = t[None, :] - mean
    finite = np.isfinite(diff)
    diff = np.where(finite, diff, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a tiny std: |z| -> inf, clipped next
        z = np.where(std > 0, diff / np.where(std > 0, std, 1.0), 0.0)
    z = clip(z, -40.0, 40.0)  # beyond, Phi is 0 or 1 and phi is 0 in double precision
    gauss = diff * ndtr(z) + std * _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    out = np.where(std > 0, gauss, np.maximum(diff, 0.0))
    return np.where(finite, out, 0.0)


def ehvi(mean1, std1, mean2, std2, front, *, ref: Sequence[float]) -> np.ndarray:
    """Expected hypervolume improvement over ``front`` of candidates whose two objectives are
    independent Gaussians ``N(mean_k, std_k^2)``; ``std_k = 0`` means the value is known exactly.

    All four arrays have one entry per candidate; returns one non-negative value per candidate.
    """
    m1, s1, m2, s2 = (np.asarray(v, dtype=float).ravel() for v in (mean1, std1, mean2, std2))
    if not (len(m1) == len(s1) == len(m2) == len(s2)):
        raise ValueError("ehvi: mean1, std1, mean2 and std2 must have the same length")
    if (s1 < 0).any() or (s2 < 0).any() or not (np.isfinite(m1).all() and np.isfinite(m2).all()):
        raise ValueError("ehvi: means must be finite and standard deviations non-negative")
    return ehvi_over_strips(m1, s1, m2, s2, *front_strips(front, ref))


def ehvi_over_strips(m1, s1, m2, s2, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`ehvi` over strips already computed by :func:`front_strips` (one front, many
    candidate blocks); the arrays are taken as they are, unchecked."""
    g1 = _expected_shortfall(a, m1, s1)  # (m, n + 2)
    g2 = _expected_shortfall(b, m2, s2)  # (m, n + 1)
    return np.maximum(((g1[:, 1:] - g1[:, :-1]) * g2).sum(axis=1), 0.0)
