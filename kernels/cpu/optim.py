"""Optimiser steps on flat parameter vectors (``p.reshape(-1)`` of C-contiguous parameters).

Math: :func:`fastae.backends.numpy_ref.sgd_update`, ``momentum_update`` and ``adam_update``, in the same operation
order, with true divisions (float64 agrees to ~1e-16 relative; the only difference is FMA contraction of
``p − lr·s``, ``μ·buf + g``, ``√v·r + ε`` and ``β m + (1−β) g``, one rounding instead of two). Each kernel writes
the new parameters over the gradient ``g`` (never into ``p``), updates its state in place, and returns ``True``
iff every new value is finite, so a diverging step can be refused with ``p`` intact.

Why over ``g``: the gradient is dead once read, and its cache line is already loaded, so the new parameters cost
no extra stream. A separate ``out`` array costs a read for ownership of every line it writes
(docs/performance.md, *Kernel notes*). (Passing ``g`` itself as ``out`` to a two-array kernel is no answer: LLVM's
run-time overlap check then fails and the scalar loop runs.)

The finite test costs no branch per element: each block or-reduces ``bad |= fmath.nonfinite(o)``, an integer
test of the exponent bits (all ones for ±inf and NaN). It is a plain integer reduction that LLVM vectorises,
and no floating-point fast-math flag can touch it. The float trick ``acc += o − o`` (0 if finite, else NaN)
was tried first and fails under ``_config.FASTMATH``: with ``reassoc`` + ``nsz`` LLVM's Reassociate pass
cancels ``+o − o`` in the sum tree, ``acc`` stays 0 and an inf step reports finite.

State below the smallest normal number is stored as 0 (``fmath.flush_subnormal``), as the reference does. A unit
whose gradient is 0 (a dead ReLU unit) has its momentum decay by ``β`` every step until it is subnormal, and there it
stays: ``0.9·k·2⁻¹⁴⁹`` rounds back to ``k·2⁻¹⁴⁹`` for small ``k``. Every step then does arithmetic on subnormals,
which x86 cores run far slower, and in the VAE benchmark most of the first layer's first moments end up there
(docs/performance.md, *Kernel notes*). A moment that small moves its parameter by less than ``s·2⁻¹²⁶/ε`` with
``s = lr/(1 − β₁ᵗ)`` (about 1e-33 at ``lr = 1e-3`` once ``t`` is large, ten times that at the first step), which
no normal float32 parameter can register.

Scalar hyper-parameters are converted to the parameters' dtype on entry (``fmath.cast``), so a Python float
cannot pull float32 arithmetic up to float64. ``1 − β`` is formed in float64 before that conversion, as the
reference's ``t(1 − β)`` does.

Every kernel walks the flat range in blocks of ``OPT_BLOCK`` elements, one after another (serial) or in parallel
(the ``_par`` twins), each block the same compiled block function; the values written are elementwise, hence
bit-identical for any thread count, and the flags of the blocks are combined with a logical and. The last argument,
``o16``, is empty or a uint16 array of the parameters' length: each block's new parameters are then also rounded to
bfloat16 into it while the block is in cache (``precision="bfloat16"``: the copy the next step's products take).
"""

import math

import numpy as np
from numba import prange

from . import fmath
from ._config import JIT, JIT_PARALLEL, JIT_ROW, njit
from .bf16 import store_bf16

# Block bodies: FMA contraction as the only fast-math liberty (_config.JIT_ROW), so the values cannot depend on the
# context LLVM inlines a body into; every output is elementwise, hence the same for any blocking.

# Elements per parallel task: 16 K float32 = 64 KiB per array, large enough to amortise a task and a multiple
# of every SIMD width, so block edges never split a vector.
OPT_BLOCK = 1 << 14


