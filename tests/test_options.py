"""Losses, penalties, schedules and sample weights (issue 4, first part).

Each option is checked twice: the kernels against the NumPy reference step
by step, and converged fits against an independent solver of the same
objective (scikit-learn's closed-form or coordinate-descent estimators,
or SciPy).
"""

import numpy as np
import pytest
import reference
from scipy.optimize import linprog, minimize
from sklearn.linear_model import ElasticNet, Lasso, Ridge

import fastgd
from fastgd import SGDRegressor, _engine, _kernels

LOSSES = ["squared_error", "l2_norm", "huber", "epsilon_insensitive",
          "squared_epsilon_insensitive"]
PENALTIES = {None: (0.0, 0.0), "l2": (0.05, 0.0), "l1": (0.05, 1.0),
             "elasticnet": (0.05, 0.3)}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("penalty", list(PENALTIES))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("schedule", ["constant", "invscaling", "optimal"])
def test_epoch_kernel_matches_reference(loss, penalty, weighted, schedule, seed):
    X, y = reference.make_regression(60, 3, seed)
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.0, 2.0, 60) if weighted else None
    coef, intercept = rng.standard_normal(3), np.array([0.2])
    order = rng.permutation(60)
    alpha, l1_ratio = PENALTIES[penalty]
    if schedule == "optimal":
        alpha = alpha or 0.01
    options = dict(epsilon=0.5, alpha=alpha, l1_ratio=l1_ratio,
                   power_t=0.3, optimal_t0=40.0, t_start=7)
    expected = reference.minibatch_epoch(
        X, y, coef, intercept[0], order, 7, 0.02, loss, 1.7, True,
        weights=weights, schedule=schedule, **options,
    )

    total, steps = _engine.stochastic_epoch(
        X, y, coef, intercept, order, 7, 0.02, _engine.LOSS_CODES[loss], 1.7,
        True, weights=weights,
        weight_mean=1.0 if weights is None else weights.mean(),
        schedule=_engine.SCHEDULE_CODES[schedule], **options,
    )

    assert steps == expected[3]
    np.testing.assert_allclose(coef, expected[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(intercept[0], expected[1], rtol=1e-10)
    np.testing.assert_allclose(total, expected[2], rtol=1e-10)


@pytest.mark.parametrize("loss", LOSSES)
def test_full_pass_matches_reference(loss, seed):
    X, y = reference.make_regression(300, 4, seed)
    weights = np.random.default_rng(seed).uniform(0.0, 3.0, 300)
    coef, intercept = np.ones(4), np.array([0.5])
    sums = _engine.residual_sums(X, y, coef, intercept,
                                 loss_code=_engine.LOSS_CODES[loss],
                                 epsilon=0.5, weights=weights)
    value, g = reference.loss_and_slope(
        loss, reference.residual(X, y, coef, 0.5), 0.5)
    expected = np.r_[X.T @ (g * weights), g @ weights, value @ weights]
    np.testing.assert_allclose(sums, expected, rtol=1e-10)


@pytest.mark.parametrize("loss", ["huber", "squared_epsilon_insensitive"])
def test_smooth_loss_gradient_matches_finite_differences(loss, problem):
    X, y = problem
    coef, intercept = np.array([0.3, -0.2, 0.1, 0.0, 0.5]), 1.0
    sums = _engine.residual_sums(X, y, coef, np.array([intercept]),
                                 loss_code=_engine.LOSS_CODES[loss],
                                 epsilon=0.5)
    gradient = sums[:-1] * _kernels._gradient_scale(
        _engine.LOSS_CODES[loss], float(len(y)), 1.0)

    def f(c, b):
        return reference.objective(X, y, c, b, loss, epsilon=0.5)

    h = 1e-6
    numeric = []
    for j in range(6):
        step = np.zeros(6)
        step[j] = h
        numeric.append((f(coef + step[:5], intercept + step[5])
                        - f(coef - step[:5], intercept - step[5])) / (2 * h))
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)


def _full(**params):
    return SGDRegressor(batch_size=None, tol=None, **params)


def test_l2_penalty_reaches_ridge(problem):
    # fastgd: mean(r**2) + alpha/2 |w|^2; Ridge: |r|^2 + a |w|^2, so
    # a = alpha * n / 2 gives the same minimiser
    X, y = problem
    model = _full(penalty="l2", alpha=0.5, eta0=0.2, max_iter=600).fit(X, y)
    ridge = Ridge(alpha=0.5 * len(y) / 2).fit(X, y)
    np.testing.assert_allclose(model.coef_, ridge.coef_, rtol=1e-6)
    assert model.intercept_ == pytest.approx(ridge.intercept_, rel=1e-6)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.4])
