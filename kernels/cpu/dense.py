"""Dense-layer epilogues around the BLAS products: bias + activation, activation backward, bias gradient.

The matrix products themselves go to BLAS (``a = x @ W.T``); these kernels do the elementwise work in one pass
over ``a``, in place. Math: :func:`fastae.backends.numpy_ref.dense_forward`, ``activation_backward`` and the
``db`` of ``dense_backward``, with the scalar functions of :mod:`fastae.activations`.

Every kernel has a serial version and a ``_par`` twin (``prange`` over rows, or over column blocks for
``col_sum``) that runs the same per-row (per-block) function, so the two give bit-identical results whatever
the thread count: no floating-point value depends on how rows are split among threads, and the bodies carry
no ``reassoc`` (``_config.JIT_ROW``), so their arithmetic is the order written wherever LLVM inlines them.
"""

import numpy as np
from numba import prange

from . import fmath
from ._config import JIT, JIT_PARALLEL, JIT_ROW, LINEAR, RELU, SIGMOID, TANH, njit

# Row bodies: FMA contraction as the only fast-math liberty, so their results cannot depend on the context LLVM
# inlines them into (serial loop or parfor gufunc); see _config.JIT_ROW.

# Columns per parallel task of col_sum_par: 64 float32 = 4 cache lines per row and task, so every task streams
# whole lines and the accumulator block stays in L1.
COL_BLOCK = 64


# ---------------------------------------------------------------------------------------------------------------
# bias + activation (forward)
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT_ROW)
def _bias_act_vec(ar, b, act):
    """``ar[j] = f(ar[j] + b[j])`` over one contiguous run (a row, or several rows against a tiled bias). The
    activation branch is taken once, outside the loop, so each of the four loops is branch-free and
    vectorises."""
    m = ar.shape[0]
    if act == SIGMOID:
        for j in range(m):
            ar[j] = fmath.sigmoid(ar[j] + b[j])
    elif act == TANH:
        for j in range(m):
            ar[j] = fmath.tanh(ar[j] + b[j])
    elif act == RELU:
        zero = fmath.cast(0.0, ar)
        for j in range(m):
            z = ar[j] + b[j]
            # max(z, 0) as np.maximum: a NaN stays NaN (so divergence is still caught downstream).
            ar[j] = zero if z < zero else z
    else:  # LINEAR
        for j in range(m):
            ar[j] = ar[j] + b[j]


# Narrow layers (a code of 16 units) make row-sized loops too short to vectorise well, so below WIDE columns
# bias_act walks runs of whole rows against the bias tiled to the run's length; the values are the same, element
# for element (docs/performance.md, *Kernel notes*).
WIDE = 128
RUN = 1024


@njit(**JIT)
def _bias_tile(b, rows):
    """``b`` repeated ``rows`` times. An element loop, not ``rows`` slice assignments: each slice assignment is a
    call with its own checks, which in a small layer's epilogue cost more than the rest of it
    (docs/performance.md, *Kernel notes*)."""
    m = b.shape[0]
    bt = np.empty(rows * m, dtype=b.dtype)
    for r in range(rows):
        base = r * m
        for j in range(m):
            bt[base + j] = b[j]
    return bt


