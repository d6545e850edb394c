"""``"cupy-standin-tiny"``: as tests/cupy_standin_backend.py, with the launch grids forced small
(:data:`tests.gpu_standin.TINY`), so that small inputs span many blocks and every grid-stride loop turns."""

from . import gpu_standin

_adapter = gpu_standin.HostAdapter("cupy-standin-tiny", gpu_standin.load(tiny=True))
globals().update({k: v for k, v in vars(_adapter).items() if not k.startswith("__")})
