"""Group ``b=full``: the full-batch step against one read of X and numpy."""

import pytest

from benchmarks import common, fastgd_calls

pytestmark = pytest.mark.benchmark(group="b=full")


def test_read_pass(benchmark, problem64):
    common.read_pass(problem64.X)
    benchmark(common.read_pass, problem64.X)


def test_numpy_step(benchmark, problem64):
    X, y = problem64.X, problem64.y
    coef = X[0] * 0
    eta = common.step_size(problem64, None)
    common.numpy_full_batch_step(X, y, coef, eta)
    benchmark(common.numpy_full_batch_step, X, y, coef, eta)


def test_fastgd_step_float64(benchmark, problem64):
    run = fastgd_calls.FullBatch(problem64)
    run.step()
    benchmark(run.step)


def test_fastgd_step_float32(benchmark, problem32):
    run = fastgd_calls.FullBatch(problem32)
    run.step()
    benchmark(run.step)


def test_fastgd_fit_one_step(benchmark, problem64):
    fastgd_calls.warm_up_fit(problem64, None)
    model = fastgd_calls.regressor(problem64, None, 1)
    benchmark(model.fit, problem64.X, problem64.y)


@pytest.mark.benchmark(group="b=full, in cache, threads")
@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_fastgd_step_in_cache(benchmark, problem_cache, threads):
    run = fastgd_calls.FullBatch(problem_cache)
    run.step()
    benchmark(run.step)
