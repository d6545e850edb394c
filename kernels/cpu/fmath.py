"""Scalar math for the CPU kernels: ``exp``, ``sigmoid``, ``sigmoid_from_exp``, ``tanh``, ``log1p_small``,
``softplus``, ``nonfinite`` and ``cast``.

Each function is a Python stub with a Numba ``overload`` per dtype, chosen at typing time, so one kernel body
serves float32 and float64 and keeps its arithmetic in the dtype of its arrays. (A bare literal such as ``1.0``
in float32 code is float64 in Numba and drags the whole expression to float64: slower, half the SIMD width, and
a different answer from the NumPy reference.)

Why not ``math.exp``: it is a libm call per element, which stops LLVM from vectorising the kernel loops (Numba
vectorises libm calls only through Intel's SVML, which fastae does not require). The functions below are
straight-line polynomial code plus bitcasts and selects, which LLVM inlines into the kernel loop and vectorises in
both dtypes (docs/performance.md, *Kernel notes*).

Accuracy (maxima measured by ``tests/kernels/test_cpu_fmath.py``; float32 against the float64 function of the
same input on a dense sweep of the whole range, in float32 ulps of the correctly rounded result, subnormal
results in units of the smallest subnormal; float64 against glibc's ``math`` function, or the NumPy formula
for sigmoid/softplus, in float64 ulps):

============  ===================================  ====================================================
function      float32                              float64
============  ===================================  ====================================================
exp           1.0 ulp (Cephes polynomial)          1 ulp (degree-13 Taylor after the same reduction)
sigmoid       2.3 ulp                              3 ulp vs the NumPy formula (itself a few ulp)
tanh          1.5 ulp (Cephes polynomial/exp)      3 ulp (Cephes rational below 0.625, exp above)
log1p_small   1.9 ulp on [0, 1] (atanh series)     2 ulp (the same series, 16 terms)
softplus      2.6 ulp                              3 ulp vs the NumPy formula
============  ===================================  ====================================================

The stubs are also callable from Python on scalars (through a small jitted wrapper), which is handy in tests
and in a debugger; kernels call them as ``fmath.exp(x)`` and never pay that wrapper.

Compile flags: the overloads use ``fastmath={"contract"}`` only (FMA contraction, which is exact-or-better for
Horner steps and the range reduction). They must NOT get ``reassoc``: the range reduction relies on the exact
order ``(x - n·ln2_hi) - n·ln2_lo`` and on ``t - SHIFT`` being evaluated as written, which reassociation would
fold away. The flags are per instruction, so this holds after LLVM inlines the code into a kernel whose own
arithmetic uses ``_config.FASTMATH``. (Never Numba-level ``inline="always"`` here: that re-lowers the body with
the caller's flags.)

Caching note: Numba's cache keys a kernel on its own source file only. After editing this file, delete the
``__pycache__`` of ``kernels/cpu`` (or touch the kernel files), or cached kernels keep the old code.
"""

import math

import numpy as np
from numba import literal_unroll, njit, types
from numba.extending import overload

from ._config import ORDERED_FASTMATH, f32_as_i32, f64_as_i64, i32_as_f32, i64_as_f64

# The overloads below compile with _config.ORDERED_FASTMATH (FMA contraction only), as the row bodies do.

# Error model "numpy": x / 0 gives inf, with no per-division exception check (which would block vectorisation).
# forceinline marks the LLVM function `alwaysinline`: LLVM inlines it into the kernel loop even when its size
# is above the inliner's threshold (float64 tanh and softplus were, and the loops calling them stayed scalar:
# docs/performance.md, *Kernel notes*). This is LLVM-level inlining, so each instruction keeps the flags given here.
_OV_JIT = dict(fastmath=set(ORDERED_FASTMATH), error_model="numpy", boundscheck=False, nogil=True, forceinline=True)

_F32 = np.float32
_F64 = np.float64


def _dtype_of(t):
    """The float type of a scalar or array Numba type, else None."""
    if isinstance(t, types.Array):
        t = t.dtype
    if t in (types.float32, types.float64):
        return t
    return None


def _by_dtype(stub, f32_impl, f64_impl):
    """Overload the one-argument ``stub`` with ``f32_impl`` for a float32 argument and ``f64_impl`` for a float64
    one (no implementation for anything else). Numba requires the implementations' argument to be named as the
    typing function's: ``x``."""
    impls = {types.float32: f32_impl, types.float64: f64_impl}

    @overload(stub, jit_options=_OV_JIT)
    def _ov(x):
        return impls.get(x)


