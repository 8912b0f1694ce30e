"""MS-EHVI: Bayesian optimisation with a mixed surrogate (docs/problem.md §7).

Validation error is a Gaussian process; model size, the second objective, is not modelled but
computed exactly (log10 of the closed-form parameter count), so expected hypervolume improvement
reduces to a one-dimensional Gaussian integral over the front's strips, in closed form
(:mod:`surrobench.optimizers._ehvi`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..records import Job, Observation, Problem
from ._bo import GPEHVI

__all__ = ["MSEHVI"]


class MSEHVI:
    """MS-EHVI: 50 random configs, then one config per ask maximising exact EHVI, all at 25 epochs.

    Settings (keywords, defaults are the paper's Flowers settings where it has one):

    * ``n_init=50``: random configs (from the priors) before the model is used.
    * ``ref_point=(1.0, 8.0)``: reference point of (val error, log10 params) (docs/problem.md §4).
    * ``input_shape=None``, ``n_classes=None``: the dataset the exact size is computed for (default:
      the problem's task's, ``problem.task.input_shape`` and ``n_classes``). Every observed size is
      checked against this count; one that differs is a ``ValueError`` (a task that is not the
      benchmark's).
    * ``max_gp_points=500``, ``max_fit_points=200``, ``refit_growth=1.25``: the GP's cost bound.
      The posterior uses at most ``max_gp_points`` observations (the best half by non-dominated
      rank, the rest a random sample, chosen again only after a hyperparameter fit or when full;
      new observations are appended in between); kernel hyperparameters are refitted on at most
      ``max_fit_points`` of them, each time the number of observations has grown by 25 %.
    * ``n_candidates=32``, ``n_local=64``, ``n_refine=2``: how EHVI is maximised (random configs,
      local moves around front members, then 16 local moves around each of the best 2; before
      issue 16: 256, 128, 8, then 64, 128, 4; see :mod:`surrobench.optimizers._bo` for what changed).
    * ``at_cap=None``: ``(random configs, local moves)`` to score instead once there are more than
      ``max_gp_points`` observations, e.g. ``(8, 32)``: faster decisions past the GP's cap, other
      decisions (docs/performance.md measures both); ``None`` keeps ``n_candidates`` and ``n_local``.
    * ``epoch=None``: the fidelity of every job (default: the maximum).

    With several workers it proposes while others run by the kriging believer: running jobs
    count as observed at the GP's posterior mean (their exact size), which shrinks the variance
    near them and puts them on the front; running and evaluated configs are never proposed again.
    Decision time is real time, charged to the simulated clock by the "measured" overhead model.
    """

    SETTINGS_FROM = GPEHVI  # the settings it takes: GPEHVI's keywords with defaults (surrobench.optimizers.settings_of)

    def __init__(self, problem: Problem, *, seed: int | np.random.Generator | None = None, **settings: Any):
        self.problem = problem
        self.seed = seed
        self.settings: Mapping[str, Any] = dict(settings)
        self._search = GPEHVI(problem, exact_size=True, seed=seed, **settings)

    @property
    def model(self):
        """The validation-error GP (for inspection)."""
        return self._search.gp_error

    def size(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The exact model-size objective of ``configs``."""
        return self._search.size(configs)

    def ask(self) -> Job:
        return self._search.ask()

    def tell(self, observation: Observation) -> None:
        self._search.tell(observation)
