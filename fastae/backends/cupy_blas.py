"""Row-major matrix products on cuBLAS through CuPy's ``gemmEx`` binding, with no transposed copies.

A C-contiguous ``(r, c)`` array is, to column-major cuBLAS, the ``c × r`` matrix of its transpose with leading
dimension ``c``. So the row-major ``C = op(a) op(b)`` is the column-major ``Cᵀ = op(b)ᵀ op(a)ᵀ``: :func:`gemm` hands
cuBLAS ``b`` first and ``a`` second, each with the transpose flag that its own flag asks for, and every operand
with its natural leading dimension. One call serves every precision: float64, float32, TF32 (float32 operands
rounded to TF32 inside the tensor cores, float32 sums) and bfloat16 (``uint16`` patterns, float32 sums).
"""

from __future__ import annotations

import importlib

import cupy as cp
import numpy as np

# cudaDataType and cublasComputeType_t (library_types.h, cublas_api.h)
CUDA_R_32F, CUDA_R_64F, CUDA_R_16BF = 0, 1, 14
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_64F = 68, 77, 70
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUBLAS_GEMM_DEFAULT = -1
CUBLAS_POINTER_MODE_HOST = 0

_DATA_TYPE = {np.dtype(np.float32): CUDA_R_32F, np.dtype(np.float64): CUDA_R_64F, np.dtype(np.uint16): CUDA_R_16BF}
# alpha and beta live on the host (cuBLAS's default pointer mode), in the compute type's precision
_SCALARS: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {
    np.dtype(np.float32): (np.ones(1, np.float32), np.zeros(1, np.float32)),
    np.dtype(np.float64): (np.ones(1, np.float64), np.zeros(1, np.float64)),
}

_cublas = None


def cublas():
    """CuPy's cuBLAS binding, imported on first use: it loads libcublas, which a machine may lack."""
    global _cublas
    if _cublas is None:
        _cublas = importlib.import_module("cupy_backends.cuda.libs.cublas")
    return _cublas


def gemm(a, ta: bool, b, tb: bool, out, accumulate: bool = False, tf32: bool = False):
    """``out = op(a) op(b)`` (``+= `` with ``accumulate``) for C-contiguous row-major device arrays, where ``op``
    transposes when its flag is set. ``a`` and ``b`` are float32, float64 or bfloat16 patterns (``uint16``, then
    ``out`` is float32); ``tf32`` lets float32 operands be rounded to TF32. Returns ``out``."""
    M, K = (a.shape[1], a.shape[0]) if ta else a.shape
    Kb, N = (b.shape[1], b.shape[0]) if tb else b.shape
    if K != Kb or out.shape != (M, N) or not (a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError(
            f"gemm: op(a) {M}x{K} times op(b) {Kb}x{N} into {out.shape}: the inner sizes must agree, out must be "
            "their product's shape, and every operand C-contiguous (a leading dimension is read from its shape)"
        )
    if M == 0 or N == 0:
        return out
    if K == 0:
        if not accumulate:
            out.fill(0)
        return out
    lib = cublas()
    handle = cp.cuda.device.get_cublas_handle()
    lib.setPointerMode(handle, CUBLAS_POINTER_MODE_HOST)  # alpha and beta are host addresses, whatever ran before
    lib.setStream(handle, cp.cuda.get_current_stream().ptr)
    one, zero = _SCALARS[out.dtype]
    if out.dtype == np.float64:
        compute = CUBLAS_COMPUTE_64F
    else:
        compute = CUBLAS_COMPUTE_32F_FAST_TF32 if tf32 and a.dtype == np.float32 else CUBLAS_COMPUTE_32F
    lib.gemmEx(
        handle,
        CUBLAS_OP_T if tb else CUBLAS_OP_N,
        CUBLAS_OP_T if ta else CUBLAS_OP_N,
        N,
        M,
        K,
        one.ctypes.data,
        b.data.ptr,
        _DATA_TYPE[b.dtype],
        b.shape[1],
        a.data.ptr,
        _DATA_TYPE[a.dtype],
        a.shape[1],
        (one if accumulate else zero).ctypes.data,
        out.data.ptr,
        _DATA_TYPE[out.dtype],
        N,
        compute,
        CUBLAS_GEMM_DEFAULT,
    )
    return out


def product(a, ta: bool, b, tb: bool, tf32: bool = False):
    """``op(a) op(b)`` into a new array (float32 for bfloat16 operands)."""
    M = a.shape[1] if ta else a.shape[0]
    N = b.shape[0] if tb else b.shape[1]
    dtype = np.float32 if a.dtype == np.uint16 else a.dtype
    return gemm(a, ta, b, tb, cp.empty((M, N), dtype=dtype), tf32=tf32)
