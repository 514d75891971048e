"""Numba kernels: the inner loops of fastgd.

Every function here trusts its inputs. The Python layer (``_sgd.py``) has
already checked shapes and dtypes, made ``X`` C-contiguous, and turned every
string option into an integer code. Kernels never allocate per row, never
print and never draw random numbers from a hidden state. The epoch and
shuffle kernels release the GIL, so the next epoch's permutation can be
drawn on another thread while an epoch runs.

Conventions shared by all kernels:

- ``X`` is a C-contiguous float32 or float64 array of shape
  (n_samples, n_features) and ``y`` an array of the same dtype of shape
  (n_samples, n_targets): each column is a target, all fitted in the same
  pass over X (a single target is a column-vector view).
- ``coef`` is a C-contiguous float64 array of shape (n_targets, n_features)
  and ``intercept`` a float64 array of shape (n_targets,). The coefficients
  are kept in float64 whatever the data's dtype; float32 data is read as
  float32 and every product is accumulated in float64.
- The residual of row i for target t is
  ``r_it = X[i] @ coef[t] + intercept[t] - y[i, t]`` (the negative of
  ``y - X beta``), so the gradient of the mean squared residual is
  ``(2 / n) X^T r``. Targets never mix: n_targets problems share the reads
  of X and nothing else.
"""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# Reassociation lets LLVM vectorise the row dot product. ``nnan`` and
# ``ninf`` are left out on purpose: divergence must stay visible as inf/NaN.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

# A fixed number of row chunks for the parallel passes. Each chunk sums into
# its own buffer row and the rows are combined in chunk order, so the result
# does not depend on how many threads ran the chunks.
N_CHUNKS = 64

# Rows per block in a full pass: every target is fitted to a block of rows
# before the next block is read, so X comes from memory once per pass
# whatever the number of targets (64 rows of 32 float64 features: 16 KiB,
# well inside L1).
ROW_BLOCK = 64

LOSS_SQUARED_ERROR = 0
LOSS_L2_NORM = 1
LOSS_HUBER = 2
LOSS_EPSILON_INSENSITIVE = 3
LOSS_SQUARED_EPSILON_INSENSITIVE = 4

SCHEDULE_CONSTANT = 0
SCHEDULE_INVSCALING = 1
SCHEDULE_OPTIMAL = 2

# Layout of the ``settings`` array that the stochastic kernel takes.
ETA0 = 0
POWER_T = 1
OPTIMAL_T0 = 2
ALPHA = 3
L1_RATIO = 4
EPSILON = 5
WEIGHT_MEAN = 6
AVERAGE_START = 7
N_SETTINGS = 8

# How many rows ahead, in the visiting order, the stochastic kernels ask the
# processor to fetch, and into which cache. A shuffled epoch is bound by
# memory latency: without this each row's load waits ~100 ns for DRAM.
# Measured on the development machines (2 cores; 1,000,000 x 32 float64,
# b = 1 to 256): on an Intel Xeon, 24 rows ahead into L2 (locality 2,
# ``prefetcht1``) took a shuffled epoch from 62 to 42 ms against 12 rows
# into L1; 20 to 32 rows measured alike, 12 to 16 clearly slower. Asking
# for L1 fills the few L1 miss buffers; L2 has more.
PREFETCH_DISTANCE = 24
PREFETCH_LOCALITY = 2
_CACHE_LINE = 64


@intrinsic
def _prefetch(typingctx, array, index, byte_offset):
    """Hint the processor to load ``array[index]`` + ``byte_offset`` bytes.

    Emits LLVM's ``prefetch`` (read, locality ``PREFETCH_LOCALITY``). It never
    faults and changes no value, so it cannot change results.
    """
    sig = types.void(array, index, byte_offset)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        indices = [args[1]] + [zero] * (array_type.ndim - 1)
        item = cgutils.get_item_pointer(context, builder, array_type, ary, indices)
        byte_ptr = ir.IntType(8).as_pointer()
        address = builder.gep(builder.bitcast(item, byte_ptr), [args[2]])
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
            "llvm.prefetch.p0",
        )
        builder.call(function, [address, i32(0), i32(PREFETCH_LOCALITY), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


def _element_pointer(context, builder, array_type, array, index):
    """LLVM pointer to ``array[index]`` of a 1-D array, for the intrinsics."""
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


@intrinsic
def _load_acquire(typingctx, array, index):
    """``array[index]`` (an 8-byte int or float), loaded with acquire ordering.

    The load is atomic, so the compiler cannot hoist it out of a spin loop,
    and no later memory access moves before it: what the other thread wrote
    before its ``_store_release`` of this value is visible after it.
    """
    sig = array.dtype(array, index)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], *args)
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, array, index, value):
    """``array[index] = value`` (8 bytes), stored with release ordering."""
    sig = types.void(array, index, array.dtype)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], *args[:2])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _fetch_add(typingctx, array, index, value):
    """Atomically add ``value`` to ``array[index]`` (int64); return the old value."""
    sig = types.int64(array, index, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], *args[:2])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@njit(inline="always")
