"""A strict stand-in for CuPy 14.2 (``cupy``, ``cupy.cuda``, ``cupy.cuda.runtime``, ``cupy.cuda.device`` and
``cupy_backends.cuda.libs.cublas``), so the CuPy backend runs end to end on a machine without a GPU and fails
where a GPU would: implicit host conversion, NumPy arrays mixed with device arrays, a wrong leading dimension or
transpose flag in ``gemmEx``, a mistyped kernel argument, a read of uninitialised memory (NaN), a host
synchronisation or an allocation inside a stream capture.

Use::

    with tests.cupy_standin.installed() as cp:   # `import cupy` now gives the stand-in
        ...
    tests.cupy_standin.counters.kernels          # work done since tests.cupy_standin.reset()

Kernels (``cupy.RawModule``) run on the tier-2 emulation harness, ``tests.cuda_emu.harness``.
"""

from __future__ import annotations

import contextlib
import sys
import types

from .errors import CUBLASError, CUDADriverError, CUDARuntimeError, Hazard, HostFault
from .memory import check_redzones, live_allocations
from .namespaces import build
from .state import counters, devices, set_device_count
from .streams import abort_captures

__all__ = [
    "CUBLASError",
    "CUDADriverError",
    "CUDARuntimeError",
    "Hazard",
    "HostFault",
    "abort_captures",
    "check_redzones",
    "counters",
    "installed",
    "live_allocations",
    "modules",
    "reset",
    "set_device_count",
]

_PREFIXES = ("cupy.", "cupy_backends.", "cupyx.")
_NAMES = ("cupy", "cupy_backends", "cupyx")


def modules() -> dict[str, types.ModuleType]:
    """The stand-in modules, ready for ``sys.modules``.

    Returns
    -------
    dict of str to module
        ``'cupy'``, ``'cupy.cuda'``, ``'cupy.cuda.runtime'``, ``'cupy.cuda.device'``, ``'cupy_backends'``,
        ``'cupy_backends.cuda'``, ``'cupy_backends.cuda.libs'`` and ``'cupy_backends.cuda.libs.cublas'``; the
        same module objects on every call.
    """
    return dict(build())


def reset() -> None:
    """Zero :data:`counters` (nothing else: allocations, streams and captures are left as they are)."""
    counters.reset()


@contextlib.contextmanager
def installed():
    """Run a block with the stand-in importable as ``cupy``.

    Puts the :func:`modules` in ``sys.modules``, hiding a real CuPy (and every ``cupy.*``, ``cupy_backends.*``,
    ``cupyx.*`` module already imported, so nothing reaches the real one by accident). On exit ``sys.modules`` and
    the device count are restored and any capture left open is dropped. A module that imported ``cupy`` inside
    the block keeps the stand-in: import the code under test inside it (or reload it).

    Yields
    ------
    module
        The stand-in ``cupy``.
    """
    mods = modules()
    saved = {k: v for k, v in sys.modules.items() if k in _NAMES or k.startswith(_PREFIXES)}
    count, status = devices.count, devices.status
    for k in saved:
        del sys.modules[k]
    sys.modules.update(mods)
    try:
        yield mods["cupy"]
    finally:
        for k in [k for k in sys.modules if k in _NAMES or k.startswith(_PREFIXES)]:
            del sys.modules[k]
        sys.modules.update(saved)
        set_device_count(count, status=status)
        abort_captures()
