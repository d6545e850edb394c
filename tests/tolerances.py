"""The tolerance model: how far a backend's result may lie from the float64 reference, from error analysis.

Every comparison of a backend (float32 or float64) with the float64 reference computed from the same inputs
goes through :func:`close`. The allowed error of each element is

    |got − want| ≤ err + ELEMENT_ULPS · u · |want| + tiny,

* ``u`` is the unit roundoff of the backend's dtype (2⁻²⁴ for float32, 2⁻⁵³ for float64);
* ``err`` is the propagated bound of every sum that fed the element (:func:`sum_err`, combined with
  :func:`matmul_err` and the rules below), zero for a purely elementwise result;
* ``ELEMENT_ULPS · u · |want|`` covers the element's own few roundings (a bias add, an activation, a scale by
  ``1/B``) and the polynomial ``exp``/``tanh``/``log1p`` of the kernels, which are within 3 ulps
  (kernels/cpu/fmath.py);
* ``tiny`` is the smallest normal number of the dtype: a result in the subnormal range may be flushed or
  rounded on a coarser grid, and nothing below it is meaningful.

The sum bound. A sum ``s = Σ_{i<n} t_i`` evaluated in floating point in *any* order (recursive, pairwise,
blocked, split across threads or SIMD lanes, with or without FMA) satisfies

    |ŝ − s| ≤ γ_{n−1} Σ |t_i|,   γ_k = k u / (1 − k u)

(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1 and §4.2: every term passes through at
most ``n − 1`` additions; for a dot product each term also carries its multiplication, so ``γ_n``). The bound
holds for every summation order a BLAS may choose on any processor, which is the point: a tolerance proportional
to ``|s|`` held only for one library's order, and failed where the terms cancel. So the growth factor used here
is ``n`` itself, the worst case, not the ``√n`` of probabilistic analyses (Higham & Mary 2019), which assume
independent rounding errors that structured data and shared blockings need not give. While ``n u ≤ 1/64``,
``γ_n ≤ 1.016 n u``; :func:`sum_err` refuses longer sums, where the bound is no longer informative.

``SUM_C = 2`` counts two evaluations of the same sum: the backend's and the reference's (the latter matters only
when the backend is float64 too, and ``γ`` of float64 is then the same size).

Composition (first order, every later rounding within ``ELEMENT_ULPS``):

* an activation, a loss derivative or any map with Lipschitz constant ``L ≤ 1`` (sigmoid ¼, tanh, relu, linear
  1, ``σ(a) − x``, softplus) carries the error of its argument at most unchanged, so its ``err`` is its input's;
* a product of a computed array with exact data, ``Â @ B``, carries ``err_A @ |B|`` beside its own sum bound
  (:func:`matmul_err`);
* a scale by ``c`` scales ``err`` by ``|c|``.

The module holds the rules (:func:`sum_err`, :func:`matmul_err`, :func:`rows_err`, ...), the bounds of each
reference op composed from them (``*_err``, named after the op), and :class:`ErrorBackend`, which applies the same
rules op by op while a whole model's reference objective and gradients run through it (a running error analysis),
so that every variant of every model gets its bound without a formula of its own.

This model is what catches bugs: dropping one of ``n`` comparable terms moves a sum by about ``Σ|t|/n``, which
exceeds ``2 n u Σ|t|`` whenever ``n² < 1/(2u)``, i.e. ``n ≤ 2896`` in float32, and by far in float64.
"""

from __future__ import annotations

import numpy as np

from fastae import activations
from fastae.backends import numpy_ref as ref
from fastae.constants import RHO_HAT_EPS

SUM_C = 2
ELEMENT_ULPS = 32


