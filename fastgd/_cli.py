"""The ``fastgd`` command line: fit a CSV file, run the demo or the bench.

``fastgd fit FILE.csv --target COLUMN`` fits a linear model to a table by
gradient descent and prints it beside the exact least-squares solution.
``fastgd demo`` compares full-batch gradient descent, SGD and mini-batch SGD
on the bundled housing data and on a generated problem of a million rows.
``fastgd bench`` times each method to 1% of the optimal training loss and
writes a table and a figure (see ``_bench.py``).

Printing is this module's job, unlike the library's (whose only output is
the optional per-epoch ``verbose`` line). pandas, needed to read CSV files,
and tqdm and matplotlib, needed by the bench, are optional dependencies
(``pip install "fastgd[cli]"``); each is imported only once a command that
needs it runs.
"""

import argparse
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import fastgd
from fastgd import _engine
from fastgd._threads import thread_limit

__all__ = ["main", "run_demo"]

_PANDAS_MISSING = (
    "fastgd: error: the command line needs pandas; install it with: "
    'pip install "fastgd[cli]"'
)

_BENCH_MISSING = (
    "fastgd: error: 'fastgd bench' needs {name}; install it with: "
    'pip install "fastgd[cli]"'
)

# What the "training loss" row reports for each --loss: the RMS for
# l2_norm, else the mean squared residual, which least squares minimises
# and so compares fairly (Huber and the epsilon-insensitive losses minimise
# something else, and their fits are expected to show a larger value)
_LOSS_NAMES = {
    "squared_error": "mean squared residual",
    "l2_norm": "root mean square residual",
    "huber": "mean squared residual",
    "epsilon_insensitive": "mean squared residual",
    "squared_epsilon_insensitive": "mean squared residual",
}

# Demo runs, per data set: (label, batch_size, eta0, max_iter, tol). An eta0
# of None means 1/L, the classic safe step of full-batch descent, where L is
# the Lipschitz constant of the gradient. A constant step leaves SGD in a
# noise ball around the optimum whose radius grows like sqrt(eta0 / batch);
# these steps make it about 1e-3 of the optimum's norm, and the epochs are
# enough to get there. Both are tuned for the full-size demo (about 10 s on
# two cores); tol is in units of the target's variance.
_DEMO_RUNS = {
    "housing": [
        ("full-batch GD", None, None, 4000, None),
        ("SGD, batch 1", 1, 1e-5, 2000, None),
        ("mini-batch SGD, batch 32", 32, 3e-4, 1000, None),
    ],
    "generated": [
        ("full-batch GD", None, None, 200, 1e-12),
        ("SGD, batch 1", 1, 1e-6, 15, None),
        ("mini-batch SGD, batch 32", 32, 3e-5, 10, None),
    ],
}


