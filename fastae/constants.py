"""The numbers the math fixes, defined once for every backend.

The reference (:mod:`fastae.backends.numpy_ref`) reads them here and the compiled backends pass them to their
kernels as arguments: a kernel never reads one as a global, because Numba's on-disk cache is keyed by the
kernel's own source file and would keep a stale value after an edit here.
"""

# log σ² is clamped to [LOGVAR_MIN, LOGVAR_MAX] before use: exp(20) still fits float32 comfortably, exp(-30)
# underflows harmlessly, and a runaway encoder cannot turn one batch into inf or NaN.
LOGVAR_MIN = -30.0
LOGVAR_MAX = 20.0

# KL sparsity divides by ρ̂ and 1 − ρ̂; clipping ρ̂ to [RHO_HAT_EPS, 1 − RHO_HAT_EPS] keeps one dead or
# saturated unit from producing inf.
RHO_HAT_EPS = 1e-6

__all__ = ["LOGVAR_MIN", "LOGVAR_MAX", "RHO_HAT_EPS"]
