"""Tier 2: the in-kernel Philox4x32-10 (kernels/cuda/philox.cuh) gives fastae.rng's 32-bit words bit for bit, and
the noise kernels built on it (kernels/cuda/noise.cu) give the reference's masks exactly and its Gaussian noise
within the error model, on the backend's grids and on tiny ones."""

import numpy as np
import pytest

from fastae import rng
from fastae.backends import numpy_ref as ref

from ...tolerances import close, gaussian_noise_err
from .emulated import LAUNCHES, family, flat_grid

KEYS = [rng.key_from_seed(s) for s in (0, 2026, 2**64 - 1)]
SHAPES = [(1, 1), (3, 5), (7, 9), (2, 1027)]


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("key", KEYS, ids=["seed0", "seed2026", "seedmax"])
def test_random_bits_are_the_references(key, shape, launch):
    n, m = shape
    for stream, step, row0 in ((rng.STREAM_NOISE, 0, 0), (rng.STREAM_EPS, 123456, 77), (4, 2**32 - 1, 2**31)):
        out = np.full(shape, 0xDEADBEEF, dtype=np.uint32)
        grid, block = flat_grid(n * -(-m // 4), launch)
        args = (np.uint32(key[0]), np.uint32(key[1]), np.uint32(stream), np.uint32(step), np.int64(row0))
        family("philox").get_function("random_bits_u32")(grid, block, (*args, np.int64(n), np.int64(m), out))
        np.testing.assert_array_equal(out, rng.random_bits(key, stream, step, n, m, row0=row0))


def _noise(kind, x, level, key, step, row0, launch):
    """The ``{kind}_noise`` kernel's output for ``x`` on the noise stream."""
    n, m = x.shape
    out = np.full_like(x, np.nan)
    grid, block = flat_grid(n * -(-m // 4), launch)
    k = family("noise").get_function(f"{kind}_noise_{'f32' if x.dtype == np.float32 else 'f64'}")
    words = (np.uint32(key[0]), np.uint32(key[1]), np.uint32(rng.STREAM_NOISE), np.uint32(step), np.int64(row0))
    k(grid, block, (x, np.int64(n), np.int64(m), x.dtype.type(level), *words, out))
    return out


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_mask_noise_is_the_references(shape, dtype, launch):
    x = np.random.default_rng(0).uniform(0.1, 1, shape).astype(dtype)
    got = _noise("mask", x, 0.3, KEYS[1], 9, 5, launch)
    np.testing.assert_array_equal(got, ref.mask_noise(x, 0.3, KEYS[1], 9, row0=5))


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_noise_is_the_references(shape, dtype, launch):
    x = np.random.default_rng(1).normal(size=shape).astype(dtype)
    got = _noise("gaussian", x, 0.5, KEYS[2], 3, 0, launch)
    want = ref.gaussian_noise(x.astype(np.float64), 0.5, KEYS[2], 3)
    close(got, want, dtype, gaussian_noise_err(x, want, dtype), "gaussian_noise")
