"""Argument types of the ``surrobench`` command: each parses one value and refuses anything else
(out of range, past its documented ceiling, not a number) with a one-line message."""

from __future__ import annotations

import argparse
import importlib
import re


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # "--seed 3" is an error, not "--seeds 3"
        super().__init__(*args, **kwargs)
        # "-1h", "-5", "-1e99" are values (to be refused by their type with a message), not options:
        # no option of this parser starts with a digit or a dot.
        self._negative_number_matcher = re.compile(r"^-[0-9.]")

    def _get_values(self, action, arg_strings):
        # argparse drops a lone "--" (as in --budget=--) and would hand the option an empty list
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, got '--'")
        return super()._get_values(action, arg_strings)

    def error(self, message: str):  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


# where each documented ceiling lives: the module that enforces it (None: this module)
_CEILINGS = {
    "seeds": ("compare", "MAX_SEEDS"), "worker_counts": ("compare", "MAX_WORKER_COUNTS"),
    "jobs": ("_numbers", "MAX_JOBS"), "workers": ("simulator", "MAX_WORKERS"),
    "budget": ("simulator", "MAX_BUDGET_SECONDS"), "evaluations": ("simulator", "MAX_EVALUATIONS"),
    "n_configs": ("training.collect", "MAX_N_CONFIGS"), "replicates": ("training.collect", "MAX_REPLICATES"),
    "seed": ("training.collect", "MAX_SEED"), "threads": (None, "MAX_THREADS"), "sample": (None, "MAX_SAMPLE"),
    "time_limit": (None, "MAX_TIME_LIMIT"),
}


def _ceiling(name: str) -> int | float:
    """A documented ceiling, from the module that enforces it, imported only when parsing and only
    that module (``collect`` parses on a machine with torch alone, without the benchmark's libraries)."""
    module, attr = _CEILINGS[name]
    if module is None:
        return globals()[attr]
    return getattr(importlib.import_module(f".{module}", __package__), attr)


MAX_THREADS = 256
MAX_SAMPLE = 100_000
MAX_TIME_LIMIT = 365 * 24 * 3600.0


def _int_in(lowest: int, ceiling: str | None = None):
    """An integer argument in ``lowest..`` the named ceiling; anything else is refused with the range."""

    def parse(text: str) -> int:
        highest = _ceiling(ceiling) if ceiling else None
        span = f"in {lowest}..{highest}" if highest is not None else f">= {lowest}"
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {text[:40]!r}") from None
        if value < lowest or (highest is not None and value > highest):
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {text[:40]!r}")
        return value

    return parse


_positive_int = _int_in(1)
_nonneg_int = _int_in(0)
_seed = _int_in(0, "seed")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _duration_up_to(ceiling: str):
    """Seconds, or a number with a unit: 90, 90s, 45m, 2.5h; positive and at most the named ceiling."""

    def parse(text: str) -> float:
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        t = text.strip().lower()
        scale = units.get(t[-1:], None)
        try:
            value = float(t[:-1] if scale else t) * (scale or 1)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected a duration such as 600, 45m or 2h, got {text[:40]!r}") from None
        highest = _ceiling(ceiling)
        if not (0 < value <= highest):  # NaN fails too
            raise argparse.ArgumentTypeError(
                f"expected a positive duration of at most {highest:g} s ({highest / 86400:g} days), got {text[:40]!r}"
            )
        return value

    return parse


_duration = _duration_up_to("time_limit")


def _shard(text: str) -> tuple[int, int]:
    from .training.collect import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _int_list(text: str) -> list[int]:
    highest, most = _ceiling("workers"), _ceiling("worker_counts")
    what = f"expected up to {most} comma-separated integers in 1..{highest}, got {text[:40]!r}"
    parts = text.split(",")
    if len(parts) > most:
        raise argparse.ArgumentTypeError(what)
    try:
        values = [int(v) for v in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(what) from None
    if not values or min(values) < 1 or max(values) > highest:
        raise argparse.ArgumentTypeError(what)
    return sorted(set(values))


def _share_list(text: str) -> list[float]:
    """Comma-separated shares in (0, 1] (at most 64)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or len(values) > 64 or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated shares in (0, 1], got {text[:40]!r}")
    return sorted(set(values))


def _seed_list(text: str) -> list[int]:
    """Comma-separated plan seeds (at most 64), each in 0..the seed ceiling."""
    highest = _ceiling("seed")
    what = f"expected up to 64 comma-separated plan seeds in 0..{highest}, got {text[:40]!r}"
    parts = text.split(",")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(what) from None
    if not values or len(values) > 64 or min(values) < 0 or max(values) > highest:
        raise argparse.ArgumentTypeError(what)
    return sorted(set(values))


def _overhead(text: str):
    from .simulator import Overhead

    if text in ("none", "measured"):
        return Overhead(text)
    try:
        return Overhead("fixed", seconds=_duration_up_to("budget")(text))
    except (argparse.ArgumentTypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected none, measured or seconds per decision, got {text!r}") from None


