"""EHVI: Bayesian optimisation with both objectives modelled by Gaussian processes.

The natural companion of MS-EHVI (docs/problem.md §7): the same loop, but model size is learnt by a second
GP instead of being computed, so the expected hypervolume improvement of two independent
Gaussians is used, in closed form (:mod:`surrobench.optimizers._ehvi`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..records import Job, Observation, Problem
from ._bo import GPEHVI

__all__ = ["EHVI"]


class EHVI:
    """EHVI: 50 random configs, then one config per ask maximising exact EHVI, all at 25 epochs.

    Settings are those of :class:`~surrobench.optimizers.msehvi.MSEHVI` (``n_init``,
    ``ref_point``, ``max_gp_points``, ``max_fit_points``, ``refit_growth``, ``n_candidates``,
    ``n_local``, ``n_refine``, ``at_cap``, ``epoch``); ``input_shape`` and ``n_classes`` are only checked, as
    the size is learnt from the observed ``log10_params``. Both GPs share the cost bound (at most
    ``max_gp_points`` observations in a posterior, hyperparameters refitted on at most
    ``max_fit_points`` when the data grew by 25 %) and the kriging believer for running jobs.
    """

    SETTINGS_FROM = GPEHVI  # the settings it takes: GPEHVI's keywords with defaults (surrobench.optimizers.settings_of)

    def __init__(self, problem: Problem, *, seed: int | np.random.Generator | None = None, **settings: Any):
        self.problem = problem
        self.seed = seed
        self.settings: Mapping[str, Any] = dict(settings)
        self._search = GPEHVI(problem, exact_size=False, seed=seed, **settings)

    @property
    def models(self):
        """The (validation error, model size) GPs (for inspection)."""
        return self._search.gp_error, self._search.gp_size

    def ask(self) -> Job:
        return self._search.ask()

    def tell(self, observation: Observation) -> None:
        self._search.tell(observation)
