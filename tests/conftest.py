import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_split():
    """scikit-learn's digits in [0, 1] (ships offline), split 1437 / 360 with a fixed seed."""
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    p = np.random.default_rng(0).permutation(len(X))
    return X[p[:1437]], X[p[1437:]]
