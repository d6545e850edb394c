"""``cupy.ndarray`` of the stand-in: a NumPy view over a device allocation that refuses to become a NumPy array
implicitly, as CuPy's does."""

from __future__ import annotations

import warnings

import numpy as np

from . import memory, streams
from .state import counters

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)
_PY_SCALARS = (bool, int, float, complex)


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype CuPy supports (booleans, integers, floats, complex), else ``ValueError``."""
    dt = np.dtype(float if dtype is None else dtype)
    if dt.kind not in "biufc":
        raise ValueError(f"Unsupported dtype {dt}")
    return dt.newbyteorder("=") if dt.byteorder == ">" else dt


def normalize_shape(shape) -> tuple[int, ...]:
    """A shape as a tuple of ints (an int is a 1-D shape)."""
    if isinstance(shape, (list, tuple)):
        out = tuple(int(s) for s in shape)
    else:
        out = (int(shape),)
    if any(s < 0 for s in out):
        raise ValueError("negative dimensions are not allowed")
    return out


def poison(view: np.ndarray, alloc) -> None:
    """Fill fresh memory as "uninitialised": NaN for floats, 0xA5 bytes for integers, True for booleans."""
    if view.dtype.kind in "fc":
        view.fill(np.nan)
    elif view.dtype.kind == "b":
        view.fill(True)
    else:
        alloc.bytes_view().fill(0xA5)


def _wrap(view: np.ndarray, alloc, base=None) -> ndarray:
    a = ndarray.__new__(ndarray)
    a._a, a._alloc, a._base = view, alloc, base
    return a


def new(shape, dtype, order: str = "C", *, uninitialised: bool = True, what: str = "cupy.empty") -> ndarray:
    """A fresh device array (its own allocation); poisoned unless the caller writes every element."""
    dtype = check_dtype(dtype)
    shape = normalize_shape(shape)
    order = "F" if order == "F" else "C"
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return _wrap(np.empty(shape, dtype, order=order), None)
    streams.check_alloc(what)
    alloc = memory.Allocation(nbytes, streams.current_device())
    view = alloc.array(shape, dtype, order=order)
    if uninitialised:
        poison(view, alloc)
    return _wrap(view, alloc)


def _view(alloc, offset, shape, strides, dtype) -> ndarray:
    """An array over ``alloc`` (graph replay, ``ndarray(memptr=...)``)."""
    return _wrap(alloc.array(shape, dtype, offset=offset, strides=strides), alloc)


def result(r, what: str, order: str = "C") -> ndarray:
    """A device array holding the NumPy result ``r`` of a device computation (a fresh allocation)."""
    r = np.asarray(r)
    out = new(r.shape, r.dtype, order=order, uninitialised=False, what=what)
    np.copyto(out._a, r)
    return out


def from_host(host, dtype=None, order: str = "C", what: str = "host-to-device copy") -> ndarray:
    """A host-to-device copy of ``host`` (anything NumPy makes an array of)."""
    src = np.asarray(host, dtype=dtype)
    out = new(src.shape, src.dtype, order="F" if order == "F" else "C", uninitialised=False, what=what)
    pinned = src.size > 0 and memory.pinned_find(src.ctypes.data, src.nbytes) is not None

    def copy(views):
        np.copyto(views[0]._a, src)

    streams.copy_to_device(None, pinned, copy, [out], what)
    return out


def derived(a: ndarray, r, what: str) -> ndarray:
    """Wrap ``r``, computed from ``a._a`` by NumPy: a view of ``a``'s memory when ``r`` is one, else a copy."""
    r = np.asarray(r) if not isinstance(r, np.ndarray) else r
    if a._alloc is not None and r.size and np.may_share_memory(r, a._alloc.buffer):
        a._alloc.dtypes.add(r.dtype)
        return _wrap(r, a._alloc, a._base if a._base is not None else a)
    if r.size == 0:
        return _wrap(r.copy(), None)
    counters.elementwise += 1
    return result(r, what)


def is_scalar(x) -> bool:
    """A Python or NumPy scalar of a kind CuPy accepts as an operand."""
    return type(x) in _PY_SCALARS or (isinstance(x, np.generic) and x.dtype.kind in "biufc")


