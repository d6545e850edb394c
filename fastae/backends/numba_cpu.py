"""The Numba CPU backend: BLAS for the matrix products, fused Numba kernels for everything around them.

Same op contract as :mod:`fastae.backends.numpy_ref` (the spec), op for op (:mod:`.contract`). Matrix products go
to NumPy's BLAS; the kernels in ``fastae.kernels.cpu`` fuse the bias, activation, loss and its gradient,
reductions, noise, the reparameterisation and the optimiser updates, each in one pass over memory.

Threads: the matrix products use every core through NumPy's BLAS; the kernels around them run on the calling
thread and release the GIL (``nogil``), so any number of Python threads may call into one model at once. It
shares NumPy's own thread pool with the rest of the program. :mod:`.numba_pool` (``backend="numba-pool"``) runs
products and kernels on one pool of Numba's instead, with the op bodies written here.
"""

from __future__ import annotations

import contextlib
import importlib
import operator

import numpy as np

from .. import constants, precision
from . import contract, gemm
from . import numpy_ref as _ref

NAME = "numba"
DTYPES = ("float32", "float64")
ARRAY_TYPES = (np.ndarray,)
CAPABILITIES = frozenset({contract.FUSED_AE1_STEP, contract.VALUES_SCAN, contract.BF16_PRODUCTS})
xp = np

from fastae.kernels.cpu import checks, dense  # noqa: E402
from fastae.kernels.cpu._config import ACT_CODE  # noqa: E402


class _OnFirstUse:
    """A kernel module imported on first use: encoding needs only ``dense`` and ``checks``, so a program that
    loads a model and encodes never pays for loading the training kernels from Numba's cache."""

    def __init__(self, name):
        self._name, self._module = name, None

    def __getattr__(self, attr):  # only for names not yet looked up: each is then kept as an attribute
        if self._module is None:
            self._module = importlib.import_module(f"fastae.kernels.cpu.{self._name}")
        value = getattr(self._module, attr)
        setattr(self, attr, value)
        return value


latent, losses, noise, optim, penalties, products, step, bf16k, philox = (
    _OnFirstUse(n) for n in ("latent", "loss", "noise", "optim", "penalties", "products", "step", "bf16", "philox")
)


def unavailable():
    """Always ``None``: this backend runs wherever Numba imports."""
    return None


def warmup(dtypes=DTYPES):
    """Compile (or load from Numba's cache) the serial kernels of ``fastae.kernels.cpu.signatures`` (both
    dtypes: the table is per kernel, not per dtype)."""
    from fastae.kernels.cpu import signatures

    signatures.compile_all(parallel=False)


def session():
    """Nothing to set up: BLAS keeps its own threads and the kernels run on the calling one."""
    return contextlib.nullcontext()


to_numpy = _ref.to_numpy  # this backend's arrays are NumPy's


def _t(a):
    return a.dtype.type


values_ok = checks.values_ok  # bound directly: a one-row encode has no time for another Python frame


def _matmul(a, b, out=None):
    """``a @ b`` (into ``out``): float32 products of at least ``gemm.MKL_MIN_MULADDS`` through the large-product
    provider (oneMKL where installed), everything else through NumPy's BLAS."""
    if (
        a.dtype == _F32
        and b.dtype == _F32
        and a.shape[0] * a.shape[1] * b.shape[1] >= gemm.MKL_MIN_MULADDS
        and a.shape[0] >= gemm.MKL_MIN_ROWS
        and (a.flags.c_contiguous or a.flags.f_contiguous)
        and (b.flags.c_contiguous or b.flags.f_contiguous)
        and (out is None or out.flags.c_contiguous)
    ):
        if out is None:
            out = np.empty((a.shape[0], b.shape[1]), dtype=_F32)
        return gemm.large_fp32().matmul(a, b, out)
    return a @ b if out is None else np.matmul(a, b, out=out)


_F32 = np.dtype(np.float32)


def _product(x, W, transpose, out=None):
    """``x Wᵀ`` (``x W`` with ``transpose``), into ``out`` if given."""
    return _matmul(x, W if transpose else W.T, out)


