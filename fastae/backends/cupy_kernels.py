"""The CUDA kernels of ``fastae.kernels.cuda`` as CuPy sees them: sources, compiled modules and launch grids.

Each ``.cu`` file of ``kernels/cuda`` is one op family; :func:`function` compiles a family on first use through
``cupy.RawModule`` (NVRTC, with the family's directory on the include path; CuPy keeps the compiled binary in its
on-disk kernel cache) and returns one of its ``extern "C"`` entry points. The grids live here, in one place, so that
the emulation tests launch every kernel exactly as the backend does (``tests/kernels/cuda``).
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import fastae.kernels

SOURCE_DIR = pathlib.Path(fastae.kernels.__file__).resolve().parent / "cuda"
# NVRTC options: C++17, the family's headers; no fast math (NaN and inf must survive), FMA contraction as nvcc's default
OPTIONS = ("--std=c++17", f"-I{SOURCE_DIR}")

THREADS = 256  # per block for elementwise and reduction kernels: a multiple of 32, as block_sum requires
MAX_BLOCKS = 1024  # grid-stride loops cover the rest; also the size of a reduction's partials
ROW_THREADS = 128  # one block per row for the per-row reductions
MAX_ROW_BLOCKS = 65535
COL_TILE = (32, 8)  # col_sum: 32 adjacent columns, 8 rows of threads


def source(family: str) -> str:
    """The CUDA C source of ``family`` (the stem of a file of ``kernels/cuda``)."""
    path = SOURCE_DIR / f"{family}.cu"
    if not path.is_file():
        raise ValueError(f"no CUDA kernel family {family!r}: {path} does not exist")
    return path.read_text()


cp: Any = None  # CuPy, imported on the first compile: the sources and grids serve the tests without it


@functools.cache
def module(family: str):
    """``cupy.RawModule`` of ``family``, compiled on first use of one of its kernels."""
    global cp
    if cp is None:
        import cupy as cp
    return cp.RawModule(code=source(family), options=OPTIONS)


@functools.cache
def function(family: str, name: str):
    """The kernel ``name`` of ``family``: call it as ``k(grid, block, args, shared_mem=...)`` (CuPy's RawKernel)."""
    return module(family).get_function(name)


def blocks_for(size: int, threads: int | None = None) -> int:
    """Blocks of ``threads`` (default :data:`THREADS`) for a grid-stride loop over ``size`` elements: enough to cover
    it, at most :data:`MAX_BLOCKS`, and at least one (a kernel over nothing still writes its reduction's partial)."""
    return max(1, min(-(-size // (threads or THREADS)), MAX_BLOCKS))


def reduction_shared(threads: int, itemsize: int) -> int:
    """Shared memory of ``block_sum``: one value per warp."""
    return (threads // 32) * itemsize


def row_blocks(n: int) -> int:
    """Blocks of the one-block-per-row kernels."""
    return max(1, min(n, MAX_ROW_BLOCKS))


def col_blocks(m: int) -> int:
    """Blocks of ``col_sum``: one per tile of :data:`COL_TILE` adjacent columns, at most :data:`MAX_BLOCKS`."""
    return max(1, min(-(-m // COL_TILE[0]), MAX_BLOCKS))


FAMILIES = ("bf16", "checks", "dense", "latent", "loss", "noise", "optim", "penalties", "philox")
