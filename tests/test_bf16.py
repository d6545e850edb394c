"""precision="bfloat16" (fastae/backends/*.dense_forward_bf16, the models' inference): every backend's bfloat16
layer against the float64 product of the rounded operands, within the tolerance model (u = 2^-8 on each operand
against the float32 operands); the models' codes within that bound of their float32 codes; the combinations that
cannot run are refused by name."""

import numpy as np
import pytest

import fastae
from fastae import activations, precision, training
from fastae.backends import gemm, registry
from fastae.backends import numpy_ref as ref

from .tolerances import close, dense_backward_err, dense_forward_err, matmul_err, output_err

BACKENDS = registry.available_backends()
U = precision.UNIT_BF16


def layer(n, k, m, seed=0):
    r = np.random.default_rng(seed)
    x = r.uniform(0, 1, (n, k)).astype(np.float32)
    W = r.uniform(-0.2, 0.2, (m, k)).astype(np.float32)
    b = r.uniform(-0.2, 0.2, m).astype(np.float32)
    return x, W, b


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n, k, m", [(1, 9, 5), (7, 33, 17), (64, 784, 256)])  # the last: MKL's bf16 GEMM
@pytest.mark.parametrize("activation", activations.ACTIVATIONS)
@pytest.mark.parametrize("transpose", [False, True])
def test_dense_forward_bf16(backend, n, k, m, activation, transpose):
    B = registry.get_backend(backend, "float32")
    x, W, b = layer(n, k, m)
    if transpose:
        W = np.ascontiguousarray(W.T)
    ok, x16 = B.bf16_input(x, True)
    Wb = B.bf16_weight(W)
    W16 = Wb.bits
    assert ok and x16.dtype == np.uint16
    np.testing.assert_array_equal(x16, precision.to_bf16(x))
    np.testing.assert_array_equal(W16, precision.to_bf16(W))
    np.testing.assert_array_equal(B.to_bf16(W), W16)
    h = B.dense_forward_bf16(x16, Wb, b, activation, transpose)
    # exact math of the rounded operands, in float64; only the float32 sums and the epilogue err
    xr, Wr = (precision.widen(a).astype(np.float64) for a in (x16, W16))
    want = ref.dense_forward(xr, Wr, b.astype(np.float64), activation, transpose)
    err = dense_forward_err(xr, Wr, b.astype(np.float64), "float32", transpose)
    close(h, want, "float32", err=err, what=f"{backend} bf16 layer")
    # against the float32 operands: their rounding at u = 2^-8 each on top
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    want32 = ref.dense_forward(x64, W64, b.astype(np.float64), activation, transpose)
    Wt = W64 if transpose else W64.T
    err32 = dense_forward_err(x64, W64, b.astype(np.float64), "float32", transpose) + 2 * U * (np.abs(x64) @ np.abs(Wt))
    close(h, want32, "float32", err=err32, what=f"{backend} bf16 layer against float32 operands")
    # the bfloat16 output for a next layer: h's patterns, within one bfloat16 rounding of the float32 h
    h16 = B.dense_forward_bf16(x16, Wb, b, activation, transpose, bf16_out=True)
    assert h16.dtype == np.uint16
    close(precision.widen(h16), want, "float32", err=err + U * np.abs(want), what=f"{backend} bf16 output")
    # training's form: the float32 output and its patterns from one epilogue, the same numbers as above
    h2, h16_2 = B.dense_forward_bf16_pair(x16, Wb, b, activation, transpose)
    np.testing.assert_array_equal(h2, h)
    np.testing.assert_array_equal(h16_2, h16)
    np.testing.assert_array_equal(h16_2, precision.to_bf16(h2))
    np.testing.assert_array_equal(Wb.values, precision.widen(W16))  # widened on demand, exactly


@pytest.mark.parametrize("backend", BACKENDS)
def test_bf16_input_flags_bad_values_as_the_scan_does(backend):
    B = registry.get_backend(backend, "float32")
    x = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)
    assert B.bf16_input(x, True)[0]
    for bad, unit in ((np.nan, False), (np.inf, False), (1.5, True), (-0.5, True)):
        y = x.copy()
        y[1, 0] = bad
        ok, y16 = B.bf16_input(y, unit)
        assert not ok
        np.testing.assert_array_equal(y16, precision.to_bf16(y))