def main(argv=None) -> int:
    """Run the ``fastgd`` command line.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 1 if the fit diverged, 2 for unusable input or options,
        130 if interrupted.
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader went away (``fastgd fit ... | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv):
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse has printed the usage and its message (or the help)
        return exit_.code if isinstance(exit_.code, int) else 2

    if args.command == "bench":
        return _run_bench(args)

    try:
        import pandas  # noqa: F401
    except ImportError:
        print(_PANDAS_MISSING, file=sys.stderr)
        return 2
    from . import _tabular

    try:
        # NumPy's BLAS threads and Numba's OpenMP threads, each spinning
        # while idle, slow each other down by up to 100x when a command
        # alternates between them; the BLAS work here is small, so it gets
        # one thread
        with threadpool_limits(1, user_api="blas"):
            if args.command == "fit":
                return _run_fit(args)
            return run_demo(n_jobs=args.threads)
    except _tabular.InputError as error:
        print(f"fastgd: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastgd: interrupted", file=sys.stderr)
        return 130


def _build_parser():
    """Return the argument parser with its ``fit`` and ``demo`` commands."""
    parser = argparse.ArgumentParser(
        prog="fastgd",
        description="Linear regression by gradient descent on Numba kernels.",
    )
    parser.add_argument(
        "--version", action="version", version=f"fastgd {fastgd.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser(
        "fit",
        help="fit a CSV file and compare with the least-squares solution",
        description=(
            "Fit a linear model to a CSV file by gradient descent. Text columns "
            "are one-hot encoded, features standardised, and the result is "
            "printed beside the exact least-squares solution."
        ),
    )
    fit.add_argument("file", metavar="FILE.csv", help="CSV file with a header row")
    fit.add_argument(
        "--target", required=True, metavar="COLUMN", help="column to predict"
    )
    fit.add_argument(
        "--batch-size",
        type=_batch_size,
        default=32,
        metavar="{full,N}",
        help="rows per step: 'full' for full batch, 1 for SGD (default: 32)",
    )
    fit.add_argument(
        "--loss",
        choices=list(_LOSS_NAMES),
        default="squared_error",
        help="mean squared residual, or its square root (default: squared_error)",
    )
    fit.add_argument(
        "--eta0", type=_positive_float, default=0.01, help="step size (default: 0.01)"
    )
    fit.add_argument(
        "--max-iter",
        type=_positive_int,
        default=1000,
        help="most epochs (default: 1000)",
    )
    fit.add_argument(
        "--tol",
        type=_tol,
        default=1e-3,
        help=(
            "stop once the training loss (of the target scaled to standard "
            "deviation 1) improves by less than this for 5 epochs; 'none' runs "
            "exactly --max-iter epochs (default: 1e-3)"
        ),
    )
    fit.add_argument(
        "--seed", type=_non_negative_int, default=0, help="shuffling seed (default: 0)"
    )
    fit.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="keep the numeric features in their own units",
    )
    fit.add_argument(
        "--impute",
        choices=["drop", "mean", "median"],
        default="drop",
        help="rows with a missing feature value: drop them or fill in (default: drop)",
    )
    fit.add_argument(
        "--max-levels",
        type=_positive_int,
        default=50,
        metavar="N",
        help="drop text columns with more distinct values than this (default: 50)",
    )
    fit.add_argument(
        "--min-level-count",
        type=_non_negative_int,
        default=30,
        metavar="N",
        help="merge text levels seen in fewer rows into the reference (default: 30)",
    )
    fit.add_argument(
        "--reference",
        choices=["frequent", "first"],
        default="frequent",
        help=(
            "level of each text column without an indicator column: the most "
            "frequent (default; better conditioned) or the first in sorted order"
        ),
    )
    fit.add_argument(
        "--threads", type=_threads, metavar="N", help="Numba threads (-1: all)"
    )
    fit.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="print one line per epoch (loss of the scaled target)",
    )

    demo = commands.add_parser(
        "demo",
        help="compare full-batch GD, SGD and mini-batch SGD on built-in data",
        description=(
            "Fit the bundled housing data and a generated 1,000,000 x 32 problem "
            "with full-batch gradient descent, SGD and mini-batch SGD, and "
            "compare each with the least-squares optimum."
        ),
    )
    demo.add_argument(
        "--threads", type=_threads, metavar="N", help="Numba threads (-1: all)"
    )

    bench = commands.add_parser(
        "bench",
        help="time full-batch GD, SGD and mini-batch SGD to 1%% of the optimal loss",
        description=(
            "On a generated least-squares problem, measure the wall-clock time "
            "full-batch gradient descent, SGD and mini-batch SGD need to bring "
            "the training loss within 1% of the exact optimum. Writes "
            "time_to_accuracy.md, .csv and .png into --out."
        ),
    )
    bench.add_argument(
        "--n",
        type=_positive_int,
        default=1_000_000,
        metavar="N",
        help="rows of the generated problem (default: 1000000)",
    )
    bench.add_argument(
        "--d",
        type=_positive_int,
        default=32,
        metavar="D",
        help="features of the generated problem (default: 32)",
    )
    bench.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="dtype of the data (default: float64)",
    )
    bench.add_argument(
        "--batch-sizes",
        type=_batch_sizes,
        default=None,
        metavar="LIST",
        help="comma-separated batch sizes, 'full' for full batch "
        "(default: 1,8,32,256,4096,full)",
    )
    bench.add_argument(
        "--out",
        default="fastgd-bench",
        metavar="DIR",
        help="folder for the table and the figure (default: fastgd-bench)",
    )
    bench.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seed of data and shuffles (default: 0)",
    )
    bench.add_argument(
        "--time-limit",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="timed seconds after which a method gives up, or three times "
        "that on the wall clock, evaluations included (default: 60)",
    )
    bench.add_argument(
        "--repeats",
        type=_positive_int,
        default=5,
        metavar="N",
        help="timed runs of each method; the table gives the median (default: 5)",
    )
    bench.add_argument(
        "--condition",
        type=_condition,
        default=100.0,
        help="largest over smallest feature variance (default: 100)",
    )
    bench.add_argument(
        "--threads", type=_threads, metavar="N", help="Numba threads (-1: all)"
    )
    return parser


def _batch_size(text):
    """Parse ``--batch-size``: ``full`` (None) or a positive integer."""
    if text.lower() == "full":
        return None
    return _positive_int(text)


def _batch_sizes(text):
    """Parse ``--batch-sizes``: a comma-separated list of sizes and ``full``."""
    from ._bench import parse_batch_sizes

    try:
        return parse_batch_sizes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _condition(text):
    """Parse ``--condition``: a finite number of at least 1."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 1):
        raise argparse.ArgumentTypeError(
            f"must be a finite number of at least 1, got {text}"
        )
    return value


