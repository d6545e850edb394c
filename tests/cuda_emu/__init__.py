"""Tier-2 CUDA emulation: kernels compiled with g++ against ``shim.h`` and run on the CPU (see :mod:`.harness`)."""

from .harness import Kernel, Module, Param, sanitizer_env

__all__ = ["Kernel", "Module", "Param", "sanitizer_env"]
