"""The training loop shared by ``SGDRegressor`` and ``fastgd.fit``.

This module imports numpy and fastgd's kernels only, so ``fastgd.fit`` runs
without loading scikit-learn.
"""

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import _engine
from ._threads import thread_limit
from ._validation import (
    Boolean,
    Interval,
    IsNone,
    Options,
    RandomState,
    check_params,
    check_sample_weight,
    check_X_y,
)
from .exceptions import ConvergenceWarning, DivergenceError

__all__ = ["FitResult", "fit"]

_LOSS_CODES = _engine.LOSS_CODES
_SQUARED_ERROR = _LOSS_CODES["squared_error"]
_L2_NORM = _LOSS_CODES["l2_norm"]

# A mean loss this many times that of the starting point (or of the zero
# model, if larger) is taken as divergence.
_DIVERGENCE_FACTOR = 1e8

# learning_rate="adaptive" divides the step by this after n_iter_no_change
# epochs without improvement, and stops once it falls below _ADAPTIVE_MIN.
_ADAPTIVE_FACTOR = 5.0
_ADAPTIVE_MIN = 1e-6

# The L1 share of each penalty.
_L1_SHARE = {None: 0.0, "l2": 0.0, "l1": 1.0}

# Defaults of every training parameter; SGDRegressor's signature repeats them.
DEFAULTS = {
    "loss": "squared_error",
    "penalty": None,
    "alpha": 0.0001,
    "l1_ratio": 0.15,
    "epsilon": 0.1,
    "batch_size": 1,
    "learning_rate": "constant",
    "eta0": 0.01,
    "power_t": 0.25,
    "max_iter": 1000,
    "tol": 1e-3,
    "n_iter_no_change": 5,
    "shuffle": True,
    "random_state": None,
    "fit_intercept": True,
    "verbose": 0,
    "warm_start": False,
    "n_jobs": None,
}

PARAMETER_CONSTRAINTS = {
    "loss": [Options(*_LOSS_CODES)],
    "penalty": [IsNone(), Options("l2", "l1", "elasticnet")],
    "alpha": [Interval("real", 0.0, None)],
    "l1_ratio": [Interval("real", 0.0, 1.0)],
    "epsilon": [Interval("real", 0.0, None)],
    "batch_size": [IsNone(), Interval("int", 1, None)],
    "learning_rate": [Options(*_engine.SCHEDULE_CODES)],
    "eta0": [Interval("real", 0.0, None, closed="neither")],
    "power_t": [Interval("real", None, None)],
    "max_iter": [Interval("int", 1, None)],
    "tol": [IsNone(), Interval("real", 0.0, None)],
    "n_iter_no_change": [Interval("int", 1, None)],
    "shuffle": [Boolean()],
    "random_state": [RandomState()],
    "fit_intercept": [Boolean()],
    "verbose": [Interval("int", 0, None)],
    "warm_start": [Boolean()],
    "n_jobs": [IsNone(), Interval("int", 1, None)],
}


