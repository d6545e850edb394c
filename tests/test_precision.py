"""bfloat16 rounding of the reference (fastae/precision.py): round to nearest, ties to even, on every exponent,
subnormals, infinities and NaN; checked by hand on the edge cases and against ml_dtypes, an independent
implementation, on every bfloat16 pattern with the low halves that decide the rounding."""

import ml_dtypes
import numpy as np
import pytest

from fastae import precision


def bits(*patterns):
    return np.array(patterns, dtype=np.uint32).view(np.float32)


@pytest.mark.parametrize(
    "pattern, want",
    [
        (0x3F800000, 0x3F80),  # 1.0, exact
        (0x3F808000, 0x3F80),  # a tie between 1.0 and its successor: to the even 1.0
        (0x3F818000, 0x3F82),  # a tie above an odd pattern: up, to even
        (0x3F807FFF, 0x3F80),  # just under half: down
        (0x3F808001, 0x3F81),  # just over half: up
        (0xBF808001, 0xBF81),  # the same for a negative value (rounding is symmetric)
        (0x00000001, 0x0000),  # the smallest subnormal rounds to +0
        (0x00008000, 0x0000),  # a subnormal tie: to the even 0
        (0x00018000, 0x0002),  # a subnormal tie above an odd pattern: up
        (0x00008001, 0x0001),  # over half: the smallest bfloat16 subnormal
        (0x007FFFFF, 0x0080),  # the largest float32 subnormal rounds up to the smallest normal
        (0x80000000, 0x8000),  # -0 keeps its sign
        (0x7F800000, 0x7F80),  # +inf
        (0xFF800000, 0xFF80),  # -inf
        (0x7F7FFFFF, 0x7F80),  # the largest finite float32 rounds to +inf, as IEEE rounding does
        (0x7F7F7FFF, 0x7F7F),  # the largest finite bfloat16, from just below half of its last step
    ],
)
def test_rounding_edge_cases(pattern, want):
    assert precision.to_bf16(bits(pattern))[0] == want


@pytest.mark.parametrize("pattern", [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0x7F80FFFF])
def test_nan_stays_a_quiet_nan_of_its_sign(pattern):
    # 0x7F800001 and 0x7F80FFFF are NaNs whose payload lies only in the dropped half: a plain carry would give inf
    h = precision.to_bf16(bits(pattern))[0]
    assert (h & 0x7F80) == 0x7F80 and (h & 0x0040), hex(h)  # all-ones exponent, quiet bit set
    assert (h >> 15) == (pattern >> 31)
    assert np.isnan(precision.widen(np.array([h], dtype=np.uint16)))[0]


def every_rounding_case():
    """Every bfloat16 pattern (the high half) with the low halves that decide its rounding."""
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    low = np.array([0, 1, 0x3FFF, 0x7FFF, 0x8000, 0x8001, 0xC000, 0xFFFF], dtype=np.uint32)
    return (high[:, None] | low[None, :]).reshape(-1).view(np.float32)


def test_agrees_with_ml_dtypes_on_every_pattern():
    x = every_rounding_case()
    got = precision.to_bf16(x)
    nan = np.isnan(x)
    with np.errstate(invalid="ignore"):
        want = x[~nan].astype(ml_dtypes.bfloat16).view(np.uint16)
    np.testing.assert_array_equal(got[~nan], want)
    assert np.isnan(precision.widen(got[nan])).all()


def test_widen_is_exact_and_round_trips():
    h = np.arange(1 << 16, dtype=np.uint16)
    w = precision.widen(h)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w.view(np.uint32) >> 16, h.astype(np.uint32))
    finite = np.isfinite(w)
    np.testing.assert_array_equal(precision.to_bf16(w[finite]), h[finite])  # a bfloat16 value rounds to itself
    np.testing.assert_array_equal(precision.round_bf16(w[finite]), w[finite])


def test_the_rounding_error_is_within_the_unit_roundoff():
    x = np.random.default_rng(0).standard_normal(100_000).astype(np.float32) * 1e3
    err = np.abs(precision.round_bf16(x).astype(np.float64) - x) / np.abs(x.astype(np.float64))
    assert err.max() <= precision.UNIT_BF16
