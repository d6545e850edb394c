"""The CUDA kernel families compiled by the tier-2 harness (tests/cuda_emu) for direct launches on NumPy arrays,
with the two launch configurations every tier-2 test runs: the backend's own grids (fastae/backends/
cupy_kernels.py) and forced tiny ones (one warp per block, three blocks), under which small inputs span many
blocks and every grid-stride loop turns."""

from __future__ import annotations

import functools

from fastae.backends import cupy_kernels

from ...cuda_emu.harness import Module

LAUNCHES = ["backend", "tiny"]


@functools.cache
def family(name: str, code: str | None = None) -> Module:
    """The harness module of kernel family ``name`` (or of ``code``, a modified copy of its source)."""
    return Module(cupy_kernels.source(name) if code is None else code, cupy_kernels.OPTIONS)


def flat_grid(size: int, launch: str) -> tuple[tuple[int], tuple[int]]:
    """``(grid, block)`` of a grid-stride kernel over ``size`` elements."""
    if launch == "tiny":
        return (min(3, max(1, -(-size // 32))),), (32,)
    return (cupy_kernels.blocks_for(size),), (cupy_kernels.THREADS,)
