"""Tolerances for comparing a backend with the float64 reference, per dtype and per quantity, kept in one place.

float64 backends compute the same formulas in the same order with libm-quality functions: they agree to a few
ulps. float32 backends are compared with the float64 reference computed from the same (float32) inputs, so the
bound is float32 rounding accumulated over a reduction of a few thousand terms; gradients pass through one more
product and a division by the batch size.
"""

TOL = {
    "float64": {"output": dict(rtol=1e-10, atol=1e-12), "grad": dict(rtol=1e-9, atol=1e-12),
                "reduction": dict(rtol=1e-10, atol=1e-12), "noise": dict(rtol=1e-14, atol=1e-15)},
    "float32": {"output": dict(rtol=2e-5, atol=2e-6), "grad": dict(rtol=1e-4, atol=1e-6),
                "reduction": dict(rtol=1e-5, atol=1e-5), "noise": dict(rtol=2e-7, atol=1e-7)},
}
