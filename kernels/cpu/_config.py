"""Compile settings shared by every CPU kernel, and the scalar helpers they all use.

Flags are decorator arguments taken from here, never mutable globals that kernels read, because Numba's cache
freezes globals at compile time.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from fastae.activations import ACTIVATIONS

# Never blanket fastmath=True: its 'nnan'/'ninf' would let LLVM assume no NaN or inf exists and delete the very
# checks that catch divergence. These four allow reassociation (vectorised reductions), FMA contraction,
# reciprocal multiplication and sign-agnostic zeros, and nothing that changes NaN/inf semantics.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# error_model="numpy": x / 0 gives inf (as in NumPy) instead of a Python ZeroDivisionError check per division,
# which would also stop the loop from vectorising.
JIT = dict(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy", boundscheck=False)
JIT_PARALLEL = dict(JIT, parallel=True)

# Row and block bodies (everything a serial kernel and its parallel twin share) take FMA contraction as their only
# fast-math liberty. Without `reassoc` (and `nsz`, `arcp`) every floating-point result is fixed by the order
# written in the source, so it cannot change with the context LLVM inlines the body into. With `reassoc`, the same
# row function gave different last bits inlined into a serial loop and into a parfor gufunc, which broke
# serial/parallel bit-identity, and `acc += o - o` was folded to 0, hiding an inf. Reductions in these bodies
# therefore use an explicit order that still vectorises (see loss._ordered_sum).
ORDERED_FASTMATH = {"contract"}
JIT_ROW = dict(JIT, fastmath=set(ORDERED_FASTMATH))
JIT_ROW_PARALLEL = dict(JIT_ROW, parallel=True)

# Activation codes, in the order of fastae.activations.ACTIVATIONS (the single table of the scalar math).
SIGMOID, TANH, RELU, LINEAR = (ACTIVATIONS.index(n) for n in ("sigmoid", "tanh", "relu", "linear"))
ACT_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}

# Arrays at least this large (elements) run the parallel kernel; smaller ones the serial one, whose call costs
# no thread wake-up. Chosen by measurement (see bench/); it never changes results, only which loop runs.
PARALLEL_MIN = 1 << 15


@intrinsic
def f32_as_i32(typingctx, x):
    """Reinterpret the bits of a float32 as an int32 (a bitcast that LLVM vectorises)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def i32_as_f32(typingctx, x):
    """Reinterpret the bits of an int32 as a float32."""
    if x != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def f64_as_i64(typingctx, x):
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def i64_as_f64(typingctx, x):
    if x != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


__all__ = [
    "FASTMATH",
    "JIT",
    "JIT_PARALLEL",
    "ORDERED_FASTMATH",
    "JIT_ROW",
    "JIT_ROW_PARALLEL",
    "SIGMOID",
    "TANH",
    "RELU",
    "LINEAR",
    "ACT_CODE",
    "PARALLEL_MIN",
    "f32_as_i32",
    "i32_as_f32",
    "f64_as_i64",
    "i64_as_f64",
    "njit",
    "np",
]