def test_bf16_is_computed_not_float32_in_disguise():
    """Inputs chosen so that bf16 and fp32 codes differ by far more than fp32 rounding: bf16 gives bf16's."""
    x = np.full((2, 4), 1 + 2**-10, dtype=np.float32)  # rounds to 1.0 in bfloat16
    m = fastae.Autoencoder(hidden=(2,), activation="linear", code_activation="linear", loss="mse", epochs=0)
    m.fit(x)
    state = m.state_dict()
    m.load_state_dict({**state, "encoder.0.weight": np.ones((2, 4), np.float32)})
    b = state["encoder.0.bias"]
    np.testing.assert_allclose(m.encode(x), np.broadcast_to((1 + 2**-10) * 4 + b, (2, 2)), rtol=1e-6)
    m.set_params(precision="bfloat16")
    np.testing.assert_array_equal(m.encode(x), np.broadcast_to(np.float32(4.0) + b, (2, 2)))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return (load_digits().data / 16.0).astype(np.float32)


@pytest.mark.parametrize("cls", [fastae.Autoencoder, fastae.VAE])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_models_encode_decode_reconstruct_in_bf16(cls, backend, digits, tmp_path):
    m = cls(hidden=(48, 24), epochs=2, backend=backend, random_state=0).fit(digits)
    codes32 = m.encode(digits)
    m.set_params(precision="bfloat16")
    codes = m.encode(digits)
    assert codes.dtype == np.float32 and codes.shape == codes32.shape
    # the bf16 codes are other numbers, close to the float32 ones (largest error over the largest code)
    assert 0 < np.abs(codes - codes32).max() / np.abs(codes32).max() < 2e-2
    np.testing.assert_array_equal(m.transform(digits), codes)
    np.testing.assert_array_equal(m.encode(digits[:1]), codes[:1])  # one row: the same rounding
    rec = m.reconstruct(digits)
    np.testing.assert_array_equal(m.decode(codes), rec)
    out = np.empty_like(codes)
    assert m.encode(digits, out=out) is out
    np.testing.assert_array_equal(out, codes)
    # saved with the model, and the loaded model encodes the same bits
    m.save(tmp_path / "m.safetensors")
    loaded = fastae.load(tmp_path / "m.safetensors")
    assert loaded.precision == "bfloat16"
    np.testing.assert_array_equal(loaded.encode(digits), codes)
    m.set_params(precision="float32")
    np.testing.assert_array_equal(m.encode(digits), codes32)


def test_bf16_weights_follow_the_weights(digits):
    m = fastae.Autoencoder(hidden=(16,), epochs=1, random_state=0).fit(digits)
    m.set_params(precision="bfloat16")
    before = m.encode(digits)
    m.set_params(precision="float32").partial_fit(digits)
    m.set_params(precision="bfloat16")
    assert not np.array_equal(m.encode(digits), before)  # new weights, new bf16 copies


def test_impossible_combinations_are_refused(digits):
    with pytest.raises(ValueError, match=r"precision='bfloat16' needs dtype='float32'.*got dtype='float64'"):
        fastae.Autoencoder(dtype="float64", precision="bfloat16").fit(digits)
    with pytest.raises(ValueError, match=r"precision must be one of \['float32', 'bfloat16', 'tf32'\], got 'fp16'"):
        fastae.Autoencoder(precision="fp16").fit(digits)
    m = fastae.Autoencoder(hidden=(8,), epochs=1, dtype="float64", random_state=0).fit(digits)
    with pytest.raises(ValueError, match=r"precision='bfloat16' needs dtype='float32'"):
        m.set_params(precision="bfloat16").encode(digits)


@pytest.mark.parametrize("backend", ["auto", "numba", "numpy"])
def test_tf32_is_refused_on_the_cpu(digits, backend):
    with pytest.raises(ValueError, match=r"precision='tf32' is a GPU precision .* needs backend='cupy'"):
        fastae.Autoencoder(hidden=(8,), epochs=1, precision="tf32", backend=backend).fit(digits)
    with pytest.raises(ValueError, match=r"precision='tf32' needs dtype='float32'"):
        fastae.VAE(latent=2, epochs=1, precision="tf32", dtype="float64").fit(digits)
    m = fastae.Autoencoder(hidden=(8,), epochs=1, random_state=0, backend=backend).fit(digits)
    with pytest.raises(ValueError, match=r"precision='tf32' is a GPU precision"):
        m.set_params(precision="tf32").encode(digits)


