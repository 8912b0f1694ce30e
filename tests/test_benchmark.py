"""The benchmark interface (docs/problem.md §5) over its back-ends: surrogate, tabular, live."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import surrobench
from surrobench.benchmark import (
    LiveBenchmark,
    Result,
    SurrogateBenchmark,
    TabularBenchmark,
    make_task,
    shipped_surrogates,
)
from surrobench.model_size import log10_params
from surrobench.records import Budget, Problem, Task
from surrobench.space import REFERENCE_POINT, config_id, default_config, sample
from surrobench.surrogate.features import size_bounds
from test_surrogate_synth import fitted

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def surrogate_bench():
    _, surrogate, _ = fitted()
    return SurrogateBenchmark(surrogate)


@pytest.fixture(scope="module")
def tabular_bench():
    logs, _, _ = fitted()
    return TabularBenchmark(logs, "flowers17")


def _logged_config(bench: TabularBenchmark) -> dict:
    logs, _, _ = fitted()
    for line in (logs / "synthetic.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["config_id"] == bench.config_ids[0]:
            return rec["config"]
    raise AssertionError("no logged config")


def check_contract(bench, config, seed=0) -> list[Result]:
    """What every back-end promises for one (config, seed)."""
    traj = bench.trajectory(config, seed=seed)
    assert [r.epoch for r in traj] == list(range(1, 26))
    size = log10_params(config, bench.task.input_shape, bench.task.n_classes)
    prev = 0.0
    for r in traj:
        assert isinstance(r, Result)
        assert 0.0 <= r.val_error <= 1.0 and 0.0 <= r.test_error <= 1.0
        assert r.log10_params == pytest.approx(size, abs=1e-12)
        assert r.train_time > prev and r.eval_time > 0
        assert r.cost == pytest.approx(r.train_time + r.eval_time)
        prev = r.train_time
    for epoch in (1, 13, 25):
        assert bench.query(config, epoch, seed=seed) == traj[epoch - 1]
        assert bench.cost(config, epoch, seed=seed) == traj[epoch - 1].cost
    cont = bench.cost(config, 25, from_epoch=10, seed=seed)
    assert cont == pytest.approx(traj[24].train_time - traj[9].train_time + traj[24].eval_time)
    assert cont < traj[24].cost
    assert np.array_equal(bench.reference_point, [1.0, 8.0])
    assert [(o.name, o.direction) for o in bench.objectives] == [("val_error", "min"), ("log10_params", "min")]
    assert bench.objectives[1].lower <= size <= bench.objectives[1].upper
    assert (bench.min_epoch, bench.max_epoch) == (1, 25)
    d = bench.describe()
    assert d["backend"] == bench.backend and d["reference_point"] == [1.0, 8.0]
    json.dumps(d)
    return traj


def check_validation(bench, config) -> None:
    bad = dict(config, lr_init=2.0)
    with pytest.raises(ValueError, match="lr_init: must lie in"):
        bench.query(bad, 5)
    with pytest.raises(ValueError, match="colour: unknown hyperparameter"):
        bench.trajectory(dict(config, colour=1))
    for epoch in (0, 26, 2.0, True, "3"):
        with pytest.raises(ValueError, match="epoch"):
            bench.query(config, epoch)
    for seed in (-1, 1.5, True, 2**64, "0"):
        with pytest.raises(ValueError, match="seed"):
            bench.query(config, 5, seed=seed)
    for from_epoch in (5, 6, -1, 1.0):
        with pytest.raises(ValueError, match="from_epoch"):
            bench.cost(config, 5, from_epoch=from_epoch)


# ------------------------------------------------------------------------------------ surrogate


def test_surrogate_contract_and_validation(surrogate_bench):
    for cfg in [default_config(), *sample(seed=4, n=5)]:
        check_contract(surrogate_bench, cfg, seed=3)
    check_validation(surrogate_bench, default_config())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    bench_seed=st.integers(0, 2**63),
    epochs=st.lists(st.integers(1, 25), min_size=2, max_size=6),
)
def test_cumulative_cost_is_monotone_for_random_configs(surrogate_bench, seed, bench_seed, epochs):
    cfg = sample(seed=seed)
    costs = [surrogate_bench.cost(cfg, e, seed=bench_seed) for e in sorted(epochs)]
    assert all(b >= a for a, b in zip(costs, costs[1:]))
    traj = surrogate_bench.trajectory(cfg, seed=bench_seed)
    assert np.all(np.diff([r.train_time for r in traj]) > 0)
    assert np.all(np.diff([r.cost for r in traj]) > 0)


def test_seeds_reproduce_and_differ(surrogate_bench):
    _, surrogate, _ = fitted()
    learner = next(c for c in sample(seed=11, n=200) if surrogate.curve.mean(_x(c))[0, 24] < 0.6)
    a = [r.val_error for r in surrogate_bench.trajectory(learner, seed=1)]
    assert a == [r.val_error for r in surrogate_bench.trajectory(learner, seed=1)]
    assert a == [r.val_error for r in SurrogateBenchmark(surrogate).trajectory(learner, seed=1)]
    finals = [surrogate_bench.query(learner, 25, seed=s).val_error for s in range(30)]
    assert len(set(finals)) == 30
    assert 0.01 < np.std(finals) < 0.2
    # a seed shifts a whole curve: neighbouring epochs move together
    curves = np.array([[r.val_error for r in surrogate_bench.trajectory(learner, seed=s)] for s in range(30)])
    resid = curves - curves.mean(axis=0)
    assert np.corrcoef(resid[:, 20], resid[:, 21])[0, 1] > 0.5
    # costs carry no seed noise
    assert len({surrogate_bench.cost(learner, 25, seed=s) for s in range(5)}) == 1
    mean_bench = SurrogateBenchmark(surrogate, noise=False)
    assert mean_bench.trajectory(learner, seed=1) == mean_bench.trajectory(learner, seed=2)
    assert mean_bench.describe()["noise"] is False
    with pytest.raises(ValueError, match="noise: must be True or False"):
        SurrogateBenchmark(surrogate, noise="yes")


def _x(cfg):
    from surrobench.surrogate.features import features

    return features([cfg], (3, 16, 16), 17, 680)


def test_configs_at_chance_carry_no_noise(surrogate_bench):
    _, surrogate, _ = fitted()
    at_chance = next(c for c in sample(seed=12, n=200) if c["lr_init"] > 0.2)
    p, _ = surrogate.curve.parts(_x(at_chance))
    finals = [surrogate_bench.query(at_chance, 25, seed=s).val_error for s in range(10)]
    assert np.std(finals) <= 0.05 * float(p[0]) + 1e-9


def test_batch_trajectories_equal_single_ones_bit_for_bit(surrogate_bench):
    configs = sample(seed=21, n=40)
    seeds = list(range(40))
    batch = surrogate_bench.trajectories(configs, seed=seeds)
    for i, cfg in enumerate(configs):
        traj = surrogate_bench.trajectory(cfg, seed=seeds[i])
        for key in ("val_error", "test_error", "train_time", "eval_time", "cost"):
            assert np.array_equal([getattr(r, key) for r in traj], batch[key][i]), key
        assert traj[0].log10_params == batch["log10_params"][i]
    with pytest.raises(ValueError, match="got 2 seeds for 40 configs"):
        surrogate_bench.trajectories(configs, seed=[1, 2])


def _draw_every_branch(curve, p, learner, keys, seeds, mix):
    """CurveModel.draw as it was before it computed each row's branch alone: both outcomes of
    every row, then one np.where."""
    from scipy.special import ndtr

    from surrobench.surrogate.model import N_OUT, _rowwise
    from surrobench.surrogate.noise import draw_normals, learn_uniforms, logit, sigmoid

    normals, z_config = draw_normals(keys, seeds, N_OUT + 2)
    z = logit(learner)
    if curve.tail is not None:
        z = curve.tail(z)
    drawn = sigmoid(z + _rowwise(normals[:, :N_OUT], mix))
    learned = learn_uniforms(keys, normals[:, N_OUT], curve.learn_corr, z_config) < p
    bank = curve.chance_bank if curve.chance_bank is not None else curve.chance_curve[None, :]
    pick = np.minimum((ndtr(normals[:, N_OUT + 1]) * len(bank)).astype(int), len(bank) - 1)
    return np.clip(np.where(learned[:, None], drawn, bank[pick]), 0.0, 1.0), learned


@pytest.mark.parametrize("which", ["synthetic", "shipped"])
def test_draws_of_one_branch_per_row_equal_both_branches_bit_for_bit(surrogate_bench, which):
    surrogate = surrogate_bench.surrogate if which == "synthetic" else surrobench.load().surrogate
    configs = sample(seed=33, n=60)
    rows = np.asarray(surrobench.surrogate.features.features(configs, surrogate.input_shape, surrogate.n_classes,
                                                             surrogate.n_train))
    raw = np.asarray(surrogate.fast.inplace_predict(rows), dtype=float).reshape(len(rows), -1)
    k = surrogate._k
    p, learner = surrogate.curve.learn_probability(raw[:, 0]), surrogate.curve.learner(raw[:, 1 : k + 1])
    keys = np.array([int(config_id(c), 16) for c in configs], dtype=np.uint64)
    seeds = np.arange(60, dtype=np.uint64) * 7919
    want, learned = _draw_every_branch(surrogate.curve, p, learner, keys, seeds, surrogate._mix)
    assert 0 < learned.sum() < len(learned)  # both branches taken
    got = surrogate.curve.draw(p, learner, keys, seeds, surrogate._mix)
    assert got.tobytes() == want.tobytes()
    for mask in (learned, ~learned):  # batches of one branch only
        got = surrogate.curve.draw(p[mask], learner[mask], keys[mask], seeds[mask], surrogate._mix)
        assert got.tobytes() == want[mask].tobytes()
    for i in range(0, 60, 7):  # and rows alone
        got = surrogate.curve.draw(p[i : i + 1], learner[i : i + 1], keys[i : i + 1], seeds[i : i + 1], surrogate._mix)
        assert got.tobytes() == want[i : i + 1].tobytes()


def test_size_objective_is_exact_not_fitted(surrogate_bench):
    for cfg in sample(seed=5, n=30):
        assert surrogate_bench.query(cfg, 3).log10_params == pytest.approx(log10_params(cfg, (3, 16, 16), 17), abs=1e-12)


# -------------------------------------------------------------------------------------- tabular


def test_tabular_contract_and_validation(tabular_bench):
    cfg = _logged_config(tabular_bench)
    check_contract(tabular_bench, cfg)
    check_validation(tabular_bench, cfg)


def test_tabular_replays_logged_numbers_exactly(tabular_bench):
    logs, _, _ = fitted()
    records = [json.loads(line) for line in (logs / "synthetic.jsonl").read_text().splitlines()]
    checked = 0
    for rec in records:
        if rec["plan"]["retime"]:
            continue
        traj = tabular_bench.trajectory(rec["config"], seed=rec["seed"])
        assert [r.val_error for r in traj] == rec["curve"]["val_error"]
        assert [r.test_error for r in traj] == rec["curve"]["test_error"]
        if rec["status"] == "ok":
            times = rec["curve"]["train_time"]
            assert [r.train_time for r in traj] == pytest.approx(np.cumsum(times).tolist(), abs=0, rel=1e-15)
            assert [r.eval_time for r in traj] == rec["curve"]["eval_time"]
        else:  # epochs without a recorded time cost the run's median epoch
            known = [t for t in rec["curve"]["train_time"] if t is not None]
            assert traj[-1].train_time == pytest.approx(sum(known) + (25 - len(known)) * float(np.median(known)))
        checked += 1
    assert checked >= 180


def test_tabular_seed_rule(tabular_bench):
    logs, _, _ = fitted()
    records = [json.loads(line) for line in (logs / "synthetic.jsonl").read_text().splitlines()]
    replicated = {}
    for rec in records:
        if not rec["plan"]["retime"]:
            replicated.setdefault(rec["config_id"], []).append(rec)
    cid, runs = next((k, v) for k, v in replicated.items() if len(v) == 3)
    cfg = runs[0]["config"]
    runs.sort(key=lambda r: r["key"])
    assert tabular_bench.seeds(cfg) == [r["seed"] for r in runs]
    for s in range(6):  # a seed that was not logged replays run s % 3
        assert [r.val_error for r in tabular_bench.trajectory(cfg, seed=s)] == runs[s % 3]["curve"]["val_error"]
    assert tabular_bench.run_for(cfg, runs[2]["seed"])["key"] == runs[2]["key"]
    # the seed another benchmark must draw with to treat repeated asks alike
    assert [tabular_bench.replayed_seed(cid, s) for s in range(6)] == [runs[s % 3]["seed"] for s in range(6)]
    assert all(tabular_bench.replayed_seed(cid, r["seed"]) == r["seed"] for r in runs)
    with pytest.raises(ValueError, match="never logged"):
        tabular_bench.replayed_seed("0" * len(cid), 0)


def test_tabular_never_logged_config_is_a_clear_error(tabular_bench):
    cfg = next(c for c in sample(seed=77, n=50) if config_id(c) not in tabular_bench.config_ids)
    with pytest.raises(ValueError, match=f"config: {config_id(cfg)} was never logged"):
        tabular_bench.query(cfg, 3)
    with pytest.raises(ValueError, match="never logged"):
        tabular_bench.trajectory(cfg)


def test_tabular_device_filter(tabular_bench):
    logs, _, _ = fitted()
    gpu = TabularBenchmark(logs, "flowers17", device="cuda:Synthetic GPU")
    assert gpu.describe()["devices"] == ["cuda:Synthetic GPU"]
    with pytest.raises(ValueError, match="no complete run of flowers17 on 'tpu'"):
        TabularBenchmark(logs, "flowers17", device="tpu")
    with pytest.raises(ValueError, match="unknown dataset"):
        TabularBenchmark(logs, "mnist")


# ----------------------------------------------------------------------------------------- live

TINY = {"n_conv_l": 1, "n_conv_0": 16, "n_fc_l": 1, "n_fc_0": 32, "kernel_size": 3, "lr_init": 1e-2,
        "batch_norm": False, "batch_size": 64, "global_avg_pooling": False}


def test_live_backend_on_digits_answers_the_same_interface(monkeypatch):
    pytest.importorskip("torch")
    import surrobench.training as training

    bench = LiveBenchmark("digits", threads=1)
    calls = []
    real_train = training.train
    monkeypatch.setattr(training, "train", lambda *a, **k: calls.append(k["epochs"]) or real_train(*a, **k))
    early = bench.query(TINY, 2, seed=5)
    assert calls == [2] and early.epoch == 2 and early.val_error < 0.5
    assert bench.query(TINY, 1, seed=5).val_error == bench._cache[(config_id(TINY), 5)]["curves"].val_error[0]
    assert calls == [2]  # the cached run serves every epoch it reached
    traj = check_contract(bench, TINY, seed=5)
    assert calls == [2, 25]
    assert traj[1].val_error == early.val_error  # constant lr: epoch 2 of a long run = a 2-epoch run
    check_validation(bench, TINY)
    assert bench.describe()["cached_runs"] == 1


# ----------------------------------------------------------------------------- shipped / import


def test_shipped_surrogates_load_by_default_and_by_name():
    shipped = shipped_surrogates()
    assert {"flowers17", "digits"} <= set(shipped)
    bench = surrobench.load()
    assert isinstance(bench, SurrogateBenchmark) and bench.dataset == "flowers17"
    assert surrobench.load("digits").dataset == "digits"
    check_contract(bench, default_config(), seed=2)
    with pytest.raises(ValueError, match="neither a path nor a shipped surrogate .shipped: digits, flowers17"):
        surrobench.load("mnist")
    for wrong in (3, b"flowers17", ["flowers17"]):
        with pytest.raises(ValueError, match="surrogate: expected a path or a shipped name|not bytes"):
            surrobench.load(wrong)
    for archive in shipped.values():
        sha = archive.with_name(archive.name + ".sha256")
        assert sha.is_file(), f"{archive.name} is shipped without its .sha256"


def test_benchmark_imports_and_answers_without_torch():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import surrobench, surrobench.benchmark, surrobench.surrogate\n"
        "from surrobench.space import default_config\n"
        "r = surrobench.load().query(default_config(), 5)\n"
        "assert 0 <= r.val_error <= 1\n"
        "b = surrobench.benchmark.LiveBenchmark('digits')\n"
        "try:\n"
        "    b.query(default_config(), 1)\n"
        "except ImportError as exc:\n"
        "    assert 'needs torch' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('live back-end ran without torch')\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'torch']\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_answer_cache_is_transparent():
    _, surrogate, _ = fitted()
    cached, uncached = SurrogateBenchmark(surrogate, cache_size=3), SurrogateBenchmark(surrogate, cache_size=0)
    configs = sample(seed=31, n=8)
    for _ in range(2):
        for i, cfg in enumerate(configs):
            assert cached.trajectory(cfg, seed=i) == uncached.trajectory(cfg, seed=i)
            assert cached.cost(cfg, 9, from_epoch=4, seed=i) == uncached.cost(cfg, 9, from_epoch=4, seed=i)
    assert len(cached._cache) <= 3 and not uncached._cache
    with pytest.raises(ValueError, match="cache_size"):
        SurrogateBenchmark(surrogate, cache_size=-1)


def test_batch_of_nothing(surrogate_bench):
    out = surrogate_bench.trajectories([])
    assert out["val_error"].shape == (0, 25) and out["log10_params"].shape == (0,)


def test_job_cost_is_what_the_job_pays_and_result_cost_is_from_scratch():
    """The two costs the docs explain: equal from scratch, the job's smaller when it continues."""
    import surrobench
    from surrobench.space import sample

    bench = surrobench.load()
    cfg = sample(seed=4)
    cost0, r0 = bench.job(cfg, 25, seed=1)
    cost12, r12 = bench.job(cfg, 25, from_epoch=12, seed=1)
    assert cost0 == pytest.approx(r0.cost) and r12 == r0
    assert cost12 < r12.cost
    assert cost12 == pytest.approx(r0.train_time - bench.query(cfg, 12, seed=1).train_time + r0.eval_time)


