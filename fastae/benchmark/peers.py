"""The peers fastae is measured against: PyTorch (eager and ``torch.compile``) and JAX (``jit``).

Each peer builds the same network as fastae from the shared starting weights (PyTorch names and ``nn.Linear``
shapes), trains it with the same Adam (``torch.optim.Adam`` defaults: β = 0.9, 0.999, ε = 1e-8 outside the square
root, bias-corrected; lr :data:`~fastae.benchmark.configs.LEARNING_RATE`) on the same batch, and, for the VAE,
with the same fixed noise ``eps``, so the runner can check every answer against fastae's float64 reference before
timing it. The math mirrors :mod:`fastae.backends.numpy_ref`:

* encoder layers ``h = f(h Wᵀ + b)`` with ``cfg.activation`` (``cfg.code_activation`` on the code layer, ``None``
  meaning the same); decoder hidden layers use ``cfg.activation``; tied decoders use the encoder's ``W``
  transposed (``h W + c``), so a tied weight receives both gradient terms;
* the output is a sigmoid with cross-entropy from logits, summed over features and averaged over the batch;
* VAE: hidden layers, linear ``mu`` and ``logvar`` heads, ``logvar`` clamped to
  [:data:`~fastae.constants.LOGVAR_MIN`, :data:`~fastae.constants.LOGVAR_MAX`],
  ``z = mu + exp(logvar / 2) eps`` and ``KL = -1/2 Σ (1 + logvar - mu² - exp(logvar))`` per row, averaged over
  the batch, β = 1.

torch and jax are imported lazily, inside methods: importing this module costs nothing, and a missing peer is
reported by :meth:`Contestant.unavailable` rather than raised.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..constants import LOGVAR_MAX, LOGVAR_MIN
from . import threads as _threads
from .configs import LEARNING_RATE
from .contestants import PEER, Contestant, EncodeCase, TrainCase
from .objective import layout

# torch.optim.Adam's defaults, written out for the hand-written JAX twin.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _missing(module: str, load: bool = True) -> str | None:
    """``None`` if ``module`` can be used, else why not. ``load=False`` only looks for it: JAX must not be imported
    before the thread settings are in ``XLA_FLAGS`` (and ``unavailable()`` is asked first)."""
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install fastae[bench])"
        if load:
            importlib.import_module(module)
    except Exception as exc:  # a broken install that fails while importing
        return f"{module} cannot be imported (pip install fastae[bench]): {type(exc).__name__}: {exc}"
    return None


def _f32(a) -> np.ndarray:
    """A C-contiguous, writeable float32 array that torch can wrap without a copy or a warning."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    return a if a.flags.writeable else a.copy()


# =============================================================================================================
# PyTorch
# =============================================================================================================
def _torch_fns(layout):
    """``(loss, encode)`` for ``layout`` in torch: ``loss(P, x, eps)``, the training objective of ``numpy_ref`` as
    one differentiable expression, and ``encode(P, x)``, the code (for a VAE, ``mu``). torch is imported once here,
    not on every call."""
    import torch
    import torch.nn.functional as F

    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "linear": None, None: None}
    enc, heads, dec = layout

    def dense(P, layer, h):
        weight, bias, activation, transpose = layer
        W = P[weight]
        a = F.linear(h, W.t() if transpose else W, P[bias])  # tied: h W + c, through a view of W (no copy)
        f = acts[activation]
        return a if f is None else f(a)

    def encode(P, x):
        h = x
        for layer in enc:
            h = dense(P, layer, h)
        return dense(P, heads[0], h) if heads else h

    def loss(P, x, eps):
        n = x.shape[0]
        h = x
        for layer in enc:
            h = dense(P, layer, h)
        kl = None
        if heads:
            mu = dense(P, heads[0], h)
            logvar = torch.clamp(dense(P, heads[1], h), LOGVAR_MIN, LOGVAR_MAX)
            h = mu + torch.exp(0.5 * logvar) * eps
            kl = -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar)) / n
        for layer in dec:
            h = dense(P, layer, h)
        rec = F.binary_cross_entropy_with_logits(h, x, reduction="sum") / n
        return rec if kl is None else rec + kl

    return loss, encode


