import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_split():
    """scikit-learn's digits in [0, 1] (ships offline), split 1437 / 360 with a fixed seed."""
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    p = np.random.default_rng(0).permutation(len(X))
    return X[p[:1437]], X[p[1437:]]


def pytest_configure(config):
    """The test-only third backend (tests/third_backend.py) joins every suite that runs over the registry."""
    from fastae.backends import registry

    registry.register("reference-twin", "tests.third_backend")
