"""Optuna's multi-objective samplers on surrobench's ask/tell protocol.

:class:`OptunaSampler` keeps an in-memory Optuna study with directions (minimize, minimize) over
(validation error, log10 #params); every ``ask`` is one ``study.ask()`` whose parameters become a
fresh config trained from scratch at the maximum epoch, and every ``tell`` is ``study.tell()`` with
the job's objectives. Jobs still running when another worker asks are running Optuna trials, so
samplers that handle them (TPE's constant liar, NSGA-II's generations) see them as Optuna does.

The 13 hyperparameters map to Optuna distributions: log-scaled integers and floats to
``IntDistribution(log=True)`` / ``FloatDistribution(log=True)``, the others to linear ones, kernel
size and the booleans to ``CategoricalDistribution``. Two ways of handling the conditional widths:

* ``search_space="flat"``: every trial draws all 13 (one fixed space, so samplers that model a fixed
  space — NSGA-II's crossover, the GP — see every width) and the config keeps only the active ones;
  a width that a smaller depth switches off is carried by the trial, not trained.
* ``search_space="conditional"``: define-by-run, a width is drawn only when its depth makes it
  active, the way Optuna's own examples write conditional spaces (TPE handles it natively).

Names for :func:`surrobench.compare` and ``surrobench compare --optimizers``: ``optuna-nsga2``,
``optuna-nsga3``, ``optuna-tpe``, ``optuna-gp`` (needs torch and scipy, as Optuna's GP sampler does)
and ``optuna-random``. Optuna is imported only when an optimizer is built.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from typing import Any, Callable, Mapping

import numpy as np

from ..records import Job, Observation, Problem
from ..space import HYPERPARAMETERS, NAMES, is_active

__all__ = ["OptunaSampler", "PREFIX", "SAMPLERS", "resolve", "describe"]

PREFIX = "optuna-"
SAMPLERS: dict[str, tuple[str, str]] = {
    # name: (class in optuna.samplers, default search_space)
    "nsga2": ("NSGAIISampler", "flat"),
    "nsga3": ("NSGAIIISampler", "flat"),
    "tpe": ("TPESampler", "conditional"),
    "gp": ("GPSampler", "flat"),
    "random": ("RandomSampler", "conditional"),
}
_NEEDS = {"gp": ("torch", "scipy")}


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def resolve(name: str) -> tuple[type, dict]:
    """``optuna-<sampler>`` → ``(OptunaSampler, {"sampler": <sampler>})``, checking that Optuna (and
    what the sampler needs) is installed; a one-line ``ValueError`` otherwise."""
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if key not in SAMPLERS:
        known = ", ".join(PREFIX + k for k in SAMPLERS)
        raise ValueError(f"optimizer: unknown Optuna sampler {name!r} (known: {known})")
    missing = _missing("optuna", *_NEEDS.get(key, ()))
    if missing:
        hint = "pip install 'surrobench[optuna]'" + (" plus torch and scipy" if key in _NEEDS else "")
        raise ValueError(f"optimizer {name!r} needs {', '.join(missing)}: {hint}")
    return OptunaSampler, {"sampler": key}


def describe() -> dict[str, str]:
    """One line per Optuna name, for ``surrobench compare --list``."""
    installed = not _missing("optuna")
    return {
        PREFIX + key: f"Optuna's {cls} at the maximum epoch ({space} space)"
        + ("" if installed and not _missing(*_NEEDS.get(key, ())) else
           f" [needs {', '.join(_missing('optuna', *_NEEDS.get(key, ())))}]")
        for key, (cls, space) in SAMPLERS.items()
    }


def _sampler_seed(seed: int | np.random.Generator | None) -> int | None:
    """Optuna samplers take an int in [0, 2**32) or None."""
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**32))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, a numpy Generator or None, got {seed!r}")
    seed = int(seed)
    return seed if 0 <= seed < 2**32 else int(np.random.SeedSequence(abs(seed)).generate_state(1)[0])


def distributions() -> dict[str, Any]:
    """The 13 hyperparameters as Optuna distributions (all of them; see the module docstring)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for hp in HYPERPARAMETERS:
        if hp.kind == "cat":
            out[hp.name] = CategoricalDistribution(list(hp.choices))
        elif hp.kind == "int":
            out[hp.name] = IntDistribution(int(hp.lower), int(hp.upper), log=hp.log)
        else:
            out[hp.name] = FloatDistribution(float(hp.lower), float(hp.upper), log=hp.log)
    return out


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


