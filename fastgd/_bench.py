"""Time to accuracy: full-batch GD, SGD and mini-batch SGD on one problem.

``fastgd bench`` (see ``_cli.py``) runs :func:`run_bench`: on a generated
least-squares problem it measures, for each batch size, the wall-clock time
that constant-step gradient descent needs to bring the training loss within
1% of the exact optimum, and writes a table (markdown and CSV) and a figure.

The problem generator and the step-size rule are the package's copies of
the ones the benchmark suites use (``make_problem``, ``step_size``), so the
installed package does not need the repository's ``benchmarks/`` folder.

What is timed, and what is not:

- Each method runs through ``_engine`` directly: one ``full_batch_step`` a
  call, or one ``shuffle`` and one ``stochastic_epoch`` per epoch. Only those
  calls are timed. The kernels are compiled beforehand on a tiny problem.
- Full batch: each step returns the loss of the coefficients it started
  from, so the loss after step k arrives with step k + 1 at no extra cost;
  that step is not counted.
- Stochastic: after each timed epoch an untimed pass over X computes the
  exact training loss. ``stochastic_epoch`` runs a whole epoch a call, so
  to see inside an epoch the first epoch, and the epoch in which the loss
  first meets the target, are replayed (untimed) on gathered copies of
  consecutive slices of the same shuffled order: the same rows, batches and
  arithmetic, so the replay retraces the timed run exactly. A point inside
  an epoch is given that epoch's shuffle time plus its kernel time pro rata
  by rows, except the time to the target itself: every timed repeat of a
  stochastic method runs its last epoch's kernel over the first rows of
  its order only, up to the checkpoint that met the target, so the table's
  time is measured, not interpolated.

matplotlib and tqdm are optional dependencies (``pip install
"fastgd[cli]"``), imported only when a figure or a progress bar is made.
"""

import csv
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from . import _engine
from ._threads import thread_limit

__all__ = ["make_problem", "run_bench", "step_size"]

# Loss ratio to the least-squares optimum that counts as "reached".
TARGET_RATIO = 1.01

# Stationary excess loss of constant-step SGD, as a fraction of the noise
# variance, that the stochastic step sizes are tuned for (see ``step_size``).
SGD_MISADJUSTMENT = 0.002

DEFAULT_BATCH_SIZES = (1, 8, 32, 256, 4096, None)  # None: full batch

# A method also gives up once this many times ``time_limit`` has passed on
# the wall clock, evaluations included: on a tiny problem the timed calls
# take microseconds and the untimed bookkeeping would dominate.
_WALL_FACTOR = 3.0

# Replayed epochs are cut into about this many slices; the coefficients are
# recorded after every slice and the loss after every ``_LOSS_EVERY``-th.
_REPLAY_SLICES = 1000
_LOSS_EVERY = 10

_FILE_STEM = "time_to_accuracy"


# -- the problem ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Problem:
    """A generated least-squares problem and its exact solution.

    ``X`` (C-contiguous) and ``y`` share ``dtype``. ``coef_opt`` and
    ``intercept_opt`` minimise the mean squared residual, whose value is
    ``loss_opt``; all three are float64, from the normal equations
    accumulated in float64 over the data as stored. ``second_moments`` is
    ``[X 1]^T [X 1] / n_samples``, and ``hessian_eigs`` are the eigenvalues of
    the squared loss's Hessian, twice that matrix, in ascending order.
    """

    X: np.ndarray
    y: np.ndarray
    coef_opt: np.ndarray
    intercept_opt: float
    loss_opt: float
    hessian_eigs: np.ndarray
    seconds_to_make: float
    second_moments: np.ndarray = None

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def data_bytes(self):
        return self.X.nbytes + self.y.nbytes


@functools.lru_cache(maxsize=4)
def make_problem(n_samples, n_features, dtype="float64", seed=0, condition=100.0):
    """Generate a regression problem, once per process and argument set.

    Rows are i.i.d.: standard normal features scaled so the feature
    variances run geometrically from 1 down to ``1 / condition``, targets
    ``X @ w + 0.5 + noise`` with ``w`` standard normal and unit-variance
    noise, so the optimal loss is close to 1. Because the rows are i.i.d.,
    the sequential row order is statistically as random as a shuffled one.

    Parameters
    ----------
    n_samples : int
        Rows, at least 2.
    n_features : int
        Columns, at least 1.
    dtype : {"float64", "float32"}, default="float64"
        dtype of X and y.
    seed : int, default=0
        Seed of the data.
    condition : float, default=100.0
        Ratio of the largest to the smallest feature variance, at least 1.

    Returns
    -------
    problem : Problem
        The arrays and the exact optimum. The result is cached: the same
        arguments return the same object.

    Notes
    -----
    The arrays are written in place and in chunks, and the normal equations
    are accumulated chunk by chunk, so the peak memory is the data plus a
    few MB (``lstsq`` on ``[X 1]`` would copy X). Every page is touched here.
    """
    start = time.perf_counter()
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    scales = np.geomspace(1.0, 1.0 / np.sqrt(condition), n_features)
    w = rng.standard_normal(n_features)

    with threadpool_limits(1, user_api="blas"):
        X, y, gram, rhs = _generate(rng, n_samples, scales, w, dtype)
        solution = np.linalg.solve(gram, rhs)
        coef_opt, intercept_opt = solution[:-1], float(solution[-1])
        sq = 0.0
        for lo, hi in _chunks(n_samples):
            B = X[lo:hi].astype(np.float64, copy=False)
            r = B @ coef_opt + (intercept_opt - y[lo:hi])
            sq += float(r @ r)
    second_moments = gram / n_samples
    hessian_eigs = np.linalg.eigvalsh(2.0 * second_moments)

    return Problem(
        X=X,
        y=y,
        coef_opt=coef_opt,
        intercept_opt=intercept_opt,
        loss_opt=sq / n_samples,
        hessian_eigs=hessian_eigs,
        seconds_to_make=time.perf_counter() - start,
        second_moments=second_moments,
    )


