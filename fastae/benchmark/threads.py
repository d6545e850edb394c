"""Thread counts set explicitly and identically for every contestant.

BLAS (NumPy's OpenBLAS, and the BLAS that SciPy brings) is capped with threadpoolctl, Numba and PyTorch through
their own calls, and JAX/XLA through ``XLA_FLAGS``, which must be set before JAX is first imported.
"""

from __future__ import annotations

import os

from ..machine import usable_cores

_blas_limit = None


def set_threads(n: int) -> dict:
    """Use ``n`` threads everywhere; returns what was set, for the report."""
    global _blas_limit
    from threadpoolctl import threadpool_info, threadpool_limits

    _blas_limit = threadpool_limits(limits=n)  # kept alive: the limit holds while this object lives
    from ..backends import gemm

    gemm.set_threads(n)  # MKL loads later, with the first product that needs it: tell it now
    info = {
        "threads": n,
        "blas": [f"{d['internal_api']} {d.get('version')} ({d['num_threads']} threads)" for d in threadpool_info()],
        "xla": set_xla_threads(n),
    }
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        info["numba"] = numba.get_num_threads()
    except ImportError:
        pass
    return info


# XLA (jax 0.10.2) has no flag for its CPU thread count. Its intra-op pool is sized, when JAX creates its CPU client,
# from the CPUs the process may run on (sched_getaffinity; a `taskset` shrinks it). `intra_op_parallelism_threads`
# is not an XLA flag: written with `--` it aborts the process ("Unknown flag in XLA_FLAGS"), written without it is
# silently ignored. The one thread control left is `--xla_cpu_multi_thread_eigen` (valid in 0.10.2), which makes the
# Eigen kernels XLA calls single-threaded when false; the XNNPACK kernels and the runtime's own parallel work are
# not covered by any flag. So whatever n is, XLA's pool has as many threads as the process has CPUs; n = 1 only
# makes the Eigen kernels serial. Reports must say so: JAX is the one contestant whose thread count is not n.
_XLA_EIGEN = "--xla_cpu_multi_thread_eigen"


def set_xla_threads(n: int) -> str:
    """Ask XLA for ``n`` CPU threads as far as it allows (see above); returns what was done, for the report.

    Must run before JAX is first imported. A flag already present in ``XLA_FLAGS`` (set by the user) is kept."""
    import sys

    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules:
        return f"jax already imported: XLA_FLAGS={flags!r} stays as it was"
    if _XLA_EIGEN in flags:
        return f"XLA_FLAGS={flags!r} kept (the flag was already set)"
    os.environ["XLA_FLAGS"] = f"{flags} {_XLA_EIGEN}={'false' if n == 1 else 'true'}".strip()
    return (
        f"XLA_FLAGS={os.environ['XLA_FLAGS']!r}; the XLA CPU pool has os.sched_getaffinity threads "
        f"({usable_cores()}), "
        f"which no flag sets"
    )
