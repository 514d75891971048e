"""The Python layer right above the kernels: one step or one epoch a call.

These functions pick the kernel for the problem's size and turn the kernels'
raw sums into updates. They are internal (the estimator and the benchmark
suites call them); state lives in the caller's arrays. One target:

- ``coef``: float64 array of shape (n_features,), updated in place;
- ``intercept``: float64 array of shape (1,), updated in place;
- ``X``: C-contiguous float32 or float64 array, ``y`` of the same dtype and
  shape (n_samples,);
- ``weights``: None, or float64 sample weights of shape (n_samples,).

Several targets, fitted in the same passes over X: ``y`` of shape
(n_samples, n_targets), ``coef`` C-contiguous of shape (n_targets,
n_features), ``intercept`` of shape (n_targets,); sums, losses, norms and
averages then gain a leading target axis where they have one per target.
"""

import operator

import numba
import numpy as np

from . import _kernels

# Below this many elements of X a full pass runs on one thread: starting
# the threads costs more than the second core saves (measured crossover on
# the 2-core development machine: about 1,000 rows of 32 float64 features).
PARALLEL_MIN_ELEMENTS = 1 << 15

# A one-target mini-batch epoch shares each batch between two threads
# (``_kernels._minibatch_epoch_pair``) when two threads are allowed and
# - X is too large for the caches: its rows then come from memory, and a
#   second core doubles the memory requests in flight. PAIR_MIN_BYTES of X,
#   or PAIR_MIN_BYTES_BIG_BATCH when a batch holds PAIR_BIG_BATCH_BYTES of
#   X, whose halves are long enough to be worth sharing from the L3 cache;
# - a batch holds at least PAIR_MIN_BATCH rows and PAIR_MIN_BATCH_BYTES of
#   X: the threads meet once per batch, which costs about what reading a
#   few rows does;
# - the epoch visits at least PAIR_MIN_VISITS rows, enough to pay for
#   waking the second thread.
# Measured on the 2-core development machine, shuffled, one thread's epoch
# time over two threads': 1,000,000 x 32 float64, 0.54 at b = 2, 0.87 at
# b = 4, 1.23 at b = 8, 1.4 at b = 16; 1.0-1.7 from 100,000 rows up at b
# in {8, 32, 256}; at 20,000 and 50,000 rows 0.7 and 0.9 at b = 8, 0.87
# and 0.98 at b = 64, 1.3-1.4 at b = 128, 1.3-1.6 at b = 256; 1,000,000 x 8,
# below 1 for b up to 16, 1.2-1.4 from 32.
PAIR_MIN_BYTES = 1 << 25
PAIR_MIN_BYTES_BIG_BATCH = 1 << 22
PAIR_BIG_BATCH_BYTES = 1 << 15
PAIR_MIN_BATCH = 8
PAIR_MIN_BATCH_BYTES = 2048
PAIR_MIN_VISITS = 1 << 14
# How long a thread of a shared epoch waits for the other's sums before it
# finishes the epoch alone: about 2 ms plus 250 ns per row of a batch (a
# poll takes about half a nanosecond here), against a few microseconds for
# a normal wait at b = 32 and a time slice per batch for two threads taking
# turns on one busy core. With about 150 us, 3 of 40 epochs on an idle
# machine (1,000,000 x 32, b = 32 and 256) were finished alone after a
# stall of the virtual machine, each sending the next epochs to one thread;
# with about 2 ms, none were.
PAIR_PATIENCE_POLLS = 1 << 22
PAIR_PATIENCE_POLLS_PER_ROW = 512

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
_NO_AVERAGE = np.empty((0, 0), dtype=np.float64)


def _columns(y, coef):
    """Views of ``y`` and ``coef`` with a target axis: (n, k) and (k, d)."""
    if y.ndim == 1:
        return y.reshape(-1, 1), coef.reshape(1, -1)
    return y, coef