def test_describe_says_whether_bf16_runs_on_units():
    info = gemm.describe()
    assert isinstance(info["bf16_units"], bool)
    assert info["bf16_units"] == gemm._cpu_has_bf16()


def test_bf16_inference_in_chunks_is_the_same_computation(digits, monkeypatch):
    from fastae.models import base

    m = fastae.Autoencoder(hidden=(32,), epochs=1, random_state=0).fit(digits)
    m.set_params(precision="bfloat16")
    whole = m.encode(digits)
    monkeypatch.setattr(base, "BF16_CHUNK", 100)
    parts = m.encode(digits)
    out = np.empty_like(whole)
    assert m.encode(digits, out=out) is out
    # the same operands and sums; only how BLAS splits rows can differ: two float32 sums of the same terms, each
    # within the bound of the tolerance model, through a sigmoid (slope at most 1/4)
    sd = m.state_dict()
    xr, Wr = precision.round_bf16(digits).astype(np.float64), precision.round_bf16(sd["encoder.0.weight"])
    err = 2 * 0.25 * matmul_err(xr, Wr.T.astype(np.float64), "float32", bias=sd["encoder.0.bias"])
    close(parts, whole.astype(np.float64), "float32", err=err, what="chunked bf16 codes")
    np.testing.assert_array_equal(out, parts)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n, k, m", [(7, 33, 17), (64, 784, 256)])
@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("transpose", [False, True])
def test_output_ops_bf16(backend, n, k, m, loss, transpose):
    """The output layer with a bfloat16 product: loss, ``delta`` and row losses against the float64 ops on the
    rounded operands."""
    B = registry.get_backend(backend, "float32")
    h, W, c = layer(n, k, m, seed=1)  # h: the layer input (n, k); W: (m, k); c: (m,)
    x = np.random.default_rng(2).uniform(0, 1, (n, m)).astype(np.float32)
    if transpose:
        W = np.ascontiguousarray(W.T)
    h16, Wb = B.to_bf16(h), B.bf16_weight(W)
    hr, Wr = precision.widen(h16).astype(np.float64), Wb.values.astype(np.float64)
    c64, x64 = c.astype(np.float64), x.astype(np.float64)
    e_loss, e_delta, e_rows = output_err(hr, Wr, c64, x64, loss, "float32", transpose)
    value, delta, d16 = B.output_loss_grad_bf16(h16, Wb, c, x, loss, transpose)
    np.testing.assert_array_equal(d16, precision.to_bf16(delta))
    want_value, want_delta = ref.output_loss_grad(hr, Wr, c64, x64, loss, transpose)
    close(value, want_value, "float32", err=e_loss, what=f"{backend} loss")
    close(delta, want_delta, "float32", err=e_delta, what=f"{backend} delta")
    rows = B.output_row_loss_bf16(h16, Wb, c, x, loss, transpose)
    close(rows, ref.output_row_loss(hr, Wr, c64, x64, loss, transpose), "float32", err=e_rows, what=f"{backend} rows")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n, k, m", [(7, 33, 17), (64, 784, 256)])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("need_dx", [False, True])
def test_dense_backward_bf16(backend, n, k, m, transpose, need_dx):
    """``dW`` and ``dx`` with ``delta`` rounded to bfloat16 for their products; ``db`` from the float32 ``delta``."""
    B = registry.get_backend(backend, "float32")
    x, W, _ = layer(n, k, m, seed=3)
    if transpose:
        W = np.ascontiguousarray(W.T)
    delta = np.random.default_rng(4).uniform(-1, 1, (n, m)).astype(np.float32)
    x16, Wb = B.to_bf16(x), B.bf16_weight(W)
    dW, db, dx = B.dense_backward_bf16(delta, B.to_bf16(delta), x16, Wb, transpose, need_dx)
    dr = precision.round_bf16(delta).astype(np.float64)
    xr, Wr = precision.widen(x16).astype(np.float64), Wb.values.astype(np.float64)
    want = ref.dense_backward(dr, xr, Wr, transpose, need_dx)
    errs = dense_backward_err(dr, xr, Wr, "float32", transpose)
    close(dW, want[0], "float32", err=errs[0], what=f"{backend} dW")
    d64 = delta.astype(np.float64)
    close(db, d64.sum(axis=0), "float32", err=dense_backward_err(d64, xr, Wr, "float32", transpose)[1], what="db")
    if need_dx:
        close(dx, want[2], "float32", err=errs[2], what=f"{backend} dx")
    else:
        assert dx is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", activations.ACTIVATIONS)
