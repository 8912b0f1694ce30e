"""ConfigSpace and Optuna bridges: round trips, the ask/tell contract, name resolution."""

import sys

import pytest

from surrobench import space
from surrobench.compare import compare, resolve_optimizers
from surrobench.records import Job, Optimizer, Problem
from surrobench.simulator import Budget, simulate

from toybench import TASK, ToyBenchmark


# ---- ConfigSpace -------------------------------------------------------------------------

def test_configspace_samples_are_valid_here_and_ours_are_valid_there():
    CS = pytest.importorskip("ConfigSpace")
    from surrobench.bridges.configspace import to_configspace, to_configuration

    cs = to_configspace(seed=0)
    assert len(list(cs.values())) == 13 and len(cs.conditions) == 4
    depths = set()
    for conf in cs.sample_configuration(200):
        cfg = space.validate(conf)  # a Configuration is accepted as it is
        assert type(cfg) is dict and cfg == dict(cfg) and space.validate(cfg) == cfg
        assert all(type(v) in (int, float, bool) for v in cfg.values())
        depths.add((cfg["n_conv_l"], cfg["n_fc_l"]))
    assert len(depths) == 9  # every depth combination, so every condition was exercised
    for cfg in space.sample(seed=1, n=200):
        conf = to_configuration(cfg, cs)
        assert isinstance(conf, CS.Configuration)
        conf.check_valid_configuration()
        back = space.validate(conf)  # ConfigSpace keeps floats to about ten significant digits
        assert back == {**cfg, "lr_init": back["lr_init"]}
        assert back["lr_init"] == pytest.approx(cfg["lr_init"], rel=1e-8)
    assert dict(cs.get_default_configuration()) == space.default_config()


def test_configspace_json_round_trips(tmp_path):
    CS = pytest.importorskip("ConfigSpace")
    from surrobench.bridges.configspace import to_configspace, to_configspace_json

    text = to_configspace_json(tmp_path / "space.json")
    assert (tmp_path / "space.json").read_text() == text
    back = CS.ConfigurationSpace.from_json(tmp_path / "space.json")
    assert back == to_configspace()
    assert "n_conv_l" in text and '"log": true' in text
    (tmp_path / "file").write_text("keep")
    with pytest.raises(ValueError, match="path: cannot write .*file/space.json"):  # one line, nothing lost
        to_configspace_json(tmp_path / "file" / "space.json")
    assert (tmp_path / "file").read_text() == "keep"
    for seed in ("a", -1, 2**32, 1.5):
        with pytest.raises(ValueError, match="seed: must be an int in 0..4294967295"):
            to_configspace(seed=seed)


def test_inactive_key_in_a_configuration_is_still_refused():
    pytest.importorskip("ConfigSpace")
    from surrobench.bridges.configspace import to_configuration

    cfg = space.sample(seed=3)
    with pytest.raises(ValueError, match="n_conv_1: inactive"):
        to_configuration({**cfg, "n_conv_l": 1, "n_conv_1": 16, "n_conv_2": 16})


def test_mappings_are_accepted_without_configspace():
    class Frozen(dict):
        pass

    cfg = space.sample(seed=4)
    assert space.validate(Frozen(cfg)) == cfg
    with pytest.raises(ValueError, match="config must be a dict"):
        space.validate(list(cfg.items()))


# ---- Optuna ------------------------------------------------------------------------------

OPTUNA_NAMES = ["optuna-nsga2", "optuna-tpe", "optuna-random"]


def _build(name, problem, seed):
    cls, settings = resolve_optimizers([name])[name]
    return cls(problem, seed=seed, **settings)


def _run(name, *, seed=0, workers=1, lo=1, hi=25, budget=None, seen=None):
    bench = ToyBenchmark()
    bench.min_epoch, bench.max_epoch = lo, hi
    problem = bench.problem(n_workers=workers, budget=budget or Budget(evaluations=40))
    return simulate(bench, _build(name, problem, seed), problem, seed=seed,
                    on_observation=None if seen is None else seen.append)


