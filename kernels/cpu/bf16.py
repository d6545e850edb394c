"""bfloat16: float32 rounded to 8 significant bits (round to nearest, ties to even) and back.

A bfloat16 is the top half of a float32's bit pattern, held here as ``uint16``. Rounding adds ``0x7FFF`` plus the
lowest kept bit to the pattern and drops the low half: the carry rounds to nearest and the kept bit breaks ties to
even. The same integer step is right for subnormals (their patterns are the value's fixed-point digits), rounds
the largest finite floats to infinity as IEEE rounding does, and keeps infinities; a NaN is kept a quiet NaN of
the same sign (the carry could otherwise turn a NaN whose payload lies in the low half into an infinity).

Widening back is exact: the pattern moved to the top half. The product of two bfloat16 values is exact in float32
(8 + 8 significant bits), so a float32 product of widened operands computes what a bfloat16 GEMM with float32
accumulation does, up to the order of the sums: that is the emulated path on processors without bf16 units.

Caching note: Numba's cache keys a kernel on its own source file only. The optimiser kernels (:mod:`.optim`,
through :func:`store_bf16`) compile this file's rounding into theirs, and this file's epilogues compile
:mod:`.dense`'s row bodies into theirs. After editing this file touch ``optim.py``, after editing ``dense.py``
touch this one (or delete ``kernels/cpu/__pycache__``), or the cached code keeps the old version.
"""

import numpy as np
from numba import prange, types
from numba.extending import overload

from . import dense
from ._config import JIT, JIT_PARALLEL, JIT_ROW, njit

_QUIET = np.uint32(0x00400000)  # the quiet bit of a float32 NaN


# Numba types uint32 arithmetic as 64-bit: every operation below is cast back to uint32, so that LLVM keeps
# 32-bit lanes (16 per AVX-512 vector, not 8) and the conversion runs 1.7x faster (docs/performance.md, *bfloat16
# training, the operands written where they are made*).
_u4 = np.uint32

# Row bodies, shared by a kernel and its parallel twin; inlined by LLVM into the loop over rows (a call per row
# doubled the time of the input check on rows of 64).
_ROW = dict(JIT_ROW, forceinline=True)


@njit(**JIT)
def _round_bits(b):
    """The bfloat16 pattern (in a uint32) of the float32 pattern ``b``. Both candidates are computed and one is
    selected, with no branch, so that the loops calling this vectorise."""
    lsb = _u4(_u4(b >> _u4(16)) & _u4(1))
    rounded = _u4(_u4(_u4(b + _u4(0x7FFF)) + lsb) >> _u4(16))
    quiet = _u4(_u4(b | _QUIET) >> _u4(16))  # NaN: stays a NaN, made quiet, sign kept
    return quiet if _u4(b & _u4(0x7FFFFFFF)) > _u4(0x7F800000) else rounded


@njit(**_ROW)
def _round_row(src, dst):
    """``dst[j] = bf16 pattern of the float32 pattern src[j]`` over one row."""
    for j in range(src.shape[0]):
        dst[j] = np.uint16(_round_bits(src[j]))


@njit(**JIT)
def to_bf16(x, out):
    """``out[i] = bf16(x[i])`` for float32 ``x`` and uint16 ``out`` of the same shape (C-contiguous)."""
    _round_row(x.reshape(-1).view(np.uint32), out.reshape(-1))


@njit(**JIT_PARALLEL)
def to_bf16_par(x, out):
    """:func:`to_bf16` of a 2-D ``x``, rows split among threads; bit-identical to it."""
    src = x.view(np.uint32)
    for r in prange(src.shape[0]):
        _round_row(src[r], out[r])


@njit(**_ROW)
def _check_verdict(top, unit_interval):
    if unit_interval:
        return top <= _u4(0x3F800000)  # the pattern of 1.0: see checks.values_ok
    return top < _u4(0x7F800000)


@njit(**JIT)
def check_to_bf16(x, unit_interval, out):
    """:func:`to_bf16` and the boundary scan of :func:`fastae.kernels.cpu.checks.values_ok` in one pass over
    ``x`` ``(n, m)``: True when every value is finite (and, with ``unit_interval``, in [0, 1]). On False ``out`` is
    written all the same and the caller's detailed checks say what is wrong. Row by row, the scan reading the row
    the conversion has just brought into cache: one loop doing both did not vectorise (3x slower). The loops are
    written out here and in the parallel twin: as a row function returning the row's maximum they ran 4x slower on
    rows of 64."""
    src = x.view(np.uint32)
    keep = _u4(0xFFFFFFFF) if unit_interval else _u4(0x7FFFFFFF)
    top = _u4(0)
    for r in range(src.shape[0]):
        row, dst = src[r], out[r]
        for i in range(row.shape[0]):
            dst[i] = np.uint16(_round_bits(row[i]))
        for i in range(row.shape[0]):
            m = _u4(row[i] & keep)
            top = m if m > top else top
    return _check_verdict(top, unit_interval)


