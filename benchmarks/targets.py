"""Measure fastgd's speed targets as ratios, side by side in one run.

    python benchmarks/targets.py                 # 1,000,000 x 32, 7 rounds
    python benchmarks/targets.py --n 200000      # smaller and quicker
    python benchmarks/targets.py --markdown out.md

Every ratio compares two timings taken in the same process on the same
arrays, interleaved round by round (so a burst of load from elsewhere falls
on both sides), after a warm-up round that also compiles the kernels. The
table gives the median of the per-round ratios and their range. Targets 7
and 8 run in fresh processes: start-up needs one, and peak memory is read
from the operating system.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import common
import numba
import numpy as np
from numba import njit, prange

from fastgd import _engine
from fastgd._kernels import (
    PREFETCH_DISTANCE,
    _load_acquire,
    _prefetch_row,
    _store_release,
)
from fastgd._train import DEFAULTS

SQUARED = _engine.LOSS_CODES["squared_error"]
# rows per run of sampling="block_shuffle", as fit() uses by default
BLOCK = DEFAULTS["block_size"]


# Idle time between two timed calls. After a parallel call, OpenBLAS's and
# OpenMP's worker threads keep spinning for a while (OpenBLAS: ~0.1 s); on 2
# cores that spinning slowed the next call of the other library by up to 8x
# in a probe, which would flatter whichever side runs second.
COOL_DOWN = 0.25


def rounds(functions, n_rounds, block=5):
    """Time the functions in interleaved rounds, after one warm-up round.

    Returns ``{name: array of n_rounds seconds}``. In each round every
    function runs as a block: a ``COOL_DOWN`` pause (so the other side's
    threads have stopped spinning), one untimed call that wakes this side's
    threads (on this virtual machine a sleeping thread took milliseconds to
    wake), then ``block - 1`` timed calls back to back, as a fit makes them;
    the round records their median. Interleaving the rounds makes slow drifts
    in machine load fall on all functions alike.
    """
    times = {name: [] for name in functions}
    for round_ in range(n_rounds + 1):
        for name, function in functions.items():
            time.sleep(COOL_DOWN)
            function()
            inside = []
            for _ in range(block - 1):
                start = time.perf_counter()
                function()
                inside.append(time.perf_counter() - start)
            if round_:
                times[name].append(float(np.median(inside)))
    return {name: np.array(values) for name, values in times.items()}


class Table:
    def __init__(self):
        self.rows = []

    def ratio(self, target, what, numerator, denominator, goal):
        """Add a row for ``numerator / denominator`` (per-round ratios)."""
        ratios = numerator / denominator
        median = float(np.median(ratios))
        self.rows.append(
            (target, what, median, float(ratios.min()), float(ratios.max()), goal)
        )
        print(
            f"{target:>3}  {what:<58} {median:8.3f}  "
            f"[{ratios.min():.3f}-{ratios.max():.3f}]  goal {goal}",
            flush=True,
        )

    def note(self, target, what, value, goal):
        self.rows.append((target, what, value, None, None, goal))
        print(f"{target:>3}  {what:<58} {value}  goal {goal}", flush=True)

    def markdown(self):
        lines = [
            "| target | measurement | median | range | goal |",
            "| --- | --- | --- | --- | --- |",
        ]
        for target, what, median, low, high, goal in self.rows:
            if low is None:
                lines.append(f"| {target} | {what} | {median} | | {goal} |")
            else:
                lines.append(
                    f"| {target} | {what} | {median:.3f} | {low:.3f}-{high:.3f} "
                    f"| {goal} |"
                )
        return "\n".join(lines) + "\n"


# Floors that no kernel can beat, for the targets that are not met: how
# fast X can be read at all, in order by all threads, or row by row in a
# shuffled order (with the same prefetching as fastgd's epoch kernel) on
# one thread, on all threads, or on two threads that share each batch and
# wait for each other after it, as a two-core mini-batch epoch would.


@njit(parallel=True, fastmath=True, cache=True)
def parallel_read(X):
    """Sum of X over 64 row chunks in parallel: a streaming read.

    Each chunk sums in X's own dtype, so a float32 read does no widening
    and runs at the speed of memory alone.
    """
    n_samples, n_features = X.shape
    step = (n_samples + 63) // 64
    partial = np.zeros(64)
    for c in prange(64):
        total = np.zeros(1, dtype=X.dtype)[0]
        for i in range(c * step, min((c + 1) * step, n_samples)):
            for j in range(n_features):
                total += X[i, j]
        partial[c] = total
    return partial.sum()


@njit(fastmath=True, cache=True)
def shuffled_read(X, y, order):
    """Sum of the rows of X (and y) in the order given, on one thread.

    The same visiting order and prefetching as fastgd's epoch kernel, none
    of its arithmetic or updates: the floor of any shuffled epoch.
    """
    n_features = X.shape[1]
    n_visits = order.shape[0]
    total = 0.0
    for k in range(n_visits):
        if k + PREFETCH_DISTANCE < n_visits:
            _prefetch_row(X, y, order[k + PREFETCH_DISTANCE])
        i = order[k]
        total += y[i]
        for j in range(n_features):
            total += X[i, j]
    return total


@njit(parallel=True, fastmath=True, cache=True)
def parallel_shuffled_read(X, y, order):
    """``shuffled_read`` split over all threads (64 chunks of the order).

    A mini-batch epoch cannot split its updates over threads, but its rows
    could be fetched by all of them: the lower of the two reads is the floor.
    """
    n_visits = order.shape[0]
    step = (n_visits + 63) // 64
    partial = np.zeros(64)
    for c in prange(64):
        partial[c] = shuffled_read(X, y, order[c * step: min((c + 1) * step, n_visits)])
    return partial.sum()


@njit(parallel=True, fastmath=True, cache=True)
def two_core_batched_read(X, y, order, batch_size, progress):
    """The rows of X in the order given, each batch split over two threads
    that wait for each other after every batch.

    The floor of an epoch whose two cores share each batch's rows and
    exchange their sums before the next update: only the reads and one
    synchronisation per batch, none of the arithmetic. ``progress`` is a
    zeroed int64 array of 32 entries (each thread's batch counter on its own
    cache line). Needs two threads: with one, the first would wait forever.
    """
    n_visits = order.shape[0]
    n_batches = (n_visits + batch_size - 1) // batch_size
    half = (batch_size + 1) // 2
    # prefetch the row this thread reads as many batches ahead as it takes
    # to be PREFETCH_DISTANCE of its own rows ahead
    ahead = batch_size * ((PREFETCH_DISTANCE + half - 1) // half)
    totals = np.zeros(2)
    for t in prange(2):
        other = 1 - t
        total = 0.0
        for k in range(n_batches):
            first = k * batch_size + t * half
            last = min(k * batch_size + min((t + 1) * half, batch_size), n_visits)
            for p in range(first, last):
                if p + ahead < n_visits:
                    _prefetch_row(X, y, order[p + ahead])
                i = order[p]
                total += y[i]
                for j in range(X.shape[1]):
                    total += X[i, j]
            _store_release(progress, 16 * t, np.int64(k + 1))
            while _load_acquire(progress, 16 * other) < k + 1:
                pass
        totals[t] = total
    return totals.sum()


def two_core_floor(X, y, order, batch_size):
    """``two_core_batched_read`` to time, or nothing with fewer than 2 threads."""
    if numba.get_num_threads() < 2:
        return {}

    def run():
        progress = np.zeros(32, dtype=np.int64)
        return two_core_batched_read(X, y, order, batch_size, progress)

    return {"floor, 2 cores, per batch": run}


def shuffled_floor(X, y, order):
    """The shuffled reads on one thread and on all threads, to time."""
    return {"floor, 1 thread": lambda: shuffled_read(X, y, order),
            "floor, all threads": lambda: parallel_shuffled_read(X, y, order)}


def floor_seconds(times):
    """Per round, the fastest of the reads timed (every name "floor, ...")."""
    floors = [seconds for name, seconds in times.items() if name.startswith("floor, ")]
    return np.minimum.reduce(floors)


def full_batch(problem, eta):
    coef = np.zeros(problem.n_features)
    intercept = np.zeros(1)
    out = np.empty(problem.n_features + 2)
    return lambda: _engine.full_batch_step(
        problem.X, problem.y, coef, intercept, eta, SQUARED, True, out
    )


def numpy_step(problem, eta):
    X, y = problem.X, problem.y
    state = {"coef": np.zeros(problem.n_features)}

    def step():
        coef = state["coef"]
        state["coef"] = coef - eta * (X.T @ (X @ coef - y)) / len(y)

    return step


def epoch(problem, batch_size, eta, shuffled=True, seed=1, block_size=1):
    """fastgd's epoch kernel after drawing its order (a permutation, or runs
    of ``block_size`` rows with ``block_size > 1``), or in row order."""
    order = np.arange(problem.n_samples, dtype=np.intp)
    coef = np.zeros(problem.n_features)
    intercept = np.zeros(1)
    seeds = iter(range(seed, 10**9))

    def run():
        if shuffled and block_size > 1:
            _engine.draw_order(order, next(seeds), block_size=block_size)
        elif shuffled:
            _engine.shuffle(order, next(seeds))
        _engine.stochastic_epoch(
            problem.X, problem.y, coef, intercept, order, batch_size, eta,
            SQUARED, 1.0, True,
        )

    return run


def numpy_minibatch_epoch(problem, batch_size, eta, seed=1, block_size=1):
    """The same epoch as a numpy loop; with ``block_size > 1`` it visits the
    rows in fastgd's block-shuffled order, so its gathers gain the same
    locality."""
    X, y = problem.X, problem.y
    rng = np.random.default_rng(seed)
    state = {"coef": np.zeros(problem.n_features), "b": 0.0}
    seeds = iter(range(seed, 10**9))

    def run():
        coef, b = state["coef"], state["b"]
        if block_size > 1:
            order = np.empty(len(y), dtype=np.intp)
            _engine.draw_order(order, next(seeds), block_size=block_size)
        else:
            order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            rows = order[start : start + batch_size]
            Xb = X[rows]
            r = Xb @ coef + b - y[rows]
            scale = eta * 2.0 / len(rows)
            coef = coef - scale * (Xb.T @ r)
            b = b - scale * r.sum()
        state["coef"], state["b"] = coef, b

    return run


def sklearn_epoch(problem, eta):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDRegressor

    # scikit-learn's squared loss is half of fastgd's: twice the eta0 takes
    # the same steps
    model = SGDRegressor(
        penalty=None, learning_rate="constant", eta0=2 * eta, max_iter=1,
        tol=None, shuffle=True, random_state=0,
    )

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(problem.X, problem.y)

    return run


def fastgd_fit_epoch(problem, eta):
    import fastgd

    return lambda: fastgd.fit(
        problem.X, problem.y, batch_size=1, eta0=eta, max_iter=1, tol=None,
        random_state=0,
    )


def fit_epochs(problem, batch_size, eta, epochs, sampling):
    import fastgd

    return lambda: fastgd.fit(
        problem.X, problem.y, batch_size=batch_size, eta0=eta, max_iter=epochs,
        tol=None, sampling=sampling, random_state=0,
    )


def with_threads(n_threads, function):
    def run():
        previous = numba.get_num_threads()
        numba.set_num_threads(n_threads)
        try:
            function()
        finally:
            numba.set_num_threads(previous)

    return run


_STARTUP = textwrap.dedent("""
    import time
    start = time.perf_counter()
    import numpy as np
    import fastgd
    X = np.random.default_rng(0).standard_normal((1000, 8))
    y = X.sum(axis=1)
    fastgd.fit(X, y, batch_size=None, max_iter=3, tol=None)
    fastgd.fit(X, y, batch_size=16, max_iter=3, tol=None)
    print(time.perf_counter() - start)
