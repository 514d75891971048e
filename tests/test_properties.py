"""Properties of SGDRegressor over random problems (hypothesis), and safe failure.

Every property runs a fixed, derandomised set of examples, so CI sees the same
problems on every run; ``deadline=None`` because the first example of a run
may include compiling a kernel.
"""

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgd import SGDRegressor
from fastgd._engine import PARALLEL_MIN_ELEMENTS
from fastgd._train import PARAMETER_CONSTRAINTS

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None)

# Relative error in the parameter vector that the lstsq property targets.
EPSILON = 1e-8


@st.composite
def problems(draw):
    """A float64 problem with n in [20, 200], d in [1, 6] and bounded condition.

    ``Z`` has orthonormal columns (scaled by sqrt(n)), orthogonal to the ones
    column, so ``X = Z diag(s) V^T + m`` has ``[X 1]^T [X 1] / n =
    M^T diag(S, 1) M`` with ``S = V diag(s**2) V^T`` and ``M = [[I, 0],
    [m^T, 1]]``. With ``s`` in [1, 3] and ``m`` in [-0.5, 0.5]^d the condition
    number is at most 9 * cond(M)**2 < 100 (about 10 in practice), so lstsq
    is reached in at most ``100 * ln(1 / EPSILON)``, about 1,850 steps.
    """
    n_samples = draw(st.integers(20, 200))
    n_features = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    basis = np.column_stack(
        [np.ones(n_samples), rng.standard_normal((n_samples, n_features))]
    )
    Z = np.linalg.qr(basis)[0][:, 1:] * math.sqrt(n_samples)
    rotation = np.linalg.qr(rng.standard_normal((n_features, n_features)))[0]
    scales = rng.uniform(1.0, 3.0, n_features)
    X = (Z * scales) @ rotation.T + rng.uniform(-0.5, 0.5, n_features)
    coef = rng.uniform(-3.0, 3.0, n_features)
    y = X @ coef + rng.uniform(-2.0, 2.0) + 0.1 * rng.standard_normal(n_samples)
    return X, y


def _design_eigenvalues(X):
    """Eigenvalues of ``[X 1]^T [X 1] / n``, ascending."""
    design = np.column_stack([X, np.ones(len(X))])
    return np.linalg.eigvalsh(design.T @ design / len(X))


def _lstsq(X, y):
    design = np.column_stack([X, np.ones(len(X))])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def _params(model):
    return np.r_[model.coef_, model.intercept_]


def _full_batch(X, max_iter, **params):
    """A full-batch fit of exactly ``max_iter`` steps with a 1/L step."""
    lipschitz = 2.0 * _design_eigenvalues(X)[-1]
    params = {"eta0": 1.0 / lipschitz, **params}
    return SGDRegressor(batch_size=None, max_iter=max_iter, tol=None, **params)


@PROPERTY
@given(problems(), st.sampled_from(["constant", "auto"]))
def test_full_batch_with_a_safe_step_reaches_lstsq(problem, learning_rate):
    X, y = problem
    eigenvalues = _design_eigenvalues(X)
    kappa = eigenvalues[-1] / eigenvalues[0]
    # The mean squared residual has Hessian H = 2 [X 1]^T [X 1] / n, with
    # eigenvalues in [mu, L] and L / mu = kappa. A step of 1 / L maps the
    # error e to (I - H / L) e, whose eigenvalues lie in [0, 1 - 1 / kappa],
    # so from the zero start ||e_k|| <= (1 - 1/kappa)**k ||w*|| <=
    # exp(-k / kappa) ||w*||: k = kappa ln(1 / EPSILON) steps reach EPSILON.
    # "auto" estimates L by power iteration from below, and stays within the
    # same bound while its estimate exceeds L / (2 - 1 / kappa).
    steps = math.ceil(kappa * math.log(1.0 / EPSILON))
    exact = _lstsq(X, y)

    model = _full_batch(X, steps, learning_rate=learning_rate).fit(X, y)

    # 10 * EPSILON leaves room for rounding: each step adds an error of order
    # kappa * 1e-16 relative, which the contraction keeps from accumulating
    error = np.linalg.norm(_params(model) - exact)
    assert error <= 10 * EPSILON * np.linalg.norm(exact), (kappa, steps, error)


