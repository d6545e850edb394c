"""The module objects that stand in for ``cupy``, ``cupy.cuda``, ``cupy.cuda.runtime``, ``cupy.cuda.device`` and
``cupy_backends.cuda.libs.cublas`` (and the packages above it), holding only names the real CuPy 14.2 has."""

from __future__ import annotations

import functools
import types

import numpy as np

from . import cublas, device, graphs, kernels, memory, routines, runtime, streams, ufuncs
from .arrays import ndarray
from .state import devices

_DTYPES = (
    "bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 intp uintp float16 float32 float64 complex64 complex128"
).split()


def _module(name: str, doc: str, attrs: dict, package: bool = False) -> types.ModuleType:
    m = types.ModuleType(name, doc)
    m.__dict__.update(attrs)
    if package:
        m.__path__ = []  # a package: `import cupy.cuda.runtime` finds the stand-in in sys.modules, nothing else
    return m


def is_available() -> bool:
    """``cupy.cuda.is_available``: whether a device is there."""
    return devices.count > 0


@functools.cache
def build() -> dict[str, types.ModuleType]:
    """Every stand-in module by its import name (made once)."""
    rt = _module("cupy.cuda.runtime", runtime.__doc__, {n: getattr(runtime, n) for n in runtime.NAMES})
    dev = _module(
        "cupy.cuda.device",
        device.__doc__,
        {n: getattr(device, n) for n in ("Device", "get_cublas_handle", "get_device_id", "get_compute_capability")},
    )
    cuda_attrs = {
        "Stream": streams.Stream,
        "Event": streams.Event,
        "get_current_stream": streams.get_current_stream,
        "get_elapsed_time": streams.get_elapsed_time,
        "Graph": graphs.Graph,
        "Device": device.Device,
        "get_device_id": device.get_device_id,
        "get_cublas_handle": device.get_cublas_handle,
        "Memory": memory.Memory,
        "MemoryPointer": memory.MemoryPointer,
        "PinnedMemory": memory.PinnedMemory,
        "PinnedMemoryPointer": memory.PinnedMemoryPointer,
        "alloc_pinned_memory": memory.alloc_pinned_memory,
        "is_available": is_available,
        "runtime": rt,
        "device": dev,
    }
    cuda = _module("cupy.cuda", "CUDA of the cupy stand-in.", cuda_attrs, package=True)
    top = {n: getattr(routines, n) for n in routines.NAMES}
    top.update(ufuncs.exported)
    top.update({n: getattr(np, n) for n in _DTYPES})
    top.update(
        ndarray=ndarray,
        ufunc=ufuncs.ufunc,
        RawModule=kernels.RawModule,
        RawKernel=kernels.RawKernel,
        cuda=cuda,
        dtype=np.dtype,
        finfo=np.finfo,
        iinfo=np.iinfo,
        isscalar=np.isscalar,
        newaxis=None,
        nan=np.nan,
        inf=np.inf,
        pi=np.pi,
        e=np.e,
        __version__="14.2.0",
    )
    cupy = _module("cupy", "A strict stand-in for CuPy 14.2 (tests.cupy_standin).", top, package=True)
    blas = _module("cupy_backends.cuda.libs.cublas", cublas.__doc__, {n: getattr(cublas, n) for n in cublas.NAMES})
    libs = _module("cupy_backends.cuda.libs", "", {"cublas": blas}, package=True)
    backends_cuda = _module("cupy_backends.cuda", "", {"libs": libs}, package=True)
    backends = _module("cupy_backends", "", {"cuda": backends_cuda}, package=True)
    return {
        "cupy": cupy,
        "cupy.cuda": cuda,
        "cupy.cuda.runtime": rt,
        "cupy.cuda.device": dev,
        "cupy_backends": backends,
        "cupy_backends.cuda": backends_cuda,
        "cupy_backends.cuda.libs": libs,
        "cupy_backends.cuda.libs.cublas": blas,
    }


def cupy_module() -> types.ModuleType:
    """The stand-in ``cupy`` module."""
    return build()["cupy"]
