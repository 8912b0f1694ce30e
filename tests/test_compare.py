import json

import numpy as np
import pandas as pd
import pytest

from surrobench.compare import blas_kernels, compare, read_results, resolve_optimizers, write_results
from surrobench.optimizers import RandomSearch
from surrobench.plots import draw_report, hv_band_data
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


def test_a_run_is_simulate_with_the_seeds_run_seeds_derives(results):
    """What tools/bench_protocol.py relies on to run the protocol's cells one by one."""
    from surrobench.simulator import run_seeds, simulate

    bench = ToyBenchmark()
    problem = bench.problem(n_workers=4, budget=Budget(seconds=3 * 3600))
    opt_seed, bench_seed = run_seeds(2)
    assert opt_seed != bench_seed and run_seeds(2) == (opt_seed, bench_seed) and run_seeds(3) != (opt_seed, bench_seed)
    table = simulate(bench, RandomSearch(problem, seed=opt_seed), problem, seed=bench_seed)
    cell = results.runs[(results.runs["optimizer"] == "random") & (results.runs["seed"] == 2)
                        & (results.runs["n_workers"] == 4)]
    pd.testing.assert_frame_equal(cell[table.columns].reset_index(drop=True), table)


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
    # numpy's BLAS kernel is named, so a table can be replayed bit for bit on another CPU
    assert meta["blas"] and meta["blas"] == blas_kernels()
    assert all(set(k) == {"library", "prefix", "version", "architecture"} for k in meta["blas"])
    back = read_results(tmp_path)
    pd.testing.assert_frame_equal(back.final, results.final, check_dtype=False)
    paths = draw_report(back, tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)
    assert "ranks_over_time.png" in [p.name for p in paths]
    # one critical-difference diagram per worker count
    assert sorted(p.name for p in paths if "critical" in p.name) == ["critical_difference_1workers.png",
                                                                    "critical_difference_4workers.png"]
    median_png = paths[0].read_bytes()
    paths = draw_report(back, tmp_path, aggregate="mean")
    assert paths[0].read_bytes() != median_png  # another curve, another picture


def test_a_large_table_formatted_by_several_processes_has_the_same_bytes(results, tmp_path, request):
    one = write_results(results, tmp_path / "one") / "runs.csv"
    written_here = request.getfixturevalue("parallel_csv")  # from here on: blocks, 2 processes
    two = write_results(results, tmp_path / "two", n_jobs=2) / "runs.csv"
    assert not any("runs" in str(p) for p in written_here)  # formatted in the worker processes
    assert len(results.runs) > 4 * 2 * 10  # every block has rows
    assert two.read_bytes() == one.read_bytes()
    assert not list((tmp_path / "two").glob(".*.tmp"))


def test_hv_bands_are_the_median_and_quartiles_or_the_mean_and_its_standard_error():
    hv = pd.DataFrame({"n_workers": 1, "optimizer": ["a"] * 4 + ["b"], "time": [1.0, 1.0, 1.0, 2.0, 1.0],
                       "seed": [0, 1, 2, 0, 0], "hv": [1.0, 2.0, 4.0, 3.0, 5.0]})
    med = hv_band_data(hv).set_index(["optimizer", "time"])
    assert med.loc[("a", 1.0), ["center", "low", "high"]].tolist() == [2.0, 1.5, 3.0]
    mean = hv_band_data(hv, aggregate="mean").set_index(["optimizer", "time"])
    se = np.std([1.0, 2.0, 4.0], ddof=1) / np.sqrt(3)
    assert mean.loc[("a", 1.0), ["center", "low", "high"]].tolist() == pytest.approx([7 / 3, 7 / 3 - se, 7 / 3 + se])
    assert mean.loc[("b", 1.0), ["center", "low", "high"]].tolist() == [5.0, 5.0, 5.0]  # one seed: no band
    with pytest.raises(ValueError, match="aggregate: expected one of median, mean"):
        hv_band_data(hv, aggregate="max")


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


# ------------------------------------------------------------------------------- stored cells


def _small(**kw):
    return compare(ToyBenchmark(), {"random": "random", "mine": FirstLayerOnly}, seeds=range(2), n_workers=[1, 3],
                   budget=3600, n_grid=30, **kw)


