"""Scalar math of the CPU kernels (kernels/cpu/fmath.py) against float64 NumPy / libm, in ulps.

float32 functions are swept densely over their whole range (every 1009th float32 bit pattern, ~2 M points) and
compared with the float64 function of the same input, in units of the float32 ulp of the correctly rounded
result (subnormal results: units of the smallest subnormal). float64 functions are compared with glibc's
``math`` functions (themselves < 1 ulp) on random and log-spaced points.

Bounds asserted (measured maxima in brackets, on the dense sweep / 2 M random points):

=============  ===================  ==================
function       float32              float64
=============  ===================  ==================
exp            2 ulp   [1.00]       2 ulp   [1.0]
sigmoid        3 ulp   [2.31]       4 ulp   [3.0, vs the NumPy formula, itself a few ulp]
tanh           2 ulp   [1.50]       4 ulp   [3.0]
log1p_small    2 ulp   [1.93]       3 ulp   [2.0]
softplus       3 ulp   [2.62]       4 ulp   [3.0]
=============  ===================  ==================

The functions are called from small jitted loops compiled with the kernels' own fast-math flags, as in a kernel.
"""

import math

import numpy as np
import pytest
from numba import njit

from fastae.kernels.cpu import fmath
from fastae.kernels.cpu._config import FASTMATH

_J = dict(fastmath=FASTMATH, error_model="numpy")  # as the kernels, but never cached (test-local functions)


@njit(**_J)
def _map_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = fmath.exp(x[i])


@njit(**_J)
def _map_sigmoid(x, out):
    for i in range(x.shape[0]):
        out[i] = fmath.sigmoid(x[i])


@njit(**_J)
def _map_tanh(x, out):
    for i in range(x.shape[0]):
        out[i] = fmath.tanh(x[i])


@njit(**_J)
def _map_log1p_small(x, out):
    for i in range(x.shape[0]):
        out[i] = fmath.log1p_small(x[i])


@njit(**_J)
def _map_softplus(x, out):
    for i in range(x.shape[0]):
        out[i] = fmath.softplus(x[i])


@njit(**_J)
def _map_nonfinite(x, out):
    for i in range(x.shape[0]):
        out[i] = fmath.nonfinite(x[i])