def _torch_params(params):
    """Fresh ``nn.Parameter`` copies of ``params`` (copies: Adam updates them in place, and the shared starting
    weights must stay intact for the next contestant)."""
    import torch

    return {
        name: torch.nn.Parameter(torch.from_numpy(np.array(v, dtype=np.float32, copy=True)))
        for name, v in params.items()
    }


# torch.optim.Adam's implementation: ``fused=True`` (one vectorised C++ kernel per parameter, on CPU since torch
# 2.4) was the fastest of the three measured here with 1 thread (per step: small 175 µs against 223 for the
# for-loop and 261 for foreach; vae 4.2 ms against 7.2 and 7.0; shallow and deep within noise), with the same math.
TORCH_ADAM = {"fused": True}

# torch.compile, measured here (torch 2.13, CPU, 1 thread, a shared machine):
# * What is compiled: the loss, i.e. the forward and, through AOTAutograd, its backward (Inductor C++ kernels).
#   The Adam step stays the eager fused kernel. A compiled optimizer step (torch.compile on a function calling
#   opt.step(), the recipe of the "Compiling the optimizer" tutorial, with foreach Adam since Inductor cannot
#   compile the fused kernel) was no faster than eager fused Adam (a small step: 250-280 µs against 120-190 µs
#   eager; shallow: equal within noise),
#   and it is fragile in a process that builds many optimizers: Dynamo guards on the optimizer's identity, so each
#   new case recompiles the shared optimizer frames and uses up their recompile limit (after which Dynamo falls
#   back to eager, silently timing the wrong engine), and in torch 2.13 compiling a second optimizer in the same
#   process failed ("Expected scalars to be on CPU, got meta" in _foreach_addcdiv_). Compiling the full step with
#   compiled autograd was slower still (small: 680 µs).
# * Mode: the default. "max-autotune-no-cudagraphs" measured the same within noise on these shapes (shallow: 5.0 ms
#   against 5.2 ms, small: no gain); "reduce-overhead" only adds CUDA graphs. inductor's cpp_wrapper did not help
#   either.
# * dynamic=False: the batch shape is fixed, so nothing is recompiled in the timed loop; fullgraph=True: a graph
#   break would be an error, not a silent partial compile.
# torch.compile does not beat eager on these small CPU models (the AOTAutograd runtime wrapper costs ~50-90 µs a
# step, which shows on `small`); that is a result, not a mistake.
COMPILE_MODE = None


def _torch_compile(fn):
    """``torch.compile(fn)`` for one case, entered through a function with a private code object: Dynamo caches
    compiled code per code object, so cases (configs, batch sizes) never recompile one another's entry or exhaust
    its recompile limit. (Compiling ``fn`` itself would not do: the closures of every case share one code object,
    and Dynamo enters a ``functools.partial`` through one shared wrapper frame.)"""
    import types

    import torch

    def call(*args):
        return fn(*args)

    own = types.FunctionType(call.__code__.replace(), call.__globals__, call.__name__, None, call.__closure__)
    return torch.compile(own, mode=COMPILE_MODE, dynamic=False, fullgraph=True)


