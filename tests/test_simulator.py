import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surrobench.benchmark import make_task
from surrobench.optimizers import RandomSearch
from surrobench.records import Job, Problem
from surrobench.simulator import Budget, Event, EventQueue, Overhead, TrialLedger, simulate, trial_seed
from surrobench.space import sample

from toybench import TASK, ToyBenchmark


class Recorder:
    """Random configs at random epochs; sometimes continues a finished trial; records asks/tells."""

    def __init__(self, problem, seed=0, p_none=0.0):
        self.rng = np.random.default_rng(seed)
        self.asked, self.told = [], []
        self.done = {}  # trial -> (config, epoch)
        self.p_none = p_none
        self.running = 0

    def ask(self):
        if self.running and self.rng.random() < self.p_none:
            return None
        if self.done and self.rng.random() < 0.3:
            trial = sorted(self.done)[int(self.rng.integers(len(self.done)))]
            cfg, ep = self.done.pop(trial)
            if ep < 25:
                job = Job(cfg, int(self.rng.integers(ep + 1, 26)), trial=trial, from_epoch=ep)
                self.asked.append(job)
                self.running += 1
                return job
        job = Job(sample(self.rng), int(self.rng.integers(1, 26)))
        self.asked.append(job)
        self.running += 1
        return job

    def tell(self, obs):
        self.told.append(obs)
        self.running -= 1
        self.done[obs.trial] = (obs.config, obs.epoch)


def _busy_max(df):
    events = sorted([(s, 1) for s in df["start"]] + [(e, -1) for e in df["end"]], key=lambda x: (x[0], x[1]))
    busy = peak = 0
    for _, d in events:
        busy += d
        peak = max(peak, busy)
    return peak


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), workers=st.integers(1, 8), p_none=st.sampled_from([0.0, 0.5]))
def test_simulator_laws(seed, workers, p_none):
    bench = ToyBenchmark()
    problem = bench.problem(n_workers=workers, budget=Budget(evaluations=40))
    opt = Recorder(problem, seed=seed, p_none=p_none)
    df = simulate(bench, opt, problem, seed=seed)
    # every asked job is told exactly once (evaluation budget: all finish)
    assert len(opt.asked) == len(opt.told) == len(df) == 40
    assert sorted(o.job_id for o in opt.told) == list(range(40))
    assert {id(o.job) for o in opt.told} == {id(j) for j in opt.asked}
    # simulated time never runs backwards: tells come in completion order, jobs end after they start
    assert np.all(np.diff(df["end"].to_numpy()) >= 0)
    assert np.all(df["end"] >= df["start"]) and np.all(df["start"] >= 0)
    # never more than n workers busy, and a worker runs one job at a time
    assert _busy_max(df) <= workers
    for _, g in df.groupby("worker"):
        g = g.sort_values("start")
        assert np.all(g["start"].to_numpy()[1:] >= g["end"].to_numpy()[:-1] - 1e-9)
    assert set(df["worker"]) <= set(range(workers))


def test_continuation_pays_only_new_epochs_and_keeps_the_seed():
    bench = ToyBenchmark()
    cfg = sample(3)

    class TwoStep:
        def __init__(self):
            self.obs = []

        def ask(self):
            if not self.obs:
                return Job(cfg, 5) if not hasattr(self, "sent") and not setattr(self, "sent", 1) else None
            if len(self.obs) == 1:
                o = self.obs[0]
                self.obs.append(None)
                return Job(cfg, 25, trial=o.trial, from_epoch=5)
            return None

        def tell(self, o):
            self.obs.insert(0, o) if len(self.obs) == 0 else self.obs.append(o)

    opt = TwoStep()
    df = simulate(bench, opt, bench.problem(budget=Budget(evaluations=2)), seed=7)
    assert list(df["trial"]) == [0, 0]
    s = trial_seed(7, 0)
    assert df["cost"].iloc[0] == pytest.approx(bench.cost(cfg, 5, seed=s))
    assert df["cost"].iloc[1] == pytest.approx(bench.cost(cfg, 25, from_epoch=5, seed=s))
    assert df["cost"].iloc[1] < bench.cost(cfg, 25, seed=s)
    assert df["start"].iloc[1] == pytest.approx(df["end"].iloc[0])


