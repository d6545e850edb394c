"""SciPy's BLAS confined to the calling thread while fastae's thread-pool products run.

The pool products (``fastae.kernels.cpu.products``) split an op among Numba's threads and make each part's product
a BLAS call from compiled code, through SciPy's ``cython_blas``. Left alone, that BLAS starts threads of its own
for each large part: two pools fighting over the same cores (docs/performance.md, *Kernel notes*). It would also
round differently, since OpenBLAS splits a product among its threads in its own way. So while any pool op runs,
the library behind SciPy's BLAS is set to one thread, and set back when the last one ends.

Which library: pip wheels of SciPy ship their own OpenBLAS (under ``scipy.libs``), apart from NumPy's, and only
it is capped; NumPy's BLAS, which the serial backend and the user's own ``@`` use, keeps its threads. Where SciPy
and NumPy share one BLAS (conda, system packages), that one is capped for the duration. Either way, a BLAS call
the user makes from another thread meanwhile runs on one thread: slower, never different.

Only OpenBLAS built with its own threads (``pthreads``, what the wheels ship) is supported: its thread count is
one process-wide setting, which this module sets through the library's own ``openblas_set_num_threads``. Not
through threadpoolctl's controller: for this kind of OpenBLAS it lets only one thread change the count (the first
that calls it, until one of threadpoolctl's own context managers releases it) and silently ignores the others, so
a fit started from a worker thread would have run uncapped (docs/performance.md, *Kernel notes*).
:meth:`BlasCap.unsupported` says why another BLAS cannot be capped, and the backend then runs its serial kernels.

The cap is counted, under a lock, so nested and concurrent users (several Python threads fitting at once) keep it
until the last leaves; only the first entry and the last exit call into the library, and the last exit restores
the count the first entry found. A user who changes that count meanwhile (``threadpool_limits`` from another
thread) has it overwritten on the way out. A child process forked while the cap is held starts with it released
and the count restored.
"""

from __future__ import annotations

import itertools
import os
import threading


def _scipy_blas_controllers():
    """threadpoolctl's view of the BLAS libraries SciPy's ``cython_blas`` may call (its own if it has one)."""
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  loads SciPy's BLAS: threadpoolctl sees only loaded libraries
    from threadpoolctl import ThreadpoolController

    blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    root = os.path.dirname(os.path.realpath(scipy.__file__))  # .../site-packages/scipy
    own = [c for c in blas if os.path.realpath(c.filepath).startswith((root + os.sep, root + ".libs" + os.sep))]
    return own or blas  # none of its own: SciPy links a shared BLAS (conda, system), capped for the duration


def _openblas_functions(controller):
    """``(get, set)``: the library's own ``openblas_get_num_threads`` and ``openblas_set_num_threads``, under
    whichever symbol prefix and suffix this build uses (``scipy_…``, ``…64_``)."""
    lib = controller.dynlib
    for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
        get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
        put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
        if get is not None and put is not None:
            get.restype, put.restype = int, None
            return get, put
    return None


class BlasCap:
    """A counted context manager that holds SciPy's BLAS at one thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = None
        self._functions = None
        self._why_not = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self):
        """In a forked child only the forking thread lives on: the holders the count remembers are gone, and the
        lock may have been held by one of them. Start afresh, with the count the first holder found."""
        self._lock = threading.Lock()
        if self._depth > 0 and self._functions is not None:
            for (_, put), n in zip(self._functions, self._saved):
                put(n)
        self._depth = 0

    def unsupported(self) -> str | None:
        """``None`` if the cap works here, else why not (naming the library)."""
        if self._functions is None and self._why_not is None:
            functions = []
            for c in _scipy_blas_controllers():
                found = _openblas_functions(c) if c.internal_api == "openblas" else None
                if found is None or c.threading_layer != "pthreads":
                    self._why_not = (
                        f"SciPy's BLAS is {c.internal_api} with {c.threading_layer} threads "
                        f"({c.filepath}); the one-pool products need OpenBLAS with its own "
                        f"(pthreads) threads, as the SciPy wheels ship it"
                    )
                    return self._why_not
                functions.append(found)
            if not functions:
                self._why_not = "threadpoolctl finds no BLAS library behind SciPy"
                return self._why_not
            self._functions = functions
        return self._why_not

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self.unsupported():
                    raise RuntimeError(self._why_not)
                self._saved = [get() for get, _ in self._functions]
                for _, put in self._functions:
                    put(1)
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            if self._depth == 0:  # a hold from before a fork, released in the child by _after_fork
                return False
            self._depth -= 1
            if self._depth == 0:
                for (_, put), n in zip(self._functions, self._saved):
                    put(n)
        return False

    def threads(self) -> list[int]:
        """The thread counts of the capped libraries as they are now (1 each while the cap is held)."""
        self.unsupported()
        return [get() for get, _ in self._functions or ()]


CAP = BlasCap()
