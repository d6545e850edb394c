"""The CuPy GPU backend: cuBLAS for the matrix products, the fused CUDA kernels of ``fastae.kernels.cuda`` for
everything around them.

Same op contract as :mod:`fastae.backends.numpy_ref` (the spec), op for op (:mod:`.contract`), on CuPy arrays:
CuPy input stays on its device and CuPy arrays come back. The products run through ``gemmEx``
(:mod:`.cupy_blas`) with no transposed copies; the kernels (:mod:`.cupy_kernels`) fuse the bias, activation, loss
and its gradient, the reductions (two passes in a fixed order, so a result does not depend on timing), the noise
and the reparameterisation with the same Philox draws as the CPU, and the optimiser updates.

Streams: :func:`session` runs a fit or an encode on a non-blocking stream of its own thread (one per thread and
device, kept), so models trained from different threads do not serialise on the legacy default stream. Values an
op returns (a loss, a penalty) are 0-d device arrays; the optimiser's verdict is read back to the host, one small
copy per update. ``precision="tf32"`` (this backend only) lets the float32 products round their operands to TF32 in the
tensor cores (:func:`tf32_ops`).
"""

from __future__ import annotations

import contextlib
import threading

try:
    import cupy as cp
except ImportError as exc:  # the registry reports this as the reason backend="cupy" cannot run
    raise ImportError(f"backend 'cupy' needs CuPy: pip install 'fastae[gpu]' (cupy-cuda13x) ({exc})") from exc
import numpy as np

from .. import constants, precision, rng
from . import contract, cupy_blas, numpy_ref
from . import cupy_kernels as kernels
from .cupy_blas import gemm, product

NAME = "cupy"
DTYPES = ("float32", "float64")
ARRAY_TYPES = (cp.ndarray,)
CAPABILITIES = frozenset(
    {
        contract.VALUES_SCAN,
        contract.BF16_PRODUCTS,
        contract.TF32_PRODUCTS,
        contract.MULTI_TENSOR_UPDATE,
        contract.HOST_STREAM,
    }
)
xp = cp

ACT_CODE = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3}  # kernels/cuda/common.cuh
OPT_CODE = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3}  # kernels/cuda/optim.cu


# --- lifecycle ------------------------------------------------------------------------------------------------
def unavailable():
    """Why this backend cannot run here (no CUDA device or driver, no cuBLAS), or ``None``."""
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, or a driver older than CuPy's runtime
        return f"no usable CUDA device: {type(exc).__name__}: {exc}"
    if count == 0:
        return "no CUDA device: cupy.cuda.runtime.getDeviceCount() is 0"
    try:
        cupy_blas.cublas()
    except Exception as exc:
        return f"cuBLAS cannot be loaded ({exc}); pip install 'fastae[gpu]' installs it with CuPy"
    return None


def warmup(dtypes=DTYPES):
    """Compile (or load from CuPy's kernel cache) every kernel family."""
    for family in kernels.FAMILIES:
        kernels.module(family).compile()


_streams = threading.local()


def _own_stream(role):
    """This thread's non-blocking stream ``role`` on the current device, made on first use and kept (a stream
    belongs to the device it was made on)."""
    mine = _streams.__dict__.setdefault(role, {})
    device = cp.cuda.runtime.getDevice()
    s = mine.get(device)
    if s is None:
        s = mine[device] = cp.cuda.Stream(non_blocking=True)
    return s


def stream():
    """This thread's compute stream on the current device."""
    return _own_stream("compute")


@contextlib.contextmanager
def session():
    """Makes this thread's stream current for a whole fit or encode. A non-blocking stream does not wait for the
    legacy default stream, where the uploads made before the session ran (the weights, the input, the epoch's
    order): so it waits for what the caller's stream has queued on entry, and the caller waits for it on exit,
    whether the session ends normally or by an exception."""
    s = stream()
    caller = cp.cuda.get_current_stream()
    if caller != s:
        s.wait_event(caller.record())
    try:
        with s:
            yield
    finally:
        s.synchronize()


