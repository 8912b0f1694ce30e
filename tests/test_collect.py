"""The ground-truth collector: seeded plans, shards, replicates, resumable JSON-lines logs."""

from __future__ import annotations

import datetime
import json
import math
import os
import signal
import subprocess
import sys
import time
import types
from collections import Counter

import pytest

from surrobench.logs import TornLineWarning, iter_records

from conftest import tiny_sample

torch = pytest.importorskip("torch")
from surrobench.training import collect as collect_mod  # noqa: E402
from surrobench.training.collect import collect, parse_shard, plan_items  # noqa: E402


def _keys(items, dataset="digits", epochs=1):
    return [it.key(dataset, epochs) for it in items]


# --- the plan ---------------------------------------------------------------------------


def test_config_k_is_the_same_everywhere():
    full = plan_items(5, 60, replicate_fraction=0.3)
    config_of = {it.index: it.config for it in full}
    seed_of = {(it.index, it.replicate): it.seed for it in full}
    assert plan_items(5, 60, replicate_fraction=0.3) == full
    for n_configs, shard, fraction in [(10, (0, 1), 0.3), (60, (1, 4), 0.3), (37, (2, 3), 0.3), (60, (0, 1), 0.0)]:
        for it in plan_items(5, n_configs, shard=shard, replicate_fraction=fraction):
            assert it.config == config_of[it.index]
            assert it.seed == seed_of[(it.index, it.replicate)]
    assert [it.config for it in plan_items(6, 10)] != [it.config for it in plan_items(5, 10)]


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_shards_partition_the_plan(n_shards):
    full = _keys(plan_items(3, 50, replicate_fraction=0.2))
    parts = [plan_items(3, 50, shard=(i, n_shards), replicate_fraction=0.2) for i in range(n_shards)]
    for i, part in enumerate(parts):
        assert all(it.index % n_shards == i for it in part)
    joined = [k for part in parts for k in _keys(part)]
    assert len(joined) == len(set(joined)) and set(joined) == set(full)


def test_replicates():
    items = plan_items(0, 2000, replicate_fraction=0.1, n_replicates=3)
    by_index = {}
    for it in items:
        by_index.setdefault(it.index, []).append(it)
    replicated = {k: v for k, v in by_index.items() if len(v) > 1}
    assert len(by_index) == 2000
    assert abs(len(replicated) / 2000 - 0.1) < 0.02
    for runs in replicated.values():
        assert [it.replicate for it in runs] == [0, 1, 2]
        assert len({it.seed for it in runs}) == 3
        assert all(it.config == runs[0].config for it in runs)
    assert len(_keys(items)) == len(set(_keys(items)))
    assert len(plan_items(0, 200, replicate_fraction=0.0)) == 200
    assert len(plan_items(0, 200, replicate_fraction=1.0, n_replicates=2)) == 400


def test_retime_items_only_when_requested():
    assert not any(it.retime for it in plan_items(1, 300))
    items = plan_items(1, 300, retime_fraction=0.2)
    alone = [it for it in items if it.retime]
    assert 30 <= len(alone) <= 90
    assert items[: len(alone)] == alone  # re-timing runs come first
    plain = {(it.index, it.replicate): it for it in items if not it.retime}
    for it in alone:
        assert it.replicate == 0 and it.key("digits", 25).endswith("-alone")
        assert it.seed == plain[(it.index, 0)].seed and it.config == plain[(it.index, 0)].config
    assert len(set(_keys(items))) == len(items)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shard": (2, 2)}, "shard"),
        ({"shard": (-1, 2)}, "shard"),
        ({"replicate_fraction": 1.5}, "replicate_fraction"),
        ({"retime_fraction": -0.1}, "retime_fraction"),
        ({"n_replicates": 0}, "n_replicates"),
        ({"n_configs": -1}, "n_configs"),
    ],
)
def test_bad_plan_refused(kwargs, message):
    args = {"n_configs": 5} | kwargs
    with pytest.raises(ValueError, match=message):
        plan_items(0, args.pop("n_configs"), **args)


