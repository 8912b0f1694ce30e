"""MO-BANANAS with successive halving: neural-predictor-guided evolution (docs/problem.md §7).

As the original runs it (Bag of Baselines, Flowers settings): 10 random configs at the maximum
budget form the training set. Each iteration trains an ensemble of 5 small MLPs (one hidden layer
of 10 units, 80 epochs) on the training set to predict both objectives; mutates each of the top 20
configs of the training set in NSGA-II order (front, then crowding distance) once (3
hyperparameters: numbers by a truncated normal step, categories redrawn; depths fixed); ranks the
20 mutants by their NSGA-II position under the ensemble's mean prediction, perturbed by a normal
draw whose spread is that of the positions under the 5 members (independent Thompson sampling);
evaluates the 10 best at 9 epochs, keeps a third (3) for 25 epochs, and keeps a third of those
(1) in the training set. Budgets: the original ladder from 25 down by eta = 3 while above 5,
mapped onto the problem's epochs.

Differences from the original, on purpose:

* Encoding: :func:`surrobench.space.encode` (normalised, log scale where log, one fixed column per
  hyperparameter, -1 for inactive ones; categories scaled to [0, 1]). The original divides raw
  values by their upper bounds (lr linear; depth 1 and 3 confusable) -- docs/problem.md §7.
* The mutation steps in the normalised scale (sd 1/3), not the raw one (sd a third of the range in
  linear units, integers truncated towards zero).
* Model size: by default predicted by the ensemble, as in the original (the optimizer does not
  know the dataset). Give ``input_shape`` and ``n_classes`` to compute it exactly instead, with
  :func:`surrobench.model_size.log10_params`; the ensemble then predicts the error only.
* Training is capped at ``max_steps`` = 400 Adam steps per member (80 epochs up to 160 training
  points, fewer beyond; the networks carry their weights over from the previous iteration, whose
  training set had one config less): on a surrogate a simulated day holds thousands of iterations,
  and the original's 80 full epochs over a training set that grows by one config per iteration make
  the decision time grow quadratically. The paper's real-time runs stayed below that size. A fit
  that starts from the previous iteration's weights makes at most ``warm_steps`` = 50 steps (since
  issue 16, which changed the decisions twice: the 400 steps were most of a decision's time, spent
  refining networks already trained on all but one config, so first 100 on training sets above 40
  configs, now 50 on every warm fit; the hypervolume before and after is in docs/performance.md);
  ``warm_steps=None`` gives the 400 of before. A fit stops at its cap even inside its one epoch
  (before, a training set of more than ``cap x 32`` configs ran a whole epoch: 149 steps at
  4,750 configs).
* Predictors: a small numpy MLP ensemble (Adam, learning rate 0.01, batch 32, PyTorch's default
  initialisation) on standardised targets; the original uses lr 0.1 on raw targets and N(0, 1)
  initial weights. No torch.
* Several workers: iterations are synchronous (a rung waits for all its results), but when no
  running iteration has a job to give, the next iteration starts with the current training set, so
  free workers stay busy. With one worker the sequence is the original's. The 10 initial configs
  are waited for ("nothing to run yet") before the first model is trained.
* Look-ahead: a stage's jobs are made when the stage starts and :meth:`MOBANANAS.upcoming` announces
  the ones not asked yet, so that a benchmark answering a batch faster (the surrogate) predicts
  them in one call; the jobs are the same.
"""

from __future__ import annotations

import numpy as np

from ..model_size import log10_params
from ..records import Job, Observation, Problem
from ..space import HYPERPARAMETERS, as_rng, encode, sample
from ._common import Outstanding, halving_budgets, mutate_gaussian, nsga_order
from ._fronts import Fronts

__all__ = ["MOBANANAS", "NeuralEnsemble"]

_CAT_SCALE = np.array([max(len(hp.choices) - 1, 1) if hp.kind == "cat" else 1.0 for hp in HYPERPARAMETERS])


def features(configs) -> np.ndarray:
    """The predictor's inputs: the shared encoding with categories scaled to [0, 1]."""
    x = encode(configs)
    return np.where(x >= 0, x / _CAT_SCALE, x)


