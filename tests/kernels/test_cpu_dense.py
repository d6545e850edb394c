"""Dense-layer kernels (kernels/cpu/dense.py) against fastae.backends.numpy_ref, every activation, odd shapes.

Tolerances: tests/tolerances.py, with each sum's bound taken from the absolute values of its terms (the bias add,
the product feeding the epilogue, the column sums; the latter are also checked bit for bit against the row-order
sum). Serial and parallel kernels must agree bit for bit, with one thread and with all threads.
"""

import numpy as np
import pytest

from fastae import activations
from fastae.backends import numpy_ref as ref
from fastae.kernels.cpu import dense
from fastae.kernels.cpu._config import ACT_CODE, LINEAR, RELU, SIGMOID, TANH

from ..tolerances import activation_backward_err, close, dense_forward_err, f64, sum_err
from .helpers import each_thread_count, same_bits

SHAPES = [(1, 1), (7, 3), (33, 17), (1025, 9), (5, 1025)]
DTYPES = [np.float32, np.float64]
ACTS = list(activations.ACTIVATIONS)


def inputs(shape, dtype, seed=0, scale=3.0):
    r = np.random.default_rng(seed)
    a = (r.standard_normal(shape) * scale).astype(dtype)
    b = (r.standard_normal(shape[1]) * scale).astype(dtype)
    return a, b


def forward(a, b, act, par=False):
    h = a.copy()
    (dense.bias_act_par if par else dense.bias_act)(h, b, ACT_CODE[act])
    return h


def test_activation_codes_follow_the_table():
    idx = activations.ACTIVATIONS.index
    assert [SIGMOID, TANH, RELU, LINEAR] == [idx(n) for n in ("sigmoid", "tanh", "relu", "linear")]


# ---------------------------------------------------------------------------------------------------------------
# bias_act
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
def test_bias_act_matches_reference(dtype, shape, act):
    a, b = inputs(shape, dtype)
    h = forward(a, b, act)
    a64, b64 = f64(a, b)
    close(h, activations.apply(act, a64 + b64), dtype, sum_err(np.abs(a64) + np.abs(b64), 2, dtype), act)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_bias_act_is_the_epilogue_of_dense_forward(dtype, act):
    r = np.random.default_rng(5)
    x, W, b, xt, bt = (r.uniform(-1, 1, s).astype(dtype) for s in ((33, 11), (9, 11), (9,), (33, 9), (11,)))
    close(
        forward(x @ W.T, b, act), ref.dense_forward(*f64(x, W, b), act), dtype, dense_forward_err(x, W, b, dtype), act
    )
    close(
        forward(xt @ W, bt, act),
        ref.dense_forward(*f64(xt, W, bt), act, transpose=True),
        dtype,
        dense_forward_err(xt, W, bt, dtype, transpose=True),
        act + " tied",
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
def test_bias_act_serial_and_parallel_agree_bit_for_bit(dtype, shape, act):
    a, b = inputs(shape, dtype, seed=1)
    want = forward(a, b, act)
    for _ in each_thread_count():
        assert same_bits(forward(a, b, act, par=True), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_bias_act_extreme_inputs(dtype, act):
    z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    b = np.zeros(5, dtype=dtype)
    with np.errstate(over="ignore"):
        want = activations.apply(act, z.astype(np.float64))
    h = forward(z, b, act)
    assert np.isfinite(h).all()
    close(h, want, dtype, 0.0, act)
    if act in ("sigmoid", "tanh"):
        lo = 0 if act == "sigmoid" else -1
        assert h[0, 0] == lo and h[0, 4] == 1 and h[0, 3] == 1  # exact limits, never overshooting
        assert h[0, 2] == (0.5 if act == "sigmoid" else 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_bias_act_propagates_nan(dtype, act):
    # A NaN pre-activation stays NaN (relu as np.maximum), so a diverging step is still detected downstream.
    h = forward(np.array([[np.nan, 1.0]], dtype=dtype), np.zeros(2, dtype=dtype), act)
    assert np.isnan(h[0, 0]) and np.isfinite(h[0, 1])


# ---------------------------------------------------------------------------------------------------------------
# act_backward
# ---------------------------------------------------------------------------------------------------------------
def backward(dh, h, act, par=False):
    out = dh.copy()
    (dense.act_backward_par if par else dense.act_backward)(out, h, ACT_CODE[act])
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
def test_act_backward_matches_reference(dtype, shape, act):
    a, b = inputs(shape, dtype, seed=2)
    h = forward(a, b, act)
    dh = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    got = backward(dh, h, act)
    close(got, ref.activation_backward(*f64(dh, h), act), dtype, activation_backward_err(dh, h, dtype), act)
    if act == "linear":
        assert same_bits(got, dh)
    for _ in each_thread_count():
        assert same_bits(backward(dh, h, act, par=True), got)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_multiplies_like_the_reference(dtype):
    # dh * (h > 0): a non-finite dh is not masked where h <= 0 (inf * 0 = NaN), exactly as in numpy_ref.
    h = np.array([[0.0, -0.0, 2.0, 0.0, 3.0, np.nan]], dtype=dtype)
    dh = np.array([[np.inf, 1.0, np.inf, np.nan, 2.0, 1.0]], dtype=dtype)
    with np.errstate(invalid="ignore"):
        want = ref.activation_backward(dh, h, "relu")
    for par in (False, True):
        np.testing.assert_array_equal(backward(dh, h, "relu", par), want)


# ---------------------------------------------------------------------------------------------------------------
# col_sum
# ---------------------------------------------------------------------------------------------------------------
def col_sum(d, par=False):
    out = np.full(d.shape[1], np.nan, dtype=d.dtype)
    (dense.col_sum_par if par else dense.col_sum)(d, out)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(3, 2 * dense.COL_BLOCK + 5)])
def test_col_sum_matches_reference_in_row_order(dtype, shape):
    d = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    got = col_sum(d)
    x = np.ones((shape[0], 2))
    W = np.ones((shape[1], 2))
    close(
        got,
        ref.dense_backward(d.astype(np.float64), x, W)[1],
        dtype,
        sum_err(np.abs(d.astype(np.float64)).sum(axis=0), shape[0], dtype),
    )
    seq = np.zeros(shape[1], dtype=dtype)
    for row in d:  # the defined order: rows added one after the other, in the dtype
        seq += row
    assert same_bits(got, seq)
    for _ in each_thread_count():
        assert same_bits(col_sum(d, par=True), got)
