"""``cupy_backends.cuda.libs.cublas`` of the stand-in: handles, streams, math modes and the GEMMs, computed with
cuBLAS's documented column-major semantics taken literally.

``gemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType,
algo)`` (CuPy's argument order) computes ``C = alpha op(A) op(B) + beta C`` where ``op(A)`` is ``m x k``, ``op(B)``
``k x n`` and ``C`` ``m x n``, each matrix stored column-major with its leading dimension. Checked as cuBLAS checks
(``CUBLASError``): ``m, n, k >= 0``, the ``OP`` flags, ``lda >= max(1, m if transa == N else k)``,
``ldb >= max(1, k if transb == N else n)``, ``ldc >= max(1, m)``, the (compute, A, B, C) type combination. Checked
as a GPU would fail: every element read or written lies in one live allocation (``cudaErrorIllegalAddress``
otherwise), pointers are aligned to their element size. Checked beyond a GPU: the memory a pointer reaches was
made (or viewed) as the dtype ``Atype`` names, and ``C`` does not overlap ``A`` or ``B``.

Arithmetic: ``CUDA_R_16BF`` operands are ``uint16`` bfloat16 patterns, widened exactly to float32;
``CUBLAS_COMPUTE_32F`` multiplies float32 operands in float32; ``CUBLAS_COMPUTE_32F_FAST_TF32`` (or
``COMPUTE_32F`` under the math mode ``CUBLAS_TF32_TENSOR_OP_MATH`` = 3, a name CuPy 14 does not export) first
rounds both operands to TF32 (10 explicit mantissa bits, to nearest even); ``CUBLAS_COMPUTE_64F`` is float64.
With ``beta == 0``, ``C`` is not read (a NaN there does not reach the result); with ``alpha == 0`` or ``k == 0``
neither ``A`` nor ``B`` is. ``alpha``/``beta`` are host addresses of scalars of the scale type (float32, float64
for ``COMPUTE_64F``) in the default pointer mode, device addresses in ``CUBLAS_POINTER_MODE_DEVICE``.

As in CuPy 14.2, every call first sets the handle's stream to the current stream, and that raises
``NotImplementedError('calling cuBLAS API during stream capture is currently unsupported')`` while the current
stream is capturing: no cuBLAS call can be captured into a CUDA graph through CuPy.
"""

from __future__ import annotations

import itertools
import operator

import numpy as np

from . import memory, streams
from .errors import CUBLAS_INVALID_VALUE as _INVALID
from .errors import CUBLAS_NOT_INITIALIZED as _NOT_INITIALIZED
from .errors import CUBLAS_NOT_SUPPORTED as _NOT_SUPPORTED
from .errors import CUBLASError, cublas_error, runtime_error
from .state import counters, lock

CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C = 0, 1, 2
CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE = 0, 1
CUBLAS_SIDE_LEFT, CUBLAS_SIDE_RIGHT = 0, 1
CUBLAS_FILL_MODE_LOWER, CUBLAS_FILL_MODE_UPPER = 0, 1
CUBLAS_DIAG_NON_UNIT, CUBLAS_DIAG_UNIT = 0, 1
CUBLAS_GEMM_DEFAULT = CUBLAS_GEMM_DFALT = -1
CUBLAS_GEMM_DEFAULT_TENSOR_OP = CUBLAS_GEMM_DFALT_TENSOR_OP = 99
CUBLAS_DEFAULT_MATH, CUBLAS_TENSOR_OP_MATH = 0, 1
CUBLAS_COMPUTE_16F, CUBLAS_COMPUTE_16F_PEDANTIC = 64, 65
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_PEDANTIC = 68, 69
CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_COMPUTE_32F_FAST_TF32 = 74, 75, 77
CUBLAS_COMPUTE_64F, CUBLAS_COMPUTE_64F_PEDANTIC = 70, 71
CUBLAS_COMPUTE_32I, CUBLAS_COMPUTE_32I_PEDANTIC = 72, 73

