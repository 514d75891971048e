"""Thread count of the parallel kernels, set around a fit (``n_jobs``)."""

from contextlib import contextmanager

import numba


@contextmanager
def thread_limit(n_jobs):
    """Run the block with ``n_jobs`` Numba threads, then restore the count.

    ``None`` leaves the current setting; ``-1`` takes all the threads Numba
    started with (``NUMBA_NUM_THREADS``). Values above that number are
    capped to it.
    """
    if n_jobs is None:
        yield
        return
    available = numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    numba.set_num_threads(available if n_jobs == -1 else min(n_jobs, available))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
