"""scikit-learn conventions: parameters, clone, pipelines, pickling, and check_estimator with its justified
exemptions."""

import pickle

import numpy as np
import pytest

import fastae

# Checks that fastae fails on purpose, each for a reason the project decided:
EXEMPT = {
    # The input contract refuses object dtypes outright (no guessing at what an object array holds);
    # scikit-learn expects numeric object arrays to be converted.
    "check_dtype_object": "object dtypes are refused by design",
}


@pytest.mark.parametrize(
    "est",
    [
        fastae.Autoencoder(loss="mse", hidden=(4,), epochs=2, random_state=0),
        fastae.VAE(loss="mse", hidden=(4,), latent=2, epochs=2, random_state=0),
    ],
    ids=["Autoencoder", "VAE"],
)
def test_check_estimator(est):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(est, on_fail=None)
    failed = {r["check_name"]: str(r["exception"]) for r in results if r["status"] == "failed"}
    assert len(results) > 40
    unexpected = {k: v for k, v in failed.items() if k not in EXEMPT}
    assert not unexpected, unexpected


def test_params_and_clone():
    from sklearn.base import clone

    m = fastae.Autoencoder(hidden=(7, 3), noise=("mask", 0.1), random_state=4)
    assert m.get_params()["hidden"] == (7, 3)
    c = clone(m)
    assert c.get_params() == m.get_params() and c is not m
    assert m.set_params(epochs=3) is m and m.epochs == 3
    with pytest.raises(ValueError, match="invalid parameter 'epoch' for Autoencoder"):
        m.set_params(epoch=3)
    assert repr(m) == "Autoencoder(hidden=(7, 3), noise=('mask', 0.1), epochs=3, random_state=4)"


def test_pipeline_and_grid_search(digits_split):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    Xtr, Xte = digits_split
    pipe = make_pipeline(MinMaxScaler(), fastae.Autoencoder(hidden=(8,), epochs=2, random_state=0))
    assert pipe.fit_transform(Xtr[:200]).shape == (200, 8)
    gs = GridSearchCV(
        fastae.Autoencoder(epochs=20, learning_rate=1e-2, batch_size=32, random_state=0),
        {"hidden": [(4,), (16,)]},
        cv=2,
    )
    gs.fit(Xtr[:200])
    assert gs.best_params_ == {"hidden": (16,)}  # more code units reconstruct better


def test_pickle_round_trip(digits_split):
    Xtr, Xte = digits_split
    m = fastae.VAE(hidden=(8,), latent=2, epochs=1, random_state=0).fit(Xtr)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.encode(Xte), m.encode(Xte))
    m2.partial_fit(Xtr)
    m.partial_fit(Xtr)
    np.testing.assert_array_equal(m2.encode(Xte), m.encode(Xte))


def test_positional_validation_data_is_not_silently_ignored(digits_split):
    Xtr, Xte = digits_split
    with pytest.raises(TypeError, match="pass validation_data="):
        fastae.Autoencoder(hidden=(2,), epochs=1).fit(Xtr, Xte)
    fastae.Autoencoder(hidden=(2,), epochs=1).fit(Xtr, np.zeros(len(Xtr)))  # labels are ignored, as sklearn does
