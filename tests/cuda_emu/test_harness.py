"""The tier-2 CUDA emulation (tests/cuda_emu): launches, barriers, warp intrinsics, atomics, strict argument types,
launch limits, error reports, the sanitizer mode, and that what it accepts and refuses is what NVRTC accepts and
refuses."""

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.cuda_emu.harness import Module, Param, sanitizer_env

ROOT = Path(__file__).resolve().parents[2]

# what kernels/cuda/common.cuh defines (the design's convention): dynamic shared memory only
COMMON = r"""
#ifdef FASTAE_EMULATION
#define FASTAE_SHARED(T, name) T* name = reinterpret_cast<T*>(fastae_emu_dynamic_shared())
#else
#define FASTAE_SHARED(T, name) \
    extern __shared__ unsigned long long fastae_smem_[]; T* name = reinterpret_cast<T*>(fastae_smem_)
#endif
"""

REDUCE = (
    COMMON
    + r"""
// the bugs are switches: zero_tail = 0 leaves the last block's tail unwritten, first_sync = 0 drops a barrier
template <typename T>
__device__ __forceinline__ void block_sum(const T* __restrict__ x, T* __restrict__ out, int n, int first_sync,
                                          int zero_tail) {
    FASTAE_SHARED(T, s);
    const unsigned tid = threadIdx.x;
    const unsigned i = blockIdx.x * blockDim.x + tid;
    if (i < (unsigned)n) s[tid] = x[i];
    else if (zero_tail) s[tid] = T(0);
    if (first_sync) __syncthreads();
    for (unsigned stride = 1; stride < blockDim.x; stride <<= 1) {
        if (tid % (2 * stride) == 0 && tid + stride < blockDim.x) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = s[0];
}

extern "C" __global__ void block_sum_f32(const float* __restrict__ x, float* __restrict__ out, int n) {
    block_sum(x, out, n, 1, 1);
}

extern "C" __global__ void block_sum_f64(const double* __restrict__ x,
                                         double* __restrict__ out,
                                         int n) {
    block_sum(x, out, n, 1, 1);
}

extern "C" __global__ void block_sum_buggy(const float* x, float* out, int n, int first_sync, int zero_tail) {
    block_sum(x, out, n, first_sync, zero_tail);
}

// y[i] = x[i] - x[i - 1] within a block, through shared memory: reads the left neighbour's store
extern "C" __global__ void left_diff(const float* x, float* y, int sync) {
    FASTAE_SHARED(float, s);
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = x[i];
    if (sync) __syncthreads();
    y[i] = s[threadIdx.x] - (threadIdx.x > 0 ? s[threadIdx.x - 1] : 0.0f);
}
"""
)

BARRIERS = r"""
extern "C" __global__ void sync_if5(float* x) {
    if (threadIdx.x < 5) __syncthreads();
    x[threadIdx.x] = 1.0f;
}

extern "C" __global__ void sync_after_return(float* x, int n) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (unsigned)n) return;
    x[i] = 1.0f;
    __syncthreads();
    x[i] += 1.0f;
}

extern "C" __global__ void sync_two_sites(float* x) {
    if (threadIdx.x & 1) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    x[threadIdx.x] = 1.0f;
}

extern "C" __global__ void sync_votes(const int* pred, int* out) {
    const int p = pred[threadIdx.x];
    const int c = __syncthreads_count(p);
    const int a = __syncthreads_and(p);
    const int o = __syncthreads_or(p);
    out[3 * threadIdx.x] = c;
    out[3 * threadIdx.x + 1] = a;
    out[3 * threadIdx.x + 2] = o;
}
"""

WARPS = (
    COMMON
    + r"""
extern "C" __global__ void warp_sum_f32(const float* x, float* out) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = x[i];
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    if ((threadIdx.x & 31) == 0) out[i / 32] = v;
}

extern "C" __global__ void warp_allreduce_f64(const double* x, double* out) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    double v = x[i];
    for (int m = 1; m < warpSize; m <<= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    out[i] = v;
}

extern "C" __global__ void warp_scan_i32(const int* x, int* out) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned lane = threadIdx.x % 32;
    int v = x[i];
    for (unsigned d = 1; d < 32; d <<= 1) {
        const int u = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d) v += u;
    }
    out[i] = v;
}

extern "C" __global__ void warp_widths(const float* x, float* idx8, float* down16, float* up4, float* xor4,
                                       float* idx35, long long* wide) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    const float v = x[i];
    idx8[i] = __shfl_sync(0xffffffffu, v, 3, 8);
    down16[i] = __shfl_down_sync(0xffffffffu, v, 5, 16);
    up4[i] = __shfl_up_sync(0xffffffffu, v, 1, 4);
    xor4[i] = __shfl_xor_sync(0xffffffffu, v, 2, 4);
    idx35[i] = __shfl_sync(0xffffffffu, v, 35);
    wide[i] = __shfl_sync(0xffffffffu, (long long)i << 33, 31 - (int)(threadIdx.x % 32));
}

extern "C" __global__ void warp_votes(const int* p, unsigned int* ballot, int* all, int* any) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    const int v = p[i];
    const unsigned b = __ballot_sync(0xffffffffu, v > 0);
    const int a = __all_sync(0xffffffffu, v > 0);
    const int y = __any_sync(0xffffffffu, v > 0);
    if ((threadIdx.x & 31) == 0) {
        ballot[i / 32] = b;
        all[i / 32] = a;
        any[i / 32] = y;
    }
}

// out[t] = x[t ^ 31]: lanes swap through shared memory, ordered by __syncwarp
extern "C" __global__ void warp_exchange(const float* x, float* out, int sync) {
    FASTAE_SHARED(float, s);
    const unsigned t = threadIdx.x;
    s[t] = x[blockIdx.x * blockDim.x + t];
    if (sync) __syncwarp();
    out[blockIdx.x * blockDim.x + t] = s[t ^ 31];
}

extern "C" __global__ void warp_bad_mask(float* x) {
    x[threadIdx.x] = __shfl_down_sync(0x0000ffffu, x[threadIdx.x], 1);
}

extern "C" __global__ void warp_lane_exits(float* x) {
    if (threadIdx.x == 7) return;
    x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
}

extern "C" __global__ void warp_mismatch(int* x) {
    if (threadIdx.x & 1) x[threadIdx.x] = __ballot_sync(0xffffffffu, 1);
    else x[threadIdx.x] = __any_sync(0xffffffffu, 1);
}

extern "C" __global__ void warp_vs_barrier(float* x) {
    if (threadIdx.x == 0) __syncthreads();
    else x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
}
"""
)

