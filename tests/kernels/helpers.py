"""Helpers shared by the kernel tests."""

import numba
import numpy as np


def same_bits(a, b):
    """Same dtype, shape and bytes (so NaN payloads and signed zeros count)."""
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def each_thread_count():
    """Yield with 1 thread and with all threads, restoring the count afterwards."""
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            yield n
    finally:
        numba.set_num_threads(threads)
