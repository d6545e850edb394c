"""Philox4x32-10 in Numba: the in-kernel twin of :mod:`fastae.rng`, bit for bit.

Every random number fastae draws is a pure function of ``(key, stream, step, row, column)`` (see
:mod:`fastae.rng`): element ``(r, c)`` of a draw is word ``c % 4`` of the Philox4x32-10 block with counter
``(c // 4, row0 + r, step, stream)`` under key ``(k0, k1)``. Kernels therefore draw their noise where they use
it, row by row, and the result cannot depend on the thread count or on how rows are split.

Conversions, exactly as :mod:`fastae.rng` defines them:

* uniform:  ``u = (floor(bits / 2**9) + 1/2) * 2**-23``, an odd multiple of 2**-24 in (0, 1); exact in float32
  and float64, so storing it in either dtype gives the same number;
* normal:   Box-Muller in float64 inside each block of four words ``u0..u3``::

      r01 = sqrt(-2 ln u0);  z0 = r01 cos(2 pi u1);  z1 = r01 sin(2 pi u1)
      r23 = sqrt(-2 ln u2);  z2 = r23 cos(2 pi u3);  z3 = r23 sin(2 pi u3)

  cast to the output dtype at the store. The 32-bit words always agree exactly with :mod:`fastae.rng`; the
  float64 normals agree up to the libm: Numba calls the C library's ``log``/``cos``/``sin``, while NumPy may use
  its own SIMD ``log`` (on AVX-512 machines it differs from glibc by 1 ulp in about 0.4 % of arguments), so a
  float64 normal can differ from :func:`fastae.rng.normal` by a couple of ulp. Float32 normals, rounded from the
  float64 value, agree exactly in practice.

Scalar types
------------
``k0, k1, stream, step`` are 32-bit words (pass ``numpy.uint32``); ``row`` / ``row0`` and ``col0`` are ``int64``
absolute indices (``row0 + r`` must stay below 2**32, as :func:`fastae.rng.random_bits` requires; the kernels do
not check). The row fillers (``fill_*_row``) are ``@njit`` functions meant to be called from other kernels, where
LLVM inlines them (they carry no fast-math flags, see ``_RNG_JIT``); ``philox4x32``, ``uniform_bits`` and
``box_muller`` are ``inline="always"`` and must only be called from those fillers or from code compiled without
fast-math. The 2-D fillers at the end carry explicit signatures and are usable from Python (weight
initialisation, tests).
"""

import math

import numpy as np
from numba import prange

from fastae import rng
from fastae.kernels.cpu._config import JIT, JIT_PARALLEL, njit

__all__ = [
    "philox4x32",
    "uniform_bits",
    "box_muller",
    "fill_bits_row",
    "fill_uniform_row",
    "fill_normal_row",
    "random_bits",
    "random_bits_par",
    "uniform",
    "uniform_par",
    "normal",
    "normal_par",
]

# All 32-bit words live in uint32 between rounds, but every product and sum is formed in uint64 and masked or
# truncated back explicitly: Numba promotes uint32 op uint32 to uint64 anyway, and an implicit mix with a signed
# int64 literal would give int64 or float64 (wrong bits). Shift counts and masks are uint64 for the same reason.
_M0 = np.uint64(rng.PHILOX_M0)
_M1 = np.uint64(rng.PHILOX_M1)
_W0 = np.uint64(rng.PHILOX_W0)
_W1 = np.uint64(rng.PHILOX_W1)
_LO32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_SH9 = np.uint64(rng._UNIFORM_SHIFT)
_UNIFORM_SCALE = rng._UNIFORM_SCALE  # 2**-23
_TWO_PI = rng._TWO_PI  # the same float64 constant as the reference, so the angle is the same number

# The row fillers are compiled WITHOUT fast-math flags, unlike the kernels that call them: the conversions must be
# evaluated exactly as the reference writes them. Under 'reassoc' + 'contract' LLVM distributes
# 2 pi * ((m + 1/2) 2**-23) into m (2 pi 2**-23) + pi 2**-23, which an FMA rounds once, as the reference does,
# and a CPU without FMA rounds twice. fastmath=False must be explicit: Numba lets a callee that sets no fastmath
# inherit its caller's. LLVM keeps these per-instruction flags when it inlines a filler into a fast-math kernel.
_RNG_JIT = dict(nogil=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)


