"""SGDRegressor and fastgd.fit against independent references."""

import doctest
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import reference

import fastgd
from fastgd import ConvergenceWarning, DivergenceError, SGDRegressor

# the smallest step count at which full batch reaches rtol 1e-6 here is ~60;
# eta0=0.2 is safe: the largest eigenvalue of 2 X^T X / n is about 2.5
FULL = dict(batch_size=None, eta0=0.2, max_iter=400, tol=None)


def _params(model):
    return np.r_[model.coef_, model.intercept_]


@pytest.mark.parametrize("loss", ["squared_error", "l2_norm"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_full_batch_reaches_lstsq(loss, fit_intercept, problem):
    X, y = problem
    coef, intercept = reference.lstsq(X, y, fit_intercept)
    # the RMS gradient is the squared-error gradient divided by 2 * RMS: far
    # from the optimum its steps are shorter, so it gets a smaller, stable
    # eta0 (curvature at the optimum 2.5 / (2 * 0.1)) and more epochs
    eta0, max_iter = (0.2, 400) if loss == "squared_error" else (0.05, 1000)

    model = SGDRegressor(**{**FULL, "eta0": eta0, "max_iter": max_iter},
                         loss=loss, fit_intercept=fit_intercept).fit(X, y)

    np.testing.assert_allclose(model.coef_, coef, rtol=1e-6)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-6,
                               atol=1e-12)
    assert model.n_iter_ == model.t_ == max_iter


@pytest.mark.parametrize("batch_size", [1, 8, 64])
@pytest.mark.parametrize("loss", ["squared_error", "l2_norm"])
def test_stochastic_modes_reach_lstsq(batch_size, loss, problem):
    X, y = problem
    coef, intercept = reference.lstsq(X, y)
    # with a constant step, SGD ends in a noise ball around the optimum whose
    # radius grows with eta0 * (residual noise 0.1) / batch_size; 0.02 in
    # every coefficient is several times that radius at these settings
    eta0 = 0.005 if loss == "squared_error" else 0.0005
    model = SGDRegressor(batch_size=batch_size, loss=loss, eta0=eta0,
                         max_iter=60 * batch_size, tol=None, random_state=0)

    model.fit(X, y)

    np.testing.assert_allclose(_params(model), np.r_[coef, intercept],
                               atol=0.02)
    assert model.t_ == model.n_iter_ * -(-500 // batch_size)


def test_batch_size_n_is_full_batch(problem):
    X, y = problem
    full = SGDRegressor(**FULL).fit(X, y)
    as_n = SGDRegressor(**{**FULL, "batch_size": len(X)}).fit(X, y)
    np.testing.assert_array_equal(full.coef_, as_n.coef_)
    assert full.intercept_ == as_n.intercept_
    np.testing.assert_array_equal(full.loss_curve_, as_n.loss_curve_)


def test_loss_curve_matches_reference_loss(problem):
    X, y = problem
    model = SGDRegressor(**{**FULL, "max_iter": 3}).fit(X, y)
    # the first full-batch loss is that of the zero start
    assert model.loss_curve_[0] == pytest.approx(
        reference.mse(X, y, np.zeros(5), 0.0), rel=1e-12
    )
    assert model.loss_curve_.shape == (3,)
    assert np.all(np.diff(model.loss_curve_) < 0)


def test_l2_norm_zero_residual_leaves_coefficients_unchanged():
    # small integers: every residual is exactly 0.0 in floating point, in any
    # order of summation
    X = np.random.default_rng(0).integers(-5, 6, (50, 3)).astype(np.float64)
    coef = np.array([1.0, 2.0, -1.0])
    y = X @ coef + 0.5
    for batch_size in (None, 1, 10):
        model = SGDRegressor(loss="l2_norm", batch_size=batch_size,
                             warm_start=True, max_iter=3, tol=None)
        model.coef_, model.intercept_ = coef.copy(), 0.5
        model.fit(X, y)
        np.testing.assert_array_equal(model.coef_, coef)
        assert model.intercept_ == 0.5
        np.testing.assert_array_equal(model.loss_curve_, 0.0)


def test_same_random_state_gives_identical_coefficients(problem):
    X, y = problem
    a = SGDRegressor(batch_size=8, random_state=5, max_iter=5, tol=None)
    b = SGDRegressor(batch_size=8, random_state=5, max_iter=5, tol=None)
    c = SGDRegressor(batch_size=8, random_state=6, max_iter=5, tol=None)
    np.testing.assert_array_equal(a.fit(X, y).coef_, b.fit(X, y).coef_)
    assert not np.array_equal(a.coef_, c.fit(X, y).coef_)


def test_random_state_generator_is_accepted(problem):
    X, y = problem
    a = SGDRegressor(random_state=np.random.default_rng(3), max_iter=2,
                     tol=None).fit(X, y)
    b = SGDRegressor(random_state=np.random.default_rng(3), max_iter=2,
                     tol=None).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_n_jobs_does_not_change_the_result(problem):
    X, y = np.tile(problem[0], (20, 1)), np.tile(problem[1], 20)
    one = SGDRegressor(**FULL, n_jobs=1).fit(X, y)
    two = SGDRegressor(**FULL, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.coef_, two.coef_)


_THREAD_SCRIPT = textwrap.dedent("""
    import numpy as np, numba, fastgd
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30_000, 8))
    y = X @ rng.standard_normal(8) + rng.standard_normal(30_000)
    out = []
    for batch_size in (None, 1, 32):
        model = fastgd.SGDRegressor(batch_size=batch_size, eta0=0.01,
                                    max_iter=5, tol=None, random_state=3)
        model.fit(X, y)
        out.append(np.r_[model.coef_, model.intercept_])
    print(numba.get_num_threads())
    print(np.concatenate(out).tobytes().hex())
""")


def test_thread_count_gives_bit_identical_coefficients():
    results = {}
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        done = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env,
                              capture_output=True, text=True, check=True)
        reported, coefficients = done.stdout.split()
        assert reported == threads
        results[threads] = coefficients
    assert results["1"] == results["2"]


@pytest.mark.parametrize("batch_size", [None, 1, 16])
def test_float32_in_float32_out(batch_size, seed):
    X, y = reference.make_regression(300, 4, seed, dtype=np.float32)
    eta0 = 0.05 if batch_size is None else 0.01
    model = SGDRegressor(batch_size=batch_size, eta0=eta0, max_iter=200,
                         tol=None, random_state=0).fit(X, y)
    assert model.coef_.dtype == np.float32
    assert model.predict(X).dtype == np.float32
    coef, intercept = reference.lstsq(X, y)
    # constant-step SGD noise at eta0=0.01 and noise 0.1 is about 0.02
    np.testing.assert_allclose(model.coef_, coef, atol=0.05)


def test_float32_and_float64_fits_agree(seed):
    X, y = reference.make_regression(300, 4, seed)
    params = dict(batch_size=None, eta0=0.2, max_iter=200, tol=None)
    wide = SGDRegressor(**params).fit(X, y)
    narrow = SGDRegressor(**params).fit(X.astype(np.float32),
                                        y.astype(np.float32))
    np.testing.assert_allclose(narrow.coef_, wide.coef_, rtol=1e-5)


@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_inputs_are_not_modified(batch_size, problem):
    X, y = problem
    X_f = np.asfortranarray(X)
    before = X.copy(), y.copy(), X_f.copy()
    SGDRegressor(batch_size=batch_size, max_iter=3, tol=None).fit(X, y)
    SGDRegressor(batch_size=batch_size, max_iter=3, tol=None).fit(X_f, y)
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(y, before[1])
    np.testing.assert_array_equal(X_f, before[2])


def test_fortran_and_strided_input_give_the_c_result(problem):
    X, y = problem
    expected = SGDRegressor(**FULL).fit(X, y).coef_
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    for variant in (np.asfortranarray(X), wide[:, ::2]):
        np.testing.assert_array_equal(
            SGDRegressor(**FULL).fit(variant, y).coef_, expected
        )


def test_integer_data_is_fitted_as_float64():
    X = np.arange(20).reshape(10, 2) % 7
    y = np.arange(10)
    model = SGDRegressor(batch_size=None, eta0=0.001, max_iter=5,
                         tol=None).fit(X, y)
    assert model.coef_.dtype == np.float64


def test_predict_and_score(problem):
    X, y = problem
    model = SGDRegressor(**FULL).fit(X, y)
    np.testing.assert_allclose(model.predict(X),
                               X @ model.coef_ + model.intercept_)
    coef, intercept = reference.lstsq(X, y)
    r = y - X @ coef - intercept
    expected_r2 = 1 - (r @ r) / np.sum((y - y.mean()) ** 2)
    assert model.score(X, y) == pytest.approx(expected_r2, rel=1e-9)


def test_pickle_round_trip(problem):
    X, y = problem
    model = SGDRegressor(batch_size=4, max_iter=3, tol=None,
                         random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    np.testing.assert_array_equal(restored.loss_curve_, model.loss_curve_)
    assert restored.get_params() == model.get_params()


def test_tol_stops_early_and_none_runs_max_iter(problem):
    X, y = problem
    stopped = SGDRegressor(batch_size=None, eta0=0.2, tol=1e-6,
                           max_iter=1000).fit(X, y)
    assert stopped.n_iter_ < 1000
    # stopping means n_iter_no_change epochs failed to improve by tol
    tail = stopped.loss_curve_[-6:]
    assert np.all(tail[0] - tail[1:] < 1e-6 * 5 + 1e-12)
    fixed = SGDRegressor(batch_size=1, tol=None, max_iter=7).fit(X, y)
    assert fixed.n_iter_ == 7 and len(fixed.loss_curve_) == 7


def test_max_iter_before_tol_warns(problem):
    X, y = problem
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        SGDRegressor(batch_size=None, eta0=0.01, max_iter=2).fit(X, y)


def test_warm_start_continues(problem):
    X, y = problem
    model = SGDRegressor(**{**FULL, "max_iter": 10}, warm_start=True)
    model.fit(X, y)
    model.fit(X, y)
    twenty = SGDRegressor(**{**FULL, "max_iter": 20}).fit(X, y)
    np.testing.assert_allclose(model.coef_, twenty.coef_, rtol=1e-12)
    cold = SGDRegressor(**{**FULL, "max_iter": 10}).fit(X, y)
    cold.fit(X, y)
    assert not np.allclose(cold.coef_, twenty.coef_, rtol=1e-6)


@pytest.mark.parametrize("batch_size", [None, 1, 16])
def test_divergence_raises_and_keeps_finite_coefficients(batch_size, problem):
    X, y = problem
    X = X * 1e3
    model = SGDRegressor(batch_size=batch_size, eta0=0.01, max_iter=500,
                         random_state=0)
    with pytest.raises(DivergenceError, match="diverged in epoch") as info:
        model.fit(X, y)
    assert np.all(np.isfinite(model.coef_))
    assert np.isfinite(model.intercept_)
    assert info.value.epoch >= 1
    assert len(model.loss_curve_) == info.value.epoch - 1
    assert np.all(np.isfinite(model.loss_curve_))


def _mean_squared_residual(model, X, y):
    return float(np.mean((X @ model.coef_ + model.intercept_ - y) ** 2))


@pytest.mark.parametrize("batch_size", [None, 16])
def test_divergence_keeps_the_coefficients_of_the_lowest_loss(batch_size, problem):
    X, y = problem
    model = SGDRegressor(batch_size=batch_size, eta0=1e4, max_iter=50,
                         tol=None, random_state=0)
    with pytest.raises(DivergenceError) as info:
        model.fit(X, y)
    kept = _mean_squared_residual(model, X, y)
    # never worse than the starting point, and named in the message
    assert kept <= np.mean(y**2)
    assert "starting coefficients" in str(info.value) or "the best measured" in str(
        info.value
    )
    assert "inf)" not in str(info.value)


@pytest.mark.parametrize("batch_size", [None, 2])
def test_divergence_under_averaging_keeps_the_average_of_the_kept_state(batch_size):
    # The average of iterates taken after the blow-up is huge but finite in
    # float64, so nothing looked wrong until coef_ was cast to float32 and
    # came out inf. Divergence must restore the average with the
    # coefficients it keeps, and the step count.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5)).astype(np.float32)
    y = (X @ rng.uniform(-2.0, 2.0, 5)).astype(np.float32)
    model = SGDRegressor(learning_rate="optimal", alpha=1e-3, average=True,
                         batch_size=batch_size, fit_intercept=False, tol=None,
                         max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError, match="first of .*raise alpha") as info:
            model.fit(X, y)
    # the best state is the start: before step 1 of full batch (the loss of
    # epoch 1 belongs to it), before epoch 1 of mini-batches
    assert "were kept" in str(info.value)
    assert model.coef_.dtype == np.float32
    np.testing.assert_array_equal(model.coef_, 0.0)
    assert model.t_ == 0


def test_divergence_never_keeps_a_state_worse_than_the_start():
    # A stochastic epoch records the mean loss over its updates; the state
    # it ended in was kept as "the lowest loss" with an MSE of 5e5 against
    # 2.9 for the starting zeros.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 5))
    y = X @ rng.standard_normal(5)
    model = SGDRegressor(eta0=1.0, batch_size=8, max_iter=20, tol=None,
                         random_state=0)
    with pytest.raises(DivergenceError,
                       match=r"starting coefficients \(training loss 2.89\) were kept"):
        model.fit(X, y)
    assert _mean_squared_residual(model, X, y) <= np.mean(y**2)
    assert np.mean(y**2) == pytest.approx(2.89, abs=0.005)
    np.testing.assert_array_equal(model.coef_, 0.0)
    assert model.t_ == 0


@pytest.mark.parametrize("eta0", [0.68, 0.75, 0.8])
def test_full_batch_loss_rising_every_epoch_until_tol_is_divergence(eta0):
    # steps a little above 2 / L grow the loss by a constant factor: 8.6x
    # in the 5 epochs tol watches at eta0=0.8, under the 10x rule, and it
    # was called converged with an MSE of 43 against 2.8 at the start
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 5))
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(50)
    model = SGDRegressor(batch_size=None, eta0=eta0)
    with pytest.raises(DivergenceError):
        model.fit(X, y)
    assert _mean_squared_residual(model, X, y) <= min(model.loss_curve_) * (1 + 1e-9)
    # a stable step still converges
    SGDRegressor(batch_size=None, eta0=0.3).fit(X, y)