def host_value(x):
    """The NumPy operand of an argument: a device array's view, a scalar as it is."""
    return x._a if isinstance(x, ndarray) else x


def _defers(other) -> bool:
    return getattr(type(other), "__array_ufunc__", 0) is None


def _binary(name: str, reflected: bool = False):
    def op(self, other):
        if _defers(other):
            return NotImplemented
        from .ufuncs import table

        return table[name](other, self) if reflected else table[name](self, other)

    op.__name__ = f"__{'r' if reflected else ''}{name}__"
    return op


def _inplace(name: str):
    def op(self, other):
        from .ufuncs import table

        table[name](self, other, out=self)
        return self

    return op


def _compare(name: str, none_value: bool):
    def op(self, other):
        from .ufuncs import table

        if isinstance(other, ndarray):
            return table[name](self, other)
        if _defers(other):
            return NotImplemented
        if isinstance(other, np.ndarray) and other.ndim == 0:
            other = other.item()
        if name in ("equal", "not_equal") and (other is None or type(other).__eq__ is object.__eq__):
            # as CuPy: comparing with None or an object without __eq__ is a constant array, not an error
            from .routines import full

            return full(self.shape, none_value, dtype=np.bool_)
        return table[name](self, other)

    return op


class Flags:
    """``ndarray.flags``: ``c_contiguous``, ``f_contiguous``, ``owndata`` only (no ``writeable``), as CuPy."""

    def __init__(self, c_contiguous, f_contiguous, owndata):
        self._c, self._f, self._own = bool(c_contiguous), bool(f_contiguous), bool(owndata)

    c_contiguous = property(lambda self: self._c)
    f_contiguous = property(lambda self: self._f)
    owndata = property(lambda self: self._own)
    fnc = property(lambda self: self._f and not self._c)
    forc = property(lambda self: self._f or self._c)

    def __getitem__(self, name):
        keys = {"C_CONTIGUOUS": self._c, "F_CONTIGUOUS": self._f, "OWNDATA": self._own}
        if name not in keys:
            raise KeyError(f"{name} is not defined for cupy.ndarray.flags")
        return keys[name]

    def __repr__(self):
        return "\n".join(f"  {k} : {self[k]}" for k in ("C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA"))


