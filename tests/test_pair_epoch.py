"""Mini-batch epochs shared between two threads (``_minibatch_epoch_pair``).

The promise: the same bits as the one-thread kernel, whatever the options,
and never a hang, even when the second thread does not come. The engine
only picks the pair kernel for large X (``_engine.PAIR_MIN_*``); these
tests lower those limits so that small problems take it.
"""

import os
import subprocess
import sys
import textwrap
from unittest.mock import patch

import numba
import numpy as np
import pytest
import reference
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgd import SGDRegressor, _engine, _kernels
from fastgd.exceptions import DivergenceError

pytestmark = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads"
)


@pytest.fixture
def small_pairs(monkeypatch):
    """Let every one-target epoch with batches of 2 rows or more pair up."""
    monkeypatch.setattr(_engine, "PAIR_MIN_BYTES", 0)
    monkeypatch.setattr(_engine, "PAIR_MIN_BATCH", 2)
    monkeypatch.setattr(_engine, "PAIR_MIN_BATCH_BYTES", 0)
    monkeypatch.setattr(_engine, "PAIR_MIN_VISITS", 0)
    monkeypatch.setattr(_engine, "_pair_rest", 0)


def _settings(**values):
    settings = np.zeros(_kernels.N_SETTINGS)
    settings[_kernels.ETA0] = values.get("eta0", 0.01)
    settings[_kernels.POWER_T] = values.get("power_t", 0.25)
    settings[_kernels.OPTIMAL_T0] = values.get("optimal_t0", 0.0)
    settings[_kernels.ALPHA] = values.get("alpha", 0.0)
    settings[_kernels.L1_RATIO] = values.get("l1_ratio", 0.0)
    settings[_kernels.EPSILON] = values.get("epsilon", 0.2)
    settings[_kernels.WEIGHT_MEAN] = values.get("weight_mean", 1.0)
    settings[_kernels.AVERAGE_START] = values.get("average_start", 0.0)
    return settings


PATIENT = 1 << 40  # polls: never finish alone


def _both(X, y, order, batch_size, loss_code=0, schedule=0, weights=None,
          averaging=False, fit_intercept=True, patience=PATIENT, t_start=5,
          **values):
    """Run one epoch with each kernel from the same start; return both runs.

    ``patience`` is the pair kernel's: with a small one a thread soon stops
    waiting for the other and finishes the epoch alone.
    """
    n_features = X.shape[1]
    weights = np.empty(0) if weights is None else weights
    settings = _settings(**values)
    runs = []
    alone = 0
    for kernel in ("serial", "pair"):
        coef = np.linspace(-0.5, 0.5, n_features)
        intercept = np.array([0.25])
        average = np.zeros(n_features + 1) if averaging else np.empty(0)
        args = (X, y, weights, coef, intercept, order, batch_size, loss_code,
                schedule, settings, np.array([1.3]), fit_intercept, t_start,
                average)
        if kernel == "serial":
            sum_loss, steps = _kernels._minibatch_epoch(*args)
        else:
            # an unpaired call changes nothing, so it can be tried again (on
            # a busy machine the second thread can take long to start)
            for _ in range(5):
                result = np.empty(3)
                if _kernels._minibatch_epoch_pair(
                    *args, *_engine._pair_buffers(n_features), patience, result
                ):
                    break
            else:
                pytest.fail("the two threads did not pair up in 5 tries")
            sum_loss, steps = result[0], int(result[1])
            alone = int(result[2])
            if patience == PATIENT:
                assert alone == 0, "a thread finished the epoch alone"
        runs.append((coef, intercept, average, sum_loss, steps, alone))
    return runs


def _assert_same_bits(runs):
    (coef1, b1, avg1, loss1, steps1, _), (coef2, b2, avg2, loss2, steps2, _) = runs
    np.testing.assert_array_equal(coef2, coef1)
    np.testing.assert_array_equal(b2, b1)
    np.testing.assert_array_equal(avg2, avg1)
    assert steps2 == steps1
    assert loss2 == loss1 or (np.isnan(loss1) and np.isnan(loss2))


@pytest.fixture(scope="module")
def data():
    X, y = reference.make_regression(1003, 7, 5)
    order = np.arange(len(y), dtype=np.intp)
    _engine.shuffle(order, 9)
    return X, y, order


