"""Published numbers regenerate: every generated block of the README and docs is what its command prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "regen_docs.py"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _regen(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=cwd, capture_output=True, text=True)


def test_checked_in_blocks_are_what_their_commands_print():
    """A stale table is a bug: after a change that moves a number, run tools/regen_docs.py."""
    proc = _regen("--check", *DOCS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_stale_block_is_caught_and_regenerated(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- generated: python -c \"print('| a |')\" -->\n| b |\n<!-- end generated -->\ntail\n")
    proc = _regen("--check", doc)
    assert proc.returncode == 1 and "stale" in proc.stdout
    assert _regen(doc).returncode == 0
    text = doc.read_text()
    assert "| a |" in text and "| b |" not in text and text.endswith("tail\n") and "commit" in text
    assert _regen("--check", doc).returncode == 0


def test_only_runs_the_blocks_whose_command_matches(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- generated: echo one -->\nold\n<!-- end generated -->\n"
                   "<!-- generated: echo two -->\nold\n<!-- end generated -->\n")
    assert _regen(doc, "--only", "two").returncode == 0
    text = doc.read_text()
    assert "one -->\nold\n" in text and "two -->\n```text\ntwo\n```\n" in text


def test_a_failing_command_is_an_error(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- generated: exit 3 -->\nx\n<!-- end generated -->\n")
    proc = _regen("--check", doc)
    assert proc.returncode == 2 and "exited 3" in proc.stderr


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_generated_block_is_closed(path):
    text = path.read_text()
    assert text.count("<!-- generated") == text.count("<!-- end generated")


def test_report_markdown_needs_only_the_summary(tmp_path, capsys):
    """Stored comparisons keep metadata.json and final alone; report --markdown prints their table."""
    from surrobench.cli import main
    from surrobench.compare import compare, markdown_summary, read_results, write_results
    from surrobench.simulator import Budget

    from toybench import ToyBenchmark

    results = compare(ToyBenchmark(), ["random", "nsga2"], seeds=range(3), budget=Budget(evaluations=20))
    out = write_results(results, tmp_path / "r")
    for name in ("runs", "hv"):
        next(out.glob(f"{name}.*")).unlink()
    with pytest.raises(ValueError, match="runs"):
        read_results(out)
    summary = read_results(out, summary_only=True)
    assert summary.summary().equals(results.summary())
    assert main(["report", str(out), "--markdown"]) == 0
    text = capsys.readouterr().out
    assert text == markdown_summary(results)
    assert "| nsga2 |" in text and "3 seeds" in text and text.count("\n|") == 4
    assert text.rstrip().splitlines()[-1] == results.rank_tests()[1].describe()  # what the seeds separate


def test_the_stored_50_seed_comparison_extends_the_one_hour_table():
    """docs/results/main50 is the README's one-hour command with --seeds 50: its seeds 0..9 must be
    docs/results/main run for run, so a change that moves one table cannot leave the other stale."""
    import pandas as pd

    main = pd.read_csv(ROOT / "docs/results/main/final.csv")
    more = pd.read_csv(ROOT / "docs/results/main50/final.csv")
    assert sorted(more["seed"].unique()) == list(range(50))
    first = more[more["seed"] < 10].merge(main, on=["optimizer", "seed", "n_workers"], suffixes=("", "_main"))
    assert len(first) == len(main) == 90
    for column in ("hv", "hv_max_fidelity", "test_hv", "jobs", "epochs_trained", "rank"):
        assert (first[column] == first[f"{column}_main"]).all(), column


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _broken_links(files: list[Path]) -> list[str]:
    """Relative links of the markdown ``files`` whose file or heading anchor does not exist."""
    import re

    def prose(path: Path) -> str:
        return re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # links inside code blocks are code

    def headings(path: Path) -> set[str]:
        return {_slug(h) for h in re.findall(r"^#+\s+(.*)$", prose(path), flags=re.M)}

    anchors = {p.resolve(): headings(p) for p in files}
    bad = []
    for path in files:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(path)):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            name, _, anchor = target.partition("#")
            dest = (path.parent / name).resolve() if name else path.resolve()
            if not dest.exists():
                bad.append(f"{path.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                if dest not in anchors:
                    anchors[dest] = headings(dest)
                if anchor not in anchors[dest]:
                    bad.append(f"{path.name}: {target} (no such heading)")
    return bad


def test_every_link_of_the_readme_and_docs_resolves(tmp_path):
    assert _broken_links(DOCS) == []
    # the check can fail: a planted page with a missing file and a missing heading
    (tmp_path / "a.md").write_text("# Title here\n\n[ok](#title-here) [gone](b.md) [nohead](a.md#nowhere)\n"
                                   "```\n[in code](nothing.md)\n```\n")
    assert _broken_links([tmp_path / "a.md"]) == ["a.md: b.md (no such file)", "a.md: a.md#nowhere (no such heading)"]


def test_the_data_readme_refit_command_follows_the_shipped_noise():
    """data/README.md's refit command must rebuild the shipped flowers17 surrogate's seed noise, not an older recipe."""
    import shlex

    import surrobench

    lines = [ln.strip() for ln in (ROOT / "data" / "README.md").read_text().splitlines()]
    commands = [ln for ln in lines if ln.startswith("surrobench fit training_logs/flowers17")]
    assert len(commands) == 2  # publish at once, and fit to compare before publishing
    noise = surrobench.load().surrogate.noise
    searched = {"bank": "predicted", "bank-logged": "mapped", "auto": "mapped"}  # auto picks bank-logged on flowers17
    assert noise.bank is not None, "the shipped surrogate has no residual bank: update this test and data/README.md"
    for command in commands:
        args = shlex.split(command)
        time = args[args.index("--noise-time") + 1] if "--noise-time" in args else "auto"
        assert searched.get(time) == noise.bank_search, f"data/README.md refits with --noise-time {time}"
