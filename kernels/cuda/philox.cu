// The raw Philox words of a draw (fastae.rng.random_bits): what every noise kernel builds on, exposed so that the
// generator itself is compared bit for bit with the reference.
#include "philox.cuh"

extern "C" __global__ void random_bits_u32(unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, long long n, long long m, unsigned int* out)
{
    const i64 blocks = (m + 3) / 4;
    for (i64 t = flat_index(); t < n * blocks; t += flat_stride()) {
        const i64 r = t / blocks, q = t - r * blocks;
        const Philox4 p = philox4x32_10((u32)q, (u32)(row0 + r), step, stream, k0, k1);
        #pragma unroll
        for (int w = 0; w < 4; ++w) {
            const i64 c = 4 * q + w;
            if (c < m) out[r * m + c] = p.w[w];
        }
    }
}
