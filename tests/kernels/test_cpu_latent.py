"""Gaussian-latent kernels (kernels/cpu/latent.py) against fastae.backends.numpy_ref.

Both dtypes are compared with the float64 reference from the same inputs within tests/tolerances.py's error model:
each KL row is a sum of the ``4k`` parts ``1, ℓ, −μ², −exp ℓ``, and the elementwise sums ``z``, ``dμ``, ``d log σ²``
are bounded by the magnitudes of their terms. Clamped and NaN log-variances are included, so both sides of the
clip run. Serial and parallel kernels must agree bit for bit for any thread count.
"""

import numba
import numpy as np
import pytest

from fastae import constants, rng
from fastae.backends import numpy_ref as ref
from fastae.kernels.cpu import latent

from ..tolerances import close, f64, gaussian_kl_rows_err, gaussian_latent_backward_err, gaussian_latent_err
from .helpers import same_bits


def _bounds(a):
    """The clamp of log σ² in ``a``'s dtype, as the backend passes it."""
    t = a.dtype.type
    return t(constants.LOGVAR_MIN), t(constants.LOGVAR_MAX)


SHAPES = [(1, 1), (7, 3), (33, 17), (1025, 9)]
DTYPES = [np.float32, np.float64]
KEY = rng.key_from_seed(12345)
K0, K1 = np.uint32(KEY[0]), np.uint32(KEY[1])


def inputs(shape, dtype, seed=0, clamped=True):
    r = np.random.default_rng(seed)
    mu = r.uniform(-1, 1, size=shape)
    lv = r.uniform(-3, 3, size=shape)
    dz = r.uniform(-1, 1, size=shape)
    if clamped and lv.size >= 3:
        # both sides of the clamp, and exactly on its bounds (inside: the gradient flows)
        lv.flat[0], lv.flat[1], lv.flat[2] = -45.0, 27.0, constants.LOGVAR_MAX
        if lv.size > 3:
            lv.flat[3] = constants.LOGVAR_MIN
    return [a.astype(dtype) for a in (mu, lv, dz)]


def forward(mu, lv, stream, step, row0, par=False):
    z = np.full_like(mu, np.nan)
    rows = np.full(mu.shape[0], np.nan, dtype=mu.dtype)
    kernel = latent.gaussian_latent_par if par else latent.gaussian_latent
    kernel(mu, lv, *_bounds(mu), K0, K1, np.uint32(stream), np.uint32(step), np.int64(row0), z, rows)
    return z, rows


