"""The one-pool Numba CPU backend (``backend="numba-pool"``): products and kernels on Numba's threads alone.

Every op whose product BLAS would spread over threads (more multiply-adds than
:data:`numba_cpu.FUSED_MAX_MULADDS`) runs on Numba's pool instead, product and epilogue alike
(:mod:`fastae.kernels.cpu.products`): the op is split into ``POOL_BLOCKS`` parts, each part's product a
single-threaded call into SciPy's BLAS (held at one thread meanwhile, :mod:`.blas_threads`) followed by its
epilogue on warm rows. Where oneMKL takes the large float32 products (the ``mkl`` extra) on GNU OpenMP threads and
Numba runs its OpenMP layer, those threads are the pool's own: a float32 product of several rows and at least
``MKL_MIN_COLUMNS`` columns is then left to oneMKL's threaded GEMM, which beats single-threaded parts, and so are
the bfloat16 products. The large elementwise kernels (the activation backward, noise, the latent, the optimisers,
and with ``precision="bfloat16"`` the epilogues and conversions) run their ``_par`` twins on the same pool.
Smaller products stay NumPy calls, which OpenBLAS runs on the calling thread, so the two pools never alternate.
The op bodies are :mod:`.numba_cpu`'s; only the choice of kernel differs.

The price is a second thread pool beside NumPy's: after a NumPy product OpenBLAS's idle worker spins on a core
for a while, and a pool op started meanwhile runs slower (docs/performance.md); so this backend suits programs
where fastae does the heavy BLAS work. It runs only under a thread-safe threading layer (TBB or OpenMP, chosen
on import unless ``NUMBA_THREADING_LAYER`` is set), because Numba's ``workqueue`` layer aborts the process when
two threads launch parallel work at once, and only with a BLAS it can confine (:func:`unavailable` says why not).

Every result is bit-identical to :mod:`.numba_cpu`'s whatever the thread count: parallel loops split rows (or
columns for column sums) and never reduce across them, and the parts of a pool op are fixed by the shapes and the
pool's size at start-up, never by ``numba.set_num_threads``.
"""

from __future__ import annotations

import importlib
import os

import numba
import numpy as np

from . import gemm
from . import numba_cpu as _serial
from .blas_threads import CAP
from .numba_cpu import (  # the ops whose work this backend does not split, and the fused step
    ARRAY_TYPES,
    CAPABILITIES,
    DTYPES,
    FUSED_MAX_MULADDS,
    ae1_stepper,
    ae1_workspace_size,
    bf16_weight,
    contractive_penalty,
    fused_ae1_fits,
    gaussian_kl_rows,
    kl_sparsity,
    l1_penalty,
    permutation,
    to_numpy,
    weight_decay,
    xp,
)

NAME = "numba-pool"

POOL_MIN_ROWS = 16  # rows per part at least: a thinner block would repack the whole weight for a sliver of work


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


