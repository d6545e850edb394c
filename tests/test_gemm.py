"""The GEMM providers (fastae/backends/gemm.py): each against the float64 product, within the tolerance model
(fp32 products: float32 sums; bf16 products: operands rounded at u = 2^-8, then float32 sums), both layouts, and
the same bits whatever MKL's thread count.

oneMKL is part of the test install on x86-64 Linux (pyproject's ``test`` extra), so its tests run in CI; where
it cannot be installed they are reported as skipped with the reason, never passed."""

import ctypes
import os

import numpy as np
import pytest

from fastae import precision
from fastae.backends import gemm

from .tolerances import close, matmul_err

PROVIDERS = [
    pytest.param(name, marks=pytest.mark.skipif(gemm.unavailable(name) is not None, reason=str(gemm.unavailable(name))))
    for name in gemm.PROVIDERS
]
SHAPES = [(1, 7, 5), (3, 64, 16), (33, 100, 70), (257, 784, 129)]


def operands(m, k, n, trans_b, seed=0):
    r = np.random.default_rng(seed)
    a = r.uniform(-1, 1, (m, k)).astype(np.float32)
    b = r.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(np.float32)
    return a, b


def product64(a, b, trans_b):
    return a.astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("m, k, n", SHAPES)
@pytest.mark.parametrize("trans_b", [False, True])
def test_sgemm(name, m, k, n, trans_b):
    p = gemm.provider(name)
    a, b = operands(m, k, n, trans_b)
    out = np.full((m, n), np.nan, dtype=np.float32)
    assert p.matmul(a, b.T if trans_b else b, out) is out
    bt = b.T if trans_b else b
    close(out, product64(a, b, trans_b), "float32", err=matmul_err(a, bt, "float32"), what=f"{name} sgemm")


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("m, k, n", SHAPES)
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_bf16(name, m, k, n, trans_b):
    p = gemm.provider(name)
    a, b = operands(m, k, n, trans_b, seed=1)
    a16, b16 = precision.to_bf16(a), precision.to_bf16(b)
    out = np.full((m, n), np.nan, dtype=np.float32)
    assert p.matmul_bf16(a16, b16.T if trans_b else b16, out) is out
    # Against the exact product of the rounded operands, only the float32 sums err ...
    ar, br = precision.widen(a16), precision.widen(b16)
    brt = br.T if trans_b else br
    close(out, product64(ar, br, trans_b), "float32", err=matmul_err(ar, brt, "float32"), what=f"{name} bf16")
    # ... and against the product of the float32 operands, their rounding too (u = 2^-8 each).
    bt = b.T if trans_b else b
    u = precision.UNIT_BF16
    err = matmul_err(a, bt, "float32", err_A=u * np.abs(a), err_B=u * np.abs(bt))
    close(out, product64(a, b, trans_b), "float32", err=err, what=f"{name} bf16 against fp32 operands")


def test_bf16_is_not_fp32_in_disguise():
    """A product whose fp32 and bf16 answers differ by far more than the fp32 tolerance: every provider gives
    the bf16 one."""
    a = np.array([[1 + 2**-10]], dtype=np.float32)  # rounds to 1.0 in bfloat16
    b = np.array([[1.0]], dtype=np.float32)
    for name in gemm.PROVIDERS:
        if gemm.unavailable(name) is None:
            out = np.empty((1, 1), dtype=np.float32)
            gemm.provider(name).matmul_bf16(precision.to_bf16(a), precision.to_bf16(b), out)
            assert out[0, 0] == 1.0, name


@pytest.mark.skipif(gemm.unavailable("mkl") is not None, reason=str(gemm.unavailable("mkl")))
def test_mkl_gives_the_same_bits_on_one_thread_and_on_all():
    p = gemm.provider("mkl")
    lib = ctypes.CDLL(gemm._mkl_path())
    a, b = operands(1024, 784, 500, True, seed=2)
    a16, b16 = precision.to_bf16(a), precision.to_bf16(b)
    results = []
    try:
        for threads in (1, 2):
            lib.MKL_Set_Num_Threads(threads)
            s, h = np.empty((1024, 500), np.float32), np.empty((1024, 500), np.float32)
            results.append((p.matmul(a, b.T, s), p.matmul_bf16(a16, b16.T, h)))
    finally:
        lib.MKL_Set_Num_Threads(p.threads)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_unknown_providers_are_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"GEMM provider must be one of \['openblas', 'mkl'\], got 'cublas'"):
        gemm.provider("cublas")
    monkeypatch.setenv("FASTAE_BLAS", "atlas")
    with pytest.raises(ValueError, match=r"FASTAE_BLAS must be one of \['openblas', 'mkl'\] \(or unset\), got 'atlas'"):
        gemm.forced()
    monkeypatch.setenv("FASTAE_BLAS", "MKL")
    assert gemm.forced() == "mkl"
    monkeypatch.delenv("FASTAE_BLAS")
    assert gemm.forced() is None


