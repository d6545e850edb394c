"""GEMM providers: who computes a matrix product, in float32 or with bfloat16 operands.

* ``openblas``: NumPy's BLAS (OpenBLAS in the wheels), always present. It has no bfloat16 GEMM, so a bf16
  product widens its bf16 operands to float32 (exact) and runs ``sgemm``: the products of bf16 values are exact
  in float32, so this computes what a bf16 GEMM with float32 accumulation does, more slowly.
* ``mkl``: oneMKL (the optional ``fastae[mkl]`` extra, x86-64), through ``libmkl_rt``'s CBLAS: ``cblas_sgemm``
  and ``cblas_gemm_bf16bf16f32``, which runs on AMX or AVX512-BF16 where the processor has them (MKL emulates
  them elsewhere, correctly and slowly: :func:`describe` says which).

MKL's threads are chosen here, before its first call: the GNU OpenMP layer (the ``libgomp`` that Numba's OpenMP
layer also uses, so the two never run two OpenMP runtimes) with one thread per core this process may use, or the
sequential layer where ``libgomp`` is absent. It is set through MKL's own functions, never through environment
variables read at an unknown moment. Conditional numerical reproducibility is switched on (``MKL_CBWR_AUTO``, the
best code branch of this processor, in strict mode), so a product's result does not depend on the thread count or
on which threads ran it.

``FASTAE_BLAS=openblas|mkl`` forces the provider of large float32 products; otherwise :func:`large_fp32` takes
oneMKL where it is installed, for the products :data:`MKL_MIN_MULADDS` and :data:`MKL_MIN_ROWS` select.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np

PROVIDERS = ("openblas", "mkl")

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_MKL_THREADING_SEQUENTIAL, _MKL_THREADING_GNU = 1, 3
_MKL_CBWR_AUTO, _MKL_CBWR_STRICT = 2, 0x10000


def _cores() -> int:
    from ..machine import usable_cores

    return usable_cores()


class OpenBLAS:
    """Products through NumPy (``np.matmul`` into ``out``)."""

    name = "openblas"
    native_bf16 = False

    @staticmethod
    def matmul(a, b, out):
        """``out = a @ b`` in float32; ``a`` and ``b`` are C-contiguous or transposes of C-contiguous arrays."""
        return np.matmul(a, b, out=out)

    @staticmethod
    def matmul_bf16(a16, b16, out):
        """``out`` (float32) ``= a @ b`` of bfloat16 patterns, emulated: widened (exact), then float32 products."""
        from .. import precision

        return np.matmul(precision.widen(a16), precision.widen(b16), out=out)


def _mkl_path():
    """``libmkl_rt`` of the installed ``mkl`` distribution, or ``None``."""
    from importlib import metadata

    try:
        files = metadata.files("mkl") or ()
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.startswith("libmkl_rt.so"):
            return str(f.locate())
    return None


class MKL:
    """Products through oneMKL's CBLAS, called with ctypes (the arrays are C-contiguous, row-major)."""

    name = "mkl"

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        layer = _MKL_THREADING_GNU
        try:
            ctypes.CDLL("libgomp.so.1")
        except OSError:
            layer = _MKL_THREADING_SEQUENTIAL
        lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Threading_Layer(layer)
        self.threading = "gnu" if layer == _MKL_THREADING_GNU else "sequential"
        lib.MKL_CBWR_Set.argtypes = [ctypes.c_int]
        self.cbwr_ok = lib.MKL_CBWR_Set(_MKL_CBWR_AUTO | _MKL_CBWR_STRICT) == 0
        lib.MKL_Set_Num_Threads.argtypes = [ctypes.c_int]
        self._lib = lib
        self.set_threads(_THREADS[0] or _cores())
        i, i64, f, p = ctypes.c_int, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
        gemm_args = [i, i, i, i64, i64, i64, f, p, i64, p, i64, f, p, i64]
        self._sgemm = lib.cblas_sgemm
        self._sgemm.argtypes, self._sgemm.restype = gemm_args, None
        self._bf16 = lib.cblas_gemm_bf16bf16f32
        self._bf16.argtypes, self._bf16.restype = gemm_args, None
        self.native_bf16 = _cpu_has_bf16()

    def set_threads(self, n: int) -> None:
        """``n`` threads for MKL's products (one with the sequential layer)."""
        self.threads = n if self.threading == "gnu" else 1
        self._lib.MKL_Set_Num_Threads(self.threads)

    def _call(self, fn, a, b, out):
        (ta, lda), (tb, ldb) = _layout(a), _layout(b)
        m, k = a.shape
        n = b.shape[1]
        fn(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, out.ctypes.data, n)
        return out

    def matmul(self, a, b, out):
        """As :meth:`OpenBLAS.matmul`, through ``cblas_sgemm``."""
        return self._call(self._sgemm, a, b, out)

    def matmul_bf16(self, a16, b16, out):
        """As :meth:`OpenBLAS.matmul_bf16`, through ``cblas_gemm_bf16bf16f32``."""
        return self._call(self._bf16, a16, b16, out)


