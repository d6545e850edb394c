"""Every op of every compiled backend against the float64 NumPy reference: backends × dtypes × odd shapes × every
branch (activation, loss, variant, transpose). Shapes 1, 7, 33, 1025 rows run the tails and the parallel paths."""

import numpy as np
import pytest

from fastae import activations, rng
from fastae.backends import numpy_ref as ref
from fastae.backends import registry

from .tolerances import (
    activation_backward_err,
    close,
    contractive_penalty_err,
    dense_backward_err,
    dense_forward_err,
    gaussian_kl_rows_err,
    gaussian_latent_backward_err,
    gaussian_latent_err,
    gaussian_noise_err,
    kl_sparsity_err,
    l1_penalty_err,
    output_err,
    update_err,
    weight_decay_err,
)

BACKENDS = [b for b in registry.available_backends() if b != "numpy"]
DTYPES = ["float32", "float64"]
ROWS = [1, 7, 33, 1025]
KEY = rng.key_from_seed(2026)

pytestmark = pytest.mark.skipif(not BACKENDS, reason="no compiled backend imports here (numba missing?)")


def _inputs(seed, *shapes, low=-1.0, high=1.0):
    r = np.random.default_rng(seed)
    return [r.uniform(low, high, size=s) for s in shapes]


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
    (x, W, b, dh), (x64, W64, b64, dh64) = cast(
        dtype, *_inputs(n, (n, 9 if transpose else 11), (9, 11), (11 if transpose else 9,), (n, 11 if transpose else 9))
    )
    h = B.dense_forward(x, W, b, activation, transpose)
    h64 = ref.dense_forward(x64, W64, b64, activation, transpose)
    close(h, h64, dtype, dense_forward_err(x, W, b, dtype, transpose), "h")
    for backend, args, want in ((B, (x, W, b), h), (ref, (x64, W64, b64), h64)):  # out=: the same bits, in place
        out = np.full(want.shape, np.nan, dtype=want.dtype)
        assert backend.dense_forward(*args, activation, transpose, out=out) is out
        np.testing.assert_array_equal(out, want)
    want = ref.activation_backward(dh64, h.astype(np.float64), activation)
    close(
        B.activation_backward(dh.copy(), h, activation),
        want,
        dtype,
        activation_backward_err(dh, h, dtype),
        "activation_backward",
    )
    for need_dx in (True, False):
        got = B.dense_backward(dh, x, W, transpose, need_dx)
        exp = ref.dense_backward(dh64, x64, W64, transpose, need_dx)
        err = dense_backward_err(dh, x, W, dtype, transpose)
        close(got[0], exp[0], dtype, err[0], "dW")
        close(got[1], exp[1], dtype, err[1], "db")
        assert (got[2] is None) == (not need_dx)
        if need_dx:
            close(got[2], exp[2], dtype, err[2], "dx")


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
    err_v, err_d, err_rows = output_err(h, W, c, x, loss, dtype, transpose)
    close(value, v64, dtype, err_v, "loss")
    close(delta, d64, dtype, err_d, "delta")
    close(
        B.output_row_loss(h, W, c, x, loss, transpose),
        ref.output_row_loss(h64, W64, c64, x64, loss, transpose),
        dtype,
        err_rows,
        "row loss",
    )


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
    err_v, err_d, _ = output_err(h, W, np.zeros(3), x, loss, dtype)
    close(value, v64, dtype, err_v, "loss")
    close(delta, d64, dtype, err_d, "delta")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
def test_regularisers(B, dtype, n):
    (h, W, g), (h64, W64, g64) = cast(dtype, *_inputs(n + 3, (n, 6), (6, 4), (6, 4), low=0.05, high=0.95))
    for got, want, err, what in [
        (B.l1_penalty(h, 0.3), ref.l1_penalty(h64, 0.3), (l1_penalty_err(h, 0.3, dtype)[0], 0.0), "l1"),
        (B.kl_sparsity(h, 0.2, 0.7), ref.kl_sparsity(h64, 0.2, 0.7), kl_sparsity_err(h, 0.2, 0.7, dtype)[1:], "kl"),
    ]:
        close(got[0], want[0], dtype, err[0], what + " value")
        close(got[1], want[1], dtype, err[1], what + " grad")
    (hc, Wc), (hc64, Wc64) = cast(dtype, *_inputs(n + 4, (n, 6), (6, 4), low=-0.9, high=0.9))
    for activation in activations.CONTRACTIVE_ACTIVATIONS:
        hh = activations.apply(activation, hc.astype(np.float64)).astype(dtype)
        got = B.contractive_penalty(hh, Wc, activation, 0.4)
        want = ref.contractive_penalty(hh.astype(np.float64), Wc64, activation, 0.4)
        errs = contractive_penalty_err(hh, Wc, activation, 0.4, dtype)[:3]
        for a, b_, e in zip(got, want, errs):
            close(a, b_, dtype, e, f"contractive {activation}")
    g_got, g_want = g.copy(), g64.copy()
    err_P, err_g = weight_decay_err(W, g, 0.1, dtype)
    close(B.weight_decay(W, g_got, 0.1), ref.weight_decay(W64, g_want, 0.1), dtype, err_P, "weight decay")
    close(g_got, g_want, dtype, err_g, "weight decay grad")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("row0", [0, 5])