def _int_at_least(low, text):
    """Parse an integer option value of at least ``low``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def _positive_int(text):
    """Parse a positive integer option value."""
    return _int_at_least(1, text)


def _threads(text):
    """Parse ``--threads``: a positive integer, or -1 for all of Numba's threads."""
    if text.strip() == "-1":
        return -1
    try:
        return _int_at_least(1, text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error}, or -1 for all threads") from None


def _non_negative_int(text):
    """Parse an integer of at least zero."""
    return _int_at_least(0, text)


def _number(text):
    """Parse a number, or say that ``text`` is not one."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_float(text):
    """Parse a finite number above zero."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def _tol(text):
    """Parse ``--tol``: ``none`` (None) or a finite number of at least zero."""
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or 'none', got {text!r}"
        ) from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


@dataclass
class _Fit:
    """A fit mapped back to the target's units, with its wall time."""

    coef: np.ndarray
    intercept: float
    n_iter: int
    t: int
    converged: bool
    seconds: float


def _fit_in_target_units(X, y, **params):
    """Fit on the centred, scaled target; return the model in y's units.

    Scaling y to standard deviation 1 makes ``tol`` and the divergence
    threshold mean the same for a target in dollars or in millimetres. The
    fit is linear in y, so coefficients scale back exactly.
    """
    y_mean = float(y.mean())
    y_scale = float(y.std()) or 1.0
    y_scaled = (y - y_mean) / y_scale

    with warnings.catch_warnings():
        # the caller reads FitResult.converged and says it in CLI terms
        warnings.simplefilter("ignore", fastgd.ConvergenceWarning)
        start = time.perf_counter()
        result = fastgd.fit(X, y_scaled, **params)
        seconds = time.perf_counter() - start

    return _Fit(
        coef=result.coef.astype(np.float64) * y_scale,
        intercept=result.intercept * y_scale + y_mean,
        n_iter=result.n_iter,
        t=result.t,
        converged=result.converged,
        seconds=seconds,
    )


def _mean_squared_residual(X, y, coef, intercept):
    """Mean of ``(X @ coef + intercept - y) ** 2``."""
    residual = X @ coef
    residual += intercept - y
    return float(residual @ residual) / len(y)


def _augmented_gram(X):
    """Return ``[X 1]^T [X 1] / n`` without building ``[X 1]``."""
    n_samples, n_features = X.shape
    gram = np.empty((n_features + 1, n_features + 1))
    gram[:n_features, :n_features] = X.T @ X
    column_sums = X.sum(axis=0)
    gram[:n_features, n_features] = column_sums
    gram[n_features, :n_features] = column_sums
    gram[n_features, n_features] = n_samples
    return gram / n_samples


def _lipschitz(gram):
    """Lipschitz constant ``2 * lambda_max`` of the mean squared loss gradient."""
    return 2.0 * float(np.linalg.eigvalsh(gram)[-1])


def _method_name(batch_size):
    """Describe a ``batch_size`` in words."""
    if batch_size is None:
        return "full-batch gradient descent"
    if batch_size == 1:
        return "SGD (batch size 1)"
    return f"mini-batch SGD (batch size {batch_size})"


def _format_table(header, rows, align=None):
    """Return a plain-text table as a list of lines.

    ``align`` has one letter per column, ``"l"`` or ``"r"``; by default the
    first column is left-aligned and the others, numbers, right-aligned.
    """
    align = align or "l" + "r" * (len(header) - 1)
    table = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[j]) for row in table) for j in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        ).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


# Below this, squares of a target's differences (the losses the fit and its
# report compute) fall under float64's smallest normal number, 2.2e-308.
_TINY_TARGET = 1e-150


