"""Hostile numbers on the command line and in the API, generated: every count and budget is
either accepted within its documented ceiling or refused up front with one line and exit 2
(never an OverflowError, never a run without end); numpy integers work wherever ints do."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surrobench import compare as compare_mod
from surrobench import simulator
from surrobench import validate as validate_mod
from surrobench.cli import build_parser, main
from surrobench.training import collect as collect_mod

DAY = 86400.0
# option -> (command, the ceiling the README documents, kind)
OPTIONS = {
    "--seeds": ("compare", 1000, "int"),
    "--evaluations": ("compare", 100_000, "int"),
    "--jobs": ("compare", 256, "int"),
    "--workers": ("compare", 1024, "list"),
    "--budget": ("compare", 30 * DAY, "duration"),
    "--overhead": ("compare", 30 * DAY, "duration"),
    "--n-configs": ("collect", 100_000, "int"),
    "--replicates": ("collect", 100, "int"),
    "--plan-seed": ("collect", 2**32 - 1, "int0"),
    "--threads": ("collect", 256, "int"),
    "--time-limit": ("collect", 365 * DAY, "duration"),
    "--sample": ("logs", 100_000, "int"),
}

NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["99999999999999999999", "1e99", "-1", "-1h", "0", "nan", "inf", "-inf", "1e3", "0x10", "1_000",
                     " 7 ", "", "--", "٣", "1.5", "1,2", "9" * 5000, "-0", "+3", "1d", "2.5h", "-.5m", "1e-300"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(lambda n, u: f"{n}{u}", st.floats(-1e12, 1e12, allow_nan=False).map(lambda f: f"{f:g}"),
              st.sampled_from(["s", "m", "h", "d", "x", ""])),
    st.lists(st.integers(-5, 2000), min_size=0, max_size=70).map(lambda v: ",".join(map(str, v))),
    st.text(max_size=12),
)

BASE = {"compare": ["compare"], "collect": ["collect"], "logs": ["logs"]}


def _parse(argv, capsys):
    capsys.readouterr()
    try:
        return build_parser().parse_args(argv), None
    except SystemExit as exc:
        return None, (exc.code, capsys.readouterr().err)


def _accepted_value(args, option):
    return getattr(args, option.lstrip("-").replace("-", "_"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(sorted(OPTIONS)), text=NUMBERS)
def test_every_number_is_within_its_ceiling_or_refused_in_one_line(option, text, capsys):
    command, ceiling, kind = OPTIONS[option]
    args, refused = _parse([*BASE[command], f"{option}={text}"], capsys)
    if refused is not None:
        code, err = refused
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert option in err and "error" in err
        return
    value = _accepted_value(args, option)
    if kind == "list":
        assert value and all(isinstance(v, int) and 1 <= v <= ceiling for v in value) and len(value) <= 64
    elif kind == "duration":
        seconds = value.seconds if option == "--overhead" else value
        if option == "--overhead" and value.model != "fixed":
            return
        assert isinstance(seconds, float) and math.isfinite(seconds) and 0 < seconds <= ceiling
    else:
        assert isinstance(value, int) and (0 if kind == "int0" else 1) <= value <= ceiling


@pytest.mark.parametrize("option, text", [
    ("--workers", "99999999999999999999"), ("--seeds", "99999999999999999999"), ("--budget", "1e99"),
    ("--evaluations", "99999999999999999999"), ("--budget", "-1h"), ("--jobs", "999"), ("--budget", "nan"),
])
def test_the_issue_cases_exit_2_at_once(tmp_path, capsys, option, text):
    capsys.readouterr()
    try:
        code = main(["compare", option, text, "--out", str(tmp_path / "out"), "--no-progress", "--no-plots"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and option in err and "expected" in err
    assert not (tmp_path / "out").exists()


def test_collect_n_configs_past_the_ceiling_exits_2_before_planning(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["collect", "--n-configs", "99999999999999999999", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "--n-configs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------- the library


@pytest.mark.parametrize("call, message", [
    (lambda: simulator.Budget(seconds=1e99), "budget: seconds must be at most"),
    (lambda: simulator.Budget(evaluations=10**20), "budget: evaluations must be an int in 1..100000"),
    (lambda: simulator.Budget(evaluations=2.0), "budget: evaluations must be an int"),
    (lambda: simulator.Overhead("fixed", seconds=1e99), "overhead: seconds must lie in"),
    (lambda: compare_mod.compare(None, ["random"], seeds=range(10**20)), "seeds: expected 1..1000 seeds"),
    (lambda: compare_mod.compare(None, ["random"], n_workers=10**20), "n_workers: must be an int in 1..1024"),
    (lambda: compare_mod.compare(None, ["random"], n_workers=range(10**6)), "n_workers: expected 1..64"),
    (lambda: compare_mod.compare(None, ["random"], n_jobs=10**6), "n_jobs: must be an int in 1..256"),
    (lambda: compare_mod.compare(None, ["random"], seeds="abc"), "seeds: expected an iterable of ints, got 'abc'"),
    (lambda: compare_mod.compare(None, ["random"], seeds=3), r"seeds: expected the seeds themselves, e.g. range\(3\) "
                                                           r"or \[3\], got the int 3"),
    (lambda: compare_mod.compare(None, ["random"], seeds=[2, 0, 2]), "seeds: 2 is given twice"),
    (lambda: compare_mod.compare(None, ["random"], n_grid=1), "n_grid: must be an int in 2..100000, got 1"),
    (lambda: compare_mod.compare(3, ["random"]), "benchmark: expected a benchmark .problem.., answer..., a "
                                                 "surrogate path or name, or None; got int 3"),
    (lambda: validate_mod.validate("no-logs", seeds=5), r"seeds: expected the seeds themselves, e.g. range\(5\)"),
    (lambda: collect_mod.plan_items(0, 10**20), "n_configs: must be an int in 0..100000"),
    (lambda: collect_mod.plan_items(0, 5, n_replicates=10**9), "n_replicates: must be an int in 1..100"),
    (lambda: collect_mod.plan_items(-1, 5), "plan_seed: must be an int in 0..4294967295"),
    (lambda: collect_mod.parse_shard("0/99999999999999999999"), "shard: must be i/n"),
])
def test_library_ceilings_are_one_line_value_errors(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_ceilings_in_the_docs_are_the_enforced_ones():
    docs = os.path.join(os.path.dirname(__file__), "..", "docs")
    text = "".join(open(os.path.join(docs, name), encoding="utf-8").read() for name in ("benchmarking.md", "collecting.md"))
    for number in ("1000", "1024", "100000", "256", "30 days", "2^32 - 1", "100 replicates", "365 days"):
        assert number in text.replace(",", "").replace("100 000", "100000"), number
    assert (compare_mod.MAX_SEEDS, simulator.MAX_WORKERS, simulator.MAX_EVALUATIONS, compare_mod.MAX_JOBS) == (
        1000, 1024, 100_000, 256)
    assert simulator.MAX_BUDGET_SECONDS == 30 * DAY and collect_mod.MAX_N_CONFIGS == 100_000


# ------------------------------------------------------------------------------ numpy integers


def test_numpy_integers_work_wherever_ints_do():
    from toybench import ToyBenchmark
    from surrobench.optimizers import OPTIMIZERS
    from surrobench.records import Job, Problem

    bench = ToyBenchmark()

    def run(w):
        problem = bench.problem(n_workers=w, budget=simulator.Budget(evaluations=np.int64(12)))
        assert type(problem.n_workers) is int and type(problem.max_evaluations) is int
        return simulator.simulate(bench, OPTIMIZERS["random"](problem, seed=1), problem, seed=3)

    np.testing.assert_equal(run(np.int64(4)).to_dict("list"), run(4).to_dict("list"))
    res = compare_mod.compare(bench, ["random"], seeds=np.arange(2), n_workers=np.int64(2), budget=3600.0,
                              n_jobs=np.int64(1), n_grid=10)
    assert sorted(res.final["n_workers"].unique()) == [2] and res.metadata["n_workers"] == [2]
    assert type(res.metadata["n_workers"][0]) is int and type(res.metadata["seeds"][0]) is int
    job = Job({**__import__("surrobench").space.default_config()}, np.int64(3), trial=np.int64(0),
              from_epoch=np.int64(1))
    assert (type(job.epoch), type(job.trial), type(job.from_epoch)) == (int, int, int)
    with pytest.raises(ValueError, match="n_workers: must be an int"):
        Problem(bench.task, n_workers=np.float64(2.0), budget=60.0)


def test_a_config_rebuilt_from_read_runs_is_valid(tmp_path):
    from conftest import make_record, write_records
    from surrobench import space
    from surrobench.logs import read_runs

    configs = space.sample(seed=7, n=20) + [space.default_config()]
    write_records(tmp_path / "x.jsonl", [make_record(c, seed=i) for i, c in enumerate(configs)])
    runs = read_runs(tmp_path)
    for row, original in zip(runs.to_dict("records"), configs):
        rebuilt = {k[len("config_"):]: v for k, v in row.items() if k[len("config_"):] in space.NAMES and not _missing(v)}
        assert space.validate(rebuilt) == original
    for _, row in runs.iterrows():  # the other common way of walking a table
        rebuilt = {k[len("config_"):]: v for k, v in row.items() if k[len("config_"):] in space.NAMES and not _missing(v)}
        assert space.config_id(rebuilt) == row["config_id"]


def _missing(value) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------- messages (item 9)


def test_messages_name_their_input():
    from surrobench import space

    with pytest.raises(ValueError, match=r"^encoded row: column n_conv_l must be a finite number, got nan"):
        space.decode([float("nan")] * 13)
    with pytest.raises(ValueError, match=r"^seed: must be a non-negative int"):
        space.sample(seed=-1)
    with pytest.raises(ValueError, match=r"^seed: must be a non-negative int"):
        space.sample(seed=np.int64(-5), n=2)
    x = space.encode([space.default_config()])[0]
    x[space.NAMES.index("n_conv_2")] = np.nan  # a conditional column may be NaN: its default is used
    space.decode(x)


def test_a_truncated_stored_cell_is_rerun_without_a_resource_warning(tmp_path):
    import gc
    import warnings

    import pandas as pd

    path = tmp_path / "cell.npz"
    compare_mod._save_cell(path, pd.DataFrame({"a": np.arange(500), "b": ["x"] * 500}))
    data = path.read_bytes()
    rng = np.random.default_rng(18)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for cut in [1, 30, *rng.integers(1, len(data), 8)]:
            path.write_bytes(data[:cut])
            assert compare_mod._load_cell(path) is None
            gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


# ------------------------------------------------------------------------------- parallel jobs (item 4)


def test_parallel_jobs_never_exceed_the_runs_nor_the_cpus(monkeypatch):
    from joblib import parallel_config

    assert compare_mod._parallelism(999, 1, "loky") == 1
    assert compare_mod._parallelism(256, 10_000, "loky") == min(256, os.cpu_count() or 1)
    assert compare_mod._parallelism(200, 50, "threading") == 50
    assert compare_mod._parallelism(3, 0, "threading") == 1
    with parallel_config(backend="threading"):
        assert compare_mod._parallelism(200, 50, None) == 50
    assert compare_mod._parallelism(200, 50, None) == min(50, os.cpu_count() or 1)  # joblib's default: loky

    seen = []
    real = __import__("joblib").Parallel

    def spy(*args, **kwargs):
        seen.append(kwargs["n_jobs"])
        return real(*args, **{**kwargs, "backend": "threading"})

    monkeypatch.setattr("joblib.Parallel", spy)
    from toybench import ToyBenchmark

    compare_mod.compare(ToyBenchmark(), ["random"], seeds=[0], budget=600.0, n_jobs=256, backend="threading", n_grid=5)
    assert seen == [1]  # one run: one job, not 256


def test_a_worker_exits_when_its_parent_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import textwrap
    import time
    from pathlib import Path

    script = textwrap.dedent("""
        import multiprocessing as mp, os, sys, time

        def child(parent):
            from surrobench._workers import die_with
            die_with(parent)
            print("ready", os.getpid(), flush=True)
            time.sleep(120)

        if __name__ == "__main__":
            p = mp.get_context("spawn").Process(target=child, args=(os.getpid(),))
            p.start()
            time.sleep(120)
    """)
    (tmp_path / "parent.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = parent.stdout.readline().split()
        assert line[:1] == ["ready"], line
        child = int(line[1])
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 20
        while _alive(child):
            assert time.monotonic() < deadline, "the worker outlived its parent"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_a_stored_cell_too_big_or_without_its_columns_is_rerun(tmp_path, monkeypatch, caplog):
    import pandas as pd

    from surrobench.simulator import RESULT_COLUMNS

    table = pd.DataFrame({c: np.arange(50.0) for c in RESULT_COLUMNS}).assign(optimizer="random", seed=0, n_workers=1)
    path = tmp_path / "cell.npz"
    compare_mod._save_cell(path, table)
    assert compare_mod._load_cell(path) is not None
    monkeypatch.setattr(compare_mod, "MAX_CELL_BYTES", 1000)
    assert compare_mod._load_cell(path) is None and "more than a cell may" in caplog.text
    monkeypatch.undo()
    compare_mod._save_cell(path, table.drop(columns=["end"]))
    assert compare_mod._load_cell(path) is None and "lacks the column(s) end" in caplog.text