def unit(dtype) -> float:
    """The unit roundoff ``u`` of ``dtype`` (half its machine epsilon)."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def growth(n: int, dtype) -> float:
    """``γ_n / u`` to within 1.6 %, i.e. ``n``: the worst-case growth of a sum of ``n`` terms (see the module)."""
    if n * unit(dtype) > 1 / 64:
        raise ValueError(f"a sum of {n} terms in {np.dtype(dtype).name} is beyond the bound's useful range")
    return float(max(n, 1))


def sum_err(scale, n: int, dtype) -> np.ndarray:
    """Bound on the rounding error of sums of ``n`` terms whose absolute values sum to ``scale`` (float64)."""
    return SUM_C * growth(n, dtype) * unit(dtype) * np.asarray(scale, dtype=np.float64)


def f64(*arrays):
    """The arrays as float64 (their exact values)."""
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def abs_matmul(A, B) -> np.ndarray:
    """``|A| @ |B|`` in float64: the sum of the absolute values of the terms of every element of ``A @ B``."""
    return np.abs(np.asarray(A, dtype=np.float64)) @ np.abs(np.asarray(B, dtype=np.float64))


def matmul_err(A, B, dtype, bias=None, err_A=None, err_B=None) -> np.ndarray:
    """Bound on the error of ``A @ B (+ bias)`` computed in ``dtype``: its own sum of ``k + 1`` terms, plus the
    propagated errors ``err_A @ |B| + |A| @ err_B`` of inputs that were themselves computed."""
    scale = abs_matmul(A, B)
    k = np.shape(A)[-1]
    if bias is not None:
        scale = scale + np.abs(np.asarray(bias, dtype=np.float64))
        k += 1
    err = sum_err(scale, k, dtype)
    if err_A is not None:
        err = err + np.asarray(err_A, dtype=np.float64) @ np.abs(np.asarray(B, dtype=np.float64))
    if err_B is not None:
        err = err + np.abs(np.asarray(A, dtype=np.float64)) @ np.asarray(err_B, dtype=np.float64)
    return err


def rows_err(terms, dtype, err_terms=None) -> np.ndarray:
    """Bound on the error of the row sums of ``terms`` (2-D, float64 values of the summed terms), plus the sum of
    the terms' own propagated errors ``err_terms``."""
    t = np.asarray(terms, dtype=np.float64)
    err = sum_err(np.abs(t).sum(axis=1), t.shape[1], dtype)
    if err_terms is not None:
        err = err + np.broadcast_to(np.asarray(err_terms, dtype=np.float64), t.shape).sum(axis=1)
    return err


def cols_err(terms, dtype, err_terms=None) -> np.ndarray:
    """As :func:`rows_err`, for column sums."""
    return rows_err(
        np.asarray(terms).T,
        dtype,
        None if err_terms is None else np.broadcast_to(np.asarray(err_terms, dtype=np.float64), np.shape(terms)).T,
    )


def mean_err(terms, dtype, err_terms=None) -> float:
    """Bound on the error of the mean of all of ``terms`` (their sum of ``terms.size`` terms, then one division)."""
    t = np.asarray(terms, dtype=np.float64).reshape(1, -1)
    e = (
        None
        if err_terms is None
        else np.broadcast_to(np.asarray(err_terms, dtype=np.float64), np.shape(terms)).reshape(1, -1)
    )
    return float(rows_err(t, dtype, e)[0]) / t.shape[1]


def bound(want, dtype, err=0.0) -> np.ndarray:
    """The allowed ``|got − want|`` of each element (see the module)."""
    want = np.asarray(want, dtype=np.float64)
    u = unit(dtype)
    tiny = float(np.finfo(np.dtype(dtype)).tiny)
    return np.asarray(err, dtype=np.float64) + ELEMENT_ULPS * u * np.abs(want) + tiny


