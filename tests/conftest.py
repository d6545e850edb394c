import os

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
    """Test-only backends join every suite that runs over the registry: the third backend (tests/third_backend.py);
    the CuPy backend's real code on the CPU stand-in of CuPy, with its own grids and with tiny ones
    (tests/gpu_standin.py); and, with ``FASTAE_GPU_PARITY=1`` on a machine with a GPU, the same code on the
    device (bench/gpu_check.sh)."""
    from fastae.backends import registry

    registry.register("reference-twin", "tests.third_backend")
    registry.register("cupy-standin", "tests.cupy_standin_backend")
    registry.register("cupy-standin-tiny", "tests.cupy_standin_tiny_backend")
    if os.environ.get("FASTAE_GPU_PARITY") == "1":
        registry.register("cupy-gpu", "tests.cupy_gpu_host_backend")
