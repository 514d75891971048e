"""Target 2 call by call: float64 step, float32 step and float32 read.

    python benchmarks/float32_calls.py            # 1,000,000 x 32, 300 calls
    python benchmarks/float32_calls.py --calls 100

``targets.py`` times each side as a block of calls; on this shared machine
the float32 step's time is bimodal, and a block can fall wholly in its slow
mode. Here the three calls alternate one by one, so every float32 step has
a float64 step and a float32 read timed next to it: the script reports how
often the float32 step was slow, what the other two did meanwhile, and the
median per-call ratio of the float64 step to the float32 one.
"""

import argparse
import time

import numpy as np

import common
from targets import full_batch, parallel_read


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows")
    parser.add_argument("--calls", type=int, default=300, help="calls of each")
    args = parser.parse_args(argv)

    f64 = common.make_problem(args.n, 32, "float64")
    f32 = common.make_problem(args.n, 32, "float32")
    eta = common.step_size(f64, None)
    calls = {
        "float32 step": full_batch(f32, eta),
        "float32 read": lambda: parallel_read(f32.X),
        "float64 step": full_batch(f64, eta),
    }
    for call in calls.values():  # compile and touch every page
        call()
        call()

    seconds = np.empty((args.calls, len(calls)))
    for k in range(args.calls):
        for column, call in enumerate(calls.values()):
            start = time.perf_counter()
            call()
            seconds[k, column] = time.perf_counter() - start

    step32, read32, step64 = seconds.T
    # slow: a float32 step more than 20% over the read timed beside it
    slow = step32 > 1.2 * read32
    print(f"{args.n} x 32, {args.calls} calls of each, interleaved")
    print(f"float32 step slow (> 1.2 x the read beside it) in {slow.sum()} calls")
    for name, column in zip(calls, seconds.T, strict=True):
        fast_ms = np.median(column[~slow]) * 1e3 if (~slow).any() else np.nan
        slow_ms = np.median(column[slow]) * 1e3 if slow.any() else np.nan
        print(f"  {name}: median {fast_ms:.2f} ms in the other calls, "
              f"{slow_ms:.2f} ms in those")
    print(f"float64 step / float32 step, median per call: "
          f"{np.median(step64 / step32):.3f}")
    print(f"float64 step / float32 read, median per call: "
          f"{np.median(step64 / read32):.3f}")


if __name__ == "__main__":
    main()
