"""Products and their epilogues on one thread pool: Numba's, with BLAS confined to the calling thread.

The serial backend runs each product on OpenBLAS's threads and everything around it on one core, because
OpenBLAS's idle worker spins on the other core after every product and anything else started there fights it
(docs/performance.md, the EPYC account). These kernels run both on Numba's pool instead: the work of an op is
split into ``blocks`` parts, and each part makes its product a single-threaded BLAS call (:func:`.blas.gemm`, SciPy's
OpenBLAS capped to one thread by the backend) and runs its epilogue on the rows it has just written, still warm
in cache. One pool, so nothing spins against anything.

Math: the ops of :mod:`fastae.backends.numpy_ref`, with the products split as

* by rows of the output for ``x op(W)`` (forward layers, the output layer, ``dx = δ op(W)ᵀ``), or by its
  columns for a forward layer with too few rows to share out;
* by rows of ``dW`` (columns of ``δ``, or of ``x`` for a layer used transposed) for the weight gradients, which
  reduce over the batch: each part sums the whole batch for its own weights, and nothing is added across parts.

Operands: every array is C-contiguous (the backend makes sure), so a matrix's row stride is its width; the kernels
do not check it.

Bits: the epilogues are the serial kernels' row bodies, bit-identical for any split. A BLAS product, though, can
round differently when its rows are split differently (OpenBLAS's edge kernels: measured differences of 1-2 ulp).
So the parts are fixed by the shapes and ``blocks``, never by the threads that run them: the backend passes the
size of Numba's pool, fixed when the process starts (``NUMBA_NUM_THREADS``), and ``numba.set_num_threads``
changes only how many threads share the parts. The results are bit-identical whatever the thread count; across
machines, only with the same ``NUMBA_NUM_THREADS`` (and the same BLAS).
"""

import numpy as np
from numba import prange

from . import dense, loss
from ._config import JIT, JIT_PARALLEL, njit
from .blas import gemm
from .checks import values_ok


@njit(**JIT)
def _block_product(x, W, transposed, out, r0, r1, c0, c1):
    """``out[r0:r1, c0:c1] = x[r0:r1] W[c0:c1]ᵀ`` (``W`` is ``(o, i)``), or ``x[r0:r1] W[:, c0:c1]`` when
    ``transposed`` (``W`` is ``(i, o)``). Every operand is C-contiguous, so its row stride is its width."""
    if transposed:
        gemm(
            False,
            False,
            r1 - r0,
            c1 - c0,
            W.shape[0],
            x[r0:],
            x.shape[1],
            W[:, c0:],
            W.shape[1],
            0.0,
            out[r0:, c0:],
            out.shape[1],
        )
    else:
        gemm(
            False,
            True,
            r1 - r0,
            c1 - c0,
            W.shape[1],
            x[r0:],
            x.shape[1],
            W[c0:],
            W.shape[1],
            0.0,
            out[r0:, c0:],
            out.shape[1],
        )


@njit(**JIT)
def _rows_product(x, W, transposed, out, r0, r1):
    """``out[r0:r1] = x[r0:r1] Wᵀ``, or ``x[r0:r1] W`` when ``transposed``: every column of those rows."""
    _block_product(x, W, transposed, out, r0, r1, 0, out.shape[1])


@njit(**JIT)
def _split(n, parts, t):
    """Bounds of part ``t`` of ``range(n)`` cut into ``parts`` nearly equal parts."""
    return t * n // parts, (t + 1) * n // parts


@njit(**JIT_PARALLEL)
def linear_act(x, W, transposed, b, act, out, blocks):
    """``out = f(x Wᵀ + b)`` (or ``f(x W + b)``): each part's product, then :func:`.dense.bias_act` on its rows."""
    n = x.shape[0]
    parts = min(blocks, n)
    for t in prange(parts):
        r0, r1 = _split(n, parts, t)
        _rows_product(x, W, transposed, out, r0, r1)
        dense.bias_act(out[r0:r1], b, act)