def close(got, want, dtype, err=0.0, what=""):
    """Assert that ``got`` (of ``dtype``, unless a Python number) is the float64 ``want`` within :func:`bound`; NaN
    must match NaN and an infinity the same infinity. The message names the worst element, its error and its
    bound."""
    got_arr = np.asarray(got)
    dtype = np.dtype(dtype)
    if isinstance(got, (np.ndarray, np.generic)) and got_arr.dtype != dtype:  # a Python float carries none
        raise AssertionError(f"{what}: dtype {got_arr.dtype}, expected {dtype}")
    g = got_arr.astype(np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        raise AssertionError(f"{what}: shape {g.shape}, expected {w.shape}")
    same_special = (np.isnan(g) & np.isnan(w)) | (np.isinf(w) & (g == w))
    if not np.array_equal(np.isfinite(g), np.isfinite(w)) or not same_special[~np.isfinite(w)].all():
        raise AssertionError(f"{what}: non-finite values differ\n got {g}\nwant {w}")
    fin = np.isfinite(w)
    diff = np.where(fin, np.abs(g - np.where(fin, w, 0)), 0.0)
    allowed = np.broadcast_to(bound(np.where(fin, w, 0), dtype, err), w.shape)
    if (diff > allowed).any():
        ratio = np.where(fin, diff / allowed, 0)
        i = np.unravel_index(int(np.argmax(ratio)), w.shape) if w.ndim else ()
        n_bad = int((diff > allowed).sum())
        raise AssertionError(
            f"{what}: {n_bad} of {w.size} elements outside the tolerance model; worst at {i}: got {g[i]!r}, "
            f"want {w[i]!r}, |error| {diff[i]:.3e} > bound {allowed[i]:.3e} ({ratio[i]:.2f}x) in {dtype.name}"
        )


# ---------------------------------------------------------------------------------------------------------------
# Bounds of the reference's layer ops, composed from the rules above; inputs that were themselves computed carry
# their bound in ``err_*``. Every activation here has Lipschitz constant at most 1.
# ---------------------------------------------------------------------------------------------------------------
def dense_forward_err(x, W, b, dtype, transpose=False, err_x=None) -> np.ndarray:
    """Bound on ``f(x Wᵀ + b)`` (``f(x W + b)`` with ``transpose``), any activation."""
    return matmul_err(x, W if transpose else np.transpose(W), dtype, bias=b, err_A=err_x)


def activation_backward_err(dh, h, dtype, err_dh=None) -> np.ndarray:
    """Bound on ``dh ⊙ f'(a)`` with ``f'`` through ``h`` (|h| ≤ 1 where it matters): ``1 − h`` or ``1 − h²`` is
    one cancellation of terms of magnitude at most ``1 + |h|``; ``|f'| ≤ 1`` carries ``err_dh``."""
    dh, h = f64(dh, h)
    err = sum_err(np.abs(dh) * (1 + np.abs(h)), 2, dtype)
    return err if err_dh is None else err + np.asarray(err_dh, dtype=np.float64)


def dense_backward_err(delta, x, W, dtype, transpose=False, err_delta=None):
    """Bounds ``(dW, db, dx)`` of :func:`fastae.backends.numpy_ref.dense_backward`."""
    eT = None if err_delta is None else np.transpose(err_delta)
    if transpose:
        dW = matmul_err(np.transpose(x), delta, dtype, err_B=err_delta)
        dx = matmul_err(delta, np.transpose(W), dtype, err_A=err_delta)
    else:
        dW = matmul_err(np.transpose(delta), x, dtype, err_A=eT)
        dx = matmul_err(delta, W, dtype, err_A=err_delta)
    return dW, cols_err(delta, dtype, err_delta), dx


def output_err(h, W, c, x, loss, dtype, transpose=False, err_h=None):
    """Bounds ``(L, delta, row_loss)`` of :func:`fastae.backends.numpy_ref.output_loss_grad` and
    ``output_row_loss``.

    ``a = h Wᵀ + c`` carries its product's bound ``e_a``. ``delta = (g(a) − x)/B`` carries ``e_a`` (``g`` is
    sigmoid or the identity) and the cancellation of its two terms. The elementwise loss carries ``|ℓ'(a)| e_a``
    (``|σ(a) − x| ≤ 1`` for cross-entropy, ``|a − x|`` for squared error) and the rounding of its own terms
    (``softplus(a)``, ``x a``; ``a − x``); the row loss and the mean add their sums' bounds.
    """
    h, W, c, x = f64(h, W, c, x)
    Wm = W if transpose else W.T
    a = h @ Wm + c
    e_a = matmul_err(h, Wm, dtype, bias=c, err_A=err_h)
    n = x.shape[0]
    xhat = activations.apply(activations.output_activation(loss), a)
    e_delta = (e_a + sum_err(np.abs(xhat) + np.abs(x), 2, dtype)) / n
    terms = ref._elementwise_loss(a, x, loss)
    if loss == "bce":
        e_terms = np.abs(xhat - x) * e_a + sum_err(np.abs(terms) + 2 * np.abs(x * a), 3, dtype)
    else:
        d = np.abs(a - x)
        e_terms = d * (e_a + sum_err(np.abs(a) + np.abs(x), 2, dtype))
    return mean_err(terms, dtype, e_terms), e_delta, rows_err(terms, dtype, e_terms)


def two_err(a, b, dtype) -> np.ndarray:
    """Bound on ``a + b`` (or ``a − b``) from the magnitudes of its two terms."""
    return sum_err(np.abs(np.asarray(a, dtype=np.float64)) + np.abs(np.asarray(b, dtype=np.float64)), 2, dtype)


# ---------------------------------------------------------------------------------------------------------------
# Bounds of the reference's regulariser, latent and optimiser ops.
# ---------------------------------------------------------------------------------------------------------------
def gaussian_noise_err(x, want, dtype) -> np.ndarray:
    """Bound on ``x + σ ε``: two terms, the draw ``σ ε = want − x`` carrying its own few roundings (the log, square
    root and cosine of Box-Muller, and the scale)."""
    x, want = f64(x, want)
    return two_err(x, want - x, dtype) + 8 * unit(dtype) * np.abs(want - x)


def gaussian_kl_rows_err(mu, logvar, dtype) -> np.ndarray:
    """Bound on the KL rows ``−½ Σ_j (1 + ℓ − μ² − exp ℓ)``: a row sum of the ``4k`` parts, the square and the
    exponential each carrying a few roundings of their own (both evaluations)."""
    mu, lv = f64(mu, logvar)
    ell = ref.clamp_logvar(lv)
    e = np.exp(ell)
    zero = np.zeros_like(ell)
    parts = np.concatenate([np.ones_like(ell), ell, mu * mu, e], axis=1)
    return 0.5 * rows_err(parts, dtype, err_terms=4 * unit(dtype) * np.concatenate([zero, zero, mu * mu, e], axis=1))


def gaussian_latent_err(mu, logvar, beta, want_z, dtype):
    """Bounds ``(z, K)`` of :func:`fastae.backends.numpy_ref.gaussian_latent`: ``z = μ + exp(½ℓ) ε`` is a sum of
    two terms, the second carrying the roundings of the draw, the exponential and the product; ``K`` is ``β``
    times the mean of the KL rows."""
    mu64, want_z = f64(mu, want_z)
    term = np.abs(want_z - mu64)
    err_z = sum_err(np.abs(mu64) + term, 2, dtype) + 8 * unit(dtype) * term
    err_rows = gaussian_kl_rows_err(mu, logvar, dtype)
    rows = ref.gaussian_kl_rows(*f64(mu, logvar))
    return err_z, abs(beta) * (float(np.mean(err_rows)) + mean_err(rows, dtype))


def gaussian_latent_backward_err(dz, z, mu, logvar, beta, dtype):
    """Bounds ``(dμ, d log σ²)``: ``dz + βμ/B`` (two terms) and ``½ dz (z − μ) + (β/2B) exp ℓ − β/2B`` (three
    terms: ``exp ℓ − 1`` cancels near ℓ = 0)."""
    dz, z, mu, lv = f64(dz, z, mu, logvar)
    n = mu.shape[0]
    c = abs(beta) / (2 * n)
    err_mu = two_err(dz, beta * mu / n, dtype)
    err_lv = sum_err(0.5 * np.abs(dz * (z - mu)) + c * np.exp(ref.clamp_logvar(lv)) + c, 3, dtype)
    return err_mu, err_lv


def l1_penalty_err(h, lam, dtype):
    """Bounds ``(P, rows)`` of the L1 penalty: row sums of ``|h|``, then ``λ`` times their mean (``dP/dh`` is
    elementwise)."""
    a = np.abs(f64(h)[0])
    err_rows = rows_err(a, dtype)
    return abs(lam) * (float(np.mean(err_rows)) + mean_err(a.sum(axis=1), dtype)), err_rows


def kl_sparsity_err(h, rho, beta, dtype):
    """Bounds ``(ρ̂, P, dP/dh)`` of KL sparsity, from the column means' sum bound propagated to first order.

    ``ρ̂_j`` is a column mean (clipping is Lipschitz 1), then stored in the dtype, as is ``ρ``; ``P`` and the
    gradient move with them by their derivatives. ``P = β Σ_j (a_j + b_j)`` with ``a_j = ρ log(ρ/ρ̂_j)``,
    ``b_j = (1−ρ) log((1−ρ)/(1−ρ̂_j))`` is a sum of ``2k`` terms that cancel near ``ρ̂ = ρ``, each log also
    carrying the rounding of its argument; the gradient's ``−ρ/ρ̂ + (1−ρ)/(1−ρ̂)`` is a sum of two terms.
    """
    u = unit(dtype)
    (h,) = f64(h)
    n = h.shape[0]
    rh = np.clip(h.mean(axis=0), 1e-6, 1 - 1e-6)
    err_rh = cols_err(h, dtype) / n
    e = err_rh + u * rh
    e_rho = u * rho
    a, b = rho * np.log(rho / rh), (1 - rho) * np.log((1 - rho) / (1 - rh))
    g = -rho / rh + (1 - rho) / (1 - rh)
    dP_drho = np.log(rho / rh) - np.log((1 - rho) / (1 - rh))
    err_P = abs(beta) * (
        float(sum_err(np.sum(np.abs(a) + np.abs(b) + 1), 2 * rh.size, dtype))
        + float(np.sum(np.abs(g) * e + np.abs(dP_drho) * e_rho))
    )
    t1, t2 = rho / rh, (1 - rho) / (1 - rh)
    dg_drh = rho / rh**2 + (1 - rho) / (1 - rh) ** 2
    dg_drho = 1 / rh + 1 / (1 - rh)
    err_g = abs(beta) / n * (sum_err(t1 + t2, 2, dtype) + dg_drh * e + dg_drho * e_rho)
    return err_rh, err_P, np.broadcast_to(err_g, h.shape)


def contractive_penalty_err(h, W, activation, lam, dtype):
    """Bounds ``(P, dW_direct, dz, rows)`` of the contractive penalty, and the float64 rows.

    ``s_j = Σ_i W_ji²`` is a sum of ``n_in`` terms, stored in the dtype; ``f'`` is ``h(1−h)`` (relative roundings
    only: ``h`` is exact) or ``1 − h²`` (two terms that cancel near ``|h| = 1``); ``dz = c s f' f''`` and
    ``f'' ∝ f'`` carry ``s``'s relative error once and ``f'``'s twice; ``m_j = mean_b f'²`` is a column mean;
    ``rows_b = Σ_j f'² s_j`` a row sum of ``k`` terms, and ``P`` is ``λ`` times their mean.
    """
    u = unit(dtype)
    h, W = f64(h, W)
    n = h.shape[0]
    d1 = activations.derivative_from_output(activation, h)
    d2 = activations.second_derivative_from_output(activation, h)
    s = (W * W).sum(axis=1)
    e_s = rows_err(W * W, dtype) + u * s
    e_d1 = sum_err(1 + h * h, 2, dtype) if activation == "tanh" else np.zeros_like(h)
    c = 2 * lam / n
    err_dz = c * (e_s * np.abs(d1 * d2) + 2 * s * np.abs(d2) * e_d1)
    err_m = cols_err(d1 * d1, dtype, err_terms=2 * np.abs(d1) * e_d1) / n
    err_dW = 2 * lam * np.abs(W) * err_m[:, None]
    rows = (d1 * d1) @ s
    err_rows = rows_err(d1 * d1 * s, dtype, err_terms=d1 * d1 * e_s + 2 * np.abs(d1) * e_d1 * s)
    err_P = abs(lam) * (float(np.mean(err_rows)) + mean_err(rows, dtype))
    return err_P, err_dW, err_dz, err_rows, rows


def weight_decay_err(W, g, wd, dtype):
    """Bounds ``(P, grad)`` of weight decay: ``½ wd Σ W²`` is one sum of ``W.size`` terms; ``g + wd W`` two."""
    W, g = f64(W, g)
    return 0.5 * abs(wd) * float(sum_err(np.sum(W * W), W.size, dtype)), two_err(g, wd * W, dtype)


def update_err(
    kind,
    p,
    g,
    state,
    dtype,
    lr,
    momentum=0.9,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    t_step=1,
    err_p=0.0,
    err_g=0.0,
    err_state=(0.0, 0.0),
):
    """Bounds on the outputs of an optimiser update (``kind`` one of ``sgd``, ``momentum``, ``nesterov``,
    ``adam``): the new parameters, then the new state (``(buf,)`` or ``(m, v)``), given bounds on the inputs.

    Each sum of two terms is bounded by their magnitudes (``p − lr·s``, ``μ v + g``, ``β m + (1−β) g``) and the
    inputs' bounds are carried through. Adam's step ``s·q`` with ``q = m / D``, ``D = √v r + ε`` carries ``m``'s
    and ``v``'s bounds to first order (``∂q/∂m = 1/D``, ``∂q/∂v = −q r / (2√v D)``) and its own roundings (√, ×r,
    +ε, ÷, ×s and the scalars in the dtype: at most 8 per evaluation). The magnitudes are the reference's float64
    values of the inputs.
    """
    (p, g), st = f64(p, g), f64(*state)
    e_g = np.asarray(err_g, dtype=np.float64)
    if kind == "sgd":
        return (err_p + lr * e_g + two_err(p, lr * g, dtype),)
    if kind in ("momentum", "nesterov"):
        b = momentum * st[0] + g
        e_b = momentum * err_state[0] + e_g + two_err(momentum * st[0], g, dtype)
        if kind == "nesterov":
            step, e_step = g + momentum * b, e_g + momentum * e_b + two_err(g, momentum * b, dtype)
        else:
            step, e_step = b, e_b
        return err_p + lr * e_step + two_err(p, lr * step, dtype), e_b
    m, v = st
    m1 = beta1 * m + (1 - beta1) * g
    v1 = beta2 * v + (1 - beta2) * g * g
    e_m = beta1 * err_state[0] + (1 - beta1) * e_g + two_err(beta1 * m, (1 - beta1) * g, dtype)
    e_v = beta2 * err_state[1] + (1 - beta2) * 2 * np.abs(g) * e_g + two_err(beta2 * v, (1 - beta2) * g * g, dtype)
    s, r = ref.adam_scalars(lr, beta1, beta2, t_step)
    sv = np.sqrt(v1)
    D = sv * r + eps
    q = m1 / D
    dq_dv = np.divide(np.abs(q) * r, 2 * sv * D, out=np.zeros_like(q), where=sv > 0)
    e_q = e_m / D + dq_dv * e_v + SUM_C * 8 * unit(dtype) * np.abs(q)
    return err_p + s * e_q + two_err(p, s * q, dtype), e_m, e_v


# ---------------------------------------------------------------------------------------------------------------
# Whole models: a running error analysis through the model's own code.
# ---------------------------------------------------------------------------------------------------------------
# Ulps of an intermediate element's own roundings, counted for both evaluations (backend and reference): an
# activation's polynomial (≤ 3 ulps, kernels/cpu/fmath.py), a loss term's exp and log1p, a product or two.
INTERMEDIATE_ULPS = 8


class ErrorBackend:
    """A backend for the reference model's own ``_loss_and_grads`` that computes, beside the float64 reference
    values, the first-order bound on how far a ``dtype`` backend's results may lie from them: a running error
    analysis of the objective, one op at a time, so that every variant gets its bound from the same few rules
    (tests/tolerances.py): each sum adds its own :func:`sum_err`; a product carries ``err_A @ |B| + |A| @ err_B``
    (:func:`matmul_err`); an elementwise map carries its argument's error times its slope; every intermediate
    element adds ``INTERMEDIATE_ULPS`` ulps of its own roundings.

    Forward ops return the true values and keep each result's error aside (by ``id``; an input not made here is
    exact data). Backward quantities travel as ``np.stack([value, err])``: the sums the model forms itself
    (``dcode + g``, ``dh + dh2``, a tied weight's two terms) then add values and errors alike, and the loss
    comes back as ``[value, err]``. Not covered: a ReLU or ``sign`` whose argument lies within its error of 0 is
    handled where this backend sees the argument (ReLU's derivative, L1's sign) and nowhere else."""

    xp = np
    output_activation = staticmethod(activations.output_activation)

    def __init__(self, dtype):
        self.dtype, self.u = np.dtype(dtype), unit(dtype)
        self._kept = {}

    def _keep(self, a, err, z=None):
        self._kept[id(a)] = (a, err, z)
        return a

    def error_of(self, a):
        """The error bound kept for the forward result ``a`` (zeros for exact data)."""
        k = self._kept.get(id(a))
        return np.zeros(np.shape(a)) if k is None else k[1]

    def _d1(self, name, h):
        """``f'(h)`` and its error from ``h``'s: ``|d f'/dh|`` is ``|1 − 2h|`` (sigmoid), ``2|h|`` (tanh, whose
        ``1 − h²`` also cancels), 0 (linear); ReLU's step is unknown where ``z`` lies within its error of 0."""
        _, eh, z = self._kept.get(id(h), (h, np.zeros(h.shape), None))
        d1 = activations.derivative_from_output(name, h)
        own = INTERMEDIATE_ULPS * self.u * np.abs(d1)
        if name == "sigmoid":
            return d1, (np.abs(1 - 2 * h) + 2 * eh) * eh + own
        if name == "tanh":
            return d1, (2 * np.abs(h) + 2 * eh) * eh + own + INTERMEDIATE_ULPS * self.u * h * h
        if name == "relu" and z is not None:
            return d1, (np.abs(z) <= eh).astype(np.float64)
        return d1, np.zeros(h.shape)

    def mask_noise(self, x, *args, **kw):
        return ref.mask_noise(x, *args, **kw)  # exact: x or 0

    def gaussian_noise(self, x, *args, **kw):
        xt = ref.gaussian_noise(x, *args, **kw)  # σε rounded to dtype, then the sum
        return self._keep(xt, INTERMEDIATE_ULPS * self.u * (np.abs(xt) + np.abs(xt - x)))

    def dense_forward(self, x, W, b, activation, transpose=False, out=None):
        Wt = W if transpose else W.T
        z = x @ Wt + b
        err_z = matmul_err(x, Wt, self.dtype, bias=b, err_A=self.error_of(x))
        h = ref.dense_forward(x, W, b, activation, transpose)
        return self._keep(h, self._slope(activation, h, z, err_z) * err_z + INTERMEDIATE_ULPS * self.u * np.abs(h), z)

    @staticmethod
    def _slope(activation, h, z, err_z):
        """The largest ``|f'|`` within ``err_z`` of ``z``: ``f'(z) + err_z`` for sigmoid and tanh (``|f''| ≤ 1``),
        ReLU's 1 unless ``z`` is below ``−err_z``, linear's 1. Lipschitz 1 would multiply every layer's error by
        ``Σ|W|`` where sigmoid's ``¼`` gives a quarter of that: the bound of a deep stack would be vacuous."""
        if activation in ("sigmoid", "tanh"):
            return np.minimum(activations.derivative_from_output(activation, h) + err_z, 1.0)
        if activation == "relu":
            return (z >= -err_z).astype(np.float64)
        return 1.0

    def output_loss_grad(self, h, W, c, x, loss, transpose=False):
        u, n = self.u, x.shape[0]
        value, D = ref.output_loss_grad(h, W, c, x, loss, transpose)
        Wt = W if transpose else W.T
        a = h @ Wt + c
        err_a = matmul_err(h, Wt, self.dtype, bias=c, err_A=self.error_of(h))
        # |ℓ(a + δ) − ℓ(a)| ≤ (|ℓ'(a)| + L|δ|)|δ| with ℓ' = x̂ − x, L = ¼ (bce) or 1 (mse)
        if loss == "bce":
            xhat = activations.sigmoid(a)
            # max(a, 0) − x a + log1p(exp(−|a|)) may cancel
            own = INTERMEDIATE_ULPS * u * (np.maximum(a, 0) + np.abs(x * a) + np.log1p(np.exp(-np.abs(a))))
        else:
            xhat = a
            own = INTERMEDIATE_ULPS * u * 0.5 * (a - x) ** 2
        err_xhat = self._slope(self.output_activation(loss), xhat, a, err_a) * err_a
        ell = ref._elementwise_loss(a, x, loss)
        err_rows = rows_err(ell, self.dtype, (np.abs(xhat - x) + err_a) * err_a + own)
        err_value = (sum_err(np.abs(ell.sum(axis=1)).sum(), n, self.dtype) + err_rows.sum()) / n
        err_D = (err_xhat + INTERMEDIATE_ULPS * u * (np.abs(xhat) + np.abs(xhat - x))) / n
        return np.array([value, err_value]), np.stack([D, err_D])

    def dense_backward(self, delta, x, W, transpose=False, need_dx=True):
        d, ed = delta
        ex = self.error_of(x)
        dW, db, dx = ref.dense_backward(d, x, W, transpose, need_dx)
        if transpose:
            err_dW = matmul_err(x.T, d, self.dtype, err_A=ex.T, err_B=ed)
        else:
            err_dW = matmul_err(d.T, x, self.dtype, err_A=ed.T, err_B=ex)
        out = [np.stack([dW, err_dW]), np.stack([db, cols_err(d, self.dtype, ed)]), None]
        if need_dx:
            out[2] = np.stack([dx, matmul_err(d, W.T if transpose else W, self.dtype, err_A=ed)])
        return tuple(out)

    def activation_backward(self, dh, h, activation):
        g, eg = dh
        if activation == "linear":
            return dh
        d1, err_d1 = self._d1(activation, h)
        dz = ref.activation_backward(g, h, activation)
        return np.stack([dz, np.abs(d1) * eg + (np.abs(g) + eg) * err_d1 + INTERMEDIATE_ULPS * self.u * np.abs(dz)])

    def l1_penalty(self, h, lam):
        n, eh = h.shape[0], self.error_of(h)
        value, g = ref.l1_penalty(h, lam)
        rows = rows_err(np.abs(h), self.dtype, eh)
        err_value = lam * (rows.sum() + sum_err(np.abs(h).sum(), n, self.dtype)) / n
        flips = (np.abs(h) <= eh) * (2 * lam / n)  # sign(h) is unknown within h's error of 0
        return np.array([value, err_value]), np.stack([g, flips])

    def kl_sparsity(self, h, rho, beta):
        u, (n, k), eh = self.u, h.shape, self.error_of(h)
        value, g = ref.kl_sparsity(h, rho, beta)
        r = np.clip(h.mean(axis=0), RHO_HAT_EPS, 1 - RHO_HAT_EPS)
        err_r = cols_err(h, self.dtype, eh) / n + INTERMEDIATE_ULPS * u * r
        ta, tb = rho * np.log(rho / r), (1 - rho) * np.log((1 - rho) / (1 - r))
        t = ta + tb
        slope = np.abs(-rho / r + (1 - rho) / (1 - r))
        err_t = slope * err_r + INTERMEDIATE_ULPS * u * (np.abs(ta) + np.abs(tb) + 1)  # ta + tb cancel near ρ̂ = ρ
        err_value = beta * (err_t.sum() + sum_err(np.abs(t).sum(), k, self.dtype))
        curv = rho / r**2 + (1 - rho) / (1 - r) ** 2  # |d g/dρ̂|·B/β
        err_g = beta * (curv * err_r + INTERMEDIATE_ULPS * u * (rho / r + (1 - rho) / (1 - r))) / n
        return np.array([value, err_value]), np.stack([g, np.broadcast_to(err_g, h.shape)])

    def contractive_penalty(self, h, W, activation, lam):
        u, n = self.u, h.shape[0]
        value, dW, dz = ref.contractive_penalty(h, W, activation, lam)
        d1, err_d1 = self._d1(activation, h)
        d2 = activations.second_derivative_from_output(activation, h)
        eh = self.error_of(h)
        s = (W * W).sum(axis=1)
        err_s = rows_err(W * W, self.dtype)
        d1sq = d1 * d1
        err_d1sq = (2 * np.abs(d1) + err_d1) * err_d1 + INTERMEDIATE_ULPS * u * d1sq
        rows = d1sq @ s
        err_rows = matmul_err(d1sq, s, self.dtype, err_A=err_d1sq, err_B=err_s)
        err_value = lam * (err_rows.sum() + sum_err(np.abs(rows).sum(), n, self.dtype)) / n
        err_dW = 2 * lam * np.abs(W) * (cols_err(d1sq, self.dtype, err_d1sq) / n)[
            :, None
        ] + INTERMEDIATE_ULPS * u * np.abs(dW)
        # |d(f' f'')/dh| ≤ 2 for sigmoid and tanh; tanh's 1 − h² cancels
        p = d1 * d2
        err_p = 2 * eh + INTERMEDIATE_ULPS * u * (np.abs(p) + h * h * np.abs(d2))
        err_dz = (2 * lam / n) * (s * err_p + err_s * np.abs(p)) + INTERMEDIATE_ULPS * u * np.abs(dz)
        return np.array([value, err_value]), np.stack([dW, err_dW]), np.stack([dz, err_dz])

    def weight_decay(self, W, grad, wd):
        value = ref.weight_decay(W, grad[0], wd)
        grad[1] += INTERMEDIATE_ULPS * self.u * np.abs(wd * W)
        return np.array([value, wd * 0.5 * sum_err(np.sum(W * W), W.size, self.dtype)])

    def gaussian_latent(self, mu, logvar, beta, key, step, row0=0):
        u, n = self.u, mu.shape[0]
        z, kl = ref.gaussian_latent(mu, logvar, beta, key, step, row0)
        em, el = self.error_of(mu), self.error_of(logvar)
        lv = ref.clamp_logvar(logvar)
        # z = μ + exp(½ℓ) ε: d/dℓ is ½ exp(½ℓ) ε = ½ (z − μ); ε itself is rounded to dtype
        self._keep(z, em + 0.5 * np.abs(z - mu) * el + INTERMEDIATE_ULPS * u * (np.abs(z) + np.abs(z - mu)))
        t = -0.5 * (1 + lv - mu * mu - np.exp(lv))
        err_t = (
            np.abs(mu) * em
            + 0.5 * np.abs(1 - np.exp(lv)) * el
            + INTERMEDIATE_ULPS * u * 0.5 * (1 + np.abs(lv) + mu * mu + np.exp(lv))
        )
        rows = t.sum(axis=1)
        err_kl = beta * (rows_err(t, self.dtype, err_t).sum() + sum_err(np.abs(rows).sum(), n, self.dtype)) / n
        return z, np.array([kl, err_kl])

    def gaussian_latent_backward(self, dz, z, mu, logvar, beta):
        u, n = self.u, mu.shape[0]
        g, eg = dz
        dmu, dlv = ref.gaussian_latent_backward(g, z, mu, logvar, beta)
        ez, em, el = self.error_of(z), self.error_of(mu), self.error_of(logvar)
        lv = ref.clamp_logvar(logvar)
        err_dmu = eg + beta * em / n + INTERMEDIATE_ULPS * u * (np.abs(dmu) + beta * np.abs(mu) / n)
        # dz·½(z − μ): z − μ may cancel, so it carries both errors and the rounding of the subtraction
        err_diff = ez + em + u * np.abs(z - mu)
        err_dlv = (
            0.5 * (np.abs(z - mu) * eg + (np.abs(g) + eg) * err_diff)
            + beta / (2 * n) * np.exp(lv) * el
            + INTERMEDIATE_ULPS * u * (0.5 * np.abs(g * (z - mu)) + beta / (2 * n) * (np.exp(lv) + 1))
        )
        inside = (logvar >= ref.LOGVAR_MIN) & (logvar <= ref.LOGVAR_MAX)
        return np.stack([dmu, err_dmu]), np.stack([dlv, np.where(inside, err_dlv, 0.0)])


def model_errors(model, x, step, dtype):
    """The reference model's objective on ``x`` with its error bounds for a ``dtype`` backend
    (:class:`ErrorBackend`): ``((loss, err), {name: (grad, err)})``."""
    B = model._B
    model._B = ErrorBackend(dtype)
    try:
        loss, grads = model._loss_and_grads(x, step)
    finally:
        model._B = B
    return loss, grads