def test_activation_backward_bf16(backend, activation):
    """The same ``delta`` as the float32 op, bit for bit, and its bfloat16 patterns."""
    B = registry.get_backend(backend, "float32")
    r = np.random.default_rng(5)
    h = activations.apply(activation, r.uniform(-2, 2, (9, 37)).astype(np.float32))
    dh = r.uniform(-1, 1, (9, 37)).astype(np.float32)
    want = B.activation_backward(dh.copy(), h, activation)
    delta, d16 = B.activation_backward_bf16(dh.copy(), h, activation)
    np.testing.assert_array_equal(delta, want)
    np.testing.assert_array_equal(d16, precision.to_bf16(want))


UPDATES = {
    "sgd": lambda B, p, g, st, out, o16: (
        B.sgd_update(p, g, out, 0.1) if o16 is None else B.sgd_update_bf16(p, g, out, o16, 0.1)
    ),
    "momentum": lambda B, p, g, st, out, o16: (
        B.momentum_update(p, g, st[0], out, 0.1, 0.9, True)
        if o16 is None
        else B.momentum_update_bf16(p, g, st[0], out, o16, 0.1, 0.9, True)
    ),
    "adam": lambda B, p, g, st, out, o16: (
        B.adam_update(p, g, st[0], st[1], out, 0.01, 0.9, 0.999, 1e-8, 3)
        if o16 is None
        else B.adam_update_bf16(p, g, st[0], st[1], out, o16, 0.01, 0.9, 0.999, 1e-8, 3)
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", sorted(UPDATES))
@pytest.mark.parametrize("shape", [(3, 5), (300, 200)])  # the second: several blocks, and the pool's parallel kernel
def test_optimiser_updates_write_the_bf16_copy(backend, method, shape):
    """The ``_bf16`` updates compute the float32 update bit for bit (new values and state) and write the new
    values' bfloat16 patterns; a non-finite update is still reported."""
    B = registry.get_backend(backend, "float32")
    r = np.random.default_rng(6)
    p, g = (r.uniform(-1, 1, shape).astype(np.float32) for _ in range(2))
    state = [r.uniform(0, 0.1, shape).astype(np.float32) for _ in range(2)]
    results = []
    for o16 in (None, np.full(shape, 0xFFFF, dtype=np.uint16)):
        st, gg = [s.copy() for s in state], g.copy()
        ok = UPDATES[method](B, p, gg, st, gg, o16)
        results.append((ok, gg, st, o16))
    (ok32, new32, st32, _), (ok16, new16, st16, o16) = results
    assert ok32 and ok16
    np.testing.assert_array_equal(new16, new32)
    for a, b in zip(st16, st32):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(o16, precision.to_bf16(new32))
    bad = g.copy()
    bad[-1, -1] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        assert not UPDATES[method](B, p, bad, [s.copy() for s in state], bad, np.empty(shape, np.uint16))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "cls, kw",
    [
        (fastae.Autoencoder, dict(hidden=(24, 8), tied=False, optimizer="adam")),
        (fastae.Autoencoder, dict(hidden=(24, 8), tied=True, optimizer="momentum")),
        (fastae.Autoencoder, dict(hidden=(24,), tied=False, optimizer="sgd")),
        (fastae.VAE, dict(hidden=(24,), latent=4, optimizer="adam")),
    ],
)
def test_training_keeps_the_bf16_copies_its_updates_wrote(backend, cls, kw, digits, monkeypatch):
    """After bfloat16 training the model's bf16 weight copies are those the last update wrote: the patterns of
    the published weights, for the version published, with no weight rounded again by a step; encoding then gives
    what a freshly loaded model gives."""
    kw = dict(kw, backend=backend, epochs=1, batch_size=128, random_state=0)
    m = cls(**kw, precision="bfloat16").fit(digits)
    B = m._B
    made = []
    real = B.bf16_weight
    monkeypatch.setattr(B, "bf16_weight", lambda W, bits=None: made.append(bits is None) or real(W, bits))
    m.partial_fit(digits)  # an epoch: every step takes the copies the step before wrote
    monkeypatch.undo()
    assert made and not any(made), "a step rounded a weight itself instead of taking the update's copy"
    version, w16 = m._w16_cache
    assert version == m._version
    P = m._params
    assert sorted(w16) == sorted(k for k in P if P[k].ndim == 2)
    for k, (W, wb) in w16.items():
        assert W is P[k]
        np.testing.assert_array_equal(wb.bits, precision.to_bf16(W))
    fresh = cls(**kw).fit(digits).load_state_dict(m.state_dict())
    np.testing.assert_array_equal(m.encode(digits), fresh.set_params(precision="bfloat16").encode(digits))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_training_input_is_rounded_by_the_pass_that_checks_it(backend, early_stopping, digits, monkeypatch):
    """A C-contiguous float32 input is rounded to bfloat16 by the input check's own pass, once per fit or
    partial_fit, and the steps take its rows (no batch is rounded again); the weights are the bits of a fit whose
    input took another path through the check (a Fortran-ordered copy: each batch rounded on its own)."""
    X = np.ascontiguousarray(digits, dtype=np.float32)
    kw = dict(hidden=(24, 8), tied=False, backend=backend, epochs=2, batch_size=128, random_state=0)
    kw.update(early_stopping=early_stopping, patience=5)
    B = registry.get_backend(backend, "float32")
    rounded = []
    real = B.to_bf16
    monkeypatch.setattr(B, "to_bf16", lambda x: rounded.append(x.shape) or real(x))
    m = fastae.Autoencoder(**kw, precision="bfloat16").fit(X)
    m.partial_fit(X)
    weights = {v.shape for v in m.state_dict().values()}  # rounded once, before the first update writes them
    n_val = training.check_validation_split(len(X), m.validation_fraction) if early_stopping else -1

    def batches():  # the validation rows are scored, and rounded, once an epoch: not batches
        return [s for s in rounded if s[1] == X.shape[1] and s not in weights and s[0] != n_val]

    assert not batches(), "a batch of the input was rounded again"
    rounded.clear()
    other = fastae.Autoencoder(**kw, precision="bfloat16").fit(np.asfortranarray(X))
    other.partial_fit(np.asfortranarray(X))
    assert batches(), "the Fortran-ordered input was never rounded"
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, other.state_dict()[k])