def _assert_same(a, b):
    for name in ("runs", "hv", "final"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


def _refuse_to_run(*args, **kwargs):
    raise AssertionError("a stored cell was run again")


def test_stored_cells_resume_to_the_identical_results(tmp_path, monkeypatch):
    import surrobench.compare as comp

    fresh = _small()
    stored = _small(cells_dir=tmp_path)
    _assert_same(fresh, stored)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 8 and not list(tmp_path.glob(".*"))  # 2 optimizers x 2 seeds x 2 worker counts, no temp left
    counted = []
    with monkeypatch.context() as m:
        m.setattr(comp, "_cell", _refuse_to_run)
        resumed = _small(cells_dir=tmp_path, resume=True, on_cell=lambda: counted.append(1))
    _assert_same(fresh, resumed)
    assert len(counted) == 8
    # a missing cell and an unreadable one are run again; the others are read
    files[0].unlink()
    files[1].write_bytes(b"not an npz")
    ran = []
    real = comp._cell
    monkeypatch.setattr(comp, "_cell", lambda *a: ran.append((a[1], a[4], a[5])) or real(*a))
    _assert_same(fresh, _small(cells_dir=tmp_path, resume=True))
    assert len(ran) == 2


def test_a_stored_cell_is_reused_only_under_the_same_settings(tmp_path, monkeypatch):
    import surrobench.compare as comp

    _small(cells_dir=tmp_path)
    ran = []
    real = comp._cell
    monkeypatch.setattr(comp, "_cell", lambda *a: ran.append((a[1], a[4], a[5])) or real(*a))
    compare(ToyBenchmark(), {"random": "random"}, seeds=range(3), n_workers=[1], budget=3600, n_grid=30,
            cells_dir=tmp_path, resume=True)
    assert ran == [("random", 2, 1)]  # seeds 0 and 1 were stored
    ran.clear()
    compare(ToyBenchmark(), {"random": "random"}, seeds=range(2), n_workers=[1], budget=1800, n_grid=30,
            cells_dir=tmp_path, resume=True)
    assert len(ran) == 2  # another budget: nothing reused
    ran.clear()
    compare(ToyBenchmark(), {"random": "random"}, seeds=range(2), n_workers=[1], budget=3600, overhead=1.0,
            n_grid=30, cells_dir=tmp_path, resume=True)
    assert len(ran) == 2  # another overhead model: nothing reused


def test_stored_tables_keep_their_dtypes_even_when_empty(tmp_path):
    from surrobench.compare import _load_cell, _save_cell

    runs = _small().runs
    for table in (runs, runs.iloc[:0], pd.DataFrame(columns=list(runs.columns))):
        assert _save_cell(tmp_path / "t.npz", table)
        pd.testing.assert_frame_equal(_load_cell(tmp_path / "t.npz"), table.reset_index(drop=True), check_exact=True)
    odd = runs.head(3).assign(tag=[object(), "a", "b"])
    assert not _save_cell(tmp_path / "odd.npz", odd) and not (tmp_path / "odd.npz").exists()


def test_resume_needs_a_cells_dir_and_a_describable_benchmark(tmp_path):
    with pytest.raises(ValueError, match="resume: needs cells_dir"):
        _small(resume=True)

    class Plain(ToyBenchmark):
        describe = None

    with pytest.raises(ValueError, match="cells_dir: the benchmark has no describe"):
        compare(Plain(), ["random"], seeds=[0], budget=600, cells_dir=tmp_path)

    class Unsaved(ToyBenchmark):
        def describe(self):
            return dict(super().describe(), checksum=None)

    with pytest.raises(ValueError, match="cells_dir: the surrogate was never saved"):
        compare(Unsaved(), ["random"], seeds=[0], budget=600, cells_dir=tmp_path)


def test_compare_reports_each_runs_seconds_and_the_simulated_clock_in_process():
    runs, clock = [], []
    compare(ToyBenchmark(), ["random"], seeds=range(2), n_workers=[1], budget=3600, n_grid=10,
            on_run=lambda *a: runs.append(a), on_time=lambda *a: clock.append(a))
    assert [(label, seed, w) for label, seed, w, _ in runs] == [("random", 0, 1), ("random", 1, 1)]
    assert all(s is not None and s > 0 for *_, s in runs)
    for seed in (0, 1):
        times = [t for label, s, w, t in clock if s == seed]
        assert len(times) >= 3 and times == sorted(times) and 0 < times[-1] <= 3600


def test_hv_plots_start_where_the_first_curve_leaves_zero():
    from surrobench.plots import HV_LABELS, first_progress

    hv = pd.DataFrame({"n_workers": 1, "optimizer": ["a", "a", "a", "b", "b", "b"], "time": [1.0, 10.0, 100.0] * 2,
                       "seed": 0, "hv": [0.0, 0.0, 2.0, 0.0, 1.0, 3.0]})
    assert first_progress(hv_band_data(hv)) == 10.0
    assert first_progress(hv_band_data(hv.assign(hv=0.0))) is None
    assert "full-fidelity" in HV_LABELS["hv_max_fidelity"]


def test_costliest_runs_start_first_and_the_order_does_not_change_the_tables():
    from surrobench.compare import PRIOR_RUN_COST

    assert PRIOR_RUN_COST["msehvi"] > PRIOR_RUN_COST["nsga2"] > PRIOR_RUN_COST["random"]
    started = []
    given = ["random", "nsga2", "msehvi"]
    res = compare(ToyBenchmark(), given, seeds=range(2), n_workers=[1], budget=Budget(evaluations=60), n_grid=10,
                  on_run=lambda label, seed, w, s: started.append((label, seed)))
    assert started == [("msehvi", 0), ("msehvi", 1), ("nsga2", 0), ("nsga2", 1), ("random", 0), ("random", 1)]
    # the tables keep the order the optimizers were given in, whatever order they ran in
    assert list(dict.fromkeys(res.runs["optimizer"])) == given
    alone = compare(ToyBenchmark(), ["random"], seeds=range(2), n_workers=[1], budget=Budget(evaluations=60),
                    n_grid=10)
    pd.testing.assert_frame_equal(res.runs[res.runs["optimizer"] == "random"].reset_index(drop=True), alone.runs)


class BlasThreadProbe(RandomSearch):
    """Random search that notes how many threads each BLAS library has while it decides."""

    seen: list = []

    def ask(self):
        from threadpoolctl import threadpool_info

        BlasThreadProbe.seen.extend(d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas")
        return super().ask()


def test_a_run_in_this_process_uses_one_blas_thread_as_a_worker_does():
    from threadpoolctl import threadpool_info, threadpool_limits

    if not any(d["user_api"] == "blas" for d in threadpool_info()):
        pytest.skip("no BLAS library loaded")
    BlasThreadProbe.seen = []
    with threadpool_limits(limits=2, user_api="blas"):  # what this process has outside the run
        compare(ToyBenchmark(), {"probe": BlasThreadProbe}, seeds=[0], budget=Budget(evaluations=5), n_jobs=1)
        outside = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    assert BlasThreadProbe.seen and set(BlasThreadProbe.seen) == {1}
    assert set(outside) == {2}  # and it is given back afterwards


def test_runs_are_reported_as_they_finish_not_in_submission_order():
    """A run that ends early is heard of at once, not after every run started before it (the progress bar's
    estimate rests on the reports); the tables do not depend on the order."""
    import time

    class SlowOneWorker(ToyBenchmark):
        def problem(self, n_workers=1, budget=None):
            if n_workers == 1:
                time.sleep(1.5)
            return super().problem(n_workers=n_workers, budget=budget)

    heard = []
    res = compare(SlowOneWorker(), ["random"], seeds=[0], n_workers=[1, 2], budget=Budget(evaluations=30), n_grid=10,
                  n_jobs=2, backend="threading", on_run=lambda label, seed, w, s: heard.append(w))
    assert heard == [2, 1]
    alone = compare(ToyBenchmark(), ["random"], seeds=[0], n_workers=[1, 2], budget=Budget(evaluations=30), n_grid=10)
    pd.testing.assert_frame_equal(res.runs, alone.runs)


def test_rank_tests_per_worker_count(results):
    from surrobench.compare import markdown_summary
    from surrobench.metrics import rank_test

    tests = results.rank_tests()
    assert sorted(tests) == [1, 4]
    for n_workers, test in tests.items():
        cell = results.final[results.final["n_workers"] == n_workers]
        assert test == rank_test(cell)
        assert test.n_seeds == 3 and set(test.mean_ranks) == set(cell["optimizer"])
        # the mean ranks are the summary's, which ranks the same hypervolumes
        summary = results.summary().loc[n_workers]["mean_rank"]
        assert all(abs(summary[name] - rank) < 1e-12 for name, rank in test.mean_ranks.items())
    text = markdown_summary(results)
    assert "\n1 worker: Friedman test over 3 seeds" in text and "\n4 workers: Friedman test over 3 seeds" in text
    assert results.rank_tests(column="test_hv")[1].column == "test_hv"
    assert {t.control for t in results.rank_tests(control="mine").values()} == {"mine"}
    with_control = markdown_summary(results, control="mine").rstrip().splitlines()
    assert with_control[-1] == "4 workers: " + results.rank_tests(control="mine")[4].describe()
    with pytest.raises(ValueError, match="control: 'nosuch'"):
        results.rank_tests(control="nosuch")
    one = results.final[results.final["optimizer"] == "random"]
    assert type(results)(runs=results.runs, hv=results.hv, final=one).rank_tests() == {}


def test_optimizer_specs_read_labels_and_settings():
    from surrobench.cli import optimizer_specs

    assert optimizer_specs(None) is None and optimizer_specs("random, nsga2") == ["random", "nsga2"]
    assert optimizer_specs("random,nsga2=nsga2") == ["random", "nsga2"]
    assert optimizer_specs("nsga2,big=nsga2", ["big.population_size=40", "nsga2.epoch=13", "big.mutation_probability=null"]) \
        == {"nsga2": ("nsga2", {"epoch": 13}), "big": ("nsga2", {"population_size": 40, "mutation_probability": None})}
    assert optimizer_specs("shemoa", ["shemoa.schedule=time", "shemoa.ref_point=[1, 7.5]"]) == \
        {"shemoa": ("shemoa", {"schedule": "time", "ref_point": [1, 7.5]})}  # a plain word stays a string
    every = optimizer_specs(None, ["moasha.eta=4"])  # no --optimizers: all nine, one of them set
    assert len(every) == 9 and every["moasha"] == ("moasha", {"eta": 4}) and every["random"] == ("random", {})
    for text, assignments, message in [
        ("random,random", [], "'random' is given twice"),
        ("", [], "expected comma-separated optimizer names (see --list), got ''"),  # given, but empty: not all nine
        (" , ", [], "expected comma-separated optimizer names (see --list), got ' , '"),
        ("=nsga2", [], "is not LABEL=NAME"),
        ("x y=nsga2", [], "is not LABEL=NAME"),
        ("a=", [], "is not LABEL=NAME"),
        ("random", ["random.block"], "expected LABEL.KEY=VALUE"),
        ("random", [".block=3"], "expected LABEL.KEY=VALUE"),
        ("random", ["nsga2.epoch=3"], "no optimizer labelled 'nsga2' is compared (random)"),
        ("random", ["random.block=3", "random.block=4"], "random.block is given twice"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            optimizer_specs(text, assignments)


def test_settings_of_each_optimizer_and_their_types():
    from surrobench.optimizers import EHVI, MOASHA, MSEHVI, NSGA2, REQUIRED, check_setting_type, settings_of

    assert settings_of(MOASHA) == {"eta": 3, "min_epoch": None, "ref_point": (1.0, 8.0)}
    gp = settings_of(EHVI)
    assert gp == settings_of(MSEHVI) and gp["max_gp_points"] == 500 and gp["at_cap"] is None
    assert "exact_size" not in gp and "seed" not in gp and "problem" not in gp  # fixed by the class, or per run
    assert settings_of(lambda problem, seed=None, **anything: None) is None  # any keyword: nothing to list

    class Mine(NSGA2):
        def __init__(self, problem, *, seed=None, width: int, **settings):
            super().__init__(problem, seed=seed, **settings)

    Mine.SETTINGS_FROM = NSGA2
    mine = settings_of(Mine)
    assert mine["width"] is REQUIRED and mine["population_size"] == 20  # its own required one, and those it hands on
    assert check_setting_type(MOASHA, "eta", 2.5) is None and check_setting_type(MOASHA, "eta", 2) is None
    assert check_setting_type(MOASHA, "eta", True) == "must be a number, got True"
    assert check_setting_type(MOASHA, "min_epoch", None) is None
    assert check_setting_type(MOASHA, "min_epoch", 1.5) == "must be an int or null, got 1.5"
    assert check_setting_type(MOASHA, "ref_point", [1, 8]) is None
    assert check_setting_type(MOASHA, "ref_point", "far") == "must be a list, e.g. [1, 2], got 'far'"
    assert check_setting_type(NSGA2, "population_size", None) == "must be an int, got null"
    assert check_setting_type(EHVI, "max_gp_points", "500") == "must be an int, got '500'"
    assert check_setting_type(EHVI, "at_cap", [8, 32]) is None


def test_compare_refuses_a_bad_setting_before_any_run(tmp_path, monkeypatch):
    import surrobench.compare as compare_module

    monkeypatch.setattr(compare_module, "_cell", lambda *a, **k: pytest.fail("a run started before the settings were checked"))
    cells = tmp_path / "cells"
    for optimizers, message in [
        ({"nsga2": ("nsga2", {"population_sise": 4})}, "NSGA2 has no setting 'population_sise'; did you mean 'population_size'"),
        ({"nsga2": ("nsga2", {"population_size": "4"})}, "setting 'population_size' must be an int, got '4'"),
        ({"nsga2": ("nsga2", {"population_size": 1})}, r"refuses its settings: NSGA2: population_size must be >= 2"),
        ({"mine": (FirstLayerOnly, {"seed": 3})}, "'seed' is not a setting"),
        ({"mobohb": ("mobohb", {"max_budget": 0})}, "need 0 < min_budget <= max_budget"),
    ]:
        with pytest.raises(ValueError, match=message):
            compare(ToyBenchmark(), optimizers, seeds=range(1), budget=Budget(seconds=600), cells_dir=cells)
    assert not cells.exists()


@pytest.mark.parametrize("name, settings, message", [
    ("shemoa", {"n_mutate": -1}, "n_mutate must be >= 0"),
    ("mobohb", {"min_budget": 0}, "need 0 < min_budget <= max_budget"),
    ("mobohb", {"min_budget": 20, "max_budget": 10}, "need 0 < min_budget <= max_budget"),
    ("mobananas", {"hidden": 0}, "need hidden >= 1"),
    ("mobananas", {"mutation_sd": 0}, "mutation_sd > 0"),
    ("nsga2", {"crossover_eta": -1}, "crossover_eta and mutation_eta must be >= 0"),
    ("nsga2", {"max_retries": -1}, "max_retries must be >= 0"),
    ("ehvi", {"max_gp_points": 1}, "max_gp_points: must be an int >= 2"),
    ("msehvi", {"refit_growth": 0.5}, "refit_growth: must be a number >= 1"),
])
def test_settings_that_used_to_fail_inside_a_run_are_refused_when_built(name, settings, message):
    from surrobench.optimizers import OPTIMIZERS

    problem = ToyBenchmark().problem(n_workers=1, budget=Budget(seconds=600))
    with pytest.raises(ValueError, match=message):
        OPTIMIZERS[name](problem, seed=0, **settings)


def test_the_settings_line_names_labels_with_settings_or_another_name():
    from surrobench.compare import settings_line

    ours = "surrobench.optimizers.nsga2.NSGA2"
    assert settings_line({"optimizers": {"nsga2": {"class": ours, "settings": {}},
                                         "random": {"class": "surrobench.optimizers.random_search.RandomSearch",
                                                    "settings": {}}}}) is None  # as shipped: no line
    assert settings_line({"optimizers": {"plain": {"class": ours, "settings": {}},
                                         "at-cap": {"class": "surrobench.optimizers.msehvi.MSEHVI",
                                                    "settings": {"at_cap": [8, 32]}},
                                         "mine": {"class": "my.pkg.Mine", "settings": {}}}}) == \
        "settings: plain = NSGA2(); at-cap = MSEHVI(at_cap=[8, 32])"  # a user's own class under its label: no line
    assert settings_line({"optimizers": {"ehvi": {"class": ours, "settings": {}}}}) == "settings: ehvi = NSGA2()"
    assert settings_line({}) is None