def run(fn, x):
    out = np.empty_like(x)
    fn(x, out)
    return out


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus64(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


# name -> (jitted map, float64 reference, float32 sweep range, float32 bound, float64 bound)
FUNCS = {
    "exp": (_map_exp, np.exp, (-110.0, 89.0), 2.0, 2.0),
    "sigmoid": (_map_sigmoid, _sigmoid64, (-110.0, 110.0), 3.0, 4.0),
    "tanh": (_map_tanh, np.tanh, (-20.0, 20.0), 2.0, 4.0),
    "log1p_small": (_map_log1p_small, np.log1p, (0.0, 1.0), 2.0, 3.0),
    "softplus": (_map_softplus, _softplus64, (-110.0, 110.0), 3.0, 4.0),
}
LIBM = {"exp": math.exp, "tanh": math.tanh, "log1p_small": math.log1p}


def ulp_error(got, want, dtype):
    """|got − want| in ulps of ``want`` rounded to ``dtype`` (at least the smallest subnormal)."""
    with np.errstate(over="ignore"):
        want_r = want.astype(dtype)
    ulp = np.maximum(np.spacing(np.abs(want_r)).astype(np.float64), float(np.finfo(dtype).smallest_subnormal))
    err = np.abs(got.astype(np.float64) - want) / ulp
    err[got == want_r] = 0.0  # also covers equal infinities
    return err


def float32_sweep(lo, hi, stride=1009):
    """Every ``stride``-th float32 bit pattern in [lo, hi] (both signs), plus the end points."""
    parts = [np.array([lo, hi], dtype=np.float32)]
    if hi > 0:
        parts.append(np.arange(0, np.float32(hi).view(np.int32), stride, dtype=np.int32).view(np.float32))
    if lo < 0:
        parts.append(-np.arange(1, np.float32(-lo).view(np.int32), stride, dtype=np.int32).view(np.float32))
    return np.concatenate(parts)


@pytest.mark.parametrize("name", list(FUNCS))
def test_float32_ulp_error_on_dense_sweep(name):
    fn, ref, (lo, hi), bound, _ = FUNCS[name]
    x = float32_sweep(lo, hi)
    got = run(fn, x)
    assert got.dtype == np.float32
    with np.errstate(over="ignore"):
        want = ref(x.astype(np.float64))
    err = ulp_error(got, want, np.float32)
    worst = int(np.argmax(err))
    assert err[worst] <= bound, f"{name}({x[worst]!r}) = {got[worst]!r}, want {want[worst]!r}: {err[worst]:.2f} ulp"


@pytest.mark.parametrize("name", list(FUNCS))
def test_float64_ulp_error(name):
    fn, ref, (lo, hi), _, bound = FUNCS[name]
    r = np.random.default_rng(3)
    x = np.concatenate(
        [
            r.uniform(lo, hi, 200_000),
            np.geomspace(1e-300, hi, 2000),
            -np.geomspace(1e-300, -lo, 2000) if lo < 0 else np.linspace(0, hi, 2000),
        ]
    )
    got = run(fn, x)
    assert got.dtype == np.float64
    libm = LIBM.get(name)
    want = np.array([libm(v) for v in x]) if libm else ref(x)
    err = ulp_error(got, want, np.float64)
    worst = int(np.argmax(err))
    assert err[worst] <= bound, f"{name}({x[worst]!r}) = {got[worst]!r}, want {want[worst]!r}: {err[worst]:.2f} ulp"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_range_ends_and_special_values(dtype):
    fi = np.finfo(dtype)
    # Largest x whose e**x is finite, and the next float up; the last x whose e**x rounds to a nonzero subnormal.
    hi = dtype(88.72283172607422) if dtype == np.float32 else dtype(709.782712893384)
    lo = dtype(-103.97208) if dtype == np.float32 else dtype(-745.1332191019411)
    x = np.array(
        [
            hi,
            np.nextafter(hi, dtype(np.inf)),
            lo,
            np.nextafter(lo, dtype(-np.inf)),
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
            -1e4,
            1e4,
            fi.tiny,
            -fi.tiny,
        ],
        dtype=dtype,
    )
    got = run(_map_exp, x)
    assert np.isfinite(got[0]) and got[0] > fi.max * 0.99
    assert got[1] == np.inf
    assert got[2] == fi.smallest_subnormal and got[3] == 0
    assert got[4] == 1 and got[5] == 1
    assert got[6] == np.inf and got[7] == 0 and np.isnan(got[8])
    assert got[9] == 0 and got[10] == np.inf
    assert got[11] == 1 and got[12] == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_limits_and_nan_propagation(dtype):
    x = np.array([-1e4, -100.0, 100.0, 1e4, -np.inf, np.inf, np.nan, 0.0, 1e-30, -1e-30], dtype=dtype)
    s, t, sp = run(_map_sigmoid, x), run(_map_tanh, x), run(_map_softplus, x)
    np.testing.assert_array_equal(s[[0, 3, 4, 5, 7]], dtype([0, 1, 0, 1, 0.5]))
    # e**-100 = 3.7e-44 is a float32 subnormal (26 x the smallest): correct to its absolute precision.
    assert abs(float(s[1]) - math.exp(-100)) <= (1e-15 * math.exp(-100) if dtype == np.float64 else 1.5e-45)
    assert s[2] == 1
    np.testing.assert_array_equal(t[[0, 1, 2, 3, 4, 5, 7]], dtype([-1, -1, 1, 1, -1, 1, 0]))
    assert t[8] == dtype(1e-30) and t[9] == dtype(-1e-30)  # tiny |x|: tanh(x) = x to full relative accuracy
    np.testing.assert_array_equal(sp[[0, 2, 3, 4, 5, 7]], dtype([0, 100, 1e4, 0, np.inf, math.log(2)]))
    assert np.isnan(s[6]) and np.isnan(t[6]) and np.isnan(sp[6])


def test_log1p_small_end_points():
    for dtype in (np.float32, np.float64):
        got = run(_map_log1p_small, np.array([0.0, 1e-30, 1.0], dtype=dtype))
        assert got[0] == 0
        assert got[1] == dtype(1e-30)
        assert abs(float(got[2]) - math.log(2)) <= np.spacing(dtype(math.log(2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_flags_exactly_inf_and_nan(dtype):
    fi = np.finfo(dtype)
    x = np.array(
        [0.0, -0.0, 1.0, fi.max, -fi.max, fi.smallest_subnormal, np.inf, -np.inf, np.nan, -np.nan], dtype=dtype
    )
    out = np.empty(x.shape, dtype=np.int64)
    _map_nonfinite(x, out)
    np.testing.assert_array_equal(out, (~np.isfinite(x)).astype(np.int64))


@njit(**_J)
def _map_flush(x, out):
    for i in range(x.shape[0]):
        out[i] = fmath.flush_subnormal(x[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_subnormal_zeroes_exactly_the_subnormals(dtype):
    fi = np.finfo(dtype)
    sub = [fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny / 2, -fi.tiny / 2, np.nextafter(fi.tiny, dtype(0))]
    keep = [0.0, -0.0, fi.tiny, -fi.tiny, 1.0, -3.5, fi.max, np.inf, -np.inf]
    x = np.array(sub + keep + [np.nan], dtype=dtype)
    out = np.full_like(x, 7.0)
    _map_flush(x, out)
    assert np.all(out[: len(sub)] == 0)
    np.testing.assert_array_equal(out[len(sub) : -1], x[len(sub) : -1])
    assert np.isnan(out[-1]), "NaN must pass: the optimiser's finite check reads what follows"


def test_cast_and_python_entry_points():
    assert fmath.cast(0.1, np.zeros(2, np.float32)) == np.float32(0.1)
    assert fmath.exp(np.float32(1.0)) == np.float32(math.e)
    assert fmath.exp(1.0) == pytest.approx(math.e, rel=1e-15)
    assert fmath.sigmoid(0.0) == 0.5 and fmath.tanh(0.5) == pytest.approx(math.tanh(0.5), rel=1e-15)
    assert fmath.softplus(-1e4) == 0 and fmath.log1p_small(1.0) == pytest.approx(math.log(2), rel=1e-15)
    assert fmath.sigmoid_from_exp(-1.0, math.exp(-1.0)) == pytest.approx(1 / (1 + math.e), rel=1e-15)
    assert fmath.nonfinite(math.inf) == 1 and fmath.nonfinite(np.float32(2.0)) == 0
    assert fmath.flush_subnormal(np.float32(1e-40)) == 0 and fmath.flush_subnormal(1e-300) == 1e-300


@pytest.mark.parametrize("fn", [_map_exp, _map_sigmoid, _map_tanh, _map_softplus], ids=lambda f: f.__name__)
def test_float32_loops_vectorise(fn):
    """A float32 loop over the function compiles to SIMD code: the optimised LLVM IR holds float vectors.
    (A libm call or a float64 promotion inside the function would keep the loop scalar.)"""
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    run(fn, x)
    sig = [s for s in fn.signatures if str(s[0].dtype) == "float32"][0]
    ir = fn.inspect_llvm(sig)
    assert any(f"<{w} x float>" in ir for w in (4, 8, 16)), "no float32 vector type in the optimised IR"
    assert "x double>" not in ir, "float64 arithmetic in a float32 loop"
