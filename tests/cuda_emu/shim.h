// CUDA emulation shim for the tier-2 tests (tests/cuda_emu/harness.py builds and drives it).
//
// One header, two roles:
//  * force-included (-include shim.h) into every kernel translation unit, which is compiled with -nostdinc: the
//    kernel code sees what NVRTC offers it (built-ins, intrinsics, math, vector types) and nothing else, so a
//    construct that only g++ accepts fails here too;
//  * compiled on its own with -DFASTAE_EMU_RUNTIME into the runtime library (fibers, scheduler, barriers, warp
//    rendezvous, signal handling), shared by every kernel module of a process.
// A launch runs the blocks one after another; the threads of a block are cooperative fibers on the calling OS
// thread. A thread runs until it finishes or blocks in __syncthreads()/a warp intrinsic; a finished thread hands its
// fiber (stack and context) to the next thread, so threads that never block cost two context switches each.

#ifndef FASTAE_EMU_SHIM_H
#define FASTAE_EMU_SHIM_H

// ------------------------------------------------------------------------------------------------------------------
// Interface shared by the kernel modules and the runtime
// ------------------------------------------------------------------------------------------------------------------

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

namespace fastae_emu {

enum ThreadStatus : int { S_READY = 0, S_RUNNING, S_BARRIER, S_WARP, S_DONE };

enum WarpOp : int {
    W_SHFL_IDX = 0,
    W_SHFL_UP,
    W_SHFL_DOWN,
    W_SHFL_XOR,
    W_BALLOT,
    W_ALL,
    W_ANY,
    W_SYNCWARP,
    W_WIDE = 16,  // added to the shuffles of 64-bit values
};

enum BarrierOp : int { B_PLAIN = 0, B_COUNT, B_AND, B_OR };

struct Fiber;

struct ThreadState {
    uint3 tid;  // first member: threadIdx reads it through one pointer
    unsigned linear;
    int status;
    unsigned barriers;  // __syncthreads() calls so far
    const char* bar_file;
    int bar_line;
    int bar_op;
    int bar_pred;
    int warp_op;
    int warp_b;
    int warp_width;
    const char* warp_file;
    int warp_line;
    unsigned long long warp_bits;
    unsigned long long warp_result;
    Fiber* fiber;
};

typedef void (*Thunk)(const unsigned char* args);

extern ThreadState* g_cur;
extern uint3 g_block_idx;
extern dim3 g_block_dim;
extern dim3 g_grid_dim;
extern void* g_shared;

void syncthreads(const char* file, int line);
int syncthreads_op(int op, int pred, const char* file, int line);
unsigned long long warp_op(int op, unsigned mask, unsigned long long bits, int b, int width, const char* file,
                           int line);
[[noreturn]] void trap(const char* what, const char* file, int line);

// Launch blob layout: grid x,y,z and block x,y,z (6 x u32), shared bytes (u64), block order, thread order (2 x i32),
// parameter count, span count (2 x u32), one 8-byte slot per kernel parameter, then the spans: for each pointer
// argument {u32 slot, u32 flags, u64 first byte, u64 bytes}, the memory its array describes.
enum { BLOB_ARGS = 48, ORDER_FORWARD = 0, ORDER_SHUFFLED = 1, ORDER_REVERSE = 2 };
enum { SPAN_VALID = 1, SPAN_CONST = 2 };

}  // namespace fastae_emu

extern "C" int fastae_emu_run(const char* name, fastae_emu::Thunk thunk, const unsigned char* blob, char* err,
                              int errlen);

#ifndef FASTAE_EMU_RUNTIME
// ------------------------------------------------------------------------------------------------------------------
// What kernel code sees (the kernel TU has no system headers: NVRTC has none either)
// ------------------------------------------------------------------------------------------------------------------

typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
#define NULL __null

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
// Static shared memory, constant and managed memory would be ordinary host globals here: refuse them.
#define __shared__ _Pragma("GCC error \"static __shared__ is not emulated: use FASTAE_SHARED (dynamic shared memory)\"")
#define __constant__ _Pragma("GCC error \"__constant__ memory is not emulated\"")
#define __managed__ _Pragma("GCC error \"__managed__ memory is not emulated\"")

namespace fastae_emu {
inline int warp_size() { return 32; }  // not constexpr: warpSize is no constant expression in CUDA either
template <class T>
inline T arg(const unsigned char* args, int i) {
    T v;
    __builtin_memcpy(&v, args + 8 * i, sizeof(T));
    return v;
}
}  // namespace fastae_emu

#define threadIdx (static_cast<const ::uint3&>(::fastae_emu::g_cur->tid))
#define blockIdx (static_cast<const ::uint3&>(::fastae_emu::g_block_idx))
#define blockDim (static_cast<const ::dim3&>(::fastae_emu::g_block_dim))
#define gridDim (static_cast<const ::dim3&>(::fastae_emu::g_grid_dim))
#define warpSize (::fastae_emu::warp_size())

inline void* fastae_emu_dynamic_shared() { return ::fastae_emu::g_shared; }


inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

extern "C" int printf(const char* format, ...);

// ---- vector types (CUDA's sizes and alignments) ----
#define FASTAE_EMU_VEC2(name, T, A)        \
    struct __attribute__((aligned(A))) name { \
        T x, y;                            \
    };                                     \
    inline name make_##name(T x, T y) { return name{x, y}; }
#define FASTAE_EMU_VEC3(name, T)                                                   \
    struct name {                                                                  \
        T x, y, z;                                                                 \
    };                                                                             \
    inline name make_##name(T x, T y, T z) { return name{x, y, z}; }
#define FASTAE_EMU_VEC4(name, T, A)        \
    struct __attribute__((aligned(A))) name { \
        T x, y, z, w;                      \
    };                                     \
    inline name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }

FASTAE_EMU_VEC2(char2, signed char, 2)
FASTAE_EMU_VEC3(char3, signed char)
FASTAE_EMU_VEC4(char4, signed char, 4)
FASTAE_EMU_VEC2(uchar2, unsigned char, 2)
FASTAE_EMU_VEC3(uchar3, unsigned char)
FASTAE_EMU_VEC4(uchar4, unsigned char, 4)
FASTAE_EMU_VEC2(short2, short, 4)
FASTAE_EMU_VEC3(short3, short)
FASTAE_EMU_VEC4(short4, short, 8)
FASTAE_EMU_VEC2(ushort2, unsigned short, 4)
FASTAE_EMU_VEC3(ushort3, unsigned short)
FASTAE_EMU_VEC4(ushort4, unsigned short, 8)
FASTAE_EMU_VEC2(int2, int, 8)
FASTAE_EMU_VEC3(int3, int)
FASTAE_EMU_VEC4(int4, int, 16)
FASTAE_EMU_VEC2(uint2, unsigned int, 8)
FASTAE_EMU_VEC4(uint4, unsigned int, 16)
FASTAE_EMU_VEC2(float2, float, 8)
FASTAE_EMU_VEC3(float3, float)
FASTAE_EMU_VEC4(float4, float, 16)
FASTAE_EMU_VEC2(longlong2, long long, 16)
FASTAE_EMU_VEC3(longlong3, long long)
FASTAE_EMU_VEC2(ulonglong2, unsigned long long, 16)
FASTAE_EMU_VEC3(ulonglong3, unsigned long long)
FASTAE_EMU_VEC2(double2, double, 16)
FASTAE_EMU_VEC3(double3, double)
inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return uint3{x, y, z}; }

