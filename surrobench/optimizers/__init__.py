"""Optimizers on the ask/tell protocol of :mod:`surrobench.records`.

``OPTIMIZERS`` maps a name to a class built as ``cls(problem, seed=..., **settings)``;
:func:`settings_of` lists a class's settings with their defaults.
"""

import inspect
from typing import Any

from .bulkcut import BulkAndCut
from .ehvi import EHVI
from .moasha import MOASHA
from .mobananas import MOBANANAS
from .mobohb import MOBOHB
from .msehvi import MSEHVI
from .nsga2 import NSGA2
from .random_search import RandomSearch
from .shemoa import SHEMOA

OPTIMIZERS = {
    "random": RandomSearch,
    "shemoa": SHEMOA,
    "mobohb": MOBOHB,
    "mobananas": MOBANANAS,
    "nsga2": NSGA2,
    "msehvi": MSEHVI,
    "ehvi": EHVI,
    "bulkcut": BulkAndCut,  # Bulk & Cut (approximation): see surrobench.optimizers.bulkcut
    "moasha": MOASHA,
}


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED = _Required()  # settings_of's default of a setting without one


def settings_of(cls, _handed_on: bool = False) -> dict[str, Any] | None:
    """The settings an optimizer class takes (keywords beyond ``problem`` and ``seed``) with their
    defaults (:data:`REQUIRED` for one without), in the order of its signature; where it hands
    ``**settings`` on (MS-EHVI, EHVI), also the keywords with defaults of the class named by its
    ``SETTINGS_FROM`` (those without are the handing class's to give). ``None`` where they cannot be
    read: a callable without a signature, or one that takes any keyword.

    >>> settings_of(MOASHA)
    {'eta': 3, 'min_epoch': None, 'ref_point': (1.0, 8.0)}
    """
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    out: dict[str, Any] = {}
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            source = getattr(cls, "SETTINGS_FROM", None)
            inner = None if source is None else settings_of(source, _handed_on=True)
            if inner is None:
                return None
            out.update(inner)
        elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("problem", "seed"):
            if p.default is not p.empty:
                out[p.name] = p.default
            elif not _handed_on:
                out[p.name] = REQUIRED
    return out


def _annotations(cls) -> dict[str, str]:
    """The annotation of each setting as text (``from __future__ import annotations`` keeps them so)."""
    out: dict[str, str] = {}
    for source in (getattr(cls, "SETTINGS_FROM", None), cls):
        try:
            params = inspect.signature(source).parameters.values() if source is not None else ()
        except (TypeError, ValueError):
            continue
        for p in params:
            if p.annotation is not p.empty:
                out[p.name] = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
    return out


def check_setting_type(cls, key: str, value: Any) -> str | None:
    """What is wrong with the type of ``value`` for setting ``key`` of ``cls``, read from its annotation
    (``int``, ``float``, ``bool``, ``str``, a tuple or sequence, ``| None``), or ``None`` where it fits
    or the annotation says nothing this can check. Ranges are each optimizer's own checks.

    >>> check_setting_type(MOASHA, "eta", "three")
    "must be a number, got 'three'"
    """
    text = _annotations(cls).get(key, "")
    kinds = {t.strip().split("[")[0] for t in text.split("|")} if text else set()
    if not kinds or "Any" in kinds or "Callable" in kinds:
        return None
    listed = kinds & {"tuple", "Sequence", "list"}
    want = ("a number" if "float" in kinds else "an int" if "int" in kinds else "true or false" if "bool" in kinds
            else "a list, e.g. [1, 2]" if listed else "a word" if "str" in kinds else None)
    if want is None:
        return None
    is_bool = isinstance(value, bool)
    fits = (value is None and "None" in kinds) or ("bool" in kinds and is_bool) or (
        "float" in kinds and isinstance(value, (int, float)) and not is_bool) or (
        "int" in kinds and isinstance(value, int) and not is_bool) or ("str" in kinds and isinstance(value, str)) or (
        bool(listed) and isinstance(value, (list, tuple)))
    if fits:
        return None
    return f"must be {want}{' or null' if 'None' in kinds else ''}, got {'null' if value is None else repr(value)}"

__all__ = ["OPTIMIZERS", "settings_of", "check_setting_type", "REQUIRED", "RandomSearch", "SHEMOA", "MOBOHB", "MOBANANAS", "NSGA2", "MSEHVI", "EHVI", "BulkAndCut", "MOASHA"]
