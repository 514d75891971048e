"""The fastgd side of every comparison, shared by both suites.

Each class holds the state one timed call needs (float64 ``coef`` and
``intercept``, the index array) and compiles the kernels on a small slice of
the same dtype in its constructor, so no timing includes Numba compilation.
"""

import time
import warnings
from contextlib import contextmanager

import numpy as np

from fastgd import SGDRegressor, _engine
from fastgd._train import DEFAULTS

from . import common

SQUARED_ERROR = _engine.LOSS_CODES["squared_error"]
BLOCK_SIZE = DEFAULTS["block_size"]


@contextmanager
def numba_threads(n_threads):
    """Run the block with ``n_threads`` Numba threads, then restore the count."""
    import numba

    if n_threads is None:
        yield
        return
    if n_threads > common.max_threads():
        raise NotImplementedError(
            f"{n_threads} threads requested, Numba allows {common.max_threads()}"
        )
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def set_threads(n_threads):
    """Set the Numba thread count; return the previous one (for teardown).

    ``None`` keeps the current count (all threads unless NUMBA_NUM_THREADS
    or another call lowered it).
    """
    import numba

    if n_threads is None:
        return numba.get_num_threads()
    if n_threads > common.max_threads():
        raise NotImplementedError(
            f"{n_threads} threads requested, Numba allows {common.max_threads()}"
        )
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    return previous


class FullBatch:
    """``_engine.full_batch_step``: one gradient step on all rows."""

    def __init__(self, problem, eta=None):
        self.X, self.y = problem.X, problem.y
        self.coef, self.intercept = common.fresh_state(problem.n_features)
        self.out = np.empty(problem.n_features + 2)
        self.eta = common.step_size(problem, None) if eta is None else eta
        m = min(64, problem.n_samples)
        _engine.full_batch_step(
            self.X[:m],
            self.y[:m],
            self.coef.copy(),
            self.intercept.copy(),
            self.eta,
            SQUARED_ERROR,
            True,
        )

    def step(self):
        return _engine.full_batch_step(
            self.X,
            self.y,
            self.coef,
            self.intercept,
            self.eta,
            SQUARED_ERROR,
            True,
            self.out,
        )

    def loss(self):
        """Mean squared residual at the current state (a step with eta = 0)."""
        return _engine.full_batch_step(
            self.X,
            self.y,
            self.coef,
            self.intercept,
            0.0,
            SQUARED_ERROR,
            True,
            self.out,
        )


class Epoch:
    """``_engine.stochastic_epoch``: one pass in batches of ``batch_size``.

    ``shuffled()`` reshuffles the index array (``_engine.shuffle``) and runs
    the epoch, as ``SGDRegressor.fit`` does every epoch; ``block_shuffled()``
    draws the order of ``sampling="block_shuffle"`` (runs of the default
    ``block_size`` rows) instead; ``sequential()`` runs it over
    ``np.arange(n)``, the memory system's best case.
    """

    def __init__(self, problem, batch_size, seed=0):
        n = problem.n_samples
        self.X, self.y = problem.X, problem.y
        self.batch_size = batch_size
        self.eta = common.step_size(problem, batch_size)
        self.coef, self.intercept = common.fresh_state(problem.n_features)
        self.order = np.arange(n, dtype=np.intp)
        self.arange = np.arange(n, dtype=np.intp)
        self.seed = seed
        m = min(256, n)
        _engine.shuffle(self.arange[:m].copy(), 0)
        _engine.draw_order(self.arange[:m].copy(), 0, block_size=BLOCK_SIZE)
        _engine.stochastic_epoch(
            self.X[:m],
            self.y[:m],
            self.coef.copy(),
            self.intercept.copy(),
            np.arange(m, dtype=np.intp),
            min(batch_size, m),
            self.eta,
            SQUARED_ERROR,
            1.0,
            True,
        )

    def shuffled(self):
        self.seed += 1
        _engine.shuffle(self.order, self.seed)
        return self._run(self.order)

    def block_shuffled(self):
        self.seed += 1
        _engine.draw_order(self.order, self.seed, block_size=BLOCK_SIZE)
        return self._run(self.order)

    def sequential(self):
        return self._run(self.arange)

    def _run(self, order):
        return _engine.stochastic_epoch(
            self.X,
            self.y,
            self.coef,
            self.intercept,
            order,
            self.batch_size,
            self.eta,
            SQUARED_ERROR,
            1.0,
            True,
        )


