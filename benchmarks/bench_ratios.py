"""The issue's targets 1-6 as ratios measured side by side in one process.

asv compares each benchmark with itself across commits; these ``track_``
benchmarks put fastgd and its baseline in the same process instead, timed
alternately, median of ``REPEATS`` each, so the number asv stores is the
ratio the target is stated in, and ``asv compare`` flags a ratio that moves.

Every ratio is fastgd's time over the other side's, so lower is better, as
for every other asv result: ``asv compare`` marks a ratio that grows with
``+`` (worse), like a time that grows. The target is in each docstring.
"""

from . import common, fastgd_calls

PROFILE = common.get_profile()
N = PROFILE.n_samples[-1]
D = PROFILE.n_features
REPEATS = 5


def _ratio(numerator, denominator, repeats=REPEATS):
    """median time of ``numerator`` / median time of ``denominator``."""
    import numpy as np

    top, bottom = [], []
    for _ in range(repeats):
        top.append(common.best_seconds(numerator, 1)[0])
        bottom.append(common.best_seconds(denominator, 1)[0])
    return float(np.median(top) / np.median(bottom))


class RatiosFullBatch:
    """Targets 1 and 2: the full-batch step (float64 unless stated)."""

    params = (common.thread_counts(),)
    param_names = ("threads",)
    rounds = 1
    repeat = 1
    timeout = 300

    def setup(self, threads):
        self.previous_threads = fastgd_calls.set_threads(threads)
        self.problem = common.make_problem(N, D, "float64")
        self.step = fastgd_calls.FullBatch(self.problem).step
        self.step()

    def teardown(self, threads):
        fastgd_calls.set_threads(self.previous_threads)

    def track_step_over_read_pass(self, threads):
        """Target 1: fastgd step / one read of X, ``X.sum()`` (at most 1.25)."""
        X = self.problem.X
        return _ratio(self.step, lambda: common.read_pass(X))

    track_step_over_read_pass.unit = "time ratio (lower is better)"

    def track_step_over_numpy_step(self, threads):
        """Target 1: fastgd step / numpy's step (at most 1/3)."""
        X, y = self.problem.X, self.problem.y
        coef = X[0] * 0
        eta = common.step_size(self.problem, None)
        numpy_step = lambda: common.numpy_full_batch_step(X, y, coef, eta)  # noqa: E731
        return _ratio(self.step, numpy_step)

    track_step_over_numpy_step.unit = "time ratio (lower is better)"

    def track_float32_over_float64(self, threads):
        """Target 2: float32 step / float64 step (at most 1 / 1.7 = 0.59)."""
        step32 = fastgd_calls.FullBatch(common.make_problem(N, D, "float32")).step
        step32()
        return _ratio(step32, self.step)

    track_float32_over_float64.unit = "time ratio (lower is better)"


class RatioThreads:
    """Target 6: in-cache full-batch step, 2 threads / 1 thread (<= 0.625)."""

    rounds = 1
    repeat = 1
    timeout = 120

    def setup(self):
        if common.max_threads() < 2:
            raise NotImplementedError("needs 2 Numba threads")
        problem = common.make_problem(PROFILE.n_cache, D, "float64")
        self.step = fastgd_calls.FullBatch(problem).step
        self.step()

    def track_two_threads_over_one(self):
        def one():
            with fastgd_calls.numba_threads(1):
                for _ in range(20):
                    self.step()

        def two():
            with fastgd_calls.numba_threads(2):
                for _ in range(20):
                    self.step()

        return _ratio(two, one)

    track_two_threads_over_one.unit = "time ratio (lower is better)"


class RatioSklearn:
    """Target 3: fastgd shuffled SGD epoch / scikit-learn's (at most 0.25)."""

    rounds = 1
    repeat = 1
    timeout = 600

    def setup(self):
        self.problem = common.make_problem(N, D, "float64")
        self.epoch = fastgd_calls.Epoch(self.problem, 1).shuffled
        self.model = common.sklearn_regressor(self.problem)
        common.sklearn_epoch(self.model, self.problem.X[:1000], self.problem.y[:1000])

    def track_epoch_over_sklearn(self):
        X, y = self.problem.X, self.problem.y
        return _ratio(self.epoch, lambda: common.sklearn_epoch(self.model, X, y))

    track_epoch_over_sklearn.unit = "time ratio (lower is better)"


class RatiosNumpyMinibatch:
    """Target 4: fastgd epoch / numpy loop epoch, both shuffled (<= 0.1)."""

    params = (common.NUMPY_BATCH_SIZES,)
    param_names = ("batch_size",)
    rounds = 1
    repeat = 1
    timeout = 900

    def setup(self, batch_size):
        import numpy as np

        self.problem = common.make_problem(N, D, "float64")
        self.epoch = fastgd_calls.Epoch(self.problem, batch_size).shuffled
        self.epoch()
        self.rng = np.random.default_rng(0)

    def track_epoch_over_numpy_loop(self, batch_size):
        import numpy as np

        p = self.problem
        coef = np.zeros(D)
        intercept = np.zeros(1)
        eta = common.step_size(p, batch_size)

        def numpy_epoch():
            common.numpy_minibatch_epoch(
                p.X, p.y, coef, intercept, batch_size, eta, self.rng
            )

        return _ratio(self.epoch, numpy_epoch, repeats=3)

    track_epoch_over_numpy_loop.unit = "time ratio (lower is better)"


class RatiosShuffle:
    """Target 5 (b = 32): shuffled epoch / sequential epoch (at most 3)."""

    params = ((1, 8, 32, 256, 4096),)
    param_names = ("batch_size",)
    rounds = 1
    repeat = 1
    timeout = 300

    def setup(self, batch_size):
        problem = common.make_problem(N, D, "float64")
        self.run = fastgd_calls.Epoch(problem, batch_size)
        self.run.shuffled()

    def track_shuffled_over_sequential(self, batch_size):
        return _ratio(self.run.shuffled, self.run.sequential)

    track_shuffled_over_sequential.unit = "time ratio (lower is better)"

    def track_block_shuffled_over_sequential(self, batch_size):
        return _ratio(self.run.block_shuffled, self.run.sequential)

    track_block_shuffled_over_sequential.unit = "time ratio (lower is better)"


class RatioTorch:
    """Target 4: fastgd epoch / PyTorch DataLoader + SGD epoch, b = 32 (<= 0.01)."""

    rounds = 1
    repeat = 1
    timeout = 1800

    def setup(self):
        self.problem = common.make_problem(N, D, "float64")
        torch_parts = common.torch_setup(self.problem, 32)  # skips without torch
        self.torch_epoch = lambda: common.torch_epoch(*torch_parts)
        self.epoch = fastgd_calls.Epoch(self.problem, 32).shuffled

    def track_epoch_over_torch(self):
        return _ratio(self.epoch, self.torch_epoch, repeats=2)

    track_epoch_over_torch.unit = "time ratio (lower is better)"
