"""Reading training logs: tidy tables and summaries (synthetic records in the trainer's schema)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from surrobench import space
from surrobench.cli import main
from surrobench.logs import (
    InvalidRecordWarning,
    TornLineWarning,
    coverage,
    curve_sample,
    format_summary,
    iter_records,
    log_files,
    read_logs,
    read_runs,
    summarize,
)
from surrobench.plots import plot_learning_curves
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


def test_torn_line_and_invalid_record_warning_categories(tmp_path):
    path = write_records(tmp_path / "x.jsonl", [make_record()])
    with open(path, "a") as f:
        f.write('{"curve": {}, "config": {}}\n{"curve":')  # a record of the wrong schema, then a torn line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = read_runs(path)
    assert len(runs) == 1 and [w.category for w in caught] == [InvalidRecordWarning, TornLineWarning]
    assert str(caught[0].message) == f"{path}:2: dataset: missing"
    assert pd.isna(runs.loc[0, "config_n_conv_1"]) and isinstance(runs, pd.DataFrame)


def test_last_line_without_newline_is_torn(tmp_path):
    path = write_records(tmp_path / "x.jsonl", [make_record(seed=0), make_record(seed=1)])
    path.write_bytes(path.read_bytes()[:-1])  # the final newline never made it to disk
    with pytest.warns(TornLineWarning, match="x.jsonl:2"):
        assert [r["seed"] for r in read_runs(path).to_dict("records")] == [0]


# ----------------------------------------------------------------------------- coverage


def _cfg(n_conv_l, n_fc_l, batch_size, **extra):
    cfg = {"n_conv_l": n_conv_l, "n_fc_l": n_fc_l, "kernel_size": 3, "lr_init": 1e-3, "batch_norm": False,
           "batch_size": batch_size, "global_avg_pooling": True}
    cfg.update({f"n_conv_{i}": 16 for i in range(n_conv_l)})
    cfg.update({f"n_fc_{i}": 8 for i in range(n_fc_l)})
    cfg.update(extra)
    return space.validate(cfg)


@pytest.fixture
def coverage_logs(tmp_path):
    """Known depths, batch sizes (1, 9, 10, 99, 100, 512), statuses and devices over two datasets."""
    gpu = {"device": "cuda:Test GPU", "jobs_on_device": 4}
    records = [
        make_record(_cfg(1, 1, 1), seed=0),
        make_record(_cfg(1, 1, 9), seed=0, status="diverged"),
        make_record(_cfg(1, 1, 9), seed=1, **gpu),
        make_record(_cfg(2, 3, 10), seed=0, **gpu),
        make_record(_cfg(3, 3, 99), seed=0, status="error", n_recorded=0),
        make_record(_cfg(3, 2, 100), seed=0, **gpu),
        make_record(_cfg(3, 2, 100), seed=0, retime=True, device="cuda:Test GPU"),
        make_record(_cfg(1, 3, 512), dataset="flowers17", seed=0, status="oom", n_recorded=0),
        make_record(_cfg(2, 3, 64), dataset="flowers17", seed=0),
    ]
    write_records(tmp_path / "a.jsonl", records[:5])
    write_records(tmp_path / "sub" / "b.jsonl", records[5:])
    return tmp_path


def test_coverage_counts(coverage_logs):
    cov = coverage(read_runs(coverage_logs))
    depth = cov["depth"]
    assert list(depth.columns) == ["digits", "flowers17"]
    assert depth.to_dict("index") == {
        (1, 1): {"digits": 3, "flowers17": 0},
        (1, 3): {"digits": 0, "flowers17": 1},
        (2, 3): {"digits": 1, "flowers17": 1},
        (3, 2): {"digits": 2, "flowers17": 0},
        (3, 3): {"digits": 1, "flowers17": 0},
    }
    batch = cov["batch_size"]
    assert list(batch.index) == ["1-9", "10-99", "100-512"]  # in numeric order, capped at the space's 512
    assert batch["digits"].tolist() == [3, 2, 2] and batch["flowers17"].tolist() == [0, 1, 1]
    assert cov["status"].to_dict("index") == {
        "diverged": {"digits": 1, "flowers17": 0},
        "error": {"digits": 1, "flowers17": 0},
        "ok": {"digits": 5, "flowers17": 1},
        "oom": {"digits": 0, "flowers17": 1},
    }
    assert cov["device"].to_dict("index") == {
        "cpu:Test CPU": {"digits": 3, "flowers17": 2},
        "cuda:Test GPU": {"digits": 4, "flowers17": 0},
    }
    for table in cov.values():
        assert table.to_numpy().sum() == 9  # every run counted once, re-timed ones included


def test_coverage_in_summary_and_text(coverage_logs):
    s = summarize(coverage_logs)
    assert s["coverage"]["device"].loc["cuda:Test GPU", "digits"] == 4
    text = format_summary(s)
    for title in ("network depth (n_conv_l, n_fc_l)", "batch-size decade", "status", "device"):
        assert f"coverage: runs per {title}:" in text
    assert text.index("1-9") < text.index("10-99") < text.index("100-512")


def test_coverage_of_a_record_without_config_values(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"curve": {}, "config": {}, "dataset": "digits", "status": "ok", "device": "cpu"}\n')
    with pytest.warns(InvalidRecordWarning, match="x.jsonl:1: key: missing"):
        assert read_runs(path).empty  # such a line never reaches a table
    runs = read_runs(write_records(tmp_path / "y.jsonl", [make_record()]))
    runs[[c for c in runs.columns if c.startswith("config_")]] = np.nan  # a table built elsewhere may lack them
    cov = coverage(runs)
    assert cov["batch_size"].to_dict("index") == {"unknown": {"digits": 1}}
    assert cov["depth"].to_numpy().sum() == 1


def test_coverage_empty():
    assert all(t.empty for t in coverage(pd.DataFrame()).values())


# ----------------------------------------------------------------------------- learning curves


def test_curve_sample_is_seeded_and_tidy(coverage_logs):
    full = curve_sample(coverage_logs, color_by="batch_size", n=100)
    assert sorted(full.columns) == ["dataset", "epoch", "key", "status", "val_error", "value"]
    assert full.groupby("dataset")["key"].nunique().to_dict() == {"digits": 6, "flowers17": 1}  # no-epoch runs left out
    assert sorted(full.groupby("key")["value"].first().astype(int)) == [1, 9, 9, 10, 64, 100, 100]
    few = curve_sample(coverage_logs, color_by="batch_size", n=2, seed=3)
    assert few.groupby("dataset")["key"].nunique().to_dict() == {"digits": 2, "flowers17": 1}
    pd.testing.assert_frame_equal(few, curve_sample(coverage_logs, color_by="batch_size", n=2, seed=3))
    picks = {tuple(sorted(curve_sample(coverage_logs, n=2, seed=s)["key"].unique())) for s in range(8)}
    assert len(picks) > 1  # the seed picks the sample
    run = full[full["key"] == few["key"].iloc[0]]
    expected = next(r for r in iter_records(coverage_logs) if r["key"] == few["key"].iloc[0])
    assert run["val_error"].tolist() == expected["curve"]["val_error"]


def test_curve_sample_marks_inactive_values(coverage_logs):
    df = curve_sample(coverage_logs, color_by="n_conv_2")
    per_run = df.groupby("key")["value"].first()
    assert per_run.notna().sum() == 2 and per_run.dropna().tolist() == [16.0, 16.0]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"color_by": "learning_rate"}, "color_by: unknown hyperparameter 'learning_rate'"),
    ({"n": 0}, "n: must be a positive int"),
    ({"n": True}, "n: must be a positive int"),
])
def test_curve_sample_bad_arguments(coverage_logs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        curve_sample(coverage_logs, **kwargs)


@pytest.mark.parametrize("color_by", ["lr_init", "n_conv_l", "n_conv_2", "batch_norm", "kernel_size"])
def test_plot_learning_curves_writes_a_png(coverage_logs, tmp_path, color_by):
    out = plot_learning_curves(curve_sample(coverage_logs, color_by=color_by), tmp_path / "c.png", color_by=color_by)
    assert out == tmp_path / "c.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_learning_curves_refuses_bad_paths_and_names(coverage_logs, tmp_path):
    curves = curve_sample(coverage_logs)
    with pytest.raises(ValueError, match="folder .* does not exist"):
        plot_learning_curves(curves, tmp_path / "nope" / "c.png", color_by="lr_init")
    with pytest.raises(ValueError, match="not a writable file path"):
        plot_learning_curves(curves, tmp_path, color_by="lr_init")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        plot_learning_curves(curves, tmp_path / "c.png", color_by="depth")
    assert not (tmp_path / "c.png").exists()


def test_cli_logs_coverage_and_plot(coverage_logs, tmp_path, capsys):
    png = tmp_path / "curves.png"
    assert main(["logs", str(coverage_logs), "--plot", str(png), "--color-by", "batch_size", "--sample", "3"]) == 0
    out = capsys.readouterr().out
    assert "coverage: runs per batch-size decade:" in out
    assert f"learning curves of 4 runs: {png}" in out  # 3 of digits, the 1 of flowers17
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("extra", "match"), [
    (["--plot", "{tmp}/c.png", "--color-by", "colour"], "unknown hyperparameter 'colour'"),
    (["--plot", "{tmp}/missing/c.png"], "folder .* does not exist"),
    (["--plot", "{tmp}"], "not a writable file path"),
    (["--sample", "0"], r"expected an integer in 1\.\.100000"),
])
def test_cli_logs_bad_arguments_exit_2_with_one_line(coverage_logs, tmp_path, capsys, extra, match):
    argv = ["logs", str(coverage_logs)] + [a.format(tmp=tmp_path) for a in extra]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse refuses before the command runs
        rc = exc.code
    captured = capsys.readouterr()
    assert rc == 2 and len(captured.err.strip().splitlines()) == 1 and re.search(match, captured.err), captured.err
    assert captured.out == "" and not (tmp_path / "c.png").exists()


def test_logs_count_runs_per_plan_and_kind(tmp_path):
    from conftest import make_record, write_records
    from surrobench.logs import format_summary, summarize
    from surrobench.space import sample

    records = [make_record(c, seed=i, key=f"k{i}") for i, c in enumerate(sample(seed=3, n=5))]
    records[3]["plan"] = {"seed": 7, "index": 0, "replicate": 0, "retime": False, "kind": "optimizers", "source": "r"}
    records[4]["plan"] = {"seed": 7, "index": 1, "replicate": 0, "retime": False, "kind": "optimizers", "source": "r"}
    text = format_summary(summarize(write_records(tmp_path / "runs.jsonl", records)))
    assert "runs per plan, digits: optimizers 7 (2), random 0 (3)" in text
