"""Regularisers on the code layer and L2 weight decay, fused into one or two passes each.

Twins of :func:`fastae.backends.numpy_ref.l1_penalty`, :func:`~fastae.backends.numpy_ref.kl_sparsity`,
:func:`~fastae.backends.numpy_ref.contractive_penalty` and :func:`~fastae.backends.numpy_ref.weight_decay`.
``h`` is the code batch ``(B, k)``, ``W`` the first encoder weight ``(k, n_in)``; ``inv_n`` is ``1 / B`` and every
scalar (``lam``, ``rho``, ``beta``, ``wd``, ``inv_n``) comes in the array dtype. Elementwise arithmetic stays in
that dtype; sums accumulate in float64, each in a fixed order (down a column in row order; along a row in column
order, or in four interleaved lanes for the long rows of ``W``), so no result depends on the thread count.
Kernels return per-row parts where the penalty is a batch mean (the caller forms ``lam * mean``) and a float64
value where the penalty is a sum over columns or weights. All outputs are preallocated by the caller and must not
alias the inputs.
"""

import math

import numpy as np
from numba import prange

from fastae.kernels.cpu._config import JIT_ROW, JIT_ROW_PARALLEL, SIGMOID, TANH, njit
from fastae.kernels.cpu.signatures import of

__all__ = [
    "l1_penalty",
    "l1_penalty_par",
    "kl_sparsity",
    "contractive",
    "contractive_par",
    "weight_decay",
    "weight_decay_par",
]

# Kernels here compile with _config.JIT_ROW (no 'reassoc') (see latent.py: with it, a row helper's result changed in
# the last bit with the context LLVM inlined it into). Values are evaluated as written, up to FMA contraction; the
# long sums over rows of W use fixed four-lane accumulators instead, which vectorise without reordering anything.


# ---------------------------------------------------------------------------------------------------------------
# L1 on the code: P = lam (1/B) sum |h|, dP/dh = lam sign(h) / B
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT_ROW)
def _l1_row(h, lam, inv_n, dh):
    t = h.dtype.type
    one, zero = t(1), t(0)
    acc = 0.0
    for j in range(h.shape[0]):
        v = h[j]
        # np.sign, written out: sign(0) = 0 and sign(NaN) = NaN.
        if v > zero:
            sg = one
        elif v < zero:
            sg = -one
        elif v == zero:
            sg = zero
        else:
            sg = v
        dh[j] = lam * sg * inv_n
        acc += np.float64(abs(v))
    return acc


@njit(of("penalties.l1_penalty"), **JIT_ROW)
def l1_penalty(h, lam, inv_n, dh, row_abs):
    """``dh = lam sign(h) inv_n`` and ``row_abs[i] = sum_j |h_ij|`` (float64 sum, stored in the dtype);
    the penalty is ``lam * mean(row_abs)``."""
    for i in range(h.shape[0]):
        row_abs[i] = _l1_row(h[i], lam, inv_n, dh[i])


@njit(of("penalties.l1_penalty"), **JIT_ROW_PARALLEL)
def l1_penalty_par(h, lam, inv_n, dh, row_abs):
    """:func:`l1_penalty` with rows spread over threads (bit-identical)."""
    for i in prange(h.shape[0]):
        row_abs[i] = _l1_row(h[i], lam, inv_n, dh[i])