def _run_fit(args):
    """Carry out ``fastgd fit``; return the exit status."""
    from . import _tabular

    frame = _tabular.read_csv(args.file)
    design = _tabular.build_design(
        frame,
        args.target,
        impute=args.impute,
        standardize=args.standardize,
        max_levels=args.max_levels,
        min_level_count=args.min_level_count,
        reference=args.reference,
    )
    X, y = design.X, design.y
    n_samples, n_features = X.shape
    # the fit, the least-squares reference and the report all square y
    with np.errstate(over="ignore"):
        squares = float(np.sum(np.square(y)))
    peak = float(np.max(np.abs(y)))
    if not math.isfinite(squares):
        raise _tabular.InputError(
            f"target {args.target!r} holds values as large as {peak:.3g}, whose "
            "squares overflow float64; rescale it (divide it by a power of ten) "
            "and fit again"
        )
    if 0 < peak < _TINY_TARGET:
        raise _tabular.InputError(
            f"target {args.target!r} holds values no larger than {peak:.3g}, "
            "whose squared differences underflow float64; rescale it (multiply "
            "it by a power of ten) and fit again"
        )
    if args.batch_size is not None and args.batch_size > n_samples:
        raise _tabular.InputError(
            f"--batch-size {args.batch_size} exceeds the {n_samples} rows left "
            "after preprocessing; use --batch-size full"
        )

    # say what was done to the data before fitting it
    print(
        f"data: {args.file}: {frame.shape[0]} rows, {frame.shape[1]} columns; "
        f"target {args.target!r}"
    )
    for note in design.notes:
        print(note)
    print(
        "target: centred and scaled to standard deviation 1 for the fit, so --tol "
        "does not depend on its units; results below are in the target's units"
    )
    tol = "none (fixed epochs)" if args.tol is None else f"{args.tol:g}"
    print(
        f"fit: {_method_name(args.batch_size)} on {n_samples} rows x "
        f"{_tabular._count(n_features, 'feature')}, loss {args.loss}, eta0 "
        f"{args.eta0:g}, max_iter "
        f"{args.max_iter}, tol {tol}, seed {args.seed}"
    )

    # compile (or load) the kernels first so the wall time is the fit's own
    _warm_up(args.threads, batch_sizes=[None if args.batch_size is None else 1])
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            run = _fit_in_target_units(
                X,
                y,
                loss=args.loss,
                batch_size=args.batch_size,
                eta0=args.eta0,
                max_iter=args.max_iter,
                tol=args.tol,
                random_state=args.seed,
                verbose=args.verbose,
                n_jobs=args.threads,
            )
    except fastgd.DivergenceError as error:
        _report_divergence(error.epoch, error.loss, design, args)
        return 1
    except ValueError as error:
        # fastgd names the problem; show it as a one-line CLI error
        raise _tabular.InputError(f"fastgd refused the data: {error}") from None
    if not (np.all(np.isfinite(run.coef)) and math.isfinite(run.intercept)):
        # fastgd raises on divergence; this guards the promise never to
        # print non-finite coefficients as a result
        _report_divergence(run.n_iter, math.inf, design, args)
        return 1

    # the exact answer on the same design matrix
    design_with_ones = np.column_stack([X, np.ones(n_samples)])
    exact = np.linalg.lstsq(design_with_ones, y, rcond=None)[0]
    print()
    _print_comparison(design, np.append(run.coef, run.intercept), exact)
    print()
    _print_fit_quality(X, y, run, exact, args.loss)

    if args.tol is not None and not run.converged:
        print(
            f"note: stopped at --max-iter {args.max_iter} before the loss stopped "
            f"improving by --tol {args.tol:g}; raise --max-iter or --eta0, or "
            "loosen --tol"
        )
    return 0


def _print_comparison(design, theta, exact):
    """Print the coefficients beside the least-squares ones, and the gap."""
    names = [*design.feature_names, "(intercept)"]
    difference = np.abs(theta - exact)
    columns = _fixed_point(np.concatenate([theta, exact, difference]), len(theta))
    rows = [
        [name, *cells]
        for name, cells in zip(names, zip(*columns, strict=True), strict=True)
    ]
    units = (
        "target units per standard deviation of each numeric feature"
        if design.standardized
        else "target units per unit of each feature"
    )
    print(f"coefficients, in {units}")
    print("(for an indicator: its level's difference from the reference level):")
    for line in _format_table(["feature", "fastgd", "lstsq", "|difference|"], rows):
        print(line)

    worst = int(np.argmax(difference[:-1]))
    largest = float(np.max(np.abs(exact[:-1])))
    share = ""
    # a constant target's least-squares slopes are rounding noise: no scale
    if largest > 0 and np.ptp(design.y) > 0:
        share = (
            f", {difference[worst] / largest:.1%} of the largest |lstsq coefficient|"
        )
    print(
        f"largest |coefficient difference|: {difference[worst]:.4g} "
        f"({names[worst]}){share}"
    )