def test_loss_growing_until_tol_stops_the_fit_is_divergence():
    # a step a little above 2 / L grows the full-batch loss by a factor per
    # epoch; tol's "no improvement in 5 epochs" must not call that converged
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(200)
    model = SGDRegressor(batch_size=None, eta0=1.5, random_state=0)
    with pytest.raises(DivergenceError) as info:
        model.fit(X, y)
    assert info.value.epoch <= 10
    # the loss grew about 5x per epoch: 5 epochs without improvement end
    # the fit before any single epoch looks like an explosion
    assert model.loss_curve_[-1] < 1e4 * min(model.loss_curve_)
    # the kept coefficients are those of the best epoch: no worse than it
    assert _mean_squared_residual(model, X, y) <= min(model.loss_curve_) * (1 + 1e-9)


def test_auto_step_divergence_does_not_advise_auto(monkeypatch):
    # "auto" guarantees mini-batch progress only on average; should such a
    # fit diverge (forced here with a step 1e4 times too large), the advice
    # must not be "use auto"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(200)
    safe = fastgd._train._AutoStep.__call__
    monkeypatch.setattr(fastgd._train._AutoStep, "__call__",
                        lambda self, rms=1.0: 1e4 * safe(self, rms))
    model = SGDRegressor(learning_rate="auto", batch_size=1, tol=None,
                         max_iter=20, random_state=0)
    with pytest.raises(DivergenceError) as info:
        model.fit(X, y)
    assert "learning_rate='auto' chose" in str(info.value)
    assert "only on average" in str(info.value)
    assert "use learning_rate='auto'" not in str(info.value)