def _prefetch_row(X, y, i):
    """Ask for every cache line of row ``i`` of ``X``, and for ``y[i, 0]``.

    The row need not start on a cache line (NumPy aligns large arrays to
    16 bytes, so a 256-byte row spans five lines): the last byte is asked
    for separately.
    """
    row_bytes = X.shape[1] * X.itemsize
    for offset in range(0, row_bytes, _CACHE_LINE):
        _prefetch(X, i, offset)
    _prefetch(X, i, row_bytes - 1)
    _prefetch(y, i, 0)


@njit(inline="always")
def _loss_and_slope(loss_code, r, epsilon):
    """Per-row loss and its slope in the prediction, at residual ``r``.

    ``r`` is prediction minus target. The slope omits the constant factor
    that ``_gradient_scale`` applies: for the squared error (``r**2``) it is
    ``r``, not ``2 r``; for the L2 norm the row's value is ``r**2`` and its
    slope ``r``, the norm being applied per step. The other losses are
    scikit-learn's: Huber (quadratic within ``epsilon``, linear outside),
    epsilon-insensitive and squared epsilon-insensitive.
    """
    if loss_code <= LOSS_L2_NORM:
        return r * r, r
    size = abs(r)
    sign = 1.0 if r > 0.0 else -1.0
    if loss_code == LOSS_HUBER:
        if size <= epsilon:
            return 0.5 * r * r, r
        return epsilon * (size - 0.5 * epsilon), sign * epsilon
    if size <= epsilon:
        return 0.0, 0.0
    excess = size - epsilon
    if loss_code == LOSS_EPSILON_INSENSITIVE:
        return excess, sign
    return excess * excess, 2.0 * sign * excess


def _leading_rows(X, y, weights, w, b, t, first, last, loss_code, epsilon, acc):
    """Rows ``first`` to ``last`` of target ``t`` into ``acc``, as many as
    the data type's fast path takes; returns ``(next row, sum(g), sum(loss))``.

    The caller's one-row-at-a-time loop adds the rows from ``next row`` on.
    Only float32 X has a fast path (``_four_rows_at_a_time``): a float32
    pass is limited by arithmetic, and working on four rows at a time
    measured about 1.25x faster there. On float64, where the pass waits for
    memory, the same loop was about 6% slower, so float64 takes no rows
    here. Chosen when the caller is compiled, so a float64 kernel does not
    even compile the four-row loop. This plain version, which takes no
    rows, is what every other dtype compiles and what runs with
    ``NUMBA_DISABLE_JIT``.
    """
    return first, 0.0, 0.0


@overload(_leading_rows, inline="always", jit_options={"fastmath": _FASTMATH})
def _leading_rows_for(X, y, weights, w, b, t, first, last, loss_code, epsilon, acc):
    if X.dtype == types.float32:
        return _four_rows_at_a_time
    return _leading_rows


def _four_rows_at_a_time(X, y, weights, w, b, t, first, last, loss_code, epsilon, acc):
    """The row loop of ``_chunk_residual_sums``, four rows at a time.

    The same sums, with four independent dot products in flight and one
    load and store of each accumulator per four rows; stops before the
    last ``(last - first) % 4`` rows.
    """
    weighted = weights.shape[0] > 0
    sum_g = 0.0
    sum_loss = 0.0
    i = first
    while i + 4 <= last:
        r0 = b - y[i, t]
        r1 = b - y[i + 1, t]
        r2 = b - y[i + 2, t]
        r3 = b - y[i + 3, t]
        for j in range(X.shape[1]):
            wj = w[j]
            r0 += X[i, j] * wj
            r1 += X[i + 1, j] * wj
            r2 += X[i + 2, j] * wj
            r3 += X[i + 3, j] * wj
        v0, g0 = _loss_and_slope(loss_code, r0, epsilon)
        v1, g1 = _loss_and_slope(loss_code, r1, epsilon)
        v2, g2 = _loss_and_slope(loss_code, r2, epsilon)
        v3, g3 = _loss_and_slope(loss_code, r3, epsilon)
        if weighted:
            v0 *= weights[i]
            g0 *= weights[i]
            v1 *= weights[i + 1]
            g1 *= weights[i + 1]
            v2 *= weights[i + 2]
            g2 *= weights[i + 2]
            v3 *= weights[i + 3]
            g3 *= weights[i + 3]
        for j in range(X.shape[1]):
            acc[j] += (
                g0 * X[i, j] + g1 * X[i + 1, j] + g2 * X[i + 2, j] + g3 * X[i + 3, j]
            )
        sum_g += (g0 + g1) + (g2 + g3)
        sum_loss += (v0 + v1) + (v2 + v3)
        i += 4
    return i, sum_g, sum_loss


@njit(inline="always", fastmath=_FASTMATH)
def _chunk_residual_sums(X, y, weights, coef, intercept, loss_code, epsilon, c, partial):
    """Add chunk ``c``'s rows into ``partial[c]`` (shared by both passes).

    Row ``i``'s loss slope ``g`` for target ``t`` (times the row's weight) is
    added into ``partial[c, t, :-2]`` (``X^T g``) while the row is still in
    cache; ``partial[c, t, -2:]`` receive ``sum(g)`` and the sum of the
    rows' (weighted) losses. An empty ``weights`` means every row weighs 1.
    """
    n_samples, n_features = X.shape
    n_targets = y.shape[1]
    step = (n_samples + N_CHUNKS - 1) // N_CHUNKS
    weighted = weights.shape[0] > 0
    stop = min((c + 1) * step, n_samples)
    for first in range(c * step, stop, ROW_BLOCK):
        last = min(first + ROW_BLOCK, stop)
        for t in range(n_targets):
            acc = partial[c, t]
            b = intercept[t]
            w = coef[t]
            rest, sum_g, sum_loss = _leading_rows(
                X, y, weights, w, b, t, first, last, loss_code, epsilon, acc
            )
            for i in range(rest, last):
                r = b - y[i, t]
                for j in range(n_features):
                    r += X[i, j] * w[j]
                value, g = _loss_and_slope(loss_code, r, epsilon)
                if weighted:
                    value *= weights[i]
                    g *= weights[i]
                for j in range(n_features):
                    acc[j] += g * X[i, j]
                sum_g += g
                sum_loss += value
            acc[n_features] += sum_g
            acc[n_features + 1] += sum_loss