# ---------------------------------------------------------------------------------------------------------------
# Stubs: the names kernels call. Their Python bodies run only when called from Python.
# ---------------------------------------------------------------------------------------------------------------
def cast(value, like):
    """``value`` converted to the float dtype of ``like`` (an array or a scalar). Use it for every constant and
    scalar argument of a kernel, so no float64 sneaks into float32 arithmetic."""
    return np.asarray(like).dtype.type(value)


def exp(x):
    """``e**x``. float32: x = n·ln2 + r, |r| <= ln2/2, Cephes degree-7 polynomial for e**r (6 fitted
    coefficients after ``1 + r``), scaled by 2**n with two exponent-bit multiplies (so results down to the
    smallest subnormal are rounded once, gradual underflow as in libm). x > log(FLT_MAX) gives inf, x < -104
    gives 0, NaN gives NaN. float64: the same reduction and a degree-13 Taylor polynomial (remainder < 1e-17)."""
    return _py_exp(x)


def sigmoid(x):
    """``1 / (1 + e**-x)``, stable for every x: with ``e = exp(-|x|)`` in (0, 1], ``1/(1+e)`` for x >= 0 and
    ``e/(1+e)`` for x < 0, so nothing overflows and tiny results keep their relative accuracy."""
    return _py_sigmoid(x)


def sigmoid_from_exp(x, e):
    """``sigmoid(x)`` given ``e = exp(-|x|)``: ``1/(1+e)`` for x >= 0, ``e/(1+e)`` otherwise. Lets a kernel share
    one ``exp`` between the sigmoid and the softplus of the same logit (``loss.bce_output``)."""
    return _py_sigmoid_from_exp(x, e)


def tanh(x):
    """``tanh(x)``. float32: ``x + x³·P(x²)`` (Cephes) for |x| < 0.625, which keeps relative accuracy for tiny
    x, else ``sign(x)·(1 - e)/(1 + e)`` with ``e = exp(-2|x|)`` (no overflow; 1 for large |x|). float64: the
    same with Cephes' rational ``x + x³·P(x²)/Q(x²)`` below 0.625."""
    return _py_tanh(x)


def log1p_small(e):
    """``log(1 + e)`` for ``e`` in [0, 1] (the softplus tail). float32: with ``s = e/(2+e)`` in [0, 1/3],
    ``log(1+e) = 2·atanh(s) = 2 (s + s³/3 + s⁵/5 + ...)``, truncated after s¹⁵ (remainder < 2e-9 relative).
    float64: the same series to s³³ (remainder < 2e-18). Outside [0, 1] the series loses accuracy; kernels
    never call it there."""
    return _py_log1p_small(e)


def nonfinite(x):
    """``1`` if ``x`` is ±inf or NaN, else ``0`` (an int64), read from the exponent bits with integer ops only.

    For a branch-free "all finite" reduction (``bad |= nonfinite(o)``) that LLVM vectorises and that no
    floating-point fast-math flag can fold away. (The float trick ``acc += o − o`` does NOT survive
    ``_config.FASTMATH``: LLVM's Reassociate pass, allowed by ``reassoc`` + ``nsz``, cancels the ``+o`` and
    ``−o`` of the sum tree and ``acc`` stays 0, whatever ``o`` is.)"""
    return _py_nonfinite(x)


def ubits(x):
    """The bit pattern of ``x`` as an unsigned integer of the same width (uint32 for float32, uint64 for
    float64): a bitcast, free and vectorisable. Non-negative floats order like their patterns, and every
    negative float has the sign bit set, so it is larger than every non-negative one."""
    return _py_ubits(x)


def softplus(z):
    """``log(1 + e**z) = max(z, 0) + log1p(exp(-|z|))``, without overflow for any z."""
    return _py_softplus(z)


def flush_subnormal(x):
    """``x``, or ``0`` when ``|x|`` is below the smallest normal number of its dtype (a subnormal). NaN and ±inf
    pass unchanged. For optimiser state: see :mod:`.optim` for why a stored subnormal is not kept."""
    return _py_flush_subnormal(x)


# ---------------------------------------------------------------------------------------------------------------
# cast
# ---------------------------------------------------------------------------------------------------------------
@overload(cast, jit_options=_OV_JIT)
def _ov_cast(value, like):
    dt = _dtype_of(like)
    if dt == types.float32:
        return lambda value, like: np.float32(value)
    if dt == types.float64:
        return lambda value, like: np.float64(value)
    return None


