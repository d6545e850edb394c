"""The Numba CPU backend: BLAS for the matrix products, fused Numba kernels for everything around them.

Same op contract as :mod:`fastae.backends.numpy_ref` (the spec), op for op. Matrix products go to NumPy's BLAS;
the kernels in ``fastae.kernels.cpu`` fuse the bias, activation, loss and its gradient, reductions, noise, the
reparameterisation and the optimiser updates, each in one pass over memory.

Threads
-------
Two modes, chosen when the backend is imported:

* **Serial kernels (the default).** The matrix products use every core through NumPy's BLAS; the kernels around
  them run on the calling thread and release the GIL (``nogil``), so any number of Python threads may call into
  one model at once. This shares NumPy's own thread pool with the rest of the program.
* **One pool (``FASTAE_NUMBA_PARALLEL=1``).** Every op whose product BLAS would spread over threads runs on
  Numba's pool instead, product and epilogue alike (:mod:`fastae.kernels.cpu.products`): the op is split into
  ``POOL_BLOCKS`` parts, each part's product a single-threaded call into SciPy's BLAS (held at one thread
  meanwhile, :mod:`.blas_threads`) followed by its epilogue on warm rows; the large elementwise kernels (Adam,
  noise, the latent) run their ``_par`` twins on the same pool. It brings training steps and encodes closer to
  the GEMM-only floor (``bench/one_pool.py``; the README's *Threads* has the numbers).

  The price is a second thread pool beside NumPy's. After a NumPy product, OpenBLAS's idle worker spins on a
  core for about 0.13 s, and a pool op started meanwhile runs at half speed (measured: an 8 ms encode took
  15-17 ms); so this mode suits programs where fastae does the heavy BLAS work, not ones that interleave it
  with NumPy products. It runs only under a thread-safe threading layer (TBB or OpenMP, chosen here unless
  ``NUMBA_THREADING_LAYER`` is set): Numba's default ``workqueue`` layer aborts the process when two threads
  launch parallel work at once.
* Every result is bit-identical whatever the thread count: parallel loops split rows (or columns for column
  sums) and never reduce across them; cross-row sums are taken afterwards in a fixed order; and the parts of a
  pool op are fixed by the shapes and the pool's size at start-up, never by ``numba.set_num_threads``.
"""

from __future__ import annotations

import contextlib
import importlib
import os

import numpy as np

from .. import constants
from . import numpy_ref as _ref
from .blas_threads import CAP

NAME = "numba"
DTYPES = ("float32", "float64")
xp = np


def _safe_layer():
    """The thread-safe Numba threading layer the pool would use (the user's choice, else TBB, else OpenMP), or
    ``None`` if there is none."""
    chosen = os.environ.get("NUMBA_THREADING_LAYER")
    if chosen:
        return chosen if chosen in ("tbb", "omp", "safe", "threadsafe") else None
    for layer, module in (("tbb", "numba.np.ufunc.tbbpool"), ("omp", "numba.np.ufunc.omppool")):
        try:
            importlib.import_module(module)
        except (ImportError, OSError):
            continue
        return layer
    return None


def _threading_layer():
    """Pick a thread-safe Numba threading layer before any parallel kernel runs; ``None`` if there is none."""
    import numba

    layer = _safe_layer()
    if layer is not None and not os.environ.get("NUMBA_THREADING_LAYER"):
        numba.config.THREADING_LAYER = layer
    return layer


def pool_unavailable():
    """Why the one-pool mode cannot run here, or ``None`` if it can (it needs :func:`_safe_layer`'s layer and a
    BLAS it can confine; this only looks, it chooses nothing). Without them the mode falls back to the serial
    kernels as a whole: parallel elementwise kernels beside BLAS's own threads were measured to lose."""
    if _safe_layer() is None:
        return "no thread-safe Numba threading layer (TBB or OpenMP)"
    return CAP.unsupported()


