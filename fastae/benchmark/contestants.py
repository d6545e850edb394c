"""Contestants: anything that can run a configuration's training step and encoder.

A contestant turns a :class:`~fastae.benchmark.configs.Config`, the shared starting weights (PyTorch names and
``nn.Linear`` shapes, float32) and a fixed batch into two cases:

* a :class:`TrainCase`: ``step()`` runs one full training step (forward, backward, Adam update) on the batch, and
  ``loss()`` returns the loss of the current weights on that batch (forward only) for the correctness check;
* an :class:`EncodeCase`: ``run()`` encodes the batch and returns only once the work is complete, and
  ``result()`` gives the last output as a NumPy array for the correctness check.

For the VAE every contestant uses the same ``eps`` (the batch's noise, drawn once from fastae's Philox stream),
so all of them compute the same function and can be checked against one reference.
"""

from __future__ import annotations

import numpy as np

from .. import rng
from . import objective
from .configs import Config

FASTAE, PEER, FLOOR = "fastae", "peer", "floor"


class TrainCase:
    """``step()`` runs one training step; ``steps`` is how many steps one call of ``run()`` makes (the timed
    call; by default ``step`` itself)."""

    steps = 1

    def step(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        self.step()

    def loss(self) -> float:
        raise NotImplementedError


class EncodeCase:
    def run(self):
        raise NotImplementedError

    def result(self) -> np.ndarray:
        raise NotImplementedError


class Contestant:
    """Base class. ``kind`` is ``"fastae"`` (ours), ``"peer"`` (what we compare against) or ``"floor"`` (a
    physical bound, not a competitor); ``precision`` is that of its matrix products (``"float32"`` or
    ``"bfloat16"``: bf16 operands, float32 sums), and each is compared with the peers of its own precision."""

    name = "?"
    kind = PEER
    precision = "float32"

    def unavailable(self) -> str | None:
        """``None`` if this contestant can run here, else the reason it cannot (reported, never silent)."""
        return None

    def threads(self, n: int) -> None:
        """Use ``n`` threads for this contestant's own runtime (BLAS is capped globally by the runner)."""

    def train(self, cfg: Config, params: dict, x: np.ndarray, eps: np.ndarray | None) -> TrainCase:
        raise NotImplementedError

    def encode(self, cfg: Config, params: dict, x: np.ndarray) -> EncodeCase:
        raise NotImplementedError


def vae_eps(cfg: Config, rows: int, step: int = 1) -> np.ndarray:
    """The noise fastae's own VAE draws at update ``step`` (seed 0): every contestant trains with it."""
    return rng.normal(rng.key_from_seed(0), rng.STREAM_EPS, step, rows, cfg.latent, dtype=np.float32)


# --- fastae ---------------------------------------------------------------------------------------------------
# Steps per timed call: as many as make its work about STEP_WORK_FLOPS, so that a call's own cost (checking the
# input, the epoch's set-up) is shared by the steps of an epoch as in a user's fit.
STEP_WORK_FLOPS = 2e7
MAX_STEPS = 64


def fastae_model(cfg: Config, params: dict, backend: str, dtype: str = "float32", precision: str = "float32"):
    """A fastae model of ``cfg`` on ``backend`` holding ``params`` (cast to ``dtype``), through the public API: a
    fit of no epoch sets it up, ``load_state_dict`` puts the shared weights in, ``precision`` is set last."""
    model = cfg.model(dtype=dtype, backend=backend, random_state=0).set_params(epochs=0, shuffle=False)
    model.fit(np.full((1, cfg.n_features), 0.5, dtype=dtype))
    model.load_state_dict({k: v.astype(dtype) for k, v in params.items()})
    return model.set_params(precision=precision)


class _FastaeTrain(TrainCase):
    """``step()`` is ``partial_fit`` on the batch (one minibatch: ``batch_size`` is the batch's size); ``run()`` is
    ``partial_fit`` on ``steps`` copies of it, an epoch of ``steps`` minibatches, as a fit runs them. A VAE draws
    its ``ε`` at each update's own step, as in a fit: the first update's is the ``eps`` every contestant checks
    with (:func:`vae_eps`); later ones are other draws of the same cost."""

    def __init__(self, cfg, model, x, eps):
        self.cfg, self.model, self.eps = cfg, model, eps
        self.x = np.ascontiguousarray(x, dtype=model.dtype)
        self.steps = int(max(1, min(MAX_STEPS, round(STEP_WORK_FLOPS / cfg.train_flops()))))
        self.epoch = np.ascontiguousarray(np.tile(self.x, (self.steps, 1)))

    def step(self):
        self.model.partial_fit(self.x)

    def run(self):
        self.model.partial_fit(self.epoch)

    def loss(self):
        return objective.loss(self.cfg, self.model.state_dict(), self.x, self.eps)


class _FastaeEncode(EncodeCase):
    def __init__(self, model, x):
        self.model, self.x, self.out = model, np.ascontiguousarray(x, dtype=model.dtype), None

    def run(self):
        self.out = self.model.encode(self.x)
        return self.out

    def result(self):
        return np.asarray(self.out)


class Fastae(Contestant):
    """fastae through its public model on one backend: ``partial_fit`` trains, ``encode`` encodes."""

    kind = FASTAE

    def __init__(self, backend="numpy", dtype="float32", precision="float32"):
        self.backend, self.dtype, self.precision = backend, dtype, precision
        tags = [backend] + ([dtype] if dtype != "float32" else []) + (["bf16"] if precision == "bfloat16" else [])
        self.name = f"fastae[{','.join(tags)}]"

    def unavailable(self):
        from ..backends import registry

        why = registry.unavailable(self.backend, self.dtype)
        if why is None and self.precision == "bfloat16":
            from ..backends import contract

            if not contract.supports(registry.get_backend(self.backend, self.dtype), contract.BF16_PRODUCTS):
                why = f"backend {self.backend!r} has no bfloat16 products"
        return why

    def train(self, cfg, params, x, eps):
        return _FastaeTrain(cfg, fastae_model(cfg, params, self.backend, self.dtype, self.precision), x, eps)

    def encode(self, cfg, params, x):
        return _FastaeEncode(fastae_model(cfg, params, self.backend, self.dtype, self.precision), x)


# --- the GEMM-only floors ---------------------------------------------------------------------------------------
def _provider_matmul(provider, precision):
    """``mm(a, b, out)``: the product through ``provider`` (``"numpy"`` is NumPy's own ``matmul``) in
    ``precision``, and ``cast(array)``: an operand in the form that product takes (bfloat16 patterns for bf16)."""
    if provider == "numpy":
        return (lambda a, b, out: np.matmul(a, b, out=out)), (lambda a: a)
    from .. import precision as bf16
    from ..backends import gemm

    p = gemm.provider(provider)
    if precision == "bfloat16":
        return p.matmul_bf16, bf16.to_bf16
    return p.matmul, (lambda a: a)


class _FloorTrain(TrainCase):
    """Exactly the matrix products of one training step, into preallocated outputs, and nothing else: the
    forward products, then for every layer its weight gradient and (but the first) its input gradient. The
    operands are fixed arrays of the right shapes in the floor's precision (their values do not matter)."""

    def __init__(self, cfg, x, mm, cast):
        r = np.random.default_rng(0)
        B = cfg.batch
        self.mm = mm
        self.W = [cast(r.random((o, i), dtype=np.float32)) for i, o in cfg.layers()]
        self.inputs = [cast(np.ascontiguousarray(x, dtype=np.float32))] + [
            cast(r.random((B, i), dtype=np.float32)) for i, _ in cfg.layers()[1:]
        ]
        self.deltas = [cast(r.random((B, o), dtype=np.float32)) for _, o in cfg.layers()]
        self.acts = [np.empty((B, o), np.float32) for _, o in cfg.layers()]
        self.dW = [np.empty((o, i), np.float32) for i, o in cfg.layers()]
        self.dx = [np.empty((B, i), np.float32) for i, _ in cfg.layers()]

    def step(self):
        mm = self.mm
        for W, a, out in zip(self.W, self.inputs, self.acts):
            mm(a, W.T, out)
        for idx in range(len(self.W) - 1, -1, -1):
            delta = self.deltas[idx]
            mm(delta.T, self.inputs[idx], self.dW[idx])
            if idx > 0:
                mm(delta, self.W[idx], self.dx[idx])

    def loss(self):
        return float("nan")  # not a model: nothing to check, and reported as such


class _FloorEncode(EncodeCase):
    def __init__(self, cfg, x, mm, cast):
        r = np.random.default_rng(0)
        self.mm = mm
        self.W = [cast(r.random((o, i), dtype=np.float32)) for i, o in cfg.encoder_layers()]
        self.inputs = [cast(np.ascontiguousarray(x, dtype=np.float32))] + [
            cast(r.random((x.shape[0], i), dtype=np.float32)) for i, _ in cfg.encoder_layers()[1:]
        ]
        self.acts = [np.empty((x.shape[0], o), np.float32) for _, o in cfg.encoder_layers()]

    def run(self):
        for W, a, out in zip(self.W, self.inputs, self.acts):
            self.mm(a, W.T, out)
        return self.acts[-1]

    def result(self):
        return self.acts[-1]


class GemmFloor(Contestant):
    """The matrix products alone, through NumPy's BLAS (``provider="numpy"``) or a GEMM provider of
    :mod:`fastae.backends.gemm` (``"mkl"``), in float32 or bfloat16: the floors that fused kernels are measured
    against."""

    kind = FLOOR

    def __init__(self, provider="numpy", precision="float32"):
        self.provider, self.precision = provider, precision
        label = "" if provider == "numpy" else f" ({provider})"
        self.name = ("bf16 " if precision == "bfloat16" else "") + "GEMM-only floor" + label

    def unavailable(self):
        if self.provider == "numpy":
            return None
        from ..backends import gemm

        why = gemm.unavailable(self.provider)
        if why is None and self.precision == "bfloat16" and not gemm.provider(self.provider).native_bf16:
            why = "this processor has no bfloat16 units (AMX, AVX512-BF16)"
        return why

    def train(self, cfg, params, x, eps):
        return _FloorTrain(cfg, x, *_provider_matmul(self.provider, self.precision))

    def encode(self, cfg, params, x):
        return _FloorEncode(cfg, x, *_provider_matmul(self.provider, self.precision))