_PEDANTIC_MATH, _TF32_MATH, _DISALLOW_REDUCED = 2, 3, 16  # cublasMath_t values CuPy 14 has no names for
_MATH_MODES = {0, 1, 2, 3, 4, 8}
_R_32F, _R_64F, _R_16F, _R_16BF = 0, 1, 2, 14
_DTYPES = {_R_32F: np.dtype(np.float32), _R_64F: np.dtype(np.float64), _R_16F: np.dtype(np.float16)}
_DTYPES[_R_16BF] = np.dtype(np.uint16)  # bfloat16 patterns
_TYPE_NAMES = {_R_32F: "CUDA_R_32F", _R_64F: "CUDA_R_64F", _R_16F: "CUDA_R_16F", _R_16BF: "CUDA_R_16BF"}
_F32_COMBOS = {
    (_R_16BF, _R_16BF, _R_16BF),
    (_R_16F, _R_16F, _R_16F),
    (_R_16BF, _R_16BF, _R_32F),
    (_R_16F, _R_16F, _R_32F),
    (_R_32F, _R_32F, _R_32F),
}
_COMBOS = {  # cublasGemmEx's supported (Atype, Btype, Ctype) per compute type (real types only)
    CUBLAS_COMPUTE_16F: {(_R_16F, _R_16F, _R_16F)},
    CUBLAS_COMPUTE_16F_PEDANTIC: {(_R_16F, _R_16F, _R_16F)},
    CUBLAS_COMPUTE_32F: _F32_COMBOS,
    CUBLAS_COMPUTE_32F_PEDANTIC: _F32_COMBOS,
    CUBLAS_COMPUTE_32F_FAST_16F: {(_R_32F, _R_32F, _R_32F)},
    CUBLAS_COMPUTE_32F_FAST_16BF: {(_R_32F, _R_32F, _R_32F)},
    CUBLAS_COMPUTE_32F_FAST_TF32: {(_R_32F, _R_32F, _R_32F)},
    CUBLAS_COMPUTE_64F: {(_R_64F, _R_64F, _R_64F)},
    CUBLAS_COMPUTE_64F_PEDANTIC: {(_R_64F, _R_64F, _R_64F)},
}
_ALGOS = {-1, 99, *range(24), *range(100, 116)}
_INT_MAX = 2**31 - 1


class _Handle:
    def __init__(self):
        self.stream, self.math_mode, self.pointer_mode = 0, CUBLAS_DEFAULT_MATH, CUBLAS_POINTER_MODE_HOST


_handles: dict[int, _Handle] = {}
_next = itertools.count(0xB1A5000, 0x40)


# --- Cython-like argument conversion -----------------------------------------------------------------------------
def _int(x, name: str) -> int:
    v = operator.index(x)  # a float is a TypeError, as Cython's int conversion
    if not -(2**31) <= v <= _INT_MAX:
        raise OverflowError(f"value too large to convert to int ({name}={v})")
    return v


def _size_t(x, name: str) -> int:
    v = operator.index(x)
    if v < 0:
        raise OverflowError(f"can't convert negative value to size_t ({name}={v})")
    return v


def _handle(handle) -> _Handle:
    h = _handles.get(operator.index(handle))
    if h is None:
        raise cublas_error(_NOT_INITIALIZED, f"handle {handle!r} was not made by create() (or was destroyed)")
    return h


# --- context, stream, math mode ------------------------------------------------------------------------------------
def create() -> int:
    """A new cuBLAS handle."""
    with lock:
        h = next(_next)
        _handles[h] = _Handle()
    return h


def destroy(handle) -> None:
    """Release a handle."""
    _handle(handle)
    with lock:
        del _handles[operator.index(handle)]


def getVersion(handle) -> int:  # noqa: N802  (CuPy's names)
    """cuBLAS's version (13.0.0)."""
    _handle(handle)
    return 130000


def getPointerMode(handle) -> int:  # noqa: N802
    """Where ``alpha``/``beta`` live: ``CUBLAS_POINTER_MODE_HOST`` or ``CUBLAS_POINTER_MODE_DEVICE``."""
    return _handle(handle).pointer_mode


def setPointerMode(handle, mode) -> None:  # noqa: N802
    """Set where ``alpha``/``beta`` live."""
    mode = _int(mode, "mode")
    if mode not in (CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE):
        raise cublas_error(_INVALID, f"pointer mode {mode}")
    _handle(handle).pointer_mode = mode