def backward(dz, z, mu, lv, beta, par=False):
    t = mu.dtype.type
    dmu, dlv = np.full_like(mu, np.nan), np.full_like(mu, np.nan)
    kernel = latent.gaussian_latent_backward_par if par else latent.gaussian_latent_backward
    kernel(dz, z, mu, lv, *_bounds(mu), t(beta), t(1.0 / mu.shape[0]), dmu, dlv)
    return dmu, dlv


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("stream", [rng.STREAM_EPS, rng.STREAM_SAMPLE])
def test_forward_matches_reference(dtype, shape, stream):
    mu, lv, _ = inputs(shape, dtype)
    z, rows = forward(mu, lv, stream, step=6, row0=31)
    want_z, _ = ref.gaussian_latent(*f64(mu, lv), 1.0, KEY, 6, row0=31, stream=stream)
    close(z, want_z, dtype, err=gaussian_latent_err(mu, lv, 1.0, want_z, dtype)[0], what="z")
    close(rows, ref.gaussian_kl_rows(*f64(mu, lv)), dtype, err=gaussian_kl_rows_err(mu, lv, dtype), what="KL rows")


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_kl_mean_matches_reference_value(dtype):
    mu, lv, _ = inputs((33, 17), dtype)
    beta = 0.7
    _, rows = forward(mu, lv, rng.STREAM_EPS, 2, 0)
    want_z, K = ref.gaussian_latent(*f64(mu, lv), beta, KEY, 2)
    err = gaussian_latent_err(mu, lv, beta, want_z, dtype)[1]
    close(dtype(beta * rows.astype(np.float64).mean()), K, dtype, err=err, what="K")


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_uses_addressed_eps(dtype):
    """With mu = 0 and logvar = 0, z is exactly the reference's normal draw in the dtype."""
    mu = np.zeros((9, 11), dtype=dtype)
    z, rows = forward(mu, mu.copy(), rng.STREAM_EPS, 5, 40)
    eps = rng.normal(KEY, rng.STREAM_EPS, 5, 9, 11, dtype=dtype, row0=40)
    if dtype is np.float32:
        assert np.array_equal(z, eps)
    else:
        close(z, eps, dtype, what="eps")  # NumPy's SIMD log vs libm: a few ulps
    assert np.array_equal(rows, np.zeros(9, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_backward_matches_reference(dtype, shape, beta):
    mu, lv, dz = inputs(shape, dtype, seed=1)
    z, _ = forward(mu, lv, rng.STREAM_EPS, 1, 0)
    dmu, dlv = backward(dz, z, mu, lv, beta)
    want_mu, want_lv = ref.gaussian_latent_backward(*f64(dz, z, mu, lv), beta)
    err_mu, err_lv = gaussian_latent_backward_err(dz, z, mu, lv, beta, dtype)
    close(dmu, want_mu, dtype, err=err_mu, what="dmu")
    close(dlv, want_lv, dtype, err=err_lv, what="dlogvar")


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_zero_outside_clamp_and_for_nan(dtype):
    mu, lv, dz = inputs((7, 3), dtype, seed=2, clamped=False)
    lv[0, 0], lv[1, 1], lv[2, 2] = -31, 21, np.nan
    z = mu.copy()
    _, dlv = backward(dz, z, mu, lv, 1.0)
    assert dlv[0, 0] == 0 and dlv[1, 1] == 0 and dlv[2, 2] == 0
    inside = np.ones_like(lv, dtype=bool)
    inside[0, 0] = inside[1, 1] = inside[2, 2] = False
    assert np.all(dlv[inside] != 0)


def test_nan_logvar_propagates_forward():
    mu, lv, _ = inputs((7, 3), np.float64, clamped=False)
    lv[3, 1] = np.nan
    z, rows = forward(mu, lv, rng.STREAM_EPS, 0, 0)
    want_z, _ = ref.gaussian_latent(mu, lv, 1.0, KEY, 0)
    assert np.array_equal(np.isnan(z), np.isnan(want_z)) and np.isnan(z[3, 1])
    assert np.isnan(rows[3]) and np.isfinite(np.delete(rows, 3)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_kl_rows_matches_reference(dtype, shape):
    mu, lv, _ = inputs(shape, dtype, seed=3)
    for kernel in (latent.gaussian_kl_rows, latent.gaussian_kl_rows_par):
        out = np.full(shape[0], np.nan, dtype=dtype)
        kernel(mu, lv, *_bounds(mu), out)
        close(
            out,
            ref.gaussian_kl_rows(*f64(mu, lv)),
            dtype,
            err=gaussian_kl_rows_err(mu, lv, dtype),
            what=kernel.__name__,
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_parallel_bit_identical(dtype, shape):
    mu, lv, dz = inputs(shape, dtype, seed=4)
    z, rows = forward(mu, lv, rng.STREAM_EPS, 3, 12)
    dmu, dlv = backward(dz, z, mu, lv, 1.5)
    kl = np.empty(shape[0], dtype=dtype)
    latent.gaussian_kl_rows(mu, lv, *_bounds(mu), kl)
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            zp, rowsp = forward(mu, lv, rng.STREAM_EPS, 3, 12, par=True)
            assert same_bits(zp, z) and same_bits(rowsp, rows)
            dmup, dlvp = backward(dz, z, mu, lv, 1.5, par=True)
            assert same_bits(dmup, dmu) and same_bits(dlvp, dlv)
            klp = np.empty_like(kl)
            latent.gaussian_kl_rows_par(mu, lv, *_bounds(mu), klp)
            assert same_bits(klp, kl) and same_bits(kl, rows)
    finally:
        numba.set_num_threads(threads)