ATOMICS = r"""
extern "C" __global__ void atomics(int* ci, unsigned int* cu, unsigned long long* cull, float* cf, double* cd,
                                   int* cmax, int* cmin, unsigned int* cor, int* tickets, int* cas,
                                   unsigned int* inc, int* exch) {
    const int gid = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(ci, 1);
    atomicAdd(cu, (unsigned int)gid);
    atomicAdd(cull, 1ull << 40);
    atomicAdd(cf, 0.5f);
    atomicAdd(cd, 0.25);
    atomicMax(cmax, gid);
    atomicMin(cmin, -gid);
    atomicOr(cor, 1u << (gid % 32));
    tickets[gid] = atomicAdd(ci + 1, 1);
    int old = *cas, assumed;
    do {
        assumed = old;
        old = atomicCAS(cas, assumed, assumed + 2);
    } while (old != assumed);
    atomicInc(inc, 9u);
    atomicExch(exch, gid);
}

extern "C" __global__ void block_order(int* counter, int* order) {
    if (threadIdx.x == 0 && threadIdx.y == 0) {
        const int slot = atomicAdd(counter, 1);
        order[slot] = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    }
}
"""

TYPES = r"""
#define HALF_BOUND 64
extern "C" __global__ void echo(float* of, double* od, int* oi, unsigned int* ou,
                                long long* oll, unsigned long long* oull, unsigned short* ous,
                                const unsigned short* __restrict__ src, float f, double d, int i, unsigned int u,
                                long long ll, unsigned long long ull) {
    of[0] = f;
    od[0] = d;
    oi[0] = i;
    ou[0] = u;
    oll[0] = ll;
    oull[0] = ull;
    ous[0] = src ? src[0] : (unsigned short)7;
}

extern "C" __global__ void __launch_bounds__(2 * HALF_BOUND) bounded(float* x) { x[threadIdx.x] = 1.0f; }
"""

MISC = (
    COMMON
    + r"""
extern "C" __global__ void index3d(unsigned int* out, unsigned int* dims) {
    const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned nt = blockDim.x * blockDim.y * blockDim.z;
    out[b * nt + t] += b * nt + t + 1;
    if (b == 0 && t == 0) {
        dims[0] = gridDim.x; dims[1] = gridDim.y; dims[2] = gridDim.z;
        dims[3] = blockDim.x; dims[4] = blockDim.y; dims[5] = blockDim.z;
        dims[6] = warpSize;
    }
}

// what each block finds in its shared memory before writing it (then it writes it: the next block must not see that)
extern "C" __global__ void shared_probe(unsigned int* words, double* first, unsigned long long* align, int nwords) {
    FASTAE_SHARED(unsigned int, s);
    for (int k = threadIdx.x; k < nwords; k += blockDim.x) words[blockIdx.x * nwords + k] = s[k];
    if (threadIdx.x == 0) {
        first[blockIdx.x] = reinterpret_cast<double*>(s)[0];
        align[blockIdx.x] = (unsigned long long)s % 16;
    }
    __syncthreads();
    for (int k = threadIdx.x; k < nwords; k += blockDim.x) s[k] = 0u;
}

extern "C" __global__ void shared_overrun(float* out) {
    FASTAE_SHARED(float, s);
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

extern "C" __global__ void off_by_one(float* x, int n, int before) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) x[before ? i - 1 : i] = 1.0f;  // one element out, at one end or the other
}

extern "C" __global__ void read_next(const float* x, float* y, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i + 1];
}

extern "C" __global__ void strided(float* x, int n, int stride) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i * stride] += 1.0f;
}

extern "C" __global__ void alias_probe(const float* a, float* b, float* y) {
    b[1] = 7.0f;
    y[0] = a[0];  // a == b + 1 when the caller passes overlapping views
    y[1] = (const float*)b + 1 == a;
}

extern "C" __global__ void cast_away(const float* x) { const_cast<float*>(x)[0] = 1.0f; }

extern "C" __global__ void pointer_of(const float* x, unsigned long long* out) { out[0] = (unsigned long long)x; }

__device__ int deep(int depth) {
    volatile char buf[2048];
    buf[0] = (char)depth;
    buf[2047] = 1;
    return depth == 0 ? buf[0] : deep(depth - 1) + buf[2047];
}

extern "C" __global__ void faults(int* p, int* null_p, int mode) {
    if (mode == 0) __trap();
    if (mode == 1) assert(p[0] == 123);
    if (mode == 2) null_p[threadIdx.x] = 1;
    if (mode == 3) p[1] = deep(1000);
    if (mode == 4) p[2] = p[3] / p[4];
    if (mode == 5) {
        __syncthreads();
        if (threadIdx.x == 5) __trap();
        __syncthreads();
    }
    p[5] = 1;
}
"""
)

CONSTRUCTS = r"""
extern "C" __global__ void constructs(const float* x, const double* y, float* of, double* od, int* oi,
                                      unsigned int* ou, unsigned long long* oull) {
    const float a = x[0], b = x[1];
    const double c = y[0], e = y[1];
    const float qnan = __int_as_float(0x7fc00000);
    int k = 0;
    of[k++] = expf(a); of[k++] = exp(a); of[k++] = logf(b); of[k++] = log(b); of[k++] = log1pf(a);
    of[k++] = expm1f(a); of[k++] = tanhf(a); of[k++] = sqrtf(b); of[k++] = rsqrtf(b); of[k++] = fabsf(-a);
    of[k++] = fmaxf(a, b); of[k++] = fminf(a, b); of[k++] = fmaf(a, b, 1.0f); of[k++] = sinf(a); of[k++] = cosf(a);
    of[k++] = copysignf(a, -1.0f); of[k++] = floorf(b); of[k++] = ceilf(b); of[k++] = max(a, b); of[k++] = min(a, b);
    of[k++] = abs(-a); of[k++] = rsqrt(b); of[k++] = __uint_as_float(__float_as_uint(a)); of[k++] = __ldg(x + 1);
    of[k++] = fmaxf(a, qnan); of[k++] = max(qnan, b); of[k++] = floor(b); of[k++] = sqrt(b);
    float s, co;
    sincosf(a, &s, &co);
    of[k++] = s; of[k++] = co;
    const float4 v = __ldg(reinterpret_cast<const float4*>(x));
    const float2 w = make_float2(a, b);
    of[k++] = v.z + w.y;
    k = 0;
    od[k++] = exp(c); od[k++] = log(e); od[k++] = log1p(c); od[k++] = expm1(c); od[k++] = tanh(c); od[k++] = sqrt(e);
    od[k++] = rsqrt(e); od[k++] = fabs(-c); od[k++] = fmax(c, e); od[k++] = fmin(c, e); od[k++] = fma(c, e, 1.0);
    od[k++] = sin(c); od[k++] = cos(c); od[k++] = copysign(c, -1.0); od[k++] = floor(e); od[k++] = ceil(e);
    od[k++] = max(c, e); od[k++] = min(c, a); od[k++] = __longlong_as_double(__double_as_longlong(c));
    double ds, dc;
    sincos(c, &ds, &dc);
    od[k++] = ds; od[k++] = dc;
    k = 0;
    oi[k++] = min(3, -4); oi[k++] = max(3, -4); oi[k++] = abs(-7); oi[k++] = __popc(0xF0F0u); oi[k++] = __clz(1);
    oi[k++] = __ffs(8); oi[k++] = isfinite(a); oi[k++] = isnan(qnan); oi[k++] = isinf(c / 0.0); oi[k++] = warpSize;
    oi[k++] = __float_as_int(1.0f); oi[k++] = 7 / 2; oi[k++] = -7 / 2; oi[k++] = -7 % 3;
    const dim3 d3(2, 3);
    const uint3 t = threadIdx;
    oi[k++] = d3.x * d3.y * d3.z + t.x;
    static_assert(sizeof(float4) == 16 && alignof(float4) == 16 && alignof(double2) == 16, "vector types");
    k = 0;
    ou[k++] = __umulhi(0x80000000u, 4u); ou[k++] = __brev(1u); ou[k++] = min(-1, 2u); ou[k++] = max(-1, 2u);
    ou[k++] = __float_as_uint(-0.0f);
    k = 0;
    oull[k++] = __umul64hi(1ull << 63, 4ull); oull[k++] = max(1ll, 2ull); oull[k++] = __popcll(~0ull);
    oull[k++] = (unsigned long long)__double_as_longlong(1.0);
}
"""


