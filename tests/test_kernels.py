"""Each kernel against the NumPy reference in ``reference.py``."""

import numpy as np
import pytest
import reference

from fastgd import _engine, _kernels

NO_WEIGHTS = np.empty(0)


def _sums(X, y, coef, intercept, out, kernel=None, loss=0, epsilon=0.0,
          weights=NO_WEIGHTS):
    # the kernels take one column per target; a 1-D y is one column
    kernel = kernel or _kernels._residual_sums
    kernel(X, y.reshape(len(y), -1), weights, coef.reshape(len(intercept), -1),
           intercept, loss, epsilon, out.reshape(len(intercept), -1))


def _epoch(X, y, coef, intercept, order, batch_size, eta, loss, norm,
           fit_intercept, **options):
    return _engine.stochastic_epoch(X, y, coef, intercept, order, batch_size,
                                    eta, loss, norm, fit_intercept, **options)

RTOL = {np.float64: 1e-10, np.float32: 1e-5}


def _state(n_features, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n_features), np.array([0.3])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [1, 7, 63, 64, 65, 1000])
def test_residual_sums_matches_reference(n_samples, dtype, seed):
    X, y = reference.make_regression(n_samples, 4, seed, dtype=dtype)
    coef, intercept = _state(4, seed)
    out = np.empty(6)

    _sums(X, y, coef, intercept, out)

    expected = reference.residual_sums(X, y, coef, intercept[0])
    np.testing.assert_allclose(out, expected, rtol=RTOL[dtype], atol=1e-12)


@pytest.mark.parametrize("loss", sorted(_engine.LOSS_CODES))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_samples", [3, 67, 1001])
def test_float32_pass_matches_reference_for_every_loss(loss, weighted, n_samples):
    # float32 X takes the pass that works on four rows at a time; row counts
    # that 4 does not divide leave a remainder in every block of rows
    rng = np.random.default_rng(n_samples)
    X = rng.standard_normal((n_samples, 5)).astype(np.float32)
    y = rng.standard_normal((n_samples, 2)).astype(np.float32)
    coef = rng.standard_normal((2, 5))  # float64, as the kernels keep it
    intercept = np.array([0.3, -0.2])
    weights = rng.uniform(0.0, 2.0, n_samples) if weighted else NO_WEIGHTS
    out = np.empty((2, 7))

    _kernels._residual_sums(X, y, weights, coef, intercept,
                            _engine.LOSS_CODES[loss], 0.5, out)

    X64 = X.astype(np.float64)
    for t in range(2):
        r = X64 @ coef[t].astype(np.float64) + intercept[t] - y[:, t]
        value, g = reference.loss_and_slope(loss, r, 0.5)
        if weighted:
            value, g = value * weights, g * weights
        expected = np.concatenate([X64.T @ g, [g.sum(), value.sum()]])
        # the pass widens each float32 element to float64 before it
        # multiplies and sums in float64: agreement to rounding, not to 1e-5
        np.testing.assert_allclose(out[t], expected, rtol=1e-9, atol=1e-9)


def test_residual_sums_modifies_only_out(problem):
    X, y = problem
    coef, intercept = _state(X.shape[1], 0)
    before = [a.copy() for a in (X, y, coef, intercept)]
    _sums(X, y, coef, intercept, np.empty(X.shape[1] + 2))
    for original, now in zip(before, (X, y, coef, intercept), strict=True):
        np.testing.assert_array_equal(original, now)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", ["squared_error", "l2_norm"])