@njit(**JIT_PARALLEL)
def check_to_bf16_par(x, unit_interval, out):
    """:func:`check_to_bf16` with rows split among threads (an integer maximum: the same answer in any order)."""
    src = x.view(np.uint32)
    keep = _u4(0xFFFFFFFF) if unit_interval else _u4(0x7FFFFFFF)
    tops = np.empty(src.shape[0], dtype=np.uint32)
    for r in prange(src.shape[0]):
        row, dst = src[r], out[r]
        for i in range(row.shape[0]):
            dst[i] = np.uint16(_round_bits(row[i]))
        t = _u4(0)
        for i in range(row.shape[0]):
            m = _u4(row[i] & keep)
            t = m if m > t else t
        tops[r] = t
    top = _u4(0)
    for r in range(tops.shape[0]):
        top = tops[r] if tops[r] > top else top
    return _check_verdict(top, unit_interval)


@njit(**JIT)
def widen(h, out):
    """``out[i]`` = the float32 value of the bfloat16 pattern ``h[i]`` (exact)."""
    src = h.reshape(-1)
    dst = out.reshape(-1).view(np.uint32)
    for i in range(src.size):
        dst[i] = _u4(_u4(src[i]) << _u4(16))


@njit(**JIT)
def round_f32(x, out):
    """``out[i]`` = ``x[i]`` rounded to bfloat16, as a float32 (``out`` may be ``x``): the operands of the
    emulated path."""
    src = x.reshape(-1).view(np.uint32)
    dst = out.reshape(-1).view(np.uint32)
    for i in range(src.size):
        dst[i] = _u4(_round_bits(src[i]) << _u4(16))


@njit(**_ROW)
def _bias_act_bf16_row(a, b, act, out, i):
    dense._bias_act_vec(a[i], b, act)
    _round_row(a[i].view(np.uint32), out[i])


@njit(**JIT)
def bias_act_bf16(a, b, act, out):
    """``out = bf16(f(a + b))`` (uint16) for float32 ``a`` ``(n, m)``, row by row while the row is in cache: the
    epilogue of a layer whose output feeds another bfloat16 product. ``a`` is overwritten with ``f(a + b)``."""
    for i in range(a.shape[0]):
        _bias_act_bf16_row(a, b, act, out, i)


@njit(**JIT_PARALLEL)
def bias_act_bf16_par(a, b, act, out):
    """:func:`bias_act_bf16` with rows split among threads; bit-identical to it."""
    for i in prange(a.shape[0]):
        _bias_act_bf16_row(a, b, act, out, i)


@njit(**_ROW)
def _act_backward_bf16_row(dh, h, act, out, i):
    dense._act_backward_row(dh, h, i, act)
    _round_row(dh[i].view(np.uint32), out[i])


@njit(**JIT)
def act_backward_bf16(dh, h, act, out):
    """:func:`fastae.kernels.cpu.dense.act_backward` (in place in ``dh``) and ``out = bf16(dh)`` (uint16), row by
    row while the row is in cache: the ``delta`` of a layer and the operand of its backward products."""
    for i in range(dh.shape[0]):
        _act_backward_bf16_row(dh, h, act, out, i)


@njit(**JIT_PARALLEL)
def act_backward_bf16_par(dh, h, act, out):
    """:func:`act_backward_bf16` with rows split among threads; bit-identical to it."""
    for i in prange(dh.shape[0]):
        _act_backward_bf16_row(dh, h, act, out, i)


def store_bf16(src, dst, lo, hi):
    """``dst[lo:hi] = bf16(src[lo:hi])`` for float32 ``src`` when ``dst`` is not empty; nothing for an empty
    ``dst`` or a float64 ``src`` (whose models have no bfloat16 copies). For the optimiser kernels, which call it
    on each block they have just written. Compiled code only."""


@overload(store_bf16, jit_options=dict(JIT, cache=False))
def _ov_store_bf16(src, dst, lo, hi):
    if src.dtype != types.float32:
        return lambda src, dst, lo, hi: None

    def impl(src, dst, lo, hi):
        if dst.shape[0] == 0:
            return
        s, d = src[lo:hi].view(np.uint32), dst[lo:hi]
        for k in range(s.shape[0]):
            d[k] = np.uint16(_round_bits(s[k]))

    return impl


__all__ = [
    "to_bf16",
    "to_bf16_par",
    "check_to_bf16",
    "check_to_bf16_par",
    "widen",
    "round_f32",
    "bias_act_bf16",
    "bias_act_bf16_par",
    "act_backward_bf16",
    "act_backward_bf16_par",
    "store_bf16",
]
