"""Shuffled mini-batch epochs on one thread and on two, on a busy machine.

Two threads that share each batch of an epoch meet once per batch, so
they need both cores. This script times the one-thread and the two-thread
epoch kernels side by side (``_engine.stochastic_epoch`` with the two-thread
kernel forced off and on) in three settings, each in a fresh process:

- ``idle``: nothing else running;
- ``busy``: another process spinning on one core for the whole run;
- ``one core``: the process confined to one core (Linux only), so its two
  threads always take turns.

It prints the median epoch times and their ratio. Two threads should win
when idle and lose little when busy: a thread that waits too long for the
other finishes the epoch alone, and the next epochs run on one thread.

    python benchmarks/busy_machine.py            # 1,000,000 x 32, a minute
    python benchmarks/busy_machine.py --n 200000
"""

import argparse
import os
import subprocess
import sys
import textwrap

_RUN = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    n, setting = int(sys.argv[1]), sys.argv[2]
    if setting == "one core":
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sys.path.insert(0, os.getcwd())
    import common
    from fastgd import _engine

    problem = common.make_problem(n, 32, "float64")
    order = np.arange(n, dtype=np.intp)
    _engine.shuffle(order, 3)
    for b in (32, 256):
        eta = common.step_size(problem, b)
        times = {"one thread": [], "two threads": []}
        for round_ in range(6):
            for name in times:
                _engine.PAIR_MIN_BATCH = 2 if name == "two threads" else 10**9
                _engine._pair_rest = 0  # every epoch tries two threads
                coef, intercept = np.zeros(32), np.zeros(1)
                start = time.perf_counter()
                for _ in range(3):
                    _engine.stochastic_epoch(problem.X, problem.y, coef, intercept,
                                             order, b, eta, 0, 1.0, True)
                if round_:  # the first round compiles and warms up
                    times[name].append((time.perf_counter() - start) / 3)
        one, two = (np.median(times[name]) for name in times)
        print(f"{setting:<9} b={b:<4} one thread {one * 1e3:7.1f} ms   "
              f"two threads {two * 1e3:7.1f} ms   one / two {one / two:5.2f}",
              flush=True)
""")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows")
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    settings = ["idle", "busy"]
    if hasattr(os, "sched_setaffinity"):
        settings.append("one core")
    for setting in settings:
        spinner = None
        if setting == "busy":
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            subprocess.run([sys.executable, "-c", _RUN, str(args.n), setting],
                           cwd=here, check=True)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