def setStream(handle, stream) -> None:  # noqa: N802
    """Set the handle's stream; refused for a capturing stream, as CuPy 14.2 refuses it."""
    stream = _size_t(stream, "stream")
    if streams.is_capturing(stream):
        raise NotImplementedError("calling cuBLAS API during stream capture is currently unsupported")
    _handle(handle).stream = stream


def getStream(handle) -> int:  # noqa: N802
    """The handle's stream."""
    return _handle(handle).stream


def setMathMode(handle, mode) -> None:  # noqa: N802
    """Set the math mode (``CUBLAS_TF32_TENSOR_OP_MATH`` = 3 lets ``COMPUTE_32F`` round operands to TF32)."""
    mode = _int(mode, "mode")
    if mode & ~_DISALLOW_REDUCED not in _MATH_MODES:
        raise cublas_error(_INVALID, f"math mode {mode}")
    _handle(handle).math_mode = mode


def getMathMode(handle) -> int:  # noqa: N802
    """The handle's math mode."""
    return _handle(handle).math_mode


def _set_current_stream(handle) -> None:
    setStream(handle, streams.current_stream().ptr)  # what CuPy's _setStream does before every call


def check_capture() -> None:
    """Raise as CuPy does for a cuBLAS call while the current stream is capturing (used by ``matmul``/``dot``)."""
    if streams.is_capturing(streams.current_stream().ptr):
        raise NotImplementedError("calling cuBLAS API during stream capture is currently unsupported")


