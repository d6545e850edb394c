"""The boundary scan against NumPy's own answer, including the values that must trip it."""

import numpy as np
import pytest

from fastae.kernels.cpu.checks import values_ok


def numpy_ok(x, unit):
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(x).all() and (not unit or ((x >= 0) & (x <= 1)).all()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (33, 17), (1025, 9)])
@pytest.mark.parametrize("unit", [False, True])
def test_agrees_with_numpy_on_each_kind_of_bad_value(dtype, shape, unit):
    r = np.random.default_rng(shape[0])
    good = r.uniform(0, 1, size=shape).astype(dtype)
    assert values_ok(good, unit) is True
    for bad in (np.nan, -np.nan, np.inf, -np.inf, -0.25, 1.5, np.finfo(dtype).max):
        for pos in {0, good.size // 2, good.size - 1}:  # the first, a middle and the last entry (vector tails)
            x = good.copy()
            x.reshape(-1)[pos] = bad
            assert values_ok(x, unit) is numpy_ok(x, unit), (bad, pos)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edges(dtype):
    tiny, big = np.finfo(dtype).tiny, np.finfo(dtype).max
    assert values_ok(np.array([[0.0, 1.0, tiny, np.nextafter(dtype(1), dtype(0))]], dtype), True)
    for v in (np.nextafter(dtype(1), dtype(2)), -tiny, big):
        assert not values_ok(np.array([[0.5, v]], dtype), True), v
    assert values_ok(np.array([[-big, big, -tiny, -0.0]], dtype), False)
    # -0.0 is in [0, 1] but its pattern is the sign bit: the scan says "look closer" (never "fine" for a bad value)
    assert not values_ok(np.array([[-0.0]], dtype), True)
    assert values_ok(np.array([[-0.0]], dtype), False)
