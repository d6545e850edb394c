"""Gradient checks in float64 for every branch of the objective: activations, losses, tied and untied weights,
each variant, deep stacks and the VAE with fixed ε (fixed by its (seed, step) address)."""

import numpy as np
import pytest

import fastae
from fastae import activations
from fastae.backends import available_backends, get_backend
from fastae.backends import numpy_ref as ref

from .gradcheck import check_gradients, fitted_model
from .tolerances import abs_matmul, sum_err

RNG = np.random.default_rng(20261124)
X_UNIT = RNG.uniform(0.05, 0.95, size=(6, 7))  # bce targets in [0, 1]
X_REAL = RNG.normal(size=(6, 7))


def ae(**kw):
    kw.setdefault("dtype", "float64")
    kw.setdefault("random_state", 3)
    return fastae.Autoencoder(**kw)


@pytest.mark.parametrize("activation", activations.ACTIVATIONS)
@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("tied", [True, False])
def test_shallow(activation, loss, tied):
    x = X_UNIT if loss == "bce" else X_REAL
    check_gradients(fitted_model(ae(hidden=(5,), activation=activation, loss=loss, tied=tied), 7), x)


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("code_activation", activations.ACTIVATIONS)
def test_deep_stack(tied, code_activation):
    m = fitted_model(ae(hidden=(6, 4, 3), activation="tanh", code_activation=code_activation, tied=tied), 7)
    check_gradients(m, X_UNIT)


def test_tied_weight_gradient_has_both_terms():
    """The tied W gets an encoder term and a decoder term; each alone is wrong, their sum is the gradient."""
    m = fitted_model(ae(hidden=(5,), activation="sigmoid"), 7)
    _, grads = check_gradients(m, X_UNIT)
    B, P = ref, m._params
    h = B.dense_forward(X_UNIT, P["encoder.0.weight"], P["encoder.0.bias"], "sigmoid")
    _, delta = B.output_loss_grad(h, P["encoder.0.weight"], P["decoder.0.bias"], X_UNIT, "bce", transpose=True)
    decoder_term = B.dense_backward(delta, h, P["encoder.0.weight"], transpose=True)[0]
    encoder_term = grads["encoder.0.weight"] - decoder_term
    assert np.abs(decoder_term).max() > 1e-4 and np.abs(encoder_term).max() > 1e-4


@pytest.mark.parametrize("noise", [("mask", 0.3), ("gaussian", 0.2)])
def test_denoising(noise):
    check_gradients(fitted_model(ae(hidden=(5,), noise=noise, loss="mse"), 7), X_REAL)


def test_denoising_noise_is_applied():
    m = fitted_model(ae(hidden=(5,), noise=("mask", 0.5)), 7)
    clean = fitted_model(ae(hidden=(5,)), 7)
    assert m._loss_and_grads(X_UNIT, 1)[0] != clean._loss_and_grads(X_UNIT, 1)[0]


@pytest.mark.parametrize(
    "sparsity,activation", [(("l1", 0.1), "relu"), (("l1", 0.05), "tanh"), (("kl", 0.1, 0.5), "sigmoid")]
)
def test_sparse(sparsity, activation):
    check_gradients(fitted_model(ae(hidden=(4, 5), activation=activation, sparsity=sparsity), 7), X_UNIT)


@pytest.mark.parametrize("activation", activations.CONTRACTIVE_ACTIVATIONS)
@pytest.mark.parametrize("tied", [True, False])
def test_contractive(activation, tied):
    m = fitted_model(ae(hidden=(5,), activation=activation, contractive=0.3, tied=tied), 7)
    check_gradients(m, X_UNIT)