""")

_MEMORY = textwrap.dedent("""
    import sys
    import numpy as np
    import common, fastgd
    from fastgd import _engine

    def status(field):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    problem = common.make_problem(int(sys.argv[2]), 32, sys.argv[1])
    X, y = problem.X, problem.y
    common.make_problem.cache_clear()
    del problem
    data = X.nbytes + y.nbytes
    index = X.shape[0] * np.dtype(np.intp).itemsize
    # load every kernel the fits below use (the two-thread epoch too), so
    # that compiling or loading them is not counted
    limits = _engine.PAIR_MIN_BYTES, _engine.PAIR_MIN_VISITS
    _engine.PAIR_MIN_BYTES = _engine.PAIR_MIN_VISITS = 0
    fastgd.fit(X[:2000], y[:2000], batch_size=32, max_iter=1, tol=None)
    _engine.PAIR_MIN_BYTES, _engine.PAIR_MIN_VISITS = limits
    fastgd.fit(X[:2000], y[:2000], batch_size=1, max_iter=1, tol=None)
    fastgd.fit(X[:2000], y[:2000], batch_size=None, max_iter=1, tol=None)
    added = 0
    for batch_size in (None, 1, 32):
        # reset the kernel's record of peak resident memory (VmHWM) to now
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        before = status("VmRSS")
        fastgd.fit(X, y, batch_size=batch_size, eta0=1e-4, max_iter=2, tol=None)
        added = max(added, status("VmHWM") - before)
    print(added, data, index)
