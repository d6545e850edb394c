"""The Numba Philox4x32-10 (kernels/cpu/philox.py) against the reference generator fastae.rng.

32-bit words and uniforms must agree bit for bit at every address, including column segments that start or end
inside a Philox block. Normals go through libm: against a reference that uses the C library's log/cos/sin (as
Numba does) they are bit-identical too; against fastae.rng.normal, whose np.log may be NumPy's own SIMD log,
float64 agrees to 2 ulp and float32 exactly.
"""

import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastae import rng
from fastae.kernels.cpu import philox as P

U32 = 2**32
WIDTHS = [1, 3, 5, 33, 1025]
COL0S = [0, 1, 2, 3, 5, 1026]


def words(key):
    return np.uint32(key[0]), np.uint32(key[1])


def scalars(key, stream, step, row0, col0):
    k0, k1 = words(key)
    return k0, k1, np.uint32(stream), np.uint32(step), np.int64(row0), np.int64(col0)


def random_address(seed):
    """A reproducible random (key, stream, step, row0) with extremes mixed in."""
    r = np.random.default_rng(seed)
    key = r.integers(0, U32, size=2, dtype=np.uint64).astype(np.uint32)
    stream = int(r.choice([0, 1, 2, 3, 4, U32 - 1, int(r.integers(0, U32))]))
    step = int(r.choice([0, 1, U32 - 1, int(r.integers(0, U32))]))
    row0 = int(r.choice([0, 1, int(r.integers(0, 2**31))]))
    return key, stream, step, row0


def ref_bits(key, stream, step, row0, n_rows, n_cols, col0):
    return rng.random_bits(key, stream, step, n_rows, col0 + n_cols, row0)[:, col0:]


def ulps(a, b):
    """Distance in float64 ulps between same-sign finite arrays (as ordered integers)."""
    ia, ib = a.view(np.int64), b.view(np.int64)
    return np.abs(ia - ib)