# --- dense layers ---------------------------------------------------------------------------------------------
def dense_forward(x, W, b, activation, transpose=False, out=None):
    """``h = f(x Wᵀ + b)`` (or ``f(x W + b)``): one BLAS product, then bias and activation fused in place; into
    ``out`` when given (as :func:`numpy_ref.dense_forward`)."""
    a = _product(x, W, transpose, out)
    dense.bias_act(a, b, ACT_CODE[activation])
    return a


def dense_backward(delta, x, W, transpose=False, need_dx=True):
    """``dW``, ``db`` (column sums in a fixed order) and ``dx``, as :func:`numpy_ref.dense_backward`."""
    return _dense_backward(delta, x, W, transpose, need_dx, dense.col_sum)


def _dense_backward(delta, x, W, transpose, need_dx, col_sum):
    dW = _matmul(x.T, delta) if transpose else _matmul(delta.T, x)
    db = np.empty(delta.shape[1], dtype=delta.dtype)
    col_sum(delta, db)
    dx = None
    if need_dx:
        dx = _matmul(delta, W.T) if transpose else _matmul(delta, W)
    return dW, db, dx


def activation_backward(dh, h, activation):
    """``dh ⊙ f'(h)``, computed in place in ``dh`` (a consumed gradient, see the op contract)."""
    return _activation_backward(dh, h, activation, dense.act_backward)


def _activation_backward(dh, h, activation, kernel):
    if activation != "linear":
        kernel(dh, h, ACT_CODE[activation])
    return dh


# --- bfloat16 products ------------------------------------------------------------------------------------------
# Each op's body takes ``pick(module, kernel name, elements)``, which chooses the kernel: the serial one here, the
# parallel twin for large arrays in :mod:`.numba_pool`.
def _serial_kernel(module, name, size):
    return getattr(module, name)


def bf16_input(x, unit_interval):
    """``(ok, x16)`` in one pass over ``x`` (:func:`fastae.kernels.cpu.bf16.check_to_bf16`)."""
    return _bf16_input(_serial_kernel, x, unit_interval)


def _bf16_input(pick, x, unit_interval):
    x16 = np.empty(x.shape, dtype=np.uint16)
    return bool(pick(bf16k, "check_to_bf16", x.size)(x, unit_interval, x16)), x16


def to_bf16(x):
    return _to_bf16(_serial_kernel, x)


def _to_bf16(pick, x):
    x16 = np.empty(x.shape, dtype=np.uint16)
    pick(bf16k, "to_bf16", x.size)(np.ascontiguousarray(x), x16)
    return x16


def _widened(h):
    w = np.empty(h.shape, dtype=np.float32)
    bf16k.widen(h, w)
    return w


def bf16_weight(W, bits=None):
    """As :func:`numpy_ref.bf16_weight` (the float32 values widened only if an emulated product asks)."""
    return precision.BF16Weight(to_bf16(W) if bits is None else bits, _widened)


def _matmul_bf16(a16, b16, out=None, b32=None):
    """``a @ b`` of bfloat16 operands into float32 ``out``: oneMKL's bf16 GEMM where :func:`gemm.bf16_provider`
    gives one, else the emulation, which takes ``b16``'s float32 values from ``b32()`` when given (a weight's,
    widened once) and otherwise widens them here."""
    m, k = a16.shape
    n = b16.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=np.float32)
    p = gemm.bf16_provider(m, k, n)
    if p is not None:
        return p.matmul_bf16(a16, b16, out)
    return _matmul(_widen_any(a16), _widen_any(b16) if b32 is None else b32(), out)


def _widen_any(a16):
    """The float32 values of bfloat16 patterns that are C-contiguous or the transpose of a C-contiguous array."""
    return _widened(a16) if a16.flags.c_contiguous else _widened(np.ascontiguousarray(a16.T)).T


def _weight_product(a16, Wb, transposed, out=None):
    """``a @ W`` (``a @ Wᵀ`` with ``transposed``) of bfloat16 operands, ``Wb`` a weight's bfloat16 form."""
    W16 = Wb.bits
    return _matmul_bf16(a16, W16.T if transposed else W16, out, lambda: Wb.values.T if transposed else Wb.values)


