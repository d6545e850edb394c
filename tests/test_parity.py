"""Every op of every compiled backend against the float64 NumPy reference: backends × dtypes × odd shapes × every
branch (activation, loss, variant, transpose). Shapes 1, 7, 33, 1025 rows run the tails and the parallel paths."""

import numpy as np
import pytest

from fastae import activations, rng
from fastae.backends import numpy_ref as ref
from fastae.backends import registry

from .tolerances import TOL

BACKENDS = [b for b in registry.available_backends() if b != "numpy"]
DTYPES = ["float32", "float64"]
ROWS = [1, 7, 33, 1025]
KEY = rng.key_from_seed(2026)

pytestmark = pytest.mark.skipif(not BACKENDS, reason="no compiled backend imports here (numba missing?)")


def _inputs(seed, *shapes, low=-1.0, high=1.0):
    r = np.random.default_rng(seed)
    return [r.uniform(low, high, size=s) for s in shapes]


def close(got, want, dtype, quantity, what=""):
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype), (what, got.dtype)
    np.testing.assert_allclose(got.astype(np.float64), want, err_msg=what, **TOL[dtype][quantity])


def cast(dtype, *arrays):
    """The inputs as the backend sees them (dtype) and as the reference sees them (float64 of the same values)."""
    low = [np.ascontiguousarray(a, dtype=dtype) for a in arrays]
    return low, [a.astype(np.float64) for a in low]


@pytest.fixture(params=BACKENDS)
def B(request):
    return registry.get_backend(request.param, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("activation", activations.ACTIVATIONS)
@pytest.mark.parametrize("transpose", [False, True])
def test_dense_forward_and_backward(B, dtype, n, activation, transpose):
    (x, W, b, dh), (x64, W64, b64, dh64) = cast(dtype, *_inputs(n, (n, 9 if transpose else 11), (9, 11),
                                                                 (11 if transpose else 9,),
                                                                 (n, 11 if transpose else 9)))
    h = B.dense_forward(x, W, b, activation, transpose)
    h64 = ref.dense_forward(x64, W64, b64, activation, transpose)
    close(h, h64, dtype, "output", "h")
    for backend, args, want in ((B, (x, W, b), h), (ref, (x64, W64, b64), h64)):  # out=: the same bits, in place
        out = np.full(want.shape, np.nan, dtype=want.dtype)
        assert backend.dense_forward(*args, activation, transpose, out=out) is out
        np.testing.assert_array_equal(out, want)
    want = ref.activation_backward(dh64, h.astype(np.float64), activation)
    close(B.activation_backward(dh.copy(), h, activation), want, dtype, "grad", "activation_backward")
    for need_dx in (True, False):
        got = B.dense_backward(dh, x, W, transpose, need_dx)
        exp = ref.dense_backward(dh64, x64, W64, transpose, need_dx)
        close(got[0], exp[0], dtype, "grad", "dW")
        close(got[1], exp[1], dtype, "reduction", "db")
        assert (got[2] is None) == (not need_dx)
        if need_dx:
            close(got[2], exp[2], dtype, "grad", "dx")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("transpose", [False, True])
def test_output_loss_grad_and_rows(B, dtype, n, loss, transpose):
    shapes = [(n, 5), (5, 13) if transpose else (13, 5), (13,)]
    (h, W, c), (h64, W64, c64) = cast(dtype, *_inputs(n + 1, *shapes, low=-3, high=3))
    (x,), (x64,) = cast(dtype, *_inputs(n + 2, (n, 13), low=0, high=1))
    value, delta = B.output_loss_grad(h, W, c, x, loss, transpose)
    v64, d64 = ref.output_loss_grad(h64, W64, c64, x64, loss, transpose)
    close(value, v64, dtype, "reduction", "loss")
    close(delta, d64, dtype, "grad", "delta")
    close(B.output_row_loss(h, W, c, x, loss, transpose), ref.output_row_loss(h64, W64, c64, x64, loss, transpose),
          dtype, "reduction", "row loss")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_output_extreme_logits(B, dtype, loss):
    """Logits of ±80 and ±800 (saturated sigmoid): finite loss, exact limits of the gradient."""
    h = np.array([[1.0], [-1.0]], dtype=dtype)
    W = np.array([[80.0], [800.0], [0.5]], dtype=dtype)
    x = np.array([[1.0, 0.0, 0.25], [1.0, 0.0, 0.75]], dtype=dtype)
    value, delta = B.output_loss_grad(h, W, np.zeros(3, dtype), x, loss)
    v64, d64 = ref.output_loss_grad(h.astype(float), W.astype(float), np.zeros(3), x.astype(float), loss)
    assert np.isfinite(value)
    close(value, v64, dtype, "reduction", "loss")
    close(delta, d64, dtype, "grad", "delta")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
def test_regularisers(B, dtype, n):
    (h, W, g), (h64, W64, g64) = cast(dtype, *_inputs(n + 3, (n, 6), (6, 4), (6, 4), low=0.05, high=0.95))
    for got, want, what in [
        (B.l1_penalty(h, 0.3), ref.l1_penalty(h64, 0.3), "l1"),
        (B.kl_sparsity(h, 0.2, 0.7), ref.kl_sparsity(h64, 0.2, 0.7), "kl sparsity"),
    ]:
        close(got[0], want[0], dtype, "reduction", what + " value")
        close(got[1], want[1], dtype, "grad", what + " grad")
    (hc, Wc), (hc64, Wc64) = cast(dtype, *_inputs(n + 4, (n, 6), (6, 4), low=-0.9, high=0.9))
    for activation in activations.CONTRACTIVE_ACTIVATIONS:
        hh = activations.apply(activation, hc.astype(np.float64)).astype(dtype)
        got = B.contractive_penalty(hh, Wc, activation, 0.4)
        want = ref.contractive_penalty(hh.astype(np.float64), Wc64, activation, 0.4)
        for q, (a, b_) in zip(("reduction", "grad", "grad"), zip(got, want)):
            close(a, b_, dtype, q, f"contractive {activation}")
    g_got, g_want = g.copy(), g64.copy()
    close(B.weight_decay(W, g_got, 0.1), ref.weight_decay(W64, g_want, 0.1), dtype, "reduction", "weight decay")
    close(g_got, g_want, dtype, "grad", "weight decay grad")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("row0", [0, 5])
def test_noise_is_the_reference_stream(B, dtype, n, row0):
    (x,), (x64,) = cast(dtype, *_inputs(n + 5, (n, 13)))
    np.testing.assert_array_equal(B.mask_noise(x, 0.3, KEY, 7, row0),
                                  ref.mask_noise(x, 0.3, KEY, 7, row0))  # same bits, same mask, same dtype
    close(B.gaussian_noise(x, 0.2, KEY, 7, row0), ref.gaussian_noise(x64, 0.2, KEY, 7, row0), dtype, "noise",
          "gaussian noise")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
def test_gaussian_latent(B, dtype, n):
    (mu, lv, dz), (mu64, lv64, dz64) = cast(dtype, *_inputs(n + 6, (n, 5), (n, 5), (n, 5), low=-2, high=2))
    lv[0, 0], lv64[0, 0] = -45.0, -45.0  # below the clamp
    if n > 1:
        lv[1, 1], lv64[1, 1] = 30.0, 30.0  # above it
    z, kl = B.gaussian_latent(mu, lv, 0.8, KEY, 3, 2)
    z64, kl64 = ref.gaussian_latent(mu64, lv64, 0.8, KEY, 3, 2)
    close(z, z64, dtype, "output", "z")
    close(kl, kl64, dtype, "reduction", "kl")
    got = B.gaussian_latent_backward(dz, z, mu, lv, 0.8)
    want = ref.gaussian_latent_backward(dz64, z.astype(np.float64), mu64, lv64, 0.8)
    close(got[0], want[0], dtype, "grad", "dmu")
    close(got[1], want[1], dtype, "grad", "dlogvar")
    close(B.gaussian_kl_rows(mu, lv), ref.gaussian_kl_rows(mu64, lv64), dtype, "reduction", "kl rows")
    z_s, _ = B.gaussian_latent(mu, lv, 0.0, KEY, 3, 2, stream=rng.STREAM_SAMPLE)
    close(z_s, ref.gaussian_latent(mu64, lv64, 0.0, KEY, 3, 2, stream=rng.STREAM_SAMPLE)[0], dtype, "output", "z")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(1,), (7, 3), (33, 1025)])
