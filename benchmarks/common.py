"""Problems, sizes and step sizes shared by the asv and pytest-benchmark suites.

Both suites import this module, so a fastgd timing and the baseline it is
compared with always run on the same arrays. The fastgd calls that
are timed against the baselines live beside them in ``fastgd_calls.py``; the
problem generator comes from ``fastgd._bench``, shared with ``fastgd bench``.

Profiles (environment variable ``FASTGD_BENCH_PROFILE``):

- ``quick`` (default): 200,000 x 32, so a whole asv run takes minutes on a
  2-core machine.
- ``full``: the issue's target problem, 1,000,000 x 32 (256 MB of float64).
- ``smoke``: 4,000 x 8, for checking that the suites run at all.

Every profile also has a small problem that fits in cache (``n_cache``), for
the thread-scaling benchmarks.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

PROFILE_ENV = "FASTGD_BENCH_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    n_samples: tuple  # sizes of the main (out-of-cache) problems
    n_features: int
    n_cache: int  # rows of the problem that fits in cache
    epochs: int  # epochs run by the fixed-budget fits
    epoch_threads: tuple  # thread counts for the stochastic epochs (None: all)


PROFILES = {
    "smoke": Profile("smoke", (4_000,), 8, 2_000, 2, (None,)),
    "quick": Profile("quick", (200_000,), 32, 20_000, 3, (None,)),
    "full": Profile("full", (1_000_000,), 32, 20_000, 3, (1, 2)),
}

BATCH_SIZES = (1, 8, 32, 256, 4096, None)  # None: full batch
NUMPY_BATCH_SIZES = (8, 32, 256)
DTYPES = ("float64", "float32")

# The generated problems, their exact optima and the step-size rule are the
# ones ``fastgd bench`` uses, so the suites and the command measure the same
# thing: ``make_problem`` (cached per process; X and y written in place, so
# peak memory is the data itself) and ``step_size``.
from fastgd._bench import (  # noqa: E402, F401 (re-exported)
    SGD_MISADJUSTMENT,
    TARGET_RATIO,
    Problem,
    make_problem,
    step_size,
)


def get_profile(name=None):
    """Return the named profile, or the one ``FASTGD_BENCH_PROFILE`` selects."""
    name = name or os.environ.get(PROFILE_ENV, "quick")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"Unknown benchmark profile {name!r} (from {PROFILE_ENV}); "
            f"expected one of {sorted(PROFILES)}."
        ) from None


def max_threads():
    """Numba's thread ceiling, read without starting the thread pool.

    asv imports the suite in a server process and forks it per benchmark;
    starting OpenMP threads before the fork could hang the children.
    """
    import numba

    return numba.config.NUMBA_NUM_THREADS


def thread_counts():
    return tuple(k for k in (1, 2) if k <= max(max_threads(), 1)) or (1,)


def batch_label(batch_size):
    return "full" if batch_size is None else str(batch_size)


def n_batches(n_samples, batch_size):
    return -(-n_samples // batch_size)


def fresh_state(n_features):
    """Zero float64 ``coef`` (n_features,) and ``intercept`` (1,), as fastgd keeps."""
    return np.zeros(n_features), np.zeros(1)


def numpy_loss(problem, coef, intercept):
    """Mean squared residual at ``coef``, ``intercept`` (float64, chunked)."""
    sq = 0.0
    rows = 16_384
    for lo in range(0, problem.n_samples, rows):
        r = problem.X[lo : lo + rows] @ coef + intercept - problem.y[lo : lo + rows]
        sq += float(np.dot(r, r))
    return sq / problem.n_samples


# -- baselines -------------------------------------------------------------
# Each takes the arrays and the state it updates. The fastgd calls they are
# compared with are in fastgd_calls.py.


def read_pass(X):
    """The memory floor: one streaming read of X."""
    return X.sum()


def numpy_full_batch_step(X, y, coef, eta):
    """numpy's two-BLAS-call step: ``coef -= eta * X.T @ (X @ coef - y) / n``.

    ``coef`` is in X's dtype, as a numpy user would keep it.
    """
    coef -= eta * (X.T @ (X @ coef - y)) / X.shape[0]


def numpy_minibatch_epoch(X, y, coef, intercept, batch_size, eta, rng):
    """One shuffled epoch of mini-batch SGD written as a numpy loop.

    Per batch: gather the rows by index, then two matrix products (the
    residual and the gradient). Same update as fastgd's squared error.
    ``coef`` is in X's dtype, ``intercept`` a 1-element array of it.
    """
    order = rng.permutation(X.shape[0])
    for start in range(0, X.shape[0], batch_size):
        idx = order[start : start + batch_size]
        Xb = X[idx]
        r = Xb @ coef + intercept[0] - y[idx]
        scale = eta * 2.0 / idx.shape[0]
        coef -= scale * (r @ Xb)
        intercept -= scale * r.sum()


def sklearn_regressor(problem, seed=0):
    """scikit-learn's SGDRegressor set up for exactly one epoch, same steps."""
    from sklearn.linear_model import SGDRegressor

    return SGDRegressor(
        loss="squared_error",
        penalty=None,
        learning_rate="constant",
        eta0=2.0 * step_size(problem, 1),  # its loss is half of ours
        max_iter=1,
        tol=None,
        shuffle=True,
        random_state=seed,
        average=False,
    )


def sklearn_epoch(model, X, y):
    """Fit ``model`` for its one epoch, silencing its ConvergenceWarning."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_setup(problem, batch_size=32, seed=0):
    """A DataLoader over the problem and a linear model with torch.optim.SGD.

    Raises NotImplementedError (asv's skip) when torch is not installed.
    """
    try:
        import torch
    except ImportError:
        raise NotImplementedError("PyTorch is not installed") from None
    torch.manual_seed(seed)
    X = torch.from_numpy(problem.X)
    y = torch.from_numpy(problem.y)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y),
        batch_size=batch_size,
        shuffle=True,
    )
    model = torch.nn.Linear(problem.n_features, 1, dtype=X.dtype)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=step_size(problem, batch_size))
    return loader, model, optimizer


def torch_epoch(loader, model, optimizer):
    """One epoch of the textbook PyTorch loop (MSE loss, like fastgd's)."""
    import torch

    loss_fn = torch.nn.MSELoss()
    for Xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(Xb).squeeze(1), yb)
        loss.backward()
        optimizer.step()


def best_seconds(func, repeat=5):
    """Median and min wall time of ``repeat`` calls (for in-process ratios)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times))
