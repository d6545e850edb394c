"""Corruption kernels (kernels/cpu/noise.py) against fastae.backends.numpy_ref.

Masking noise is exact in both dtypes (the uniforms are exact and the kernel only selects). Gaussian noise is
compared with the float64 reference computed from the same inputs, within tests/tolerances.py (``x + σ ε``: two
terms, the draw carrying its own roundings). Serial and parallel kernels must agree bit for bit for any thread count.
"""

import numba
import numpy as np
import pytest

from fastae import rng
from fastae.backends import numpy_ref as ref
from fastae.kernels.cpu import noise

from ..tolerances import close, gaussian_noise_err
from .helpers import same_bits

SHAPES = [(1, 1), (7, 3), (33, 17), (1025, 9)]
DTYPES = [np.float32, np.float64]
KEY = rng.key_from_seed(0xFEEDFACECAFEBEEF)
K0, K1 = np.uint32(KEY[0]), np.uint32(KEY[1])


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, size=shape).astype(dtype)


def run(name, x, level, step, row0, par=False):
    out = np.full_like(x, np.nan)
    kernel = getattr(noise, name + ("_par" if par else ""))
    kernel(x, x.dtype.type(level), K0, K1, np.uint32(step), np.int64(row0), out)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
def test_mask_noise_exact(dtype, shape, p):
    x = data(shape, dtype)
    got = run("mask_noise", x, p, step=17, row0=1000)
    want = ref.mask_noise(x, p, KEY, 17, row0=1000)
    assert got.dtype == x.dtype
    assert same_bits(got, want)


def test_mask_noise_edge_probabilities():
    x = data((33, 17), np.float32) + np.float32(3)  # no zeros in x itself
    assert np.array_equal(run("mask_noise", x, 0.0, 1, 0), x)
    assert not run("mask_noise", x, 1.0, 1, 0).any()  # every u < 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [0.1, 1.0])
def test_gaussian_noise_matches_reference(dtype, shape, sigma):
    x = data(shape, dtype, seed=1)
    got = run("gaussian_noise", x, sigma, step=3, row0=5)
    # float64 reference on the very values the kernel saw
    want = ref.gaussian_noise(x.astype(np.float64), sigma, KEY, 3, row0=5)
    close(got, want, dtype, gaussian_noise_err(x, want, dtype), "gaussian noise")


def test_gaussian_noise_zero_sigma_is_identity():
    x = data((33, 17), np.float64)
    assert np.array_equal(run("gaussian_noise", x, 0.0, 9, 0), x)


@pytest.mark.parametrize("name", ["mask_noise", "gaussian_noise"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_do_not_depend_on_batching(name, dtype):
    """Rows a..b corrupted as their own batch (row0 = a) equal those rows of the whole batch."""
    x = data((40, 13), dtype, seed=2)
    whole = run(name, x, 0.3, step=8, row0=100)
    for a, b in [(0, 1), (1, 7), (7, 40)]:
        part = run(name, np.ascontiguousarray(x[a:b]), 0.3, step=8, row0=100 + a)
        assert same_bits(part, whole[a:b])


def test_steps_and_rows_give_different_noise():
    x = np.ones((8, 8), np.float64)
    a = run("gaussian_noise", x, 1.0, step=1, row0=0)
    assert not np.array_equal(a, run("gaussian_noise", x, 1.0, step=2, row0=0))
    assert not np.array_equal(a, run("gaussian_noise", x, 1.0, step=1, row0=8))


@pytest.mark.parametrize("name", ["mask_noise", "gaussian_noise"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_parallel_bit_identical(name, dtype, shape):
    x = data(shape, dtype, seed=3)
    serial = run(name, x, 0.4, step=4, row0=77)
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            assert same_bits(run(name, x, 0.4, step=4, row0=77, par=True), serial)
    finally:
        numba.set_num_threads(threads)
