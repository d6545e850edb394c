"""``cupy.RawModule`` and ``cupy.RawKernel`` of the stand-in: CUDA C compiled and run by the tier-2 emulation
harness (``tests.cuda_emu.harness``), launched with CuPy's argument rules.

As CuPy's ``Function.__call__``: ``grid`` and ``block`` must be tuples (an int is a ``TypeError``); they are padded
to three entries with 1, cut to three, and every entry below 1 becomes 1 (so a grid of ``(0,)`` launches one
block, on a GPU too); ``shared_mem`` is keyword-only. Arguments: a device array passes its address; ``None`` a
null pointer; Python and NumPy scalars pass by value (the harness then requires exactly the parameter's C type: a
Python ``int`` only for ``long long``, a ``float`` only for ``double``, as CuPy passes them as int64/float64); a
NumPy array of more than one element is CuPy's ``TypeError``, and one of size one passes its element by value
(as CuPy does), so only for a scalar parameter: for a pointer parameter its bytes would be read as an address.
The argument count must match the kernel's parameters (CUDA would read garbage). After each launch the
redzones of the arrays it was given are checked (a write past either end is ``cudaErrorIllegalAddress``).
"""

from __future__ import annotations

import importlib
import operator

import numpy as np

from . import memory, streams
from .arrays import is_scalar, ndarray
from .errors import CUDADriverError
from .state import counters

_HARNESS = None  # test seam: a module with Module(code, options), used instead of tests.cuda_emu.harness
_TYPESTR = {
    "float": "<f4",
    "double": "<f8",
    "unsigned short": "<u2",
    "int": "<i4",
    "unsigned int": "<u4",
    "long long": "<i8",
    "unsigned long long": "<u8",
}
_compiled: dict = {}


def _harness():
    return _HARNESS if _HARNESS is not None else importlib.import_module("tests.cuda_emu.harness")


def _compile(code: str, options: tuple):
    key = (_harness(), code, options)
    mod = _compiled.get(key)
    if mod is None:
        mod = _compiled[key] = _harness().Module(code, list(options))
    return mod


def _typed(x, types, name: str, expected: str):
    if not isinstance(x, types):
        raise TypeError(f"Argument '{name}' has incorrect type (expected {expected}, got {type(x).__name__})")
    return x


def _dims(d: tuple) -> tuple[int, int, int]:
    return tuple(max(1, operator.index(v)) for v in (d + (1, 1))[:3])


class _Slot:
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


