"""Several targets (``y`` of shape (n, k)) fitted in the same passes over X.

The documented contract: each target's coefficients are the ones a fit on
that column alone gives, bit for bit, whenever the fit's length does not
depend on the other targets (``tol=None``); with ``tol`` the stopping rule
follows the mean loss over the targets.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import reference

import fastgd
from fastgd import SGDRegressor, _kernels


@pytest.fixture
def targets(problem):
    """The fixture's X with three targets of different scales."""
    X, y = problem
    rng = np.random.default_rng(5)
    other = X @ rng.standard_normal(X.shape[1]) - 3.0 + 0.1 * rng.standard_normal(len(y))
    return X, np.column_stack([y, other, 0.01 * y])


OPTIONS = [
    {},
    {"loss": "l2_norm", "eta0": 1e-4},
    {"loss": "huber", "epsilon": 0.3, "penalty": "elasticnet", "alpha": 0.01},
    {"learning_rate": "invscaling", "eta0": 0.05, "average": True},
    {"early_stopping": True, "penalty": "l1", "alpha": 0.001},
]


@pytest.mark.parametrize("batch_size", [None, 1, 8])
@pytest.mark.parametrize("options", OPTIONS)
def test_each_target_gets_its_single_target_fit_bit_for_bit(
    batch_size, options, targets
):
    X, Y = targets
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    params = {"eta0": 0.01, "max_iter": 4, "tol": None, "random_state": 3,
              "batch_size": batch_size}
    params.update(options)

    together = SGDRegressor(**params).fit(X, Y, sample_weight=weights)

    assert together.coef_.shape == (3, X.shape[1])
    assert together.intercept_.shape == (3,)
    for t in range(Y.shape[1]):
        alone = SGDRegressor(**params).fit(X, Y[:, t], sample_weight=weights)
        np.testing.assert_array_equal(together.coef_[t], alone.coef_)
        assert together.intercept_[t] == alone.intercept_
    # the targets differ, so equal rows would mean they were mixed up
    assert not np.allclose(together.coef_[0], together.coef_[1])


@pytest.mark.parametrize("batch_size", [None, 16])
def test_several_targets_reach_lstsq(batch_size, targets):
    X, Y = targets
    model = SGDRegressor(batch_size=batch_size, learning_rate="auto",
                         max_iter=3000 if batch_size is None else 300,
                         tol=1e-12 if batch_size is None else None,
                         random_state=0)
    if batch_size is not None:
        model.set_params(learning_rate="invscaling", eta0=0.05, power_t=0.5,
                         average=True)
    model.fit(X, Y)

    for t in range(Y.shape[1]):
        coef, intercept = reference.lstsq(X, Y[:, t])
        # full batch: converged to rounding; averaged SGD: within its noise
        atol = 1e-8 if batch_size is None else 2e-2
        np.testing.assert_allclose(model.coef_[t], coef, atol=atol * max(1, abs(Y[:, t]).max()))
        assert model.intercept_[t] == pytest.approx(intercept, abs=atol * 5)
    predicted = model.predict(X)
    assert predicted.shape == Y.shape
    np.testing.assert_allclose(predicted, X @ model.coef_.T + model.intercept_)


def test_functional_fit_and_partial_fit_take_several_targets(targets):
    X, Y = targets
    params = {"eta0": 0.01, "max_iter": 3, "tol": None, "random_state": 4}
    model = SGDRegressor(**params).fit(X, Y)
    result = fastgd.fit(X, Y, **params)
    np.testing.assert_array_equal(result.coef, model.coef_)
    np.testing.assert_array_equal(result.intercept, model.intercept_)

    stepwise = SGDRegressor(**params)
    for _ in range(3):
        stepwise.partial_fit(X, Y)
    np.testing.assert_array_equal(stepwise.coef_, model.coef_)
    with pytest.raises(ValueError, match="y has 2 targets"):
        stepwise.partial_fit(X, Y[:, :2])


def test_starting_point_for_several_targets(targets):
    X, Y = targets
    start = np.ones((3, X.shape[1]))
    model = SGDRegressor(eta0=1e-12, max_iter=1, tol=None)
    model.fit(X, Y, coef_init=start, intercept_init=[1.0, 2.0, 3.0])
    np.testing.assert_allclose(model.coef_, start, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, [1.0, 2.0, 3.0], atol=1e-9)
    with pytest.raises(ValueError, match=r"intercept_init has shape \(2,\)"):
        model.fit(X, Y, intercept_init=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"coef_init have shape \(5,\)"):
        model.fit(X, Y, coef_init=np.zeros(X.shape[1]))