def test_mkl_is_refused_with_the_reason_when_absent(monkeypatch):
    monkeypatch.setattr(gemm, "_mkl_path", lambda: None)
    monkeypatch.setattr(gemm, "_LOADED", {})
    assert "pip install 'fastae[mkl]'" in gemm.unavailable("mkl")
    with pytest.raises(ValueError, match=r"GEMM provider 'mkl' is not available here: oneMKL is not installed"):
        gemm.provider("mkl")


def test_mkl_threading_is_chosen():
    if gemm.unavailable("mkl") is not None:
        pytest.skip(gemm.unavailable("mkl"))
    p = gemm.provider("mkl")
    assert p.threading in ("gnu", "sequential") and p.cbwr_ok
    assert p.threads == (len(os.sched_getaffinity(0)) if p.threading == "gnu" else 1)


@pytest.mark.parametrize("name", PROVIDERS)
def test_transposed_first_operand(name):
    """``dW = δᵀ x``: the first operand a transposed view, as the backward pass passes it."""
    r = np.random.default_rng(3)
    delta, x = r.uniform(-1, 1, (37, 12)).astype(np.float32), r.uniform(-1, 1, (37, 20)).astype(np.float32)
    out = np.empty((12, 20), np.float32)
    gemm.provider(name).matmul(delta.T, x, out)
    close(out, delta.T.astype(np.float64) @ x, "float32", err=matmul_err(delta.T, x, "float32"), what=name)


# --- the Numba backend's large products go to the large-product provider ----------------------------------------
class Spy:
    """A provider that counts its calls and delegates to a real one."""

    def __init__(self, real):
        self.real, self.calls, self.name = real, 0, real.name

    def matmul(self, a, b, out):
        self.calls += 1
        return self.real.matmul(a, b, out)


@pytest.mark.parametrize("name", PROVIDERS)
def test_numba_backend_sends_large_float32_products_to_the_provider(name, monkeypatch):
    from fastae.backends import numpy_ref as ref
    from fastae.backends import registry

    from .tolerances import dense_backward_err, dense_forward_err

    B = registry.get_backend("numba", "float32")
    spy = Spy(gemm.provider(name))
    monkeypatch.setattr(gemm, "_CHOSEN", [spy])
    r = np.random.default_rng(4)
    x = r.uniform(0, 1, (64, 784)).astype(np.float32)  # 64 x 784 x 256: 12.8M multiply-adds
    W = r.uniform(-0.1, 0.1, (256, 784)).astype(np.float32)
    b = r.uniform(-0.1, 0.1, 256).astype(np.float32)
    h = B.dense_forward(x, W, b, "sigmoid")
    assert spy.calls == 1
    x64, W64, b64 = (a.astype(np.float64) for a in (x, W, b))
    close(h, ref.dense_forward(x64, W64, b64, "sigmoid"), "float32", err=dense_forward_err(x64, W64, b64, "float32"))
    delta = r.uniform(-1, 1, (64, 256)).astype(np.float32)
    dW, db, dx = B.dense_backward(delta, x, W)
    assert spy.calls == 3  # dW and dx; the column sum is no product
    want = ref.dense_backward(delta.astype(np.float64), x64, W64)
    errs = dense_backward_err(delta.astype(np.float64), x64, W64, "float32")
    for got, w, e, what in zip((dW, db, dx), want, errs, ("dW", "db", "dx")):
        close(got, w, "float32", err=e, what=what)
    small = B.dense_forward(x[:2], W[:16], b[:16], "sigmoid")  # 25k multiply-adds: NumPy's BLAS
    assert spy.calls == 3 and small.shape == (2, 16)
    B.dense_forward(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64), "sigmoid")
    assert spy.calls == 3  # float64 stays with NumPy's BLAS


@pytest.mark.parametrize("name", PROVIDERS)
def test_eight_threads_encoding_at_once_agree_with_serial(name, monkeypatch):
    """Products large enough for the provider, from 8 Python threads at once (MKL's own threads inside each):
    every result has the bits of the serial one."""
    import threading

    import fastae

    monkeypatch.setattr(gemm, "_CHOSEN", [gemm.provider(name)])
    r = np.random.default_rng(5)
    X = r.uniform(0, 1, (96, 784)).astype(np.float32)  # 96 x 784 x 256 and 96 x 256 x 784: 19M each
    m = fastae.Autoencoder(hidden=(256,), epochs=1, backend="numba", random_state=0).fit(X)
    serial_codes, serial_rec = m.encode(X), m.reconstruct(X)
    results, errors = [None] * 8, []

    def work(i):
        try:
            results[i] = [(m.encode(X), m.reconstruct(X)) for _ in range(5)]
        except Exception as exc:  # reported below: a failed thread must fail the test
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors
    for per_thread in results:
        for codes, rec in per_thread:
            np.testing.assert_array_equal(codes, serial_codes)
            np.testing.assert_array_equal(rec, serial_rec)