@PROPERTY
@given(problems(), st.integers(0, 2**32 - 1))
def test_full_batch_ignores_the_row_order(problem, seed):
    X, y = problem
    order = np.random.default_rng(seed).permutation(len(X))

    model = _full_batch(X, 100).fit(X, y)
    permuted = _full_batch(X, 100).fit(X[order], y[order])

    # Only the order of the additions in each gradient changes. A sum of n
    # terms reordered moves by at most about n * 1.1e-16 relative (2.2e-14
    # for n = 200), and steps of 1/L do not amplify earlier differences
    # (||I - H / L|| <= 1), so 100 steps stay within 2.2e-12 (seen: < 1e-16)
    reference = np.linalg.norm(_params(model))
    error = np.linalg.norm(_params(permuted) - _params(model))
    assert error <= 1e-11 * reference, error


@PROPERTY
@given(problems(), st.sampled_from(["squared_error", "huber", "l2_norm"]))
def test_batch_size_n_is_full_batch(problem, loss):
    X, y = problem
    params = {
        "loss": loss,
        "eta0": 0.01,
        "max_iter": 30,
        "tol": None,
        "random_state": 0,
    }

    full = SGDRegressor(batch_size=None, **params).fit(X, y)
    whole = SGDRegressor(batch_size=len(X), **params).fit(X, y)

    np.testing.assert_array_equal(_params(whole), _params(full))
    np.testing.assert_array_equal(whole.loss_curve_, full.loss_curve_)
    assert (whole.n_iter_, whole.t_) == (full.n_iter_, full.t_)


@st.composite
def options(draw):
    return {
        "loss": draw(st.sampled_from(["squared_error", "huber", "l2_norm"])),
        "penalty": draw(st.sampled_from([None, "l1"])),
        "batch_size": draw(st.sampled_from([None, 1, 7])),
        "sampling": draw(st.sampled_from(["reshuffle", "block_shuffle"])),
    }


@pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="Numba runs a single thread here"
)
@PROPERTY
@given(options(), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_threads_do_not_change_the_result(option, n_features, seed):
    # enough rows that every full pass over X takes the threaded kernel
    n_samples = PARALLEL_MIN_ELEMENTS // n_features + 1
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    y = X @ rng.uniform(-2.0, 2.0, n_features) + 0.5 * rng.standard_normal(n_samples)
    params = dict(
        option, alpha=0.01, eta0=0.005, max_iter=3, tol=None, random_state=seed
    )
    assert X.size >= PARALLEL_MIN_ELEMENTS

    one = SGDRegressor(n_jobs=1, **params).fit(X, y)
    two = SGDRegressor(n_jobs=2, **params).fit(X, y)

    np.testing.assert_array_equal(_params(two), _params(one))
    np.testing.assert_array_equal(two.loss_curve_, one.loss_curve_)


@PROPERTY
@given(
    problems(),
    options(),
    st.sampled_from(["C", "F"]),
    st.sampled_from([np.float64, np.float32]),
    st.booleans(),
)
def test_fit_never_modifies_its_inputs(problem, option, order, dtype, weighted):
    X, y = problem
    X = np.asarray(X, dtype=dtype, order=order)
    y = y.astype(dtype)
    weights = np.linspace(0.5, 2.0, len(X)) if weighted else None
    copies = [X.copy(order="K"), y.copy(), None if weights is None else weights.copy()]
    flags = [(a.flags.c_contiguous, a.flags.f_contiguous) for a in (X, y)]

    SGDRegressor(eta0=0.005, max_iter=3, tol=None, random_state=0, **option).fit(
        X, y, sample_weight=weights
    )

    np.testing.assert_array_equal(X, copies[0])
    np.testing.assert_array_equal(y, copies[1])
    if weighted:
        np.testing.assert_array_equal(weights, copies[2])
    assert [(a.flags.c_contiguous, a.flags.f_contiguous) for a in (X, y)] == flags


# ---------------------------------------------------------------------------
# Safe failure: input forms that tests/test_validation.py does not cover.

QUICK = {"eta0": 0.01, "max_iter": 5, "tol": None, "random_state": 0}


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 3))
    return X, X @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(30)


