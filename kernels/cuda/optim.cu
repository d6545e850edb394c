// SGD, momentum and Adam (kernels/cpu/optim.py), multi-tensor: one launch updates every parameter of a model.
// table holds 6 addresses per tensor (p, g, s1, s2, out, o16; 0 where unused) and offsets its prefix sizes
// (count + 1 values). Each update writes out (which may be g itself: g is read before out is written), updates its
// state in place, sets flags[i] when a new value of tensor i is not finite, and with o16 != 0 (float only) also
// writes the new values' bfloat16 patterns there. State below tiny (the smallest normal number) is stored as 0.
#include "common.cuh"

#define OPT_SGD 0
#define OPT_MOMENTUM 1
#define OPT_NESTEROV 2
#define OPT_ADAM 3

// The tensor holding flat element t: offsets[i] <= t < offsets[i + 1].
__device__ __forceinline__ int tensor_of(const i64* offsets, int count, i64 t)
{
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (offsets[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

template <typename T> __device__ __forceinline__ T flush_subnormal(T v, T tiny) { return t_abs(v) < tiny ? T(0.0f) : v; }

template <typename T> __device__ __forceinline__ void store_bf16(i64 o16, i64 k, T value)
{
    if (o16 != 0) reinterpret_cast<u16*>(o16)[k] = to_bf16_bits((float)value);
}

template <typename T>
__device__ void update(int opt, const i64* table, const i64* offsets, int count, T lr, T mu, T step, T rs, T b1, T b2, T omb1, T omb2, T eps, T tiny, int* flags)
{
    for (i64 t = flat_index(); t < offsets[count]; t += flat_stride()) {
        const int i = tensor_of(offsets, count, t);
        const i64* row = table + 6 * i;
        const i64 k = t - offsets[i];
        const T* p = reinterpret_cast<const T*>(row[0]);
        const T gk = reinterpret_cast<const T*>(row[1])[k];
        T o;
        if (opt == OPT_ADAM) {
            T* m = reinterpret_cast<T*>(row[2]);
            T* v = reinterpret_cast<T*>(row[3]);
            const T mk = flush_subnormal(b1 * m[k] + omb1 * gk, tiny);
            const T vk = flush_subnormal(b2 * v[k] + omb2 * (gk * gk), tiny);
            m[k] = mk;
            v[k] = vk;
            o = p[k] - step * (mk / (t_sqrt(vk) * rs + eps));
        } else if (opt == OPT_SGD) {
            o = p[k] - lr * gk;
        } else {
            T* buf = reinterpret_cast<T*>(row[2]);
            const T b = flush_subnormal(mu * buf[k] + gk, tiny);
            buf[k] = b;
            o = p[k] - lr * (opt == OPT_NESTEROV ? gk + mu * b : b);
        }
        reinterpret_cast<T*>(row[4])[k] = o;
        store_bf16(row[5], k, o);
        if (!t_finite(o)) atomicOr(flags + i, 1);
    }
}

extern "C" __global__ void update_f32(int opt, const long long* table, const long long* offsets, int count, float lr, float mu, float step, float rs, float b1, float b2, float omb1, float omb2, float eps, float tiny, int* flags)
{
    update(opt, table, offsets, count, lr, mu, step, rs, b1, b2, omb1, omb2, eps, tiny, flags);
}
extern "C" __global__ void update_f64(int opt, const long long* table, const long long* offsets, int count, double lr, double mu, double step, double rs, double b1, double b2, double omb1, double omb2, double eps, double tiny, int* flags)
{
    update(opt, table, offsets, count, lr, mu, step, rs, b1, b2, omb1, omb2, eps, tiny, flags);
}