def _running_layer():
    """The layer Numba has already started (a parallel kernel ran), or ``None``."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return None


def unavailable():
    """Why the pool cannot run here, or ``None``: it needs a thread-safe threading layer (and none unsafe already
    started) and a BLAS it can confine to one thread."""
    running = _running_layer()
    if running is not None and running not in ("tbb", "omp"):
        return f"Numba already runs the {running!r} threading layer, which is not thread-safe"
    if _safe_layer() is None:
        return "no thread-safe Numba threading layer (TBB or OpenMP)"
    return CAP.unsupported()


THREADING_LAYER = _safe_layer()
if THREADING_LAYER is not None and not os.environ.get("NUMBA_THREADING_LAYER") and _running_layer() is None:
    numba.config.THREADING_LAYER = THREADING_LAYER  # type: ignore[attr-defined]  # set at run time by Numba

# The parts a pool op is split into: the pool's size, fixed at start-up, so the bits never depend on the thread
# count.
POOL_BLOCKS = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set at run time by Numba

from fastae.kernels.cpu import dense  # noqa: E402
from fastae.kernels.cpu._config import ACT_CODE, PARALLEL_MIN  # noqa: E402

latent, losses, noise, optim, products = _serial.latent, _serial.losses, _serial.noise, _serial.optim, _serial.products

# Per-element cost of the latent's kernels against the cheap elementwise kernels PARALLEL_MIN was chosen on: they
# draw a Philox normal and call libm per element, so their twins pay for the pool's fork and join from far fewer
# elements (docs/performance.md).
LATENT_WEIGHT, LATENT_BACKWARD_WEIGHT = 64, 32


def warmup(dtypes=DTYPES):
    """Compile (or load from Numba's cache) the serial kernels, their ``_par`` twins and the pool products."""
    from fastae.kernels.cpu import signatures

    signatures.compile_all(parallel=True)


def session():
    """Hold around a whole fit or encode: keeps SciPy's BLAS at one thread throughout (``blas_threads.CAP``), so
    each op's own hold is only a counter."""
    return CAP


def describe() -> dict:
    """What runs: the threading layer, Numba's thread count, the parallel threshold and the parts a pool op is
    split into."""
    return {
        "backend": NAME,
        "kernels": "one pool",
        "threading_layer": THREADING_LAYER,
        "numba_threads": numba.get_num_threads(),
        "parallel_min_elements": PARALLEL_MIN,
        "pool_blocks": POOL_BLOCKS,
        "pool_unavailable": unavailable(),
    }


def _pick(module, name, size):
    """The parallel twin of kernel ``name`` for arrays of at least ``PARALLEL_MIN`` elements, else the serial
    one."""
    return getattr(module, name + "_par" if size >= PARALLEL_MIN else name)


_MKL_ON_POOL: list[bool] = []  # [whether oneMKL's large float32 products run on this pool's threads], resolved once


def _mkl_on_pool():
    """True when oneMKL takes the large float32 products (:func:`gemm.large_fp32`) on GNU OpenMP threads and Numba
    runs its "omp" layer: both are the one libgomp's threads, so MKL's threaded product is this pool at work, and
    it beats splitting the product into single-threaded parts (docs/performance.md)."""
    if not _MKL_ON_POOL:
        p = gemm.large_fp32()
        _MKL_ON_POOL.append(getattr(p, "threading", None) == "gnu" and THREADING_LAYER == "omp")
    return _MKL_ON_POOL[0]


# Products narrower than this many columns stay on the pool's own ops even where oneMKL runs on the pool's threads:
# split by rows they were quicker (the small model's encode: 178 µs on the pool's ops, 230 µs through MKL).
MKL_MIN_COLUMNS = 64


def _pooled(n, k, m, dtype):
    """True if an op whose product is ``(n × k)·(k × m)`` runs on the pool's own product ops: a large one, unless
    it is a float32 product of several rows and ``MKL_MIN_COLUMNS`` columns that oneMKL runs on the pool's threads
    (:func:`_mkl_on_pool`)."""
    if n * k * m <= FUSED_MAX_MULADDS:
        return False
    return not (n >= gemm.MKL_MIN_ROWS and m >= MKL_MIN_COLUMNS and dtype == np.float32 and _mkl_on_pool())


def _row_parts(n):
    """Parts for an op split by its ``n`` rows: a function of ``n`` and the pool's size only."""
    return max(1, min(POOL_BLOCKS, n // POOL_MIN_ROWS))


def _c(a):
    """``a`` C-contiguous, copied only if it is not: the pool kernels take a matrix's width as its row stride."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def values_ok(x, unit_interval):
    """The boundary scan (:func:`fastae.kernels.cpu.checks.values_ok`), split over the pool for large inputs."""
    if x.size >= PARALLEL_MIN:
        return bool(products.values_ok_par(_c(x), unit_interval, _row_parts(x.shape[0])))
    return _serial.values_ok(x, unit_interval)


# --- dense layers ---------------------------------------------------------------------------------------------
def dense_forward(x, W, b, activation, transpose=False, out=None):
    """As :func:`numba_cpu.dense_forward`; a large product runs on the pool, split by rows (by columns when there
    are too few rows to share out), with the bias and activation of each part on its warm rows."""
    n = x.shape[0]
    m = W.shape[1] if transpose else W.shape[0]
    if not _pooled(n, x.shape[1], m, x.dtype):
        a = _serial._product(x, W, transpose, out)
        _pick(dense, "bias_act", a.size)(a, b, ACT_CODE[activation])
        return a
    a = np.empty((n, m), dtype=x.dtype) if out is None else out
    with CAP:
        if n < POOL_MIN_ROWS * POOL_BLOCKS:
            products.linear_act_cols(_c(x), _c(W), transpose, _c(b), ACT_CODE[activation], a, POOL_BLOCKS)
        else:
            products.linear_act(_c(x), _c(W), transpose, _c(b), ACT_CODE[activation], a, _row_parts(n))
    return a


def dense_backward(delta, x, W, transpose=False, need_dx=True):
    """As :func:`numba_cpu.dense_backward`; a large product runs on the pool, split by rows of ``dW``."""
    if not _pooled(delta.shape[0], delta.shape[1], x.shape[1], delta.dtype):
        return _serial._dense_backward(delta, x, W, transpose, need_dx, _pick(dense, "col_sum", delta.size))
    dW = np.empty(W.shape, dtype=delta.dtype)
    db = np.empty(delta.shape[1], dtype=delta.dtype)
    dx = np.empty(x.shape, dtype=delta.dtype) if need_dx else dW[:1]  # dW[:1]: a placeholder, not written
    with CAP:
        products.backward(_c(delta), _c(x), _c(W), transpose, need_dx, dW, db, dx, POOL_BLOCKS)
    return dW, db, dx if need_dx else None


def activation_backward(dh, h, activation):
    return _serial._activation_backward(dh, h, activation, _pick(dense, "act_backward", dh.size))


# --- output layer fused with its loss -------------------------------------------------------------------------
def output_loss_grad(h, W, c, x, loss, transpose=False):
    n = x.shape[0]
    if not _pooled(n, h.shape[1], x.shape[1], h.dtype):
        kernel = "bce_output" if loss == "bce" else "mse_output"
        return _serial._output_loss_grad(h, W, c, x, loss, transpose, _pick(losses, kernel, x.size))
    a = np.empty(x.shape, dtype=h.dtype)
    rows = np.empty(n, dtype=a.dtype)
    with CAP:
        products.output_loss(
            _c(h), _c(W), transpose, _c(c), _c(x), loss == "bce", _serial._t(a)(1.0 / n), a, rows, _row_parts(n)
        )
    return rows.sum() / _serial._t(a)(n), a


def output_row_loss(h, W, c, x, loss, transpose=False):
    if not _pooled(x.shape[0], h.shape[1], x.shape[1], h.dtype):
        return _serial._output_row_loss(h, W, c, x, loss, transpose, _pick(losses, "output_rows", x.size))
    a = np.empty(x.shape, dtype=h.dtype)
    rows = np.empty(x.shape[0], dtype=a.dtype)
    with CAP:
        products.output_rows(_c(h), _c(W), transpose, _c(c), _c(x), loss == "bce", a, rows, _row_parts(x.shape[0]))
    return rows


# --- corruption, latent and optimisers: the serial bodies with the twins for large arrays ------------------------
def mask_noise(x, p, key, step, row0=0):
    return _serial._noise(_pick(noise, "mask_noise", x.size), x, p, key, step, row0)


def gaussian_noise(x, sigma, key, step, row0=0):
    return _serial._noise(_pick(noise, "gaussian_noise", x.size), x, sigma, key, step, row0)


def gaussian_latent(mu, logvar, beta, key, step, row0=0, stream=_serial._ref.rng.STREAM_EPS):
    kernel = _pick(latent, "gaussian_latent", mu.size * LATENT_WEIGHT)
    return _serial._gaussian_latent(kernel, mu, logvar, beta, key, step, row0, stream)


def gaussian_latent_backward(dz, z, mu, logvar, beta):
    kernel = _pick(latent, "gaussian_latent_backward", mu.size * LATENT_BACKWARD_WEIGHT)
    return _serial._gaussian_latent_backward(kernel, dz, z, mu, logvar, beta)


def sgd_update(p, g, out, lr):
    return _serial._sgd(_pick(optim, "sgd", p.size), p, g, out, lr)


def momentum_update(p, g, buf, out, lr, momentum, nesterov):
    return _serial._momentum(_pick(optim, "momentum", p.size), p, g, buf, out, lr, momentum, nesterov)


def adam_update(p, g, m, v, out, lr, beta1, beta2, eps, t_step):
    return _serial._adam(_pick(optim, "adam", p.size), p, g, m, v, out, lr, beta1, beta2, eps, t_step)


# bfloat16 products: oneMKL's threads (the same GNU OpenMP pool as Numba's under the "omp" layer) for the
# products, the _par twins of the epilogues and conversions on the pool.
def bf16_input(x, unit_interval):
    return _serial._bf16_input(_pick, x, unit_interval)


def to_bf16(x):
    return _serial._to_bf16(_pick, x)


def dense_forward_bf16(x16, Wb, b, activation, transpose=False, out=None, bf16_out=False):
    return _serial._dense_forward_bf16(_pick, x16, Wb, b, activation, transpose, out, bf16_out)


def dense_forward_bf16_pair(x16, Wb, b, activation, transpose=False):
    return _serial._dense_forward_bf16_pair(_pick, x16, Wb, b, activation, transpose)


def output_loss_grad_bf16(h16, Wb, c, x, loss, transpose=False):
    return _serial._output_loss_grad_bf16(_pick, h16, Wb, c, x, loss, transpose)


def output_row_loss_bf16(h16, Wb, c, x, loss, transpose=False):
    return _serial._output_row_loss_bf16(_pick, h16, Wb, c, x, loss, transpose)


def activation_backward_bf16(dh, h, activation):
    return _serial._activation_backward_bf16(_pick, dh, h, activation)


def dense_backward_bf16(delta, d16, x16, Wb, transpose=False, need_dx=True):
    return _serial._dense_backward_bf16(_pick, delta, d16, x16, Wb, transpose, need_dx)


def sgd_update_bf16(p, g, out, out16, lr):
    return _serial._sgd(_pick(optim, "sgd", p.size), p, g, out, lr, out16)


def momentum_update_bf16(p, g, buf, out, out16, lr, momentum, nesterov):
    kernel = _pick(optim, "momentum", p.size)
    return _serial._momentum(kernel, p, g, buf, out, lr, momentum, nesterov, out16)


def adam_update_bf16(p, g, m, v, out, out16, lr, beta1, beta2, eps, t_step):
    kernel = _pick(optim, "adam", p.size)
    return _serial._adam(kernel, p, g, m, v, out, lr, beta1, beta2, eps, t_step, out16)


__all__ = [
    "NAME",
    "DTYPES",
    "ARRAY_TYPES",
    "CAPABILITIES",
    "xp",
    "unavailable",
    "warmup",
    "session",
    "to_numpy",
    "describe",
    "values_ok",
    "ae1_stepper",
    "ae1_workspace_size",
    "fused_ae1_fits",
    "bf16_input",
    "bf16_weight",
    "to_bf16",
    "activation_backward_bf16",
    "dense_backward_bf16",
    "dense_forward_bf16",
    "dense_forward_bf16_pair",
    "output_loss_grad_bf16",
    "output_row_loss_bf16",
    "contractive_penalty",
    "gaussian_kl_rows",
    "kl_sparsity",
    "l1_penalty",
    "permutation",
    "weight_decay",
]
