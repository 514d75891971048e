"""Bad input gets a ValueError that names the problem."""

import numpy as np
import pandas as pd
import pytest

from fastgd import SGDRegressor


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 3)), rng.standard_normal(20)


@pytest.mark.parametrize(
    "where, value, match",
    [
        ("X", np.nan, "X contains NaN"),
        ("X", np.inf, "X contains infinity"),
        ("y", np.nan, "y contains NaN"),
        ("y", -np.inf, "y contains infinity"),
    ],
)
def test_non_finite_data_is_rejected(where, value, match, data):
    X, y = data[0].copy(), data[1].copy()
    (X if where == "X" else y).flat[5] = value
    with pytest.raises(ValueError, match=match):
        SGDRegressor().fit(X, y)


def test_mismatched_lengths_are_rejected(data):
    X, y = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SGDRegressor().fit(X, y[:-1])


def test_empty_data_is_rejected():
    with pytest.raises(ValueError, match="0 sample"):
        SGDRegressor().fit(np.empty((0, 3)), np.empty(0))
    with pytest.raises(ValueError, match="0 feature"):
        SGDRegressor().fit(np.empty((5, 0)), np.zeros(5))


def test_text_column_in_a_dataframe_is_named(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["city"] = ["x", "y"] * 10
    with pytest.raises(ValueError, match="column 'city' is not numeric"):
        SGDRegressor().fit(frame, y)


def test_text_column_in_an_array_is_named(data):
    X, y = data
    mixed = X.astype(object)
    mixed[3, 1] = "abc"
    with pytest.raises(ValueError, match="column 1 holds non-numeric"):
        SGDRegressor().fit(mixed, y)
    with pytest.raises(ValueError, match=r"X holds text \(dtype <U"):
        SGDRegressor().fit(X.astype(str), y)
    as_list = X.tolist()
    as_list[0][2] = "7"
    with pytest.raises(ValueError, match="column 2 holds non-numeric"):
        SGDRegressor().fit(as_list, y)


def test_text_target_is_rejected(data):
    X, _ = data
    with pytest.raises(ValueError, match="y column 0 holds non-numeric"):
        SGDRegressor().fit(X, np.array(["a"] * 20, dtype=object))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"batch_size": 0}, "'batch_size': 0"),
        ({"batch_size": 21}, "'batch_size': 21. It must not exceed"),
        ({"batch_size": 2.5}, "'batch_size': 2.5"),
        ({"batch_size": True}, "'batch_size': True"),
        ({"eta0": 0.0}, "'eta0': 0.0"),
        ({"eta0": -1.0}, "'eta0': -1.0"),
        ({"eta0": np.nan}, "'eta0': nan"),
        ({"loss": "hinge"}, "'loss': 'hinge'"),
        ({"learning_rate": "sometimes"}, "'learning_rate': 'sometimes'"),
        ({"max_iter": 0}, "'max_iter': 0"),
        ({"tol": -1.0}, "'tol': -1.0"),
        ({"n_iter_no_change": 0}, "'n_iter_no_change': 0"),
        ({"shuffle": "yes"}, "'shuffle': 'yes'"),
        ({"random_state": -3}, "'random_state': -3"),
        ({"n_jobs": 0}, "'n_jobs': 0"),
        ({"n_jobs": -2}, r"'n_jobs': -2. .* or -1 \(all threads\)"),
        ({"power_t": np.nan}, r"'power_t': nan. Expected a finite real number\.$"),
        ({"progress": "maybe"}, r"Expected a bool or 'auto'\.$"),
    ],
)
def test_invalid_parameters_are_named(params, match, data):
    with pytest.raises(ValueError, match=match):
        SGDRegressor(**params).fit(*data)


def test_predict_checks_the_number_of_features(data):
    X, y = data
    model = SGDRegressor(max_iter=2, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match="X contains NaN"):
        model.predict(np.full((2, 3), np.nan))


def test_missing_X_is_named(data):
    with pytest.raises(TypeError, match="X is None; an array of numbers"):
        SGDRegressor().fit(None, data[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"coef_init": "zeros"}, "coef_init must be an array of numbers, got 'zeros'"),
        ({"intercept_init": np.zeros(2)},
         r"intercept_init has shape \(2,\); y has 1 target, so a number is needed\.$"),
        ({"intercept_init": "zeros"},
         "intercept_init must be a number or an array of numbers, got 'zeros'"),
        # a row vector is not quietly flattened for a single target
        ({"coef_init": np.zeros((1, 3))},
         r"coef_init have shape \(1, 3\), but y has 1 target and X 3 "
         r"features, so shape \(3,\) is needed"),
    ],
)
def test_bad_starting_points_are_named(kwargs, match, data):
    with pytest.raises(ValueError, match=match):
        SGDRegressor(max_iter=2, tol=None).fit(*data, **kwargs)


def test_partial_fit_with_another_target_count_names_the_fit_it_continues(data):
    X, y = data
    model = SGDRegressor(batch_size=4).partial_fit(X, y)
    with pytest.raises(ValueError, match="from the fit partial_fit continues "
                       r"have shape \(3,\), but y has 2 targets"):
        model.partial_fit(X, np.column_stack([y, y]))


def test_n_jobs_minus_one_takes_all_threads_as_in_scikit_learn(data, monkeypatch):
    import numba

    seen = []
    original = numba.set_num_threads
    monkeypatch.setattr(numba, "set_num_threads",
                        lambda count: (seen.append(count), original(count)))
    SGDRegressor(n_jobs=-1, max_iter=2, tol=None).fit(*data)
    assert seen[0] == numba.config.NUMBA_NUM_THREADS
