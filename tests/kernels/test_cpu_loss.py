"""Output-layer kernels (kernels/cpu/loss.py) against fastae.backends.numpy_ref, both losses, odd shapes.

Tolerances: tests/tolerances.py (``output_err``: the bias add's and the row sums' bounds from the absolute values
of their terms, whatever the order of summation). Bit for bit: serial and parallel kernels with 1 and with all
threads, the in-place case (``delta`` is ``a``) and the separate one, and ``output_rows`` against the fused
kernels' rows.
"""

import numpy as np
import pytest

from fastae.backends import numpy_ref as ref
from fastae.kernels.cpu import loss

from ..tolerances import close, f64, output_err
from .helpers import each_thread_count, same_bits

SHAPES = [(1, 1), (7, 3), (33, 17), (1025, 9), (5, 1025)]
DTYPES = [np.float32, np.float64]
LOSSES = ["bce", "mse"]


def problem(shape, dtype, name, seed=0):
    """``h``, ``W``, ``c``, ``x`` with ``a = h Wᵀ`` of shape ``shape``; x in [0, 1] for bce, normal for mse."""
    n, m = shape
    r = np.random.default_rng(seed)
    h = r.uniform(-1, 1, (n, 6)).astype(dtype)
    W = (r.standard_normal((m, 6)) * 1.5).astype(dtype)
    c = r.standard_normal(m).astype(dtype)
    x = (r.uniform(0, 1, shape) if name == "bce" else r.standard_normal(shape)).astype(dtype)
    return h, W, c, x


def run(name, a, c, x, par=False, inplace=False):
    """Kernel output ``(delta, row_loss)``; ``a`` is left untouched unless ``inplace``."""
    kernel = {
        ("bce", False): loss.bce_output,
        ("bce", True): loss.bce_output_par,
        ("mse", False): loss.mse_output,
        ("mse", True): loss.mse_output_par,
    }[name, par]
    t = a.dtype.type
    rows = np.full(a.shape[0], np.nan, dtype=a.dtype)
    if inplace:
        delta = a
    else:
        delta = np.full_like(a, np.nan)
    kernel(a, c, x, delta, t(1.0 / a.shape[0]), rows)
    return delta, rows


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LOSSES)
def test_output_matches_reference(dtype, shape, name):
    h, W, c, x = problem(shape, dtype, name)
    a = h @ W.T
    a0 = a.copy()
    delta, rows = run(name, a, c, x)
    assert same_bits(a, a0), "a must not be modified when delta is another array"
    # The reference from the float32 product itself, so only the kernel's own rounding is measured.
    L, want_delta = ref.output_loss_grad(*f64(a, np.eye(shape[1]), c, x), name)
    want_rows = ref.output_row_loss(*f64(a, np.eye(shape[1]), c, x), name)
    err_L, err_delta, err_rows = output_err(a, np.eye(shape[1]), c, x, name, dtype)
    close(delta, want_delta, dtype, err_delta, "delta")
    close(rows, want_rows, dtype, err_rows, "row_loss")
    close(np.asarray(rows.sum() / dtype(shape[0])), np.array(L), dtype, err_L, "loss")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LOSSES)
def test_output_is_the_epilogue_of_output_loss_grad(dtype, name):
    h, W, c, x = problem((33, 17), dtype, name, seed=1)
    for transpose in (False, True):
        Wt = np.ascontiguousarray(W.T) if transpose else W
        a = h @ Wt if transpose else h @ Wt.T
        delta, rows = run(name, a, c, x)
        L, want_delta = ref.output_loss_grad(*f64(h, Wt, c, x), name, transpose=transpose)
        err_L, err_delta, _ = output_err(h, Wt, c, x, name, dtype, transpose)
        close(delta, want_delta, dtype, err_delta, "delta")
        close(np.asarray(rows.sum() / dtype(33)), np.array(L), dtype, err_L, "loss")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LOSSES)
