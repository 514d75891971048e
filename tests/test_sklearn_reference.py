"""SGDRegressor against scikit-learn's SGDRegressor and HuberRegressor.

Step for step: with the rows visited in order (``sampling="sequential"``
here, ``shuffle=False`` there) both libraries make the same updates, so
their coefficients agree to rounding after a few epochs. Converged: with
their own shuffling, both reach the minimiser that a closed-form or
coordinate-descent solver finds. And fastgd's full-batch Huber fit reaches
HuberRegressor's answer, once HuberRegressor's scale is put into epsilon.
"""

import numpy as np
import pytest
import reference
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ElasticNet, HuberRegressor, Lasso, Ridge
from sklearn.linear_model import SGDRegressor as Reference

from fastgd import SGDRegressor

# Both libraries do the same float64 operations per update, in a different
# order of additions (and scikit-learn keeps the L2 shrink in a separate
# scale factor): after thousands of updates they differ by at most 1e-14
# here (1e-12 on other data), while one update taken differently moves the
# coefficients by 1e-5 or more.
STEP_RTOL = 1e-10

# Converged SGD ends in a band around the minimiser whose width is set by
# the last step size (below 3e-4 in every setting here). Over 10 seeds of
# both libraries the largest distance measured was 1e-3; 3e-3 is above
# that and far below what the penalty moves (0.05 or more).
CONVERGED_ATOL = 3e-3


def _solution(model):
    return np.r_[model.coef_, model.intercept_]


def _least_squares(X, y):
    coef, intercept = reference.lstsq(X, y)
    return np.r_[coef, intercept]


def _translate(*, loss, eta0=0.01, alpha=0.0001, tol=None, **params):
    """fastgd's parameters for the updates scikit-learn makes with these.

    fastgd's squared error is mean(r**2), scikit-learn's mean(r**2) / 2:
    fastgd's gradient and loss are twice as large, so the same updates take
    half of ``eta0``, twice ``alpha`` (then the L2 shrink ``1 - eta *
    alpha`` and the L1 threshold ``eta * alpha`` are the same) and twice
    ``tol``. The other losses are defined alike in both. Not for
    ``learning_rate="optimal"`` with the squared error: there ``alpha``
    also sets the step, and no choice of it gives the same updates.
    """
    factor = 2.0 if loss == "squared_error" else 1.0
    return dict(
        loss=loss,
        eta0=eta0 / factor,
        alpha=alpha * factor,
        tol=None if tol is None else tol * factor,
        **params,
    )


def _fit_both(X, y, coef_init=None, intercept_init=None, **params):
    """Plain SGD over the rows in order, in both libraries."""
    ours = SGDRegressor(batch_size=1, sampling="sequential", **_translate(**params))
    ours.fit(X, y, coef_init=coef_init, intercept_init=intercept_init)
    # scikit-learn writes its iterates into coef_init: give it a copy
    theirs = Reference(shuffle=False, **params).fit(
        X,
        y,
        coef_init=None if coef_init is None else np.copy(coef_init),
        intercept_init=intercept_init,
    )
    return ours, theirs


@pytest.mark.parametrize("alpha", [0.0, 10.0])
def test_huber_loss_reaches_huber_regressor(alpha, problem, seed):
    # HuberRegressor minimises sum_i (sigma + sigma H(r_i / sigma)) + alpha
    # |w|^2 over (w, b, sigma), with H(z) = z**2 for |z| < eps and
    # 2 eps |z| - eps**2 beyond. At fixed sigma, sigma H(r / sigma) equals
    # (2 / sigma) h_c(r), h_c the SGD Huber loss with epsilon c = eps sigma,
    # so its coef_ and intercept_ minimise mean(h_c(r)) + (alpha sigma / n)
    # |w|^2 / 2: fastgd's Huber loss with epsilon c and L2 alpha sigma / n.
    X, y = problem
    rng = np.random.default_rng(seed)
    y = y.copy()
    rows = rng.choice(len(y), 25, replace=False)
    y[rows] += rng.choice([-1.0, 1.0], 25) * rng.uniform(20.0, 40.0, 25)
    huber = HuberRegressor(alpha=alpha, tol=1e-10, max_iter=10_000).fit(X, y)
    params = {
        "loss": "huber",
        "penalty": "l2" if alpha else None,
        "alpha": alpha * huber.scale_ / len(y),
        "batch_size": None,
        "learning_rate": "auto",
        "max_iter": 1000,
        "tol": None,
    }

    model = SGDRegressor(epsilon=huber.epsilon * huber.scale_, **params)
    model.fit(X, y)

    # Full-batch descent with step 1 / L is at its fixed point to rounding
    # long before 1000 steps. HuberRegressor's L-BFGS stops on scipy's
    # relative decrease of the objective before gtol=1e-10, about 1e-6 from
    # the minimiser here; 1e-5 allows for that.
    expected = _solution(huber)
    np.testing.assert_allclose(_solution(model), expected, atol=1e-5)
    # the outliers pull least squares far off, and epsilon must be in the
    # residual's units (HuberRegressor's is in units of scale_)
    assert np.abs(expected - _least_squares(X, y)).max() > 0.1
    unscaled = SGDRegressor(epsilon=huber.epsilon, **params).fit(X, y)
    assert np.abs(_solution(unscaled) - expected).max() > 1e-3