def regressor(problem, batch_size, max_iter, n_jobs=None):
    """An SGDRegressor for a fixed budget of ``max_iter`` epochs (tol=None)."""
    return SGDRegressor(
        batch_size=batch_size,
        eta0=common.step_size(problem, batch_size),
        max_iter=max_iter,
        tol=None,
        shuffle=True,
        random_state=0,
        n_jobs=n_jobs,
    )


def warm_up_fit(problem, batch_size, n_jobs=None):
    """Compile what ``fit`` uses, on a slice of the problem's dtype."""
    m = min(2048, problem.n_samples)
    b = None if batch_size is None else min(batch_size, m - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regressor(problem, b, 1, n_jobs).fit(problem.X[:m], problem.y[:m])


def to_target(problem, batch_size, max_epochs=50, checkpoints=32):
    """Seconds and epochs until the training loss is within 1% of optimal.

    Full batch: steps are taken and timed until the loss a step reports
    (that of the coefficients it started from) is within the target; the
    seconds are those of the steps before it.

    Stochastic: ``_engine.stochastic_epoch`` always runs over all of X
    (``order`` must have n entries), so the loss cannot be read inside a
    shuffled epoch. The rows needed are found by a replay in sequential order
    on row blocks of about ``n / checkpoints`` rows (a multiple of the batch
    size, so the updates are exactly those of one sequential epoch), with the
    loss read, untimed, after each block. The rows are i.i.d., so the
    sequential order is as random as a shuffled one. The seconds are the
    epochs needed times the median time of a shuffled epoch (shuffle
    included), measured separately from a fresh start.

    Returns ``(seconds, epochs)``, both NaN when the target is not reached.
    """
    target = common.TARGET_RATIO * problem.loss_opt
    n = problem.n_samples
    if batch_size is None or batch_size >= n:
        run = FullBatch(problem)
        elapsed = 0.0
        for step in range(max_epochs * 100):
            start = time.perf_counter()
            mse = run.step()
            if mse <= target:
                return elapsed, float(step)
            elapsed += time.perf_counter() - start
        return float("nan"), float("nan")

    run = Epoch(problem, batch_size)
    evaluator = FullBatch(problem, eta=0.0)
    evaluator.coef, evaluator.intercept = run.coef, run.intercept
    block = max(batch_size, (n // checkpoints) // batch_size * batch_size)
    rows = None
    for epoch in range(max_epochs):
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            _engine.stochastic_epoch(
                run.X[lo:hi],
                run.y[lo:hi],
                run.coef,
                run.intercept,
                run.arange[: hi - lo],
                batch_size,
                run.eta,
                SQUARED_ERROR,
                1.0,
                True,
            )
            if evaluator.loss() <= target:
                rows = epoch * n + hi
                break
        if rows is not None:
            break
    if rows is None:
        return float("nan"), float("nan")

    epochs = rows / n
    timed = Epoch(problem, batch_size)
    seconds = []
    for _ in range(min(3, int(np.ceil(epochs)))):
        start = time.perf_counter()
        timed.shuffled()
        seconds.append(time.perf_counter() - start)
    return epochs * float(np.median(seconds)), epochs


def rss_bytes():
    """Current resident set size (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return None
    import resource

    return pages * resource.getpagesize()


def reset_peak_rss():
    """Reset the kernel's high-water mark to the current RSS; False if unable."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes():
    """Peak resident set size since the last reset (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