def _copy_stream():
    """This thread's second stream, for copies from the host that overlap the computation on :func:`stream`."""
    return _own_stream("copy")


def stream_rows(X, fn, dest, chunk):
    """``fn(rows, row0, dest[row0:row0 + len(rows)])`` over row chunks of the host array ``X``, on the device.

    Each chunk goes through one of two pinned host buffers and one of two device buffers: while ``fn`` computes
    chunk ``i`` on the current stream, chunk ``i + 1`` is copied to the host buffer and then, on a stream of its
    own, to the device. Events order the two streams (a device buffer is refilled only after the chunk in it was
    computed; a host buffer only after its last copy left). Host to device is the bound of such an encode (PCIe
    against the products, docs/performance.md), so overlapping the two hides the products when there are several
    chunks; and the device holds two chunks of the input, never all of it."""
    n, d = X.shape
    rows = min(chunk, n)
    buffers = 1 if n <= chunk else 2  # one chunk has nothing to overlap with
    compute, copy = cp.cuda.get_current_stream(), _copy_stream()
    nbytes = rows * d * X.itemsize
    host = [
        np.frombuffer(cp.cuda.alloc_pinned_memory(nbytes), X.dtype, rows * d).reshape(rows, d) for _ in range(buffers)
    ]
    device = [cp.empty((rows, d), dtype=X.dtype) for _ in range(buffers)]
    # the pool may hand back memory that work queued on the compute stream still reads: the copies wait for it
    copy.wait_event(compute.record())
    copied: list = [None] * buffers
    consumed: list = [None] * buffers
    try:
        for i, s in enumerate(range(0, n, chunk)):
            k, m = i % buffers, min(chunk, n - s)
            if copied[k] is not None:
                copied[k].synchronize()  # the host buffer's previous copy has left it
            host[k][:m] = X[s : s + m]
            if consumed[k] is not None:
                copy.wait_event(consumed[k])  # the device buffer's previous chunk has been computed
            device[k][:m].set(host[k][:m], stream=copy)
            copied[k] = copy.record()
            compute.wait_event(copied[k])
            fn(device[k][:m], s, dest[s : s + m])
            consumed[k] = compute.record()
    finally:
        copy.synchronize()  # the pinned buffers are freed on return: no copy may still read them


def to_numpy(a):
    """``a`` on the host: a copy of a CuPy array, the array itself for a NumPy one."""
    return cp.asnumpy(a) if isinstance(a, cp.ndarray) else np.asarray(a)


# --- launching ------------------------------------------------------------------------------------------------
def _sfx(a):
    return "f32" if a.dtype == np.float32 else "f64"


def _k(family, name, a):
    return kernels.function(family, f"{name}_{_sfx(a)}")


def _t(a):
    return a.dtype.type


def _c(a):
    """``a`` as a C-contiguous device array (host input, which the models hand over only where they check it on the
    backend, is copied to the device)."""
    return cp.ascontiguousarray(cp.asarray(a))


def _i(v):
    return np.int64(v)


def _flat(kernel, size, args):
    """A grid-stride kernel over ``size`` elements."""
    kernel((kernels.blocks_for(size),), (kernels.THREADS,), args)


def _sum_partials(partials, count, scale, dtype):
    """``scale · Σ partials[:count]`` as a 0-d device array (the second pass of a reduction, one block)."""
    out = cp.empty((), dtype=dtype)
    t = np.dtype(dtype).type
    k = kernels.function("dense", f"sum_partials_{'f32' if t is np.float32 else 'f64'}")
    k(
        (1,),
        (kernels.THREADS,),
        (partials, _i(count), t(scale), out),
        shared_mem=kernels.reduction_shared(kernels.THREADS, np.dtype(dtype).itemsize),
    )
    return out


