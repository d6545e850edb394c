"""The fused one-hidden-layer training step against the reference ops, composed by hand in float64.

The reference is the op-by-op path written out: dense forward, output loss and gradient, both backward passes
(the tied weight gets its decoder and encoder terms), then the optimiser update of every parameter.
"""

import numpy as np
import pytest

from fastae import training
from fastae.backends import numba_cpu as nb
from fastae.backends import numpy_ref as ref
from tests.tolerances import TOL

ACTS = ["sigmoid", "tanh", "relu", "linear"]
OPTS = ["sgd", "momentum", "nesterov", "adam"]
LR, MU, T = 0.05, 0.9, 3
B1, B2, EPS = training.ADAM_BETA1, training.ADAM_BETA2, training.ADAM_EPS


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


def reference(x, x_in, params, state, tied, act, loss, opt):
    """Loss, new parameters and new state by the reference ops, in float64."""
    f = lambda a: a.astype(np.float64)  # noqa: E731
    x, x_in = f(x), f(x_in)
    params = [f(p) for p in params]
    state = [[f(s) for s in st] for st in state]
    W, b = params[0], params[1]
    Wdec, c = (W, params[2]) if tied else (params[2], params[3])
    h = ref.dense_forward(x_in, W, b, act)
    value, D = ref.output_loss_grad(h, Wdec, c, x, loss, transpose=tied)
    gdec, gc, dh = ref.dense_backward(D, h, Wdec, transpose=tied)
    gW, gb, _ = ref.dense_backward(ref.activation_backward(dh, h, act), x_in, W, need_dx=False)
    grads = [gW + gdec, gb, gc] if tied else [gW, gb, gdec, gc]
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
    value, status, outs, state = run(x, x_in, params, state, tied, act, loss, opt)
    assert status == 0
    tol = TOL[dtype]
    np.testing.assert_allclose(value, want_loss, **tol["reduction"])
    for i, (got, want) in enumerate(zip(outs, want_outs)):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **tol["grad"], err_msg=f"parameter {i}")
    used = {"sgd": 0, "adam": 2}.get(opt, 1)
    for slot in range(used):
        for i, (got, want) in enumerate(zip(state[slot], want_state[slot])):
            np.testing.assert_allclose(got, want, **tol["grad"], err_msg=f"state {slot} of parameter {i}")


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
