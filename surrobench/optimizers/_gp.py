"""A Gaussian process whose cost per decision stays bounded at thousands of observations.

Hyperparameters (a constant times an ARD Matern-5/2 kernel, plus white noise, on the space's
fixed-column encoding with inactive columns at -1) are fitted on at most ``max_fit_points``
observations, and only when the number of observations has grown by the factor ``refit_growth``
since the last fit; each fit starts from the previous optimum. The fit maximises what
scikit-learn's ``GaussianProcessRegressor`` maximises for this kernel (the log marginal likelihood
of the normalised targets, its ``alpha`` of 1e-10 on the diagonal, L-BFGS-B from the current
hyperparameters within the kernel's bounds), but with its own likelihood and analytic gradient
(:func:`neg_log_marginal_likelihood`): O(n^3 + n^2 d) per evaluation instead of scikit-learn's
(n, n, d + 2) gradient tensor (at 200 points 2.8 against 13.4 ms per evaluation with one BLAS thread
on a loaded machine). The optimum agrees with scikit-learn's to the optimiser's tolerance, not bit
for bit, so decisions changed with it (issue 16; ``tools/compare_versions.py`` in
docs/performance.md shows the hypervolume before and after).

The posterior is exact on a *conditioning subset* of at most ``max_points`` observations, kept
stable between calls of :meth:`GP.fit` so that its Cholesky factor is extended, not refactored:

* a *rebuild* (the first fit, after every hyperparameter fit, when the subset is full, or when
  rows it holds changed) picks the subset afresh: every observation while there are at most
  ``max_points``, otherwise the best ``max_points // 2`` by the caller's order (non-dominated rank
  first) plus a uniformly random sample of the rest, ``max_points - slack`` rows in all
  (``slack = max(1, max_points // 10)``), and factors it (O(max_points^3));
* every later fit appends the new observations to the subset with a block update of the factor,
  ``L' = [[L, 0], [B^T, chol(K_nn - B^T B)]]`` with ``B = L^-1 K_on``, O(max_points^2) per row,
  until the subset is full again; only the new rows are written, in place (:class:`GrowingFactor`).

So a decision costs O(max_points^2) plus one rebuild every ``slack`` observations, and the scaled
subset rows (inputs divided by the length scales) and their squared norms are cached for the kernel
rows of candidates, whose distances come from one matrix product (``|a|^2 + |b|^2 - 2 a.b``)
instead of scipy's ``cdist`` since issue 16: 7-10 % less per decision at the toy benchmark's cap,
1-3 % in a day of the protocol on flowers17. The kernel's numbers moved in their last bits with it
(and with its Horner form), so decisions could in principle flip on a near-tie; in the runs
compared (docs/performance.md, fifteenth pass) none did.
The targets' normalisation (mean and standard deviation of the subset) is recomputed on every
fit; the posterior mean needs only ``L^-1 y`` and ``L^-1 1``, extended like the factor, so a fit
between rebuilds costs O(max_points^2) for the appended rows and nothing more. A hyperparameter fit costs
O(max_fit_points^3) per likelihood evaluation, on a schedule that fits O(log n) times.

Pending points (jobs still running) are handled by the kriging believer: each is conditioned
on as if it had been observed at the posterior mean. That leaves the mean unchanged everywhere
and only shrinks the variance near the pending points, so :meth:`GP.predict` computes it in closed
form without refitting.

The matrices are small (at most ``max_points`` rows), where BLAS threads only cost: on a busy machine
OpenBLAS's threads spin against each other (a 200 x 200 Cholesky measured 0.4 s instead of 0.4 ms).
So fits and predictions run with BLAS limited to one thread, through threadpoolctl, for their
duration only.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, get_lapack_funcs
from scipy.optimize import minimize
from scipy.spatial.distance import cdist
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import ThreadpoolController

__all__ = ["GP", "GrowingFactor", "select_subset", "append_cholesky", "neg_log_marginal_likelihood"]

_JITTER = 1e-8
_SQRT5 = math.sqrt(5.0)
_ALPHA = 1e-10  # scikit-learn's GaussianProcessRegressor(alpha=1e-10) default, added to the diagonal


_TRTRS, _POTRF = get_lapack_funcs(("trtrs", "potrf"), (np.empty((1, 1)),))  # the float64 routines


def _trtrs(a: np.ndarray, b: np.ndarray, lower: int, trans: int) -> np.ndarray:
    x, info = _TRTRS(a, b, lower=lower, trans=trans)
    if info > 0:
        raise LinAlgError(f"singular matrix: resolution failed at diagonal {info - 1}")
    if info < 0:  # pragma: no cover - a bug here, not bad data
        raise ValueError(f"illegal value in argument {-info} of trtrs")
    return x


def solve_lower(L: np.ndarray, b: np.ndarray, *, transposed: bool = False) -> np.ndarray:
    """``scipy.linalg.solve_triangular(L, b, lower=True, check_finite=False)`` for float64 arrays
    (``L^-T b`` with ``transposed``): the same LAPACK call (``trtrs``, on ``L.T`` as upper with the
    transposition flipped when ``L`` is not Fortran-ordered), so the same numbers, without the
    per-call batching and checking layers (about 10 µs, most of a decision's small solves)."""
    if not b.size:
        return np.empty_like(b, dtype=float)
    if L.flags.f_contiguous:
        return _trtrs(L, b, 1, int(transposed))
    return _trtrs(L.T, b, 0, int(not transposed))


def cholesky_lower(A: np.ndarray) -> np.ndarray:
    """``scipy.linalg.cholesky(A, lower=True, check_finite=False)`` for a float64 matrix: the same
    ``potrf`` call (upper triangle zeroed), so the same numbers, without scipy's per-call layers."""
    if not A.size:
        return np.empty_like(A, dtype=float)
    c, info = _POTRF(A, lower=1, overwrite_a=0, clean=1)
    if info > 0:
        raise LinAlgError(f"{info}-th leading minor of the array is not positive definite")
    if info < 0:  # pragma: no cover - a bug here, not bad data
        raise ValueError(f"illegal value in argument {-info} of potrf")
    return c


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def _blas_on_one_thread(controller: ThreadpoolController) -> bool:
    """Whether every BLAS library is already limited to one thread (a few µs; limiting costs ~30)."""
    return all(lib.num_threads == 1 for lib in controller.lib_controllers if lib.user_api == "blas")


def _one_blas_thread(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        controller = _controller()
        if _blas_on_one_thread(controller):  # compare's worker processes, for one
            return method(*args, **kwargs)
        with controller.limit(limits=1, user_api="blas"):
            return method(*args, **kwargs)

    return wrapper


def select_subset(order: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``max_points`` rows: the first half of ``order`` (best first) plus a
    random sample of the rest, returned sorted."""
    order = np.asarray(order, dtype=int)
    if len(order) <= max_points:
        return np.sort(order)
    n_best = max_points // 2
    rest = rng.choice(order[n_best:], size=max_points - n_best, replace=False)
    return np.sort(np.concatenate([order[:n_best], rest]))


def append_cholesky(L: np.ndarray, K_on: np.ndarray, K_nn: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of ``[[A, K_on], [K_on^T, K_nn]]`` given ``L``, that of ``A``, as a
    new C-ordered array.

    ``K_on`` is (n, k), ``K_nn`` (k, k); costs O(n^2 k + k^3) instead of O((n + k)^3).
    :class:`GrowingFactor` computes the same factor in place.
    """
    n, k = K_on.shape
    B = solve_lower(L, K_on) if n else np.empty((0, k))
    C = cholesky_lower(K_nn - B.T @ B)
    m = n + k
    out = np.empty((m, m))
    out[:n, :n] = L
    out[:n, n:] = 0.0
    out[n:, :n] = B.T
    out[n:, n:] = C
    return out


class GrowingFactor:
    """The lower Cholesky factor ``L`` of a kernel matrix that grows by rows, extended in place.

    It starts as :func:`cholesky_lower` returns it (Fortran-ordered). The first :meth:`append`
    copies ``L^T`` into the upper triangle of a Fortran-ordered ``capacity x capacity`` buffer, and
    every append after it writes only the new columns of ``L^T`` there (those of
    :func:`append_cholesky`), so the factor is not copied again until the next rebuild: at 500 rows
    a copy is 2 MB per observation. Solves pass the buffer's first ``n`` columns as LAPACK's
    ``(lda, n)`` array with ``lda = capacity``: the call :func:`solve_lower` makes on a C-ordered
    factor, on the same numbers, so the same results bit for bit (tested).
    """

    def __init__(self, L: np.ndarray, capacity: int):
        self.n = len(L)
        self.capacity = int(capacity)
        self._L: np.ndarray | None = L  # until the first append
        self._buffer: np.ndarray | None = None
        self._U = np.empty((0, 0))  # the buffer's first n columns once appended to: U[:n, :n] = L^T

    def solve(self, b: np.ndarray, *, transposed: bool = False) -> np.ndarray:
        """``L^-1 b`` (``L^-T b`` with ``transposed``), as :func:`solve_lower` gives it."""
        if self._L is not None:
            return solve_lower(self._L, b, transposed=transposed)
        if not b.size:
            return np.empty_like(b, dtype=float)
        return _trtrs(self._U, b, 0, int(not transposed))

    def extend(self, z: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``L^-1 r`` given ``z = L^-1 r`` over the first ``len(z)`` rows: only the rows after
        them are solved, ``L[h:, h:]^-1 (r[h:] - L[h:, :h] z)`` (views of the factor, no copy)."""
        h = len(z)
        if self._L is not None:
            head, tail = self._L[h:, :h], self._L[h:, h:]
        else:
            head, tail = self._U[:h, h:].T, self._U[h : self.n, h:].T
        return np.concatenate([z, solve_lower(tail, r[h:] - head @ z)])

    def dense(self) -> np.ndarray:
        """``L`` as a new (n, n) array, zeros above the diagonal."""
        if self._L is not None:
            return np.array(self._L)
        return np.tril(self._U[: self.n].T)

    def append(self, K_on: np.ndarray, K_nn: np.ndarray, buffer: np.ndarray | None = None) -> None:
        """Extend by ``k`` rows: ``K_on`` (n, k), ``K_nn`` (k, k); the factor of
        ``[[A, K_on], [K_on^T, K_nn]]``, as :func:`append_cholesky` computes it. ``buffer``: a
        Fortran-ordered ``capacity x capacity`` array to use (reused across rebuilds)."""
        n, k = K_on.shape
        if n + k > self.capacity:
            raise ValueError(f"factor: {n + k} rows exceed the capacity {self.capacity}")
        B = self.solve(K_on) if n else np.empty((0, k))
        C = cholesky_lower(K_nn - B.T @ B)
        if self._L is not None:
            if buffer is None:
                buffer = np.empty((self.capacity, self.capacity), order="F")
            self._buffer = buffer
            buffer[:n, :n] = self._L.T
            self._L = None
        U = self._buffer
        U[:n, n : n + k] = B
        U[n : n + k, n : n + k] = C.T
        U[n : n + k, :n] = 0.0  # below the diagonal: never read by a solve, kept clean for dense()
        self.n = n + k
        self._U = U[:, : self.n]


def _matern52(A: np.ndarray, B: np.ndarray, amplitude: float, *, B_sq: np.ndarray | None = None) -> np.ndarray:
    """``amplitude`` times the Matern-5/2 kernel between rows already divided by the length scales,
    ``amplitude * (1 + d + d^2 / 3) * exp(-d)`` with ``d = sqrt(5) |a - b|``, in Horner form.

    With ``B_sq`` (the squared norms of ``B``'s rows) the distances come from one matrix product,
    ``sqrt(|a|^2 + |b|^2 - 2 a.b)``, instead of ``cdist``'s pairwise loop: for a decision's
    candidates against a 500-row subset the distances take about half the time. The kernel agrees
    with cdist's within about 1e-12 relative (tested), not bit for bit, so this changes the
    posterior's last bits; in the runs compared when it came (issue 16) no decision changed. Kernels of a set with itself
    (the subset's factor) keep cdist, whose diagonal is exactly 0.
    """
    if B_sq is None:
        d = cdist(A, B)
    else:
        d = A @ B.T
        d *= -2.0
        d += np.einsum("ij,ij->i", A, A)[:, None]
        d += B_sq
        np.maximum(d, 0.0, out=d)  # rounding can leave a tiny negative square for equal rows
        np.sqrt(d, out=d)
    d *= _SQRT5
    out = d * (amplitude / 3.0)  # in place from here
    out += amplitude
    out *= d
    out += amplitude
    np.negative(d, out=d)
    out *= np.exp(d, out=d)
    return out


def neg_log_marginal_likelihood(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Minus the log marginal likelihood of ``y`` and its gradient in ``theta``.

    ``theta`` is the log of (amplitude, one length scale per column of ``X``, noise), in the order
    of scikit-learn's ``ConstantKernel * Matern(nu=2.5) + WhiteKernel``; the kernel's diagonal
    gets scikit-learn's ``alpha`` (1e-10) too. The values of
    ``GaussianProcessRegressor.log_marginal_likelihood(theta, eval_gradient=True)``, negated (tested),
    with the length-scale gradient as ``sum_ij S_ij (a_i - a_j)^2 = 2 a^2 . S1 - 2 a . S a`` per
    column instead of an (n, n, d) tensor. A kernel matrix that is not positive definite gives
    ``inf`` and a zero gradient, as scikit-learn does.
    """
    theta = np.asarray(theta, dtype=float)
    n = len(y)
    amp, noise = math.exp(theta[0]), math.exp(theta[-1])
    Xs = X / np.exp(theta[1:-1])
    s = cdist(Xs, Xs) * _SQRT5
    e = np.exp(-s)
    signal = amp * (1.0 + s + s * s / 3.0) * e
    K = signal.copy()
    K[np.diag_indices(n)] += noise + _ALPHA
    try:
        L = cholesky_lower(K)
    except LinAlgError:
        return math.inf, np.zeros_like(theta)
    alpha = cho_solve((L, True), y, check_finite=False)
    lml = -0.5 * float(y @ alpha) - float(np.log(np.diag(L)).sum()) - 0.5 * n * math.log(2.0 * math.pi)
    W = np.outer(alpha, alpha) - cho_solve((L, True), np.eye(n), check_finite=False)
    S = W * (amp * 5.0 / 3.0) * (1.0 + s) * e  # W times d k / d (scaled squared distance), up to the factor below
    grad = np.empty_like(theta)
    grad[0] = 0.5 * float((W * signal).sum())
    grad[1:-1] = (Xs * Xs).T @ S.sum(axis=1) - np.einsum("id,id->d", Xs, S @ Xs)
    grad[-1] = 0.5 * noise * float(np.trace(W))
    return -lml, -grad


class GP:
    """Exact GP regression on a bounded, stable subset; see the module docstring for the bounds."""

    def __init__(self, n_dims: int, *, max_points: int = 500, max_fit_points: int = 200, refit_growth: float = 1.25):
        if max_points < 2 or max_fit_points < 2:
            raise ValueError(f"max_points and max_fit_points must be at least 2, got {max_points}, {max_fit_points}")
        if not refit_growth >= 1.0:
            raise ValueError(f"refit_growth must be >= 1, got {refit_growth!r}")
        self.max_points = int(max_points)
        self.max_fit_points = int(max_fit_points)
        self.refit_growth = float(refit_growth)
        self.slack = max(1, self.max_points // 10)
        self.kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            np.ones(n_dims), (1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-2, (1e-6, 1.0))
        self.n_hyperparameter_fits = 0
        self.n_rebuilds = 0
        self._fitted_at = 0  # observations at the last hyperparameter fit
        self._seen = 0  # observations the subset was chosen from (rows past it are new)
        self.X = np.empty((0, n_dims))
        self.subset = np.empty(0, dtype=int)
        self._ys = np.empty(0)
        self._zy = np.empty(0)  # L^-1 y over the subset
        self._z1 = np.empty(0)  # L^-1 1
        self._factor = GrowingFactor(np.empty((0, 0)), self.max_points)
        self._buffer: np.ndarray | None = None  # the factor's, kept across rebuilds (see GrowingFactor)
        self._alpha: np.ndarray | None = None  # see bound
        self._believed: tuple[np.ndarray, ...] | None = None  # see _pending_factor
        self._Xs_sq = np.empty(0)  # squared norms of the scaled subset rows (for _matern52's product form)
        self._set_kernel_constants()

    def _set_kernel_constants(self) -> None:
        signal = self.kernel.k1
        self._amplitude = float(signal.k1.constant_value)
        self._length = np.asarray(signal.k2.length_scale, dtype=float)
        self._noise = float(self.kernel.k2.noise_level)

    @_one_blas_thread
    def fit(self, X: np.ndarray, y: np.ndarray, order: np.ndarray, rng: np.random.Generator) -> "GP":
        """Condition on ``(X, y)``; ``order`` ranks the rows best first (for the subset), or is a
        function that returns that ranking, called only when a subset is chosen.

        Rows seen by an earlier call are expected to keep their index (observations appended);
        if a row in the subset changed, the subset is rebuilt.
        """
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        n = len(y)
        if n < 2:
            raise ValueError(f"GP: needs at least two observations, got {n}")
        resolved = None

        def ranking():  # the order, computed at most once per call and only when used
            nonlocal resolved
            if resolved is None:
                resolved = order() if callable(order) else order
            return resolved

        rebuild = False
        if self.n_hyperparameter_fits == 0 or n >= math.ceil(self._fitted_at * self.refit_growth):
            fit_idx = select_subset(ranking(), self.max_fit_points, rng)
            self._fit_hyperparameters(X[fit_idx], y[fit_idx], rng)
            self._fitted_at = n
            rebuild = True
        new = np.arange(self._seen, n) if n >= self._seen else np.empty(0, dtype=int)
        if (rebuild or n < self._seen or len(self.subset) + len(new) > self.max_points
                or not np.array_equal(X[self.subset], self.X)):
            self._rebuild(X, ranking(), rng)
        elif len(new):
            self._append(X, new)
        self._seen = n
        ys = y[self.subset]
        held = len(self._zy)
        if held and np.array_equal(ys[:held], self._ys[:held]):  # the targets held so far did not change
            if held < len(ys):
                self._zy = self._factor.extend(self._zy, ys)
        else:
            self._zy = self._factor.solve(ys)
        self._ys = ys
        self._y_mean = float(ys.mean())
        std = float(ys.std())
        self._y_std = std if std > 1e-12 else 1.0
        # the posterior mean is V^T L^-1 (y - mean) + mean with V = L^-1 K_s (see predict)
        self._w = self._zy - self._y_mean * self._z1
        self._alpha = None  # K^-1 (y - mean), for bound(); solved when first needed
        self._believed = None  # see _pending_factor
        return self

    def _rebuild(self, X: np.ndarray, order: np.ndarray, rng: np.random.Generator) -> None:
        n = len(X)
        size = n if n <= self.max_points else self.max_points - self.slack
        self.subset = select_subset(order, size, rng)
        self.X = X[self.subset]
        self._Xs = self.X / self._length
        self._Xs_sq = np.einsum("ij,ij->i", self._Xs, self._Xs)
        K = _matern52(self._Xs, self._Xs, self._amplitude)
        K[np.diag_indices_from(K)] += self._noise + _JITTER
        self._factor = GrowingFactor(cholesky_lower(K), self.max_points)
        self._z1 = self._factor.solve(np.ones(len(K)))
        self._zy = np.empty(0)
        self.n_rebuilds += 1

    def _append(self, X: np.ndarray, new: np.ndarray) -> None:
        Xn = X[new]
        Xns = Xn / self._length
        K_nn = _matern52(Xns, Xns, self._amplitude)
        K_nn[np.diag_indices_from(K_nn)] += self._noise + _JITTER
        if self._buffer is None:  # one buffer for the life of the GP: no fresh pages per rebuild
            self._buffer = np.empty((self.max_points, self.max_points), order="F")
        self._factor.append(_matern52(self._Xs, Xns, self._amplitude), K_nn, self._buffer)
        self._z1 = self._factor.extend(self._z1, np.ones(self._factor.n))
        self.subset = np.concatenate([self.subset, new])
        self.X = np.vstack([self.X, Xn])
        self._Xs = np.vstack([self._Xs, Xns])
        self._Xs_sq = np.concatenate([self._Xs_sq, np.einsum("ij,ij->i", Xns, Xns)])

    def _fit_hyperparameters(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        rng.integers(2**31)  # the seed scikit-learn's fit drew (no restarts, unused): the stream stays the same
        std = float(y.std())
        z = (y - y.mean()) / (std if std != 0.0 else 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # exp overflow at extreme trial steps
            res = minimize(neg_log_marginal_likelihood, self.kernel.theta, args=(X, z), method="L-BFGS-B", jac=True,
                           bounds=self.kernel.bounds)
        self.kernel = self.kernel.clone_with_theta(res.x)
        self._set_kernel_constants()
        self.n_hyperparameter_fits += 1

    @property
    def noise(self) -> float:
        return self._noise

    @property
    def scale(self) -> float:
        """The targets' standard deviation over the subset (the unit of the posterior's spread)."""
        return self._y_std

    @_one_blas_thread
    def bound(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The posterior mean at the rows of ``Xc`` and an upper bound on the posterior standard
        deviation, without a triangular solve: O(n) per row instead of O(n^2).

        The mean is ``K_c K^-1 (y - mean) + mean``, the same number as :meth:`predict`'s up to
        rounding (another order of operations). Conditioning on more observations never increases
        the variance, so the variance given the single observation with the largest kernel value,
        ``amplitude - max_i k_i^2 / (amplitude + noise)``, bounds the posterior variance given the
        whole subset, and given running jobs too, from above. Also returns the kernel rows of
        ``Xc`` against the subset, which :meth:`predict` takes as ``kernel`` (the same numbers).
        """
        if self._alpha is None:
            self._alpha = self._factor.solve(self._w, transposed=True)
        Xcs = np.asarray(Xc, dtype=float) / self._length
        K = _matern52(Xcs, self._Xs, self._amplitude, B_sq=self._Xs_sq)
        mean = K @ self._alpha + self._y_mean
        nearest = K.max(axis=1) if K.shape[1] else np.zeros(len(K))
        var = self._amplitude - nearest * nearest / (self._amplitude + self._noise + _JITTER)
        return mean, np.sqrt(np.maximum(var, 0.0)) * self._y_std, K

    def _pending_factor(self, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Xps, Vp, Lpp)`` of running jobs ``pending``: their scaled rows, ``L^-1 K_sp`` and the
        Cholesky factor of their covariance given the subset (plus noise). Kept until the next
        :meth:`fit` or other rows, so that a decision scoring its candidates in several rounds with
        the same running jobs solves for them once (the same numbers)."""
        pending = np.asarray(pending, dtype=float)
        held = self._believed
        if held is not None and held[0].shape == pending.shape and np.array_equal(held[0], pending):
            return held[1], held[2], held[3]
        Xps = pending / self._length
        Vp = self._factor.solve(_matern52(Xps, self._Xs, self._amplitude).T)
        Cpp = _matern52(Xps, Xps, self._amplitude) - Vp.T @ Vp
        Cpp[np.diag_indices_from(Cpp)] += self._noise + _JITTER
        Lpp = cholesky_lower(Cpp)
        self._believed = (pending.copy(), Xps, Vp, Lpp)
        return Xps, Vp, Lpp

    @_one_blas_thread
    def predict(self, Xc: np.ndarray, pending: np.ndarray | None = None, *,
                kernel: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at the rows of ``Xc``,
        with the rows of ``pending`` believed observed at their posterior mean; ``kernel``: the
        kernel rows of ``Xc`` that :meth:`bound` returned, if at hand."""
        Xcs = np.asarray(Xc, dtype=float) / self._length
        K = _matern52(Xcs, self._Xs, self._amplitude, B_sq=self._Xs_sq) if kernel is None else kernel
        V = self._factor.solve(K.T)
        mean = self._w @ V
        var = self._amplitude - np.einsum("ij,ij->j", V, V)
        if pending is not None and len(pending):
            Xps, Vp, Lpp = self._pending_factor(pending)
            Ccp = _matern52(Xcs, Xps, self._amplitude) - V.T @ Vp
            W = solve_lower(Lpp, Ccp.T)
            var = var - np.einsum("ij,ij->j", W, W)
        std = np.sqrt(np.maximum(var, 0.0))
        return mean + self._y_mean, std * self._y_std
