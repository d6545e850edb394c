"""The NumPy reference backend: the definition of every op's math.

Plain NumPy, readable and numerically careful; it computes in the dtype it is given (float32 or float64) and is
the spec that the Numba and CUDA backends are compared with. Every backend module exposes these same functions
with the same signatures; model code calls them and never branches on the backend.

Conventions
-----------
* Weights follow ``torch.nn.Linear``: ``W`` has shape ``(n_out, n_in)`` and a layer computes
  ``h = f(x Wᵀ + b)``. With ``transpose=True`` the same ``W`` serves as a tied decoder: ``h = f(x W + b)``.
* Losses are per example, summed over features and averaged over the batch, so the gradient that leaves the
  output layer is ``(x̂ − x) / B`` for both losses (sigmoid + cross-entropy, linear + squared error).
* Ops that take a ``grad`` or ``delta`` receive the gradient of that averaged objective; nothing is rescaled later.
* An op may reuse the memory of an input gradient it consumes (``dh`` of :func:`activation_backward`, the
  product inside :func:`output_loss_grad`): callers never read a consumed gradient again. The reference itself
  always returns fresh arrays.
* Random draws are addressed by ``(key, stream, step, row0 + row, column)`` through :mod:`fastae.rng`.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .. import activations as act
from .. import precision, rng
from ..constants import LOGVAR_MAX, LOGVAR_MIN, RHO_HAT_EPS

NAME = "numpy"
DTYPES = ("float32", "float64")
ARRAY_TYPES = (np.ndarray,)
CAPABILITIES: frozenset[str] = frozenset({"bf16_products"})
xp = np


# ---------------------------------------------------------------------------------------------------------------
# Dense layers
# ---------------------------------------------------------------------------------------------------------------
def _product(x, W, transpose, out=None):
    """``x Wᵀ`` (``x W`` with ``transpose``), into ``out`` if given. The ``@`` form without ``out`` is quicker
    to call, which a one-row encode notices (docs/performance.md, *Kernel notes*)."""
    if out is None:
        return x @ W if transpose else x @ W.T
    return np.matmul(x, W if transpose else W.T, out=out)


def dense_forward(x, W, b, activation, transpose=False, out=None):
    """``h = f(x Wᵀ + b)``, or ``f(x W + b)`` with ``transpose=True`` (tied decoder). With ``out`` (a C-contiguous
    array of ``h``'s shape and dtype, sharing no memory with the operands) ``h`` is written there and ``out`` is
    returned."""
    h = act.apply(activation, _product(x, W, transpose) + b)
    if out is None:
        return h
    out[...] = h
    return out


def dense_backward(delta, x, W, transpose=False, need_dx=True):
    """Gradients of a dense layer given ``delta = dL/da`` at its pre-activation ``a``.

    For ``a = x Wᵀ + b``: ``dW = deltaᵀ x``, ``db = Σ_rows delta``, ``dx = delta W``.
    For ``a = x W + b`` (tied decoder): ``dW = xᵀ delta``, ``dx = delta Wᵀ``.
    Returns ``(dW, db, dx)``; ``dx`` is ``None`` when ``need_dx`` is false (the first layer).
    """
    dW = x.T @ delta if transpose else delta.T @ x
    db = delta.sum(axis=0)
    dx = None
    if need_dx:
        dx = delta @ W.T if transpose else delta @ W
    return dW, db, dx


def activation_backward(dh, h, activation):
    """``dL/da = dL/dh ⊙ f'(a)``, with ``f'`` written through the stored output ``h``."""
    if activation == "linear":
        return dh
    return dh * act.derivative_from_output(activation, h)


# ---------------------------------------------------------------------------------------------------------------
# Output layer fused with its loss
# ---------------------------------------------------------------------------------------------------------------
def _elementwise_loss(a, x, loss):
    if loss == "bce":
        # Cross-entropy from logits: -x log σ(a) - (1-x) log(1-σ(a)) = softplus(a) - x a, written so that
        # neither exp nor log1p can overflow for any finite a.
        return np.maximum(a, 0) - x * a + np.log1p(np.exp(-np.abs(a)))
    d = a - x
    return 0.5 * d * d


def output_loss_grad(h, W, c, x, loss, transpose=False):
    """Output layer, loss and its gradient in one op.

    ``a = h Wᵀ + c`` (or ``h W + c``), ``x̂ = g(a)`` with ``g`` from :func:`fastae.activations.output_activation`.
    Returns ``(L, delta)`` with ``L = (1/B) Σ_b Σ_i ℓ(a_bi, x_bi)`` and ``delta = dL/da = (x̂ − x) / B``,
    where ``ℓ`` is cross-entropy from logits (``"bce"``) or ``½ (a − x)²`` (``"mse"``).
    """
    a = _product(h, W, transpose) + c
    n = x.shape[0]
    value = _elementwise_loss(a, x, loss).sum(axis=1).mean()
    xhat = act.apply(act.output_activation(loss), a)
    return value, (xhat - x) / x.dtype.type(n)


def output_row_loss(h, W, c, x, loss, transpose=False):
    """Per-row loss ``Σ_i ℓ(a_bi, x_bi)`` of the output layer (see :func:`output_loss_grad`), shape ``(B,)``."""
    a = _product(h, W, transpose) + c
    return _elementwise_loss(a, x, loss).sum(axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Regularisers on the code layer
# ---------------------------------------------------------------------------------------------------------------
def l1_penalty(h, lam):
    """``P = λ (1/B) Σ_b Σ_j |h_bj|``; returns ``(P, dP/dh)`` with ``dP/dh = λ sign(h) / B``."""
    n = h.shape[0]
    lam = h.dtype.type(lam)
    return lam * np.abs(h).sum(axis=1).mean(), lam * np.sign(h) / h.dtype.type(n)


def kl_sparsity(h, rho, beta):
    """KL sparsity on mean activations ``ρ̂_j = (1/B) Σ_b h_bj`` (``h`` in (0, 1), i.e. sigmoid units).

    ``P = β Σ_j [ρ log(ρ/ρ̂_j) + (1−ρ) log((1−ρ)/(1−ρ̂_j))]`` and
    ``dP/dh_bj = (β/B) (−ρ/ρ̂_j + (1−ρ)/(1−ρ̂_j))``. Returns ``(P, dP/dh)``.
    """
    t = h.dtype.type
    n = h.shape[0]
    rho_hat = np.clip(h.mean(axis=0), t(RHO_HAT_EPS), t(1 - RHO_HAT_EPS))
    rho, beta = t(rho), t(beta)
    value = beta * np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    g = beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) / t(n)
    return value, np.broadcast_to(g, h.shape).copy()


def contractive_penalty(h, W, activation, lam):
    """Contractive penalty ``P = λ (1/B) Σ_b ‖∂h_b/∂x_b‖²_F`` of a single layer ``h = f(x Wᵀ + b)``.

    The Jacobian is ``J_ji = f'(a_j) W_ji``, so ``‖J‖² = Σ_j f'(a_j)² s_j`` with ``s_j = Σ_i W_ji²``.
    Returns ``(P, dW_direct, dz)``:

    * ``dW_direct_ji = 2 λ W_ji (1/B) Σ_b f'(a_bj)²``, the part of ``dP/dW`` through ``s_j``;
    * ``dz_bj = (λ/B) s_j 2 f'(a_bj) f''(a_bj)``, the gradient at the pre-activation, which the caller adds to
      the layer's ``delta`` so that :func:`dense_backward` carries it into ``dW`` and ``db``.
    """
    t = h.dtype.type
    n = h.shape[0]
    lam = t(lam)
    d1 = act.derivative_from_output(activation, h)
    d2 = act.second_derivative_from_output(activation, h)
    s = (W * W).sum(axis=1)
    d1sq = d1 * d1
    value = lam * (d1sq @ s).mean()
    dW_direct = (2 * lam) * W * d1sq.mean(axis=0)[:, None]
    dz = (2 * lam / t(n)) * s * d1 * d2
    return value, dW_direct, dz


def weight_decay(W, grad, wd):
    """L2 weight decay ``P = ½ wd Σ W²``: adds ``wd W`` to ``grad`` in place and returns ``P``."""
    wd = W.dtype.type(wd)
    grad += wd * W
    return wd * 0.5 * np.sum(W * W)


# ---------------------------------------------------------------------------------------------------------------
# Corruption (denoising autoencoders)
# ---------------------------------------------------------------------------------------------------------------
def mask_noise(x, p, key, step, row0=0):
    """Masking noise: ``x̃ = x ⊙ [u ≥ p]`` with ``u ~ U(0, 1)`` from the noise stream, so each entry is zeroed
    with probability ``p``."""
    u = rng.uniform(key, rng.STREAM_NOISE, step, x.shape[0], x.shape[1], dtype=x.dtype, row0=row0)
    return np.where(u >= x.dtype.type(p), x, x.dtype.type(0))


def gaussian_noise(x, sigma, key, step, row0=0):
    """Additive Gaussian noise: ``x̃ = x + σ ε`` with ``ε ~ N(0, I)`` from the noise stream."""
    e = rng.normal(key, rng.STREAM_NOISE, step, x.shape[0], x.shape[1], dtype=x.dtype, row0=row0)
    return x + x.dtype.type(sigma) * e


# ---------------------------------------------------------------------------------------------------------------
# Gaussian latent of the VAE
# ---------------------------------------------------------------------------------------------------------------
def clamp_logvar(logvar):
    """``clip(log σ², LOGVAR_MIN, LOGVAR_MAX)``."""
    t = logvar.dtype.type
    return np.clip(logvar, t(LOGVAR_MIN), t(LOGVAR_MAX))


def gaussian_latent(mu, logvar, beta, key, step, row0=0, stream=rng.STREAM_EPS):
    """Reparameterised sample and its KL term.

    With ``ℓ = clamp(log σ²)`` and ``ε ~ N(0, I)`` drawn from ``stream`` at ``(key, step, row0 + row, col)``:
    ``z = μ + exp(½ ℓ) ε`` and ``K = β (1/B) Σ_b −½ Σ_j (1 + ℓ_bj − μ_bj² − exp(ℓ_bj))``.
    Returns ``(z, K)``.
    """
    t = mu.dtype.type
    n, k = mu.shape
    lv = clamp_logvar(logvar)
    eps = rng.normal(key, stream, step, n, k, dtype=mu.dtype, row0=row0)
    z = mu + np.exp(t(0.5) * lv) * eps
    kl = t(-0.5) * (1 + lv - mu * mu - np.exp(lv)).sum(axis=1)
    return z, t(beta) * kl.mean()


def gaussian_latent_backward(dz, z, mu, logvar, beta):
    """Gradients of :func:`gaussian_latent`'s ``z`` (through ``dz``) and ``K`` with respect to ``μ`` and
    ``log σ²``.

    ``dμ = dz + β μ / B`` and ``d log σ² = [dz ½ (z − μ) + (β/2B)(exp(ℓ) − 1)] · 1[ℓ unclamped]``, using
    ``exp(½ ℓ) ε = z − μ`` so that ``ε`` need not be kept. Returns ``(dμ, d log σ²)``.
    """
    t = mu.dtype.type
    n = mu.shape[0]
    lv = clamp_logvar(logvar)
    beta = t(beta)
    dmu = dz + beta * mu / t(n)
    dlv = dz * t(0.5) * (z - mu) + (beta / t(2 * n)) * (np.exp(lv) - 1)
    inside = (logvar >= t(LOGVAR_MIN)) & (logvar <= t(LOGVAR_MAX))
    return dmu, np.where(inside, dlv, t(0))


def gaussian_kl_rows(mu, logvar):
    """Per-row ``KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ_j (1 + ℓ − μ² − exp(ℓ))`` with ``ℓ = clamp(log σ²)``."""
    lv = clamp_logvar(logvar)
    return mu.dtype.type(-0.5) * (1 + lv - mu * mu - np.exp(lv)).sum(axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Optimisers. Each writes the new parameters into ``out`` (never into ``p``), updates its state in place and
# returns whether ``out`` is all finite, so a diverging step can be refused with ``p`` still intact.
# ---------------------------------------------------------------------------------------------------------------
def output_loss_grad_bf16(h16, Wb, c, x, loss, transpose=False):
    """:func:`output_loss_grad` with the output layer's product of bfloat16 operands (``h16`` patterns,
    ``Wb`` as :func:`bf16_weight` gives it); the loss and ``delta = (x̂ − x)/B`` in float32. Returns
    ``(loss, delta, delta's bfloat16 patterns)``: the operand of the backward products."""
    value, delta = output_loss_grad(precision.widen(h16), Wb.values, c, x, loss, transpose)
    return value, delta, precision.to_bf16(delta)


def output_row_loss_bf16(h16, Wb, c, x, loss, transpose=False):
    """:func:`output_row_loss` with the product of bfloat16 operands."""
    return output_row_loss(precision.widen(h16), Wb.values, c, x, loss, transpose)


def dense_backward_bf16(delta, d16, x16, Wb, transpose=False, need_dx=True):
    """:func:`dense_backward` with the products of bfloat16 operands: ``d16`` is ``delta`` rounded (as
    :func:`to_bf16` gives it), ``x16`` and ``Wb`` are bfloat16 already; ``db`` (no product) is the column sum of
    the float32 ``delta``."""
    dW, _, dx = dense_backward(precision.widen(d16), precision.widen(x16), Wb.values, transpose, need_dx)
    return dW, delta.sum(axis=0), dx


def activation_backward_bf16(dh, h, activation):
    """:func:`activation_backward` (in place in ``dh``), and the result's bfloat16 patterns: ``(delta, d16)``,
    the operands of the layer's backward products."""
    delta = activation_backward(dh, h, activation)
    return delta, precision.to_bf16(delta)


def permutation(key, stream, step, n):
    """The order of the rows of an epoch: :func:`fastae.rng.permutation` (a NumPy ``int64`` array on the host)."""
    return rng.permutation(key, stream, step, n)


def sgd_update(p, g, out, lr):
    """``p ← p − lr g``, written into ``out``.

    Every update writes the new parameters into ``out`` (never into ``p``), updates its state in place and
    returns whether every new value is finite. ``out`` may be ``g`` itself: the gradient is then consumed (read
    before it is overwritten), which is how the optimiser calls these."""
    np.subtract(p, p.dtype.type(lr) * g, out=out)
    return bool(np.isfinite(out).all())


def _flush_subnormal(state):
    """Store state below the smallest normal number as 0, in place. A zero gradient (a dead unit) decays a momentum
    into the subnormal range, where it stays (``0.9·k·2⁻¹⁴⁹`` rounds back to ``k·2⁻¹⁴⁹``) and makes every step
    slow on x86; a state that small moves its parameter by less than about 1e-33 (kernels/cpu/optim.py)."""
    state[np.abs(state) < np.finfo(state.dtype).tiny] = 0


def momentum_update(p, g, buf, out, lr, momentum, nesterov):
    """Heavy-ball momentum as in ``torch.optim.SGD``: ``v ← μ v + g``; ``p ← p − lr v``, or with Nesterov
    ``p ← p − lr (g + μ v)``. A subnormal ``v`` is stored as 0 (:func:`_flush_subnormal`)."""
    t = p.dtype.type
    buf *= t(momentum)
    buf += g
    _flush_subnormal(buf)
    step = g + t(momentum) * buf if nesterov else buf
    np.subtract(p, t(lr) * step, out=out)
    return bool(np.isfinite(out).all())


def adam_scalars(lr, beta1, beta2, t_step):
    """``(lr / (1 − β₁ᵗ), 1 / √(1 − β₂ᵗ))`` in float64: the per-step scalars of :func:`adam_update`."""
    return lr / (1 - beta1**t_step), 1 / math.sqrt(1 - beta2**t_step)


def adam_update(p, g, m, v, out, lr, beta1, beta2, eps, t_step):
    """Adam as in ``torch.optim.Adam`` (except that a subnormal ``m`` or ``v`` is stored as 0:
    :func:`_flush_subnormal`): ``m ← β₁ m + (1−β₁) g``, ``v ← β₂ v + (1−β₂) g²``,
    ``p ← p − lr m̂ / (√v̂ + ε)`` with ``m̂ = m / (1 − β₁ᵗ)``, ``v̂ = v / (1 − β₂ᵗ)`` and ``t = t_step ≥ 1``.

    Written as torch computes it, ``p − s·(m / (√v·r + ε))`` with the scalars ``s = lr / (1 − β₁ᵗ)`` and
    ``r = 1 / √(1 − β₂ᵗ)`` formed in float64: one division and one square root per element instead of three
    divisions and a root, which is what bounds the compiled kernels (docs/performance.md, *Kernel notes*)."""
    t = p.dtype.type
    m *= t(beta1)
    m += t(1 - beta1) * g
    v *= t(beta2)
    v += t(1 - beta2) * (g * g)
    _flush_subnormal(m)
    _flush_subnormal(v)
    step, rs = adam_scalars(lr, beta1, beta2, t_step)
    denom = np.sqrt(v) * t(rs) + t(eps)
    np.subtract(p, t(step) * (m / denom), out=out)
    return bool(np.isfinite(out).all())


# ---------------------------------------------------------------------------------------------------------------
# Lifecycle (fastae.backends.contract)
# ---------------------------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------------------------
# bfloat16 products (capability "bf16_products"): operands rounded to bfloat16, float32 sums, float32 epilogues
# ---------------------------------------------------------------------------------------------------------------
def bf16_input(x, unit_interval):
    """``(ok, x16)``: the bfloat16 patterns of the float32 input ``x`` (round to nearest even) and whether every
    value is finite and, with ``unit_interval``, in [0, 1] (the boundary scan, made by the same pass)."""
    ok = bool(np.isfinite(x).all() and (not unit_interval or ((x >= 0) & (x <= 1)).all()))
    return ok, precision.to_bf16(x)


def to_bf16(x):
    """The bfloat16 patterns of float32 ``x`` (codes to decode, say)."""
    return precision.to_bf16(x)


def bf16_weight(W, bits=None):
    """The bfloat16 form of a float32 weight that :func:`dense_forward_bf16` takes: a
    :class:`fastae.precision.BF16Weight` of its patterns (their float32 values widened on first use). ``bits``:
    the patterns, already made (by the update that wrote ``W``: :func:`adam_update_bf16`)."""
    return precision.BF16Weight(precision.to_bf16(W) if bits is None else bits)


def sgd_update_bf16(p, g, out, out16, lr):
    """:func:`sgd_update`, and ``out16[...]`` = the new parameters' bfloat16 patterns: the copy the next step's
    products take, written by the update that makes it (``out16`` is written even when the flag is False)."""
    ok = sgd_update(p, g, out, lr)
    out16[...] = precision.to_bf16(out)
    return ok


def momentum_update_bf16(p, g, buf, out, out16, lr, momentum, nesterov):
    """:func:`momentum_update`, and the new parameters' bfloat16 patterns in ``out16`` (:func:`sgd_update_bf16`)."""
    ok = momentum_update(p, g, buf, out, lr, momentum, nesterov)
    out16[...] = precision.to_bf16(out)
    return ok


def adam_update_bf16(p, g, m, v, out, out16, lr, beta1, beta2, eps, t_step):
    """:func:`adam_update`, and the new parameters' bfloat16 patterns in ``out16`` (:func:`sgd_update_bf16`)."""
    ok = adam_update(p, g, m, v, out, lr, beta1, beta2, eps, t_step)
    out16[...] = precision.to_bf16(out)
    return ok


def dense_forward_bf16_pair(x16, Wb, b, activation, transpose=False):
    """:func:`dense_forward_bf16` for training: ``(h, h16)``, the float32 output (which the backward pass reads)
    and its bfloat16 patterns (the next product's operand), made by the same epilogue."""
    h = dense_forward_bf16(x16, Wb, b, activation, transpose)
    return h, precision.to_bf16(h)


def dense_forward_bf16(x16, Wb, b, activation, transpose=False, out=None, bf16_out=False):
    """:func:`dense_forward` with bfloat16 operands: ``h = f(x Wᵀ + b)`` where ``x`` (patterns) and ``W``
    (:func:`bf16_weight`'s form) are bfloat16, every product of two of them exact in float32 and the sums
    float32; ``b`` and ``h`` float32. With ``bf16_out`` the result is ``h``'s bfloat16 patterns, the input of a
    next bfloat16 product (``out`` then receives them, uint16)."""
    x, W = precision.widen(x16), Wb.values
    h = act.apply(activation, _product(x, W, transpose) + b)
    if bf16_out:
        h = precision.to_bf16(h)
    if out is None:
        return h
    out[...] = h
    return out


def session():
    """A context a model holds around a whole fit, or an encode of several chunks, for backends that set up
    threads for it (``numba_pool.session``); this backend has nothing to set up."""
    return contextlib.nullcontext()


def unavailable():
    """Always ``None``: the reference runs wherever NumPy does."""
    return None


def warmup(dtypes=DTYPES):
    """Nothing to compile."""


def to_numpy(a):
    """``a`` itself: this backend's arrays are NumPy's."""
    return np.asarray(a)