def _print_fit_quality(X, y, run, exact, loss):
    """Print training loss and R^2 of the fit and of least squares, and costs."""
    mse = _mean_squared_residual(X, y, run.coef, run.intercept)
    mse_exact = _mean_squared_residual(X, y, exact[:-1], exact[-1])
    to_loss = math.sqrt if loss == "l2_norm" else float
    variance = float(np.var(y))

    def r2(value):
        # R^2 is undefined for a constant target
        return f"{1 - value / variance:.6f}" if variance > 0 else "n/a (constant y)"

    rows = [
        [
            f"training loss ({_LOSS_NAMES[loss]})",
            f"{to_loss(mse):.6g}",
            f"{to_loss(mse_exact):.6g}",
        ],
        ["R^2", r2(mse), r2(mse_exact)],
    ]
    for line in _format_table(["", "fastgd", "lstsq"], rows):
        print(line)
    print(
        f"epochs: {run.n_iter}   update steps: {run.t}   wall time: "
        f"{run.seconds:.3f} s (fit only, kernels compiled beforehand)"
    )


def _fixed_point(values, length):
    """Format numbers with one number of decimals; split into columns of ``length``.

    The decimals give the largest magnitude six significant digits, so the
    decimal points line up; magnitudes a fixed-point column cannot show well
    fall back to scientific notation.
    """
    largest = float(np.max(np.abs(values)))
    if largest == 0 or not 1e-4 <= largest < 1e12:
        cells = [f"{value:.5e}" for value in values]
    else:
        decimals = max(0, 5 - math.floor(math.log10(largest)))
        cells = [f"{value:.{decimals}f}" for value in values]
    return [cells[i : i + length] for i in range(0, len(cells), length)]


# Unstandardised features whose standard deviations differ by more than
# this factor are blamed for a divergence: no one step suits them all.
_UNEVEN_SCALES = 10.0


def _report_divergence(epoch, loss, design, args):
    """Say on stderr that the fit diverged, when, and what to change."""
    if math.isfinite(loss):
        what = (
            f"the mean squared residual grew to {loss:.3g} times the target's variance"
        )
    else:
        what = "the loss overflowed to infinity"
    print(
        f"fastgd: the fit diverged in epoch {epoch}: {what}. No coefficients "
        "are reported.",
        file=sys.stderr,
    )

    if args.loss == "l2_norm":
        # its curvature is 1 / RMS: a smaller constant step only diverges later
        print(
            "fastgd: fix: use --loss squared_error, which has the same "
            "least-squares coefficients. The l2_norm loss's curvature grows as "
            "the residual shrinks (without bound where a line fits the data "
            "exactly), so a smaller --eta0 may only diverge later.",
            file=sys.stderr,
        )
        return

    # 1/L is the largest step that full-batch descent is sure to survive
    lipschitz = _lipschitz(_augmented_gram(design.X))
    safe = 1.0 / lipschitz
    why = (
        f"the safe full-batch step for this design is 1/L = {safe:.2g}, L = 2 x "
        "the largest eigenvalue of X^T X / n with a column of ones"
    )
    if args.eta0 > safe:
        # a round step at or below 1/L: its first significant digit, floored
        unit = 10.0 ** math.floor(math.log10(safe))
        smaller_step = (
            f"lower --eta0 from {args.eta0:g} to {math.floor(safe / unit) * unit:g} "
            f"or less ({why})"
        )
    else:
        # already below 1/L: mini-batch noise needs a smaller step still
        smaller_step = (
            f"lower --eta0 from {args.eta0:g} to {args.eta0 / 10:g} ({why}; "
            "mini-batches need less)"
        )
    numeric = ~design.is_indicator
    spread = design.X[:, numeric].std(axis=0) if numeric.sum() > 1 else None
    if (
        not design.standardized
        and spread is not None
        and spread.max() > _UNEVEN_SCALES * spread.min()
    ):
        names = [
            name
            for name, keep in zip(design.feature_names, numeric, strict=True)
            if keep
        ]
        low, high = int(np.argmin(spread)), int(np.argmax(spread))
        print(
            "fastgd: fix: drop --no-standardize. The features' standard "
            f"deviations range from {spread[low]:.2g} ({names[low]}) to "
            f"{spread[high]:.2g} ({names[high]}), and no single step size suits "
            f"both. Or {smaller_step}; that is stable but converges very slowly "
            "on features scaled this unevenly.",
            file=sys.stderr,
        )
    else:
        print(f"fastgd: fix: {smaller_step}.", file=sys.stderr)