@pytest.mark.parametrize("text, expected", [("0/1", (0, 1)), ("3/4", (3, 4))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["3/2", "1/0", "x", "1", "1/2/3", "-1/2", ""])
def test_parse_shard_refuses(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


# --- collecting (in process, with cheap configs) ----------------------------------------------


@pytest.fixture
def cheap(monkeypatch):
    """Plans draw tiny configs (the plan machinery is unchanged; only the sampler is swapped)."""
    torch.set_num_threads(1)
    monkeypatch.setattr(collect_mod, "sample", tiny_sample)


def _lines(directory):
    files = sorted(directory.rglob("*.jsonl"))
    return [line for f in files for line in f.read_text().splitlines(keepends=True)]


def _run(out, **kw):
    args = dict(out_dir=out, plan_seed=0, n_configs=3, epochs=1, replicate_fraction=0.34, device="cpu") | kw
    return collect("digits", **args)


def test_collect_writes_one_line_per_run_and_resumes(cheap, tmp_path):
    planned = plan_items(0, 3, replicate_fraction=0.34)
    assert len(planned) > 3  # the plan has a replicated config
    first = _run(tmp_path)
    assert (first.planned, first.skipped, first.finished) == (len(planned), 0, len(planned))
    assert first.statuses == {"ok": len(planned)} and not first.stopped_early
    lines = _lines(tmp_path / "digits")
    assert len(lines) == len(planned) and all(line.endswith("\n") for line in lines)
    records = [json.loads(line) for line in lines]
    assert sorted(r["key"] for r in records) == sorted(_keys(planned))
    for rec, item in zip(sorted(records, key=lambda r: r["key"]), sorted(planned, key=lambda i: i.key("digits", 1))):
        assert rec["config"] == item.config and rec["seed"] == item.seed and rec["epochs"] == 1
        assert rec["plan"] == {"seed": 0, "index": item.index, "replicate": item.replicate, "retime": False}
    assert first.path is not None and first.path.parent == tmp_path / "digits"

    again = _run(tmp_path)
    assert (again.finished, again.skipped) == (0, len(planned)) and again.path is None
    assert _lines(tmp_path / "digits") == lines  # nothing added, no duplicates

    longer = plan_items(0, 5, replicate_fraction=0.34)
    more = _run(tmp_path, n_configs=5)  # a longer plan only adds its new configs
    keys = [r["key"] for r in iter_records(tmp_path)]
    assert more.skipped == len(planned) and more.finished == len(longer) - len(planned)
    assert sorted(keys) == sorted(_keys(longer))


def test_back_to_back_collects_in_one_second(cheap, tmp_path, monkeypatch):
    start = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    ticks = iter(range(1, 10**6))

    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):  # every call a microsecond later, all within one second
            return start + datetime.timedelta(microseconds=next(ticks))

    monkeypatch.setattr(collect_mod, "_dt", types.SimpleNamespace(datetime=Clock, timezone=datetime.timezone))
    _run(tmp_path, n_configs=1, replicate_fraction=0.0)
    second = _run(tmp_path, n_configs=2, replicate_fraction=0.0)
    assert second.finished == 1
    assert len(list((tmp_path / "digits").glob("*.jsonl"))) == 2


def test_torn_last_line_is_skipped_and_rerun(cheap, tmp_path):
    first = _run(tmp_path, replicate_fraction=0.0)
    path = first.path
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 3
    torn_key = json.loads(lines[-1])["key"]
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write

    with pytest.warns(TornLineWarning, match=rf"{path.name}:3"):
        records = list(iter_records(tmp_path))
    assert [r["key"] for r in records] == [json.loads(line)["key"] for line in lines[:-1]]

    with pytest.warns(TornLineWarning):
        again = _run(tmp_path, replicate_fraction=0.0)
    assert (again.skipped, again.finished) == (2, 1)
    assert [json.loads(line)["key"] for line in again.path.read_text().splitlines()] == [torn_key]


def test_torn_line_in_the_middle_hides_nothing_after_it(tmp_path):
    from conftest import make_record, write_records

    path = write_records(tmp_path / "a.jsonl", [make_record(seed=0)])
    with open(path, "a") as f:
        f.write('{"config": {"n_conv_l": 1}, "cur\n')  # complete line, invalid JSON
        f.write("[1, 2, 3]\n")  # valid JSON, not a record
    write_records(path, [make_record(seed=1)])
    with pytest.warns(TornLineWarning) as caught:
        seeds = [r["seed"] for r in iter_records(path)]
    assert seeds == [0, 1] and len(caught) == 2


def test_shared_device_retimes_a_sample_alone(cheap, tmp_path):
    summary = _run(tmp_path, n_configs=4, replicate_fraction=0.0, retime_fraction=0.5, n_jobs=2, backend="threading")
    records = list(iter_records(tmp_path))
    expected = plan_items(0, 4, replicate_fraction=0.0, retime_fraction=0.5)
    assert sorted(r["key"] for r in records) == sorted(_keys(expected)) and summary.finished == len(expected)
    alone = [r for r in records if r["plan"]["retime"]]
    assert 1 <= len(alone) < 4 and all(r["key"].endswith("-alone") for r in alone)
    assert {r["jobs_on_device"] for r in alone} == {1}
    assert {r["jobs_on_device"] for r in records if not r["plan"]["retime"]} == {2}


def test_time_limit_stops_starting_runs(cheap, tmp_path):
    summary = _run(tmp_path, time_limit=1e-6)
    assert summary.stopped_early and summary.finished < summary.planned
    assert "stopped by the time limit" in summary.line()
    resumed = _run(tmp_path)
    assert resumed.finished == resumed.planned - summary.finished and not resumed.stopped_early


def test_stop_event_stops_after_running_jobs(cheap, tmp_path):
    import threading

    stop = threading.Event()
    summary = _run(tmp_path, stop=stop, on_record=lambda rec, s: stop.set())
    assert summary.stopped_early and 1 <= summary.finished < summary.planned
    assert "stopped by a stop request" in summary.line() and "time limit" not in summary.line()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 26}, "epochs"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"time_limit": 0}, "time_limit"),
        ({"shard": (1, 1)}, "shard"),
    ],
)
def test_collect_refuses_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _run(tmp_path, **kwargs)
    assert not any(tmp_path.rglob("*.jsonl"))