def _bf16_product(x16, Wb, transpose, out=None):
    """``x Wᵀ`` (``x W`` with ``transpose``) of bfloat16 operands, float32."""
    return _weight_product(x16, Wb, not transpose, out)


def dense_forward_bf16(x16, Wb, b, activation, transpose=False, out=None, bf16_out=False):
    """As :func:`numpy_ref.dense_forward_bf16`: oneMKL's bfloat16 GEMM where the processor has bfloat16 units and
    the product is large enough (as for float32, :mod:`.gemm`), else the emulation (widened operands, float32
    products: the same rounding); then the bias and activation, in bfloat16 too with ``bf16_out``."""
    return _dense_forward_bf16(_serial_kernel, x16, Wb, b, activation, transpose, out, bf16_out)


def _dense_forward_bf16(pick, x16, Wb, b, activation, transpose, out, bf16_out):
    a = _bf16_product(x16, Wb, transpose, None if (out is None or bf16_out) else out)
    code = ACT_CODE[activation]
    if not bf16_out:
        pick(dense, "bias_act", a.size)(a, b, code)
        return a
    h16 = np.empty(a.shape, dtype=np.uint16) if out is None else out
    pick(bf16k, "bias_act_bf16", a.size)(a, b, code, h16)
    return h16


def dense_forward_bf16_pair(x16, Wb, b, activation, transpose=False):
    """As :func:`numpy_ref.dense_forward_bf16_pair`: one epilogue writes ``h`` and its bfloat16 patterns."""
    return _dense_forward_bf16_pair(_serial_kernel, x16, Wb, b, activation, transpose)


def _dense_forward_bf16_pair(pick, x16, Wb, b, activation, transpose):
    a = _bf16_product(x16, Wb, transpose)
    h16 = np.empty(a.shape, dtype=np.uint16)
    pick(bf16k, "bias_act_bf16", a.size)(a, b, ACT_CODE[activation], h16)
    return a, h16


def output_loss_grad_bf16(h16, Wb, c, x, loss, transpose=False):
    """As :func:`numpy_ref.output_loss_grad_bf16`: the bf16 product, the fused loss pass over it, then the
    rounding of ``delta`` (a second pass, over an array the first has just left in cache)."""
    return _output_loss_grad_bf16(_serial_kernel, h16, Wb, c, x, loss, transpose)


def _output_loss_grad_bf16(pick, h16, Wb, c, x, loss, transpose):
    n = x.shape[0]
    a = _bf16_product(h16, Wb, transpose)
    rows = np.empty(n, dtype=a.dtype)
    pick(losses, "bce_output" if loss == "bce" else "mse_output", a.size)(a, c, x, a, _t(a)(1.0 / n), rows)
    return rows.sum() / _t(a)(n), a, _to_bf16(pick, a)


def output_row_loss_bf16(h16, Wb, c, x, loss, transpose=False):
    return _output_row_loss_bf16(_serial_kernel, h16, Wb, c, x, loss, transpose)


def _output_row_loss_bf16(pick, h16, Wb, c, x, loss, transpose):
    a = _bf16_product(h16, Wb, transpose)
    rows = np.empty(x.shape[0], dtype=a.dtype)
    pick(losses, "output_rows", a.size)(a, c, x, loss == "bce", rows)
    return rows


def activation_backward_bf16(dh, h, activation):
    """As :func:`numpy_ref.activation_backward_bf16`, in one pass (``bf16.act_backward_bf16``)."""
    return _activation_backward_bf16(_serial_kernel, dh, h, activation)


def _activation_backward_bf16(pick, dh, h, activation):
    d16 = np.empty(dh.shape, dtype=np.uint16)
    if activation == "linear":
        pick(bf16k, "to_bf16", dh.size)(dh, d16)
    else:
        pick(bf16k, "act_backward_bf16", dh.size)(dh, h, ACT_CODE[activation], d16)
    return dh, d16


def dense_backward_bf16(delta, d16, x16, Wb, transpose=False, need_dx=True):
    """As :func:`numpy_ref.dense_backward_bf16`."""
    return _dense_backward_bf16(_serial_kernel, delta, d16, x16, Wb, transpose, need_dx)