class _TorchTrain(TrainCase):
    """One training step of the torch peers. ``mode``: ``"eager"``, ``"compiled"``, ``"autocast"`` (the forward
    under ``torch.autocast`` in bf16: bf16 products, float32 master weights and loss), or ``"bf16"`` (the module in
    bf16: parameters and Adam's state in bf16, the float32 batch converted inside the step)."""

    def __init__(self, cfg, params, x, eps, mode):
        import torch

        self.mode = mode
        self.P = _torch_params(params)
        if mode == "bf16":
            self.P = {k: torch.nn.Parameter(v.detach().to(torch.bfloat16)) for k, v in self.P.items()}
        self.x = torch.from_numpy(_f32(x))
        self.eps = None if eps is None else torch.from_numpy(_f32(eps))
        self.opt = torch.optim.Adam(
            list(self.P.values()), lr=LEARNING_RATE, betas=ADAM_BETAS, eps=ADAM_EPS, **TORCH_ADAM
        )
        self._eager_loss, _ = _torch_fns(layout(cfg))
        self._loss = _torch_compile(self._eager_loss) if mode == "compiled" else self._eager_loss
        self._no_grad = torch.no_grad
        self._torch = torch

    def step(self):
        torch = self._torch
        self.opt.zero_grad(set_to_none=True)
        if self.mode == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = self._loss(self.P, self.x, self.eps)
        elif self.mode == "bf16":
            eps = None if self.eps is None else self.eps.to(torch.bfloat16)
            loss = self._loss(self.P, self.x.to(torch.bfloat16), eps)
        else:
            loss = self._loss(self.P, self.x, self.eps)
        loss.backward()
        self.opt.step()

    def loss(self):
        # The check reads the weights the timed steps produced; an eager float32 forward evaluates them exactly and
        # keeps a second (inference) compilation out of the run.
        with self._no_grad():
            P = {k: v.float() for k, v in self.P.items()}
            return float(self._eager_loss(P, self.x, self.eps))


class _TorchEncode(EncodeCase):
    """The encoder of the torch peers, in ``mode`` as :class:`_TorchTrain`'s (``"bf16"``: the weights in bf16 and
    the float32 input converted inside the timed call)."""

    def __init__(self, cfg, params, x, mode):
        import torch

        self.mode = mode
        self.P = {k: v.detach() for k, v in _torch_params(params).items()}
        if mode == "bf16":
            self.P = {k: v.to(torch.bfloat16) for k, v in self.P.items()}
        self.x = torch.from_numpy(_f32(x))
        _, encode = _torch_fns(layout(cfg))
        self._fn = _torch_compile(encode) if mode == "compiled" else encode
        self._torch = torch
        self.out = None

    def run(self):
        torch = self._torch
        with torch.inference_mode():
            if self.mode == "autocast":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    self.out = self._fn(self.P, self.x)
            elif self.mode == "bf16":
                self.out = self._fn(self.P, self.x.to(torch.bfloat16))
            else:
                self.out = self._fn(self.P, self.x)
        return self.out  # CPU kernels are synchronous: the result is complete on return

    def result(self):
        return self.out.float().numpy()


class _TorchPeer(Contestant):
    kind = PEER
    mode = "eager"

    def unavailable(self):
        return _missing("torch")

    def threads(self, n):
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)  # allowed only once, before any inter-op work has started
        except RuntimeError:
            pass

    def train(self, cfg, params, x, eps):
        return _TorchTrain(cfg, params, x, eps, self.mode)

    def encode(self, cfg, params, x):
        return _TorchEncode(cfg, params, x, self.mode)


class TorchEager(_TorchPeer):
    """PyTorch in eager mode: ``nn.Linear``-style parameters, autograd, ``torch.optim.Adam``."""

    name = "torch eager"


class TorchCompile(_TorchPeer):
    """PyTorch with ``torch.compile`` (Inductor, default mode, static shapes): the loss with its backward, and the
    encoder; Adam is the same fused kernel as eager (see :data:`COMPILE_MODE` for what was measured and why).
    Compilation happens on the first call, in the runner's warm-up, never in the timed loop."""

    name = "torch.compile"
    mode = "compiled"


class TorchAutocast(_TorchPeer):
    """PyTorch eager under ``torch.autocast("cpu", dtype=torch.bfloat16)``: bf16 products (oneDNN, AMX where
    present), float32 weights, optimizer state and loss."""

    name = "torch autocast bf16"
    mode = "autocast"
    precision = "bfloat16"


class TorchBF16Module(_TorchPeer):
    """PyTorch eager with the module in bf16 (``.to(torch.bfloat16)``): weights, activations and Adam's state in
    bf16; the float32 input is converted inside the timed call."""

    name = "torch bf16 module"
    mode = "bf16"
    precision = "bfloat16"


