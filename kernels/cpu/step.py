"""A whole training step of a one-hidden-layer autoencoder in one compiled call, for models so small that the
cost of a step is the cost of calling kernels (the benchmark's "small" 64 → 16 at batch 32: its kernel, BLAS and
optimiser calls from Python cost more than its products; docs/performance.md, *Kernel notes*).

The math is the multi-call path's, op for op (:func:`fastae.backends.numpy_ref` is the spec); only the calls are
fused. With ``h = f(x̃ Wᵀ + b)`` and the output pre-activation ``a = h W + c`` (tied) or ``a = h W_dᵀ + c``
(untied):

* ``D = (x̂ − x)/B`` and the row losses in one pass (:mod:`.loss`), ``L = Σ rows / B``;
* ``dh = D W_dec`` (tied: ``D Wᵀ``), ``dz = dh ⊙ f'(h)`` (:mod:`.dense`);
* ``dW = dzᵀ x̃`` plus, tied, the decoder term ``hᵀ D``; untied ``dW_d = Dᵀ h``; ``db = Σ_rows dz``,
  ``dc = Σ_rows D``;
* the optimiser update of every parameter into its ``out`` buffer (:mod:`.optim`'s block bodies): the gradients
  are computed into those buffers and the updates write over them.

The products are BLAS calls made from compiled code (``np.dot`` with an ``out`` array, which Numba lowers to
SciPy's ``cython_blas`` ``?gemm``), so they cost what BLAS costs and nothing more. The caller keeps the problem
small enough that BLAS runs them on the calling thread (see ``numba_cpu.FUSED_MAX_MULADDS``).

Returns ``(L, status)``: ``status`` is 0 when every new parameter is finite, −1 when the loss is not finite (then
nothing has been updated), and ``k ≥ 1`` when the update of parameter ``k`` (1: W, 2: b, 3: W_d, 4: c) is not
finite; ``out`` buffers are then partly written and the optimiser state is stale, exactly as a failed multi-call
step leaves them (the caller resets the optimiser and keeps the old parameters).
"""

import numpy as np

from . import dense, fmath, loss, optim
from ._config import JIT, njit

SGD, MOMENTUM, ADAM = 0, 1, 2
OPTIMIZER_CODE = {"sgd": SGD, "momentum": MOMENTUM, "nesterov": MOMENTUM, "adam": ADAM}


def workspace_size(n, n_in, n_hid):
    """Elements of the flat workspace :func:`ae1_step` carves: ``h``, ``a``/``D``, ``dh``, the tied decoder
    term of the weight gradient and the row losses."""
    return 2 * n * n_hid + n * n_in + n_hid * n_in + n


@njit(**JIT)
def _update(p, g, s1, s2, opt, lr, mu, nesterov, b1, b2, omb1, omb2, eps, step, rs):
    """One parameter's optimiser update on flat views, written over its gradient ``g``; returns its non-finite
    flag (0 or 1)."""
    p, g = p.reshape(-1), g.reshape(-1)
    n = p.shape[0]
    if opt == ADAM:
        return optim._adam_block(p, g, s1.reshape(-1), s2.reshape(-1), step, rs, b1, b2, omb1, omb2, eps, 0, n)
    if opt == MOMENTUM:
        return optim._momentum_block(p, g, s1.reshape(-1), lr, mu, nesterov, 0, n)
    return optim._sgd_block(p, g, lr, 0, n)


@njit(**JIT)
def ae1_step(
    x,
    x_in,
    W,
    b,
    Wd,
    c,
    W_o,
    b_o,
    Wd_o,
    c_o,
    sW,
    sb,
    sWd,
    sc,
    tW,
    tb,
    tWd,
    tc,
    ws,
    tied,
    act,
    bce,
    opt,
    lr,
    mu,
    nesterov,
    b1,
    b2,
    eps,
    step,
    rs,
):
    """One training step; see the module docstring. ``x`` is the target batch ``(B, n_in)`` and ``x_in`` the
    (possibly corrupted) input; ``W`` is ``(n_hid, n_in)``, ``Wd`` ``(n_in, n_hid)`` (ignored when ``tied``);
    ``*_o`` receive the new parameters; ``s*``/``t*`` are the optimiser state (momentum buffer, or Adam's
    ``m``/``v``), ignored where the optimiser keeps none; ``ws`` has :func:`workspace_size` elements. Python
    floats for the hyperparameters: ``1 − β`` is formed in float64 before the cast, as in :func:`optim.adam`."""
    n, n_in = x.shape
    k = W.shape[0]
    off = 0
    h = ws[off : off + n * k].reshape(n, k)
    off += n * k
    a = ws[off : off + n * n_in].reshape(n, n_in)
    off += n * n_in
    dh = ws[off : off + n * k].reshape(n, k)
    off += n * k
    gdec = ws[off : off + k * n_in].reshape(k, n_in)  # the tied decoder term of the weight gradient
    off += k * n_in
    rows = ws[off : off + n]

    # forward
    np.dot(x_in, W.T, h)
    dense.bias_act(h, b, act)
    if tied:
        np.dot(h, W, a)
    else:
        np.dot(h, Wd.T, a)
    scale = fmath.cast(1.0 / n, x)
    if bce:
        loss.bce_output(a, c, x, a, scale, rows)
    else:
        loss.mse_output(a, c, x, a, scale, rows)
    total = fmath.cast(0.0, x)
    for r in range(n):
        total += rows[r]
    value = total / fmath.cast(n, x)
    if fmath.nonfinite(value):
        return value, -1

    # backward: a now holds D
    if tied:
        np.dot(a, W.T, dh)
    else:
        np.dot(a, Wd, dh)
    dense.act_backward(dh, h, act)
    # The gradients go straight into the buffers that receive the new parameters; the updates then write over
    # them (kernels/cpu/optim.py).
    np.dot(dh.T, x_in, W_o)
    if tied:
        np.dot(h.T, a, gdec)
        for j in range(k):
            for i in range(n_in):
                W_o[j, i] = gdec[j, i] + W_o[j, i]
    else:
        np.dot(a.T, h, Wd_o)
    dense.col_sum(dh, b_o)
    dense.col_sum(a, c_o)

    # update
    lr_, mu_ = fmath.cast(lr, x), fmath.cast(mu, x)
    b1_, b2_ = fmath.cast(b1, x), fmath.cast(b2, x)
    omb1, omb2 = fmath.cast(1.0 - b1, x), fmath.cast(1.0 - b2, x)
    eps_, step_, rs_ = fmath.cast(eps, x), fmath.cast(step, x), fmath.cast(rs, x)
    if _update(W, W_o, sW, tW, opt, lr_, mu_, nesterov, b1_, b2_, omb1, omb2, eps_, step_, rs_):
        return value, 1
    if _update(b, b_o, sb, tb, opt, lr_, mu_, nesterov, b1_, b2_, omb1, omb2, eps_, step_, rs_):
        return value, 2
    if not tied:
        if _update(Wd, Wd_o, sWd, tWd, opt, lr_, mu_, nesterov, b1_, b2_, omb1, omb2, eps_, step_, rs_):
            return value, 3
    if _update(c, c_o, sc, tc, opt, lr_, mu_, nesterov, b1_, b2_, omb1, omb2, eps_, step_, rs_):
        return value, 4
    return value, 0


__all__ = ["ae1_step", "workspace_size", "OPTIMIZER_CODE"]
