"""Output layer fused with its loss: bias, output nonlinearity, loss and its gradient in one pass.

Math: :func:`fastae.backends.numpy_ref.output_loss_grad` and ``output_row_loss``. The product ``a = h @ W.T``
(or ``h @ W``) comes from BLAS; with ``z = a[i, j] + c[j]`` these kernels compute, for

* ``"bce"`` (sigmoid + cross-entropy from logits): ``δ = (σ(z) − x)·scale`` and
  ``ℓ = max(z, 0) − x z + log1p(exp(−|z|))``, one ``exp`` per element shared by ``σ`` and the softplus;
* ``"mse"`` (identity + squared error): ``δ = (z − x)·scale`` and ``ℓ = ½ (z − x)²``,

and ``row_loss[i] = Σ_j ℓ_ij``. The caller passes ``scale = 1/B`` and forms ``L = (Σ_i row_loss[i]) / B`` in a
fixed order.

Row sums: accumulated in the arrays' dtype, in the fixed order of :func:`_ordered_sum` (pairwise halving down to
32 terms, then left to right). The row bodies are compiled without ``reassoc`` (``_config.JIT_ROW``), so that
order is the order computed whatever context LLVM inlines them into; this is what makes the serial and ``_par``
kernels bit-identical. (With ``reassoc`` the vectorised reduction was re-associated differently inlined into the
serial loop and into the parfor gufunc.) The elementwise terms go to a scratch row first: the element loop and
each halving step are then plain elementwise loops, which vectorise without ``reassoc``.

``delta`` may be the very array ``a`` (the backend reuses the product's memory): every element is read before
it is written. That case runs a loop over one array, because with two array arguments that might overlap, LLVM
guards its vector loop with a run-time overlap test, and identical arrays would fail the test and run the scalar
fallback. Same arithmetic, same bits.
"""

import numpy as np
from numba import prange

from . import fmath
from ._config import JIT, JIT_PARALLEL, JIT_ROW, njit

# Rows per parallel task (each task allocates one scratch row).
ROW_BLOCK = 16
# _ordered_sum adds at most this many terms left to right (a dependent chain: each add waits for the one before);
# longer rows are first halved pairwise by vectorised elementwise loops.
SEQ_MAX = 32


@njit(**JIT_ROW)
def _ordered_sum(t):
    """``Σ_k t[k]`` in a fixed order, overwriting ``t``: while more than ``SEQ_MAX`` terms remain, fold the back
    half onto the front (``t[k] += t[k + w − h]`` for ``k < h = w // 2``; the middle term of an odd ``w`` stays),
    then add the remaining terms left to right. Each fold is an elementwise loop, so the sum vectorises with no
    ``reassoc`` and its result does not depend on how LLVM compiled it."""
    w = t.shape[0]
    while w > SEQ_MAX:
        h = w // 2
        front = t[:h]
        back = t[w - h : w]
        for k in range(h):
            front[k] = front[k] + back[k]
        w -= h
    s = fmath.cast(0.0, t)
    for k in range(w):
        s = s + t[k]
    return s


# ---------------------------------------------------------------------------------------------------------------
# Per-row bodies: elementwise terms into the scratch row t (length m), then the ordered row sum. The in-place
# variants take a single array for a and delta.
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT_ROW)
def _bce_row(a, c, x, delta, scale, i, t):
    ar, xr, dr = a[i], x[i], delta[i]
    zero = fmath.cast(0.0, a)
    for j in range(ar.shape[0]):
        z = ar[j] + c[j]
        xv = xr[j]
        e = fmath.exp(-abs(z))  # shared by the sigmoid and the softplus: e in (0, 1]
        dr[j] = (fmath.sigmoid_from_exp(z, e) - xv) * scale
        mz = zero if z < zero else z
        t[j] = (mz - xv * z) + fmath.log1p_small(e)
    return _ordered_sum(t)


@njit(**JIT_ROW)
def _bce_row_inplace(a, c, x, scale, i, t):
    ar, xr = a[i], x[i]
    zero = fmath.cast(0.0, a)
    for j in range(ar.shape[0]):
        z = ar[j] + c[j]
        xv = xr[j]
        e = fmath.exp(-abs(z))
        ar[j] = (fmath.sigmoid_from_exp(z, e) - xv) * scale
        mz = zero if z < zero else z
        t[j] = (mz - xv * z) + fmath.log1p_small(e)
    return _ordered_sum(t)


@njit(**JIT_ROW)
def _bce_row_loss(a, c, x, i, t):
    ar, xr = a[i], x[i]
    zero = fmath.cast(0.0, a)
    for j in range(ar.shape[0]):
        z = ar[j] + c[j]
        mz = zero if z < zero else z
        t[j] = (mz - xr[j] * z) + fmath.log1p_small(fmath.exp(-abs(z)))
    return _ordered_sum(t)


@njit(**JIT_ROW)
def _mse_row(a, c, x, delta, scale, i, t):
    ar, xr, dr = a[i], x[i], delta[i]
    half = fmath.cast(0.5, a)
    for j in range(ar.shape[0]):
        d = (ar[j] + c[j]) - xr[j]
        dr[j] = d * scale
        t[j] = (half * d) * d
    return _ordered_sum(t)


@njit(**JIT_ROW)
def _mse_row_inplace(a, c, x, scale, i, t):
    ar, xr = a[i], x[i]
    half = fmath.cast(0.5, a)
    for j in range(ar.shape[0]):
        d = (ar[j] + c[j]) - xr[j]
        ar[j] = d * scale
        t[j] = (half * d) * d
    return _ordered_sum(t)