def _reduced(kernel, size, args, scale, dtype, after=()):
    """Launch a kernel that leaves one partial sum per block (its argument after ``args``, then those of
    ``after``), then finish the sum."""
    blocks = kernels.blocks_for(size)
    partials = cp.empty(blocks, dtype=dtype)
    kernel(
        (blocks,),
        (kernels.THREADS,),
        (*args, partials, *after),
        shared_mem=kernels.reduction_shared(kernels.THREADS, np.dtype(dtype).itemsize),
    )
    return _sum_partials(partials, blocks, scale, dtype)


def _per_row(kernel, n, args, itemsize):
    t = kernels.ROW_THREADS
    kernel((kernels.row_blocks(n),), (t,), args, shared_mem=kernels.reduction_shared(t, itemsize))


def col_sum(d):
    """Column sums of a C-contiguous ``(n, m)`` array in a fixed order (the bias gradient)."""
    n, m = d.shape
    out = cp.empty(m, dtype=d.dtype)
    tx, ty = kernels.COL_TILE
    _k("dense", "col_sum", d)(
        (kernels.col_blocks(m),), (tx, ty), (d, _i(n), _i(m), out), shared_mem=tx * ty * d.itemsize
    )
    return out


# --- dense layers ---------------------------------------------------------------------------------------------
def _bias_act(a, b, activation):
    n, m = a.shape
    _flat(_k("dense", "bias_act", a), a.size, (a, b, _i(n), _i(m), np.int32(ACT_CODE[activation])))
    return a


def _dense_forward(x, W, b, activation, transpose, out, tf32):
    x, W = _c(x), _c(W)
    if out is None:
        out = cp.empty((x.shape[0], W.shape[1] if transpose else W.shape[0]), dtype=x.dtype)
    gemm(x, False, W, not transpose, out, tf32=tf32)
    return _bias_act(out, b, activation)


def dense_forward(x, W, b, activation, transpose=False, out=None):
    """``h = f(x Wᵀ + b)`` (or ``f(x W + b)``): the cuBLAS product, then bias and activation in place; into
    ``out`` when given (as :func:`numpy_ref.dense_forward`)."""
    return _dense_forward(x, W, b, activation, transpose, out, False)


def _dense_backward(delta, x, W, transpose, need_dx, tf32):
    delta, x, W = _c(delta), _c(x), _c(W)
    dW = product(x, True, delta, False, tf32) if transpose else product(delta, True, x, False, tf32)
    dx = None
    if need_dx:
        dx = product(delta, False, W, transpose, tf32)
    return dW, col_sum(delta), dx


def dense_backward(delta, x, W, transpose=False, need_dx=True):
    """``dW``, ``db`` (column sums in a fixed order) and ``dx``, as :func:`numpy_ref.dense_backward`."""
    return _dense_backward(delta, x, W, transpose, need_dx, False)


def activation_backward(dh, h, activation):
    """``dh ⊙ f'(h)``, in place in ``dh`` (a consumed gradient)."""
    if activation != "linear":
        _flat(_k("dense", "act_backward", dh), dh.size, (dh, h, _i(dh.size), np.int32(ACT_CODE[activation])))
    return dh


# --- output layer fused with its loss -------------------------------------------------------------------------
def _loss_pass(a, c, x, loss, d16=None):
    """The fused pass over the product ``a``: ``delta`` over ``a``, and the mean loss (0-d)."""
    n, m = a.shape
    t = _t(a)
    args = (a, c, _c(x), _i(n), _i(m), np.int32(loss == "bce"), t(1.0 / n))
    if d16 is None:
        return _reduced(_k("loss", "output_grad", a), a.size, args, 1.0 / n, a.dtype), a
    return _reduced(kernels.function("loss", "output_grad_bf16"), a.size, args, 1.0 / n, a.dtype, (d16,)), a


def output_loss_grad(h, W, c, x, loss, transpose=False):
    """The product, then the output activation, the loss and ``(x̂ − x)/B`` in one pass over it."""
    return _output_loss_grad(h, W, c, x, loss, transpose, False)


def _output_loss_grad(h, W, c, x, loss, transpose, tf32):
    return _loss_pass(product(_c(h), False, _c(W), not transpose, tf32), c, x, loss)


