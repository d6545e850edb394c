"""Regulariser kernels (kernels/cpu/penalties.py) against fastae.backends.numpy_ref.

Both dtypes are compared with the float64 reference from the same inputs within tests/tolerances.py's error model:
the bounds of the sums (L1 rows, the column means ρ̂, ``s_j = Σ_i W²``, ``Σ W²``) are propagated through each
formula's derivatives, and subtractions that cancel are bounded by the magnitudes of their terms. Every branch
runs: both contractive activations, dead and saturated units for KL sparsity, zeros for the sign in L1. Serial and
parallel kernels must agree bit for bit for any thread count.
"""

import numpy as np
import pytest

from fastae import activations
from fastae.backends import numpy_ref as ref
from fastae.constants import RHO_HAT_EPS
from fastae.kernels.cpu import penalties
from fastae.kernels.cpu._config import ACT_CODE, RELU

from ..tolerances import close, contractive_penalty_err, kl_sparsity_err, l1_penalty_err, weight_decay_err
from .helpers import each_thread_count, same_bits

SHAPES = [(1, 1), (7, 3), (33, 17), (1025, 9)]
DTYPES = [np.float32, np.float64]


def codes(shape, dtype, activation="sigmoid", seed=0):
    a = np.random.default_rng(seed).uniform(-3, 3, size=shape)
    return activations.apply(activation, a).astype(dtype)


# ---------------------------------------------------------------------------------------------------------------
# L1
# ---------------------------------------------------------------------------------------------------------------
def l1(h, lam, par=False):
    t = h.dtype.type
    dh, rows = np.full_like(h, np.nan), np.full(h.shape[0], np.nan, dtype=h.dtype)
    (penalties.l1_penalty_par if par else penalties.l1_penalty)(h, t(lam), t(1.0 / h.shape[0]), dh, rows)
    return dh, rows


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_l1_matches_reference(dtype, shape):
    h = np.random.default_rng(1).uniform(-1, 1, size=shape).astype(dtype)
    h.flat[0] = 0  # sign(0) = 0
    lam = 0.3
    dh, rows = l1(h, lam)
    P, G = ref.l1_penalty(h.astype(np.float64), lam)
    assert dh.dtype == h.dtype and rows.dtype == h.dtype
    close(dh, G, dtype, what="dh")  # elementwise
    assert dh.flat[0] == 0
    err_P, err_rows = l1_penalty_err(h, lam, dtype)
    close(rows, np.abs(h.astype(np.float64)).sum(axis=1), dtype, err=err_rows, what="rows")
    # The kernel's float64 value, compared at the precision of the dtype it was computed in.
    close(dtype(lam * rows.astype(np.float64).mean()), P, dtype, err=err_P, what="P")


def test_l1_nan_propagates():
    h = np.array([[np.nan, 1.0, -1.0]])
    dh, rows = l1(h, 0.5)
    assert np.isnan(dh[0, 0]) and dh[0, 1] == 0.5 and dh[0, 2] == -0.5 and np.isnan(rows[0])


# ---------------------------------------------------------------------------------------------------------------
# KL sparsity
# ---------------------------------------------------------------------------------------------------------------
def kl(h, rho, beta):
    t = h.dtype.type
    dh, rho_hat = np.full_like(h, np.nan), np.full(h.shape[1], np.nan, dtype=h.dtype)
    value = penalties.kl_sparsity(h, t(rho), t(beta), t(1.0 / h.shape[0]), RHO_HAT_EPS, dh, rho_hat)
    return value, dh, rho_hat


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rho,beta", [(0.05, 3.0), (0.5, 0.1)])
def test_kl_sparsity_matches_reference(dtype, shape, rho, beta):
    h = codes(shape, dtype, seed=2)
    if shape[1] > 1:
        h[:, 0] = 0  # a dead unit: rho_hat clipped up to 1e-6
    value, dh, rho_hat = kl(h, rho, beta)
    h64 = h.astype(np.float64)
    P, G = ref.kl_sparsity(h64, rho, beta)
    assert isinstance(value, float) and dh.dtype == h.dtype and rho_hat.dtype == h.dtype
    err_rh, err_P, err_g = kl_sparsity_err(h, rho, beta, dtype)
    close(rho_hat, np.clip(h64.mean(axis=0), 1e-6, 1 - 1e-6), dtype, err=err_rh, what="rho_hat")
    close(dtype(value), P, dtype, err=err_P, what="P")  # the float64 value, at the precision of its inputs
    close(dh, G, dtype, err=err_g, what="dh")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_sparsity_saturated_unit_matches_reference_in_dtype(dtype):
    """A unit at 1 everywhere clips to 1 - 1e-6, where float32 itself rounds 1 - rho_hat by 1.3 %: compare with the
    reference run in the same dtype, which rounds the same way."""
    h = codes((33, 17), dtype, seed=3)
    h[:, 4] = 1
    value, dh, rho_hat = kl(h, 0.05, 3.0)
    P, G = ref.kl_sparsity(h, 0.05, 3.0)
    assert rho_hat[4] == dtype(1 - 1e-6)
    if dtype is np.float64:
        err_rh, err_P, err_g = kl_sparsity_err(h, 0.05, 3.0, dtype)
        close(dh, G, dtype, err=err_g, what="dh")
        close(dtype(value), P, dtype, err=err_P, what="P")
    else:
        # Against a float32 run of the reference, not the float64 one (see above), so not the error model: the two
        # share the saturated column exactly and differ only by float32 roundings elsewhere (column sums and logs
        # in float64 in the kernel, in float32 in NumPy).
        np.testing.assert_allclose(dh, G, rtol=1e-5, atol=0)
        np.testing.assert_allclose(value, P, rtol=1e-5, atol=0)


