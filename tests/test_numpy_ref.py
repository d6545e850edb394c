"""The reference ops against their definitions written out independently, at ordinary and extreme values."""

import numpy as np
import pytest

from fastae import activations, rng
from fastae.backends import numpy_ref as ref

R = np.random.default_rng(7)
KEY = rng.key_from_seed(123)


@pytest.mark.parametrize("name", activations.ACTIVATIONS)
def test_activation_derivatives_match_finite_differences(name):
    a = R.normal(size=200) * 3
    a = a[np.abs(a) > 1e-3]  # keep clear of relu's kink
    h = activations.apply(name, a)
    numeric = (activations.apply(name, a + 1e-6) - activations.apply(name, a - 1e-6)) / 2e-6
    np.testing.assert_allclose(activations.derivative_from_output(name, h), numeric, rtol=1e-6, atol=1e-9)
    if name in activations.CONTRACTIVE_ACTIVATIONS:
        d1 = lambda v: activations.derivative_from_output(name, activations.apply(name, v))  # noqa: E731
        numeric2 = (d1(a + 1e-6) - d1(a - 1e-6)) / 2e-6
        np.testing.assert_allclose(activations.second_derivative_from_output(name, h), numeric2, rtol=1e-5, atol=1e-8)


def test_sigmoid_is_stable_at_extremes():
    a = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise"):
        s = activations.sigmoid(a)
    assert s.dtype == np.float32 and s[0] == 0 and s[2] == 0.5 and s[-1] == 1


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_output_loss_and_gradient_definitions(loss):
    h = R.normal(size=(5, 4))
    W = R.normal(size=(3, 4))
    c = R.normal(size=3)
    x = R.uniform(size=(5, 3))
    value, delta = ref.output_loss_grad(h, W, c, x, loss)
    a = h @ W.T + c
    if loss == "bce":
        xhat = 1 / (1 + np.exp(-a))
        per_row = -(x * np.log(xhat) + (1 - x) * np.log(1 - xhat)).sum(axis=1)
    else:
        xhat = a
        per_row = 0.5 * ((a - x) ** 2).sum(axis=1)
    np.testing.assert_allclose(value, per_row.mean(), rtol=1e-12)
    np.testing.assert_allclose(delta, (xhat - x) / 5, rtol=1e-12)
    np.testing.assert_allclose(ref.output_row_loss(h, W, c, x, loss), per_row, rtol=1e-12)


