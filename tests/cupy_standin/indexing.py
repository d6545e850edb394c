"""``ndarray[key]`` and ``ndarray[key] = value`` with CuPy's rules.

* Integers, slices, ``None`` and ``Ellipsis`` give a view. Integer or boolean index arrays (advanced indexing) give
  a copy; host index arrays and lists are copied to the device first, as CuPy does (a host-to-device copy, and an
  allocation: refused inside a capture). A boolean mask needs the count of its true elements on the host: a sync.
* Integer index arrays out of range raise ``IndexError`` (CuPy wraps them around instead; code relying on that is
  wrong in NumPy terms, so the stand-in refuses it).
* Assigning through basic indexing takes a device array (broadcast) or a scalar; a non-scalar NumPy array or list
  there is CuPy's ``ValueError`` ("non-scalar numpy.ndarray cannot be used for fill"). Through advanced indexing a
  host value is copied to the device, as CuPy does.
"""

from __future__ import annotations

import numpy as np

from . import streams
from .arrays import _wrap, derived, from_host, ndarray, result
from .errors import Hazard
from .state import counters
from .ufuncs import device_apply, device_copy, device_fill, fresh


def _host_array(s) -> np.ndarray:
    a = np.asarray(s)
    if isinstance(s, (list, tuple)) and a.size == 0:
        a = a.astype(np.int32)  # an empty list means no indices, not an empty mask
    if a.dtype.kind not in "biu":
        raise IndexError(f"arrays used as indices must be of integer or boolean type (actual: {a.dtype.type})")
    return a


def host_index(key):
    """A key's host index arrays as NumPy arrays (for ``ufunc.at``); device arrays as their views."""
    items = key if isinstance(key, tuple) else (key,)
    out = []
    for s in items:
        if isinstance(s, ndarray):
            out.append(s._a)
        elif s is None or s is Ellipsis or isinstance(s, slice) or (np.isscalar(s) and not isinstance(s, bool)):
            out.append(s)
        else:
            out.append(_host_array(s))
    return tuple(out) if isinstance(key, tuple) else out[0]


class _Key:
    """A parsed index: host parts as they are, device index arrays as placeholders resolved at run time."""

    def __init__(self, key):
        self.is_tuple = isinstance(key, tuple)
        self.items, self.arrays = [], []
        self.advanced = self.mask = self.host_copy = False
        for s in key if self.is_tuple else (key,):
            if s is None or s is Ellipsis or isinstance(s, slice):
                self.items.append(s)
            elif isinstance(s, ndarray):
                if s.dtype.kind not in "biu":
                    raise IndexError(
                        f"arrays used as indices must be of integer or boolean type (actual: {s.dtype.type})"
                    )
                self.advanced = True
                self.mask |= s.dtype.kind == "b"
                self.items.append(_Slot(len(self.arrays)))
                self.arrays.append(s)
            elif np.isscalar(s) and not isinstance(s, (bool, np.bool_)):
                if not isinstance(s, (int, np.integer)):
                    raise IndexError(
                        "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or boolean "
                        "arrays are valid indices"
                    )
                self.items.append(s)
            else:
                a = _host_array(s)
                self.advanced = self.host_copy = True
                self.mask |= a.dtype.kind == "b"
                self.items.append(a)

    def build(self, views, basic_view: bool = False):
        items = [views[i.index]._a if isinstance(i, _Slot) else i for i in self.items]
        if basic_view and not any(i is Ellipsis for i in items):
            items.append(Ellipsis)  # a full integer index then gives a 0-d view, not a NumPy scalar
        return tuple(items) if self.is_tuple or basic_view else items[0]

    def prepare(self, what: str) -> None:
        if self.host_copy:  # CuPy copies host index arrays to the device (an allocation)
            streams.check_alloc(what)
            counters.h2d += 1
        if self.mask:  # the size of the result is read on the host
            streams.sync_point(None, f"{what} with a boolean mask")


class _Slot:
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


def getitem(a: ndarray, key):
    """``a[key]``."""
    k = _Key(key)
    if not k.advanced:
        return derived(a, a._a[k.build([], basic_view=True)], "ndarray.__getitem__")
    k.prepare("ndarray.__getitem__")
    fresh("ndarray.__getitem__")
    counters.elementwise += 1
    return result(a._a[k.build(k.arrays)], "ndarray.__getitem__")


def _squeeze_leading(value: ndarray, ndim: int) -> ndarray:
    while value.ndim > ndim and value.shape[0] == 1:
        value = value[0]
    return value


def setitem(a: ndarray, key, value) -> None:
    """``a[key] = value``."""
    k = _Key(key)
    if not k.advanced:
        view = a._a[k.build([], basic_view=True)]
        target = _wrap(view, a._alloc, a._base if a._base is not None else a)
        if isinstance(value, ndarray):
            device_copy(_squeeze_leading(value, target.ndim), target, "ndarray.__setitem__")
        else:
            device_fill(target, value)
        return
    k.prepare("ndarray.__setitem__")
    if not isinstance(value, ndarray):
        value = from_host(value, dtype=a.dtype, what="ndarray.__setitem__")
    if value._alloc is not None and value._alloc is a._alloc and np.shares_memory(value._a, a._a):
        raise Hazard("ndarray.__setitem__: the value shares memory with the array it is scattered into (a GPU race)")
    index_arrays, k.arrays = k.arrays, []  # a captured node holds no array strongly
    n = len(index_arrays)

    def run(views):
        views[n]._a[k.build(views[:n])] = views[n + 1]._a

    device_apply([*index_arrays, a, value], run, "ndarray.__setitem__")
