"""Thread counts set explicitly and identically for every contestant.

BLAS (NumPy's OpenBLAS, and the BLAS that SciPy brings) is capped with threadpoolctl, Numba and PyTorch through
their own calls, and JAX/XLA through ``XLA_FLAGS``, which must be set before JAX is first imported.
"""

from __future__ import annotations

import os

_blas_limit = None


def set_threads(n: int) -> dict:
    """Use ``n`` threads everywhere; returns what was set, for the report."""
    global _blas_limit
    from threadpoolctl import threadpool_info, threadpool_limits

    _blas_limit = threadpool_limits(limits=n)  # kept alive: the limit holds while this object lives
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={n}")
    info = {"threads": n, "blas": [f"{d['internal_api']} {d.get('version')} ({d['num_threads']} threads)"
                                   for d in threadpool_info()]}
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        info["numba"] = numba.get_num_threads()
    except ImportError:
        pass
    return info