def test_serial_parallel_and_in_place_agree(dtype, shape, name):
    h, W, c, x = problem(shape, dtype, name, seed=2)
    a = h @ W.T
    delta, rows = run(name, a, c, x)
    for _ in each_thread_count():
        d_par, r_par = run(name, a, c, x, par=True)
        assert same_bits(d_par, delta) and same_bits(r_par, rows)
    # delta may be a itself (the backend reuses the product's memory): same values, element for element.
    d_in, r_in = run(name, a.copy(), c, x, inplace=True)
    assert same_bits(d_in, delta) and same_bits(r_in, rows)
    for _ in each_thread_count():
        d_in_par, r_in_par = run(name, a.copy(), c, x, par=True, inplace=True)
        assert same_bits(d_in_par, d_in) and same_bits(r_in_par, r_in)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LOSSES)
def test_output_rows_matches_reference(dtype, shape, name):
    h, W, c, x = problem(shape, dtype, name, seed=3)
    a = h @ W.T
    a0 = a.copy()
    rows = np.full(shape[0], np.nan, dtype=dtype)
    loss.output_rows(a, c, x, name == "bce", rows)
    assert same_bits(a, a0)
    close(rows, ref.output_row_loss(*f64(h, W, c, x), name), dtype, output_err(h, W, c, x, name, dtype)[2])
    assert same_bits(rows, run(name, a, c, x)[1]), "the same terms in the same order as the fused kernel"
    for _ in each_thread_count():
        rows_par = np.full(shape[0], np.nan, dtype=dtype)
        loss.output_rows_par(a, c, x, name == "bce", rows_par)
        assert same_bits(rows_par, rows)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("par", [False, True])
def test_extreme_logits(dtype, name, par):
    """z = ±100, ±1e4 with targets 0, ½, 1: everything finite, and the limits exact for bce
    (σ(z) ∈ {0, 1}, ℓ = max(z, 0) − x z to the last bit of z)."""
    z = np.array([-1e4, -100.0, 100.0, 1e4], dtype=dtype)
    targets = np.array([0.0, 0.5, 1.0], dtype=dtype)
    a = np.repeat(z[None, :], 3, axis=0).copy()
    x = np.repeat(targets[:, None], 4, axis=1).copy() if name == "bce" else np.zeros((3, 4), dtype=dtype)
    c = np.zeros(4, dtype=dtype)
    delta, rows = run(name, a, c, x, par=par)
    assert np.isfinite(delta).all() and np.isfinite(rows).all()
    L, want_delta = ref.output_loss_grad(*f64(a, np.eye(4), c, x), name)
    _, err_delta, err_rows = output_err(a, np.eye(4), c, x, name, dtype)
    close(delta, want_delta, dtype, err_delta, "delta")
    close(rows, ref.output_row_loss(*f64(a, np.eye(4), c, x), name), dtype, err_rows, "rows")
    if name == "bce":
        t = dtype
        third = t(1.0 / 3)
        sig = np.array([0, 0, 1, 1], dtype=dtype)  # σ(±100) rounds to 0/1 in float32; in float64 σ(-100) is tiny
        for i, xv in enumerate(targets):
            np.testing.assert_allclose(delta[i], (sig - xv) * third, rtol=0, atol=1e-40)
            np.testing.assert_array_equal(rows[i] >= 0, True)
        # x = 0: ℓ(±1e4) = 1e4 or 0; x = 1: the mirror image.
        assert rows[0] == pytest.approx(1e4 + 100 + 2 * np.log1p(np.exp(-100.0)), rel=1e-6)
        assert rows[2] == pytest.approx(1e4 + 100 + 2 * np.log1p(np.exp(-100.0)), rel=1e-6)


def test_scale_given_as_python_float_keeps_the_dtype():
    h, W, c, x = problem((7, 3), np.float32, "bce")
    a = h @ W.T
    d1, r1 = np.empty_like(a), np.empty(7, np.float32)
    d2, r2 = np.empty_like(a), np.empty(7, np.float32)
    loss.bce_output(a, c, x, d1, np.float32(1 / 7), r1)
    loss.bce_output(a, c, x, d2, 1 / 7, r2)  # cast to float32 on entry: no float64 arithmetic
    assert same_bits(d1, d2) and same_bits(r1, r2)