def _dense_backward_bf16(pick, delta, d16, x16, Wb, transpose, need_dx):
    dW = _matmul_bf16(x16.T, d16) if transpose else _matmul_bf16(d16.T, x16)
    db = np.empty(delta.shape[1], dtype=delta.dtype)
    pick(dense, "col_sum", delta.size)(delta, db)
    dx = _weight_product(d16, Wb, transpose) if need_dx else None
    return dW, db, dx


# --- output layer fused with its loss -------------------------------------------------------------------------
def output_loss_grad(h, W, c, x, loss, transpose=False):
    """The product, then sigmoid/identity, loss and ``(x̂ − x)/B`` in one pass that overwrites the product."""
    return _output_loss_grad(h, W, c, x, loss, transpose, losses.bce_output if loss == "bce" else losses.mse_output)


def _output_loss_grad(h, W, c, x, loss, transpose, kernel):
    n = x.shape[0]
    a = _product(h, W, transpose)
    rows = np.empty(n, dtype=a.dtype)
    kernel(a, c, x, a, _t(a)(1.0 / n), rows)
    return rows.sum() / _t(a)(n), a


def output_row_loss(h, W, c, x, loss, transpose=False):
    """Per-row loss of the output layer, as :func:`numpy_ref.output_row_loss`."""
    return _output_row_loss(h, W, c, x, loss, transpose, losses.output_rows)


def _output_row_loss(h, W, c, x, loss, transpose, kernel):
    a = _product(h, W, transpose)
    rows = np.empty(x.shape[0], dtype=a.dtype)
    kernel(a, c, x, loss == "bce", rows)
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
    return _noise(noise.mask_noise, x, p, key, step, row0)


def gaussian_noise(x, sigma, key, step, row0=0):
    return _noise(noise.gaussian_noise, x, sigma, key, step, row0)


def _noise(kernel, x, level, key, step, row0):
    out = np.empty_like(x)
    k0, k1 = _key(key)
    kernel(x, _t(x)(level), k0, k1, np.uint32(step), np.int64(row0), out)
    return out


# --- Gaussian latent ------------------------------------------------------------------------------------------
def _logvar_bounds(a):
    t = _t(a)
    return t(constants.LOGVAR_MIN), t(constants.LOGVAR_MAX)


def gaussian_latent(mu, logvar, beta, key, step, row0=0, stream=_ref.rng.STREAM_EPS):
    return _gaussian_latent(latent.gaussian_latent, mu, logvar, beta, key, step, row0, stream)


def _gaussian_latent(kernel, mu, logvar, beta, key, step, row0, stream):
    z = np.empty_like(mu)
    kl_rows = np.empty(mu.shape[0], dtype=mu.dtype)
    k0, k1 = _key(key)
    kernel(mu, logvar, *_logvar_bounds(mu), k0, k1, np.uint32(stream), np.uint32(step), np.int64(row0), z, kl_rows)
    return z, _t(mu)(beta) * kl_rows.mean(dtype=mu.dtype)


def gaussian_latent_backward(dz, z, mu, logvar, beta):
    return _gaussian_latent_backward(latent.gaussian_latent_backward, dz, z, mu, logvar, beta)


def _gaussian_latent_backward(kernel, dz, z, mu, logvar, beta):
    t = _t(mu)
    dmu = np.empty_like(mu)
    dlv = np.empty_like(mu)
    kernel(dz, z, mu, logvar, *_logvar_bounds(mu), t(beta), t(1.0 / mu.shape[0]), dmu, dlv)
    return dmu, dlv


def gaussian_kl_rows(mu, logvar):
    out = np.empty(mu.shape[0], dtype=mu.dtype)
    latent.gaussian_kl_rows(mu, logvar, *_logvar_bounds(mu), out)
    return out


# --- the shuffle ----------------------------------------------------------------------------------------------
def permutation(key, stream, step, n):
    """:func:`fastae.rng.permutation` with the Philox words drawn by the compiled generator (the same bits), then
    the same stable sort: a small model's ``partial_fit`` spent most of its time drawing them in NumPy."""
    bits = np.empty((1, n), dtype=np.uint32)
    k0, k1 = _key(key)
    philox.random_bits(k0, k1, np.uint32(stream), np.uint32(step), np.int64(0), np.int64(0), bits)
    return np.argsort(bits[0], kind="stable")


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
    return _sgd(optim.sgd, p, g, out, lr)


