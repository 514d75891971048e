"""One epoch of SGD and mini-batch SGD, fastgd against its baselines.

``StochasticEpoch`` times fastgd's epoch in shuffled order (shuffle
included, as ``fit`` runs it), in block-shuffled order
(``sampling="block_shuffle"``) and in sequential order; ``batch_size="full"``
is one full-batch step, which is a whole epoch. The quick profile runs the
epochs at the default thread count (``threads=None``); the full profile
runs 1 and 2 threads, so a parallel path slower than the serial one shows.
The baselines run the same updates with the same step sizes on the same
arrays.
"""

from . import common, fastgd_calls

PROFILE = common.get_profile()
N_SAMPLES = PROFILE.n_samples


class StochasticEpoch:
    """fastgd: ``_engine.shuffle`` + ``_engine.stochastic_epoch``."""

    params = (
        (1, 8, 32, 256, 4096, "full"),
        N_SAMPLES,
        common.DTYPES,
        PROFILE.epoch_threads,
    )
    param_names = ("batch_size", "n_samples", "dtype", "threads")
    repeat = (3, 10, 5.0)
    rounds = 1
    timeout = 300

    def setup(self, batch_size, n_samples, dtype, threads):
        self.previous_threads = fastgd_calls.set_threads(threads)
        problem = common.make_problem(n_samples, PROFILE.n_features, dtype)
        if batch_size == "full":
            run = fastgd_calls.FullBatch(problem)
            self.shuffled = self.sequential = self.block_shuffled = run.step
        else:
            run = fastgd_calls.Epoch(problem, batch_size)
            self.shuffled, self.sequential = run.shuffled, run.sequential
            self.block_shuffled = run.block_shuffled
        self.shuffled()  # the index array's pages are touched here

    def teardown(self, batch_size, n_samples, dtype, threads):
        fastgd_calls.set_threads(self.previous_threads)

    def time_shuffled_epoch(self, batch_size, n_samples, dtype, threads):
        self.shuffled()

    def time_block_shuffled_epoch(self, batch_size, n_samples, dtype, threads):
        self.block_shuffled()

    def time_sequential_epoch(self, batch_size, n_samples, dtype, threads):
        self.sequential()

    def peakmem_shuffled_epoch(self, batch_size, n_samples, dtype, threads):
        self.shuffled()


class NumpyMinibatchEpoch:
    """Baseline: a shuffled mini-batch epoch as a numpy loop."""

    params = (common.NUMPY_BATCH_SIZES, N_SAMPLES, common.DTYPES)
    param_names = ("batch_size", "n_samples", "dtype")
    repeat = (2, 5, 10.0)
    rounds = 1
    timeout = 600

    def setup(self, batch_size, n_samples, dtype):
        import numpy as np

        problem = common.make_problem(n_samples, PROFILE.n_features, dtype)
        self.X, self.y = problem.X, problem.y
        self.coef = np.zeros(problem.n_features, dtype=dtype)
        self.intercept = np.zeros(1, dtype=dtype)
        self.eta = common.step_size(problem, batch_size)
        self.rng = np.random.default_rng(0)

    def time_epoch(self, batch_size, n_samples, dtype):
        common.numpy_minibatch_epoch(
            self.X,
            self.y,
            self.coef,
            self.intercept,
            batch_size,
            self.eta,
            self.rng,
        )


class SklearnEpoch:
    """Baseline: scikit-learn's SGDRegressor, one shuffled epoch (b = 1)."""

    params = (N_SAMPLES, common.DTYPES)
    param_names = ("n_samples", "dtype")
    repeat = (2, 5, 10.0)
    rounds = 1
    timeout = 600

    def setup(self, n_samples, dtype):
        self.problem = common.make_problem(n_samples, PROFILE.n_features, dtype)
        self.model = common.sklearn_regressor(self.problem)
        m = min(1000, n_samples)
        common.sklearn_epoch(self.model, self.problem.X[:m], self.problem.y[:m])

    def time_epoch(self, n_samples, dtype):
        common.sklearn_epoch(self.model, self.problem.X, self.problem.y)

    def peakmem_epoch(self, n_samples, dtype):
        common.sklearn_epoch(self.model, self.problem.X, self.problem.y)


class TorchEpoch:
    """Baseline: PyTorch DataLoader + torch.optim.SGD, b = 32 (needs torch)."""

    params = (N_SAMPLES, common.DTYPES)
    param_names = ("n_samples", "dtype")
    repeat = (1, 3, 30.0)
    number = 1
    rounds = 1
    timeout = 1200

    def setup(self, n_samples, dtype):
        problem = common.make_problem(n_samples, PROFILE.n_features, dtype)
        self.loader, self.model, self.optimizer = common.torch_setup(problem, 32)

    def time_epoch(self, n_samples, dtype):
        common.torch_epoch(self.loader, self.model, self.optimizer)