# ---------------------------------------------------------------------------------------------------------------
# exp
# ---------------------------------------------------------------------------------------------------------------
# float32 range: above 0x42b17217 (~88.7228) e**x rounds to inf; below -103.972 it rounds to 0. Clamping to
# -104 gives exactly 0 from the polynomial path, so only the overflow side needs a select.
_E32_LO = _F32(-104.0)
_E32_HI = _F32(88.72283172607422)
_E32_LOG2E = _F32(1.4426950408889634)
# Adding 1.5·2**23 rounds x·log2(e) to the nearest integer n and leaves n in the low mantissa bits, so n is read
# with a bitcast (no float->int conversion, which would be poison for NaN and does not vectorise as well).
_E32_SHIFT = _F32(12582912.0)
_E32_SHIFT_BITS = np.int32(0x4B400000)
# ln2 split (Cephes): the high part has 9 significant bits, so n·ln2_hi is exact for |n| < 2**15.
_E32_LN2_HI = _F32(0.693359375)
_E32_LN2_LO = _F32(-2.12194440e-4)
_E32_P0 = _F32(1.9875691500e-4)
_E32_P1 = _F32(1.3981999507e-3)
_E32_P2 = _F32(8.3334519073e-3)
_E32_P3 = _F32(4.1665795894e-2)
_E32_P4 = _F32(1.6666665459e-1)
_E32_P5 = _F32(5.0000001201e-1)
_F32_ONE = _F32(1.0)
_F32_INF = _F32(np.inf)


def _exp_f32(x):
    # Clamp with selects that let NaN through (x < LO and NaN > HI are both false); the NaN then propagates
    # through the polynomial whatever garbage exponent bits it produced.
    xc = _E32_LO if x < _E32_LO else x
    xc = _E32_HI if xc > _E32_HI else xc
    t = xc * _E32_LOG2E + _E32_SHIFT
    n = np.int32(f32_as_i32(t) - _E32_SHIFT_BITS)
    fn = t - _E32_SHIFT  # exact: n as a float
    r = xc - fn * _E32_LN2_HI
    r = r - fn * _E32_LN2_LO
    z = r * r
    p = _E32_P0 * r + _E32_P1
    p = p * r + _E32_P2
    p = p * r + _E32_P3
    p = p * r + _E32_P4
    p = p * r + _E32_P5
    y = p * z + r
    y = y + _F32_ONE
    # 2**n as two factors 2**n1 · 2**n2 (n1 = floor(n/2)): each is a normal float for n in [-150, 128], the
    # first product is exact and the second rounds once, also into the subnormal range and up to FLT_MAX.
    n1 = np.int32(n >> 1)
    n2 = np.int32(n - n1)
    s1 = i32_as_f32(np.int32((n1 + 127) << 23))
    s2 = i32_as_f32(np.int32((n2 + 127) << 23))
    res = (y * s1) * s2
    return _F32_INF if x > _E32_HI else res


_E64_LO = _F64(-746.0)  # e**x < 2**-1075 below -745.14: rounds to 0
_E64_HI = _F64(709.782712893384)  # log(DBL_MAX): the largest x whose e**x is finite
_E64_LOG2E = _F64(1.4426950408889634)
_E64_SHIFT = _F64(6755399441055744.0)  # 1.5·2**52
_E64_SHIFT_BITS = np.int64(0x4338000000000000)
# fdlibm's ln2 split: ln2_hi has 32 significant bits, so n·ln2_hi is exact for |n| < 2**20.
_E64_LN2_HI = _F64(6.93147180369123816490e-01)
_E64_LN2_LO = _F64(1.90821492927058770002e-10)
# 1/k! for k = 13 .. 2: the Taylor series of e**r on |r| <= ln2/2 has remainder r**14/14! < 3e-18.
_E64_C = tuple(_F64(1.0 / math.factorial(k)) for k in range(13, 1, -1))
(_E64_C13, _E64_C12, _E64_C11, _E64_C10, _E64_C9, _E64_C8, _E64_C7, _E64_C6, _E64_C5, _E64_C4, _E64_C3, _E64_C2) = (
    _E64_C
)
_F64_ONE = _F64(1.0)
_F64_INF = _F64(np.inf)