@njit(**JIT_ROW)
def _mse_row_loss(a, c, x, i, t):
    ar, xr = a[i], x[i]
    half = fmath.cast(0.5, a)
    for j in range(ar.shape[0]):
        d = (ar[j] + c[j]) - xr[j]
        t[j] = (half * d) * d
    return _ordered_sum(t)


@njit(**JIT_ROW)
def _fused_rows(a, c, x, delta, scale, row_loss, is_bce, inplace, i0, i1):
    """Rows ``i0 <= i < i1`` of :func:`bce_output` / :func:`mse_output`, with one scratch row."""
    t = np.empty(a.shape[1], dtype=a.dtype)
    if is_bce:
        if inplace:
            for i in range(i0, i1):
                row_loss[i] = _bce_row_inplace(a, c, x, scale, i, t)
        else:
            for i in range(i0, i1):
                row_loss[i] = _bce_row(a, c, x, delta, scale, i, t)
    else:
        if inplace:
            for i in range(i0, i1):
                row_loss[i] = _mse_row_inplace(a, c, x, scale, i, t)
        else:
            for i in range(i0, i1):
                row_loss[i] = _mse_row(a, c, x, delta, scale, i, t)


@njit(**JIT_ROW)
def _loss_rows(a, c, x, is_bce, row_loss, i0, i1):
    """Rows ``i0 <= i < i1`` of :func:`output_rows`, with one scratch row."""
    t = np.empty(a.shape[1], dtype=a.dtype)
    if is_bce:
        for i in range(i0, i1):
            row_loss[i] = _bce_row_loss(a, c, x, i, t)
    else:
        for i in range(i0, i1):
            row_loss[i] = _mse_row_loss(a, c, x, i, t)


@njit(**JIT)
def _same_array(a, b):
    """True iff ``a`` and ``b`` start at the same address (the ``delta is a`` case)."""
    return a.ctypes.data == b.ctypes.data


# ---------------------------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT)
def bce_output(a, c, x, delta, scale, row_loss):
    """Sigmoid output with cross-entropy, one pass. With ``z = a[i, j] + c[j]`` and ``e = exp(−|z|)``:
    ``delta[i, j] = (σ(z) − x[i, j])·scale`` and ``row_loss[i] = Σ_j max(z, 0) − x z + log1p(e)``.
    ``a`` is not modified unless ``delta`` is ``a``."""
    _fused_rows(a, c, x, delta, fmath.cast(scale, a), row_loss, True, _same_array(a, delta), 0, a.shape[0])


@njit(**JIT_PARALLEL)
def bce_output_par(a, c, x, delta, scale, row_loss):
    """:func:`bce_output` with blocks of ``ROW_BLOCK`` rows split among threads; bit-identical to it."""
    scale = fmath.cast(scale, a)
    inplace = _same_array(a, delta)
    n = a.shape[0]
    for b in prange((n + ROW_BLOCK - 1) // ROW_BLOCK):
        i0 = b * ROW_BLOCK
        _fused_rows(a, c, x, delta, scale, row_loss, True, inplace, i0, min(i0 + ROW_BLOCK, n))


@njit(**JIT)
def mse_output(a, c, x, delta, scale, row_loss):
    """Identity output with squared error, one pass. With ``z = a[i, j] + c[j]``:
    ``delta[i, j] = (z − x[i, j])·scale`` and ``row_loss[i] = Σ_j ½ (z − x[i, j])²``."""
    _fused_rows(a, c, x, delta, fmath.cast(scale, a), row_loss, False, _same_array(a, delta), 0, a.shape[0])


@njit(**JIT_PARALLEL)
def mse_output_par(a, c, x, delta, scale, row_loss):
    """:func:`mse_output` with blocks of ``ROW_BLOCK`` rows split among threads; bit-identical to it."""
    scale = fmath.cast(scale, a)
    inplace = _same_array(a, delta)
    n = a.shape[0]
    for b in prange((n + ROW_BLOCK - 1) // ROW_BLOCK):
        i0 = b * ROW_BLOCK
        _fused_rows(a, c, x, delta, scale, row_loss, False, inplace, i0, min(i0 + ROW_BLOCK, n))


@njit(**JIT)
def output_rows(a, c, x, is_bce, row_loss):
    """Only the per-row losses (``score_samples``): ``row_loss[i] = Σ_j ℓ(a[i, j] + c[j], x[i, j])`` with the
    cross-entropy ``ℓ`` of :func:`bce_output` if ``is_bce`` else the squared error of :func:`mse_output`; the
    same terms and the same summation order as those kernels, so the same bits. ``a`` is not modified."""
    _loss_rows(a, c, x, is_bce, row_loss, 0, a.shape[0])


@njit(**JIT_PARALLEL)
def output_rows_par(a, c, x, is_bce, row_loss):
    """:func:`output_rows` with blocks of ``ROW_BLOCK`` rows split among threads; bit-identical to it."""
    n = a.shape[0]
    for b in prange((n + ROW_BLOCK - 1) // ROW_BLOCK):
        i0 = b * ROW_BLOCK
        _loss_rows(a, c, x, is_bce, row_loss, i0, min(i0 + ROW_BLOCK, n))


__all__ = [
    "bce_output",
    "bce_output_par",
    "mse_output",
    "mse_output_par",
    "output_rows",
    "output_rows_par",
    "ROW_BLOCK",
    "SEQ_MAX",
]