def test_collect_refuses_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        collect("mnist", out_dir=tmp_path, n_configs=1, epochs=1, device="cpu")


def test_collect_refuses_missing_data_before_any_run(tmp_path):
    with pytest.raises(ValueError, match="flowers17.*x_train.npy"):
        collect("flowers17", out_dir=tmp_path / "logs", data_dir=tmp_path / "none", n_configs=2, epochs=1, device="cpu")
    assert not (tmp_path / "logs").exists()


# --- a killed collector loses nothing but the runs in flight (real CLI, real sampler) -----------


def _cost_estimate(cfg, n_train=1078, side=8):
    """Rough CPU seconds per epoch on digits: per-step overhead plus the conv stack's work."""
    steps = math.ceil(n_train / cfg["batch_size"])
    work, c_in, h = 0, 1, side
    for i in range(cfg["n_conv_l"]):
        width = cfg[f"n_conv_{i}"]
        work += h * h * c_in * width * cfg["kernel_size"] ** 2
        c_in, h = width, h // 2
    return 0.002 * steps + 1.3e-9 * n_train * work


def _cheapest_plan_seed(n_configs, candidates=range(100)):
    return min(candidates, key=lambda s: sum(_cost_estimate(it.config) for it in plan_items(s, n_configs)))


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing(tmp_path):
    seed = _cheapest_plan_seed(6)
    plan_keys = _keys(plan_items(seed, 6), epochs=2)
    out = tmp_path / "logs"
    cmd = [sys.executable, "-m", "surrobench.cli", "collect", "--dataset", "digits", "--n-configs", "6",
           "--epochs", "2", "--plan-seed", str(seed), "--device", "cpu", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(line.endswith("\n") for line in _lines(out)):
            assert proc.poll() is None, "the collector ended before it could be killed"
            assert time.monotonic() < deadline, "no run finished within two minutes"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = {f: f.read_bytes() for f in (out / "digits").glob("*.jsonl")}
    n_before = sum(data.count(b"\n") for data in before.values())
    assert 1 <= n_before < len(plan_keys)

    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{n_before} of {len(plan_keys)} planned were already done" in done.stdout
    for f, data in before.items():
        assert f.read_bytes() == data  # the killed collector's lines are untouched
    lines = _lines(out / "digits")
    assert all(line.endswith("\n") for line in lines)
    keys = [json.loads(line)["key"] for line in lines]
    assert Counter(keys) == Counter(plan_keys)  # every planned run exactly once


def test_collect_runs_where_only_torch_is_installed(tmp_path):
    """A GPU image may carry torch but not xgboost or moocore: a random plan must still collect."""
    code = ("import sys\n"
            "for name in ('xgboost', 'moocore'):\n"
            "    sys.modules[name] = None  # import fails, as where the package is absent\n"
            "from surrobench.cli import main\n"
            "sys.exit(main())\n")
    done = subprocess.run(
        [sys.executable, "-c", code, "collect", "--dataset", "digits", "--n-configs", "1", "--epochs", "1",
         "--replicate-fraction", "0", "--jobs", "1", "--device", "cpu", "--out", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list(iter_records(tmp_path / "digits"))) == 1


def _start_collector(tmp_path, n_configs=6, epochs=2):
    seed = _cheapest_plan_seed(n_configs)
    out = tmp_path / "logs"
    cmd = [sys.executable, "-m", "surrobench.cli", "collect", "--dataset", "digits", "--n-configs", str(n_configs),
           "--epochs", str(epochs), "--plan-seed", str(seed), "--replicate-fraction", "0", "--device", "cpu",
           "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(line.endswith("\n") for line in _lines(out)):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the collector wrote no run within two minutes")
        time.sleep(0.05)
    # The first run's line is written just before the second run starts: a signal in between stops a
    # collector with nothing running, which exits (and no longer handles signals) before a second one.
    time.sleep(0.5)
    assert proc.poll() is None and len(_lines(out / "digits")) == 1, "the second run is not running"
    return proc, out


def test_a_signal_delivered_twice_at_once_stops_cleanly(tmp_path):
    """`timeout` sends its signal to the collector and to its process group: that is one request to stop."""
    proc, out = _start_collector(tmp_path, n_configs=20, epochs=5)  # the second run lasts seconds
    os.kill(proc.pid, signal.SIGTERM)
    first = proc.stderr.readline()  # the handler has run: the echo below is not merged into the first signal
    assert "stopping after the running jobs" in first
    os.killpg(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "stopped" in stdout and "Traceback" not in stderr and "interrupted" not in stderr
    assert all(line.endswith("\n") for line in _lines(out / "digits"))


def test_a_second_signal_a_moment_later_aborts(tmp_path):
    proc, out = _start_collector(tmp_path, n_configs=20, epochs=10)  # the second run lasts seconds
    os.kill(proc.pid, signal.SIGINT)
    assert "stopping after the running jobs" in proc.stderr.readline()
    time.sleep(0.6)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "interrupted" in stderr


def test_collect_called_in_process_gives_the_callers_signal_handlers_back(tmp_path):
    """The CLI's stop-after-the-running-jobs handlers last as long as the collection: a notebook or a
    test that calls ``main(["collect", ...])`` keeps its own Ctrl-C afterwards."""
    from surrobench.cli import main

    def mine(signum, frame):  # pragma: no cover - never delivered
        pass

    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = main(["collect", "--dataset", "digits", "--n-configs", "1", "--epochs", "1", "--replicate-fraction", "0",
                   "--jobs", "1", "--device", "cpu", "--out", str(tmp_path), "--no-progress"])
        assert rc == 0
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert len(list(iter_records(tmp_path / "digits"))) == 1


@pytest.mark.parametrize("device, words", [
    ("tpu", "device: expected cpu, cuda, cuda:N or mps, got 'tpu'"),
    ("meta", "device: expected cpu, cuda, cuda:N or mps, got 'meta'"),
])
def test_a_bad_device_is_one_line_before_any_output_folder(tmp_path, capsys, device, words):
    from surrobench.cli import main

    rc = main(["collect", "--dataset", "digits", "--n-configs", "1", "--epochs", "1", "--device", device,
               "--out", str(tmp_path / "logs"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"surrobench collect: error: {words}\n"
    assert not (tmp_path / "logs").exists()
