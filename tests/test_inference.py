"""Inference over row chunks (fastae/models/base.py ``_into``): ``encode``, ``decode`` and ``reconstruct`` of both
model classes on every backend give the same bits whether they allocate their result or write it into ``out=``,
however the rows fall into chunks, and ``out`` may be a memory-mapped file. The bad ``out`` arrays are in
test_validation.py."""

import numpy as np
import pytest

import fastae
from fastae.backends import registry
from fastae.models import base, network

from .tolerances import ErrorBackend, close, f64

BACKENDS = registry.available_backends()
MODELS = {
    "ae-deep": (fastae.Autoencoder, dict(hidden=(12, 5), code_activation="linear")),
    "ae-untied": (fastae.Autoencoder, dict(hidden=(7,), tied=False, loss="mse")),
    "vae": (fastae.VAE, dict(hidden=(9,), latent=3)),
    "vae-no-hidden": (fastae.VAE, dict(hidden=(), latent=4)),
}
ROWS = 237  # with chunks of 50 rows: four whole chunks and a tail of 37


def _fitted(name, backend, dtype="float32"):
    cls, kw = MODELS[name]
    X = np.random.default_rng(0).uniform(size=(ROWS, 20))
    return cls(epochs=1, batch_size=64, random_state=0, backend=backend, dtype=dtype, **kw).fit(X), X


def _methods(m, X):
    """``(method, input, width)`` of each array-returning inference method."""
    H = m.encode(X)
    return [(m.encode, X, m._code_size()), (m.decode, H, X.shape[1]), (m.reconstruct, X, X.shape[1])]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("chunk", [50, base.INFERENCE_CHUNK])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_out_holds_the_same_bits_as_a_new_array(backend, name, chunk, dtype, monkeypatch):
    monkeypatch.setattr(base, "INFERENCE_CHUNK", chunk)
    m, X = _fitted(name, backend, dtype)
    for method, inp, width in _methods(m, X):
        want = method(inp)
        assert want.shape == (ROWS, width) and want.dtype == dtype
        out = np.full((ROWS, width), np.nan, dtype=dtype)
        assert method(inp, out=out) is out, method.__name__
        np.testing.assert_array_equal(out, want, err_msg=method.__name__)


