"""Performance-regression gate: fastgd's speed as ratios to baselines.

Run it in CI after the tests::

    python benchmarks/gate.py            # check against gate_limits.json
    python benchmarks/gate.py --write    # measure this machine, write limits

Absolute times on a shared machine swing by 2x from one minute to the next,
so the gate never compares a time with a number. It times fastgd's kernels
and two baselines on the same arrays in the same process, one thread each
(a descheduled second thread can stall a parallel region 30x), and takes
the best of several interleaved repeats. Each ratio must stay under its
limit in ``gate_limits.json``; ``--write`` sets every limit to
``LIMIT_FACTOR`` times the median ratio of several rounds measured now. A
ratio over its limit is measured again, up to ``ATTEMPTS`` times, before the
gate fails. The limits file must name exactly the ratios measured: a ratio
without a limit, or a limit for a ratio no longer measured, stops the gate
with an error rather than going unchecked.

The baselines: one streaming read of X (``X.sum()``), the memory floor of
any full pass, and numpy's two-BLAS-call gradient step. A user who copies
this file into their own CI runs ``--write`` once on their CI machine and
commits the resulting limits file.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from fastgd import _engine
from fastgd._train import DEFAULTS

LIMITS_FILE = Path(__file__).with_name("gate_limits.json")

# A 2x slowdown must fail, run-to-run noise (under ~30% for single-thread
# best-of-7 ratios on the shared 2-core machine) must not.
LIMIT_FACTOR = 1.6
ATTEMPTS = 5
REPEATS = 7

N_SAMPLES = 200_000
N_FEATURES = 32


def _best_times(functions, repeats=REPEATS):
    """Best wall time of each function over ``repeats`` interleaved rounds.

    Each round calls every function once, so a burst of load from another
    process falls on all of them rather than on one; one untimed warm-up
    round comes first.
    """
    best = dict.fromkeys(functions, np.inf)
    for round_ in range(repeats + 1):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            elapsed = time.perf_counter() - start
            if round_:
                best[name] = min(best[name], elapsed)
    return best


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    y = X @ rng.standard_normal(N_FEATURES) + rng.standard_normal(N_SAMPLES)
    return X, y


def measure():
    """Return ``{ratio name: value}`` from one round of timings."""
    X, y = _problem()
    n_samples, n_features = X.shape
    coef = np.zeros(n_features)
    intercept = np.zeros(1)
    order = np.arange(n_samples, dtype=np.intp)
    _engine.shuffle(order, 12345)
    # the order of sampling="block_shuffle" with its default run length
    block_order = np.empty(n_samples, dtype=np.intp)
    _engine.draw_order(block_order, 12345, block_size=DEFAULTS["block_size"])
    eta = 1e-4

    def numpy_step():
        nonlocal coef
        coef = coef - eta * (X.T @ (X @ coef - y)) / n_samples

    def fastgd_step():
        _engine.full_batch_step(X, y, coef, intercept, eta, 0, True)

    def epoch(batch_size, rows=order):
        return lambda: _engine.stochastic_epoch(
            X, y, coef, intercept, rows, batch_size, eta, 0, 1.0, True
        )

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            t = _best_times(
                {
                    "read": X.sum,
                    "numpy": numpy_step,
                    "step": fastgd_step,
                    "sgd": epoch(1),
                    "minibatch": epoch(32),
                    "blocks": epoch(32, block_order),
                }
            )
    finally:
        numba.set_num_threads(previous)

    return {
        "full-batch step / read of X": t["step"] / t["read"],
        "full-batch step / numpy step": t["step"] / t["numpy"],
        "SGD epoch (b=1, shuffled) / read of X": t["sgd"] / t["read"],
        "mini-batch epoch (b=32, shuffled) / read of X": t["minibatch"] / t["read"],
        "mini-batch epoch (b=32, block-shuffled) / read of X": t["blocks"] / t["read"],
    }


def check(limits, attempts=ATTEMPTS, report=print):
    """Measure and compare with ``limits``; return True when all pass.

    A ratio over its limit is measured again (each name keeps its best
    value), so one descheduled round cannot fail the gate.
    """
    best = {}
    for attempt in range(1, attempts + 1):
        measured = measure()
        if set(measured) != set(limits):
            raise ValueError(
                "the limits file does not match the ratios measured: no limit "
                f"for {sorted(set(measured) - set(limits))}, no measurement "
                f"for {sorted(set(limits) - set(measured))}; run --write"
            )
        for name, value in measured.items():
            best[name] = min(value, best.get(name, np.inf))
        failing = [name for name in limits if best[name] > limits[name]]
        if not failing:
            break
        report(f"attempt {attempt}: over the limit: {', '.join(failing)}")

    width = max(len(name) for name in limits)
    report(f"{'ratio':<{width}}  {'measured':>9}  {'limit':>7}")
    for name, limit in limits.items():
        verdict = "ok" if best[name] <= limit else "REGRESSION"
        report(f"{name:<{width}}  {best[name]:9.3f}  {limit:7.3f}  {verdict}")
    return not failing


def write_limits(path=LIMITS_FILE, report=print):
    """Measure this machine and write limits of ``LIMIT_FACTOR`` x ratio.

    The recorded ratio is the median over ``ATTEMPTS`` rounds, while
    ``check`` keeps the best of up to as many rounds: an unchanged kernel
    passes unless the machine drifts by more than ``LIMIT_FACTOR``, and one
    twice as slow fails unless its best round beats the recorded median by
    20%.
    """
    rounds = [measure() for _ in range(ATTEMPTS)]
    measured = {
        name: float(np.median([values[name] for values in rounds]))
        for name in rounds[0]
    }
    limits = {name: round(LIMIT_FACTOR * value, 3) for name, value in measured.items()}
    document = {
        "problem": f"{N_SAMPLES} x {N_FEATURES} float64, one thread",
        "limit_factor": LIMIT_FACTOR,
        "measured": {name: round(value, 3) for name, value in measured.items()},
        "limits": limits,
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n")
    report(f"wrote {path}")
    return limits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", action="store_true", help="measure and write new limits"
    )
    parser.add_argument(
        "--limits", type=Path, default=LIMITS_FILE, help="limits file (JSON)"
    )
    args = parser.parse_args(argv)
    if args.write:
        write_limits(args.limits)
        return 0
    limits = json.loads(args.limits.read_text())["limits"]
    passed = check(limits)
    print("performance gate:", "passed" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
