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

from .. import rng, training
from .configs import Config

FASTAE, PEER, FLOOR = "fastae", "peer", "floor"


class TrainCase:
    def step(self) -> None:
        raise NotImplementedError

    def loss(self) -> float:
        raise NotImplementedError


class EncodeCase:
    def run(self):
        raise NotImplementedError

    def result(self) -> np.ndarray:
        raise NotImplementedError


class Contestant:
    """Base class. ``kind`` is ``"fastae"`` (ours), ``"peer"`` (what we compare against) or ``"floor"`` (a
    physical bound, not a competitor)."""

    name = "?"
    kind = PEER

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
def fastae_model(cfg: Config, params: dict, backend: str, dtype: str = "float32"):
    """A fastae model of ``cfg`` on ``backend`` holding ``params`` (cast to ``dtype``), ready to train."""
    model = cfg.model(dtype=dtype, backend=backend, random_state=0)
    model._setup(cfg.n_features, init=False)
    model._params = model._checked_weights({k: v.astype(dtype) for k, v in params.items()})
    return model


class _FastaeTrain(TrainCase):
    def __init__(self, model, x, eps):
        self.model, self.x = model, np.ascontiguousarray(x, dtype=model.dtype)
        self.fixed_step = None
        if eps is not None:
            # fastae draws ε inside the op from (seed, step, row); to evaluate the same function as the peers at
            # every timed step, the VAE is always stepped at step 1, whose ε is exactly `eps`.
            if not np.array_equal(eps, vae_eps_for(model, x.shape[0]).astype(eps.dtype)):
                raise ValueError("eps differs from the noise fastae draws at step 1 with seed 0")
            self.fixed_step = 1
        self.fused = model._fused_stepper()  # as fit builds it once per epoch

    def step(self):
        training._step(self.model, self.x, None, 0, self.x.shape[0], 0, 1, 1, None, noise_step=self.fixed_step,
                       fused=self.fused)

    def loss(self):
        step = 1 if self.fixed_step is not None else self.model.t_ + 1
        return float(self.model._loss_and_grads(self.x, step)[0])


def vae_eps_for(model, rows):
    return rng.normal(model._key, rng.STREAM_EPS, 1, rows, model.latent, dtype=np.dtype(model.dtype))


class _FastaeEncode(EncodeCase):
    def __init__(self, model, x):
        self.model, self.x, self.out = model, np.ascontiguousarray(x, dtype=model.dtype), None

    def run(self):
        self.out = self.model.encode(self.x)
        return self.out

    def result(self):
        return np.asarray(self.out)


class Fastae(Contestant):
    """fastae through its public model on one backend (``train`` uses the same minibatch step as ``fit``)."""

    kind = FASTAE

    def __init__(self, backend="numpy", dtype="float32"):
        self.backend, self.dtype = backend, dtype
        self.name = f"fastae[{backend}]" if dtype == "float32" else f"fastae[{backend},{dtype}]"

    def unavailable(self):
        from ..backends import registry

        return registry.unavailable(self.backend, self.dtype)

    def train(self, cfg, params, x, eps):
        return _FastaeTrain(fastae_model(cfg, params, self.backend, self.dtype), x, eps)

    def encode(self, cfg, params, x):
        return _FastaeEncode(fastae_model(cfg, params, self.backend, self.dtype), x)


# --- the GEMM-only floor --------------------------------------------------------------------------------------
class _FloorTrain(TrainCase):
    """Exactly the matrix products of one training step, into preallocated outputs, and nothing else."""

    def __init__(self, cfg, x):
        r = np.random.default_rng(0)
        B = cfg.batch
        self.x = x
        self.W = [r.random((o, i), dtype=np.float32) for i, o in cfg.layers()]
        self.acts = [np.empty((B, o), np.float32) for _, o in cfg.layers()]
        self.dW = [np.empty_like(W) for W in self.W]
        self.dx = [np.empty((B, i), np.float32) for i, _ in cfg.layers()]
        # A VAE's two heads both read the last hidden layer and the decoder reads z (as wide as a head).
        self.inputs = self._inputs(cfg)

    def _inputs(self, cfg):
        ins = [self.x]
        for idx in range(1, len(self.W)):
            if cfg.kind == "vae" and idx == len(cfg.dims):  # logvar head: same input as the mu head
                ins.append(ins[-1])
            else:
                ins.append(self.acts[idx - 1])
        return ins

    def step(self):
        for W, a, out in zip(self.W, self.inputs, self.acts):
            np.matmul(a, W.T, out=out)
        for idx in range(len(self.W) - 1, -1, -1):
            delta = self.acts[idx]
            np.matmul(delta.T, self.inputs[idx], out=self.dW[idx])
            if idx > 0:
                np.matmul(delta, self.W[idx], out=self.dx[idx])

    def loss(self):
        return float("nan")  # not a model: nothing to check, and reported as such


class _FloorEncode(EncodeCase):
    def __init__(self, cfg, x):
        r = np.random.default_rng(0)
        self.x = x
        self.W = [r.random((o, i), dtype=np.float32) for i, o in cfg.encoder_layers()]
        self.acts = [np.empty((x.shape[0], o), np.float32) for _, o in cfg.encoder_layers()]

    def run(self):
        a = self.x
        for W, out in zip(self.W, self.acts):
            np.matmul(a, W.T, out=out)
            a = out
        return a

    def result(self):
        return self.acts[-1]


class GemmFloor(Contestant):
    """The matrix products alone through NumPy's BLAS: the floor that fused kernels are measured against."""

    name = "GEMM-only floor"
    kind = FLOOR

    def train(self, cfg, params, x, eps):
        return _FloorTrain(cfg, x)

    def encode(self, cfg, params, x):
        return _FloorEncode(cfg, x)