class OptunaSampler:
    """An Optuna multi-objective sampler (NSGA-II, TPE, GP, …) on the ask/tell protocol."""

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int | np.random.Generator | None = None,
        sampler: str | Callable[..., Any] = "tpe",
        sampler_settings: dict | None = None,
        search_space: str | None = None,
        epoch: int | None = None,
    ):
        self.problem = problem
        self.seed = seed
        self.sampler = sampler
        if sampler_settings is not None and not isinstance(sampler_settings, Mapping):
            raise ValueError("OptunaSampler: sampler_settings must map the sampler's keyword arguments to values, "
                             f"got {type(sampler_settings).__name__} {sampler_settings!r:.60}")
        self.sampler_settings = dict(sampler_settings or {})
        self.epoch = problem.max_epoch if epoch is None else epoch
        if isinstance(self.epoch, bool) or not isinstance(self.epoch, (int, np.integer)) or not (
            problem.min_epoch <= self.epoch <= problem.max_epoch
        ):
            raise ValueError(f"OptunaSampler: epoch must lie in {problem.min_epoch}..{problem.max_epoch}, got {epoch!r}")
        self.epoch = int(self.epoch)
        if isinstance(sampler, str):
            key = sampler[len(PREFIX):] if sampler.startswith(PREFIX) else sampler
            if key not in SAMPLERS:
                raise ValueError(f"OptunaSampler: unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")
            self.name = PREFIX + key
            default_space = SAMPLERS[key][1]
        elif isinstance(sampler, type) or (callable(sampler) and not hasattr(sampler, "sample_relative")):
            key, default_space = None, "flat"
            self.name = PREFIX + getattr(sampler, "__name__", "sampler")
        else:
            raise ValueError(
                "OptunaSampler: sampler must be a name or a sampler class (or factory) taking seed=, "
                f"not an instance (its seed would be out of reach); got {sampler!r}"
            )
        self.search_space = default_space if search_space is None else search_space
        if self.search_space not in ("flat", "conditional"):
            raise ValueError(f"OptunaSampler: search_space must be 'flat' or 'conditional', got {search_space!r}")
        try:
            import optuna
        except ImportError:
            raise ValueError(f"{self.name} needs optuna: pip install 'surrobench[optuna]'") from None
        if key in _NEEDS and _missing(*_NEEDS[key]):
            raise ValueError(f"{self.name} needs {', '.join(_missing(*_NEEDS[key]))} (Optuna's sampler imports them)")
        factory = getattr(optuna.samplers, SAMPLERS[key][0]) if key is not None else sampler
        self._sampler = factory(seed=_sampler_seed(seed), **self.sampler_settings)
        storage = optuna.storages.InMemoryStorage()
        minimize = optuna.study.StudyDirection.MINIMIZE
        quiet = logging.getLogger(optuna.storages.InMemoryStorage.__module__)  # "A new study created" × every run
        level = quiet.level
        quiet.setLevel(logging.WARNING)
        try:
            study_id = storage.create_new_study([minimize, minimize], study_name="surrobench")
        finally:
            quiet.setLevel(level)
        name = storage.get_study_name_from_id(study_id)
        self.study = optuna.Study(study_name=name, storage=storage, sampler=self._sampler)
        self._distributions = distributions()
        self._pending: dict[Job, Any] = {}

    def ask(self) -> Job:
        if self.search_space == "flat":
            trial = self.study.ask(fixed_distributions=self._distributions)
            values = trial.params
        else:
            trial = self.study.ask()
            values = {}
            for name in NAMES:
                if is_active(name, values):
                    values[name] = _suggest(trial, name, self._distributions[name])
        config = {n: values[n] for n in NAMES if is_active(n, values)}
        job = Job(config, self.epoch, tag=self.name)
        self._pending[job] = trial
        return job

    def tell(self, observation: Observation) -> None:
        trial = self._pending.pop(observation.job, None)
        if trial is None:
            raise ValueError(f"{self.name}: told about job {observation.job_id}, which it did not ask for (or was told already)")
        values = [float(v) for v in observation.objectives]
        if all(math.isfinite(v) for v in values):
            self.study.tell(trial, values)
        else:
            from optuna.trial import TrialState

            self.study.tell(trial, state=TrialState.FAIL)