def libm_normal(key, stream, step, n_rows, n_cols, row0=0):
    """fastae.rng.normal's formula with the C library's log/cos/sin (Python's math), which Numba also calls."""
    n_blocks = -(-n_cols // 4)
    u = rng.uniform(key, stream, step, n_rows, 4 * n_blocks, dtype=np.float64, row0=row0).reshape(n_rows, n_blocks, 4)
    log, cos, sin = (np.vectorize(f, otypes=[np.float64]) for f in (math.log, math.cos, math.sin))
    r01 = np.sqrt(-2.0 * log(u[..., 0]))
    r23 = np.sqrt(-2.0 * log(u[..., 2]))
    t1, t3 = rng._TWO_PI * u[..., 1], rng._TWO_PI * u[..., 3]
    z = np.stack([r01 * cos(t1), r01 * sin(t1), r23 * cos(t3), r23 * sin(t3)], axis=-1)
    return z.reshape(n_rows, 4 * n_blocks)[:, :n_cols]


# ---------------------------------------------------------------------------------------------------------------
# the block function
# ---------------------------------------------------------------------------------------------------------------
# Random123 kat_vectors, "philox4x32 10" rows (also checked against fastae.rng in tests/test_rng.py).
KAT10 = [
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
]


@pytest.mark.parametrize("counter,key,expected", KAT10)
def test_philox4x32_known_answers(counter, key, expected):
    out = P.philox4x32(*(np.uint32(c) for c in counter), *(np.uint32(k) for k in key))
    assert [int(w) for w in out] == list(expected)


def test_philox4x32_matches_reference_on_random_counters():
    r = np.random.default_rng(1)
    ctr = r.integers(0, U32, size=(200, 4), dtype=np.uint64).astype(np.uint32)
    key = r.integers(0, U32, size=(200, 2), dtype=np.uint64).astype(np.uint32)
    want = rng.philox4x32(ctr, key)
    got = np.array([P.philox4x32(*c, *k) for c, k in zip(ctr, key)], dtype=np.uint32)
    np.testing.assert_array_equal(got, want)


def test_uniform_bits_extremes():
    assert P.uniform_bits(np.uint32(0)) == 2.0**-24
    assert P.uniform_bits(np.uint32(U32 - 1)) == 1.0 - 2.0**-24
    b = np.array([0, 511, 512, 12345678, U32 - 1], dtype=np.uint32)
    np.testing.assert_array_equal([P.uniform_bits(x) for x in b], rng._uniform_from_bits(b))


# ---------------------------------------------------------------------------------------------------------------
# 2-D fillers at many addresses
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_cols", WIDTHS)
@pytest.mark.parametrize("col0", COL0S)
@pytest.mark.parametrize("seed", range(3))
def test_random_bits_bit_exact(n_cols, col0, seed):
    key, stream, step, row0 = random_address(seed * 100 + n_cols + col0)
    n_rows = 7
    out = np.empty((n_rows, n_cols), dtype=np.uint32)
    P.random_bits(*scalars(key, stream, step, row0, col0), out)
    np.testing.assert_array_equal(out, ref_bits(key, stream, step, row0, n_rows, n_cols, col0))


def test_random_bits_top_row_and_counter_words():
    """Rows up to 2**32 - 1, step and stream at their maxima, all-ones keys."""
    key = np.array([U32 - 1, U32 - 1], dtype=np.uint32)
    row0, n_rows = U32 - 5, 5
    out = np.empty((n_rows, 9), dtype=np.uint32)
    P.random_bits(*scalars(key, U32 - 1, U32 - 1, row0, 3), out)
    np.testing.assert_array_equal(out, ref_bits(key, U32 - 1, U32 - 1, row0, n_rows, 9, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_cols", WIDTHS)
@pytest.mark.parametrize("col0", [0, 1, 3, 6])
def test_uniform_exact(dtype, n_cols, col0):
    key, stream, step, row0 = random_address(7 + n_cols + col0)
    out = np.empty((5, n_cols), dtype=dtype)
    P.uniform(*scalars(key, stream, step, row0, col0), out)
    want = rng.uniform(key, stream, step, 5, col0 + n_cols, dtype=dtype, row0=row0)[:, col0:]
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("n_cols", WIDTHS)
@pytest.mark.parametrize("col0", [0, 1, 2, 3, 5])
def test_normal_bit_exact_against_libm_formula(n_cols, col0):
    key, stream, step, row0 = random_address(11 + n_cols + col0)
    out = np.empty((4, n_cols), dtype=np.float64)
    P.normal(*scalars(key, stream, step, row0, col0), out)
    want = libm_normal(key, stream, step, 4, col0 + n_cols, row0)[:, col0:]
    np.testing.assert_array_equal(out, want)


def test_normal_float64_within_2ulp_of_reference():
    key, stream, step, row0 = random_address(5)
    out = np.empty((257, 1025), dtype=np.float64)
    P.normal_par(*scalars(key, stream, step, row0, 0), out)
    want = rng.normal(key, stream, step, 257, 1025, dtype=np.float64, row0=row0)
    assert np.array_equal(np.sign(out), np.sign(want))
    assert ulps(out, want).max() <= 2


@pytest.mark.parametrize("n_cols", WIDTHS)
@pytest.mark.parametrize("col0", [0, 1, 3])
def test_normal_float32_exact(n_cols, col0):
    key, stream, step, row0 = random_address(13 + n_cols + col0)
    out = np.empty((33, n_cols), dtype=np.float32)
    P.normal(*scalars(key, stream, step, row0, col0), out)
    want = rng.normal(key, stream, step, 33, col0 + n_cols, dtype=np.float32, row0=row0)[:, col0:]
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0)])
def test_empty_outputs(shape):
    """An empty output, cut from inside a larger array, is filled without a write outside it."""
    key = rng.key_from_seed(3)
    rows = slice(1, 1 + shape[0])
    cols = slice(2, 2 + shape[1])
    for dtype, kernel in ((np.uint32, P.random_bits), (np.float64, P.normal)):
        buf = np.full((6, 9), 7, dtype=dtype)
        out = buf[rows, cols] if shape[1] else buf[rows, 2:2]
        out = out if out.flags.c_contiguous else np.ascontiguousarray(out)
        assert out.shape == shape and out.flags.c_contiguous
        kernel(*scalars(key, 0, 0, 0, 1), out)
        assert (buf == 7).all(), "a write outside the empty output"


# ---------------------------------------------------------------------------------------------------------------
# row segments: the helpers kernels call
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "col0,n", [(0, 0), (0, 1), (1, 1), (2, 2), (3, 1), (1, 3), (2, 7), (5, 33), (6, 1025), (4, 4), (7, 9)]
)
def test_row_segments(col0, n):
    key, stream, step, row0 = random_address(col0 * 31 + n)
    k0, k1, s, t, row, c0 = scalars(key, stream, step, row0 + 3, col0)
    bits = np.empty(n, dtype=np.uint32)
    P.fill_bits_row(k0, k1, s, t, row, c0, bits)
    np.testing.assert_array_equal(bits, ref_bits(key, stream, step, row0 + 3, 1, n, col0)[0])
    for dtype in (np.float32, np.float64):
        u = np.empty(n, dtype=dtype)
        P.fill_uniform_row(k0, k1, s, t, row, c0, u)
        want = rng.uniform(key, stream, step, 1, col0 + n, dtype=dtype, row0=row0 + 3)[0, col0:]
        np.testing.assert_array_equal(u, want)
    z = np.empty(n, dtype=np.float64)
    P.fill_normal_row(k0, k1, s, t, row, c0, z)
    np.testing.assert_array_equal(z, libm_normal(key, stream, step, 1, col0 + n, row0 + 3)[0, col0:])