@njit(inline="always")
def _combine_chunks(partial, out):
    """Sum ``partial`` over its first axis into ``out``, in chunk order."""
    for t in range(partial.shape[1]):
        for k in range(partial.shape[2]):
            total = partial[0, t, k]
            for c in range(1, partial.shape[0]):
                total += partial[c, t, k]
            out[t, k] = total


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def _residual_sums(X, y, weights, coef, intercept, loss_code, epsilon, out):
    """One pass over X: ``X^T g``, ``sum(g)`` and the summed loss, threaded.

    ``g`` is each row's loss slope (``_loss_and_slope``; the residual
    ``r = X coef + intercept - y`` itself for the squared error and the L2
    norm), times the row's weight when ``weights`` is not empty. ``out`` is
    a float64 array of shape (n_targets, n_features + 2) and row ``t`` is
    overwritten with ``[X^T g_t, sum(g_t), sum(loss_t)]``. The rows are
    split into ``N_CHUNKS`` fixed chunks run in parallel, each summing into
    its own buffer, and the chunks are combined in chunk order. Only ``out``
    is modified.

    Each block of ``ROW_BLOCK`` rows serves every target while it is in
    cache, so X is streamed from memory once whatever the number of targets.
    """
    partial = np.zeros((N_CHUNKS, y.shape[1], X.shape[1] + 2), dtype=np.float64)
    for c in prange(N_CHUNKS):
        _chunk_residual_sums(X, y, weights, coef, intercept, loss_code, epsilon, c, partial)
    _combine_chunks(partial, out)


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _residual_sums_serial(X, y, weights, coef, intercept, loss_code, epsilon, out):
    """``_residual_sums`` on one thread, for data too small to split.

    Same chunks, same order of additions, so the same bits as the threaded
    version; it only skips the cost of starting threads.
    """
    partial = np.zeros((N_CHUNKS, y.shape[1], X.shape[1] + 2), dtype=np.float64)
    for c in range(N_CHUNKS):
        _chunk_residual_sums(X, y, weights, coef, intercept, loss_code, epsilon, c, partial)
    _combine_chunks(partial, out)


@njit(cache=True, inline="always")
def _gradient_scale(loss_code, total_weight, norm):
    """Factor that turns ``[X^T g, sum(g)]`` into the loss's gradient.

    ``total_weight`` is the number of rows the sums cover (their summed
    weight when weighted). Squared error: ``2 / total_weight``. L2 norm
    (RMS): ``1 / (total_weight * norm)``, and 0 when ``norm`` is 0, where the
    residual is exactly zero and the coefficients already minimise the loss.
    Other losses: ``1 / total_weight``.
    """
    if loss_code == LOSS_SQUARED_ERROR:
        return 2.0 / total_weight
    if loss_code == LOSS_L2_NORM:
        if norm > 0.0:
            return 1.0 / (total_weight * norm)
        return 0.0
    return 1.0 / total_weight


@njit(cache=True, inline="always")
def _step_size(schedule, eta0, t, power_t, optimal_t0):
    """Step size of update ``t`` (counted from 1) under ``schedule``.

    Constant: ``eta0``. Inverse scaling: ``eta0 / t**power_t``. Optimal:
    ``eta0 / (optimal_t0 + t - 1)``, where the caller passes
    ``eta0 = 1 / alpha`` for scikit-learn's ``1 / (alpha (t0 + t - 1))``.
    """
    if schedule == SCHEDULE_INVSCALING:
        return eta0 / t**power_t
    if schedule == SCHEDULE_OPTIMAL:
        return eta0 / (optimal_t0 + t - 1.0)
    return eta0


@njit(cache=True, nogil=True, inline="always")
def _update(coef, grad, scale, eta, alpha, l1_ratio):
    """One proximal-gradient update of ``coef`` in place.

    ``coef <- prox(coef * (1 - eta * alpha * (1 - l1_ratio)) - scale * grad)``:
    the L2 part of the penalty joins the gradient step (it shrinks the
    coefficients the step starts from), and the L1 part is applied by its
    proximal map, soft-thresholding by ``eta * alpha * l1_ratio``, which
    sets coefficients to exactly zero. With ``alpha == 0`` this is the plain
    step ``coef -= scale * grad``.
    """
    if alpha == 0.0:
        for j in range(coef.shape[0]):
            coef[j] -= scale * grad[j]
        return
    shrink = 1.0 - eta * alpha * (1.0 - l1_ratio)
    threshold = eta * alpha * l1_ratio
    for j in range(coef.shape[0]):
        value = coef[j] * shrink - scale * grad[j]
        if value > threshold:
            value -= threshold
        elif value < -threshold:
            value += threshold
        else:
            value = 0.0
        coef[j] = value


