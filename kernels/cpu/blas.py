"""``?gemm`` callable from compiled code, on row-major operands with leading dimensions.

Numba's ``np.dot`` reaches BLAS only for whole contiguous arrays. The thread-pool products
(:mod:`.products`) need more: a block of rows of a matrix is contiguous, but a block of its columns (the
hidden units whose weight gradient one thread computes, ``dW[j0:j1] = δ[:, j0:j1]ᵀ x``) is not, and copying
it into a contiguous array cost more than the product saves (docs/performance.md, *Kernel notes*). BLAS itself
takes strided operands: each matrix is a pointer to its first element and a leading dimension.

The routines are SciPy's ``cython_blas`` exports (LP64 ``?gemm``, the Fortran interface: every argument by
reference), the same ones Numba's own ``np.dot`` calls. Their addresses are registered with LLVM under fixed
symbol names when this module is imported, and the compiled kernels call those names, so the kernels stay
cacheable (Numba refuses to cache code that holds a ctypes function pointer). Row-major ``C = op(A) op(B)`` is
the column-major product ``Cᵀ = op(B)ᵀ op(A)ᵀ``: the call swaps the operands and passes each matrix's row
stride as its leading dimension.

Threads: this BLAS (SciPy's OpenBLAS, not NumPy's) runs a large product on threads of its own unless it is capped
to one; the thread-pool products run with it capped (``fastae.backends.numba_cpu``), each call on the calling
thread.
"""

import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from ._config import JIT, njit

_SYMBOL = {types.float32: "fastae_cython_sgemm", types.float64: "fastae_cython_dgemm"}
for _t, _name in _SYMBOL.items():
    binding.add_symbol(_name, get_cython_function_address("scipy.linalg.cython_blas", _name[-5:]))

_N, _T = 78, 84  # ord("N"), ord("T")


@intrinsic
def _fortran_gemm(typingctx, flags, ints, scal, A, B, C):
    """``?gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)`` with ``flags = [ta, tb]`` (characters),
    ``ints = [m, n, k, lda, ldb, ldc]`` (int32) and ``scal = [alpha, beta]``, every argument passed by reference
    as Fortran wants. The arrays are this call's arguments, so they are alive until it returns."""
    if not all(isinstance(t, types.Array) for t in (flags, ints, scal, A, B, C)) or C.dtype not in _SYMBOL:
        return None

    def codegen(context, builder, sig, args):
        ptr = ir.IntType(8).as_pointer()
        data = [context.make_array(t)(context, builder, v).data for t, v in zip(sig.args, args)]
        f, i, s, a, b, c = data

        def at(base, k):
            return builder.bitcast(cgutils.gep(builder, base, k), ptr)

        fnty = ir.FunctionType(ir.VoidType(), [ptr] * 13)
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOL[sig.args[5].dtype])
        builder.call(
            fn,
            [
                at(f, 0),
                at(f, 1),
                at(i, 0),
                at(i, 1),
                at(i, 2),
                at(s, 0),
                builder.bitcast(a, ptr),
                at(i, 3),
                builder.bitcast(b, ptr),
                at(i, 4),
                at(s, 1),
                builder.bitcast(c, ptr),
                at(i, 5),
            ],
        )
        return context.get_dummy_value()

    return types.none(flags, ints, scal, A, B, C), codegen


@njit(**JIT)
def gemm(trans_a, trans_b, m, n, k, A, lda, B, ldb, beta, C, ldc):
    """``C[:m, :n] = op(A) op(B) + beta·C`` on row-major operands, ``op(M) = Mᵀ`` where ``trans_*``.

    ``A``, ``B`` and ``C`` are arrays (any strides) whose first element is the matrix's ``[0, 0]``; ``lda``,
    ``ldb`` and ``ldc`` are their row strides in elements. ``op(A)`` is ``m × k``, ``op(B)`` is ``k × n``. With
    ``beta = 0`` the old contents of ``C`` are never read (BLAS's contract), so a NaN there cannot leak in. All
    three share one dtype, float32 or float64. Nothing is checked: the callers pass shapes they derived."""
    # Column-major Cᵀ (n × m) = op(B)ᵀ (n × k) · op(A)ᵀ (k × m): B comes first, with its transpose flag.
    flags = np.empty(2, np.uint8)
    flags[0] = _T if trans_b else _N
    flags[1] = _T if trans_a else _N
    ints = np.empty(6, np.int32)
    ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] = n, m, k, ldb, lda, ldc
    scal = np.empty(2, C.dtype)
    scal[0], scal[1] = 1.0, beta
    _fortran_gemm(flags, ints, scal, B, A, C)


__all__ = ["gemm"]