def train(X, y, params, coef=None, intercept=None, on_stop=None, weights=None):
    """Fit validated data; return the finished ``Run``.

    ``params`` holds every key of ``DEFAULTS`` and has passed
    ``check_params``; ``X`` and ``y`` come from ``check_X_y``. ``coef`` and
    ``intercept`` (float64, shapes (n_features,) and (1,)) are the starting
    point, zeros when omitted. ``weights`` are checked sample weights
    (float64, shape (n_samples,)) or None. ``on_stop(run)`` is called
    however training ends, Ctrl-C and divergence included, before any error
    propagates.

    Raises ``DivergenceError`` if the loss diverged and warns
    ``ConvergenceWarning`` if ``max_iter`` came before ``tol``.
    """
    n_samples, n_features = X.shape
    batch_size = params["batch_size"]
    if batch_size is not None and batch_size > n_samples:
        raise ValueError(
            f"Invalid value for parameter 'batch_size': {batch_size}. "
            f"It must not exceed n_samples={n_samples}; use None for full "
            "batch."
        )
    if params["learning_rate"] == "optimal" and params["alpha"] == 0:
        raise ValueError(
            "learning_rate='optimal' takes its step size from alpha, which "
            "must then be > 0."
        )
    if coef is None:
        coef = np.zeros(n_features, dtype=np.float64)
        intercept = np.zeros(1, dtype=np.float64)

    run = Run(X, y, coef, intercept, params, weights)
    with thread_limit(params["n_jobs"]):
        try:
            run.train()
        finally:
            if on_stop is not None:
                on_stop(run)

    if run.diverged is not None:
        raise run.diverged
    if params["tol"] is not None and not run.converged:
        warnings.warn(
            f"Stopped at max_iter={params['max_iter']} epochs before the loss "
            f"stopped improving by tol={params['tol']}; raise max_iter or eta0, "
            "or loosen tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return run


class Run:
    """State of one call to ``fit``: the epoch loop around the kernels."""

    def __init__(self, X, y, coef, intercept, params, weights=None):
        self.X = X
        self.y = y
        self.coef = coef
        self.intercept = intercept
        self.weights = weights
        n_samples = X.shape[0]
        self.total_weight = n_samples if weights is None else float(weights.sum())
        self.loss_code = _LOSS_CODES[params["loss"]]
        self.epsilon = float(params["epsilon"])
        self.schedule = _engine.SCHEDULE_CODES[params["learning_rate"]]
        self.adaptive = params["learning_rate"] == "adaptive"
        self.eta0 = float(params["eta0"])
        self.eta = self.eta0  # the step of the current epoch (adaptive)
        self.power_t = float(params["power_t"])
        penalty = params["penalty"]
        self.alpha = 0.0 if penalty is None else float(params["alpha"])
        self.l1_ratio = _L1_SHARE.get(penalty, float(params["l1_ratio"]))
        # scikit-learn's start of the "optimal" schedule, from alpha alone
        alpha = float(params["alpha"])
        self.optimal_t0 = 0.0 if alpha == 0 else np.sqrt(np.sqrt(alpha)) / alpha
        self.fit_intercept = bool(params["fit_intercept"])
        self.max_iter = params["max_iter"]
        self.tol = params["tol"]
        self.n_iter_no_change = params["n_iter_no_change"]
        self.shuffle = params["shuffle"]
        self.verbose = params["verbose"]
        b = params["batch_size"]
        self.full_batch = b is None or b >= n_samples
        self.batch_size = n_samples if self.full_batch else int(b)
        self.seeds = _seed_stream(params["random_state"])

        self.epoch = 0
        self.steps = 0
        self.losses = []
        self.converged = False
        self.diverged = None

    def train(self):
        """Run epochs until ``tol`` is met, ``max_iter`` or divergence."""
        orders = None
        if not self.full_batch:
            orders = _Orders(self.X.shape[0], self.seeds if self.shuffle else None)
        try:
            self._epochs(orders)
        finally:
            if orders is not None:
                orders.close()

    def _epochs(self, orders):
        X, y = self.X, self.y
        n_samples, n_features = X.shape
        sums = np.empty(n_features + 2, dtype=np.float64)
        fixed = dict(epsilon=self.epsilon, weights=self.weights)

        # The zero model's loss needs y alone; a warm start, and the first
        # l2_norm epoch (which scales its steps by the RMS), need the loss at
        # the actual starting point: one extra pass over X.
        zero_model_loss = self._zero_model_loss()
        start_loss = zero_model_loss
        warm = np.any(self.coef != 0) or self.intercept[0] != 0
        if warm or (not self.full_batch and self.loss_code == _L2_NORM):
            sums = _engine.residual_sums(
                X, y, self.coef, self.intercept, sums, loss_code=self.loss_code,
                **fixed,
            )
            start_loss = sums[n_features + 1] / self.total_weight
        norm = np.sqrt(start_loss)
        reference = max(start_loss, zero_model_loss, np.finfo(np.float64).tiny)
        best = np.inf
        stalled = 0
        start = time.perf_counter()
        for epoch in range(1, self.max_iter + 1):
            saved = (self.coef.copy(), self.intercept.copy())
            if self.full_batch:
                eta = _engine.step_size(
                    self.schedule, self.eta, self.steps + 1, self.power_t,
                    self.optimal_t0, self.alpha,
                )
                mean_loss = _engine.full_batch_step(
                    X,
                    y,
                    self.coef,
                    self.intercept,
                    eta,
                    self.loss_code,
                    self.fit_intercept,
                    sums,
                    total_weight=self.total_weight,
                    alpha=self.alpha,
                    l1_ratio=self.l1_ratio,
                    **fixed,
                )
                steps = 1
                # the loss belongs to the coefficients before the step
                finite = saved
            else:
                sum_loss, steps = _engine.stochastic_epoch(
                    X,
                    y,
                    self.coef,
                    self.intercept,
                    orders.next(),
                    self.batch_size,
                    self.eta,
                    self.loss_code,
                    norm,
                    self.fit_intercept,
                    weight_mean=self.total_weight / n_samples,
                    schedule=self.schedule,
                    power_t=self.power_t,
                    optimal_t0=self.optimal_t0,
                    alpha=self.alpha,
                    l1_ratio=self.l1_ratio,
                    t_start=self.steps,
                    **fixed,
                )
                mean_loss = sum_loss / self.total_weight
                norm = np.sqrt(mean_loss)
                finite = (self.coef, self.intercept)
            self.steps += steps

            if not self._healthy(mean_loss, reference):
                self._diverge(epoch, mean_loss, finite if np.isfinite(mean_loss) else saved)
                return
            self.epoch = epoch
            loss = np.sqrt(mean_loss) if self.loss_code == _L2_NORM else mean_loss
            self.losses.append(loss)
            if self.verbose:
                elapsed = time.perf_counter() - start
                line = (
                    f"-- Epoch {epoch}: loss {loss:.6g}, step size {self.eta:g}, "
                    f"updates {self.steps}, elapsed {elapsed:.3f} s"
                )
                print(line)  # verbose output

            if self.tol is not None:
                stalled = stalled + 1 if loss > best - self.tol else 0
                best = min(best, loss)
                if stalled >= self.n_iter_no_change:
                    if self.adaptive and self.eta / _ADAPTIVE_FACTOR >= _ADAPTIVE_MIN:
                        self.eta /= _ADAPTIVE_FACTOR
                        stalled = 0
                        continue
                    self.converged = True
                    break

        if not (np.all(np.isfinite(self.coef)) and np.isfinite(self.intercept[0])):
            # the very last step overflowed; its loss was never measured
            self._diverge(self.epoch, np.inf, saved)

    def _zero_model_loss(self):
        """Mean loss of predicting 0 for every row (needs y only)."""
        y, w = self.y, self.weights
        if self.loss_code in (_SQUARED_ERROR, _L2_NORM):
            if w is None:
                total = np.einsum("i,i->", y, y, dtype=np.float64)
            else:
                total = np.einsum("i,i,i->", w, y, y, dtype=np.float64)
            return float(total) / self.total_weight
        size = np.abs(y.astype(np.float64))
        eps = self.epsilon
        if self.loss_code == _LOSS_CODES["huber"]:
            rows = np.where(size <= eps, 0.5 * size * size, eps * (size - 0.5 * eps))
        else:
            rows = np.maximum(size - eps, 0.0)
            if self.loss_code == _LOSS_CODES["squared_epsilon_insensitive"]:
                rows = rows * rows
        total = rows.sum() if w is None else rows @ w
        return float(total) / self.total_weight

    def _healthy(self, loss, reference):
        if not np.isfinite(loss) or loss > _DIVERGENCE_FACTOR * reference:
            return False
        return bool(np.all(np.isfinite(self.coef)))

    def _diverge(self, epoch, loss, keep):
        coef, intercept = keep
        self.coef = coef.copy()
        self.intercept = intercept.copy()
        self.diverged = DivergenceError(
            f"The fit diverged in epoch {epoch}: the mean training loss "
            f"reached {loss:.3g}. The step size eta0={self.eta0:g} is too large "
            "for this data; lower it (by a factor of 10 or more) or "
            "standardise the features. The coefficients of the last finite "
            "epoch were kept.",
            epoch=epoch,
            loss=float(loss),
        )


class _Orders:
    """The row order of each stochastic epoch, one per call of ``next``.

    Without shuffling it is always ``0, 1, ..., n - 1``. With shuffling two
    index buffers alternate: while an epoch runs on one, a worker thread
    shuffles the other for the next epoch (the kernels release the GIL), so
    the shuffle (about 8 ms per million rows) hides behind the epoch. Epoch
    k's permutation is drawn with the k-th seed of ``seeds`` from what its
    buffer held before, so results do not depend on timing or on whether
    the worker is used (below ``OVERLAP_MIN_ROWS`` the shuffle runs inline,
    where a thread hand-off would cost more than it hides).
    """

    OVERLAP_MIN_ROWS = 1 << 16

    def __init__(self, n_samples, seeds):
        self.seeds = seeds
        count = 1 if seeds is None else 2
        self.buffers = [np.arange(n_samples, dtype=np.intp) for _ in range(count)]
        self.turn = 0
        self.pool = None
        self.pending = None
        if seeds is not None:
            if n_samples >= self.OVERLAP_MIN_ROWS:
                self.pool = ThreadPoolExecutor(1, thread_name_prefix="fastgd")
            self._prepare(0)

    def _prepare(self, turn):
        buffer, seed = self.buffers[turn], next(self.seeds)
        if self.pool is None:
            _engine.shuffle(buffer, seed)
        else:
            self.pending = self.pool.submit(_engine.shuffle, buffer, seed)

    def next(self):
        """Return the order for the coming epoch; start preparing the next."""
        if self.seeds is None:
            return self.buffers[0]
        if self.pending is not None:
            self.pending.result()
        current = self.buffers[self.turn]
        self.turn ^= 1
        self._prepare(self.turn)
        return current

    def close(self):
        """Wait for a shuffle still running and stop the worker."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _seed_stream(random_state):
    """Yield one integer seed per epoch for the shuffling kernel."""
    if isinstance(random_state, np.random.Generator):
        rng = random_state
    elif isinstance(random_state, np.random.RandomState):
        rng = np.random.default_rng(random_state.randint(0, 2**32 - 1))
    else:
        rng = np.random.default_rng(random_state)
    while True:
        yield int(rng.integers(0, 2**63 - 1))


@dataclass(frozen=True)
class FitResult:
    """What ``fastgd.fit`` returns.

    Attributes
    ----------
    coef : ndarray of shape (n_features,)
        Coefficients, in the dtype of ``X``.
    intercept : float
        Intercept.
    n_iter : int
        Epochs run.
    t : int
        Update steps taken.
    loss_curve : ndarray of shape (n_iter,)
        Training loss per epoch (see ``SGDRegressor.loss_curve_``).
    converged : bool
        Whether the ``tol`` criterion stopped the fit before ``max_iter``.
    """

    coef: np.ndarray
    intercept: float
    n_iter: int
    t: int
    loss_curve: np.ndarray
    converged: bool


def fit(X, y, sample_weight=None, **params) -> FitResult:
    """Fit a linear model by gradient descent without keeping an estimator.

    The functional twin of ``SGDRegressor(**params).fit(X, y)``: the same
    parameters, checks, kernels and results, without scikit-learn's estimator
    machinery (which is not even imported).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,)
        Targets.
    sample_weight : array-like of shape (n_samples,), float or None, default=None
        Weight of each row (see ``SGDRegressor.fit``).
    **params
        Any parameter of ``SGDRegressor`` except ``warm_start`` (``loss``,
        ``batch_size``, ``eta0``, ``max_iter``, ``tol``, ``random_state``,
        ...).

    Returns
    -------
    result : FitResult
        Coefficients, intercept, epochs, steps, loss curve and whether the
        ``tol`` criterion was met.

    Raises
    ------
    TypeError
        For a parameter name that ``SGDRegressor`` does not have.
    ValueError
        For an invalid parameter value or invalid data.
    DivergenceError
        If the loss diverges.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> result = fastgd.fit(X, 2 * X[:, 0] + 1, batch_size=None, eta0=0.1,
    ...                     max_iter=2000, tol=None)
    >>> result.coef.round(6), round(result.intercept, 6)
    (array([2.]), 1.0)
    """
    unknown = sorted(set(params) - set(DEFAULTS) | ({"warm_start"} & set(params)))
    if unknown:
        raise TypeError(
            f"fit() got unexpected parameter(s) {unknown}; it takes the "
            "parameters of SGDRegressor except warm_start."
        )
    params = {**DEFAULTS, **params}
    check_params(params, PARAMETER_CONSTRAINTS)
    X, y = check_X_y(X, y)
    weights = check_sample_weight(sample_weight, len(X))
    run = train(X, y, params, weights=weights)
    return FitResult(
        coef=run.coef.astype(X.dtype),
        intercept=float(run.intercept[0]),
        n_iter=run.epoch,
        t=run.steps,
        loss_curve=np.asarray(run.losses, dtype=np.float64),
        converged=run.converged,
    )