def test_l1_and_elasticnet_reach_coordinate_descent(l1_ratio, problem):
    # fastgd: mean(r**2) + alpha (rho |w|_1 + (1 - rho)/2 |w|^2);
    # scikit-learn: |r|^2 / (2n) + a (rho |w|_1 + (1 - rho)/2 |w|^2),
    # the same minimiser at a = alpha / 2
    X, y = problem
    penalty = "l1" if l1_ratio == 1.0 else "elasticnet"
    X = X.copy()
    X[:, 4] *= 0.05  # a weak feature that the L1 penalty removes
    model = _full(penalty=penalty, alpha=0.4, l1_ratio=l1_ratio, eta0=0.2,
                  max_iter=3000).fit(X, y)
    solver = (Lasso(alpha=0.2, tol=1e-12, max_iter=100_000) if l1_ratio == 1
              else ElasticNet(alpha=0.2, l1_ratio=l1_ratio, tol=1e-12,
                              max_iter=100_000))
    solver.fit(X, y)
    # proximal gradient converges linearly here; 1e-6 is far above its
    # remaining error after 3000 steps and far below the penalty's effect
    np.testing.assert_allclose(model.coef_, solver.coef_, atol=1e-6)
    zeros = solver.coef_ == 0
    assert zeros.any()
    np.testing.assert_array_equal(model.coef_[zeros], 0.0)


def _scipy_minimum(X, y, loss, epsilon):
    def f(theta):
        return reference.objective(X, y, theta[:-1], theta[-1], loss,
                                   epsilon=epsilon)

    start = np.r_[np.linalg.lstsq(X, y - y.mean(), rcond=None)[0], y.mean()]
    return minimize(f, start, method="BFGS", options={"gtol": 1e-10}).x


@pytest.mark.parametrize("loss", ["huber", "squared_epsilon_insensitive"])
def test_smooth_losses_reach_the_scipy_minimum(loss, problem):
    X, y = problem
    y = y + np.random.default_rng(1).standard_t(2, len(y))  # heavy tails
    model = _full(loss=loss, epsilon=0.5, eta0=0.5, max_iter=3000).fit(X, y)
    theta = _scipy_minimum(X, y, loss, 0.5)
    # both minimise the same convex, smooth objective; BFGS stops at
    # gradient 1e-10, 3000 full-batch steps get within ~1e-7 here
    np.testing.assert_allclose(np.r_[model.coef_, model.intercept_], theta,
                               atol=1e-5)


def test_epsilon_insensitive_reaches_the_linear_program(problem):
    # min mean(max(0, |r| - eps)) is a linear program: variables
    # (w, b, s >= 0) with s_i >= |x_i w + b - y_i| - eps
    X, y = problem
    n, d = X.shape
    eps = 0.05
    cost = np.r_[np.zeros(d + 1), np.ones(n) / n]
    ones = np.ones((n, 1))
    A = np.block([[X, ones, -np.eye(n)], [-X, -ones, -np.eye(n)]])
    b = np.r_[y + eps, eps - y]
    bounds = [(None, None)] * (d + 1) + [(0, None)] * n
    lp = linprog(cost, A_ub=A, b_ub=b, bounds=bounds, method="highs")
    best = lp.fun
    model = SGDRegressor(loss="epsilon_insensitive", epsilon=eps,
                         batch_size=None, learning_rate="invscaling",
                         eta0=0.5, power_t=0.5, max_iter=4000, tol=None)
    model.fit(X, y)
    reached = reference.objective(X, y, model.coef_, model.intercept_,
                                  "epsilon_insensitive", epsilon=eps)
    # a subgradient method with steps 0.5 / sqrt(t) closes the gap like
    # 1 / sqrt(t): after 4000 steps about 1% of the optimum's value
    assert best <= reached <= best * 1.02 + 1e-9


@pytest.mark.parametrize("batch_size", [None, 1, 16])
def test_zero_weight_equals_dropping_the_row(batch_size, problem):
    X, y = problem
    weights = np.ones(len(y))
    weights[::3] = 0.0
    kept = weights > 0
    params = dict(batch_size=batch_size, tol=None, random_state=0,
                  eta0=0.2 if batch_size is None else 0.005,
                  max_iter=300 if batch_size is None else 60)
    weighted = SGDRegressor(**params).fit(X, y, sample_weight=weights)
    dropped = SGDRegressor(**params).fit(X[kept], y[kept])
    if batch_size is None:
        # the same objective and steps; only the order of additions differs
        np.testing.assert_allclose(weighted.coef_, dropped.coef_, rtol=1e-10)
    else:
        # zero-weight rows are left out of the orders: the same rows in the
        # same batches, so the same bits
        np.testing.assert_array_equal(weighted.coef_, dropped.coef_)
        assert weighted.t_ == dropped.t_


