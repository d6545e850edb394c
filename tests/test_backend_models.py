"""Whole models on every compiled backend against the reference: the objective and every gradient for each
variant, the training curve on digits, determinism across thread counts, and concurrent use from Python threads."""

import subprocess
import sys
import threading

import numpy as np
import pytest

import fastae
from fastae.backends import numba_cpu, registry

from .test_autoencoder import VARIANTS
from .tolerances import close, model_errors

BACKENDS = [b for b in registry.available_backends() if b != "numpy"]
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no compiled backend imports here (numba missing?)")

MODELS = {f"ae-{k}": (fastae.Autoencoder, v) for k, v in VARIANTS.items()}
MODELS.update({
    "ae-deep-untied-relu": (fastae.Autoencoder, dict(hidden=(12, 7, 3), tied=False, activation="relu",
                                                   code_activation="linear")),
    "vae-bce": (fastae.VAE, dict(hidden=(10,), latent=3)),
    "vae-mse-deep": (fastae.VAE, dict(hidden=(10, 6), latent=2, loss="mse", activation="tanh", beta=0.5)),
    "vae-no-hidden": (fastae.VAE, dict(hidden=(), latent=4, weight_decay=1e-3)),
})


def _model(cls, kw, backend, dtype, n_features):
    kw = {k: v for k, v in kw.items() if k not in ("learning_rate",)}
    m = cls(backend=backend, dtype=dtype, random_state=1, **kw)
    m._setup(n_features)
    return m


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("n", [1, 33, 300])
def test_objective_and_gradients_match_the_reference(backend, dtype, name, n):
    """Tolerance: the error bound of every sum that fed the loss and each gradient, carried through the
    reference's own ops (tests/tolerances.py ``ErrorBackend``)."""
    cls, kw = MODELS[name]
    loss_kind = kw.get("loss", "bce")
    r = np.random.default_rng(n)
    x = r.uniform(0.02, 0.98, size=(n, 9)) if loss_kind == "bce" else r.normal(size=(n, 9))
    m = _model(cls, kw, backend, dtype, 9)
    ref = _model(cls, kw, "numpy", "float64", 9)
    ref._params = {k: v.astype(np.float64) for k, v in m._params.items()}
    loss, grads = m._loss_and_grads(np.ascontiguousarray(x, dtype=dtype), 4)
    x64 = x.astype(dtype).astype(np.float64)
    loss64, grads64 = ref._loss_and_grads(x64, 4)
    (loss_e, err_loss), with_err = model_errors(ref, x64, 4, dtype)
    assert loss_e == loss64 and all(np.array_equal(with_err[k][0], g) for k, g in grads64.items())  # same path
    close(np.asarray(loss, dtype=dtype), float(loss64), dtype, err=err_loss, what="loss")
    assert set(grads) == set(grads64)
    for k in grads:
        close(grads[k], grads64[k], dtype, err=with_err[k][1], what=k)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_curve_on_digits_matches_the_reference(backend, dtype, digits_split):
    Xtr, Xte = digits_split
    kw = dict(hidden=(32, 8), code_activation="linear", noise=("mask", 0.1), epochs=5, batch_size=64,
              learning_rate=3e-3, random_state=0, dtype=dtype)
    got = fastae.Autoencoder(backend=backend, **kw).fit(Xtr)
    want = fastae.Autoencoder(backend="numpy", **kw).fit(Xtr)
    # These bound how far two training trajectories drift apart over many steps, not a single rounding.
    rtol = 1e-9 if dtype == "float64" else 2e-3
    np.testing.assert_allclose(got.history_["loss"], want.history_["loss"], rtol=rtol)
    np.testing.assert_allclose(got.score_samples(Xte), want.score_samples(Xte), rtol=rtol * 10)


_DETERMINISM = """
import sys, numpy as np, numba, fastae
from fastae.backends import numba_cpu
assert numba_cpu.PARALLEL, numba_cpu.describe()
numba.set_num_threads(int(sys.argv[1]))
X = np.random.default_rng(0).uniform(size=(3000, 96))
m = fastae.Autoencoder(hidden=(200, 40), noise=('mask', 0.2), epochs=2, batch_size=1024, random_state=0,
                       backend=sys.argv[2]).fit(X)
v = fastae.VAE(hidden=(120,), latent=8, epochs=2, batch_size=1500, random_state=0, backend=sys.argv[2]).fit(X)
out = [m.encode(X), m.score_samples(X), v.elbo(X)] + [a for a in m.state_dict().values()]
np.savez(sys.argv[3], *out)
"""

