"""Hostile log records, generated: a field of the wrong type or range is skipped and reported as
``FILE:LINE: field: problem``, counted by ``surrobench logs``, never crashes a reader and never
reaches a fit; the good records around it are all kept."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CURVE_KEYS, make_record, write_records
from surrobench.cli import main
from surrobench.logs import InvalidRecordWarning, check_record, iter_records, read_logs, read_runs, summarize
from surrobench.surrogate.data import load_run_data

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
TOP_FIELDS = ["dataset", "key", "config", "config_id", "seed", "epochs", "status", "curve", "n_params",
              "jobs_on_device", "device", "wall_time", "plan", "schema"]


@st.composite
def hostile(draw) -> tuple[dict, str]:
    """A valid record with one field (top-level, in the curve, in the config or in the plan) replaced."""
    rec = make_record(epochs=3, seed=draw(st.integers(0, 5)))
    where = draw(st.sampled_from(["top", "curve", "curve_value", "config", "plan"]))
    value = draw(JSON_VALUES | st.sampled_from([7.5, -0.1, 1.0000001, "abc", [0.1], {"a": 1}, 10**30, True]))
    if where == "top":
        field = draw(st.sampled_from(TOP_FIELDS))
        if draw(st.booleans()):
            rec.pop(field)
            value = "<missing>"
        else:
            rec[field] = value
    elif where == "curve":
        field = draw(st.sampled_from(CURVE_KEYS))
        rec["curve"][field] = value
        field = f"curve.{field}"
    elif where == "curve_value":
        key = draw(st.sampled_from(CURVE_KEYS))
        i = draw(st.integers(0, 2))
        rec["curve"][key][i] = value
        field = f"curve.{key}[{i}]"
    elif where == "config":
        name = draw(st.sampled_from(sorted(rec["config"])))
        rec["config"][name] = value
        field = f"config.{name}"
    else:
        field = draw(st.sampled_from(["retime", "seed", "index", "replicate"]))
        rec["plan"][field] = value
        field = f"plan.{field}"
    return rec, field


def _valid(rec) -> bool:
    try:
        check_record(rec)
        return True
    except ValueError:
        return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile())
def test_a_hostile_record_is_skipped_and_named_never_crashes(tmp_path_factory, case):
    rec, field = case
    path = tmp_path_factory.mktemp("logs") / "x.jsonl"
    good = [make_record(epochs=3, seed=10), make_record(epochs=3, seed=11)]
    write_records(path, [good[0], rec, good[1]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = read_runs(path)
        df = read_logs(path)
    invalid = [str(w.message) for w in caught if w.category is InvalidRecordWarning]
    if _valid(rec):  # a harmless change (e.g. an optional field set to null)
        assert invalid == [] and len(runs) == 3
        return
    assert len(invalid) == 2  # once per reader
    message = invalid[0]
    assert message.startswith(f"{path}:2: ") and "\n" not in message
    reported = message.split(": ", 2)[1]
    # the message names the field changed (a changed config may instead be reported under config_id, which
    # no longer matches it; a curve of the wrong length is reported beside curve.val_error)
    named = message.split(": ", 1)[1]
    assert reported.startswith(field) or field.split("[")[0] in named or reported == "config_id", (message, field)
    assert sorted(runs["seed"]) == [10, 11] and set(df["seed"]) == {10, 11}
    s = summarize(path)
    assert s["runs"] == 2 and s["invalid_records"] == [message]


@pytest.mark.parametrize("field, value, problem", [
    ("config", "abc", "config: must be an object"),
    ("curve", [0.1], "curve: must be an object"),
    ("val_error", 0.5, "curve.val_error: must be a list"),
    ("plan", "x", "plan: must be an object"),
    ("dataset", ["digits"], "dataset: must be a non-empty string"),
    ("val_error_7.5", 7.5, r"curve.val_error\[1\]: must be a finite number in \[0, 1\]"),
    ("seed", "abc", "seed: must be an int >= 0"),
    ("epochs", 99, "epochs: must be an int in 1..25"),
    ("status", "great", "status: must be one of"),
])
def test_the_issue_cases_are_named(tmp_path, field, value, problem):
    rec = make_record(epochs=3)
    if field == "val_error":
        rec["curve"]["val_error"] = value
    elif field == "val_error_7.5":
        rec["curve"]["val_error"][1] = value
    else:
        rec[field] = value
    path = write_records(tmp_path / "x.jsonl", [rec])
    with pytest.warns(InvalidRecordWarning, match=rf"x.jsonl:1: {problem}"):
        assert list(iter_records(path)) == []


def test_nan_and_infinity_in_a_line_are_refused(tmp_path):
    rec = make_record(epochs=3)
    line = json.dumps(rec).replace('"wall_time": 1.5', '"wall_time": NaN')
    path = tmp_path / "x.jsonl"
    path.write_text(line + "\n" + json.dumps(make_record(epochs=3, seed=1)) + "\n")
    with pytest.warns(UserWarning, match="x.jsonl:1"):
        assert [r["seed"] for r in iter_records(path)] == [1]


def test_logs_command_counts_invalid_records_and_exits_0(tmp_path, capsys):
    bad = make_record(epochs=3, seed=1)
    bad["config"] = "abc"
    worse = make_record(epochs=3, seed=2)
    worse["curve"]["val_error"][0] = 7.5
    write_records(tmp_path / "x.jsonl", [make_record(epochs=3), bad, worse])
    assert main(["logs", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "1 runs" in out.out and "invalid records skipped: 2" in out.out
    assert "x.jsonl:2: config: must be an object" in out.out and "x.jsonl:3: curve.val_error[0]" in out.out
    assert "Traceback" not in out.err


def test_no_invalid_record_reaches_a_fit(tmp_path):
    good = [make_record(epochs=3, seed=s) for s in range(3)]
    bad = make_record(epochs=3, seed=9)
    bad["curve"]["val_error"][2] = 7.5
    nodataset = make_record(epochs=3, seed=8)
    del nodataset["dataset"]
    write_records(tmp_path / "x.jsonl", good + [bad, nodataset])
    with pytest.warns(InvalidRecordWarning):
        data = load_run_data(tmp_path)
    assert sorted(data.seeds.tolist()) == [0, 1, 2]
    assert np.nanmax(data.val) <= 1


def test_fit_on_only_invalid_lines_is_one_line_exit_2(tmp_path, capsys):
    bad = make_record(epochs=3)
    bad["dataset"] = None
    write_records(tmp_path / "x.jsonl", [bad])
    assert main(["fit", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unknown dataset None" not in err
    assert f"surrobench: warning: {tmp_path / 'x.jsonl'}:1: dataset: missing" in err
    assert err.strip().splitlines()[-1].startswith("surrobench fit: error:")


def test_a_file_of_no_records_shows_20_skipped_lines_then_their_count_then_one_error(tmp_path, capsys):
    from surrobench.cli import _Warnings

    path = tmp_path / "table.csv"  # a CSV passed as logs: every line is skipped
    path.write_text("".join(f"x,{i}\n" for i in range(50)))
    assert main(["fit", str(path), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == _Warnings.limit + 2, lines
    assert lines[_Warnings.limit - 1] == f"surrobench: warning: {path}:{_Warnings.limit}: skipping a torn or invalid log line"
    assert lines[-2] == ("surrobench: warning: 30 more skipped log lines not shown (50 in all; "
                         "`surrobench logs PATH` counts them by kind)")
    assert lines[-1] == f"surrobench fit: error: logs: {path} holds no run records (every line skipped, or none there)"
    assert not (tmp_path / "out").exists()


def test_an_endless_line_is_skipped_in_bounded_memory(tmp_path):
    import tracemalloc

    from surrobench.logs import MAX_LINE_BYTES

    path = tmp_path / "x.jsonl"
    with open(path, "wb") as f:
        f.write((json.dumps(make_record(epochs=3, seed=1)) + "\n").encode())
        f.write(b"[" + b"0," * MAX_LINE_BYTES + b"0]\n")  # a "record" of twice the ceiling
        f.write((json.dumps(make_record(epochs=3, seed=2)) + "\n").encode())
    tracemalloc.start()
    try:
        with pytest.warns(InvalidRecordWarning, match=f"x.jsonl:2: record: longer than {MAX_LINE_BYTES} bytes"):
            seeds = [r["seed"] for r in iter_records(path)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seeds == [1, 2] and peak < 3 * MAX_LINE_BYTES  # the line is never held whole