@njit(cache=True, nogil=True, inline="always")
def _average(average, coef, intercept, k):
    """Fold update number ``k`` (from 1) into the running mean ``average``.

    ``average`` holds the mean of ``[coef, intercept]`` (one target:
    ``coef`` of shape (n_features,), ``intercept`` a float) over updates 1 to
    ``k - 1``; nothing happens for ``k < 1`` (before averaging starts).
    """
    if k < 1:
        return
    # one explicit reciprocal: the same rounding wherever this is inlined
    share = 1.0 / k
    n_features = coef.shape[0]
    for j in range(n_features):
        average[j] += (coef[j] - average[j]) * share
    average[n_features] += (intercept - average[n_features]) * share


@njit(cache=True, nogil=True, error_model="numpy")
def _update_strict(coef, grad, scale, eta, alpha, l1_ratio):
    """``_update``, compiled without fastmath, for the stochastic kernels.

    Called, not inlined, like ``_step_and_scale``: inlined into fastmath
    kernels, the penalised update (``coef * shrink - scale * grad``) was
    contracted into fused multiply-adds differently in different kernels,
    and one thread and two then parted in the last bits.
    """
    _update(coef, grad, scale, eta, alpha, l1_ratio)


@njit(cache=True, nogil=True, error_model="numpy")
def _average_strict(average, coef, intercept, k):
    """``_average``, compiled without fastmath, for the same reason."""
    _average(average, coef, intercept, k)


_FLOAT64_MAX = np.finfo(np.float64).max


@njit(inline="always")
def _is_finite(value):
    """Whether the float ``value`` is neither infinite nor NaN.

    Written as a comparison because Numba's ``np.isfinite`` tests
    ``value - value``, which these kernels' fastmath flags let LLVM fold to
    zero: an overflowing epoch then ran to its end (seen on numba 0.68).
    """
    return abs(value) <= _FLOAT64_MAX


@njit(inline="always")
def _half_batch(
    X, y, weights, w, b, order, first, last, fetch, fetch_run, fetch_gap, loss_code,
    epsilon, out
):
    """Sums over the rows ``order[first:last]`` at ``w``, ``b``, into ``out``.

    ``out[:n_features]`` gets ``X^T g``, ``out[n_features]`` ``sum(g)`` and
    ``out[n_features + 1]`` the summed loss, ``g`` being each row's loss
    slope (times its weight when ``weights`` is not empty).

    With each row visited, the row at position ``fetch`` of ``order`` is
    prefetched and ``fetch`` moves on by one, skipping ``fetch_gap``
    positions after each ``fetch_run`` (counted from ``first``): a thread
    that sums one half of every batch prefetches only its own halves. One
    thread prefetches ``PREFETCH_DISTANCE`` places ahead with no gaps.
    """
    n_features = X.shape[1]
    n_visits = order.shape[0]
    weighted = weights.shape[0] > 0
    for j in range(n_features):
        out[j] = 0.0
    sum_g = 0.0
    sum_loss = 0.0
    run = 0
    for k in range(first, last):
        if fetch < n_visits:
            _prefetch_row(X, y, order[fetch])
        fetch += 1
        run += 1
        if run == fetch_run:
            run = 0
            fetch += fetch_gap
        # the same row arithmetic as _chunk_residual_sums, written out:
        # a helper shared with that loop made both ~1.5x slower (measured)
        i = order[k]
        r = b - y[i]
        for j in range(n_features):
            r += X[i, j] * w[j]
        value, g = _loss_and_slope(loss_code, r, epsilon)
        if weighted:
            value *= weights[i]
            g *= weights[i]
        for j in range(n_features):
            out[j] += g * X[i, j]
        sum_g += g
        sum_loss += value
    out[n_features] = sum_g
    out[n_features + 1] = sum_loss


@njit(cache=True, nogil=True, error_model="numpy")
def _step_and_scale(schedule, settings, t, loss_code, total_weight, norm):
    """``(eta, scale)`` for update ``t`` (from 1) of a batch of ``total_weight``.

    ``eta`` is the schedule's step size and ``scale`` the factor on the
    batch's summed slopes (``eta * _gradient_scale``). Compiled without
    fastmath and called, not inlined, by every stochastic kernel: under
    fastmath the compiler reassociated these few operations differently
    in different kernels, which changed the last bits of the steps. With
    NumPy's error model a zero ``total_weight`` gives inf rather than an
    exception, which the two-thread kernel could not pass on (its partner
    would wait forever).
    """
    eta = _step_size(
        schedule, settings[ETA0], t, settings[POWER_T], settings[OPTIMAL_T0]
    )
    return eta, eta * _gradient_scale(loss_code, total_weight, norm)