def _exp_f64(x):
    xc = _E64_LO if x < _E64_LO else x
    xc = _E64_HI if xc > _E64_HI else xc
    t = xc * _E64_LOG2E + _E64_SHIFT
    n = f64_as_i64(t) - _E64_SHIFT_BITS
    fn = t - _E64_SHIFT
    r = xc - fn * _E64_LN2_HI
    r = r - fn * _E64_LN2_LO
    p = _E64_C13 * r + _E64_C12
    p = p * r + _E64_C11
    p = p * r + _E64_C10
    p = p * r + _E64_C9
    p = p * r + _E64_C8
    p = p * r + _E64_C7
    p = p * r + _E64_C6
    p = p * r + _E64_C5
    p = p * r + _E64_C4
    p = p * r + _E64_C3
    p = p * r + _E64_C2
    # 1 + (r + r²·p): the small part is summed first, so the only large rounding is the final one.
    y = (r * r) * p + r
    y = y + _F64_ONE
    n1 = n >> 1
    n2 = n - n1
    s1 = i64_as_f64((n1 + 1023) << 52)
    s2 = i64_as_f64((n2 + 1023) << 52)
    res = (y * s1) * s2
    return _F64_INF if x > _E64_HI else res


_by_dtype(exp, _exp_f32, _exp_f64)


# ---------------------------------------------------------------------------------------------------------------
# sigmoid
# ---------------------------------------------------------------------------------------------------------------
def _make_sigmoid_from_exp(ty):
    zero, one = ty(0.0), ty(1.0)

    def impl(x, e):
        num = one if x >= zero else e
        return num / (one + e)

    return impl


_sigmoid_from_exp_f32 = _make_sigmoid_from_exp(_F32)
_sigmoid_from_exp_f64 = _make_sigmoid_from_exp(_F64)


@overload(sigmoid_from_exp, jit_options=_OV_JIT)
def _ov_sigmoid_from_exp(x, e):
    if x == types.float32 and e == types.float32:
        return _sigmoid_from_exp_f32
    if x == types.float64 and e == types.float64:
        return _sigmoid_from_exp_f64
    return None


def _sigmoid_impl(x):
    return sigmoid_from_exp(x, exp(-abs(x)))


@overload(sigmoid, jit_options=_OV_JIT)
def _ov_sigmoid(x):
    if x in (types.float32, types.float64):
        return _sigmoid_impl
    return None


# ---------------------------------------------------------------------------------------------------------------
# tanh
# ---------------------------------------------------------------------------------------------------------------
_T32_SMALL = _F32(0.625)
_T32_Q0 = _F32(-5.70498872745e-3)
_T32_Q1 = _F32(2.06390887954e-2)
_T32_Q2 = _F32(-5.37397155531e-2)
_T32_Q3 = _F32(1.33314422036e-1)
_T32_Q4 = _F32(-3.33332819422e-1)
_F32_ZERO = _F32(0.0)
_F32_M2 = _F32(-2.0)


def _tanh_f32(x):
    ax = abs(x)
    # Both branches are computed and one selected: branch-free, so the loop around it vectorises.
    z = x * x
    q = _T32_Q0 * z + _T32_Q1
    q = q * z + _T32_Q2
    q = q * z + _T32_Q3
    q = q * z + _T32_Q4
    small = (q * z) * x + x
    e = exp(_F32_M2 * ax)
    big = (_F32_ONE - e) / (_F32_ONE + e)
    big = big if x >= _F32_ZERO else -big
    # NaN fails `ax < SMALL`, so it takes the exp branch, which propagates it.
    return small if ax < _T32_SMALL else big


# Cephes tanh (double): x + x³·P(x²)/Q(x²) for |x| < 0.625, with Q monic.
_T64_SMALL = _F64(0.625)
_T64_P0 = _F64(-9.64399179425052238628e-1)
_T64_P1 = _F64(-9.92877231001918586564e1)
_T64_P2 = _F64(-1.61468768441708447952e3)
_T64_Q0 = _F64(1.12811678491632931402e2)
_T64_Q1 = _F64(2.23548839060100448583e3)
_T64_Q2 = _F64(4.84406305325125486048e3)
_F64_ZERO = _F64(0.0)
_F64_M2 = _F64(-2.0)


def _tanh_f64(x):
    ax = abs(x)
    z = x * x
    num = (_T64_P0 * z + _T64_P1) * z + _T64_P2
    den = ((z + _T64_Q0) * z + _T64_Q1) * z + _T64_Q2
    small = (z * (num / den)) * x + x
    e = exp(_F64_M2 * ax)
    big = (_F64_ONE - e) / (_F64_ONE + e)
    big = big if x >= _F64_ZERO else -big
    return small if ax < _T64_SMALL else big


_by_dtype(tanh, _tanh_f32, _tanh_f64)