_NO_POOL = numba_cpu.pool_unavailable()


@pytest.mark.skipif(_NO_POOL is not None, reason=f"the one-pool mode cannot run here: {_NO_POOL}")
@pytest.mark.parametrize("backend", BACKENDS)
def test_results_are_bit_identical_whatever_the_thread_count(backend, tmp_path):
    """Large batches run on the pool (FASTAE_NUMBA_PARALLEL=1): 1 and 2 Numba threads must give the same bits.
    BLAS is not pinned: the pool's products hold SciPy's BLAS at one thread themselves, and their parts do not
    depend on the thread count, which is what this checks."""
    import os

    files = []
    for threads in (1, 2):
        f = tmp_path / f"t{threads}.npz"
        env = dict(os.environ, FASTAE_NUMBA_PARALLEL="1")  # the parallel kernels are opt-in; test them here
        subprocess.run([sys.executable, "-c", _DETERMINISM, str(threads), backend, str(f)], check=True, env=env)
        files.append(np.load(f))
    a, b = files
    assert len(a.files) > 3
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


_POOL = """
import threading, numpy as np, fastae
from fastae.backends import numba_cpu
assert numba_cpu.describe()["kernels"] == "one pool", numba_cpu.describe()
X = np.random.default_rng(0).uniform(size=(3000, 96)).astype(np.float32)  # the models' dtype: scanned, not copied
m = fastae.Autoencoder(hidden=(200, 40), epochs=2, batch_size=256, random_state=0).fit(X)
v = fastae.VAE(hidden=(120,), latent=8, epochs=2, batch_size=300, random_state=0).fit(X)
X2 = np.random.default_rng(1).uniform(size=(40, 600)).astype(np.float32)
w = fastae.Autoencoder(hidden=(500,), epochs=1, batch_size=40, random_state=0).fit(X2)
w1 = w.encode(X2[:1])  # one row of a wide layer: the pool shares out the columns
wide = np.random.default_rng(2).uniform(size=(300, 260)).astype(np.float32)
xs, ds = wide[:, :96], np.asfortranarray(wide[:, :200])  # a strided view and a Fortran-ordered copy
W0, b0 = m._params["encoder.0.weight"], m._params["encoder.0.bias"]
f = numba_cpu.dense_forward
strided = np.array_equal(f(xs, W0, b0, "sigmoid"), f(np.ascontiguousarray(xs), W0, b0, "sigmoid"))
g1 = numba_cpu.dense_backward(ds, xs, W0, need_dx=True)
g2 = numba_cpu.dense_backward(np.ascontiguousarray(ds), np.ascontiguousarray(xs), W0, need_dx=True)
strided = strided and all(np.array_equal(a, b) for a, b in zip(g1, g2))
want = [m.encode(X), m.score_samples(X), v.encode(X)]
fastae.models.base.INFERENCE_CHUNK = 1000  # out= slices of 1000 rows (by rows) and a one-row out (by columns)
into = np.array_equal(m.encode(X, out=np.empty((3000, 40), np.float32)), m.encode(X))
into = into and np.array_equal(w.encode(X2[:1], out=np.empty((1, 500), np.float32)), w1)
into = into and np.array_equal(v.encode(X, out=np.empty((3000, 8), np.float32)), v.encode(X))
H = m.encode(X)
into = into and np.array_equal(m.decode(H, out=np.empty((3000, 96), np.float32)), m.decode(H))
fastae.models.base.INFERENCE_CHUNK = 8192
ran = [k for k in ("linear_act", "linear_act_cols", "output_loss", "output_rows", "backward", "values_ok_par")
       if getattr(numba_cpu.products, k).signatures]
got, errors = {}, []
def work(i):
    try:
        for _ in range(3):
            got[i] = [m.encode(X), m.score_samples(X), v.encode(X)]
    except Exception as exc:
        errors.append(exc)
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
agree = all(np.array_equal(g, w) for res in got.values() for g, w in zip(res, want))
np.savez(__import__("sys").argv[1], *want, m.history_["loss"], v.history_["loss"], w1, ran=np.array(ran),
         agree=agree, strided=strided, into=into)
"""


