"""The training loop shared by ``SGDRegressor`` and ``fastgd.fit``.

This module imports numpy and fastgd's kernels only, so ``fastgd.fit`` runs
without loading scikit-learn.
"""

import contextlib
import math
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import _engine
from ._threads import thread_limit
from ._validation import (
    AllThreads,
    Boolean,
    Interval,
    IsNone,
    Options,
    RandomState,
    check_params,
    check_sample_weight,
    check_X_y,
)
from .exceptions import ConvergenceWarning, DivergenceError

__all__ = ["FitResult", "fit"]

_LOSS_CODES = _engine.LOSS_CODES
_SQUARED_ERROR = _LOSS_CODES["squared_error"]
_L2_NORM = _LOSS_CODES["l2_norm"]

# A mean loss this many times that of the starting point (or of the zero
# model, if larger) is taken as divergence; so is one this many times the
# best epoch's loss so far, once it is no longer negligible (above
# _GROWTH_FLOOR times the starting scale): a constant step that has become
# unstable near the optimum makes the loss grow by orders of magnitude
# without ever exceeding the starting loss by much.
_DIVERGENCE_FACTOR = 1e8
_GROWTH_FACTOR = 1e4
_GROWTH_FLOOR = 1e-3

# A fit that ``tol`` would stop, with its last epoch's loss this many times
# the best, is not converging but moving away: it is taken as divergence
# (a step that is only a little too large grows the loss by a small factor
# per epoch, and ``n_iter_no_change`` epochs of that end the fit before
# _GROWTH_FACTOR is reached).
_STALL_GROWTH_FACTOR = 10.0

# Several targets sharing the l2_norm's "auto" step under a penalty: a
# warning when the shared (smallest) step is this far below the largest.
_SHARED_STEP_WARNING = 1e-2

# learning_rate="adaptive" divides the step by this after n_iter_no_change
# epochs without improvement, and stops once it falls below _ADAPTIVE_MIN.
_ADAPTIVE_FACTOR = 5.0
_ADAPTIVE_MIN = 1e-6

# The L1 share of each penalty.
_L1_SHARE = {None: 0.0, "l2": 0.0, "l1": 1.0}

# Curvature of each loss in the residual, for learning_rate="auto": the
# second derivative of r**2 is 2, of Huber's r**2 / 2 is 1. The epsilon-
# insensitive loss has none (it is piecewise linear); 1 is a heuristic.
_CURVATURE = {
    "squared_error": 2.0,
    "l2_norm": 1.0,  # divided by the current RMS, see _AutoStep
    "huber": 1.0,
    "epsilon_insensitive": 1.0,
    "squared_epsilon_insensitive": 2.0,
}

SAMPLINGS = (
    "reshuffle", "block_shuffle", "shuffle_once", "with_replacement", "sequential",
)

# Defaults of every training parameter; SGDRegressor's signature repeats them.
DEFAULTS = {
    "loss": "squared_error",
    "penalty": None,
    "alpha": 0.0001,
    "l1_ratio": 0.15,
    "epsilon": 0.1,
    "batch_size": 1,
    "learning_rate": "constant",
    "eta0": 0.01,
    "power_t": 0.25,
    "max_iter": 1000,
    "tol": 1e-3,
    "n_iter_no_change": 5,
    "average": False,
    "early_stopping": False,
    "validation_fraction": 0.1,
    "shuffle": True,
    "sampling": "reshuffle",
    "block_size": 16,
    "random_state": None,
    "fit_intercept": True,
    "verbose": 0,
    "warm_start": False,
    "n_jobs": None,
    "progress": "auto",
}

PARAMETER_CONSTRAINTS = {
    "loss": [Options(*_LOSS_CODES)],
    "penalty": [IsNone(), Options("l2", "l1", "elasticnet")],
    "alpha": [Interval("real", 0.0, None)],
    "l1_ratio": [Interval("real", 0.0, 1.0)],
    "epsilon": [Interval("real", 0.0, None)],
    "batch_size": [IsNone(), Interval("int", 1, None)],
    "learning_rate": [Options(*_engine.SCHEDULE_CODES, "auto")],
    "eta0": [Interval("real", 0.0, None, closed="neither")],
    "power_t": [Interval("real", None, None)],
    "max_iter": [Interval("int", 1, None)],
    "tol": [IsNone(), Interval("real", 0.0, None)],
    "n_iter_no_change": [Interval("int", 1, None)],
    "average": [Boolean(), Interval("int", 1, None)],
    "early_stopping": [Boolean()],
    "validation_fraction": [Interval("real", 0.0, 1.0, closed="neither")],
    "shuffle": [Boolean()],
    "sampling": [Options(*SAMPLINGS)],
    "block_size": [Interval("int", 1, None)],
    "random_state": [RandomState()],
    "fit_intercept": [Boolean()],
    "verbose": [Interval("int", 0, None)],
    "warm_start": [Boolean()],
    "n_jobs": [IsNone(), Interval("int", 1, None), AllThreads()],
    "progress": [Boolean(), Options("auto")],
}


