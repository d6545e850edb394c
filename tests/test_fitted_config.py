"""A fitted model is a snapshot (fastae/models/base.py): after ``set_params`` of a parameter that fixes what the
weights mean, every method and ``save`` keep using the fitted value until the next ``fit``; the others take
effect at once. Column names of a data frame are part of the snapshot too."""

import numpy as np
import pytest

import fastae

X = np.random.default_rng(0).uniform(0.05, 0.95, (60, 12))
KW = dict(hidden=(6,), epochs=2, batch_size=16, random_state=0)


def _fitted(cls=fastae.Autoencoder, **kw):
    return cls(**{**KW, **kw}).fit(X)


@pytest.mark.parametrize(
    "change",
    [
        dict(hidden=(9,)),
        dict(activation="relu"),
        dict(code_activation="linear"),
        dict(tied=False),
        dict(loss="mse"),
        dict(dtype="float64"),
    ],
)
def test_structural_changes_wait_for_the_next_fit(tmp_path, change):
    m = _fitted()
    codes, scores = m.encode(X), m.score_samples(X)
    m.set_params(**change)
    assert m.get_params()[next(iter(change))] == next(iter(change.values()))  # get_params shows what was set
    np.testing.assert_array_equal(m.encode(X), codes)
    np.testing.assert_array_equal(m.score_samples(X), scores)
    path = tmp_path / "m.safetensors"
    m.save(path)
    back = fastae.load(path)
    np.testing.assert_array_equal(back.encode(X), codes)
    np.testing.assert_array_equal(back.score_samples(X), scores)
    for name, value in m._fitted_structure.items():
        assert getattr(back, name) == value, name  # the file holds what the weights mean
    with pytest.raises(ValueError, match="call fit to start over"):
        m.partial_fit(X)
    m.fit(X)  # now the change takes effect
    assert m._fitted_structure[next(iter(change))] == next(iter(change.values()))


def test_loss_change_keeps_the_fitted_input_check():
    """A cross-entropy model keeps refusing data outside [0, 1] after set_params(loss="mse")."""
    m = _fitted().set_params(loss="mse")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.encode(X * 3)


def test_vae_latent_change_waits_for_the_next_fit(tmp_path):
    v = _fitted(fastae.VAE, latent=3)
    z = v.encode(X)
    v.set_params(latent=5)
    np.testing.assert_array_equal(v.encode(X), z)
    assert v.sample(4).shape == (4, 12)
    v.save(tmp_path / "v.safetensors")
    assert fastae.load(tmp_path / "v.safetensors").encode(X).shape == (60, 3)


def test_training_parameters_take_effect_at_once():
    m = _fitted(optimizer="sgd", learning_rate=0.1)
    before = m.state_dict()
    m.set_params(learning_rate=1e-300).partial_fit(X)  # a step this small cannot move float32 weights
    after = m.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    m.set_params(learning_rate=0.5, batch_size=7).partial_fit(X)
    assert any(not np.array_equal(after[k], v) for k, v in m.state_dict().items())


class Frame:
    """The part of a data frame fastae reads: string ``columns``, a ``shape`` and ``__array__`` (pandas and polars
    frames have all three)."""

    def __init__(self, data, columns):
        self._data, self.columns = np.asarray(data), list(columns)
        self.shape = self._data.shape

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)


COLS = [f"px{i}" for i in range(12)]


@pytest.mark.parametrize("cls", [fastae.Autoencoder, fastae.VAE])
def test_feature_names_are_recorded_checked_and_saved(tmp_path, cls):
    m = cls(**KW).fit(Frame(X, COLS))
    assert list(m.feature_names_in_) == COLS
    assert m.encode(Frame(X, COLS)).shape[0] == len(X)
    with pytest.raises(ValueError, match="feature names should match .* another order"):
        m.encode(Frame(X[:, ::-1], COLS[::-1]))
    with pytest.raises(ValueError, match=r"unseen at fit: \['other'\]"):
        m.score_samples(Frame(X, COLS[:-1] + ["other"]))
    with pytest.raises(ValueError, match="feature names should match"):
        m.partial_fit(Frame(X, COLS[::-1]))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        m.encode(X)
    m.save(tmp_path / "m.safetensors")
    back = fastae.load(tmp_path / "m.safetensors")
    assert list(back.feature_names_in_) == COLS
    with pytest.raises(ValueError, match="feature names should match"):
        back.encode(Frame(X, COLS[::-1]))


def test_arrays_and_non_string_columns_record_no_names():
    m = fastae.Autoencoder(**KW).fit(X)
    assert not hasattr(m, "feature_names_in_")
    m = fastae.Autoencoder(**KW).fit(Frame(X, range(12)))
    assert not hasattr(m, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        fastae.Autoencoder(**KW).fit(X).encode(Frame(X, COLS))


def test_no_data_frame_library_is_imported():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, fastae; X = np.random.default_rng(0).uniform(size=(30, 5)); "
        "fastae.Autoencoder(hidden=(2,), epochs=1).fit(X).encode(X); "
        "print([m for m in ('pandas', 'polars', 'pyarrow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
