"""The Numba bfloat16 kernels (kernels/cpu/bf16.py) against the reference (fastae/precision.py): bit for bit on
every rounding case, and the fused check answers what the boundary scan answers."""

import numpy as np
import pytest

from fastae import precision
from fastae.kernels.cpu import bf16, checks

from ..test_precision import bits, every_rounding_case

TWINS = ["", "_par"]  # each kernel and its parallel twin (numba-pool), which must answer the same bits


@pytest.mark.parametrize("twin", TWINS)
def test_to_bf16_matches_the_reference_bit_for_bit(twin):
    x = every_rounding_case().reshape(-1, 8)
    out = np.empty(x.shape, dtype=np.uint16)
    getattr(bf16, "to_bf16" + twin)(x, out)
    np.testing.assert_array_equal(out, precision.to_bf16(x))


def test_widen_and_round_f32():
    h = np.arange(1 << 16, dtype=np.uint16).reshape(256, 256)
    w = np.empty(h.shape, dtype=np.float32)
    bf16.widen(h, w)
    np.testing.assert_array_equal(w.view(np.uint32), precision.widen(h).view(np.uint32))
    x = every_rounding_case().reshape(-1, 8)
    r = x.copy()
    bf16.round_f32(r, r)  # in place
    np.testing.assert_array_equal(r.view(np.uint32), precision.round_bf16(x).view(np.uint32))


@pytest.mark.parametrize("unit_interval", [False, True])
@pytest.mark.parametrize(
    "values",
    [
        [0.0, 0.25, 1.0],
        [0.0, 1.0000001],
        [-0.5, 0.5],
        [-0.0, 0.5],  # -0 is the one valid value the scan calls doubtful (see checks.values_ok)
        [np.inf, 0.0],
        [-np.inf, 0.0],
        [np.nan, 0.0],
        [3e38, -3e38],
    ],
)
@pytest.mark.parametrize("twin", TWINS)
def test_check_to_bf16_answers_as_the_scan_and_converts(values, unit_interval, twin):
    x = np.array([values, values[::-1]] * 3, dtype=np.float32)  # several rows: the twin splits them
    out = np.empty(x.shape, dtype=np.uint16)
    assert getattr(bf16, "check_to_bf16" + twin)(x, unit_interval, out) == checks.values_ok(x, unit_interval)
    np.testing.assert_array_equal(out, precision.to_bf16(x))


@pytest.mark.parametrize("twin", TWINS)
def test_check_to_bf16_on_nan_patterns(twin):
    x = bits(0x7F800001, 0xFF80FFFF, 0x3F800000, 0).reshape(2, 2)
    out = np.empty(x.shape, dtype=np.uint16)
    assert not getattr(bf16, "check_to_bf16" + twin)(x, False, out)
    np.testing.assert_array_equal(out, precision.to_bf16(x))


@pytest.mark.parametrize("kernel", ["bias_act_bf16", "act_backward_bf16"])
def test_row_epilogues_and_their_twins_give_the_same_bits(kernel):
    from fastae.kernels.cpu._config import ACT_CODE

    r = np.random.default_rng(0)
    a = r.uniform(-3, 3, (37, 45)).astype(np.float32)
    other = r.uniform(0.01, 0.99, a.shape).astype(np.float32)  # the bias row's source, or h
    for act, code in ACT_CODE.items():
        results = []
        for twin in TWINS:
            x, o = a.copy(), np.empty(a.shape, dtype=np.uint16)
            arg = other[0].copy() if kernel == "bias_act_bf16" else other
            getattr(bf16, kernel + twin)(x, arg, code, o)
            results.append((x, o))
        (x1, o1), (x2, o2) = results
        np.testing.assert_array_equal(x1, x2, err_msg=act)
        np.testing.assert_array_equal(o1, o2, err_msg=act)
        np.testing.assert_array_equal(o1, precision.to_bf16(x1), err_msg=act)
