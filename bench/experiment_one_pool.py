"""Experiment behind the next step of issue 4: one thread pool for the products and the elementwise work.

Today the products use OpenBLAS's two threads and every kernel around them runs on one core, because OpenBLAS's
idle worker spins on the second core after each product and anything else started there fights it (README,
"Where fastae stands"). This script measures the alternative on the shallow step's five products and on Adam
over the deep model's 2.83 M parameters:

* *floor*: the products through NumPy with OpenBLAS's own two threads (what `fastae bench` calls the floor);
* *one pool*: BLAS capped to one thread (threadpoolctl), the rows split into two blocks over Numba's OpenMP pool,
  each block's product a single-threaded BLAS call made from compiled code (the weight gradients from
  transposed copies, so every block is contiguous);
* Adam from cold caches, serial against split over the same pool.

Each timed variant is checked against the floor's answer first. Run with OpenBLAS's own kernels, as the bench:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE NUMBA_THREADING_LAYER=omp python bench/experiment_one_pool.py

Measured here (2-core AMD EPYC, 2026-11-24, two sessions of three rounds): products 1.36-1.43 ms in one pool
against 1.43-1.54 ms for the floor; Adam 0.66-0.72 ms split against 1.28-1.41 ms serial. In a first version of
this script, the first call after switching from OpenBLAS's pool to OpenMP's took 40 ms: the two pools must
never alternate.
"""

import time

import numpy as np
from numba import njit, prange
from threadpoolctl import threadpool_limits

from fastae.kernels.cpu import optim

B, N_IN, K = 256, 784, 256  # the shallow configuration
BLOCKS = 2


@njit(parallel=True, nogil=True)
def one_pool_products(x, W, WT, h, a, dh, hT, dhT, dW1, dW2):
    n, k = x.shape[0], W.shape[0]
    for t in prange(BLOCKS):
        r0, r1 = t * n // BLOCKS, (t + 1) * n // BLOCKS
        np.dot(x[r0:r1], WT, h[r0:r1])       # h = x Wᵀ
    for t in prange(BLOCKS):
        r0, r1 = t * n // BLOCKS, (t + 1) * n // BLOCKS
        np.dot(h[r0:r1], W, a[r0:r1])        # a = h W (tied decoder)
    for t in prange(BLOCKS):
        r0, r1 = t * n // BLOCKS, (t + 1) * n // BLOCKS
        np.dot(a[r0:r1], WT, dh[r0:r1])      # dh = a Wᵀ
    for t in prange(BLOCKS):
        c0, c1 = t * k // BLOCKS, (t + 1) * k // BLOCKS
        for j in range(c0, c1):
            for i in range(n):
                dhT[j, i] = dh[i, j]
                hT[j, i] = h[i, j]
    for t in prange(BLOCKS):
        c0, c1 = t * k // BLOCKS, (t + 1) * k // BLOCKS
        np.dot(dhT[c0:c1], x, dW1[c0:c1])     # dW = dhᵀ x (encoder term)
        np.dot(hT[c0:c1], a, dW2[c0:c1])      # dW = hᵀ a (decoder term)


@njit(parallel=True, nogil=True)
def adam_split(p, g, m, v):
    n = p.shape[0]
    f = np.float32
    for t in prange(BLOCKS):
        lo, hi = t * n // BLOCKS, (t + 1) * n // BLOCKS
        optim._adam_block(p, g, m, v, f(1e-3), f(1.0), f(0.9), f(0.999), f(0.1), f(0.001), f(1e-8), lo, hi)


def median_us(fn, calls, flush=None):
    times = []
    for _ in range(calls):
        if flush is not None:
            flush()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e6 * float(np.median(times))


def main():
    r = np.random.default_rng(0)
    x, W = r.random((B, N_IN), dtype=np.float32), r.random((K, N_IN), dtype=np.float32)
    WT = np.ascontiguousarray(W.T)
    bufs = {name: np.empty(shape, np.float32) for name, shape in
            (("h", (B, K)), ("a", (B, N_IN)), ("dh", (B, K)), ("hT", (K, B)), ("dhT", (K, B)),
             ("dW1", (K, N_IN)), ("dW2", (K, N_IN)))}
    want = {}

    def floor():
        h = np.matmul(x, W.T, out=want.setdefault("h", np.empty((B, K), np.float32)))
        a = np.matmul(h, W, out=want.setdefault("a", np.empty((B, N_IN), np.float32)))
        dh = np.matmul(a, W.T, out=want.setdefault("dh", np.empty((B, K), np.float32)))
        np.matmul(dh.T, x, out=want.setdefault("dW1", np.empty((K, N_IN), np.float32)))
        np.matmul(h.T, a, out=want.setdefault("dW2", np.empty((K, N_IN), np.float32)))

    def pool():
        one_pool_products(x, W, WT, bufs["h"], bufs["a"], bufs["dh"], bufs["hT"], bufs["dhT"], bufs["dW1"],
                          bufs["dW2"])

    n = 2_830_000  # the deep configuration's parameters
    p, g, m, v = (r.random(n, dtype=np.float32) for _ in range(4))
    big = np.random.default_rng(1).random(40_000_000, dtype=np.float32)

    def flush():  # 160 MB written: Adam's arrays leave the caches, as inside a training step
        np.add(big, 1.0, out=big)

    floor()
    with threadpool_limits(1, user_api="blas"):
        pool()
        for name in ("h", "a", "dh", "dW1", "dW2"):  # check before timing
            np.testing.assert_allclose(bufs[name], want[name], rtol=2e-5, err_msg=name)
        adam_split(p.copy(), g.copy(), m.copy(), v.copy())
    for rnd in range(3):
        t_floor = median_us(floor, 200)
        with threadpool_limits(1, user_api="blas"):
            t_pool = median_us(pool, 200)
            t_serial = median_us(lambda: optim.adam(p, g, m, v, 1e-3, 1.0, 0.9, 0.999, 1e-8), 15, flush)
            t_split = median_us(lambda: adam_split(p, g, m, v), 15, flush)
        print(f"round {rnd + 1}: products floor {t_floor:.0f} us, one pool {t_pool:.0f} us; "
              f"Adam (cold) serial {t_serial:.0f} us, split over the pool {t_split:.0f} us")


if __name__ == "__main__":
    main()
