"""Issue 15: snapping, the benchmarks over a finite set, and the real-vs-surrogate statistics,
on the toy benchmark where the truth is known."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from toybench import ToyBenchmark

from surrobench.logged import SetBenchmark, logged_set
from surrobench.model_size import log10_params
from surrobench.optimizers import OPTIMIZERS
from surrobench.records import Job
from surrobench.simulator import Budget, simulate
from surrobench.snap import SnappedOptimizer, Snapper, distances, unit_encode
from surrobench.space import config_id, default_config, sample
from surrobench.validate import Side, agreement, logged_errors, noise_ceiling, rankings, run_sides

SET = sample(seed=7, n=90)
IDS = [config_id(c) for c in SET]


def _cfg(**changes):
    cfg = {**default_config(), **changes}
    for name in ("n_conv_1", "n_conv_2"):
        if cfg["n_conv_l"] < int(name[-1]) + 1:
            cfg.pop(name, None)
    for name in ("n_fc_1", "n_fc_2"):
        if cfg["n_fc_l"] < int(name[-1]) + 1:
            cfg.pop(name, None)
    return cfg


# ------------------------------------------------------------------------------------ snapping


def test_every_config_of_the_set_answers_itself():
    snapper = Snapper(SET)
    for cfg in SET:
        i, d = snapper.nearest(cfg)
        assert d == 0.0 and snapper.configs[i] == cfg and snapper.snap(cfg) == cfg


def test_the_nearest_config_is_the_closest_by_brute_force():
    snapper = Snapper(SET)
    table = unit_encode(SET)
    for query in sample(seed=8, n=30):
        d = distances(unit_encode([query])[0], table)
        i, dist = snapper.nearest(query)
        assert dist == pytest.approx(d.min()) and config_id(snapper.configs[i]) in {IDS[k] for k in np.flatnonzero(
            np.isclose(d, d.min()))}


def test_ties_go_to_the_smallest_config_id_whatever_the_order_given():
    query = _cfg(lr_init=1e-3)
    a, b = _cfg(lr_init=1e-3, batch_size=64), _cfg(lr_init=1e-3, batch_size=256)  # 128 lies between, in log scale
    first = min(config_id(a), config_id(b))
    for order in ([a, b], [b, a], [b, a] + SET[:5], SET[:5] + [a, b]):
        snapper = Snapper(order)
        i, d = snapper.nearest(query)
        assert snapper.ids[i] == first and d > 0


def test_an_inactive_hyperparameter_never_decides_a_match():
    query = _cfg(n_conv_l=1)  # n_conv_1 and n_conv_2 inactive
    deep = [_cfg(n_conv_l=2, n_conv_1=w) for w in (16, 64, 1024)]  # differ only where the query has nothing
    table = unit_encode(deep)
    d = distances(unit_encode([query])[0], table)
    assert np.ptp(d) == 0 and d[0] == pytest.approx(np.sqrt((0.5) ** 2 + 1.0))  # depth 1 -> 2, one extra layer
    snapper = Snapper(deep)
    assert snapper.ids[snapper.nearest(query)[0]] == min(config_id(c) for c in deep)
    # ... and the other way round: the candidate's value of a layer the query lacks does not count either.
    shallow = _cfg(n_conv_l=1, n_conv_0=16)
    assert distances(unit_encode([_cfg(n_conv_l=3, n_conv_1=16)])[0], unit_encode([shallow]))[0] == pytest.approx(
        distances(unit_encode([_cfg(n_conv_l=3, n_conv_1=1024)])[0], unit_encode([shallow]))[0])


def test_snapper_refuses_an_empty_set_and_duplicates():
    with pytest.raises(ValueError, match="empty"):
        Snapper([])
    with pytest.raises(ValueError, match="twice"):
        Snapper([SET[0], dict(SET[0])])


# --------------------------------------------------------------------- the optimizer is told the answer


@pytest.mark.parametrize("name", ["random", "msehvi", "moasha", "bulkcut"])
def test_the_optimizer_is_told_the_answered_config_and_its_exact_size(name):
    bench = ToyBenchmark()
    snapper = Snapper(SET)
    problem = bench.problem(n_workers=1, budget=Budget(evaluations=12))
    told = []
    opt = SnappedOptimizer(OPTIMIZERS[name](problem, seed=3), snapper)
    inner_tell = opt.optimizer.tell
    opt.optimizer.tell = lambda obs: (told.append(obs), inner_tell(obs))  # MS-EHVI checks the exact size itself
    table = simulate(SetBenchmark(bench, IDS), opt, problem, seed=5)
    assert len(table) == 12 and set(table["config_id"]) <= set(IDS)
    for obs in told:
        assert obs.job.config_id in snapper and obs.log10_params == pytest.approx(
            log10_params(obs.config, (3, 16, 16), 17))
    asked = [a for a, _, _ in opt.ledger]
    assert len(opt.ledger) >= 12 and any(a not in snapper for a in asked)  # proposals off the set were moved
    assert all((a == b) == (d == 0.0) for a, b, d in opt.ledger)


def test_set_benchmark_refuses_configs_outside_the_set_and_uses_one_clock():
    toy = ToyBenchmark()
    outside = next(c for c in sample(seed=9, n=10) if config_id(c) not in IDS)
    bench = SetBenchmark(toy, IDS)
    with pytest.raises(ValueError, match="snap it first"):
        bench.query(outside, 3)

    class Flat:
        def cost(self, config, epoch, *, from_epoch=0, seed=0):
            return 10.0 * (epoch - from_epoch)

    clocked = SetBenchmark(toy, IDS, clock=Flat())
    cost, res = clocked.answer(Job(SET[0], 5))
    assert cost == 50.0 and res.val_error == toy.query(SET[0], 5).val_error
    assert clocked.cost(SET[0], 5, from_epoch=2) == 30.0


def test_seeds_from_the_replay_draw_as_often_anew_as_the_real_side(tmp_path):
    """A config logged once answers every repeated ask alike; one logged twice cycles through two draws."""
    from conftest import make_record, write_records

    from surrobench.benchmark import TabularBenchmark

    once, twice = SET[0], SET[1]
    records = [make_record(once, dataset="flowers17", epochs=25, seed=100),
               *(make_record(twice, dataset="flowers17", epochs=25, seed=s) for s in (100, 101))]
    tab = TabularBenchmark(write_records(tmp_path / "runs.jsonl", records), "flowers17")
    ids = [config_id(once), config_id(twice)]
    toy = ToyBenchmark(noise=0.05, dataset="flowers17")
    free, tied = SetBenchmark(toy, ids), SetBenchmark(toy, ids, seeds_from=tab)

    def answers(bench, cfg):
        return [bench.answer(Job(cfg, 25), seed=s)[1].val_error for s in range(6)]

    assert len(set(answers(free, once))) == 6  # a fresh draw for every trial's seed
    assert answers(tied, once) == [toy.query(once, 25, seed=100).val_error] * 6
    assert answers(tied, twice) == [toy.query(twice, 25, seed=(100, 101)[s % 2]).val_error for s in range(6)]
    assert tied.query(twice, 25, seed=3).val_error == toy.query(twice, 25, seed=101).val_error
    assert tied.describe()["seeds"] != free.describe()["seeds"]
    with pytest.raises(ValueError, match="seeds_from: 1 of the set"):
        SetBenchmark(toy, [*ids, IDS[2]], seeds_from=tab)
    # the draw ceiling's side: the same repeats rule, another realization of the draws
    redraw = SetBenchmark(toy, ids, seeds_from=tab, seed_offset=2**40)
    assert answers(redraw, once) == [toy.query(once, 25, seed=100 + 2**40).val_error] * 6
    assert answers(redraw, once) != answers(tied, once)
    assert redraw.describe()["seed_offset"] == 2**40
    for bad in (-1, 2**63, 1.5, True):
        with pytest.raises(ValueError, match="seed_offset"):
            SetBenchmark(toy, ids, seed_offset=bad)


# ------------------------------------------------------------------------ statistics on known truth


class Band:
    """A test optimizer that trains configs drawn from one quality band of the set, 25 epochs each."""

    bands: list[list[dict]] = []

    def __init__(self, problem, seed=None, band=0):
        self.rng = np.random.default_rng(seed)
        self.pool = self.bands[band]

    def ask(self):
        return Job(self.pool[int(self.rng.integers(len(self.pool)))], 25)

    def tell(self, observation):
        pass


class Shuffled(ToyBenchmark):
    """Answers config c with everything the toy answers for config perm(c): errors, size and cost."""

    def __init__(self, perm: dict[str, dict]):
        super().__init__()
        self.toy, self.perm = ToyBenchmark(), perm

    def query(self, config, epoch, *, seed=0):
        return self.toy.query(self.perm[config_id(config)], epoch, seed=seed)

    def cost(self, config, epoch, *, from_epoch=0, seed=0):
        return self.toy.cost(self.perm[config_id(config)], epoch, from_epoch=from_epoch, seed=seed)


def _bands(n_bands=6):
    toy = ToyBenchmark(noise=0.0)
    ranked = sorted(SET, key=lambda c: toy.query(c, 25).val_error)
    size = len(ranked) // n_bands
    Band.bands = [ranked[k * size:(k + 1) * size] for k in range(n_bands)]
    return {f"band{k}": (Band, {"band": k}) for k in range(n_bands)}


def _study(sides, seeds=range(6)):
    opts = _bands()
    _, final, _ = run_sides(sides, opts, seeds, {"b": 2500.0}, n_grid=8)
    return final


def test_a_perfect_surrogate_gives_tau_1_and_full_pairwise_agreement():
    snapper = Snapper(SET)
    final = _study({"real": Side(SetBenchmark(ToyBenchmark(), IDS), snapper),
                    "perfect": Side(SetBenchmark(ToyBenchmark(), IDS), snapper)})
    summary, pairs = agreement(final, "real", "perfect", n_boot=200)
    row = summary.iloc[0]
    assert row["tau"] == pytest.approx(1.0) and row["pairwise_agreement"] == 1.0 and row["flipped"] == ""
    assert len(pairs) == 15 and (pairs["p_agree"] == 1.0).all()
    assert row["noise_ceiling"] > 0.6  # the bands really differ on the real side


def test_a_surrogate_that_shuffles_answers_between_configs_agrees_near_chance():
    snapper = Snapper(SET)
    seeds = range(4)
    real = _study({"real": Side(SetBenchmark(ToyBenchmark(), IDS), snapper)}, seeds)
    rng = np.random.default_rng(0)
    agreements, taus = [], []
    for _ in range(6):
        perm = dict(zip(IDS, [SET[i] for i in rng.permutation(len(SET))]))
        shuffled = _study({"shuffled": Side(SetBenchmark(Shuffled(perm), IDS), snapper)}, seeds)
        row = agreement(pd.concat([real, shuffled]), "real", "shuffled", n_boot=20)[0].iloc[0]
        agreements.append(row["pairwise_agreement"])
        taus.append(row["tau"])
    assert row["noise_ceiling"] > 0.6  # the real side does separate the bands
    assert 0.3 <= np.mean(agreements) <= 0.7 and abs(np.mean(taus)) <= 0.4


def test_hv_logged_scores_a_side_by_the_logs_and_exposes_optimism():
    toy = ToyBenchmark(noise=0.0)
    val = np.array([[toy.query(c, e).val_error for e in range(1, 26)] for c in SET])
    errors = logged_errors(IDS, val)
    assert errors.loc[(IDS[3], 25)] == pytest.approx(val[3, 24])
    # two logged runs of one config: the mean
    two = logged_errors([IDS[0], IDS[0]], np.vstack([val[0], val[0] + 0.1]))
    assert two.loc[(IDS[0], 7)] == pytest.approx(val[0, 6] + 0.05)

    class Optimistic(ToyBenchmark):  # answers every config 0.2 better than the logs say
        def query(self, config, epoch, *, seed=0):
            r = super().query(config, epoch, seed=seed)
            return dataclasses.replace(r, val_error=max(r.val_error - 0.2, 0.0))

    snapper = Snapper(SET)
    sides = {"real": Side(SetBenchmark(ToyBenchmark(noise=0.0), IDS), snapper),
             "optimistic": Side(SetBenchmark(Optimistic(noise=0.0), IDS), snapper)}
    _, final, _ = run_sides(sides, _bands(3), range(3), {"b": 2500.0}, n_grid=8, logged_errors=errors)
    real, opt = (final[final["side"] == s].set_index(["optimizer", "seed"]) for s in ("real", "optimistic"))
    np.testing.assert_allclose(real["hv_logged"], real["hv"])  # the real side is the logs
    assert (opt["hv"] > opt["hv_logged"] + 0.1).all()  # promised more than the configs deliver
    np.testing.assert_allclose(opt["hv_logged"], real.loc[opt.index, "hv_logged"])  # same configs found
    assert "hv_logged_median" in rankings(final).columns
    # a side answering configs the logs never saw cannot be scored by them
    _, unlogged, _ = run_sides(sides, _bands(3), range(1), {"b": 2500.0}, n_grid=8, logged_errors=errors.iloc[:25])
    assert unlogged["hv_logged"].isna().all()


def test_a_large_study_table_written_by_several_processes_has_the_same_bytes(tmp_path, request):
    from surrobench.validate import ValidationResults, write_validation

    snapper = Snapper(SET)
    sides = {"real": Side(SetBenchmark(ToyBenchmark(), IDS), snapper)}
    runs, final, hv = run_sides(sides, _bands(2), range(4), {"b": 2500.0}, n_grid=8)
    res = ValidationResults(runs=runs, final=final, hv=hv, ranking=rankings(final), summary=pd.DataFrame(),
                            pairs=pd.DataFrame(), metadata={"study": "toy"})
    write_validation(res, tmp_path / "one", plots=False)
    written_here = request.getfixturevalue("parallel_csv")  # from here on: blocks, 2 processes
    write_validation(res, tmp_path / "two", plots=False, n_jobs=2)
    assert len(runs) > 4 * 2 * 10 and not any("runs" in str(p) for p in written_here)  # runs: by the workers
    for name in ValidationResults.TABLES:
        assert (tmp_path / "two" / f"{name}.csv").read_bytes() == (tmp_path / "one" / f"{name}.csv").read_bytes()
    assert not list((tmp_path / "two").glob(".*.tmp"))


def test_agreement_names_the_flipped_pair_and_counts_it():
    rows = []
    for side, hv in (("real", {"a": 3.0, "b": 2.0, "c": 1.0}), ("sur", {"a": 3.0, "b": 1.0, "c": 2.0})):
        for seed in range(4):
            for opt, v in hv.items():
                rows.append({"side": side, "budget": "x", "seconds": 1.0, "optimizer": opt, "seed": seed,
                             "hv": v + 0.01 * seed})
    summary, pairs = agreement(pd.DataFrame(rows), "real", "sur", n_boot=100)
    row = summary.iloc[0]
    assert row["flipped"] == "b/c" and row["pairwise_agreement"] == pytest.approx(2 / 3)
    assert row["tau"] == pytest.approx(1 / 3) and row["noise_ceiling"] == pytest.approx(1.0)
    assert pairs.set_index(["a", "b"]).loc[("b", "c"), "p_agree"] == 0.0


def test_noise_ceiling_is_low_when_seeds_do_not_separate_the_optimizers():
    rng = np.random.default_rng(1)
    assert abs(noise_ceiling(rng.normal(size=(6, 40)))) < 0.3
    assert noise_ceiling(np.arange(6)[:, None] + rng.normal(scale=0.01, size=(6, 40))) == pytest.approx(1.0)


# ------------------------------------------------------------------------------ command line


def _stored_study(tmp_path, resume, study=None, opts=None):
    snapper = Snapper(SET)
    sides = {"real": Side(SetBenchmark(ToyBenchmark(), IDS), snapper),
             "other": Side(SetBenchmark(ToyBenchmark(noise=0.0), IDS), snapper)}
    return run_sides(sides, opts or _bands(3), range(3), {"1%": 1500.0, "b": 2500.0}, n_grid=8,
                     cells_dir=tmp_path / "cells", study=study or {"logs": "toy"}, resume=resume)


def test_stored_runs_resume_to_the_same_tables_without_running_again(tmp_path, monkeypatch):
    import surrobench.validate as validate_module

    fresh = run_sides({"real": Side(SetBenchmark(ToyBenchmark(), IDS), Snapper(SET)),
                       "other": Side(SetBenchmark(ToyBenchmark(noise=0.0), IDS), Snapper(SET))},
                      _bands(3), range(3), {"1%": 1500.0, "b": 2500.0}, n_grid=8)
    stored = _stored_study(tmp_path, resume=False)
    files = sorted((tmp_path / "cells").glob("*.npz"))
    assert len(files) == 2 * 3 * 2 * 3 and all("%" not in f.name for f in files)  # sides x opts x budgets x seeds
    for a, b in zip(fresh, stored):
        pd.testing.assert_frame_equal(a, b)  # storing changes nothing

    made = []
    real_run_cell = validate_module.run_cell

    def counting(*args, **kwargs):
        made.append(args[3])
        return real_run_cell(*args, **kwargs)

    monkeypatch.setattr(validate_module, "run_cell", counting)
    files[5].unlink()
    resumed = _stored_study(tmp_path, resume=True)
    assert len(made) == 1  # only the deleted run is made again
    for a, b in zip(fresh, resumed):
        pd.testing.assert_frame_equal(a, b)  # same tables, same row order
    made.clear()
    _stored_study(tmp_path, resume=False)
    assert len(made) == 36  # without resume every run is made (and stored again)
    made.clear()
    _stored_study(tmp_path, resume=True, study={"logs": "other logs"})
    assert len(made) == 36  # another study's runs are not reused


def test_runs_stored_by_a_command_of_one_side_serve_the_study_of_both(tmp_path, monkeypatch):
    opts = _bands(2)
    real = Side(SetBenchmark(ToyBenchmark(), IDS), Snapper(SET))
    other = Side(SetBenchmark(ToyBenchmark(noise=0.0), IDS), Snapper(SET))
    kw = dict(n_grid=8, cells_dir=tmp_path / "cells", study={"logs": "toy"})
    run_sides({"other": other}, opts, range(2), {"b": 2500.0}, **kw)  # one "command" ran one side
    run_sides({"real": real}, {"band1": opts["band1"]}, range(2), {"b": 2500.0}, **kw)  # another, part of the other
    whole = run_sides({"real": real, "other": other}, opts, range(2), {"b": 2500.0}, n_grid=8)
    import surrobench.validate as validate_module

    made = []
    original = validate_module.run_cell
    monkeypatch.setattr(validate_module, "run_cell", lambda *a, **k: made.append(a[3]) or original(*a, **k))
    gathered = run_sides({"real": real, "other": other}, opts, range(2), {"b": 2500.0}, resume=True, **kw)
    assert len(made) == 2  # only real x band0 x 2 seeds had not been stored
    for a, b in zip(whole, gathered):
        pd.testing.assert_frame_equal(a, b)


def test_stored_runs_need_a_folder_and_a_study_and_skip_a_damaged_file(tmp_path, caplog):
    opts, sides = _bands(2), {"real": Side(SetBenchmark(ToyBenchmark(), IDS), Snapper(SET))}
    with pytest.raises(ValueError, match="resume: needs cells_dir"):
        run_sides(sides, opts, range(1), {"b": 2500.0}, resume=True)
    with pytest.raises(ValueError, match="cells_dir: needs study"):
        run_sides(sides, opts, range(1), {"b": 2500.0}, cells_dir=tmp_path / "cells")
    first = run_sides(sides, opts, range(1), {"b": 2500.0}, n_grid=8, cells_dir=tmp_path / "cells", study={})
    victim = sorted((tmp_path / "cells").glob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated
    again = run_sides(sides, opts, range(1), {"b": 2500.0}, n_grid=8, cells_dir=tmp_path / "cells", study={},
                      resume=True)
    assert "unreadable" in caplog.text
    pd.testing.assert_frame_equal(first[1], again[1])


def test_validate_cli_keeps_the_runs_of_an_interrupted_study(tmp_path, monkeypatch, capsys):
    import surrobench.validate as validate_module

    asked = {}

    def interrupted(*args, **kwargs):
        asked.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(validate_module, "validate", interrupted)
    out = tmp_path / "o"
    assert _exit_code(["validate", str(FLOWERS_LOGS), "--out", str(out), "--no-progress", "--resume"]) == 130
    err = capsys.readouterr().err
    assert asked["cells_dir"] == str(out / "cells") and asked["resume"] is True
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    _exit_code(["validate", str(FLOWERS_LOGS), "--out", str(out), "--no-progress"])
    assert asked["resume"] is False


def _exit_code(argv):
    from surrobench.cli import main

    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


def _few_configs(tmp_path, n=6):
    from conftest import make_record, write_records

    records = [make_record(c, dataset="flowers17", epochs=25) for c in sample(seed=11, n=n)]
    return write_records(tmp_path / "logs" / "runs.jsonl", records).parent


FLOWERS_LOGS = __import__("pathlib").Path(__file__).resolve().parents[1] / "training_logs" / "flowers17"

BAD_VALIDATE = {
    "unknown-optimizer": lambda t: ([str(FLOWERS_LOGS), "--optimizers", "random,nosuch"], "nosuch"),
    "dataset-mismatch": lambda t: ([str(FLOWERS_LOGS), "--dataset", "digits"], "digits"),
    "too-few-configs": lambda t: ([str(_few_configs(t))], "too few for 5 folds"),
    "too-few-folds": lambda t: ([str(FLOWERS_LOGS), "--folds", "4"], "--folds"),
    "bad-budget": lambda t: ([str(FLOWERS_LOGS), "--budget", "0.05,1.5"], "shares"),
    "unknown-side": lambda t: ([str(FLOWERS_LOGS), "--sides", "real,fake"], "--sides: unknown fake"),
    "missing-logs": lambda t: ([str(t / "nope")], "nope"),
    "unknown-setting": lambda t: ([str(FLOWERS_LOGS), "--optimizers", "random,nsga2", "--set", "nsga2.population_sise=8"],
                                  "did you mean 'population_size'"),
    "bad-set": lambda t: ([str(FLOWERS_LOGS), "--set", "nsga2"], "--set: expected LABEL.KEY=VALUE"),
}


@pytest.mark.parametrize("progress", [[], ["--no-progress"]], ids=["bar", "no-bar"])
@pytest.mark.parametrize("case", sorted(BAD_VALIDATE))
def test_bad_validate_input_exits_2_with_one_line_before_any_run(tmp_path, capsys, monkeypatch, case, progress):
    import surrobench.surrogate as surrogate_pkg

    def no_fitting(*args, **kwargs):
        raise AssertionError("a surrogate was fitted before the input was checked")

    monkeypatch.setattr(surrogate_pkg, "fit_models", no_fitting)
    args, needle = BAD_VALIDATE[case](tmp_path)
    capsys.readouterr()
    code = _exit_code(["validate", *args, "--out", str(tmp_path / "out"), "--no-plots", *progress])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, logs", [([], "training_logs/flowers17"), (["--dataset", "digits"], "training_logs/digits")])
def test_validate_reads_the_logs_of_its_dataset_by_default(tmp_path, capsys, monkeypatch, argv, logs):
    from conftest import make_record, write_records

    for dataset in ("flowers17", "digits"):  # too few configs in each: the error names the folder it read
        records = [make_record(c, dataset=dataset, epochs=25) for c in sample(seed=3, n=4)]
        write_records(tmp_path / "training_logs" / dataset / "runs.jsonl", records)
    monkeypatch.chdir(tmp_path)
    code = _exit_code(["validate", *argv, "--out", str(tmp_path / "out"), "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"logs: 4 configs with complete runs in {logs} are too few for 5 folds" in err, err


def test_validate_cli_runs_the_sides_asked_for(tmp_path, monkeypatch):
    import surrobench.validate as validate_module

    asked = {}

    class Stop(Exception):
        pass

    def fake_validate(*args, **kwargs):
        asked.update(kwargs)
        raise Stop

    monkeypatch.setattr(validate_module, "validate", fake_validate)
    with pytest.raises(Stop):
        _exit_code(["validate", str(FLOWERS_LOGS), "--sides", "real, oof", "--out", str(tmp_path / "o"), "--no-progress"])
    assert asked["sides"] == ["real", "oof"]
    with pytest.raises(Stop):
        _exit_code(["validate", str(FLOWERS_LOGS), "--out", str(tmp_path / "o"), "--no-progress"])
    assert asked["sides"] == list(validate_module.DEFAULT_SIDES) and "oof_redraw" not in asked["sides"]
    with pytest.raises(Stop):
        _exit_code(["validate", str(FLOWERS_LOGS), "--sides", "real,oof,oof_redraw", "--out", str(tmp_path / "o"),
                    "--no-progress"])
    assert asked["sides"] == ["real", "oof", "oof_redraw"] and asked["noise_time"] == "auto"
    with pytest.raises(Stop):
        _exit_code(["validate", str(FLOWERS_LOGS), "--noise-time", "log-epoch", "--out", str(tmp_path / "o"),
                    "--no-progress"])
    assert asked["noise_time"] == "log-epoch" and asked["noise_size"] == "shared"
    with pytest.raises(Stop):
        _exit_code(["validate", str(FLOWERS_LOGS), "--noise-size", "by-error", "--out", str(tmp_path / "o"),
                    "--no-progress"])
    assert asked["noise_size"] == "by-error"
    with pytest.raises(Stop):
        _exit_code(["validate", str(FLOWERS_LOGS), "--optimizers", "nsga2,big=nsga2", "--set", "big.population_size=40",
                    "--out", str(tmp_path / "o"), "--no-progress"])
    assert asked["optimizers"] == {"nsga2": ("nsga2", {}), "big": ("nsga2", {"population_size": 40})}


def test_a_studys_metadata_names_the_settings_where_any_optimizer_has_some():
    from surrobench.compare import resolve_optimizers
    from surrobench.validate import _settings_note

    assert _settings_note(resolve_optimizers(["random", "nsga2"])) == {}  # the keys of earlier studies, unchanged
    note = _settings_note(resolve_optimizers({"nsga2": "nsga2", "big": ("nsga2", {"population_size": 40})}))
    assert note == {"optimizer_settings": {"big": {"population_size": 40}}}


def test_validate_refuses_an_unknown_noise_clock_before_fitting(monkeypatch):
    import surrobench.surrogate as surrogate_pkg
    from surrobench.validate import validate

    monkeypatch.setattr(surrogate_pkg, "fit_models", lambda *a, **k: pytest.fail("fitted before checking"))
    with pytest.raises(ValueError, match="noise_time: must be one of epoch, log-epoch, log-epoch-early, empirical, bank, bank-logged, auto, got 'hours'"):
        validate(FLOWERS_LOGS, noise_time="hours")
    with pytest.raises(ValueError, match="noise_size: must be one of shared, by-error, by-level, got 'tall'"):
        validate(FLOWERS_LOGS, noise_size="tall")


@pytest.mark.slow
def test_validate_on_the_shipped_logs_end_to_end(tmp_path):
    """About a minute: two optimizers, two seeds, one budget, the quick tuning grid."""
    from surrobench.validate import validate, write_validation

    from surrobench.validate import SIDES

    res = validate(FLOWERS_LOGS, optimizers=["random", "nsga2"], seeds=range(2), budgets=[0.02], grid="quick",
                   sides=SIDES)
    assert set(res.final["side"]) == {"real", "oof", "oof_redraw", "insample", "real_times", "oof_times", "half_a",
                                      "half_b"}
    real = res.runs[res.runs["side"] == "real"]
    logged = set(logged_set(FLOWERS_LOGS).ids)
    assert set(real["config_id"]) <= logged and (real["asked_config_id"] != real["config_id"]).mean() > 0.9
    half = res.runs[res.runs["side"] == "half_a"]
    assert (half["snap_distance"] == 0).all() and not set(half["config_id"]) <= logged  # the full space
    # the same seed and optimizer ask the same first config on every snapped side
    first = res.runs[(res.runs["job_id"] == 0) & res.runs["side"].isin(["real", "oof", "oof_redraw", "insample"])]
    assert first.groupby(["optimizer", "seed"])["asked_config_id"].nunique().max() == 1
    # the redraw answers the first job's config with another draw of the same surrogate
    a, b = (first[first["side"] == s].set_index(["optimizer", "seed"])["val_error"] for s in ("oof", "oof_redraw"))
    assert (a != b.loc[a.index]).any()
    assert len(res.summary) == 5 and res.summary["seeds"].eq(2).all()
    assert set(zip(res.summary["reference"], res.summary["compared"])) >= {("real", "oof"), ("oof", "oof_redraw")}
    written = write_validation(res, tmp_path / "out")
    assert (tmp_path / "out" / "summary.csv").is_file() and any(p.suffix == ".png" for p in written)


def test_validate_refuses_logs_whose_folds_cannot_fit_the_seed_noise_before_fitting(monkeypatch):
    """The digits logs hold three replicated configs: enough for the in-sample surrogate's seed noise,
    not for every fold's or half's. Refused up front with the surrogate named, nothing fitted."""
    import surrobench.surrogate as surrogate_module
    from surrobench.logged import check_fits
    from surrobench.validate import validate

    digits = FLOWERS_LOGS.parent / "digits"
    monkeypatch.setattr(surrogate_module, "fit_models", lambda *a, **k: pytest.fail("a surrogate was fitted"))
    with pytest.raises(ValueError, match=r"^logs: the out-of-fold surrogate of fold \d of 5 \(the other folds' configs\) "
                                         r"cannot be fitted: seed noise: needs at least 2 configs"):
        validate(digits, dataset="digits", optimizers=["random"], seeds=[0], budgets=[0.05], sides=("real", "oof"))
    with pytest.raises(ValueError, match="the surrogate of half a of the configs cannot be fitted"):
        validate(digits, dataset="digits", optimizers=["random"], seeds=[0], budgets=[0.05], sides=("real", "half_a"))
    logged = logged_set(digits, "digits")
    check_fits(logged, 5, oof=False, halves=False)  # the in-sample surrogate alone can be fitted
    with pytest.raises(ValueError, match="fold"):
        check_fits(logged, 5)


def test_seeds_for_ceiling_estimate_reaches_the_target_on_planted_noise():
    """Optimizers with planted means and normal seed noise: the seeds the estimate asks for bring the
    measured ranking noise ceiling to about 0.8 (it errs on the side of too many)."""
    from surrobench.validate import noise_ceiling, seeds_for_ceiling

    means = np.linspace(0.0, 1.0, 9)[:, None]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        ceiling = noise_ceiling(means + rng.normal(0, 0.6, (9, 24)))
        need = seeds_for_ceiling(ceiling, 24)
        assert 24 < need < 400
        again = noise_ceiling(means + rng.normal(0, 0.6, (9, int(need))), n_splits=50)
        assert 0.7 <= again <= 0.95, (seed, ceiling, need, again)
    assert seeds_for_ceiling(0.9, 24) == 24 and np.isnan(seeds_for_ceiling(-0.1, 24))


def test_validate_dips_tool_finds_runs_whose_best_point_is_part_way(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("validate_dips", Path(__file__).resolve().parents[1] / "tools" / "validate_dips.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows = []
    for seed in range(4):
        # the surrogate side sees a dip at epoch 9 (0.30) below its 25-epoch best (0.40) in seeds 0-2
        for side, early in (("real", 0.50), ("oof", 0.30 if seed < 3 else 0.60)):
            cfg = "a" if seed < 2 else "b"  # the real side trains both to 0.45 and 0.40 at 25 epochs
            rows += [{"epoch": 9, "val_error": early, "side": side, "budget": "10%", "optimizer": "m", "seed": seed,
                      "config_id": cfg},
                     {"epoch": 25, "val_error": 0.40 if side == "oof" or cfg == "b" else 0.45, "side": side,
                      "budget": "10%", "optimizer": "m", "seed": seed, "config_id": cfg}]
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    final = pd.DataFrame([{"side": s, "budget": "10%", "optimizer": "m", "seed": k, "hv": 1.0 if s == "real" else 1.2,
                           "hv_logged": 1.0 if s == "real" else 0.9} for s in ("real", "oof") for k in range(4)])
    final.to_csv(tmp_path / "final.csv", index=False)
    table = tool.dips(tmp_path).set_index("side")
    assert table.loc["oof", "early_best"] == 0.75 and table.loc["real", "early_best"] == 0.0
    assert table.loc["oof", "best_any"] == pytest.approx(0.30) and table.loc["oof", "best_25"] == pytest.approx(0.40)
    [(budget, side, lv)] = tool.levels(tool.dips(tmp_path))  # the surrogate side's levels against the real side's
    assert (budget, side) == ("10%", "oof")
    assert lv.loc["m"].to_dict() == pytest.approx({"level": 0.2, "search": -0.1, "optimism": 0.3})
    # seeds 0-2 of the oof side: best at epoch 9 (0.30), configs a, a, b; each 0.10 below its own 25-epoch
    # answer (0.40); the real side trains a to 0.45 and b to 0.40, so real_gap is 0.05 for a and 0 for b
    early = tool.early_points(tool.read_runs(tmp_path)).set_index("side")
    assert list(early.index) == ["oof"]
    assert early.loc["oof", ["runs", "configs"]].tolist() == [3, 2]
    assert early.loc["oof", "dip"] == pytest.approx(0.10) and early.loc["oof", "real_gap"] == pytest.approx(0.05)
    assert tool.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hv_logged" in out and "mean |level| 0.200, |search| 0.100, |optimism| 0.300" in out
    assert "trained part-way" in out
    assert tool.main([str(tmp_path / "missing")]) == 2


def test_studies_that_differ_in_the_noise_clock_share_only_the_runs_of_the_logs(tmp_path, monkeypatch):
    import surrobench.validate as validate_module

    opts = _bands(2)
    sides = {"real": Side(SetBenchmark(ToyBenchmark(), IDS), Snapper(SET)),
             "oof": Side(SetBenchmark(ToyBenchmark(noise=0.0), IDS), Snapper(SET))}
    kw = dict(n_grid=8, cells_dir=tmp_path / "cells")
    run_sides(sides, opts, range(2), {"b": 2500.0}, study={"logs": "toy"}, **kw)
    made = []
    original = validate_module.run_cell
    monkeypatch.setattr(validate_module, "run_cell", lambda *a, **k: made.append(a[0]) or original(*a, **k))
    run_sides(sides, opts, range(2), {"b": 2500.0}, study={"logs": "toy", "noise_time": "log-epoch"}, resume=True, **kw)
    assert len(made) == 4 and all(m is sides["oof"] for m in made)  # the oof side again; the real runs reused
    made.clear()
    run_sides(sides, opts, range(2), {"b": 2500.0}, study={"logs": "toy", "noise_time": "log-epoch", "noise_size": "by-error"},
              resume=True, **kw)
    assert len(made) == 4 and all(m is sides["oof"] for m in made)  # the noise's size: the same
    made.clear()
    run_sides(sides, opts, range(2), {"b": 2500.0}, study={"logs": "toy", "noise_time": "log-epoch", "noise_size": "by-error",
                                                           "config_noise": "unexplained"}, resume=True, **kw)
    assert len(made) == 4 and all(m is sides["oof"] for m in made)  # the config noise: the same
    made.clear()
    run_sides(sides, opts, range(2), {"b": 2500.0}, study={"logs": "toy", "noise_time": "log-epoch", "noise_size": "by-error",
                                                           "config_noise": "unexplained", "config_noise_form": "other"},
              resume=True, **kw)
    assert len(made) == 4 and all(m is sides["oof"] for m in made)  # another form of it: the oof runs anew


def _two_sides(real: dict, oof: dict, n_seeds: int = 10, budget: str = "10%") -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame([{"side": side, "budget": budget, "seconds": 100.0, "optimizer": name, "seed": s,
                          "hv": level + 0.01 * rng.random()}
                         for side, levels in (("real", real), ("oof", oof)) for name, level in levels.items()
                         for s in range(n_seeds)])


def test_separations_sorts_the_pairs_each_side_separates():
    from surrobench.validate import separations

    # real ranks a b c d (CD 1.48 at 4 methods, 10 seeds): separates a>c, a>d, b>d;
    # oof ranks a d c b: separates a>c, a>b, d>b
    final = _two_sides({"a": 4, "b": 3, "c": 2, "d": 1}, {"a": 4, "b": 1, "c": 2, "d": 3})
    [row] = separations(final).to_dict("records")
    assert (row["seeds"], row["optimizers"]) == (10, 4)
    assert row["critical_difference"] == pytest.approx(2.569 * np.sqrt(20 / 60), abs=1e-3)
    assert (row["reference_separated"], row["compared_separated"], row["same_way"]) == (3, 3, 1)
    assert row["reversed"] == "d>b"  # as the compared side orders them
    assert row["only_compared"] == "a>b" and row["only_reference"] == "a>d"
    # sides that agree: every separated pair the same way
    [agree] = separations(_two_sides({"a": 4, "b": 3, "c": 2, "d": 1}, {"a": 4, "b": 3, "c": 2, "d": 1})).to_dict("records")
    assert agree["same_way"] == agree["reference_separated"] == agree["compared_separated"] == 3
    assert agree["reversed"] == agree["only_compared"] == agree["only_reference"] == ""


def test_separation_shares_bootstrap_each_sides_verdict():
    from surrobench.validate import separation_shares

    # the planted sides above, every seed the same order: each side separates its pairs in every
    # resample, and never in the other order
    final = _two_sides({"a": 4, "b": 3, "c": 2, "d": 1}, {"a": 4, "b": 1, "c": 2, "d": 3})
    shares = separation_shares(final, n_boot=50).set_index(["a", "b"])
    assert len(shares) == 12  # every ordered pair of four
    assert shares.loc[("a", "c")].tolist()[-2:] == [1.0, 1.0]  # both sides, every resample
    assert shares.loc[("b", "d"), "reference_share"] == 1.0 and shares.loc[("b", "d"), "compared_share"] == 0.0
    assert shares.loc[("d", "b"), "compared_share"] == 1.0 and shares.loc[("d", "b"), "reference_share"] == 0.0
    assert shares.loc[("a", "b"), "compared_share"] == 1.0 and shares.loc[("a", "b"), "reference_share"] == 0.0
    assert (shares.loc[("c", "a")][["reference_share", "compared_share"]] == 0.0).all()
    # seeds that decide it: a noisy pair is separated in some resamples only
    rng = np.random.default_rng(3)
    noisy = _two_sides({"a": 0, "b": 0, "c": 0}, {"a": 0, "b": 0, "c": 0}, n_seeds=30)
    noisy["hv"] = rng.normal(size=len(noisy)) + noisy["optimizer"].map({"a": 0.5, "b": 0.0, "c": 0.0})
    mid = separation_shares(noisy, n_boot=100, seed=1).set_index(["a", "b"])
    assert 0.0 < mid.loc[("a", "b"), "reference_share"] < 1.0
    with pytest.raises(ValueError, match="n_boot"):
        separation_shares(final, n_boot=0)


def test_pair_differences_and_seed_spread_say_why_a_side_separates():
    from surrobench.validate import pair_differences, seed_spread

    rng = np.random.default_rng(5)
    n = 40
    base = rng.normal(size=n)  # the seeds' luck, shared by the methods of a seed
    rows = []
    for s in range(n):
        # real: a 0.1 ahead of b, noisy; oof: the same mean, a tenth of the noise (a varies less);
        # c: 0.3 ahead of b on oof only (a level the surrogate moves)
        for side, scale, c_level in (("real", 1.0, 0.0), ("oof", 0.1, 0.3)):
            rows += [{"side": side, "budget": "10%", "seconds": 1.0, "optimizer": "a", "seed": s,
                      "hv": 1.1 + scale * base[s]},
                     {"side": side, "budget": "10%", "seconds": 1.0, "optimizer": "b", "seed": s, "hv": 1.0},
                     {"side": side, "budget": "10%", "seconds": 1.0, "optimizer": "c", "seed": s, "hv": 1.0 + c_level}]
    final = pd.DataFrame(rows)
    diffs = pair_differences(final).set_index(["a", "b"])
    assert len(diffs) == 6  # every ordered pair of three
    ab = diffs.loc[("a", "b")]
    assert ab["reference_mean"] == pytest.approx(0.1 + base.mean())
    assert ab["compared_mean"] == pytest.approx(0.1 + 0.1 * base.mean())
    assert ab["reference_sd"] == pytest.approx(base.std(ddof=1)) and ab["compared_sd"] == pytest.approx(0.1 * base.std(ddof=1))
    assert diffs.loc[("b", "a"), "reference_mean"] == pytest.approx(-ab["reference_mean"])  # both orders
    assert diffs.loc[("c", "b"), "compared_mean"] == pytest.approx(0.3) and diffs.loc[("c", "b"), "reference_mean"] == 0.0
    spread = seed_spread(final).set_index("optimizer")
    assert spread.loc["a", "ratio"] == pytest.approx(0.1)
    assert spread.loc["a", "reference_sd"] == pytest.approx(base.std(ddof=1))
    assert np.isnan(spread.loc["b", "ratio"])  # no spread on the reference side: no ratio
    with pytest.raises(ValueError, match="no column 'hv'"):
        seed_spread(final.drop(columns="hv"))
    assert pair_differences(final, compared="insample").empty  # a side that was not run


def test_separations_says_what_is_wrong():
    from surrobench.validate import separations

    final = _two_sides({"a": 2, "b": 1, "c": 0}, {"a": 2, "b": 1, "c": 0})
    with pytest.raises(ValueError, match="no column 'hv'"):
        separations(final.drop(columns="hv"))
    lacking = final[~((final["side"] == "oof") & (final["optimizer"] == "c") & (final["seed"] == 3))]
    with pytest.raises(ValueError, match="complete seeds differ"):
        separations(lacking)
    assert separations(final, compared="insample").empty  # a side that was not run


def test_validate_separations_tool_prints_each_study(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "validate_separations", Path(__file__).resolve().parents[1] / "tools" / "validate_separations.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _two_sides({"a": 4, "b": 3, "c": 2, "d": 1}, {"a": 4, "b": 1, "c": 2, "d": 3}).to_csv(tmp_path / "final.csv", index=False)
    assert tool.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "real vs oof, alpha 0.05" in out and "d>b" in out and "a>b" in out and "a>d" in out
    # the disputed pairs with each side's bootstrap share, in the order listed
    disputed = [line.split() for line in out.splitlines() if ">" in line and line.strip().startswith("10%")][-3:]
    assert [row[:-4] for row in disputed] == [
        ["10%", "d>b", "reversed", "0.000", "1.000"], ["10%", "a>b", "only", "compared", "0.000", "1.000"],
        ["10%", "a>d", "only", "reference", "1.000", "0.000"]]
    # why: the mean differences of hypervolume the planted levels give (d>b: -2 real, +2 oof; a>d: 3 and 1)
    assert [float(v) for v in disputed[0][-4::2]] == pytest.approx([-2.0, 2.0], abs=0.01)
    assert [float(v) for v in disputed[2][-4::2]] == pytest.approx([3.0, 1.0], abs=0.01)
    # and the spread of each method over the seeds, oof over real (the same noise: about 1)
    spread_header = next(i for i, line in enumerate(out.splitlines()) if "between-seed sd of hypervolume" in line)
    header, row = (line.split() for line in out.splitlines()[spread_header + 1: spread_header + 3])
    assert header == ["budget", "a", "b", "c", "d"] and row[0] == "10%" and len(row) == 5
    assert tool.main([str(tmp_path / "missing")]) == 2
    assert "final.csv not found" in capsys.readouterr().err


def test_validate_separations_tool_takes_a_folder_relative_to_the_repository(capsys, monkeypatch):
    """As the docs call it, from the repository root (it raised a ValueError on a relative path)."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    tool = _tool("validate_separations")
    assert tool.main(["docs/results/validate_mapped"]) == 0
    assert capsys.readouterr().out.startswith("docs/results/validate_mapped (3,596 logged runs, seed noise bank-logged)")
    assert tool.main(["docs/results/validate_config_noise_2_10_4ead70c"]) == 0  # a study with the config noise says so
    assert capsys.readouterr().out.startswith("docs/results/validate_config_noise_2_10_4ead70c (3,927 logged runs, "
                                              "seed noise bank-logged, config noise unexplained)")
    assert tool.main(["docs/results/validate_config_halves_2_10_4ead70c"]) == 0  # ... and of which form
    assert capsys.readouterr().out.startswith("docs/results/validate_config_halves_2_10_4ead70c (3,927 logged runs, "
                                              "seed noise bank-logged, config noise unexplained "
                                              "(two halves, 10 bins, scale 0.5))")


