// The VAE's Gaussian latent (kernels/cpu/latent.py): the reparameterised sample with its in-kernel Philox noise, the
// KL term, and their backward pass. lv = clip(log sigma^2, lo, hi).
#include "philox.cuh"

template <typename T> __device__ __forceinline__ T kl_element(T mu, T lv) { return T(-0.5f) * (T(1.0f) + lv - mu * mu - t_exp(lv)); }

// z = mu + exp(lv / 2) eps with eps ~ N(0, I) drawn at (key, stream, step, row0 + r, c); partials of the KL sum.
// One thread per (row, block of four columns). Shared: block_threads() / 32.
template <typename T>
__device__ void gaussian_latent(const T* mu, const T* logvar, i64 n, i64 k, T lo, T hi, u32 k0, u32 k1, u32 stream, u32 step, i64 row0, T* z, T* partials)
{
    FASTAE_SHARED(T, smem);
    T acc = T(0.0f);
    for_each_block(n, k, k0, k1, stream, step, row0, [&](i64 r, i64 c0, const Philox4& bits) {
        double eps[4];
        box_muller4(bits, eps);
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            if (c0 + w < k) {
                const i64 e = r * k + c0 + w;
                const T lv = t_clip(logvar[e], lo, hi);
                z[e] = mu[e] + t_exp(T(0.5f) * lv) * (T)eps[w];
                acc += kl_element(mu[e], lv);
            }
        }
    });
    const T total = block_sum(acc, smem);
    if (block_rank() == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void gaussian_latent_f32(const float* mu, const float* logvar, long long n, long long k, float lo, float hi, unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, float* z, float* partials)
{
    gaussian_latent(mu, logvar, n, k, lo, hi, k0, k1, stream, step, row0, z, partials);
}
extern "C" __global__ void gaussian_latent_f64(const double* mu, const double* logvar, long long n, long long k, double lo, double hi, unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, double* z, double* partials)
{
    gaussian_latent(mu, logvar, n, k, lo, hi, k0, k1, stream, step, row0, z, partials);
}

// dmu = dz + beta_n mu; dlv = [dz (z - mu) / 2 + half_beta_n (exp(lv) - 1)] where log sigma^2 lies in [lo, hi], else 0,
// with beta_n = beta / B and half_beta_n = beta / 2B.
template <typename T>
__device__ void gaussian_latent_backward(const T* dz, const T* z, const T* mu, const T* logvar, i64 size, T lo, T hi, T beta_n, T half_beta_n, T* dmu, T* dlv)
{
    for (i64 t = flat_index(); t < size; t += flat_stride()) {
        const T raw = logvar[t];
        const T lv = t_clip(raw, lo, hi);
        const T g = dz[t];
        dmu[t] = g + beta_n * mu[t];
        const bool inside = raw >= lo && raw <= hi;
        dlv[t] = inside ? g * T(0.5f) * (z[t] - mu[t]) + half_beta_n * (t_exp(lv) - T(1.0f)) : T(0.0f);
    }
}

extern "C" __global__ void gaussian_latent_backward_f32(const float* dz, const float* z, const float* mu, const float* logvar, long long size, float lo, float hi, float beta_n, float half_beta_n, float* dmu, float* dlv)
{
    gaussian_latent_backward(dz, z, mu, logvar, size, lo, hi, beta_n, half_beta_n, dmu, dlv);
}
extern "C" __global__ void gaussian_latent_backward_f64(const double* dz, const double* z, const double* mu, const double* logvar, long long size, double lo, double hi, double beta_n, double half_beta_n, double* dmu, double* dlv)
{
    gaussian_latent_backward(dz, z, mu, logvar, size, lo, hi, beta_n, half_beta_n, dmu, dlv);
}

// out[i] = KL(N(mu_i, sigma_i^2) || N(0, I)), one block per row at a time. Shared: block_threads() / 32.
template <typename T> __device__ void gaussian_kl_rows(const T* mu, const T* logvar, i64 n, i64 k, T lo, T hi, T* out)
{
    FASTAE_SHARED(T, smem);
    for (i64 i = blockIdx.x; i < n; i += gridDim.x) {  // block-uniform bound
        T acc = T(0.0f);
        for (i64 j = block_rank(); j < k; j += block_threads()) acc += kl_element(mu[i * k + j], t_clip(logvar[i * k + j], lo, hi));
        const T total = block_sum(acc, smem);
        if (block_rank() == 0) out[i] = total;
    }
}

extern "C" __global__ void gaussian_kl_rows_f32(const float* mu, const float* logvar, long long n, long long k, float lo, float hi, float* out)
{
    gaussian_kl_rows(mu, logvar, n, k, lo, hi, out);
}
extern "C" __global__ void gaussian_kl_rows_f64(const double* mu, const double* logvar, long long n, long long k, double lo, double hi, double* out)
{
    gaussian_kl_rows(mu, logvar, n, k, lo, hi, out);
}
