"""Numba CPU kernels: the fused elementwise work around the BLAS matrix products.

One module per op family, with forward and backward side by side; the CUDA twins in ``kernels/cuda`` carry the same
op names. Kernels are private: they never validate (the backend and the models check once, at the boundary), take
C-contiguous float32 or float64 arrays, and write into outputs they are given.
"""