def test_noise_is_the_reference_stream(B, dtype, n, row0):
    (x,), (x64,) = cast(dtype, *_inputs(n + 5, (n, 13)))
    np.testing.assert_array_equal(
        B.mask_noise(x, 0.3, KEY, 7, row0), ref.mask_noise(x, 0.3, KEY, 7, row0)
    )  # same bits, same mask, same dtype
    want = ref.gaussian_noise(x64, 0.2, KEY, 7, row0)
    close(B.gaussian_noise(x, 0.2, KEY, 7, row0), want, dtype, gaussian_noise_err(x, want, dtype), "gaussian noise")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
def test_gaussian_latent(B, dtype, n):
    (mu, lv, dz), (mu64, lv64, dz64) = cast(dtype, *_inputs(n + 6, (n, 5), (n, 5), (n, 5), low=-2, high=2))
    lv[0, 0], lv64[0, 0] = -45.0, -45.0  # below the clamp
    if n > 1:
        lv[1, 1], lv64[1, 1] = 30.0, 30.0  # above it
    z, kl = B.gaussian_latent(mu, lv, 0.8, KEY, 3, 2)
    z64, kl64 = ref.gaussian_latent(mu64, lv64, 0.8, KEY, 3, 2)
    err_z, err_kl = gaussian_latent_err(mu, lv, 0.8, z64, dtype)
    close(z, z64, dtype, err_z, "z")
    close(kl, kl64, dtype, err_kl, "kl")
    got = B.gaussian_latent_backward(dz, z, mu, lv, 0.8)
    want = ref.gaussian_latent_backward(dz64, z.astype(np.float64), mu64, lv64, 0.8)
    err_mu, err_lv = gaussian_latent_backward_err(dz, z, mu, lv, 0.8, dtype)
    close(got[0], want[0], dtype, err_mu, "dmu")
    close(got[1], want[1], dtype, err_lv, "dlogvar")
    close(
        B.gaussian_kl_rows(mu, lv),
        ref.gaussian_kl_rows(mu64, lv64),
        dtype,
        gaussian_kl_rows_err(mu, lv, dtype),
        "kl rows",
    )
    z_s, _ = B.gaussian_latent(mu, lv, 0.0, KEY, 3, 2, stream=rng.STREAM_SAMPLE)
    want_s = ref.gaussian_latent(mu64, lv64, 0.0, KEY, 3, 2, stream=rng.STREAM_SAMPLE)[0]
    close(z_s, want_s, dtype, gaussian_latent_err(mu, lv, 0.0, want_s, dtype)[0], "z")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(1,), (7, 3), (33, 1025)])
@pytest.mark.parametrize("method", ["sgd", "momentum", "nesterov", "adam"])
def test_optimizers(B, dtype, size, method):
    (p, g, s1, s2), (p64, g64, s164, s264) = cast(dtype, *_inputs(sum(size), size, size, size, size))
    s2, s264 = np.abs(s2), np.abs(s264)
    err_p, err_state = 0.0, (0.0, 0.0)  # the backend's parameters and state drift: their bounds are carried along
    for step in (1, 2, 3):
        out, out64 = np.empty_like(p), np.empty_like(p64)
        lr = 0.01 if method == "adam" else 0.1
        errs = update_err(method, p64, g64, (s164, s264), dtype, lr, 0.9, 0.9, 0.999, 1e-8, step, err_p, 0.0, err_state)
        if method == "sgd":
            ok = B.sgd_update(p, g, out, lr)
            ref.sgd_update(p64, g64, out64, lr)
        elif method == "adam":
            ok = B.adam_update(p, g, s1, s2, out, lr, 0.9, 0.999, 1e-8, step)
            ref.adam_update(p64, g64, s164, s264, out64, lr, 0.9, 0.999, 1e-8, step)
            close(s2, s264, dtype, errs[2], "adam v")
        else:
            ok = B.momentum_update(p, g, s1, out, lr, 0.9, method == "nesterov")
            ref.momentum_update(p64, g64, s164, out64, lr, 0.9, method == "nesterov")
        assert ok is True
        close(out, out64, dtype, errs[0], f"{method} step {step}")
        if method != "sgd":
            close(s1, s164, dtype, errs[1], f"{method} state")
        err_p, err_state = errs[0], tuple(errs[1:]) + (0.0,) * (3 - len(errs))
        p, p64 = out, out64
    bad = g.copy()
    bad.reshape(-1)[-1] = np.nan
    assert B.sgd_update(p, bad, np.empty_like(p), 0.1) is False
    bad.reshape(-1)[-1] = np.inf
    assert B.adam_update(p, bad, s1.copy(), s2.copy(), np.empty_like(p), 0.01, 0.9, 0.999, 1e-8, 4) is False


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 4097])
@pytest.mark.parametrize("step", [0, 3, 2**32 - 1])
def test_permutation(B, n, step):
    """The shuffle: the same order as the reference, bit for bit, whatever the size and epoch."""
    got = B.permutation(KEY, rng.STREAM_SHUFFLE, step, n)
    want = ref.permutation(KEY, rng.STREAM_SHUFFLE, step, n)
    assert got.dtype == np.int64 and np.array_equal(got, want)
