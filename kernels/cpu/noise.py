"""Corruption for denoising autoencoders, drawing its noise in-kernel from the addressed Philox stream.

Twins of :func:`fastae.backends.numpy_ref.mask_noise` and :func:`~fastae.backends.numpy_ref.gaussian_noise`. The
noise of element ``(r, c)`` is the draw of :data:`fastae.rng.STREAM_NOISE` at ``(key, step, row0 + r, c)``, so a
minibatch corrupted here equals the NumPy reference's, and the same rows give the same noise however they are
batched or split across threads.

Arguments: ``x`` and ``out`` C-contiguous float32 or float64 of the same shape, ``out`` preallocated and **not
aliasing** ``x`` (each row of ``out`` first receives the noise, then is combined with ``x``); ``p`` / ``sigma`` in
the array dtype; ``k0, k1, step`` uint32 words; ``row0`` int64 (the absolute index of ``x``'s first row).
"""

from numba import prange

from fastae import rng
from fastae.kernels.cpu._config import JIT_ROW, JIT_ROW_PARALLEL, njit
from fastae.kernels.cpu.philox import fill_normal_row, fill_uniform_row
from fastae.kernels.cpu.signatures import of

__all__ = ["mask_noise", "mask_noise_par", "gaussian_noise", "gaussian_noise_par"]

# Kernels here compile with _config.JIT_ROW (no 'reassoc'): values are evaluated as written, up to FMA
# contraction, so they cannot depend on where LLVM inlines a row helper.

_STREAM = rng.STREAM_NOISE


@njit(**JIT_ROW)
def _mask_row(x, p, k0, k1, step, row, out):
    # Two passes over one row (both in L1): the Philox pass vectorises on its own and the select pass is a plain
    # compare-and-blend. The uniform is exact in float32, so comparing it in the array dtype is the reference's
    # comparison.
    fill_uniform_row(k0, k1, _STREAM, step, row, 0, out)
    zero = x.dtype.type(0)
    for j in range(x.shape[0]):
        out[j] = x[j] if out[j] >= p else zero


@njit(**JIT_ROW)
def _gauss_row(x, sigma, k0, k1, step, row, out):
    # eps is rounded to the array dtype first (the store), then x + sigma * eps is formed in that dtype, as the
    # reference does; the shared 'contract' flag may fuse it into one FMA (a last-bit difference, never a
    # difference between the serial and parallel kernels, which compile the same body).
    fill_normal_row(k0, k1, _STREAM, step, row, 0, out)
    for j in range(x.shape[0]):
        out[j] = x[j] + sigma * out[j]


@njit(of("noise.mask_noise"), **JIT_ROW)
def mask_noise(x, p, k0, k1, step, row0, out):
    """Masking noise: ``out = x where u >= p else 0``, ``u`` the uniform of STREAM_NOISE at ``(step, row0 + r, c)``."""
    for i in range(x.shape[0]):
        _mask_row(x[i], p, k0, k1, step, row0 + i, out[i])


@njit(of("noise.mask_noise"), **JIT_ROW_PARALLEL)
def mask_noise_par(x, p, k0, k1, step, row0, out):
    """:func:`mask_noise` with rows spread over threads (bit-identical)."""
    for i in prange(x.shape[0]):
        _mask_row(x[i], p, k0, k1, step, row0 + i, out[i])


@njit(of("noise.gaussian_noise"), **JIT_ROW)
def gaussian_noise(x, sigma, k0, k1, step, row0, out):
    """Additive noise: ``out = x + sigma * eps``, ``eps`` the standard normal of STREAM_NOISE at
    ``(step, row0 + r, c)``."""
    for i in range(x.shape[0]):
        _gauss_row(x[i], sigma, k0, k1, step, row0 + i, out[i])


@njit(of("noise.gaussian_noise"), **JIT_ROW_PARALLEL)
def gaussian_noise_par(x, sigma, k0, k1, step, row0, out):
    """:func:`gaussian_noise` with rows spread over threads (bit-identical)."""
    for i in prange(x.shape[0]):
        _gauss_row(x[i], sigma, k0, k1, step, row0 + i, out[i])
