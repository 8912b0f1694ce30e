"""How SH-EMOA, MO-BOHB, MO-BANANAS and NSGA-II schedule their jobs (small settings, toy benchmark)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surrobench.optimizers import MOBANANAS, MOBOHB, NSGA2, SHEMOA
from surrobench.records import Job, Problem
from surrobench.simulator import Budget, simulate
from surrobench.space import sample

from toybench import TASK, ToyBenchmark


def _sim(opt, n, workers=1, seed=0):
    """Simulate ``n`` jobs on ``workers`` workers (the optimizer was built without knowing the budget)."""
    bench = ToyBenchmark()
    return simulate(bench, opt, bench.problem(n_workers=workers, budget=Budget(evaluations=n)), seed=seed)


# --------------------------------------------------------------------------- SH-EMOA


def test_shemoa_rungs_steps_and_reevaluations_one_worker():
    opt = SHEMOA(Problem(TASK), seed=0, population_size=6, max_evaluations=32)
    assert opt.budgets == [7, 13, 25] and opt.steps_per_rung == [8, 4, 2]
    df = _sim(opt, 40)
    kinds = [t.split(":")[-1] for t in df["tag"]]
    expected = ["init"] * 6 + ["child"] * 8 + ["reeval"] * 6 + ["child"] * 4 + ["reeval"] * 6 + ["child"] * 10
    assert kinds == expected
    assert df["epoch"].tolist() == [7] * 14 + [13] * 10 + [25] * 16
    assert len(opt._population) == 6
    # the population re-evaluated at a rung change is the population at its end
    assert (df["from_epoch"] == 0).all()


@pytest.mark.parametrize("workers", [3, 8])
def test_shemoa_waits_for_a_rung_before_the_next(workers):
    opt = SHEMOA(Problem(TASK, n_workers=workers), seed=1, population_size=10, max_evaluations=80)
    df = _sim(opt, 120, workers=workers)
    ends = df.groupby("epoch")["end"].max()
    starts = df.groupby("epoch")["start"].min()
    assert list(ends.index) == [7, 13, 25]
    assert ends[7] <= starts[13] and ends[13] <= starts[25]
    assert len(opt._population) <= 10


def test_shemoa_keeps_depths_unless_asked():
    opt = SHEMOA(Problem(TASK), seed=2, population_size=8)
    df = _sim(opt, 80)
    depths = set(zip(df["config_n_conv_l"], df["config_n_fc_l"]))
    assert depths <= set(zip(df["config_n_conv_l"][:8], df["config_n_fc_l"][:8]))
    opt = SHEMOA(Problem(TASK), seed=2, population_size=8, mutable_depths=True)
    df = _sim(opt, 80)
    assert len(set(zip(df["config_n_conv_l"], df["config_n_fc_l"]))) > len(set(zip(df["config_n_conv_l"][:8],
                                                                                    df["config_n_fc_l"][:8])))


def test_shemoa_time_schedule_and_continuation():
    problem = ToyBenchmark().problem(budget=20 * 3600.0)
    opt = SHEMOA(problem, seed=3, population_size=5, continue_trials=True)
    assert opt.schedule == "time"
    df = simulate(ToyBenchmark(), opt, problem, seed=0)
    first13 = df[df["epoch"] == 13]["start"].min()
    assert first13 >= opt.rung_ends[0]
    re = df[df["tag"].str.endswith("reeval")]
    assert len(re) and (re["from_epoch"] > 0).all()  # continued from the checkpoints


# --------------------------------------------------------------------------- MO-BOHB


def test_mobohb_hyperband_brackets_one_worker():
    opt = MOBOHB(Problem(TASK), seed=0, n_initial=0)
    assert opt.budgets == [6, 12, 25]
    df = _sim(opt, 13)
    assert df["epoch"].tolist() == [6] * 4 + [12] * 2 + [25] + [12] * 2 + [25] + [25] * 3
    # promotions come from the rung below and restart from scratch
    b0 = df[df["tag"].str.startswith("mobohb:b0")]
    assert set(b0[b0["epoch"] == 12]["config_id"]) <= set(b0[b0["epoch"] == 6]["config_id"])
    assert set(b0[b0["epoch"] == 25]["config_id"]) <= set(b0[b0["epoch"] == 12]["config_id"])
    assert (df["from_epoch"] == 0).all()


def test_mobohb_initial_design_then_model():
    opt = MOBOHB(Problem(TASK), seed=1)
    df = _sim(opt, 90)
    assert (df["epoch"][:50] == 25).all() and (df["epoch"][50:] < 25).any()
    good, bad = opt.split(25)
    n = len(opt._history[25])
    assert len(good) == int(0.1 * n) and len(good) + len(bad) == n
    assert opt._model_budget() == 25


def test_mobohb_kernel_cap_changes_nothing_until_a_model_holds_more_configs():
    from surrobench.optimizers.mobohb import _evenly

    assert _evenly(list(range(10)), 4) == [0, 3, 6, 9] and _evenly([1, 2], 5) == [1, 2] and _evenly([1, 2], None) == [1, 2]
    assert sorted(set(_evenly(list(range(1000)), 512))) == _evenly(list(range(1000)), 512)  # distinct, in order
    capped = _sim(MOBOHB(Problem(TASK), seed=3, max_kernels=64), 400)
    uncapped = _sim(MOBOHB(Problem(TASK), seed=3, max_kernels=None), 400)
    default = _sim(MOBOHB(Problem(TASK), seed=3), 400)
    assert default.equals(uncapped)  # 400 results: no model holds 512 bad configs
    assert not capped.equals(uncapped)  # 64 binds


def test_mobohb_keeps_all_workers_busy_and_can_continue():
    opt = MOBOHB(Problem(TASK, n_workers=8), seed=2, n_initial=0, continue_trials=True)
    jobs = [opt.ask() for _ in range(20)]
    assert all(isinstance(j, Job) for j in jobs)  # never "nothing to run": a new bracket starts
    df = _sim(MOBOHB(Problem(TASK, n_workers=8), seed=2, n_initial=0, continue_trials=True), 60, workers=8)
    promoted = df[df["from_epoch"] > 0]
    assert len(promoted) and (promoted["epoch"] > promoted["from_epoch"]).all()


# --------------------------------------------------------------------------- MO-BANANAS


def test_mobananas_successive_halving_one_worker():
    opt = MOBANANAS(Problem(TASK), seed=0)
    assert opt.budgets == [9, 25]
    df = _sim(opt, 10 + 2 * 13)
    assert df["epoch"].tolist() == [25] * 10 + ([9] * 10 + [25] * 3) * 2
    assert len(opt._train) == 12  # one survivor per iteration joins the training set
    it = df.iloc[10:23]
    assert set(it["config_id"][10:]) <= set(it["config_id"][:10])


def test_mobananas_waits_for_the_initial_design_then_overlaps_iterations():
    opt = MOBANANAS(Problem(TASK, n_workers=12), seed=1)
    asked = [opt.ask() for _ in range(12)]
    assert all(isinstance(j, Job) for j in asked[:10]) and asked[10] is None and asked[11] is None
    df = _sim(MOBANANAS(Problem(TASK, n_workers=8), seed=1), 100, workers=8)
    assert len(df) == 100 and df["tag"].str.contains(":i1:").any()


def test_mobananas_exact_model_size_setting():
    opt = MOBANANAS(Problem(TASK), seed=3, input_shape=(3, 16, 16), n_classes=17, n_initial=5)
    df = _sim(opt, 30)
    assert len(df) == 30
    with pytest.raises(ValueError, match="both"):
        MOBANANAS(Problem(TASK), input_shape=(3, 16, 16))


@settings(max_examples=40, deadline=None)
@given(points=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=60),
       k=st.integers(1, 25))
def test_mobananas_parents_from_kept_fronts_equal_a_full_nsga_order(points, k):
    # the top k of the training set by NSGA-II order, from the incrementally kept fronts, is the
    # head of a full sort (ties and duplicates included)
    from surrobench.optimizers._common import nsga_order

    opt = MOBANANAS(Problem(TASK), seed=0)
    for p in points:
        opt._add_to_training_set(sample(np.random.default_rng(0)), tuple(float(v) for v in p))
    objs = np.array(points, dtype=float)
    np.testing.assert_array_equal(opt._top(objs, k), nsga_order(objs)[:k])


def test_neural_ensemble_learns_a_smooth_function():
    from surrobench.optimizers.mobananas import NeuralEnsemble

    rng = np.random.default_rng(0)
    x = rng.random((80, 13))
    y = np.c_[x[:, 0] + x[:, 1] ** 2, 2 * x[:, 2]]
    ens = NeuralEnsemble(epochs=200).fit(x, y, rng)
    xt = rng.random((200, 13))
    pred = ens.predict_all(xt)
    assert pred.shape == (5, 200, 2)
    assert np.corrcoef(pred.mean(axis=0)[:, 1], 2 * xt[:, 2])[0, 1] > 0.9
    assert pred.std(axis=0).mean() > 0  # members differ


def test_neural_ensemble_warm_steps_cap_only_the_fits_that_start_from_trained_weights():
    from surrobench.optimizers.mobananas import NeuralEnsemble

    x = np.random.default_rng(0).random((120, 13))
    y = np.c_[x[:, 0], x[:, 1]]
    thetas = {}
    for warm_steps in (None, 10**6, 5):  # 120 points, batch 32: 4 steps an epoch, 100 epochs under max_steps 400
        ens = NeuralEnsemble(warm_steps=warm_steps)
        ens.fit(x[:100], y[:100], np.random.default_rng(1))
        cold = ens._theta.copy()
        ens.fit(x, y, np.random.default_rng(2))
        thetas[warm_steps] = (cold, ens._theta.copy())
    np.testing.assert_array_equal(thetas[None][0], thetas[5][0])  # the first fit is never capped
    np.testing.assert_array_equal(thetas[None][1], thetas[10**6][1])  # a cap above max_steps changes nothing
    assert not np.array_equal(thetas[None][1], thetas[5][1])


def test_neural_ensemble_cap_binds_inside_an_epoch():
    # a warm fit on a training set whose one epoch holds more steps than the cap stops at the cap
    from surrobench.optimizers.mobananas import NeuralEnsemble

    x = np.random.default_rng(0).random((400, 13))
    y = np.c_[x[:, 0], x[:, 1]]
    ens = NeuralEnsemble(warm_steps=3)
    ens.fit(x[:100], y[:100], np.random.default_rng(1))
    assert ens.steps_made == 80 * 4  # cold: 80 epochs of 4 batches (under max_steps 400)
    ens.fit(x, y, np.random.default_rng(2))
    assert ens.steps_made == 3  # warm: 13 batches an epoch, cut at 3
    ens.fit(x[:64], y[:64], np.random.default_rng(3))
    assert ens.steps_made == 2  # warm: 2 batches an epoch, one epoch fits under the cap


# --------------------------------------------------------------------------- NSGA-II


def test_nsga2_generations_one_worker():
    opt = NSGA2(Problem(TASK), seed=0, population_size=6)
    df = _sim(opt, 30)
    assert (df["epoch"] == 25).all()
    assert opt.generation == 5
    assert df["tag"].tolist()[:6] == ["nsga2:init"] * 6
    assert df["config_id"].nunique() == 30  # no config asked twice


def test_nsga2_asynchronous_never_waits():
    opt = NSGA2(Problem(TASK, n_workers=8), seed=1, population_size=10)
    assert all(isinstance(opt.ask(), Job) for _ in range(30))
    df = _sim(NSGA2(Problem(TASK, n_workers=8), seed=1, population_size=10), 100, workers=8)
    for _, g in df.sort_values("start").groupby("worker"):  # no worker ever idles between jobs
        np.testing.assert_allclose(g["start"].to_numpy()[1:], g["end"].to_numpy()[:-1])
