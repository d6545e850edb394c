// The raw Philox words of a draw (fastae.rng.random_bits): what every noise kernel builds on, exposed so that the
// generator itself is compared bit for bit with the reference.
#include "philox.cuh"

extern "C" __global__ void random_bits_u32(unsigned int k0, unsigned int k1, unsigned int stream, unsigned int step, long long row0, long long n, long long m, unsigned int* out)
{
    for_each_block(n, m, k0, k1, stream, step, row0, [&](i64 r, i64 c0, const Philox4& p) {
#pragma unroll
        for (int w = 0; w < 4; ++w)
            if (c0 + w < m) out[r * m + c0 + w] = p.w[w];
    });
}
