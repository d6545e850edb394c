"""Autoencoder behaviour: training lowers the loss for every variant, deep pretraining beats PCA, determinism,
persistence and the shape of its outputs."""

import numpy as np
import pytest

import fastae

VARIANTS = {
    "plain_tied": dict(hidden=(16,)),
    "untied_mse_relu": dict(hidden=(16,), tied=False, loss="mse", activation="relu"),
    "deep": dict(hidden=(32, 16, 8), code_activation="linear"),
    "denoising_mask": dict(hidden=(16,), noise=("mask", 0.25)),
    "denoising_gaussian": dict(hidden=(16,), noise=("gaussian", 0.1)),
    "sparse_l1": dict(hidden=(16,), sparsity=("l1", 1e-3)),
    "sparse_kl": dict(hidden=(16,), sparsity=("kl", 0.1, 0.1)),
    "contractive": dict(hidden=(16,), contractive=0.05, activation="tanh"),
    "weight_decay_momentum": dict(hidden=(16,), weight_decay=1e-4, optimizer="momentum", learning_rate=0.05),
    "nesterov": dict(hidden=(16,), optimizer="nesterov", learning_rate=0.05),
    "sgd": dict(hidden=(16,), optimizer="sgd", learning_rate=0.5),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_training_lowers_loss_on_digits(name, digits_split):
    Xtr, Xte = digits_split
    kw = dict(epochs=8, batch_size=64, learning_rate=3e-3, random_state=0)
    kw.update(VARIANTS[name])
    m = fastae.Autoencoder(**kw)
    before = m.partial_fit(Xtr[:1]).score_samples(Xte).mean()  # one step on one row: essentially untrained
    m.fit(Xtr)
    loss = m.history_["loss"]
    assert len(loss) == 8 and loss[-1] < 0.8 * loss[0], loss
    assert m.score_samples(Xte).mean() < 0.8 * before


def test_deep_pretrained_beats_pca_on_held_out_digits(digits_split):
    """The issue's quality bar: greedy layer-wise pretraining + fine-tuning beats PCA at the same code size on
    held-out digits, by Hinton & Salakhutdinov's metric (squared error summed over pixels, mean over images)."""
    from sklearn.decomposition import PCA

    Xtr, Xte = digits_split
    m = fastae.Autoencoder(
        hidden=(128, 64, 8),
        code_activation="linear",
        pretrain="layerwise",
        pretrain_epochs=20,
        epochs=60,
        learning_rate=3e-3,
        batch_size=32,
        random_state=0,
    ).fit(Xtr)
    ae_err = ((m.reconstruct(Xte) - Xte) ** 2).sum(axis=1).mean()
    pca = PCA(8).fit(Xtr)
    pca_err = ((pca.inverse_transform(pca.transform(Xte)) - Xte) ** 2).sum(axis=1).mean()
    print(f"held-out digits, code size 8: deep autoencoder {ae_err:.3f}, PCA {pca_err:.3f}")
    assert ae_err < pca_err
    assert len(m.history_["pretrain_loss"]) == 3
    for layer_losses in m.history_["pretrain_loss"]:
        assert len(layer_losses) == 20 and layer_losses[-1] < layer_losses[0]


def test_pretraining_sets_every_layer(digits_split):
    """After pretraining alone (epochs=0) each encoder layer holds its shallow autoencoder's weights and the
    untied decoder starts from their transposes."""
    Xtr, _ = digits_split
    m = fastae.Autoencoder(
        hidden=(12, 6), tied=False, pretrain="layerwise", pretrain_epochs=2, epochs=0, random_state=1
    ).fit(Xtr)
    sd = m.state_dict()
    fresh = fastae.Autoencoder(hidden=(12, 6), tied=False, epochs=0, random_state=1).fit(Xtr).state_dict()
    for i, j in ((0, 1), (1, 0)):
        assert not np.array_equal(sd[f"encoder.{i}.weight"], fresh[f"encoder.{i}.weight"])
        np.testing.assert_array_equal(sd[f"decoder.{j}.weight"], sd[f"encoder.{i}.weight"].T)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_weights(dtype, digits_split):
    Xtr, _ = digits_split
    kw = dict(
        hidden=(16, 8),
        noise=("mask", 0.2),
        pretrain="layerwise",
        pretrain_epochs=1,
        epochs=2,
        dtype=dtype,
        random_state=42,
    )
    a = fastae.Autoencoder(**kw).fit(Xtr).state_dict()
    b = fastae.Autoencoder(**kw).fit(Xtr).state_dict()
    c = fastae.Autoencoder(**{**kw, "random_state": 43}).fit(Xtr).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["encoder.0.weight"], c["encoder.0.weight"])


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_is_bit_exact(tmp_path, tied, dtype, digits_split):
    Xtr, Xte = digits_split
    m = fastae.Autoencoder(hidden=(16, 8), tied=tied, dtype=dtype, epochs=2, random_state=0).fit(Xtr)
    path = tmp_path / "model.safetensors"
    m.save(path)
    m2 = fastae.load(path)
    assert type(m2) is fastae.Autoencoder and m2.get_params() == m.get_params()
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(m2.state_dict()[k], v)
        assert m2.state_dict()[k].dtype == v.dtype
    np.testing.assert_array_equal(m2.encode(Xte), m.encode(Xte))
    np.testing.assert_array_equal(m2.reconstruct(Xte), m.reconstruct(Xte))
    assert m2.history_ == m.history_ and m2.n_features_in_ == 64