// ---- math: libm underneath, CUDA's overload set on top (no mixed-type templates: CUDA has none) ----
#define FASTAE_EMU_MATH1(name)                  \
    extern "C" double name(double) noexcept;    \
    extern "C" float name##f(float) noexcept;   \
    inline float name(float x) noexcept { return name##f(x); }
#define FASTAE_EMU_MATH2(name)                         \
    extern "C" double name(double, double) noexcept;   \
    extern "C" float name##f(float, float) noexcept;   \
    inline float name(float x, float y) noexcept { return name##f(x, y); }

FASTAE_EMU_MATH1(exp)
FASTAE_EMU_MATH1(exp2)
FASTAE_EMU_MATH1(exp10)
FASTAE_EMU_MATH1(expm1)
FASTAE_EMU_MATH1(log)
FASTAE_EMU_MATH1(log2)
FASTAE_EMU_MATH1(log10)
FASTAE_EMU_MATH1(log1p)
FASTAE_EMU_MATH1(sqrt)
FASTAE_EMU_MATH1(cbrt)
FASTAE_EMU_MATH1(sin)
FASTAE_EMU_MATH1(cos)
FASTAE_EMU_MATH1(tan)
FASTAE_EMU_MATH1(asin)
FASTAE_EMU_MATH1(acos)
FASTAE_EMU_MATH1(atan)
FASTAE_EMU_MATH1(sinh)
FASTAE_EMU_MATH1(cosh)
FASTAE_EMU_MATH1(tanh)
FASTAE_EMU_MATH1(asinh)
FASTAE_EMU_MATH1(acosh)
FASTAE_EMU_MATH1(atanh)
FASTAE_EMU_MATH1(erf)
FASTAE_EMU_MATH1(erfc)
FASTAE_EMU_MATH1(tgamma)
FASTAE_EMU_MATH1(lgamma)
FASTAE_EMU_MATH1(floor)
FASTAE_EMU_MATH1(ceil)
FASTAE_EMU_MATH1(trunc)
FASTAE_EMU_MATH1(round)
FASTAE_EMU_MATH1(rint)
FASTAE_EMU_MATH1(nearbyint)
FASTAE_EMU_MATH1(fabs)
FASTAE_EMU_MATH2(pow)
FASTAE_EMU_MATH2(fmod)
FASTAE_EMU_MATH2(remainder)
FASTAE_EMU_MATH2(fmax)
FASTAE_EMU_MATH2(fmin)
FASTAE_EMU_MATH2(fdim)
FASTAE_EMU_MATH2(copysign)
FASTAE_EMU_MATH2(hypot)
FASTAE_EMU_MATH2(atan2)
FASTAE_EMU_MATH2(nextafter)
#undef FASTAE_EMU_MATH1
#undef FASTAE_EMU_MATH2

extern "C" double fma(double, double, double) noexcept;
extern "C" float fmaf(float, float, float) noexcept;
inline float fma(float x, float y, float z) noexcept { return fmaf(x, y, z); }
extern "C" double ldexp(double, int) noexcept;
extern "C" float ldexpf(float, int) noexcept;
inline float ldexp(float x, int e) noexcept { return ldexpf(x, e); }
extern "C" void sincos(double, double*, double*) noexcept;
extern "C" void sincosf(float, float*, float*) noexcept;
inline void sincos(float x, float* s, float* c) noexcept { sincosf(x, s, c); }
inline float rsqrtf(float x) noexcept { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) noexcept { return 1.0 / sqrt(x); }
inline float rsqrt(float x) noexcept { return rsqrtf(x); }
inline bool isfinite(float x) noexcept { return __builtin_isfinite(x); }
inline bool isfinite(double x) noexcept { return __builtin_isfinite(x); }
inline bool isnan(float x) noexcept { return __builtin_isnan(x); }
inline bool isnan(double x) noexcept { return __builtin_isnan(x); }
inline bool isinf(float x) noexcept { return __builtin_isinf(x); }
inline bool isinf(double x) noexcept { return __builtin_isinf(x); }
inline bool signbit(float x) noexcept { return __builtin_signbit(x); }
inline bool signbit(double x) noexcept { return __builtin_signbit(x); }

extern "C" int abs(int) noexcept;
extern "C" long labs(long) noexcept;
extern "C" long long llabs(long long) noexcept;
inline long abs(long x) noexcept { return labs(x); }
inline long long abs(long long x) noexcept { return llabs(x); }
inline float abs(float x) noexcept { return fabsf(x); }
inline double abs(double x) noexcept { return fabs(x); }

// min/max: CUDA's overloads, mixed signedness goes unsigned; the float ones are fminf/fmaxf (a NaN loses)
#define FASTAE_EMU_MINMAX(R, A, B)                                                       \
    inline R min(A a, B b) noexcept { return (R)a < (R)b ? (R)a : (R)b; }                \
    inline R max(A a, B b) noexcept { return (R)a > (R)b ? (R)a : (R)b; }
FASTAE_EMU_MINMAX(int, int, int)
FASTAE_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
FASTAE_EMU_MINMAX(unsigned int, int, unsigned int)
FASTAE_EMU_MINMAX(unsigned int, unsigned int, int)
FASTAE_EMU_MINMAX(long, long, long)
FASTAE_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
FASTAE_EMU_MINMAX(unsigned long, long, unsigned long)
FASTAE_EMU_MINMAX(unsigned long, unsigned long, long)
FASTAE_EMU_MINMAX(long long, long long, long long)
FASTAE_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
FASTAE_EMU_MINMAX(unsigned long long, long long, unsigned long long)
FASTAE_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef FASTAE_EMU_MINMAX
inline float min(float a, float b) noexcept { return fminf(a, b); }
inline float max(float a, float b) noexcept { return fmaxf(a, b); }
inline double min(double a, double b) noexcept { return fmin(a, b); }
inline double max(double a, double b) noexcept { return fmax(a, b); }
inline double min(float a, double b) noexcept { return fmin((double)a, b); }
inline double max(float a, double b) noexcept { return fmax((double)a, b); }
inline double min(double a, float b) noexcept { return fmin(a, (double)b); }
inline double max(double a, float b) noexcept { return fmax(a, (double)b); }
inline unsigned int umin(unsigned int a, unsigned int b) noexcept { return min(a, b); }
inline unsigned int umax(unsigned int a, unsigned int b) noexcept { return max(a, b); }
inline long long llmin(long long a, long long b) noexcept { return min(a, b); }
inline long long llmax(long long a, long long b) noexcept { return max(a, b); }
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) noexcept { return min(a, b); }
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) noexcept { return max(a, b); }

// ---- correctly rounded arithmetic intrinsics (exact on the host too; never contracted) ----
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }  // NaN -> 0, as CUDA

// conversions with the GPU's saturation (NaN -> 0), not C++'s undefined behaviour
namespace fastae_emu {
template <class I>
inline I saturate(double r, double lo, double hi) {
    return r != r ? (I)0 : (r <= lo ? (I)lo : (r >= hi ? (I)hi : (I)r));
}
}  // namespace fastae_emu
inline int __float2int_rn(float x) { return fastae_emu::saturate<int>(rintf(x), -2147483648.0, 2147483647.0); }
inline int __float2int_rz(float x) { return fastae_emu::saturate<int>(truncf(x), -2147483648.0, 2147483647.0); }
inline int __float2int_rd(float x) { return fastae_emu::saturate<int>(floorf(x), -2147483648.0, 2147483647.0); }
inline int __float2int_ru(float x) { return fastae_emu::saturate<int>(ceilf(x), -2147483648.0, 2147483647.0); }
inline unsigned int __float2uint_rn(float x) { return fastae_emu::saturate<unsigned int>(rintf(x), 0.0, 4294967295.0); }
inline unsigned int __float2uint_rz(float x) { return fastae_emu::saturate<unsigned int>(truncf(x), 0.0, 4294967295.0); }
inline int __double2int_rn(double x) { return fastae_emu::saturate<int>(rint(x), -2147483648.0, 2147483647.0); }
inline int __double2int_rz(double x) { return fastae_emu::saturate<int>(trunc(x), -2147483648.0, 2147483647.0); }