def run_demo(n_samples=1_000_000, n_features=32, *, seed=0, n_jobs=None):
    """Compare full-batch GD, SGD and mini-batch SGD on two problems.

    Prints one table: for each data set, the exact least-squares optimum and
    then each method's epochs, final training loss, distance to the optimum
    and wall time.

    Parameters
    ----------
    n_samples : int, default=1_000_000
        Rows of the generated problem (the command line uses the default;
        tests pass fewer).
    n_features : int, default=32
        Columns of the generated problem.
    seed : int, default=0
        Seed of the generated data and of the shuffling.
    n_jobs : int or None, default=None
        Numba threads; None keeps Numba's default.

    Returns
    -------
    status : int
        0.
    """
    from . import _tabular

    started = time.perf_counter()
    print(
        "fastgd demo: full-batch gradient descent, SGD and mini-batch SGD against "
        "the exact least-squares solution"
    )
    seconds = _warm_up(n_jobs)
    print(
        f"warm-up: compiled the Numba kernels on small problems (or loaded them "
        f"from Numba's cache) in {seconds:.1f} s; the times below exclude this"
    )

    rows = []
    with resources.as_file(resources.files("fastgd") / "data" / "housing.csv") as path:
        frame = _tabular.read_csv(path)
    design = _tabular.build_design(frame, "median_house_value")
    print(
        "housing: the bundled California housing data, target "
        "median_house_value, preprocessed as 'fastgd fit' does it:"
    )
    for note in design.notes:
        print(f"  {note}")
    rows += _demo_rows("housing", design.X, design.y, seed, n_jobs)

    start = time.perf_counter()
    X, y = _make_regression(n_samples, n_features, seed)
    print(
        f"generated: {n_samples} x {n_features} float64 normal features, "
        f"y = X beta + intercept + noise (seed {seed}), made in "
        f"{time.perf_counter() - start:.1f} s"
    )
    rows += _demo_rows("generated", X, y, seed, n_jobs)

    print(
        "full batch steps by eta0 = 1/L, L = 2 x the largest eigenvalue of "
        "[X 1]^T [X 1] / n;"
    )
    print(
        "SGD and mini-batch SGD take constant steps for a fixed number of epochs, "
        "so they end in a small noise ball around the optimum;"
    )
    print(
        "targets are scaled to standard deviation 1 for fitting; losses and "
        "distances are in target units; rel. = distance / |optimum|"
    )
    print()
    header = [
        "data set",
        "method",
        "eta0",
        "epochs",
        "final loss (MSE)",
        "dist. to optimum",
        "rel.",
        "time (s)",
    ]
    for line in _format_table(header, rows, align="llrrrrrr"):
        print(line)
    print()
    print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0


def _warm_up(n_jobs, batch_sizes=(None, 1, 32)):
    """Compile (or load from Numba's cache) the kernels; return the seconds taken.

    One tiny float64 fit per batch size; every batch size above 1 uses the
    same kernel as 1.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    # small passes run on one thread and large ones threaded, two kernels:
    # compile both (the larger problem is just above the threshold)
    for n_samples in (64, _engine.PARALLEL_MIN_ELEMENTS // 4 + 1):
        X = rng.standard_normal((n_samples, 4))
        y = X @ np.ones(4)
        for batch_size in batch_sizes:
            fastgd.fit(
                X, y, batch_size=batch_size, max_iter=2, tol=None, n_jobs=n_jobs
            )
    # large mini-batch fits share each batch between two threads
    with thread_limit(n_jobs):
        _engine.warm_up_pair_epoch(np.float64)
    return time.perf_counter() - start


def _make_regression(n_samples, n_features, seed):
    """Return a well-conditioned ``X`` of standard normals and a noisy linear ``y``.

    ``X`` is generated in place as float64, the only copy made: at the
    default size it is 256 MB.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    beta = rng.normal(0.0, 1.0, n_features)
    y = X @ beta
    y += 3.0
    y += rng.normal(0.0, 0.5, n_samples)
    return X, y


