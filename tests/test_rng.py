"""Tests for fastae.rng, the reference Philox4x32-10 generator.

Every draw here is a deterministic function of explicit keys, so the
statistical checks below use fixed inputs and ~6-sigma tolerances: they do
not flake, yet fail on any gross bias.
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastae import rng

KEY = rng.key_from_seed(0x0123456789ABCDEF)
OTHER_KEY = rng.key_from_seed(0x0123456789ABCDEE)

# ---------------------------------------------------------------------------
# philox4x32: known-answer tests
# ---------------------------------------------------------------------------

# Random123 known-answer vectors, rows "philox4x32 7" and "philox4x32 10" of
# the Random123 distribution's tests/kat_vectors file, as cut-and-pasted into
# DEShawResearch/Random123-Boost, libs/random/test/test_philox.cpp
# (commit 916db91ae4c6fd8324ef054a518851321ab41f91, test_kat_philox4x32).
# Format there: counter[0..3] key[0..1] expected[0..3], hex 32-bit words.
# The same rows appear verbatim in an independent Python transcription of
# kat_vectors (E. Sarmas, philox.py TEST_CASES), which agrees word for word.
KAT_PHILOX4X32 = {
    10: [
        (
            (0x00000000, 0x00000000, 0x00000000, 0x00000000),
            (0x00000000, 0x00000000),
            (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8),
        ),
        (
            (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
            (0xFFFFFFFF, 0xFFFFFFFF),
            (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
        ),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
    7: [
        (
            (0x00000000, 0x00000000, 0x00000000, 0x00000000),
            (0x00000000, 0x00000000),
            (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48),
        ),
        (
            (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
            (0xFFFFFFFF, 0xFFFFFFFF),
            (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662),
        ),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A),
        ),
    ],
}

KAT_CASES = [(r, c, k, e) for r, rows in KAT_PHILOX4X32.items() for c, k, e in rows]


@pytest.mark.parametrize("rounds,counter,key,expected", KAT_CASES)
def test_philox4x32_known_answers(rounds, counter, key, expected):
    out = rng.philox4x32(np.array(counter, dtype=np.uint32), np.array(key, dtype=np.uint32), rounds)
    assert out.dtype == np.uint32
    assert out.shape == (4,)
    assert [int(w) for w in out] == list(expected)


def test_philox4x32_default_is_10_rounds_and_accepts_python_ints():
    counter, key, expected = KAT_PHILOX4X32[10][2]
    assert [int(w) for w in rng.philox4x32(list(counter), list(key))] == list(expected)


def test_philox4x32_batched_with_per_row_keys():
    rows = KAT_PHILOX4X32[10]
    counters = np.array([c for c, _, _ in rows], dtype=np.uint32)
    keys = np.array([k for _, k, _ in rows], dtype=np.uint32)
    expected = np.array([e for _, _, e in rows], dtype=np.uint32)
    np.testing.assert_array_equal(rng.philox4x32(counters, keys), expected)
    # Leading axes broadcast: the same (3, 4) batch under a (2, 1, 2) key stack.
    out = rng.philox4x32(counters, np.stack([keys[:1], keys[:1]]))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out[1, 0], expected[0])


def test_philox4x32_does_not_modify_inputs():
    counter = np.array([[1, 2, 3, 4]], dtype=np.uint32)
    key = np.array([5, 6], dtype=np.uint32)
    rng.philox4x32(counter, key)
    np.testing.assert_array_equal(counter, [[1, 2, 3, 4]])
    np.testing.assert_array_equal(key, [5, 6])


def test_philox4x32_zero_rounds_is_identity():
    counter = np.array([7, 8, 9, 10], dtype=np.uint32)
    np.testing.assert_array_equal(rng.philox4x32(counter, [1, 2], rounds=0), counter)


@pytest.mark.parametrize(
    "counter,key,rounds,exc,match",
    [
        ([0, 0, 0], [0, 0], 10, ValueError, r"counter must have shape \(\.\.\., 4\)"),
        ([0, 0, 0, 0], [0, 0, 0], 10, ValueError, r"key must have shape \(\.\.\., 2\)"),
        ([0, 0, 0, -1], [0, 0], 10, ValueError, r"counter words must lie in \[0, 2\*\*32\)"),
        ([0, 0, 0, 2**32], [0, 0], 10, ValueError, r"counter words must lie in \[0, 2\*\*32\)"),
        ([0.0, 0, 0, 0], [0, 0], 10, TypeError, r"counter must be an array of unsigned 32-bit.*float64"),
        ([0, 0, 0, 0], [True, False], 10, TypeError, r"key must be an array .*bool"),
        ([0, 0, 0, 0], [0, 0], -1, ValueError, r"rounds must be an int >= 0; got -1"),
        ([0, 0, 0, 0], [0, 0], 10.0, TypeError, r"rounds must be an int; got float"),
        (np.zeros((3, 4), np.uint32), np.zeros((2, 2), np.uint32), 10, ValueError, r"do not broadcast"),
    ],
)
def test_philox4x32_rejects_bad_input(counter, key, rounds, exc, match):
    with pytest.raises(exc, match=match):
        rng.philox4x32(counter, key, rounds)


# ---------------------------------------------------------------------------
# random_bits: addressing
# ---------------------------------------------------------------------------


def test_random_bits_is_the_documented_philox_address():
    stream, step, row0 = rng.STREAM_NOISE, 17, 1000
    bits = rng.random_bits(KEY, stream, step, 6, 11, row0=row0)
    assert bits.dtype == np.uint32 and bits.shape == (6, 11)
    for r, c in [(0, 0), (0, 3), (0, 4), (2, 7), (5, 10), (3, 8)]:
        block = rng.philox4x32([c // 4, row0 + r, step, stream], KEY)
        assert bits[r, c] == block[c % 4], (r, c)


def test_random_bits_subblocks_match_the_big_draw():
    big = rng.random_bits(KEY, rng.STREAM_INIT, 3, 40, 23)
    for row0, n_rows in [(0, 40), (10, 5), (39, 1), (7, 0)]:
        for n_cols in [23, 1, 4, 5, 8, 0]:
            sub = rng.random_bits(KEY, rng.STREAM_INIT, 3, n_rows, n_cols, row0=row0)
            np.testing.assert_array_equal(sub, big[row0 : row0 + n_rows, :n_cols])


def test_random_bits_chunking_does_not_change_results(monkeypatch):
    reference = rng.random_bits(KEY, rng.STREAM_EPS, 9, 13, 29, row0=5)
    for chunk in (1, 2, 3, 7):
        monkeypatch.setattr(rng, "_CHUNK_BLOCKS", chunk)
        np.testing.assert_array_equal(rng.random_bits(KEY, rng.STREAM_EPS, 9, 13, 29, row0=5), reference)


def test_random_bits_is_deterministic():
    a = rng.random_bits(KEY, rng.STREAM_SHUFFLE, 2, 8, 9)
    b = rng.random_bits(KEY.copy(), rng.STREAM_SHUFFLE, 2, 8, 9)
    np.testing.assert_array_equal(a, b)
    # The key may also be given as plain Python ints.
    np.testing.assert_array_equal(a, rng.random_bits([int(KEY[0]), int(KEY[1])], 1, 2, 8, 9))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": OTHER_KEY},
        {"stream": rng.STREAM_SAMPLE},
        {"step": 1},
        {"row0": 1},
    ],
)
def test_random_bits_differ_by_key_stream_step_row(kwargs):
    base = {"key": KEY, "stream": rng.STREAM_INIT, "step": 0, "row0": 0}
    a = rng.random_bits(base["key"], base["stream"], base["step"], 64, 64, row0=base["row0"])
    args = {**base, **kwargs}
    b = rng.random_bits(args["key"], args["stream"], args["step"], 64, 64, row0=args["row0"])
    # Independent 32-bit words coincide with probability 2**-32 each.
    assert np.count_nonzero(a == b) <= 2


def test_random_bits_empty_and_boundary_shapes():
    assert rng.random_bits(KEY, 0, 0, 0, 5).shape == (0, 5)
    assert rng.random_bits(KEY, 0, 0, 3, 0).shape == (3, 0)
    assert rng.random_bits(KEY, 0, 0, 0, 0).dtype == np.uint32
    # The last addressable row, step and stream are all valid.
    last = 2**32 - 1
    out = rng.random_bits(KEY, last, last, 1, 4, row0=last)
    np.testing.assert_array_equal(out[0], rng.philox4x32([0, last, last, last], KEY))


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((KEY, 0, 2**32, 1, 1), {}, ValueError, r"step must be an int \[0, 2\*\*32\); got 4294967296"),
        ((KEY, 0, -1, 1, 1), {}, ValueError, r"step must be an int \[0, 2\*\*32\); got -1"),
        ((KEY, 2**32, 0, 1, 1), {}, ValueError, r"stream must be an int \[0, 2\*\*32\)"),
        ((KEY, 0, 0, 2, 1), {"row0": 2**32 - 1}, ValueError, r"row0 \+ n_rows <= 2\*\*32"),
        ((KEY, 0, 0, 1, 1), {"row0": -1}, ValueError, r"row0 must be an int \[0, 2\*\*32\)"),
        ((KEY, 0, 0, -1, 1), {}, ValueError, r"n_rows must be an int >= 0; got -1"),
        ((KEY, 0, 0, 1, -3), {}, ValueError, r"n_cols must be an int >= 0; got -3"),
        ((KEY, 0, 1.0, 1, 1), {}, TypeError, r"step must be an int; got float"),
        ((KEY, True, 0, 1, 1), {}, TypeError, r"stream must be an int; got bool"),
        ((KEY, 0, 0, "3", 1), {}, TypeError, r"n_rows must be an int; got str"),
        ((np.array([1, 2, 3], np.uint32), 0, 0, 1, 1), {}, ValueError, r"key must have shape \(\.\.\., 2\)"),
        ((np.zeros((2, 2), np.uint32), 0, 0, 1, 1), {}, ValueError, r"key must have shape \(2,\)"),
        ((np.array([0.5, 1.0]), 0, 0, 1, 1), {}, TypeError, r"key must be an array of unsigned 32-bit"),
        ((np.array([0, 2**32]), 0, 0, 1, 1), {}, ValueError, r"key words must lie in \[0, 2\*\*32\)"),
    ],
)
def test_random_bits_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        rng.random_bits(*args, **kwargs)


def test_random_bits_bits_are_balanced():
    bits = rng.random_bits(KEY, rng.STREAM_NOISE, 0, 200, 1000)  # 200k words
    ones = ((bits[..., None] >> np.arange(32, dtype=np.uint32)) & 1).mean(axis=(0, 1))
    # Per-bit frequency: sd = sqrt(0.25 / 2e5) ~ 1.1e-3; 6 sigma ~ 6.7e-3.
    assert np.all(np.abs(ones - 0.5) < 6.7e-3), ones


# ---------------------------------------------------------------------------
# uniform
# ---------------------------------------------------------------------------


def test_uniform_formula_grid_and_open_interval():
    bits = rng.random_bits(KEY, rng.STREAM_NOISE, 4, 50, 37)
    u = rng.uniform(KEY, rng.STREAM_NOISE, 4, 50, 37, dtype=np.float64)
    assert u.dtype == np.float64 and u.shape == (50, 37)
    np.testing.assert_array_equal(u, ((bits >> 9).astype(np.float64) + 0.5) * 2.0**-23)
    assert np.all((u > 0.0) & (u < 1.0))
    # Odd multiples of 2**-24, i.e. multiples of 2**-23 offset by 2**-24.
    k = u * 2.0**23 - 0.5
    np.testing.assert_array_equal(k, np.floor(k))
    assert k.min() >= 0 and k.max() < 2**23


def test_uniform_float32_equals_float64():
    u32 = rng.uniform(KEY, rng.STREAM_EPS, 1, 30, 41)  # float32 is the default
    u64 = rng.uniform(KEY, rng.STREAM_EPS, 1, 30, 41, dtype=np.float64)
    assert u32.dtype == np.float32
    np.testing.assert_array_equal(u32.astype(np.float64), u64)


def test_uniform_extremes_stay_inside_unit_interval_in_float32():
    # The all-zero and all-one words give the smallest and largest uniform.
    # With a 24-bit grid the largest (1 - 2**-25) would round to 1.0 in float32.
    extremes = np.array([0, 0xFFFFFFFF], dtype=np.uint32)
    for dtype in (np.float32, np.float64):
        u = rng._uniform_from_bits(extremes, dtype)
        assert u.dtype == dtype
        assert float(u[0]) == 2.0**-24
        assert float(u[1]) == 1.0 - 2.0**-24
        assert u[1] < 1 and u[0] > 0


def test_uniform_subblock_addressing():
    big = rng.uniform(KEY, rng.STREAM_SAMPLE, 0, 20, 10)
    np.testing.assert_array_equal(rng.uniform(KEY, rng.STREAM_SAMPLE, 0, 4, 3, row0=16), big[16:20, :3])


def test_uniform_moments_and_histogram():
    u = rng.uniform(KEY, rng.STREAM_NOISE, 123, 400, 500, dtype=np.float64).ravel()  # 200k
    n = u.size
    # mean: sd = sqrt(1/12 / n) ~ 6.5e-4;  var: sd = sqrt((1/80 - 1/144) / n) ~ 1.7e-4.
    assert abs(u.mean() - 0.5) < 6 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 6 * math.sqrt((1 / 80 - 1 / 144) / n)
    counts = np.bincount((u * 16).astype(np.int64), minlength=16)
    expected = n / 16
    assert counts.size == 16
    assert np.all(np.abs(counts - expected) < 6 * math.sqrt(expected * 15 / 16)), counts


# ---------------------------------------------------------------------------
# normal
# ---------------------------------------------------------------------------


def _box_muller_by_hand(bits_row, c):
    """Value of column c from the four words of its Philox block, via the math module."""
    b = c // 4
    u0, u1, u2, u3 = (((int(w) >> 9) + 0.5) * 2.0**-23 for w in bits_row[4 * b : 4 * b + 4])
    r01 = math.sqrt(-2.0 * math.log(u0))
    r23 = math.sqrt(-2.0 * math.log(u2))
    return [
        r01 * math.cos(2.0 * math.pi * u1),
        r01 * math.sin(2.0 * math.pi * u1),
        r23 * math.cos(2.0 * math.pi * u3),
        r23 * math.sin(2.0 * math.pi * u3),
    ][c % 4]


def test_normal_matches_box_muller_from_random_bits():
    stream, step, row0 = rng.STREAM_EPS, 5, 3
    z = rng.normal(KEY, stream, step, 4, 10, dtype=np.float64, row0=row0)
    bits = rng.random_bits(KEY, stream, step, 4, 12, row0=row0)  # full blocks
    for r, c in [(0, 0), (0, 1), (0, 2), (0, 3), (1, 4), (2, 6), (3, 9), (3, 8)]:
        assert z[r, c] == pytest.approx(_box_muller_by_hand(bits[r], c), rel=1e-12, abs=1e-12), (r, c)


def test_normal_column_value_does_not_depend_on_n_cols():
    full = rng.normal(KEY, rng.STREAM_NOISE, 0, 7, 12, dtype=np.float64)
    for n_cols in (1, 2, 3, 5, 9, 11):
        np.testing.assert_array_equal(
            rng.normal(KEY, rng.STREAM_NOISE, 0, 7, n_cols, dtype=np.float64), full[:, :n_cols]
        )
    np.testing.assert_array_equal(rng.normal(KEY, rng.STREAM_NOISE, 0, 2, 5, dtype=np.float64, row0=4), full[4:6, :5])


def test_normal_float32_is_float64_cast():
    z64 = rng.normal(KEY, rng.STREAM_SAMPLE, 2, 25, 31, dtype=np.float64)
    z32 = rng.normal(KEY, rng.STREAM_SAMPLE, 2, 25, 31)
    assert z32.dtype == np.float32 and z32.shape == (25, 31)
    assert z32.flags.c_contiguous
    np.testing.assert_array_equal(z32, z64.astype(np.float32))


def test_normal_empty_shapes():
    assert rng.normal(KEY, 0, 0, 0, 3).shape == (0, 3)
    assert rng.normal(KEY, 0, 0, 3, 0).shape == (3, 0)
    assert rng.normal(KEY, 0, 0, 0, 0, dtype=np.float64).dtype == np.float64


def test_normal_moments():
    z = rng.normal(KEY, rng.STREAM_EPS, 77, 400, 500, dtype=np.float64)  # 200k
    n = z.size
    # mean: sd = 1/sqrt(n) ~ 2.2e-3;  var: sd = sqrt(2/n) ~ 3.2e-3.
    assert abs(z.mean()) < 6 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 6 * math.sqrt(2 / n)
    # Each of the four Box-Muller outputs separately (n/4 values each).
    per_word = z.reshape(400, 125, 4)
    m = n / 4
    for w in range(4):
        zw = per_word[..., w]
        assert abs(zw.mean()) < 6 / math.sqrt(m), w
        assert abs(zw.var() - 1.0) < 6 * math.sqrt(2 / m), w
    # The cos/sin partners of one radius are uncorrelated: corr sd ~ 1/sqrt(m).
    corr = np.corrcoef(per_word[..., 0].ravel(), per_word[..., 1].ravel())[0, 1]
    assert abs(corr) < 6 / math.sqrt(m)
    # Tail mass beyond 2 sigma: p = 0.0455, sd = sqrt(p (1-p) / n) ~ 4.7e-4.
    p = math.erfc(2 / math.sqrt(2))
    assert abs(np.mean(np.abs(z) > 2) - p) < 6 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("fn", [rng.uniform, rng.normal])
@pytest.mark.parametrize("dtype", ["float32", np.dtype("f8"), float])
def test_float_dtype_spellings_accepted(fn, dtype):
    assert fn(KEY, 0, 0, 2, 2, dtype=dtype).dtype == np.dtype(dtype)


@pytest.mark.parametrize("fn", [rng.uniform, rng.normal])
@pytest.mark.parametrize("dtype", [np.float16, np.int32, None, "not-a-dtype", np.complex128])
def test_float_dtype_rejected(fn, dtype):
    with pytest.raises(TypeError, match=r"dtype must be numpy\.float32 or numpy\.float64; got"):
        fn(KEY, 0, 0, 2, 2, dtype=dtype)


# ---------------------------------------------------------------------------
# permutation
# ---------------------------------------------------------------------------


def test_permutation_is_a_deterministic_permutation():
    p = rng.permutation(KEY, rng.STREAM_SHUFFLE, 0, 1000)
    assert p.dtype == np.int64 and p.shape == (1000,)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    np.testing.assert_array_equal(p, rng.permutation(KEY, rng.STREAM_SHUFFLE, 0, 1000))
    assert not np.array_equal(p, np.arange(1000))


def test_permutation_is_stable_argsort_of_bits():
    bits = rng.random_bits(KEY, rng.STREAM_SHUFFLE, 3, 1, 257)[0]
    p = rng.permutation(KEY, rng.STREAM_SHUFFLE, 3, 257)
    np.testing.assert_array_equal(p, np.argsort(bits, kind="stable"))
    sorted_bits = bits[p]
    assert np.all(sorted_bits[:-1] <= sorted_bits[1:])


@pytest.mark.parametrize("kwargs", [{"step": 1}, {"stream": rng.STREAM_INIT}, {"key": OTHER_KEY}])
def test_permutation_differs_by_step_stream_key(kwargs):
    args = {"key": KEY, "stream": rng.STREAM_SHUFFLE, "step": 0, **kwargs}
    a = rng.permutation(KEY, rng.STREAM_SHUFFLE, 0, 500)
    b = rng.permutation(args["key"], args["stream"], args["step"], 500)
    # Two independent permutations share ~1 fixed point on average.
    assert np.count_nonzero(a == b) < 20


def test_permutation_small_sizes_and_errors():
    assert rng.permutation(KEY, 1, 0, 0).shape == (0,)
    assert rng.permutation(KEY, 1, 0, 0).dtype == np.int64
    np.testing.assert_array_equal(rng.permutation(KEY, 1, 0, 1), [0])
    with pytest.raises(ValueError, match=r"n must be an int >= 0; got -1"):
        rng.permutation(KEY, 1, 0, -1)
    with pytest.raises(TypeError, match=r"n must be an int; got float"):
        rng.permutation(KEY, 1, 0, 10.0)


# ---------------------------------------------------------------------------
# resolve_seed / key_from_seed
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [
        (0, 0),
        (12345, 12345),
        (2**64 - 1, 2**64 - 1),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (np.int32(7), 7),
        (np.uint8(255), 255),
    ],
)
def test_resolve_seed_integers(value, expected):
    seed = rng.resolve_seed(value)
    assert type(seed) is int
    assert seed == expected


def test_resolve_seed_none_draws_fresh_64_bit_entropy():
    seeds = {rng.resolve_seed(None) for _ in range(4)}
    assert all(type(s) is int and 0 <= s < 2**64 for s in seeds)
    assert len(seeds) == 4


def test_resolve_seed_generator_and_randomstate():
    seed = rng.resolve_seed(np.random.default_rng(2024))
    assert type(seed) is int
    assert seed == int(np.random.default_rng(2024).integers(0, 2**63))
    assert 0 <= seed < 2**63

    seed_rs = rng.resolve_seed(np.random.RandomState(2024))
    assert type(seed_rs) is int
    assert seed_rs == int(np.random.RandomState(2024).randint(0, 2**63, dtype=np.int64))

    # Consuming the generator advances it, so two resolutions differ.
    gen = np.random.default_rng(5)
    assert rng.resolve_seed(gen) != rng.resolve_seed(gen)


@pytest.mark.parametrize(
    "value,exc,received",
    [
        (True, TypeError, "got bool"),
        (np.bool_(False), TypeError, "got bool"),
        (1.0, TypeError, "got float"),
        ("42", TypeError, "got str"),
        (np.array(3), TypeError, "got ndarray"),
        (np.random.SeedSequence(1), TypeError, "got SeedSequence"),
        (-1, ValueError, "got the int -1"),
        (2**64, ValueError, "got the int 18446744073709551616"),
    ],
)
def test_resolve_seed_rejects(value, exc, received):
    with pytest.raises(exc) as info:
        rng.resolve_seed(value)
    message = str(info.value)
    assert "None, an int in [0, 2**64), a numpy.random.Generator or a numpy.random.RandomState" in message
    assert received in message


@pytest.mark.parametrize(
    "seed,expected",
    [
        (0, [0, 0]),
        (1, [1, 0]),
        (2**32, [0, 1]),
        (0x0123456789ABCDEF, [0x89ABCDEF, 0x01234567]),
        (2**64 - 1, [0xFFFFFFFF, 0xFFFFFFFF]),
        (np.uint64(0xFFFFFFFF00000000), [0, 0xFFFFFFFF]),
    ],
)
def test_key_from_seed(seed, expected):
    key = rng.key_from_seed(seed)
    assert key.dtype == np.uint32 and key.shape == (2,)
    assert [int(w) for w in key] == expected


@pytest.mark.parametrize(
    "seed,exc,match",
    [
        (-1, ValueError, r"seed must be an int in \[0, 2\*\*64\); got -1"),
        (2**64, ValueError, r"seed must be an int in \[0, 2\*\*64\); got 18446744073709551616"),
        (True, TypeError, r"seed must be an int in \[0, 2\*\*64\); got bool"),
        (3.0, TypeError, r"seed must be an int in \[0, 2\*\*64\); got float"),
        (None, TypeError, r"seed must be an int in \[0, 2\*\*64\); got NoneType"),
    ],
)
def test_key_from_seed_rejects(seed, exc, match):
    with pytest.raises(exc, match=match):
        rng.key_from_seed(seed)


def test_seed_to_draw_pipeline_is_reproducible():
    key_a = rng.key_from_seed(rng.resolve_seed(np.random.default_rng(11)))
    key_b = rng.key_from_seed(rng.resolve_seed(np.random.default_rng(11)))
    np.testing.assert_array_equal(
        rng.normal(key_a, rng.STREAM_INIT, 0, 3, 5), rng.normal(key_b, rng.STREAM_INIT, 0, 3, 5)
    )


def test_stream_constants_are_distinct():
    streams = [rng.STREAM_INIT, rng.STREAM_SHUFFLE, rng.STREAM_NOISE, rng.STREAM_EPS, rng.STREAM_SAMPLE]
    assert streams == [0, 1, 2, 3, 4]
    assert (rng.PHILOX_M0, rng.PHILOX_M1) == (0xD2511F53, 0xCD9E8D57)
    assert (rng.PHILOX_W0, rng.PHILOX_W1) == (0x9E3779B9, 0xBB67AE85)


def test_module_imports_only_numpy():
    # Load rng.py by path so that whatever fastae/__init__.py imports does not count.
    path = Path(rng.__file__).resolve()
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('_rng_probe', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "heavy = sorted(m for m in ('numba', 'scipy', 'cupy', 'torch', 'jax', 'fastae') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
