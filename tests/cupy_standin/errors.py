"""The exceptions of the stand-in: CuPy's own (same class names, same messages) and one of its own for faults that
a real GPU process would not survive (a host segfault)."""

from __future__ import annotations

# cudaError_t names and strings, as real CuPy 14.2 prints them (str(CUDARuntimeError(status)))
_RUNTIME = {
    1: ("cudaErrorInvalidValue", "invalid argument"),
    2: ("cudaErrorMemoryAllocation", "out of memory"),
    35: ("cudaErrorInsufficientDriver", "CUDA driver version is insufficient for CUDA runtime version"),
    100: ("cudaErrorNoDevice", "no CUDA-capable device is detected"),
    101: ("cudaErrorInvalidDevice", "invalid device ordinal"),
    400: ("cudaErrorInvalidResourceHandle", "invalid resource handle"),
    401: ("cudaErrorIllegalState", "the operation cannot be performed in the present state"),
    600: ("cudaErrorNotReady", "device not ready"),
    700: ("cudaErrorIllegalAddress", "an illegal memory access was encountered"),
    716: ("cudaErrorMisalignedAddress", "misaligned address"),
    719: ("cudaErrorLaunchFailure", "unspecified launch failure"),
    900: ("cudaErrorStreamCaptureUnsupported", "operation not permitted when stream is capturing"),
    901: ("cudaErrorStreamCaptureInvalidated", "operation failed due to a previous error during capture"),
    905: ("cudaErrorStreamCaptureIsolation", "dependency created on uncaptured work in another stream"),
    906: (
        "cudaErrorStreamCaptureImplicit",
        "operation would make the legacy stream depend on a capturing blocking stream",
    ),
    907: ("cudaErrorCapturedEvent", "operation not permitted on an event last recorded in a capturing stream"),
}

ILLEGAL_ADDRESS = 700
MISALIGNED_ADDRESS = 716
LAUNCH_FAILURE = 719
CAPTURE_UNSUPPORTED = 900
CAPTURE_INVALIDATED = 901
CAPTURE_ISOLATION = 905
CAPTURE_IMPLICIT = 906
CAPTURED_EVENT = 907
ILLEGAL_STATE = 401
INVALID_DEVICE = 101
INVALID_RESOURCE_HANDLE = 400

# cublasStatus_t names, as CuPy's CUBLASError prints them
_CUBLAS = {
    0: "CUBLAS_STATUS_SUCCESS",
    1: "CUBLAS_STATUS_NOT_INITIALIZED",
    3: "CUBLAS_STATUS_ALLOC_FAILED",
    7: "CUBLAS_STATUS_INVALID_VALUE",
    8: "CUBLAS_STATUS_ARCH_MISMATCH",
    11: "CUBLAS_STATUS_MAPPING_ERROR",
    13: "CUBLAS_STATUS_EXECUTION_FAILED",
    14: "CUBLAS_STATUS_INTERNAL_ERROR",
    15: "CUBLAS_STATUS_NOT_SUPPORTED",
    16: "CUBLAS_STATUS_LICENSE_ERROR",
}

CUBLAS_NOT_INITIALIZED = 1
CUBLAS_INVALID_VALUE = 7
CUBLAS_NOT_SUPPORTED = 15


class CUDARuntimeError(RuntimeError):
    """``cupy.cuda.runtime.CUDARuntimeError``: ``status`` is the ``cudaError_t`` code; the message is CuPy's."""

    def __init__(self, status):
        self.status = status
        name, text = _RUNTIME.get(status, (f"cudaError{status}", "unknown error"))
        super().__init__(f"{name}: {text}")

    def __reduce__(self):
        return (type(self), (self.status,))


class CUBLASError(RuntimeError):
    """``cupy_backends.cuda.libs.cublas.CUBLASError``: ``status`` is the ``cublasStatus_t`` code."""

    def __init__(self, status):
        self.status = status
        super().__init__(_CUBLAS[status])

    def __reduce__(self):
        return (type(self), (self.status,))


class CUDADriverError(RuntimeError):
    """CuPy's ``CUDADriverError`` (raised by ``RawModule.get_function`` for a name the module lacks)."""


class HostFault(RuntimeError):
    """A fault real CuPy would not report but crash on (a host read through a bad address): stand-in only."""


class Hazard(RuntimeError):
    """Work whose result a GPU leaves undefined (threads racing on overlapping memory): stand-in only."""


def runtime_error(status: int, detail: str) -> CUDARuntimeError:
    """A :class:`CUDARuntimeError` with ``detail`` (what the stand-in saw) as a note, its message left as CuPy's."""
    err = CUDARuntimeError(status)
    err.add_note(f"cupy stand-in: {detail}")
    return err


def cublas_error(status: int, detail: str) -> CUBLASError:
    """A :class:`CUBLASError` with ``detail`` as a note."""
    err = CUBLASError(status)
    err.add_note(f"cupy stand-in: {detail}")
    return err
