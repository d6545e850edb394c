"""The boundary scan against NumPy's own counts, including the values that must trip it."""

import numpy as np
import pytest

from fastae.kernels.cpu.checks import scan_values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (33, 17), (1025, 9)])
def test_counts_match_numpy(dtype, shape):
    r = np.random.default_rng(shape[0])
    x = r.uniform(-0.2, 1.2, size=shape).astype(dtype)
    flat = x.reshape(-1)
    for i, v in zip(r.choice(flat.size, size=min(3, flat.size), replace=False), (np.nan, np.inf, -np.inf)):
        flat[i] = v
    with np.errstate(invalid="ignore"):
        want = (int((~np.isfinite(x)).sum()), int(((x < 0) | (x > 1)).sum()))
    assert scan_values(x) == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edges(dtype):
    x = np.array([[0.0, 1.0, -0.0, np.finfo(dtype).tiny]], dtype=dtype)
    assert scan_values(x) == (0, 0)
    x = np.array([[np.nextafter(dtype(1), dtype(2)), -np.finfo(dtype).tiny, np.finfo(dtype).max]], dtype=dtype)
    assert scan_values(x) == (0, 3)
    assert scan_values(np.full((2, 2), np.nan, dtype)) == (4, 0)
