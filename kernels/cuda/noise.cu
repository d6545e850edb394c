// Corruption of the denoising autoencoders (kernels/cpu/noise.py), drawn in the kernel at
// (key, stream, step, row0 + r, c): masking x * [u >= p] and additive Gaussian x + sigma eps.
#include "philox.cuh"

template <typename T> __device__ void mask_noise(const T* x, i64 n, i64 m, T p, u32 k0, u32 k1, u32 stream, u32 step, i64 row0, T* out)
{
    for_each_block(n, m, k0, k1, stream, step, row0, [&](i64 r, i64 c0, const Philox4& bits) {
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            const i64 e = r * m + c0 + w;
            if (c0 + w < m) out[e] = (T)uniform_from_bits(bits.w[w]) >= p ? x[e] : T(0.0f);
        }
    });
}

extern "C" __global__ void mask_noise_f32(const float* x, long long n, long long m, float p, unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, float* out)
{
    mask_noise(x, n, m, p, k0, k1, stream, step, row0, out);
}
extern "C" __global__ void mask_noise_f64(const double* x, long long n, long long m, double p, unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, double* out)
{
    mask_noise(x, n, m, p, k0, k1, stream, step, row0, out);
}

template <typename T> __device__ void gaussian_noise(const T* x, i64 n, i64 m, T sigma, u32 k0, u32 k1, u32 stream, u32 step, i64 row0, T* out)
{
    for_each_block(n, m, k0, k1, stream, step, row0, [&](i64 r, i64 c0, const Philox4& bits) {
        double eps[4];
        box_muller4(bits, eps);
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            const i64 e = r * m + c0 + w;
            if (c0 + w < m) out[e] = x[e] + sigma * (T)eps[w];
        }
    });
}

extern "C" __global__ void gaussian_noise_f32(const float* x, long long n, long long m, float sigma, unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, float* out)
{
    gaussian_noise(x, n, m, sigma, k0, k1, stream, step, row0, out);
}
extern "C" __global__ void gaussian_noise_f64(const double* x, long long n, long long m, double sigma, unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, double* out)
{
    gaussian_noise(x, n, m, sigma, k0, k1, stream, step, row0, out);
}
