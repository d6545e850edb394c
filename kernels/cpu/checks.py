"""Input scans for the validation at the public boundary: one vectorised pass instead of several NumPy calls."""

from numba import njit

from ._config import JIT
from .fmath import cast, nonfinite


@njit(**JIT)
def scan_values(x):
    """``(n_nonfinite, n_outside_unit)`` over a C-contiguous array: how many entries are NaN or ±inf (read from the
    exponent bits, so fastmath cannot fold the test away) and how many finite ones lie outside [0, 1].

    Both are integer counts, not float min/max reductions: LLVM vectorises those only under ``nnan``, which
    fastae never enables. NaN compares false, so it is counted as non-finite only."""
    flat = x.reshape(-1)
    zero = cast(0.0, flat)
    one = cast(1.0, flat)
    n_bad = 0
    n_out = 0
    for i in range(flat.size):
        v = flat[i]
        n_bad += nonfinite(v)
        n_out += (v < zero) | (v > one)
    return n_bad, n_out