@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_column_vector_y_is_one_target_kept_two_dimensional(batch_size, data):
    # Documented behaviour (check_X_y, fit): a y of shape (n, 1) is one
    # target, fitted exactly as y.ravel() is, with coef_ of shape (1, d) and
    # predictions of shape (n, 1), as scikit-learn's multi-output
    # regressors do. It must never broadcast against the (n,) predictions
    # into an n x n residual, which would fit the mean of y; equal fits rule
    # that out.
    X, y = data
    flat = SGDRegressor(batch_size=batch_size, **QUICK).fit(X, y)

    column = SGDRegressor(batch_size=batch_size, **QUICK).fit(X, y[:, None])

    np.testing.assert_array_equal(column.coef_, flat.coef_[None, :])
    np.testing.assert_array_equal(column.intercept_, [flat.intercept_])
    np.testing.assert_array_equal(column.loss_curve_, flat.loss_curve_)
    np.testing.assert_array_equal(column.predict(X), flat.predict(X)[:, None])


def test_y_of_more_than_two_dimensions_is_rejected(data):
    X, y = data
    with pytest.raises(ValueError, match=r"y must be 1-D .* or 2-D .* \(30, 2, 1\)"):
        SGDRegressor(**QUICK).fit(X, np.column_stack([y, y])[:, :, None])
    with pytest.raises(ValueError, match="y has 0 targets"):
        SGDRegressor(**QUICK).fit(X, np.empty((30, 0)))


@pytest.mark.parametrize(
    "where, ragged",
    [
        ("X", [[1.0, 2.0], [3.0], [4.0, 5.0]]),
        ("y", [1.0, [2.0, 3.0], 4.0]),
    ],
)
def test_ragged_lists_are_rejected(where, ragged):
    X, y = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [1.0, 2.0, 3.0]
    X, y = (ragged, y) if where == "X" else (X, ragged)
    with pytest.raises(ValueError, match=f"{where} could not be read as an array"):
        SGDRegressor(**QUICK).fit(X, y)


def test_object_array_of_numbers_is_fitted_as_float64(data):
    X, y = data
    expected = SGDRegressor(**QUICK).fit(X, y)

    model = SGDRegressor(**QUICK).fit(X.astype(object), y.astype(object))

    np.testing.assert_array_equal(_params(model), _params(expected))
    assert model.coef_.dtype == np.float64


@pytest.mark.parametrize(
    "value, shown", [({"a": 1}, r"\{'a': 1\}"), (1 + 2j, r"\(1\+2j\)")]
)
def test_object_array_with_a_non_number_names_the_column(value, shown, data):
    X, y = data
    X = X.astype(object)
    X[4, 2] = value
    # a ValueError, and also the TypeError that numpy (and scikit-learn's
    # check_dtype_object) expects for the same conversion
    with pytest.raises(
        ValueError, match=f"X column 2 holds {shown}, which is not a number"
    ):
        SGDRegressor(**QUICK).fit(X, y)
    with pytest.raises(TypeError):
        SGDRegressor(**QUICK).fit(X, y)


def test_object_array_with_none_is_missing_data(data):
    # NumPy converts None to NaN, which is then reported as missing data
    X, y = data
    X = X.astype(object)
    X[4, 2] = None
    with pytest.raises(ValueError, match="X contains NaN"):
        SGDRegressor(**QUICK).fit(X, y)


def _layouts(X):
    """The same values as X in other memory layouts, each read-only or not."""
    doubled = np.zeros((2 * X.shape[0], 2 * X.shape[1]))
    doubled[::2, ::2] = X
    readonly = X.copy()
    readonly.flags.writeable = False
    return {
        "fortran": np.asfortranarray(X),
        "strided view": doubled[::2, ::2],
        "reversed columns": X[:, ::-1].copy()[:, ::-1],
        "read-only": readonly,
    }


