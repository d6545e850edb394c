"""Tier 2: the bfloat16 conversions of the CUDA kernels (kernels/cuda/common.cuh, bf16.cu) are fastae.precision's
bit for bit: every rounding case (ties to even both ways, the largest finite values rounding to infinity,
subnormals, signed zeros, infinities, NaNs of both signs with payloads), and the input check's verdict."""

import numpy as np
import pytest

from fastae import precision

from .emulated import LAUNCHES, family, flat_grid


def _cases():
    specials = np.array(
        [
            0x00000000,
            0x80000000,
            0x3F808000,
            0x3F818000,
            0x3F80FFFF,
            0x3F808001,
            0x7F7FFFFF,
            0xFF7FFFFF,
            0x7F800000,
            0xFF800000,
            0x7FC00000,
            0xFFC00001,
            0x7F800001,
            0x00000001,
            0x807FFFFF,
            0x00008000,
        ],
        dtype=np.uint32,
    )
    r = np.random.default_rng(0).integers(0, 2**32, 4000, dtype=np.uint32)
    return np.concatenate([specials, r]).view(np.float32)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_to_bf16_is_the_references_bit_for_bit(launch):
    x = _cases()
    out = np.zeros(x.shape, dtype=np.uint16)
    grid, block = flat_grid(x.size, launch)
    family("bf16").get_function("to_bf16_f32")(grid, block, (x, np.int64(x.size), out))
    np.testing.assert_array_equal(out, precision.to_bf16(x))
    back = np.full(x.shape, np.nan, dtype=np.float32)
    family("bf16").get_function("widen_bf16_f32")(grid, block, (out, np.int64(x.size), back))
    np.testing.assert_array_equal(back.view(np.uint32), precision.widen(out).view(np.uint32))


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("unit", [0, 1])
def test_check_to_bf16_rounds_and_judges(launch, unit):
    k = family("bf16").get_function("check_to_bf16_f32")
    for x, want in (
        (np.linspace(0, 1, 300, dtype=np.float32), 0),
        (np.linspace(-1, 2, 300, dtype=np.float32), 2 * unit),
        (np.array([0.5, np.inf, 2.0] * 40, dtype=np.float32), 1 | 2 * unit),
        (np.array([0.5] * 99 + [np.nan], dtype=np.float32), 1),
    ):
        out, flags = np.zeros(x.shape, dtype=np.uint16), np.zeros(1, dtype=np.int32)
        grid, block = flat_grid(x.size, launch)
        k(grid, block, (x, np.int64(x.size), np.int32(unit), out, flags))
        np.testing.assert_array_equal(out, precision.to_bf16(x))
        assert flags[0] == want, (x[:4], flags)