// ---- bit reinterpretation and integer intrinsics ----
namespace fastae_emu {
template <class To, class From>
inline To bits(From v) {
    static_assert(sizeof(To) == sizeof(From), "size");
    To r;
    __builtin_memcpy(&r, &v, sizeof(To));
    return r;
}
}  // namespace fastae_emu
inline unsigned int __float_as_uint(float x) { return fastae_emu::bits<unsigned int>(x); }
inline int __float_as_int(float x) { return fastae_emu::bits<int>(x); }
inline float __uint_as_float(unsigned int x) { return fastae_emu::bits<float>(x); }
inline float __int_as_float(int x) { return fastae_emu::bits<float>(x); }
inline long long __double_as_longlong(double x) { return fastae_emu::bits<long long>(x); }
inline double __longlong_as_double(long long x) { return fastae_emu::bits<double>(x); }
inline int __double2hiint(double x) { return (int)(fastae_emu::bits<unsigned long long>(x) >> 32); }
inline int __double2loint(double x) { return (int)fastae_emu::bits<unsigned long long>(x); }
inline double __hiloint2double(int hi, int lo) {
    return fastae_emu::bits<double>(((unsigned long long)(unsigned int)hi << 32) | (unsigned int)lo);
}
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned int)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
    unsigned int r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned long long __brevll(unsigned long long x) {
    unsigned long long r = 0;
    for (int i = 0; i < 64; ++i) r |= ((x >> i) & 1ull) << (63 - i);
    return r;
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

// __ldg: a plain load (the emulation has no read-only cache), for the types CUDA overloads it for
#define FASTAE_EMU_LDG(T) \
    inline T __ldg(const T* p) { return *p; }
FASTAE_EMU_LDG(char)
FASTAE_EMU_LDG(signed char)
FASTAE_EMU_LDG(unsigned char)
FASTAE_EMU_LDG(short)
FASTAE_EMU_LDG(unsigned short)
FASTAE_EMU_LDG(int)
FASTAE_EMU_LDG(unsigned int)
FASTAE_EMU_LDG(long)
FASTAE_EMU_LDG(unsigned long)
FASTAE_EMU_LDG(long long)
FASTAE_EMU_LDG(unsigned long long)
FASTAE_EMU_LDG(float)
FASTAE_EMU_LDG(double)
FASTAE_EMU_LDG(float2)
FASTAE_EMU_LDG(float4)
FASTAE_EMU_LDG(double2)
FASTAE_EMU_LDG(int2)
FASTAE_EMU_LDG(int4)
FASTAE_EMU_LDG(uint2)
FASTAE_EMU_LDG(uint4)
#undef FASTAE_EMU_LDG

// ---- atomics: all device code of the process runs on one fiber at a time, so a plain read-modify-write is atomic ----
#define FASTAE_EMU_ATOMIC(name, T, expr)  \
    inline T name(T* address, T val) {    \
        T old = *address;                 \
        *address = (expr);                \
        return old;                       \
    }
FASTAE_EMU_ATOMIC(atomicAdd, int, old + val)
FASTAE_EMU_ATOMIC(atomicAdd, unsigned int, old + val)
FASTAE_EMU_ATOMIC(atomicAdd, unsigned long long, old + val)
FASTAE_EMU_ATOMIC(atomicAdd, float, old + val)
FASTAE_EMU_ATOMIC(atomicAdd, double, old + val)
FASTAE_EMU_ATOMIC(atomicSub, int, (int)((unsigned int)old - (unsigned int)val))
FASTAE_EMU_ATOMIC(atomicSub, unsigned int, old - val)
FASTAE_EMU_ATOMIC(atomicExch, int, val)
FASTAE_EMU_ATOMIC(atomicExch, unsigned int, val)
FASTAE_EMU_ATOMIC(atomicExch, unsigned long long, val)
FASTAE_EMU_ATOMIC(atomicExch, float, val)
FASTAE_EMU_ATOMIC(atomicMin, int, val < old ? val : old)
FASTAE_EMU_ATOMIC(atomicMin, unsigned int, val < old ? val : old)
FASTAE_EMU_ATOMIC(atomicMin, long long, val < old ? val : old)
FASTAE_EMU_ATOMIC(atomicMin, unsigned long long, val < old ? val : old)
FASTAE_EMU_ATOMIC(atomicMax, int, val > old ? val : old)
FASTAE_EMU_ATOMIC(atomicMax, unsigned int, val > old ? val : old)
FASTAE_EMU_ATOMIC(atomicMax, long long, val > old ? val : old)
FASTAE_EMU_ATOMIC(atomicMax, unsigned long long, val > old ? val : old)
FASTAE_EMU_ATOMIC(atomicAnd, int, old & val)
FASTAE_EMU_ATOMIC(atomicAnd, unsigned int, old & val)
FASTAE_EMU_ATOMIC(atomicAnd, unsigned long long, old & val)
FASTAE_EMU_ATOMIC(atomicOr, int, old | val)
FASTAE_EMU_ATOMIC(atomicOr, unsigned int, old | val)
FASTAE_EMU_ATOMIC(atomicOr, unsigned long long, old | val)
FASTAE_EMU_ATOMIC(atomicXor, int, old ^ val)
FASTAE_EMU_ATOMIC(atomicXor, unsigned int, old ^ val)
FASTAE_EMU_ATOMIC(atomicXor, unsigned long long, old ^ val)
FASTAE_EMU_ATOMIC(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
FASTAE_EMU_ATOMIC(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef FASTAE_EMU_ATOMIC
#define FASTAE_EMU_CAS(T)                                 \
    inline T atomicCAS(T* address, T compare, T val) {    \
        T old = *address;                                 \
        if (old == compare) *address = val;               \
        return old;                                       \
    }
FASTAE_EMU_CAS(int)
FASTAE_EMU_CAS(unsigned int)
FASTAE_EMU_CAS(unsigned long long)
FASTAE_EMU_CAS(unsigned short)
#undef FASTAE_EMU_CAS

// ---- warp intrinsics: every lane of the warp meets at the intrinsic, then reads its partner ----
// (the trailing defaulted parameters record the call site for the error messages, as std::source_location does)
#define FASTAE_EMU_SITE const char *file_ = __builtin_FILE(), int line_ = __builtin_LINE()
#define FASTAE_EMU_SHFL(T, U, WIDE)                                                                                \
    inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, FASTAE_EMU_SITE) {                          \
        return fastae_emu::bits<T>((U)fastae_emu::warp_op(fastae_emu::W_SHFL_IDX + WIDE, mask,                    \
                                                          fastae_emu::bits<U>(v), src, width, file_, line_));     \
    }                                                                                                              \
    inline T __shfl_up_sync(unsigned mask, T v, unsigned int delta, int width = 32, FASTAE_EMU_SITE) {            \
        return fastae_emu::bits<T>((U)fastae_emu::warp_op(fastae_emu::W_SHFL_UP + WIDE, mask,                     \
                                                          fastae_emu::bits<U>(v), (int)delta, width, file_, line_)); \
    }                                                                                                              \
    inline T __shfl_down_sync(unsigned mask, T v, unsigned int delta, int width = 32, FASTAE_EMU_SITE) {          \
        return fastae_emu::bits<T>((U)fastae_emu::warp_op(fastae_emu::W_SHFL_DOWN + WIDE, mask,                   \
                                                          fastae_emu::bits<U>(v), (int)delta, width, file_, line_)); \
    }                                                                                                              \
    inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, FASTAE_EMU_SITE) {                \
        return fastae_emu::bits<T>((U)fastae_emu::warp_op(fastae_emu::W_SHFL_XOR + WIDE, mask,                    \
                                                          fastae_emu::bits<U>(v), lane_mask, width, file_, line_)); \
    }
FASTAE_EMU_SHFL(int, unsigned int, 0)
FASTAE_EMU_SHFL(unsigned int, unsigned int, 0)
FASTAE_EMU_SHFL(float, unsigned int, 0)
FASTAE_EMU_SHFL(long, unsigned long long, fastae_emu::W_WIDE)
FASTAE_EMU_SHFL(unsigned long, unsigned long long, fastae_emu::W_WIDE)
FASTAE_EMU_SHFL(long long, unsigned long long, fastae_emu::W_WIDE)
FASTAE_EMU_SHFL(unsigned long long, unsigned long long, fastae_emu::W_WIDE)
FASTAE_EMU_SHFL(double, unsigned long long, fastae_emu::W_WIDE)
#undef FASTAE_EMU_SHFL
inline unsigned int __ballot_sync(unsigned mask, int pred, FASTAE_EMU_SITE) {
    return (unsigned int)fastae_emu::warp_op(fastae_emu::W_BALLOT, mask, pred != 0, 0, 32, file_, line_);
}
inline int __all_sync(unsigned mask, int pred, FASTAE_EMU_SITE) {
    return (int)fastae_emu::warp_op(fastae_emu::W_ALL, mask, pred != 0, 0, 32, file_, line_);
}
inline int __any_sync(unsigned mask, int pred, FASTAE_EMU_SITE) {
    return (int)fastae_emu::warp_op(fastae_emu::W_ANY, mask, pred != 0, 0, 32, file_, line_);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, FASTAE_EMU_SITE) {
    fastae_emu::warp_op(fastae_emu::W_SYNCWARP, mask, 0, 0, 32, file_, line_);
}

// ---- block barriers ----
inline void __syncthreads(FASTAE_EMU_SITE) { fastae_emu::syncthreads(file_, line_); }
inline int __syncthreads_count(int pred, FASTAE_EMU_SITE) {
    return fastae_emu::syncthreads_op(fastae_emu::B_COUNT, pred != 0, file_, line_);
}
inline int __syncthreads_and(int pred, FASTAE_EMU_SITE) {
    return fastae_emu::syncthreads_op(fastae_emu::B_AND, pred != 0, file_, line_);
}
inline int __syncthreads_or(int pred, FASTAE_EMU_SITE) {
    return fastae_emu::syncthreads_op(fastae_emu::B_OR, pred != 0, file_, line_);
}
[[noreturn]] inline void __trap(FASTAE_EMU_SITE) { fastae_emu::trap("__trap()", file_, line_); }
#define assert(e) ((e) ? (void)0 : ::fastae_emu::trap("assertion failed: " #e, __FILE__, __LINE__))
#undef FASTAE_EMU_SITE

#endif  // !FASTAE_EMU_RUNTIME
#endif  // FASTAE_EMU_SHIM_H

#if defined(FASTAE_EMU_RUNTIME) && !defined(FASTAE_EMU_RUNTIME_DONE)
#define FASTAE_EMU_RUNTIME_DONE
// ------------------------------------------------------------------------------------------------------------------
// Runtime (its own translation unit, with the system headers)
// ------------------------------------------------------------------------------------------------------------------
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


#if defined(__SANITIZE_ADDRESS__)
#define FASTAE_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FASTAE_EMU_ASAN 1
#endif
#endif
#ifndef FASTAE_EMU_ASAN
#define FASTAE_EMU_ASAN 0
#endif
#if FASTAE_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && !defined(FASTAE_EMU_USE_UCONTEXT)
#define FASTAE_EMU_ASM_SWITCH 1
#else
#define FASTAE_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

#define FASTAE_EMU_HIDDEN __attribute__((visibility("hidden")))

namespace fastae_emu {

// ---- fibers ----
struct Fiber {
    void* sp;        // saved stack pointer (asm switch)
    char* lo;        // lowest usable stack address
    size_t size;     // usable stack bytes
    size_t colour;   // bytes left unused at the top: stacks must not all start in the same cache sets
    void* fake = nullptr;  // ASan's fake-stack handle while switched out
    bool dirty = false;    // abandoned mid-thread (an error): rebuilt before reuse
    Fiber* next = nullptr;
#if !FASTAE_EMU_ASM_SWITCH
    ucontext_t uc;
#endif
};

static const size_t kStack = 256 * 1024;  // per fiber (at least 190 KiB usable); touched pages only
static unsigned g_fibers_made = 0;
static const size_t kStackGuard = 16 * 1024;  // PROT_NONE below each stack: an overflow faults, not corrupts

static ThreadState g_host = {};
ThreadState* g_cur = &g_host;
uint3 g_block_idx = {0, 0, 0};
dim3 g_block_dim;
dim3 g_grid_dim;
void* g_shared = nullptr;

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static ThreadState g_threads[1024];
struct Warp {
    int arrived;
    int op;
    const char* file;
    int line;
};
static Warp g_warps[32];
static unsigned g_nthreads = 0;
static unsigned g_n_ready = 0, g_n_done = 0, g_n_barrier = 0, g_n_warp = 0;
static int g_bar_count = 0;  // result of the last __syncthreads_count/and/or
static bool g_in_launch = false;
static bool g_failed = false;
static const char* g_name = "";
static Thunk g_thunk = nullptr;
static const unsigned char* g_args = nullptr;
static char g_err[4096];

static Fiber* g_free = nullptr;     // idle fibers: fresh, or parked in their loop waiting for the next thread
static Fiber* g_running = nullptr;  // the fiber executing kernel code; nullptr while the scheduler runs
#if FASTAE_EMU_ASM_SWITCH
static void* g_sched_sp = nullptr;
#else
static ucontext_t g_sched_uc;
#endif
static const void* g_main_bottom = nullptr;  // the launching thread's stack, as ASan reports it
static size_t g_main_size = 0;

}  // namespace fastae_emu

#if FASTAE_EMU_ASM_SWITCH
// fastae_emu_swap(save, load): push the callee-saved registers, store rsp in *save, load rsp from load, pop and jump
// to the popped return address (a jmp, not a ret: a ret onto another stack always misses the return predictor). The frame a fresh fiber starts from is built by init_fiber to match. MXCSR and the x87 control word are not
// switched (loading them costs more than the rest of the switch): every fiber shares the launching thread's, and
// kernel code has no way to change them.
extern "C" void fastae_emu_swap(void** save, void* load) FASTAE_EMU_HIDDEN;
extern "C" void fastae_emu_trampoline() FASTAE_EMU_HIDDEN;
asm(R"(
    .text
    .p2align 4
    .globl fastae_emu_swap
    .hidden fastae_emu_swap
    .type fastae_emu_swap, @function
fastae_emu_swap:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    popq %rax
    jmp *%rax
    .size fastae_emu_swap, .-fastae_emu_swap

    .p2align 4
    .globl fastae_emu_trampoline
    .hidden fastae_emu_trampoline
    .type fastae_emu_trampoline, @function
fastae_emu_trampoline:
    movq %rbx, %rdi
    call fastae_emu_fiber_main
    ud2
    .size fastae_emu_trampoline, .-fastae_emu_trampoline
)");
#endif

namespace fastae_emu {

static inline void asan_start(void** fake, const void* bottom, size_t size) {
#if FASTAE_EMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

static inline void asan_finish(void* fake, const void** bottom, size_t* size) {
#if FASTAE_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

}  // namespace fastae_emu

extern "C" FASTAE_EMU_HIDDEN __attribute__((used, noreturn)) void fastae_emu_fiber_main(fastae_emu::Fiber* f);

namespace fastae_emu {

#if !FASTAE_EMU_ASM_SWITCH
static Fiber* g_starting = nullptr;
static void ucontext_entry() { fastae_emu_fiber_main(g_starting); }
#endif

// Give f a fresh start frame: its next switch-in enters fastae_emu_fiber_main(f).
static void init_fiber(Fiber* f) {
#if FASTAE_EMU_ASAN
    __asan_unpoison_memory_region(f->lo, f->size);  // an abandoned thread's frames leave poisoned redzones
#endif
    f->dirty = false;
    f->fake = nullptr;
#if FASTAE_EMU_ASM_SWITCH
    unsigned long top = ((unsigned long)(f->lo + f->size) - 64 - f->colour) & ~15ul;
    unsigned long* frame = (unsigned long*)(top - 56);  // the trampoline's call then sees rsp % 16 == 0
    frame[0] = 0;                                       // r15
    frame[1] = 0;                                       // r14
    frame[2] = 0;                                       // r13
    frame[3] = 0;                                       // r12
    frame[4] = (unsigned long)f;                        // rbx: the trampoline's argument
    frame[5] = 0;                                       // rbp
    frame[6] = (unsigned long)&fastae_emu_trampoline;   // return address
    f->sp = frame;
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->lo;
    f->uc.uc_stack.ss_size = f->size - f->colour;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, (void (*)())ucontext_entry, 0);
#endif
}

static Fiber* new_fiber() {
    void* mem = mmap(nullptr, kStack + kStackGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    mprotect(mem, kStackGuard, PROT_NONE);
    Fiber* f = new Fiber;
    f->lo = (char*)mem + kStackGuard;
    f->size = kStack;
    unsigned k = g_fibers_made++;
    f->colour = (k * 448) % 4096 + ((k / 64) % 16) * 4096;  // 64 distinct L1 line offsets, 16 page colours
    init_fiber(f);
    return f;
}

static void release_fiber(Fiber* f) {
    if (f->dirty) init_fiber(f);
    f->next = g_free;
    g_free = f;
}

// scheduler -> thread t (its fiber); returns when t blocks, finishes or fails
static bool resume(ThreadState* t) {
    Fiber* f = t->fiber;
    if (!f) {
        f = g_free;
        if (f) {
            g_free = f->next;
        } else if (!(f = new_fiber())) {
            snprintf(g_err, sizeof g_err, "kernel '%s': cannot map a fiber stack (%s)", g_name, strerror(errno));
            g_failed = true;
            return false;
        }
        t->fiber = f;
    }
    g_cur = t;
    t->status = S_RUNNING;
    --g_n_ready;
    g_running = f;
    void* fake = nullptr;
    asan_start(&fake, f->lo, f->size);
#if FASTAE_EMU_ASM_SWITCH
    fastae_emu_swap(&g_sched_sp, f->sp);
#else
    g_starting = f;
    swapcontext(&g_sched_uc, &f->uc);
#endif
    asan_finish(fake, nullptr, nullptr);
    g_running = nullptr;
    return !g_failed;
}

// running thread -> scheduler; returns when the scheduler resumes this thread
static void yield_to_scheduler(bool final) {
    Fiber* f = g_running;
    asan_start(final ? nullptr : &f->fake, g_main_bottom, g_main_size);
#if FASTAE_EMU_ASM_SWITCH
    fastae_emu_swap(&f->sp, g_sched_sp);
#else
    swapcontext(&f->uc, &g_sched_uc);
#endif
    asan_finish(f->fake, &g_main_bottom, &g_main_size);
}

}  // namespace fastae_emu

extern "C" void fastae_emu_fiber_main(fastae_emu::Fiber* f) {
    using namespace fastae_emu;
    (void)f;  // g_running names the fiber from here on
    asan_finish(nullptr, &g_main_bottom, &g_main_size);
    for (;;) {
        ThreadState* t = g_cur;
        g_thunk(g_args);
        t->status = S_DONE;
        yield_to_scheduler(false);  // parked here until the scheduler hands this fiber the next thread
    }
}

namespace fastae_emu {

static void describe_block(char* out, size_t n) {
    snprintf(out, n, "kernel '%s', block (%u,%u,%u) of grid (%u,%u,%u), blockDim (%u,%u,%u)", g_name, g_block_idx.x,
             g_block_idx.y, g_block_idx.z, g_grid_dim.x, g_grid_dim.y, g_grid_dim.z, g_block_dim.x, g_block_dim.y,
             g_block_dim.z);
}

static void set_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char* fmt, ...) {
    char where[256];
    describe_block(where, sizeof where);
    int k = snprintf(g_err, sizeof g_err, "%s: ", where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err + k, sizeof g_err - k, fmt, ap);
    va_end(ap);
    g_failed = true;
}

// An error inside kernel code: record it and leave the thread for good (its fiber is rebuilt before reuse).
[[noreturn]] static void fail_in_thread() {
    Fiber* f = g_running;
    if (!f || !g_in_launch) {  // kernel code called outside a launch
        fprintf(stderr, "fastae cuda emulation: %s\n", g_err);
        abort();
    }
    f->dirty = true;
    g_cur->status = S_DONE;
    yield_to_scheduler(true);
    __builtin_unreachable();
}

static void tid_str(const ThreadState* t, char* out, size_t n) {
    snprintf(out, n, "thread (%u,%u,%u)", t->tid.x, t->tid.y, t->tid.z);
}

static const char* warp_op_name(int op) {
    switch (op % W_WIDE) {
        case W_SHFL_IDX: return op >= W_WIDE ? "__shfl_sync (64-bit)" : "__shfl_sync";
        case W_SHFL_UP: return op >= W_WIDE ? "__shfl_up_sync (64-bit)" : "__shfl_up_sync";
        case W_SHFL_DOWN: return op >= W_WIDE ? "__shfl_down_sync (64-bit)" : "__shfl_down_sync";
        case W_SHFL_XOR: return op >= W_WIDE ? "__shfl_xor_sync (64-bit)" : "__shfl_xor_sync";
        case W_BALLOT: return "__ballot_sync";
        case W_ALL: return "__all_sync";
        case W_ANY: return "__any_sync";
        default: return "__syncwarp";
    }
}

void syncthreads(const char* file, int line) { syncthreads_op(B_PLAIN, 0, file, line); }

int syncthreads_op(int op, int pred, const char* file, int line) {
    ThreadState* t = g_cur;
    if (!g_in_launch) return pred;  // a kernel called as a plain function: a block of one thread
    t->barriers++;
    t->bar_file = file;
    t->bar_line = line;
    t->bar_op = op;
    t->bar_pred = pred;
    t->status = S_BARRIER;
    ++g_n_barrier;
    yield_to_scheduler(false);
    if (op == B_COUNT) return g_bar_count;
    if (op == B_AND) return g_bar_count == (int)g_nthreads;
    return g_bar_count > 0;
}

static unsigned long long shuffle_result(const ThreadState* lanes, int lane, int mode) {
    const ThreadState* L = &lanes[lane];
    unsigned segmask = (unsigned)(32 - L->warp_width) & 31u;  // PTX shfl: c = ((32 - width) << 8) | clamp
    unsigned cval = mode == W_SHFL_UP ? 0u : 31u;
    unsigned bval = (unsigned)L->warp_b & 31u;
    int max_lane = (int)((lane & segmask) | (cval & ~segmask));
    int j;
    bool ok;
    switch (mode) {
        case W_SHFL_UP: j = lane - (int)bval; ok = j >= max_lane; break;
        case W_SHFL_DOWN: j = lane + (int)bval; ok = j <= max_lane; break;
        case W_SHFL_XOR: j = lane ^ (int)bval; ok = j <= max_lane; break;
        default: j = (int)((lane & segmask) | (bval & ~segmask)); ok = j <= max_lane; break;
    }
    return lanes[ok ? j : lane].warp_bits;  // out of the segment: the lane's own value
}

unsigned long long warp_op(int op, unsigned mask, unsigned long long bits, int b, int width, const char* file,
                           int line) {
    ThreadState* t = g_cur;
    if (!g_in_launch) return op % W_WIDE == W_BALLOT ? (bits ? 1u : 0u) : bits;  // plain call: a one-lane warp
    const char* name = warp_op_name(op);
    char who[64];
    tid_str(t, who, sizeof who);
    if (mask != 0xffffffffu) {
        set_error("%s at %s:%d: %s with mask 0x%08x: the emulation supports only the full-warp mask 0xffffffff", who,
                  file, line, name, mask);
        fail_in_thread();
    }
    if (g_nthreads % 32u) {
        set_error("%s at %s:%d: %s needs a block of whole warps, but blockDim has %u threads (not a multiple of 32)",
                  who, file, line, name, g_nthreads);
        fail_in_thread();
    }
    if (width < 1 || width > 32 || (width & (width - 1))) {
        set_error("%s at %s:%d: %s width %d is not a power of 2 in [1, 32]", who, file, line, name, width);
        fail_in_thread();
    }
    Warp& w = g_warps[t->linear / 32];
    if (w.arrived == 0) {
        w.op = op;
        w.file = file;
        w.line = line;
    } else if (w.op != op) {
        set_error("%s reached %s at %s:%d while other lanes of its warp wait at %s at %s:%d: every lane must reach "
                  "the same warp intrinsic", who, name, file, line, warp_op_name(w.op), w.file, w.line);
        fail_in_thread();
    }
    t->warp_op = op;
    t->warp_bits = bits;
    t->warp_b = b;
    t->warp_width = width;
    t->warp_file = file;
    t->warp_line = line;
    if (++w.arrived < 32) {
        t->status = S_WARP;
        ++g_n_warp;
        yield_to_scheduler(false);
        return t->warp_result;
    }
    // the last lane: every lane has its value in place, compute all results and wake the others
    w.arrived = 0;
    ThreadState* lanes = &g_threads[t->linear & ~31u];
    int kind = op % W_WIDE;
    if (kind == W_BALLOT || kind == W_ALL || kind == W_ANY || kind == W_SYNCWARP) {
        unsigned ballot = 0;
        for (int l = 0; l < 32; ++l) ballot |= (lanes[l].warp_bits ? 1u : 0u) << l;
        unsigned long long r = kind == W_BALLOT ? ballot : kind == W_ALL ? (ballot == 0xffffffffu) : (ballot != 0);
        for (int l = 0; l < 32; ++l) lanes[l].warp_result = r;
    } else {
        for (int l = 0; l < 32; ++l) lanes[l].warp_result = shuffle_result(lanes, l, kind);
    }
    for (int l = 0; l < 32; ++l) {
        if (&lanes[l] != t) {
            lanes[l].status = S_READY;
            --g_n_warp;
            ++g_n_ready;
        }
    }
    return t->warp_result;
}

void trap(const char* what, const char* file, int line) {
    char who[64];
    tid_str(g_cur, who, sizeof who);
    set_error("%s: %s at %s:%d", who, what, file, line);
    fail_in_thread();
}

// ---- fixed-seed permutations of [0, n) without tables: cycle-walking a bijection of [0, 2^k) ----
struct Perm {
    unsigned long long n, mask, k1, k2;
    unsigned shift;
    int mode;
    Perm(unsigned long long n_, int mode_, unsigned long long seed) : n(n_), mode(mode_) {
        int bits = 0;
        while ((1ull << bits) < n && bits < 63) ++bits;
        mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
        shift = bits > 1 ? (unsigned)(bits + 1) / 2 : 1;
        k1 = mix(seed) & mask;
        k2 = mix(seed ^ 0x632be59bd9b4e019ull) & mask;
    }
    static unsigned long long mix(unsigned long long z) {
        z += 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    unsigned long long step(unsigned long long x) const {
        for (int r = 0; r < 2; ++r) {
            x = ((x ^ k1) * 0x9e3779b97f4a7c15ull) & mask;
            x ^= x >> shift;
            x = ((x + k2) * 0xbf58476d1ce4e5b9ull) & mask;
            x ^= x >> shift;
        }
        return x;
    }
    unsigned long long operator()(unsigned long long i) const {
        if (mode == ORDER_FORWARD) return i;
        if (mode == ORDER_REVERSE) return n - 1 - i;
        unsigned long long x = i;
        do x = step(x);
        while (x >= n);
        return x;
    }
};

static unsigned gcd(unsigned a, unsigned b) {
    while (b) {
        unsigned r = a % b;
        a = b;
        b = r;
    }
    return a;
}

// The block cannot go on: no thread is runnable. Say why, or release a barrier every thread has reached.
static bool settle_block() {
    char a[64], b[64];
    if (g_n_warp) {
        for (unsigned w = 0; w < g_nthreads / 32; ++w) {
            if (!g_warps[w].arrived) continue;
            const ThreadState* lanes = &g_threads[w * 32];
            const ThreadState* waiting = nullptr;
            const ThreadState* missing = nullptr;
            for (int l = 0; l < 32; ++l) {
                if (lanes[l].status == S_WARP && !waiting) waiting = &lanes[l];
                if (lanes[l].status != S_WARP && !missing) missing = &lanes[l];
            }
            tid_str(waiting, a, sizeof a);
            tid_str(missing, b, sizeof b);
            if (missing->status == S_DONE)
                set_error("warp %u: %s waits at %s at %s:%d, but %s of the same warp has exited: every lane must reach "
                          "the warp intrinsic", w, a, warp_op_name(waiting->warp_op), waiting->warp_file,
                          waiting->warp_line, b);
            else
                set_error("warp %u: %s waits at %s at %s:%d, but %s of the same warp waits at __syncthreads() at %s:%d",
                          w, a, warp_op_name(waiting->warp_op), waiting->warp_file, waiting->warp_line, b,
                          missing->bar_file, missing->bar_line);
            return false;
        }
    }
    const ThreadState* first = nullptr;
    const ThreadState* done = nullptr;
    for (unsigned i = 0; i < g_nthreads; ++i) {
        const ThreadState* t = &g_threads[i];
        if (t->status == S_DONE) {
            if (!done) done = t;
        } else if (!first) {
            first = t;
        }
    }
    if (done) {
        tid_str(first, a, sizeof a);
        tid_str(done, b, sizeof b);
        set_error("__syncthreads() divergence: %s waits at barrier #%u (%s:%d) but %s has exited after %u barrier(s); "
                  "every thread of the block must reach every __syncthreads()", a, first->barriers, first->bar_file,
                  first->bar_line, b, done->barriers);
        return false;
    }
    int count = 0;
    for (unsigned i = 0; i < g_nthreads; ++i) {
        const ThreadState* t = &g_threads[i];
        if (t->bar_line != first->bar_line || t->bar_op != first->bar_op ||
            (t->bar_file != first->bar_file && strcmp(t->bar_file, first->bar_file) != 0)) {
            tid_str(first, a, sizeof a);
            tid_str(t, b, sizeof b);
            set_error("__syncthreads() divergence: %s waits at barrier #%u at %s:%d but %s at a different "
                      "__syncthreads() at %s:%d; all threads must reach the same one", a, first->barriers,
                      first->bar_file, first->bar_line, b, t->bar_file, t->bar_line);
            return false;
        }
        count += t->bar_pred;
    }
    g_bar_count = count;
    for (unsigned i = 0; i < g_nthreads; ++i) g_threads[i].status = S_READY;
    g_n_ready = g_nthreads;
    g_n_barrier = 0;
    return true;
}

static void abandon_block() {
    for (unsigned i = 0; i < g_nthreads; ++i) {
        ThreadState* t = &g_threads[i];
        if (t->fiber) {
            t->fiber->dirty = true;
            release_fiber(t->fiber);
            t->fiber = nullptr;
        }
    }
}

static bool run_block(unsigned long long block_linear, int thread_order) {
    const unsigned n = g_nthreads;
    for (unsigned i = 0; i < n; ++i) {
        ThreadState* t = &g_threads[i];
        t->status = S_READY;
        t->barriers = 0;
        t->fiber = nullptr;
    }
    for (unsigned w = 0; w < (n + 31) / 32; ++w) g_warps[w].arrived = 0;
    g_n_ready = n;
    g_n_done = g_n_barrier = g_n_warp = 0;
    for (unsigned long long phase = 0;; ++phase) {
        for (unsigned long long pass = 0; g_n_ready; ++pass) {
            // visit i = start, start + step, ... (mod n): forward, reverse, or a seeded affine permutation
            unsigned i = 0, step = n > 1 ? 1 : 0;
            if (thread_order == ORDER_REVERSE) {
                i = n - 1;
                step = n - 1;
            } else if (thread_order == ORDER_SHUFFLED && n > 1) {
                unsigned long long z = Perm::mix(block_linear * 0x100000001b3ull + (phase << 20) + pass);
                i = (unsigned)(z % n);
                for (step = 1 + (unsigned)((z >> 32) % (n - 1)); gcd(step, n) != 1; step = step % (n - 1) + 1) {
                }
            }
            for (unsigned k = 0; k < n && g_n_ready; ++k, i = i + step >= n ? i + step - n : i + step) {
                ThreadState* t = &g_threads[i];
                if (t->status != S_READY) continue;
                if (!resume(t)) {
                    abandon_block();
                    return false;
                }
                if (t->status == S_DONE) {
                    ++g_n_done;
                    release_fiber(t->fiber);
                    t->fiber = nullptr;
                }
            }
        }
        if (g_n_done == n) return true;
        if (!settle_block()) {
            abandon_block();
            return false;
        }
    }
}

// ---- faults in kernel code become launch errors (not under the sanitizers: their reports end the process) ----
#if !FASTAE_EMU_ASAN
static const int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
static struct sigaction g_old_actions[4];
static stack_t g_old_altstack;
static char* g_altstack = nullptr;
static pthread_t g_launch_thread;
static const size_t kAltStack = 64 * 1024;

static void on_fault(int sig, siginfo_t* info, void*) {
    int k = 0;
    while (kSignals[k] != sig) ++k;
    if (!g_in_launch || !g_running || !pthread_equal(pthread_self(), g_launch_thread)) {
        // not in kernel code (another thread, or the runtime): let the previous handler see the fault again
        sigaction(sig, &g_old_actions[k], nullptr);
        return;
    }
    char who[64];
    tid_str(g_cur, who, sizeof who);
    char* addr = (char*)info->si_addr;
    Fiber* f = g_running;
    if (sig == SIGSEGV && addr >= f->lo - kStackGuard && addr < f->lo)
        set_error("%s: stack overflow (fiber stacks are %zu KiB)", who, kStack / 1024);
    else
        set_error("%s: %s at address %p in kernel code", who,
                  sig == SIGSEGV ? "segmentation fault" : sig == SIGBUS ? "bus error"
                  : sig == SIGFPE ? "arithmetic exception (integer division by zero?)" : "illegal instruction",
                  (void*)addr);
    fail_in_thread();
}

static void install_fault_handlers() {
    g_launch_thread = pthread_self();
    if (!g_altstack) g_altstack = (char*)malloc(kAltStack);
    stack_t ss = {};
    ss.ss_sp = g_altstack;
    ss.ss_size = kAltStack;
    sigaltstack(&ss, &g_old_altstack);
    struct sigaction sa = {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;  // NODEFER: leaving the handler by a switch keeps the mask
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < 4; ++k) sigaction(kSignals[k], &sa, &g_old_actions[k]);
}

static void restore_fault_handlers() {
    for (int k = 0; k < 4; ++k) sigaction(kSignals[k], &g_old_actions[k], nullptr);
    sigaltstack(&g_old_altstack, nullptr);
}
#endif

static const size_t kCanary = 256;  // without ASan: NaN-filled bytes past the shared memory, checked after each block
static void* g_shared_buf = nullptr;
static size_t g_shared_cap = 0;

// 0x7FF87FF8 in every 32-bit word: a NaN read as float, as double (high word 0x7FF8...: exponent all ones; the
// 0x7FC00000 float NaN repeated is the finite double 2.2e307) and as bfloat16 or half (0x7FF8)
static const unsigned char kNanPattern[4] = {0xF8, 0x7F, 0xF8, 0x7F};

static unsigned char g_pattern[4096];  // kNanPattern repeated: fills and checks go by memcpy / memcmp

static void fill_nan(unsigned char* p, size_t n) {
    if (g_pattern[0] != kNanPattern[0])
        for (size_t i = 0; i < sizeof g_pattern; ++i) g_pattern[i] = kNanPattern[i & 3];
    for (size_t k = 0; k < n; k += sizeof g_pattern) memcpy(p + k, g_pattern, n - k < sizeof g_pattern ? n - k : sizeof g_pattern);
}

static bool canary_intact(const unsigned char* p, size_t n) {
    for (size_t k = 0; k < n; k += sizeof g_pattern)
        if (memcmp(p + k, g_pattern, n - k < sizeof g_pattern ? n - k : sizeof g_pattern) != 0) return false;
    return true;
}

// ---- pointer arguments run on private copies of exactly the memory their arrays describe ----
// Overlapping arguments share one copy (aliasing kept), at the same alignment within 64 bytes. Without ASan the copy
// sits between NaN-filled guards checked after the launch (reads out of bounds give NaN); with ASan the allocation
// ends at the argument's last byte (ASan's redzone follows) and the NaN guard before it is also poisoned. An
// overrun never reaches the host heap.
struct Span {
    unsigned slot, flags;
    unsigned long long start, nbytes;
};
struct Group {
    unsigned long long lo, hi;  // the host bytes [lo, hi) the copy stands for
    unsigned char* buf;
    size_t pad;  // bytes before the copy of lo: the guard and lo's alignment within 64 bytes
    size_t alloc;
    bool writable;
};
static const size_t kGuard = 16 * 1024;
static const unsigned kMaxSpans = 128;
static const unsigned kMaxParams = 512;
static Span g_spans[kMaxSpans];
static Group g_groups[kMaxSpans];
static int g_span_group[kMaxSpans];
static unsigned g_nspans = 0, g_ngroups = 0;
static unsigned char g_argv[8 * kMaxParams];

static bool setup_copies(const unsigned char* table, unsigned nspans) {
    g_nspans = g_ngroups = 0;
    for (unsigned i = 0; i < nspans; ++i) {
        Span sp;
        memcpy(&sp, table + 24 * i, sizeof sp);
        if (sp.flags & SPAN_VALID) g_spans[g_nspans++] = sp;
    }
    // union-find by repeated merging: few arguments, so quadratic is fine
    for (unsigned i = 0; i < g_nspans; ++i) {
        g_span_group[i] = (int)g_ngroups;
        Group& g = g_groups[g_ngroups++];
        g = Group{g_spans[i].start, g_spans[i].start + g_spans[i].nbytes, nullptr, 0, 0, !(g_spans[i].flags & SPAN_CONST)};
    }
    for (bool merged = true; merged;) {
        merged = false;
        for (unsigned a = 0; a < g_ngroups && !merged; ++a)
            for (unsigned b = a + 1; b < g_ngroups && !merged; ++b) {
                Group &x = g_groups[a], &y = g_groups[b];
                if (x.lo < y.hi && y.lo < x.hi) {  // overlapping (empty spans overlap nothing)
                    x.lo = x.lo < y.lo ? x.lo : y.lo;
                    x.hi = x.hi > y.hi ? x.hi : y.hi;
                    x.writable = x.writable || y.writable;
                    for (unsigned i = 0; i < g_nspans; ++i)
                        if (g_span_group[i] == (int)b) g_span_group[i] = (int)a;
                        else if (g_span_group[i] == (int)g_ngroups - 1) g_span_group[i] = (int)b;
                    y = g_groups[--g_ngroups];
                    merged = true;
                }
            }
    }
    for (unsigned k = 0; k < g_ngroups; ++k) {
        Group& g = g_groups[k];
        size_t len = (size_t)(g.hi - g.lo);
        g.pad = kGuard + (size_t)(g.lo % 64);
#if FASTAE_EMU_ASAN
        g.alloc = g.pad + len;  // ASan's redzone right after the last byte
#else
        g.alloc = g.pad + len + kGuard;
#endif
        void* mem = nullptr;
        if (posix_memalign(&mem, 64, g.alloc ? g.alloc : 1) != 0) {
            snprintf(g_err, sizeof g_err, "kernel '%s': out of memory for argument copies", g_name);
            return false;
        }
        g.buf = (unsigned char*)mem;
        memcpy(g.buf + g.pad, (const void*)g.lo, len);
        fill_nan(g.buf, g.pad);
#if FASTAE_EMU_ASAN
        // whole 8-byte granules only: before an argument that starts mid-granule the NaN guard still checks
        __asan_poison_memory_region(g.buf, g.pad);
#else
        fill_nan(g.buf + g.pad + len, kGuard);
#endif
    }
    for (unsigned i = 0; i < g_nspans; ++i) {
        const Group& g = g_groups[g_span_group[i]];
        unsigned long long ptr;
        memcpy(&ptr, g_argv + 8 * g_spans[i].slot, 8);
        ptr = (unsigned long long)(g.buf + g.pad) + (ptr - g.lo);
        memcpy(g_argv + 8 * g_spans[i].slot, &ptr, 8);
    }
    return true;
}

// After the launch: report a guard the kernel wrote into or const memory it changed; copy the writable groups back.
static void finish_copies(bool report) {
    for (unsigned k = 0; k < g_ngroups; ++k) {
        Group& g = g_groups[k];
        size_t len = (size_t)(g.hi - g.lo);
        unsigned first = 0, last = 0;  // the arguments at the copy's two ends
        for (unsigned i = 0; i < g_nspans; ++i) {
            if (g_span_group[i] != (int)k) continue;
            if (g_spans[i].start == g.lo) first = g_spans[i].slot;
            if (g_spans[i].start + g_spans[i].nbytes == g.hi) last = g_spans[i].slot;
        }
#if FASTAE_EMU_ASAN
        __asan_unpoison_memory_region(g.buf, g.pad);
#else
        if (report && !canary_intact(g.buf + g.pad + len, kGuard)) {
            snprintf(g_err, sizeof g_err, "kernel '%s': wrote past the end of argument #%u (its array has %zu bytes)",
                     g_name, last, len);
            g_failed = true;
            report = false;
        }
#endif
        if (report && !canary_intact(g.buf, g.pad)) {
            snprintf(g_err, sizeof g_err, "kernel '%s': wrote before the start of argument #%u", g_name, first);
            g_failed = true;
            report = false;
        }
        if (g.writable) {
            memcpy((void*)g.lo, g.buf + g.pad, len);
        } else if (report && memcmp((const void*)g.lo, g.buf + g.pad, len) != 0) {
            snprintf(g_err, sizeof g_err, "kernel '%s': wrote to the memory of const argument #%u", g_name, first);
            g_failed = true;
            report = false;
        }
        free(g.buf);
        g.buf = nullptr;
    }
    g_ngroups = g_nspans = 0;
}

static int launch(const char* name, Thunk thunk, const unsigned char* blob) {
    unsigned dims[6], counts[2];
    unsigned long long shared;
    int orders[2];
    memcpy(dims, blob, sizeof dims);
    memcpy(&shared, blob + 24, sizeof shared);
    memcpy(orders, blob + 32, sizeof orders);
    memcpy(counts, blob + 40, sizeof counts);
    g_name = name;
    g_failed = false;
    g_err[0] = 0;
    g_grid_dim = dim3(dims[0], dims[1], dims[2]);
    g_block_dim = dim3(dims[3], dims[4], dims[5]);
    g_block_idx = uint3{0, 0, 0};
    unsigned long long nthreads = (unsigned long long)dims[3] * dims[4] * dims[5];
    for (int i = 0; i < 6; ++i)
        if (dims[i] == 0) nthreads = 0;
    if (nthreads == 0 || nthreads > 1024 || dims[3] > 1024 || dims[4] > 1024 || dims[5] > 64 || dims[0] > 2147483647u ||
        dims[1] > 65535 || dims[2] > 65535 || shared > 49152 || counts[0] > kMaxParams || counts[1] > kMaxSpans) {
        snprintf(g_err, sizeof g_err, "kernel '%s': invalid launch configuration", name);
        return 1;
    }
    g_nthreads = (unsigned)nthreads;
    for (unsigned i = 0; i < g_nthreads; ++i) {
        ThreadState* t = &g_threads[i];
        *t = ThreadState{};
        t->tid = uint3{i % dims[3], (i / dims[3]) % dims[4], i / (dims[3] * dims[4])};
        t->linear = i;
    }
    memcpy(g_argv, blob + BLOB_ARGS, 8 * (size_t)counts[0]);
    if (!setup_copies(blob + BLOB_ARGS + 8 * (size_t)counts[0], counts[1])) {
        finish_copies(false);
        return 1;
    }
#if FASTAE_EMU_ASAN
    void* buf = nullptr;
    if (posix_memalign(&buf, 16, shared) != 0) buf = nullptr;  // exactly shared bytes: ASan sees any overrun
    if (!buf && shared) {
        snprintf(g_err, sizeof g_err, "kernel '%s': out of memory for shared memory", name);
        finish_copies(false);
        return 1;
    }
    const size_t canary = 0;
#else
    const size_t canary = kCanary;
    if (g_shared_cap < shared + canary) {
        free(g_shared_buf);
        g_shared_buf = nullptr;
        if (posix_memalign(&g_shared_buf, 16, shared + canary) != 0) g_shared_buf = nullptr;
        g_shared_cap = g_shared_buf ? shared + canary : 0;
        if (!g_shared_buf) {
            snprintf(g_err, sizeof g_err, "kernel '%s': out of memory for shared memory", name);
            finish_copies(false);
            return 1;
        }
    }
    void* buf = g_shared_buf;
#endif
    g_shared = buf;
    g_thunk = thunk;
    g_args = g_argv;
    g_in_launch = true;
#if !FASTAE_EMU_ASAN
    install_fault_handlers();
#endif
    unsigned long long total = (unsigned long long)dims[0] * dims[1] * dims[2];
    Perm blocks(total, orders[0], 0x5eed0fb10c5ull);
    bool ok = true;
    for (unsigned long long k = 0; k < total && ok; ++k) {
        unsigned long long b = blocks(k);
        g_block_idx = uint3{(unsigned)(b % dims[0]), (unsigned)((b / dims[0]) % dims[1]),
                            (unsigned)(b / ((unsigned long long)dims[0] * dims[1]))};
        fill_nan((unsigned char*)buf, shared + canary);
        ok = run_block(b, orders[1]);
        if (ok && canary && !canary_intact((unsigned char*)buf + shared, canary)) {
            set_error("wrote past the end of its dynamic shared memory (%llu bytes)", shared);
            ok = false;
        }
    }
#if !FASTAE_EMU_ASAN
    restore_fault_handlers();
#else
    free(buf);
#endif
    g_in_launch = false;
    finish_copies(ok);
    g_shared = nullptr;
    g_cur = &g_host;  // kernel code called as a plain function afterwards: one thread of a one-block grid
    g_block_idx = uint3{0, 0, 0};
    g_block_dim = dim3();
    g_grid_dim = dim3();
    return g_failed ? 1 : 0;
}

}  // namespace fastae_emu

extern "C" __attribute__((visibility("default"))) int fastae_emu_run(const char* name, fastae_emu::Thunk thunk,
                                                                     const unsigned char* blob, char* err,
                                                                     int errlen) {
    using namespace fastae_emu;
    pthread_mutex_lock(&g_mutex);
    int rc = launch(name, thunk, blob);
    if (rc && err && errlen > 0) snprintf(err, (size_t)errlen, "%s", g_err);
    pthread_mutex_unlock(&g_mutex);
    return rc;
}

#endif  // FASTAE_EMU_RUNTIME
