"""kernels/cpu/blas.py: row-major ``?gemm`` from compiled code, on strided operands, against NumPy's products.

Every operand is a view into a larger array (a block of columns, an offset block of rows), so a wrong leading
dimension, a swapped operand or a wrong transpose flag reads or writes the wrong elements. Tolerances:
tests/tolerances.py, each element a sum of ``k`` products (``k + 1`` terms with ``C``), bounded through
``|A| @ |B|`` for any summation order.
"""

import numpy as np
import pytest
from numba import njit

from fastae.kernels.cpu.blas import gemm

from ..tolerances import close, f64, matmul_err

DTYPES = [np.float32, np.float64]


@njit
def _call(trans_a, trans_b, m, n, k, A, B, beta, C):
    gemm(
        trans_a,
        trans_b,
        m,
        n,
        k,
        A,
        A.strides[0] // A.itemsize,
        B,
        B.strides[0] // B.itemsize,
        beta,
        C,
        C.strides[0] // C.itemsize,
    )


def _block(r, rows, cols, dtype, pad=5):
    """A ``rows × cols`` view, offset by a row and a column, into a wider array."""
    big = r.standard_normal((rows + 2, cols + pad)).astype(dtype)
    return big[1 : rows + 1, 2 : cols + 2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 3, 33), (33, 17, 5), (64, 40, 100)])
def test_gemm_matches_numpy_on_strided_views(dtype, trans_a, trans_b, m, n, k):
    r = np.random.default_rng(m * 100 + n + k)
    A = _block(r, k, m, dtype) if trans_a else _block(r, m, k, dtype)
    B = _block(r, n, k, dtype) if trans_b else _block(r, k, n, dtype)
    outer = np.full((m + 3, n + 4), 7.0, dtype=dtype)
    C = outer[2 : m + 2, 1 : n + 1]
    C[...] = np.nan  # beta = 0: BLAS never reads C, so no NaN may leak in
    _call(trans_a, trans_b, m, n, k, A, B, 0.0, C)
    opA, opB = f64(A.T if trans_a else A, B.T if trans_b else B)
    close(C, opA @ opB, dtype, err=matmul_err(opA, opB, dtype), what="C")
    untouched = outer.copy()
    untouched[2 : m + 2, 1 : n + 1] = 7.0
    assert np.all(untouched == 7.0), "gemm wrote outside its block of C"


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_with_beta_one_accumulates(dtype):
    r = np.random.default_rng(1)
    A, B = _block(r, 9, 13, dtype), _block(r, 13, 6, dtype)
    C0 = _block(r, 9, 6, dtype)
    C = C0.copy()
    _call(False, False, 9, 6, 13, A, B, 1.0, C)
    A64, B64, C64 = f64(A, B, C0)
    close(C, C64 + A64 @ B64, dtype, err=matmul_err(A64, B64, dtype, bias=C64), what="C0 + A B")


def test_gemm_column_block_of_a_transposed_operand():
    """The weight-gradient shape the pool uses: ``dW[j0:j1] = δ[:, j0:j1]ᵀ x`` into rows of a C-contiguous dW."""
    r = np.random.default_rng(2)
    delta, x = r.standard_normal((50, 12)), r.standard_normal((50, 30))
    dW = np.zeros((12, 30))

    @njit
    def block(delta, x, dW, j0, j1):
        gemm(
            True,
            False,
            j1 - j0,
            x.shape[1],
            delta.shape[0],
            delta[:, j0:],
            delta.shape[1],
            x,
            x.shape[1],
            0.0,
            dW[j0:],
            dW.shape[1],
        )

    block(delta, x, dW, 0, 5)
    block(delta, x, dW, 5, 12)
    close(dW, delta.T @ x, np.float64, err=matmul_err(delta.T, x, np.float64), what="dW")
