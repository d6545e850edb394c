"""kernels/cpu/products.py: the one-pool ops against fastae.backends.numpy_ref, every activation and loss, both
orientations of the weight, odd shapes, and any number of parts.

Tolerances: tests/tolerances.py, from the sum of the absolute values of each product's terms (``|x| @ |W|ᵀ``
and the like), so they hold for any BLAS's order of summation. Bits: for a given number of parts the results are
the same whatever the thread count (the parts, not the threads, fix how BLAS splits the work).
"""

import numpy as np
import pytest

from fastae import activations
from fastae.backends import numpy_ref as ref
from fastae.backends.blas_threads import CAP
from fastae.kernels.cpu import checks, dense, products
from fastae.kernels.cpu._config import ACT_CODE

from ..tolerances import close, dense_backward_err, dense_forward_err, f64, output_err
from .helpers import each_thread_count, same_bits

DTYPES = [np.float32, np.float64]
ROWS = [1, 7, 33, 1025]
PARTS = [1, 2, 3]


@pytest.fixture(autouse=True)
def _blas_on_one_thread():
    """As the backend runs these ops: SciPy's BLAS held at one thread (fastae.backends.blas_threads)."""
    with CAP:
        yield


def layer(n, n_in, n_out, dtype, transposed, seed=0):
    """``x``, ``W`` (``(n_out, n_in)``, or ``(n_in, n_out)`` when transposed), ``b``."""
    r = np.random.default_rng(seed)
    x = r.uniform(0, 1, (n, n_in)).astype(dtype)
    W = r.uniform(-0.5, 0.5, (n_in, n_out) if transposed else (n_out, n_in)).astype(dtype)
    b = r.uniform(-0.5, 0.5, n_out).astype(dtype)
    return x, W, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("act", list(activations.ACTIVATIONS))
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("kernel", [products.linear_act, products.linear_act_cols], ids=["rows", "columns"])
def test_linear_act_is_dense_forward(dtype, n, act, transposed, kernel):
    """Split by rows or by columns (40 of them: up to two parts of at least 16), every part's product, bias and
    activation."""
    x, W, b = layer(n, 37, 40, dtype, transposed)
    want = ref.dense_forward(*f64(x, W, b), act, transpose=transposed)
    err = dense_forward_err(x, W, b, dtype, transposed)
    first = None
    for parts in PARTS:
        out = np.full((n, 40), np.nan, dtype=dtype)
        kernel(x, W, transposed, b, ACT_CODE[act], out, parts)
        close(out, want, dtype, err, f"{act} parts={parts}")
        first = out if first is None else first
    once = np.empty_like(first)
    kernel(x, W, transposed, b, ACT_CODE[act], once, 3)
    for _ in each_thread_count():
        again = np.empty_like(first)
        kernel(x, W, transposed, b, ACT_CODE[act], again, 3)
        assert same_bits(again, once)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("transposed", [False, True])
def test_output_loss_is_output_loss_grad(dtype, n, loss, transposed):
    h, W, c = layer(n, 13, 41, dtype, transposed, seed=1)
    x = np.random.default_rng(2).uniform(0, 1, (n, 41)).astype(dtype)
    want_loss, want_delta = ref.output_loss_grad(*f64(h, W, c, x), loss, transpose=transposed)
    want_rows = ref.output_row_loss(*f64(h, W, c, x), loss, transpose=transposed)
    err_loss, err_delta, err_rows = output_err(h, W, c, x, loss, dtype, transposed)
    for parts in PARTS:
        delta, rows = np.empty((n, 41), dtype=dtype), np.empty(n, dtype=dtype)
        products.output_loss(h, W, transposed, c, x, loss == "bce", dtype(1.0 / n), delta, rows, parts)
        close(delta, want_delta, dtype, err_delta, f"delta parts={parts}")
        close(rows, want_rows, dtype, err_rows, f"rows parts={parts}")
        close(rows.sum() / dtype(n), want_loss, dtype, err_loss, "loss")
        only, scratch = np.empty(n, dtype=dtype), np.empty((n, 41), dtype=dtype)
        products.output_rows(h, W, transposed, c, x, loss == "bce", scratch, only, parts)
        assert same_bits(only, rows), "output_rows sums the same terms in the same order as output_loss"
        for _ in each_thread_count():
            d2, r2 = np.empty_like(delta), np.empty_like(rows)
            products.output_loss(h, W, transposed, c, x, loss == "bce", dtype(1.0 / n), d2, r2, parts)
            assert same_bits(d2, delta) and same_bits(r2, rows)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("need_dx", [False, True])
@pytest.mark.parametrize("parts", [1, 2, 3, 64])
def test_backward_is_dense_backward(dtype, n, transposed, need_dx, parts):
    """More parts than weight rows, columns or batch rows leaves some parts with nothing of one kind to do."""
    x, W, _ = layer(n, 23, 11, dtype, transposed, seed=3)
    delta = np.random.default_rng(4).standard_normal((n, 11)).astype(dtype)
    want_dW, want_db, want_dx = ref.dense_backward(*f64(delta, x, W), transpose=transposed, need_dx=need_dx)
    err_dW, err_db, err_dx = dense_backward_err(delta, x, W, dtype, transposed)
    dW, db = np.full(W.shape, np.nan, dtype=dtype), np.full(11, np.nan, dtype=dtype)
    dx = np.full(x.shape, np.nan, dtype=dtype)
    products.backward(delta, x, W, transposed, need_dx, dW, db, dx, parts)
    close(dW, want_dW, dtype, err_dW, "dW")
    close(db, want_db, dtype, err_db, "db")
    if need_dx:
        close(dx, want_dx, dtype, err_dx, "dx")
    else:
        assert np.isnan(dx).all(), "dx written without need_dx"
    serial_db = np.empty_like(db)
    dense.col_sum(delta, serial_db)
    assert same_bits(db, serial_db), "db: the serial column sums, whatever the parts"
    for _ in each_thread_count():
        dW2, db2, dx2 = np.empty_like(dW), np.empty_like(db), np.full(x.shape, np.nan, dtype=dtype)
        products.backward(delta, x, W, transposed, need_dx, dW2, db2, dx2, parts)
        assert same_bits(dW2, dW) and same_bits(db2, db) and same_bits(dx2, dx)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("unit", [False, True])
def test_values_ok_par_is_values_ok(dtype, unit):
    r = np.random.default_rng(5)
    base = r.uniform(0, 1, (101, 7)).astype(dtype)
    cases = [base]
    for value in (np.nan, np.inf, -np.inf, 1.5, -0.25):
        for row in (0, 50, 100):
            bad = base.copy()
            bad[row, 3] = value
            cases.append(bad)
    for a in cases:
        for parts in (1, 2, 7):
            assert products.values_ok_par(a, unit, parts) == checks.values_ok(a, unit)