# --- arithmetic helpers ------------------------------------------------------------------------------------------
def round_tf32(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to TF32 (10 explicit mantissa bits), to nearest even; inf and NaN unchanged."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    finite = (bits & 0x7F800000) != 0x7F800000
    lsb = (bits >> 13) & 1
    rounded = ((bits + 0x0FFF + lsb) & 0xFFFFE000).astype(np.uint32)
    return np.where(finite, rounded, bits).view(np.float32)


def widen_bf16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 patterns (``uint16``) as the float32 values they stand for (exact)."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 patterns, to nearest even (NaN stays a quiet NaN)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    lsb = (bits >> 16) & 1
    r = ((bits + 0x7FFF + lsb) >> 16).astype(np.uint16)
    return np.where(nan, ((bits >> 16) | 0x0040).astype(np.uint16), r)


def _widen(x: np.ndarray, t: int, compute: int, tf32: bool) -> np.ndarray:
    if t == _R_16BF:
        x = widen_bf16(x)
    if compute in (CUBLAS_COMPUTE_64F, CUBLAS_COMPUTE_64F_PEDANTIC):
        return x.astype(np.float64)
    if compute in (CUBLAS_COMPUTE_16F, CUBLAS_COMPUTE_16F_PEDANTIC):
        return x.astype(np.float16)
    x = x.astype(np.float32)
    if t == _R_32F and tf32:
        return round_tf32(x)
    if compute == CUBLAS_COMPUTE_32F_FAST_16BF:
        return widen_bf16(round_bf16(x))
    if compute == CUBLAS_COMPUTE_32F_FAST_16F:
        return x.astype(np.float16).astype(np.float32)
    return x


def _scale_dtype(compute: int) -> np.dtype:
    if compute in (CUBLAS_COMPUTE_64F, CUBLAS_COMPUTE_64F_PEDANTIC):
        return np.dtype(np.float64)
    if compute in (CUBLAS_COMPUTE_16F, CUBLAS_COMPUTE_16F_PEDANTIC):
        return np.dtype(np.float16)
    return np.dtype(np.float32)


def _scalar(ptr: int, dt: np.dtype, h: _Handle, name: str):
    if ptr == 0:
        raise cublas_error(_INVALID, f"{name} is a null pointer")
    if h.pointer_mode == CUBLAS_POINTER_MODE_HOST:
        return np.frombuffer(memory.read_host(ptr, dt.itemsize, f"gemmEx {name}"), dtype=dt)[0]
    alloc, off = memory.resolve(ptr, dt.itemsize, f"gemmEx {name} (device pointer mode)")
    if dt not in alloc.dtypes:
        raise TypeError(f"gemmEx: {name} points into memory of {sorted(map(str, alloc.dtypes))} arrays, read as {dt}")
    return alloc.array((), dt, offset=off)[()]


def _matrix(ptr: int, t: int, rows: int, cols: int, ld: int, name: str):
    """The column-major ``rows x cols`` matrix at ``ptr`` (leading dimension ``ld``) as a NumPy view, with its
    allocation and the byte range it spans."""
    dt = _DTYPES[t]
    if ptr % dt.itemsize:
        raise runtime_error(716, f"gemmEx: {name} = {ptr:#x} is not aligned to its {dt.itemsize}-byte elements")
    extent = ((rows - 1) + (cols - 1) * ld + 1) * dt.itemsize
    alloc, off = memory.resolve(ptr, extent, f"gemmEx {name} ({rows} x {cols}, leading dimension {ld})")
    if dt not in alloc.dtypes:
        raise TypeError(
            f"gemmEx: {name} points into memory of {sorted(map(str, alloc.dtypes))} arrays, but {_TYPE_NAMES[t]} "
            f"reads it as {dt}"
        )
    view = alloc.array((rows, cols), dt, offset=off, strides=(dt.itemsize, ld * dt.itemsize))
    return view, alloc, off, dt.itemsize


def _touched(off: int, rows: int, cols: int, ld: int, itemsize: int, lo: int, hi: int) -> np.ndarray:
    mask = np.zeros(hi - lo, dtype=bool)
    for j in range(cols):
        start = off + j * ld * itemsize - lo
        mask[start : start + rows * itemsize] = True
    return mask


def _check_overlap(c, a, name: str) -> None:
    (cv, calloc, coff, cit), (av, aalloc, aoff, ait) = c, a
    if calloc is not aalloc:
        return
    crows, ccols = cv.shape
    arows, acols = av.shape
    cld, ald = cv.strides[1] // cit, av.strides[1] // ait
    cend = coff + ((crows - 1) + (ccols - 1) * cld + 1) * cit
    aend = aoff + ((arows - 1) + (acols - 1) * ald + 1) * ait
    lo, hi = min(coff, aoff), max(cend, aend)
    if coff >= aend or aoff >= cend:
        return
    both = _touched(coff, crows, ccols, cld, cit, lo, hi) & _touched(aoff, arows, acols, ald, ait, lo, hi)
    if both.any():
        raise runtime_error(700, f"gemmEx: C overlaps {name} (cuBLAS's result is undefined; stand-in refuses it)")


# --- GEMM ----------------------------------------------------------------------------------------------------------
def _gemm(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, compute, algo):
    h = _handle(handle)
    _set_current_stream(handle)
    for name, op in (("transa", transa), ("transb", transb)):
        if op not in (CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C):
            raise cublas_error(_INVALID, f"{name} = {op} is no cublasOperation_t")
    rows_a, cols_a = (m, k) if transa == CUBLAS_OP_N else (k, m)
    rows_b, cols_b = (k, n) if transb == CUBLAS_OP_N else (n, k)
    checks = (
        (m >= 0 and n >= 0 and k >= 0, f"m, n, k = {m}, {n}, {k}: none may be negative"),
        (lda >= max(1, rows_a), f"lda = {lda} < max(1, {rows_a}) (A is {rows_a} x {cols_a}, transa = {transa})"),
        (ldb >= max(1, rows_b), f"ldb = {ldb} < max(1, {rows_b}) (B is {rows_b} x {cols_b}, transb = {transb})"),
        (ldc >= max(1, m), f"ldc = {ldc} < max(1, m = {m})"),
        (compute in _COMBOS, f"computeType {compute} is not supported by the stand-in (or by cuBLAS)"),
        (algo in _ALGOS, f"algo {algo} is no cublasGemmAlgo_t"),
    )
    for ok, why in checks:
        if not ok:
            raise cublas_error(_INVALID, why)
    if (Atype, Btype, Ctype) not in _COMBOS[compute]:
        names = tuple(_TYPE_NAMES.get(t, str(t)) for t in (Atype, Btype, Ctype))
        raise cublas_error(_NOT_SUPPORTED, f"(Atype, Btype, Ctype) = {names} with computeType {compute}")
    if m == 0 or n == 0:
        counters.blas += 1
        return
    sdt = _scale_dtype(compute)
    a_val, b_val = _scalar(alpha, sdt, h, "alpha"), _scalar(beta, sdt, h, "beta")
    c = _matrix(C, Ctype, m, n, ldc, "C")
    tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32 or (
        compute == CUBLAS_COMPUTE_32F and h.math_mode & ~_DISALLOW_REDUCED == _TF32_MATH
    )
    with np.errstate(all="ignore"):
        if a_val == 0 or k == 0:
            acc = np.zeros((m, n), dtype=np.float64 if sdt == np.float64 else np.float32)
        else:
            a, b = _matrix(A, Atype, rows_a, cols_a, lda, "A"), _matrix(B, Btype, rows_b, cols_b, ldb, "B")
            _check_overlap(c, a, "A")
            _check_overlap(c, b, "B")
            opa = _widen(a[0], Atype, compute, tf32)
            opb = _widen(b[0], Btype, compute, tf32)
            opa = opa if transa == CUBLAS_OP_N else opa.T
            opb = opb if transb == CUBLAS_OP_N else opb.T
            acc = a_val * np.matmul(opa, opb)
        if b_val != 0:  # beta == 0: cuBLAS does not read C
            acc = acc + b_val * _widen(c[0], Ctype, compute, False)
        if Ctype == _R_16BF:
            c[0][...] = round_bf16(acc.astype(np.float32))
        else:
            c[0][...] = acc.astype(_DTYPES[Ctype])
    counters.blas += 1


def gemmEx(  # noqa: N802
    handle,
    transa,
    transb,
    m,
    n,
    k,
    alpha,
    A,
    Atype,
    lda,
    B,
    Btype,
    ldb,
    beta,
    C,
    Ctype,
    ldc,
    computeType,
    algo,  # noqa: N803
):
    """``C = alpha op(A) op(B) + beta C`` (see the module docstring for every check)."""
    ints = dict(transa=transa, transb=transb, m=m, n=n, k=k, Atype=Atype, lda=lda, Btype=Btype, ldb=ldb)
    ints.update(Ctype=Ctype, ldc=ldc, computeType=computeType, algo=algo)
    v = {name: _int(x, name) for name, x in ints.items()}
    p = {name: _size_t(x, name) for name, x in dict(alpha=alpha, A=A, B=B, beta=beta, C=C).items()}
    _gemm(
        handle, v["transa"], v["transb"], v["m"], v["n"], v["k"], p["alpha"], p["A"], v["Atype"], v["lda"], p["B"],
        v["Btype"], v["ldb"], p["beta"], p["C"], v["Ctype"], v["ldc"], v["computeType"], v["algo"],
    )  # fmt: skip


def _typed_gemm(t: int, compute: int):
    def gemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):  # noqa: N803
        gemmEx(handle, transa, transb, m, n, k, alpha, A, t, lda, B, t, ldb, beta, C, t, ldc, compute, -1)

    return gemm


sgemm = _typed_gemm(_R_32F, CUBLAS_COMPUTE_32F)
sgemm.__doc__ = "``sgemm``: ``gemmEx`` on float32 with ``CUBLAS_COMPUTE_32F`` (TF32 under the TF32 math mode)."
dgemm = _typed_gemm(_R_64F, CUBLAS_COMPUTE_64F)
dgemm.__doc__ = "``dgemm``: ``gemmEx`` on float64."


def check_status(status) -> None:
    """Raise ``CUBLASError(status)`` unless it is 0."""
    if status != 0:
        raise CUBLASError(status)


NAMES = [n for n in dir() if n.startswith("CUBLAS_")] + [
    "CUBLASError", "check_status", "create", "destroy", "getVersion", "getPointerMode", "setPointerMode", "setStream",
    "getStream", "setMathMode", "getMathMode", "gemmEx", "sgemm", "dgemm",
]  # fmt: skip
