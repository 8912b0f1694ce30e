"""`surrobench compare` and `surrobench collect` on a dask.distributed cluster given its address
(a small in-process LocalCluster stands in for a real one), and on ray where it is installed."""

import json

import pytest

from surrobench.cli import main


@pytest.fixture
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                                   host="127.0.0.1", dashboard_address=None) as c:
        yield c


def _tasks_seen(cluster) -> int:
    return sum(1 for t in cluster.scheduler.transition_log if t[2] == "memory")


def test_compare_on_a_dask_cluster(cluster, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["compare", "--optimizers", "random", "--seeds", "2", "--budget", "1h", "--jobs", "2",
               "--backend", "dask", "--scheduler", cluster.scheduler_address, "--out", str(out),
               "--no-plots", "--no-progress"])
    assert rc == 0
    assert "random" in capsys.readouterr().out
    assert json.loads((out / "metadata.json").read_text())["seeds"] == [0, 1]
    assert _tasks_seen(cluster) >= 2  # both runs went through the cluster's scheduler


def test_collect_on_a_dask_cluster(cluster, tmp_path, capsys):
    pytest.importorskip("torch")
    rc = main(["collect", "--dataset", "digits", "--n-configs", "2", "--epochs", "1", "--jobs", "2",
               "--replicate-fraction", "0", "--device", "cpu", "--out", str(tmp_path),
               "--backend", "dask", "--scheduler", cluster.scheduler_address, "--no-progress"])
    assert rc == 0
    lines = [json.loads(x) for f in (tmp_path / "digits").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(lines) == 2 and {r["epochs"] for r in lines} == {1}
    assert _tasks_seen(cluster) >= 2


def test_scheduler_needs_the_dask_backend(capsys):
    assert main(["compare", "--optimizers", "random", "--seeds", "1", "--scheduler", "tcp://h:8786"]) == 2
    assert "only used with --backend dask" in capsys.readouterr().err
