// Shared by every kernel family: index types, grid-stride loops, typed math, activations, block reductions,
// bfloat16 rounding. Rules (tests/test_cuda_lint.py): extern "C" entry points, 64-bit indices, tail guards on every
// grid size, float literals (1.0f, never 1.0 or 1/2), __syncthreads only on block-uniform paths, warp intrinsics only
// as full-mask _sync calls, shared memory only through FASTAE_SHARED.
#pragma once

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;

#define FASTAE_FULL_MASK 0xffffffffu

#ifdef FASTAE_EMULATION
#define FASTAE_SHARED(T, name) T* name = reinterpret_cast<T*>(fastae_emu_dynamic_shared())
#else
#define FASTAE_SHARED(T, name)                                                                                  \
    extern __shared__ unsigned long long fastae_smem_[];                                                        \
    T* name = reinterpret_cast<T*>(fastae_smem_)
#endif

// Flat thread index and count of a 1-D launch, in 64 bits so that n * m past 2**31 does not wrap.
__device__ __forceinline__ i64 flat_index() { return (i64)blockIdx.x * (i64)blockDim.x + (i64)threadIdx.x; }
__device__ __forceinline__ i64 flat_stride() { return (i64)gridDim.x * (i64)blockDim.x; }
__device__ __forceinline__ u32 block_threads() { return blockDim.x * blockDim.y * blockDim.z; }
__device__ __forceinline__ u32 block_rank() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

// Typed math: one name per operation for float and double, so templates never promote a float to double.
__device__ __forceinline__ float t_exp(float v) { return expf(v); }
__device__ __forceinline__ double t_exp(double v) { return exp(v); }
__device__ __forceinline__ float t_log(float v) { return logf(v); }
__device__ __forceinline__ double t_log(double v) { return log(v); }
__device__ __forceinline__ float t_log1p(float v) { return log1pf(v); }
__device__ __forceinline__ double t_log1p(double v) { return log1p(v); }
__device__ __forceinline__ float t_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double t_tanh(double v) { return tanh(v); }
__device__ __forceinline__ float t_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double t_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float t_abs(float v) { return fabsf(v); }
__device__ __forceinline__ double t_abs(double v) { return fabs(v); }
__device__ __forceinline__ float t_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double t_max(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float t_min(float a, float b) { return fminf(a, b); }
__device__ __forceinline__ double t_min(double a, double b) { return fmin(a, b); }
template <typename T> __device__ __forceinline__ bool t_finite(T v) { return isfinite(v); }

// NumPy's clip: NaN stays NaN (fmin/fmax would drop it).
template <typename T> __device__ __forceinline__ T t_clip(T v, T lo, T hi) { return v < lo ? lo : (v > hi ? hi : v); }

template <typename T> __device__ __forceinline__ T t_sign(T v)
{
    return v > T(0.0f) ? T(1.0f) : (v < T(0.0f) ? T(-1.0f) : v);  // sign(±0) = ±0 and sign(NaN) = NaN, as np.sign
}

// Activation codes: the backend's ACTIVATION_CODES.
#define ACT_LINEAR 0
#define ACT_SIGMOID 1
#define ACT_TANH 2
#define ACT_RELU 3

template <typename T> __device__ __forceinline__ T sigmoid(T a)
{
    if (a >= T(0.0f)) return T(1.0f) / (T(1.0f) + t_exp(-a));
    const T e = t_exp(a);  // a < 0: exp cannot overflow
    return e / (T(1.0f) + e);
}

template <typename T> __device__ __forceinline__ T act_apply(int act, T a)
{
    switch (act) {
    case ACT_SIGMOID: return sigmoid(a);
    case ACT_TANH: return t_tanh(a);
    case ACT_RELU: return a > T(0.0f) ? a : (a == a ? T(0.0f) : a);  // max(a, 0), NaN kept
    default: return a;
    }
}

// f'(a) written through h = f(a).
template <typename T> __device__ __forceinline__ T act_derivative(int act, T h)
{
    switch (act) {
    case ACT_SIGMOID: return h * (T(1.0f) - h);
    case ACT_TANH: return T(1.0f) - h * h;
    case ACT_RELU: return h > T(0.0f) ? T(1.0f) : T(0.0f);
    default: return T(1.0f);
    }
}

// f''(a) through h: the contractive activations only (sigmoid, tanh).
template <typename T> __device__ __forceinline__ T act_second_derivative(int act, T h)
{
    if (act == ACT_SIGMOID) return h * (T(1.0f) - h) * (T(1.0f) - T(2.0f) * h);
    return T(-2.0f) * h * (T(1.0f) - h * h);
}

// Sum of v over every thread of the block, valid in block_rank() == 0. Every thread of the block must call it
// (it holds two barriers); the block size must be a multiple of 32 and smem must hold block_threads() / 32 values.
template <typename T> __device__ T block_sum(T v, T* smem)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(FASTAE_FULL_MASK, v, offset);
    const u32 rank = block_rank();
    const u32 lane = rank & 31u;
    const u32 warp = rank >> 5;
    const u32 warps = block_threads() >> 5;
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    T total = T(0.0f);
    if (warp == 0) {  // warp-uniform: the whole first warp takes it
        total = lane < warps ? smem[lane] : T(0.0f);
        for (int offset = 16; offset > 0; offset >>= 1) total += __shfl_down_sync(FASTAE_FULL_MASK, total, offset);
    }
    __syncthreads();  // smem may be reused by the caller's next reduction
    return total;
}

// bfloat16 pattern of a float: round to nearest, ties to even; a NaN stays a quiet NaN of its sign
// (fastae.precision.to_bf16, bit for bit).
__device__ __forceinline__ u16 to_bf16_bits(float v)
{
    const u32 b = __float_as_uint(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (u16)((b | 0x00400000u) >> 16);
    return (u16)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float from_bf16_bits(u16 h) { return __uint_as_float(((u32)h) << 16); }