# ---------------------------------------------------------------------------------------------------------------
# log1p_small and softplus
# ---------------------------------------------------------------------------------------------------------------
# 2/(2k+1) for k = 7 .. 1: log(1+e) = s·(2 + s²·(2/3 + s²·(2/5 + ...))), s = e/(2+e) <= 1/3.
_L32_C = tuple(_F32(2.0 / (2 * k + 1)) for k in range(7, 0, -1))
_L32_C7, _L32_C6, _L32_C5, _L32_C4, _L32_C3, _L32_C2, _L32_C1 = _L32_C
_F32_TWO = _F32(2.0)


def _log1p_small_f32(x):  # x is the stub's e
    s = x / (_F32_TWO + x)
    s2 = s * s
    q = _L32_C7 * s2 + _L32_C6
    q = q * s2 + _L32_C5
    q = q * s2 + _L32_C4
    q = q * s2 + _L32_C3
    q = q * s2 + _L32_C2
    q = q * s2 + _L32_C1
    # 2s + s·s²·q: the correction (< 4% of 2s) is rounded before the leading term is added.
    return (s * s2) * q + _F32_TWO * s


# float64: the same series to s³³ (k = 16): remainder (1/9)**17/35 < 2e-18 relative.
_L64_C = tuple(_F64(2.0 / (2 * k + 1)) for k in range(16, 0, -1))
_F64_TWO = _F64(2.0)


def _log1p_small_f64(x):
    s = x / (_F64_TWO + x)
    s2 = s * s
    q = _L64_C[0]
    # Unrolled at compile time (a loop over a constant tuple); Horner in s².
    for c in literal_unroll(_L64_C[1:]):
        q = q * s2 + c
    return (s * s2) * q + _F64_TWO * s


_by_dtype(log1p_small, _log1p_small_f32, _log1p_small_f64)


def _nonfinite_f32(x):
    # exponent field 0xFF (inf/NaN) -> (255 + 1) >> 8 = 1; any other exponent -> 0.
    return (((np.int64(f32_as_i32(x)) >> 23) & 0xFF) + 1) >> 8


def _nonfinite_f64(x):
    return (((f64_as_i64(x) >> 52) & 0x7FF) + 1) >> 11


_by_dtype(nonfinite, _nonfinite_f32, _nonfinite_f64)


def _ubits_f32(x):
    return np.uint32(f32_as_i32(x))


def _ubits_f64(x):
    return np.uint64(f64_as_i64(x))


_by_dtype(ubits, _ubits_f32, _ubits_f64)


def _make_softplus(ty):
    zero = ty(0.0)

    def impl(x):  # x is the stub's z
        m = zero if x < zero else x  # max(x, 0), letting NaN through
        return m + log1p_small(exp(-abs(x)))

    return impl


_softplus_f32 = _make_softplus(_F32)
_softplus_f64 = _make_softplus(_F64)


_by_dtype(softplus, _softplus_f32, _softplus_f64)


def _make_flush_subnormal(ty):
    zero, tiny = ty(0.0), ty(np.finfo(ty).tiny)

    def impl(x):
        return zero if abs(x) < tiny else x  # a select: NaN compares false and passes

    return impl


_by_dtype(flush_subnormal, _make_flush_subnormal(_F32), _make_flush_subnormal(_F64))


# ---------------------------------------------------------------------------------------------------------------
# Python-side entry points of the stubs (scalars only; compiled on first use, never cached).
# ---------------------------------------------------------------------------------------------------------------
@njit(**_OV_JIT)
def _py_exp(x):
    return exp(x)


@njit(**_OV_JIT)
def _py_sigmoid(x):
    return sigmoid(x)


@njit(**_OV_JIT)
def _py_sigmoid_from_exp(x, e):
    return sigmoid_from_exp(x, e)


@njit(**_OV_JIT)
def _py_tanh(x):
    return tanh(x)


@njit(**_OV_JIT)
def _py_log1p_small(e):
    return log1p_small(e)


@njit(**_OV_JIT)
def _py_nonfinite(x):
    return nonfinite(x)


@njit(**_OV_JIT)
def _py_ubits(x):
    return ubits(x)


@njit(**_OV_JIT)
def _py_softplus(z):
    return softplus(z)


@njit(**_OV_JIT)
def _py_flush_subnormal(x):
    return flush_subnormal(x)


__all__ = [
    "cast",
    "exp",
    "sigmoid",
    "sigmoid_from_exp",
    "tanh",
    "log1p_small",
    "softplus",
    "nonfinite",
    "ubits",
    "flush_subnormal",
]