def test_resume_from_file_continues_bit_exactly(tmp_path, digits_split):
    """fit(2 epochs) == fit(1 epoch) -> save -> load -> partial_fit: weights, Adam state, step and epoch counters
    (which address the shuffles and noise) all travel in the file."""
    Xtr, _ = digits_split
    kw = dict(hidden=(16,), noise=("mask", 0.1), random_state=9, batch_size=100)
    whole = fastae.Autoencoder(epochs=2, **kw).fit(Xtr)
    half = fastae.Autoencoder(epochs=1, **kw).fit(Xtr)
    half.save(tmp_path / "half.safetensors")
    resumed = fastae.load(tmp_path / "half.safetensors").partial_fit(Xtr)
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)


def test_partial_fit_in_order_without_shuffle(digits_split):
    """partial_fit with shuffle=False visits the rows in order: one call on X equals calls on its batches."""
    Xtr, _ = digits_split
    X = Xtr[:300]
    kw = dict(hidden=(8,), shuffle=False, batch_size=100, random_state=0)
    one = fastae.Autoencoder(**kw).partial_fit(X)
    three = fastae.Autoencoder(**kw)
    for s in range(0, 300, 100):
        three.partial_fit(X[s : s + 100])
    for k, v in one.state_dict().items():
        np.testing.assert_array_equal(three.state_dict()[k], v)
    assert one.t_ == 3 and len(one.history_["loss"]) == 1


def test_state_dict_names_and_shapes():
    X = np.random.default_rng(0).uniform(size=(10, 7))
    tied = fastae.Autoencoder(hidden=(5, 3), epochs=0, random_state=0).fit(X).state_dict()
    assert {k: v.shape for k, v in tied.items()} == {
        "encoder.0.weight": (5, 7),
        "encoder.0.bias": (5,),
        "encoder.1.weight": (3, 5),
        "encoder.1.bias": (3,),
        "decoder.0.bias": (5,),
        "decoder.1.bias": (7,),
    }
    untied = fastae.Autoencoder(hidden=(5, 3), tied=False, epochs=0, random_state=0).fit(X).state_dict()
    assert untied["decoder.0.weight"].shape == (5, 3) and untied["decoder.1.weight"].shape == (7, 5)
    assert all(v.flags.c_contiguous for v in untied.values())


def test_load_state_dict_round_trip_and_shape_errors():
    X = np.random.default_rng(0).uniform(size=(10, 7))
    a = fastae.Autoencoder(hidden=(5,), epochs=1, random_state=0).fit(X)
    b = fastae.Autoencoder(hidden=(5,), epochs=0, random_state=1).fit(X)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.encode(X), a.encode(X))
    bad = a.state_dict()
    bad["encoder.0.weight"] = bad["encoder.0.weight"][:, :6]
    with pytest.raises(ValueError, match=r"encoder\.0\.weight.*shape \(5, 6\), expected \(5, 7\)"):
        b.load_state_dict(bad)
    with pytest.raises(ValueError, match=r"missing \['decoder\.0\.bias'\]"):
        b.load_state_dict({k: v for k, v in a.state_dict().items() if k != "decoder.0.bias"})
    with pytest.raises(ValueError, match="dtype float64, expected float32"):
        b.load_state_dict({k: v.astype(np.float64) for k, v in a.state_dict().items()})


def test_outputs_shapes_dtypes_and_aliases(digits_split):
    Xtr, Xte = digits_split
    m = fastae.Autoencoder(hidden=(16, 4), epochs=1, random_state=0).fit(Xtr)
    H = m.encode(Xte)
    assert H.shape == (360, 4) and H.dtype == np.float32
    np.testing.assert_array_equal(m.transform(Xte), H)
    R = m.decode(H)
    assert R.shape == (360, 64) and R.dtype == np.float32 and R.min() >= 0 and R.max() <= 1
    np.testing.assert_array_equal(m.inverse_transform(H), R)
    np.testing.assert_array_equal(m.reconstruct(Xte), R)
    s = m.score_samples(Xte)
    assert s.shape == (360,) and np.all(s > 0)
    assert m.score(Xte) == pytest.approx(-s.mean())
    assert list(m.get_feature_names_out()) == ["autoencoder0", "autoencoder1", "autoencoder2", "autoencoder3"]