def test_a_large_or_noisy_training_input_is_rounded_batch_by_batch(digits, monkeypatch):
    """Above ``BF16_INPUT_MAX_BYTES`` (made tiny here), or with input noise, the check makes no patterns of the
    whole input; the fit is the same bits all the same."""
    from fastae.models import base

    X = np.ascontiguousarray(digits, dtype=np.float32)
    kw = dict(hidden=(16,), tied=False, epochs=1, batch_size=256, random_state=0, precision="bfloat16")
    want = fastae.Autoencoder(**kw).fit(X).state_dict()
    noisy = fastae.Autoencoder(**kw, noise=("mask", 0.1))
    assert noisy._bf16_scan(registry.get_backend("numba", "float32"))[0] is None
    model = fastae.Autoencoder(**kw)
    monkeypatch.setattr(base, "BF16_INPUT_MAX_BYTES", 1)
    scan, patterns = model._bf16_scan(registry.get_backend("numba", "float32"))
    assert scan(X, True) and patterns(X) is None
    got = model.fit(X).state_dict()
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v)


def test_switching_precision_in_on_divergence_keeps_training(digits):
    """The input's patterns were made for bfloat16 training; a callback that switches to float32 mid-epoch gets
    float32 steps for the rest of it, not an error."""
    calls = []

    def to_float32(model, info):
        calls.append(info["batch"])
        model.set_params(precision="float32", learning_rate=1e-3)
        return True

    kw = dict(hidden=(8, 4), tied=False, optimizer="sgd", learning_rate=1e3, epochs=1, batch_size=64, random_state=0)
    m = fastae.Autoencoder(**kw, precision="bfloat16").fit(digits.astype(np.float32), on_divergence=to_float32)
    assert calls and m.precision == "float32" and np.isfinite(m.history_["loss"]).all()