# ---------------------------------------------------------------------------------------------------------------
# KL sparsity on the mean activations
# ---------------------------------------------------------------------------------------------------------------
@njit(of("penalties.kl_sparsity"), **JIT_ROW)
def kl_sparsity(h, rho, beta, inv_n, eps, dh, rho_hat):
    """KL sparsity penalty on ``rho_hat_j = clip((1/B) sum_i h_ij, eps, 1 - eps)`` (``eps``: float64).

    Writes ``rho_hat`` (column sums in row order, in float64, divided by B, clipped, rounded to the dtype) and
    ``dh_ij = beta (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)) inv_n`` (the same for every row, in the dtype).
    Returns ``P = beta sum_j [rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j))]`` as float64,
    summed in column order from the stored ``rho_hat``.
    """
    t = h.dtype.type
    n, k = h.shape
    one = t(1)
    col = np.zeros(k, dtype=np.float64)
    for i in range(n):
        for j in range(k):
            col[j] += h[i, j]
    # Rounding is monotonic, so clipping the float64 mean and then rounding equals the reference's clip, in the
    # dtype, of the rounded mean against the rounded bounds.
    for j in range(k):
        m = col[j] / n
        if m < eps:
            m = eps
        elif m > 1.0 - eps:
            m = 1.0 - eps
        rho_hat[j] = m
    rho64 = np.float64(rho)
    value = 0.0
    for j in range(k):
        r = np.float64(rho_hat[j])
        value += rho64 * math.log(rho64 / r) + (1.0 - rho64) * math.log((1.0 - rho64) / (1.0 - r))
    # The gradient row is the same for every example: compute it once into row 0, then copy it down.
    if n > 0:
        for j in range(k):
            rh = rho_hat[j]
            dh[0, j] = beta * (-rho / rh + (one - rho) / (one - rh)) * inv_n
        for i in range(1, n):
            for j in range(k):
                dh[i, j] = dh[0, j]
    return np.float64(beta) * value


# ---------------------------------------------------------------------------------------------------------------
# Contractive penalty of one layer h = f(x W^T + b), f sigmoid or tanh
# ---------------------------------------------------------------------------------------------------------------
@njit(inline="always")
def _d1_d2(v, act, one, two, nan):
    """``(f'(a), f''(a))`` written through ``h = f(a)`` (table of fastae.activations); NaN for other codes.

    ``one, two, nan`` are constants of the array dtype, passed in so that no float64 literal promotes the math.
    """
    if act == SIGMOID:
        d1 = v * (one - v)
        return d1, d1 * (one - two * v)
    if act == TANH:
        d1 = one - v * v
        return d1, (-two * v) * d1
    # Kernels do not validate (the backend does); an activation without f'' gives NaN rather than a wrong number.
    return nan, nan


@njit(**JIT_ROW)
def _sumsq_row(w):
    """``sum_i w_i^2`` in float64 over four interleaved lanes (``i % 4``), combined as ``(s0 + s1) + (s2 + s3)``:
    a fixed order that LLVM can still keep in one vector register (no 'reassoc' needed)."""
    n = w.shape[0]
    n4 = n - n % 4
    s0 = s1 = s2 = s3 = 0.0
    for i in range(0, n4, 4):
        a, b, c, d = np.float64(w[i]), np.float64(w[i + 1]), np.float64(w[i + 2]), np.float64(w[i + 3])
        s0 += a * a
        s1 += b * b
        s2 += c * c
        s3 += d * d
    for i in range(n4, n):
        a = np.float64(w[i])
        s0 += a * a
    return (s0 + s1) + (s2 + s3)


@njit(**JIT_ROW)
def _contractive_row(h, s, act, c, dz):
    """``dz_j = c s_j f'_j f''_j`` (dtype) and returns ``sum_j f'_j^2 s_j`` (float64)."""
    t = h.dtype.type
    one, two, nan = t(1), t(2), t(np.nan)
    acc = 0.0
    for j in range(h.shape[0]):
        d1, d2 = _d1_d2(h[j], act, one, two, nan)
        sj = s[j]
        dz[j] = c * sj * d1 * d2
        acc += np.float64(d1 * d1) * np.float64(sj)
    return acc


@njit(**JIT_ROW)
def _d1sq_col_means(h, act, out):
    """``out_j = (1/B) sum_i f'(a_ij)^2``: float64 column sums in row order (serial in both kernels)."""
    t = h.dtype.type
    one, two, nan = t(1), t(2), t(np.nan)
    n, k = h.shape
    acc = np.zeros(k, dtype=np.float64)
    for i in range(n):
        for j in range(k):
            d1, _ = _d1_d2(h[i, j], act, one, two, nan)
            acc[j] += np.float64(d1 * d1)
    for j in range(k):
        out[j] = acc[j] / n


