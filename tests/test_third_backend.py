"""The seam between models and backends: a third backend, registered by the tests alone (tests/third_backend.py),
runs the parity suite and fits every kind of model without a line of model code knowing it."""

import numpy as np
import pytest

import fastae
from fastae.backends import contract, registry

from . import test_backend_models, test_gradients, test_parity, third_backend

NAME = third_backend.NAME


def test_it_is_registered_meets_the_contract_and_joins_the_suites():
    assert NAME in registry.available_backends()
    assert registry.get_backend(NAME, "float32") is third_backend
    assert contract.problems(third_backend) == []
    assert NAME in test_parity.BACKENDS and NAME in test_backend_models.BACKENDS
    backend_marks = [m for m in test_gradients.test_adjoint.pytestmark if m.args[0] == "backend"]
    assert NAME in backend_marks[0].args[1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "cls, kw",
    [
        (fastae.Autoencoder, dict(hidden=(16, 6), noise=("mask", 0.2), sparsity=("l1", 1e-3), tied=False)),
        (fastae.Autoencoder, dict(hidden=(12,), contractive=0.1, pretrain="layerwise", optimizer="momentum")),
        (fastae.VAE, dict(hidden=(16,), latent=3)),
    ],
)
def test_models_fit_on_it_as_on_the_reference(digits_split, dtype, cls, kw):
    Xtr, Xte = digits_split
    common = dict(epochs=3, batch_size=64, random_state=0, dtype=dtype, **kw)
    got = cls(backend=NAME, **common).fit(Xtr)
    want = cls(backend="numpy", **common).fit(Xtr)
    assert got.backend_ == NAME
    # Two training trajectories whose products sum in different orders: they drift apart over the steps.
    rtol = 1e-9 if dtype == "float64" else 2e-3
    np.testing.assert_allclose(got.history_["loss"], want.history_["loss"], rtol=rtol)
    np.testing.assert_allclose(got.score_samples(Xte), want.score_samples(Xte), rtol=10 * rtol)
    assert got.history_["loss"][-1] < got.history_["loss"][0]
