"""Starting points, partial_fit, sampling, early stopping, the "auto" step
and the histories (issue 4), plus regressions found by trying to break
fastgd."""

import numpy as np
import pandas as pd
import pytest
import reference

import fastgd
from fastgd import DivergenceError, SGDRegressor, _engine


def test_coef_init_and_intercept_init_are_the_starting_point(problem):
    X, y = problem
    coef, intercept = reference.lstsq(X, y)
    model = SGDRegressor(batch_size=None, eta0=0.1, max_iter=1, tol=None)
    model.fit(X, y, coef_init=coef, intercept_init=intercept)
    # one step from the optimum stays there
    np.testing.assert_allclose(model.coef_, coef, atol=1e-12)
    assert model.loss_curve_[0] == pytest.approx(
        reference.mse(X, y, coef, intercept), rel=1e-12)


def test_starting_point_of_the_wrong_size_is_refused(problem):
    # regression: a warm start from a 2-feature fit on 5 features once let
    # the kernels read past the coefficients (memory corruption)
    X, y = problem
    model = SGDRegressor(batch_size=8, max_iter=2, tol=None, warm_start=True)
    model.fit(X[:, :2], y)
    with pytest.raises(ValueError, match=r"previous fit .* shape \(2,\), but y "
                       "has 1 target and X 5 features"):
        model.fit(X, y)
    with pytest.raises(ValueError, match=r"coef_init have shape \(3,\)"):
        SGDRegressor().fit(X, y, coef_init=np.zeros(3))
    # a warm start from one target onto three
    with pytest.raises(ValueError, match=r"y has 3 targets .* shape \(3, 2\)"):
        model.fit(X[:, :2], np.column_stack([y, y, y]))


@pytest.mark.parametrize("batch_size", [None, 1, 16])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "auto"])
@pytest.mark.parametrize("sampling", ["reshuffle", "block_shuffle"])
@pytest.mark.parametrize("loss", ["squared_error", "l2_norm"])
def test_partial_fit_calls_equal_one_fit(batch_size, learning_rate, sampling,
                                         loss, problem):
    # the l2_norm's mini-batch steps are scaled by the previous epoch's RMS,
    # which each partial_fit once measured afresh instead of carrying over
    X, y = problem
    params = dict(batch_size=batch_size, learning_rate=learning_rate,
                  sampling=sampling, block_size=8, random_state=4, loss=loss,
                  # a constant 0.05 overshoots the RMS's minimum at b = 1
                  eta0=0.05 if loss == "squared_error" else 0.01)
    whole = SGDRegressor(**params, max_iter=6, tol=None).fit(X, y)
    pieces = SGDRegressor(**params)
    for _ in range(6):
        pieces.partial_fit(X, y)
    np.testing.assert_array_equal(pieces.coef_, whole.coef_)
    assert pieces.intercept_ == whole.intercept_
    assert (pieces.n_iter_, pieces.t_) == (whole.n_iter_, whole.t_)
    np.testing.assert_array_equal(pieces.loss_curve_, whole.loss_curve_)


def test_partial_fit_checks_the_number_of_features(problem):
    X, y = problem
    model = SGDRegressor().partial_fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :3], y)


@pytest.mark.parametrize("sampling", ["reshuffle", "block_shuffle", "shuffle_once",
                                      "with_replacement", "sequential"])
def test_every_sampling_reaches_lstsq(sampling, problem):
    X, y = problem
    coef, _ = reference.lstsq(X, y)
    model = SGDRegressor(batch_size=4, eta0=0.005, max_iter=150, tol=None,
                         sampling=sampling, random_state=0).fit(X, y)
    # constant-step noise ball, as in test_stochastic_modes_reach_lstsq
    np.testing.assert_allclose(model.coef_, coef, atol=0.03)