@pytest.mark.parametrize("method", ["sgd", "momentum", "nesterov", "adam"])
def test_optimizers(B, dtype, size, method):
    (p, g, s1, s2), (p64, g64, s164, s264) = cast(dtype, *_inputs(sum(size), size, size, size, size))
    s2, s264 = np.abs(s2), np.abs(s264)
    for step in (1, 2, 3):
        out, out64 = np.empty_like(p), np.empty_like(p64)
        if method == "sgd":
            ok = B.sgd_update(p, g, out, 0.1)
            ref.sgd_update(p64, g64, out64, 0.1)
        elif method == "adam":
            ok = B.adam_update(p, g, s1, s2, out, 0.01, 0.9, 0.999, 1e-8, step)
            ref.adam_update(p64, g64, s164, s264, out64, 0.01, 0.9, 0.999, 1e-8, step)
            close(s2, s264, dtype, "grad", "adam v")
        else:
            ok = B.momentum_update(p, g, s1, out, 0.1, 0.9, method == "nesterov")
            ref.momentum_update(p64, g64, s164, out64, 0.1, 0.9, method == "nesterov")
        assert ok is True
        close(out, out64, dtype, "grad", f"{method} step {step}")
        close(s1, s164, dtype, "grad", f"{method} state") if method != "sgd" else None
        p, p64 = out, out64
    bad = g.copy()
    bad.reshape(-1)[-1] = np.nan
    assert B.sgd_update(p, bad, np.empty_like(p), 0.1) is False
    bad.reshape(-1)[-1] = np.inf
    assert B.adam_update(p, bad, s1.copy(), s2.copy(), np.empty_like(p), 0.01, 0.9, 0.999, 1e-8, 4) is False
