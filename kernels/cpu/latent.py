"""The VAE's Gaussian latent: reparameterised sample, KL term and their backward pass, fused per row.

Twins of :func:`fastae.backends.numpy_ref.gaussian_latent`, :func:`~fastae.backends.numpy_ref.gaussian_latent_backward`
and :func:`~fastae.backends.numpy_ref.gaussian_kl_rows`. With ``lv = clip(logvar, lo, hi)``:

* forward:  ``z = mu + exp(lv / 2) * eps`` with ``eps`` the standard normal of ``stream`` at
  ``(key, step, row0 + r, c)``, and ``kl_rows[r] = -1/2 sum_c (1 + lv - mu^2 - exp(lv))``; the caller forms
  ``K = beta * mean(kl_rows)``;
* backward: ``dmu = dz + beta mu inv_n`` and
  ``dlv = dz (z - mu) / 2 + beta inv_n (exp(lv) - 1) / 2`` where ``lo <= logvar <= hi``, else 0
  (the clip has zero gradient outside, and a NaN logvar gets 0 as in the reference's ``where``).

Arithmetic is in the array dtype except ``exp``, evaluated in float64 (``math.exp``, the C library's, below
1 ulp; a libm call per element that does not vectorise, but these arrays are only batch x latent) and rounded to
the dtype, and the row sums of the KL term, which accumulate in float64. Every output is preallocated by the
caller (``z`` and ``kl_rows`` must not alias the inputs). Scalars: ``k0, k1, stream, step`` uint32, ``row0``
int64, ``beta, inv_n`` in the array dtype.
"""

import math

import numpy as np
from numba import prange

from fastae.kernels.cpu._config import JIT_ROW, JIT_ROW_PARALLEL, njit
from fastae.kernels.cpu.philox import fill_normal_row
from fastae.kernels.cpu.signatures import of

__all__ = [
    "gaussian_latent",
    "gaussian_latent_par",
    "gaussian_latent_backward",
    "gaussian_latent_backward_par",
    "gaussian_kl_rows",
    "gaussian_kl_rows_par",
]

# Kernels here compile with _config.JIT_ROW (no 'reassoc'): every value here is evaluated as written (up to FMA
# contraction). With 'reassoc', LLVM regroups a term such as ((1 + lv) - mu^2) - exp(lv) into the running row sum
# differently depending on where a row helper gets inlined: the KL rows of gaussian_latent and of gaussian_kl_rows
# (one shared helper) differed in the last bit. Without it a value cannot depend on the inlining context, which also
# keeps the serial and prange kernels bit-identical. Long sums use fixed multi-lane accumulators instead, which
# vectorise without reordering anything.


@njit(inline="always")
def _clamp(v, lo, hi):
    # Explicit compares, not min/max, so a NaN logvar stays NaN as under np.clip.
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@njit(**JIT_ROW)
def _kl_row(mu, logvar, lo, hi):
    """``-1/2 sum_j (1 + lv - mu^2 - exp(lv))`` of one row, summed in float64 in column order."""
    t = mu.dtype.type
    one = t(1)
    acc = 0.0
    for j in range(mu.shape[0]):
        lv = _clamp(logvar[j], lo, hi)
        m = mu[j]
        e = t(math.exp(np.float64(lv)))
        # Same grouping as the reference, ((1 + lv) - mu^2) - exp(lv), in the array dtype.
        acc += np.float64(one + lv - m * m - e)
    return -0.5 * acc


@njit(**JIT_ROW)
def _latent_row(mu, logvar, lo, hi, k0, k1, stream, step, row, z):
    # z first receives eps (rounded to the dtype, as the reference's rng.normal(dtype=...) does), then is
    # overwritten in place by mu + exp(lv/2) eps.
    fill_normal_row(k0, k1, stream, step, row, 0, z)
    t = mu.dtype.type
    half = t(0.5)
    for j in range(mu.shape[0]):
        lv = _clamp(logvar[j], lo, hi)
        s = t(math.exp(np.float64(half * lv)))
        z[j] = mu[j] + s * z[j]
    return _kl_row(mu, logvar, lo, hi)