PARALLEL_REQUESTED = os.environ.get("FASTAE_NUMBA_PARALLEL", "0") not in ("", "0", "false", "False")
THREADING_LAYER = _threading_layer() if PARALLEL_REQUESTED else None
# Why the pool cannot run here despite the request, or None.
POOL_UNAVAILABLE = pool_unavailable() if PARALLEL_REQUESTED else None
PARALLEL = PARALLEL_REQUESTED and POOL_UNAVAILABLE is None

from fastae.kernels.cpu import checks, dense  # noqa: E402
from fastae.kernels.cpu._config import ACT_CODE, PARALLEL_MIN  # noqa: E402


class _OnFirstUse:
    """A kernel module imported on first use: encoding needs only ``dense`` and ``checks``, so a program that
    loads a model and encodes never pays for loading the training kernels from Numba's cache."""

    def __init__(self, name):
        self._name, self._module = name, None

    def __getattr__(self, attr):
        if self._module is None:
            self._module = importlib.import_module(f"fastae.kernels.cpu.{self._name}")
        return getattr(self._module, attr)


latent, loss, noise, optim, penalties, products, step = (
    _OnFirstUse(n) for n in ("latent", "loss", "noise", "optim", "penalties", "products", "step"))


def describe() -> dict:
    """What runs: serial kernels or one pool, the threading layer, Numba's thread count, the parallel threshold
    and the parts a pool op is split into (BLAS reports itself through threadpoolctl)."""
    import numba

    return {"backend": NAME, "kernels": "one pool" if PARALLEL else "serial", "threading_layer": THREADING_LAYER,
            "numba_threads": numba.get_num_threads(), "parallel_min_elements": PARALLEL_MIN,
            "pool_blocks": POOL_BLOCKS, "pool_unavailable": POOL_UNAVAILABLE}


def _pick(module, name, size):
    """The parallel variant of kernel ``name`` for large arrays under a safe layer, else the serial one."""
    if PARALLEL and size >= PARALLEL_MIN:
        return getattr(module, name + "_par")
    return getattr(module, name)


def _t(a):
    return a.dtype.type


# --- one thread pool: products and their epilogues on Numba's threads (kernels/cpu/products.py) ---------------
# With parallel kernels, every op whose product OpenBLAS would run on its own threads (more multiply-adds than its
# threshold, FUSED_MAX_MULADDS below) runs on Numba's pool instead, product and epilogue alike, split into at most
# POOL_BLOCKS parts (the pool's size, fixed at start-up, so the bits never depend on the thread count). Smaller
# products stay NumPy calls, which OpenBLAS runs on the calling thread, so the two pools never alternate.
POOL_BLOCKS = None
POOL_MIN_ROWS = 16  # rows per part at least: a thinner block would repack the whole weight for a sliver of work


def _pooled(n, k, m):
    """True if an op whose product is ``(n × k)·(k × m)`` runs on the pool."""
    return PARALLEL and n * k * m > FUSED_MAX_MULADDS


