// Philox4x32-10 and its conversions: the in-kernel twin of fastae.rng, bit for bit at the 32-bit level.
// Element (r, c) of a draw is word c % 4 of the block with counter (c / 4, row0 + r, step, stream) under key (k0, k1).
#pragma once
#include "common.cuh"

struct Philox4 {
    u32 w[4];
};

__device__ __forceinline__ Philox4 philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1)
{
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const u32 hi0 = __umulhi(0xD2511F53u, c0);
        const u32 lo0 = 0xD2511F53u * c0;
        const u32 hi1 = __umulhi(0xCD9E8D57u, c2);
        const u32 lo1 = 0xCD9E8D57u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    Philox4 out;
    out.w[0] = c0;
    out.w[1] = c1;
    out.w[2] = c2;
    out.w[3] = c3;
    return out;
}

// u = (floor(bits / 2**9) + 1/2) * 2**-23: an odd multiple of 2**-24 in (0, 1), exact in float and double.
__device__ __forceinline__ double uniform_from_bits(u32 bits)
{
    return ((double)(bits >> 9) + 0.5f) * 1.1920928955078125e-07f;
}

// Box-Muller in double inside one block, as fastae.rng.normal: z0, z1 from (u0, u1), z2, z3 from (u2, u3).
// 2 pi is the double nearest to it, written by its bits (no double literal).
__device__ __forceinline__ void box_muller4(const Philox4& p, double z[4])
{
    const double two_pi = __longlong_as_double(0x401921FB54442D18LL);
    const double u0 = uniform_from_bits(p.w[0]), u1 = uniform_from_bits(p.w[1]);
    const double u2 = uniform_from_bits(p.w[2]), u3 = uniform_from_bits(p.w[3]);
    const double r01 = sqrt(-2.0f * log(u0)), r23 = sqrt(-2.0f * log(u2));
    const double t1 = two_pi * u1, t3 = two_pi * u3;
    z[0] = r01 * cos(t1);
    z[1] = r01 * sin(t1);
    z[2] = r23 * cos(t3);
    z[3] = r23 * sin(t3);
}

// visit(r, c0, words) for every block of four columns of an n x m draw: row r, columns c0 .. c0 + 3 (the caller
// guards c < m), words the block's Philox output. A grid-stride loop with one thread per (row, block).
template <typename Visit>
__device__ __forceinline__ void for_each_block(i64 n, i64 m, u32 k0, u32 k1, u32 stream, u32 step, i64 row0, Visit visit)
{
    const i64 blocks = (m + 3) / 4;
    for (i64 t = flat_index(); t < n * blocks; t += flat_stride()) {
        const i64 r = t / blocks, q = t - r * blocks;
        visit(r, 4 * q, philox4x32_10((u32)q, (u32)(row0 + r), step, stream, k0, k1));
    }
}