@pytest.mark.parametrize(
    "loss, learning_rate, penalty",
    [
        ("squared_error", "constant", None),
        ("squared_error", "constant", "l2"),
        ("squared_error", "invscaling", "l2"),
        ("squared_error", "adaptive", "l2"),
        ("huber", "invscaling", "l2"),
        ("huber", "optimal", None),
        ("huber", "optimal", "l2"),
        ("epsilon_insensitive", "optimal", "l2"),
        ("epsilon_insensitive", "constant", "l2"),
        ("squared_epsilon_insensitive", "invscaling", "l2"),
    ],
)
def test_sequential_sgd_takes_scikit_learn_steps(loss, learning_rate, penalty, problem):
    # Both shrink by 1 - eta * alpha, then step along the gradient taken
    # before the shrink; the intercept is not decayed (dense X). Invscaling
    # and optimal count t from 1 in both, with the same t0 for optimal.
    # tol=None: "adaptive" is then constant (its rule is tested below).
    X, y = problem
    ours, theirs = _fit_both(
        X,
        y,
        loss=loss,
        epsilon=0.5,
        penalty=penalty,
        alpha=0.01,
        learning_rate=learning_rate,
        eta0=0.01,
        power_t=0.3,
        max_iter=3,
        tol=None,
    )

    np.testing.assert_allclose(_solution(ours), _solution(theirs), rtol=STEP_RTOL)
    assert ours.t_ == theirs.t_ - 1 == 3 * len(y)  # scikit-learn starts at 1
    assert np.abs(_solution(ours)).min() > 0.01  # far from the zero start


def test_sequential_averaged_sgd_takes_scikit_learn_steps(problem):
    X, y = problem
    params = {
        "loss": "squared_error",
        "penalty": "l2",
        "alpha": 0.01,
        "learning_rate": "invscaling",
        "eta0": 0.02,
        "max_iter": 2,
        "tol": None,
    }
    ours, theirs = _fit_both(X, y, average=True, **params)
    last, _ = _fit_both(X, y, **params)

    np.testing.assert_allclose(_solution(ours), _solution(theirs), rtol=STEP_RTOL)
    assert np.abs(_solution(ours) - _solution(last)).max() > 1e-3


@pytest.mark.parametrize("start", [1, 10, 499])
def test_integer_average_starts_where_scikit_learn_starts(start, problem):
    # average=N: the mean of the iterates from the update after which N rows
    # have been seen; average=1 is average=True in both libraries
    X, y = problem
    params = {"loss": "squared_error", "penalty": None,
              "learning_rate": "constant", "eta0": 0.02, "max_iter": 2,
              "tol": None}
    ours, theirs = _fit_both(X, y, average=start, **params)
    np.testing.assert_allclose(_solution(ours), _solution(theirs), rtol=STEP_RTOL)
    later, _ = _fit_both(X, y, average=start + 1, **params)
    assert np.abs(_solution(ours) - _solution(later)).max() > 1e-6
    if start == 1:
        from_first, _ = _fit_both(X, y, average=True, **params)
        np.testing.assert_array_equal(_solution(ours), _solution(from_first))


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling"])
@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_l1_steps_match_while_no_coefficient_reaches_zero(
    learning_rate, penalty, problem
):
    # scikit-learn applies L1 by Tsuruoka et al.'s cumulative penalty, fastgd
    # by soft-thresholding each step. While a coefficient keeps its sign the
    # cumulative rule takes off exactly this step's threshold, so the two
    # agree; once one is clipped at zero, scikit-learn carries the unapplied
    # penalty forward and the paths part (from a zero start, here by up to
    # 6e-5 after 3 epochs). Start at least squares, where every coefficient
    # stays well clear of zero.
    X, y = problem
    coef, intercept = reference.lstsq(X, y)
    assert np.abs(coef).min() > 0.2
    ours, theirs = _fit_both(
        X,
        y,
        coef_init=coef,
        intercept_init=intercept,
        loss="squared_error",
        penalty=penalty,
        alpha=0.01,
        l1_ratio=0.5,
        learning_rate=learning_rate,
        eta0=0.01,
        max_iter=3,
        tol=None,
    )

    np.testing.assert_allclose(_solution(ours), _solution(theirs), rtol=STEP_RTOL)
    assert np.all(np.abs(ours.coef_) < np.abs(coef) - 1e-3)  # the penalty acted


