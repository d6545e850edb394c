// The input check's value scan (kernels/cpu/checks.py): flags |= 1 for a value that is not finite, |= 2 (with
// unit_interval) for one outside [0, 1]; no copy of the input is made.
#include "common.cuh"

template <typename T> __device__ void values_scan(const T* x, i64 size, int unit_interval, int* flags)
{
    int bad = 0;
    for (i64 t = flat_index(); t < size; t += flat_stride()) {
        const T v = x[t];
        if (!isfinite(v)) bad |= 1;
        else if (unit_interval && (v < T(0.0f) || v > T(1.0f))) bad |= 2;
    }
    if (bad) atomicOr(flags, bad);
}

extern "C" __global__ void values_scan_f32(const float* x, long long size, int unit_interval, int* flags) { values_scan(x, size, unit_interval, flags); }
extern "C" __global__ void values_scan_f64(const double* x, long long size, int unit_interval, int* flags) { values_scan(x, size, unit_interval, flags); }
