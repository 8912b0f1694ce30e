"""Regenerate the numbers the README and docs publish, from the commands that produce them.

A generated block in a markdown file looks like this:

    <!-- generated: surrobench quality flowers17 -->
    ```text
    ...what the command printed...
    ```
    <!-- end generated (commit 1a2b3c4, 2026-12-01) -->

``python tools/regen_docs.py README.md docs/*.md`` runs every block's command from the
repository root and writes its output into the block, with the commit and date. With
``--check`` nothing is written: it exits 1 and names every block whose text differs from
what its command prints now (a stale table is a bug). Blocks whose marker says
``generated (slow):`` run minutes and are skipped by ``--check`` unless ``--slow``; they are
refreshed by a plain run (``--skip-slow`` leaves them as they are; ``--only TEXT`` runs only the
blocks whose command contains TEXT). A command's own output must be deterministic for ``--check``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(
    r"(?P<head><!-- generated(?P<slow> \(slow\))?: (?P<cmd>.+?) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<tail><!-- end generated[^>]*-->)",
    re.S,
)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(cmd: str) -> str:
    """The block text for ``cmd``: its stdout in a text fence, or bare where it holds a markdown table."""
    # The interpreter's own bin first: `surrobench` and `python` are this environment's.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] or ''}")
    out = proc.stdout.rstrip("\n") + "\n"
    return out if "\n|---" in "\n" + out else f"```text\n{out}```\n"


def process(path: Path, *, check: bool, slow: bool, skip_slow: bool = False, only: str | None = None) -> list[str]:
    """Regenerate (or check) the blocks of one file; returns the stale ones' commands."""
    text = path.read_text()
    stale: list[str] = []
    stamp = f"<!-- end generated (commit {_commit()}, {_dt.date.today().isoformat()}) -->"

    def replace(m: re.Match) -> str:
        if m.group("slow") and ((check and not slow) or skip_slow):
            return m.group(0)
        if only is not None and only not in m.group("cmd"):
            return m.group(0)
        body = run(m.group("cmd"))
        if body != m.group("body"):
            stale.append(m.group("cmd"))
            return m.group("head") + body + (m.group("tail") if check else stamp)
        return m.group(0)

    new = BLOCK.sub(replace, text)
    if not check and new != text:
        path.write_text(new)
    return stale


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a block is stale")
    p.add_argument("--slow", action="store_true", help="with --check, also run the slow blocks")
    p.add_argument("--skip-slow", action="store_true", help="regenerate only the blocks that are not slow")
    p.add_argument("--only", metavar="TEXT", help="only the blocks whose command contains TEXT")
    args = p.parse_args(argv)
    failed = False
    for path in args.files:
        try:
            stale = process(path, check=args.check, slow=args.slow, skip_slow=args.skip_slow, only=args.only)
        except (OSError, RuntimeError) as exc:
            print(f"regen_docs: {path}: {exc}", file=sys.stderr)
            return 2
        for cmd in stale:
            print(f"{path}: {'stale' if args.check else 'regenerated'}: {cmd}")
            failed = failed or args.check
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
