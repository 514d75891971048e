"""SGDRegressor as a scikit-learn estimator: its own checks, and meta-estimators.

scikit-learn's ``check_estimator`` suite runs on three settings (full batch,
plain SGD, mini-batches of 4), each with ``learning_rate="auto"`` and with a
constant step that converges on the checks' data. The checks that cannot
apply are listed, with the reason, in ``_expected_failed_checks``.
"""

import pickle

import numpy as np
import pytest
import reference
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_fit_check_is_fitted,
    check_fit_idempotent,
    check_n_features_in,
    parametrize_with_checks,
)

from fastgd import SGDRegressor

SETTINGS = {
    "full_batch": {"batch_size": None},
    "sgd": {"batch_size": 1},
    "minibatch": {"batch_size": 4},
}
# "auto" measures the data's Lipschitz constant, so one setting serves every
# data set of the suite. For the constant step: most checks fit features in
# [0, 3], standardised features or iris (rows of squared norm up to about
# 80), where eta0=0.005 is below 2/L in every setting: for full batch
# L = 2 * lambda_max([X 1]^T [X 1] / n) <= 2 * max ||[x 1]||^2 <= 170, and for
# one row 2 * eta0 * ||[x 1]||^2 <= 0.8 < 2. 1000 epochs with tol=1e-4 then
# reach the R^2 > 0.5 that check_regressors_train asks for in every setting.
AUTO = {"learning_rate": "auto", "max_iter": 1000, "tol": 1e-4, "random_state": 0}
COMMON = {"eta0": 0.005, "max_iter": 1000, "tol": 1e-4, "random_state": 0}
ESTIMATORS = [
    SGDRegressor(**params, **setting)
    for params in (AUTO, COMMON)
    for setting in SETTINGS.values()
]

# These three checks fit X = normal(loc=100, size=(100, 2)): rows of squared
# norm about 2e4, so L is about 4e4 and a constant step is stable only for
# eta0 < 2 / L = 5e-5. At eta0=0.005 every setting diverges there, and fastgd
# raises DivergenceError by design (scikit-learn's SGDRegressor returns
# coefficients of order 1e11 instead). No single constant step serves both
# scales in a practical number of epochs: at eta0=1e-5 full batch needs about
# 1e5 steps on the standardised data of check_regressors_train. So with a
# constant step they are expected to fail in the shared run and are run on
# their own below with eta0=1e-5; with learning_rate="auto" they pass there.
UNSCALED_CHECKS = {
    check_fit_idempotent: "check_fit_idempotent",
    check_fit_check_is_fitted: "check_fit_check_is_fitted",
    check_n_features_in: "check_n_features_in",
}
UNSCALED_REASON = (
    "fits features centred at 100 (L about 4e4), on which eta0=0.005 diverges "
    "and fastgd raises DivergenceError; run with eta0=1e-5 in "
    "test_unscaled_checks_pass_with_a_safe_step"
)


def _expected_failed_checks(estimator):
    failed = {}
    if estimator.learning_rate != "auto":
        failed = dict.fromkeys(UNSCALED_CHECKS.values(), UNSCALED_REASON)
    if estimator.batch_size is not None:
        # The check compares a fit with integer weights on 15 rows with one on
        # the rows repeated. A stochastic epoch visits 15 rows in the first
        # case and sum(weights) in the second, in different random orders, so
        # the two runs agree only in expectation. (Full batch passes: its
        # weighted mean gradient is the repeated rows' mean gradient.)
        failed["check_sample_weight_equivalence_on_dense_data"] = (
            "stochastic epochs over weighted and over repeated rows take "
            "different steps in different orders; equal only in expectation"
        )
    return failed


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("check", list(UNSCALED_CHECKS), ids=UNSCALED_CHECKS.get)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_unscaled_checks_pass_with_a_safe_step(check, setting):
    # 2 * eta0 * ||[x 1]||^2 is about 0.4 for these rows, and eta0 * L about
    # 0.4 for full batch: stable in every setting
    estimator = SGDRegressor(**{**COMMON, "eta0": 1e-5}, **SETTINGS[setting])
    check("SGDRegressor", estimator)


@pytest.fixture
def data():
    return reference.make_regression(120, 4, seed=3)


def _fitted_state(model):
    return np.r_[model.coef_, model.intercept_, model.n_iter_, model.t_]


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_sgd_regressor_clone_refits_identically(setting, data):
    X, y = data
    model = SGDRegressor(**COMMON, **SETTINGS[setting]).fit(X, y)

    copy = clone(model)

    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "coef_")
    np.testing.assert_array_equal(_fitted_state(copy.fit(X, y)), _fitted_state(model))


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_sgd_regressor_in_pipeline_matches_a_plain_fit(setting, data):
    X, y = data
    X = X * [1.0, 10.0, 100.0, 0.1] + 5.0  # scales that need the scaler
    params = {**COMMON, **SETTINGS[setting]}

    pipeline = make_pipeline(StandardScaler(), SGDRegressor(**params)).fit(X, y)
    scaler = StandardScaler().fit(X)
    plain = SGDRegressor(**params).fit(scaler.transform(X), y)

    np.testing.assert_array_equal(_fitted_state(pipeline[-1]), _fitted_state(plain))
    np.testing.assert_array_equal(
        pipeline.predict(X), plain.predict(scaler.transform(X))
    )
    assert pipeline.score(X, y) > 0.99


def test_sgd_regressor_grid_search_matches_plain_fits(data):
    X, y = data
    grid = {"batch_size": [None, 1, 8], "eta0": [0.001, 0.02]}
    folds = KFold(n_splits=3)
    base = SGDRegressor(max_iter=200, tol=None, random_state=0)

    search = GridSearchCV(base, grid, cv=folds).fit(X, y)

    # the refitted best model is a plain fit with the best parameters
    best = clone(base).set_params(**search.best_params_).fit(X, y)
    np.testing.assert_array_equal(
        _fitted_state(search.best_estimator_), _fitted_state(best)
    )
    # every cross-validated score is that of a plain fit on the fold
    for index, params in enumerate(search.cv_results_["params"]):
        for split, (train, test) in enumerate(folds.split(X)):
            model = clone(base).set_params(**params).fit(X[train], y[train])
            score = search.cv_results_[f"split{split}_test_score"][index]
            assert score == model.score(X[test], y[test]), (params, split)
    assert search.best_score_ > 0.99


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_sgd_regressor_pickle_round_trip(setting, data):
    X, y = data
    model = SGDRegressor(**COMMON, **SETTINGS[setting]).fit(X, y)

    restored = pickle.loads(pickle.dumps(model))

    assert restored.get_params() == model.get_params()
    np.testing.assert_array_equal(_fitted_state(restored), _fitted_state(model))
    np.testing.assert_array_equal(restored.loss_curve_, model.loss_curve_)
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert restored.n_features_in_ == model.n_features_in_
    # an unfitted estimator survives the trip too and fits like the original
    fresh = pickle.loads(pickle.dumps(clone(model)))
    np.testing.assert_array_equal(_fitted_state(fresh.fit(X, y)), _fitted_state(model))