def test_l2_norm_auto_full_batch_steps_each_target_at_its_own_rms(targets):
    # full-batch targets are independent: each takes the step of its own
    # RMS, so each gets the bits of a fit on its column alone
    X, Y = targets
    params = dict(loss="l2_norm", batch_size=None, learning_rate="auto",
                  max_iter=30, tol=None)
    together = SGDRegressor(**params).fit(X, Y)
    for t in range(Y.shape[1]):
        alone = SGDRegressor(**params).fit(X, Y[:, t])
        np.testing.assert_array_equal(together.coef_[t], alone.coef_)
        assert together.intercept_[t] == alone.intercept_


def test_l2_norm_auto_mini_batches_step_each_target_at_its_own_rms():
    # The targets share one eta in the kernel. Taking the smallest safe
    # step of any target froze them all once an exactly fitted target's
    # RMS reached 0; each target's norm is now scaled to its own step.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 6)) * rng.uniform(0.5, 3, 6)
    exact = X @ rng.standard_normal(6) + 3
    noisy = exact + 0.5 * rng.standard_normal(2000)
    Y = np.column_stack([noisy, exact, 100 * noisy + 5])
    params = dict(loss="l2_norm", learning_rate="auto", batch_size=32,
                  max_iter=60, tol=None, random_state=0)
    together = fastgd.fit(X, Y, **params)
    for t in range(Y.shape[1]):
        alone = fastgd.fit(X, Y[:, t], **params)
        np.testing.assert_allclose(together.coef[t], alone.coef, rtol=1e-9,
                                   atol=1e-9 * np.abs(alone.coef).max())
        coef, intercept = reference.lstsq(X, Y[:, t])
        # within SGD's noise: the targets' scales differ by 100
        spread = np.abs(coef).max()
        np.testing.assert_allclose(together.coef[t], coef, atol=0.05 * spread)


def test_shared_l2_norm_auto_step_under_a_penalty_warns_when_it_stalls_targets():
    # with a penalty the targets share the smallest step: a target 1e4
    # times smaller makes it 1e4 times too small for the other
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 5))
    y = X @ rng.standard_normal(5) + 0.5 * rng.standard_normal(2000)
    params = dict(loss="l2_norm", learning_rate="auto", batch_size=8,
                  penalty="l2", max_iter=3, tol=None, random_state=0)
    with pytest.warns(UserWarning, match="share the smallest step of any target, "
                      "here 1e\\+04 times smaller") as caught:
        fastgd.fit(X, np.column_stack([y, 1e-4 * y]), **params)
    assert len(caught) == 1  # once per fit, not once per epoch
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # targets of one scale: no warning
        fastgd.fit(X, np.column_stack([y, y + 1.0]), **params)


def test_stopping_follows_the_mean_loss_over_targets(targets):
    X, Y = targets
    model = SGDRegressor(batch_size=None, learning_rate="auto", tol=1e-6,
                         max_iter=500).fit(X, Y)
    losses = [
        reference.mse(X, Y[:, t], model.coef_[t], model.intercept_[t])
        for t in range(3)
    ]
    # the curve's last entry is the mean over the targets (at the
    # coefficients the last step started from, hence the tolerance)
    assert model.loss_curve_[-1] == pytest.approx(np.mean(losses), rel=1e-6)


_ROW_READS_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    from fastgd import _engine, _kernels

    # prefetching is a compiled intrinsic that plain Python cannot run
    _kernels._prefetch_row = lambda X, y, i: None

    class RecordingRows:
        # stands in for X with NUMBA_DISABLE_JIT=1, logging each row read
        def __init__(self, array):
            self.array, self.shape = array, array.shape
            self.size, self.itemsize = array.size, array.itemsize
            self.rows = []
        def __getitem__(self, index):
            self.rows.append(int(index[0]))
            return self.array[index]

    rng = np.random.default_rng(0)
    n_samples = 3000
    X = RecordingRows(rng.standard_normal((n_samples, 4)))
    _engine.full_batch_step(X, np.zeros((n_samples, 3)), np.ones((3, 4)),
                            np.zeros(3), 0.1, 0, True)
    print(json.dumps(X.rows))
    X.rows = []
    order = rng.permutation(n_samples)
    _engine.stochastic_epoch(X, np.zeros((n_samples, 3)), np.ones((3, 4)),
                             np.zeros(3), order, 500, 0.1, 0, 1.0, True)
    print(json.dumps(X.rows))
""")


def test_several_targets_stream_X_from_memory_once():
    # Between the first and the last read of a row for the different
    # targets, at most ROW_BLOCK other rows are read: the row is still in
    # cache, so X comes from memory once per pass, not once per target.
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, "-c", _ROW_READS_SCRIPT], env=env,
                          capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        rows = json.loads(line)
        first, last = {}, {}
        for position, row in enumerate(rows):
            first.setdefault(row, position)
            last[row] = position
        assert sorted(first) == list(range(3000))
        widest = max(len(set(rows[first[r]:last[r] + 1])) for r in first)
        assert 1 < widest <= _kernels.ROW_BLOCK
