"""The fused one-hidden-layer training step against the reference ops, composed by hand in float64.

The reference is the op-by-op path written out: dense forward, output loss and gradient, both backward passes
(the tied weight gets its decoder and encoder terms), then the optimiser update of every parameter.

Tolerances (tests/tolerances.py): :func:`step_bounds` carries the error bound of every sum through the same ops
as :func:`reference` (its ``ErrorBackend``), then through the optimiser, to the loss, every new parameter and
every optimiser state; each is compared with ``close``.
"""

import numpy as np
import pytest

from fastae import training
from fastae.backends import numba_cpu as nb
from fastae.backends import numpy_ref as ref
from tests.tolerances import ErrorBackend, close, f64, update_err

ACTS = ["sigmoid", "tanh", "relu", "linear"]
OPTS = ["sgd", "momentum", "nesterov", "adam"]
LR, MU, T = 0.05, 0.9, 3
B1, B2, EPS = training.ADAM_BETA1, training.ADAM_BETA2, training.ADAM_EPS
SLOTS = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}  # optimiser state arrays per parameter


def problem(n, n_in, k, dtype, tied, loss, seed=0):
    r = np.random.default_rng(seed)
    x = r.random((n, n_in)) if loss == "bce" else r.standard_normal((n, n_in))
    x_in = x * (r.random((n, n_in)) > 0.2)  # a corrupted input, as denoising passes
    params = [r.standard_normal((k, n_in)) * 0.3, r.standard_normal(k) * 0.1]
    if not tied:
        params.append(r.standard_normal((n_in, k)) * 0.3)
    params.append(r.standard_normal(n_in) * 0.1)
    state = [[r.standard_normal(p.shape) * 0.01 for p in params], [r.random(p.shape) * 1e-3 for p in params]]
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    return cast(x), cast(x_in), [cast(p) for p in params], [[cast(s) for s in st] for st in state]


def forward_backward(x, x_in, params, tied, act, loss, B=ref):
    """The loss and gradients of the step by the ops of ``B``: the reference's in float64, or with
    tests/tolerances.py's ``ErrorBackend`` their values beside their error bounds."""
    x, x_in = f64(x, x_in)
    params = f64(*params)
    W, b = params[0], params[1]
    Wdec, c = (W, params[2]) if tied else (params[2], params[3])
    h = B.dense_forward(x_in, W, b, act)
    value, D = B.output_loss_grad(h, Wdec, c, x, loss, transpose=tied)
    gdec, gc, dh = B.dense_backward(D, h, Wdec, transpose=tied)
    dz = B.activation_backward(dh, h, act)
    gW, gb, _ = B.dense_backward(dz, x_in, W, need_dx=False)
    return value, ([gW + gdec, gb, gc] if tied else [gW, gb, gdec, gc])


def reference(x, x_in, params, state, tied, act, loss, opt):
    """Loss, new parameters and new state by the reference ops, in float64."""
    value, grads = forward_backward(x, x_in, params, tied, act, loss)
    params = f64(*params)
    state = [[s.astype(np.float64) for s in st] for st in state]  # copies: the updates change them in place
    outs = []
    for i, (p, g) in enumerate(zip(params, grads)):
        out = np.empty_like(p)
        if opt == "sgd":
            ref.sgd_update(p, g, out, LR)
        elif opt == "adam":
            ref.adam_update(p, g, state[0][i], state[1][i], out, LR, B1, B2, EPS, T)
        else:
            ref.momentum_update(p, g, state[0][i], out, LR, MU, opt == "nesterov")
        outs.append(out)
    return value, outs, state


def step_bounds(x, x_in, params, state, tied, act, loss, opt, dtype):
    """Bounds on the errors of the fused step's loss, new parameters and new state: the gradients' from a run of
    :func:`forward_backward` on tests/tolerances.py's ``ErrorBackend``, then the optimiser's (``update_err``).
    Returns ``(err_value, err_outs, err_state)``."""
    (_, err_value), grads = forward_backward(x, x_in, params, tied, act, loss, ErrorBackend(dtype))
    err_outs, err_state = [], [[], []]
    for i, (p, (g, eg)) in enumerate(zip(params, grads)):
        st = [state[0][i], state[1][i]][: SLOTS[opt]]
        eo, *es = update_err(opt, p, g, st, dtype, LR, MU, B1, B2, EPS, T, err_g=eg)
        err_outs.append(eo)
        for slot, e in enumerate(es):
            err_state[slot].append(e)
    return err_value, err_outs, err_state


def run(x, x_in, params, state, tied, act, loss, opt):
    """The fused op on copies; returns ``(loss, status, outs, state)``."""
    state = [[s.copy() for s in st] for st in state]
    outs = [np.full_like(p, np.nan) for p in params]
    n, n_in = x.shape
    ws = np.empty(nb.ae1_workspace_size(n, n_in, params[0].shape[0]), x.dtype)
    run = nb.ae1_stepper(tied, act, loss, opt, LR, MU, B1, B2, EPS)
    value, status = run(x, x_in, params, outs, state[0], state[1], ws, T)
    return value, status, outs, state


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("n", [1, 7, 33])
def test_step_matches_reference(dtype, tied, act, loss, opt, n):
    x, x_in, params, state = problem(n, 9, 5, dtype, tied, loss, seed=n)
    want_loss, want_outs, want_state = reference(x, x_in, params, state, tied, act, loss, opt)
    err_loss, err_outs, err_state = step_bounds(x, x_in, params, state, tied, act, loss, opt, dtype)
    value, status, outs, state = run(x, x_in, params, state, tied, act, loss, opt)
    assert status == 0
    # the loss comes back as a Python float; a float32 value converts back exactly
    close(np.asarray(value, dtype=dtype), want_loss, dtype, err=err_loss, what="loss")
    for i, (got, want) in enumerate(zip(outs, want_outs)):
        close(got, want, dtype, err=err_outs[i], what=f"parameter {i}")
    for slot in range(SLOTS[opt]):
        for i, (got, want) in enumerate(zip(state[slot], want_state[slot])):
            close(got, want, dtype, err=err_state[slot][i], what=f"state {slot} of parameter {i}")


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_non_finite_loss_updates_nothing(tied):
    x, x_in, params, state = problem(4, 6, 3, "float32", tied, "mse")
    x[2, 1] = np.inf
    value, status, outs, new_state = run(x, x_in, params, state, tied, "sigmoid", "mse", "adam")
    assert status == -1 and not np.isfinite(value)
    assert all(np.isnan(o).all() for o in outs)  # nothing written
    for st, new in zip(state, new_state):
        assert all(np.array_equal(a, b) for a, b in zip(st, new))  # optimiser state untouched


@pytest.mark.parametrize("tied,which", [(True, i) for i in range(3)] + [(False, i) for i in range(4)])
def test_non_finite_update_reports_that_parameter(tied, which):
    """An inf in one parameter's momentum buffer makes only that update non-finite; the status names it
    (1: W, 2: b, 3: W_d, 4: c), and the loss is still the finite loss of the step."""
    x, x_in, params, state = problem(4, 6, 3, "float32", tied, "bce")
    codes = [1, 2, 4] if tied else [1, 2, 3, 4]
    state[0][which].reshape(-1)[0] = np.inf
    value, status, *_ = run(x, x_in, params, state, tied, "sigmoid", "bce", "momentum")
    assert np.isfinite(value)
    assert status == codes[which]
