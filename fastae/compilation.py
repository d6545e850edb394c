"""Compile-time handling: ``warmup()`` compiles (or loads from Numba's on-disk cache) every kernel that dispatch can
reach, so that no fit or encode pays for compilation later.

Numba compiles each kernel on first use, for each dtype, and caches the machine code on disk (``cache=True``) next to
the kernel source or under ``NUMBA_CACHE_DIR``. A cold cache costs a one-off compile on the first call of each
kernel (docs/performance.md has the measured total); a warm cache only loads. Call ``fastae.warmup()`` once after
installing (or at the start of a latency-sensitive program) and before timing anything.
"""

from __future__ import annotations

import time

import numpy as np


def warmup(backends=None, dtypes=("float32", "float64")) -> dict:
    """Compile (or load from Numba's cache) every kernel specialisation dispatch can reach.

    For each backend: its own ``warmup`` (for the Numba backends, the explicit table of
    ``fastae.kernels.cpu.signatures``: float32 and float64, writable and read-only input, and for ``numba-pool``
    the parallel twins and pool products), then one tiny fit and encode per dtype of an Autoencoder and a VAE,
    which load what the table does not cover (BLAS, the Philox fillers, the reference's helpers).

    Parameters
    ----------
    backends : list of str or None, default=None
        Names of the backends to warm up. ``None``: every backend of the registry's ``"auto"`` preference order
        that can run here, except ``"numpy"`` (which compiles nothing).
    dtypes : tuple of str, default=("float32", "float64")
        The dtypes (``"float32"``, ``"float64"``) to warm up for each backend.

    Returns
    -------
    seconds : dict of str to float
        ``{backend: seconds}``: the wall-clock time each backend's warm-up took.
    """
    from .backends import registry
    from .models import VAE, Autoencoder

    if backends is None:
        here = registry.available_backends()
        backends = [b for b in registry.AUTO_ORDER if b != "numpy" and b in here]
    X = np.random.default_rng(0).uniform(size=(16, 8))
    seconds = {}
    for backend in backends:
        t0 = time.perf_counter()
        registry.get_backend(backend, dtypes[0]).warmup(tuple(dtypes))
        for dtype in dtypes:
            for cls, kw in ((Autoencoder, dict(hidden=(4,))), (VAE, dict(hidden=(4,), latent=2))):
                m = cls(backend=backend, dtype=dtype, epochs=1, batch_size=8, random_state=0, **kw).fit(X)
                m.encode(X[:1])
        seconds[backend] = time.perf_counter() - t0
    return seconds
