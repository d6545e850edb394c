"""Input scans for the validation at the public boundary: one vectorised pass instead of several NumPy calls."""

from numba import njit

from ._config import JIT
from .fmath import cast, ubits


@njit(**JIT)
def values_ok(x, unit_interval):
    """True if every entry of the C-contiguous float array ``x`` is finite and, with ``unit_interval``, lies in
    [0, 1]; False means "look closer", and the caller's detailed checks say what is wrong and where.

    One integer max over the bit patterns (:func:`fmath.ubits`), the cheapest reduction LLVM vectorises
    without fast-math flags (float min/max need ``nnan``, which fastae never enables):

    * in [0, 1]: non-negative floats order like their patterns, every negative value has the top bit set, and
      the patterns of +inf and NaN lie above that of 1.0, so ``max(bits) <= bits(1.0)`` holds exactly for
      +0 … 1. ``-0.0`` is the one valid value that answers False (its pattern is the sign bit); the detailed
      check then accepts it.
    * finite: with the sign bit cleared, ``max(bits & ~sign) < bits(inf)``; NaN and ±inf have all-ones
      exponents, so their cleared patterns are at least ``bits(inf)``.

    One pass is quicker than the two counts it replaced (docs/performance.md, *Kernel notes*)."""
    flat = x.reshape(-1)
    one = ubits(cast(1.0, flat))
    top = one ^ one  # zero, in the unsigned type of the patterns
    if unit_interval:
        for i in range(flat.size):
            b = ubits(flat[i])
            top = b if b > top else top
        return top <= one
    keep = ~ubits(cast(-0.0, flat))  # every bit but the sign
    for i in range(flat.size):
        b = ubits(flat[i]) & keep
        top = b if b > top else top
    return top < ubits(cast(float("inf"), flat))
