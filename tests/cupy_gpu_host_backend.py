"""``"cupy-gpu"``: the real CuPy backend on a real device, as a backend of NumPy arrays (the
:class:`tests.gpu_standin.HostAdapter`), so that the parity and whole-model suites run on the GPU unchanged.
``conftest`` registers it only with ``FASTAE_GPU_PARITY=1`` (bench/gpu_check.sh sets it)."""

from fastae.backends import registry

from . import gpu_standin

_adapter = gpu_standin.HostAdapter("cupy-gpu", registry.get_backend("cupy", "float32"))
globals().update({k: v for k, v in vars(_adapter).items() if not k.startswith("__")})