def _layers_err(m, layers, x):
    """Bound on the output of ``layers`` of ``m`` on the exact input ``x``: the layers run on tests/tolerances.py's
    ``ErrorBackend``, each product's bound chained through the next."""
    B = ErrorBackend(m.dtype)
    out = network.forward(B, {k: f64(v)[0] for k, v in m._params.items()}, layers, f64(x)[0])[-1]
    return B.error_of(out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_results_match_one_call(backend, monkeypatch):
    """Chunks of 50 rows give what one call over every row gives, each row in its place (within rounding: BLAS
    may round a product of 50 rows differently from one of 237; two evaluations of each sum, as the tolerance
    model counts them, here both in float32)."""
    m, X = _fitted("ae-deep", backend)
    whole = [method(inp) for method, inp, _ in _methods(m, X)]
    x, H = X.astype(m.dtype), whole[0]
    errs = [_layers_err(m, m._encoder, x), _layers_err(m, m._decoder, H), _layers_err(m, m._encoder + m._decoder, x)]
    monkeypatch.setattr(base, "INFERENCE_CHUNK", 50)
    for (method, inp, _), want, err in zip(_methods(m, X), whole, errs):
        close(method(inp), want, m.dtype, err=err, what=method.__name__)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampled_codes_into_out(backend, monkeypatch):
    """``encode(X, sample=True, out=...)``: the same draws as without ``out`` from the same sample counter, each
    row drawn at its own address whatever the chunk."""
    monkeypatch.setattr(base, "INFERENCE_CHUNK", 50)
    m, X = _fitted("vae", backend)
    m._sample_calls_ = 0
    want = m.encode(X, sample=True)
    m._sample_calls_ = 0
    out = np.empty((ROWS, 3), dtype=np.float32)
    assert m.encode(X, sample=True, out=out) is out
    np.testing.assert_array_equal(out, want)
    assert not np.array_equal(out, m.encode(X)), "a draw must differ from the mean"


@pytest.mark.parametrize("backend", BACKENDS)
def test_codes_go_straight_to_a_memmap(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(base, "INFERENCE_CHUNK", 50)
    m, X = _fitted("ae-deep", backend)
    path = tmp_path / "codes.f32"
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=(ROWS, 5))
    assert m.encode(X, out=out) is out
    out.flush()
    np.testing.assert_array_equal(np.fromfile(path, dtype=np.float32).reshape(ROWS, 5), m.encode(X))


def test_vae_mean_paths_never_run_the_log_variance_head(monkeypatch):
    """``encode``, ``reconstruct`` and ``score_samples`` work at ``z = μ``: the log-variance head's product
    would be thrown away, so it is never made. A draw needs it, which shows the check sees the head when it
    runs."""
    m, X = _fitted("vae", "numpy")
    B, real, logvar = m._B, m._B.dense_forward, m._params["logvar.weight"]
    used = []
    monkeypatch.setattr(B, "dense_forward", lambda x, W, *a, **k: used.append(W is logvar) or real(x, W, *a, **k))
    m.encode(X)
    m.reconstruct(X)
    m.score_samples(X)
    assert used and not any(used)
    m.encode(X, sample=True)
    assert any(used)


@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("backend", registry.available_backends())
def test_memory_mapped_inference_allocates_by_the_chunk_not_the_input(tmp_path, loss, backend):
    """encode(memmap, out=memmap) and score_samples(memmap) allocate per chunk: the peak is the same for 25,000
    and 100,000 rows and a few chunks' worth, never a copy of the input or a full-size mask of its checks (NumPy
    reports its allocations to tracemalloc)."""
    import tracemalloc

    if backend.startswith("cupy-standin"):
        pytest.skip("the CuPy stand-in's device memory is host memory, and its adapter copies each op's whole input")

    n, d, k = 100_000, 64, 16
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(n, d))
    X[:] = np.random.default_rng(0).uniform(0, 1, (n, d)).astype(np.float32)
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    m = fastae.Autoencoder(hidden=(k,), loss=loss, epochs=1, random_state=0, backend=backend).fit(X[:500])
    out = np.lib.format.open_memmap(tmp_path / "H.npy", mode="w+", dtype=np.float32, shape=(n, k))
    m.encode(X[:10], out=out[:10])  # compile and warm up outside the measurement
    peaks = []
    for rows in (25_000, n):
        tracemalloc.start()
        try:
            m.encode(X[:rows], out=out[:rows])
            m.score_samples(X[:rows])
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.1 * peaks[0] + 2**20, f"peak {peaks} bytes grows with the input"
    chunk = base.INFERENCE_CHUNK * d * 4  # one chunk of input: 2 MiB
    assert peaks[1] < 8 * chunk, f"{peaks[1] / 2**20:.1f} MiB allocated, chunks of {chunk / 2**20:.0f} MiB"
    np.testing.assert_array_equal(out[:100], m.encode(np.array(X[:100])))


@pytest.mark.parametrize("cls", [fastae.Autoencoder, fastae.VAE])
def test_scores_of_finite_inputs_are_finite_or_name_the_rows_that_overflow(cls):
    X = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    m = cls(hidden=(3,), loss="mse", epochs=1, random_state=0).fit(X)
    assert np.isfinite(m.score_samples(X)).all()
    big = X.copy()
    big[3] = 3e38  # finite in float32, but its squared error is not
    big[7, 1] = -3e38
    with pytest.raises(
        ValueError,
        match=r"score_samples overflows float32 for 2 row\(s\) of finite input, the "
        r"first \[3, 7\].*dtype='float64'",
    ):
        m.score_samples(big)
    scores = cls(hidden=(3,), loss="mse", epochs=1, random_state=0, dtype="float64").fit(X).score_samples(big)
    assert np.isfinite(scores).all()