# batch sizes: even and odd halves, a short last batch, one batch, more
# rows than the data
@pytest.mark.parametrize("batch_size", [2, 3, 16, 33, 256, 1003, 5000])
def test_pair_kernel_gives_the_one_thread_bits(data, batch_size):
    X, y, order = data
    runs = _both(X, y, order, batch_size)
    _assert_same_bits(runs)
    # the epoch did something: the start was not a fixed point
    assert not np.array_equal(runs[0][0], np.linspace(-0.5, 0.5, X.shape[1]))


@pytest.mark.parametrize("loss_code", range(5))
@pytest.mark.parametrize("options", [
    {},
    {"schedule": _kernels.SCHEDULE_INVSCALING, "power_t": 0.5},
    {"schedule": _kernels.SCHEDULE_OPTIMAL, "eta0": 100.0, "optimal_t0": 1e4},
    {"alpha": 0.01, "l1_ratio": 0.5},
    # the penalty's shrink changes with every step under these schedules
    {"schedule": _kernels.SCHEDULE_OPTIMAL, "eta0": 100.0, "optimal_t0": 1e4,
     "alpha": 1e-3, "t_start": 38},
    {"schedule": _kernels.SCHEDULE_OPTIMAL, "eta0": 100.0, "optimal_t0": 1e4,
     "alpha": 1e-3, "l1_ratio": 0.15, "averaging": True, "t_start": 1000},
    {"schedule": _kernels.SCHEDULE_INVSCALING, "alpha": 1e-3, "t_start": 77},
    {"averaging": True, "average_start": 3.0},
    {"fit_intercept": False},
    {"weighted": True},
])
def test_pair_kernel_matches_with_every_option(data, loss_code, options):
    X, y, order = data
    options = dict(options)
    if options.pop("weighted", False):
        weights = np.random.default_rng(1).uniform(0.0, 2.0, len(y))
        options.update(weights=weights, weight_mean=weights.mean())
    _assert_same_bits(_both(X, y, order, 17, loss_code=loss_code, **options))