def test_contractive_penalty_is_jacobian_norm():
    """P = λ mean_b ‖∂h/∂x‖²_F, with the Jacobian taken by finite differences of the encoder."""
    m = fitted_model(ae(hidden=(5,), activation="tanh"), 7)
    W, b = m._params["encoder.0.weight"], m._params["encoder.0.bias"]
    h = ref.dense_forward(X_REAL, W, b, "tanh")
    value = ref.contractive_penalty(h, W, "tanh", 0.7)[0]
    norms = []
    for row in X_REAL:
        J = np.empty((5, 7))
        for i in range(7):
            e = np.zeros(7)
            e[i] = 1e-6
            J[:, i] = (np.tanh((row + e) @ W.T + b) - np.tanh((row - e) @ W.T + b)) / 2e-6
        norms.append((J**2).sum())
    np.testing.assert_allclose(value, 0.7 * np.mean(norms), rtol=1e-7)


def test_weight_decay():
    m = fitted_model(ae(hidden=(4, 3), weight_decay=0.2, tied=False), 7)
    check_gradients(m, X_UNIT)


def test_all_variants_together():
    m = fitted_model(
        ae(hidden=(5,), noise=("mask", 0.2), sparsity=("kl", 0.2, 0.3), contractive=0.1, weight_decay=0.05), 7
    )
    check_gradients(m, X_UNIT)


def vae(**kw):
    kw.setdefault("dtype", "float64")
    kw.setdefault("random_state", 5)
    return fastae.VAE(**kw)


@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("hidden", [(), (6,), (6, 5)])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_vae(loss, hidden, activation):
    x = X_UNIT if loss == "bce" else X_REAL
    m = fitted_model(vae(hidden=hidden, latent=3, loss=loss, activation=activation, beta=0.7, weight_decay=0.01), 7)
    check_gradients(m, x)


def test_vae_eps_is_fixed_by_step_and_changes_with_it():
    m = fitted_model(vae(hidden=(6,), latent=3), 7)
    assert m._loss_and_grads(X_UNIT, 4)[0] == m._loss_and_grads(X_UNIT, 4)[0]
    assert m._loss_and_grads(X_UNIT, 4)[0] != m._loss_and_grads(X_UNIT, 5)[0]


def test_vae_clamped_logvar_gets_no_gradient():
    mu = np.zeros((2, 3))
    logvar = np.array([[-40.0, 0.0, 25.0], [1.0, -31.0, 19.0]])
    z, _ = ref.gaussian_latent(mu, logvar, 1.0, np.array([1, 2], dtype=np.uint32), 1)
    _, dlv = ref.gaussian_latent_backward(np.ones_like(z), z, mu, logvar, 1.0)
    assert dlv[0, 0] == 0 and dlv[0, 2] == 0 and dlv[1, 1] == 0
    assert dlv[0, 1] != 0 and dlv[1, 0] != 0 and dlv[1, 2] != 0


@pytest.mark.parametrize("backend", available_backends())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("transpose", [False, True])
def test_adjoint(backend, dtype, transpose):
    """⟨x Wᵀ, h⟩ = ⟨x, h W⟩ through each backend's own forward and backward products (a transpose or stride bug
    breaks it). Both sides sum the same terms ``x_bi W_ji h_bj``: each is within the tolerance model's bound of
    that sum, a product of ``n_in`` terms then ``rows · n_out`` more (tests/tolerances.py)."""
    B = get_backend(backend, dtype)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, 7)).astype(dtype)
    n_in, n_out = (5, 7) if transpose else (7, 5)
    x = rng.normal(size=(3, n_in)).astype(dtype)
    h = rng.normal(size=(3, n_out)).astype(dtype)
    forward = B.dense_forward(x, W, np.zeros(n_out, dtype), "linear", transpose)
    adjoint = B.dense_backward(h, x, W, transpose)[2]
    Wm = W if transpose else W.T
    scale = np.sum(abs_matmul(x, Wm) * np.abs(h.astype(np.float64)))
    n = n_in + n_out + h.size
    lhs, rhs = np.sum(forward.astype(np.float64) * h), np.sum(x.astype(np.float64) * adjoint)
    assert abs(lhs - rhs) <= 2 * float(sum_err(scale, n, dtype)), (lhs, rhs)
