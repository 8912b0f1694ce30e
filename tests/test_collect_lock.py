"""Two collectors of one (plan, shard) on one logs folder: the second is refused and says why,
no run is trained twice, and the lock of a killed collector does not block the next one."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import pytest

from conftest import tiny_sample
from surrobench.logs import iter_records

torch = pytest.importorskip("torch")
from surrobench.training import collect as collect_mod  # noqa: E402
from surrobench.training.collect import PlanLock, collect, plan_items  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # subprocesses import this checkout's surrobench


@pytest.fixture
def cheap(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setattr(collect_mod, "sample", tiny_sample)


def _run(out, **kw):
    args = dict(out_dir=out, plan_seed=0, n_configs=2, epochs=1, replicate_fraction=0.0, device="cpu") | kw
    return collect("digits", **args)


def test_a_second_collector_of_the_same_plan_is_refused_while_the_first_runs(cheap, tmp_path):
    holding, release = threading.Event(), threading.Event()
    result = {}

    def first():
        def on_plan(n):  # the first collector holds its lock until released
            holding.set()
            release.wait(30)

        result["first"] = _run(tmp_path, on_plan=on_plan)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert holding.wait(30)
        with pytest.raises(ValueError, match=r"plan 0 shard 0/1 of digits is being collected into .* by pid "
                                             rf"{os.getpid()} on .*not training its runs a second time"):
            _run(tmp_path)
        assert _run(tmp_path, shard=(1, 2)).planned >= 0  # another shard is not blocked
    finally:
        release.set()
        t.join(60)
    keys = [r["key"] for r in iter_records(tmp_path / "digits")]
    planned = [it.key("digits", 1) for it in plan_items(0, 2, replicate_fraction=0.0)]
    planned += [it.key("digits", 1) for it in plan_items(0, 2, shard=(1, 2), replicate_fraction=0.0)]
    assert Counter(keys) == Counter(planned)  # nothing twice
    assert not list((tmp_path / "digits").glob(".*.lock"))  # released on exit


def test_the_lock_of_a_dead_collector_is_taken_over(cheap, tmp_path, caplog):
    directory = tmp_path / "digits"
    directory.mkdir()
    (directory / ".plan0-shard0of1.lock").write_text("pid 999999 on elsewhere\n")  # no process holds it
    with caplog.at_level(logging.WARNING, logger="surrobench"):
        summary = _run(tmp_path)
    assert summary.finished == len(plan_items(0, 2, replicate_fraction=0.0))
    assert "taking over the stale lock of pid 999999 on elsewhere" in caplog.text


def test_a_killed_holder_releases_its_lock(tmp_path):
    directory = tmp_path / "digits"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from surrobench.training.collect import PlanLock
            with PlanLock(Path({str(directory)!r}), "plan0-shard0of1", "plan 0"):
                print("locked", flush=True)
                time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True, env=ENV,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=f"by pid {holder.pid} on"):
            with PlanLock(directory, "plan0-shard0of1", "plan 0"):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
        with PlanLock(directory, "plan0-shard0of1", "plan 0") as lock:  # no longer held
            assert lock.path.read_text() == f"pid {os.getpid()} on {os.uname().nodename}\n"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_the_cli_refuses_a_second_collector_with_one_line(tmp_path):
    directory = tmp_path / "logs" / "digits"
    with PlanLock(directory, "plan3-shard0of1", "plan 3"):
        done = subprocess.run(
            [sys.executable, "-m", "surrobench.cli", "collect", "--out", str(tmp_path / "logs"), "--plan-seed", "3",
             "--n-configs", "1", "--epochs", "1", "--device", "cpu", "--no-progress"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=ENV,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "plan 3 shard 0/1 of digits is being collected" in done.stderr and f"pid {os.getpid()}" in done.stderr
    assert not list(directory.glob("*.jsonl"))