def test_same_seed_gives_byte_identical_tables_and_other_seeds_differ():
    bench = ToyBenchmark()
    problem = bench.problem(n_workers=4, budget=Budget(seconds=6 * 3600))
    run = lambda s: simulate(bench, RandomSearch(problem, seed=s), problem, seed=s)  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert a.to_csv(index=False) != c.to_csv(index=False)


def test_time_budget_counts_only_jobs_finished_in_time():
    bench = ToyBenchmark()
    problem = bench.problem(n_workers=3, budget=Budget(seconds=500.0))
    opt = Recorder(problem, seed=1)
    df = simulate(bench, opt, problem, seed=0)
    assert (df["end"] <= 500.0).all()
    assert len(opt.told) == len(df) <= len(opt.asked)
    assert len(opt.asked) - len(opt.told) <= 3  # only jobs still running at the deadline are untold


def test_a_number_is_a_budget_in_simulated_seconds():
    def run(budget):
        problem = ToyBenchmark().problem(n_workers=2, budget=budget)
        return simulate(ToyBenchmark(), RandomSearch(problem, seed=3), problem, seed=0)

    pd.testing.assert_frame_equal(run(500), run(Budget(seconds=500.0)))
    assert run(np.float64(500.0))["end"].max() <= 500.0


@pytest.mark.parametrize("bad", ["1h", True, [500]])
def test_a_budget_that_is_neither_a_budget_nor_seconds_is_refused(bad):
    with pytest.raises(ValueError, match="budget: expected a Budget or simulated seconds"):
        ToyBenchmark().problem(budget=bad)


def test_simulate_reads_workers_and_budget_from_the_problem():
    bench = ToyBenchmark()
    problem = bench.problem(n_workers=3, budget=Budget(evaluations=9))
    assert (problem.task, problem.n_workers, problem.budget) == (bench.task, 3, Budget(evaluations=9))
    assert (problem.max_evaluations, problem.time_budget) == (9, None)
    df = simulate(bench, RandomSearch(problem, seed=0), problem, seed=0)
    assert len(df) == 9 and set(df["worker"]) == {0, 1, 2}
    same = simulate(bench, RandomSearch(problem, seed=0), problem, seed=0, budget=Budget(evaluations=9), n_workers=3)
    pd.testing.assert_frame_equal(df, same)  # repeating the problem's values is allowed


@pytest.mark.parametrize("extra, message", [
    (dict(n_workers=4), "n_workers: 4 given to simulate, but the problem has 3"),
    (dict(budget=600.0), "budget: Budget(seconds=600.0, evaluations=None) given to simulate, but the problem's is"),
    (dict(budget=Budget(evaluations=10)), "budget: .* given to simulate, but the problem's is Budget"),
])
def test_simulate_refuses_workers_or_budget_that_disagree_with_the_problem(extra, message):
    bench = ToyBenchmark()
    problem = bench.problem(n_workers=3, budget=Budget(evaluations=9))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        simulate(bench, RandomSearch(problem, seed=0), problem, **extra)
    assert "\n" not in str(info.value)


def test_simulate_refuses_a_problem_without_budget_or_of_another_dataset():
    bench = ToyBenchmark()
    with pytest.raises(ValueError, match="problem: has no budget"):
        simulate(bench, RandomSearch(Problem(TASK), seed=0), Problem(TASK))
    with pytest.raises(ValueError, match="problem: expected a surrobench.records.Problem"):
        simulate(bench, RandomSearch(Problem(TASK), seed=0), Budget(evaluations=3))
    digits = Problem(make_task("digits"), budget=Budget(evaluations=3))
    with pytest.raises(ValueError, match="task's dataset 'digits' is not the benchmark's 'toy'"):
        simulate(bench, RandomSearch(digits, seed=0), digits)


