"""Target 2 call by call: float64 step, float32 step and float32 read.

    python benchmarks/float32_calls.py            # 1,000,000 x 32, 300 calls
    python benchmarks/float32_calls.py --calls 100

``targets.py`` times each side as a block of calls; on this shared machine
the float32 step's time is bimodal, and a block can fall wholly in its slow
mode. Here the three calls alternate one by one (their order rotating, so
none always follows the same one), and the script reports:

- which float32 steps were slow: more than 1.2 times the median float32
  step, a threshold that looks at the step alone, not at the read;
- whether the slow ones come in stretches of consecutive calls;
- the median of each call in the slow calls and in the others, so the
  float32 step's usual time can be set beside the float32 read's;
- the median per-call ratios of the float64 step to the float32 step and
  to the float32 read.
"""

import argparse
import time

import numpy as np

import common
from targets import full_batch, parallel_read

SLOW = 1.2  # a float32 step this many times its median is slow


def _stretches(flags):
    """Lengths of the runs of consecutive True values in ``flags``."""
    lengths, current = [], 0
    for flag in flags:
        if flag:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    if current:
        lengths.append(current)
    return lengths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows")
    parser.add_argument("--calls", type=int, default=300, help="calls of each")
    args = parser.parse_args(argv)

    f64 = common.make_problem(args.n, 32, "float64")
    f32 = common.make_problem(args.n, 32, "float32")
    eta = common.step_size(f64, None)
    names = ("float32 step", "float32 read", "float64 step")
    calls = (
        full_batch(f32, eta),
        lambda: parallel_read(f32.X),
        full_batch(f64, eta),
    )
    for call in calls:  # compile and touch every page
        call()
        call()

    seconds = np.empty((args.calls, len(calls)))
    for k in range(args.calls):
        for offset in range(len(calls)):
            column = (k + offset) % len(calls)
            start = time.perf_counter()
            calls[column]()
            seconds[k, column] = time.perf_counter() - start

    step32, read32, step64 = seconds.T
    slow = step32 > SLOW * np.median(step32)
    stretches = _stretches(slow)
    print(f"{args.n} x 32, {args.calls} calls of each, interleaved")
    print(
        f"slow float32 steps (> {SLOW} x their median): {slow.sum()}, in "
        f"{len(stretches)} stretches of consecutive calls, the longest "
        f"{max(stretches, default=0)}"
    )
    for name, column in zip(names, seconds.T, strict=True):
        usual = np.median(column[~slow]) * 1e3
        in_slow = np.median(column[slow]) * 1e3 if slow.any() else np.nan
        print(f"  {name}: median {usual:.2f} ms in the other calls, "
              f"{in_slow:.2f} ms in the slow float32 steps' calls")
    print(f"float64 step / float32 step, median per call: "
          f"{np.median(step64 / step32):.3f}")
    print(f"float64 step / float32 read, median per call: "
          f"{np.median(step64 / read32):.3f}")


if __name__ == "__main__":
    main()