def make_rng(random_state):
    """A numpy Generator from ``random_state`` (int, None or a generator)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**32 - 1))
    return np.random.default_rng(random_state)


def train(
    X,
    y,
    params,
    *,
    coef=None,
    intercept=None,
    weights=None,
    rng=None,
    t_start=0,
    average=None,
    partial=False,
    norm=None,
    on_stop=None,
):
    """Fit validated data; return the finished ``Run``.

    ``params`` holds every key of ``DEFAULTS`` and has passed
    ``check_params``; ``X`` and ``y`` come from ``check_X_y``. ``coef`` and
    ``intercept`` (float64, shapes (n_features,) and (1,) for a 1-D ``y``,
    (n_targets, n_features) and (n_targets,) for a 2-D one) are the
    starting point, zeros when omitted. ``weights`` are checked sample weights
    (float64, shape (n_samples,)) or None. ``rng`` (a numpy Generator) draws
    the validation split and one seed per drawn row order; ``t_start`` is the
    number of updates already made, where the step-size schedule resumes,
    and ``average`` the running mean of ``[coef, intercept]`` so far (with
    ``params["average"]``).
    ``partial`` runs exactly one epoch with no stopping rule (``partial_fit``).
    ``norm`` (per target), when given, is the RMS estimate that scales the
    first epoch's ``"l2_norm"`` steps, in place of the RMS at the start: a
    ``partial_fit`` passes the previous epoch's, as ``fit`` would use it.
    ``on_stop(run)`` is called however training ends, Ctrl-C and divergence
    included, before any error propagates.

    Raises ``DivergenceError`` if the loss diverged and warns
    ``ConvergenceWarning`` if ``max_iter`` came before ``tol``.
    """
    if params["learning_rate"] == "optimal" and params["alpha"] == 0:
        raise ValueError(
            "learning_rate='optimal' takes its step size from alpha, which "
            "must then be > 0."
        )
    if params["sampling"] not in ("reshuffle", "sequential") and not params["shuffle"]:
        raise ValueError(
            f"shuffle=False asks for rows in order, but sampling="
            f"{params['sampling']!r}; set one or the other."
        )
    run = Run(
        X, y, params, coef, intercept, weights,
        rng=make_rng(params["random_state"]) if rng is None else rng,
        t_start=t_start, average=average, partial=partial, norm=norm,
    )
    with thread_limit(params["n_jobs"]), _progress_bar(params, partial) as bar:
        run.bar = bar
        try:
            run.train()
        finally:
            if on_stop is not None:
                on_stop(run)

    if run.diverged is not None:
        raise run.diverged
    if params["tol"] is not None and not run.converged and not partial:
        warnings.warn(
            f"Stopped at max_iter={params['max_iter']} epochs before the loss "
            f"stopped improving by tol={params['tol']}; raise max_iter or eta0, "
            "or loosen tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return run


# A fit still running after this many seconds shows its bar (progress="auto").
PROGRESS_DELAY = 2.0


def _progress_bar(params, partial):
    """A tqdm bar over the epochs, or a null context (see ``progress``)."""
    setting = params["progress"]
    if (
        setting is False
        or partial
        or (setting == "auto" and (params["verbose"] or not _stderr_is_terminal()))
    ):
        return contextlib.nullcontext()
    try:
        from tqdm import tqdm
    except ImportError:
        if setting is True:
            raise ImportError(
                "progress=True draws its bar with tqdm, which is not installed: "
                "pip install tqdm (or fastgd[cli])."
            ) from None
        return contextlib.nullcontext()
    return tqdm(
        total=params["max_iter"],
        unit="epoch",
        desc="fastgd",
        delay=0.0 if setting is True else PROGRESS_DELAY,
        leave=False,
        file=sys.stderr,
    )


def _stderr_is_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class Run:
    """State of one call to ``fit`` or ``partial_fit``: the epoch loop."""

    def __init__(
        self, X, y, params, coef, intercept, weights, *, rng, t_start, average,
        partial, norm=None,
    ):
        n_samples, n_features = X.shape
        self.X = X
        self.y = y
        # a 1-D y keeps 1-D coefficients (and the single-target kernels)
        self.n_targets = 1 if y.ndim == 1 else y.shape[1]
        shape = (n_features,) if y.ndim == 1 else (self.n_targets, n_features)
        self.coef = np.zeros(shape) if coef is None else coef
        self.intercept = np.zeros(self.n_targets) if intercept is None else intercept
        self.rng = rng
        self.loss_code = _LOSS_CODES[params["loss"]]
        self.loss_name = params["loss"]
        self.epsilon = float(params["epsilon"])
        self.schedule = _engine.SCHEDULE_CODES.get(params["learning_rate"], 0)
        self.adaptive = params["learning_rate"] == "adaptive" and not partial
        self.auto = params["learning_rate"] == "auto"
        self.schedule_name = params["learning_rate"]
        self.eta0 = float(params["eta0"])
        self.power_t = float(params["power_t"])
        penalty = params["penalty"]
        self.alpha = 0.0 if penalty is None else float(params["alpha"])
        self.l1_ratio = _L1_SHARE.get(penalty, float(params["l1_ratio"]))
        # scikit-learn's start of the "optimal" schedule, from alpha alone
        alpha = float(params["alpha"])
        self.optimal_t0 = 0.0 if alpha == 0 else np.sqrt(np.sqrt(alpha)) / alpha
        self.fit_intercept = bool(params["fit_intercept"])
        self.max_iter = 1 if partial else params["max_iter"]
        self.tol = None if partial else params["tol"]
        self.n_iter_no_change = params["n_iter_no_change"]
        self.verbose = params["verbose"]
        self.sampling = params["sampling"] if params["shuffle"] else "sequential"
        blocks = self.sampling == "block_shuffle"
        self.block_size = params["block_size"] if blocks else 1

        # rows held out for early stopping get weight 0 in full-batch passes
        # and are left out of the stochastic orders
        self.train_rows = self.validation = None
        self.weights = weights
        if params["early_stopping"] and not partial:
            self._split(params["validation_fraction"], weights)
        if self.weights is not None and not np.all(self.weights > 0):
            # rows of weight 0 (held-out ones included) take no part in the
            # stochastic orders: the same steps as if they were dropped
            self.train_rows = np.flatnonzero(self.weights > 0).astype(np.intp)
        n_train = n_samples if self.train_rows is None else len(self.train_rows)
        if self.weights is None:
            self.total_weight = float(n_train)
        else:
            self.total_weight = float(self.weights.sum())
            if not self.total_weight > 0:
                raise ValueError(
                    "The rows left for training after the validation split "
                    "all have sample_weight 0."
                )
        b = params["batch_size"]
        if b is not None and b > n_train:
            held = (
                ""
                if self.train_rows is None
                else " rows left to train on (held-out and zero-weight rows excluded)"
            )
            raise ValueError(
                f"Invalid value for parameter 'batch_size': {b}. It must not "
                f"exceed n_samples={n_train}{held}; use None for full batch."
            )
        self.full_batch = b is None or b >= n_train
        self.batch_size = n_train if self.full_batch else int(b)
        self.weight_mean = self.total_weight / n_train

        # averaged SGD: the mean of the iterates after the first
        # ``average_start`` updates. scikit-learn counts rows seen: with
        # average=N the first iterate averaged is the one after the update
        # that brings the rows seen to N or more, update ceil(N / b)
        self.average = None
        self.average_start = 0
        if params["average"] is not False and params["average"] != 0:
            self.average = (
                np.zeros(shape[:-1] + (n_features + 1,)) if average is None else average
            )
            if params["average"] is not True:
                self.average_start = math.ceil(params["average"] / self.batch_size) - 1

        self.epoch = 0
        self.steps = 0
        self.t_start = t_start
        self.warned = False  # the shared-step warning, given once per run
        # the RMS estimate of the last epoch, which scales the next one's
        # l2_norm steps (a partial_fit's comes from the call before)
        self.norm = None if norm is None else np.array(norm, dtype=np.float64)
        self.losses = []
        self.history = {"step_size": [], "elapsed": []}
        if self.validation is not None:
            self.history.update(validation_loss=[], validation_score=[])
        self.converged = False
        self.diverged = None
        self.bar = None  # a tqdm bar while train() runs with one
        # the step of the current epoch (adaptive, auto); the optimal
        # schedule's kernel formula takes 1 / alpha in its place
        self.eta = self.eta0
        if self.auto:
            self.auto_step = _AutoStep(self)
            # the L2 norm's step follows the RMS (at the start: the zero
            # model's; the smallest over the targets, the largest curvature)
            self.eta = self.auto_step(
                math.sqrt(np.min(self._finite_zero_model_loss()))
            )
        elif params["learning_rate"] == "optimal":
            self.eta = 1.0 / alpha

    def _split(self, fraction, weights):
        """Hold out a random ``fraction`` of the rows for early stopping."""
        n_samples = self.X.shape[0]
        n_validation = math.ceil(fraction * n_samples)
        if not 1 <= n_validation < n_samples:
            raise ValueError(
                f"validation_fraction={fraction} of {n_samples} rows leaves "
                f"{n_validation} for validation and {n_samples - n_validation} "
                "for training; both need at least one."
            )
        held = np.zeros(n_samples, dtype=bool)
        held[self.rng.choice(n_samples, n_validation, replace=False)] = True
        self.train_rows = np.flatnonzero(~held).astype(np.intp)
        base = np.ones(n_samples) if weights is None else weights
        self.weights = np.where(held, 0.0, base)
        val_weights = np.where(held, base, 0.0)
        total = val_weights.sum()
        y = self.y.astype(np.float64)
        mean = (val_weights @ y) / total
        spread = val_weights @ (y - mean) ** 2  # one per target
        self.validation = (val_weights, total, spread)

    def train(self):
        """Run epochs until ``tol`` is met, ``max_iter`` or divergence."""
        orders = None
        if not self.full_batch:
            rows = self.train_rows
            n_visits = self.X.shape[0] if rows is None else len(rows)
            orders = _Orders(
                self.X.shape[0], self.train_rows, self.sampling, self.rng,
                self.max_iter, self.block_size,
                overlap=not _engine.epoch_takes_two_threads(
                    self.X, self.y, n_visits, self.batch_size
                ),
            )
        try:
            self._epochs(orders)
        finally:
            if orders is not None:
                orders.close()

    def _epochs(self, orders):
        X, y = self.X, self.y
        n_features = X.shape[1]
        sums = np.empty(self.coef.shape[:-1] + (n_features + 2,), dtype=np.float64)
        fixed = dict(epsilon=self.epsilon, weights=self.weights)

        # The zero model's loss needs y alone; a warm start, and the first
        # l2_norm epoch (which scales its steps by the RMS), need the loss at
        # the actual starting point: one extra pass over X.
        # (one value per target; the stopping and divergence rules follow
        # their mean)
        zero_model_loss = self._finite_zero_model_loss()
        start_loss = zero_model_loss
        warm = np.any(self.coef != 0) or np.any(self.intercept != 0)
        if warm or (not self.full_batch and self.loss_code == _L2_NORM):
            start_loss = self._mean_loss(sums)
        norm = np.sqrt(start_loss) if self.norm is None else self.norm
        reference = max(
            np.mean(start_loss), np.mean(zero_model_loss), np.finfo(np.float64).tiny
        )
        self.best_loss = np.inf
        # the state with the lowest measured loss, kept on divergence:
        # (epoch, coef, intercept, average, steps)
        self.best_state = self.start_state = (0, *self._snapshot())
        best = np.inf
        best_score = -np.inf
        stalled = 0
        # learning_rate="auto" with the L2 norm: each step at the current RMS
        per_rms = self.auto_step if self.auto and self.auto_step.per_rms else None
        start = time.perf_counter()
        for epoch in range(1, self.max_iter + 1):
            saved = self._snapshot()
            t = self.t_start + self.steps
            if self.full_batch:
                eta = _engine.step_size(
                    self.schedule, self.eta, t + 1, self.power_t, self.optimal_t0
                )
                mean_loss = _engine.full_batch_step(
                    X,
                    y,
                    self.coef,
                    self.intercept,
                    eta,
                    self.loss_code,
                    self.fit_intercept,
                    sums,
                    total_weight=self.total_weight,
                    alpha=self.alpha,
                    l1_ratio=self.l1_ratio,
                    eta_for_rms=per_rms,
                    **fixed,
                )
                steps = 1
                if per_rms is not None:  # the step of the smallest RMS
                    self.eta = eta = per_rms(np.sqrt(np.min(mean_loss)))
                if self.average is not None:
                    _engine.fold_average(
                        self.average, self.coef, self.intercept,
                        t + 1 - self.average_start,
                    )
                # the loss belongs to the state before the step
                finite = saved
            else:
                step_norm = norm
                if per_rms is not None:
                    # the kernel divides every step by ``norm``: with this
                    # step the epoch runs at the squared loss's safe step
                    self.eta, step_norm = self._auto_norms(per_rms, norm)
                sum_loss, steps = _engine.stochastic_epoch(
                    X,
                    y,
                    self.coef,
                    self.intercept,
                    orders.next(),
                    self.batch_size,
                    self.eta,
                    self.loss_code,
                    step_norm,
                    self.fit_intercept,
                    weight_mean=self.weight_mean,
                    schedule=self.schedule,
                    power_t=self.power_t,
                    optimal_t0=self.optimal_t0,
                    alpha=self.alpha,
                    l1_ratio=self.l1_ratio,
                    t_start=t,
                    average=self.average,
                    average_start=self.average_start,
                    **fixed,
                )
                mean_loss = sum_loss / self.total_weight
                norm = self.norm = np.sqrt(mean_loss)  # per target
                finite = None  # the state after this epoch, once counted
                eta = _engine.step_size(
                    self.schedule, self.eta, t + steps, self.power_t, self.optimal_t0
                )
            self.steps += steps

            if self.loss_code == _L2_NORM:
                target_losses = np.sqrt(mean_loss)
            else:
                target_losses = mean_loss
            mean_loss = float(np.mean(mean_loss))
            if not self._healthy(mean_loss, reference):
                self._diverge(epoch, mean_loss)
                return
            if mean_loss == self.best_loss:
                self.best_state = (epoch, *(finite or self._snapshot()))
            self.epoch = epoch
            loss = float(np.mean(target_losses))
            self.losses.append(loss)
            self.history["step_size"].append(eta)
            self.history["elapsed"].append(time.perf_counter() - start)
            score = self._validate(sums) if self.validation is not None else None
            if self.verbose:
                self._report(epoch, loss, eta, score)
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                self.bar.update()

            if self.tol is None:
                continue
            if score is None:
                stalled = stalled + 1 if loss > best - self.tol else 0
                best = min(best, loss)
            else:
                stalled = stalled + 1 if score < best_score + self.tol else 0
                best_score = max(best_score, score)
            if stalled >= self.n_iter_no_change:
                if self._grown(
                    mean_loss, _STALL_GROWTH_FACTOR, reference
                ) or self._rising(mean_loss, reference):
                    self._diverge(epoch, mean_loss)
                    return
                if self.adaptive and self.eta / _ADAPTIVE_FACTOR >= _ADAPTIVE_MIN:
                    self.eta /= _ADAPTIVE_FACTOR
                    stalled = 0
                    continue
                self.converged = True
                break

        if not (np.all(np.isfinite(self.coef)) and np.all(np.isfinite(self.intercept))):
            # the very last step overflowed; its loss was never measured
            self._diverge(self.epoch, np.inf)

    def solution(self):
        """``(coef, intercept)`` to report: the averaged iterate if any."""
        if self.average is not None and self.t_start + self.steps > self.average_start:
            if self.average.ndim == 1:
                return self.average[:-1].copy(), self.average[-1:].copy()
            return self.average[:, :-1].copy(), self.average[:, -1].copy()
        return self.coef, self.intercept

    def _mean_loss(self, sums, coef=None, intercept=None):
        """Training loss (mean of the rows' losses) at the current point.

        Or at ``coef``, ``intercept`` when given. One value per target for a
        2-D ``y``; the L2 norm's is the mean squared residual.
        """
        coef = self.coef if coef is None else coef
        intercept = self.intercept if intercept is None else intercept
        sums = _engine.residual_sums(
            self.X, self.y, coef, intercept, sums,
            loss_code=self.loss_code, epsilon=self.epsilon, weights=self.weights,
        )
        return sums[..., -1] / self.total_weight

    def _validate(self, sums):
        """Record the held-out rows' loss and R^2; return the R^2.

        With several targets both are averaged over the targets (the R^2 as
        scikit-learn's ``r2_score`` averages it, uniformly).
        """
        weights, total, spread = self.validation
        sums = _engine.residual_sums(
            self.X, self.y, self.coef, self.intercept, sums, weights=weights
        )
        squared = sums[..., -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(spread > 0, 1.0 - squared / spread, 0.0)
        score = float(np.mean(scores))
        self.history["validation_loss"].append(float(np.mean(squared)) / total)
        self.history["validation_score"].append(score)
        return score

    def _report(self, epoch, loss, eta, score):
        elapsed = self.history["elapsed"][-1]
        line = (
            f"-- Epoch {epoch}: loss {loss:.6g}, step size {eta:g}, "
            f"updates {self.t_start + self.steps}, elapsed {elapsed:.3f} s"
        )
        if score is not None:
            line += f", validation R^2 {score:.6g}"
        print(line)  # verbose output

    def _zero_model_loss(self):
        """Mean loss of predicting 0 for every row (needs y only).

        A float for a 1-D ``y``, one value per target for a 2-D one.
        """
        y, w = self.y, self.weights
        if self.loss_code in (_SQUARED_ERROR, _L2_NORM):
            if w is None:
                total = np.einsum("i...,i...->...", y, y, dtype=np.float64)
            else:
                total = np.einsum("i,i...,i...->...", w, y, y, dtype=np.float64)
            return total / self.total_weight
        size = np.abs(y.astype(np.float64))
        eps = self.epsilon
        if self.loss_code == _LOSS_CODES["huber"]:
            rows = np.where(size <= eps, 0.5 * size * size, eps * (size - 0.5 * eps))
        else:
            rows = np.maximum(size - eps, 0.0)
            if self.loss_code == _LOSS_CODES["squared_epsilon_insensitive"]:
                rows = rows * rows
        total = rows.sum(axis=0) if w is None else w @ rows
        return total / self.total_weight

    def _healthy(self, loss, reference):
        if not np.isfinite(loss) or loss > _DIVERGENCE_FACTOR * reference:
            return False
        if self._grown(loss, _GROWTH_FACTOR, reference):
            return False
        self.best_loss = min(self.best_loss, loss)
        return bool(np.all(np.isfinite(self.coef)))

    def _rising(self, loss, reference):
        """Whether the full-batch loss rose in each of the last epochs ``tol`` saw.

        Full-batch descent with a stable step never raises the loss, so
        ``n_iter_no_change`` rises in a row mean a step above ``2 / L``:
        the loss grows by a constant factor per epoch, which ``tol`` would
        otherwise call convergence while it is still well under
        ``_STALL_GROWTH_FACTOR`` times the best (8.6 times after 5 epochs at
        1.2 / L). Mini-batch losses are noisy and get no such rule.
        """
        if not self.full_batch or loss <= _GROWTH_FLOOR * reference:
            return False
        recent = self.losses[-(self.n_iter_no_change + 1):]
        return len(recent) > self.n_iter_no_change and bool(
            np.all(np.diff(recent) > 0)
        )

    def _grown(self, loss, factor, reference):
        """Whether ``loss`` is ``factor`` times the best loss and not negligible."""
        return loss > factor * self.best_loss and loss > _GROWTH_FLOOR * reference

    def _auto_norms(self, per_rms, norm):
        """``(eta, norms)`` for a mini-batch epoch of the L2 norm's "auto" step.

        The kernel takes one ``eta`` and divides each target's steps by its
        ``norms``. One target: ``eta`` is the step at its RMS. Several, with
        no penalty: ``eta`` is the largest step and each target's norm is
        scaled so that ``eta / norm`` is its own step at its own RMS (a
        target fitted exactly, RMS 0, stops; the others go on). With a
        penalty ``eta`` also scales the penalty's step, which must stay in
        proportion to the data's, so all targets take the smallest step.
        """
        norm = np.atleast_1d(np.asarray(norm, dtype=np.float64))
        if norm.size == 1:
            return per_rms(float(norm[0])), norm
        steps = np.array([per_rms(float(rms)) for rms in norm])
        if self.alpha > 0:
            smallest = float(steps.min())
            if smallest < _SHARED_STEP_WARNING * steps.max() and not self.warned:
                self.warned = True
                ratio = steps.max() / max(smallest, 1e-300)
                warnings.warn(
                    "With a penalty, the targets of an l2_norm fit with "
                    "learning_rate='auto' on mini-batches share the smallest "
                    f"step of any target, here {ratio:.3g} "
                    "times smaller than the largest: the other targets will "
                    "barely move. Fit such targets separately, or use "
                    "batch_size=None.",
                    UserWarning,
                    stacklevel=6,  # the caller of fit()
                )
            return smallest, norm
        eta = float(steps.max())
        with np.errstate(divide="ignore"):
            scaled = np.where(steps > 0, norm * (eta / steps), np.inf)
        return eta, scaled

    def _finite_zero_model_loss(self):
        """``_zero_model_loss()``, refused when y's squares overflow."""
        loss = self._zero_model_loss()
        if not np.all(np.isfinite(loss)):
            raise ValueError(
                f"y holds values as large as {np.max(np.abs(self.y)):.3g}: their "
                "squares overflow float64. Rescale y (for example to standard "
                "deviation 1) before fitting."
            )
        return loss

    def _exact_loss(self, coef, intercept):
        """Training loss at ``coef``, ``intercept`` (mean over the targets)."""
        loss = self._mean_loss(None, coef, intercept)
        if self.loss_code == _L2_NORM:
            loss = np.sqrt(loss)
        return float(np.mean(loss))

    def _snapshot(self):
        """Copies of ``(coef, intercept, average, steps)``: what divergence restores."""
        average = None if self.average is None else self.average.copy()
        return self.coef.copy(), self.intercept.copy(), average, self.steps

    def _diverge(self, epoch, loss):
        # back to the best state, the running average and the step count
        # included, so that coef_ (averaged or not), t_ and a later
        # partial_fit all continue from it
        best_epoch, coef, intercept, average, steps = self.best_state
        kept_loss = start_loss = None
        if steps == self.start_state[4]:  # no update since the start
            best_epoch = 0
        if best_epoch:
            # A stochastic epoch's recorded loss is the mean over its updates,
            # not the loss of the state it ended in, which can be far worse
            # than the start: keep that state only if its exact loss (one
            # pass over X, on divergence only) beats the start's.
            kept_loss = self._exact_loss(coef, intercept)
            start_loss = self._exact_loss(*self.start_state[1:3])
            if not kept_loss <= start_loss:
                best_epoch, coef, intercept, average, steps = self.start_state
        self.coef = coef.copy()
        self.intercept = intercept.copy()
        self.average = None if average is None else average.copy()
        self.steps = steps
        self.norm = None  # a later partial_fit measures the RMS afresh
        largest = max(abs(float(np.max(self.X))), abs(float(np.min(self.X))))
        if largest > 1e100:
            cause = (
                f"X holds values as large as {largest:.3g}, whose products "
                "overflow float64: rescale the features (standardise them)."
            )
        elif self.auto and self.full_batch:
            cause = (
                f"learning_rate='auto' chose eta0={self.eta:.3g}, the "
                "full-batch step that the data's Lipschitz constant allows, "
                "and the fit still diverged: the features may be scaled too "
                "unevenly for float64; standardise them."
            )
        elif self.auto:
            cause = (
                f"learning_rate='auto' chose eta0={self.eta:.3g}, which "
                "guarantees progress only on average; with small batches the "
                f"{self.loss_name!r} loss can still diverge: give a smaller "
                "eta0, a larger batch_size, or loss='squared_error'."
            )
        elif self.loss_code == _L2_NORM:
            cause = (
                "The 'l2_norm' loss's curvature is 1 / RMS: it grows as the "
                "residual shrinks (without bound where a line fits the data "
                "exactly), so a step schedule that ignores the RMS "
                f"(learning_rate={self.schedule_name!r}) overshoots near the "
                "optimum: use learning_rate='auto', whose step follows the "
                "RMS, or loss='squared_error'."
            )
        else:
            try:
                safe = f"eta0={_AutoStep(self)():.3g}"
            except (ArithmeticError, ValueError):  # degenerate data
                safe = "a smaller eta0"
            if self.schedule == _engine.SCHEDULE_CODES["optimal"]:
                first = _engine.step_size(
                    self.schedule, self.eta, 1, self.power_t, self.optimal_t0
                )
                cause = (
                    "learning_rate='optimal' takes steps 1 / (alpha (t0 + t)), "
                    f"the first of {first:.3g}, too large for this data: raise "
                    f"alpha, use learning_rate='auto' (here {safe}) or "
                    "standardise the features."
                )
            else:
                cause = (
                    f"The step size (eta0={self.eta:g}) is too large for this "
                    f"data: use learning_rate='auto' (here {safe}) or "
                    "standardise the features."
                )
        if np.isfinite(self.best_loss):
            before = f" (the lowest epoch loss so far: {self.best_loss:.3g})"
        else:
            before = ""
        if best_epoch:
            kept = (
                f"The coefficients after {steps} update steps (training loss "
                f"{kept_loss:.3g}), the best measured, were kept."
            )
        else:
            if start_loss is None:
                start_loss = self._exact_loss(coef, intercept)
            kept = (
                f"The starting coefficients (training loss {start_loss:.3g}) "
                "were kept."
            )
        self.diverged = DivergenceError(
            f"The fit diverged in epoch {epoch}: the mean training loss "
            f"reached {loss:.3g}{before}. {cause} {kept}",
            epoch=epoch,
            loss=float(loss),
        )


class _AutoStep:
    """The step sizes of ``learning_rate="auto"``: stable descent for ``run``.

    Full batch: ``1 / L``, ``L`` the Lipschitz constant of the gradient of
    the (weighted) mean loss: the loss's curvature times the largest
    eigenvalue of ``[X 1]^T W [X 1] / sum(W)`` (power iteration, one pass
    over X per iteration), plus the L2 penalty. Gradient descent with any
    step below ``2 / L`` decreases a loss with ``L``-Lipschitz gradient.
    Mini-batches of ``b`` rows: ``1 / (2 L(b))`` with the expected
    smoothness ``L(b) = n (b - 1) / (b (n - 1)) L + (n - b) / (b (n - 1))
    L_max``, ``L_max`` the curvature times the largest weighted squared row
    norm: the step for which SGD's expected progress is guaranteed.

    The L2 norm's curvature is ``1 / RMS``: it grows as the residual
    shrinks (without bound on an exact fit), so a step that suits the
    starting RMS is too long near the optimum. Its step is taken at
    the current RMS (call with ``rms``), which makes the update without a
    penalty exactly the squared loss's ``"auto"`` update: stable, and
    converging to the same least-squares coefficients.

    The eigenvalue and the largest row norm are computed once, here.
    """

    def __init__(self, run, iterations=100, rtol=1e-6):
        X = run.X
        n_samples, n_features = X.shape
        weights = run.weights
        zeros = np.zeros(n_samples, dtype=X.dtype)
        rng = np.random.default_rng(0)
        v = rng.standard_normal(n_features)
        b = np.array([1.0 if run.fit_intercept else 0.0])
        eigenvalue = 0.0
        for _ in range(iterations):
            norm = math.sqrt(v @ v + b[0] ** 2)
            v, b = v / norm, b / norm
            sums = _engine.residual_sums(X, zeros, v, b, weights=weights)
            v = sums[:n_features] / run.total_weight
            b = np.array(
                [sums[n_features] / run.total_weight if run.fit_intercept else 0]
            )
            previous, eigenvalue = eigenvalue, math.sqrt(v @ v + b[0] ** 2)
            if abs(eigenvalue - previous) <= rtol * eigenvalue:
                break
        self.eigenvalue = eigenvalue
        self.curvature = _CURVATURE[run.loss_name]
        self.per_rms = run.loss_code == _L2_NORM
        self.ridge = run.alpha * (1.0 - run.l1_ratio)
        if not self.curvature * eigenvalue + self.ridge > 0:
            raise ValueError("X has no variation: no step size can be derived.")
        self.full_batch = run.full_batch
        if not self.full_batch:
            rows = np.einsum("ij,ij->i", X, X, dtype=np.float64) + (
                1.0 if run.fit_intercept else 0.0
            )
            if weights is not None:
                rows *= weights / run.weight_mean
            self.largest_row = float(rows.max())
            self.n = n_samples if run.train_rows is None else len(run.train_rows)
            self.b = run.batch_size

    def __call__(self, rms=1.0):
        """The step; for the L2 norm, the step at RMS residual ``rms``."""
        curvature = self.curvature
        if self.per_rms:
            if not 0 < rms < math.inf:
                # a zero residual takes the zero subgradient; an overflowed
                # one is left to the divergence rules
                return 0.0
            curvature /= rms
        lipschitz = curvature * self.eigenvalue + self.ridge
        if not lipschitz > 0:  # the curvature underflowed: no safe step known
            return 0.0
        if self.full_batch:
            return 1.0 / lipschitz
        largest = curvature * self.largest_row + self.ridge
        n, m = self.n, self.b
        if n == 1:
            return 1.0 / (2.0 * largest)
        expected = (n * (m - 1) * lipschitz + (n - m) * largest) / (m * (n - 1))
        return 1.0 / (2.0 * expected)


class _Orders:
    """The row order of each stochastic epoch, one per call of ``next``.

    ``sampling``: "sequential" visits the training rows in index order every
    epoch; "shuffle_once" draws one permutation and keeps it; "reshuffle"
    draws a new permutation every epoch; "block_shuffle" draws a new order
    of runs of ``block_size`` neighbouring rows every epoch (a permutation
    when ``block_size`` is 1); "with_replacement" draws every entry
    uniformly and independently. Each drawn order uses the next seed
    from ``rng`` and depends on it alone, so a run of ``partial_fit`` calls
    draws the same orders as one ``fit``.

    Two index buffers alternate: while an epoch runs on one, a worker thread
    draws the other for the next epoch (the kernels release the GIL), so the
    draw (about 8 ms per million rows) hides behind the epoch. Below
    ``OVERLAP_MIN_ROWS``, or with ``overlap=False`` (when the epochs use
    both cores, and a third thread would only take turns with them), the
    draw runs inline; the orders are the same either way.
    """

    OVERLAP_MIN_ROWS = 1 << 16

    def __init__(
        self, n_samples, rows, sampling, rng, n_epochs, block_size=1, overlap=True
    ):
        self.rows = rows
        self.block_size = block_size
        self.redraw = sampling in ("reshuffle", "block_shuffle", "with_replacement")
        self.with_replacement = sampling == "with_replacement"
        self.rng = rng
        self.remaining = n_epochs
        n_visits = n_samples if rows is None else len(rows)
        count = 2 if self.redraw and n_epochs > 1 else 1
        self.buffers = [np.empty(n_visits, dtype=np.intp) for _ in range(count)]
        self.turn = 0
        self.pool = None
        self.pending = None
        if sampling == "sequential":
            self.buffers[0][:] = np.arange(n_samples) if rows is None else rows
            return
        if overlap and count == 2 and n_visits >= self.OVERLAP_MIN_ROWS:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="fastgd")
        self._prepare(0)

    def _prepare(self, turn):
        self.remaining -= 1
        seed = int(self.rng.integers(0, 2**63 - 1))
        args = (
            self.buffers[turn], seed, self.rows, self.with_replacement,
            self.block_size,
        )
        if self.pool is None:
            _engine.draw_order(*args)
        else:
            self.pending = self.pool.submit(_engine.draw_order, *args)

    def next(self):
        """Return the order for the coming epoch; start drawing the next."""
        if self.pending is not None:
            self.pending.result()
            self.pending = None
        current = self.buffers[self.turn]
        if self.redraw and self.remaining > 0:
            self.turn = (self.turn + 1) % len(self.buffers)
            self._prepare(self.turn)
        return current

    def close(self):
        """Wait for a draw still running and stop the worker."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)


@dataclass(frozen=True)
class FitResult:
    """What ``fastgd.fit`` returns.

    Attributes
    ----------
    coef : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients, in the dtype of ``X``; a row per target for a 2-D ``y``.
    intercept : float or ndarray of shape (n_targets,)
        Intercept; one per target for a 2-D ``y``.
    n_iter : int
        Epochs run.
    t : int
        Update steps taken.
    loss_curve : ndarray of shape (n_iter,)
        Training loss per epoch (see ``SGDRegressor.loss_curve_``).
    converged : bool
        Whether the ``tol`` criterion stopped the fit before ``max_iter``.
    """

    coef: np.ndarray
    intercept: float | np.ndarray
    n_iter: int
    t: int
    loss_curve: np.ndarray
    converged: bool


def fit(X, y, sample_weight=None, **params) -> FitResult:
    """Fit a linear model by gradient descent without keeping an estimator.

    The functional twin of ``SGDRegressor(**params).fit(X, y)``: the same
    parameters, checks, kernels and results, without scikit-learn's estimator
    machinery (which is not even imported).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Targets; a 2-D ``y`` fits one model per column in the same passes
        over ``X`` (see ``SGDRegressor.fit``).
    sample_weight : array-like of shape (n_samples,), float or None, default=None
        Weight of each row (see ``SGDRegressor.fit``).
    **params
        Any parameter of ``SGDRegressor`` except ``warm_start`` (``loss``,
        ``batch_size``, ``eta0``, ``max_iter``, ``tol``, ``random_state``,
        ...).

    Returns
    -------
    result : FitResult
        Coefficients, intercept, epochs, steps, loss curve and whether the
        ``tol`` criterion was met.

    Raises
    ------
    TypeError
        For a parameter name that ``SGDRegressor`` does not have.
    ValueError
        For an invalid parameter value or invalid data.
    DivergenceError
        If the loss diverges.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> result = fastgd.fit(X, 2 * X[:, 0] + 1, batch_size=None, eta0=0.1,
    ...                     max_iter=2000, tol=None)
    >>> result.coef.round(6), round(result.intercept, 6)
    (array([2.]), 1.0)
    """
    unknown = sorted(set(params) - set(DEFAULTS) | ({"warm_start"} & set(params)))
    if unknown:
        raise TypeError(
            f"fit() got unexpected parameter(s) {unknown}; it takes the "
            "parameters of SGDRegressor except warm_start."
        )
    params = {**DEFAULTS, **params}
    check_params(params, PARAMETER_CONSTRAINTS)
    X, y = check_X_y(X, y)
    weights = check_sample_weight(sample_weight, len(X))
    run = train(X, y, params, weights=weights)
    coef, intercept = run.solution()
    return FitResult(
        coef=coef.astype(X.dtype),
        intercept=float(intercept[0]) if y.ndim == 1 else intercept.astype(X.dtype),
        n_iter=run.epoch,
        t=run.steps,
        loss_curve=np.asarray(run.losses, dtype=np.float64),
        converged=run.converged,
    )