def test_event_queue_orders_by_end_then_by_job_id():
    job = Job(sample(0), 3)
    queue = EventQueue()
    for end, job_id in [(5.0, 3), (2.0, 7), (5.0, 1), (2.0, 2), (9.0, 0), (5.0, 2)]:
        queue.push(Event(end, job_id, worker=job_id, trial=0, job=job, start=0.0, cost=end, overhead=0.0, result=None))
    order = [(e.end, e.job_id) for e in (queue.pop() for _ in range(len(queue)))]
    assert order == [(2.0, 2), (2.0, 7), (5.0, 1), (5.0, 2), (5.0, 3), (9.0, 0)]
    assert not queue
    # fields other than (end, job_id) never decide: equal keys compare equal whatever the worker
    a = Event(1.0, 4, worker=0, trial=0, job=job, start=0.0, cost=1.0, overhead=0.0, result=None)
    b = Event(1.0, 4, worker=9, trial=5, job=job, start=0.5, cost=0.5, overhead=0.1, result="x")
    assert not a < b and not b < a


def test_ties_are_told_in_the_order_the_jobs_started():
    """Jobs of one cost end together; they are told by job id, on the lowest free workers first."""
    cfg = sample(4)

    class Same:
        def __init__(self):
            self.told = []

        def ask(self):
            return Job(cfg, 5)

        def tell(self, o):
            self.told.append(o.job_id)

    bench = ToyBenchmark()
    problem = bench.problem(n_workers=4, budget=Budget(evaluations=8))
    opt = Same()
    df = simulate(bench, opt, problem, seed=0)
    assert opt.told == list(range(8)) and list(df["worker"]) == [0, 1, 2, 3] * 2
    assert df["end"].iloc[0] == df["end"].iloc[3] < df["end"].iloc[4] == df["end"].iloc[7]


def _ledger_with_trial_0_at_epoch_5():
    ledger, cfg = TrialLedger(run_seed=7), sample(0)
    assert ledger.open(Job(cfg, 5)) == 0
    ledger.close(0, 5)
    return ledger, cfg


@pytest.mark.parametrize("job, message", [
    (lambda cfg: Job(cfg, 10, trial=3, from_epoch=5), "job continues trial 3, which was never started"),
    (lambda cfg: Job(sample(1), 10, trial=0, from_epoch=5), "job continues trial 0 with another config"),
    (lambda cfg: Job(cfg, 10, trial=0, from_epoch=6), "job continues trial 0 from epoch 6, but it has only reached epoch 5"),
    (lambda cfg: Job(sample(1), 10, parent=2, from_epoch=3), "job starts from the checkpoint of trial 2, which was never"),
    (lambda cfg: Job(sample(1), 10, parent=0, from_epoch=8), "job starts from trial 0 at epoch 8, but it has only reached"),
])
def test_trial_ledger_refuses_what_no_checkpoint_allows(job, message):
    ledger, cfg = _ledger_with_trial_0_at_epoch_5()
    with pytest.raises(ValueError, match=message) as info:
        ledger.open(job(cfg))
    assert "\n" not in str(info.value)


def test_trial_ledger_admits_continuations_and_keeps_seeds_per_trial():
    ledger, cfg = _ledger_with_trial_0_at_epoch_5()
    assert ledger.open(Job(cfg, 10, trial=0, from_epoch=5)) == 0  # the same trial, the same seed
    with pytest.raises(ValueError, match="job continues trial 0 while it is still running"):
        ledger.open(Job(cfg, 12, trial=0, from_epoch=5))
    assert ledger.open(Job(sample(1), 25, parent=0, from_epoch=5)) == 1  # a new run from trial 0's checkpoint
    ledger.close(0, 10)
    assert ledger.reached(0) == 10 and ledger.reached(1) == 0
    assert [ledger.seed(t) for t in (0, 1, 5)] == [trial_seed(7, t) for t in (0, 1, 5)]
    assert len({ledger.seed(t) for t in range(50)}) == 50


def test_deadlock_is_a_clear_error():
    class Never:
        def ask(self):
            return None

        def tell(self, o):
            pass

    with pytest.raises(RuntimeError, match="nothing to run"):
        simulate(ToyBenchmark(), Never(), ToyBenchmark().problem(budget=Budget(evaluations=3)))