# ---------------------------------------------------------------------------------------------------------------
# contractive
# ---------------------------------------------------------------------------------------------------------------
def contractive(h, W, act, lam, par=False):
    t = h.dtype.type
    dW, dz, rows = np.full_like(W, np.nan), np.full_like(h, np.nan), np.full(h.shape[0], np.nan, dtype=h.dtype)
    kernel = penalties.contractive_par if par else penalties.contractive
    kernel(h, W, act, t(lam), t(1.0 / h.shape[0]), dW, dz, rows)
    return dW, dz, rows


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_in", [1, 5, 33])
def test_contractive_matches_reference(activation, dtype, shape, n_in):
    h = codes(shape, dtype, activation, seed=4)
    W = np.random.default_rng(5).uniform(-1, 1, size=(shape[1], n_in)).astype(dtype)
    lam = 0.2
    dW, dz, rows = contractive(h, W, ACT_CODE[activation], lam)
    P, dW_ref, dz_ref = ref.contractive_penalty(h.astype(np.float64), W.astype(np.float64), activation, lam)
    err_P, err_dW, err_dz, err_rows, want_rows = contractive_penalty_err(h, W, activation, lam, dtype)
    close(dW, dW_ref, dtype, err=err_dW, what="dW_direct")
    close(dz, dz_ref, dtype, err=err_dz, what="dz")
    close(rows, want_rows, dtype, err=err_rows, what="rows")
    close(dtype(lam * rows.astype(np.float64).mean()), P, dtype, err=err_P, what="P")


def test_contractive_other_activation_gives_nan():
    h, W = codes((7, 3), np.float64), np.ones((3, 5))
    dW, dz, rows = contractive(h, W, RELU, 0.1)
    assert np.isnan(dW).all() and np.isnan(dz).all() and np.isnan(rows).all()


# ---------------------------------------------------------------------------------------------------------------
# weight decay
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(3, 1030)])
@pytest.mark.parametrize("par", [False, True])
def test_weight_decay_matches_reference(dtype, shape, par):
    r = np.random.default_rng(6)
    W = r.uniform(-1, 1, size=shape).astype(dtype)
    g = r.uniform(-1, 1, size=shape).astype(dtype)
    g0, g_ref = g.copy(), g.astype(np.float64)
    value = (penalties.weight_decay_par if par else penalties.weight_decay)(W, g, dtype(1e-2))
    want = ref.weight_decay(W.astype(np.float64), g_ref, np.float64(dtype(1e-2)))
    assert isinstance(value, float) and g.dtype == W.dtype
    err_P, err_g = weight_decay_err(W, g0, float(dtype(1e-2)), dtype)
    close(dtype(value), want, dtype, err=err_P, what="value")
    close(g, g_ref, dtype, err=err_g, what="grad")


# ---------------------------------------------------------------------------------------------------------------
# serial == parallel
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_parallel_bit_identical(dtype, shape):
    h = codes(shape, dtype, "tanh", seed=7)
    h.flat[0] = 0
    W = np.random.default_rng(8).uniform(-1, 1, size=(shape[1], 37)).astype(dtype)
    g0 = np.random.default_rng(9).uniform(-1, 1, size=W.shape).astype(dtype)
    l1_s = l1(h, 0.3)
    ct_s = {a: contractive(h, W, ACT_CODE[a], 0.2) for a in ("sigmoid", "tanh")}
    g_s = g0.copy()
    wd_s = penalties.weight_decay(W, g_s, dtype(1e-3))
    for _ in each_thread_count():
        assert all(same_bits(a, b) for a, b in zip(l1(h, 0.3, par=True), l1_s))
        for a in ("sigmoid", "tanh"):
            assert all(same_bits(x, y) for x, y in zip(contractive(h, W, ACT_CODE[a], 0.2, par=True), ct_s[a]))
        g_p = g0.copy()
        assert penalties.weight_decay_par(W, g_p, dtype(1e-3)) == wd_s
        assert same_bits(g_p, g_s)
