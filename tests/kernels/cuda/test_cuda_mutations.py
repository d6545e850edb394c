"""Planted bugs: a copy of a kernel family with one defect put in must fail the same tier-2 check that its original
passes. Each case names the check that catches it:

* a removed ``__syncthreads`` in ``block_sum``: the first warp reads the other warps' partial sums before they are
  written, and reads the NaN the harness fills shared memory with (the comparison with the reference);
* a removed ``__syncthreads`` between the tiles of ``col_sum``: a row of threads overwrites the shared partial
  sums of the tile another row is still adding (the comparison, under the harness's shuffled thread order);
* an off-by-one bound in ``output_rows`` (``j <= m``): each row reads one element past its end, and the last row
  past the arrays, into the guard the harness fills with NaN (the comparison; the sanitizer run reports the same
  read as a heap overflow, test_cuda_sanitized.py);
* an integer literal in the squared error (``(1/2) * d * d``, which is 0): the comparison.
"""

import numpy as np
import pytest

from fastae.backends import cupy_kernels

from .emulated import family


def _mutated(name, old, new):
    """Family ``name``'s source with its one occurrence of ``old`` replaced by ``new``."""
    code = cupy_kernels.source(name)
    assert code.count(old) == 1, (name, old)
    return code.replace(old, new)


def _with_header(family_name, header):
    """``family_name``'s source with common.cuh inlined from ``header`` (a modified copy)."""
    code = cupy_kernels.source(family_name)
    return code.replace('#include "common.cuh"', header.replace("#pragma once", ""))


def check_output_rows(code):
    """output_rows_f32 on 300 columns with the backend's block of 128 threads (4 warps) against float64 sums."""
    r = np.random.default_rng(0)
    n, m = 5, 300
    a, c, x = (
        r.normal(size=(n, m)).astype(np.float32),
        r.normal(size=m).astype(np.float32),
        r.normal(size=(n, m)).astype(np.float32),
    )
    rows = np.full(n, -1.0, dtype=np.float32)
    t = cupy_kernels.ROW_THREADS
    k = family("loss", code).get_function("output_rows_f32")
    k(
        (cupy_kernels.row_blocks(n),),
        (t,),
        (a, c, x, np.int64(n), np.int64(m), np.int32(0), rows),
        shared_mem=(t // 32) * 4,
    )
    want = (0.5 * (a.astype(np.float64) + c - x) ** 2).sum(axis=1)
    np.testing.assert_allclose(rows, want, rtol=1e-5, err_msg="output_rows against float64")


def check_col_sum(code):
    """col_sum_f64 over 70 columns (three tiles of 32) with blocks of (32, 2) threads, one block for all tiles."""
    d = np.random.default_rng(1).normal(size=(9, 70))
    out = np.full(70, np.nan)
    k = family("dense", code).get_function("col_sum_f64")
    k((1,), (32, 2), (d, np.int64(9), np.int64(70), out), shared_mem=32 * 2 * 8)
    np.testing.assert_allclose(out, d.sum(axis=0), rtol=1e-12, err_msg="col_sum against float64")


def check_mse_loss(code):
    """output_rows_f32 with the squared error, small block, against float64."""
    check_output_rows(code)


HEADER = (cupy_kernels.SOURCE_DIR / "common.cuh").read_text()


def _removed(text, old, new):
    assert text.count(old) == 1, old
    return text.replace(old, new)


CASES = {
    "block_sum without its first barrier": (
        check_output_rows,
        lambda: _with_header(
            "loss",
            _removed(
                HEADER,
                "    if (lane == 0) smem[warp] = v;\n    __syncthreads();\n",
                "    if (lane == 0) smem[warp] = v;\n",
            ),
        ),
    ),
    "col_sum without the barrier between tiles": (
        check_col_sum,
        lambda: _mutated("dense", "        __syncthreads();  // part is rewritten by the next tile\n", ""),
    ),
    "output_rows bound off by one": (
        check_output_rows,
        lambda: _mutated(
            "loss",
            "j < m; j += block_threads()) acc += elementwise_loss",
            "j <= m; j += block_threads()) acc += elementwise_loss",
        ),
    ),
    "integer literal in the squared error": (
        check_mse_loss,
        lambda: _mutated("loss", "return T(0.5f) * d * d;", "return T(1 / 2) * d * d;"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_original_passes_and_the_planted_bug_is_caught(case):
    check, mutate = CASES[case]
    check(None)  # the real source passes the check
    code = mutate()
    family(
        "loss" if "output_rows" in case or "squared" in case or "block_sum" in case else "dense", code
    )  # it compiles
    with pytest.raises(AssertionError) as caught:  # the comparison catches it, not a compile or launch error
        check(code)
    first = next((line for line in str(caught.value).splitlines() if line.strip()), "")
    print(f"{case}: caught by {check.__name__}: {first[:160]}")