def _tool(name: str):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_bank_variant_study_reports_both_surrogate_sides_and_refuses_other_logs(tmp_path, capsys):
    tool = _tool("bank_variant_study")
    real = {"a": 4, "b": 3, "c": 2, "d": 1}
    final = pd.concat([_two_sides(real, {"a": 4, "b": 1, "c": 2, "d": 3}),
                       _two_sides(real, real).query("side == 'oof'").assign(side="variant")], ignore_index=True)
    text = tool.report(final, "level x3, 6 nearest", n_boot=50)
    lines = text.splitlines()
    assert lines[0].startswith("shipped: budget 10%: tau") and "flipped" in lines[0]
    assert "only shipped: a>b" in text and "reversed: d>b" in text  # the planted oof side, as separations sorts it
    variant = next(line for line in lines if line.startswith("level x3, 6 nearest: budget 10%"))
    assert "tau 1.00" in variant and "flipped" not in variant  # the variant ranks as the real runs do
    assert "same way 3; reversed: -; only level x3, 6 nearest: -; only real: -" in text
    assert sum("between-seed sd of hypervolume" in line for line in lines) == 2
    # a study whose logs are not the ones given, or no study at all: one line, exit 2, nothing fitted
    study = tmp_path / "study"
    study.mkdir()
    final.query("side != 'variant'").to_csv(study / "final.csv", index=False)
    (study / "metadata.json").write_text(json.dumps({"dataset": "digits", "training_data": "0" * 64, "n_runs": 1,
                                                     "seeds": list(range(10)), "budgets": {}, "optimizers": ["random"]}))
    digits = FLOWERS_LOGS.parent / "digits"
    assert tool.main([str(study), str(digits), "--out", str(tmp_path / "out")]) == 2
    assert "are not the logs the study was run on" in capsys.readouterr().err
    assert tool.main([str(tmp_path / "none"), str(digits), "--out", str(tmp_path / "out")]) == 2
    assert "final.csv not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # --report prints the report of a folder --out wrote
    stored = tmp_path / "stored"
    stored.mkdir()
    final.to_csv(stored / "final.csv", index=False)
    (stored / "metadata.json").write_text(json.dumps({"study": "S", "variant": "level x3, 6 nearest", "n_runs": 1234,
                                                      "seeds": list(range(10)), "n_boot": 50}))
    assert tool.main(["--report", str(stored)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("S (1,234 logged runs, 10 seeds): the shipped bank (oof) and the variant 'level x3, 6 nearest'")
    assert out.rstrip("\n").endswith(text.splitlines()[-1])
    assert tool.main(["--report", str(tmp_path / "none")]) == 2 and tool.main([]) == 2


def test_validate_fronts_bands_add_up_to_the_hypervolume():
    from surrobench.metrics import hypervolume

    tool = _tool("validate_fronts")
    # f is 0.5 on sizes [3, 5) and 0.3 on [5, 8): areas 0.5, 0.5, 0.7 and 2 x 0.7
    areas = tool.band_hypervolumes(np.array([3.0, 5.0]), np.array([0.5, 0.3]), np.array([3.0, 4.0, 5.0, 6.0, 8.0]))
    np.testing.assert_allclose(areas, [0.5, 0.5, 0.7, 1.4])
    rng = np.random.default_rng(0)
    for n in (1, 5, 200):
        size, err = rng.uniform(2.5, 8.5, n), rng.uniform(0.2, 1.1, n)  # some beyond the reference point
        edges = np.array([min(size.min(), 3.5), 3.5, 4.0, 5.5, 6.0, 8.0])
        assert tool.band_hypervolumes(size, err, edges).sum() == pytest.approx(
            hypervolume(np.column_stack([err, size]), ref=(1.0, 8.0)), abs=1e-12)
    assert not tool.band_hypervolumes(np.array([8.5]), np.array([0.2]), np.array([3.0, 8.0])).any()


def test_validate_fronts_splits_level_into_search_and_optimism_by_size():
    tool = _tool("validate_fronts")

    def job(side, cfg, size, err, epoch=25):
        return {"epoch": epoch, "val_error": err, "log10_params": size, "side": side, "budget": "10%",
                "optimizer": "m", "seed": 0, "config_id": cfg}

    # the real run finds a (size 3, 0.6 on the logs) and b (size 5, 0.4); the surrogate side finds a,
    # drawn 0.5, and c (size 6.5, drawn 0.2 at epoch 9, 0.35 on the logs)
    runs = pd.DataFrame([job("real", "a", 3.0, 0.6), job("real", "b", 5.0, 0.4),
                         job("oof", "a", 3.0, 0.5), job("oof", "c", 6.5, 0.2, epoch=9)])
    logged = np.array([0.6, 0.4, 0.6, 0.35])
    table = tool.split(runs, logged, edges=(4.0, 6.0)).set_index("band")
    assert list(table.index) == ["..4", "4-6", "6-8"]
    # areas: real 0.4/0.4+0.6/2x0.6; the side 0.5/2x0.5/0.5x0.5+1.5x0.8; its logged 0.4/0.8/0.2+0.975
    np.testing.assert_allclose(table["hv_real"], [0.4, 1.0, 1.2])
    np.testing.assert_allclose(table["hv"], [0.5, 1.0, 1.45])
    np.testing.assert_allclose(table["hv_logged"], [0.4, 0.8, 1.175])
    np.testing.assert_allclose(table["level"], table["search"] + table["optimism"])
    np.testing.assert_allclose(table["optimism"], [0.1, 0.2, 0.275])
    # a's gap is at 25 epochs; c, trained 9, makes the side's front from 6.5 on: 1.5 x (0.35 - 0.2)
    np.testing.assert_allclose(table["part_way"], [0.0, 0.0, 0.225])
    np.testing.assert_allclose(table["at_25"], [0.1, 0.2, 0.05])
    [(budget, side, wide)] = tool.summary(table.reset_index(), "level")
    assert (budget, side) == ("10%", "oof") and wide.loc["m", "total"] == pytest.approx(0.35)
    with pytest.raises(ValueError, match="edges: expected increasing"):
        tool.split(runs, logged, edges=(5.0, 4.0))
    from surrobench.validate import logged_errors

    with pytest.raises(ValueError, match="1 of 4 jobs answer configs the logs do not hold, e.g. b at epoch 25"):
        tool.logged_column(runs, logged_errors(["a", "c"], np.full((2, 25), 0.5)))


def test_validate_fronts_tool_reads_a_study_and_its_logs(tmp_path, capsys):
    tool = _tool("validate_fronts")
    digits = FLOWERS_LOGS.parent / "digits"
    logged = logged_set(digits, "digits")
    ids = logged.ids[:3]
    runs = pd.DataFrame([{"epoch": 25, "val_error": 0.3 + 0.1 * k, "log10_params": 4.0 + k, "side": side,
                          "budget": "10%", "optimizer": "random", "seed": 0, "config_id": cid}
                         for side in ("real", "oof") for k, cid in enumerate(ids)])
    study = tmp_path / "study"
    study.mkdir()
    runs.to_csv(study / "runs.csv", index=False)
    meta = {"logs": str(digits), "dataset": "digits", "training_data": logged.data.data_hash}
    (study / "metadata.json").write_text(json.dumps(meta))
    assert tool.main([str(study)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{study}: means over 1 seeds") and "budget 10%, oof: optimism" in out
    assert tool.main([str(study), "--edges", "4,x"]) == 2
    assert "--edges: expected comma-separated" in capsys.readouterr().err
    (study / "metadata.json").write_text(json.dumps({**meta, "training_data": "0" * 64}))
    assert tool.main([str(study)]) == 2
    assert "are not the logs the study was run on" in capsys.readouterr().err
    assert tool.main([str(tmp_path / "none")]) == 2
    assert "runs.csv not found" in capsys.readouterr().err


def test_pool_front_stats_see_a_pool_drawn_better_than_logged():
    tool = _tool("pool_front")
    rng = np.random.default_rng(3)
    logged = np.stack([np.column_stack([rng.uniform(0.4, 0.9, 200), rng.uniform(3.0, 7.0, 200)]) for _ in range(2)])
    edges = np.array([3.0, 4.0, 5.0, 6.0, 8.0])
    same = tool.pool_stats(logged, logged, edges)
    assert same["hv_drawn"] == same["hv_logged"] and not same["bands"].any()
    assert all(v == 0.0 for v in same["picked"].values()) and all(a == b for a, b in same["best"].values())
    better = logged.copy()
    better[..., 0] -= 0.05  # every config drawn 0.05 better than logged: the front 0.05 lower at every size
    s = tool.pool_stats(better, logged, edges)
    widths = [8.0 - logged[j, :, 1].min() for j in range(2)]
    assert s["hv_drawn"] - s["hv_logged"] == pytest.approx(0.05 * np.mean(widths))
    assert s["bands"].sum() == pytest.approx(s["hv_drawn"] - s["hv_logged"])
    assert s["bands"][-1] == pytest.approx(0.05 * 2.0)  # the band 6-8, wholly covered
    assert all(v == pytest.approx(-0.05) for v in s["picked"].values())
    assert all(a == pytest.approx(b - 0.05) for a, b in s["best"].values())


def test_pool_front_refuses_what_it_cannot_draw(capsys):
    tool = _tool("pool_front")
    assert tool.main([str(FLOWERS_LOGS.parent / "digits"), "--config-noise", "none,some"]) == 2
    assert capsys.readouterr().err.strip() == "pool_front: --config-noise: must be one of none, unexplained, got 'some'"
    assert tool.main([str(FLOWERS_LOGS.parent / "digits"), "--seeds", "0"]) == 2
    assert "--seeds: must be at least 1, got 0" in capsys.readouterr().err
    assert tool.main(["no/such/logs"]) == 2
    assert capsys.readouterr().err.startswith("pool_front: ")
