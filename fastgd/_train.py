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
    check_X_y,
)
from .exceptions import ConvergenceWarning, DivergenceError

__all__ = ["FitResult", "fit"]

_LOSS_CODES = _engine.LOSS_CODES
_SQUARED_ERROR = _LOSS_CODES["squared_error"]

# A mean squared residual this many times that of the starting point (or of
# the zero model, if larger) is taken as divergence.
_DIVERGENCE_FACTOR = 1e8

# Defaults of every training parameter; SGDRegressor's signature repeats them.
DEFAULTS = {
    "loss": "squared_error",
    "batch_size": 1,
    "learning_rate": "constant",
    "eta0": 0.01,
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
    "batch_size": [IsNone(), Interval("int", 1, None)],
    "learning_rate": [Options("constant")],
    "eta0": [Interval("real", 0.0, None, closed="neither")],
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


def train(X, y, params, coef=None, intercept=None, on_stop=None):
    """Fit validated data; return the finished ``Run``.

    ``params`` holds every key of ``DEFAULTS`` and has passed
    ``check_params``; ``X`` and ``y`` come from ``check_X_y``. ``coef`` and
    ``intercept`` (float64, shapes (n_features,) and (1,)) are the starting
    point, zeros when omitted. ``on_stop(run)`` is called however training
    ends, Ctrl-C and divergence included, before any error propagates.

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
    if coef is None:
        coef = np.zeros(n_features, dtype=np.float64)
        intercept = np.zeros(1, dtype=np.float64)

    run = Run(X, y, coef, intercept, params)
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

    def __init__(self, X, y, coef, intercept, params):
        self.X = X
        self.y = y
        self.coef = coef
        self.intercept = intercept
        self.loss_code = _LOSS_CODES[params["loss"]]
        self.eta = float(params["eta0"])
        self.fit_intercept = bool(params["fit_intercept"])
        self.max_iter = params["max_iter"]
        self.tol = params["tol"]
        self.n_iter_no_change = params["n_iter_no_change"]
        self.shuffle = params["shuffle"]
        self.verbose = params["verbose"]
        n_samples = X.shape[0]
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

        # The loss of the zero model is mean(y**2); a warm start, and the
        # first l2_norm epoch (which scales its steps by the RMS), need the
        # loss at the actual starting point: one extra pass over X.
        zero_model_mse = float(np.einsum("i,i->", y, y, dtype=np.float64)) / n_samples
        start_mse = zero_model_mse
        warm = np.any(self.coef != 0) or self.intercept[0] != 0
        if warm or (not self.full_batch and self.loss_code != _SQUARED_ERROR):
            sums = _engine.residual_sums(X, y, self.coef, self.intercept, sums)
            start_mse = sums[n_features + 1] / n_samples
        norm = np.sqrt(start_mse)
        reference = max(start_mse, zero_model_mse, np.finfo(np.float64).tiny)
        best = np.inf
        stalled = 0
        start = time.perf_counter()
        for epoch in range(1, self.max_iter + 1):
            saved = (self.coef.copy(), self.intercept.copy())
            if self.full_batch:
                mse = _engine.full_batch_step(
                    X,
                    y,
                    self.coef,
                    self.intercept,
                    self.eta,
                    self.loss_code,
                    self.fit_intercept,
                    sums,
                )
                steps = 1
                # the loss belongs to the coefficients before the step
                finite = saved
            else:
                sum_r2, steps = _engine.stochastic_epoch(
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
                )
                mse = sum_r2 / n_samples
                norm = np.sqrt(mse)
                finite = (self.coef, self.intercept)
            self.steps += steps

            if not self._healthy(mse, reference):
                self._diverge(epoch, mse, finite if np.isfinite(mse) else saved)
                return
            self.epoch = epoch
            loss = mse if self.loss_code == _SQUARED_ERROR else np.sqrt(mse)
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
                    self.converged = True
                    break

        if not (np.all(np.isfinite(self.coef)) and np.isfinite(self.intercept[0])):
            # the very last step overflowed; its loss was never measured
            self._diverge(self.epoch, np.inf, saved)

    def _healthy(self, mse, reference):
        if not np.isfinite(mse) or mse > _DIVERGENCE_FACTOR * reference:
            return False
        return bool(np.all(np.isfinite(self.coef)))

    def _diverge(self, epoch, mse, keep):
        coef, intercept = keep
        self.coef = coef.copy()
        self.intercept = intercept.copy()
        self.diverged = DivergenceError(
            f"The fit diverged in epoch {epoch}: the mean squared residual "
            f"reached {mse:.3g}. The step size eta0={self.eta:g} is too large "
            "for this data; lower it (by a factor of 10 or more) or "
            "standardise the features. The coefficients of the last finite "
            "epoch were kept.",
            epoch=epoch,
            loss=float(mse),
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


def fit(X, y, **params) -> FitResult:
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
    run = train(X, y, params)
    return FitResult(
        coef=run.coef.astype(X.dtype),
        intercept=float(run.intercept[0]),
        n_iter=run.epoch,
        t=run.steps,
        loss_curve=np.asarray(run.losses, dtype=np.float64),
        converged=run.converged,
    )
