"""Output folders checked before long work starts, so that a bad path fails at once, not after it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["check_writable_dir"]


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a folder, or can be created as one, in which a
    file can be written; a one-line ``ValueError`` that starts with ``what`` otherwise.

    Nothing is left behind: a missing folder is not created (its nearest existing ancestor is
    checked instead) and the probe file is removed at once.
    """
    target = Path(path)
    existing = target
    while not existing.exists():
        if existing.is_symlink():
            raise ValueError(f"{what}: cannot write to {target}: {existing} is a broken link")
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        where = "it is a file, not a folder" if existing == target else f"{existing} is a file, not a folder"
        raise ValueError(f"{what}: cannot write to {target}: {where}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".surrobench-write-check-", dir=existing)
    except OSError as exc:
        raise ValueError(f"{what}: cannot write to {target}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
    return target
