// The output layer fused with its loss (kernels/cpu/loss.py), after the cuBLAS product a = h W(^T):
// v = a + c, x^ = g(v), delta = (x^ - x) * scale written over a, and the loss summed per block (two-pass, fixed
// order). "bce": cross-entropy from logits, softplus(v) - x v, with a sigmoid output; "mse": (v - x)^2 / 2, linear.
#include "common.cuh"

template <typename T> __device__ __forceinline__ T elementwise_loss(T v, T x, int bce)
{
    if (bce) return t_max(v, T(0.0f)) - x * v + t_log1p(t_exp(-t_abs(v)));
    const T d = v - x;
    return T(0.5f) * d * d;
}

// The delta of one element: (g(v) - x) * scale.
template <typename T> __device__ __forceinline__ T output_delta(T v, T x, int bce, T scale)
{
    return ((bce ? sigmoid(v) : v) - x) * scale;
}

// partials[blockIdx.x] = this block's sum of the elementwise loss; a[t] <- delta. Shared: block_threads() / 32.
template <typename T> __device__ void output_grad(T* a, const T* c, const T* x, i64 n, i64 m, int bce, T scale, T* partials, u16* d16)
{
    FASTAE_SHARED(T, smem);
    T acc = T(0.0f);
    for (i64 t = flat_index(); t < n * m; t += flat_stride()) {
        const T v = a[t] + c[t % m];
        acc += elementwise_loss(v, x[t], bce);
        const T d = output_delta(v, x[t], bce, scale);
        a[t] = d;
        if (d16 != nullptr) d16[t] = to_bf16_bits((float)d);
    }
    const T total = block_sum(acc, smem);
    if (block_rank() == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void output_grad_f32(float* a, const float* c, const float* x, long long n, long long m, int bce, float scale, float* partials)
{
    output_grad(a, c, x, n, m, bce, scale, partials, (u16*)nullptr);
}
extern "C" __global__ void output_grad_f64(double* a, const double* c, const double* x, long long n, long long m, int bce, double scale, double* partials)
{
    output_grad(a, c, x, n, m, bce, scale, partials, (u16*)nullptr);
}
// The same, and delta's bfloat16 patterns: the operand of the backward products (precision="bfloat16").
extern "C" __global__ void output_grad_bf16(float* a, const float* c, const float* x, long long n, long long m, int bce, float scale, float* partials, unsigned short* d16)
{
    output_grad(a, c, x, n, m, bce, scale, partials, d16);
}

// rows[i] = sum_j loss(a[i, j] + c[j], x[i, j]): one block per row at a time. Shared: block_threads() / 32.
template <typename T> __device__ void output_rows(const T* a, const T* c, const T* x, i64 n, i64 m, int bce, T* rows)
{
    FASTAE_SHARED(T, smem);
    for (i64 i = blockIdx.x; i < n; i += gridDim.x) {  // block-uniform bound
        T acc = T(0.0f);
        for (i64 j = block_rank(); j < m; j += block_threads()) acc += elementwise_loss(a[i * m + j] + c[j], x[i * m + j], bce);
        const T total = block_sum(acc, smem);
        if (block_rank() == 0) rows[i] = total;
    }
}

extern "C" __global__ void output_rows_f32(const float* a, const float* c, const float* x, long long n, long long m, int bce, float* rows)
{
    output_rows(a, c, x, n, m, bce, rows);
}
extern "C" __global__ void output_rows_f64(const double* a, const double* c, const double* x, long long n, long long m, int bce, double* rows)
{
    output_rows(a, c, x, n, m, bce, rows);
}
