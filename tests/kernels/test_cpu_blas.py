"""kernels/cpu/blas.py: row-major ``?gemm`` from compiled code, on strided operands, against NumPy's products.

Every operand is a view into a larger array (a block of columns, an offset block of rows), so a wrong leading
dimension, a swapped operand or a wrong transpose flag reads or writes the wrong elements. Tolerances: a product
of ``k`` terms in float32 against float64, ``k``-scaled.
"""

import numpy as np
import pytest
from numba import njit

from fastae.kernels.cpu.blas import gemm

DTYPES = [np.float32, np.float64]


@njit
def _call(trans_a, trans_b, m, n, k, A, B, beta, C):
    gemm(trans_a, trans_b, m, n, k, A, A.strides[0] // A.itemsize, B, B.strides[0] // B.itemsize, beta, C,
         C.strides[0] // C.itemsize)


def _block(r, rows, cols, dtype, pad=5):
    """A ``rows × cols`` view, offset by a row and a column, into a wider array."""
    big = r.standard_normal((rows + 2, cols + pad)).astype(dtype)
    return big[1:rows + 1, 2:cols + 2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 3, 33), (33, 17, 5), (64, 40, 100)])
def test_gemm_matches_numpy_on_strided_views(dtype, trans_a, trans_b, m, n, k):
    r = np.random.default_rng(m * 100 + n + k)
    A = _block(r, k, m, dtype) if trans_a else _block(r, m, k, dtype)
    B = _block(r, n, k, dtype) if trans_b else _block(r, k, n, dtype)
    outer = np.full((m + 3, n + 4), 7.0, dtype=dtype)
    C = outer[2:m + 2, 1:n + 1]
    C[...] = np.nan  # beta = 0: BLAS never reads C, so no NaN may leak in
    _call(trans_a, trans_b, m, n, k, A, B, 0.0, C)
    want = (A.T if trans_a else A).astype(np.float64) @ (B.T if trans_b else B).astype(np.float64)
    rtol = 1e-12 if dtype == np.float64 else 1e-5 * np.sqrt(k)
    np.testing.assert_allclose(C, want, rtol=rtol, atol=rtol * np.abs(want).max())
    untouched = outer.copy()
    untouched[2:m + 2, 1:n + 1] = 7.0
    assert np.all(untouched == 7.0), "gemm wrote outside its block of C"


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_with_beta_one_accumulates(dtype):
    r = np.random.default_rng(1)
    A, B = _block(r, 9, 13, dtype), _block(r, 13, 6, dtype)
    C0 = _block(r, 9, 6, dtype)
    C = C0.copy()
    _call(False, False, 9, 6, 13, A, B, 1.0, C)
    want = C0.astype(np.float64) + A.astype(np.float64) @ B.astype(np.float64)
    np.testing.assert_allclose(C, want, rtol=1e-12 if dtype == np.float64 else 2e-5, atol=1e-5)


def test_gemm_column_block_of_a_transposed_operand():
    """The weight-gradient shape the pool uses: ``dW[j0:j1] = δ[:, j0:j1]ᵀ x`` into rows of a C-contiguous dW."""
    r = np.random.default_rng(2)
    delta, x = r.standard_normal((50, 12)), r.standard_normal((50, 30))
    dW = np.zeros((12, 30))

    @njit
    def block(delta, x, dW, j0, j1):
        gemm(True, False, j1 - j0, x.shape[1], delta.shape[0], delta[:, j0:], delta.shape[1], x, x.shape[1], 0.0,
             dW[j0:], dW.shape[1])

    block(delta, x, dW, 0, 5)
    block(delta, x, dW, 5, 12)
    np.testing.assert_allclose(dW, delta.T @ x, rtol=1e-12, atol=1e-12)
