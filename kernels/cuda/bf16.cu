// bfloat16 operands (kernels/cpu/bf16.py, fastae.precision): conversions, the input check that rounds as it scans,
// and the epilogues that write the next product's bfloat16 operand beside their float32 result.
#include "common.cuh"

extern "C" __global__ void to_bf16_f32(const float* x, long long size, unsigned short* out)
{
    for (i64 t = flat_index(); t < size; t += flat_stride()) out[t] = to_bf16_bits(x[t]);
}

extern "C" __global__ void widen_bf16_f32(const unsigned short* h, long long size, float* out)
{
    for (i64 t = flat_index(); t < size; t += flat_stride()) out[t] = from_bf16_bits(h[t]);
}

// The input check's scan and the rounding in one pass: flags |= 1 for a value that is not finite, |= 2 (with
// unit_interval) for one outside [0, 1].
extern "C" __global__ void check_to_bf16_f32(const float* x, long long size, int unit_interval, unsigned short* out, int* flags)
{
    int bad = 0;
    for (i64 t = flat_index(); t < size; t += flat_stride()) {
        const float v = x[t];
        out[t] = to_bf16_bits(v);
        if (!isfinite(v)) bad |= 1;
        else if (unit_interval && (v < 0.0f || v > 1.0f)) bad |= 2;
    }
    if (bad) atomicOr(flags, bad);
}

// a <- f(a + b) as float32, and its bfloat16 patterns in out16.
extern "C" __global__ void bias_act_bf16(float* a, const float* b, long long n, long long m, int act, unsigned short* out16)
{
    for (i64 t = flat_index(); t < n * m; t += flat_stride()) {
        const float h = act_apply(act, a[t] + b[t % m]);
        a[t] = h;
        out16[t] = to_bf16_bits(h);
    }
}

// dh <- dh f'(a) through h, and the result's bfloat16 patterns in d16.
extern "C" __global__ void act_backward_bf16(float* dh, const float* h, long long size, int act, unsigned short* d16)
{
    for (i64 t = flat_index(); t < size; t += flat_stride()) {
        const float d = act == ACT_LINEAR ? dh[t] : dh[t] * act_derivative(act, h[t]);
        dh[t] = d;
        d16[t] = to_bf16_bits(d);
    }
}