def test_integer_weights_equal_repeated_rows(problem):
    X, y = problem
    weights = np.random.default_rng(0).integers(1, 4, len(y))
    repeated = np.repeat(np.arange(len(y)), weights)
    a = _full(eta0=0.2, max_iter=300).fit(X, y, sample_weight=weights)
    b = _full(eta0=0.2, max_iter=300).fit(X[repeated], y[repeated])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10)


def test_sample_weight_is_not_modified_and_scalar_is_uniform(problem):
    X, y = problem
    weights = np.linspace(0.5, 2.0, len(y))
    before = weights.copy()
    SGDRegressor(max_iter=2, tol=None).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(weights, before)
    a = _full(eta0=0.2, max_iter=50).fit(X, y, sample_weight=3.0)
    b = _full(eta0=0.2, max_iter=50).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-12)


@pytest.mark.parametrize(
    "weights, match",
    [
        (-np.ones(500), "non-negative"),
        (np.zeros(500), "sums to zero"),
        (np.ones(499), "499 entries"),
        (np.r_[np.nan, np.ones(499)], "sample_weight contains NaN"),
        (np.r_[np.inf, np.ones(499)], "sample_weight contains infinity"),
    ],
)
def test_invalid_sample_weight_is_named(weights, match, problem):
    with pytest.raises(ValueError, match=match):
        SGDRegressor().fit(*problem, sample_weight=weights)


def test_adaptive_divides_the_step_by_five(problem, capsys):
    X, y = problem
    model = SGDRegressor(learning_rate="adaptive", eta0=0.05, batch_size=1,
                         tol=1e-2, n_iter_no_change=2, max_iter=200,
                         random_state=0, verbose=1).fit(X, y)
    steps = [float(line.split("step size ")[1].split(",")[0])
             for line in capsys.readouterr().out.splitlines()]
    changes = [b / a for a, b in zip(steps[:-1], steps[1:], strict=True) if b != a]
    assert changes and np.allclose(changes, 0.2)
    assert model.n_iter_ < 200


def test_optimal_needs_alpha(problem):
    with pytest.raises(ValueError, match="alpha"):
        SGDRegressor(learning_rate="optimal", alpha=0.0).fit(*problem)


def test_optimal_schedule_without_a_penalty_uses_alpha(problem):
    # regression: penalty=None zeroed the alpha the schedule divides by
    X, y = problem
    model = SGDRegressor(learning_rate="optimal", alpha=1.0, loss="huber",
                         max_iter=3, tol=None, verbose=0).fit(X, y)
    t0 = np.sqrt(np.sqrt(1.0)) / 1.0
    steps = model.history_["step_size"]
    # the step after the last update of each epoch: 1 / (alpha (t0 + t - 1))
    np.testing.assert_allclose(steps, 1.0 / (t0 + np.arange(1, 4) * 500 - 1))


@pytest.mark.parametrize("loss", ["huber", "epsilon_insensitive",
                                  "squared_epsilon_insensitive"])
def test_stochastic_losses_agree_with_scikit_learn(loss, problem):
    # same loss definitions, same objective; both constant-step SGD runs
    # end in a noise ball of radius ~ eta0 around the same minimiser
    from sklearn.linear_model import SGDRegressor as Reference

    X, y = problem
    ours = SGDRegressor(loss=loss, epsilon=0.1, eta0=0.002, max_iter=200,
                        tol=None, random_state=0).fit(X, y)
    theirs = Reference(loss=loss, epsilon=0.1, penalty=None,
                       learning_rate="constant", eta0=0.002, max_iter=200,
                       tol=None, random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=0.02)
    assert ours.intercept_ == pytest.approx(theirs.intercept_[0], abs=0.02)


def test_functional_fit_takes_sample_weight(problem):
    X, y = problem
    weights = np.linspace(0.1, 1.0, len(y))
    result = fastgd.fit(X, y, sample_weight=weights, batch_size=None,
                        eta0=0.2, max_iter=30, tol=None)
    model = _full(eta0=0.2, max_iter=30).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(result.coef, model.coef_)
