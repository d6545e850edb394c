"""``cupy.cuda.runtime`` of the stand-in: one simulated device (an H200, compute capability 9.0) unless
:func:`tests.cupy_standin.set_device_count` says otherwise."""

from __future__ import annotations

from . import memory, streams
from .errors import CUDARuntimeError
from .state import devices

CUDA_R_32F, CUDA_R_64F, CUDA_R_16F, CUDA_R_16BF, CUDA_R_8I, CUDA_R_8U = 0, 1, 2, 14, 3, 8
CUDA_C_32F, CUDA_C_64F, CUDA_C_16F, CUDA_C_8I, CUDA_C_8U = 4, 5, 6, 7, 9
streamDefault, streamNonBlocking = 0, 1  # noqa: N816  (CuPy's names)
streamLegacy, streamPerThread = streams.LEGACY, streams.PER_THREAD  # noqa: N816
streamCaptureModeGlobal = streams.CAPTURE_GLOBAL  # noqa: N816
streamCaptureModeThreadLocal = streams.CAPTURE_THREAD_LOCAL  # noqa: N816
streamCaptureModeRelaxed = streams.CAPTURE_RELAXED  # noqa: N816
streamCaptureStatusNone, streamCaptureStatusActive, streamCaptureStatusInvalidated = 0, 1, 2  # noqa: N816
is_hip = False

TOTAL_MEMORY = 150_754_820_096  # an H200's 141 GiB
_PROPERTIES = {
    "name": b"NVIDIA H200",
    "totalGlobalMem": TOTAL_MEMORY,
    "sharedMemPerBlock": 49152,
    "sharedMemPerBlockOptin": 232448,
    "regsPerBlock": 65536,
    "warpSize": 32,
    "maxThreadsPerBlock": 1024,
    "maxThreadsDim": (1024, 1024, 64),
    "maxGridSize": (2147483647, 65535, 65535),
    "totalConstMem": 65536,
    "major": 9,
    "minor": 0,
    "multiProcessorCount": 132,
    "maxThreadsPerMultiProcessor": 2048,
    "l2CacheSize": 52428800,
    "concurrentKernels": 1,
    "integrated": 0,
    "canMapHostMemory": 1,
    "unifiedAddressing": 1,
    "ECCEnabled": 1,
    "computeMode": 0,
}


def check_status(status) -> None:
    """Raise ``CUDARuntimeError(status)`` unless it is 0."""
    if status != 0:
        raise CUDARuntimeError(status)


def getDeviceCount() -> int:  # noqa: N802  (CuPy's names)
    """The number of devices; with none, CUDA's error (``cudaGetDeviceCount`` does not return 0)."""
    if devices.count == 0:
        raise CUDARuntimeError(devices.status)
    return devices.count


def getDevice() -> int:  # noqa: N802
    """This thread's current device."""
    return streams.current_device()


def setDevice(device) -> None:  # noqa: N802
    """Make ``device`` current for this thread."""
    streams.set_current_device(int(device))


def deviceSynchronize() -> None:  # noqa: N802
    """Wait for all work of the device (refused while a stream captures)."""
    streams.device_sync("cudaDeviceSynchronize")


def streamIsCapturing(stream) -> bool:  # noqa: N802
    """Whether the stream ``stream`` (a ``cudaStream_t`` value) is capturing."""
    return streams.is_capturing(int(stream))


def runtimeGetVersion() -> int:  # noqa: N802
    """The CUDA runtime version (13.0)."""
    return 13000


def driverGetVersion() -> int:  # noqa: N802
    """The driver's CUDA version (13.0)."""
    streams.current_device()
    return 13000


def getDeviceProperties(device) -> dict:  # noqa: N802
    """Properties of ``device`` (a subset of ``cudaDeviceProp``)."""
    device = int(device)
    if not 0 <= device < getDeviceCount():
        raise CUDARuntimeError(101)
    return dict(_PROPERTIES)


def memGetInfo() -> tuple[int, int]:  # noqa: N802
    """``(free, total)`` bytes of device memory."""
    streams.current_device()
    used = sum(a.nbytes for a in memory.live_allocations())
    return TOTAL_MEMORY - used, TOTAL_MEMORY


NAMES = [n for n in dir() if n.startswith(("CUDA_", "stream")) and n != "streams"] + [
    "CUDARuntimeError", "check_status", "getDeviceCount", "getDevice", "setDevice", "deviceSynchronize",
    "streamIsCapturing", "runtimeGetVersion", "driverGetVersion", "getDeviceProperties", "memGetInfo", "is_hip",
]  # fmt: skip