def test_segments_tile_the_row():
    """Filling a row piece by piece, at arbitrary cut points, gives the row filled at once."""
    key, stream, step, row0 = random_address(99)
    k0, k1, s, t, row, _ = scalars(key, stream, step, row0, 0)
    whole = np.empty(103, dtype=np.float64)
    P.fill_normal_row(k0, k1, s, t, row, np.int64(0), whole)
    pieces = np.empty_like(whole)
    cuts = [0, 1, 2, 7, 8, 13, 50, 51, 103]
    for a, b in zip(cuts[:-1], cuts[1:]):
        P.fill_normal_row(k0, k1, s, t, row, np.int64(a), pieces[a:b])
    np.testing.assert_array_equal(pieces, whole)


# ---------------------------------------------------------------------------------------------------------------
# serial == parallel, whatever the thread count
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,dtype",
    [
        ("random_bits", np.uint32),
        ("uniform", np.float32),
        ("uniform", np.float64),
        ("normal", np.float32),
        ("normal", np.float64),
    ],
)
def test_parallel_bit_identical(name, dtype):
    key, stream, step, row0 = random_address(21)
    args = scalars(key, stream, step, row0, 3)
    a = np.empty((1025, 9), dtype=dtype)
    getattr(P, name)(*args, a)
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            b = np.empty_like(a)
            getattr(P, name + "_par")(*args, b)
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8))
    finally:
        numba.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------------
# random addresses
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def warm():
    # First use loads (or compiles) the kernels; keep it out of hypothesis's timing.
    out = np.empty((1, 1), dtype=np.uint32)
    P.random_bits(*scalars(rng.key_from_seed(0), 0, 0, 0, 0), out)
    return True


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k0=st.integers(0, U32 - 1),
    k1=st.integers(0, U32 - 1),
    stream=st.integers(0, U32 - 1),
    step=st.integers(0, U32 - 1),
    row0=st.integers(0, U32 - 40),
    n_rows=st.integers(0, 6),
    col0=st.integers(0, 70),
    n_cols=st.integers(0, 40),
)
def test_random_bits_hypothesis(warm, k0, k1, stream, step, row0, n_rows, col0, n_cols):
    key = np.array([k0, k1], dtype=np.uint32)
    out = np.empty((n_rows, n_cols), dtype=np.uint32)
    P.random_bits(*scalars(key, stream, step, row0, col0), out)
    np.testing.assert_array_equal(out, ref_bits(key, stream, step, row0, n_rows, n_cols, col0))
    f = np.empty((n_rows, n_cols), dtype=np.float64)
    P.normal(*scalars(key, stream, step, row0, col0), f)
    np.testing.assert_array_equal(f, libm_normal(key, stream, step, n_rows, col0 + n_cols, row0)[:, col0:])


_NO_FMA_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from tests.kernels.test_cpu_philox import libm_normal, random_address, scalars, P
bad = 0
for n_cols in (1, 5, 33):
    key, stream, step, row0 = random_address(11 + n_cols)
    out = np.empty((4, n_cols), dtype=np.float64)
    P.normal(*scalars(key, stream, step, row0, 0), out)
    bad += int((out != libm_normal(key, stream, step, 4, n_cols, row0)).sum())
print(bad)
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="compiles for the baseline x86-64 CPU")
def test_normal_is_bit_exact_when_compiled_without_fma(tmp_path):
    """The row fillers must not inherit the calling kernel's fast-math flags: under them LLVM splits
    ``2π·(m + ½)·2⁻²³`` into a product and a sum, which a CPU with FMA happens to round once (as the reference)
    and one without rounds twice. Baseline x86-64 code has no FMA and runs on every x86-64 processor."""
    env = dict(os.environ, NUMBA_CPU_NAME="x86-64", NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=str(tmp_path))
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-c", _NO_FMA_SCRIPT, root], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "0", f"{proc.stdout.strip()} normals differ from the formula without FMA"