def _layout(x):
    """``(CBLAS transpose flag, leading dimension)`` of a row-major operand: a C-contiguous ``x`` as it is, the
    transpose of one (F-contiguous) as that array transposed."""
    if x.flags.c_contiguous:
        return _NO_TRANS, max(x.shape[1], 1)
    return _TRANS, max(x.shape[0], 1)


def _cpu_has_bf16() -> bool:
    """True where the processor has bfloat16 units (AMX-BF16 or AVX512-BF16)."""
    from ..machine import isa

    units = isa()
    return units["AMX-BF16"] or units["AVX512-BF16"]


_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}
_THREADS = [0]  # the thread count set_threads asked for (0: one per core)


def set_threads(n: int) -> None:
    """Use ``n`` threads for oneMKL's products, now if it is loaded and else from when it loads (OpenBLAS's threads
    are threadpoolctl's to set)."""
    _THREADS[0] = int(n)
    with _LOCK:
        p = _LOADED.get("mkl")
    if p is not None:
        p.set_threads(int(n))


def provider(name: str):
    """The provider ``name`` (loaded once); ``ValueError`` if it is unknown or cannot load here, saying why."""
    if name not in PROVIDERS:
        raise ValueError(f"GEMM provider must be one of {list(PROVIDERS)}, got {name!r}")
    with _LOCK:
        p = _LOADED.get(name)
        if p is None:
            why = unavailable(name)
            if why is not None:
                raise ValueError(f"GEMM provider {name!r} is not available here: {why}")
            p = _LOADED[name] = OpenBLAS() if name == "openblas" else MKL(_mkl_path())
    return p


def unavailable(name: str) -> str | None:
    """Why provider ``name`` cannot run here, or ``None``."""
    if name == "openblas":
        return None
    if _mkl_path() is None:
        return "oneMKL is not installed (pip install 'fastae[mkl]')"
    return None


def forced() -> str | None:
    """The provider ``FASTAE_BLAS`` forces, or ``None``; ``ValueError`` for a value that names none."""
    value = os.environ.get("FASTAE_BLAS", "").strip().lower()
    if not value:
        return None
    if value not in PROVIDERS:
        raise ValueError(f"FASTAE_BLAS must be one of {list(PROVIDERS)} (or unset), got {value!r}")
    return value


# Float32 products of at least this many multiply-adds go to oneMKL where it is installed; smaller ones stay with
# OpenBLAS. The limit is OpenBLAS's own: below it OpenBLAS runs a product on the calling thread, above it on its
# threads, which keep spinning after the call and slow the next MKL product 3x (docs/performance.md, *GEMM
# providers*). So the two libraries never run threads at once. One-row products stay with OpenBLAS whatever their
# size: its matrix-vector path is 2-3x quicker than MKL's call for one row.
MKL_MIN_MULADDS = 65536 * 4
MKL_MIN_ROWS = 2

_CHOSEN: list = []  # [provider for large float32 products], resolved once


def large_fp32():
    """The provider of float32 products of at least :data:`MKL_MIN_MULADDS`: the forced one (``FASTAE_BLAS``),
    else oneMKL where it loads, else OpenBLAS."""
    if not _CHOSEN:
        name = forced() or ("mkl" if unavailable("mkl") is None else "openblas")
        _CHOSEN.append(provider(name))
    return _CHOSEN[0]


def bf16_provider(m: int, k: int, n: int):
    """The provider of a bfloat16 product ``(m x k)(k x n)`` with bfloat16 units, or ``None`` for the emulation
    (widened operands through the float32 path): oneMKL on a processor with AMX or AVX512-BF16, for the products
    the float32 rule gives it (unless ``FASTAE_BLAS=openblas``)."""
    if m < MKL_MIN_ROWS or m * k * n < MKL_MIN_MULADDS:
        return None
    p = large_fp32()
    return p if p.native_bf16 else None


def describe() -> dict:
    """Which provider runs which products here, and how MKL's threads are set (without loading MKL when no
    product has needed it yet, unless ``FASTAE_BLAS`` names it)."""
    try:
        chosen = forced()
    except ValueError as exc:  # reported, not raised: describe() is what a user runs to find such a problem
        chosen = f"invalid: {exc}"
    info: dict = {"forced": chosen, "mkl_min_muladds": MKL_MIN_MULADDS, "mkl": unavailable("mkl") or "available"}
    if _CHOSEN:
        p = _CHOSEN[0]
        info["large_fp32"] = p.name
        if isinstance(p, MKL):
            info.update(mkl_threading=p.threading, mkl_threads=p.threads, mkl_cnr=p.cbwr_ok)
    info["bf16_units"] = _cpu_has_bf16()
    return info