@njit(**JIT_ROW)
def _latent_backward_row(dz, z, mu, logvar, lo, hi, beta, inv_n, dmu, dlv):
    t = mu.dtype.type
    half, one, zero = t(0.5), t(1), t(0)
    c = beta * half * inv_n
    for j in range(mu.shape[0]):
        g = dz[j]
        m = mu[j]
        dmu[j] = g + beta * m * inv_n
        v = logvar[j]
        if v >= lo and v <= hi:  # inside the clamp, so lv = v; NaN fails both and gets 0
            e = t(math.exp(np.float64(v)))
            dlv[j] = g * half * (z[j] - m) + c * (e - one)
        else:
            dlv[j] = zero


@njit(of("latent.gaussian_latent"), **JIT_ROW)
def gaussian_latent(mu, logvar, lo, hi, k0, k1, stream, step, row0, z, kl_rows):
    """``z = mu + exp(lv/2) eps`` (eps from ``stream`` at ``(step, row0 + r, c)``) and
    ``kl_rows[r] = -1/2 sum_c (1 + lv - mu^2 - exp(lv))``, with ``lv = clip(logvar, lo, hi)``."""
    for i in range(mu.shape[0]):
        kl_rows[i] = _latent_row(mu[i], logvar[i], lo, hi, k0, k1, stream, step, row0 + i, z[i])


@njit(of("latent.gaussian_latent"), **JIT_ROW_PARALLEL)
def gaussian_latent_par(mu, logvar, lo, hi, k0, k1, stream, step, row0, z, kl_rows):
    """:func:`gaussian_latent` with rows spread over threads (bit-identical)."""
    for i in prange(mu.shape[0]):
        kl_rows[i] = _latent_row(mu[i], logvar[i], lo, hi, k0, k1, stream, step, row0 + i, z[i])


@njit(of("latent.gaussian_latent_backward"), **JIT_ROW)
def gaussian_latent_backward(dz, z, mu, logvar, lo, hi, beta, inv_n, dmu, dlv):
    """``dmu = dz + beta mu inv_n``; ``dlv = dz (z - mu)/2 + beta inv_n (exp(logvar) - 1)/2`` where
    ``lo <= logvar <= hi``, else 0."""
    for i in range(mu.shape[0]):
        _latent_backward_row(dz[i], z[i], mu[i], logvar[i], lo, hi, beta, inv_n, dmu[i], dlv[i])


@njit(of("latent.gaussian_latent_backward"), **JIT_ROW_PARALLEL)
def gaussian_latent_backward_par(dz, z, mu, logvar, lo, hi, beta, inv_n, dmu, dlv):
    """:func:`gaussian_latent_backward` with rows spread over threads (bit-identical)."""
    for i in prange(mu.shape[0]):
        _latent_backward_row(dz[i], z[i], mu[i], logvar[i], lo, hi, beta, inv_n, dmu[i], dlv[i])


@njit(of("latent.gaussian_kl_rows"), **JIT_ROW)
def gaussian_kl_rows(mu, logvar, lo, hi, out):
    """``out[r] = KL(N(mu_r, exp(lv_r)) || N(0, I)) = -1/2 sum_c (1 + lv - mu^2 - exp(lv))``."""
    for i in range(mu.shape[0]):
        out[i] = _kl_row(mu[i], logvar[i], lo, hi)


@njit(of("latent.gaussian_kl_rows"), **JIT_ROW_PARALLEL)
def gaussian_kl_rows_par(mu, logvar, lo, hi, out):
    """:func:`gaussian_kl_rows` with rows spread over threads (bit-identical)."""
    for i in prange(mu.shape[0]):
        out[i] = _kl_row(mu[i], logvar[i], lo, hi)