def _rows_pass(a, c, x, loss):
    n, m = a.shape
    rows = cp.empty(n, dtype=a.dtype)
    _per_row(_k("loss", "output_rows", a), n, (a, c, _c(x), _i(n), _i(m), np.int32(loss == "bce"), rows), a.itemsize)
    return rows


def output_row_loss(h, W, c, x, loss, transpose=False):
    """Per-row loss of the output layer, as :func:`numpy_ref.output_row_loss`."""
    return _rows_pass(product(_c(h), False, _c(W), not transpose), c, x, loss)


# --- regularisers ---------------------------------------------------------------------------------------------
def l1_penalty(h, lam):
    h = _c(h)
    t, n = _t(h), h.shape[0]
    dh = cp.empty_like(h)
    value = _reduced(_k("penalties", "l1_penalty", h), h.size, (h, _i(h.size), t(lam / n), dh), lam / n, h.dtype)
    return value, dh


def kl_sparsity(h, rho, beta):
    h = _c(h)
    t, (n, m) = _t(h), h.shape
    g, terms, dh = cp.empty(m, dtype=h.dtype), cp.empty(m, dtype=h.dtype), cp.empty_like(h)
    args = (col_sum(h), _i(m), t(1.0 / n), t(rho), t(beta), t(constants.RHO_HAT_EPS), g, terms)
    _flat(_k("penalties", "kl_sparsity_units", h), m, args)
    _flat(_k("penalties", "broadcast_rows", h), h.size, (g, _i(n), _i(m), dh))
    return _sum_partials(terms, m, beta, h.dtype), dh


def contractive_penalty(h, W, activation, lam):
    h, W = _c(h), _c(W)
    t, n, (k, d) = _t(h), h.shape[0], W.shape
    s = cp.empty(k, dtype=W.dtype)
    _per_row(_k("penalties", "row_sumsq", W), k, (W, _i(k), _i(d), s), W.itemsize)
    dz, d1sq = cp.empty_like(h), cp.empty_like(h)
    coef = t(2.0 * lam / n)
    act = np.int32(ACT_CODE[activation])
    _flat(_k("penalties", "contractive_rows", h), h.size, (h, s, _i(n), _i(k), act, coef, dz, d1sq))
    dW, terms = cp.empty_like(W), cp.empty(k, dtype=W.dtype)
    _flat(_k("penalties", "contractive_weights", W), W.size, (W, col_sum(d1sq), s, _i(k), _i(d), coef, dW, terms))
    return _sum_partials(terms, k, lam / n, h.dtype), dW, dz


def weight_decay(W, grad, wd):
    t = _t(W)
    return _reduced(_k("penalties", "weight_decay", W), W.size, (_c(W), grad, _i(W.size), t(wd)), 0.5 * wd, W.dtype)


# --- corruption and the Gaussian latent: Philox in the kernels, addressed as on the CPU -------------------------
def _key(key):
    return np.uint32(int(key[0])), np.uint32(int(key[1]))


