"""Each fused op of every fastae backend alone, float32, on the shapes of the standard configurations, beside
the bare GEMM where the op ends in one (see :mod:`fastae.benchmark.kernels`)."""

import pytest

from fastae.benchmark import kernels

CASES = kernels.cases()
AVAILABLE, MISSING = kernels.backends()
BACKENDS = [pytest.param(name, id=name) for name in AVAILABLE] + [
    pytest.param(name, id=name, marks=pytest.mark.skip(reason=why)) for name, why in MISSING.items()
]


def _info(case):
    return dict(
        op=case.op, config=case.config, shape=case.shape, dtype=kernels.DTYPE, bytes=case.bytes, flops=case.flops
    )


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
@pytest.mark.parametrize("backend", BACKENDS)
def bench_kernel(case, backend, timed):
    B = AVAILABLE[backend]
    err = kernels.check(case, B)
    assert err <= kernels.KERNEL_TOL, f"{case.op} on {backend}: error {err:.3g} against the float64 reference"
    timed(
        kernels.timed_fn(case, B),
        group=f"kernel {case.key}",
        contestant=f"fastae[{backend}]",
        kind="fastae",
        error=err,
        **_info(case),
    )


GEMM_CASES = [c for c in CASES if c.gemm is not None]


@pytest.mark.parametrize("case", GEMM_CASES, ids=[c.key for c in GEMM_CASES])
def bench_kernel_gemm_floor(case, timed):
    """The op's matrix product alone, into a preallocated output: the op's time minus this is its epilogue."""
    info = {**_info(case), "op": "gemm", "shape": case.gemm_shape, "bytes": case.gemm_bytes}
    timed(case.gemm(), group=f"kernel {case.key}", contestant=kernels.FLOOR_NAME, kind="floor", error=None, **info)