def test_invalid_continuations_are_refused():
    cfg = sample(0)

    class Bad:
        def ask(self):
            return Job(cfg, 10, trial=5, from_epoch=3)

        def tell(self, o):
            pass

    with pytest.raises(ValueError, match="never started"):
        simulate(ToyBenchmark(), Bad(), ToyBenchmark().problem(budget=Budget(evaluations=1)))
    with pytest.raises(ValueError, match="from_epoch"):
        Job(cfg, 10, from_epoch=3)
    with pytest.raises(ValueError, match="epoch"):
        Job(cfg, 26)


_FIELDS = ("config", "config_id", "epoch", "trial", "from_epoch", "tag", "parent")
_JOB_ARGS = [
    dict(epoch=5), dict(epoch=np.int64(25)), dict(epoch=9, trial=np.int32(4), from_epoch=np.int64(3), tag="rung2"),
    dict(epoch=7, parent=2, from_epoch=1), dict(epoch=1, trial=0),
    # refused, each for one field
    dict(epoch=26), dict(epoch=0), dict(epoch=True), dict(epoch=5.0), dict(epoch=5, trial=-1),
    dict(epoch=5, trial=1.5), dict(epoch=5, parent=np.int64(-2)), dict(epoch=5, trial=1, parent=2, from_epoch=1),
    dict(epoch=5, from_epoch=2), dict(epoch=5, trial=1, from_epoch=5), dict(epoch=5, trial=1, from_epoch=2.0),
    dict(epoch=5, trial=1, from_epoch=True),
]


@pytest.mark.parametrize("kwargs", _JOB_ARGS)
def test_job_from_a_valid_config_is_the_job_checked_whole(kwargs):
    """``Job._from_valid`` (the optimizers' path for a config they drew or were told) skips only the
    config's validation: every other field is converted and refused as ``Job`` does it."""
    cfg = sample(3)
    kwargs = dict(kwargs)
    epoch = kwargs.pop("epoch")
    try:
        full = Job(cfg, epoch, **kwargs)
    except ValueError as exc:
        with pytest.raises(ValueError) as fast_exc:
            Job._from_valid(cfg, epoch, **kwargs)
        assert str(fast_exc.value) == str(exc)
        return
    for fast in (Job._from_valid(cfg, epoch, **kwargs), Job._from_valid(cfg, epoch, config_id=full.config_id, **kwargs)):
        for name in _FIELDS:
            assert getattr(fast, name) == getattr(full, name) and type(getattr(fast, name)) is type(getattr(full, name))


def test_fixed_overhead_delays_every_job():
    bench = ToyBenchmark()
    problem = bench.problem(budget=Budget(evaluations=10))
    none = simulate(bench, RandomSearch(problem, seed=0), problem, seed=0)
    fixed = simulate(bench, RandomSearch(problem, seed=0), problem, seed=0, overhead=Overhead("fixed", seconds=60.0))
    # one worker: each job waits for the previous tell (60 s) and its own ask (60 s)
    assert fixed["start"].iloc[0] == pytest.approx(60.0)
    assert fixed["end"].iloc[-1] == pytest.approx(none["end"].iloc[-1] + 60.0 * (2 * 10 - 1))
    assert (fixed["overhead"] == 60.0).all()
    seconds = simulate(bench, RandomSearch(problem, seed=0), problem, seed=0, overhead=60)
    pd.testing.assert_frame_equal(seconds, fixed)  # a number is fixed seconds per decision


def test_measured_overhead_charges_real_time():
    import time as _t

    class Slow(RandomSearch):
        def ask(self):
            _t.sleep(0.01)
            return super().ask()

    problem = ToyBenchmark().problem(budget=Budget(evaluations=3))
    df = simulate(ToyBenchmark(), Slow(problem, seed=0), problem, overhead="measured")
    assert (df["overhead"] >= 0.009).all()


@pytest.mark.parametrize("bad", [dict(), dict(seconds=0), dict(seconds=float("nan")), dict(evaluations=0)])
def test_bad_budgets(bad):
    with pytest.raises(ValueError, match="budget"):
        Budget(**bad)