def _generate(rng, n_samples, scales, w, dtype):
    """Fill X and y chunk by chunk; accumulate the normal equations."""
    d = scales.shape[0]
    X = np.empty((n_samples, d), dtype=dtype)
    y = np.empty(n_samples, dtype=dtype)
    gram = np.zeros((d + 1, d + 1))  # [X 1]^T [X 1]
    rhs = np.zeros(d + 1)  # [X 1]^T y
    for lo, hi in _chunks(n_samples):
        block = rng.standard_normal((hi - lo, d)) * scales
        X[lo:hi] = block
        y[lo:hi] = block @ w + 0.5 + rng.standard_normal(hi - lo)
        # normal equations of the data as stored (float32 rounding included)
        B = X[lo:hi].astype(np.float64, copy=False)
        yb = y[lo:hi].astype(np.float64, copy=False)
        gram[:d, :d] += B.T @ B
        column_sums = B.sum(axis=0)
        gram[:d, d] += column_sums
        gram[d, :d] += column_sums
        rhs[:d] += B.T @ yb
        rhs[d] += yb.sum()
    gram[d, d] = n_samples
    return X, y, gram, rhs


def _chunks(n_samples, rows=16_384):
    for lo in range(0, n_samples, rows):
        yield lo, min(lo + rows, n_samples)


def step_size(problem, batch_size):
    """The constant step ``eta`` for this batch size.

    fastgd's convention: the step multiplies the gradient of the plain mean
    squared residual, ``(2 / m) X_B^T r_B`` (scikit-learn's loss carries a
    factor 1/2, so its ``eta0`` is twice this).

    - Full batch (``None``, or at least ``n_samples``): ``2 / (L + mu)``, the
      best constant step for a quadratic with Hessian eigenvalues in
      ``[mu, L]``.
    - Batch size b: ``b * SGD_MISADJUSTMENT / tr(Sigma)``, capped at ``1 / L``.
      Constant-step SGD settles at an excess loss of about
      ``eta * tr(Sigma) / b`` times the noise variance (``Sigma`` the
      uncentred covariance, intercept column included, ``tr(Sigma)`` half the
      Hessian's trace), so every batch size gets the same noise floor, well
      inside the 1% target, and the same progress per epoch.

    Parameters
    ----------
    problem : Problem
        From :func:`make_problem`.
    batch_size : int or None
        Rows per step; None for full batch.

    Returns
    -------
    eta : float
    """
    eigs = problem.hessian_eigs
    if batch_size is None or batch_size >= problem.n_samples:
        return 2.0 / (eigs[-1] + eigs[0])
    trace_sigma = eigs.sum() / 2.0
    return min(batch_size * SGD_MISADJUSTMENT / trace_sigma, 1.0 / eigs[-1])


def training_loss(problem, coef, intercept):
    """Exact mean squared residual at ``coef``, ``intercept`` (one pass)."""
    sums = _engine.residual_sums(problem.X, problem.y, coef, intercept)
    return float(sums[-1]) / problem.n_samples


# -- one method's run ---------------------------------------------------------