# ---------------------------------------------------------------------------------------------------------------
# Block bodies: elements lo <= k < hi; each returns its non-finite flag (0 if every new value is finite, else 1).
# ---------------------------------------------------------------------------------------------------------------
# Each block body works on slices [lo:hi] indexed from 0: an index from range(lo, hi) may be negative as far as
# Numba knows, so every access would carry a wrap-around select and the loop would not vectorise
# (docs/performance.md, *Kernel notes*); slices index from a non-negative range and vectorise.
@njit(**JIT_ROW)
def _sgd_block(p, g, lr, lo, hi):
    p, g = p[lo:hi], g[lo:hi]
    bad = 0
    for k in range(p.shape[0]):
        o = p[k] - lr * g[k]
        g[k] = o
        bad |= fmath.nonfinite(o)
    return bad


@njit(**JIT_ROW)
def _momentum_block(p, g, buf, lr, mu, nesterov, lo, hi):
    p, g, buf = p[lo:hi], g[lo:hi], buf[lo:hi]
    bad = 0
    # The Nesterov branch is taken once, outside the loops, so each loop is branch-free.
    if nesterov:
        for k in range(p.shape[0]):
            gk = g[k]
            b = fmath.flush_subnormal(mu * buf[k] + gk)
            buf[k] = b
            o = p[k] - lr * (gk + mu * b)
            g[k] = o
            bad |= fmath.nonfinite(o)
    else:
        for k in range(p.shape[0]):
            b = fmath.flush_subnormal(mu * buf[k] + g[k])
            buf[k] = b
            o = p[k] - lr * b
            g[k] = o
            bad |= fmath.nonfinite(o)
    return bad


@njit(**JIT_ROW)
def _adam_block(p, g, m, v, step, rs, b1, b2, omb1, omb2, eps, lo, hi):
    p, g, m, v = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
    bad = 0
    for k in range(p.shape[0]):
        gk = g[k]
        mk = fmath.flush_subnormal(b1 * m[k] + omb1 * gk)
        vk = fmath.flush_subnormal(b2 * v[k] + omb2 * (gk * gk))
        m[k] = mk
        v[k] = vk
        o = p[k] - step * (mk / (math.sqrt(vk) * rs + eps))
        g[k] = o
        bad |= fmath.nonfinite(o)
    return bad


@njit(**JIT)
def _all_finite(flags):
    """True iff no block flagged a non-finite value (an integer test: order-free)."""
    for b in range(flags.shape[0]):
        if flags[b] != 0:
            return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# The kernels. ``o16`` is empty, or uint16 of ``p``'s length: then each block's new parameters are also rounded to
# bfloat16 there while the block is in cache (``precision="bfloat16"``: the copy the next step's products take,
# written by the update instead of by a pass of its own). Serial kernels walk the same blocks, one after another.
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT)
def sgd(p, g, lr, o16):
    """``g ← p − lr·g`` (the new parameters, over the gradient). Returns True iff every new value is finite."""
    lr = fmath.cast(lr, p)
    n = p.shape[0]
    bad = 0
    for lo in range(0, n, OPT_BLOCK):
        hi = min(lo + OPT_BLOCK, n)
        bad |= _sgd_block(p, g, lr, lo, hi)
        store_bf16(g, o16, lo, hi)
    return bad == 0


@njit(**JIT_PARALLEL)
def sgd_par(p, g, lr, o16):
    """:func:`sgd` over blocks of ``OPT_BLOCK`` elements in parallel; bit-identical to it."""
    lr = fmath.cast(lr, p)
    n = p.shape[0]
    nblk = (n + OPT_BLOCK - 1) // OPT_BLOCK
    flags = np.empty(nblk, dtype=np.int64)
    for b in prange(nblk):
        lo = b * OPT_BLOCK
        hi = min(lo + OPT_BLOCK, n)
        flags[b] = _sgd_block(p, g, lr, lo, hi)
        store_bf16(g, o16, lo, hi)
    return _all_finite(flags)