def test_bad_overheads():
    with pytest.raises(ValueError, match="overhead"):
        Overhead("sometimes")
    with pytest.raises(ValueError, match="overhead"):
        Overhead("fixed", seconds=-1)
    problem = ToyBenchmark().problem(budget=Budget(evaluations=2))
    for bad in (None, True, [1.0], -2.0):
        with pytest.raises(ValueError, match="overhead"):
            simulate(ToyBenchmark(), RandomSearch(problem, seed=0), problem, overhead=bad)


def test_a_new_run_can_start_from_another_configs_checkpoint():
    bench, parent_cfg, child_cfg = ToyBenchmark(), sample(1), sample(2)

    class Morph:
        def __init__(self, start):
            self.start, self.told = start, []

        def ask(self):
            if not self.told:
                return None if getattr(self, "sent", False) or setattr(self, "sent", True) else Job(parent_cfg, 10)
            return Job(child_cfg, 25, parent=self.told[0].trial, from_epoch=self.start)

        def tell(self, o):
            self.told.append(o)

    problem = bench.problem(budget=Budget(evaluations=2))
    df = simulate(bench, Morph(7), problem, seed=3)
    assert list(df["trial"]) == [0, 1] and list(df["parent"]) == [-1, 0]
    assert df["config_id"].iloc[1] != df["config_id"].iloc[0]
    child_seed = trial_seed(3, 1)  # a new run: its own seed, the child's own epochs
    assert df["cost"].iloc[1] == pytest.approx(bench.cost(child_cfg, 25, from_epoch=7, seed=child_seed))
    assert df["val_error"].iloc[1] == pytest.approx(bench.query(child_cfg, 25, seed=child_seed).val_error)
    with pytest.raises(ValueError, match="only reached epoch 10"):
        simulate(bench, Morph(12), problem, seed=3)


def test_invalid_parents_are_refused():
    cfg = sample(0)

    class Orphan:
        def ask(self):
            return Job(cfg, 10, parent=4, from_epoch=3)

        def tell(self, o):
            pass

    with pytest.raises(ValueError, match="trial 4, which was never started"):
        simulate(ToyBenchmark(), Orphan(), ToyBenchmark().problem(budget=Budget(evaluations=1)))
    with pytest.raises(ValueError, match="parent"):
        Job(cfg, 10, trial=1, parent=0, from_epoch=3)
    with pytest.raises(ValueError, match="parent"):
        Job(cfg, 10, parent=-1)


class _Spy:
    """The shipped surrogate benchmark, counting prefetches; ``prefetch=False`` hides the method."""

    def __init__(self, prefetch=True):
        import surrobench

        self.bench = surrobench.load()
        self.prefetched = []
        if prefetch:
            self.prefetch = self._prefetch

    def _prefetch(self, jobs, seeds):
        self.prefetched.append((list(jobs), list(seeds)))
        self.bench.prefetch(jobs, seeds)

    def answer(self, job, *, seed):
        return self.bench.answer(job, seed=seed)


class _Liar(RandomSearch):
    """Random search whose look-ahead announces jobs it will never ask for."""

    def upcoming(self):
        return tuple(Job(j.config, j.epoch) for j in reversed(super().upcoming()))


@pytest.mark.parametrize("workers", [1, 5])
def test_look_ahead_prefetch_changes_nothing_but_speed(workers):
    hinted, plain, lied = _Spy(), _Spy(prefetch=False), _Spy()
    problem, run_seed = hinted.bench.problem(n_workers=workers, budget=Budget(seconds=4 * 3600)), 3
    a = simulate(hinted, RandomSearch(problem, seed=1, block=64), problem, seed=run_seed)
    b = simulate(plain, RandomSearch(problem, seed=1, block=64), problem, seed=run_seed)
    c = simulate(lied, _Liar(problem, seed=1, block=64), problem, seed=run_seed)
    assert len(a) > 200
    assert a.to_csv(index=False) == b.to_csv(index=False) == c.to_csv(index=False)
    # One prefetch per block of 64 new trials, announcing trials 0, 1, 2, ... with their configs and seeds.
    assert all(len(jobs) == 64 for jobs, _ in hinted.prefetched)
    last = int(a["trial"].max())
    assert 64 * (len(hinted.prefetched) - 1) <= last + workers and 64 * len(hinted.prefetched) > last
    announced = [(j.config_id, s) for jobs, seeds in hinted.prefetched for j, s in zip(jobs, seeds)]
    for trial, cid in zip(a["trial"], a["config_id"]):
        assert announced[trial] == (cid, trial_seed(run_seed, trial))
    # The liar's first hint is caught at its second trial; no further hints are used.
    assert len(lied.prefetched) == 1


