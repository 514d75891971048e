"""Full-batch gradient steps against the memory floor and numpy's step.

The same problem objects (``common.make_problem``) serve fastgd and the
baselines, so ``FullBatchStep.time_step`` and ``FullBatchBaselines`` line up
parameter for parameter. The smaller size fits in cache (thread scaling).
"""

from . import common, fastgd_calls

PROFILE = common.get_profile()
SIZES = (PROFILE.n_cache, *PROFILE.n_samples)


class FullBatchStep:
    """fastgd: ``_engine.full_batch_step`` (gradient and update, one pass)."""

    params = (SIZES, common.DTYPES, common.thread_counts())
    param_names = ("n_samples", "dtype", "threads")
    repeat = (3, 10, 5.0)
    rounds = 1
    timeout = 120

    def setup(self, n_samples, dtype, threads):
        self.previous_threads = fastgd_calls.set_threads(threads)
        problem = common.make_problem(n_samples, PROFILE.n_features, dtype)
        self.run = fastgd_calls.FullBatch(problem)
        self.run.step()

    def teardown(self, n_samples, dtype, threads):
        fastgd_calls.set_threads(self.previous_threads)

    def time_step(self, n_samples, dtype, threads):
        self.run.step()

    def peakmem_step(self, n_samples, dtype, threads):
        self.run.step()


class FullBatchBaselines:
    """Baselines on the same arrays: one read of X, and numpy's step."""

    params = (SIZES, common.DTYPES)
    param_names = ("n_samples", "dtype")
    repeat = (3, 10, 5.0)
    rounds = 1
    timeout = 120

    def setup(self, n_samples, dtype):
        problem = common.make_problem(n_samples, PROFILE.n_features, dtype)
        self.X, self.y = problem.X, problem.y
        self.coef = problem.X[0] * 0  # X's dtype, as a numpy user keeps it
        self.eta = common.step_size(problem, None)

    def time_read_pass(self, n_samples, dtype):
        common.read_pass(self.X)

    def time_numpy_step(self, n_samples, dtype):
        common.numpy_full_batch_step(self.X, self.y, self.coef, self.eta)

    def peakmem_numpy_step(self, n_samples, dtype):
        common.numpy_full_batch_step(self.X, self.y, self.coef, self.eta)