# Momentum (torch.optim.SGD semantics)
@njit(**JIT)
def momentum(p, g, buf, lr, mu, nesterov, o16):
    """``buf = μ·buf + g``; ``g ← p − lr·(g + μ·buf)`` if ``nesterov`` else ``g ← p − lr·buf``.
    Returns True iff every new value is finite."""
    lr = fmath.cast(lr, p)
    mu = fmath.cast(mu, p)
    n = p.shape[0]
    bad = 0
    for lo in range(0, n, OPT_BLOCK):
        hi = min(lo + OPT_BLOCK, n)
        bad |= _momentum_block(p, g, buf, lr, mu, nesterov, lo, hi)
        store_bf16(g, o16, lo, hi)
    return bad == 0


@njit(**JIT_PARALLEL)
def momentum_par(p, g, buf, lr, mu, nesterov, o16):
    """:func:`momentum` over blocks of ``OPT_BLOCK`` elements in parallel; bit-identical to it."""
    lr = fmath.cast(lr, p)
    mu = fmath.cast(mu, p)
    n = p.shape[0]
    nblk = (n + OPT_BLOCK - 1) // OPT_BLOCK
    flags = np.empty(nblk, dtype=np.int64)
    for b in prange(nblk):
        lo = b * OPT_BLOCK
        hi = min(lo + OPT_BLOCK, n)
        flags[b] = _momentum_block(p, g, buf, lr, mu, nesterov, lo, hi)
        store_bf16(g, o16, lo, hi)
    return _all_finite(flags)


# Adam (torch.optim.Adam semantics)
@njit(**JIT)
def adam(p, g, m, v, step, rs, b1, b2, eps, o16):
    """``m = β₁ m + (1−β₁) g``; ``v = β₂ v + (1−β₂) g²``; ``g ← p − s·(m / (√v·r + ε))``, where the caller
    forms ``s = lr / (1 − β₁ᵗ)`` and ``r = 1 / √(1 − β₂ᵗ)`` in float64 (:func:`numpy_ref.adam_scalars`): one
    division and one root per element. Returns True iff every new value is finite."""
    step_, rs_, b1_, b2_ = fmath.cast(step, p), fmath.cast(rs, p), fmath.cast(b1, p), fmath.cast(b2, p)
    omb1, omb2, eps_ = fmath.cast(1.0 - b1, p), fmath.cast(1.0 - b2, p), fmath.cast(eps, p)
    n = p.shape[0]
    bad = 0
    for lo in range(0, n, OPT_BLOCK):
        hi = min(lo + OPT_BLOCK, n)
        bad |= _adam_block(p, g, m, v, step_, rs_, b1_, b2_, omb1, omb2, eps_, lo, hi)
        store_bf16(g, o16, lo, hi)
    return bad == 0


@njit(**JIT_PARALLEL)
def adam_par(p, g, m, v, step, rs, b1, b2, eps, o16):
    """:func:`adam` over blocks of ``OPT_BLOCK`` elements in parallel; bit-identical to it."""
    step_, rs_, b1_, b2_ = fmath.cast(step, p), fmath.cast(rs, p), fmath.cast(b1, p), fmath.cast(b2, p)
    omb1, omb2, eps_ = fmath.cast(1.0 - b1, p), fmath.cast(1.0 - b2, p), fmath.cast(eps, p)
    n = p.shape[0]
    nblk = (n + OPT_BLOCK - 1) // OPT_BLOCK
    flags = np.empty(nblk, dtype=np.int64)
    for b in prange(nblk):
        lo = b * OPT_BLOCK
        hi = min(lo + OPT_BLOCK, n)
        flags[b] = _adam_block(p, g, m, v, step_, rs_, b1_, b2_, omb1, omb2, eps_, lo, hi)
        store_bf16(g, o16, lo, hi)
    return _all_finite(flags)


__all__ = ["sgd", "sgd_par", "momentum", "momentum_par", "adam", "adam_par", "OPT_BLOCK"]
