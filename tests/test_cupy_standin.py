"""The tier-3 stand-in for CuPy (tests/cupy_standin): its names are CuPy's, and it refuses what a GPU refuses."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

import tests.cupy_standin as standin
from tests.cupy_standin import CUBLASError, CUDARuntimeError, Hazard, HostFault

# Every public name of cupy_backends.cuda.libs.cublas in CuPy 14.2 (cupy_backends/cuda/libs/cublas.pyx and .pxd at
# tag v14.2.0; the same 134 names the installed wheel's module has when loaded against an empty libcublas.so.13).
# The module cannot be imported here (no libcublas), so the list stands in for it.
REAL_CUBLAS_NAMES = frozenset(
    """
    CUBLASError CUBLAS_COMPUTE_16F CUBLAS_COMPUTE_16F_PEDANTIC CUBLAS_COMPUTE_32F CUBLAS_COMPUTE_32F_FAST_16BF
    CUBLAS_COMPUTE_32F_FAST_16F CUBLAS_COMPUTE_32F_FAST_TF32 CUBLAS_COMPUTE_32F_PEDANTIC CUBLAS_COMPUTE_32I
    CUBLAS_COMPUTE_32I_PEDANTIC CUBLAS_COMPUTE_64F CUBLAS_COMPUTE_64F_PEDANTIC CUBLAS_DEFAULT_MATH CUBLAS_DIAG_NON_UNIT
    CUBLAS_DIAG_UNIT CUBLAS_FILL_MODE_LOWER CUBLAS_FILL_MODE_UPPER CUBLAS_GEMM_DEFAULT CUBLAS_GEMM_DEFAULT_TENSOR_OP
    CUBLAS_GEMM_DFALT CUBLAS_GEMM_DFALT_TENSOR_OP CUBLAS_OP_C CUBLAS_OP_N CUBLAS_OP_T CUBLAS_POINTER_MODE_DEVICE
    CUBLAS_POINTER_MODE_HOST CUBLAS_SIDE_LEFT CUBLAS_SIDE_RIGHT CUBLAS_TENSOR_OP_MATH caxpy cdgmm cdotc cdotu cgeam
    cgemm cgemmBatched cgemmStridedBatched cgemv cgerc cgeru cgetrfBatched cgetriBatched cgetrsBatched check_status
    create cscal csscal csyrk ctrsm ctrsmBatched dasum daxpy ddgmm ddot destroy dgeam dgemm dgemmBatched
    dgemmStridedBatched dgemv dger dgetrfBatched dgetriBatched dgetrsBatched dnrm2 dsbmv dscal dsyrk dtpttr dtrsm
    dtrsmBatched dtrttp dzasum dznrm2 gemmEx gemmStridedBatchedEx getMathMode getPointerMode getStream getVersion
    icamax icamin idamax idamin isamax isamin izamax izamin sasum saxpy scasum scnrm2 sdgmm sdot setMathMode
    setPointerMode setStream sgeam sgemm sgemmBatched sgemmEx sgemmStridedBatched sgemv sger sgetrfBatched
    sgetriBatched sgetrsBatched snrm2 ssbmv sscal ssyrk stpttr strsm strsmBatched strttp zaxpy zdgmm zdotc zdotu
    zdscal zgeam zgemm zgemmBatched zgemmStridedBatched zgemv zgerc zgeru zgetrfBatched zgetriBatched zgetrsBatched
    zscal zsyrk ztrsm ztrsmBatched
    """.split()
)
# their values in cublas.pxd (v14.2.0)
REAL_CUBLAS_VALUES = {
    "CUBLAS_OP_N": 0,
    "CUBLAS_OP_T": 1,
    "CUBLAS_OP_C": 2,
    "CUBLAS_GEMM_DEFAULT": -1,
    "CUBLAS_DEFAULT_MATH": 0,
    "CUBLAS_COMPUTE_32F": 68,
    "CUBLAS_COMPUTE_32F_FAST_TF32": 77,
    "CUBLAS_COMPUTE_64F": 70,
    "CUBLAS_POINTER_MODE_HOST": 0,
    "CUBLAS_POINTER_MODE_DEVICE": 1,
}
R32, R64, R16BF = 0, 1, 14
OP_N, OP_T = 0, 1
C32, TF32, C64 = 68, 77, 70


@pytest.fixture
def cp():
    """The stand-in installed as `cupy` (and its counters zeroed)."""
    with standin.installed() as mod:
        standin.reset()
        yield mod


@pytest.fixture
def blas(cp):
    import cupy_backends.cuda.libs.cublas as blas

    return blas


def _public(obj):
    return {n for n in vars(obj) if not n.startswith("_")}


# --- names ------------------------------------------------------------------------------------------------------------
def test_every_name_is_cupys():
    real = {
        name: importlib.import_module(name) for name in ("cupy", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.device")
    }
    mods = standin.modules()
    for name, module in real.items():
        mine = mods[name]
        assert _public(mine) - set(dir(module)) == set(), name
        for n in _public(mine):  # an integer constant has CuPy's value
            value = getattr(module, n)
            if isinstance(value, int) and not isinstance(value, bool):
                assert getattr(mine, n) == value, f"{name}.{n}"
    assert mods["cupy.cuda.runtime"].CUDA_R_32F == 0 and mods["cupy.cuda.runtime"].CUDA_R_16BF == 14
    cupy = real["cupy"]
    pairs = {
        "ndarray": cupy.ndarray,
        "ufunc": cupy.ufunc,
        "RawKernel": cupy.RawKernel,
        "RawModule": cupy.RawModule,
    }
    for n, cls in pairs.items():
        assert {a for a in dir(getattr(mods["cupy"], n)) if not a.startswith("_")} <= set(dir(cls)), n
    for n in ("Stream", "Event", "Device", "Graph", "MemoryPointer", "PinnedMemory", "PinnedMemoryPointer"):
        mine = getattr(mods["cupy.cuda"], n)
        assert {a for a in dir(mine) if not a.startswith("_")} <= set(dir(getattr(cupy.cuda, n))), n
    blas = mods["cupy_backends.cuda.libs.cublas"]
    assert _public(blas) <= REAL_CUBLAS_NAMES
    assert {"gemmEx", "setStream", "getStream", "setMathMode", "getMathMode", "CUBLASError"} <= _public(blas)
    for n, v in REAL_CUBLAS_VALUES.items():
        assert getattr(blas, n) == v, n
    assert not hasattr(blas, "CUBLAS_TF32_TENSOR_OP_MATH")  # cuBLAS has it (3), CuPy 14.2 does not export it


def test_installed_swaps_sys_modules_and_restores_them():
    before = sys.modules.get("cupy")
    with standin.installed() as cp:
        import cupy
        import cupy_backends.cuda.libs.cublas as blas

        assert cupy is cp and blas is standin.modules()["cupy_backends.cuda.libs.cublas"]
        with pytest.raises(ImportError):
            importlib.import_module("cupy.random")  # what the stand-in lacks is missing, not the real one
    assert sys.modules.get("cupy") is before


# --- arrays: no implicit host conversion ------------------------------------------------------------------------------
def test_implicit_conversion_and_numpy_mixing_are_refused(cp):
    a = cp.arange(6, dtype=cp.float32).reshape(2, 3)
    h = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        a + h
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        h * a  # NumPy defers to __array_ufunc__, which refuses the host operand
    with pytest.raises(TypeError, match="Unsupported type"):
        np.maximum(a, h)
    with pytest.raises(TypeError):
        cp.concatenate([a, h])
    with pytest.raises(TypeError):
        cp.may_share_memory(a, h)  # CuPy's Cython signature takes only device arrays
    with pytest.raises(TypeError):
        cp.ascontiguousarray(h)
    with pytest.raises(TypeError):
        np.linalg.norm(a)  # a NumPy function CuPy's namespace lacks
    assert (a + np.float32(1) + 2).get().tolist() == [[3, 4, 5], [6, 7, 8]]  # scalars are fine
    assert (np.float32(2) * a).get().tolist() == [[0, 2, 4], [6, 8, 10]] and (1 - a).dtype == np.float32
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.array(1.0, np.float32)  # a 0-d NumPy array is still a NumPy array
    assert np.sum(a).item() == 15 and isinstance(np.sum(a), cp.ndarray)  # NumPy functions dispatch to the stand-in
    assert bool(np.isfinite(a).all()) and isinstance(np.isfinite(a), cp.ndarray)
    assert cp.asarray(h).get().tolist() == h.tolist()  # explicit host-to-device copies are fine
    assert cp.asarray(a) is a and cp.ascontiguousarray(a) is a


def test_attributes_and_host_copies(cp):
    a = cp.asarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    assert (a.shape, a.ndim, a.size, a.itemsize, a.nbytes, a.strides) == ((3, 4), 2, 12, 8, 96, (32, 8))
    assert a.flags.c_contiguous and not a.flags.f_contiguous and a.flags.owndata and not hasattr(a.flags, "writeable")
    t = a.T
    assert t.base is a and not t.flags.owndata and t.flags.f_contiguous
    cai = t.__cuda_array_interface__
    assert cai["version"] == 3 and cai["data"] == (a.data.ptr, False) and cai["typestr"] == "<f8"
    assert cai["strides"] == (8, 32) and a.__cuda_array_interface__["strides"] is None
    assert a[1:].data.ptr == a.data.ptr + 32
    assert cp.ndarray((2, 4), cp.float64, memptr=a.data + 32).get().tolist() == [[4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ValueError):
        cp.ndarray((3, 4), cp.float64, memptr=a.data + 32)  # would reach past the allocation
    out = np.empty((3, 4))
    assert a.get(out=out) is out and out[2, 3] == 11
    a.set(np.zeros((3, 4)))
    with pytest.raises(TypeError):
        a.set(np.zeros((3, 4), np.float32))
    standin.reset()
    assert float(a[0, 0]) == 0.0 and a[1, 1].item() == 0.0 and not bool(a[2, 2])
    assert standin.counters.syncs == 3
    assert len(a) == 3 and [r.shape for r in a] == [(4,)] * 3 and a.tolist()[0] == [0.0] * 4
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a)


def test_empty_memory_reads_as_uninitialised(cp):
    assert np.isnan(cp.empty((4, 5), dtype=cp.float32).get()).all()
    assert np.isnan(cp.empty_like(cp.zeros(3)).get()).all()
    assert (cp.empty(4, dtype=cp.int32).get().view(np.uint8) == 0xA5).all()
    assert (cp.ndarray((2,), dtype=cp.uint16).get() == 0xA5A5).all()
    assert (cp.zeros(3).get() == 0).all() and (cp.full((2,), 7, cp.int64).get() == 7).all()


def test_indexing_follows_cupy(cp):
    a = cp.arange(10, dtype=cp.int64)
    v = a[2:5]
    v[...] = 0
    assert a.get()[2:5].tolist() == [0, 0, 0] and v.base is a  # basic indexing is a view
    standin.reset()
    picked, one = a[[1, 9]], a[np.array([3])]  # host index arrays are copied to the device
    assert standin.counters.h2d == 2 and standin.counters.syncs == 0
    assert picked.get().tolist() == [1, 9] and one.get().tolist() == [0]
    standin.reset()
    masked = a[a > 6]  # a mask needs its count of true elements on the host
    assert standin.counters.syncs == 1 and masked.get().tolist() == [7, 8, 9]
    with pytest.raises(IndexError):
        a[cp.asarray(np.array([10]))]  # CuPy wraps around; the stand-in refuses an index past the end
    with pytest.raises(IndexError, match="integer or boolean"):
        a[cp.zeros(2)]
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        a[:3] = np.arange(3)
    a[[0, 1]] = np.array([5, 6])  # advanced assignment copies the host value, as CuPy does
    a[a == 5] = cp.asarray(np.array([-1]))
    assert a.get()[:2].tolist() == [-1, 6]


def test_overlapping_elementwise_output_is_a_hazard(cp):
    a = cp.arange(8, dtype=cp.float32)
    with pytest.raises(Hazard):
        a[1:] += a[:-1]
    with pytest.raises(Hazard):
        a[1:] = a[:-1]
    a += a  # the same elements in and out: no race
    np.multiply(a, 2, out=a)
    assert a.get().tolist() == [4.0 * i for i in range(8)]


def test_reductions_and_routines(cp):
    h = np.array([[3.0, -1.0, np.inf], [0.5, 2.0, -4.0]])
    a = cp.asarray(h)
    assert cp.isfinite(a).get().tolist() == np.isfinite(h).tolist()
    assert cp.count_nonzero(cp.isfinite(a)).item() == 5 and isinstance(cp.count_nonzero(a), cp.ndarray)
    assert cp.argwhere(cp.isinf(a)).get().tolist() == [[0, 2]] and cp.flatnonzero(a < 0).get().tolist() == [1, 5]
    assert cp.sort(a[1]).get().tolist() == [-4.0, 0.5, 2.0] and a.max(axis=0).get().tolist() == [3.0, 2.0, np.inf]
    assert cp.where(a > 0, a, 0).get().tolist() == np.where(h > 0, h, 0).tolist()
    assert cp.clip(a, -1, 1).get().tolist() == np.clip(h, -1, 1).tolist()
    assert bool(cp.array_equal(a, a.copy())) and not bool(np.array_equal(a, a + 1))
    assert cp.concatenate([a, a], axis=1).shape == (2, 6) and cp.stack([a[0], a[1]]).shape == (2, 3)
    assert cp.mean(cp.asarray(np.arange(4.0))).item() == 1.5 and np.abs(a).min().item() == 0.5
    assert cp.shares_memory(a, a[1]) and not cp.shares_memory(a[0], a[1]) and cp.may_share_memory(a, a[1, 1:])
    assert cp.get_array_module(a) is cp and cp.get_array_module(h) is np
    assert cp.asnumpy(a).tolist() == h.tolist()


# --- cuBLAS -----------------------------------------------------------------------------------------------------------
def _column_major(cp, M, ld, offset, dtype):
    """``M`` stored column-major with leading dimension ``ld``, ``offset`` elements into a NaN-filled device buffer:
    the buffer (to keep alive) and the address of the matrix."""
    rows, cols = M.shape
    host = np.full(offset + ld * (cols - 1) + rows + 5, np.nan, dtype=dtype)
    for j in range(cols):
        host[offset + j * ld : offset + j * ld + rows] = M[:, j]
    buf = cp.asarray(host)
    return buf, buf.data.ptr + offset * host.itemsize


def _read_column_major(buf, ptr, rows, cols, ld):
    host = buf.get()
    off = (ptr - buf.data.ptr) // host.itemsize
    return np.stack([host[off + j * ld : off + j * ld + rows] for j in range(cols)], axis=1)


def _scalars(dtype, alpha, beta):
    return np.array([alpha], dtype), np.array([beta], dtype)


@pytest.mark.parametrize("transa", [OP_N, OP_T])
@pytest.mark.parametrize("transb", [OP_N, OP_T])
def test_gemm_ex_is_column_major_cublas(cp, blas, transa, transb):
    rng = np.random.default_rng(transa * 2 + transb)
    m, n, k = 5, 3, 4
    opa, opb, c0 = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal((m, n))
    A = opa if transa == OP_N else opa.T
    B = opb if transb == OP_N else opb.T
    lda, ldb, ldc = A.shape[0] + 2, B.shape[0] + 1, m + 3  # leading dimensions larger than needed
    abuf, ap = _column_major(cp, A, lda, 3, np.float64)  # and the matrices start inside their buffers
    bbuf, bp = _column_major(cp, B, ldb, 1, np.float64)
    cbuf, cptr = _column_major(cp, c0, ldc, 2, np.float64)
    alpha, beta = _scalars(np.float64, 1.5, -0.5)
    h = cp.cuda.device.get_cublas_handle()
    standin.reset()
    blas.gemmEx(
        h,
        transa,
        transb,
        m,
        n,
        k,
        alpha.ctypes.data,
        ap,
        R64,
        lda,
        bp,
        R64,
        ldb,
        beta.ctypes.data,
        cptr,
        R64,
        ldc,
        C64,
        -1,
    )
    assert standin.counters.blas == 1
    np.testing.assert_allclose(_read_column_major(cbuf, cptr, m, n, ldc), 1.5 * opa @ opb - 0.5 * c0, rtol=1e-13)
    rest = cbuf.get()
    rest_mask = np.ones(rest.size, bool)
    for j in range(n):
        rest_mask[2 + j * ldc : 2 + j * ldc + m] = False
    assert np.isnan(rest[rest_mask]).all()  # nothing outside C was written (the padding is still NaN)


def test_gemm_ex_float32_and_the_checks_cublas_makes(cp, blas):
    m, n, k = 4, 6, 3
    a = cp.asarray(np.arange(m * k, dtype=np.float32).reshape(m, k))  # row-major (m, k) = column-major k x m
    b = cp.asarray(np.arange(k * n, dtype=np.float32).reshape(k, n))
    c = cp.empty((m, n), dtype=cp.float32)  # NaN-filled: beta = 0 must not read it
    one, zero = _scalars(np.float32, 1, 0)
    h = cp.cuda.device.get_cublas_handle()

    def gemm(first=None, ld=n, ta=OP_N, compute=C32, k_=k):
        # row-major C = a b is column-major C^T = b^T a^T: b first, then a (as fastae's cupy_blas does)
        first = b.data.ptr if first is None else first
        blas.gemmEx(
            h,
            ta,
            OP_N,
            n,
            m,
            k_,
            one.ctypes.data,
            first,
            R32,
            ld,
            a.data.ptr,
            R32,
            k_,
            zero.ctypes.data,
            c.data.ptr,
            R32,
            n,
            compute,
            -1,
        )

    gemm()
    np.testing.assert_allclose(c.get(), a.get() @ b.get(), rtol=1e-6)
    with pytest.raises(CUBLASError, match="CUBLAS_STATUS_INVALID_VALUE") as err:
        gemm(ld=n - 1)  # lda < max(1, rows of A)
    assert err.value.status == 7
    with pytest.raises(CUBLASError, match="INVALID_VALUE"):
        gemm(ta=5)
    with pytest.raises(CUBLASError, match="NOT_SUPPORTED"):
        gemm(compute=C64)  # float32 operands with a float64 compute type
    with pytest.raises(CUDARuntimeError, match="cudaErrorIllegalAddress") as err:
        gemm(first=b.data.ptr + 4)  # one element in: A's last element is past the end of its allocation
    assert err.value.status == 700
    with pytest.raises(CUDARuntimeError, match="cudaErrorIllegalAddress"):
        gemm(ld=n + 1)  # a too-large leading dimension also runs past the end
    with pytest.raises(CUDARuntimeError, match="cudaErrorMisalignedAddress"):
        gemm(first=b.data.ptr + 2)
    wrong = cp.zeros(k * n, dtype=cp.float64)
    with pytest.raises(TypeError, match="float64"):
        gemm(first=wrong.data.ptr)  # float64 memory read as CUDA_R_32F
    with pytest.raises(HostFault):
        blas.gemmEx(
            h, 0, 0, n, m, k, 1, b.data.ptr, R32, n, a.data.ptr, R32, k, zero.ctypes.data, c.data.ptr, R32, n, C32, -1
        )  # alpha is an address: 1 would crash the host
    with pytest.raises(TypeError):
        blas.gemmEx(h, 0, 0, n, m, k, 1.0, b.data.ptr, R32, n, a.data.ptr, R32, k, 0, c.data.ptr, R32, n, C32, -1)


def _square(blas, h, alpha, a, beta, c):
    """``c = alpha a a + beta c`` for 2 x 2 float32 ``a`` and ``c``, alpha and beta given as addresses."""
    blas.gemmEx(h, 0, 0, 2, 2, 2, alpha, a.data.ptr, R32, 2, a.data.ptr, R32, 2, beta, c.data.ptr, R32, 2, C32, -1)


def test_gemm_ex_beta_zero_ignores_nan_in_c_and_beta_one_reads_it(cp, blas):
    a = cp.ones((2, 2), dtype=cp.float32)
    c = cp.empty((2, 2), dtype=cp.float32)
    one, zero = _scalars(np.float32, 1, 0)
    h = cp.cuda.device.get_cublas_handle()
    for beta, finite in ((zero, True), (one, False)):
        _square(blas, h, one.ctypes.data, a, beta.ctypes.data, c)
        assert np.isfinite(c.get()).all() == finite
        c.fill(np.nan)


def test_gemm_ex_device_pointer_mode_reads_alpha_on_the_device(cp, blas):
    a = cp.ones((2, 2), dtype=cp.float32)
    c = cp.zeros((2, 2), dtype=cp.float32)
    alpha, beta = cp.asarray(np.array([3.0], np.float32)), cp.zeros(1, dtype=cp.float32)
    h = cp.cuda.device.get_cublas_handle()
    host = np.ones(1, np.float32)
    blas.setPointerMode(h, blas.CUBLAS_POINTER_MODE_DEVICE)
    try:
        _square(blas, h, alpha.data.ptr, a, beta.data.ptr, c)
        assert (c.get() == 6).all()
        with pytest.raises(CUDARuntimeError, match="IllegalAddress"):  # a host address is no device address
            _square(blas, h, host.ctypes.data, a, beta.data.ptr, c)
    finally:
        blas.setPointerMode(h, blas.CUBLAS_POINTER_MODE_HOST)
    with pytest.raises(HostFault):  # and the other way round
        _square(blas, h, alpha.data.ptr, a, beta.data.ptr, c)


def test_tf32_rounds_the_operands_to_ten_mantissa_bits(cp, blas):
    x = np.array([1 + 2**-12, 1 + 3 * 2**-11, 1 + 2**-11 + 2**-20, 1 + 2**-11], dtype=np.float32)
    expect = np.array([1.0, 1 + 2**-9, 1 + 2**-10, 1.0], dtype=np.float32)  # to nearest, ties to even
    a = cp.asarray(x.reshape(1, 4))  # column-major 1 x 4 with lda 1
    b = cp.ones(1, dtype=cp.float32)
    c = cp.empty(4, dtype=cp.float32)
    one, zero = _scalars(np.float32, 1, 0)
    h = cp.cuda.device.get_cublas_handle()

    def run(compute):  # C (1 x 4) = A (1 x 1)... as x^T: m = 4, n = 1, k = 1, A = x (4 x 1, lda 4)
        blas.gemmEx(
            h,
            0,
            0,
            4,
            1,
            1,
            one.ctypes.data,
            a.data.ptr,
            R32,
            4,
            b.data.ptr,
            R32,
            1,
            zero.ctypes.data,
            c.data.ptr,
            R32,
            4,
            compute,
            -1,
        )
        return c.get()

    assert (run(C32) == x).all()
    tf = run(TF32)
    assert (tf == expect).all() and (tf.view(np.uint32) & 0x1FFF == 0).all()
    assert (run(C32) != tf).all()
    blas.setMathMode(h, 3)  # CUBLAS_TF32_TENSOR_OP_MATH makes COMPUTE_32F use TF32 too
    try:
        assert (run(C32) == expect).all() and (run(69) == x).all()  # ... but not the PEDANTIC compute type
    finally:
        blas.setMathMode(h, 0)


def test_bf16_operands_widen_exactly(cp, blas):
    vals = np.array([1.0, -2.5, 0.15625, 3.0e-3], dtype=np.float32)
    bits = (vals.view(np.uint32) >> 16).astype(np.uint16)  # truncated: exact bf16 values
    wide = (bits.astype(np.uint32) << 16).view(np.float32)
    a = cp.asarray(bits.reshape(2, 2))
    c = cp.empty((2, 2), dtype=cp.float32)
    one, zero = _scalars(np.float32, 1, 0)
    h = cp.cuda.device.get_cublas_handle()
    blas.gemmEx(
        h,
        0,
        0,
        2,
        2,
        2,
        one.ctypes.data,
        a.data.ptr,
        R16BF,
        2,
        a.data.ptr,
        R16BF,
        2,
        zero.ctypes.data,
        c.data.ptr,
        R32,
        2,
        C32,
        -1,
    )
    w = wide.reshape(2, 2)
    np.testing.assert_array_equal(c.get(), (w @ w).astype(np.float32))  # row-major a a = column-major (a a)^T^T
    with pytest.raises(TypeError):  # float32 memory read as bfloat16 patterns
        blas.gemmEx(
            h,
            0,
            0,
            2,
            2,
            2,
            one.ctypes.data,
            c.data.ptr,
            R16BF,
            2,
            a.data.ptr,
            R16BF,
            2,
            zero.ctypes.data,
            c.data.ptr,
            R32,
            2,
            C32,
            -1,
        )


# --- kernels ----------------------------------------------------------------------------------------------------------
KERNELS = r"""
extern "C" __global__ void axpy_f32(const float* __restrict__ x, float* y, float a, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x)
        y[i] += a * x[i];
}
extern "C" __global__ void count_blocks(int* counter) {
    if (threadIdx.x == 0) atomicAdd(counter, 1);
}
extern "C" __global__ void table_overrun(const long long* table, long long n) {
    float* y = reinterpret_cast<float*>(table[0]);  /* a pointer from a table, as a multi-tensor kernel takes */
    if (blockIdx.x == 0 && threadIdx.x == 0) y[n] = 2.0f;
}
extern "C" __global__ void overrun_f32(float* y, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 1.0f;  /* one past the end */
}
"""


@pytest.fixture
def module(cp):
    return cp.RawModule(code=KERNELS, options=("--std=c++17",))


def test_raw_module_runs_kernels_with_cupys_argument_rules(cp, module):
    axpy = module.get_function("axpy_f32")
    x = cp.arange(100, dtype=cp.float32)
    y = cp.ones(100, dtype=cp.float32)
    standin.reset()
    axpy((2,), (32,), (x, y, np.float32(2), np.int64(100)))
    assert standin.counters.kernels == 1 and (y.get() == 1 + 2 * np.arange(100)).all()
    axpy((1,), (32,), (x, y, np.array([np.float32(1)]), 100))  # a size-1 NumPy array passes by value, as in CuPy
    assert y.get()[3] == 1 + 3 * 3
    with pytest.raises(TypeError, match="You are trying to pass a numpy.ndarray"):
        axpy((1,), (32,), (x.get(), y, np.float32(2), np.int64(100)))
    with pytest.raises(TypeError, match="size one"):
        axpy((1,), (32,), (np.ones(1, np.float32), y, np.float32(2), np.int64(100)))
    with pytest.raises(TypeError, match="expected tuple"):
        axpy(1, (32,), (x, y, np.float32(2), np.int64(100)))
    with pytest.raises(TypeError, match="float"):
        axpy((1,), (32,), (x, y, 2.0, np.int64(100)))  # a Python float is a double
    with pytest.raises(TypeError):
        axpy((1,), (32,), (x.astype(cp.float64), y, np.float32(2), np.int64(100)))
    with pytest.raises(TypeError):
        axpy((1,), (32,), (x, y, np.float32(2)))
    with pytest.raises(TypeError):
        axpy((1,), (32,), (x, y, np.float32(2), np.int64(100)), 0)  # shared_mem is keyword-only
    counter = cp.zeros(1, dtype=cp.int32)
    module.get_function("count_blocks")((0,), (32,), (counter,))
    assert counter.item() == 1  # CuPy launches a grid of 0 as one block
    with pytest.raises(standin.CUDADriverError):
        module.get_function("missing")
    with pytest.raises(TypeError):
        cp.RawModule(code=KERNELS, options=["--std=c++17"])  # CuPy's options is a tuple


def test_a_kernel_writing_past_an_allocation_is_an_illegal_address(cp, module):
    y = cp.zeros(10, dtype=cp.float32)
    with pytest.raises(RuntimeError, match="past"):  # the harness's guard, or else the stand-in's redzone
        module.get_function("overrun_f32")((1,), (32,), (y, np.int64(10)))
    standin.check_redzones()
    table = cp.asarray(np.array([y.data.ptr], dtype=np.int64))
    with pytest.raises(CUDARuntimeError, match="cudaErrorIllegalAddress") as err:  # only the redzone sees this one
        module.get_function("table_overrun")((1,), (32,), (table, np.int64(10)))
    assert "past its end" in str(err.value.__notes__)
    standin.check_redzones()  # reported once, then repaired


# --- streams and graphs -----------------------------------------------------------------------------------------------
def test_capture_records_and_graph_launch_replays(cp, module):
    axpy = module.get_function("axpy_f32")
    n = 64
    x = cp.asarray(np.arange(n, dtype=np.float32))
    y = cp.zeros(n, dtype=cp.float32)
    s = cp.cuda.Stream(non_blocking=True)
    standin.reset()
    with s:
        s.begin_capture()
        assert s.is_capturing()
        axpy((1,), (32,), (x, y, np.float32(2), np.int64(n)))
        y += 1
        g = s.end_capture()
    assert standin.counters.kernels == 0 and (y.get() == 0).all()  # captured, not run
    g.launch(s)
    g.launch(s)
    s.synchronize()
    assert standin.counters.kernels == 2 and standin.counters.graph_launches == 2
    assert (y.get() == 2 * (2 * np.arange(n) + 1)).all()
    with pytest.raises(NotImplementedError):
        cp.cuda.Graph()


@pytest.mark.parametrize(
    "bad",
    [
        lambda cp, s, y: y.get(),
        lambda cp, s, y: float(y[0]),
        lambda cp, s, y: s.synchronize(),
        lambda cp, s, y: cp.cuda.Device().synchronize(),
        lambda cp, s, y: cp.empty(3),
        lambda cp, s, y: y + 1,
        lambda cp, s, y: y.set(np.zeros(8, np.float32)),
        lambda cp, s, y: y[y > 0],
    ],
    ids=["get", "float", "stream-sync", "device-sync", "empty", "new-result", "pageable-set", "mask"],
)
def test_capture_refuses_host_syncs_and_allocations(cp, bad):
    y = cp.zeros(8, dtype=cp.float32)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported") as err:
            bad(cp, s, y)
        assert err.value.status == 900
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            s.end_capture()  # the error invalidated the capture, as in CUDA


def test_capture_refuses_cublas_as_cupy_does(cp, blas):
    a = cp.ones((2, 2), dtype=cp.float32)
    one = np.ones(1, np.float32)
    s = cp.cuda.Stream(non_blocking=True)
    h = cp.cuda.device.get_cublas_handle()
    with s:
        s.begin_capture()
        with pytest.raises(NotImplementedError, match="during stream capture"):
            blas.gemmEx(
                h,
                0,
                0,
                2,
                2,
                2,
                one.ctypes.data,
                a.data.ptr,
                R32,
                2,
                a.data.ptr,
                R32,
                2,
                one.ctypes.data,
                a.data.ptr,
                R32,
                2,
                C32,
                -1,
            )
        with pytest.raises(NotImplementedError):
            a @ a
        s.end_capture()


def test_graph_of_a_freed_array_is_an_illegal_address(cp):
    y = cp.zeros(4, dtype=cp.float32)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        y += 1
        g = s.end_capture()
    del y  # freed at once (no reference cycle keeps the memory)
    with pytest.raises(CUDARuntimeError, match="cudaErrorIllegalAddress"):
        g.launch(s)


def test_pinned_copies_are_captured_and_legacy_stream_rules(cp):
    mem = cp.cuda.alloc_pinned_memory(4 * 4)
    host = np.frombuffer(mem, np.float32, 4)  # CuPy's PinnedMemoryPointer exports a buffer
    host[:] = 1
    d = cp.zeros(4, dtype=cp.float32)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        d.set(host)  # from pinned memory: a memcpy node, read at each launch
        d *= 2
        g = s.end_capture()
    host[:] = 5
    g.launch(s)
    assert d.get().tolist() == [10.0] * 4
    blocking = cp.cuda.Stream()
    blocking.begin_capture()
    with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureImplicit"):
        cp.cuda.Stream.null.synchronize()  # the legacy stream would wait on the capturing blocking stream
    with pytest.raises(CUDARuntimeError, match="Invalidated"):
        blocking.end_capture()
    with pytest.raises(RuntimeError, match="legacy"):
        cp.cuda.Stream.null.begin_capture()


def test_events_and_current_streams(cp):
    s = cp.cuda.Stream(non_blocking=True)
    assert cp.cuda.get_current_stream() == cp.cuda.Stream.null
    with s:
        assert cp.cuda.get_current_stream() is s and cp.asarray(np.ones(2)).__cuda_array_interface__["stream"] == s.ptr
        e0, e1 = s.record(), cp.cuda.Event()
        e1.record()
        e1.synchronize()
        assert cp.cuda.get_elapsed_time(e0, e1) >= 0 and e1.done
        s.begin_capture()
        e2 = s.record()
        with pytest.raises(CUDARuntimeError, match="cudaErrorCapturedEvent"):
            e2.synchronize()
        s.end_capture()
    assert cp.cuda.get_current_stream() == cp.cuda.Stream.null


def test_device_count_knob(cp):
    assert cp.cuda.runtime.getDeviceCount() == 1 and cp.cuda.is_available()
    assert cp.cuda.Device(0).compute_capability == "90" and isinstance(cp.cuda.device.get_cublas_handle(), int)
    standin.set_device_count(0)
    with pytest.raises(CUDARuntimeError, match="cudaErrorNoDevice") as err:
        cp.cuda.runtime.getDeviceCount()  # as CUDA: an error, not 0
    assert err.value.status == 100 and not cp.cuda.is_available()
    with pytest.raises(CUDARuntimeError):
        cp.cuda.Stream()
