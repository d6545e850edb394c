"""Compiled kernels of fastae, installed as ``fastae.kernels``.

``cpu/`` will hold the Numba kernels and ``cuda/`` their CUDA C twins, one file per op family, with the same
op names as the NumPy reference in :mod:`fastae.backends.numpy_ref`, which defines their math.
"""
