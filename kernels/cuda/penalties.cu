// Penalties on the code layer and the weights (kernels/cpu/penalties.py). Values are summed per block into
// partials (finished by sum_partials, dense.cu); gradients are written elementwise.
#include "common.cuh"

// L1: dh = g sign(h) with g = lam / B; partials of sum |h|. Shared: block_threads() / 32.
template <typename T> __device__ void l1_penalty(const T* h, i64 size, T g, T* dh, T* partials)
{
    FASTAE_SHARED(T, smem);
    T acc = T(0.0f);
    for (i64 t = flat_index(); t < size; t += flat_stride()) {
        acc += t_abs(h[t]);
        dh[t] = g * t_sign(h[t]);
    }
    const T total = block_sum(acc, smem);
    if (block_rank() == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void l1_penalty_f32(const float* h, long long size, float g, float* dh, float* partials) { l1_penalty(h, size, g, dh, partials); }
extern "C" __global__ void l1_penalty_f64(const double* h, long long size, double g, double* dh, double* partials) { l1_penalty(h, size, g, dh, partials); }

// KL sparsity, per unit j from the column sums of h: rho_hat = clip(colsum * inv_n, eps, 1 - eps),
// g[j] = beta inv_n (-rho / rho_hat + (1 - rho) / (1 - rho_hat)), terms[j] = rho log(rho / rho_hat)
// + (1 - rho) log((1 - rho) / (1 - rho_hat)).
template <typename T> __device__ void kl_sparsity_units(const T* colsum, i64 m, T inv_n, T rho, T beta, T eps, T* g, T* terms)
{
    for (i64 j = flat_index(); j < m; j += flat_stride()) {
        const T r = t_clip(colsum[j] * inv_n, eps, T(1.0f) - eps);
        g[j] = beta * (-rho / r + (T(1.0f) - rho) / (T(1.0f) - r)) * inv_n;
        terms[j] = rho * t_log(rho / r) + (T(1.0f) - rho) * t_log((T(1.0f) - rho) / (T(1.0f) - r));
    }
}

extern "C" __global__ void kl_sparsity_units_f32(const float* colsum, long long m, float inv_n, float rho, float beta, float eps, float* g, float* terms)
{
    kl_sparsity_units(colsum, m, inv_n, rho, beta, eps, g, terms);
}
extern "C" __global__ void kl_sparsity_units_f64(const double* colsum, long long m, double inv_n, double rho, double beta, double eps, double* g, double* terms)
{
    kl_sparsity_units(colsum, m, inv_n, rho, beta, eps, g, terms);
}

// out[i, j] = g[j]: a per-unit gradient spread over the batch.
template <typename T> __device__ void broadcast_rows(const T* g, i64 n, i64 m, T* out)
{
    for (i64 t = flat_index(); t < n * m; t += flat_stride()) out[t] = g[t % m];
}

extern "C" __global__ void broadcast_rows_f32(const float* g, long long n, long long m, float* out) { broadcast_rows(g, n, m, out); }
extern "C" __global__ void broadcast_rows_f64(const double* g, long long n, long long m, double* out) { broadcast_rows(g, n, m, out); }

// s[j] = sum_i W[j, i]^2, one block per row at a time. Shared: block_threads() / 32.
template <typename T> __device__ void row_sumsq(const T* W, i64 k, i64 d, T* s)
{
    FASTAE_SHARED(T, smem);
    for (i64 j = blockIdx.x; j < k; j += gridDim.x) {  // block-uniform bound
        T acc = T(0.0f);
        for (i64 i = block_rank(); i < d; i += block_threads()) acc += W[j * d + i] * W[j * d + i];
        const T total = block_sum(acc, smem);
        if (block_rank() == 0) s[j] = total;
    }
}

extern "C" __global__ void row_sumsq_f32(const float* W, long long k, long long d, float* s) { row_sumsq(W, k, d, s); }
extern "C" __global__ void row_sumsq_f64(const double* W, long long k, long long d, double* s) { row_sumsq(W, k, d, s); }

// Contractive penalty, per element of the code h (n x k): d1 = f'(a), d2 = f''(a) through h;
// dz = coef s[j] d1 d2 with coef = 2 lam / B, and d1sq = d1^2 (whose column sums give the rest).
template <typename T> __device__ void contractive_rows(const T* h, const T* s, i64 n, i64 k, int act, T coef, T* dz, T* d1sq)
{
    for (i64 t = flat_index(); t < n * k; t += flat_stride()) {
        const T d1 = act_derivative(act, h[t]);
        dz[t] = coef * s[t % k] * d1 * act_second_derivative(act, h[t]);
        d1sq[t] = d1 * d1;
    }
}

extern "C" __global__ void contractive_rows_f32(const float* h, const float* s, long long n, long long k, int act, float coef, float* dz, float* d1sq)
{
    contractive_rows(h, s, n, k, act, coef, dz, d1sq);
}
extern "C" __global__ void contractive_rows_f64(const double* h, const double* s, long long n, long long k, int act, double coef, double* dz, double* d1sq)
{
    contractive_rows(h, s, n, k, act, coef, dz, d1sq);
}

// dW[j, i] = coef csum[j] W[j, i] with coef = 2 lam / B (csum[j] = sum_b d1^2); terms[j] = csum[j] s[j], whose sum
// times lam / B is the penalty.
template <typename T> __device__ void contractive_weights(const T* W, const T* csum, const T* s, i64 k, i64 d, T coef, T* dW, T* terms)
{
    for (i64 t = flat_index(); t < k * d; t += flat_stride()) {
        const i64 j = t / d;
        dW[t] = coef * csum[j] * W[t];
        if (t - j * d == 0) terms[j] = csum[j] * s[j];
    }
}

extern "C" __global__ void contractive_weights_f32(const float* W, const float* csum, const float* s, long long k, long long d, float coef, float* dW, float* terms)
{
    contractive_weights(W, csum, s, k, d, coef, dW, terms);
}
extern "C" __global__ void contractive_weights_f64(const double* W, const double* csum, const double* s, long long k, long long d, double coef, double* dW, double* terms)
{
    contractive_weights(W, csum, s, k, d, coef, dW, terms);
}

// L2 weight decay: g += wd W in place; partials of sum W^2. Shared: block_threads() / 32.
template <typename T> __device__ void weight_decay(const T* W, T* g, i64 size, T wd, T* partials)
{
    FASTAE_SHARED(T, smem);
    T acc = T(0.0f);
    for (i64 t = flat_index(); t < size; t += flat_stride()) {
        acc += W[t] * W[t];
        g[t] += wd * W[t];
    }
    const T total = block_sum(acc, smem);
    if (block_rank() == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void weight_decay_f32(const float* W, float* g, long long size, float wd, float* partials) { weight_decay(W, g, size, wd, partials); }
extern "C" __global__ void weight_decay_f64(const double* W, double* g, long long size, double wd, double* partials) { weight_decay(W, g, size, wd, partials); }