# =============================================================================================================
# JAX
# =============================================================================================================
def _jax_act(name, a):
    import jax
    import jax.numpy as jnp

    if name == "sigmoid":
        return jax.nn.sigmoid(a)
    if name == "tanh":
        return jnp.tanh(a)
    if name == "relu":
        return jax.nn.relu(a)  # derivative 0 at 0, as numpy_ref's 1[h > 0] (jnp.maximum would give 1/2 there)
    if name == "linear":
        return a
    raise ValueError(f"unknown activation {name!r}")


def _jax_dense(P, layer, h):
    weight, bias, activation, transpose = layer
    W = P[weight]
    a = (h @ W if transpose else h @ W.T) + P[bias]
    return a if activation is None else _jax_act(activation, a)


def _jax_encode(layout, P, x):
    enc, heads, _ = layout
    h = x
    for layer in enc:
        h = _jax_dense(P, layer, h)
    return _jax_dense(P, heads[0], h) if heads else h


def _jax_loss(layout, P, x, eps):
    import jax.numpy as jnp

    enc, heads, dec = layout
    n = x.shape[0]
    h = x
    for layer in enc:
        h = _jax_dense(P, layer, h)
    kl = 0.0
    if heads:
        mu = _jax_dense(P, heads[0], h)
        logvar = jnp.clip(_jax_dense(P, heads[1], h), LOGVAR_MIN, LOGVAR_MAX)
        h = mu + jnp.exp(0.5 * logvar) * eps
        kl = -0.5 * jnp.sum(1 + logvar - mu * mu - jnp.exp(logvar)) / n
    for layer in dec:
        h = _jax_dense(P, layer, h)
    # cross-entropy from logits, written as numpy_ref does: softplus(a) - x a, overflow-free for any finite a
    bce = jnp.maximum(h, 0) - x * h + jnp.log1p(jnp.exp(-jnp.abs(h)))
    return jnp.sum(bce) / n + kl


def _jax_adam(P, state, grads, lr=LEARNING_RATE, betas=ADAM_BETAS, eps=ADAM_EPS):
    """``torch.optim.Adam`` written out: ``m ← β₁ m + (1-β₁) g``, ``v ← β₂ v + (1-β₂) g²``,
    ``p ← p - lr (m / c₁) / (√(v / c₂) + ε)`` with ``cᵢ = 1 - βᵢᵗ`` (ε outside the square root)."""
    import jax
    import jax.numpy as jnp

    t, m, v = state
    t = t + 1
    b1, b2 = betas
    tf = t.astype(jnp.float32)
    # 1 - β^t as -expm1(t log β): accurate in float32 even where β^t is within an ulp of 1 (β₂ = 0.999, t = 1)
    c1 = -jnp.expm1(tf * math.log(b1))
    c2 = -jnp.expm1(tf * math.log(b2))
    m = jax.tree.map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v_, g: b2 * v_ + (1 - b2) * (g * g), v, grads)
    # the parameters keep their dtype (bf16 ones would otherwise be promoted by the float32 c1, c2)
    P = jax.tree.map(lambda p, m_, v_: (p - lr * (m_ / c1) / (jnp.sqrt(v_ / c2) + eps)).astype(p.dtype), P, m, v)
    return P, (t, m, v)


def _jax_train_fns(layout, dtype=None):
    """Jitted ``(params, opt_state, x, eps) -> (params, opt_state)`` (params and state donated) and loss; with
    ``dtype`` (bf16) the float32 batch is converted to it inside the step."""
    import functools

    import jax

    loss = functools.partial(_jax_loss, layout)

    def train_step(P, state, x, eps):
        if dtype is not None:
            x = x.astype(dtype)
            eps = None if eps is None else eps.astype(dtype)
        grads = jax.grad(loss)(P, x, eps)
        return _jax_adam(P, state, grads)

    return jax.jit(train_step, donate_argnums=(0, 1)), jax.jit(loss)