@njit(inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block function: counter ``(c0, c1, c2, c3)``, key ``(k0, k1)`` -> four uint32 words.

    Round ``i`` (0..9) uses key ``k + i * (W0, W1) mod 2**32`` and maps::

        (hi0, lo0) = mulhilo32(M0, c0);  (hi1, lo1) = mulhilo32(M1, c2)
        c -> (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)

    Arguments are any integers holding 32-bit words; they are reduced to uint32 first.
    """
    x0 = np.uint32(c0)
    x1 = np.uint32(c1)
    x2 = np.uint32(c2)
    x3 = np.uint32(c3)
    key0 = np.uint32(k0)
    key1 = np.uint32(k1)
    for _ in range(10):
        # Both factors are < 2**32, so the exact 64-bit product fits in uint64 (LLVM emits a 32x32->64 multiply).
        p0 = _M0 * np.uint64(x0)
        p1 = _M1 * np.uint64(x2)
        y0 = np.uint32((p1 >> _SH32) ^ np.uint64(x1) ^ np.uint64(key0))
        y1 = np.uint32(p1 & _LO32)
        y2 = np.uint32((p0 >> _SH32) ^ np.uint64(x3) ^ np.uint64(key1))
        y3 = np.uint32(p0 & _LO32)
        x0, x1, x2, x3 = y0, y1, y2, y3
        # Bumping after the last round too is harmless (the key is not used again) and keeps the loop uniform.
        key0 = np.uint32((np.uint64(key0) + _W0) & _LO32)
        key1 = np.uint32((np.uint64(key1) + _W1) & _LO32)
    return x0, x1, x2, x3


@njit(inline="always")
def uniform_bits(bits):
    """``u = (floor(bits / 2**9) + 1/2) * 2**-23`` as float64: an odd multiple of 2**-24 in (0, 1), exact in float32."""
    m = np.float64(np.uint64(bits) >> _SH9)
    return (m + 0.5) * _UNIFORM_SCALE


@njit(inline="always")
def box_muller(w0, w1, w2, w3):
    """The four float64 normals of one Philox block (words ``w0..w3``), as :func:`fastae.rng.normal`."""
    r01 = math.sqrt(-2.0 * math.log(uniform_bits(w0)))
    r23 = math.sqrt(-2.0 * math.log(uniform_bits(w2)))
    # The angle is (2 pi) * u exactly as the reference writes it (one rounding), so cos/sin see the same argument.
    t1 = _TWO_PI * uniform_bits(w1)
    t3 = _TWO_PI * uniform_bits(w3)
    return r01 * math.cos(t1), r01 * math.sin(t1), r23 * math.cos(t3), r23 * math.sin(t3)


# ---------------------------------------------------------------------------------------------------------------
# One row segment: out[j] <- draw at (row, col0 + j) for j in range(len(out)).
#
# Columns are handled as a partial head block (col0 not a multiple of 4), whole blocks, and a partial tail block,
# so each Philox block is computed once however the segment is aligned. The three fillers share this layout and
# differ only in what they store; they are written out rather than parametrised by a callback, which Numba would
# compile less predictably.
# ---------------------------------------------------------------------------------------------------------------
@njit(**_RNG_JIT)
def fill_bits_row(k0, k1, stream, step, row, col0, out):
    """``out[j] = word (col0+j) % 4 of philox4x32(((col0+j) // 4, row, step, stream), (k0, k1))`` (out: uint32)."""
    n = out.shape[0]
    if n == 0:
        return
    r = np.uint32(row)
    s = np.uint32(step)
    st = np.uint32(stream)
    j = 0
    b = col0 // 4
    off = col0 - 4 * b
    if off != 0:
        w = philox4x32(b, r, s, st, k0, k1)
        while off < 4 and j < n:
            out[j] = w[off]
            off += 1
            j += 1
        b += 1
    n_full = (n - j) // 4
    for q in range(n_full):
        w0, w1, w2, w3 = philox4x32(b + q, r, s, st, k0, k1)
        o = j + 4 * q
        out[o] = w0
        out[o + 1] = w1
        out[o + 2] = w2
        out[o + 3] = w3
    j += 4 * n_full
    b += n_full
    if j < n:
        w = philox4x32(b, r, s, st, k0, k1)
        for t in range(n - j):
            out[j + t] = w[t]


@njit(**_RNG_JIT)
def fill_uniform_row(k0, k1, stream, step, row, col0, out):
    """``out[j] = uniform(bits at (row, col0 + j))`` in out's dtype (float32 or float64; the value is exact in both)."""
    n = out.shape[0]
    if n == 0:
        return
    r = np.uint32(row)
    s = np.uint32(step)
    st = np.uint32(stream)
    j = 0
    b = col0 // 4
    off = col0 - 4 * b
    if off != 0:
        w = philox4x32(b, r, s, st, k0, k1)
        while off < 4 and j < n:
            out[j] = uniform_bits(w[off])
            off += 1
            j += 1
        b += 1
    n_full = (n - j) // 4
    for q in range(n_full):
        w0, w1, w2, w3 = philox4x32(b + q, r, s, st, k0, k1)
        o = j + 4 * q
        out[o] = uniform_bits(w0)
        out[o + 1] = uniform_bits(w1)
        out[o + 2] = uniform_bits(w2)
        out[o + 3] = uniform_bits(w3)
    j += 4 * n_full
    b += n_full
    if j < n:
        w = philox4x32(b, r, s, st, k0, k1)
        for t in range(n - j):
            out[j + t] = uniform_bits(w[t])


@njit(**_RNG_JIT)
def fill_normal_row(k0, k1, stream, step, row, col0, out):
    """``out[j] = normal at (row, col0 + j)``: Box-Muller in float64 per block, cast to out's dtype at the store.

    A partial block is still transformed in full (a normal needs its pair's two words), so a column's value does
    not depend on where the segment starts or ends.
    """
    n = out.shape[0]
    if n == 0:
        return
    r = np.uint32(row)
    s = np.uint32(step)
    st = np.uint32(stream)
    j = 0
    b = col0 // 4
    off = col0 - 4 * b
    if off != 0:
        w0, w1, w2, w3 = philox4x32(b, r, s, st, k0, k1)
        z = box_muller(w0, w1, w2, w3)
        while off < 4 and j < n:
            out[j] = z[off]
            off += 1
            j += 1
        b += 1
    n_full = (n - j) // 4
    for q in range(n_full):
        w0, w1, w2, w3 = philox4x32(b + q, r, s, st, k0, k1)
        z0, z1, z2, z3 = box_muller(w0, w1, w2, w3)
        o = j + 4 * q
        out[o] = z0
        out[o + 1] = z1
        out[o + 2] = z2
        out[o + 3] = z3
    j += 4 * n_full
    b += n_full
    if j < n:
        w0, w1, w2, w3 = philox4x32(b, r, s, st, k0, k1)
        z = box_muller(w0, w1, w2, w3)
        for t in range(n - j):
            out[j + t] = z[t]


# ---------------------------------------------------------------------------------------------------------------
# 2-D fillers: out[r, c] <- draw at (row0 + r, col0 + c). Serial and prange twins share the row helpers, so
# they are bit-identical whatever the thread count.
# ---------------------------------------------------------------------------------------------------------------
_SCAL = "u4, u4, u4, u4, i8, i8"


@njit(f"void({_SCAL}, u4[:, ::1])", **JIT)
def random_bits(k0, k1, stream, step, row0, col0, out):
    """``out[r, c] = random_bits(key, stream, step, ..., row0)[r, col0 + c]`` of :mod:`fastae.rng` (uint32)."""
    for i in range(out.shape[0]):
        fill_bits_row(k0, k1, stream, step, row0 + i, col0, out[i])


@njit(f"void({_SCAL}, u4[:, ::1])", **JIT_PARALLEL)
def random_bits_par(k0, k1, stream, step, row0, col0, out):
    """:func:`random_bits` with rows spread over threads."""
    for i in prange(out.shape[0]):
        fill_bits_row(k0, k1, stream, step, row0 + i, col0, out[i])


@njit([f"void({_SCAL}, f4[:, ::1])", f"void({_SCAL}, f8[:, ::1])"], **JIT)
def uniform(k0, k1, stream, step, row0, col0, out):
    """``out[r, c]`` = :func:`fastae.rng.uniform` at ``(row0 + r, col0 + c)`` (exact in float32 and float64)."""
    for i in range(out.shape[0]):
        fill_uniform_row(k0, k1, stream, step, row0 + i, col0, out[i])


@njit([f"void({_SCAL}, f4[:, ::1])", f"void({_SCAL}, f8[:, ::1])"], **JIT_PARALLEL)
def uniform_par(k0, k1, stream, step, row0, col0, out):
    """:func:`uniform` with rows spread over threads."""
    for i in prange(out.shape[0]):
        fill_uniform_row(k0, k1, stream, step, row0 + i, col0, out[i])


@njit([f"void({_SCAL}, f4[:, ::1])", f"void({_SCAL}, f8[:, ::1])"], **JIT)
def normal(k0, k1, stream, step, row0, col0, out):
    """``out[r, c]`` = :func:`fastae.rng.normal` at ``(row0 + r, col0 + c)`` (float64 Box-Muller, cast at the store)."""
    for i in range(out.shape[0]):
        fill_normal_row(k0, k1, stream, step, row0 + i, col0, out[i])


@njit([f"void({_SCAL}, f4[:, ::1])", f"void({_SCAL}, f8[:, ::1])"], **JIT_PARALLEL)
def normal_par(k0, k1, stream, step, row0, col0, out):
    """:func:`normal` with rows spread over threads."""
    for i in prange(out.shape[0]):
        fill_normal_row(k0, k1, stream, step, row0 + i, col0, out[i])
