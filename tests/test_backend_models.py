"""Whole models on every compiled backend against the reference: the objective and every gradient for each
variant, the training curve on digits, determinism across thread counts, and concurrent use from Python threads."""

import threading

import numpy as np
import pytest

import fastae
from fastae.backends import gemm, registry

from .test_autoencoder import VARIANTS
from .tolerances import close, model_errors

BACKENDS = [b for b in registry.available_backends() if b != "numpy"]
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no compiled backend imports here (numba missing?)")

MODELS = {f"ae-{k}": (fastae.Autoencoder, v) for k, v in VARIANTS.items()}
MODELS.update(
    {
        "ae-deep-untied-relu": (
            fastae.Autoencoder,
            dict(hidden=(12, 7, 3), tied=False, activation="relu", code_activation="linear"),
        ),
        "vae-bce": (fastae.VAE, dict(hidden=(10,), latent=3)),
        "vae-mse-deep": (fastae.VAE, dict(hidden=(10, 6), latent=2, loss="mse", activation="tanh", beta=0.5)),
        "vae-no-hidden": (fastae.VAE, dict(hidden=(), latent=4, weight_decay=1e-3)),
    }
)


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
    kw = dict(
        hidden=(32, 8),
        code_activation="linear",
        noise=("mask", 0.1),
        epochs=5,
        batch_size=64,
        learning_rate=3e-3,
        random_state=0,
        dtype=dtype,
    )
    got = fastae.Autoencoder(backend=backend, **kw).fit(Xtr)
    want = fastae.Autoencoder(backend="numpy", **kw).fit(Xtr)
    # These bound how far two training trajectories drift apart over many steps, not a single rounding.
    rtol = 1e-9 if dtype == "float64" else 2e-3
    np.testing.assert_allclose(got.history_["loss"], want.history_["loss"], rtol=rtol)
    np.testing.assert_allclose(got.score_samples(Xte), want.score_samples(Xte), rtol=rtol * 10)


_NO_POOL = registry.unavailable("numba-pool")
needs_pool = pytest.mark.skipif(_NO_POOL is not None, reason=f"the numba-pool backend cannot run here: {_NO_POOL}")


def _big_fits(backend, dtype="float64"):
    X = np.random.default_rng(0).uniform(size=(3000, 96)).astype(dtype)
    m = fastae.Autoencoder(
        hidden=(200, 40), noise=("mask", 0.2), epochs=2, batch_size=1024, random_state=0, backend=backend, dtype=dtype
    ).fit(X)
    v = fastae.VAE(
        hidden=(120,), latent=8, epochs=2, batch_size=1500, random_state=0, backend=backend, dtype=dtype
    ).fit(X)
    return X, m, v


@needs_pool
def test_pool_results_are_bit_identical_whatever_the_thread_count():
    """Large batches run on the pool: 1 and 2 Numba threads give the same bits. BLAS is not pinned: the pool's
    products hold SciPy's BLAS at one thread themselves, and their parts do not depend on the thread count,
    which is what this checks."""
    import numba

    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            X, m, v = _big_fits("numba-pool")
            results.append([m.encode(X), m.score_samples(X), v.elbo(X), *m.state_dict().values()])
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@needs_pool
def test_pool_bf16_gives_the_serial_bits_on_any_thread_count():
    """precision="bfloat16" on the pool: the epilogues, conversions and optimiser updates run their ``_par``
    twins (this checks they ran), the products are the serial backend's, so fits and codes are the serial
    backend's bits, on 1 and 2 Numba threads."""
    import numba

    from fastae.backends import numba_pool

    X = np.random.default_rng(1).uniform(size=(3000, 96)).astype(np.float32)

    def fits(backend):
        kw = dict(epochs=2, random_state=0, backend=backend, precision="bfloat16")
        m = fastae.Autoencoder(hidden=(400, 40), batch_size=1024, tied=False, **kw).fit(X)  # 38,400 weights
        v = fastae.VAE(hidden=(120,), latent=8, batch_size=1500, **kw).fit(X)
        return [m.encode(X), m.score_samples(X), v.elbo(X), *m.state_dict().values(), *v.state_dict().values()]

    want = fits("numba")
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            for a, b in zip(fits("numba-pool"), want):
                np.testing.assert_array_equal(a, b)
    finally:
        numba.set_num_threads(before)
    bf16k = numba_pool._serial.bf16k
    for twin in ("bias_act_bf16_par", "act_backward_bf16_par", "check_to_bf16_par", "to_bf16_par"):
        assert getattr(bf16k, twin).signatures, twin
    assert numba_pool.optim.adam_par.signatures


@needs_pool
def test_pool_with_mkl_on_its_threads_gives_the_serial_bits():
    """Where oneMKL takes the large float32 products on the pool's own OpenMP threads, the pool leaves them to it
    (every layer here has at least ``MKL_MIN_COLUMNS`` outputs) and runs the ``_par`` twins around them: the serial
    backend's bits (its products are the same MKL calls)."""
    from fastae.backends import numba_pool

    if not numba_pool._mkl_on_pool():
        pytest.skip(f"oneMKL does not run on the pool's threads here ({gemm.describe()})")
    X = np.random.default_rng(3).uniform(size=(3000, 96)).astype(np.float32)
    got = {}
    for backend in ("numba", "numba-pool"):
        m = fastae.Autoencoder(hidden=(400, 64), epochs=2, batch_size=1024, random_state=0, backend=backend).fit(X)
        v = fastae.VAE(hidden=(128,), latent=64, epochs=2, batch_size=1500, random_state=0, backend=backend).fit(X)
        got[backend] = [m.encode(X), m.score_samples(X), v.elbo(X), *m.state_dict().values()]
    for a, b in zip(got["numba"], got["numba-pool"]):
        np.testing.assert_array_equal(a, b)
    assert numba_pool.optim.adam_par.signatures and numba_pool.dense.bias_act_par.signatures


