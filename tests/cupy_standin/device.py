"""``cupy.cuda.device`` of the stand-in: ``Device`` and the per-thread cuBLAS handles."""

from __future__ import annotations

import threading

from . import cublas, streams
from .errors import runtime_error
from .runtime import getDeviceCount, memGetInfo

_tls = threading.local()


def _valid(device_id: int) -> int:
    if not 0 <= device_id < getDeviceCount():
        raise runtime_error(101, f"device {device_id}")
    return device_id


def get_device_id() -> int:
    """This thread's current device."""
    return streams.current_device()


def get_cublas_handle() -> int:
    """The cuBLAS handle of the current device for this thread (made on first use, as CuPy's)."""
    return Device().cublas_handle


def get_compute_capability() -> str:
    """The current device's compute capability, e.g. ``'90'``."""
    return Device().compute_capability


class Device:
    """``cupy.cuda.Device(device=None)``: a device id (the current device by default)."""

    def __init__(self, device=None):
        self.id = streams.current_device() if device is None else int(device)

    def __int__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"

    def __eq__(self, other):
        return isinstance(other, Device) and self.id == other.id

    def __hash__(self):
        return hash(self.id)

    def __enter__(self):
        stack = getattr(_tls, "stack", None)
        if stack is None:
            stack = _tls.stack = []
        stack.append(streams.current_device())
        streams.set_current_device(self.id)
        return self

    def __exit__(self, *args):
        streams.set_current_device(_tls.stack.pop())

    def use(self):
        """Make this device current."""
        streams.set_current_device(self.id)

    def synchronize(self):
        """Wait for all work of the device (refused while a stream captures)."""
        _valid(self.id)
        streams.device_sync("Device.synchronize")

    @property
    def compute_capability(self) -> str:
        """``'90'`` (an H200)."""
        _valid(self.id)
        return "90"

    @property
    def cublas_handle(self) -> int:
        """This thread's cuBLAS handle for the device."""
        _valid(self.id)
        handles = getattr(_tls, "cublas", None)
        if handles is None:
            handles = _tls.cublas = {}
        if self.id not in handles:
            handles[self.id] = cublas.create()
        return handles[self.id]

    @property
    def mem_info(self) -> tuple[int, int]:
        """``(free, total)`` bytes."""
        _valid(self.id)
        return memGetInfo()

    @property
    def attributes(self) -> dict:
        """A few device attributes, by CuPy's names."""
        _valid(self.id)
        return {
            "MaxThreadsPerBlock": 1024,
            "MaxSharedMemoryPerBlock": 49152,
            "MaxSharedMemoryPerBlockOptin": 232448,
            "MultiProcessorCount": 132,
            "WarpSize": 32,
            "ComputeCapabilityMajor": 9,
            "ComputeCapabilityMinor": 0,
        }