@njit(inline="always")
def _batch_update(
    coef, intercept, lo, hi, grad, n_rows, t, loss_code, schedule, settings, norm,
    fit_intercept
):
    """Update ``coef`` and ``intercept[0]`` in place with one batch's sums.

    ``lo`` and ``hi`` hold the sums of the batch's first and second half
    (``_half_batch``'s layout), ``n_rows`` the rows in the batch, ``grad``
    is scratch of n_features and ``t`` the update's number (from 1) for
    the step-size schedule. Returns the batch's summed loss.
    """
    n_features = coef.shape[0]
    for j in range(n_features):
        grad[j] = lo[j] + hi[j]
    eta, scale = _step_and_scale(
        schedule, settings, t, loss_code, n_rows * settings[WEIGHT_MEAN], norm
    )
    _update_strict(coef, grad, scale, eta, settings[ALPHA], settings[L1_RATIO])
    if fit_intercept:
        intercept[0] -= scale * (lo[n_features] + hi[n_features])
    return lo[n_features + 1] + hi[n_features + 1]


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _minibatch_epoch(
    X, y, weights, coef, intercept, order, batch_size, loss_code, schedule,
    settings, norms, fit_intercept, t_start, average
):
    """One epoch of mini-batch SGD; return ``(sum of row losses, steps)``.

    One target: ``y`` of shape (n_samples,), ``coef`` of shape
    (n_features,), ``intercept`` of shape (1,). ``_minibatch_epoch_targets``
    fits several targets, ``_minibatch_epoch_pair`` shares each batch
    between two threads; both give this kernel's bits.

    Visits the rows named by the index array ``order`` in its order (X is
    never copied or reordered), ``batch_size`` rows per step; the last batch
    holds the remaining ``len(order) % batch_size`` rows when that is not
    zero. ``order`` is usually a permutation of all rows, but any length
    works: a slice of one is part of an epoch. ``batch_size == 1`` is plain
    SGD.

    Each step moves ``coef`` and (if ``fit_intercept``) ``intercept`` in
    place along the batch mean of the loss gradient, with the step size of
    ``schedule`` for update ``t_start + 1, t_start + 2, ...``, then applies
    the penalty (``_update``). ``settings`` is a float64 array laid out by
    the module constants ``ETA0`` ... ``AVERAGE_START``. A non-empty
    ``average`` (float64, n_features + 1) holds the running mean of
    ``[coef, intercept]`` over the updates after ``AVERAGE_START``
    (``_average``). With weights, each row's gradient is multiplied by its
    weight over ``WEIGHT_MEAN`` (the mean weight of all rows), so a step is
    an unbiased estimate of the full weighted gradient. For the L2 norm the
    residual is scaled by the fixed ``norms[0]`` (an estimate of the
    full-data RMS, see ``SGDRegressor``) rather than by the batch's own norm.

    A batch of more than one row is summed as two halves, its first
    ``(batch_size + 1) // 2`` rows and the rest (``_half_batch``), and the
    halves are then added (``_batch_update``): the split
    ``_minibatch_epoch_pair`` makes between its threads.

    While visiting a row, the kernel prefetches the row ``PREFETCH_DISTANCE``
    places further on in ``order``, which hides most of a shuffled epoch's
    memory latency.

    The first returned value sums each visited row's (weighted) loss at the
    coefficients in force when its batch was visited, batch by batch. If it
    stops being finite, the epoch ends early after that batch; the caller
    sees fewer steps than batches and a non-finite sum.
    """
    n_features = X.shape[1]
    n_visits = order.shape[0]
    weighted = weights.shape[0] > 0
    alpha = settings[ALPHA]
    l1_ratio = settings[L1_RATIO]
    epsilon = settings[EPSILON]
    norm = norms[0]
    weight_mean = settings[WEIGHT_MEAN]
    average_start = settings[AVERAGE_START]
    averaging = average.shape[0] > 0
    grad = np.empty(n_features, dtype=np.float64)
    sum_loss = 0.0
    steps = 0

    if batch_size == 1:
        # plain SGD: the row's term is the whole gradient, written straight
        # into grad (zeroing and adding took a shuffled epoch from ~40 to
        # ~65 ms); x + 0 == x, so these are the bits of one row plus an
        # empty half
        for k in range(n_visits):
            if k + PREFETCH_DISTANCE < n_visits:
                _prefetch_row(X, y, order[k + PREFETCH_DISTANCE])
            i = order[k]
            r = intercept[0] - y[i]
            for j in range(n_features):
                r += X[i, j] * coef[j]
            value, g = _loss_and_slope(loss_code, r, epsilon)
            if weighted:
                value *= weights[i]
                g *= weights[i]
            for j in range(n_features):
                grad[j] = g * X[i, j]
            sum_loss += value
            steps += 1
            eta, scale = _step_and_scale(
                schedule, settings, t_start + steps, loss_code, weight_mean, norm
            )
            _update_strict(coef, grad, scale, eta, alpha, l1_ratio)
            if fit_intercept:
                intercept[0] -= scale * g
            if averaging:
                _average_strict(average, coef, intercept[0], t_start + steps - average_start)
            if not _is_finite(sum_loss):
                break
        return sum_loss, steps

    lo = np.empty(n_features + 2, dtype=np.float64)
    hi = np.empty(n_features + 2, dtype=np.float64)
    half = (batch_size + 1) // 2
    for start in range(0, n_visits, batch_size):
        stop = min(start + batch_size, n_visits)
        middle = min(start + half, stop)
        b = intercept[0]
        _half_batch(X, y, weights, coef, b, order, start, middle,
                    start + PREFETCH_DISTANCE, n_visits, 0, loss_code, epsilon, lo)
        _half_batch(X, y, weights, coef, b, order, middle, stop,
                    middle + PREFETCH_DISTANCE, n_visits, 0, loss_code, epsilon, hi)
        steps += 1
        sum_loss += _batch_update(
            coef, intercept, lo, hi, grad, stop - start, t_start + steps, loss_code,
            schedule, settings, norm, fit_intercept,
        )
        if averaging:
            _average_strict(average, coef, intercept[0], t_start + steps - average_start)
        if not _is_finite(sum_loss):
            break

    return sum_loss, steps