# ------------------------------------------------------------------------------- the task and the problem


@pytest.mark.parametrize("name, shape, n_classes", [("flowers17", (3, 16, 16), 17), ("digits", (1, 8, 8), 10)])
def test_each_shipped_surrogate_states_its_task(name, shape, n_classes):
    task = surrobench.load(name).task
    assert isinstance(task, Task)
    assert (task.dataset, task.input_shape, task.n_classes) == (name, shape, n_classes)
    assert [(o.name, o.direction) for o in task.objectives] == [("val_error", "min"), ("log10_params", "min")]
    assert (task.objectives[0].lower, task.objectives[0].upper) == (0.0, 1.0)
    assert (task.objectives[1].lower, task.objectives[1].upper) == size_bounds(shape, n_classes)
    assert task.reference_point == REFERENCE_POINT and (task.min_epoch, task.max_epoch) == (1, 25)
    assert task.chance_error == 1.0 - 1.0 / n_classes


def test_tabular_and_synthetic_surrogate_tasks(tabular_bench, surrogate_bench):
    assert tabular_bench.task == make_task("flowers17") == surrogate_bench.task
    assert tabular_bench.task.input_shape == (3, 16, 16) and tabular_bench.task.n_classes == 17
    assert LiveBenchmark("digits").task == make_task("digits")
    assert tabular_bench.describe()["input_shape"] == [3, 16, 16]