def test_random_search_blocks_do_not_change_its_jobs():
    """Drawing a block of configs ahead (the look-ahead) keeps the stream of one-at-a-time draws."""
    rng = np.random.default_rng(11)
    expected = [sample(rng) for _ in range(300)]
    for block in (1, 7, 256):
        opt = RandomSearch(Problem(TASK), seed=11, block=block)
        first = opt.ask()
        assert [first.config, *(j.config for j in opt.upcoming())] == expected[:block]
        assert [first.config] + [opt.ask().config for _ in range(299)] == expected
    with pytest.raises(ValueError, match="block"):
        RandomSearch(Problem(TASK), block=0)


def _announced_came_true(spy, table, run_seed):
    """How many trials a prefetch announced; fails if one started with another config than announced."""
    by_seed = {s: j.config_id for jobs, seeds in spy.prefetched for j, s in zip(jobs, seeds)}
    started = table.drop_duplicates("trial")
    checked = 0
    for trial, cid in zip(started["trial"], started["config_id"]):
        announced = by_seed.get(trial_seed(run_seed, int(trial)))
        if announced is not None:
            assert announced == cid, f"trial {trial} started with another config than announced"
            checked += 1
    return checked


def _nsga2_one_at_a_time():
    from surrobench.optimizers import NSGA2

    class OneAtATime(NSGA2):
        """NSGA-II drawing each child on its own ask (no look-ahead), as it was first written."""

        def _certain_asks(self):
            return 1

    return NSGA2, OneAtATime


@pytest.mark.parametrize("workers, hours", [(1, 3.0), (5, 0.25)])
def test_nsga2_look_ahead_keeps_its_jobs_and_its_hints_come_true(workers, hours):
    NSGA2, OneAtATime = _nsga2_one_at_a_time()
    hinted, plain = _Spy(), _Spy(prefetch=False)
    problem, run_seed = hinted.bench.problem(n_workers=workers, budget=Budget(seconds=hours * 3600)), 4
    a = simulate(hinted, NSGA2(problem, seed=2), problem, seed=run_seed)
    b = simulate(plain, OneAtATime(problem, seed=2), problem, seed=run_seed)
    assert len(a) > 300
    assert a.to_csv(index=False) == b.to_csv(index=False)
    checked = _announced_came_true(hinted, a, run_seed)
    # With one worker every generation's 20 children are drawn and announced together.
    assert checked > (0.9 if workers == 1 else 0.3) * a["trial"].nunique()
    if workers == 1:
        assert {len(jobs) for jobs, _ in hinted.prefetched} == {20}


@pytest.mark.parametrize("workers, hours", [(1, 2.0), (5, 0.15)])
def test_mobananas_look_ahead_announces_its_stages(workers, hours):
    from surrobench.optimizers import MOBANANAS

    hinted, plain = _Spy(), _Spy(prefetch=False)
    problem, run_seed = hinted.bench.problem(n_workers=workers, budget=Budget(seconds=hours * 3600)), 5
    a = simulate(hinted, MOBANANAS(problem, seed=1), problem, seed=run_seed)
    b = simulate(plain, MOBANANAS(problem, seed=1), problem, seed=run_seed)
    assert len(a) > 300
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert hinted.prefetched
    if workers == 1:  # ten trials at 9 epochs, then three at 25, announced as each stage starts
        assert _announced_came_true(hinted, a, run_seed) > 0.9 * a["trial"].nunique()
        assert {len(jobs) for jobs, _ in hinted.prefetched} <= {1, 3, 10}
    # With several workers a result can start another iteration's stage before the announced jobs:
    # the hint is then wrong, the simulator stops asking for hints, and the answers stay the same.