@pytest.mark.parametrize("loss", ["squared_error", "huber"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling"])
def test_tol_stops_both_in_the_same_epoch(loss, learning_rate, problem):
    # the same rule: stop after n_iter_no_change epochs whose mean training
    # loss fails to beat the best by tol (fastgd's tol doubled with its
    # doubled squared error)
    X, y = problem
    ours, theirs = _fit_both(
        X,
        y,
        loss=loss,
        epsilon=0.5,
        penalty=None,
        learning_rate=learning_rate,
        eta0=0.01,
        max_iter=1000,
        tol=1e-4,
        n_iter_no_change=3,
    )

    assert ours.n_iter_ == theirs.n_iter_ < 1000
    np.testing.assert_allclose(_solution(ours), _solution(theirs), rtol=STEP_RTOL)


def test_adaptive_stops_one_reduction_before_scikit_learn(problem):
    # Both divide the step by 5 after n_iter_no_change epochs that fail to
    # improve by tol. scikit-learn divides while the step is above 1e-6 and
    # stops at the next stall; fastgd stops instead of dividing to below
    # 1e-6 (as documented): one reduction, n_iter_no_change epochs, earlier.
    X, y = problem
    params = {
        "loss": "huber",
        "epsilon": 0.5,
        "penalty": None,
        "learning_rate": "adaptive",
        "eta0": 0.01,
        "tol": 1e-4,
        "n_iter_no_change": 3,
    }
    ours, theirs = _fit_both(X, y, max_iter=1000, **params)
    truncated = Reference(shuffle=False, max_iter=ours.n_iter_, **params)
    with pytest.warns(ConvergenceWarning):  # scikit-learn had not stopped yet
        truncated.fit(X, y)

    steps = ours.history_["step_size"]
    np.testing.assert_allclose(steps[-1], 0.01 / 5**5)  # five reductions
    assert steps[-1] / 5 < 1e-6 < steps[-1]
    assert theirs.n_iter_ == ours.n_iter_ + 3
    np.testing.assert_allclose(_solution(ours), _solution(truncated), rtol=STEP_RTOL)


CONVERGED = {
    "constant": {
        "loss": "squared_error",
        "learning_rate": "constant",
        "eta0": 2e-4,
        "max_iter": 200,
    },
    "invscaling": {
        "loss": "squared_error",
        "learning_rate": "invscaling",
        "eta0": 0.02,
        "power_t": 0.4,
        "max_iter": 100,
    },
    "adaptive": {
        "loss": "squared_error",
        "learning_rate": "adaptive",
        "eta0": 0.01,
        "max_iter": 1000,
        "tol": 1e-5,
        "n_iter_no_change": 10,
    },
    # optimal's first steps are large: Huber bounds the slope; epsilon=3
    # holds every residual of the minimiser in its quadratic zone
    "optimal": {
        "loss": "huber",
        "epsilon": 3.0,
        "learning_rate": "optimal",
        "max_iter": 100,
    },
}


@pytest.mark.parametrize("learning_rate", list(CONVERGED))
def test_shuffled_sgd_reaches_ridge_like_scikit_learn(learning_rate, problem):
    # scikit-learn's objective mean(r**2) / 2 + alpha |w|^2 / 2 (fastgd's is
    # twice that) is Ridge's with n * alpha; with every residual inside
    # epsilon, so is the Huber objective's
    X, y = problem
    params = {
        "penalty": "l2",
        "alpha": 0.1,
        "tol": None,
        "random_state": 0,
    } | CONVERGED[learning_rate]
    ridge = Ridge(alpha=len(y) * 0.1).fit(X, y)
    expected = _solution(ridge)
    assert np.abs(ridge.predict(X) - y).max() < 3.0

    theirs = Reference(**params).fit(X, y)
    ours = SGDRegressor(batch_size=1, **_translate(**params)).fit(X, y)

    np.testing.assert_allclose(_solution(ours), expected, atol=CONVERGED_ATOL)
    np.testing.assert_allclose(_solution(theirs), expected, atol=CONVERGED_ATOL)
    assert np.abs(expected - _least_squares(X, y)).max() > 0.1


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_shuffled_sgd_reaches_coordinate_descent_like_scikit_learn(penalty, problem):
    # scikit-learn's SGD objective is Lasso's and ElasticNet's with the same
    # alpha; their paths differ (see the step test above), their minimiser
    # does not
    X, y = problem
    coef, _ = reference.lstsq(X, y)
    y = y - coef[4] * X[:, 4]  # feature 4 now explains nothing: L1 drops it
    params = {
        "loss": "squared_error",
        "penalty": penalty,
        "alpha": 0.05,
        "l1_ratio": 0.5,
        "learning_rate": "invscaling",
        "eta0": 0.02,
        "power_t": 0.4,
        "max_iter": 100,
        "tol": None,
        "random_state": 0,
    }
    solver = (
        Lasso(alpha=0.05, tol=1e-12, max_iter=100_000)
        if penalty == "l1"
        else ElasticNet(alpha=0.05, l1_ratio=0.5, tol=1e-12, max_iter=100_000)
    )
    expected = _solution(solver.fit(X, y))
    assert expected[4] == 0.0

    theirs = Reference(**params).fit(X, y)
    ours = SGDRegressor(batch_size=1, **_translate(**params)).fit(X, y)

    np.testing.assert_allclose(_solution(ours), expected, atol=CONVERGED_ATOL)
    np.testing.assert_allclose(_solution(theirs), expected, atol=CONVERGED_ATOL)
    assert np.abs(expected - _least_squares(X, y)).max() > 0.03
