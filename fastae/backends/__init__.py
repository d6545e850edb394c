"""Backends: one module per engine, all with the op contract of :mod:`fastae.backends.numpy_ref`."""

from .registry import available_backends, get_backend, resolve_backend

__all__ = ["available_backends", "get_backend", "resolve_backend"]