@pytest.mark.parametrize("name", OPTUNA_NAMES)
def test_optuna_asks_before_any_tell(name):
    pytest.importorskip("optuna")
    opt = _build(name, Problem(TASK, n_workers=8), 0)
    assert isinstance(opt, Optimizer)
    jobs = [opt.ask() for _ in range(8)]
    assert all(isinstance(j, Job) and j.epoch == 25 and j.trial is None for j in jobs)
    assert len({j.config_id for j in jobs}) == 8


@pytest.mark.parametrize("name", OPTUNA_NAMES)
@pytest.mark.parametrize("workers", [1, 8])
def test_optuna_jobs_are_valid_full_fidelity_and_reproducible(name, workers):
    pytest.importorskip("optuna")
    seen = []
    a = _run(name, seed=5, workers=workers, lo=3, hi=12, seen=seen)
    assert len(a) == len(seen) == 40
    assert (a["epoch"] == 12).all() and (a["from_epoch"] == 0).all()
    for obs in seen:
        assert space.validate(obs.config) == dict(obs.config)
    b = _run(name, seed=5, workers=workers, lo=3, hi=12)
    c = _run(name, seed=6, workers=workers, lo=3, hi=12)
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert a["config_id"].tolist() != c["config_id"].tolist()


def test_optuna_study_sees_every_told_job():
    pytest.importorskip("optuna")
    problem = ToyBenchmark().problem(n_workers=4, budget=Budget(seconds=1800.0))
    opt = _build("optuna-nsga2", problem, 1)
    df = simulate(ToyBenchmark(), opt, problem, seed=1)
    done = [t for t in opt.study.trials if t.values is not None]
    assert len(done) == len(df) > 0
    assert sorted(t.values[0] for t in done) == sorted(df["val_error"])
    assert len(opt.study.trials) == len(done) + len(opt._pending)  # the rest are still running


@pytest.mark.parametrize("search_space", ["flat", "conditional"])
def test_optuna_search_spaces_reach_every_depth(search_space):
    optuna = pytest.importorskip("optuna")
    from surrobench.bridges.optuna import OptunaSampler

    opt = OptunaSampler(Problem(TASK), seed=0, sampler=optuna.samplers.RandomSampler, search_space=search_space)
    cfgs = [opt.ask().config for _ in range(100)]
    assert {(c["n_conv_l"], c["n_fc_l"]) for c in cfgs} == {(i, j) for i in (1, 2, 3) for j in (1, 2, 3)}
    params = opt.study.trials[0].params
    assert len(params) == (13 if search_space == "flat" else len(cfgs[0]))
    assert opt.study.trials[0].distributions["lr_init"].log


def test_optuna_bad_settings():
    optuna = pytest.importorskip("optuna")
    from surrobench.bridges.optuna import OptunaSampler

    with pytest.raises(ValueError, match="unknown Optuna sampler"):
        resolve_optimizers(["optuna-cmaes"])
    with pytest.raises(ValueError, match="not an instance"):
        OptunaSampler(Problem(TASK), sampler=optuna.samplers.TPESampler(seed=0))
    with pytest.raises(ValueError, match="search_space"):
        OptunaSampler(Problem(TASK), search_space="tree")
    with pytest.raises(ValueError, match="sampler_settings must map the sampler's keyword arguments to values, got str 'x'"):
        OptunaSampler(Problem(TASK), sampler_settings="x")
    opt = OptunaSampler(Problem(TASK), seed=0)
    other = OptunaSampler(Problem(TASK), seed=0)
    job = other.ask()
    obs = simulate.__globals__["Observation"](job, 0, 0, 0.5, 0.5, 5.0, 1.0, 0.0, 1.0, 0)
    with pytest.raises(ValueError, match="did not ask"):
        opt.tell(obs)


def test_optuna_missing_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "optuna" else real(n, *a))
    with pytest.raises(ValueError, match=r"needs optuna: pip install 'surrobench\[optuna\]'"):
        resolve_optimizers(["optuna-tpe"])


def test_optuna_names_in_compare():
    pytest.importorskip("optuna")
    res = compare(ToyBenchmark(), ["optuna-tpe", "random"], seeds=[0, 1], budget=Budget(seconds=3600.0), n_grid=20)
    assert set(res.final["optimizer"]) == {"optuna-tpe", "random"}
    assert res.metadata["optimizers"]["optuna-tpe"]["settings"] == {"sampler": "tpe"}
