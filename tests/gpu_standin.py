"""The real CuPy backend (``fastae.backends.cupy_gpu`` with ``cupy_blas`` and ``cupy_kernels``) imported against
the strict CuPy stand-in (tests/cupy_standin), whose RawModule runs the CUDA sources on the CPU (tests/cuda_emu).

:func:`load` gives a private copy of the three modules bound to the stand-in; ``tiny=True`` gives one whose launch
grids are forced small (one warp per block, at most three blocks, two rows of threads per column tile), so that even
small inputs run the grid-stride loops, the tails and the multi-block reductions. :class:`HostAdapter` wraps a copy
as a backend of NumPy arrays (every array copied to the "device" and back around each op), so that every suite that
runs over the registry (the parity suite, the whole-model gradients, ...) runs the CUDA kernels too.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types

import numpy as np

from fastae import precision
from fastae.backends import contract

from . import cupy_standin

_NAMES = ("fastae.backends.cupy_kernels", "fastae.backends.cupy_blas", "fastae.backends.cupy_gpu")
TINY = {"THREADS": 32, "MAX_BLOCKS": 3, "ROW_THREADS": 32, "MAX_ROW_BLOCKS": 2, "COL_TILE": (32, 2)}


@functools.cache
def load(tiny: bool = False) -> types.ModuleType:
    """``cupy_gpu`` imported afresh with ``cupy`` (and ``cupy_backends``) resolving to the stand-in."""
    import fastae.backends as package

    saved = {n: sys.modules.pop(n) for n in _NAMES if n in sys.modules}
    # an import also binds the submodule on its package: fastae.backends.cupy_kernels must stay the real one
    attributes = {n: package.__dict__[n.rsplit(".", 1)[1]] for n in saved if n.rsplit(".", 1)[1] in package.__dict__}
    try:
        with cupy_standin.installed():
            mods = {n: importlib.import_module(n) for n in _NAMES}
            mods["fastae.backends.cupy_kernels"].cp = sys.modules["cupy"]
            mods["fastae.backends.cupy_blas"]._cublas = sys.modules["cupy_backends.cuda.libs.cublas"]
    finally:
        for n in _NAMES:
            sys.modules.pop(n, None)
            package.__dict__.pop(n.rsplit(".", 1)[1], None)
        sys.modules.update(saved)
        for n, module in attributes.items():
            setattr(package, n.rsplit(".", 1)[1], module)
    if tiny:
        for k, v in TINY.items():
            setattr(mods["fastae.backends.cupy_kernels"], k, v)
    return mods["fastae.backends.cupy_gpu"]


def cupy():
    """The stand-in ``cupy`` module the copies are bound to."""
    return load().cp


def _to_numpy(a):
    """The adapter's arrays are NumPy's."""
    return np.asarray(a)


class HostAdapter(types.ModuleType):
    """A backend of NumPy arrays over a stand-in copy of the CuPy backend: each op's array arguments are copied to
    the device, the op runs there, and its results (and every argument it may have written) come back.

    What it cannot show: whether a result is a view of an input (results come back as copies), writes an op makes
    into an input it should leave alone (they come back too: only the suites' own checks would see them), and
    layout bugs (every argument arrives C-contiguous). tests/test_cupy_gpu.py runs the backend on its own arrays."""

    def __init__(self, name: str, gpu: types.ModuleType):
        super().__init__(name)
        self._gpu = gpu
        self.NAME = name
        self.DTYPES = gpu.DTYPES
        self.ARRAY_TYPES = (np.ndarray,)
        self.CAPABILITIES = gpu.CAPABILITIES - {contract.TF32_PRODUCTS}
        self.xp = np
        for fn in (*contract.OPS, *contract.LIFECYCLE, *self._capability_functions()):
            setattr(self, fn, self._wrap(getattr(gpu, fn)))
        self.to_numpy = _to_numpy

    def _capability_functions(self):
        return [f for cap in sorted(self.CAPABILITIES) for f in contract._methods(contract.CAPABILITIES[cap])]

    def _wrap(self, fn):
        cp = self._gpu.cp

        @functools.wraps(fn)
        def call(*args, **kwargs):
            moved: dict[int, tuple] = {}

            def down(a):
                if isinstance(a, np.ndarray) and not (a.dtype == np.uint32 and a.shape == (2,)):  # a Philox key stays
                    if id(a) not in moved:
                        moved[id(a)] = (a, cp.asarray(a))
                    return moved[id(a)][1]
                if isinstance(a, precision.BF16Weight):
                    return precision.BF16Weight(down(a.bits), self._gpu._widened)
                if isinstance(a, (list, tuple)):  # the entries of update_all
                    return type(a)(down(v) for v in a)
                return a

            result = fn(*[down(a) for a in args], **{k: down(v) for k, v in kwargs.items()})
            back = {id(d): h for h, d in moved.values()}
            for host, dev in moved.values():
                if host.flags.writeable:  # an op may write any array it was given (out, state, a consumed gradient)
                    host[...] = dev.get()

            def up(r):
                if isinstance(r, cp.ndarray):
                    if id(r) in back:
                        return back[id(r)]
                    v = r.get()
                    return v[()] if v.ndim == 0 else v
                if isinstance(r, precision.BF16Weight):
                    return precision.BF16Weight(up(r.bits))
                if isinstance(r, tuple):
                    return tuple(up(v) for v in r)
                return r

            return up(result)

        return call
