"""The command line: bad input exits 2 with one line on stderr; `logs` prints the counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from surrobench.cli import main

from conftest import TINY_CONFIG, make_record, write_records


ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's surrobench, not an installed one
    return subprocess.run(
        [sys.executable, "-m", "surrobench.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


BAD_COLLECT = {
    "epochs-0": (["--epochs", "0"], "--epochs"),
    "epochs-30": (["--epochs", "30"], "--epochs"),
    "shard-3/2": (["--shard", "3/2"], "shard"),
    "shard-x": (["--shard", "x"], "shard"),
    "n-configs-negative": (["--n-configs", "-1"], "--n-configs"),
    "n-configs-zero": (["--n-configs", "0"], "--n-configs"),
    "unknown-dataset": (["--dataset", "mnist"], "mnist"),
    "replicate-fraction-2": (["--replicate-fraction", "2"], "--replicate-fraction"),
    "time-limit-abc": (["--time-limit", "abc"], "--time-limit"),
    "time-limit-negative": (["--time-limit", "-5m"], "--time-limit"),
    "jobs-zero": (["--jobs", "0"], "--jobs"),
    "scheduler-without-dask": (["--scheduler", "tcp://x:1"], "--scheduler"),
}


def _assert_one_line_error(result, needle):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "error" in lines[0] and needle in lines[0]


@pytest.mark.parametrize("args, needle", BAD_COLLECT.values(), ids=BAD_COLLECT.keys())
def test_bad_collect_input_exits_2(tmp_path, args, needle):
    out = tmp_path / "logs"
    result = _cli("collect", "--out", str(out), "--no-progress", *args, cwd=tmp_path)
    _assert_one_line_error(result, needle)
    assert not out.exists()  # nothing was collected


def test_flowers17_without_its_files_exits_2(tmp_path):
    out = tmp_path / "logs"
    args = ["collect", "--dataset", "flowers17", "--data-dir", str(tmp_path), "--out", str(out)]
    result = _cli(*args, "--n-configs", "2", "--epochs", "1", "--device", "cpu", "--no-progress", cwd=tmp_path)
    _assert_one_line_error(result, "x_train.npy")
    assert not out.exists()


def test_logs_on_missing_path_exits_2(tmp_path):
    _assert_one_line_error(_cli("logs", str(tmp_path / "nonexistent"), cwd=tmp_path), "nonexistent")


def test_unknown_command_exits_2(tmp_path):
    _assert_one_line_error(_cli("train", cwd=tmp_path), "train")


def test_logs_prints_counts(tmp_path):
    write_records(
        tmp_path / "digits" / "a.jsonl",
        [make_record(TINY_CONFIG, seed=s) for s in (0, 1)] + [make_record(seed=2, status="oom")],
    )
    result = _cli("logs", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    assert out.startswith("3 runs")
    lines = out.splitlines()
    assert any(line.split() == ["status", "ok", "oom"] for line in lines)
    assert ["digits", "cpu:Test", "CPU", "2", "1"] in [line.split() for line in lines]
    assert "digits 1 configs / 3 runs" in out and "incomplete records: 0" in out


def test_main_returns_codes_in_process(tmp_path, capsys):
    write_records(tmp_path / "a.jsonl", [make_record()])
    assert main(["logs", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("1 runs")
    assert main(["logs", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither a file nor a directory" in err
    with pytest.raises(SystemExit) as exc:
        main(["collect", "--epochs", "x"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_closed_pipe_ends_quietly(monkeypatch, tmp_path, capsys):
    sink = open(tmp_path / "sink", "w")

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            return sink.fileno()

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["compare", "--list"]) == 141
    sink.close()
    assert "Traceback" not in capsys.readouterr().err


def test_collect_to_an_unwritable_out_exits_2_before_training(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "file").write_text("keep")
    result = _cli("collect", "--out", str(tmp_path / "file"), "--n-configs", "1", "--epochs", "1", "--device", "cpu",
                  "--no-progress", cwd=tmp_path)
    _assert_one_line_error(result, "is a file, not a folder")
    assert (tmp_path / "file").read_text() == "keep"


def test_a_system_error_is_one_line_and_exit_1(monkeypatch, tmp_path, capsys):
    import surrobench.cli

    def full_disk(args):
        raise OSError(28, "No space left on device", str(tmp_path / "runs.csv"))

    monkeypatch.setitem(surrobench.cli.COMMANDS, "logs", full_disk)
    assert main(["logs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"surrobench logs: error: No space left on device: {tmp_path / 'runs.csv'}\n"


def test_run_cost_estimate_weights_the_runs_left_by_their_expected_cost():
    from surrobench.cli import RunCostEstimate

    eta = RunCostEstimate(["random", "msehvi", "custom"], runs_each=10, n_jobs=2)
    assert eta.remaining() is None and "first run" in eta.describe()
    assert eta.prior["random"] == 1.0 and eta.prior["msehvi"] > 1.0
    eta.finished("random", 2.0)  # twice its prior: every prior is scaled by 2
    prior_ms, prior_custom = eta.prior["msehvi"], eta.prior["custom"]  # custom: the median prior
    expected = (9 * 2.0 + 10 * prior_ms * 2.0 + 10 * prior_custom * 2.0) / 2
    assert eta.remaining() == pytest.approx(expected)
    for _ in range(10):
        eta.finished("msehvi", prior_ms / 2)  # measured: half its prior
    # msehvi is done; custom, never measured, takes the upper median of the ratios (0.5, 2) -> 2
    assert eta.remaining() == pytest.approx((9 * 2.0 + 10 * prior_custom * 2.0) / 2)
    eta.finished("custom", None)  # a stored cell: counted, not measured
    assert eta.left["custom"] == 9


def test_run_cost_estimate_is_never_below_the_costliest_run_left():
    """A run is not split between jobs: one long run left keeps the other jobs idle."""
    from surrobench.cli import RunCostEstimate

    eta = RunCostEstimate(["random", "ehvi"], runs_each=2, n_jobs=4)
    eta.finished("random", 1.0)
    eta.finished("ehvi", 100.0)
    assert eta.remaining() == pytest.approx(100.0)  # (1 + 100) / 4 would say 25 s
    eta.finished("ehvi", 100.0)
    assert eta.remaining() == pytest.approx(1.0)
    eta.finished("random", 1.0)
    assert eta.remaining() == 0.0 and eta.describe() == "about 0 s left"


def test_no_option_prefixes_and_clear_names(capsys):
    """argparse's prefix matching is off: --seed is not --seeds; an unknown optimizer gets a close match."""
    from surrobench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["compare", "--seed", "3"])
    assert exc.value.code == 2 and "unrecognized arguments: --seed 3" in capsys.readouterr().err
    assert main(["compare", "--optimizers", "msehv", "--evaluations", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'msehvi'?" in err and "optuna-tpe" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("seconds, text", [(86400, "24 simulated hours"), (3600, "1 simulated hour"),
                                           (600, "10 simulated minutes"), (90, "1.5 simulated minutes"),
                                           (1, "1 simulated second"), (0.5, "0.5 simulated seconds")])
def test_simulated_durations_read_as_words(seconds, text):
    from surrobench.compare import simulated

    assert simulated(seconds) == text


def test_help_texts_hold_no_markup(capsys):
    """What argparse prints is plain text: no reStructuredText roles or double backticks."""
    from surrobench.cli import build_parser

    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions:
        texts += [sub.format_help() for sub in action.choices.values()]
    for text in texts:
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, text[:200]