def test_sampling_orders_have_their_documented_shape():
    rows = np.array([2, 3, 5, 7, 11], dtype=np.intp)
    order = np.empty(5, dtype=np.intp)
    _engine.draw_order(order, 3, rows)
    np.testing.assert_array_equal(np.sort(order), rows)
    draws = np.empty(20_000, dtype=np.intp)
    _engine.draw_order(draws, 3, rows, with_replacement=True)
    assert set(np.unique(draws)) == set(rows)
    counts = np.bincount(draws)[rows]
    # 4,000 expected per row; 5 sigma is about 300
    assert np.all(np.abs(counts - 4000) < 300), counts
    again = np.empty(5, dtype=np.intp)
    again[:] = 99  # the result must not depend on what the buffer held
    _engine.draw_order(again, 3, rows)
    np.testing.assert_array_equal(again, order)


def test_shuffle_false_conflicts_with_another_sampling(problem):
    with pytest.raises(ValueError, match="shuffle=False"):
        SGDRegressor(shuffle=False, sampling="with_replacement").fit(*problem)


def test_shuffle_false_agrees_with_sequential_sampling(problem):
    # both ask for rows in order: no conflict, one fit
    params = dict(batch_size=8, max_iter=3, tol=None, random_state=0)
    both = SGDRegressor(shuffle=False, sampling="sequential", **params).fit(*problem)
    one = SGDRegressor(shuffle=False, **params).fit(*problem)
    np.testing.assert_array_equal(both.coef_, one.coef_)


@pytest.mark.parametrize("batch_size", [None, 8])
def test_early_stopping_holds_out_rows_and_records_scores(batch_size, problem):
    X, y = problem
    model = SGDRegressor(batch_size=batch_size, early_stopping=True,
                         validation_fraction=0.2, tol=1e-4,
                         n_iter_no_change=3, max_iter=500,
                         eta0=0.2 if batch_size is None else 0.005,
                         random_state=0).fit(X, y)
    assert model.n_iter_ < 500
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_
    assert 0.9 < scores.max() <= 1.0
    assert len(model.history_["validation_loss"]) == model.n_iter_
    # the best score is the R^2 of the model on held-out rows: close to the
    # R^2 of the least-squares fit on all the data
    assert scores.max() == pytest.approx(
        SGDRegressor(batch_size=None, eta0=0.2, max_iter=300, tol=None)
        .fit(X, y).score(X, y), abs=0.05)


def test_early_stopping_training_rows_exclude_the_validation_rows(problem):
    # with every row but one held out... the split must leave training rows
    X, y = problem
    with pytest.raises(ValueError, match="validation_fraction"):
        SGDRegressor(early_stopping=True, validation_fraction=0.9999).fit(X, y)


def test_history_has_one_entry_per_epoch(problem):
    X, y = problem
    model = SGDRegressor(learning_rate="invscaling", eta0=0.05, max_iter=7,
                         tol=None).fit(X, y)
    for key in ("loss", "step_size", "elapsed"):
        assert len(model.history_[key]) == 7
    steps = model.history_["step_size"]
    assert np.all(np.diff(steps) < 0)  # inverse scaling shrinks the step
    assert np.all(np.diff(model.history_["elapsed"]) >= 0)


@pytest.mark.parametrize("loss", ["squared_error", "huber"])
def test_auto_step_never_diverges_at_full_batch(loss):
    # badly scaled data: any fixed eta0 is wrong for one scale or another
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 4)) * np.array([1e-2, 1.0, 1e2, 1e3])
    y = X @ np.array([1.0, 2.0, 3.0, 4.0]) + 5.0
    model = SGDRegressor(loss=loss, batch_size=None, learning_rate="auto",
                         max_iter=50, tol=None).fit(X, y)
    assert np.all(np.diff(model.loss_curve_) <= 1e-12 * model.loss_curve_[0])
    if loss == "squared_error":  # Huber's bounded slope cannot blow up
        with pytest.raises(DivergenceError, match="learning_rate='auto'"):
            SGDRegressor(batch_size=None, eta0=0.01, max_iter=50,
                         tol=None).fit(X, y)