@njit(**JIT)
def bias_act(a, b, act):
    """In place ``a[i, j] = f(a[i, j] + b[j])`` for the activation code ``act`` (``_config.SIGMOID``, ``TANH``,
    ``RELU``, ``LINEAR``); ``a`` is ``(n, m)`` C-contiguous, ``b`` is ``(m,)``."""
    n, m = a.shape
    if m >= WIDE or n == 1:
        for i in range(n):
            _bias_act_vec(a[i], b, act)
        return
    rows = max(1, min(n, RUN // m))
    bt = _bias_tile(b, rows)
    flat = a.reshape(-1)
    for i0 in range(0, n, rows):
        i1 = min(i0 + rows, n)
        _bias_act_vec(flat[i0 * m : i1 * m], bt, act)


@njit(**JIT_PARALLEL)
def bias_act_par(a, b, act):
    """:func:`bias_act` with rows split among threads; bit-identical to it."""
    for i in prange(a.shape[0]):
        _bias_act_vec(a[i], b, act)


# ---------------------------------------------------------------------------------------------------------------
# activation backward
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT_ROW)
def _act_backward_row(dh, h, i, act):
    """Row ``i`` of :func:`act_backward`; one branch-free loop per activation."""
    dr, hr = dh[i], h[i]
    m = dr.shape[0]
    one = fmath.cast(1.0, dh)
    if act == SIGMOID:
        for j in range(m):
            hv = hr[j]
            dr[j] = dr[j] * (hv * (one - hv))
    elif act == TANH:
        for j in range(m):
            hv = hr[j]
            dr[j] = dr[j] * (one - hv * hv)
    elif act == RELU:
        zero = fmath.cast(0.0, dh)
        for j in range(m):
            # A multiply by 1 or 0, not a select, exactly as the reference's dh * (h > 0): an inf or NaN in dh
            # still poisons the result where h <= 0, so a diverging gradient is not silently masked.
            dr[j] = dr[j] * (one if hr[j] > zero else zero)
    # LINEAR: f' = 1, nothing to do.


@njit(**JIT)
def act_backward(dh, h, act):
    """In place ``dh[i, j] *= f'(a[i, j])``, with ``f'`` written through the stored output ``h = f(a)``
    (:func:`fastae.activations.derivative_from_output`): sigmoid ``h (1 - h)``, tanh ``1 - h²``, relu
    ``1 if h > 0 else 0``, linear ``1`` (no-op)."""
    if act == LINEAR:
        return
    for i in range(dh.shape[0]):
        _act_backward_row(dh, h, i, act)


@njit(**JIT_PARALLEL)
def act_backward_par(dh, h, act):
    """:func:`act_backward` with rows split among threads; bit-identical to it."""
    if act == LINEAR:
        return
    for i in prange(dh.shape[0]):
        _act_backward_row(dh, h, i, act)


# ---------------------------------------------------------------------------------------------------------------
# bias gradient: column sums
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT_ROW)
def _col_sum_cols(d, out, j0, j1):
    """``out[j] = Σ_i d[i, j]`` for ``j0 <= j < j1``, adding rows in row order. The loop over ``j`` is innermost
    (contiguous, vectorised); each ``out[j]`` is a separate running sum, so its order is fixed by ``i`` alone."""
    # Work on slices indexed from 0: an index from range(j0, j1) may be negative as far as Numba knows, so every access
    # would carry a wrap-around select, and the loop would not vectorise (docs/performance.md, *Kernel notes*).
    acc = out[j0:j1]
    w = acc.shape[0]
    zero = fmath.cast(0.0, d)
    for j in range(w):
        acc[j] = zero
    for i in range(d.shape[0]):
        row = d[i, j0:j1]
        for j in range(w):
            acc[j] = acc[j] + row[j]


@njit(**JIT)
def col_sum(d, out):
    """``out[j] = Σ_i d[i, j]`` (the bias gradient ``db``), accumulated in ``d``'s dtype in row order for every
    column (the same order as NumPy's ``d.sum(axis=0)``)."""
    _col_sum_cols(d, out, 0, d.shape[1])


@njit(**JIT_PARALLEL)
def col_sum_par(d, out):
    """:func:`col_sum` with blocks of ``COL_BLOCK`` columns split among threads. Splitting columns, not rows,
    keeps each column's sum in row order, so the result is bit-identical to the serial one."""
    m = d.shape[1]
    nblk = (m + COL_BLOCK - 1) // COL_BLOCK
    for k in prange(nblk):
        j0 = k * COL_BLOCK
        _col_sum_cols(d, out, j0, min(j0 + COL_BLOCK, m))


__all__ = ["bias_act", "bias_act_par", "act_backward", "act_backward_par", "col_sum", "col_sum_par", "COL_BLOCK"]
