"""The ask/tell contract, checked for every optimizer in the registry with its default settings."""

import pytest

from surrobench.compare import resolve_optimizers
from surrobench.model_size import log10_params
from surrobench.optimizers import OPTIMIZERS
from surrobench.records import Job, Optimizer, Problem
from surrobench.simulator import Budget, simulate
from surrobench.space import validate

from toybench import ToyBenchmark

try:  # the Optuna bridge's samplers take the same contract where optuna is installed
    import optuna  # noqa: F401

    BRIDGED = ["optuna-nsga2", "optuna-tpe", "optuna-random"]  # optuna-gp: too slow for a unit test
except ImportError:
    BRIDGED = []
NAMES = sorted(OPTIMIZERS) + BRIDGED


def build(name, problem, seed):
    cls, settings = resolve_optimizers([name])[name]
    return cls(problem, seed=seed, **settings)
N_JOBS = 60  # past MO-BOHB's 50 initial configs, yet cheap for the model-based optimizers


class RangeToy(ToyBenchmark):
    """The toy benchmark restricted to epochs ``min_epoch..max_epoch``: anything else is an error."""

    def __init__(self, min_epoch=1, max_epoch=25, dataset="toy"):
        super().__init__(dataset=dataset)
        self.min_epoch, self.max_epoch = min_epoch, max_epoch

    def _check(self, epoch, from_epoch=0):
        if not self.min_epoch <= epoch <= self.max_epoch:
            raise AssertionError(f"epoch {epoch} outside {self.min_epoch}..{self.max_epoch}")
        if from_epoch and not self.min_epoch <= from_epoch < epoch:
            raise AssertionError(f"from_epoch {from_epoch} outside {self.min_epoch}..{epoch - 1}")

    def query(self, config, epoch, *, seed=0):
        self._check(epoch)
        return super().query(config, epoch, seed=seed)

    def cost(self, config, epoch, *, from_epoch=0, seed=0):
        self._check(epoch, from_epoch)
        return super().cost(config, epoch, from_epoch=from_epoch, seed=seed)


class Counting:
    """Passes asks and tells through, counting the jobs handed out."""

    def __init__(self, opt):
        self.opt, self.jobs = opt, 0

    def ask(self):
        job = self.opt.ask()
        self.jobs += job is not None
        return job

    def tell(self, observation):
        self.opt.tell(observation)


def _run(name, *, seed=0, workers=1, lo=1, hi=25, budget=None, seen=None, n_jobs=N_JOBS, dataset="toy"):
    """Simulate optimizer ``name`` on the toy restricted to lo..hi; ``seen`` collects the observations."""
    bench = RangeToy(lo, hi, dataset)
    problem = bench.problem(n_workers=workers, budget=budget or Budget(evaluations=n_jobs))
    opt = Counting(build(name, problem, seed))
    df = simulate(bench, opt, problem, seed=seed, on_observation=None if seen is None else seen.append)
    df.attrs["asked"] = opt.jobs
    return df


@pytest.mark.parametrize("name", NAMES)
def test_asks_before_any_tell(name):
    opt = build(name, Problem(ToyBenchmark().task, n_workers=8), 0)
    assert isinstance(opt, Optimizer)
    first = opt.ask()
    assert isinstance(first, Job), "the first ask must give a job (nothing is running yet)"
    for _ in range(7):
        job = opt.ask()
        assert job is None or isinstance(job, Job)
        if job is not None:
            assert validate(job.config) == dict(job.config)
            assert 1 <= job.epoch <= 25


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("workers", [1, 8])
@pytest.mark.parametrize("lo,hi", [(1, 25), (3, 12)])
def test_jobs_are_valid_and_within_the_fidelity_range(name, workers, lo, hi):
    seen = []
    df = _run(name, workers=workers, lo=lo, hi=hi, seed=workers, seen=seen)
    assert len(df) == len(seen) == N_JOBS  # an evaluation budget: every job started finishes (no deadlock)
    for obs in seen:
        assert validate(obs.config) == dict(obs.config)
        assert lo <= obs.epoch <= hi
        assert obs.job.from_epoch == 0 or lo <= obs.job.from_epoch < obs.epoch


@pytest.mark.parametrize("name", NAMES)
def test_single_fidelity_problem(name):
    df = _run(name, workers=2, lo=7, hi=7, seed=3, n_jobs=40)
    assert len(df) == 40 and (df["epoch"] == 7).all()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_jobs(name):
    a = _run(name, seed=5, workers=4, n_jobs=40)
    b = _run(name, seed=5, workers=4, n_jobs=40)
    c = _run(name, seed=6, workers=4, n_jobs=40)
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert a["config_id"].tolist() != c["config_id"].tolist()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("workers", [1, 8])
def test_finishes_a_short_time_budget(name, workers):
    seconds = 1800.0  # a 25-epoch toy job takes about 100 simulated seconds
    df = _run(name, workers=workers, budget=Budget(seconds=seconds))
    assert len(df) > 0
    assert (df["end"] <= seconds).all()
    assert df.attrs["asked"] >= workers  # every worker got work (jobs still running at the end are not in df)


@pytest.mark.parametrize("name", NAMES)
def test_takes_the_dataset_from_the_task(name):
    """On digits' shape (1, 8, 8) and 10 classes every observed size is digits' count: an optimizer that
    computes sizes itself (MS-EHVI) must take them from the task, not from flowers17."""
    seen = []
    df = _run(name, workers=2, seed=1, seen=seen, n_jobs=40, dataset="digits")
    assert len(df) == 40
    assert all(abs(o.log10_params - log10_params(o.config, (1, 8, 8), 10)) < 1e-12 for o in seen)
