"""Process-wide state of the stand-in that is no CuPy name: the work counters and the device-count knob."""

from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass
class Counters:
    """What ran "on the device" since :func:`reset`.

    Attributes
    ----------
    kernels : int
        ``RawKernel`` launches executed (live or replayed from a graph; a captured launch counts when it runs).
    blas : int
        cuBLAS calls (``gemmEx``, ``sgemm``, ``dgemm``, ``matmul``/``dot``) executed.
    elementwise : int
        Array operators, ufuncs, reductions, copies, fills and other routines computed on the device (each call
        counts once); not the initial fill of ``zeros``/``ones``/``full`` nor ``arange``/``linspace``.
    syncs : int
        Host synchronisations: device-to-host copies, ``item()``/``float()``/``bool()``, stream, event and device
        synchronisations, and the operations that need a result size on the host (boolean masks, ``nonzero``).
    allocations : int
        Device allocations (``cudaMalloc`` on a GPU).
    h2d : int
        Host-to-device copies.
    graph_launches : int
        ``Graph.launch`` calls.
    """

    kernels: int = 0
    blas: int = 0
    elementwise: int = 0
    syncs: int = 0
    allocations: int = 0
    h2d: int = 0
    graph_launches: int = 0

    def reset(self) -> None:
        """Zero every counter."""
        for field in dataclasses.fields(self):
            setattr(self, field.name, 0)

    def snapshot(self) -> dict:
        """The counters as a dict."""
        return dataclasses.asdict(self)


counters = Counters()
lock = threading.RLock()  # one lock for the allocation table, streams and captures: they change together


class _Devices:
    count = 1
    status = 100  # cudaErrorNoDevice: what cudaGetDeviceCount returns when there is none


devices = _Devices()


def set_device_count(count: int, *, status: int = 100) -> None:
    """Make ``cupy.cuda.runtime.getDeviceCount()`` see ``count`` devices.

    Parameters
    ----------
    count : int
        Number of devices; with ``0``, ``getDeviceCount()`` raises ``CUDARuntimeError(status)`` as CUDA does
        (``cudaGetDeviceCount`` fails when there is no device, it does not return 0).
    status : int
        The ``cudaError_t`` raised for no device: 100 (``cudaErrorNoDevice``) or 35 (no driver, as on a machine
        without a GPU).
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    devices.count = int(count)
    devices.status = int(status)
