"""The CuPy backend's real code on the CPU, as a registered backend of NumPy arrays (``"cupy-standin"``): the
:class:`tests.gpu_standin.HostAdapter` over the stand-in copy with the backend's own launch grids. ``conftest``
registers it, so every suite that runs over the registry runs the CUDA kernels through the emulation."""

from . import gpu_standin

_adapter = gpu_standin.HostAdapter("cupy-standin", gpu_standin.load())
globals().update({k: v for k, v in vars(_adapter).items() if not k.startswith("__")})
