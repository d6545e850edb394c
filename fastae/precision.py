"""bfloat16 rounding in NumPy: the reference of :mod:`fastae.kernels.cpu.bf16` (and of the CUDA twins).

``precision="bfloat16"`` means: every matrix product takes its operands rounded to bfloat16 (8 significant bits,
round to nearest, ties to even) and accumulates in float32; everything else stays float32. A bfloat16 is held as
the ``uint16`` top half of a float32's pattern.
"""

from __future__ import annotations

import numpy as np

PRECISIONS = ("float32", "bfloat16", "tf32")  # "tf32": GPU tensor cores only (backend="cupy")
UNIT_BF16 = 2.0**-8  # the unit roundoff of a bfloat16 operand


def to_bf16(x) -> np.ndarray:
    """The bfloat16 patterns (``uint16``) of float32 ``x``: round to nearest, ties to even; infinities kept, a
    NaN kept a quiet NaN of its sign, the largest finite values rounded to infinity as IEEE rounding does."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    r = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    r = np.where(nan, (b | np.uint32(0x00400000)) >> np.uint32(16), r)
    return r.astype(np.uint16)


def widen(h) -> np.ndarray:
    """The float32 values of bfloat16 patterns ``h`` (exact)."""
    return (np.asarray(h, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def round_bf16(x) -> np.ndarray:
    """``x`` rounded to bfloat16, as float32."""
    return widen(to_bf16(x))


class BF16Weight:
    """A weight's bfloat16 form, as the backends' ``bf16_weight`` gives it: its patterns ``bits`` (``uint16``, the
    weight's shape) and their float32 ``values``, widened from the patterns on first use. Only the emulated
    products (a processor without bfloat16 units, a product too small for oneMKL) read the values, so a training
    step on bfloat16 units never pays for them. Two threads widening at once compute the same array; one is kept."""

    __slots__ = ("bits", "_values", "_widen")

    def __init__(self, bits, widen_fn=None):
        self.bits = bits
        self._values = None
        self._widen = widen if widen_fn is None else widen_fn

    @property
    def values(self):
        """``bits`` widened to float32 (exact), made once."""
        v = self._values
        if v is None:
            v = self._values = self._widen(self.bits)
        return v