@needs_pool
def test_pool_runs_its_ops_and_agrees_with_the_serial_backend_and_across_threads(monkeypatch):
    """Fits and encodes on numba-pool take the pool ops (products.py) for large products (also the float32 ones
    oneMKL would take, for this test), give the serial backend's results within tolerance, and four Python
    threads encoding at once get the bits of a call made alone (each holding SciPy's BLAS at one thread,
    whichever thread takes it first)."""
    from fastae.backends import numba_pool

    monkeypatch.setattr(numba_pool, "_MKL_ON_POOL", [False])

    pool = numba_pool.products
    X, m, v = _big_fits("numba-pool", "float32")
    X2 = np.random.default_rng(1).uniform(size=(40, 600)).astype(np.float32)
    w = fastae.Autoencoder(hidden=(500,), epochs=1, batch_size=40, random_state=0, backend="numba-pool").fit(X2)
    w1 = w.encode(X2[:1])  # one row of a wide layer: the pool shares out the columns
    wide = np.random.default_rng(2).uniform(size=(300, 260)).astype(np.float32)
    xs, ds = wide[:, :96], np.asfortranarray(wide[:, :200])  # a strided view and a Fortran-ordered copy
    W0, b0 = m._params["encoder.0.weight"], m._params["encoder.0.bias"]
    f = numba_pool.dense_forward
    np.testing.assert_array_equal(f(xs, W0, b0, "sigmoid"), f(np.ascontiguousarray(xs), W0, b0, "sigmoid"))
    for a, b in zip(
        numba_pool.dense_backward(ds, xs, W0, need_dx=True),
        numba_pool.dense_backward(np.ascontiguousarray(ds), np.ascontiguousarray(xs), W0, need_dx=True),
    ):
        np.testing.assert_array_equal(a, b)
    want = [m.encode(X), m.score_samples(X), v.encode(X)]
    chunk = fastae.models.base.INFERENCE_CHUNK
    fastae.models.base.INFERENCE_CHUNK = 1000  # out= slices of 1000 rows (by rows) and a one-row out (by columns)
    try:
        np.testing.assert_array_equal(m.encode(X, out=np.empty((3000, 40), np.float32)), want[0])
        np.testing.assert_array_equal(w.encode(X2[:1], out=np.empty((1, 500), np.float32)), w1)
        np.testing.assert_array_equal(v.encode(X, out=np.empty((3000, 8), np.float32)), want[2])
        H = m.encode(X)
        np.testing.assert_array_equal(m.decode(H, out=np.empty((3000, 96), np.float32)), m.decode(H))
    finally:
        fastae.models.base.INFERENCE_CHUNK = chunk
    ran = {
        k
        for k in ("linear_act", "linear_act_cols", "output_loss", "output_rows", "backward", "values_ok_par")
        if getattr(pool, k).signatures
    }
    assert ran == {"linear_act", "linear_act_cols", "output_loss", "output_rows", "backward", "values_ok_par"}
    got, errors = {}, []

    def work(i):
        try:
            for _ in range(3):
                got[i] = [m.encode(X), m.score_samples(X), v.encode(X)]
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for res in got.values():
        for g, want_ in zip(res, want):
            np.testing.assert_array_equal(g, want_)
    _, ms, vs = _big_fits("numba", "float32")
    ws = fastae.Autoencoder(hidden=(500,), epochs=1, batch_size=40, random_state=0, backend="numba").fit(X2)
    # Models fitted on the two backends, so these bound how far two training trajectories drift apart over many
    # steps (the pool's products round differently from the serial ones), not a single rounding.
    for got_, want_ in zip(want, [ms.encode(X), ms.score_samples(X), vs.encode(X)]):
        np.testing.assert_allclose(got_, want_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m.history_["loss"], ms.history_["loss"], rtol=2e-3)  # as the digits curve test
    np.testing.assert_allclose(v.history_["loss"], vs.history_["loss"], rtol=2e-3)
    np.testing.assert_allclose(w1, ws.encode(X2[:1]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_threads_encoding_at_once_agree(backend):
    """Eight Python threads share one model, each with its own input (tiny inputs run the serial kernels, large
    ones the parallel kernels): no crash, and every answer equals the same call made alone."""
    X = np.random.default_rng(0).uniform(size=(4000, 64))
    m = fastae.Autoencoder(hidden=(128, 16), epochs=1, random_state=0, backend=backend).fit(X[:500])
    v = fastae.VAE(hidden=(64,), latent=4, epochs=1, random_state=0, backend=backend).fit(X[:500])
    inputs = {i: X[i * 100 :] if i % 2 else X[i : i + 2] for i in range(8)}
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
    kws = [
        dict(hidden=(16,)),
        dict(hidden=(16,), tied=False, noise=("mask", 0.2)),
        dict(hidden=(32, 8)),
        dict(hidden=(16,), optimizer="momentum", dtype="float64"),
    ]

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
