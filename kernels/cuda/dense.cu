// Dense-layer epilogues around the cuBLAS product (kernels/cpu/dense.py): bias and activation in place, the
// activation's backward pass, and the bias gradient as a column sum.
#include "common.cuh"

// a[i, j] <- f(a[i, j] + b[j]) over an n x m row-major a.
template <typename T> __device__ void bias_act(T* a, const T* b, i64 n, i64 m, int act)
{
    for (i64 t = flat_index(); t < n * m; t += flat_stride()) a[t] = act_apply(act, a[t] + b[t % m]);
}

extern "C" __global__ void bias_act_f32(float* a, const float* b, long long n, long long m, int act) { bias_act(a, b, n, m, act); }
extern "C" __global__ void bias_act_f64(double* a, const double* b, long long n, long long m, int act) { bias_act(a, b, n, m, act); }

// dh <- dh * f'(a), through the stored output h.
template <typename T> __device__ void act_backward(T* dh, const T* h, i64 size, int act)
{
    for (i64 t = flat_index(); t < size; t += flat_stride()) dh[t] = dh[t] * act_derivative(act, h[t]);
}

extern "C" __global__ void act_backward_f32(float* dh, const float* h, long long size, int act) { act_backward(dh, h, size, act); }
extern "C" __global__ void act_backward_f64(double* dh, const double* h, long long size, int act) { act_backward(dh, h, size, act); }

// out[j] = sum_i d[i, j]. A block owns blockDim.x adjacent columns at a time (coalesced reads); its blockDim.y rows of
// threads each sum every blockDim.y-th row, and the partial sums are added in a fixed order, so the result does not
// depend on the grid. Shared memory: blockDim.x * blockDim.y values.
template <typename T> __device__ void col_sum(const T* d, i64 n, i64 m, T* out)
{
    FASTAE_SHARED(T, part);
    const i64 width = (i64)blockDim.x;
    for (i64 j0 = (i64)blockIdx.x * width; j0 < m; j0 += (i64)gridDim.x * width) {  // block-uniform bound
        const i64 j = j0 + threadIdx.x;
        T acc = T(0.0f);
        if (j < m)
            for (i64 i = threadIdx.y; i < n; i += blockDim.y) acc += d[i * m + j];
        part[threadIdx.y * blockDim.x + threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.y == 0 && j < m) {
            T total = T(0.0f);
            for (u32 y = 0; y < blockDim.y; ++y) total += part[y * blockDim.x + threadIdx.x];
            out[j] = total;
        }
        __syncthreads();  // part is rewritten by the next tile
    }
}

extern "C" __global__ void col_sum_f32(const float* d, long long n, long long m, float* out) { col_sum(d, n, m, out); }
extern "C" __global__ void col_sum_f64(const double* d, long long n, long long m, double* out) { col_sum(d, n, m, out); }

// out[0] = scale * sum of partials[0 .. count): the second pass of every two-pass reduction (one block, fixed order).
template <typename T> __device__ void sum_partials(const T* partials, i64 count, T scale, T* out)
{
    FASTAE_SHARED(T, smem);
    T acc = T(0.0f);
    for (i64 t = threadIdx.x; t < count; t += blockDim.x) acc += partials[t];
    const T total = block_sum(acc, smem);
    if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = scale * total;
}

extern "C" __global__ void sum_partials_f32(const float* partials, long long count, float scale, float* out)
{
    sum_partials(partials, count, scale, out);
}
extern "C" __global__ void sum_partials_f64(const double* partials, long long count, double scale, double* out)
{
    sum_partials(partials, count, scale, out);
}