def make(code, options=(), **kw):
    return Module(code, options, **kw)


@pytest.fixture(scope="module")
def reduce_mod():
    return make(REDUCE)


@pytest.fixture(scope="module")
def warp_mod():
    return make(WARPS)


@pytest.fixture(scope="module")
def misc_mod():
    return make(MISC)


@pytest.fixture(scope="module")
def atomic_mod():
    return make(ATOMICS)


@pytest.fixture(scope="module")
def types_mod():
    return make(TYPES)


# ---------------------------------------------------------------------------------------------------------------
# block reductions through shared memory, and what a missing barrier or an unwritten word does
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 2, 3, 32, 64, 100, 128, 256, 1024])
def test_block_sum_is_right_on_many_grids(reduce_mod, block):
    rng = np.random.default_rng(block)
    for n in {1, block - 1, block, 3 * block + 1, 7 * block} - {0}:
        grid = -(-n // block)
        for dtype, name in ((np.float32, "block_sum_f32"), (np.float64, "block_sum_f64")):
            x = rng.standard_normal(n).astype(dtype)
            out = np.full(grid, np.nan, dtype)
            reduce_mod.get_function(name)((grid,), (block,), (x, out, np.int32(n)), shared_mem=block * x.itemsize)
            pad = np.zeros(grid * block, np.float64)
            pad[:n] = x
            want = pad.reshape(grid, block).sum(axis=1)
            np.testing.assert_allclose(out, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_reading_shared_memory_before_writing_it_gives_nan(reduce_mod):
    k = reduce_mod.get_function("block_sum_buggy")
    x = np.ones(1000, np.float32)
    out = np.zeros(4, np.float32)
    k(4, 256, (x, out, np.int32(1000), np.int32(1), np.int32(0)), shared_mem=1024)  # the last block's tail unwritten
    np.testing.assert_array_equal(out[:3], 256.0)
    assert np.isnan(out[3])
    k(4, 256, (x, out, np.int32(1000), np.int32(1), np.int32(1)), shared_mem=1024)
    np.testing.assert_array_equal(out, [256, 256, 256, 232])


def test_a_missing_barrier_shows_whichever_way_the_race_goes(reduce_mod):
    x = np.arange(1, 8 * 128 + 1, dtype=np.float32)
    out = np.zeros(8, np.float32)
    buggy = reduce_mod.get_function("block_sum_buggy")
    want = x.reshape(8, 128).sum(axis=1)
    # the tree reads a higher thread's store: forward order shows it, reverse order hides it
    args = (x, out, np.int32(x.size), np.int32(0), np.int32(1))
    buggy(8, 128, args, 512, thread_order="forward")
    assert np.isnan(out).all()
    buggy(8, 128, args, 512, thread_order="reverse")
    np.testing.assert_array_equal(out, want)
    buggy(8, 128, args, 512)  # the default (shuffled) order shows it in most blocks
    assert (np.isnan(out) | (out != want)).sum() >= 4
    # the stencil reads a lower thread's store: the other way round
    diff = reduce_mod.get_function("left_diff")
    y = np.zeros_like(x)
    want = x - np.where(np.arange(x.size) % 128 == 0, 0, np.roll(x, 1))
    diff(8, 128, (x, y, np.int32(0)), 512, thread_order="forward")
    np.testing.assert_array_equal(y, want)
    diff(8, 128, (x, y, np.int32(0)), 512, thread_order="reverse")
    assert np.isnan(y.reshape(8, 128)[:, 1:]).all()
    diff(8, 128, (x, y, np.int32(0)), 512)
    assert (np.isnan(y) | (y != want)).sum() >= 100
    for order in ("shuffled", "forward", "reverse"):
        diff(8, 128, (x, y, np.int32(1)), 512, thread_order=order)
        np.testing.assert_array_equal(y, want)


def test_a_fixed_seed_makes_every_launch_repeat_exactly(reduce_mod):
    x = np.arange(1, 8 * 128 + 1, dtype=np.float32)
    buggy = reduce_mod.get_function("block_sum_buggy")
    outs = []
    for _ in range(2):
        outs.append(np.zeros(8, np.float32))
        buggy(8, 128, (x, outs[-1], np.int32(x.size), np.int32(0), np.int32(1)), 512)
    np.testing.assert_array_equal(outs[0], outs[1])


# ---------------------------------------------------------------------------------------------------------------
# barrier misuse is an error naming the kernel and the block, never a hang
# ---------------------------------------------------------------------------------------------------------------


def test_syncthreads_under_a_thread_dependent_branch_is_reported():
    m = make(BARRIERS)
    x = np.zeros(128, np.float32)
    m.get_function("sync_if5")(1, 5, (x,))  # uniform for a block of 5 threads
    with pytest.raises(RuntimeError, match=r"kernel 'sync_if5', block \(0,0,0\).*__syncthreads\(\).*exited"):
        m.get_function("sync_if5")(1, 6, (x,))
    with pytest.raises(RuntimeError, match=r"sync_after_return', block \(1,0,0\).*has exited after 0 barrier"):
        m.get_function("sync_after_return")(2, 64, (x, np.int32(100)), block_order="sequential")
    m.get_function("sync_after_return")(2, 32, (x, np.int32(64)))
    with pytest.raises(RuntimeError, match=r"sync_two_sites.*different __syncthreads\(\)"):
        m.get_function("sync_two_sites")(1, 64, (x,))
    m.get_function("sync_if5")(1, 5, (x,))  # and the emulation goes on after an error


def test_syncthreads_count_and_or():
    m = make(BARRIERS)
    out = np.zeros(3 * 96, np.int32)
    for pred in (np.arange(96) % 3 == 0, np.ones(96, bool), np.zeros(96, bool)):
        m.get_function("sync_votes")(1, 96, (pred.astype(np.int32), out))
        want = np.tile([pred.sum(), pred.all(), pred.any()], 96)
        np.testing.assert_array_equal(out, want)


# ---------------------------------------------------------------------------------------------------------------
# warp intrinsics
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [32, 64, 256, 1024])
def test_warp_shuffle_reductions(warp_mod, block):
    rng = np.random.default_rng(block)
    grid = 3
    n = grid * block
    x = rng.standard_normal(n).astype(np.float32)
    out = np.zeros(n // 32, np.float32)
    warp_mod.get_function("warp_sum_f32")(grid, block, (x, out))
    np.testing.assert_allclose(out, x.reshape(-1, 32).astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-5)
    xd = rng.standard_normal(n)
    outd = np.zeros(n)
    warp_mod.get_function("warp_allreduce_f64")(grid, block, (xd, outd))
    np.testing.assert_allclose(outd, np.repeat(xd.reshape(-1, 32).sum(axis=1), 32), rtol=1e-12)
    xi = rng.integers(-100, 100, n).astype(np.int32)
    outi = np.zeros(n, np.int32)
    warp_mod.get_function("warp_scan_i32")(grid, block, (xi, outi))
    np.testing.assert_array_equal(outi, np.cumsum(xi.reshape(-1, 32), axis=1).ravel())


def test_warp_shuffle_widths_and_out_of_segment_lanes(warp_mod):
    n = 64
    x = np.arange(n, dtype=np.float32) + 100
    outs = [np.zeros(n, np.float32) for _ in range(5)] + [np.zeros(n, np.int64)]
    warp_mod.get_function("warp_widths")(1, n, (x, *outs))
    lane = np.arange(n) % 32
    base = np.arange(n) - lane
    np.testing.assert_array_equal(outs[0], x[base + lane // 8 * 8 + 3])
    np.testing.assert_array_equal(outs[1], np.where(lane % 16 + 5 < 16, x[np.minimum(np.arange(n) + 5, n - 1)], x))
    np.testing.assert_array_equal(outs[2], np.where(lane % 4 >= 1, x[np.arange(n) - 1], x))
    np.testing.assert_array_equal(outs[3], x[base + (lane ^ 2)])
    np.testing.assert_array_equal(outs[4], x[base + 3])  # srcLane 35 is lane 35 % 32
    np.testing.assert_array_equal(outs[5], (base + 31 - lane).astype(np.int64) << 33)  # 64-bit values whole


def test_warp_votes_and_syncwarp(warp_mod):
    p = np.zeros(128, np.int32)
    p[5] = p[40] = 1
    p[64:96] = 1
    ballot, all_, any_ = np.zeros(4, np.uint32), np.zeros(4, np.int32), np.zeros(4, np.int32)
    warp_mod.get_function("warp_votes")(1, 128, (p, ballot, all_, any_))
    np.testing.assert_array_equal(ballot, [1 << 5, 1 << 8, 0xFFFFFFFF, 0])
    np.testing.assert_array_equal(all_, [0, 0, 1, 0])
    np.testing.assert_array_equal(any_, [1, 1, 1, 0])
    x = np.arange(128, dtype=np.float32)
    out = np.zeros_like(x)
    warp_mod.get_function("warp_exchange")(2, 64, (x, out, np.int32(1)), 256)
    np.testing.assert_array_equal(out, x[np.arange(128) ^ 31])
    warp_mod.get_function("warp_exchange")(2, 64, (x, out, np.int32(0)), 256)  # no __syncwarp: a race
    assert np.isnan(out).any()


@pytest.mark.parametrize(
    "name, block, message",
    [
        ("warp_bad_mask", 32, r"mask 0x0000ffff: the emulation supports only the full-warp mask"),
        ("warp_sum_f32", 48, r"48 threads \(not a multiple of 32\)"),
        ("warp_lane_exits", 32, r"thread \(7,0,0\) of the same warp has exited"),
        ("warp_mismatch", 64, r"reached __(ballot|any)_sync.*other lanes of its warp wait at __(any|ballot)_sync"),
        ("warp_vs_barrier", 64, r"(waits at __syncthreads\(\)|__syncthreads\(\) divergence)"),
    ],
)
def test_warp_intrinsic_misuse_is_reported(warp_mod, name, block, message):
    x = np.zeros(2 * block, np.float32 if name != "warp_mismatch" else np.int32)
    args = (x, np.zeros(2 * block, np.float32)) if name == "warp_sum_f32" else (x,)
    with pytest.raises(RuntimeError, match=rf"kernel '{name}', block .*{message}"):
        warp_mod.get_function(name)(1, block, args)


# ---------------------------------------------------------------------------------------------------------------
# atomics, block order, thread order
# ---------------------------------------------------------------------------------------------------------------


def test_atomics_across_blocks(atomic_mod):
    grid, block = 37, 96
    n = grid * block
    ci, cu, cull = np.zeros(2, np.int32), np.zeros(1, np.uint32), np.zeros(1, np.uint64)
    cf, cd = np.zeros(1, np.float32), np.zeros(1, np.float64)
    cmax, cmin, cor = np.full(1, -5, np.int32), np.full(1, 5, np.int32), np.zeros(1, np.uint32)
    tickets, cas, exch = np.full(n, -1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int32)
    inc = np.zeros(1, np.uint32)
    atomic_mod.get_function("atomics")(grid, block, (ci, cu, cull, cf, cd, cmax, cmin, cor, tickets, cas, inc, exch))
    assert ci.tolist() == [n, n]
    assert cu[0] == n * (n - 1) // 2
    assert int(cull[0]) == n << 40
    assert cf[0] == 0.5 * n and cd[0] == 0.25 * n
    assert cmax[0] == n - 1 and cmin[0] == -(n - 1)
    assert cor[0] == 0xFFFFFFFF
    np.testing.assert_array_equal(np.sort(tickets), np.arange(n))
    assert cas[0] == 2 * n and inc[0] == n % 10 and 0 <= exch[0] < n


def test_shuffled_block_order_differs_from_sequential_and_repeats(atomic_mod):
    k = atomic_mod.get_function("block_order")
    grid = (7, 5, 3)
    orders = {}
    for how in ("sequential", "shuffled", "shuffled"):
        counter, order = np.zeros(1, np.int32), np.full(105, -1, np.int32)
        k(grid, (2, 2), (counter, order), block_order=how)
        np.testing.assert_array_equal(np.sort(order), np.arange(105))
        orders.setdefault(how, []).append(order)
    np.testing.assert_array_equal(orders["sequential"][0], np.arange(105))
    assert (orders["shuffled"][0] != np.arange(105)).sum() > 50
    np.testing.assert_array_equal(orders["shuffled"][0], orders["shuffled"][1])
    counter, order = np.zeros(1, np.int32), np.full(1, -1, np.int32)
    k(1, 1, (counter, order))
    assert order[0] == 0


def test_thread_order_decides_which_thread_goes_first(atomic_mod):
    k = atomic_mod.get_function("atomics")
    block = 256

    def tickets(order):
        bufs = [np.zeros(2, np.int32), np.zeros(1, np.uint32), np.zeros(1, np.uint64), np.zeros(1, np.float32)]
        bufs += [np.zeros(1, np.float64), np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.uint32)]
        t = np.zeros(block, np.int32)
        k(
            1,
            block,
            (*bufs, t, np.zeros(1, np.int32), np.zeros(1, np.uint32), np.zeros(1, np.int32)),
            thread_order=order,
        )
        return t

    np.testing.assert_array_equal(tickets("forward"), np.arange(block))
    np.testing.assert_array_equal(tickets("reverse"), np.arange(block)[::-1])
    shuffled = tickets("shuffled")
    assert sorted(shuffled) == list(range(block)) and (shuffled != np.arange(block)).sum() > block // 2


# ---------------------------------------------------------------------------------------------------------------
# arguments: exactly the parameter's type, as the kernel's binary layout needs
# ---------------------------------------------------------------------------------------------------------------


class DeviceLike:
    """An object exposing only __cuda_array_interface__ (version 3), as CuPy's arrays do."""

    def __init__(self, a, readonly=False):
        self.a = a
        self.__cuda_array_interface__ = {
            "version": 3,
            "data": (a.ctypes.data, readonly),
            "typestr": a.dtype.str,
            "shape": a.shape,
            "strides": None,
        }


def _echo_args(**over):
    out = dict(
        of=np.zeros(1, np.float32), od=np.zeros(1), oi=np.zeros(1, np.int32), ou=np.zeros(1, np.uint32),
        oll=np.zeros(1, np.int64), oull=np.zeros(1, np.uint64), ous=np.zeros(1, np.uint16),
        src=np.array([0xBEEF], np.uint16), f=np.float32(1.5), d=-2.25, i=np.int32(-(2**31)),
        u=np.uint32(2**32 - 1), ll=-(2**63), ull=np.uint64(2**64 - 1),
    )  # fmt: skip
    out.update(over)
    return out


def test_parameters_are_parsed(types_mod):
    k = types_mod.get_function("echo")
    assert k.params[:2] == [Param("of", "float", True, False), Param("od", "double", True, False)]
    assert k.params[6:9] == [
        Param("ous", "unsigned short", True, False),
        Param("src", "unsigned short", True, True),
        Param("f", "float", False, False),
    ]
    assert [p.ctype for p in k.params[11:]] == ["unsigned int", "long long", "unsigned long long"]
    assert sorted(types_mod.kernels) == ["bounded", "echo"]
    with pytest.raises(KeyError, match=r"no kernel 'nope'.*\['bounded', 'echo'\]"):
        types_mod.get_function("nope")


def test_scalars_and_pointers_arrive_exactly(types_mod):
    a = _echo_args()
    types_mod.get_function("echo")(1, 1, tuple(a.values()))
    assert (a["of"][0], a["od"][0], a["oi"][0], a["ou"][0]) == (1.5, -2.25, -(2**31), 2**32 - 1)
    assert (int(a["oll"][0]), int(a["oull"][0]), a["ous"][0]) == (-(2**63), 2**64 - 1, 0xBEEF)
    a = _echo_args(src=None, d=np.float64(3.0), ll=np.int64(5))  # nullptr; NumPy scalars for double, long long
    a["ous"] = DeviceLike(ous := np.zeros(1, np.uint16))
    types_mod.get_function("echo")(1, 1, tuple(a.values()))
    assert ous[0] == 7 and a["od"][0] == 3.0 and a["oll"][0] == 5
    ro = np.array([9], np.uint16)
    ro.flags.writeable = False
    types_mod.get_function("echo")(1, 1, tuple(_echo_args(src=ro).values()))  # read-only to a const pointer is fine


@pytest.mark.parametrize(
    "over, message",
    [
        (dict(i=5), r"parameter 10 \(i: int\): expected numpy.int32, got int"),
        (dict(i=np.int64(5)), r"\(i: int\): expected numpy.int32, got numpy.int64"),
        (dict(f=1.5), r"\(f: float\): expected numpy.float32, got float"),
        (dict(f=np.float64(1.5)), r"\(f: float\): expected numpy.float32, got numpy.float64"),
        (dict(d=np.float32(1)), r"\(d: double\): expected numpy.float64 or float, got numpy.float32"),
        (dict(u=np.int32(1)), r"\(u: unsigned int\): expected numpy.uint32, got numpy.int32"),
        (dict(ll=True), r"\(ll: long long\): expected numpy.int64 or int, got bool"),
        (dict(ll=np.array(5)), r"\(ll: long long\): expected numpy.int64 or int, got ndarray"),
        (dict(ull=5), r"\(ull: unsigned long long\): expected numpy.uint64, got int"),
        (dict(of=np.zeros(1)), r"\(of: float\*\): expected an array of <f4 \(float32\), got <f8"),
        (dict(src=np.zeros(1, np.int16)), r"\(src: unsigned short\*\): expected an array of <u2"),
        (dict(od=[0.0]), r"\(od: double\*\): expected a device array or NumPy array, got list"),
        (dict(oi=np.int32(0)), r"\(oi: int\*\): expected a device array or NumPy array, got int32"),
        (dict(oi=DeviceLike(np.zeros(1, np.int32), readonly=True)), r"read-only array cannot be passed to a non-const"),
    ],
)
def test_argument_types_are_strict(types_mod, over, message):
    with pytest.raises(TypeError, match=rf"kernel 'echo' {message}" if message.startswith("par") else message):
        types_mod.get_function("echo")(1, 1, tuple(_echo_args(**over).values()))


def test_argument_count_and_container(types_mod):
    k = types_mod.get_function("bounded")
    with pytest.raises(TypeError, match="takes 1 arguments, got 2"):
        k(1, 1, (np.zeros(1, np.float32), np.zeros(1, np.float32)))
    with pytest.raises(TypeError, match="args must be a tuple"):
        k(1, 1, np.zeros(1, np.float32))


# ---------------------------------------------------------------------------------------------------------------
# launch limits, as the driver checks them
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grid, block, shared, error",
    [
        (1, 1025, 0, ValueError),
        (1, (1024, 2), 0, ValueError),
        (1, (1, 1, 65), 0, ValueError),
        (1, (2, 2, 2, 2), 0, ValueError),
        (1, 0, 0, ValueError),
        ((0, 1), 32, 0, ValueError),
        (2**31, 1, 0, ValueError),
        ((1, 65536), 1, 0, ValueError),
        ((1, 1, 65536), 1, 0, ValueError),
        (1, 32, 49153, ValueError),
        (1, 32, -1, ValueError),
        (1.0, 32, 0, TypeError),
        (1, (32, True), 0, TypeError),
        (1, 32, 1.5, TypeError),
    ],
)
def test_launch_limits(misc_mod, grid, block, shared, error):
    out, dims = np.zeros(4096, np.uint32), np.zeros(7, np.uint32)
    with pytest.raises(error, match="kernel 'index3d'"):
        misc_mod.get_function("index3d")(grid, block, (out, dims), shared)


def test_launch_bounds_and_orders_are_checked(types_mod, misc_mod):
    k = types_mod.get_function("bounded")
    assert k.max_threads_per_block == 128
    k(1, 128, (np.zeros(128, np.float32),))
    with pytest.raises(ValueError, match=r"more threads than its __launch_bounds__ \(128\)"):
        k(1, (16, 16), (np.zeros(256, np.float32),))
    with pytest.raises(ValueError, match="block_order"):
        k(1, 1, (np.zeros(1, np.float32),), block_order="random")
    with pytest.raises(ValueError, match="thread_order"):
        k(1, 1, (np.zeros(1, np.float32),), thread_order="backwards")


@pytest.mark.parametrize("grid, block", [(1, 1), ((3, 2, 2), (4, 2, 3)), ((2, 1, 3), (1024,)), (5, (16, 1, 64))])
def test_built_in_indices_in_three_dimensions(misc_mod, grid, block):
    g = np.prod(grid)
    b = np.prod(block)
    out, dims = np.zeros(g * b, np.uint32), np.zeros(7, np.uint32)
    misc_mod.get_function("index3d")(grid, block, (out, dims))
    np.testing.assert_array_equal(out, np.arange(1, g * b + 1))
    pad = lambda d: (tuple(d) if isinstance(d, tuple) else (d,)) + (1,) * (3 - (len(d) if isinstance(d, tuple) else 1))  # noqa: E731
    assert tuple(dims) == pad(grid) + pad(block) + (32,)


# ---------------------------------------------------------------------------------------------------------------
# shared memory fill and bounds; faults and traps become errors, and the emulation carries on
# ---------------------------------------------------------------------------------------------------------------


def test_shared_memory_is_nan_filled_at_every_block_and_aligned(misc_mod):
    nwords = 37
    words, first, align = np.zeros(3 * nwords, np.uint32), np.zeros(3), np.ones(3, np.uint64)
    misc_mod.get_function("shared_probe")(3, 64, (words, first, align, np.int32(nwords)), shared_mem=nwords * 4)
    assert (words == 0x7FF87FF8).all()
    assert np.isnan(first).all() and (align == 0).all()


def test_shared_memory_overrun_is_caught(misc_mod):
    out = np.zeros(64, np.float32)
    misc_mod.get_function("shared_overrun")(2, 64, (out,), shared_mem=256)
    with pytest.raises(RuntimeError, match=r"shared_overrun', block .*past the end of its dynamic shared memory \(252"):
        misc_mod.get_function("shared_overrun")(2, 64, (out,), shared_mem=252)


@pytest.mark.parametrize(
    "mode, message",
    [
        (0, r"thread \(\d+,0,0\): __trap\(\) at kernel.cu:\d+"),
        (1, r"assertion failed: p\[0\] == 123 at kernel.cu"),
        (2, r"segmentation fault at address 0x4?"),
        (3, r"stack overflow"),
        (4, r"arithmetic exception"),
        (5, r"thread \(5,0,0\): __trap\(\)"),
    ],
)
def test_traps_and_faults_become_errors(misc_mod, mode, message):
    p = np.zeros(8, np.int32)
    with pytest.raises(RuntimeError, match=rf"kernel 'faults', block \(\d,0,0\).*{message}"):
        misc_mod.get_function("faults")(2, 64, (p, None, np.int32(mode)))
    p[0] = 123
    misc_mod.get_function("faults")(2, 64, (p, None, np.int32(1)))  # the assertion holds now
    words, first, align = np.zeros(64, np.uint32), np.zeros(1), np.ones(1, np.uint64)
    misc_mod.get_function("shared_probe")(1, 64, (words, first, align, np.int32(64)), shared_mem=256)
    assert p[5] == 1 and (words == 0x7FF87FF8).all()


def test_global_memory_out_of_the_arguments_bounds_is_caught(misc_mod):
    x = np.zeros(1000, np.float32)
    with pytest.raises(RuntimeError, match=r"off_by_one': wrote past the end of argument 0 \(x: float\*\)"):
        misc_mod.get_function("off_by_one")(4, 256, (x, np.int32(1000), np.int32(0)))
    assert (x == 1).all()  # what it wrote inside the array still arrives
    with pytest.raises(RuntimeError, match=r"wrote before the start of argument 0 \(x: float\*\)"):
        misc_mod.get_function("off_by_one")(4, 256, (x[1:], np.int32(998), np.int32(1)))
    y = np.zeros(1000, np.float32)
    misc_mod.get_function("read_next")(4, 256, (np.ones(1000, np.float32), y, np.int32(1000)))
    assert (y[:-1] == 1).all() and np.isnan(y[-1])  # the element past the end reads as NaN
    with pytest.raises(RuntimeError, match=r"wrote to the memory of const argument 0 \(x: const float\*\)"):
        misc_mod.get_function("cast_away")(1, 1, (np.zeros(4, np.float32),))
    base = np.zeros(30, np.float32)
    misc_mod.get_function("strided")(1, 32, (base[::3], np.int32(10), np.int32(3)))  # a strided view's extent
    np.testing.assert_array_equal(base, np.arange(30) % 3 == 0)


def test_argument_copies_keep_aliasing_and_alignment(misc_mod, monkeypatch):
    buf, y = np.zeros(8, np.float32), np.zeros(2, np.float32)
    misc_mod.get_function("alias_probe")(1, 1, (buf[1:], buf, y))
    assert y.tolist() == [7.0, 1.0] and buf[1] == 7
    big, out = np.zeros(64, np.float32), np.zeros(1, np.uint64)
    misc_mod.get_function("pointer_of")(1, 1, (big[3:], out))
    assert int(out[0]) != big[3:].ctypes.data and int(out[0]) % 64 == big[3:].ctypes.data % 64
    monkeypatch.setenv("FASTAE_CUDA_EMU_GUARD", "0")  # the knob: pass the arrays' own memory
    misc_mod.get_function("pointer_of")(1, 1, (big[3:], out))
    assert int(out[0]) == big[3:].ctypes.data


def test_many_barriers_in_big_grids_are_right(reduce_mod):
    """Big grids with many barriers give the right sums launch after launch (how fast is for benchmarks to say,
    not tests: these machines are shared)."""
    k = reduce_mod.get_function("block_sum_f32")
    x = np.ones(100 * 256, np.float32)
    for _ in range(10):
        out = np.zeros(100, np.float32)
        k(100, 256, (x, out, np.int32(x.size)), shared_mem=1024)  # 9 barriers in each of 25,600 threads
        assert (out == 256).all()


def test_portable_ucontext_fibers_give_the_same_results(monkeypatch):
    monkeypatch.setenv("FASTAE_CUDA_EMU_UCONTEXT", "1")
    m = make(REDUCE + WARPS.replace(COMMON, ""))
    x = np.arange(512, dtype=np.float32)
    out = np.zeros(2, np.float32)
    m.get_function("block_sum_f32")(2, 256, (x, out, np.int32(512)), 1024)
    np.testing.assert_array_equal(out, x.reshape(2, 256).sum(axis=1))
    ws = np.zeros(16, np.float32)
    m.get_function("warp_sum_f32")(2, 256, (x, ws))
    np.testing.assert_array_equal(ws, x.reshape(16, 32).sum(axis=1))
    with pytest.raises(RuntimeError, match="exited"):
        m.get_function("warp_lane_exits")(1, 32, (x,))
    m.get_function("block_sum_f32")(2, 256, (x, out, np.int32(512)), 1024)


# ---------------------------------------------------------------------------------------------------------------
# the module: options, cache, a real-looking kernel file, and what is refused
# ---------------------------------------------------------------------------------------------------------------

REAL_COMMON = (
    COMMON
    + r"""
#pragma once
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int offset = warpSize / 2; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// sum over the block; every thread gets it; the block is whole warps, at most 32 of them
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : T(0);
    v = warp_sum(v);
    if (lane == 0 && warp == 0) scratch[0] = v;
    __syncthreads();
    v = scratch[0];
    __syncthreads();
    return v;
}

template <typename T>
__device__ __forceinline__ T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
"""
)

REAL_KERNELS = r"""
#include "common.cuh"

// y = sigmoid(x + b[col]) over a row-major (rows, cols) matrix, grid-stride
template <typename T>
__device__ __forceinline__ void bias_sigmoid(const T* __restrict__ x, const T* __restrict__ b, T* __restrict__ y,
                                             long long rows, int cols) {
    const long long total = rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        y[i] = sigmoid(x[i] + b[i % cols]);
    }
}

// column sums: one block per column, a block reduction per chunk of rows
template <typename T>
__device__ __forceinline__ void column_sum(const T* __restrict__ x, T* __restrict__ out, long long rows, int cols) {
    FASTAE_SHARED(T, scratch);
    const int col = blockIdx.x;
    T acc = T(0);
    for (long long r = threadIdx.x; r < rows; r += blockDim.x) acc += x[r * cols + col];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[col] = acc;
}

extern "C" __global__ void __launch_bounds__(256) bias_sigmoid_f32(const float* __restrict__ x,
                                                                   const float* __restrict__ b,
                                                                   float* __restrict__ y, long long rows,
                                                                   int cols) {
    bias_sigmoid(x, b, y, rows, cols);
}

extern "C" __global__ void __launch_bounds__(256) bias_sigmoid_f64(const double* __restrict__ x,
                                                                   const double* __restrict__ b,
                                                                   double* __restrict__ y, long long rows,
                                                                   int cols) {
    bias_sigmoid(x, b, y, rows, cols);
}

extern "C" __global__ void __launch_bounds__(256) column_sum_f32(const float* __restrict__ x,
                                                                 float* __restrict__ out,
                                                                 long long rows, int cols) {
    column_sum(x, out, rows, cols);
}

extern "C" __global__ void __launch_bounds__(256) column_sum_f64(const double* __restrict__ x,
                                                                 double* __restrict__ out,
                                                                 long long rows, int cols) {
    column_sum(x, out, rows, cols);
}
"""

NVRTC_OPTIONS = ("-arch=sm_90", "--std=c++17", "-Xptxas=-v", "--fmad=true")


@pytest.fixture
def real_dir(tmp_path):
    (tmp_path / "common.cuh").write_text(REAL_COMMON)
    return tmp_path


def test_a_real_looking_kernel_file_with_a_header(real_dir):
    m = make(REAL_KERNELS, ("-I", str(real_dir), *NVRTC_OPTIONS))
    assert m.get_function("column_sum_f64").max_threads_per_block == 256
    rng = np.random.default_rng(0)
    rows, cols = 333, 7
    for dtype, sfx, tol in ((np.float32, "f32", 1e-5), (np.float64, "f64", 1e-12)):
        x = rng.standard_normal((rows, cols)).astype(dtype)
        b = rng.standard_normal(cols).astype(dtype)
        y = np.empty_like(x)
        m.get_function(f"bias_sigmoid_{sfx}")(13, 256, (x, b, y, rows, np.int32(cols)))
        np.testing.assert_allclose(y, 1 / (1 + np.exp(-(x + b))), rtol=tol)
        out = np.empty(cols, dtype)
        m.get_function(f"column_sum_{sfx}")(cols, 128, (x, out, rows, np.int32(cols)), 32 * x.itemsize)
        np.testing.assert_allclose(out, x.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)


def test_options(real_dir):
    code = '#include "common.cuh"\nextern "C" __global__ void k(int* x) { x[0] = VALUE + EXTRA; }\n'
    x = np.zeros(1, np.int32)
    m = make(code, [f"-I{real_dir}", "-DVALUE=40", "-D", "EXTRA=2", "-std=c++17", "-arch=sm_80"])
    m.get_function("k")(1, 1, (x,))
    assert x[0] == 42
    arch = make('extern "C" __global__ void k(int* x) { x[0] = __CUDA_ARCH__; }', ["-arch=sm_80"])
    arch.get_function("k")(1, 1, (x,))
    assert x[0] == 800
    for bad in ("--use_fast_math", "-O3", "-G"):
        with pytest.raises(ValueError, match="fast math|unsupported compiler option"):
            make(code, [bad])
    with pytest.raises(ValueError, match="needs a value"):
        make(code, ["-I"])


def test_a_changed_header_is_compiled_again(real_dir):
    code = '#include "value.cuh"\nextern "C" __global__ void k(int* x) { x[0] = VALUE; }\n'
    x = np.zeros(1, np.int32)
    for value in (1, 2, 1):
        (real_dir / "value.cuh").write_text(f"#define VALUE {value}\n")
        make(code, [f"-I{real_dir}"]).get_function("k")(1, 1, (x,))
        assert x[0] == value


def test_compile_errors_carry_the_compiler_output():
    message = r"(?s)g\+\+ failed.*kernel.cu:2:\d+: error: .undefined_name. was not declared"
    with pytest.raises(RuntimeError, match=message):
        make('extern "C" __global__ void k(float* x) {\n  x[0] = undefined_name;\n}\n')


def test_sanitize_needs_the_sanitizer_runtime_loaded():
    with pytest.raises(RuntimeError, match="sanitizer_env"):
        make('extern "C" __global__ void k(float* x) { x[0] = 1.0f; }', sanitize=True)


KERNEL = 'extern "C" __global__ void k(float* x, double* y, int* i) {\n%s\n}\n'
# constructs g++ would take but NVRTC does not: the emulation refuses them too
REFUSED = {
    "system header": "#include <cmath>\n" + KERNEL % "x[0] = 1.0f;",
    "stdint types": KERNEL % "uint32_t a = 1; i[0] = a;",
    "INFINITY": KERNEL % "x[0] = INFINITY;",
    "std namespace": KERNEL % "x[0] = std::min(x[0], x[1]);",
    "warpSize array bound": KERNEL % "int a[warpSize]; a[0] = 1; i[0] = a[0];",
    "constexpr warpSize": KERNEL % "constexpr int w = warpSize; i[0] = w;",
    "assign threadIdx": KERNEL % "threadIdx.x = 1;",
    "variable length array": KERNEL % "int n = i[0]; float a[n]; a[0] = 1; x[0] = a[0];",
    "mixed fmax": KERNEL % "y[0] = fmax(x[0], 1.0);",
    "exp of int": KERNEL % "y[0] = exp(i[0]);",
    "max float int": KERNEL % "x[0] = max(x[0], 1);",
    "long long atomicAdd": KERNEL % "atomicAdd((long long*)y, 1LL);",
    "double atomicExch": KERNEL % "atomicExch(y, 1.0);",
    "exceptions": KERNEL % "if (x[0] > 0) throw 1;",
}
# refused by the project's conventions (static shared memory), though NVRTC takes it
PROJECT_REFUSED = {"static shared": KERNEL % "__shared__ float s[32]; s[threadIdx.x] = 1; x[0] = s[0];"}


@pytest.mark.parametrize("name", [*REFUSED, *PROJECT_REFUSED])
def test_what_nvrtc_refuses_the_emulation_refuses(name):
    code = {**REFUSED, **PROJECT_REFUSED}[name]
    with pytest.raises(RuntimeError, match="g\\+\\+ failed"):
        make(code)


def test_constructs_nvrtc_offers_work(misc_mod):
    m = make(CONSTRUCTS)
    x = np.array([0.75, 2.5, 3.0, 4.0], np.float32)
    y = np.array([0.5, 2.25])
    of, od, oi = np.zeros(31, np.float32), np.zeros(21), np.zeros(15, np.int32)
    ou, oull = np.zeros(5, np.uint32), np.zeros(4, np.uint64)
    m.get_function("constructs")(1, 1, (x, y, of, od, oi, ou, oull))
    a, b = x[0], x[1]
    f = np.float32
    want_f = [np.exp(a), np.exp(a), np.log(b), np.log(b), np.log1p(a), np.expm1(a), np.tanh(a), np.sqrt(b),
              1 / np.sqrt(b), a, b, a, a * b + 1, np.sin(a), np.cos(a), -a, 2, 3, b, a, a, 1 / np.sqrt(b), a, b, a, b,
              2, np.sqrt(b), np.sin(a), np.cos(a), x[2] + b]  # fmt: skip
    np.testing.assert_allclose(of, np.array(want_f, f), rtol=2e-7)
    c, e = y
    want_d = [np.exp(c), np.log(e), np.log1p(c), np.expm1(c), np.tanh(c), np.sqrt(e), 1 / np.sqrt(e), c, e, c,
              c * e + 1, np.sin(c), np.cos(c), -c, 2, 3, e, c, c, np.sin(c), np.cos(c)]  # fmt: skip
    np.testing.assert_allclose(od, want_d, rtol=1e-15)
    assert oi.tolist() == [-4, 3, 7, 8, 31, 4, 1, 1, 1, 32, 0x3F800000, 3, -3, -1, 6]
    assert ou.tolist() == [2, 0x80000000, 2, 0xFFFFFFFF, 0x80000000]
    assert oull.tolist() == [2, 2, 64, 0x3FF0000000000000]


# ---------------------------------------------------------------------------------------------------------------
# NVRTC compiles the same sources: the constructs the emulation takes are real CUDA
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def nvrtc(monkeypatch):
    try:
        import cupy.cuda.compiler as compiler
    except Exception as exc:  # noqa: BLE001 - no CuPy / no CUDA libraries: nothing to check against
        pytest.skip(f"CuPy's NVRTC is not available: {exc}")
    # compile to a cubin for sm_90 without asking a (missing) device which architecture it is
    monkeypatch.setattr(compiler, "_get_arch_for_options_for_nvrtc", lambda arch=None: (f"-arch=sm_{arch}", "cubin"))

    def compile(code, options=()):
        opts = tuple(o for o in options if not o.startswith("-arch")) + ("-Xptxas=-v",)
        compiler.compile_using_nvrtc(code, options=opts, arch="90", log_stream=io.StringIO())

    try:
        compile('extern "C" __global__ void probe(float* x) { x[0] = 1.0f; }')
    except compiler.CompileException:
        raise
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"NVRTC cannot run here: {exc}")
    return compile, compiler.CompileException


def test_every_test_kernel_compiles_under_nvrtc(nvrtc, real_dir):
    compile, _ = nvrtc
    for code in (REDUCE, BARRIERS, WARPS, ATOMICS, TYPES, MISC, CONSTRUCTS, *PROJECT_REFUSED.values()):
        compile(code)
    compile(REAL_KERNELS, ("-I" + str(real_dir), *NVRTC_OPTIONS))


@pytest.mark.parametrize("name", list(REFUSED))
def test_nvrtc_refuses_what_the_emulation_refuses(nvrtc, name):
    compile, error = nvrtc
    with pytest.raises(error):
        compile(REFUSED[name])


# ---------------------------------------------------------------------------------------------------------------
# sanitizer mode, in subprocesses started with sanitizer_env()
# ---------------------------------------------------------------------------------------------------------------

SANITIZED = textwrap.dedent(
    r"""
    import sys
    import numpy as np
    from tests.cuda_emu.harness import Module

    code = sys.stdin.read()
    m = Module(code)
    assert m.sanitize
    case = sys.argv[1]
    x = np.arange(1000, dtype=np.float32)
    if case == "clean":
        out = np.zeros(4, np.float32)
        m.get_function("block_sum_f32")(4, 256, (x, out, np.int32(1000)), 1024)
        assert out.tolist() == [x[i * 256:(i + 1) * 256].sum() for i in range(4)], out
        ws = np.zeros(8, np.float32)
        m.get_function("warp_sum_f32")(1, 256, (x, ws))
        assert np.allclose(ws, x[:256].reshape(8, 32).sum(axis=1))
        try:
            m.get_function("warp_lane_exits")(1, 32, (x,))
        except RuntimeError:
            pass
        m.get_function("block_sum_f32")(4, 256, (x, out, np.int32(1000)), 1024)
        print("clean")
    elif case == "global":
        m.get_function("oob_global")(4, 256, (x, np.int32(1000)))
    elif case == "before":
        m.get_function("oob_before")(1, 32, (x[4:],))
    elif case == "shared":
        m.get_function("oob_shared")(1, 64, (x,), 252)
    elif case == "ubsan":
        m.get_function("overflow")(1, 1, (np.array([2**30], np.int32),))
    print("no report")
    """
)

SANITIZED_KERNELS = (
    REDUCE
    + WARPS.replace(COMMON, "")
    + r"""
extern "C" __global__ void oob_global(float* x, int n) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= (unsigned)n) x[i] = 1.0f;  // one past the end
}
extern "C" __global__ void oob_before(float* x) { x[(int)threadIdx.x - 1] = 1.0f; }  // one before the start
extern "C" __global__ void oob_shared(float* x) {
    FASTAE_SHARED(float, s);
    s[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    x[threadIdx.x] = s[63 - threadIdx.x];
}
extern "C" __global__ void overflow(int* x) { x[0] = x[0] * 4; }
"""
)


@pytest.fixture(scope="module")
def sanitized():
    try:
        env = sanitizer_env()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])

    def run(case):
        return subprocess.run(
            [sys.executable, "-c", SANITIZED, case], input=SANITIZED_KERNELS, env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    return run


def test_a_clean_kernel_passes_under_the_sanitizers(sanitized):
    proc = sanitized("clean")
    assert proc.returncode == 0, proc.stderr
    assert "clean" in proc.stdout and "ERROR" not in proc.stderr


@pytest.mark.parametrize(
    "case, report",
    [
        ("global", "AddressSanitizer: heap-buffer-overflow"),
        ("before", "AddressSanitizer: use-after-poison"),  # the poisoned bytes before the argument's copy
        ("shared", "AddressSanitizer: heap-buffer-overflow"),
        ("ubsan", "runtime error: signed integer overflow"),
    ],
)
def test_the_sanitizers_catch_what_the_plain_build_cannot(sanitized, case, report):
    proc = sanitized(case)
    assert proc.returncode != 0 and "no report" not in proc.stdout
    assert report in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == (86 if case != "ubsan" else 1)
    assert "kernel.cu" in proc.stderr