@dataclass
class Trace:
    """One method's run: its checkpoints in order, and the timings.

    A unit of work is one full-batch step, or one epoch (one ``shuffle`` and
    one ``stochastic_epoch`` call). Per checkpoint: ``steps`` (updates so
    far), ``rows`` (rows visited), ``loss`` (NaN where not evaluated),
    ``theta`` (coefficients, intercept last) and its place in time: ``units``
    whole units done, plus ``fraction`` of the next unit's kernel time (that
    unit's shuffle counts in full once the fraction is above 0).
    ``unit_seconds`` has shape (n_repeats, n_units, 2): the timed seconds of
    each unit's shuffle and kernel in each repeat; checkpoints are placed in
    time by the repeat with the median time to the target. When the target
    was met inside an epoch, ``stop_fraction`` is the share of that epoch's
    rows visited by then, and each repeat's last unit ran its kernel over
    those rows only: the checkpoints of that epoch are placed pro rata
    against that timed partial kernel. ``hit`` indexes the first checkpoint
    whose loss is within the target, or is None.
    ``path_extra`` holds untimed coefficients past the last checkpoint, for
    the path plot only.
    """

    label: str
    batch_size: int | None
    eta: float
    steps: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    units: list = field(default_factory=list)
    fraction: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    theta: list = field(default_factory=list)
    unit_seconds: np.ndarray = None
    hit: int | None = None
    status: str = "running"
    replay_mismatch: float = 0.0  # largest |timed - replayed| coefficient
    stop_fraction: float | None = None
    _checked: int = 0  # checkpoints already searched by check_target
    path_extra: list = field(default_factory=list)

    def record(self, steps, rows, units, fraction, loss, coef, intercept):
        self.steps.append(int(steps))
        self.rows.append(int(rows))
        self.units.append(int(units))
        self.fraction.append(float(fraction))
        self.loss.append(float(loss))
        self.theta.append(np.append(coef, intercept))

    def check_target(self, target):
        """Mark the first checkpoint at or below ``target``; return whether hit.

        Each call looks only at the checkpoints recorded since the last one.
        """
        if self.hit is None:
            for k in range(self._checked, len(self.loss)):
                if self.loss[k] <= target:
                    self.hit = k
                    break
            self._checked = len(self.loss)
        return self.hit is not None

    @property
    def n_repeats(self):
        return self.unit_seconds.shape[0]

    def _kernel_shares(self, units, fraction):
        """Share of each unit's timed kernel seconds that ``fraction`` stands for.

        ``fraction`` counts rows of a whole epoch; a last unit that ran only
        ``stop_fraction`` of an epoch's rows was timed for that much.
        """
        shares = np.asarray(fraction, dtype=float).copy()
        if self.stop_fraction is not None:
            last = np.asarray(units) == self.unit_seconds.shape[1] - 1
            shares[last] /= self.stop_fraction
        return shares

    def _totals(self):
        """Each repeat's seconds to the target (to the last checkpoint if missed)."""
        k = self.hit if self.hit is not None else len(self.units) - 1
        unit, fraction = self.units[k], self.fraction[k]
        totals = self.unit_seconds[:, :unit].sum(axis=(1, 2))
        if fraction > 0:
            inside = self.unit_seconds[:, unit]
            share = self._kernel_shares([unit], [fraction])[0]
            totals = totals + inside[:, 0] + share * inside[:, 1]
        return totals

    @property
    def median_repeat(self):
        """Index of the repeat with the median time to the target (lower middle)."""
        return int(np.argsort(self._totals(), kind="stable")[(self.n_repeats - 1) // 2])

    @property
    def seconds(self):
        """Timed seconds to each checkpoint in the median repeat."""
        unit_seconds = self.unit_seconds[self.median_repeat]
        ends = np.concatenate([[0.0], np.cumsum(unit_seconds.sum(axis=1))])
        units = np.asarray(self.units)
        fraction = np.asarray(self.fraction)
        seconds = ends[units]
        inside = fraction > 0
        shares = self._kernel_shares(units[inside], fraction[inside])
        seconds[inside] += (
            unit_seconds[units[inside], 0] + shares * unit_seconds[units[inside], 1]
        )
        return seconds

    def seconds_to_target(self):
        """(median, min, max) over repeats of the seconds to the target, or None."""
        if self.hit is None:
            return None
        totals = self._totals()
        return (
            float(totals[self.median_repeat]),
            float(totals.min()),
            float(totals.max()),
        )


def method_label(batch_size):
    """'full-batch GD', 'SGD' or 'mini-batch SGD' for the batch size."""
    if batch_size is None:
        return "full-batch GD"
    return "SGD" if batch_size == 1 else "mini-batch SGD"


def run_method(problem, batch_size, *, time_limit, seed=0, repeats=1, progress=None):
    """Run one method from zero to the target; time it ``repeats`` times.

    The first run records the checkpoints (see :func:`run_full_batch` and
    :func:`run_stochastic`). When it reached the target, the same
    deterministic run is timed ``repeats - 1`` more times, without any
    evaluation, up to the unit that reached it; when that unit is an epoch
    met part-way, all ``repeats`` timings are such runs, each stopping at
    the target's row (the recording run's whole-epoch times are dropped).
    The repeat with the median time to the target places the checkpoints in
    time.

    Parameters
    ----------
    problem : Problem
        From :func:`make_problem`.
    batch_size : int or None
        Rows per step, below ``problem.n_samples``; None for full batch.
    time_limit : float
        Timed seconds after which the first run gives up.
    seed : int, default=0
        Seed of the shuffles.
    repeats : int, default=1
        Timed runs, at least 1.
    progress : callable or None, default=None
        Called with a short status string now and then.

    Returns
    -------
    trace : Trace
    """
    eta = step_size(problem, batch_size)
    target = TARGET_RATIO * problem.loss_opt
    if batch_size is None:
        trace, seconds = run_full_batch(problem, eta, target, time_limit, progress)
    else:
        trace, seconds = run_stochastic(
            problem, batch_size, eta, target, time_limit, seed, progress
        )
    timings = [seconds]
    if trace.hit is not None and trace.fraction[trace.hit] > 0:
        # met inside an epoch: time every repeat, the first included, up to
        # that row and no further, rather than share out a whole epoch's time
        n_units = trace.units[trace.hit] + 1
        trace.stop_fraction = trace.fraction[trace.hit]
        stop_rows = trace.rows[trace.hit] - trace.units[trace.hit] * problem.n_samples
        timings = []
        for repeat in range(1, repeats + 1):
            if progress is not None:
                progress(f"timing to the target, {repeat}/{repeats}")
            timings.append(
                _time_units(problem, batch_size, eta, seed, n_units, stop_rows)
            )
    elif trace.hit is not None:
        for repeat in range(2, repeats + 1):
            if progress is not None:
                progress(f"timing again, {repeat}/{repeats}")
            timings.append(
                _time_units(problem, batch_size, eta, seed, seconds.shape[0])
            )
    trace.unit_seconds = np.stack(timings)
    return trace


def run_full_batch(problem, eta, target, time_limit, progress=None):
    """Full-batch gradient descent from zero until the loss reaches ``target``.

    Every step is timed on its own and recorded. The loss of the state after
    step k is the value step k + 1 returns, so that step is taken but not
    counted. Stops at the target, on a non-finite loss, or once the timed
    seconds reach ``time_limit`` (or the wall clock ``_WALL_FACTOR`` times
    that). Returns the trace and the (n_steps, 2)
    unit seconds (the first column, for a shuffle, is zero).

    After reaching the target the run goes on, untimed, for twice as many
    steps again, so the path plot shows it closing in on the optimum (the
    target is met while the directions of small curvature, which carry
    little of the loss, are still far from it).
    """
    X, y = problem.X, problem.y
    coef, intercept = np.zeros(problem.n_features), np.zeros(1)
    trace = Trace(method_label(None), None, eta)
    out = np.empty(problem.n_features + 2)
    seconds = []
    timed = 0.0
    wall_start = time.perf_counter()

    while True:
        theta = (coef.copy(), intercept[0])
        start = time.perf_counter()
        loss = _engine.full_batch_step(X, y, coef, intercept, eta, 0, True, out)
        took = time.perf_counter() - start
        # ``loss`` belongs to ``theta``, the state before this step
        steps = len(seconds)
        trace.record(steps, steps * problem.n_samples, steps, 0.0, loss, *theta)
        if progress is not None:
            progress(f"loss/opt - 1 = {loss / problem.loss_opt - 1:.3g}")
        if loss <= target:
            trace.check_target(target)
            trace.status = "reached"
            trace.path_extra.append(np.append(coef, intercept))
            for _ in range(2 * steps):
                _engine.full_batch_step(X, y, coef, intercept, eta, 0, True, out)
                trace.path_extra.append(np.append(coef, intercept))
            break
        if not math.isfinite(loss):
            trace.status = "diverged"
            break
        seconds.append((0.0, took))
        timed += took
        wall = time.perf_counter() - wall_start
        if timed >= time_limit or wall >= _WALL_FACTOR * time_limit:
            steps += 1
            loss = training_loss(problem, coef, intercept)
            trace.record(
                steps, steps * problem.n_samples, steps, 0.0, loss, coef, intercept
            )
            trace.status = "reached" if trace.check_target(target) else "time limit"
            break
    return trace, np.array(seconds).reshape(-1, 2)


def run_stochastic(problem, batch_size, eta, target, time_limit, seed, progress=None):
    """Constant-step mini-batch SGD from zero, reshuffling every epoch.

    Each epoch (one ``shuffle`` and one ``stochastic_epoch`` call) is timed,
    then its end state is evaluated exactly (untimed). The first epoch and
    the epoch in which the target is first met are replayed, untimed, for
    checkpoints inside them (see the module docstring). Stops at the end of
    the epoch that meets the target, on a non-finite loss, or once the timed
    seconds reach ``time_limit`` (or the wall clock ``_WALL_FACTOR`` times
    that). Returns the trace and the (n_epochs, 2)
    seconds of each epoch's shuffle and kernel.
    """
    X, y = problem.X, problem.y
    n_samples = problem.n_samples
    coef, intercept = np.zeros(problem.n_features), np.zeros(1)
    trace = Trace(method_label(batch_size), batch_size, eta)
    loss = training_loss(problem, coef, intercept)
    trace.record(0, 0, 0, 0.0, loss, coef, intercept)
    order = np.arange(n_samples, dtype=np.intp)
    seeds = np.random.default_rng([seed, batch_size])
    steps_per_epoch = -(-n_samples // batch_size)
    seconds = []
    timed = 0.0
    wall_start = time.perf_counter()

    while True:
        epoch = len(seconds) + 1
        start_state = (coef.copy(), intercept.copy())
        start = time.perf_counter()
        _engine.shuffle(order, int(seeds.integers(2**63)))
        shuffled = time.perf_counter()
        _, steps = _engine.stochastic_epoch(
            X, y, coef, intercept, order, batch_size, eta, 0, 1.0, True
        )
        done = time.perf_counter()
        seconds.append((shuffled - start, done - shuffled))
        timed += done - start

        loss = training_loss(problem, coef, intercept)
        finite = math.isfinite(loss) and steps == steps_per_epoch
        if epoch == 1 or (finite and loss <= target):
            _replay_epoch(problem, trace, order, batch_size, eta, start_state, epoch)
            replayed = trace.theta[-1]
            # the epoch's end point is the timed run's own state
            trace.theta[-1] = np.append(coef, intercept)
            trace.loss[-1] = loss
            mismatch = float(np.max(np.abs(replayed - trace.theta[-1])))
            trace.replay_mismatch = max(trace.replay_mismatch, mismatch)
        else:
            trace.record(
                trace.steps[-1] + steps,
                epoch * n_samples,
                epoch,
                0.0,
                loss,
                coef,
                intercept,
            )
        if progress is not None:
            progress(f"loss/opt - 1 = {loss / problem.loss_opt - 1:.3g}")

        if not finite:
            trace.status = "diverged"
            break
        if trace.check_target(target):
            trace.status = "reached"
            break
        wall = time.perf_counter() - wall_start
        if timed >= time_limit or wall >= _WALL_FACTOR * time_limit:
            trace.status = "time limit"
            break
    return trace, np.array(seconds)


def _replay_epoch(problem, trace, order, batch_size, eta, start_state, epoch):
    """Retrace epoch ``epoch`` (from 1) slice by slice; record checkpoints.

    Each slice of ``order`` (whole batches) is gathered into a small
    contiguous copy and run by ``stochastic_epoch`` in its natural order: the
    same updates as the timed epoch. The coefficients are recorded after
    every slice, the exact loss after every ``_LOSS_EVERY``-th.
    """
    X, y = problem.X, problem.y
    n_samples = problem.n_samples
    coef, intercept = start_state
    first_step, first_rows = trace.steps[-1], trace.rows[-1]
    batches = -(-n_samples // batch_size)
    per_slice = batch_size * max(1, batches // _REPLAY_SLICES)
    steps = 0
    for k, lo in enumerate(range(0, n_samples, per_slice), start=1):
        hi = min(lo + per_slice, n_samples)
        index = order[lo:hi]
        local = np.arange(hi - lo, dtype=np.intp)
        _, taken = _engine.stochastic_epoch(
            X[index], y[index], coef, intercept, local, batch_size, eta, 0, 1.0, True
        )
        steps += taken
        loss = math.nan
        if k % _LOSS_EVERY == 0 or hi == n_samples:
            loss = training_loss(problem, coef, intercept)
        fraction = hi / n_samples
        trace.record(
            first_step + steps,
            first_rows + hi,
            epoch - 1,
            fraction,
            loss,
            coef,
            intercept,
        )
        if not math.isfinite(coef.sum()):
            break


def _time_units(problem, batch_size, eta, seed, n_units, stop_rows=None):
    """Time the first ``n_units`` units of a method again, from zero.

    The same deterministic run as the recorded one, without evaluations;
    returns the (n_units, 2) seconds of each unit's shuffle and kernel.
    With ``stop_rows`` (whole batches), the last unit's kernel runs over the
    first ``stop_rows`` rows of its order only.
    """
    X, y = problem.X, problem.y
    coef, intercept = np.zeros(problem.n_features), np.zeros(1)
    seconds = np.zeros((n_units, 2))
    if batch_size is None:
        out = np.empty(problem.n_features + 2)
        for k in range(n_units):
            start = time.perf_counter()
            _engine.full_batch_step(X, y, coef, intercept, eta, 0, True, out)
            seconds[k, 1] = time.perf_counter() - start
        return seconds

    order = np.arange(problem.n_samples, dtype=np.intp)
    seeds = np.random.default_rng([seed, batch_size])
    for k in range(n_units):
        last = k == n_units - 1 and stop_rows is not None
        start = time.perf_counter()
        _engine.shuffle(order, int(seeds.integers(2**63)))
        shuffled = time.perf_counter()
        _engine.stochastic_epoch(
            X, y, coef, intercept, order[:stop_rows] if last else order,
            batch_size, eta, 0, 1.0, True,
        )
        seconds[k] = shuffled - start, time.perf_counter() - shuffled
    return seconds


# -- the whole bench ----------------------------------------------------------


@dataclass
class BenchResult:
    """What :func:`run_bench` measured and wrote."""

    problem: Problem
    traces: list
    rows: list  # one dict per method, the table's rows
    markdown: str
    files: list
    seconds: float


def parse_batch_sizes(text):
    """Parse ``"1,8,full"`` into ``[1, 8, None]``; raise ValueError if bad."""
    sizes = []
    for item in text.split(","):
        item = item.strip().lower()
        if item == "full":
            sizes.append(None)
            continue
        try:
            size = int(item)
        except ValueError:
            raise ValueError(
                f"batch sizes must be positive integers or 'full', got {item!r}"
            ) from None
        if size < 1:
            raise ValueError(f"batch sizes must be at least 1, got {size}")
        sizes.append(size)
    if not sizes:
        raise ValueError("give at least one batch size")
    # full batch first (the reference), then ascending, without repeats
    unique = set(sizes)
    return [None] * (None in unique) + sorted(unique - {None})


def warm_up(dtype):
    """Compile (or load from Numba's cache) every kernel the bench calls.

    A 4,096 x 8 problem is big enough for the threaded full pass and a 16 x 2
    one small enough for the serial one. Returns the seconds taken.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for n_samples, n_features in ((4096, 8), (16, 2)):
        X = rng.standard_normal((n_samples, n_features)).astype(dtype)
        y = X.sum(axis=1)
        coef, intercept = np.zeros(n_features), np.zeros(1)
        order = np.arange(n_samples, dtype=np.intp)
        _engine.full_batch_step(X, y, coef, intercept, 0.01, 0, True)
        _engine.shuffle(order, 0)
        _engine.stochastic_epoch(X, y, coef, intercept, order, 4, 0.01, 0, 1.0, True)
        _engine.residual_sums(X, y, coef, intercept)
    _engine.warm_up_pair_epoch(dtype)
    return time.perf_counter() - start


def run_bench(
    n_samples=1_000_000,
    n_features=32,
    *,
    dtype="float64",
    batch_sizes=DEFAULT_BATCH_SIZES,
    out="fastgd-bench",
    seed=0,
    time_limit=60.0,
    repeats=5,
    condition=100.0,
    n_jobs=None,
    progress=True,
):
    """Measure the time each method needs to reach 1% of the optimal loss.

    Parameters
    ----------
    n_samples : int, default=1_000_000
        Rows of the generated problem.
    n_features : int, default=32
        Columns of the generated problem.
    dtype : {"float64", "float32"}, default="float64"
        dtype of X and y.
    batch_sizes : sequence of int or None, default=(1, 8, 32, 256, 4096, None)
        Batch sizes to run; None is full batch. Each must be below
        ``n_samples``.
    out : str or path, default="fastgd-bench"
        Folder for ``time_to_accuracy.md``, ``.csv`` and ``.png``; created if
        missing, files in it overwritten.
    seed : int, default=0
        Seed of the data and of the shuffles.
    time_limit : float, default=60.0
        Timed seconds after which a method stops without reaching the target.
    repeats : int, default=5
        Timed runs of each method that reaches the target (see
        :func:`run_method`); the table gives the median and the range.
    condition : float, default=100.0
        Ratio of the largest to the smallest feature variance.
    n_jobs : int or None, default=None
        Numba threads; None keeps Numba's default.
    progress : bool, default=True
        Show a tqdm progress bar on stderr (only where stderr is a terminal).

    Returns
    -------
    result : BenchResult
    """
    started = time.perf_counter()
    if n_samples <= n_features + 1:
        raise ValueError(
            f"n_samples={n_samples} must exceed n_features + 1 = {n_features + 1}: "
            "with no more rows than unknowns (the intercept included) least "
            "squares fits exactly, and there is no positive optimum to come "
            "within 1% of"
        )
    batch_sizes = list(batch_sizes)
    too_big = [b for b in batch_sizes if b is not None and b >= n_samples]
    if too_big:
        raise ValueError(
            f"batch size {too_big[0]} is not below the {n_samples} rows; use "
            "'full' for full batch"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    bar = tqdm(
        total=len(batch_sizes) + 2,
        desc="fastgd bench",
        disable=None if progress else True,
        unit="task",
    )
    with bar, thread_limit(n_jobs), threadpool_limits(1, user_api="blas"):
        bar.set_postfix_str(f"generating {n_samples} x {n_features} {dtype}")
        problem = make_problem(n_samples, n_features, dtype, seed, condition)
        bar.update()
        bar.set_postfix_str("compiling kernels")
        compile_seconds = warm_up(problem.X.dtype)
        bar.update()

        traces = []
        for batch_size in batch_sizes:
            name = f"b={batch_size or 'full'}"

            def show(status, name=name):
                bar.set_postfix_str(f"{name}: {status}", refresh=False)

            trace = run_method(
                problem,
                batch_size,
                time_limit=time_limit,
                seed=seed,
                repeats=repeats,
                progress=show,
            )
            traces.append(trace)
            bar.update()

    rows = _table_rows(problem, traces)
    setting = {
        "dtype": dtype,
        "seed": seed,
        "time_limit": time_limit,
        "repeats": repeats,
        "condition": condition,
        "n_jobs": n_jobs,
        "compile_seconds": compile_seconds,
    }
    markdown = _markdown(problem, rows, setting)
    files = [
        out / f"{_FILE_STEM}.md",
        out / f"{_FILE_STEM}.csv",
        out / f"{_FILE_STEM}.png",
    ]
    files[0].write_text(markdown)
    _write_csv(files[1], rows)
    _plot(files[2], problem, traces)
    return BenchResult(
        problem=problem,
        traces=traces,
        rows=rows,
        markdown=markdown,
        files=files,
        seconds=time.perf_counter() - started,
    )


# -- reporting ----------------------------------------------------------------

CSV_COLUMNS = [
    "method",
    "batch_size",
    "eta",
    "epochs",
    "update_steps",
    "seconds",
    "seconds_min",
    "seconds_max",
    "repeats",
    "speedup_vs_full_batch",
    "loss_ratio",
    "status",
]


def _table_rows(problem, traces):
    """One dict per method with the CSV columns (numbers, or None)."""
    full = next((t for t in traces if t.batch_size is None), None)
    full_time = None if full is None else full.seconds_to_target()
    rows = []
    for trace in traces:
        timing = trace.seconds_to_target()
        k = trace.hit if trace.hit is not None else len(trace.steps) - 1
        seconds, fastest, slowest = timing or (None, None, None)
        speedup = None
        if timing is not None and full_time is not None:
            speedup = full_time[0] / seconds
        rows.append(
            {
                "method": trace.label,
                "batch_size": "full" if trace.batch_size is None else trace.batch_size,
                "eta": trace.eta,
                "epochs": trace.rows[k] / problem.n_samples,
                "update_steps": trace.steps[k],
                "seconds": seconds,
                "seconds_min": fastest,
                "seconds_max": slowest,
                "repeats": trace.n_repeats,
                "speedup_vs_full_batch": speedup,
                "loss_ratio": _last_finite(trace.loss[: k + 1]) / problem.loss_opt,
                "status": trace.status,
                "seconds_run": float(trace.seconds[-1]),
            }
        )
    return rows


def _last_finite(values):
    finite = [v for v in values if not math.isnan(v)]
    return finite[-1] if finite else math.nan


def _format_epochs(epochs):
    if epochs == int(epochs):
        return str(int(epochs))
    return f"{epochs:.3f}" if epochs < 1 else f"{epochs:.2f}"


def _markdown(problem, rows, setting):
    """The markdown report: the setting in a few lines, the table, the notes."""
    eigs = problem.hessian_eigs
    threads = setting["n_jobs"] or "Numba's default"
    repeats = setting["repeats"]
    lines = [
        f"# fastgd bench: time to {TARGET_RATIO - 1:.0%} of the optimal training loss",
        "",
        (
            f"Problem: {problem.n_samples:,} x {problem.n_features} "
            f"{setting['dtype']}, i.i.d. rows, feature variances geometric from 1 "
            f"to 1/{setting['condition']:g}, unit noise (seed {setting['seed']}); "
            f"optimal loss (mean squared residual) {problem.loss_opt:.6f}, target "
            f"{TARGET_RATIO * problem.loss_opt:.6f}. Hessian eigenvalues "
            f"{eigs[0]:.4g} to {eigs[-1]:.4g} (condition {eigs[-1] / eigs[0]:.0f}). "
            f"Threads: {threads}; kernels compiled beforehand "
            f"({setting['compile_seconds']:.1f} s). Time limit "
            f"{setting['time_limit']:g} s per method."
        ),
        "",
        (
            f"| method | batch size | eta | epochs | update steps | seconds to 1% "
            f"(median of {repeats}) | range | speed-up vs full batch "
            "| loss / optimum |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["seconds"] is None:
            seconds = f"not reached ({row['status']} at {row['seconds_run']:.3g} s)"
            spread = ""
        else:
            seconds = f"{row['seconds']:.3g}"
            spread = f"{row['seconds_min']:.3g}-{row['seconds_max']:.3g}"
        speedup = row["speedup_vs_full_batch"]
        if speedup is None:
            times = ""
        else:  # two digits below 0.1x, so that 0.025x is not "0.0x"
            times = f"{speedup:.1f}x" if speedup >= 0.1 else f"{speedup:.2g}x"
        lines.append(
            f"| {row['method']} | {row['batch_size']} | {row['eta']:.3g} "
            f"| {_format_epochs(row['epochs'])} | {row['update_steps']:,} "
            f"| {seconds} | {spread} | {times} "
            f"| {row['loss_ratio']:.4f} |"
        )
    lines += [
        "",
        (
            "Full batch steps by 2/(L + mu); batch size b by "
            f"b x {SGD_MISADJUSTMENT} / tr(Sigma), capped at 1/L, for a stationary "
            f"excess loss of about {SGD_MISADJUSTMENT:.1%} of the noise. Only the "
            "fastgd calls are timed (each step, or each epoch's shuffle and kernel); "
            "the exact loss evaluations are not. Each method is run once to find "
            "where it reaches the target, then timed again up to there; the median "
            "run is shown, the range over all runs beside it. "
            "Stochastic methods are timed to the target itself: their last epoch's "
            "kernel stops at the row where an untimed replay of the same updates "
            "met it; other points inside an epoch are placed pro rata by rows."
        ),
        "",
    ]
    return "\n".join(lines)


def _write_csv(path, rows):
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {key: "" if value is None else value for key, value in row.items()}
            )


def _path_features(problem):
    """Two coefficients to plot: a fast (high-variance) and a slow feature.

    Of the quarter of features with the largest variance, the one with the
    largest ``|coef_opt|``; likewise of the quarter with the smallest. With
    one feature, its coefficient and the intercept.
    """
    d = problem.n_features
    if d == 1:
        return 0, 1
    variances = np.diag(problem.second_moments)[:d]
    by_variance = np.argsort(-variances, kind="stable")
    quarter = max(1, d // 4)
    weight = np.abs(problem.coef_opt)
    fast = by_variance[:quarter][np.argmax(weight[by_variance[:quarter]])]
    slow = by_variance[-quarter:][np.argmax(weight[by_variance[-quarter:]])]
    return int(fast), int(slow)


def _plot(path, problem, traces):
    """Write the two-panel PNG: loss against time, and coefficient paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[1.35, 1])
    colors = {None: "black"}
    palette = ["tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple"]
    stochastic = [t.batch_size for t in traces if t.batch_size is not None]
    for k, batch_size in enumerate(stochastic):
        colors[batch_size] = palette[k % len(palette)]

    # left: excess training loss against wall-clock time, solid up to the
    # target and faint for the rest of the epoch that met it
    for trace in traces:
        seconds = np.asarray(trace.seconds)
        excess = np.asarray(trace.loss) - problem.loss_opt
        keep = (seconds > 0) & np.isfinite(excess) & (excess > 0)
        label = f"{trace.label}, b={trace.batch_size or 'full'}"
        if trace.hit is None:
            label += " (not reached)"
        end = len(seconds) if trace.hit is None else trace.hit + 1
        before = keep.copy()
        before[end:] = False
        after = keep.copy()
        after[: end - 1] = False
        color = colors[trace.batch_size]
        left.plot(
            seconds[before],
            excess[before],
            color=color,
            lw=1.6 if trace.batch_size is None else 1.3,
            label=label,
        )
        left.plot(seconds[after], excess[after], color=color, lw=0.8, alpha=0.3)
        if trace.hit is not None:
            left.plot(
                seconds[trace.hit],
                trace.loss[trace.hit] - problem.loss_opt,
                "o",
                color=colors[trace.batch_size],
                ms=5,
            )
    target = (TARGET_RATIO - 1.0) * problem.loss_opt
    left.axhline(target, color="0.4", ls="--", lw=1)
    left.annotate(
        "target: 1% above the optimum",
        (0.99, target),
        xycoords=("axes fraction", "data"),
        ha="right",
        va="bottom",
        color="0.3",
        fontsize=9,
    )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("wall-clock seconds (log scale; evaluations excluded)")
    left.set_ylabel("training loss - optimal loss")
    left.set_title(
        f"Time to accuracy, {problem.n_samples:,} x {problem.n_features} "
        f"{problem.X.dtype}"
    )
    left.grid(True, which="major", alpha=0.3)
    left.legend(fontsize=8.5, loc="best")

    # right: two coefficients' paths in the plane, and a zoom on the optimum
    i, j = _path_features(problem)
    _plot_paths(right, problem, traces, colors, (i, j))
    names = [f"coef[{k}]" for k in range(problem.n_features)] + ["intercept"]
    variances = np.append(np.diag(problem.second_moments)[: problem.n_features], 1.0)
    right.set_xlabel(f"{names[i]} (feature variance {variances[i]:.2g})")
    right.set_ylabel(f"{names[j]} (feature variance {variances[j]:.2g})")
    right.set_title("Coefficient paths, from zero to the optimum")
    right.grid(True, alpha=0.3)
    # the paths run from zero along the fast coordinate first, so the corner
    # at (0, the optimum's second coordinate) is empty: legend there, zoom
    # above or below it
    (x0, x1), (y0, y1) = right.get_xlim(), right.get_ylim()
    optimum_j = np.append(problem.coef_opt, problem.intercept_opt)[j]
    left = -x0 < (x1 - x0) / 2
    bottom = optimum_j - y0 < (y1 - y0) / 2
    corner = f"{'lower' if bottom else 'upper'} {'left' if left else 'right'}"
    right.legend(fontsize=8.5, loc=corner)
    _zoom_on_optimum(right, problem, traces, colors, (i, j), left, bottom)
    figure.savefig(path, dpi=110)


def _path_lines(problem, traces, pair):
    """Return (full-batch trace and path, stochastic trace and path) in ``pair``."""
    full = next((t for t in traces if t.batch_size is None), None)
    noisy = next((t for t in traces if t.batch_size is not None), None)
    columns = list(pair)
    full_path = noisy_path = None
    if full is not None:
        end = len(full.theta) if full.hit is None else full.hit + 1
        full_path = np.asarray(full.theta[:end] + full.path_extra)[:, columns]
    if noisy is not None:
        noisy_path = np.asarray(noisy.theta)[:, columns]
    return (full, full_path), (noisy, noisy_path)


def _plot_paths(axes, problem, traces, colors, pair, legend=True):
    """Draw the full-batch and the smallest-batch paths, the hits and the optimum."""
    (full, full_path), (noisy, noisy_path) = _path_lines(problem, traces, pair)
    i, j = pair
    optimum = np.append(problem.coef_opt, problem.intercept_opt)[[i, j]]
    if full is not None:
        axes.plot(
            full_path[:, 0],
            full_path[:, 1],
            ".-",
            color="black",
            lw=1.1,
            ms=3,
            label=f"{full.label}: {len(full_path) - 1} steps, one dot each",
        )
    if noisy is not None:
        axes.plot(
            noisy_path[:, 0],
            noisy_path[:, 1],
            color=colors[noisy.batch_size],
            lw=0.7,
            alpha=0.85,
            label=(
                f"{noisy.label}, b={noisy.batch_size}: {noisy.steps[-1]:,} steps, "
                f"{len(noisy_path) - 1} snapshots"
            ),
        )
    for trace in (noisy, full):
        if trace is not None and trace.hit is not None:
            axes.plot(
                trace.theta[trace.hit][i],
                trace.theta[trace.hit][j],
                "o",
                ms=8,
                mfc="none",
                mec=colors[trace.batch_size],
                mew=1.8,
                zorder=4,
            )
    if legend:
        axes.plot([], [], "o", ms=8, mfc="none", mec="0.3", label="1% target met")
        axes.plot(0, 0, "o", color="0.4", ms=6, label="start (zero)")
    axes.plot(
        *optimum,
        "*",
        color="gold",
        mec="black",
        ms=16,
        label="least-squares optimum",
        zorder=5,
    )


def _zoom_on_optimum(axes, problem, traces, colors, pair, left, bottom):
    """Inset a zoom on the optimum beside the legend's corner, if it helps.

    The window spans four standard deviations of the stochastic path's
    second half (its noise ball) around the optimum, at least 2% of the
    panel's size; no inset when that is over a quarter of the panel.
    ``left`` and ``bottom`` name the legend's corner.
    """
    _, (_, noisy_path) = _path_lines(problem, traces, pair)
    i, j = pair
    optimum = np.append(problem.coef_opt, problem.intercept_opt)[[i, j]]
    (x0, x1), (y0, y1) = axes.get_xlim(), axes.get_ylim()
    half = 0.02 * np.array([x1 - x0, y1 - y0])
    if noisy_path is not None and len(noisy_path) > 8:
        settled = noisy_path[len(noisy_path) // 2 :]
        half = np.maximum(half, 4 * settled.std(axis=0))
    if np.any(2 * half > 0.25 * np.array([x1 - x0, y1 - y0])):
        return

    size = 0.38
    bounds = [
        0.06 if left else 0.94 - size,
        0.32 if bottom else 0.68 - size,
        size,
        size,
    ]
    inset = axes.inset_axes(bounds)
    _plot_paths(inset, problem, traces, colors, pair, legend=False)
    inset.set_xlim(optimum[0] - half[0], optimum[0] + half[0])
    inset.set_ylim(optimum[1] - half[1], optimum[1] + half[1])
    inset.tick_params(labelsize=7)
    inset.set_title("zoom on the optimum", fontsize=8)
    inset.grid(True, alpha=0.3)
    axes.indicate_inset_zoom(inset, edgecolor="0.4")