@pytest.mark.parametrize(
    "layout", ["fortran", "strided view", "reversed columns", "read-only"]
)
@pytest.mark.parametrize("batch_size", [None, 1, 4])
def test_memory_layout_does_not_change_the_fit(layout, batch_size, data):
    X, y = data
    expected = SGDRegressor(batch_size=batch_size, **QUICK).fit(X, y)
    X_other = _layouts(X)[layout]
    y_other = np.zeros(2 * len(y))[::2]
    y_other[:] = y
    if layout == "read-only":
        y_other = y.copy()
        y_other.flags.writeable = False

    model = SGDRegressor(batch_size=batch_size, **QUICK).fit(X_other, y_other)

    np.testing.assert_array_equal(_params(model), _params(expected))
    np.testing.assert_array_equal(model.predict(X_other), expected.predict(X))


def test_read_only_sample_weight_is_accepted(data):
    X, y = data
    weights = np.linspace(0.5, 2.0, len(X))
    expected = SGDRegressor(**QUICK).fit(X, y, sample_weight=weights)
    weights.flags.writeable = False

    model = SGDRegressor(**QUICK).fit(X, y, sample_weight=weights)

    np.testing.assert_array_equal(_params(model), _params(expected))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integer_data_is_cast_to_float64(dtype):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 2 if dtype is np.bool_ else 5, size=(40, 3)).astype(dtype)
    y = rng.integers(0, 5, size=40).astype(dtype)
    expected = SGDRegressor(**QUICK).fit(X.astype(np.float64), y.astype(np.float64))

    model = SGDRegressor(**QUICK).fit(X, y)

    assert model.coef_.dtype == np.float64
    np.testing.assert_array_equal(_params(model), _params(expected))
    assert model.predict(X).dtype == np.float64


# One invalid value per rule, for every parameter. Values are chosen so that
# each also breaks every other rule of its parameter (a string for a number,
# a number for a string option, and so on).
INVALID = {
    "loss": ["hinge", None, 1],
    "penalty": ["l3", "None", 0],
    "alpha": [-0.1, np.inf, "0.1", None],
    "l1_ratio": [-0.01, 1.5, np.nan],
    "epsilon": [-1.0, np.nan],
    "batch_size": [0, -4, 2.0, "full", False],
    "learning_rate": ["sometimes", None],
    "eta0": [0.0, -0.5, np.inf, "0.1"],
    "power_t": [np.nan, np.inf, "1", None],
    "max_iter": [0, 10.0, None, True],
    "tol": [-1e-3, np.nan, "1e-3"],
    "n_iter_no_change": [0, 2.5, None],
    "average": [-1, 1.5, "yes", None],
    "early_stopping": ["yes", 1, None],
    "validation_fraction": [0.0, 1.0, -0.1, np.nan],
    "shuffle": [1, "False", None],
    "sampling": ["bootstrap", None],
    "block_size": [0, -3, 2.5, "16", None, True],
    "random_state": [-1, 2**32, 1.5, "seed"],
    "fit_intercept": [0, "True", None],
    "verbose": [-1, 0.5, None],
    "warm_start": [1, "no", None],
    "n_jobs": [0, -2, 1.5, "2"],
    "progress": ["yes", 1, None, "always"],
}


def test_every_parameter_has_invalid_values_listed():
    # a new parameter must join INVALID (and PARAMETER_CONSTRAINTS)
    assert set(INVALID) == set(PARAMETER_CONSTRAINTS)
    assert set(PARAMETER_CONSTRAINTS) == set(SGDRegressor().get_params())


@pytest.mark.parametrize(
    "name, value",
    [(name, value) for name, values in INVALID.items() for value in values],
    ids=repr,
)
def test_invalid_parameter_value_is_named(name, value, data):
    with pytest.raises(ValueError) as raised:
        SGDRegressor(**{name: value}).fit(*data)
    message = str(raised.value)
    assert repr(name) in message and repr(value) in message, message