@njit(inline="always")
def _half_batch_targets(
    X, y, weights, coef, intercept, order, first, last, loss_code, epsilon, out
):
    """``_half_batch`` for every target: ``out`` has a row per target.

    The rows come in blocks of ``ROW_BLOCK``, and every target takes its
    turn on a block before the next is read: a block comes from memory for
    the first target and from cache for the others, so X is read from
    memory once. Each target's sums grow row by row in the order
    ``_half_batch`` adds them, so they have its bits.
    """
    n_features = X.shape[1]
    n_targets = y.shape[1]
    n_visits = order.shape[0]
    weighted = weights.shape[0] > 0
    out[:, :] = 0.0
    for block in range(first, last, ROW_BLOCK):
        end = min(block + ROW_BLOCK, last)
        for t in range(n_targets):
            w = coef[t]
            sums = out[t]
            b = intercept[t]
            sum_g = sums[n_features]
            sum_loss = sums[n_features + 1]
            for k in range(block, end):
                if t == 0 and k + PREFETCH_DISTANCE < n_visits:
                    _prefetch_row(X, y, order[k + PREFETCH_DISTANCE])
                i = order[k]
                r = b - y[i, t]
                for j in range(n_features):
                    r += X[i, j] * w[j]
                value, g = _loss_and_slope(loss_code, r, epsilon)
                if weighted:
                    value *= weights[i]
                    g *= weights[i]
                for j in range(n_features):
                    sums[j] += g * X[i, j]
                sum_g += g
                sum_loss += value
            sums[n_features] = sum_g
            sums[n_features + 1] = sum_loss


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _minibatch_epoch_targets(
    X, y, weights, coef, intercept, order, batch_size, loss_code, schedule,
    settings, norms, fit_intercept, t_start, average, losses
):
    """``_minibatch_epoch`` for several targets sharing the rows of X.

    ``y`` has shape (n_samples, n_targets), ``coef`` (n_targets,
    n_features), ``intercept`` and ``norms`` (n_targets,), a non-empty
    ``average`` (n_targets, n_features + 1). Every target takes the same
    steps, with the same step sizes, that ``_minibatch_epoch`` would take on
    it alone, and the same bits. ``losses`` (float64, (n_targets,)) is
    overwritten with each target's sum of row losses, added up in the same
    order as ``_minibatch_epoch`` adds them; the returned value is their
    total.

    A batch is summed in the same two halves as ``_minibatch_epoch`` sums
    it, each half block by block (``_half_batch_targets``), so X is read
    from memory once per epoch. A batch of one row is one half and an
    empty one, whose zero sums change no bits. The single-target kernel is
    kept apart because the target loop cost a plain SGD epoch (b=1) about
    20% (measured, 1,000,000 x 32).
    """
    n_features = X.shape[1]
    n_targets = y.shape[1]
    n_visits = order.shape[0]
    epsilon = settings[EPSILON]
    average_start = settings[AVERAGE_START]
    averaging = average.shape[0] > 0
    grad = np.empty(n_features, dtype=np.float64)
    lo = np.empty((n_targets, n_features + 2), dtype=np.float64)
    hi = np.empty((n_targets, n_features + 2), dtype=np.float64)
    losses[:] = 0.0
    steps = 0
    half = (batch_size + 1) // 2

    for start in range(0, n_visits, batch_size):
        stop = min(start + batch_size, n_visits)
        middle = min(start + half, stop)
        _half_batch_targets(X, y, weights, coef, intercept, order, start, middle,
                            loss_code, epsilon, lo)
        _half_batch_targets(X, y, weights, coef, intercept, order, middle, stop,
                            loss_code, epsilon, hi)
        steps += 1
        for t in range(n_targets):
            losses[t] += _batch_update(
                coef[t], intercept[t:t + 1], lo[t], hi[t], grad, stop - start,
                t_start + steps, loss_code, schedule, settings, norms[t],
                fit_intercept,
            )
        if averaging:
            k = t_start + steps - average_start
            for t in range(n_targets):
                _average_strict(average[t], coef[t], intercept[t], k)
        finite = True
        for t in range(n_targets):
            finite = finite and _is_finite(losses[t])
        if not finite:
            break

    return losses.sum(), steps


# ``_minibatch_epoch_pair``'s hand-shake: a thread that finds no partner
# after this many polls (about 10 ms on the development machine) gives the
# epoch back to the one-thread kernel, and ``UNPAIRED`` marks that it did.
# (A poll of a cache line that is not changing takes about half a
# nanosecond there.)
PAIR_WAIT_POLLS = 1 << 24
UNPAIRED = 1 << 40
# Values a thread posts per cache line of its mailbox: the eighth slot is
# the batch number that says the seven are ready.
MAIL_SLOTS = 7


@njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _minibatch_epoch_pair(
    X, y, weights, coef, intercept, order, batch_size, loss_code, schedule,
    settings, norms, fit_intercept, t_start, average, mail, scratch, control,
    patience, result
):
    """``_minibatch_epoch`` with each batch shared between two threads.

    One target, ``batch_size`` above 1. Thread 0 sums the first half of
    each batch and thread 1 the second (``_half_batch``, each prefetching
    its own rows); each posts its sums to the other through ``mail`` and
    both apply the same update (``_batch_update``) to their own copy of the
    coefficients, so the threads meet once per batch and the result has
    ``_minibatch_epoch``'s bits. An epoch's updates depend on each other,
    so this is the only way for a second core to help: it brings a second
    set of the memory requests that bound a shuffled epoch.

    ``mail``: float64 (2, 2, n_lines * 8), zeros, each (batch parity,
    thread) row starting on a cache line, ``n_lines * MAIL_SLOTS >=
    n_features + 2``; slot 7 of each line holds the number of the batch
    whose sums the line's other slots hold, written last with release
    ordering and read first with acquire ordering. Batches alternate
    between two rows, so a thread can post batch k + 1 while the other
    still reads batch k, and cannot post k + 2 before the other has read
    k (it waits for the other's k + 1, posted after that read).
    ``scratch``: float64 (2, 6, n_lines * 8), each thread's private arrays
    on cache lines of their own. ``control``: int64 (16,), zeros: entry 0
    counts the threads that arrived, entry 8 is claimed by the thread that
    writes the results.

    Neither thread can hang the other. When the kernel runs on fewer
    threads than two (a nested parallel region, say), the first thread
    waits ``PAIR_WAIT_POLLS`` polls, gives up and leaves everything
    unchanged. When a thread has waited ``patience`` polls for the other's
    sums (the other was descheduled: on a busy machine the two threads can
    end up taking turns on one core, and every meeting then costs a time
    slice), it claims the epoch and finishes it alone, summing both halves
    as ``_minibatch_epoch`` does; the other stops at its next wait. Either
    way the bits are the same. Returns whether the epoch ran; if it did,
    ``result`` (float64, (3,)) holds ``_minibatch_epoch``'s two return
    values and the number of batches the claiming thread took alone.
    """
    n_features = X.shape[1]
    n_visits = order.shape[0]
    n_lines = mail.shape[2] // 8
    epsilon = settings[EPSILON]
    average_start = settings[AVERAGE_START]
    averaging = average.shape[0] > 0
    half = (batch_size + 1) // 2
    paired = np.zeros(2, dtype=np.bool_)
    for thread in prange(2):
        arrival = _fetch_add(control, 0, 1)
        if arrival == 0:
            polls = 0
            while _load_acquire(control, 0) < 2 and polls < PAIR_WAIT_POLLS:
                polls += 1
            # nobody came: mark the epoch unpaired, unless the other thread
            # arrived in the meantime (then the count was 2)
            if polls == PAIR_WAIT_POLLS and _fetch_add(control, 0, UNPAIRED) == 1:
                arrival = UNPAIRED
        paired[thread] = arrival <= 1
        if arrival <= 1:
            other = 1 - thread
            mine = scratch[thread]
            w = mine[0, :n_features]
            b = mine[1, :1]
            sums = mine[2]
            theirs = mine[3]
            grad = mine[4, :n_features]
            mean = mine[5, :average.shape[0]]
            w[:] = coef
            b[0] = intercept[0]
            mean[:] = average
            sum_loss = 0.0
            steps = 0
            alone = 0  # batches this thread took alone after claiming
            stopped = False  # the other thread claimed the epoch
            for start in range(0, n_visits, batch_size):
                stop = min(start + batch_size, n_visits)
                middle = min(start + half, stop)
                steps += 1
                if alone:
                    _half_batch(X, y, weights, w, b[0], order, start, middle,
                                start + PREFETCH_DISTANCE, n_visits, 0, loss_code,
                                epsilon, sums)
                    _half_batch(X, y, weights, w, b[0], order, middle, stop,
                                middle + PREFETCH_DISTANCE, n_visits, 0, loss_code,
                                epsilon, theirs)
                    alone += 1
                    lo, hi = sums, theirs
                else:
                    first = start if thread == 0 else middle
                    last = middle if thread == 0 else stop
                    # prefetch PREFETCH_DISTANCE of this thread's own rows
                    # ahead, in this batch's half and the next batches' (all
                    # of full size but the last, whose rows are prefetched
                    # where they would be)
                    run = half if thread == 0 else batch_size - half
                    fetch = (
                        start + (PREFETCH_DISTANCE // run) * batch_size
                        + thread * half + PREFETCH_DISTANCE % run
                    )
                    _half_batch(X, y, weights, w, b[0], order, first, last, fetch,
                                run - PREFETCH_DISTANCE % run, batch_size - run,
                                loss_code, epsilon, sums)
                    stamp = float(steps)
                    post = mail[steps & 1, thread]
                    read = mail[steps & 1, other]
                    for line in range(n_lines):
                        for s in range(MAIL_SLOTS):
                            post[8 * line + s] = sums[MAIL_SLOTS * line + s]
                        _store_release(post, 8 * line + 7, stamp)
                    for line in range(n_lines):
                        polls = 0
                        while _load_acquire(read, 8 * line + 7) < stamp:
                            polls += 1
                            if polls % 1024 == 0 and _load_acquire(control, 8) != 0:
                                # the other thread claimed the epoch (had it
                                # finished, these sums would be here)
                                stopped = _load_acquire(read, 8 * line + 7) < stamp
                                break
                            if polls >= patience:
                                if _fetch_add(control, 8, 1) == 0:
                                    alone = 1
                                else:
                                    stopped = _load_acquire(read, 8 * line + 7) < stamp
                                break
                        if alone or stopped:
                            break
                        for s in range(MAIL_SLOTS):
                            theirs[MAIL_SLOTS * line + s] = read[8 * line + s]
                    if stopped:
                        break
                    if alone:
                        # sum the other half here: the same bits as its sums
                        if thread == 0:
                            _half_batch(X, y, weights, w, b[0], order, middle, stop,
                                        middle + PREFETCH_DISTANCE, n_visits, 0,
                                        loss_code, epsilon, theirs)
                        else:
                            _half_batch(X, y, weights, w, b[0], order, start, middle,
                                        start + PREFETCH_DISTANCE, n_visits, 0,
                                        loss_code, epsilon, theirs)
                    lo = sums if thread == 0 else theirs
                    hi = theirs if thread == 0 else sums
                sum_loss += _batch_update(
                    w, b, lo, hi, grad, stop - start, t_start + steps, loss_code,
                    schedule, settings, norms[0], fit_intercept,
                )
                if averaging:
                    _average_strict(mean, w, b[0], t_start + steps - average_start)
                if not _is_finite(sum_loss):
                    break
            # the first thread to claim the epoch writes it (both threads
            # that finish hold the same numbers); one that claimed it
            # mid-epoch has already
            if not stopped and (alone or _fetch_add(control, 8, 1) == 0):
                coef[:] = w
                intercept[0] = b[0]
                average[:] = mean
                result[0] = sum_loss
                result[1] = steps
                result[2] = alone
    return paired[0] and paired[1]


@njit(inline="always")
def _splitmix64(state):
    """Advance a SplitMix64 state; return ``(new state, 64 random bits)``."""
    state += np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _shuffle(order, seed):
    """Shuffle the index array ``order`` in place (Fisher-Yates).

    The random stream is SplitMix64 started from the integer ``seed``, so the
    permutation applied depends on ``seed`` alone: no global or per-thread
    generator state is read or changed. The modulo reduction has a bias
    below ``n / 2**64``, far under anything a fit can detect.
    """
    state = np.uint64(seed)
    for i in range(order.shape[0] - 1, 0, -1):
        state, z = _splitmix64(state)
        j = np.intp(z % np.uint64(i + 1))
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


@njit(cache=True, nogil=True)
def _draw_order(order, rows, seed, with_replacement):
    """Overwrite ``order`` with a random visiting order drawn from ``seed``.

    The candidates are the indices in ``rows``, or all of
    ``0 .. len(order) - 1`` when ``rows`` is empty. Without replacement
    ``order`` becomes a uniformly random permutation of the candidates
    (``len(rows) == len(order)`` then); with replacement each entry is a
    candidate drawn uniformly and independently. The result depends on
    ``seed`` and ``rows`` alone, not on what ``order`` held.
    """
    n_visits = order.shape[0]
    subset = rows.shape[0] > 0
    n_candidates = rows.shape[0] if subset else n_visits
    if with_replacement:
        state = np.uint64(seed)
        for k in range(n_visits):
            state, z = _splitmix64(state)
            j = np.intp(z % np.uint64(n_candidates))
            order[k] = rows[j] if subset else j
        return
    for k in range(n_visits):
        order[k] = rows[k] if subset else k
    _shuffle(order, seed)


@njit(cache=True, nogil=True)
def _block_order(order, rows, seed, block_size):
    """Fill ``order`` with the candidates in runs of ``block_size`` neighbours.

    The candidates (``rows``, or ``0 .. n - 1`` when it is empty) are put on
    a circle, rotated by a uniformly random offset and cut into runs of
    ``block_size`` consecutive candidates (the last run shorter when
    ``block_size`` does not divide ``n``); the runs are visited in a
    uniformly random order, each from its first candidate to its last.
    Every candidate appears once, and because the rotation is uniform over
    the whole circle, every position of ``order`` holds each candidate with
    probability ``1 / n``: a batch's expected gradient is the full one.
    Consecutive rows of X are read together, which the memory system
    serves several times faster than rows scattered at random. The result
    depends on ``seed``, ``rows`` and ``block_size`` alone; ``block_size``
    is between 1 and ``n`` (``_engine.draw_order`` clamps it).
    """
    n = order.shape[0]
    subset = rows.shape[0] > 0
    state = np.uint64(seed)
    state, z = _splitmix64(state)
    offset = np.intp(z % np.uint64(n))
    n_blocks = (n + block_size - 1) // block_size
    blocks = np.arange(n_blocks)
    _shuffle(blocks, np.int64(state))
    k = 0
    for b in range(n_blocks):
        start = blocks[b] * block_size
        stop = min(start + block_size, n)
        for p in range(start, stop):
            q = p + offset
            if q >= n:
                q -= n
            order[k] = rows[q] if subset else q
            k += 1