@njit(**JIT_PARALLEL)
def linear_act_cols(x, W, transposed, b, act, out, blocks):
    """:func:`linear_act` for a few rows (one row to encode: a split by rows would leave the pool idle): the
    output's columns are split instead, each part computing ``x W[c0:c1]ᵀ`` (or ``x W[:, c0:c1]``) and then its
    bias and activation."""
    n, m = out.shape
    parts = max(1, min(blocks, m // 16))
    for t in prange(parts):
        c0, c1 = _split(m, parts, t)
        _block_product(x, W, transposed, out, 0, n, c0, c1)
        bc = b[c0:c1]
        for i in range(n):
            dense._bias_act_vec(out[i, c0:c1], bc, act)


@njit(**JIT_PARALLEL)
def output_loss(h, W, transposed, c, x, bce, scale, out, row_loss, blocks):
    """The output layer fused with its loss: ``a = h Wᵀ`` (or ``h W``) per part, then in place on its rows
    ``out = (x̂ − x)·scale`` and ``row_loss`` (:func:`.loss.bce_output` / ``mse_output``'s row bodies)."""
    n = h.shape[0]
    parts = min(blocks, n)
    for t in prange(parts):
        r0, r1 = _split(n, parts, t)
        _rows_product(h, W, transposed, out, r0, r1)
        loss._fused_rows(out, c, x, out, scale, row_loss, bce, True, r0, r1)


@njit(**JIT_PARALLEL)
def output_rows(h, W, transposed, c, x, bce, out, row_loss, blocks):
    """Only the row losses of :func:`output_loss` (``out`` receives the product)."""
    n = h.shape[0]
    parts = min(blocks, n)
    for t in prange(parts):
        r0, r1 = _split(n, parts, t)
        _rows_product(h, W, transposed, out, r0, r1)
        loss._loss_rows(out, c, x, bce, row_loss, r0, r1)


@njit(**JIT_PARALLEL)
def backward(delta, x, W, transposed, need_dx, dW, db, dx, blocks):
    """A dense layer's gradients in one parallel region, each part computing its share of all three:

    * ``dW = δᵀ x`` (``W`` is ``(o, i)``), or ``xᵀ δ`` when ``transposed``: rows ``[j0, j1)`` of ``dW``, summed
      over the whole batch;
    * ``db[j] = Σ_i δ[i, j]`` for its block of columns (:func:`.dense.col_sum`'s body: each column in row order);
    * with ``need_dx``, ``dx = δ W`` (or ``δ Wᵀ``) for its block of rows."""
    n = delta.shape[0]
    o = delta.shape[1]
    p = dW.shape[0]
    parts = max(1, min(blocks, p))
    for t in prange(parts):
        j0, j1 = _split(p, parts, t)
        if transposed:  # dW (i × o) = xᵀ δ: rows of dW are columns of x
            gemm(True, False, j1 - j0, o, n, x[:, j0:], x.shape[1], delta, o, 0.0, dW[j0:], dW.shape[1])
        else:  # dW (o × i) = δᵀ x: rows of dW are columns of δ
            gemm(True, False, j1 - j0, x.shape[1], n, delta[:, j0:], o, x, x.shape[1], 0.0, dW[j0:], dW.shape[1])
        c0, c1 = _split(o, parts, t)
        if c1 > c0:
            dense._col_sum_cols(delta, db, c0, c1)
        if need_dx:
            r0, r1 = _split(n, parts, t)
            if r1 > r0:  # dx = δ W (W is (o, i)), or δ Wᵀ when transposed
                gemm(
                    False, transposed, r1 - r0, dx.shape[1], o, delta[r0:], o, W, W.shape[1], 0.0, dx[r0:], dx.shape[1]
                )


@njit(**JIT_PARALLEL)
def values_ok_par(x, unit_interval, blocks):
    """:func:`.checks.values_ok` with the rows split into ``blocks`` parts."""
    n = x.shape[0]
    parts = min(blocks, n)
    ok = np.ones(parts, np.bool_)
    for t in prange(parts):
        r0, r1 = _split(n, parts, t)
        ok[t] = values_ok(x[r0:r1], unit_interval)
    return ok.all()


__all__ = ["linear_act", "linear_act_cols", "output_loss", "output_rows", "backward", "values_ok_par"]
