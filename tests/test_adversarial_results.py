"""Damaged results folders, generated: ``read_results`` and ``surrobench report`` refuse each one
with a one-line ValueError (exit 2) that names the damaged file, never a traceback, never silence."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from surrobench.cli import main
from surrobench.compare import RESULT_TABLE_COLUMNS, compare, read_results, write_results
from toybench import ToyBenchmark


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    res = compare(ToyBenchmark(), ["random", "nsga2"], seeds=range(2), n_workers=[1, 2], budget=3600.0, n_grid=20)
    return write_results(res, tmp_path_factory.mktemp("results") / "good")


def _damage(rng: np.random.Generator, d, fmt="csv") -> str:
    """One random damage to one file; returns that file's name."""
    name = str(rng.choice(["runs", "hv", "final", "metadata"]))
    path = d / ("metadata.json" if name == "metadata" else f"{name}.{fmt}")
    data = path.read_bytes()
    kind = int(rng.integers(0, 8))
    if name == "metadata":
        choices = [data[: int(rng.integers(0, len(data) - 1))], b"[1, 2]", b"{\"table_format\": \"xls\"}",
                   b"\xff\xfe garbage", b"{\"budget\": 3}", b""]
        path.write_bytes(choices[kind % len(choices)])
        return path.name
    lines = data.decode().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    cols = header.rstrip("\n").split(",")
    required = RESULT_TABLE_COLUMNS[name]
    if kind == 0:  # truncated at a random byte (not at the very end)
        path.write_bytes(data[: int(rng.integers(0, len(data) - 1))])
    elif kind == 1:  # truncated at a row boundary
        path.write_text(header + "".join(rows[: int(rng.integers(0, len(rows)))]))
    elif kind == 2:  # a required column dropped
        i = cols.index(str(rng.choice(required)))
        path.write_text("".join(",".join(v for j, v in enumerate(line.rstrip("\n").split(",")) if j != i) + "\n"
                                for line in lines))
    elif kind == 3:  # a required column renamed
        i = cols.index(str(rng.choice(required)))
        cols[i] = cols[i] + "_x"
        path.write_text(",".join(cols) + "\n" + "".join(rows))
    elif kind == 4:  # a value blanked in a required column
        i = cols.index(str(rng.choice(required)))
        r = int(rng.integers(len(rows)))
        cells = rows[r].rstrip("\n").split(",")
        cells[i] = ""
        rows[r] = ",".join(cells) + "\n"
        path.write_text(header + "".join(rows))
    elif kind == 5:  # text in a numeric column
        numeric = [c for c in required if c not in ("optimizer", "config_id")]
        i = cols.index(str(rng.choice(numeric)))
        r = int(rng.integers(len(rows)))
        cells = rows[r].rstrip("\n").split(",")
        cells[i] = "abc"
        rows[r] = ",".join(cells) + "\n"
        path.write_text(header + "".join(rows))
    elif kind == 6:  # a row duplicated
        r = int(rng.integers(len(rows)))
        path.write_text(header + "".join(rows) + rows[r])
    else:  # binary garbage or deleted
        if rng.random() < 0.5:
            path.write_bytes(rng.bytes(int(rng.integers(1, 300))))
        else:
            path.unlink()
    return path.name


@pytest.mark.parametrize("seed", range(40))
def test_generated_damage_is_refused_naming_the_file(folder, tmp_path, seed):
    d = tmp_path / "r"
    shutil.copytree(folder, d)
    damaged = _damage(np.random.default_rng([18, 7, seed]), d)
    with pytest.raises(ValueError) as info:
        read_results(d)
    message = str(info.value)
    assert "\n" not in message and damaged in message, (damaged, message)


@pytest.mark.parametrize("seed", range(6))
def test_report_on_damaged_results_is_exit_2_with_one_line(folder, tmp_path, capsys, seed):
    d = tmp_path / "r"
    shutil.copytree(folder, d)
    damaged = _damage(np.random.default_rng([18, 8, seed]), d)
    capsys.readouterr()
    assert main(["report", str(d), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and damaged in err


def test_the_issue_cases(folder, tmp_path):
    d = tmp_path / "r"
    shutil.copytree(folder, d)
    (d / "hv.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"hv.csv lacks the column\(s\) optimizer, seed, n_workers, time"):
        read_results(d)
    shutil.copy(folder / "hv.csv", d / "hv.csv")
    (d / "metadata.json").write_text('{"budget": ')
    with pytest.raises(ValueError, match=r"metadata.json is damaged \(not valid JSON"):
        read_results(d)
    shutil.copy(folder / "metadata.json", d / "metadata.json")
    data = (d / "runs.csv").read_bytes()
    (d / "runs.csv").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match="runs.csv"):
        read_results(d)
    shutil.copy(folder / "runs.csv", d / "runs.csv")
    assert read_results(d).final.shape == read_results(folder).final.shape  # undamaged: read as written


def test_an_intact_folder_round_trips(folder):
    res = read_results(folder)
    meta = json.loads((folder / "metadata.json").read_text())
    assert res.metadata == meta and len(res.final) == 2 * 2 * 2