def test_score_samples_flags_anomalies(digits_split):
    """Reconstruction error as an anomaly score: every noise image scores worse than 95% of held-out digits."""
    Xtr, Xte = digits_split
    m = fastae.Autoencoder(hidden=(16,), epochs=15, learning_rate=3e-3, random_state=0).fit(Xtr)
    noise = np.random.default_rng(1).uniform(size=(50, 64))
    assert m.score_samples(noise).min() > np.quantile(m.score_samples(Xte), 0.95)


def test_large_inputs_are_chunked_identically():
    """Inference runs in row chunks; the result must not depend on where the chunks fall."""
    from fastae.models import base

    X = np.random.default_rng(0).uniform(size=(base.INFERENCE_CHUNK + 37, 6))
    m = fastae.Autoencoder(hidden=(3,), epochs=0, random_state=0).fit(X[:10])
    whole = m.encode(X)
    pieces = np.concatenate([m.encode(X[:1000]), m.encode(X[1000:])])
    np.testing.assert_array_equal(whole, pieces)


# --- the fused one-call step (numba backend) ---------------------------------------------------------------------
FUSED_VARIANTS = {
    "tied_adam": dict(),
    "untied_mse_tanh_sgd": dict(tied=False, loss="mse", activation="tanh", optimizer="sgd", learning_rate=0.05),
    "relu_momentum": dict(activation="relu", optimizer="momentum", learning_rate=0.05),
    "linear_nesterov_untied": dict(activation="linear", tied=False, optimizer="nesterov", learning_rate=0.02),
    "denoising_mask": dict(noise=("mask", 0.25)),
    "denoising_gaussian": dict(noise=("gaussian", 0.1), tied=False),
}


def _count_fused_calls(monkeypatch):
    from fastae.backends import numba_cpu

    calls = []
    real = numba_cpu.ae1_stepper

    def counting(*args):
        run = real(*args)
        return lambda *a: calls.append(1) or run(*a)

    monkeypatch.setattr(numba_cpu, "ae1_stepper", counting)
    return calls


@pytest.mark.parametrize("name", sorted(FUSED_VARIANTS))
def test_fused_and_op_by_op_steps_train_alike(name, monkeypatch, digits_split):
    """Three epochs through the one-call step and through the op-by-op path give the same float64 weights and
    losses (same products, same kernels; only the order of the loss's row sum differs)."""
    Xtr, _ = digits_split
    kw = dict(
        hidden=(12,), epochs=3, batch_size=64, random_state=3, dtype="float64", backend="numba", **FUSED_VARIANTS[name]
    )
    calls = _count_fused_calls(monkeypatch)
    fused = fastae.Autoencoder(**kw).fit(Xtr[:300])
    assert len(calls) == 3 * 5  # every step of every epoch took the fused path
    monkeypatch.setattr(fastae.Autoencoder, "_fused_stepper", lambda self: None)
    op_by_op = fastae.Autoencoder(**kw).fit(Xtr[:300])
    assert len(calls) == 15
    np.testing.assert_allclose(fused.history_["loss"], op_by_op.history_["loss"], rtol=1e-13)
    for k, v in op_by_op.state_dict().items():
        np.testing.assert_allclose(fused.state_dict()[k], v, rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize(
    "kw,fused",
    [
        (dict(), True),
        (dict(hidden=(12, 6)), False),  # two hidden layers
        (dict(sparsity=("l1", 1e-3)), False),
        (dict(sparsity=("kl", 0.1, 0.1)), False),
        (dict(contractive=0.05, activation="tanh"), False),
        (dict(weight_decay=1e-4), False),
        (dict(hidden=(16,), batch_size=256), True),  # 256 x 64 x 16 multiply-adds: FUSED_MAX_MULADDS exactly
        (dict(hidden=(16,), batch_size=300), False),  # 300 x 64 x 16: over it
        (dict(backend="numpy"), False),  # the reference has no fused op
    ],
)
def test_fused_step_serves_exactly_the_models_it_covers(kw, fused, monkeypatch, digits_split):
    Xtr, _ = digits_split
    calls = _count_fused_calls(monkeypatch)
    m = fastae.Autoencoder(**{**dict(hidden=(12,), epochs=1, batch_size=64, random_state=0), **kw}).fit(Xtr[:300])
    assert (len(calls) > 0) is fused
    assert np.isfinite(m.history_["loss"]).all()