class ndarray:  # noqa: N801  (CuPy's name)
    """``cupy.ndarray(shape, dtype=float, memptr=None, strides=None, order='C')``: a device array.

    Its memory is a device allocation (:mod:`.memory`); a new array's elements are "uninitialised" (NaN for
    floats, 0xA5 bytes for integers) until written. It converts to NumPy only through :meth:`get`.
    """

    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is None:
            if strides is not None:
                raise NotImplementedError("cupy stand-in: ndarray(strides=...) needs memptr")
            a = new(shape, dtype, order, what="cupy.ndarray")
        else:
            dt, shape = check_dtype(dtype), normalize_shape(shape)
            mem = memptr.mem
            alloc = getattr(mem, "_alloc", None)
            if alloc is None:
                raise ValueError("cupy stand-in: memptr is not a stand-in device allocation")
            offset = memptr.ptr - alloc.ptr
            try:
                view = alloc.array(shape, dt, offset=offset, strides=strides, order=order)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"cupy stand-in: the array would reach past its memory ({alloc!r}): {exc}") from None
            a = _wrap(view, alloc)
        self._a, self._alloc, self._base = a._a, a._alloc, None

    # --- attributes ----------------------------------------------------------------------------------------
    @property
    def shape(self):
        """Lengths of axes (settable when no copy is needed)."""
        return self._a.shape

    @shape.setter
    def shape(self, newshape):
        view = self._a.view()
        view.shape = newshape
        self._a = view

    dtype = property(lambda self: self._a.dtype, doc="Element type.")
    ndim = property(lambda self: self._a.ndim, doc="Number of dimensions.")
    size = property(lambda self: self._a.size, doc="Number of elements.")
    itemsize = property(lambda self: self._a.itemsize, doc="Bytes per element.")
    nbytes = property(lambda self: self._a.nbytes, doc="Bytes of the elements.")
    strides = property(lambda self: self._a.strides, doc="Strides in bytes.")
    base = property(lambda self: self._base, doc="The array whose memory this view shares, or None.")

    @property
    def flags(self):
        """``c_contiguous``, ``f_contiguous`` and ``owndata``."""
        f = self._a.flags
        return Flags(f.c_contiguous, f.f_contiguous, self._base is None)

    @property
    def T(self):  # noqa: N802
        """The transposed view."""
        return derived(self, self._a.T, "T")

    @property
    def mT(self):  # noqa: N802
        """The view with the last two axes swapped."""
        return derived(self, self._a.mT, "mT")

    @property
    def real(self):
        """The real part (the array itself for a real array)."""
        return self if self.dtype.kind != "c" else derived(self, self._a.real, "real")

    @property
    def _ptr(self) -> int:
        return self._a.ctypes.data if self._alloc is not None else 0

    @property
    def data(self):
        """The :class:`~tests.cupy_standin.memory.MemoryPointer` of the first element (address 0 when empty)."""
        if self._alloc is None:
            return memory.null_pointer()
        return memory.MemoryPointer(self._alloc.memory(), self._ptr - self._alloc.ptr)

    @property
    def device(self):
        """The device of the array."""
        from .device import Device

        return Device(0 if self._alloc is None else self._alloc.device_id)

    @property
    def __cuda_array_interface__(self):
        stream = streams.current_stream().ptr
        return {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "descr": self.dtype.descr,
            "stream": stream if stream else streams.LEGACY,
            "version": 3,
            "strides": None if self._a.flags.c_contiguous else self.strides,
            "data": (self._ptr if self.size else 0, False),
        }

    # --- no implicit host conversion -------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from . import ufuncs

        return ufuncs.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import routines

        return routines.array_function(func, types, args, kwargs)

    # --- host copies -------------------------------------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        """A copy on the host (``numpy.ndarray``); into ``out`` when given."""
        src = self
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained fromcupy.ndarray")
            if self.dtype != out.dtype:
                raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
            if self.shape != out.shape:
                raise ValueError(f"Shape mismatch. Expected shape: {self.shape}, actual shape: {out.shape}")
            c, f = self._a.flags.c_contiguous, self._a.flags.f_contiguous
            if not (out.flags.c_contiguous and c or out.flags.f_contiguous and f):
                if not (out.flags.c_contiguous or out.flags.f_contiguous):
                    raise RuntimeError("`out` cannot be specified when copying to non-contiguous ndarray")
                src = self.copy(order="C" if out.flags.c_contiguous else "F")
            host = out
        else:
            if self.size == 0:
                return np.ndarray(self.shape, dtype=self.dtype)
            order = order.upper()
            if order == "A":
                order = "F" if self._a.flags.f_contiguous else "C"
            if order not in ("C", "F"):
                raise ValueError(f"unsupported order: {order}")
            host = np.empty(self.shape, dtype=self.dtype, order=order)
        pinned = host.size > 0 and memory.pinned_find(host.ctypes.data, host.nbytes) is not None

        def copy(views):
            np.copyto(host, views[0]._a)

        streams.copy_to_host(stream, pinned, blocking, copy, [src], "ndarray.get")
        if blocking:
            streams.sync_point(stream, "ndarray.get", count=False)  # the copy counted the sync
        return host

    def set(self, arr, stream=None):
        """Copy the host array ``arr`` (same dtype and shape) into this array."""
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        if self._a.flags.c_contiguous:
            src = np.ascontiguousarray(arr)
        elif self._a.flags.f_contiguous:
            src = np.asfortranarray(arr)
        else:
            raise RuntimeError("Cannot set to non-contiguous array")
        pinned = src.size > 0 and memory.pinned_find(src.ctypes.data, src.nbytes) is not None

        def copy(views):
            np.copyto(views[0]._a, src)

        streams.copy_to_device(stream, pinned, copy, [self], "ndarray.set")

    def item(self):
        """The single element as a Python scalar (a host synchronisation)."""
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().item()

    def tolist(self):
        """The elements as nested Python lists (a host synchronisation)."""
        return self.get().tolist()

    def tobytes(self, order="C"):
        """The elements as bytes (a host synchronisation)."""
        return self.get().tobytes(order)

    def __int__(self):
        return int(self.get())

    def __float__(self):
        return float(self.get())

    def __complex__(self):
        return complex(self.get())

    def __bool__(self):
        if self.size == 0:
            warnings.warn(
                "The truth value of an empty array is ambiguous. Returning False, but in future this will result in "
                "an error. Use `array.size > 0` to check that an array is not empty.",
                DeprecationWarning,
                stacklevel=2,
            )
            return False
        if self.size == 1:
            return bool(self.get())
        raise ValueError("The truth value of an array with more than one element is ambiguous. Use a.any() or a.all()")

    def __repr__(self):
        return repr(self.get())

    def __str__(self):
        return str(self.get())

    def __format__(self, spec):
        return format(self.get(), spec)

    def __reduce__(self):
        from .routines import array

        return (array, (self.get(),))

    # --- container ---------------------------------------------------------------------------------------------
    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, key):
        from .indexing import getitem

        return getitem(self, key)

    def __setitem__(self, key, value):
        from .indexing import setitem

        setitem(self, key, value)

    # --- copies, views and shape -----------------------------------------------------------------------------
    def copy(self, order="C"):
        """A device copy."""
        order = order.upper()
        if order in ("A", "K"):
            order = "F" if self._a.flags.f_contiguous and not self._a.flags.c_contiguous else "C"
        out = new(self.shape, self.dtype, order, uninitialised=False, what="ndarray.copy")
        from .ufuncs import device_copy

        device_copy(self, out, "ndarray.copy")
        return out

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        """The array converted to ``dtype`` (the array itself when ``copy=False`` and nothing changes)."""
        dtype = check_dtype(dtype)
        if not copy and dtype == self.dtype:
            return self
        if order in ("K", "A"):
            order = "F" if self._a.flags.f_contiguous and not self._a.flags.c_contiguous else "C"
        out = new(self.shape, dtype, order, uninitialised=False, what="ndarray.astype")
        from .ufuncs import device_copy

        device_copy(self, out, "ndarray.astype", casting=casting or "unsafe")
        return out

    def view(self, dtype=None, array_class=None):
        """A view of the same memory, with another dtype."""
        if array_class is not None:
            raise NotImplementedError("cupy stand-in: view(array_class=...)")
        if dtype is None:
            return derived(self, self._a.view(), "view")
        return derived(self, self._a.view(check_dtype(dtype)), "view")

    def reshape(self, *shape, order="C", copy=None):
        """The same elements in another shape: a view when possible."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if copy:
            return derived(self, self._a.reshape(shape, order=order), "reshape").copy()
        return derived(self, self._a.reshape(shape, order=order), "reshape")

    def ravel(self, order="C"):
        """The elements in one dimension: a view when possible."""
        return derived(self, self._a.ravel(order), "ravel")

    def flatten(self, order="C"):
        """A 1-D copy."""
        return self.ravel(order).copy() if self._a.flags.c_contiguous else self.ravel(order)

    def transpose(self, *axes):
        """The view with permuted axes."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return derived(self, self._a.transpose(axes or None), "transpose")

    def swapaxes(self, axis1, axis2):
        """The view with two axes swapped."""
        return derived(self, self._a.swapaxes(axis1, axis2), "swapaxes")

    def squeeze(self, axis=None):
        """The view without length-1 axes."""
        return derived(self, self._a.squeeze(axis), "squeeze")

    def fill(self, value):
        """Set every element to the scalar ``value`` (a 0-d device array or a host scalar)."""
        from .ufuncs import device_fill

        device_fill(self, value)

    # --- reductions and other methods (see routines) -------------------------------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        """Sum of elements."""
        from .routines import sum as f

        return f(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        """Mean of elements."""
        from .routines import mean as f

        return f(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        """Product of elements."""
        from .routines import prod as f

        return f(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        """Variance of elements."""
        from .routines import var as f

        return f(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        """Standard deviation of elements."""
        from .routines import std as f

        return f(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        """Maximum of elements."""
        from .routines import amax as f

        return f(self, axis=axis, out=out, keepdims=keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        """Minimum of elements."""
        from .routines import amin as f

        return f(self, axis=axis, out=out, keepdims=keepdims)

    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        """Index of the maximum."""
        from .routines import argmax as f

        return f(self, axis=axis, out=out, dtype=dtype, keepdims=keepdims)

    def argmin(self, axis=None, out=None, dtype=None, keepdims=False):
        """Index of the minimum."""
        from .routines import argmin as f

        return f(self, axis=axis, out=out, dtype=dtype, keepdims=keepdims)

    def all(self, axis=None, out=None, keepdims=False):
        """Whether all elements are true."""
        from .routines import all as f

        return f(self, axis=axis, out=out, keepdims=keepdims)

    def any(self, axis=None, out=None, keepdims=False):
        """Whether any element is true."""
        from .routines import any as f

        return f(self, axis=axis, out=out, keepdims=keepdims)

    def cumsum(self, axis=None, dtype=None, out=None):
        """Cumulative sum."""
        from .routines import cumsum as f

        return f(self, axis=axis, dtype=dtype, out=out)

    def clip(self, min=None, max=None, out=None):  # noqa: A002  (NumPy's names)
        """Elements limited to ``[min, max]``."""
        from .routines import clip as f

        return f(self, min, max, out=out)

    def round(self, decimals=0, out=None):
        """Elements rounded to ``decimals``."""
        from .routines import around as f

        return f(self, decimals, out=out)

    def nonzero(self):
        """Indices of the nonzero elements (their count is read by the host: a sync)."""
        from .routines import nonzero as f

        return f(self)

    def sort(self, axis=-1, kind=None):
        """Sort in place."""
        from .ufuncs import device_apply

        device_apply([self], lambda v: v[0]._a.sort(axis=axis), "ndarray.sort")

    def argsort(self, axis=-1, kind=None):
        """Indices that sort the array."""
        from .routines import argsort as f

        return f(self, axis=axis)

    def dot(self, b, out=None):
        """Matrix product (cuBLAS)."""
        from .routines import dot as f

        return f(self, b, out=out)

    def conj(self):
        """The complex conjugate."""
        from .ufuncs import table

        return table["conjugate"](self)

    conjugate = conj

    def __matmul__(self, other):
        from .routines import matmul

        if _defers(other):
            return NotImplemented
        return matmul(self, other)

    def __rmatmul__(self, other):
        from .routines import matmul

        return matmul(other, self)

    def __pow__(self, other, modulo=None):
        from .ufuncs import table

        if _defers(other):
            return NotImplemented
        return table["power"](self, other)

    def __rpow__(self, other):
        from .ufuncs import table

        return table["power"](other, self)

    def __divmod__(self, other):
        from .ufuncs import table

        return table["floor_divide"](self, other), table["remainder"](self, other)

    def __neg__(self):
        from .ufuncs import table

        return table["negative"](self)

    def __pos__(self):
        from .ufuncs import table

        if self.dtype == np.bool_:
            warnings.warn(
                "Applying '+' to a non-numerical array is ill-defined. Returning a copy, but in the future this will "
                "error.",
                DeprecationWarning,
                stacklevel=2,
            )
            return self.copy()
        return table["positive"](self)

    def __abs__(self):
        from .ufuncs import table

        return table["absolute"](self)

    def __invert__(self):
        from .ufuncs import table

        return table["invert"](self)

    __lt__ = _compare("less", False)
    __le__ = _compare("less_equal", False)
    __gt__ = _compare("greater", False)
    __ge__ = _compare("greater_equal", False)
    __eq__ = _compare("equal", False)
    __ne__ = _compare("not_equal", True)


_OPERATORS = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "lshift": "left_shift",
    "rshift": "right_shift",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
}
for _op, _name in _OPERATORS.items():
    setattr(ndarray, f"__{_op}__", _binary(_name))
    setattr(ndarray, f"__r{_op}__", _binary(_name, reflected=True))
    setattr(ndarray, f"__i{_op}__", _inplace(_name))
ndarray.__ipow__ = _inplace("power")
ndarray.__module__ = "cupy"  # as CuPy names it: <class 'cupy.ndarray'>