def momentum_update(p, g, buf, out, lr, momentum, nesterov):
    return _momentum(optim.momentum, p, g, buf, out, lr, momentum, nesterov)


def adam_update(p, g, m, v, out, lr, beta1, beta2, eps, t_step):
    return _adam(optim.adam, p, g, m, v, out, lr, beta1, beta2, eps, t_step)


def sgd_update_bf16(p, g, out, out16, lr):
    """As :func:`numpy_ref.sgd_update_bf16`: the bfloat16 copy is written by the update kernel, block by block."""
    return _sgd(optim.sgd, p, g, out, lr, out16)


def momentum_update_bf16(p, g, buf, out, out16, lr, momentum, nesterov):
    return _momentum(optim.momentum, p, g, buf, out, lr, momentum, nesterov, out16)


def adam_update_bf16(p, g, m, v, out, out16, lr, beta1, beta2, eps, t_step):
    return _adam(optim.adam, p, g, m, v, out, lr, beta1, beta2, eps, t_step, out16)


_NO_BF16 = np.empty(0, dtype=np.uint16)  # the optimiser kernels' o16 when no bfloat16 copy is asked for


def _o16(out16, p):
    """The kernels' flat ``o16``: written through, so it must be ``p``'s size, uint16 and C-contiguous (a copy
    would drop the patterns, a short one be overrun)."""
    if out16 is None:
        return _NO_BF16
    if out16.dtype != np.uint16 or out16.size != p.size or not out16.flags.c_contiguous:
        raise ValueError(
            f"out16 must be a C-contiguous uint16 array of the parameter's {p.size} elements, got {out16.dtype} "
            f"of {out16.size}{'' if out16.flags.c_contiguous else ', not C-contiguous'}"
        )
    return out16.reshape(-1)


def _sgd(kernel, p, g, out, lr, out16=None):
    return bool(kernel(p.reshape(-1), _over(g, out), float(lr), _o16(out16, p)))


def _momentum(kernel, p, g, buf, out, lr, momentum, nesterov, out16=None):
    o = _over(g, out)
    return bool(kernel(p.reshape(-1), o, buf.reshape(-1), float(lr), float(momentum), bool(nesterov), _o16(out16, p)))


def _adam(kernel, p, g, m, v, out, lr, beta1, beta2, eps, t_step, out16=None):
    step, rs = _ref.adam_scalars(lr, beta1, beta2, t_step)
    o, b1, b2, e = _over(g, out), float(beta1), float(beta2), float(eps)
    return bool(kernel(p.reshape(-1), o, m.reshape(-1), v.reshape(-1), step, rs, b1, b2, e, _o16(out16, p)))


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


def ae1_stepper(tied, activation, loss, optimizer, lr, momentum, beta1, beta2, eps):
    """``run(x, x_in, ps, outs, first, second, ws, t_step) -> (loss, status)``: one whole update of a
    one-hidden-layer autoencoder (``ps``: W, b, [W_d,] c; ``outs``/``first``/``second`` alike, as
    ``Optimizer.buffers`` gives them) in one compiled call, with every setting that is fixed for an epoch resolved
    here once: a call of a model this small costs about what resolving them would. ``status`` is
    :func:`fastae.kernels.cpu.step.ae1_step`'s."""
    kernel = step.ae1_step
    pick = operator.itemgetter(*((0, 1, 0, 2) if tied else (0, 1, 2, 3)))  # the tied decoder weight is the encoder's
    flags = (
        bool(tied),
        ACT_CODE[activation],
        loss == "bce",
        step.OPTIMIZER_CODE[optimizer],
        float(lr),
        float(momentum),
        optimizer == "nesterov",
        float(beta1),
        float(beta2),
        float(eps),
    )
    adam = optimizer == "adam"

    def run(x, x_in, ps, outs, first, second, ws, t_step):
        s, rs = _ref.adam_scalars(lr, beta1, beta2, t_step) if adam else (0.0, 0.0)
        value, status = kernel(x, x_in, *pick(ps), *pick(outs), *pick(first), *pick(second), ws, *flags, s, rs)
        return float(value), status

    return run
