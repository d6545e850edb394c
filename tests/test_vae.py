"""VAE behaviour: training raises the ELBO, sampling, encoding, determinism and persistence."""

import numpy as np
import pytest

import fastae

from .tolerances import (
    INTERMEDIATE_ULPS,
    close,
    dense_forward_err,
    f64,
    gaussian_kl_rows_err,
    output_err,
    two_err,
    unit,
)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_training_improves_elbo(loss, digits_split):
    Xtr, Xte = digits_split
    m = fastae.VAE(hidden=(64,), latent=8, loss=loss, epochs=10, learning_rate=3e-3, random_state=0)
    before = m.partial_fit(Xtr[:1]).elbo(Xte).mean()
    m.fit(Xtr)
    loss_curve = m.history_["loss"]
    assert loss_curve[-1] < loss_curve[0]
    after = m.elbo(Xte).mean()
    assert after > before + 5, (before, after)


def test_elbo_is_a_bound_and_matches_its_definition(digits_split):
    """ELBO = log p(x|z) − KL ≤ 0 for a Bernoulli decoder, with z drawn at fixed addresses (reproducible);
    more samples average the single-draw estimates, which scatter around it."""
    from fastae.backends import numpy_ref as ref

    Xtr, Xte = digits_split
    m = fastae.VAE(hidden=(32,), latent=4, epochs=3, random_state=0).fit(Xtr)
    e1 = m.elbo(Xte)
    assert e1.shape == (360,) and np.all(e1 < 0)
    np.testing.assert_array_equal(e1, m.elbo(Xte))
    e20 = m.elbo(Xte, n_samples=20)
    assert abs(e20.mean() - e1.mean()) < 0.1 * abs(e1.mean())
    assert not np.array_equal(e20, e1)
    assert m.score(Xte) == pytest.approx(float(e1.mean()))
    # The definition, recomputed by hand from the reference ops in float64 from the model's float32 inputs and
    # the same ε (drawn in float32 at the same address, as the model draws it).
    (x,) = f64(Xte.astype(np.float32))
    P = {k: f64(v)[0] for k, v in m._params.items()}
    h = ref.dense_forward(x, P["encoder.0.weight"], P["encoder.0.bias"], "relu")
    mu = ref.dense_forward(h, P["mu.weight"], P["mu.bias"], "linear")
    lv = ref.dense_forward(h, P["logvar.weight"], P["logvar.bias"], "linear")
    (eps,) = f64(fastae.rng.normal(m._key, fastae.rng.STREAM_SAMPLE, fastae.models.vae.ELBO_STEP0, 360, 4))
    z = mu + np.exp(0.5 * lv) * eps
    d = ref.dense_forward(z, P["decoder.0.weight"], P["decoder.0.bias"], "relu")
    logits = d @ P["decoder.1.weight"].T + P["decoder.1.bias"]
    log_px = (x * logits - np.logaddexp(0, logits)).sum(axis=1)
    kl = 0.5 * (mu**2 + np.exp(lv) - 1 - lv).sum(axis=1)
    # Its float32 error bound (tests/tolerances.py), layer by layer: each product's sum bound chained through
    # the next (ReLU and the heads are Lipschitz 1; an intermediate adds 8 ulps of its own roundings);
    # z = μ + exp(½ℓ) ε moves by ½|z − μ| per unit of ℓ; the KL terms by |μ| and ½|1 − exp ℓ|.
    dt, u, OWN = np.float32, unit(np.float32), INTERMEDIATE_ULPS
    err_h = dense_forward_err(x, P["encoder.0.weight"], P["encoder.0.bias"], dt) + OWN * u * np.abs(h)
    err_mu = dense_forward_err(h, P["mu.weight"], P["mu.bias"], dt, err_x=err_h)
    err_lv = dense_forward_err(h, P["logvar.weight"], P["logvar.bias"], dt, err_x=err_h)
    err_z = err_mu + 0.5 * np.abs(z - mu) * err_lv + two_err(mu, z - mu, dt) + OWN * u * np.abs(z - mu)
    err_d = dense_forward_err(z, P["decoder.0.weight"], P["decoder.0.bias"], dt, err_x=err_z) + OWN * u * np.abs(d)
    err_log_px = output_err(d, P["decoder.1.weight"], P["decoder.1.bias"], x, "bce", dt, err_h=err_d)[2]
    err_kl = gaussian_kl_rows_err(mu, lv, dt) + (np.abs(mu) * err_mu + 0.5 * np.abs(1 - np.exp(lv)) * err_lv).sum(
        axis=1
    )
    close(e1, log_px - kl, dt, err=err_log_px + err_kl + two_err(log_px, kl, dt), what="ELBO")


def test_sample_encode_decode(digits_split):
    Xtr, Xte = digits_split
    m = fastae.VAE(hidden=(32,), latent=4, epochs=2, random_state=0).fit(Xtr)
    S = m.sample(7)
    assert S.shape == (7, 64) and S.dtype == np.float32 and 0 <= S.min() and S.max() <= 1
    assert not np.array_equal(S, m.sample(7))  # successive draws differ
    mu = m.encode(Xte)
    assert mu.shape == (360, 4)
    np.testing.assert_array_equal(mu, m.encode(Xte))  # the mean is deterministic
    z1, z2 = m.encode(Xte, sample=True), m.encode(Xte, sample=True)
    assert not np.array_equal(z1, z2)
    assert np.abs(z1 - mu).mean() > 0
    np.testing.assert_array_equal(m.reconstruct(Xte), m.decode(mu))
    assert m.score_samples(Xte).shape == (360,)


def test_sampling_sequence_is_reproducible(digits_split):
    Xtr, _ = digits_split
    a = fastae.VAE(hidden=(16,), latent=3, epochs=1, random_state=11).fit(Xtr)
    b = fastae.VAE(hidden=(16,), latent=3, epochs=1, random_state=11).fit(Xtr)
    for _ in range(2):
        np.testing.assert_array_equal(a.sample(5), b.sample(5))


def test_save_load_round_trip(tmp_path, digits_split):
    Xtr, Xte = digits_split
    m = fastae.VAE(hidden=(16,), latent=3, dtype="float64", epochs=2, random_state=0).fit(Xtr)
    m.sample(2)
    m.save(tmp_path / "vae.safetensors")
    m2 = fastae.load(tmp_path / "vae.safetensors")
    assert type(m2) is fastae.VAE
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(m2.state_dict()[k], v)
    np.testing.assert_array_equal(m2.encode(Xte), m.encode(Xte))
    np.testing.assert_array_equal(m2.sample(4), m.sample(4))  # the sampling counter is saved too


def test_state_dict_names():
    X = np.random.default_rng(0).uniform(size=(10, 7))
    sd = fastae.VAE(hidden=(6,), latent=2, epochs=0, random_state=0).fit(X).state_dict()
    assert {k: v.shape for k, v in sd.items()} == {
        "encoder.0.weight": (6, 7),
        "encoder.0.bias": (6,),
        "mu.weight": (2, 6),
        "mu.bias": (2,),
        "logvar.weight": (2, 6),
        "logvar.bias": (2,),
        "decoder.0.weight": (6, 2),
        "decoder.0.bias": (6,),
        "decoder.1.weight": (7, 6),
        "decoder.1.bias": (7,),
    }
