import json

import numpy as np
import pandas as pd
import pytest

from surrobench.compare import compare, read_results, resolve_optimizers, write_results
from surrobench.optimizers import RandomSearch
from surrobench.plots import draw_report
from surrobench.simulator import Budget

from toybench import ToyBenchmark


class FirstLayerOnly(RandomSearch):
    """A user's own optimizer: random search restricted to one conv layer."""

    def ask(self):
        job = super().ask()
        cfg = {k: v for k, v in job.config.items() if k not in ("n_conv_1", "n_conv_2")}
        cfg["n_conv_l"] = 1
        return type(job)(cfg, job.epoch)


@pytest.fixture(scope="module")
def results():
    return compare(ToyBenchmark(), {"random": "random", "mine": FirstLayerOnly}, seeds=range(3), n_workers=[1, 4],
                   budget=Budget(seconds=3 * 3600), n_grid=50)


def test_tables_are_tidy_and_complete(results):
    runs, hv, final = results.runs, results.hv, results.final
    assert set(runs["optimizer"]) == {"random", "mine"}
    assert set(map(tuple, final[["optimizer", "seed", "n_workers"]].to_numpy().tolist())) == {
        (o, s, w) for o in ("random", "mine") for s in range(3) for w in (1, 4)}
    assert len(hv) == 2 * 3 * 2 * 50
    assert (runs["end"] <= 3 * 3600).all()
    assert (runs.loc[runs["optimizer"] == "mine", "config_n_conv_l"] == 1).all()
    # hypervolume over time never decreases and ends at the final value
    for _, g in hv.groupby(["optimizer", "seed", "n_workers"]):
        assert np.all(np.diff(g["hv"].to_numpy()) >= -1e-12)
        assert np.all(g["hv_max_fidelity"].to_numpy() <= g["hv"].to_numpy() + 1e-12)
    # ranks within each (n_workers, seed) are 1 and 2 (or 1.5 twice)
    assert (final.groupby(["n_workers", "seed"])["rank"].sum() == 3).all()
    # more workers → more jobs in the same simulated time
    jobs = final.groupby("n_workers")["jobs"].median()
    assert jobs[4] > jobs[1]


def test_same_seeds_reproduce(results):
    again = compare(ToyBenchmark(), {"random": "random", "mine": FirstLayerOnly}, seeds=range(3), n_workers=[1, 4],
                    budget=3 * 3600, n_grid=50)  # a number is simulated seconds
    pd.testing.assert_frame_equal(results.runs, again.runs)


def test_parallel_backend_gives_the_same_tables(results):
    par = compare(ToyBenchmark(), {"random": "random", "mine": FirstLayerOnly}, seeds=range(3), n_workers=[1, 4],
                  budget=Budget(seconds=3 * 3600), n_grid=50, n_jobs=2, backend="threading")
    pd.testing.assert_frame_equal(results.final, par.final)


def test_summary_and_round_trip(results, tmp_path):
    table = results.summary()
    assert list(table.index.names) == ["n_workers", "optimizer"]
    assert {"hv_median", "hv_q25", "hv_q75", "mean_rank"} <= set(table.columns)
    assert (table["hv_q25"] <= table["hv_median"]).all() and (table["hv_median"] <= table["hv_q75"]).all()
    write_results(results, tmp_path)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["seeds"] == [0, 1, 2] and meta["reference_point"] == [1.0, 8.0]
    back = read_results(tmp_path)
    pd.testing.assert_frame_equal(back.final, results.final, check_dtype=False)
    paths = draw_report(back, tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown name"):
        resolve_optimizers(["nope"])
    with pytest.raises(ValueError, match="n_workers"):
        compare(ToyBenchmark(), ["random"], n_workers=[0])
    with pytest.raises(ValueError, match="seeds"):
        compare(ToyBenchmark(), ["random"], seeds=[-1])
    with pytest.raises(ValueError, match="budget"):
        compare(ToyBenchmark(), ["random"], budget="24h")
    with pytest.raises(ValueError, match="metadata"):
        read_results("/nonexistent-dir")
