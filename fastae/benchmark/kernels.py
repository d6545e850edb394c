"""The "kernel" suite: each fused op of every available backend, alone, on the shapes of the standard configs.

Every case declares its op, shape, dtype, the bytes it must move at minimum (each array it has to read, plus each
array it has to write, once) and its FLOPs (the matrix product for the dense ops, nothing for the elementwise
ones). Before it is timed, its float32 answer is compared with the float64 NumPy reference of the same op on the
same (float32-representable) inputs, so the error measures the arithmetic alone; a case whose error exceeds
:data:`KERNEL_TOL` is reported ``WRONG`` and not timed.

The two ops that end in a matrix product (``dense_forward`` and ``output_loss_grad``) are timed side by side with
the bare product into a preallocated output (a ``floor`` row); ``epilogue_s`` in their rows is the difference of
the medians: what bias, activation, loss and gradient cost on top of the GEMM. A fused kernel drives it to zero.

Timing uses :func:`fastae.benchmark.timing.interleaved` with the runner's settings, one interleaved group per
case (every backend and the floor side by side).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import rng
from ..backends import numpy_ref, registry
from . import runner, timing
from .configs import CONFIGS
from .contestants import FASTAE, FLOOR

SUITE = "kernel"
DTYPE = "float32"
# Relative error (max |got − want| / max |want|) allowed against the float64 reference: float32 rounding of a few
# hundred to a thousand terms per output, with margin.
KERNEL_TOL = 1e-4
FLOOR_NAME = "numpy matmul (GEMM only)"
_F32 = 4  # bytes per float32

# Fixed inputs for the random ops.
_KEY = rng.key_from_seed(0)
_STEP = 7
MASK_P = 0.25
ADAM_T = 10


@dataclass
class KernelCase:
    """One op on one shape. ``build(B, dtype)`` returns a zero-argument function that runs the op once on fresh
    inputs made for backend ``B`` in ``dtype`` and returns its outputs (a tuple of arrays or scalars); every call
    of ``build`` makes the same inputs, so a stateful op (Adam) starts from the same state for the check.
    ``gemm()``, when set, returns a function that runs only the op's matrix product into a preallocated
    output."""

    op: str
    config: str
    shape: str
    bytes: int
    flops: int
    build: Callable
    gemm: Callable | None = None
    gemm_dims: tuple[int, int, int] | None = None  # (rows, n_in, n_out) of the product
    build_timed: Callable | None = None  # if the check needs outputs that the timed call should not gather
    extra: dict = field(default_factory=dict)
    tag: str = ""  # tells apart two cases of one op on one configuration

    @property
    def name(self):
        return f"{self.op} {self.config}" + (f" {self.tag}" if self.tag else "")

    @property
    def gemm_shape(self):
        rows, n_in, n_out = self.gemm_dims
        return f"{rows}x{n_in} @ {n_in}x{n_out} -> {rows}x{n_out}"

    @property
    def gemm_bytes(self):
        """Bytes the bare product must move: both operands read, the product written."""
        rows, n_in, n_out = self.gemm_dims
        return _F32 * (rows * n_in + n_in * n_out + rows * n_out)

    @property
    def key(self):
        """A short unique identifier, e.g. ``dense_forward-deep-784x1000``."""
        return "-".join(p for p in (self.op, self.config, self.tag) if p)


def _rand(seed, shape, low=0.0, high=1.0):
    """float64 values that are exact in float32 (so the float32 op and the float64 reference see equal inputs)."""
    a = np.random.default_rng(seed).uniform(low, high, size=shape)
    return a.astype(np.float32).astype(np.float64)


def _on(B, dtype, *arrays):
    """The arrays as contiguous ``dtype`` arrays of backend ``B``."""
    return [B.xp.asarray(np.ascontiguousarray(a, dtype=dtype)) for a in arrays]


def _glorot(seed, n_out, n_in):
    a = np.sqrt(6.0 / (n_in + n_out))
    return _rand(seed, (n_out, n_in), -a, a)


# --- the cases ------------------------------------------------------------------------------------------------
def _dense_case(config, batch, n_in, n_out, activation, transpose=False):
    x = _rand(1, (batch, n_in))
    W = _glorot(2, n_in, n_out) if transpose else _glorot(2, n_out, n_in)
    b = _rand(3, (n_out,), -0.1, 0.1)

    def build(B, dtype):
        xs, Ws, bs = _on(B, dtype, x, W, b)
        return lambda: (B.dense_forward(xs, Ws, bs, activation, transpose),)

    def gemm():
        xs, Ws = _on(numpy_ref, DTYPE, x, W)
        out = np.empty((batch, n_out), np.float32)
        Wp = Ws if transpose else Ws.T
        return lambda: np.matmul(xs, Wp, out=out)

    shape = f"{batch}x{n_in} @ {'' if transpose else 'T'}W({W.shape[0]}x{W.shape[1]}) -> {batch}x{n_out}, {activation}"
    nbytes = _F32 * (x.size + W.size + b.size + batch * n_out)
    return KernelCase(
        "dense_forward",
        config,
        shape,
        nbytes,
        2 * batch * n_in * n_out,
        build,
        gemm,
        (batch, n_in, n_out),
        extra={"activation": activation},
        tag=f"{n_in}x{n_out}",
    )


def _output_case(config, batch, n_hidden, n_out, transpose, loss="bce"):
    h = _rand(4, (batch, n_hidden))
    W = _glorot(5, n_hidden, n_out) if transpose else _glorot(5, n_out, n_hidden)
    c = _rand(6, (n_out,), -0.1, 0.1)
    x = _rand(7, (batch, n_out))

    def build(B, dtype):
        hs, Ws, cs, xs = _on(B, dtype, h, W, c, x)
        return lambda: B.output_loss_grad(hs, Ws, cs, xs, loss, transpose)

    def gemm():
        hs, Ws = _on(numpy_ref, DTYPE, h, W)
        out = np.empty((batch, n_out), np.float32)
        Wp = Ws if transpose else Ws.T
        return lambda: np.matmul(hs, Wp, out=out)

    shape = f"{batch}x{n_hidden} -> {batch}x{n_out}, {loss}"
    # reads h, W, c, x; writes delta (the loss is a scalar)
    nbytes = _F32 * (h.size + W.size + c.size + x.size + batch * n_out)
    return KernelCase(
        "output_loss_grad",
        config,
        shape,
        nbytes,
        2 * batch * n_hidden * n_out,
        build,
        gemm,
        (batch, n_hidden, n_out),
        extra={"loss": loss},
    )


def _act_backward_case(config, batch, n, activation):
    dh = _rand(8, (batch, n), -1.0, 1.0)
    h = _rand(9, (batch, n)) if activation != "relu" else np.maximum(_rand(9, (batch, n), -1.0, 1.0), 0.0)

    def build(B, dtype):
        dhs, hs = _on(B, dtype, dh, h)
        return lambda: (B.activation_backward(dhs, hs, activation),)

    return KernelCase(
        "activation_backward",
        config,
        f"{batch}x{n}, {activation}",
        _F32 * 3 * batch * n,
        0,
        build,
        extra={"activation": activation},
    )


def _latent_cases(config, batch, k, beta=1.0):
    mu = _rand(10, (batch, k), -1.0, 1.0)
    lv = _rand(11, (batch, k), -2.0, 1.0)
    z = mu + np.exp(0.5 * lv) * rng.normal(_KEY, rng.STREAM_EPS, _STEP, batch, k, dtype=np.float64)
    z = z.astype(np.float32).astype(np.float64)
    dz = _rand(12, (batch, k), -0.01, 0.01)

    def fwd(B, dtype):
        ms, ls = _on(B, dtype, mu, lv)
        return lambda: B.gaussian_latent(ms, ls, beta, _KEY, _STEP)

    def bwd(B, dtype):
        dzs, zs, ms, ls = _on(B, dtype, dz, z, mu, lv)
        return lambda: B.gaussian_latent_backward(dzs, zs, ms, ls, beta)

    # forward reads mu, logvar, writes z (ε is generated, not read); backward reads dz, z, mu, logvar, writes two
    return [
        KernelCase("gaussian_latent", config, f"{batch}x{k}", _F32 * 3 * batch * k, 0, fwd),
        KernelCase("gaussian_latent_backward", config, f"{batch}x{k}", _F32 * 6 * batch * k, 0, bwd),
    ]


def _adam_case(config):
    """One Adam update of every parameter of ``config``'s model, one ``adam_update`` call per tensor as the
    optimizer makes them."""
    cfg = CONFIGS[config]
    shapes = []
    for idx, (i, o) in enumerate(cfg.layers()):
        decoder_half = cfg.kind == "ae" and idx >= len(cfg.dims) - 1
        if not (cfg.tied and decoder_half):
            shapes.append((o, i))
        shapes.append((o,))
    tensors = []
    for j, s in enumerate(shapes):
        p = _rand(100 + j, s, -0.1, 0.1)
        g = _rand(200 + j, s, -0.01, 0.01)
        m = _rand(300 + j, s, -0.001, 0.001)
        v = _rand(400 + j, s, 0.0, 1e-5)
        tensors.append((p, g, m, v))
    n = sum(int(np.prod(s)) for s in shapes)
    if n != cfg.n_params():  # the Adam case must update exactly the model's parameters, or its GB/s mean nothing
        raise RuntimeError(f"Adam case covers {n} parameters, the {cfg.name} model has {cfg.n_params()}")

    def update(B, arrays):
        # As the optimiser calls it: the new parameters written over the gradient. (Repeated timed calls thus feed
        # each call the previous call's output as its gradient; the work per element is the same.)
        for p, g, m, v in arrays:
            B.adam_update(p, g, m, v, g, 1e-3, 0.9, 0.999, 1e-8, ADAM_T)

    def fresh(B, dtype):  # copies: the update writes into g and the moments
        return [_on(B, dtype, *(a.copy() for a in t)) for t in tensors]

    def build_timed(B, dtype):
        arrays = fresh(B, dtype)
        return lambda: update(B, arrays)

    def build(B, dtype):
        def run():
            arrays = fresh(B, dtype)
            old = [_host(a[0]).astype(np.float64).ravel() for a in arrays]
            update(B, arrays)
            flat = lambda xs: np.concatenate([_host(a).astype(np.float64).ravel() for a in xs])  # noqa: E731
            new = flat(a[1] for a in arrays)
            # the new parameters, the update alone (a much smaller number, checked on its own scale) and the
            # updated moments
            return new, new - np.concatenate(old), flat(a[2] for a in arrays), flat(a[3] for a in arrays)

        return run

    # reads p, g, m, v; writes m, v, p_new
    return KernelCase(
        "adam_update",
        config,
        f"{n} params in {len(shapes)} tensors",
        _F32 * 7 * n,
        0,
        build,
        build_timed=build_timed,
        extra={"n_params": n, "tensors": len(shapes)},
    )


def _mask_case(config, batch, n):
    x = _rand(13, (batch, n))

    def build(B, dtype):
        (xs,) = _on(B, dtype, x)
        return lambda: (B.mask_noise(xs, MASK_P, _KEY, _STEP),)

    # reads x, writes x̃ (the uniforms are generated, not read)
    return KernelCase(
        "mask_noise", config, f"{batch}x{n}, p={MASK_P}", _F32 * 2 * batch * n, 0, build, extra={"p": MASK_P}
    )


def cases() -> list[KernelCase]:
    """Every kernel case, on the shapes of the standard configurations."""
    sh, dp, va = CONFIGS["shallow"], CONFIGS["deep"], CONFIGS["vae"]
    return [
        # bias + activation epilogues of the encoders' first layers, and the shallow tied decoder's transpose
        _dense_case("shallow", sh.batch, 784, 256, "sigmoid"),
        _dense_case("deep", dp.batch, 784, 1000, "sigmoid"),
        _dense_case("deep", dp.batch, 250, 30, "linear"),
        _dense_case("vae", va.batch, 784, 400, "relu"),
        # output layer + cross-entropy + its gradient
        _output_case("shallow", sh.batch, 256, 784, transpose=True),
        _output_case("deep", dp.batch, 1000, 784, transpose=False),
        # activation backward at the hidden layers
        _act_backward_case("shallow", sh.batch, 256, "sigmoid"),
        _act_backward_case("deep", dp.batch, 1000, "sigmoid"),
        _act_backward_case("vae", va.batch, 400, "relu"),
        # the VAE's reparameterisation, both directions
        *_latent_cases("vae", va.batch, va.latent),
        # Adam over the whole shallow model, and masking noise on a shallow batch
        _adam_case("shallow"),
        _mask_case("shallow", sh.batch, 784),
    ]


# --- checking and running -------------------------------------------------------------------------------------
def _host(a):
    """A backend array (or scalar) as a NumPy array."""
    if hasattr(a, "get"):  # CuPy
        a = a.get()
    return np.asarray(a)


def rel_error(got, want) -> float:
    """Max over the outputs of ``max |got − want| / max |want|`` (inf on a shape mismatch)."""
    errs = []
    for g, w in zip(got, want, strict=True):
        g = _host(g).astype(np.float64)
        w = _host(w).astype(np.float64)
        if g.shape != w.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(w))) if w.size else 0.0, 1e-30)
        errs.append(float(np.max(np.abs(g - w))) / scale if w.size else 0.0)
    return max(errs)


def check(case: KernelCase, B) -> float:
    """The float32 answer of ``case`` on backend ``B`` against the float64 NumPy reference; returns the error."""
    got = case.build(B, DTYPE)()
    want = case.build(numpy_ref, "float64")()
    return rel_error(got, want)


def timed_fn(case: KernelCase, B):
    """The function to time for ``case`` on backend ``B`` (outputs kept on the device, nothing copied back)."""
    return (case.build_timed or case.build)(B, DTYPE)


def backends() -> tuple[dict, dict]:
    """``({name: module} of the backends that can run float32, {name: reason} of those that cannot})``."""
    ok, missing = {}, {}
    names = list(dict.fromkeys(list(registry.available_backends()) + list(registry.AUTO_ORDER)))
    for name in names:
        try:
            ok[name] = registry.get_backend(name, DTYPE)
        except (ImportError, ValueError) as exc:
            missing[name] = f"backend {name!r} cannot run {DTYPE} here: {exc}"
    return ok, missing


def _row(case, contestant, kind, **kw):
    row = {
        "suite": SUITE,
        "config": case.config,
        "contestant": contestant,
        "kind": kind,
        "case": case.key,
        "op": case.op,
        "shape": case.shape,
        "dtype": DTYPE,
        "bytes": case.bytes,
        "flops": case.flops,
    }
    row.update(case.extra)
    row.update(kw)
    return row


def run(quick: bool, log=print, settings: dict | None = None, ops=None) -> list[dict]:
    """Check, then time every kernel case on every float32 backend (and the bare GEMM where there is one).

    ``settings`` overrides the runner's timing settings (``samples``, ``target_s``, ``warmup``); ``ops`` keeps
    only the cases of those op names. Never raises for a backend that is missing or fails: it gets a row.
    """
    st = dict(runner.settings(quick))
    st.update(settings or {})
    available, missing = backends()
    rows = []
    for case in cases():
        if ops is not None and case.op not in ops:
            continue
        fns, case_rows = {}, []
        for name, reason in missing.items():
            case_rows.append(_row(case, f"fastae[{name}]", FASTAE, status="skipped", note=reason, error=None))
        for name, B in available.items():
            contestant = f"fastae[{name}]"
            try:
                err = check(case, B)
                fn = timed_fn(case, B)
                fn()
            except Exception as exc:  # reported, and the other backends still run
                case_rows.append(
                    _row(case, contestant, FASTAE, status="failed", error=None, note=f"{type(exc).__name__}: {exc}")
                )
                log(f"  kernel {case.name} {contestant}: FAILED {type(exc).__name__}: {exc}")
                continue
            if not err <= KERNEL_TOL:
                case_rows.append(
                    _row(
                        case,
                        contestant,
                        FASTAE,
                        status="WRONG",
                        error=err,
                        note=f"error {err:.3g} against the float64 reference exceeds {KERNEL_TOL}",
                    )
                )
                log(f"  kernel {case.name} {contestant}: WRONG ANSWER, error {err:.3g} > {KERNEL_TOL}; not timed")
                continue
            case_rows.append(_row(case, contestant, FASTAE, status="ok", error=err))
            fns[contestant] = fn
        if case.gemm is not None and fns:
            fns[FLOOR_NAME] = case.gemm()
            case_rows.append(
                _row(
                    case,
                    FLOOR_NAME,
                    FLOOR,
                    status="ok",
                    error=None,
                    op="gemm",
                    shape=case.gemm_shape,
                    bytes=case.gemm_bytes,
                )
            )
        timed = timing.interleaved(fns, **st) if fns else {}
        gemm_median = timed.get(FLOOR_NAME, {}).get("median_s")
        for row in case_rows:
            if row["status"] != "ok":
                continue
            row.update(timed[row["contestant"]])
            row["gbps"] = row["bytes"] / row["median_s"] / 1e9
            row["gflops"] = row["flops"] / row["median_s"] / 1e9 if row["flops"] else None
            if row["kind"] == FASTAE and gemm_median is not None:
                row["gemm_s"] = gemm_median
                row["epilogue_s"] = row["median_s"] - gemm_median
                row["epilogue_frac"] = row["epilogue_s"] / row["median_s"]
            extra = (
                f", epilogue {row['epilogue_s'] * 1e6:7.1f} us ({row['epilogue_frac']:.0%})"
                if "epilogue_s" in row
                else ""
            )
            err = f", error {row['error']:.1e}" if row["error"] is not None else ""
            log(
                f"  kernel {row['case']:34s} {row['contestant']:24s} median "
                f"{row['median_s'] * 1e6:9.1f} us  {row['gbps']:6.2f} GB/s{extra}{err}"
            )
        rows.extend(case_rows)
    return rows