def test_the_problem_round_trip(surrogate_bench):
    problem = surrogate_bench.problem(n_workers=8, budget=3600)
    assert isinstance(problem, Problem) and problem.task is surrogate_bench.task
    assert (problem.n_workers, problem.budget) == (8, Budget(seconds=3600.0))
    assert (problem.time_budget, problem.max_evaluations, problem.min_epoch, problem.max_epoch) == (3600.0, None, 1, 25)
    assert Problem(surrogate_bench.task, n_workers=8, budget=Budget(seconds=3600.0)) == problem
    assert surrogate_bench.problem().budget is None and surrogate_bench.problem().n_workers == 1
    evaluations = surrogate_bench.problem(budget=Budget(evaluations=40))
    assert (evaluations.time_budget, evaluations.max_evaluations) == (None, 40)


@pytest.mark.parametrize("bad, message", [
    (dict(task=None), "task: must be a surrobench.records.Task"),
    (dict(n_workers=0), "n_workers: must be an int in 1..1024"),
    (dict(budget="1h"), "budget: expected a Budget or simulated seconds"),
])
def test_a_bad_problem_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        Problem(**{"task": make_task("digits"), **bad})


@pytest.mark.parametrize("bad, message", [
    (dict(input_shape=(1, 8)), "input_shape"),
    (dict(n_classes=1), "n_classes"),
    (dict(reference_point=(1.0,)), "reference_point: must be 2 finite numbers"),
    (dict(min_epoch=9, max_epoch=3), "min_epoch 9 exceeds max_epoch 3"),
])
def test_a_bad_task_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        replace(make_task("digits"), **bad)


def test_make_task_needs_both_facts_or_a_known_dataset():
    assert make_task("mine", (1, 8, 8), 10).objectives == make_task("digits").objectives
    with pytest.raises(ValueError, match="unknown dataset"):
        make_task("mine")
    with pytest.raises(ValueError, match="give both input_shape and n_classes"):
        make_task("digits", (1, 8, 8))


def test_back_ends_implement_only_the_primitive():
    """query, trajectory, cost, job and answer are the base class's alone: one cumulative-cost rule."""
    for cls in (SurrogateBenchmark, TabularBenchmark, LiveBenchmark):
        assert "_curves" in vars(cls)
        assert not {"query", "trajectory", "cost", "job", "answer"} & set(vars(cls)), cls.__name__


def test_the_reference_point_is_defined_once():
    hits = [p for p in (ROOT / "surrobench").rglob("*.py") if "REFERENCE_POINT = " in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in hits] == ["surrobench/space.py"]
    assert surrobench.load().task.reference_point == REFERENCE_POINT == (1.0, 8.0)