def test_auto_step_matches_the_largest_eigenvalue(problem):
    X, y = problem
    model = SGDRegressor(batch_size=None, learning_rate="auto", max_iter=1,
                         tol=None).fit(X, y)
    design = np.column_stack([X, np.ones(len(X))])
    lipschitz = 2 * np.linalg.eigvalsh(design.T @ design / len(X)).max()
    assert model.history_["step_size"][0] == pytest.approx(1 / lipschitz,
                                                           rel=1e-4)


@pytest.mark.parametrize("batch_size", [1, 32])
def test_auto_step_is_stable_for_mini_batches(batch_size, problem):
    X, y = problem
    coef, _ = reference.lstsq(X, y)
    model = SGDRegressor(batch_size=batch_size, learning_rate="auto",
                         max_iter=30, tol=None, random_state=0).fit(X, y)
    np.testing.assert_allclose(model.coef_, coef, atol=0.05)


def test_l2_norm_instability_near_an_exact_fit_is_reported():
    # regression: a near-noiseless problem made l2_norm mini-batches blow up
    # to R^2 of -250,000 while reporting convergence
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + 1e-3 * rng.standard_normal(200)
    with pytest.raises(DivergenceError, match="lowest epoch loss so far"):
        fastgd.fit(X, y, loss="l2_norm", batch_size=32, eta0=0.01,
                   random_state=0)


@pytest.mark.parametrize("params", [{}, {"loss": "l2_norm", "learning_rate": "auto"}])
def test_overflowing_target_is_named(params):
    # "auto" derives its step from y's RMS first: it must not fail there
    # with a ZeroDivisionError instead
    X = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(ValueError, match="y holds values as large as"):
        fastgd.fit(X, np.full(50, 1e300), **params)


def test_overflowing_features_are_named():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2)) * 1e300
    with pytest.raises(DivergenceError, match="X holds values as large as"):
        fastgd.fit(X, rng.standard_normal(50), batch_size=None)


def test_pandas_nullable_columns_are_numeric():
    frame = pd.DataFrame({"a": pd.array(np.arange(30) % 7, dtype="Int64"),
                          "b": pd.array(np.linspace(0, 1, 30), dtype="Float64"),
                          "c": pd.array([True, False] * 15, dtype="boolean")})
    target = pd.Series(np.arange(30), dtype="Int64")
    model = SGDRegressor(batch_size=None, max_iter=3, tol=None).fit(frame, target)
    assert model.coef_.dtype == np.float64
    frame.loc[3, "a"] = pd.NA
    with pytest.raises(ValueError, match="X contains NaN"):
        SGDRegressor().fit(frame, target)


def test_huge_integer_batch_size_is_a_value_error(problem):
    with pytest.raises(ValueError, match="batch_size"):
        SGDRegressor(batch_size=10**20).fit(*problem)


