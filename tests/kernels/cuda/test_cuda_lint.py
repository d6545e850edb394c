"""The CUDA sources break none of the rules the CPU emulation relies on (tests/kernels/cuda/lint.py), and the lint
itself catches each construct it forbids."""

import pathlib

import pytest

from . import lint

SOURCES = sorted((pathlib.Path(__file__).resolve().parents[3] / "kernels" / "cuda").glob("*.cu*"))
BARRIERS = set().union(*(lint.barrier_functions(p.read_text()) for p in SOURCES))


def test_every_family_is_there():
    names = {p.name for p in SOURCES}
    assert {"dense.cu", "loss.cu", "penalties.cu", "latent.cu", "noise.cu", "optim.cu", "bf16.cu"} <= names
    assert "block_sum" in BARRIERS  # the reduction holds barriers, so a thread-dependent call of it is caught


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_source_is_clean(path):
    assert lint.check(path.read_text(), BARRIERS) == []


BAD = {
    "curand": "#include <curand_kernel.h>\n__device__ void f() { curandState s; }",
    "cub": "#include <cub/cub.cuh>\n",
    "cooperative groups": "namespace cg = cooperative_groups;",
    "inline assembly": '__device__ void f() { asm("trap;"); }',
    "tensor-core intrinsics": "__device__ void f() { nvcuda::wmma::fragment<int> a; }",
    "division of one integer literal by another": "__device__ float f(float x) { return x * (1/2); }",
    "without the f suffix": "__device__ float f(float x) { return 0.5 * x; }",
    "without the full mask": "__device__ float f(float v) { return __shfl_down_sync(0xffffu, v, 1); }",
    "without _sync": "__device__ float f(float v) { return __shfl_down(v, 1); }",
    "__shared__ outside": "__global__ void k() { __shared__ float s[32]; }",
    "thread-dependent path": "__global__ void k() { if (threadIdx.x < 5) { __syncthreads(); } }",
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_lint_catches(what):
    found = lint.check(BAD[what], BARRIERS)
    assert any(what in f for _, f in found), found


@pytest.mark.parametrize(
    "code",
    [
        "__global__ void k(float* s) { const long long r = threadIdx.x; if (r == 0) { float t = block_sum(s[0], s); }"
        " }",
        "__global__ void k(float* s, long long n) { if (threadIdx.x >= n) return; __syncthreads(); }",
        "__global__ void k(long long n) { for (long long i = threadIdx.x; i < n; i += 32) { __syncthreads(); } }",
        "__global__ void k(float* s) { const int lane = threadIdx.x & 31; while (lane < 3) __syncthreads(); }",
    ],
)
def test_lint_catches_divergent_barriers(code):
    assert any("thread-dependent" in f for _, f in lint.check(code, BARRIERS))


def test_lint_accepts_block_uniform_barriers():
    code = (
        "__global__ void k(float* s, long long n) { for (long long i = blockIdx.x; i < n; i += gridDim.x) {"
        " float t = block_sum(s[i], s); __syncthreads(); } const float x = 0.5f * 2.0f; }"
    )
    assert lint.check(code, BARRIERS) == []
