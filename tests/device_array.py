"""A strict stand-in for a device array namespace (as CuPy is): its arrays refuse implicit conversion to NumPy,
so any check that copies one to the host fails loudly instead of passing by accident."""

from __future__ import annotations

import types

import numpy as np


class DeviceArray:
    """An array that lives "on the device": it holds a NumPy array but, like a CuPy array, cannot be turned into
    one implicitly (``np.asarray`` raises ``TypeError``); ``get()`` is the explicit copy to the host."""

    __array_priority__ = 100

    def __init__(self, a: np.ndarray):
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` (DeviceArray)")

    def get(self) -> np.ndarray:
        return self._a.copy()

    ndim = property(lambda self: self._a.ndim)
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)

    @property
    def flags(self):  # CuPy's flags: no ``writeable``
        return types.SimpleNamespace(c_contiguous=self._a.flags.c_contiguous, f_contiguous=self._a.flags.f_contiguous)

    def __getitem__(self, key):
        return DeviceArray(self._a[key])

    def __invert__(self):
        return DeviceArray(~self._a)

    def __or__(self, other):
        return DeviceArray(self._a | _host(other))

    def __lt__(self, other):
        return DeviceArray(self._a < _host(other))

    def __gt__(self, other):
        return DeviceArray(self._a > _host(other))

    def tolist(self):
        return self._a.tolist()

    def item(self):
        return self._a.item()

    def __len__(self):
        return len(self._a)


def _host(a):
    return a._a if isinstance(a, DeviceArray) else a


def _wrap(fn):
    def call(*args, **kwargs):
        args = [_host(a) for a in args]
        r = fn(*args, **kwargs)
        return DeviceArray(r) if isinstance(r, np.ndarray) else r

    return call


def _asarray(a, dtype=None):
    if isinstance(a, DeviceArray):
        return a if dtype is None or a.dtype == dtype else DeviceArray(a._a.astype(dtype))
    return DeviceArray(np.array(a, dtype=dtype))  # host to device: an explicit copy, as cupy.asarray makes


def _ascontiguousarray(a, dtype=None):
    r = np.ascontiguousarray(a._a, dtype=dtype)
    return a if r is a._a else DeviceArray(r)  # as CuPy: the same array when nothing changes


def _may_share_memory(a, b):
    if isinstance(a, DeviceArray) != isinstance(b, DeviceArray):
        return False  # host and device memory are apart
    return np.may_share_memory(_host(a), _host(b))


xp = types.ModuleType("device_xp")
xp.ndarray = DeviceArray
xp.asarray = _asarray
xp.ascontiguousarray = _ascontiguousarray
xp.isfinite = _wrap(np.isfinite)
xp.count_nonzero = _wrap(np.count_nonzero)
xp.argwhere = _wrap(np.argwhere)
xp.empty = _wrap(np.empty)
xp.may_share_memory = _may_share_memory
