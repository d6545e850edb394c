"""The explicit signature table is what dispatch reaches: after compiling it, every model variant, method, dtype
and kind of input (writable, read-only, converted) runs without compiling one specialisation more.

The sweep runs in a fresh process, so specialisations compiled by other tests (kernel tests call kernels with
scalar types of their own) cannot hide a gap.
"""

import json
import subprocess
import sys

import pytest

from fastae.backends import registry
from fastae.kernels.cpu import signatures

SWEEP = r"""
import json, sys, numpy as np, fastae
from fastae.backends import registry
from fastae.kernels.cpu import signatures as S

backend = sys.argv[1]
registry.get_backend(backend, "float32").warmup(("float32", "float64"))
table = S.signatures(parallel=backend == "numba-pool")
rng = np.random.default_rng(0)
AE = [dict(hidden=(8,)),                                               # fused one-call step
      dict(hidden=(8,), tied=False, loss="mse", activation="relu", optimizer="momentum", shuffle=False),
      dict(hidden=(8,), noise=("mask", 0.2), shuffle=False),             # fused, x read-only, x~ fresh
      dict(hidden=(8,), noise=("gaussian", 0.1), optimizer="sgd"),
      dict(hidden=(12, 8), code_activation="linear", pretrain="layerwise", shuffle=False),
      dict(hidden=(8,), sparsity=("l1", 1e-3), optimizer="nesterov", shuffle=False),
      dict(hidden=(8,), sparsity=("kl", 0.1, 0.1), weight_decay=1e-4),
      dict(hidden=(8,), contractive=0.1, activation="tanh", noise=("mask", 0.1), shuffle=False),
      dict(hidden=(8,), batch_size=300),                                # too large for the fused step
      dict(hidden=(64, 8), batch_size=300, shuffle=False)]              # products large enough for the pool
for dtype in ("float32", "float64"):
    for readonly in (False, True):
        X = rng.random((300, 64)).astype(dtype)
        X.flags.writeable = not readonly
        for kw in AE:
            m = fastae.Autoencoder(**{"epochs": 1, "batch_size": 32, "dtype": dtype, "random_state": 0,
                                      "backend": backend, **kw})
            m.fit(X, validation_data=X[:40]).partial_fit(X)
            H = m.encode(X)
            m.decode(H), m.reconstruct(X), m.score_samples(X), m.score(X), m.encode(X[:1])
            m.encode(X, out=np.empty_like(H)), m.decode(H, out=np.empty(X.shape, dtype))
            m.reconstruct(X, out=np.empty(X.shape, dtype))
        for shuffle in (True, False):
            v = fastae.VAE(hidden=(8,), latent=2, epochs=1, batch_size=32, dtype=dtype, shuffle=shuffle,
                           random_state=0, backend=backend).fit(X)
            v.encode(X), v.encode(X, sample=True), v.elbo(X), v.score_samples(X), v.sample(3)
            v.reconstruct(X), v.decode(v.encode(X[:5]))
            v.encode(X, sample=True, out=np.empty((300, 2), dtype)), v.reconstruct(X, out=np.empty(X.shape, dtype))
            v.encode(X, out=np.empty((300, 2), dtype)), v.decode(v.encode(X), out=np.empty(X.shape, dtype))
        v = fastae.VAE(hidden=(64,), latent=2, epochs=1, batch_size=300, dtype=dtype, random_state=0,
                       backend=backend).fit(X)
        v.encode(X), v.elbo(X), v.reconstruct(X)
    fastae.Autoencoder(hidden=(8,), epochs=1, dtype=dtype, backend=backend).fit(rng.random((50, 64)))  # converted
for readonly in (False, True):  # precision="bfloat16": float32 models only
    X = rng.random((300, 64)).astype("float32")
    X.flags.writeable = not readonly
    for m in (fastae.Autoencoder(hidden=(64, 8), epochs=1, random_state=0, backend=backend).fit(X),
              fastae.VAE(hidden=(64,), latent=2, epochs=1, random_state=0, backend=backend).fit(X)):
        m.set_params(precision="bfloat16")
        m.fit(X, validation_data=X[:40]).partial_fit(X)
        m.score_samples(X)
        H = m.encode(X)
        H.flags.writeable = not readonly
        m.decode(H), m.reconstruct(X), m.encode(X[:1]), m.encode(X.astype("float64"))
        m.encode(X, out=np.empty_like(H)), m.reconstruct(X, out=np.empty(X.shape, "float32"))
    m.sample(3), m.elbo(X), m.encode(X, sample=True)
    fastae.Autoencoder(hidden=(8,), epochs=1, random_state=0, backend=backend, precision="bfloat16").fit(X)
extra = {name: [str(s) for s in set(S.dispatcher(name).signatures) - set(sigs)] for name, sigs in table.items()}
print(json.dumps({k: v for k, v in extra.items() if v}))
"""


_NO_POOL = registry.unavailable("numba-pool")


@pytest.mark.parametrize(
    "backend",
    [
        "numba",
        pytest.param(
            "numba-pool",
            marks=pytest.mark.skipif(
                _NO_POOL is not None, reason=f"the numba-pool backend cannot run here: {_NO_POOL}"
            ),
        ),
    ],
)
def test_every_model_path_stays_inside_the_table(backend):
    """Both Numba backends: serial kernels, and one pool (the ``_par`` twins and the products). A fresh process,
    so that specialisations compiled by other tests cannot hide a gap."""
    out = subprocess.run([sys.executable, "-c", SWEEP, backend], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    extra = json.loads(out.stdout.strip().splitlines()[-1])
    assert extra == {}, f"specialisations compiled outside kernels/cpu/signatures.py: {extra}"


def test_declared_signatures_are_the_tables():
    """Kernels that declare their signatures in the decorator (frozen: they accept nothing else) take them from
    the table, parallel twins included."""
    for name in (
        "noise.mask_noise",
        "noise.gaussian_noise",
        "latent.gaussian_latent",
        "penalties.contractive",
        "penalties.weight_decay",
    ):
        for twin in (name, name + "_par"):
            assert set(signatures.dispatcher(twin).signatures) == set(signatures.of(name)), twin