@pytest.mark.parametrize("batch_size", [1, 3, 32, 100])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_minibatch_epoch_matches_reference(
    batch_size, loss, dtype, fit_intercept, seed
):
    # 100 rows: batch sizes 3 and 32 leave a partial last batch
    X, y = reference.make_regression(100, 4, seed, dtype=dtype)
    coef, intercept = _state(4, seed)
    order = np.random.default_rng(seed).permutation(100)
    code = {"squared_error": 0, "l2_norm": 1}[loss]
    norm = 2.5
    expected = reference.minibatch_epoch(
        X, y, coef, intercept[0], order, batch_size, 0.01, loss, norm,
        fit_intercept,
    )

    sum_r2, steps = _epoch(
        X, y, coef, intercept, order, batch_size, 0.01, code, norm,
        fit_intercept,
    )

    assert steps == expected[3] == -(-100 // batch_size)
    np.testing.assert_allclose(coef, expected[0], rtol=RTOL[dtype])
    np.testing.assert_allclose(intercept[0], expected[1], rtol=RTOL[dtype])
    np.testing.assert_allclose(sum_r2, expected[2], rtol=RTOL[dtype])


def test_minibatch_epoch_one_batch_is_a_full_batch_step(problem):
    X, y = problem
    n_samples, n_features = X.shape
    coef, intercept = _state(n_features, 1)
    sums = np.empty(n_features + 2)
    _sums(X, y, coef, intercept, sums)
    full_coef = coef - 0.05 * (2.0 / n_samples) * sums[:n_features]

    _epoch(
        X, y, coef, intercept, np.arange(n_samples), n_samples, 0.05, 0, 0.0,
        True,
    )

    np.testing.assert_allclose(coef, full_coef, rtol=1e-12)


def test_minibatch_epoch_over_slices_equals_the_whole_epoch(problem):
    X, y = problem
    order = np.random.default_rng(0).permutation(500)
    whole = _state(X.shape[1], 4)
    parts = (whole[0].copy(), whole[1].copy())
    _epoch(X, y, *whole, order, 10, 0.01, 0, 0.0, True)
    for start in (0, 130, 370):  # cuts on batch boundaries
        stop = {0: 130, 130: 370, 370: 500}[start]
        _epoch(X, y, *parts, order[start:stop], 10, 0.01,
                                  0, 0.0, True)
    np.testing.assert_array_equal(parts[0], whole[0])
    np.testing.assert_array_equal(parts[1], whole[1])


def test_minibatch_epoch_stops_early_on_overflow():
    X = np.full((50, 2), 1e200)
    y = np.zeros(50)
    coef = np.ones(2)
    sum_r2, steps = _epoch(
        X, y, coef, np.zeros(1), np.arange(50), 5, 1.0, 0, 0.0, True
    )
    assert not np.isfinite(sum_r2)
    assert steps == 1


def test_minibatch_epoch_reads_rows_through_order_only(problem):
    # the same multiset of batches in a different order of rows within each
    # batch gives the same result: rows are reached through ``order`` alone
    X, y = problem
    coef_a, intercept_a = _state(X.shape[1], 2)
    coef_b, intercept_b = coef_a.copy(), intercept_a.copy()
    order = np.arange(500)
    reversed_in_batches = order.reshape(-1, 50)[:, ::-1].ravel()
    _epoch(X, y, coef_a, intercept_a, order, 50, 0.01, 0,
                              0.0, True)
    _epoch(X, y, coef_b, intercept_b, reversed_in_batches,
                              50, 0.01, 0, 0.0, True)
    np.testing.assert_allclose(coef_a, coef_b, rtol=1e-12)


def test_gradient_scale_is_zero_at_zero_residual_for_l2_norm():
    assert _kernels._gradient_scale(_kernels.LOSS_L2_NORM, 10, 0.0) == 0.0
    assert _kernels._gradient_scale(_kernels.LOSS_L2_NORM, 10, 2.0) == 1 / 20
    assert _kernels._gradient_scale(_kernels.LOSS_SQUARED_ERROR, 10, 0.0) == 0.2


def test_shuffle_is_a_seeded_permutation():
    order = np.arange(1000)
    _kernels._shuffle(order, 7)
    assert not np.array_equal(order, np.arange(1000))
    np.testing.assert_array_equal(np.sort(order), np.arange(1000))

    again = np.arange(1000)
    _kernels._shuffle(again, 7)
    np.testing.assert_array_equal(order, again)

    other = np.arange(1000)
    _kernels._shuffle(other, 8)
    assert not np.array_equal(order, other)


def test_shuffle_is_uniform_over_positions():
    # each of 5 values lands in each of 5 positions with probability 1/5;
    # over 20,000 shuffles a count outside [3600, 4400] is ~10 sigma off
    counts = np.zeros((5, 5), dtype=int)
    order = np.arange(5)
    for seed in range(20_000):
        order[:] = np.arange(5)
        _kernels._shuffle(order, seed)
        counts[order, np.arange(5)] += 1
    assert counts.min() > 3600 and counts.max() < 4400, counts


def _fd_gradient(f, coef, intercept, h=1e-6):
    """Central finite differences of ``f(coef, intercept)``."""
    grad = np.empty(len(coef) + 1)
    for j in range(len(coef) + 1):
        step = np.zeros(len(coef) + 1)
        step[j] = h
        plus = f(coef + step[:-1], intercept + step[-1])
        minus = f(coef - step[:-1], intercept - step[-1])
        grad[j] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize(
    "loss, objective",
    [("squared_error", reference.mse), ("l2_norm", reference.rms)],
)
def test_gradient_matches_finite_differences(loss, objective, problem):
    X, y = problem
    n_samples, n_features = X.shape
    coef, intercept = _state(n_features, 3)
    sums = np.empty(n_features + 2)
    _sums(X, y, coef, intercept, sums)
    norm = np.sqrt(sums[-1] / n_samples)
    code = {"squared_error": 0, "l2_norm": 1}[loss]

    gradient = _kernels._gradient_scale(code, n_samples, norm) * sums[:-1]

    expected = _fd_gradient(
        lambda c, b: objective(X, y, c, b), coef, intercept[0]
    )
    np.testing.assert_allclose(gradient, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [3, 64, 1000])
def test_serial_and_threaded_passes_give_the_same_bits(n_samples, dtype, seed):
    X, y = reference.make_regression(n_samples, 6, seed, dtype=dtype)
    coef, intercept = _state(6, seed)
    threaded, serial = np.empty(8), np.empty(8)
    _sums(X, y, coef, intercept, threaded)
    _sums(X, y, coef, intercept, serial, _kernels._residual_sums_serial)
    np.testing.assert_array_equal(threaded, serial)
    np.testing.assert_allclose(
        serial, reference.residual_sums(X, y, coef, intercept[0]),
        rtol=RTOL[dtype], atol=1e-12,
    )
