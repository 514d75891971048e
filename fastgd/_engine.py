"""The Python layer right above the kernels: one step or one epoch a call.

These functions pick the kernel for the problem's size and turn the kernels'
raw sums into updates. They are internal (the estimator and the benchmark
suites call them); state lives in the caller's arrays:

- ``coef``: float64 array of shape (n_features,), updated in place;
- ``intercept``: float64 array of shape (1,), updated in place;
- ``X``: C-contiguous float32 or float64 array, ``y`` of the same dtype;
- ``weights``: None, or float64 sample weights of shape (n_samples,).
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
    "huber": _kernels.LOSS_HUBER,
    "epsilon_insensitive": _kernels.LOSS_EPSILON_INSENSITIVE,
    "squared_epsilon_insensitive": _kernels.LOSS_SQUARED_EPSILON_INSENSITIVE,
}

SCHEDULE_CODES = {
    "constant": _kernels.SCHEDULE_CONSTANT,
    "adaptive": _kernels.SCHEDULE_CONSTANT,  # constant within an epoch
    "invscaling": _kernels.SCHEDULE_INVSCALING,
    "optimal": _kernels.SCHEDULE_OPTIMAL,
}

_NO_WEIGHTS = np.empty(0, dtype=np.float64)


def residual_sums(
    X, y, coef, intercept, out=None, *, loss_code=0, epsilon=0.0, weights=None
):
    """Return ``[X^T g, sum(g), sum(loss)]`` (float64) in one pass over X.

    ``g`` is each row's loss slope, the residual ``X coef + b - y`` itself
    for the squared error and the L2 norm (whose summed loss is then the
    sum of squared residuals); rows are weighted by ``weights`` if given.
    """
    if out is None:
        out = np.empty(X.shape[1] + 2, dtype=np.float64)
    weights = _NO_WEIGHTS if weights is None else weights
    kernel = (
        _kernels._residual_sums
        if X.size >= PARALLEL_MIN_ELEMENTS
        else _kernels._residual_sums_serial
    )
    kernel(X, y, weights, coef, intercept, loss_code, float(epsilon), out)
    return out


def full_batch_step(
    X,
    y,
    coef,
    intercept,
    eta,
    loss_code,
    fit_intercept,
    out=None,
    *,
    epsilon=0.0,
    weights=None,
    total_weight=None,
    alpha=0.0,
    l1_ratio=0.0,
):
    """Take one full-batch gradient step; return the mean loss before it.

    The loss returned is the (weighted) mean of the rows' losses at the
    coefficients the step started from (the same pass over X yields it);
    for the L2 norm it is the mean squared residual, whose root is the loss.
    ``total_weight`` is the sum of ``weights`` (``n_samples`` without).
    With a penalty ``alpha``, ``l1_ratio`` the update is the proximal-gradient
    step of ``_kernels._update`` (L2 part in the step, L1 part by
    soft-thresholding). ``out`` is optional float64 scratch of shape
    (n_features + 2,).
    """
    n_samples, n_features = X.shape
    sums = residual_sums(
        X, y, coef, intercept, out, loss_code=loss_code, epsilon=epsilon,
        weights=weights,
    )
    total = float(n_samples if total_weight is None else total_weight)
    mean_loss = sums[n_features + 1] / total
    scale = eta * _kernels._gradient_scale(loss_code, total, np.sqrt(mean_loss))
    _kernels._update(
        coef, sums[:n_features], scale, float(eta), float(alpha), float(l1_ratio)
    )
    if fit_intercept:
        intercept -= scale * sums[n_features]
    return mean_loss


def stochastic_epoch(
    X,
    y,
    coef,
    intercept,
    order,
    batch_size,
    eta,
    loss_code,
    norm,
    fit_intercept,
    *,
    epsilon=0.0,
    weights=None,
    weight_mean=1.0,
    schedule=_kernels.SCHEDULE_CONSTANT,
    power_t=0.25,
    optimal_t0=0.0,
    alpha=0.0,
    l1_ratio=0.0,
    t_start=0,
    average=None,
    average_start=0,
):
    """Run one epoch of mini-batch SGD; return ``(sum of losses, steps)``.

    Rows are visited in the order of the index array ``order`` (intp), in
    batches of ``batch_size``; a slice of a permutation runs part of an
    epoch. ``eta`` is the schedule's ``eta0`` (``1 / alpha`` for the optimal
    schedule) and ``t_start`` the number of updates made before this epoch. ``norm`` scales the ``"l2_norm"`` steps
    (see ``SGDRegressor``); other losses ignore it. ``average`` (float64,
    n_features + 1), when given, is the running mean of ``[coef,
    intercept]`` over the updates after the first ``average_start``.
    """
    settings = np.empty(_kernels.N_SETTINGS, dtype=np.float64)
    settings[_kernels.ETA0] = eta
    settings[_kernels.POWER_T] = power_t
    settings[_kernels.OPTIMAL_T0] = optimal_t0
    settings[_kernels.ALPHA] = alpha
    settings[_kernels.L1_RATIO] = l1_ratio
    settings[_kernels.EPSILON] = epsilon
    settings[_kernels.NORM] = norm
    settings[_kernels.WEIGHT_MEAN] = weight_mean
    settings[_kernels.AVERAGE_START] = average_start
    return _kernels._minibatch_epoch(
        X,
        y,
        _NO_WEIGHTS if weights is None else weights,
        coef,
        intercept,
        order,
        batch_size,
        loss_code,
        schedule,
        settings,
        bool(fit_intercept),
        t_start,
        _NO_WEIGHTS if average is None else average,
    )


def fold_average(average, coef, intercept, k):
    """Fold update ``k`` (counted from the start of averaging) into ``average``."""
    _kernels._average(average, coef, intercept, float(k))


def step_size(schedule, eta0, t, power_t=0.25, optimal_t0=0.0):
    """Step size of update ``t`` (from 1) under ``schedule`` (a code)."""
    return _kernels._step_size(
        schedule, float(eta0), float(t), float(power_t), float(optimal_t0)
    )


def shuffle(order, seed):
    """Shuffle the intp index array ``order`` in place from integer ``seed``."""
    _kernels._shuffle(order, seed)


def draw_order(order, seed, rows=None, with_replacement=False):
    """Fill ``order`` with a random visiting order of ``rows`` (default all).

    A permutation of the candidate rows, or with replacement independent
    uniform draws; it depends on ``seed`` and ``rows`` alone.
    """
    rows = _NO_ROWS if rows is None else rows
    _kernels._draw_order(order, rows, seed, bool(with_replacement))


_NO_ROWS = np.empty(0, dtype=np.intp)