@pytest.mark.parametrize("batch_size", [None, 1, 32])
def test_l2_norm_auto_step_follows_the_rms(batch_size):
    # The RMS's curvature is 1 / RMS. A step fixed at the starting RMS
    # (2.5 here, against 0.5 at the optimum) was 5x too long near the
    # optimum: full batch swung between 0.5 and 3 and stopped "converged" at
    # 1.2. Taken at the current RMS, the step makes each update the squared
    # loss's safe step.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 10))
    y = X @ rng.standard_normal(10) + 1 + 0.5 * rng.standard_normal(5000)
    coef, intercept = reference.lstsq(X, y)
    optimum = np.sqrt(np.mean((X @ coef + intercept - y) ** 2))
    model = SGDRegressor(loss="l2_norm", batch_size=batch_size,
                         learning_rate="auto", max_iter=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning either
        model.fit(X, y)
    rms = np.sqrt(np.mean((model.predict(X) - y) ** 2))
    if batch_size is None:  # monotone descent to the least-squares point
        assert np.all(np.diff(model.loss_curve_) <= 0)
        np.testing.assert_allclose(model.coef_, coef, atol=1e-6)
        assert rms == pytest.approx(optimum, rel=1e-9)
    else:  # within SGD's constant-step noise of it
        assert rms < 1.1 * optimum
    steps = model.history_["step_size"]
    assert np.all(steps > 0) and steps[-1] < steps[0]  # shrank with the RMS


@pytest.mark.parametrize("batch_size", [None, 8])
def test_l2_norm_auto_step_fits_data_a_line_fits_exactly(batch_size):
    # zero residual at the optimum: any constant step overshoots there
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 1.0
    result = fastgd.fit(X, y, loss="l2_norm", batch_size=batch_size,
                        learning_rate="auto", max_iter=300, tol=1e-10,
                        random_state=0)
    np.testing.assert_allclose(result.coef, [1.0, -2.0, 0.5, 3.0], atol=1e-4)
    constant = dict(loss="l2_norm", batch_size=batch_size, eta0=0.05,
                    max_iter=300, tol=None, random_state=0)
    if batch_size is None:
        # full batch with a constant step swings around the optimum at a
        # distance set by the step
        swinging = fastgd.fit(X, y, **constant)
        assert swinging.loss_curve[-10:].min() > 1e6 * result.loss_curve[-1]
    else:
        # mini-batch steps divided by an RMS that shrinks toward 0 blow up
        with pytest.raises(DivergenceError, match="follows the RMS"):
            fastgd.fit(X, y, **constant)


@pytest.mark.parametrize("batch_size", [None, 1])
def test_constant_target_is_not_mistaken_for_divergence(batch_size):
    # a target with zero variance once made the divergence scale zero
    X = np.ones((4, 1))
    result = fastgd.fit(X, np.ones(4), batch_size=batch_size, max_iter=3,
                        tol=None)
    assert len(result.loss_curve) == 3


def test_warm_start_near_the_optimum_is_not_mistaken_for_divergence(problem):
    X, y = problem
    model = SGDRegressor(**FULL, warm_start=True).fit(X, y)
    model.set_params(batch_size=1, eta0=0.01, max_iter=3)
    model.fit(X, y)
    assert model.n_iter_ == 3


def test_verbose_prints_one_line_per_epoch(problem, capsys):
    X, y = problem
    SGDRegressor(verbose=1, max_iter=3, tol=None).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("-- Epoch 1: loss")
    SGDRegressor(max_iter=3, tol=None).fit(X, y)
    assert capsys.readouterr().out == ""


def test_functional_fit_matches_estimator(problem):
    X, y = problem
    result = fastgd.fit(X, y, **FULL)
    model = SGDRegressor(**FULL).fit(X, y)
    np.testing.assert_array_equal(result.coef, model.coef_)
    assert result.intercept == model.intercept_
    assert (result.n_iter, result.t) == (400, 400)
    assert result.converged is False
    assert fastgd.fit(X, y, batch_size=None, eta0=0.2, tol=1e-6).converged


@pytest.mark.parametrize("module", ["fastgd._sgd", "fastgd._train"])
def test_docstring_examples_run(module):
    failures, tried = doctest.testmod(sys.modules[module])
    assert tried > 0 and failures == 0


def test_functional_fit_rejects_unknown_parameters(problem):
    with pytest.raises(TypeError, match="'eta'"):
        fastgd.fit(*problem, eta=0.1)
    with pytest.raises(TypeError, match="warm_start"):
        fastgd.fit(*problem, warm_start=True)


def test_estimator_defaults_match_the_functional_defaults():
    from fastgd._train import DEFAULTS

    assert SGDRegressor().get_params() == DEFAULTS


def test_import_and_functional_fit_do_not_load_scikit_learn():
    script = (
        "import sys, numpy as np, fastgd\n"
        "fastgd.fit(np.ones((4, 1)), np.ones(4), max_iter=1, tol=None)\n"
        "print('sklearn' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"