def residual_sums(
    X, y, coef, intercept, out=None, *, loss_code=0, epsilon=0.0, weights=None
):
    """Return ``[X^T g, sum(g), sum(loss)]`` (float64) in one pass over X.

    ``g`` is each row's loss slope, the residual ``X coef + b - y`` itself
    for the squared error and the L2 norm (whose summed loss is then the
    sum of squared residuals); rows are weighted by ``weights`` if given.
    Shape (n_features + 2,) for one target, (n_targets, n_features + 2) for
    a 2-D ``y``: one row per target.
    """
    targets, coefs = _columns(y, coef)
    shape = (X.shape[1] + 2,) if y.ndim == 1 else (y.shape[1], X.shape[1] + 2)
    if out is None:
        out = np.empty(shape, dtype=np.float64)
    weights = _NO_WEIGHTS if weights is None else weights
    kernel = (
        _kernels._residual_sums
        if X.size >= PARALLEL_MIN_ELEMENTS
        else _kernels._residual_sums_serial
    )
    kernel(
        X, targets, weights, coefs, intercept, loss_code, float(epsilon),
        out.reshape(targets.shape[1], X.shape[1] + 2),
    )
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
    eta_for_rms=None,
):
    """Take one full-batch gradient step; return the mean loss before it.

    The loss returned is the (weighted) mean of the rows' losses at the
    coefficients the step started from (the same pass over X yields it);
    for the L2 norm it is the mean squared residual, whose root is the loss.
    With several targets it is an array, one mean loss per target, and
    every target takes its own step. ``total_weight`` is the sum of
    ``weights`` (``n_samples`` without). With a penalty ``alpha``,
    ``l1_ratio`` the update is the proximal-gradient step of
    ``_kernels._update`` (L2 part in the step, L1 part by soft-thresholding).
    ``out`` is optional float64 scratch shaped as ``residual_sums`` returns.
    ``eta_for_rms``, a function of a target's RMS residual at the starting
    coefficients, gives that target's step in place of ``eta`` (the
    ``"auto"`` step of the L2 norm, whose curvature grows as the RMS falls).
    """
    n_samples, n_features = X.shape
    sums = residual_sums(
        X, y, coef, intercept, out, loss_code=loss_code, epsilon=epsilon,
        weights=weights,
    )
    _, coefs = _columns(y, coef)
    rows = sums.reshape(coefs.shape[0], n_features + 2)
    total = float(n_samples if total_weight is None else total_weight)
    mean_loss = rows[:, n_features + 1] / total
    for t in range(coefs.shape[0]):
        rms = np.sqrt(mean_loss[t])
        step = eta if eta_for_rms is None else eta_for_rms(rms)
        scale = step * _kernels._gradient_scale(loss_code, total, rms)
        _kernels._update(
            coefs[t], rows[t, :n_features], scale, float(step), float(alpha),
            float(l1_ratio),
        )
        if fit_intercept:
            intercept[t] -= scale * rows[t, n_features]
    return mean_loss[0] if y.ndim == 1 else mean_loss


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
    schedule) and ``t_start`` the number of updates made before this epoch.
    ``norm`` (one per target, or one for all) scales the ``"l2_norm"``
    steps (see ``SGDRegressor``); other losses ignore it. ``average``
    (float64, shaped like ``[coef, intercept]``: (n_features + 1,) or
    (n_targets, n_features + 1)), when given, is the running mean of
    ``[coef, intercept]`` over the updates after the first
    ``average_start``. With several targets the sum of losses is an array,
    one sum per target.
    """
    settings = np.empty(_kernels.N_SETTINGS, dtype=np.float64)
    settings[_kernels.ETA0] = eta
    settings[_kernels.POWER_T] = power_t
    settings[_kernels.OPTIMAL_T0] = optimal_t0
    settings[_kernels.ALPHA] = alpha
    settings[_kernels.L1_RATIO] = l1_ratio
    settings[_kernels.EPSILON] = epsilon
    settings[_kernels.WEIGHT_MEAN] = weight_mean
    settings[_kernels.AVERAGE_START] = average_start
    n_targets = 1 if y.ndim == 1 else y.shape[1]
    norms = np.empty(n_targets, dtype=np.float64)
    norms[:] = norm
    weights = _NO_WEIGHTS if weights is None else weights
    args = (
        X, y, weights, coef, intercept, order, batch_size, loss_code, schedule,
        settings, norms, bool(fit_intercept), t_start,
    )
    if y.ndim == 1:
        average = _NO_WEIGHTS if average is None else average
        if epoch_takes_two_threads(X, y, order.shape[0], batch_size) and _pair_now():
            result = np.empty(3, dtype=np.float64)
            patience = PAIR_PATIENCE_POLLS + PAIR_PATIENCE_POLLS_PER_ROW * batch_size
            paired = _kernels._minibatch_epoch_pair(
                *args, average, *_pair_buffers(X.shape[1]), patience, result
            )
            _pair_went(paired and result[2] == 0)
            if paired:
                return float(result[0]), int(result[1])
        return _kernels._minibatch_epoch(*args, average)
    losses = np.empty(n_targets, dtype=np.float64)
    _, steps = _kernels._minibatch_epoch_targets(
        *args, _NO_AVERAGE if average is None else average, losses
    )
    return losses, steps


def epoch_takes_two_threads(X, y, n_visits, batch_size):
    """Whether ``stochastic_epoch`` will share each batch between two threads.

    Decided from the sizes alone (see ``PAIR_MIN_BYTES``) and the current
    Numba thread count; one target only.
    """
    batch_bytes = batch_size * X.shape[1] * X.itemsize
    large = X.nbytes >= PAIR_MIN_BYTES or (
        batch_bytes >= PAIR_BIG_BATCH_BYTES and X.nbytes >= PAIR_MIN_BYTES_BIG_BATCH
    )
    return (
        y.ndim == 1
        and large
        and batch_size >= PAIR_MIN_BATCH
        and batch_bytes >= PAIR_MIN_BATCH_BYTES
        and n_visits >= PAIR_MIN_VISITS
        and numba.get_num_threads() >= 2
    )


# Epochs to run on one thread after two threads failed to share one (the
# second never started, or one finished alone): on a machine busy with
# other work the pairing then mostly costs its waiting. Only speed depends
# on it, never the result.
PAIR_REST_EPOCHS = 8
_pair_rest = 0


def _pair_now():
    """Whether to try two threads for this epoch (see ``PAIR_REST_EPOCHS``)."""
    global _pair_rest
    if _pair_rest > 0:
        _pair_rest -= 1
        return False
    return True


def _pair_went(well):
    """Record whether two threads shared the last epoch to its end."""
    global _pair_rest
    _pair_rest = 0 if well else PAIR_REST_EPOCHS


def _aligned_zeros(shape):
    """float64 zeros whose first element starts a 64-byte cache line."""
    size = int(np.prod(shape))
    raw = np.zeros(size + 8, dtype=np.float64)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip:skip + size].reshape(shape)


def warm_up_pair_epoch(dtype=np.float64):
    """Compile (or load from Numba's cache) the two-thread epoch for ``dtype``.

    The size rules give it only to large X, so warm-ups on small data miss
    it and a first large fit would compile it (tens of seconds) inside its
    timing. This runs it once on a tiny problem with the rules lifted, and
    leaves them, and the rest after a failed pairing, as they were.
    """
    global PAIR_MIN_BYTES, PAIR_MIN_VISITS, PAIR_MIN_BATCH_BYTES, _pair_rest
    saved = PAIR_MIN_BYTES, PAIR_MIN_VISITS, PAIR_MIN_BATCH_BYTES, _pair_rest
    PAIR_MIN_BYTES = PAIR_MIN_VISITS = PAIR_MIN_BATCH_BYTES = _pair_rest = 0
    try:
        X = np.ones((64, 2), dtype=dtype)
        y = np.ones(64, dtype=dtype)
        order = np.arange(64, dtype=np.intp)
        stochastic_epoch(
            X, y, np.zeros(2), np.zeros(1), order, PAIR_MIN_BATCH, 1e-3, 0, 1.0, True
        )
    finally:
        PAIR_MIN_BYTES, PAIR_MIN_VISITS, PAIR_MIN_BATCH_BYTES, _pair_rest = saved


def _pair_buffers(n_features):
    """``mail``, ``scratch`` and ``control`` for ``_minibatch_epoch_pair``."""
    n_lines = -(-(n_features + 2) // _kernels.MAIL_SLOTS)
    return (
        _aligned_zeros((2, 2, n_lines * 8)),
        _aligned_zeros((2, 6, n_lines * 8)),
        np.zeros(16, dtype=np.int64),
    )


def fold_average(average, coef, intercept, k):
    """Fold update ``k`` (counted from the start of averaging) into ``average``."""
    if coef.ndim == 1:
        _kernels._average(average, coef, intercept[0], float(k))
        return
    for t in range(coef.shape[0]):
        _kernels._average(average[t], coef[t], intercept[t], float(k))


def step_size(schedule, eta0, t, power_t=0.25, optimal_t0=0.0):
    """Step size of update ``t`` (from 1) under ``schedule`` (a code)."""
    return _kernels._step_size(
        schedule, float(eta0), float(t), float(power_t), float(optimal_t0)
    )


def shuffle(order, seed):
    """Shuffle the intp index array ``order`` in place from integer ``seed``."""
    _kernels._shuffle(order, seed)


def draw_order(order, seed, rows=None, with_replacement=False, block_size=1):
    """Fill ``order`` with a random visiting order of ``rows`` (default all).

    A permutation of the candidate rows; with ``block_size > 1`` a random
    order of runs of ``block_size`` neighbouring candidates; or with
    replacement independent uniform draws. It depends on ``seed``, ``rows``
    and ``block_size`` alone.
    """
    rows = _NO_ROWS if rows is None else rows
    # A run longer than the order is the whole order; clamping here also
    # keeps a huge ``block_size`` (up to any Python int) from overflowing
    # the kernel's int64 arithmetic.
    block_size = min(operator.index(block_size), max(order.shape[0], 1))
    if block_size > 1 and not with_replacement:
        _kernels._block_order(order, rows, seed, block_size)
    else:
        _kernels._draw_order(order, rows, seed, bool(with_replacement))


_NO_ROWS = np.empty(0, dtype=np.intp)