@pytest.mark.skipif(_NO_POOL is not None, reason=f"the one-pool mode cannot run here: {_NO_POOL}")
def test_one_pool_mode_runs_the_pool_ops_agrees_with_serial_and_across_threads(tmp_path):
    """FASTAE_NUMBA_PARALLEL=1: fits and encodes take the pool ops (products.py), give the serial kernels'
    results within tolerance, and four Python threads encoding at once get the bits of a call made alone (each
    holding SciPy's BLAS at one thread, whichever thread takes it first)."""
    import os

    f = tmp_path / "pool.npz"
    env = dict(os.environ, FASTAE_NUMBA_PARALLEL="1")
    subprocess.run([sys.executable, "-c", _POOL, str(f)], check=True, env=env)
    res = np.load(f)
    assert set(res["ran"]) == {"linear_act", "linear_act_cols", "output_loss", "output_rows", "backward",
                               "values_ok_par"}
    assert bool(res["agree"])
    assert bool(res["strided"]), "a pool op on strided or Fortran-ordered operands must equal the C-ordered one"
    assert bool(res["into"]), "a pool encode into out= must equal the one into a new array"
    X = np.random.default_rng(0).uniform(size=(3000, 96)).astype(np.float32)
    m = fastae.Autoencoder(hidden=(200, 40), epochs=2, batch_size=256, random_state=0).fit(X)
    v = fastae.VAE(hidden=(120,), latent=8, epochs=2, batch_size=300, random_state=0).fit(X)
    # Models fitted in the two modes, so these bound how far two training trajectories drift apart over many
    # steps (the pool's products round differently from the serial ones), not a single rounding.
    for k, want in enumerate([m.encode(X), m.score_samples(X), v.encode(X)]):
        np.testing.assert_allclose(res[f"arr_{k}"], want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res["arr_3"], m.history_["loss"], rtol=2e-3)  # as the digits curve test
    np.testing.assert_allclose(res["arr_4"], v.history_["loss"], rtol=2e-3)
    X2 = np.random.default_rng(1).uniform(size=(40, 600)).astype(np.float32)
    w = fastae.Autoencoder(hidden=(500,), epochs=1, batch_size=40, random_state=0).fit(X2)
    np.testing.assert_allclose(res["arr_5"], w.encode(X2[:1]), rtol=1e-4, atol=1e-6)  # a trajectory, as above


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_threads_encoding_at_once_agree(backend):
    """Eight Python threads share one model, each with its own input (tiny inputs run the serial kernels, large
    ones the parallel kernels): no crash, and every answer equals the same call made alone."""
    X = np.random.default_rng(0).uniform(size=(4000, 64))
    m = fastae.Autoencoder(hidden=(128, 16), epochs=1, random_state=0, backend=backend).fit(X[:500])
    v = fastae.VAE(hidden=(64,), latent=4, epochs=1, random_state=0, backend=backend).fit(X[:500])
    inputs = {i: X[i * 100:] if i % 2 else X[i:i + 2] for i in range(8)}
    want = {i: (m.encode(x), m.score_samples(x), v.encode(x)) for i, x in inputs.items()}
    errors, results = [], {}
    barrier = threading.Barrier(8)

    def work(i):
        try:
            barrier.wait()
            for _ in range(5):
                results[i] = (m.encode(inputs[i]), m.score_samples(inputs[i]), v.encode(inputs[i]))
        except Exception as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 8
    for i, got in results.items():
        for g, w in zip(got, want[i]):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_four_threads_training_their_own_models_agree(backend):
    """Four Python threads fit models at once (one-hidden-layer models take the one-call step, whose products
    are BLAS calls made from compiled code without the GIL): every model equals the same fit made alone."""
    X = np.random.default_rng(1).uniform(size=(400, 64))
    kws = [dict(hidden=(16,)), dict(hidden=(16,), tied=False, noise=("mask", 0.2)),
           dict(hidden=(32, 8)), dict(hidden=(16,), optimizer="momentum", dtype="float64")]

    def fit(kw):
        return fastae.Autoencoder(epochs=3, batch_size=32, random_state=0, backend=backend, **kw).fit(X)

    want = [fit(kw).state_dict() for kw in kws]
    errors, results = [], {}
    barrier = threading.Barrier(len(kws))

    def work(i):
        try:
            barrier.wait()
            results[i] = fit(kws[i]).state_dict()
        except Exception as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(kws))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, w in enumerate(want):
        for k in w:
            np.testing.assert_array_equal(results[i][k], w[k], err_msg=f"model {i}, {k}")