class _RawPointer:
    """A ``MemoryPointer`` argument, given to the harness as a 1-D array of the parameter's type."""

    def __init__(self, ptr: int, typestr: str, nbytes: int):
        self.__cuda_array_interface__ = {
            "data": (ptr, False),
            "typestr": typestr,
            "shape": (nbytes // int(typestr[2:]),),
            "strides": None,
            "version": 3,
        }


def _argument(kernel: str, i: int, x, param):
    """``x`` as the harness takes it (a device array is handled by the caller)."""
    where = f"kernel {kernel}, argument {i}"
    if param is not None:
        where += f" ({param.name}: {param.ctype}{'*' if param.pointer else ''})"
    if isinstance(x, np.ndarray):
        if x.size != 1:
            raise TypeError(
                f"You are trying to pass a numpy.ndarray of shape {x.shape} as a kernel parameter. Only "
                "numpy.ndarrays of size one can be passed by value. If you meant to pass a pointer to __global__ "
                "memory, you need to pass a cupy.ndarray instead."
            )
        if param is not None and param.pointer:
            raise TypeError(f"{where}: a numpy.ndarray of size one passes its value; the kernel reads it as an address")
        return x.reshape(-1)[0]
    if isinstance(x, memory.MemoryPointer):
        if param is None or not param.pointer:
            raise TypeError(f"{where}: a MemoryPointer passes an address to a parameter that is not a pointer")
        alloc = memory.find(x.ptr)
        if alloc is None:
            raise TypeError(f"{where}: MemoryPointer {x.ptr:#x} is in no live device allocation")
        return _RawPointer(x.ptr, _TYPESTR[param.ctype], alloc.ptr + alloc.nbytes - x.ptr)
    if x is None or is_scalar(x):
        return x
    raise TypeError(f"Unsupported type {type(x)}")


def _reached(views) -> set:
    """The allocations a launch could write: its array arguments', and those whose addresses a small 64-bit
    integer argument holds (a table of pointers, as a multi-tensor kernel takes)."""
    allocs = {v._alloc for v in views if v._alloc is not None}
    for v in views:
        if v.dtype.itemsize == 8 and v.dtype.kind in "iu" and 0 < v.size <= 4096:
            values = v._a.view(np.uint64).ravel()
            for p in np.unique(values[values > 2**32]):  # heap addresses; indices and counts are far smaller
                a = memory.find(int(p))
                if a is not None:
                    allocs.add(a)
    return allocs


class RawKernel:
    """``cupy.RawKernel(code, name, options=(), backend='nvrtc', *, translate_cucomplex=False,
    enable_cooperative_groups=False, jitify=None)``: one ``extern "C" __global__`` function of ``code``."""

    def __init__(
        self, code, name, options=(), backend="nvrtc", *, translate_cucomplex=False, enable_cooperative_groups=False,
        jitify=None,
    ):  # fmt: skip
        self.code = _typed(code, (str, type(None)), "code", "str")
        self.name = self.__name__ = _typed(name, str, "name", "str")
        self.options = _typed(options, tuple, "options", "tuple")
        self.backend = _typed(backend, str, "backend", "str")
        self.translate_cucomplex = bool(translate_cucomplex)
        if enable_cooperative_groups:
            raise NotImplementedError("cupy stand-in: cooperative launches are not emulated")
        if jitify:
            raise NotImplementedError("cupy stand-in: jitify is not emulated")
        self.enable_cooperative_groups, self.jitify = False, jitify
        self._kernel = None

    @property
    def kernel(self):
        """The harness kernel (compiled on first use)."""
        if self._kernel is None:
            mod = _compile(self.code, self.options)
            kernels = getattr(mod, "kernels", None)
            if kernels is not None and self.name not in kernels:
                raise CUDADriverError("CUDA_ERROR_NOT_FOUND: named symbol not found")
            try:
                self._kernel = mod.get_function(self.name)
            except (KeyError, LookupError, AttributeError) as exc:
                raise CUDADriverError("CUDA_ERROR_NOT_FOUND: named symbol not found") from exc
        return self._kernel

    def compile(self, log_stream=None):
        """Compile now (otherwise on first use)."""
        self.kernel  # noqa: B018  (the property compiles)

    @property
    def max_threads_per_block(self) -> int:
        """1024, or the kernel's ``__launch_bounds__`` maximum (the emulation has no register pressure)."""
        return int(getattr(self.kernel, "max_threads_per_block", 1024))

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        """48 KiB: the default limit, the only one the harness emulates."""
        return 49152

    @property
    def attributes(self) -> dict:
        """The kernel attributes CuPy lists, with the values the emulation implies."""
        return {
            "max_threads_per_block": self.max_threads_per_block,
            "shared_size_bytes": 0,
            "const_size_bytes": 0,
            "local_size_bytes": 0,
            "num_regs": 32,
            "ptx_version": 90,
            "binary_version": 90,
            "cache_mode_ca": 0,
            "max_dynamic_shared_size_bytes": 49152,
            "preferred_shared_memory_carveout": -1,
        }

    def __call__(self, grid, block, args, **kwargs):
        shared_mem = kwargs.pop("shared_mem", 0)
        stream = kwargs.pop("stream", None)
        if kwargs:
            raise TypeError(f"__call__() got an unexpected keyword argument '{next(iter(kwargs))}'")
        grid = _dims(_typed(grid, tuple, "grid", "tuple"))
        block = _dims(_typed(block, tuple, "block", "tuple"))
        shared_mem = operator.index(shared_mem)
        if shared_mem < 0:
            raise OverflowError("can't convert negative value to size_t")
        kernel = self.kernel
        params = list(getattr(kernel, "params", ()))
        args = list(args)
        if params and len(args) != len(params):
            raise TypeError(f"kernel {self.name} has {len(params)} parameters, {len(args)} arguments given")
        template, arrays = [], []
        for i, x in enumerate(args):
            param = params[i] if i < len(params) else None
            if isinstance(x, ndarray):
                if param is not None and not param.pointer:
                    raise TypeError(
                        f"kernel {self.name}, argument {i} ({param.name}: {param.ctype}): a cupy.ndarray passes its "
                        "address, the kernel reads it as a value"
                    )
                template.append(_Slot(len(arrays)))
                arrays.append(x)
            else:
                template.append(_argument(self.name, i, x, param))
        name = self.name

        def run(views):
            counters.kernels += 1
            call = tuple(views[t.index] if isinstance(t, _Slot) else t for t in template)
            kernel(grid, block, call, shared_mem=shared_mem)
            memory.check_redzones(_reached(views), f"kernel {name}")

        streams.submit(stream, arrays, run, f"kernel {name}")


class RawModule:
    """``cupy.RawModule(*, code=None, path=None, options=(), backend='nvrtc', translate_cucomplex=False,
    enable_cooperative_groups=False, name_expressions=None, jitify=None)``: CUDA C source compiled by the
    emulation harness (``path`` to a cubin/ptx and ``name_expressions`` cannot be emulated)."""

    def __init__(
        self, *, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
        enable_cooperative_groups=False, name_expressions=None, jitify=None,
    ):  # fmt: skip
        _typed(code, (str, type(None)), "code", "str")
        _typed(path, (str, type(None)), "path", "str")
        _typed(options, tuple, "options", "tuple")
        _typed(backend, str, "backend", "str")
        if (code is None) == (path is None):
            raise TypeError("Exactly one of `code` and `path` keyword arguments must be given.")
        if path is not None:
            raise NotImplementedError("cupy stand-in: RawModule(path=...) loads a cubin/ptx, which cannot be emulated")
        if name_expressions is not None:
            raise NotImplementedError("cupy stand-in: name_expressions (C++ templates) are not emulated")
        if jitify:
            raise NotImplementedError("cupy stand-in: jitify is not emulated")
        if enable_cooperative_groups:
            raise NotImplementedError("cupy stand-in: cooperative launches are not emulated")
        self.code, self.file_path, self.options, self.backend = code, None, options, backend
        self.translate_cucomplex, self.enable_cooperative_groups = bool(translate_cucomplex), False
        self.name_expressions, self.jitify = None, jitify

    @property
    def module(self):
        """The harness module (compiled on first use)."""
        return _compile(self.code, self.options)

    def compile(self, log_stream=None):
        """Compile now (otherwise on the first ``get_function``)."""
        self.module  # noqa: B018

    def get_function(self, name):
        """The kernel ``name`` (an ``extern "C"`` entry point of the code)."""
        ker = RawKernel(self.code, _typed(name, str, "name", "str"), self.options, self.backend)
        ker.compile()
        return ker
