"""The gradient-descent regressor and its functional entry point."""

import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._threads import thread_limit
from ._validation import (
    Boolean,
    Interval,
    IsNone,
    Options,
    RandomState,
    check_fit_data,
    check_params,
    check_predict_data,
)
from .exceptions import ConvergenceWarning, DivergenceError

__all__ = ["SGDRegressor", "FitResult", "fit"]

_LOSS_CODES = _engine.LOSS_CODES
_SQUARED_ERROR = _LOSS_CODES["squared_error"]

# A mean squared residual this many times that of the starting point (or of
# predicting the mean, if larger) is taken as divergence.
_DIVERGENCE_FACTOR = 1e8

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


class SGDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression by full-batch, stochastic or mini-batch descent.

    One estimator covers the family: ``batch_size=None`` is full-batch
    gradient descent (every step uses all rows), ``batch_size=1`` is
    stochastic gradient descent (every step uses one row), and any other
    ``batch_size`` is mini-batch SGD. Parameter names and meanings follow
    ``sklearn.linear_model.SGDRegressor`` where it has the same option, so the
    import can be swapped.

    Parameters
    ----------
    loss : {"squared_error", "l2_norm"}, default="squared_error"
        ``"squared_error"`` minimises the mean squared residual
        ``mean((y - X coef - b)**2)``. ``"l2_norm"`` minimises its square root,
        the root mean square of the residual; both have the same minimiser but
        different steps (see Notes).
    batch_size : int or None, default=1
        Rows per update step: ``None`` for full batch, 1 for plain SGD, any
        other integer in [1, n_samples] for mini-batches. A ``batch_size``
        equal to ``n_samples`` runs full-batch descent.
    learning_rate : {"constant"}, default="constant"
        Step-size schedule. Every step uses ``eta0``.
    eta0 : float, default=0.01
        Step size; must be > 0.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the data). For full batch an
        epoch is one step.
    tol : float or None, default=1e-3
        Stop once the epoch's training loss has failed to improve on the best
        so far by at least ``tol`` for ``n_iter_no_change`` consecutive
        epochs. ``None`` runs exactly ``max_iter`` epochs.
    n_iter_no_change : int, default=5
        Epochs without improvement tolerated before stopping.
    shuffle : bool, default=True
        Reshuffle the row order every epoch (stochastic modes only). The rows
        are visited through a permuted index array; X is never reordered.
    random_state : int, numpy Generator or RandomState, or None, default=None
        Seed of the row shuffling. A fixed value gives identical coefficients
        on every run and at every thread count.
    fit_intercept : bool, default=True
        Fit an intercept. It is handled inside the kernels; no column of ones
        is added to X.
    verbose : int, default=0
        Print one line per epoch (epoch, loss, step size, elapsed time) when
        above 0.
    warm_start : bool, default=False
        Start from the previous fit's ``coef_`` and ``intercept_``.
    n_jobs : int or None, default=None
        Threads for the parallel kernels; ``None`` keeps Numba's current
        setting. Results do not depend on it.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients, in the dtype of the training data.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    n_iter_ : int
        Epochs run by the last call to ``fit``.
    t_ : int
        Update steps taken by the last call to ``fit`` (one per batch). Unlike
        scikit-learn's attribute of the same name it has no offset of 1.
    loss_curve_ : ndarray of shape (n_iter_,)
        Training loss per epoch: for full batch, the loss at the start of the
        epoch's step; for stochastic modes, the mean over the epoch of each
        row's loss at the coefficients in force when its batch was used.
        ``"l2_norm"`` records the root of that mean.
    n_features_in_ : int
        Number of features seen during fit.

    Raises
    ------
    DivergenceError
        From ``fit``, when the loss becomes non-finite or grows past
        ``1e8`` times its starting value. The estimator then holds the
        coefficients of the last epoch that was still finite.

    Notes
    -----
    With residual ``r = X coef + b - y`` over a batch ``B`` of ``m`` rows, one
    step is

    - squared error: ``coef <- coef - eta0 * (2 / m) * X_B^T r_B``;
    - L2 norm: ``coef <- coef - eta0 * X_B^T r_B / (m * s)``,

    and the same with ``sum(r_B)`` in place of ``X_B^T r_B`` for the
    intercept. In full-batch mode ``s`` is the root mean square residual at
    the current coefficients, ``sqrt(mean(r**2))``, which makes the step the
    exact gradient of the RMS. When the residual is exactly zero the RMS is
    at its minimum and not differentiable; fastgd takes the zero subgradient
    and the step leaves the coefficients unchanged. Near such a point the RMS
    gradient does not shrink (it has length of order one however small the
    residual), so constant-step descent on data that a linear model fits
    exactly ends up oscillating at a distance of order ``eta0``; use
    ``"squared_error"`` there.

    For mini-batches the batch's own RMS would be a biased choice of ``s``:
    the norm does not separate over rows, ``E[1 / s_B] != 1 / s``, and with
    ``batch_size=1`` the step would become ``sign(r_i) x_i``, the gradient of
    the mean *absolute* residual, whose minimiser is a different (median)
    regression. fastgd therefore scales every step of an epoch by one fixed
    ``s``: the full-data RMS at the initial coefficients for the first epoch
    (one extra pass over X), then the RMS accumulated during the previous
    epoch. The step is then an unbiased estimate of the full-batch L2-norm
    gradient taken with that ``s``, and its fixed points are those of the
    squared error.

    fastgd's squared loss is the plain mean squared residual; scikit-learn's
    carries a factor 1/2, so its gradient is half of fastgd's and an
    ``eta0`` carried over from scikit-learn should be halved.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import SGDRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    >>> model = SGDRegressor(batch_size=None, eta0=0.2, tol=None, max_iter=300)
    >>> model.fit(X, y).coef_.round(3)
    array([ 1. , -2. ,  0.5])
    >>> round(model.intercept_, 3)
    3.0
    """

    def __init__(
        self,
        *,
        loss="squared_error",
        batch_size=1,
        learning_rate="constant",
        eta0=0.01,
        max_iter=1000,
        tol=1e-3,
        n_iter_no_change=5,
        shuffle=True,
        random_state=None,
        fit_intercept=True,
        verbose=0,
        warm_start=False,
        n_jobs=None,
    ):
        self.loss = loss
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.shuffle = shuffle
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Fit the linear model by gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. float32 and float64 are used as given (never
            cast to the other); other numeric types become float64.
        y : array-like of shape (n_samples,)
            Targets, converted to the dtype of ``X``.

        Returns
        -------
        self : SGDRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            If a parameter or the data is invalid (NaN or infinity, text,
            empty input, mismatched lengths, ``batch_size`` above
            ``n_samples``).
        DivergenceError
            If the loss diverges; the estimator keeps the last finite
            coefficients.
        """
        check_params(self.get_params(), PARAMETER_CONSTRAINTS)
        warm = self.warm_start and hasattr(self, "coef_")
        X, y = check_fit_data(self, X, y)
        n_samples, n_features = X.shape
        if self.batch_size is not None and self.batch_size > n_samples:
            raise ValueError(
                f"Invalid value for parameter 'batch_size': {self.batch_size}. "
                f"It must not exceed n_samples={n_samples}; use None for full "
                "batch."
            )

        # float64 state, whatever the data's dtype
        if warm:
            coef = np.array(self.coef_, dtype=np.float64)
            intercept = np.array([self.intercept_], dtype=np.float64)
        else:
            coef = np.zeros(n_features, dtype=np.float64)
            intercept = np.zeros(1, dtype=np.float64)

        with thread_limit(self.n_jobs):
            run = _Run(self, X, y, coef, intercept)
            try:
                run.train()
            finally:
                self._store(run, X.dtype)

        if run.diverged is not None:
            raise run.diverged
        if self.tol is not None and not run.converged:
            warnings.warn(
                f"Stopped at max_iter={self.max_iter} epochs before the loss "
                f"stopped improving by tol={self.tol}; raise max_iter or eta0, "
                "or loosen tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _store(self, run, dtype):
        """Copy the state of a finished (or interrupted) run to attributes."""
        self.coef_ = run.coef.astype(dtype)
        self.intercept_ = float(run.intercept[0])
        self.n_iter_ = run.epoch
        self.t_ = run.steps
        self.loss_curve_ = np.asarray(run.losses, dtype=np.float64)
        self._converged = run.converged

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``X @ coef_ + intercept_``, in the dtype of ``X``.
        """
        check_is_fitted(self)
        X = check_predict_data(self, X)
        return X @ self.coef_.astype(X.dtype) + X.dtype.type(self.intercept_)


class _Run:
    """State of one call to ``fit``: the epoch loop around the kernels."""

    def __init__(self, estimator, X, y, coef, intercept):
        self.X = X
        self.y = y
        self.coef = coef
        self.intercept = intercept
        self.loss_code = _LOSS_CODES[estimator.loss]
        self.eta = float(estimator.eta0)
        self.fit_intercept = bool(estimator.fit_intercept)
        self.max_iter = estimator.max_iter
        self.tol = estimator.tol
        self.n_iter_no_change = estimator.n_iter_no_change
        self.shuffle = estimator.shuffle
        self.verbose = estimator.verbose
        n_samples = X.shape[0]
        b = estimator.batch_size
        self.full_batch = b is None or b >= n_samples
        self.batch_size = n_samples if self.full_batch else int(b)
        self.seeds = _seed_stream(estimator.random_state)

        self.epoch = 0
        self.steps = 0
        self.losses = []
        self.converged = False
        self.diverged = None

    def train(self):
        """Run epochs until ``tol`` is met, ``max_iter`` or divergence."""
        X, y = self.X, self.y
        n_samples, n_features = X.shape
        sums = np.empty(n_features + 2, dtype=np.float64)
        if not self.full_batch:
            order = np.arange(n_samples, dtype=np.intp)
            norm = 0.0
            if self.loss_code != _SQUARED_ERROR:
                sums = _engine.residual_sums(X, y, self.coef, self.intercept, sums)
                norm = np.sqrt(sums[n_features + 1] / n_samples)

        reference = self._reference_mse()
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
                if self.shuffle:
                    _engine.shuffle(order, next(self.seeds))
                sum_r2, steps = _engine.stochastic_epoch(
                    X,
                    y,
                    self.coef,
                    self.intercept,
                    order,
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

    def _reference_mse(self):
        """Scale against which a growing loss counts as divergence."""
        y = self.y.astype(np.float64, copy=False)
        spread = np.var(y) if self.fit_intercept else np.mean(y * y)
        return max(spread, np.finfo(np.float64).tiny)

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

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,)
        Targets.
    **params
        Any parameter of ``SGDRegressor`` (``loss``, ``batch_size``,
        ``eta0``, ``max_iter``, ``tol``, ``random_state``, ...).

    Returns
    -------
    result : FitResult
        Coefficients, intercept, epochs, steps, loss curve and whether the
        ``tol`` criterion was met.

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
    model = SGDRegressor(**params).fit(X, y)
    return FitResult(
        coef=model.coef_,
        intercept=model.intercept_,
        n_iter=model.n_iter_,
        t=model.t_,
        loss_curve=model.loss_curve_,
        converged=model._converged,
    )
