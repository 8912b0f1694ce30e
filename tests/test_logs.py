"""Reading training logs: tidy tables and summaries (synthetic records in the trainer's schema)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from surrobench import space
from surrobench.logs import TornLineWarning, format_summary, log_files, read_logs, read_runs, summarize
from surrobench.space import NAMES

from conftest import CURVE_KEYS, TINY_CONFIG, make_record, write_records

DEEP = space.default_config()  # every hyperparameter active


@pytest.fixture
def logs(tmp_path):
    """Two files in nested folders: 2 digits configs (one with 3 seeds), a flowers run, faults."""
    a = write_records(
        tmp_path / "digits" / "a.jsonl",
        [make_record(TINY_CONFIG, seed=s, epochs=3) for s in (0, 1, 2)]
        + [make_record(DEEP, seed=0, epochs=3, status="diverged")],
    )
    b = write_records(
        tmp_path / "flowers17" / "sub" / "b.jsonl",
        [
            make_record(DEEP, dataset="flowers17", seed=5, epochs=2, device="cuda:Test GPU", jobs_on_device=4),
            make_record(DEEP, dataset="flowers17", seed=5, epochs=2, device="cuda:Test GPU", retime=True),
            make_record(TINY_CONFIG, dataset="flowers17", seed=6, epochs=2, status="error", n_recorded=0),
        ],
    )
    return tmp_path, a, b


def test_log_files(logs):
    root, a, b = logs
    (root / "notes.txt").write_text("not a log")
    assert log_files(root) == sorted([a, b])
    assert log_files(a) == [a]


def test_read_logs_tidy_table(logs):
    root, *_ = logs
    df = read_logs(root)
    assert len(df) == 3 * 4 + 2 * 2  # run x epoch; the error run recorded no epoch
    assert {f"config_{n}" for n in NAMES} <= set(df.columns) and set(CURVE_KEYS) <= set(df.columns)
    for _, run in df.groupby("key"):
        assert run["epoch"].tolist() == list(range(1, len(run) + 1))
    tiny = df[df["config_id"] == space.config_id(TINY_CONFIG)]
    assert tiny["config_n_conv_1"].isna().all() and tiny["config_n_fc_2"].isna().all()
    assert (tiny["config_n_conv_0"] == TINY_CONFIG["n_conv_0"]).all()
    deep = df[df["config_id"] == space.config_id(DEEP)]
    assert deep[[f"config_{n}" for n in NAMES]].notna().all().all()
    first = df[(df["seed"] == 1) & (df["dataset"] == "digits")].sort_values("epoch")
    expected = make_record(TINY_CONFIG, seed=1, epochs=3)["curve"]
    for k in CURVE_KEYS:
        np.testing.assert_allclose(first[k].to_numpy(), expected[k])
    assert df["retime"].sum() == 2 and set(df.loc[df["retime"], "dataset"]) == {"flowers17"}


def test_read_logs_none_becomes_nan(tmp_path):
    rec = make_record(epochs=3, status="diverged")
    for k in ("train_loss", "train_acc", "train_time", "eval_time"):
        rec["curve"][k][1:] = [None, None]
    df = read_logs(write_records(tmp_path / "x.jsonl", [rec]))
    assert df["train_time"].isna().tolist() == [False, True, True]
    assert df["val_error"].notna().all()


def test_read_logs_empty(tmp_path):
    df = read_logs(tmp_path)
    assert df.empty and {"epoch", "val_error", "config_lr_init"} <= set(df.columns)


def test_read_runs(logs):
    root, a, _ = logs
    runs = read_runs(root)
    assert len(runs) == 7
    assert runs["status"].value_counts().to_dict() == {"ok": 5, "diverged": 1, "error": 1}
    assert runs.loc[runs["status"] == "error", "n_recorded"].tolist() == [0]
    assert not runs["incomplete"].any()
    assert {f"config_{n}" for n in NAMES} <= set(runs.columns)
    assert (runs.loc[runs["file"] == str(a), "dataset"] == "digits").all()
    assert runs["jobs_on_device"].max() == 4


@pytest.mark.parametrize("bad", ["missing", "missing.jsonl"])
def test_missing_path_refused(tmp_path, bad):
    for fn in (read_logs, read_runs, summarize):
        with pytest.raises(ValueError, match="neither a file nor a directory"):
            fn(tmp_path / bad)


def test_summarize_counts(logs):
    root, *_ = logs
    s = summarize(root)
    assert s["runs"] == 7 and s["torn_lines"] == [] and s["incomplete"] == []
    by = s["by"]
    assert by.loc[("digits", "cpu:Test CPU"), "ok"] == 3
    assert by.loc[("digits", "cpu:Test CPU"), "diverged"] == 1
    assert by.loc[("flowers17", "cuda:Test GPU"), "ok"] == 2
    assert by.loc[("flowers17", "cuda:Test GPU"), "error"] == 0
    assert by.loc[("flowers17", "cpu:Test CPU"), "error"] == 1
    assert by.to_numpy().sum() == 7
    rep = s["replicates"]
    assert list(rep.index) == ["digits"]  # the re-timed flowers run is not a replicate
    assert (rep.loc["digits", "configs"], rep.loc["digits", "runs"]) == (1, 3)
    assert s["configs"].to_dict() == {"digits": 2, "flowers17": 2}
    assert s["retimed"].to_dict() == {"flowers17": 1}
    assert s["status_counts"] == {"ok": 5, "diverged": 1, "error": 1}


def test_format_summary(logs):
    root, *_ = logs
    text = format_summary(summarize(root))
    assert text.startswith("7 runs\n")
    assert "cpu:Test CPU" in text and "cuda:Test GPU" in text
    assert "digits 1 configs / 3 runs" in text
    assert "distinct configs: digits 2, flowers17 2" in text
    assert "re-timed alone on their device: flowers17 1" in text
    assert "incomplete records: 0" in text and "torn lines" not in text


def test_incomplete_and_torn_lines_reported(tmp_path):
    path = write_records(
        tmp_path / "x.jsonl",
        [make_record(seed=0, epochs=3), make_record(seed=1, epochs=5, n_recorded=2, key="short-one")],
    )
    with open(path, "a") as f:
        f.write('{"schema": 1, "config"')  # a killed writer's last line
    s = summarize(path)
    assert s["runs"] == 2
    assert s["incomplete"] == [[str(path), "short-one"]]
    assert len(s["torn_lines"]) == 1 and "x.jsonl:3" in s["torn_lines"][0]
    text = format_summary(s)
    assert "incomplete records: 1" in text and "short-one" in text
    assert "torn lines skipped: 1" in text


def test_short_curve_of_a_diverged_or_failed_run_is_not_incomplete(tmp_path):
    path = write_records(tmp_path / "x.jsonl", [make_record(epochs=5, n_recorded=0, status="error")])
    assert summarize(path)["incomplete"] == []


def test_summarize_empty_directory(tmp_path):
    s = summarize(tmp_path)
    assert s["runs"] == 0 and format_summary(s) == "0 runs"


def test_torn_line_warning_category(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"curve": {}, "config": {}}\n{"curve":')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = read_runs(path)
    assert len(runs) == 1 and [w.category for w in caught] == [TornLineWarning]
    assert math.isnan(runs.loc[0, "config_n_conv_l"]) and isinstance(runs, pd.DataFrame)


def test_last_line_without_newline_is_torn(tmp_path):
    path = write_records(tmp_path / "x.jsonl", [make_record(seed=0), make_record(seed=1)])
    path.write_bytes(path.read_bytes()[:-1])  # the final newline never made it to disk
    with pytest.warns(TornLineWarning, match="x.jsonl:2"):
        assert [r["seed"] for r in read_runs(path).to_dict("records")] == [0]