def _row_parts(n):
    """Parts for an op split by its ``n`` rows: a function of ``n`` and the pool's size only."""
    return max(1, min(POOL_BLOCKS, n // POOL_MIN_ROWS))


if PARALLEL:
    import numba as _numba

    POOL_BLOCKS = int(_numba.config.NUMBA_NUM_THREADS)


def session():
    """A context to hold around a whole fit or encode: with the pool, it keeps SciPy's BLAS at one thread
    throughout (``blas_threads.CAP``), so that each op's own hold is only a counter; otherwise it does nothing."""
    return CAP if PARALLEL else contextlib.nullcontext()


def _values_ok_pool(x, unit_interval):
    """The boundary scan (:func:`fastae.kernels.cpu.checks.values_ok`), split over the pool for large inputs."""
    if x.size >= PARALLEL_MIN:
        return bool(products.values_ok_par(_c(x), unit_interval, _row_parts(x.shape[0])))
    return checks.values_ok(x, unit_interval)


# The serial mode binds the kernel itself: a one-row encode has no time for another Python frame.
values_ok = _values_ok_pool if PARALLEL else checks.values_ok


def _out_width(W, transpose):
    return W.shape[1] if transpose else W.shape[0]


def _c(a):
    """``a`` C-contiguous, copied only if it is not: the pool kernels take a matrix's width as its row stride."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


_product = _ref._product  # the products are BLAS calls on every CPU backend: the reference's own


# --- dense layers ---------------------------------------------------------------------------------------------
def dense_forward(x, W, b, activation, transpose=False, out=None):
    """``h = f(x Wᵀ + b)`` (or ``f(x W + b)``): one BLAS product, then bias and activation fused in place; into
    ``out`` when given (as :func:`numpy_ref.dense_forward`)."""
    n, m = x.shape[0], _out_width(W, transpose)
    if _pooled(n, x.shape[1], m):
        a = np.empty((n, m), dtype=x.dtype) if out is None else out
        with CAP:
            if n < POOL_MIN_ROWS * POOL_BLOCKS:  # too few rows to share out: share the columns
                products.linear_act_cols(_c(x), _c(W), transpose, _c(b), ACT_CODE[activation], a, POOL_BLOCKS)
            else:
                products.linear_act(_c(x), _c(W), transpose, _c(b), ACT_CODE[activation], a, _row_parts(n))
        return a
    a = _product(x, W, transpose, out)
    _pick(dense, "bias_act", a.size)(a, b, ACT_CODE[activation])
    return a


def dense_backward(delta, x, W, transpose=False, need_dx=True):
    """``dW``, ``db`` (column sums in a fixed order) and ``dx``, as :func:`numpy_ref.dense_backward`."""
    if _pooled(delta.shape[0], delta.shape[1], x.shape[1]):
        dW = np.empty(W.shape, dtype=delta.dtype)
        db = np.empty(delta.shape[1], dtype=delta.dtype)
        dx = np.empty(x.shape, dtype=delta.dtype) if need_dx else dW[:1]  # dW[:1]: a placeholder, not written
        with CAP:
            products.backward(_c(delta), _c(x), _c(W), transpose, need_dx, dW, db, dx, POOL_BLOCKS)
        return dW, db, dx if need_dx else None
    dW = x.T @ delta if transpose else delta.T @ x
    db = np.empty(delta.shape[1], dtype=delta.dtype)
    _pick(dense, "col_sum", delta.size)(delta, db)
    dx = None
    if need_dx:
        dx = delta @ W.T if transpose else delta @ W
    return dW, db, dx


def activation_backward(dh, h, activation):
    """``dh ⊙ f'(h)``, computed in place in ``dh`` (a consumed gradient, see the op contract)."""
    if activation != "linear":
        _pick(dense, "act_backward", dh.size)(dh, h, ACT_CODE[activation])
    return dh


output_activation = _ref.output_activation
clamp_logvar = _ref.clamp_logvar


# --- output layer fused with its loss -------------------------------------------------------------------------
def output_loss_grad(h, W, c, x, loss_name, transpose=False):
    """The product, then sigmoid/identity, loss and ``(x̂ − x)/B`` in one pass that overwrites the product."""
    n = x.shape[0]
    if _pooled(n, h.shape[1], x.shape[1]):
        a = np.empty(x.shape, dtype=h.dtype)
        rows = np.empty(n, dtype=a.dtype)
        with CAP:
            products.output_loss(_c(h), _c(W), transpose, _c(c), _c(x), loss_name == "bce", _t(a)(1.0 / n), a,
                                 rows, _row_parts(n))
        return rows.sum() / _t(a)(n), a
    a = _product(h, W, transpose)
    rows = np.empty(n, dtype=a.dtype)
    kernel = "bce_output" if loss_name == "bce" else "mse_output"
    _pick(loss, kernel, a.size)(a, c, x, a, _t(a)(1.0 / n), rows)
    return rows.sum() / _t(a)(n), a


def output_row_loss(h, W, c, x, loss_name, transpose=False):
    if _pooled(x.shape[0], h.shape[1], x.shape[1]):
        a = np.empty(x.shape, dtype=h.dtype)
        rows = np.empty(x.shape[0], dtype=a.dtype)
        with CAP:
            products.output_rows(_c(h), _c(W), transpose, _c(c), _c(x), loss_name == "bce", a, rows,
                                 _row_parts(x.shape[0]))
        return rows
    a = _product(h, W, transpose)
    rows = np.empty(x.shape[0], dtype=a.dtype)
    _pick(loss, "output_rows", a.size)(a, c, x, loss_name == "bce", rows)
    return rows


# --- regularisers ---------------------------------------------------------------------------------------------
def l1_penalty(h, lam):
    t = _t(h)
    dh = np.empty_like(h)
    rows = np.empty(h.shape[0], dtype=h.dtype)
    penalties.l1_penalty(h, t(lam), t(1.0 / h.shape[0]), dh, rows)
    return t(lam) * rows.mean(dtype=h.dtype), dh


def kl_sparsity(h, rho, beta):
    t = _t(h)
    dh = np.empty_like(h)
    rho_hat = np.empty(h.shape[1], dtype=h.dtype)
    value = penalties.kl_sparsity(h, t(rho), t(beta), t(1.0 / h.shape[0]), constants.RHO_HAT_EPS, dh, rho_hat)
    return t(value), dh


def contractive_penalty(h, W, activation, lam):
    t = _t(h)
    dW_direct = np.empty_like(W)
    dz = np.empty_like(h)
    rows = np.empty(h.shape[0], dtype=h.dtype)
    penalties.contractive(h, W, ACT_CODE[activation], t(lam), t(1.0 / h.shape[0]), dW_direct, dz, rows)
    return t(lam) * rows.mean(dtype=h.dtype), dW_direct, dz


def weight_decay(W, grad, wd):
    return _t(W)(penalties.weight_decay(W, grad, _t(W)(wd)))


# --- corruption -----------------------------------------------------------------------------------------------
def _key(key):
    return np.uint32(key[0]), np.uint32(key[1])


def mask_noise(x, p, key, step, row0=0):
    out = np.empty_like(x)
    k0, k1 = _key(key)
    _pick(noise, "mask_noise", x.size)(x, _t(x)(p), k0, k1, np.uint32(step), np.int64(row0), out)
    return out


def gaussian_noise(x, sigma, key, step, row0=0):
    out = np.empty_like(x)
    k0, k1 = _key(key)
    _pick(noise, "gaussian_noise", x.size)(x, _t(x)(sigma), k0, k1, np.uint32(step), np.int64(row0), out)
    return out


# --- Gaussian latent ------------------------------------------------------------------------------------------
# Per-element cost against the cheap elementwise kernels PARALLEL_MIN was chosen on: the latent draws a Philox
# normal and calls libm per element (measured 18 ns forward and 6.5 ns backward, against about 0.3 ns), so its
# parallel twins pay for the pool's fork and join from far fewer elements (measured break-even: about 300
# elements forward, 600 backward). The weights put the switch a little above, at 512 and 1024 elements, where
# the twins surely win: a VAE batch of 100 × 20 saved 21 µs per step.
LATENT_WEIGHT, LATENT_BACKWARD_WEIGHT = 64, 32


def _logvar_bounds(a):
    t = _t(a)
    return t(constants.LOGVAR_MIN), t(constants.LOGVAR_MAX)


def gaussian_latent(mu, logvar, beta, key, step, row0=0, stream=_ref.rng.STREAM_EPS):
    z = np.empty_like(mu)
    kl_rows = np.empty(mu.shape[0], dtype=mu.dtype)
    k0, k1 = _key(key)
    kernel = _pick(latent, "gaussian_latent", mu.size * LATENT_WEIGHT)
    kernel(mu, logvar, *_logvar_bounds(mu), k0, k1, np.uint32(stream), np.uint32(step), np.int64(row0), z, kl_rows)
    return z, _t(mu)(beta) * kl_rows.mean(dtype=mu.dtype)


def gaussian_latent_backward(dz, z, mu, logvar, beta):
    t = _t(mu)
    dmu = np.empty_like(mu)
    dlv = np.empty_like(mu)
    kernel = _pick(latent, "gaussian_latent_backward", mu.size * LATENT_BACKWARD_WEIGHT)
    kernel(dz, z, mu, logvar, *_logvar_bounds(mu), t(beta), t(1.0 / mu.shape[0]), dmu, dlv)
    return dmu, dlv


def gaussian_kl_rows(mu, logvar):
    out = np.empty(mu.shape[0], dtype=mu.dtype)
    latent.gaussian_kl_rows(mu, logvar, *_logvar_bounds(mu), out)
    return out


# --- optimisers: flat views of C-contiguous parameters, scalars in the parameter dtype -------------------------
# The kernels write the new parameters over the gradient (see kernels/cpu/optim.py for why), so ``out is g``, which
# is what the optimiser passes, costs nothing more; any other ``out`` first receives a copy of ``g``. The kernels
# take Python floats and cast on entry, after forming 1 − β in float64: exactly the reference's t(1 − β), where
# casting β first would land 2 ulps away in float32.
def _over(g, out):
    if out is not g:
        np.copyto(out, g)
    return out.reshape(-1)


def sgd_update(p, g, out, lr):
    return bool(_pick(optim, "sgd", p.size)(p.reshape(-1), _over(g, out), float(lr)))


def momentum_update(p, g, buf, out, lr, momentum, nesterov):
    return bool(_pick(optim, "momentum", p.size)(p.reshape(-1), _over(g, out), buf.reshape(-1), float(lr),
                                                 float(momentum), bool(nesterov)))


def adam_update(p, g, m, v, out, lr, beta1, beta2, eps, t_step):
    step, rs = _ref.adam_scalars(lr, beta1, beta2, t_step)
    return bool(_pick(optim, "adam", p.size)(p.reshape(-1), _over(g, out), m.reshape(-1), v.reshape(-1), step, rs,
                                             float(beta1), float(beta2), float(eps)))


# --- a whole training step of a one-hidden-layer autoencoder in one call (kernels/cpu/step.py) -----------------
# Only where calls cost more than arithmetic: while every product has at most this many multiply-adds, OpenBLAS
# runs ?gemm on the calling thread (its threshold is 65536 × GEMM_MULTITHREAD_THRESHOLD, 4 by default), so the
# products made from compiled code (SciPy's cython_blas, a second OpenBLAS) never wake a second thread pool.
FUSED_MAX_MULADDS = 65536 * 4


def fused_ae1_fits(n, n_in, n_hid):
    """True if :func:`ae1_step` should run a batch of ``n`` rows of an ``n_in → n_hid`` model."""
    return n * n_in * n_hid <= FUSED_MAX_MULADDS


def ae1_workspace_size(n, n_in, n_hid):
    return step.workspace_size(n, n_in, n_hid)


def ae1_stepper(tied, activation, loss_name, optimizer, lr, momentum, beta1, beta2, eps):
    """``run(x, x_in, ps, outs, first, second, ws, t_step) -> (loss, status)``: one whole update of a
    one-hidden-layer autoencoder (``ps``: W, b, [W_d,] c; ``outs``/``first``/``second`` alike, as
    ``Optimizer.buffers`` gives them) in one compiled call, with every setting that is fixed for an epoch resolved
    here once: a call of a model this small costs about what resolving them would. ``status`` is
    :func:`fastae.kernels.cpu.step.ae1_step`'s."""
    kernel = step.ae1_step
    i0, i1, i2, i3 = (0, 1, 0, 2) if tied else (0, 1, 2, 3)  # the tied decoder weight is the encoder's
    flags = (bool(tied), ACT_CODE[activation], loss_name == "bce", step.OPTIMIZER_CODE[optimizer], float(lr),
             float(momentum), optimizer == "nesterov", float(beta1), float(beta2), float(eps))
    adam = optimizer == "adam"

    def run(x, x_in, ps, outs, first, second, ws, t_step):
        s, rs = _ref.adam_scalars(lr, beta1, beta2, t_step) if adam else (0.0, 0.0)
        value, status = kernel(x, x_in, ps[i0], ps[i1], ps[i2], ps[i3], outs[i0], outs[i1], outs[i2], outs[i3],
                               first[i0], first[i1], first[i2], first[i3], second[i0], second[i1], second[i2],
                               second[i3], ws, *flags, s, rs)
        return float(value), status

    return run