def test_bce_from_logits_is_finite_and_exact_for_huge_logits():
    h = np.array([[1.0]])
    x = np.array([[1.0, 0.0, 1.0, 0.0]])
    W = np.array([[800.0], [800.0], [-800.0], [-800.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, delta = ref.output_loss_grad(h, W, np.zeros(4), x, "bce")
    # softplus(800) - 800 = 0, softplus(800) = 800, softplus(-800) + 800 = 800, softplus(-800) = 0
    assert value == pytest.approx(1600.0)
    np.testing.assert_array_equal(delta, [[0.0, 1.0, -1.0, 0.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_keep_the_dtype(dtype):
    x = R.uniform(size=(6, 5)).astype(dtype)
    W = R.normal(size=(4, 5)).astype(dtype)
    b = np.zeros(4, dtype)
    h = ref.dense_forward(x, W, b, "sigmoid")
    value, delta = ref.output_loss_grad(h, W, np.zeros(5, dtype), x, "bce", transpose=True)
    outs = [
        h,
        delta,
        *ref.dense_backward(delta, h, W, transpose=True),
        ref.activation_backward(h, h, "tanh"),
        ref.l1_penalty(h, 0.1)[1],
        ref.kl_sparsity(h, 0.1, 1.0)[1],
        *ref.contractive_penalty(h, W, "sigmoid", 1)[1:],
        ref.mask_noise(x, 0.5, KEY, 1),
        ref.gaussian_noise(x, 0.5, KEY, 1),
    ]
    z, kl = ref.gaussian_latent(h, h, 1.0, KEY, 1)
    outs += [z, *ref.gaussian_latent_backward(h, z, h, h, 1.0), ref.gaussian_kl_rows(h, h)]
    for o in outs:
        assert o.dtype == dtype
    for v in (value, kl, ref.l1_penalty(h, 0.1)[0], ref.contractive_penalty(h, W, "sigmoid", 1)[0]):
        assert np.asarray(v).dtype == dtype


def test_kl_sparsity_definition():
    h = R.uniform(0.05, 0.95, size=(8, 3))
    rho, beta = 0.2, 0.7
    value, grad = ref.kl_sparsity(h, rho, beta)
    r = h.mean(axis=0)
    expected = beta * np.sum(rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r)))
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert grad.shape == h.shape


def test_mask_noise_rate_and_row_addressing():
    x = np.ones((400, 50), dtype=np.float32)
    y = ref.mask_noise(x, 0.3, KEY, 5)
    frac = 1 - y.mean()
    assert abs(frac - 0.3) < 6 * np.sqrt(0.3 * 0.7 / x.size)
    np.testing.assert_array_equal(ref.mask_noise(x[100:], 0.3, KEY, 5, row0=100), y[100:])
    assert not np.array_equal(ref.mask_noise(x, 0.3, KEY, 6), y)
    np.testing.assert_array_equal(ref.mask_noise(x, 0.0, KEY, 5), x)


def test_gaussian_noise_scale():
    x = np.zeros((300, 40))
    y = ref.gaussian_noise(x, 0.25, KEY, 2)
    assert abs(y.std() - 0.25) < 0.01 and abs(y.mean()) < 0.01


def test_gaussian_latent_definition():
    mu = R.normal(size=(4, 3))
    lv = R.normal(size=(4, 3))
    z, kl = ref.gaussian_latent(mu, lv, 0.5, KEY, 9, row0=2)
    eps = rng.normal(KEY, rng.STREAM_EPS, 9, 4, 3, dtype=np.float64, row0=2)
    np.testing.assert_allclose(z, mu + np.exp(0.5 * lv) * eps, rtol=1e-12)
    np.testing.assert_allclose(kl, 0.5 * np.mean(0.5 * (mu**2 + np.exp(lv) - 1 - lv).sum(axis=1)), rtol=1e-12)


# --- optimisers, against the torch.optim update rules written out step by step -----------------------------
def _run(update, steps=3, **state):
    p = R.normal(size=(3, 2))
    gs = [R.normal(size=(3, 2)) for _ in range(steps)]
    cur = p.copy()
    for t, g in enumerate(gs, start=1):
        out = np.empty_like(cur)
        assert update(cur, g, out, t, state)
        cur = out
    return p, gs, cur


def test_sgd():
    p, gs, got = _run(lambda p, g, out, t, s: ref.sgd_update(p, g, out, 0.1))
    np.testing.assert_allclose(got, p - 0.1 * sum(gs), rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum(nesterov):
    def upd(p, g, out, t, s):
        s.setdefault("buf", np.zeros_like(p))
        return ref.momentum_update(p, g, s["buf"], out, 0.1, 0.9, nesterov)

    p, gs, got = _run(upd)
    want, buf = p.copy(), np.zeros_like(p)
    for g in gs:
        buf = 0.9 * buf + g
        want = want - 0.1 * (g + 0.9 * buf if nesterov else buf)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_adam():
    def upd(p, g, out, t, s):
        s.setdefault("m", np.zeros_like(p))
        s.setdefault("v", np.zeros_like(p))
        return ref.adam_update(p, g, s["m"], s["v"], out, 0.01, 0.9, 0.999, 1e-8, t)

    p, gs, got = _run(upd)
    want, m, v = p.copy(), 0, 0
    for t, g in enumerate(gs, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        want = want - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_update_reports_non_finite_and_leaves_p_alone():
    p = np.ones(3)
    out = np.empty(3)
    assert not ref.sgd_update(p, np.array([1.0, np.inf, 0.0]), out, 0.1)
    np.testing.assert_array_equal(p, 1.0)