def _demo_rows(name, X, y, seed, n_jobs):
    """Fit one data set with every method; return one table row per fit.

    The optimum comes from the normal equations, ``[X 1]^T [X 1] theta =
    [X 1]^T y``, rather than from ``lstsq`` on ``[X 1]``: that would copy X
    (and LAPACK copies it again). Both problems are well enough conditioned
    (condition number 1 and about 270) for the two to agree to ~1e-12.
    """
    start = time.perf_counter()
    n_samples = len(y)
    gram = _augmented_gram(X)
    moments = np.append(X.T @ y, y.sum()) / n_samples
    optimum = np.linalg.solve(gram, moments)
    mse = _mean_squared_residual(X, y, optimum[:-1], optimum[-1])
    seconds = time.perf_counter() - start
    rows = [[name, "least squares", "", "", f"{mse:.6g}", "0", "0", f"{seconds:.2f}"]]

    size = float(np.linalg.norm(optimum))
    for label, batch_size, eta0, max_iter, tol in _DEMO_RUNS[name]:
        eta0 = 1.0 / _lipschitz(gram) if eta0 is None else eta0
        run = _fit_in_target_units(
            X,
            y,
            batch_size=batch_size,
            eta0=eta0,
            max_iter=max_iter,
            tol=tol,
            random_state=seed,
            n_jobs=n_jobs,
        )
        distance = float(np.linalg.norm(np.append(run.coef, run.intercept) - optimum))
        mse = _mean_squared_residual(X, y, run.coef, run.intercept)
        rows.append(
            [
                name,
                label,
                f"{eta0:.3g}",
                str(run.n_iter),
                f"{mse:.6g}",
                f"{distance:.3g}",
                f"{distance / size:.1e}",
                f"{run.seconds:.2f}",
            ]
        )
    return rows


def _run_bench(args):
    """Carry out ``fastgd bench``; print the table and the files; return the status."""
    for name in ("tqdm", "matplotlib"):
        try:
            __import__(name)
        except ImportError:
            print(_BENCH_MISSING.format(name=name), file=sys.stderr)
            return 2
    from . import _bench

    if args.n < 2:
        print("fastgd: error: --n must be at least 2", file=sys.stderr)
        return 2
    if args.n <= args.d + 1:
        print(
            f"fastgd: error: --n {args.n} must exceed --d {args.d} + 1 (the "
            "intercept's column): with no more rows than unknowns least squares "
            "fits the data exactly, and there is no positive optimum to come "
            "within 1% of",
            file=sys.stderr,
        )
        return 2
    given = args.batch_sizes is not None
    if not given:
        args.batch_sizes = _batch_sizes("1,8,32,256,4096,full")
    args.out = Path(args.out)
    too_big = [b for b in args.batch_sizes if b is not None and b >= args.n]
    if too_big and given:
        print(
            f"fastgd: error: --batch-sizes: {too_big[0]} is not below --n {args.n}; "
            "use 'full' for full batch",
            file=sys.stderr,
        )
        return 2
    # the default list drops the sizes a small --n cannot hold, and says so
    for size in too_big:
        print(f"fastgd: skipping batch size {size}: not below --n {args.n}")
    args.batch_sizes = [b for b in args.batch_sizes if b not in too_big]
    if args.out.exists() and not args.out.is_dir():
        print(f"fastgd: error: --out {args.out} exists and is not a folder", file=sys.stderr)
        return 2

    try:
        result = _bench.run_bench(
            args.n,
            args.d,
            dtype=args.dtype,
            batch_sizes=args.batch_sizes,
            out=args.out,
            seed=args.seed,
            time_limit=args.time_limit,
            repeats=args.repeats,
            condition=args.condition,
            n_jobs=args.threads,
        )
    except KeyboardInterrupt:
        print("fastgd: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # --out cannot be created or written
        print(f"fastgd: error: cannot write the results: {error}", file=sys.stderr)
        return 2
    print(result.markdown, end="")
    for path in result.files:
        print(f"wrote {path}")
    print(f"bench finished in {result.seconds:.1f} s")
    return 0
