"""The benchmark configurations as data, and their training objective in float64 NumPy: what every contestant's
answer is checked with, written apart from the library it checks.

:func:`layout` gives the network of a :class:`~fastae.benchmark.configs.Config` with the weight names of fastae's
state dict (PyTorch's names and ``nn.Linear`` shapes); :func:`loss` evaluates the objective of ``numpy_ref``
(cross-entropy from logits summed over features, averaged over the batch; for a VAE plus the KL term with the
log-variance clamped to [LOGVAR_MIN, LOGVAR_MAX], at the given ``eps``) from a contestant's weights.
"""

from __future__ import annotations

import numpy as np

from ..constants import LOGVAR_MAX, LOGVAR_MIN
from .configs import Config


def layout(cfg: Config):
    """The network as data: ``(encoder, heads, decoder)``, each a tuple of ``(weight, bias, activation, transpose)``
    with names as in fastae's state dict; ``activation`` ``None`` marks the output logits. ``heads`` is empty for an
    autoencoder and ``[mu, logvar]`` (linear) for a VAE."""
    k = len(cfg.dims) - 1
    if cfg.kind == "vae":
        enc = [(f"encoder.{i}.weight", f"encoder.{i}.bias", cfg.activation, False) for i in range(k)]
        heads = [("mu.weight", "mu.bias", "linear", False), ("logvar.weight", "logvar.bias", "linear", False)]
        dec = [
            (f"decoder.{j}.weight", f"decoder.{j}.bias", None if j == k else cfg.activation, False)
            for j in range(k + 1)
        ]
        return tuple(enc), tuple(heads), tuple(dec)
    code_act = cfg.activation if cfg.code_activation is None else cfg.code_activation
    enc = [
        (f"encoder.{i}.weight", f"encoder.{i}.bias", code_act if i == k - 1 else cfg.activation, False)
        for i in range(k)
    ]
    dec = []
    for j in range(k):
        src = k - 1 - j  # decoder layer j inverts encoder layer k-1-j
        weight = f"encoder.{src}.weight" if cfg.tied else f"decoder.{j}.weight"
        dec.append((weight, f"decoder.{j}.bias", None if j == k - 1 else cfg.activation, cfg.tied))
    return tuple(enc), (), tuple(dec)


_ACTS = {
    "sigmoid": lambda a: 0.5 * (1 + np.tanh(0.5 * a)),
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0),
    "linear": lambda a: a,
}


def _dense(P, layer, h):
    weight, bias, activation, transpose = layer
    W = P[weight]
    a = h @ (W if transpose else W.T) + P[bias]
    return a if activation is None else _ACTS[activation](a)


def loss(cfg: Config, params: dict, x: np.ndarray, eps: np.ndarray | None = None) -> float:
    """The training objective of ``cfg`` at weights ``params`` (any float dtype: evaluated in float64) on batch
    ``x``; a VAE's ``eps`` is the noise of the reparameterisation, ``(rows, latent)``."""
    enc, heads, dec = layout(cfg)
    P = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    h = x
    for layer in enc:
        h = _dense(P, layer, h)
    kl = 0.0
    if heads:
        mu = _dense(P, heads[0], h)
        logvar = np.clip(_dense(P, heads[1], h), LOGVAR_MIN, LOGVAR_MAX)
        h = mu + np.exp(0.5 * logvar) * np.asarray(eps, dtype=np.float64)
        kl = -0.5 * float(np.sum(1 + logvar - mu * mu - np.exp(logvar))) / n
    for layer in dec:
        h = _dense(P, layer, h)
    rec = float(np.sum(np.maximum(h, 0) - x * h + np.log1p(np.exp(-np.abs(h))))) / n
    return rec + kl
