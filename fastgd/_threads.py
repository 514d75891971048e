"""Thread count of the parallel kernels, set around a fit (``n_jobs``)."""

from contextlib import contextmanager

import numba


@contextmanager
def thread_limit(n_jobs):
    """Run the block with ``n_jobs`` Numba threads, then restore the count.

    ``None`` leaves the current setting. Values above the number of threads
    Numba started with (``NUMBA_NUM_THREADS``) are capped to it.
    """
    if n_jobs is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_jobs, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