class NeuralEnsemble:
    """``n_models`` MLPs (one ReLU hidden layer) trained together in numpy: MSE on standardised
    targets, Adam, mini-batches; each member has its own initialisation and batch order.

    As in the original, the same networks are trained again at every :meth:`fit` (weights carry
    over, the Adam state starts afresh); ``warm_start=False`` re-initialises them instead. Each fit
    makes ``epochs`` passes over the data, but no more than ``max_steps`` Adam steps (``None``: no
    cap), so that training stays cheap when the training set grows large, and no more than
    ``warm_steps`` when the networks carry their weights over from the previous fit; a fit stops at
    its cap even inside its one epoch when an epoch alone holds more steps."""

    def __init__(self, n_models: int = 5, hidden: int = 10, epochs: int = 80, learning_rate: float = 0.01,
                 batch_size: int = 32, max_steps: int | None = 400, warm_start: bool = True,
                 warm_steps: int | None = 50):
        self.n_models, self.hidden, self.epochs = int(n_models), int(hidden), int(epochs)
        self.learning_rate, self.batch_size = float(learning_rate), int(batch_size)
        self.max_steps, self.warm_start, self.warm_steps = max_steps, bool(warm_start), warm_steps
        self._theta: np.ndarray | None = None
        self.steps_made = 0  # Adam steps of the last fit

    def _views(self, flat: np.ndarray, d: int, k: int) -> list[np.ndarray]:
        m_, h_ = self.n_models, self.hidden
        shapes = [(m_, d, h_), (m_, 1, h_), (m_, h_, k), (m_, 1, k)]
        out, at = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(flat[at:at + size].reshape(shape))
            at += size
        return out

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> "NeuralEnsemble":
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float).reshape(len(x), -1)
        n, d = x.shape
        k, m_, h_ = y.shape[1], self.n_models, self.hidden
        self._mu = y.mean(axis=0)
        sd = y.std(axis=0)
        self._sd = np.where(sd > 1e-12, sd, 1.0)
        z = (y - self._mu) / self._sd
        size = m_ * (d * h_ + h_ + h_ * k + k)
        warm = not (self._theta is None or not self.warm_start or self._theta.size != size or self._shape != (d, k))
        if not warm:
            lim1, lim2 = 1.0 / np.sqrt(d), 1.0 / np.sqrt(h_)  # PyTorch's default initialisation
            self._theta = np.concatenate([rng.uniform(-lim1, lim1, m_ * (d * h_ + h_)),
                                          rng.uniform(-lim2, lim2, m_ * (h_ * k + k))])
            self._shape = (d, k)
        theta = self._theta
        w1, b1, w2, b2 = self._views(theta, d, k)
        grad = np.zeros(size)
        g_w1, g_b1, g_w2, g_b2 = self._views(grad, d, k)
        first, second, tmp = np.zeros(size), np.zeros(size), np.empty(size)
        beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
        bs = max(1, min(self.batch_size, n))
        epochs = self.epochs
        cap = self.max_steps
        if warm and self.warm_steps is not None:
            cap = self.warm_steps if cap is None else min(cap, self.warm_steps)
        if cap is not None:  # bound the work on large training sets
            epochs = max(1, min(epochs, cap // -(-n // bs)))
        w2t = w2.transpose(0, 2, 1)
        for _ in range(epochs):
            perm = np.argsort(rng.random((m_, n)), axis=1)
            for start in range(0, n, bs):
                if step == cap:
                    break
                idx = perm[:, start:start + bs]
                xb, zb = x[idx], z[idx]  # (M, B, d), (M, B, k)
                pre = xb @ w1
                pre += b1
                hid = np.maximum(pre, 0.0)
                g_out = hid @ w2
                g_out += b2
                g_out -= zb
                g_out *= 2.0 / (idx.shape[1] * k)
                g_hid = g_out @ w2t
                g_hid *= pre > 0
                np.matmul(xb.transpose(0, 2, 1), g_hid, out=g_w1)
                g_hid.sum(axis=1, keepdims=True, out=g_b1)
                np.matmul(hid.transpose(0, 2, 1), g_out, out=g_w2)
                g_out.sum(axis=1, keepdims=True, out=g_b2)
                step += 1
                first *= beta1
                np.multiply(grad, 1 - beta1, out=tmp)
                first += tmp
                second *= beta2
                np.multiply(grad, 1 - beta2, out=tmp)
                tmp *= grad
                second += tmp
                lr = self.learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
                np.sqrt(second, out=tmp)
                tmp += eps
                np.divide(lr * first, tmp, out=tmp)
                theta -= tmp
        self.steps_made = step  # Adam steps of the last fit
        return self

    def predict_all(self, x: np.ndarray) -> np.ndarray:
        """Predictions of every member: shape (n_models, n, n_targets), in the targets' units."""
        d, k = self._shape
        w1, b1, w2, b2 = self._views(self._theta, d, k)
        hid = np.maximum(np.asarray(x, dtype=float)[None] @ w1 + b1, 0.0)
        return (hid @ w2 + b2) * self._sd + self._mu


def _positions(points: np.ndarray) -> np.ndarray:
    """Position of every row in the NSGA-II order (0 = best)."""
    pos = np.empty(len(points), dtype=float)
    pos[nsga_order(points)] = np.arange(len(points))
    return pos


class _Iteration:
    def __init__(self, ident: int, configs: list, epochs: list[int], eta: int, continue_trials: bool):
        self.ident, self.epochs, self.eta = ident, epochs, eta
        self.continue_trials = continue_trials
        self.stage = 0
        self.queue: list[Job] = []  # the stage's jobs not asked yet, in the order asks take them
        self.results: list[tuple] = []  # (config, objectives, trial, epoch)
        self.start_stage([(c, None, 0) for c in configs])

    def start_stage(self, members: list[tuple]) -> None:
        """Queue the current stage's jobs for ``members``, (config, trial, epoch reached) each."""
        epoch = self.epochs[self.stage]
        tag = f"mobananas:i{self.ident}:s{self.stage}"
        self.queue = [Job(config, epoch, trial=trial, from_epoch=reached, tag=tag)
                      if self.continue_trials and trial is not None and reached < epoch else Job(config, epoch, tag=tag)
                      for config, trial, reached in members]
        self.expected = len(members)


class MOBANANAS:
    """MO-BANANAS with successive halving: neural ensemble + Thompson ranking, 9 then 25 epochs."""

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int | np.random.Generator | None = None,
        n_initial: int = 10,
        num_arch: int = 20,
        select_models: int = 10,
        eta: int = 3,
        min_budget: float | None = None,
        max_budget: float | None = None,
        n_models: int = 5,
        hidden: int = 10,
        epochs: int = 80,
        learning_rate: float = 0.01,
        max_steps: int | None = 400,
        warm_start: bool = True,
        warm_steps: int | None = 50,
        n_mutate: int = 3,
        mutation_sd: float = 1 / 3,
        mutable_depths: bool = False,
        input_shape: tuple[int, int, int] | None = None,
        n_classes: int | None = None,
        continue_trials: bool = False,
    ):
        if n_initial < 1 or num_arch < 1 or select_models < 1 or eta < 2 or n_models < 2:
            raise ValueError("MOBANANAS: need n_initial, num_arch, select_models >= 1, eta >= 2, n_models >= 2")
        if hidden < 1 or n_mutate < 0 or not mutation_sd > 0:
            raise ValueError(f"MOBANANAS: need hidden >= 1, n_mutate >= 0, mutation_sd > 0; got {hidden}, {n_mutate}, "
                             f"{mutation_sd}")
        if (input_shape is None) != (n_classes is None):
            raise ValueError("MOBANANAS: give both input_shape and n_classes (exact model size) or neither")
        self.problem = problem
        self.seed = seed
        self.n_initial, self.num_arch, self.select_models, self.eta = int(n_initial), int(num_arch), int(select_models), int(eta)
        self.min_budget = problem.max_epoch / 5 if min_budget is None else float(min_budget)
        self.max_budget = problem.max_epoch if max_budget is None else float(max_budget)
        self.budgets = halving_budgets(self.min_budget, self.max_budget, self.eta, problem)  # 9, 25 for 1..25
        self.n_mutate, self.mutation_sd, self.mutable_depths = int(n_mutate), float(mutation_sd), bool(mutable_depths)
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.n_classes = None if n_classes is None else int(n_classes)
        self.continue_trials = bool(continue_trials)
        self.ensemble = NeuralEnsemble(n_models, hidden, epochs, learning_rate, max_steps=max_steps, warm_start=warm_start,
                                       warm_steps=warm_steps)

        self._rng = as_rng(seed)
        self._out = Outstanding()
        self._initial_asked = 0
        # the training set (configs at the maximum budget): configs, and their features and objectives in arrays
        # (the first len(self._train) rows, grown by doubling), and its first non-dominated fronts kept as they come
        self._train: list[dict] = []
        self._train_x = np.empty((64, len(HYPERPARAMETERS)))
        self._train_y = np.empty((64, 2))
        self._train_fronts = Fronts()
        self._iterations: list[_Iteration] = []
        self._n_iterations = 0

    # ------------------------------------------------------------------ ask

    def ask(self) -> Job | None:
        if self._initial_asked < self.n_initial:
            self._initial_asked += 1
            job = Job._from_valid(sample(self._rng), self.problem.max_epoch, tag="mobananas:init")
            return self._out.add(job, None)
        it = next((i for i in self._iterations if i.queue), None)
        if it is None:
            if len(self._train) < min(2, self.n_initial) or (len(self._train) < self.n_initial and len(self._out)):
                return None  # wait for the initial design before the first model
            it = self._new_iteration()
            self._iterations.append(it)
        return self._out.add(it.queue.pop(0), it)

    def upcoming(self) -> tuple[Job, ...]:
        """The jobs the next asks return while no result arrives: the running iterations' queued
        jobs, in the order asks take them (decided already; no randomness is used). A speed hint:
        the simulator lets a benchmark that answers a batch faster predict them at once."""
        return tuple(job for it in self._iterations for job in it.queue)

    def _new_iteration(self) -> _Iteration:
        n = len(self._train)
        objs = self._train_y[:n]
        parents = [self._train[i] for i in self._top(objs, self.num_arch)]
        mutants = [mutate_gaussian(p, self._rng, n_keys=self.n_mutate, sd=self.mutation_sd,
                                   mutable_depths=self.mutable_depths) for p in parents]
        chosen = self._choose(self._train_x[:n], objs, mutants)
        it = _Iteration(self._n_iterations, chosen, self.budgets, self.eta, self.continue_trials)
        self._n_iterations += 1
        return it

    def _top(self, objs: np.ndarray, k: int) -> np.ndarray:
        """``nsga_order(objs)[:k]``, from the first whole fronts that hold ``k`` configs: a front's
        ranks and crowding distances do not depend on later fronts, and the rows keep their order, so
        the same indices (tested) without sorting the whole training set every iteration."""
        rows: list[int] = []
        r = 0
        while len(rows) < k and (front := self._train_fronts.front(r)) is not None:
            rows.extend(m[2] for m in front)
            r += 1
        sub = np.sort(np.array(rows, dtype=int))
        return sub[nsga_order(objs[sub])[:k]]

    def _exact_size(self, configs) -> np.ndarray:
        return np.array([log10_params(c, self.input_shape, self.n_classes) for c in configs])

    def _choose(self, x: np.ndarray, objs: np.ndarray, candidates: list) -> list:
        """The ``select_models`` candidates with the smallest Thompson-perturbed NSGA-II positions."""
        exact = self.input_shape is not None
        target = objs[:, :1] if exact else objs
        self.ensemble.fit(x, target, self._rng)
        preds = self.ensemble.predict_all(features(candidates))  # (M, n, k)
        if exact:
            size = self._exact_size(candidates)
            preds = np.concatenate([preds, np.broadcast_to(size[None, :, None], preds.shape)], axis=2)
        mean_pos = _positions(preds.mean(axis=0))
        member_pos = np.stack([_positions(p) for p in preds])
        spread = np.sqrt(((member_pos - mean_pos) ** 2).sum(axis=0) / (len(preds) - 1))
        score = self._rng.normal(mean_pos, spread)
        keep = np.argsort(score, kind="stable")[: self.select_models]
        return [candidates[i] for i in keep]

    # ------------------------------------------------------------------ tell

    def tell(self, observation: Observation) -> None:
        it = self._out.pop(observation)
        if it is None:
            self._add_to_training_set(observation.config, observation.objectives)
            return
        it.results.append((observation.config, observation.objectives, observation.trial, observation.epoch))
        if len(it.results) < it.expected:
            return
        pts = np.array([r[1] for r in it.results])
        n_keep = len(it.results) // it.eta
        kept = [it.results[i] for i in nsga_order(pts)[:n_keep]]
        it.results = []
        if it.stage == len(it.epochs) - 1 or not kept:
            if it.stage == len(it.epochs) - 1:
                for c, o, _, _ in kept:
                    self._add_to_training_set(c, o)
            self._iterations.remove(it)
            return
        it.stage += 1
        it.start_stage([(c, trial, ep) for c, _, trial, ep in kept])

    def _add_to_training_set(self, config, objectives) -> None:
        n = len(self._train)
        if n == len(self._train_x):
            self._train_x = np.vstack([self._train_x, np.empty_like(self._train_x)])
            self._train_y = np.vstack([self._train_y, np.empty_like(self._train_y)])
        self._train.append(config)
        self._train_x[n] = features([config])[0]
        self._train_y[n] = objectives
        self._train_fronts.add(None, objectives)