def _noise(name, x, level, key, step, row0):
    x = _c(x)
    n, m = x.shape
    out = cp.empty_like(x)
    k0, k1 = _key(key)
    args = (x, _i(n), _i(m), _t(x)(level), k0, k1, np.uint32(rng.STREAM_NOISE), np.uint32(step), _i(row0), out)
    _flat(_k("noise", name, x), n * (-(-m // 4)), args)
    return out


def mask_noise(x, p, key, step, row0=0):
    return _noise("mask_noise", x, p, key, step, row0)


def gaussian_noise(x, sigma, key, step, row0=0):
    return _noise("gaussian_noise", x, sigma, key, step, row0)


def _bounds(a):
    t = _t(a)
    return t(constants.LOGVAR_MIN), t(constants.LOGVAR_MAX)


def gaussian_latent(mu, logvar, beta, key, step, row0=0, stream=rng.STREAM_EPS):
    mu, logvar = _c(mu), _c(logvar)
    n, k = mu.shape
    z = cp.empty_like(mu)
    k0, k1 = _key(key)
    args = (mu, logvar, _i(n), _i(k), *_bounds(mu), k0, k1, np.uint32(stream), np.uint32(step), _i(row0), z)
    return z, _reduced(_k("latent", "gaussian_latent", mu), n * (-(-k // 4)), args, beta / n, mu.dtype)


def gaussian_latent_backward(dz, z, mu, logvar, beta):
    t, n = _t(mu), mu.shape[0]
    dmu, dlv = cp.empty_like(mu), cp.empty_like(mu)
    args = (_c(dz), _c(z), _c(mu), _c(logvar), _i(mu.size), *_bounds(mu), t(beta / n), t(beta / (2 * n)), dmu, dlv)
    _flat(_k("latent", "gaussian_latent_backward", mu), mu.size, args)
    return dmu, dlv


def gaussian_kl_rows(mu, logvar):
    mu, logvar = _c(mu), _c(logvar)
    n, k = mu.shape
    out = cp.empty(n, dtype=mu.dtype)
    _per_row(_k("latent", "gaussian_kl_rows", mu), n, (mu, logvar, _i(n), _i(k), *_bounds(mu), out), mu.itemsize)
    return out


def permutation(key, stream, step, n):
    """:func:`fastae.rng.permutation` (drawn on the host, the same order as every backend's), on the device."""
    return cp.asarray(rng.permutation(key, stream, step, n))


# --- optimisers: one multi-tensor kernel (kernels/cuda/optim.cu) -------------------------------------------------
_TINY = {np.dtype(np.float32): np.finfo(np.float32).tiny, np.dtype(np.float64): np.finfo(np.float64).tiny}


def _o16_ptr(out16, p):
    if out16 is None:
        return 0
    if out16.dtype != np.uint16 or out16.size != p.size or not out16.flags.c_contiguous:
        raise ValueError(
            f"out16 must be a C-contiguous uint16 array of the parameter's {p.size} elements, got {out16.dtype} "
            f"of {out16.size}{'' if out16.flags.c_contiguous else ', not C-contiguous'}"
        )
    return out16.data.ptr


def update_many(opt, entries, lr=0.0, momentum=0.0, beta1=0.0, beta2=0.0, eps=0.0, t_step=1):
    """One launch of the ``opt`` update (a key of :data:`OPT_CODE`) over every tensor of ``entries``, each
    ``(p, g, s1, s2, out, out16)`` (``None`` where the method keeps less state or no bfloat16 copy is asked);
    returns the flags, one per tensor, nonzero where a new value is not finite (on the device)."""
    p0 = entries[0][0]
    t = _t(p0)
    table = np.zeros((len(entries), 6), dtype=np.int64)
    offsets = np.zeros(len(entries) + 1, dtype=np.int64)
    for i, (p, g, s1, s2, out, out16) in enumerate(entries):
        if out is not g:
            out[...] = g
            g = out
        table[i] = (
            p.data.ptr,
            g.data.ptr,
            0 if s1 is None else s1.data.ptr,
            0 if s2 is None else s2.data.ptr,
            out.data.ptr,
            _o16_ptr(out16, p),
        )
        offsets[i + 1] = offsets[i] + p.size
    step, rs = numpy_ref.adam_scalars(lr, beta1, beta2, t_step) if opt == "adam" else (0.0, 0.0)
    flags = cp.zeros(len(entries), dtype=np.int32)
    args = (
        np.int32(OPT_CODE[opt]),
        _on_device(table),
        _on_device(offsets),
        np.int32(len(entries)),
        t(lr),
        t(momentum),
        t(step),
        t(rs),
        t(beta1),
        t(beta2),
        t(1 - beta1),
        t(1 - beta2),
        t(eps),
        t(_TINY[p0.dtype]),
        flags,
    )
    _flat(_k("optim", "update", p0), int(offsets[-1]), args)
    return flags


def update_all(method, entries, lr, momentum, beta1, beta2, eps, t_step):
    """Capability ``multi_tensor_update``: ``method`` (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``) on
    every ``(p, g, s1, s2, out, out16)`` of ``entries`` in one launch; the index of the first tensor with a
    non-finite new value, or ``None`` (one read of the flags)."""
    bad = np.flatnonzero(cp.asnumpy(update_many(method, entries, lr, momentum, beta1, beta2, eps, t_step)))
    return int(bad[0]) if bad.size else None


_TABLES: dict = {}  # (device, the bytes of a small host array) -> its device copy


def _on_device(a):
    """The device copy of the optimiser's small table ``a``, kept by its contents: a training step alternates
    between two sets of buffers, so after two steps no table is uploaded again. The key is the addresses
    themselves, so an entry stays right when an address is freed and reused: the table then names the new array,
    as the step means. At most 64 are kept."""
    key = (cp.cuda.runtime.getDevice(), a.dtype.str, a.shape, a.tobytes())
    d = _TABLES.get(key)
    if d is None:
        if len(_TABLES) >= 64:
            _TABLES.clear()
        d = _TABLES[key] = cp.asarray(a)
    return d


def _ok(flags):
    return not bool(cp.asnumpy(flags).any())


def sgd_update(p, g, out, lr):
    return sgd_update_bf16(p, g, out, None, lr)


def momentum_update(p, g, buf, out, lr, momentum, nesterov):
    return momentum_update_bf16(p, g, buf, out, None, lr, momentum, nesterov)


def adam_update(p, g, m, v, out, lr, beta1, beta2, eps, t_step):
    return adam_update_bf16(p, g, m, v, out, None, lr, beta1, beta2, eps, t_step)


def sgd_update_bf16(p, g, out, out16, lr):
    return _ok(update_many("sgd", [(p, g, None, None, out, out16)], lr=lr))


def momentum_update_bf16(p, g, buf, out, out16, lr, momentum, nesterov):
    opt = "nesterov" if nesterov else "momentum"
    return _ok(update_many(opt, [(p, g, buf, None, out, out16)], lr=lr, momentum=momentum))


def adam_update_bf16(p, g, m, v, out, out16, lr, beta1, beta2, eps, t_step):
    entry = [(p, g, m, v, out, out16)]
    return _ok(update_many("adam", entry, lr=lr, beta1=beta1, beta2=beta2, eps=eps, t_step=t_step))


# --- the input check's value scan (capability values_scan) -------------------------------------------------------
def values_ok(x, unit_interval):
    """Whether every value of C-contiguous ``x`` is finite (and in [0, 1] with ``unit_interval``): one pass."""
    flags = cp.zeros(1, dtype=np.int32)
    _flat(_k("checks", "values_scan", x), x.size, (x, _i(x.size), np.int32(bool(unit_interval)), flags))
    return _ok(flags)


# --- bfloat16 products (capability bf16_products): bf16 operands, float32 sums in cuBLAS ------------------------
def bf16_input(x, unit_interval):
    """``(ok, x16)`` in one pass over ``x``."""
    x = _c(x)
    x16 = cp.empty(x.shape, dtype=np.uint16)
    flags = cp.zeros(1, dtype=np.int32)
    kernels.function("bf16", "check_to_bf16_f32")(
        (kernels.blocks_for(x.size),), (kernels.THREADS,), (x, _i(x.size), np.int32(bool(unit_interval)), x16, flags)
    )
    return _ok(flags), x16


def to_bf16(x):
    x = _c(x)
    x16 = cp.empty(x.shape, dtype=np.uint16)
    _flat(kernels.function("bf16", "to_bf16_f32"), x.size, (x, _i(x.size), x16))
    return x16


def _widened(h):
    out = cp.empty(h.shape, dtype=np.float32)
    _flat(kernels.function("bf16", "widen_bf16_f32"), h.size, (_c(h), _i(h.size), out))
    return out


def bf16_weight(W, bits=None):
    """As :func:`numpy_ref.bf16_weight`: the patterns on the device (their float32 values widened on demand)."""
    return precision.BF16Weight(to_bf16(W) if bits is None else bits, _widened)


def _bf16_product(x16, Wb, transpose, out=None):
    x16 = _c(x16)
    if out is None:
        out = cp.empty((x16.shape[0], Wb.bits.shape[1] if transpose else Wb.bits.shape[0]), dtype=np.float32)
    return gemm(x16, False, Wb.bits, not transpose, out)


def dense_forward_bf16(x16, Wb, b, activation, transpose=False, out=None, bf16_out=False):
    """As :func:`numpy_ref.dense_forward_bf16`: cuBLAS's bfloat16 GEMM, then bias and activation (and the
    rounding of ``h`` with ``bf16_out``) in one pass."""
    if not bf16_out:
        return _bias_act(_bf16_product(x16, Wb, transpose, out), b, activation)
    a = _bf16_product(x16, Wb, transpose)
    h16 = cp.empty(a.shape, dtype=np.uint16) if out is None else out
    _bias_act_bf16(a, b, activation, h16)
    return h16


def _bias_act_bf16(a, b, activation, h16):
    n, m = a.shape
    args = (a, b, _i(n), _i(m), np.int32(ACT_CODE[activation]), h16)
    _flat(kernels.function("bf16", "bias_act_bf16"), a.size, args)


def dense_forward_bf16_pair(x16, Wb, b, activation, transpose=False):
    a = _bf16_product(x16, Wb, transpose)
    h16 = cp.empty(a.shape, dtype=np.uint16)
    _bias_act_bf16(a, b, activation, h16)
    return a, h16


def output_loss_grad_bf16(h16, Wb, c, x, loss, transpose=False):
    a = _bf16_product(h16, Wb, transpose)
    d16 = cp.empty(a.shape, dtype=np.uint16)
    value, delta = _loss_pass(a, c, x, loss, d16)
    return value, delta, d16


def output_row_loss_bf16(h16, Wb, c, x, loss, transpose=False):
    return _rows_pass(_bf16_product(h16, Wb, transpose), c, x, loss)


def activation_backward_bf16(dh, h, activation):
    d16 = cp.empty(dh.shape, dtype=np.uint16)
    args = (dh, h, _i(dh.size), np.int32(ACT_CODE[activation]), d16)
    _flat(kernels.function("bf16", "act_backward_bf16"), dh.size, args)
    return dh, d16


def dense_backward_bf16(delta, d16, x16, Wb, transpose=False, need_dx=True):
    d16, x16 = _c(d16), _c(x16)
    dW = product(x16, True, d16, False) if transpose else product(d16, True, x16, False)
    dx = product(d16, False, Wb.bits, transpose) if need_dx else None
    return dW, col_sum(_c(delta)), dx


# --- TF32 products (capability tf32_products) ----------------------------------------------------------------------
class _TF32Ops:
    """This backend's ops with every float32 product in TF32 (``precision="tf32"``); the rest are the backend's."""

    def __getattr__(self, name):
        try:
            return globals()[name]
        except KeyError:
            raise AttributeError(name) from None

    @staticmethod
    def dense_forward(x, W, b, activation, transpose=False, out=None):
        return _dense_forward(x, W, b, activation, transpose, out, True)

    @staticmethod
    def dense_backward(delta, x, W, transpose=False, need_dx=True):
        return _dense_backward(delta, x, W, transpose, need_dx, True)

    @staticmethod
    def output_loss_grad(h, W, c, x, loss, transpose=False):
        return _output_loss_grad(h, W, c, x, loss, transpose, True)

    @staticmethod
    def output_row_loss(h, W, c, x, loss, transpose=False):
        return _rows_pass(product(_c(h), False, _c(W), not transpose, True), c, x, loss)


_TF32 = _TF32Ops()


def tf32_ops():
    """The ops with TF32 products: operands rounded to 10 mantissa bits inside the tensor cores, float32 sums."""
    return _TF32