def test_optimiser_kernels_leave_o16_alone_for_float64_and_refuse_a_bad_one():
    """``store_bf16`` is a no-op for a float64 parameter (whose models have no bf16 copies); a backend refuses an
    ``out16`` it could not write through."""
    from fastae.kernels.cpu import optim

    p, g = np.ones(40000), np.full(40000, 0.5)
    o16 = np.full(40000, 7, np.uint16)
    for kernel in (optim.sgd, optim.sgd_par):
        gg = g.copy()
        assert kernel(p, gg, 0.1, o16)
        np.testing.assert_array_equal(gg, 0.95)
        np.testing.assert_array_equal(o16, 7)
    B = registry.get_backend("numba", "float32")
    p32, g32 = np.ones((4, 5), np.float32), np.ones((4, 5), np.float32)
    for bad in (np.empty((4, 4), np.uint16), np.empty((5, 4), np.uint16).T, np.empty((4, 5), np.int16)):
        with pytest.raises(ValueError, match="out16 must be a C-contiguous uint16 array"):
            B.sgd_update_bf16(p32, g32.copy(), g32.copy(), bad, 0.1)


@pytest.mark.parametrize("cls, kw", [(fastae.Autoencoder, dict(hidden=(64, 16))), (fastae.VAE, dict(hidden=(64,)))])
def test_bf16_training_reaches_the_float32_held_out_error(cls, kw, digits):
    """The issue's bar: trained in bfloat16, the held-out error is within 3% of float32's; the weights are other
    numbers (the fused float32 step is not used)."""
    r = np.random.default_rng(0).permutation(len(digits))
    train, test = digits[r[:1400]], digits[r[1400:]]
    scores, weights = {}, {}
    for prec in ("float32", "bfloat16"):
        m = cls(**kw, epochs=20, random_state=0, precision=prec).fit(train)
        scores[prec] = float(np.mean(m.set_params(precision="float32").score_samples(test)))
        weights[prec] = m.state_dict()["encoder.0.weight"]
    assert abs(scores["bfloat16"] - scores["float32"]) <= 0.03 * abs(scores["float32"]), scores
    assert not np.array_equal(weights["bfloat16"], weights["float32"])


def test_bf16_variants_train_and_the_contractive_penalty_is_refused(digits):
    for kw in (
        dict(hidden=(16,)),  # one hidden layer: no fused float32 step in bfloat16
        dict(hidden=(24, 8), pretrain="layerwise", pretrain_epochs=1),
        dict(hidden=(16,), noise=("mask", 0.2), sparsity=("kl", 0.1, 0.1), weight_decay=1e-4, tied=False),
    ):
        m = fastae.Autoencoder(**kw, epochs=2, random_state=0, precision="bfloat16").fit(digits)
        assert np.isfinite(m.history_["loss"]).all() and np.isfinite(m.score_samples(digits)).all()
        m.partial_fit(digits[:100])
    v = fastae.VAE(hidden=(16,), latent=4, epochs=2, random_state=0, precision="bfloat16").fit(digits)
    assert np.isfinite(v.elbo(digits)).all() and v.encode(digits, sample=True).shape == (len(digits), 4)
    with pytest.raises(ValueError, match=r"the contractive penalty has no bfloat16 form"):
        fastae.Autoencoder(hidden=(8,), contractive=0.1, epochs=1, precision="bfloat16").fit(digits)


def test_bf16_copies_follow_updates_that_reuse_their_arrays(digits):
    """The fused float32 step rotates three buffers, so after three updates the weights are the same arrays with
    new values: the bf16 copies must follow the values (the model's version), not the arrays."""
    kw = dict(hidden=(8,), backend="numba", epochs=1, batch_size=64, random_state=0)
    m = fastae.Autoencoder(**kw, precision="bfloat16").fit(digits)
    m.encode(digits)
    m.set_params(precision="float32")
    for _ in range(3):
        m.partial_fit(digits)
    m.set_params(precision="bfloat16")
    fresh = fastae.Autoencoder(**kw).fit(digits).load_state_dict(m.state_dict()).set_params(precision="bfloat16")
    np.testing.assert_array_equal(m.encode(digits), fresh.encode(digits))


def test_refused_bf16_training_changes_nothing(digits):
    m = fastae.Autoencoder(hidden=(8,), contractive=0.1, epochs=1, random_state=0).fit(digits)
    before, t = m.state_dict(), m.t_
    with pytest.raises(ValueError, match=r"the contractive penalty has no bfloat16 form"):
        m.set_params(precision="bfloat16").fit(digits)
    assert m.t_ == t
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_a_model_pickled_before_precision_existed_still_runs(digits):
    import pickle

    m = fastae.Autoencoder(hidden=(8,), epochs=1, random_state=0).fit(digits)
    state = m.__getstate__()
    del state["precision"]
    old = fastae.Autoencoder.__new__(fastae.Autoencoder)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    np.testing.assert_array_equal(old.encode(digits), m.encode(digits))
