"""The Python layer right above the kernels: one step or one epoch a call.

These functions pick the kernel for the problem's size and turn the kernels'
raw sums into updates. They are internal (the estimator and the benchmark
suites call them); state lives in the caller's arrays:

- ``coef``: float64 array of shape (n_features,), updated in place;
- ``intercept``: float64 array of shape (1,), updated in place;
- ``X``: C-contiguous float32 or float64 array, ``y`` of the same dtype.
"""

import numpy as np

from . import _kernels

# Below this many elements of X a full pass runs on one thread: starting
# the threads costs more than the second core saves (measured crossover on
# the 2-core development machine: about 1,000 rows of 32 float64 features).
PARALLEL_MIN_ELEMENTS = 1 << 15

LOSS_CODES = {
    "squared_error": _kernels.LOSS_SQUARED_ERROR,
    "l2_norm": _kernels.LOSS_L2_NORM,
}


def residual_sums(X, y, coef, intercept, out=None):
    """Return ``[X^T r, sum(r), sum(r**2)]`` (float64) in one pass over X."""
    if out is None:
        out = np.empty(X.shape[1] + 2, dtype=np.float64)
    if X.size >= PARALLEL_MIN_ELEMENTS:
        _kernels._residual_sums(X, y, coef, intercept, out)
    else:
        _kernels._residual_sums_serial(X, y, coef, intercept, out)
    return out


def full_batch_step(X, y, coef, intercept, eta, loss_code, fit_intercept, out=None):
    """Take one full-batch gradient step; return the mean squared residual.

    The loss returned is that of the coefficients the step started from (the
    same pass over X yields it). ``out`` is optional float64 scratch of shape
    (n_features + 2,).
    """
    n_samples, n_features = X.shape
    sums = residual_sums(X, y, coef, intercept, out)
    mse = sums[n_features + 1] / n_samples
    scale = eta * _kernels._gradient_scale(loss_code, n_samples, np.sqrt(mse))
    coef -= scale * sums[:n_features]
    if fit_intercept:
        intercept -= scale * sums[n_features]
    return mse


def stochastic_epoch(
    X, y, coef, intercept, order, batch_size, eta, loss_code, norm, fit_intercept
):
    """Run one epoch of mini-batch SGD; return ``(sum of r**2, steps)``.

    Rows are visited in the order of the index array ``order`` (intp), in
    batches of ``batch_size``; a slice of a permutation runs part of an
    epoch. ``norm`` scales the ``"l2_norm"`` steps (see
    ``SGDRegressor``); it is ignored for the squared error.
    """
    return _kernels._minibatch_epoch(
        X,
        y,
        coef,
        intercept,
        order,
        batch_size,
        float(eta),
        loss_code,
        float(norm),
        bool(fit_intercept),
    )


def shuffle(order, seed):
    """Shuffle the intp index array ``order`` in place from integer ``seed``."""
    _kernels._shuffle(order, seed)