@pytest.mark.parametrize("patience", [0, 1, 1000, 100_000])
@pytest.mark.parametrize("options", [
    {},
    {"averaging": True, "average_start": 2.0, "loss_code": 2},
    {"schedule": _kernels.SCHEDULE_INVSCALING, "alpha": 0.01, "l1_ratio": 0.3},
])
def test_a_thread_that_stops_waiting_finishes_with_the_same_bits(
    data, patience, options
):
    # a thread that has waited `patience` polls for the other's sums (as
    # for a partner taken off its core) claims the epoch and finishes it
    # alone; with 0 or 1 that happens at once, with more at some batch
    X, y, order = data
    for batch_size in (2, 17, 64):
        runs = _both(X, y, order, batch_size, patience=patience, **options)
        _assert_same_bits(runs)
        batches = -(-len(order) // batch_size)
        alone = runs[1][5]
        assert 0 <= alone <= batches
        if patience <= 1:
            # no patience: the first wait that polls at all ends the pairing
            assert alone > 0


def test_a_thread_finishing_alone_still_stops_on_overflow():
    X = np.full((64, 2), 1e200)
    X[:, 1] *= 3.0
    runs = _both(X, np.zeros(64), np.arange(64), 8, eta0=1.0, patience=0)
    _assert_same_bits(runs)
    assert runs[1][4] == 1


def test_pair_kernel_on_float32_and_a_slice_of_the_order(data):
    X, y, order = data
    _assert_same_bits(_both(X.astype(np.float32), y.astype(np.float32),
                            order[100:700], 24))


def test_pair_kernel_stops_early_on_overflow():
    X = np.full((64, 2), 1e200)
    X[:, 1] *= 3.0  # the residual at the start is about 1e200: its square overflows
    y = np.zeros(64)
    runs = _both(X, y, np.arange(64), 8, eta0=1.0)
    _assert_same_bits(runs)
    assert not np.isfinite(runs[1][3])
    assert runs[1][4] == 1


def test_pair_kernel_gives_the_epoch_back_without_a_second_thread(data):
    # one thread runs both prange iterations one after the other: the first
    # must give up waiting and leave everything as it was
    X, y, order = data
    coef, intercept = np.ones(X.shape[1]), np.array([0.5])
    result = np.full(3, -1.0)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        ran = _kernels._minibatch_epoch_pair(
            X, y, np.empty(0), coef, intercept, order, 16, 0, 0, _settings(),
            np.ones(1), True, 0, np.empty(0), *_engine._pair_buffers(X.shape[1]),
            PATIENT, result,
        )
    finally:
        numba.set_num_threads(previous)
    assert not ran
    np.testing.assert_array_equal(coef, 1.0)
    assert intercept[0] == 0.5
    np.testing.assert_array_equal(result, -1.0)


def test_engine_picks_the_pair_kernel_only_where_it_pays():
    big = np.empty((200_000, 32))
    y = np.empty(200_000)
    assert _engine.epoch_takes_two_threads(big, y, 200_000, 32) == (
        numba.get_num_threads() >= 2
    )
    # between 4 and 32 MiB of X only batches of 32 KiB or more pair up
    middle = big[:20_000]
    assert _engine.epoch_takes_two_threads(middle, y, 20_000, 128) == (
        numba.get_num_threads() >= 2
    )
    assert not _engine.epoch_takes_two_threads(middle, y, 20_000, 64)
    # small X, small batches, narrow rows, few rows visited, several targets
    assert not _engine.epoch_takes_two_threads(big[:1000], y[:1000], 1000, 32)
    assert not _engine.epoch_takes_two_threads(big, y, 200_000, 4)
    assert not _engine.epoch_takes_two_threads(big[:, :4], y, 200_000, 16)
    assert not _engine.epoch_takes_two_threads(big, y, 1000, 32)
    assert not _engine.epoch_takes_two_threads(big, big[:, :2], 200_000, 32)


@pytest.mark.parametrize("params", [
    {"batch_size": 16},
    {"batch_size": 7, "loss": "huber", "penalty": "elasticnet", "alpha": 0.01},
    {"batch_size": 32, "learning_rate": "invscaling", "eta0": 0.05,
     "average": 10},
    {"batch_size": 8, "loss": "l2_norm", "eta0": 1e-3,
     "sampling": "block_shuffle"},
    {"batch_size": 20, "early_stopping": True, "tol": 1e-6, "max_iter": 30},
    # the L2 penalty's shrink changes with the step under "optimal" (once
    # parted in the last bits between one thread and two)
    {"batch_size": 8, "loss": "huber", "penalty": "l2", "alpha": 1e-3,
     "learning_rate": "optimal"},
])
def test_fits_on_one_and_two_threads_agree(small_pairs, monkeypatch, params):
    X, y = reference.make_regression(2000, 6, 3)
    weights = np.random.default_rng(4).uniform(0.5, 2.0, len(y))
    calls = []
    pair = _kernels._minibatch_epoch_pair

    def counting(*args):
        calls.append(1)
        return pair(*args)

    monkeypatch.setattr(_kernels, "_minibatch_epoch_pair", counting)
    settings = {"eta0": 0.01, "max_iter": 4, "tol": None, "random_state": 2}
    settings.update(params)

    one = SGDRegressor(n_jobs=1, **settings).fit(X, y, sample_weight=weights)
    assert not calls
    two = SGDRegressor(n_jobs=2, **settings).fit(X, y, sample_weight=weights)
    assert calls, "the two-thread fit did not use the pair kernel"

    np.testing.assert_array_equal(two.coef_, one.coef_)
    assert two.intercept_ == one.intercept_
    np.testing.assert_array_equal(two.loss_curve_, one.loss_curve_)


def test_after_an_epoch_finished_alone_the_next_ones_take_one_thread(
    small_pairs, monkeypatch
):
    # no patience: a thread finishes each shared epoch alone, and the engine
    # then runs PAIR_REST_EPOCHS epochs on one thread before trying again
    monkeypatch.setattr(_engine, "PAIR_PATIENCE_POLLS", 0)
    monkeypatch.setattr(_engine, "PAIR_PATIENCE_POLLS_PER_ROW", 0)
    X, y = reference.make_regression(2000, 6, 3)
    calls = []
    pair = _kernels._minibatch_epoch_pair

    def counting(*args):
        calls.append(1)
        return pair(*args)

    monkeypatch.setattr(_kernels, "_minibatch_epoch_pair", counting)
    params = {"batch_size": 16, "eta0": 0.01, "max_iter": 12, "tol": None,
              "random_state": 5}
    two = SGDRegressor(n_jobs=2, **params).fit(X, y)
    one = SGDRegressor(n_jobs=1, **params).fit(X, y)

    assert 1 <= len(calls) < 12
    np.testing.assert_array_equal(two.coef_, one.coef_)
    assert two.intercept_ == one.intercept_


def test_targets_fitted_together_match_the_pair_kernel(small_pairs):
    # several targets take the one-thread path; alone, each takes the pair
    X, y = reference.make_regression(1500, 5, 8)
    Y = np.column_stack([y, -2.0 * y + 1.0])
    params = {"batch_size": 24, "eta0": 0.005, "max_iter": 3, "tol": None,
              "random_state": 1, "n_jobs": 2}
    together = SGDRegressor(**params).fit(X, Y)
    for t in range(2):
        alone = SGDRegressor(**params).fit(X, Y[:, t])
        np.testing.assert_array_equal(together.coef_[t], alone.coef_)
        assert together.intercept_[t] == alone.intercept_


_PROCESS_SCRIPT = textwrap.dedent("""
    import numba
    import numpy as np
    import fastgd
    from fastgd import _engine

    rng = np.random.default_rng(7)
    X = rng.standard_normal((4000, 6))
    y = X @ rng.standard_normal(6) + 0.1 * rng.standard_normal(4000)
    _engine.PAIR_MIN_BYTES = _engine.PAIR_MIN_BATCH_BYTES = 0
    _engine.PAIR_MIN_VISITS = 0
    model = fastgd.SGDRegressor(batch_size=32, eta0=0.01, max_iter=3, tol=None,
                                random_state=3).fit(X, y)
    print(numba.get_num_threads(),
          np.r_[model.coef_, model.intercept_].tobytes().hex())
""")


def test_processes_with_one_and_two_threads_give_the_same_bits():
    results = {}
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        done = subprocess.run([sys.executable, "-c", _PROCESS_SCRIPT], env=env,
                              capture_output=True, text=True, check=True)
        reported, bits = done.stdout.split()
        assert reported == threads
        results[threads] = bits
    assert results["1"] == results["2"]


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    st.fixed_dictionaries({
        "loss": st.sampled_from(["squared_error", "l2_norm", "huber",
                                 "epsilon_insensitive",
                                 "squared_epsilon_insensitive"]),
        "penalty": st.sampled_from([None, "l2", "l1", "elasticnet"]),
        "learning_rate": st.sampled_from(["constant", "optimal", "invscaling",
                                          "adaptive"]),
        "average": st.sampled_from([False, True, 5]),
        "batch_size": st.sampled_from([2, 3, 8, 33]),
        "sampling": st.sampled_from(["reshuffle", "block_shuffle",
                                     "with_replacement"]),
        "fit_intercept": st.booleans(),
    }),
    st.sampled_from([np.float64, np.float32]),
    st.integers(0, 2**32 - 1),
)
def test_one_and_two_threads_agree_on_any_options(option, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((400, 5)).astype(dtype)
    y = (X @ rng.uniform(-2.0, 2.0, 5) + 0.3 * rng.standard_normal(400)).astype(dtype)
    params = dict(option, eta0=0.002, alpha=1e-3, max_iter=3, tol=None,
                  random_state=seed)

    def outcome(n_jobs):
        # a fit that diverges must diverge the same way on both
        try:
            model = SGDRegressor(n_jobs=n_jobs, **params).fit(X, y)
        except DivergenceError as error:
            return str(error)
        return np.r_[model.coef_, model.intercept_, model.loss_curve_].tobytes()

    # every one-target epoch with batches of 2 rows or more pairs up
    with patch.multiple(_engine, PAIR_MIN_BYTES=0, PAIR_MIN_BATCH=2,
                        PAIR_MIN_BATCH_BYTES=0, PAIR_MIN_VISITS=0, _pair_rest=0):
        assert outcome(2) == outcome(1)


_WARM_UP_SCRIPT = textwrap.dedent("""
    import numpy as np
    from fastgd import _bench, _cli, _engine, _kernels

    def pair_dtypes():
        return sorted(str(sig[0].dtype) for sig in _kernels._minibatch_epoch_pair.signatures)

    limits = (_engine.PAIR_MIN_BYTES, _engine.PAIR_MIN_VISITS,
              _engine.PAIR_MIN_BATCH_BYTES)
    _engine._pair_rest = 3
    before = pair_dtypes()
    _cli._warm_up(None, batch_sizes=(None,))
    after_demo = pair_dtypes()
    _bench.warm_up(np.float32)
    print(before, after_demo, pair_dtypes(), _engine._pair_rest,
          limits == (_engine.PAIR_MIN_BYTES, _engine.PAIR_MIN_VISITS,
                     _engine.PAIR_MIN_BATCH_BYTES))
""")


def test_warm_ups_compile_the_two_thread_epoch_and_leave_the_rules():
    # the demo's and the bench's warm-ups fit small problems, which never
    # take the pair kernel: without this, a first large fit compiled it
    # inside its timing (30 s of a 0.5 s demo row)
    done = subprocess.run([sys.executable, "-c", _WARM_UP_SCRIPT],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "['float64']", "['float32',", "'float64']",
                                   "3", "True"]