""")


def startup_seconds(cache_dir, repeats):
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    times = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", _STARTUP], env=env, capture_output=True,
            text=True, check=True,
        )
        times.append(float(done.stdout))
    return np.array(times)


def main(argv=None):
    global COOL_DOWN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds")
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument(
        "--cool-down", type=float, default=COOL_DOWN, metavar="SECONDS",
        help=f"pause before each timed block (default {COOL_DOWN}; 0 for a "
             "quick check that every measurement runs)",
    )
    args = parser.parse_args(argv)
    COOL_DOWN = args.cool_down  # read by rounds()
    n, d, R = args.n, 32, args.rounds
    table = Table()
    print(f"problem: {n} x {d}, {R} rounds after a warm-up; numba threads "
          f"{numba.get_num_threads()}", flush=True)

    f64 = common.make_problem(n, d, "float64")
    eta_full = common.step_size(f64, None)

    # the bound in the same rounds as the step: the load that slows one
    # side in a round then falls on the other three as well
    t = rounds(
        {
            "read": f64.X.sum,
            "parallel read": lambda X=f64.X: parallel_read(X),
            "numpy": numpy_step(f64, eta_full),
            "fastgd": full_batch(f64, eta_full),
        },
        R,
    )
    table.ratio(1, "full-batch step / X.sum() (one read of X)", t["fastgd"],
                t["read"], "<= 1.25")
    table.ratio(1, "numpy step / fastgd full-batch step", t["numpy"],
                t["fastgd"], ">= 3")
    table.ratio(1, "  bound: numpy step / parallel read of X (all threads)",
                t["numpy"], t["parallel read"], "no one-pass step beats this")
    table.ratio(1, "  fastgd full-batch step / parallel read of X", t["fastgd"],
                t["parallel read"], "- (1 = at the floor)")

    f32 = common.make_problem(n, d, "float32")
    t32 = rounds({"f64": full_batch(f64, eta_full), "f32": full_batch(f32, eta_full),
                  "read f32": lambda X=f32.X: parallel_read(X)}, R)
    table.ratio(2, "full-batch step float64 / float32", t32["f64"], t32["f32"],
                ">= 1.7")
    # a float32 step reads its X at least once: it can be no faster than that
    # (the read sums in float32, so it is not slowed by widening)
    table.ratio(2, "  bound: float64 step / parallel read of float32 X", t32["f64"],
                t32["read f32"], "no float32 step beats this")
    common.make_problem.cache_clear()
    del f32

    eta1 = common.step_size(f64, 1)
    t = rounds({"sklearn": sklearn_epoch(f64, eta1),
                "fastgd": fastgd_fit_epoch(f64, eta1)}, max(5, R // 2), block=2)
    table.ratio(3, "scikit-learn SGD epoch / fastgd SGD epoch (b=1, fit)",
                t["sklearn"], t["fastgd"], ">= 4")

    # any shuffled epoch must at least read the rows in its order
    order = np.arange(n, dtype=np.intp)
    _engine.shuffle(order, 11)
    # fastgd's epoch below draws its order first, as numpy's loop does
    drawn = order.copy()
    seeds = iter(range(10**9))
    t = rounds({"shuffle": lambda: _engine.shuffle(drawn, next(seeds))}, R)
    table.note(4, "  fastgd's shuffle of the index alone (ms), in every epoch below",
               f"{np.median(t['shuffle']) * 1e3:.1f} "
               f"[{t['shuffle'].min() * 1e3:.1f}-{t['shuffle'].max() * 1e3:.1f}]", "-")
    for b in (8, 32, 256):
        eta = common.step_size(f64, b)
        t = rounds({"numpy": numpy_minibatch_epoch(f64, b, eta),
                    "fastgd": epoch(f64, b, eta),
                    "fastgd, 1 thread": with_threads(1, epoch(f64, b, eta)),
                    **shuffled_floor(f64.X, f64.y, order),
                    **two_core_floor(f64.X, f64.y, order, b)},
                   max(5, R // 2), block=2)
        table.ratio(4, f"numpy loop / fastgd mini-batch epoch (b={b})",
                    t["numpy"], t["fastgd"], ">= 10")
        table.ratio(4, f"  fastgd on one thread: numpy loop / fastgd epoch (b={b})",
                    t["numpy"], t["fastgd, 1 thread"], "-")
        floor = floor_seconds(t)
        table.ratio(4, f"  bound: numpy loop / shuffled read of the rows (b={b})",
                    t["numpy"], floor, "no shuffled epoch beats this")
        # an epoch's updates are sequential: a kernel that also reads its
        # rows on that one core can beat only this
        table.ratio(4, f"  bound on one core: numpy loop / one-core read (b={b})",
                    t["numpy"], t["floor, 1 thread"], "no one-core epoch beats this")
        if "floor, 2 cores, per batch" in t:
            table.ratio(4, f"  two cores, in step per batch: numpy loop / their "
                        f"read (b={b})", t["numpy"], t["floor, 2 cores, per batch"],
                        "no two-core epoch beats this")
        t = rounds({"numpy": numpy_minibatch_epoch(f64, b, eta, block_size=BLOCK),
                    "fastgd": epoch(f64, b, eta, block_size=BLOCK)},
                   max(5, R // 2), block=2)
        table.ratio(4, f"  block_shuffle: numpy loop / fastgd epoch, both in runs "
                    f"of {BLOCK} rows (b={b})", t["numpy"], t["fastgd"], "-")
        if b == 256:
            t = rounds({"numpy": numpy_minibatch_epoch(f64, b, eta),
                        "fastgd": epoch(f64, b, eta, shuffled=False)},
                       max(5, R // 2), block=2)
            table.ratio(4, "  for reference: numpy loop / fastgd epoch in row order "
                        "(b=256)", t["numpy"], t["fastgd"], "-")
    if common.torch_available():
        eta = common.step_size(f64, 32)
        loader, model, optimizer = common.torch_setup(f64, 32)
        t = rounds({"torch": lambda: common.torch_epoch(loader, model, optimizer),
                    "fastgd": epoch(f64, 32, eta)}, 3, block=2)
        table.ratio(4, "PyTorch DataLoader + SGD / fastgd mini-batch epoch (b=32)",
                    t["torch"], t["fastgd"], ">= 100")
    else:
        table.note(4, "PyTorch DataLoader comparison", "skipped: torch not installed",
                   ">= 100")

    # Target 5 at the level a user sees it: fit() with and without
    # shuffling, per epoch (fit with 6 epochs minus fit with 1, which
    # cancels the checks and set-up), so the shuffle runs as it does in a
    # fit: drawn for the next epoch while the current one runs.
    eta32 = common.step_size(f64, 32)
    samplings = ("reshuffle", "block_shuffle", "sequential")
    t = rounds({
        f"{mode}{epochs}": fit_epochs(f64, 32, eta32, epochs, mode)
        for mode in samplings
        for epochs in (1, 6)
    }, R, block=2)
    per_epoch = {mode: (t[f"{mode}6"] - t[f"{mode}1"]) / 5 for mode in samplings}
    table.ratio(5, "shuffled / sequential mini-batch epoch in fit() (b=32)",
                per_epoch["reshuffle"], per_epoch["sequential"], "<= 3")
    table.ratio(5, f"  block_shuffle (runs of {BLOCK} rows) / sequential, in fit() "
                "(b=32)", per_epoch["block_shuffle"], per_epoch["sequential"],
                "<= 3")
    t = rounds({"shuffled": epoch(f64, 32, eta32),
                "sequential": epoch(f64, 32, eta32, shuffled=False)}, R)
    table.ratio(5, "  kernel alone, shuffle not overlapped (b=32)",
                t["shuffled"], t["sequential"], "-")
    t = rounds({**shuffled_floor(f64.X, f64.y, order),
                "sequential": epoch(f64, 32, eta32, shuffled=False)}, R)
    floor = floor_seconds(t)
    table.ratio(5, "  bound: shuffled read of the rows / sequential epoch (b=32)",
                floor, t["sequential"], "no shuffled epoch beats this")
    t = rounds({"shuffled": epoch(f64, 1, eta1),
                "sequential": epoch(f64, 1, eta1, shuffled=False)}, R)
    table.ratio(5, "shuffled / sequential SGD epoch (b=1), for reference",
                t["shuffled"], t["sequential"], "-")
    common.make_problem.cache_clear()
    del f64

    small = common.make_problem(20_000, d, "float64")
    eta_small = common.step_size(small, None)
    t = rounds({"1": with_threads(1, full_batch(small, eta_small)),
                "2": with_threads(2, full_batch(small, eta_small))}, 3 * R, block=21)
    table.ratio(6, "full-batch step 1 thread / 2 threads (20,000 x 32)",
                t["1"], t["2"], ">= 1.6")
    def pass_with_threshold(X, y, coef, b0, out, threshold):
        # the same call as a fit makes, with the size threshold forced
        def run():
            chosen = _engine.PARALLEL_MIN_ELEMENTS
            _engine.PARALLEL_MIN_ELEMENTS = threshold
            try:
                _engine.residual_sums(X, y, coef, b0, out)
            finally:
                _engine.PARALLEL_MIN_ELEMENTS = chosen

        return run

    for rows in (200, 1000, 5000, 20_000):
        tiny = common.make_problem(rows, d, "float64")
        state = (tiny.X, tiny.y, np.zeros(d), np.zeros(1), np.empty(d + 2))
        t = rounds({
            "serial": pass_with_threshold(*state, threshold=np.inf),
            "parallel": pass_with_threshold(*state, threshold=0),
            "chosen": pass_with_threshold(*state, _engine.PARALLEL_MIN_ELEMENTS),
        }, 20)
        table.ratio(6, f"chosen pass / faster of serial, parallel ({rows} x 32)",
                    t["chosen"], np.minimum(t["serial"], t["parallel"]),
                    "<= ~1 (never slower)")

    limits = ("PAIR_MIN_BYTES", "PAIR_MIN_BYTES_BIG_BATCH")
    chosen = {name: getattr(_engine, name) for name in limits}

    def epoch_with_threshold(problem, order, batch_size, eta, min_bytes):
        # a mini-batch epoch as a fit runs it, one thread or two forced
        # (min_bytes inf or 0), or as chosen (min_bytes None)
        coef, intercept = np.zeros(d), np.zeros(1)

        def run():
            for name in limits:
                setattr(_engine, name, chosen[name] if min_bytes is None else min_bytes)
            try:
                _engine.stochastic_epoch(problem.X, problem.y, coef, intercept, order,
                                         batch_size, eta, SQUARED, 1.0, True)
            finally:
                for name in limits:
                    setattr(_engine, name, chosen[name])

        return run

    # from 32 MiB of X (131,072 rows of 32) two threads share each batch of
    # a shuffled mini-batch epoch, from 4 MiB batches of 32 KiB (b = 128
    # here) or more; one thread runs the rest
    for rows in (20_000, 100_000, 200_000):
        data = common.make_problem(rows, d, "float64")
        order = np.arange(rows, dtype=np.intp)
        _engine.shuffle(order, 3)
        for b in (8, 256):
            eta = common.step_size(data, b)
            t = rounds({
                "one": epoch_with_threshold(data, order, b, eta, np.inf),
                "two": epoch_with_threshold(data, order, b, eta, 0),
                "chosen": epoch_with_threshold(data, order, b, eta, None),
            }, 3 * R, block=11)
            table.ratio(6, f"chosen epoch / faster of 1, 2 threads ({rows} x 32, "
                        f"b={b})", t["chosen"], np.minimum(t["one"], t["two"]),
                        "<= ~1 (never slower)")
    common.make_problem.cache_clear()

    with tempfile.TemporaryDirectory() as cache:
        cold = startup_seconds(cache, 1)
        warm = startup_seconds(cache, 5)
    table.note(7, "fresh process: import + 2 small fits, warm cache (s)",
               f"{np.median(warm):.2f} [{warm.min():.2f}-{warm.max():.2f}]", "< 1.5")
    table.note(7, "same with a cold cache (compilation) (s)", f"{cold[0]:.1f}", "report")

    here = os.path.dirname(os.path.abspath(__file__))
    for dtype in ("float64", "float32"):
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY, dtype, str(n)], capture_output=True,
            text=True, check=True, cwd=here,
        )
        added, data, index = (int(v) for v in done.stdout.split())
        share = (data + added) / (data + index)
        table.note(8, f"peak memory while fitting / (X + y + index), {dtype}",
                   f"{share:.3f} (fit added {added / 2**20:.1f} MiB)", "<= 1.10")

    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(table.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
