"""Compile-time handling: ``warmup()`` compiles (or loads from Numba's on-disk cache) every kernel that dispatch can
reach, so that no fit or encode pays for compilation later.

Numba compiles each kernel on first use, for each dtype, and caches the machine code on disk (``cache=True``) next to
the kernel source or under ``NUMBA_CACHE_DIR``. A cold cache costs a one-off compile on the first call of each kernel
(see the README for the measured total); a warm cache only loads. Call ``fastae.warmup()`` once after installing (or
at the start of a latency-sensitive program) and before timing anything.
"""

from __future__ import annotations

import time

import numpy as np


def warmup(backends=None, dtypes=("float32", "float64")) -> dict:
    """Run every model kind and variant once on each compiled backend and dtype, on a small batch (serial kernels)
    and a large one (parallel kernels). Returns ``{backend: seconds}``."""
    from .backends import registry
    from .models import VAE, Autoencoder

    if backends is None:
        backends = [b for b in registry.available_backends() if b != "numpy"]
    r = np.random.default_rng(0)
    X = r.uniform(size=(600, 64))
    variants = [
        (Autoencoder, dict(hidden=(32, 8), code_activation="linear", noise=("mask", 0.1), optimizer="adam")),
        (Autoencoder, dict(hidden=(32,), activation="tanh", contractive=0.1, noise=("gaussian", 0.1),
                           optimizer="momentum", weight_decay=1e-4)),
        (Autoencoder, dict(hidden=(32,), activation="relu", tied=False, loss="mse", sparsity=("l1", 1e-3),
                           optimizer="nesterov")),
        (Autoencoder, dict(hidden=(32,), sparsity=("kl", 0.1, 0.1), optimizer="sgd")),
        (VAE, dict(hidden=(32,), latent=4)),
        # no penalty: small batches of it take the fused one-call step (kernels/cpu/step.py)
        (Autoencoder, dict(hidden=(16,), tied=False, optimizer="adam")),
    ]
    seconds = {}
    for backend in backends:
        t0 = time.perf_counter()
        for dtype in dtypes:
            for cls, kw in variants:
                for batch in (8, 600):  # below and above the parallel threshold
                    m = cls(backend=backend, dtype=dtype, epochs=1, batch_size=batch, random_state=0, **kw)
                    m.fit(X[:max(batch, 8)])
                    m.encode(X[:1])
                    m.encode(X)
                    m.score_samples(X[:3])
                    m.reconstruct(X)
                    if cls is VAE:
                        m.elbo(X[:5])
                        m.sample(2)
                        m.encode(X, sample=True)
        seconds[backend] = time.perf_counter() - t0
    return seconds
