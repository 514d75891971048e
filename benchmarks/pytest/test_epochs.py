"""Groups ``b=1`` ... ``b=4096``: one epoch, fastgd against its baselines.

Every group holds fastgd's shuffled epoch (shuffle included, as ``fit`` runs
it), its block-shuffled epoch (``sampling="block_shuffle"``), its sequential
epoch (rows in storage order, the memory system's best case) and a
one-epoch ``SGDRegressor.fit``; ``b=1`` adds scikit-learn's epoch, ``b=8``,
``b=32`` and ``b=256`` the numpy loop, and ``b=32`` the PyTorch loop where
torch is installed.
"""

import numpy as np
import pytest

from benchmarks import common, fastgd_calls

BATCH_SIZES = (1, 8, 32, 256, 4096)


def _group(benchmark, batch_size):
    benchmark.group = f"b={batch_size}"


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fastgd_shuffled_epoch(benchmark, problem64, batch_size):
    _group(benchmark, batch_size)
    run = fastgd_calls.Epoch(problem64, batch_size)
    run.shuffled()
    benchmark(run.shuffled)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fastgd_block_shuffled_epoch(benchmark, problem64, batch_size):
    _group(benchmark, batch_size)
    run = fastgd_calls.Epoch(problem64, batch_size)
    run.block_shuffled()
    benchmark(run.block_shuffled)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fastgd_sequential_epoch(benchmark, problem64, batch_size):
    _group(benchmark, batch_size)
    run = fastgd_calls.Epoch(problem64, batch_size)
    run.sequential()
    benchmark(run.sequential)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fastgd_fit_one_epoch(benchmark, problem64, batch_size):
    _group(benchmark, batch_size)
    if batch_size > problem64.n_samples:
        pytest.skip("batch_size above n_samples")
    fastgd_calls.warm_up_fit(problem64, batch_size)
    model = fastgd_calls.regressor(problem64, batch_size, 1)
    benchmark(model.fit, problem64.X, problem64.y)


def test_sklearn_epoch(benchmark, problem64):
    _group(benchmark, 1)
    model = common.sklearn_regressor(problem64)
    common.sklearn_epoch(model, problem64.X[:1000], problem64.y[:1000])
    benchmark(common.sklearn_epoch, model, problem64.X, problem64.y)


@pytest.mark.parametrize("batch_size", common.NUMPY_BATCH_SIZES)
def test_numpy_minibatch_epoch(benchmark, problem64, batch_size):
    _group(benchmark, batch_size)
    coef, intercept = np.zeros(problem64.n_features), np.zeros(1)
    eta = common.step_size(problem64, batch_size)
    rng = np.random.default_rng(0)
    args = (problem64.X, problem64.y, coef, intercept, batch_size, eta, rng)
    benchmark(common.numpy_minibatch_epoch, *args)


def test_torch_epoch(benchmark, problem64):
    _group(benchmark, 32)
    if not common.torch_available():
        pytest.skip("PyTorch is not installed")
    parts = common.torch_setup(problem64, 32)
    benchmark.pedantic(common.torch_epoch, args=parts, rounds=3, iterations=1)