def _averaged_reference(X, y, batch_size, eta, epochs, seed, start_rows=0):
    """Averaged SGD by hand: run fastgd's epochs in slices of one batch and
    average the iterates after each update (independent of the kernel's
    running mean)."""
    rng = fastgd._train.make_rng(seed)
    coef, intercept = np.zeros(X.shape[1]), np.zeros(1)
    iterates = []
    order = np.empty(len(y), dtype=np.intp)
    for _ in range(epochs):
        _engine.draw_order(order, int(rng.integers(0, 2**63 - 1)))
        for start in range(0, len(y), batch_size):
            _engine.stochastic_epoch(X, y, coef, intercept,
                                     order[start:start + batch_size],
                                     batch_size, eta, 0, 1.0, True)
            iterates.append(np.r_[coef, intercept])
    # the first iterate averaged is the one after the update that brings
    # the rows seen to start_rows or more (scikit-learn's rule)
    skip = max(-(-start_rows // batch_size) - 1, 0)
    return np.mean(iterates[skip:], axis=0)


@pytest.mark.parametrize("average, start_rows", [(True, 0), (200, 200)])
def test_average_is_the_mean_of_the_iterates(average, start_rows, problem):
    X, y = problem
    model = SGDRegressor(batch_size=10, eta0=0.01, max_iter=3, tol=None,
                         average=average, random_state=2).fit(X, y)
    expected = _averaged_reference(X, y, 10, 0.01, 3, 2, start_rows)
    np.testing.assert_allclose(np.r_[model.coef_, model.intercept_], expected,
                               rtol=1e-9)


def test_average_shrinks_the_noise_of_constant_step_sgd(problem):
    X, y = problem
    coef, _ = reference.lstsq(X, y)
    params = dict(batch_size=1, eta0=0.02, max_iter=40, tol=None,
                  random_state=0)
    plain = SGDRegressor(**params).fit(X, y)
    averaged = SGDRegressor(**params, average=2000).fit(X, y)
    assert (np.abs(averaged.coef_ - coef).max()
            < 0.5 * np.abs(plain.coef_ - coef).max())


def test_average_carries_over_partial_fit(problem):
    X, y = problem
    params = dict(batch_size=10, eta0=0.01, average=True, random_state=2)
    whole = SGDRegressor(**params, max_iter=3, tol=None).fit(X, y)
    pieces = SGDRegressor(**params)
    for _ in range(3):
        pieces.partial_fit(X, y)
    np.testing.assert_allclose(pieces.coef_, whole.coef_, rtol=1e-12)


def test_interrupt_keeps_the_last_completed_epoch(problem, monkeypatch):
    X, y = problem
    reference_fit = SGDRegressor(batch_size=5, max_iter=2, tol=None,
                                 random_state=1).fit(X, y)
    calls = []
    epoch = _engine.stochastic_epoch

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return epoch(*args, **kwargs)

    monkeypatch.setattr(_engine, "stochastic_epoch", interrupted)
    model = SGDRegressor(batch_size=5, max_iter=10, tol=None, random_state=1)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert model.n_iter_ == 2
    np.testing.assert_array_equal(model.coef_, reference_fit.coef_)


def test_progress_true_draws_a_bar_over_the_epochs(problem, capsys, monkeypatch):
    X, y = problem
    bars = []

    def recorded(params, partial):
        bar = make_bar(params, partial)
        bars.append(bar)
        return bar

    make_bar = fastgd._train._progress_bar
    monkeypatch.setattr(fastgd._train, "_progress_bar", recorded)
    SGDRegressor(max_iter=7, tol=None, progress=True).fit(X, y)
    assert "fastgd:" in capsys.readouterr().err
    (bar,) = bars
    assert (bar.n, bar.total) == (7, 7) and "loss=" in bar.postfix


def test_progress_auto_waits_and_needs_a_terminal(problem, capsys, monkeypatch):
    X, y = problem
    quick = dict(max_iter=3, tol=None)
    # not a terminal (pytest captures stderr): no bar
    SGDRegressor(**quick).fit(X, y)
    assert capsys.readouterr().err == ""
    # a terminal, but the fit ends before the delay: no bar
    monkeypatch.setattr(fastgd._train, "_stderr_is_terminal", lambda: True)
    SGDRegressor(**quick).fit(X, y)
    assert capsys.readouterr().err == ""
    # a terminal and a long fit (no delay here): the bar; verbose wins
    monkeypatch.setattr(fastgd._train, "PROGRESS_DELAY", 0.0)
    SGDRegressor(**quick).fit(X, y)
    assert "/3 [" in capsys.readouterr().err
    SGDRegressor(verbose=1, **quick).fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("-- Epoch") == 3


def test_progress_false_and_invalid_values(problem, capsys):
    X, y = problem
    SGDRegressor(max_iter=3, tol=None, progress=False).fit(X, y)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress"):
        SGDRegressor(progress="yes").fit(X, y)