@njit(**JIT_ROW)
def _dW_row(w, two_lam, m, dW):
    for i in range(w.shape[0]):
        dW[i] = two_lam * w[i] * m


@njit(of("penalties.contractive"), **JIT_ROW)
def contractive(h, W, act, lam, inv_n, dW_direct, dz, row_vals):
    """Contractive penalty pieces, as :func:`numpy_ref.contractive_penalty` (``act`` = SIGMOID or TANH code).

    With ``s_j = sum_i W_ji^2`` (float64 sum, rounded to the dtype) and ``f'``, ``f''`` through ``h``:

    * ``row_vals[b] = sum_j f'(a_bj)^2 s_j``; the penalty is ``lam * mean(row_vals)``;
    * ``dW_direct_ji = 2 lam W_ji m_j`` with ``m_j = (1/B) sum_b f'(a_bj)^2``;
    * ``dz_bj = (2 lam inv_n) s_j f'(a_bj) f''(a_bj)``.
    """
    t = h.dtype.type
    k = W.shape[0]
    s = np.empty(k, dtype=h.dtype)
    for j in range(k):
        s[j] = _sumsq_row(W[j])
    two_lam = t(2) * lam
    c = two_lam * inv_n
    for b in range(h.shape[0]):
        row_vals[b] = _contractive_row(h[b], s, act, c, dz[b])
    m = np.empty(k, dtype=h.dtype)
    _d1sq_col_means(h, act, m)
    for j in range(k):
        _dW_row(W[j], two_lam, m[j], dW_direct[j])


@njit(of("penalties.contractive"), **JIT_ROW_PARALLEL)
def contractive_par(h, W, act, lam, inv_n, dW_direct, dz, row_vals):
    """:func:`contractive` with rows of ``W`` and of ``h`` spread over threads; the column means stay serial
    (a fixed row order), so the result is bit-identical."""
    t = h.dtype.type
    k = W.shape[0]
    s = np.empty(k, dtype=h.dtype)
    for j in prange(k):
        s[j] = _sumsq_row(W[j])
    two_lam = t(2) * lam
    c = two_lam * inv_n
    for b in prange(h.shape[0]):
        row_vals[b] = _contractive_row(h[b], s, act, c, dz[b])
    m = np.empty(k, dtype=h.dtype)
    _d1sq_col_means(h, act, m)
    for j in prange(k):
        _dW_row(W[j], two_lam, m[j], dW_direct[j])


# ---------------------------------------------------------------------------------------------------------------
# L2 weight decay
# ---------------------------------------------------------------------------------------------------------------
@njit(**JIT_ROW)
def _decay_row(w, g, wd):
    """``g += wd w`` and returns ``sum w^2`` (float64, the lane order of :func:`_sumsq_row`)."""
    for j in range(w.shape[0]):
        g[j] += wd * w[j]
    # A second pass over a row still in L1 keeps both loops simple enough to vectorise.
    return _sumsq_row(w)


@njit(**JIT_ROW)
def _sum(v):
    # One shared summation of the per-row partials, so the serial and parallel kernels add them identically.
    total = 0.0
    for i in range(v.shape[0]):
        total += v[i]
    return total


@njit(of("penalties.weight_decay"), **JIT_ROW)
def weight_decay(W, g, wd):
    """``g += wd W`` in place; returns ``0.5 wd sum W^2`` (float64; per-row float64 sums, then added over rows)."""
    n = W.shape[0]
    rows = np.empty(n, dtype=np.float64)
    for i in range(n):
        rows[i] = _decay_row(W[i], g[i], wd)
    return 0.5 * np.float64(wd) * _sum(rows)


@njit(of("penalties.weight_decay"), **JIT_ROW_PARALLEL)
def weight_decay_par(W, g, wd):
    """:func:`weight_decay` with rows spread over threads; the row sums are added serially in row order."""
    n = W.shape[0]
    rows = np.empty(n, dtype=np.float64)
    for i in prange(n):
        rows[i] = _decay_row(W[i], g[i], wd)
    return 0.5 * np.float64(wd) * _sum(rows)