class _JaxTrain(TrainCase):
    def __init__(self, cfg, params, x, eps, bf16=False):
        import jax
        import jax.numpy as jnp

        self.layout = layout(cfg)
        f32 = jnp.float32
        pdt = jnp.bfloat16 if bf16 else f32  # the parameters' and the optimizer state's dtype
        self.P = {k: jnp.array(v, dtype=pdt) for k, v in params.items()}  # a copy: donation consumes it
        zeros = {k: jnp.zeros(v.shape, pdt) for k, v in params.items()}
        self.state = (jnp.zeros((), jnp.int32), zeros, jax.tree.map(jnp.copy, zeros))
        self.x = jnp.asarray(x, dtype=f32)
        self.eps = None if eps is None else jnp.asarray(eps, dtype=f32)
        self._step, _ = _jax_train_fns(self.layout, jnp.bfloat16 if bf16 else None)
        _, self._loss = _jax_train_fns(self.layout)
        self._f32 = lambda P: {k: v.astype(f32) for k, v in P.items()}
        self._block = jax.block_until_ready

    def step(self):
        self.P, self.state = self._step(self.P, self.state, self.x, self.eps)
        self._block((self.P, self.state))  # honest timing: the step is done when this returns

    def loss(self):
        return float(self._loss(self._f32(self.P), self.x, self.eps))  # the check: float32, as every peer's


class _JaxEncode(EncodeCase):
    def __init__(self, cfg, params, x, bf16=False):
        import functools

        import jax
        import jax.numpy as jnp

        self.layout = layout(cfg)
        dt = jnp.bfloat16 if bf16 else jnp.float32
        self.P = {k: jnp.asarray(v, dtype=dt) for k, v in params.items()}
        self.x = jnp.asarray(x, dtype=jnp.float32)
        encode = functools.partial(_jax_encode, self.layout)
        self._fn = jax.jit(lambda P, x: encode(P, x.astype(dt)))  # the float32 input converted inside the call
        self.out = None

    def run(self):
        self.out = self._fn(self.P, self.x).block_until_ready()
        return self.out

    def result(self):
        return np.asarray(self.out, dtype=np.float32)


class JaxJit(Contestant):
    """JAX with ``jax.jit``: one jitted pure training step (forward, ``jax.grad``, Adam written out as
    ``torch.optim.Adam``), params and optimizer state donated. Float32 throughout: every array is created as
    float32 and every constant is a weakly typed Python scalar, so the computation stays float32 even where
    ``jax_enable_x64`` is on."""

    name = "jax jit"
    kind = PEER

    def unavailable(self):
        return _missing("jax", load=False) or _missing("jaxlib", load=False)

    def threads(self, n):
        # What can be controlled (see fastae.benchmark.threads): XLA_FLAGS, read when JAX creates its CPU client,
        # so only before jax is imported (``unavailable()`` therefore never imports it), and for n = 1 only the
        # Eigen kernels (--xla_cpu_multi_thread_eigen=false). What cannot: the size of XLA's intra-op thread pool,
        # which follows the CPUs the process may run on; no XLA flag sets it (intra_op_parallelism_threads is not
        # one: it aborts the process with "Unknown flag in XLA_FLAGS").
        if "jax" not in sys.modules:
            _threads.set_xla_threads(n)

    bf16 = False

    def train(self, cfg, params, x, eps):
        return _JaxTrain(cfg, params, x, eps, self.bf16)

    def encode(self, cfg, params, x):
        return _JaxEncode(cfg, params, x, self.bf16)


class JaxJitBF16(JaxJit):
    """:class:`JaxJit` with bf16 parameters and optimizer state (the float32 batch converted inside the jitted
    call): XLA's bf16 products, bf16 activations."""

    name = "jax jit bf16"
    precision = "bfloat16"
    bf16 = True


# The CLI's ``--peers torch,jax``.
PEERS = {"torch": [TorchEager, TorchCompile, TorchAutocast, TorchBF16Module], "jax": [JaxJit, JaxJitBF16]}
