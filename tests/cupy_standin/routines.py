"""The module-level functions of the ``cupy`` stand-in: creation, manipulation, reductions, search, logic.

Arguments follow CuPy's typing: where CuPy's function takes only a ``cupy.ndarray`` (its Cython signature, or a
kernel operand), a NumPy array is a ``TypeError``; only ``array``/``asarray`` (and index arrays) copy host data to
the device. Functions whose output size depends on the data (``nonzero``, ``argwhere``, ``flatnonzero``,
one-argument ``where``) read a count back to the host: a sync, refused inside a capture.
"""

from __future__ import annotations

import builtins

import numpy as np

from . import streams
from .arrays import check_dtype, derived, from_host, ndarray, new, result
from .state import counters
from .ufuncs import compute, device_apply, device_copy, device_fill, fresh, operand, table


def _dev(a, name: str = "a") -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError(
            f"Argument '{name}' has incorrect type (expected cupy._core.core._ndarray_base, got {type(a).__name__})"
        )
    return a


# --- creation --------------------------------------------------------------------------------------------------
def _flat_items(obj):
    for x in obj:
        if isinstance(x, (list, tuple)):
            yield from _flat_items(x)
        else:
            yield x


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """A device array of ``obj``: a copy of a device array, a host-to-device copy of host data."""
    if isinstance(obj, ndarray):
        dt = obj.dtype if dtype is None else check_dtype(dtype)
        if copy is False and dt != obj.dtype:
            raise ValueError("Unable to avoid copy while creating an array as requested.")
        out = obj if (not copy and dt == obj.dtype) else obj.astype(dt, order=order)
    elif isinstance(obj, (list, tuple)) and builtins.any(isinstance(x, ndarray) for x in _flat_items(obj)):
        if not builtins.all(isinstance(x, ndarray) for x in obj):
            raise TypeError("Only cupy arrays can be concatenated")
        out = stack(obj)
        out = out if dtype is None else out.astype(dtype)
    else:
        if copy is False:
            raise ValueError("Unable to avoid copy while creating an array as requested.")
        out = from_host(obj, dtype=None if dtype is None else check_dtype(dtype), order=order, what="cupy.array")
    if out.ndim < ndmin:
        out = out.reshape((1,) * (ndmin - out.ndim) + out.shape)
    return out


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    """``a`` as a device array: the same array when it already is one of that dtype, else a copy."""
    return array(a, dtype, copy=copy, order=order or "K", blocking=blocking)


asanyarray = asarray


def ascontiguousarray(a, dtype=None):
    """A C-contiguous device array: ``a`` itself when it is one of that dtype (a 0-d array becomes 1-d)."""
    _dev(a)
    dt = a.dtype if dtype is None else check_dtype(dtype)
    if dt == a.dtype and a._a.flags.c_contiguous:
        return a.ravel() if a.ndim == 0 else a
    out = new((1,) if a.ndim == 0 else a.shape, dt, uninitialised=False, what="cupy.ascontiguousarray")
    device_copy(a, out, "cupy.ascontiguousarray")
    return out


def asfortranarray(a, dtype=None):
    """An F-contiguous device array: ``a`` itself when it is one of that dtype."""
    _dev(a)
    dt = a.dtype if dtype is None else check_dtype(dtype)
    if dt == a.dtype and a._a.flags.f_contiguous:
        return a.ravel() if a.ndim == 0 else a
    out = new((1,) if a.ndim == 0 else a.shape, dt, "F", uninitialised=False, what="cupy.asfortranarray")
    device_copy(a, out, "cupy.asfortranarray")
    return out


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """``a`` on the host: ``a.get()`` for a device array, ``numpy.asarray`` otherwise."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    temp = np.asarray(a, order=order)
    if out is None:
        return temp
    out[...] = temp
    return out


def empty(shape, dtype=float, order="C"):
    """A new device array of "uninitialised" memory (NaN floats, 0xA5 integer bytes)."""
    return new(shape, dtype, order)


def _like(a, dtype, order, shape):
    dt = a.dtype if dtype is None else dtype
    if order in ("K", "A", None):
        order = "F" if a._a.flags.f_contiguous and not a._a.flags.c_contiguous else "C"
    return dt, order, a.shape if shape is None else shape


def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    """``empty`` with the shape and dtype of ``prototype``."""
    dt, order, shape = _like(_dev(prototype, "prototype"), dtype, order, shape)
    return new(shape, dt, order, what="cupy.empty_like")


def full(shape, fill_value, dtype=None, order="C"):
    """A new device array of ``fill_value``."""
    if dtype is None:
        dtype = fill_value.dtype if isinstance(fill_value, ndarray) else np.asarray(fill_value).dtype
    out = new(shape, dtype, order, uninitialised=False, what="cupy.full")
    if isinstance(fill_value, ndarray):
        device_copy(fill_value, out, "cupy.full")
    else:
        out._a.fill(np.asarray(fill_value, dtype=out.dtype)[()])
    return out


def zeros(shape, dtype=float, order="C"):
    """A new device array of zeros."""
    return full(shape, 0, dtype, order)


def ones(shape, dtype=float, order="C"):
    """A new device array of ones."""
    return full(shape, 1, dtype, order)


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    """``zeros`` with the shape and dtype of ``a``."""
    dt, order, shape = _like(_dev(a), dtype, order, shape)
    return full(shape, 0, dt, order)


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    """``ones`` with the shape and dtype of ``a``."""
    dt, order, shape = _like(_dev(a), dtype, order, shape)
    return full(shape, 1, dt, order)


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    """``full`` with the shape and dtype of ``a``."""
    dt, order, shape = _like(_dev(a), dtype, order, shape)
    return full(shape, fill_value, dt, order)


def arange(start, stop=None, step=1, dtype=None):
    """Evenly spaced values in ``[start, stop)``."""
    r = np.arange(start, stop, step, dtype=dtype) if stop is not None else np.arange(start, step=step, dtype=dtype)
    return result(r, "cupy.arange")


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """``num`` evenly spaced values from ``start`` to ``stop``."""
    r = np.linspace(start, stop, num, endpoint=endpoint, retstep=retstep, dtype=dtype, axis=axis)
    return (result(r[0], "cupy.linspace"), r[1]) if retstep else result(r, "cupy.linspace")


def copy(a, order="K"):
    """A device copy of ``a``."""
    return _dev(a).copy(order=order)


def copyto(dst, src, casting="same_kind", where=None):
    """``dst[...] = src`` (broadcast), only where ``where`` is true."""
    _dev(dst, "dst")
    src = operand(src)
    if where is None:
        if isinstance(src, ndarray):
            np.copyto(np.empty(0, dst.dtype), np.empty(0, src.dtype), casting=casting)
            device_copy(src, dst, "cupy.copyto", casting=casting)
        else:
            device_fill(dst, src)
        return
    _dev(where, "where")
    src_array = isinstance(src, ndarray)
    arrays = [dst, where] + ([src] if src_array else [])
    scalar = None if src_array else src  # a captured node holds no array strongly

    def run(views):
        np.copyto(views[0]._a, views[2]._a if src_array else scalar, casting=casting, where=views[1]._a)

    device_apply(arrays, run, "cupy.copyto")


# --- manipulation ----------------------------------------------------------------------------------------------
def reshape(a, newshape, order="C"):
    """``a`` in another shape (a view when possible)."""
    return _dev(a).reshape(newshape, order=order)


def ravel(a, order="C"):
    """``a`` in one dimension (a view when possible)."""
    return _dev(a).ravel(order)


def transpose(a, axes=None):
    """``a`` with permuted axes (a view)."""
    return _dev(a).transpose(axes)


def swapaxes(a, axis1, axis2):
    """``a`` with two axes swapped (a view)."""
    return _dev(a).swapaxes(axis1, axis2)


def squeeze(a, axis=None):
    """``a`` without its length-1 axes (a view)."""
    return _dev(a).squeeze(axis)


def expand_dims(a, axis):
    """``a`` with a new length-1 axis (a view)."""
    return derived(_dev(a), np.expand_dims(a._a, axis), "cupy.expand_dims")


def broadcast_to(array, shape):
    """A read-as-broadcast view of ``array``."""
    return derived(_dev(array, "array"), np.broadcast_to(array._a, shape), "cupy.broadcast_to")


def _arrays(tup, what):
    tup = list(tup)
    for x in tup:
        if not isinstance(x, ndarray):
            raise TypeError("Only cupy arrays can be concatenated")
    if not tup:
        raise ValueError("need at least one array to concatenate")
    return tup


def concatenate(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """The arrays of ``tup`` joined along ``axis``."""
    tup = _arrays(tup, "cupy.concatenate")

    def fn(*ops, **kw):
        return np.concatenate(ops, axis=axis, dtype=dtype, casting=casting, **kw)

    return compute(fn, tup, out, "cupy.concatenate")


def stack(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """The arrays of ``tup`` stacked along a new ``axis``."""
    tup = _arrays(tup, "cupy.stack")

    def fn(*ops, **kw):
        return np.stack(ops, axis=axis, dtype=dtype, casting=casting, **kw)

    return compute(fn, tup, out, "cupy.stack")


def vstack(tup, *, dtype=None, casting="same_kind"):
    """The arrays of ``tup`` stacked as rows."""
    tup = _arrays(tup, "cupy.vstack")
    return compute(lambda *ops: np.vstack(ops, dtype=dtype, casting=casting), tup, None, "cupy.vstack")


def hstack(tup, *, dtype=None, casting="same_kind"):
    """The arrays of ``tup`` stacked as columns."""
    tup = _arrays(tup, "cupy.hstack")
    return compute(lambda *ops: np.hstack(ops, dtype=dtype, casting=casting), tup, None, "cupy.hstack")


# --- reductions ------------------------------------------------------------------------------------------------
def _reduction(npf, name):
    def f(a, axis=None, dtype=None, out=None, keepdims=False):
        _dev(a)
        return compute(lambda x, **kw: npf(x, axis=axis, dtype=dtype, keepdims=keepdims, **kw), [a], out, name)

    f.__name__ = name.split(".")[-1]
    f.__doc__ = f"``{name}`` over ``axis`` (a 0-d device array for the whole array)."
    return f


sum = _reduction(np.sum, "cupy.sum")  # noqa: A001  (CuPy's names)
prod = _reduction(np.prod, "cupy.prod")
mean = _reduction(np.mean, "cupy.mean")


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    """Variance over ``axis``."""
    _dev(a)
    fn = lambda x, **kw: np.var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, **kw)  # noqa: E731
    return compute(fn, [a], out, "cupy.var")


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    """Standard deviation over ``axis``."""
    _dev(a)
    fn = lambda x, **kw: np.std(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, **kw)  # noqa: E731
    return compute(fn, [a], out, "cupy.std")


def amax(a, axis=None, out=None, keepdims=False):
    """Maximum over ``axis``."""
    _dev(a)
    return compute(lambda x, **kw: np.amax(x, axis=axis, keepdims=keepdims, **kw), [a], out, "cupy.amax")


def amin(a, axis=None, out=None, keepdims=False):
    """Minimum over ``axis``."""
    _dev(a)
    return compute(lambda x, **kw: np.amin(x, axis=axis, keepdims=keepdims, **kw), [a], out, "cupy.amin")


max = amax  # noqa: A001
min = amin  # noqa: A001


def all(a, axis=None, out=None, keepdims=False):  # noqa: A001
    """Whether every element over ``axis`` is true (a device array, not a Python bool)."""
    _dev(a)
    return compute(lambda x, **kw: np.all(x, axis=axis, keepdims=keepdims, **kw), [a], out, "cupy.all")


def any(a, axis=None, out=None, keepdims=False):  # noqa: A001
    """Whether some element over ``axis`` is true (a device array, not a Python bool)."""
    _dev(a)
    return compute(lambda x, **kw: np.any(x, axis=axis, keepdims=keepdims, **kw), [a], out, "cupy.any")


def argmax(a, axis=None, dtype=None, out=None, keepdims=False):
    """Index of the maximum over ``axis``."""
    _dev(a)
    r = compute(lambda x, **kw: np.argmax(x, axis=axis, keepdims=keepdims, **kw), [a], out, "cupy.argmax")
    return r if dtype is None or out is not None else r.astype(dtype, copy=False)


def argmin(a, axis=None, dtype=None, out=None, keepdims=False):
    """Index of the minimum over ``axis``."""
    _dev(a)
    r = compute(lambda x, **kw: np.argmin(x, axis=axis, keepdims=keepdims, **kw), [a], out, "cupy.argmin")
    return r if dtype is None or out is not None else r.astype(dtype, copy=False)


def cumsum(a, axis=None, dtype=None, out=None):
    """Cumulative sum over ``axis`` (flattened when ``None``)."""
    _dev(a)
    return compute(lambda x, **kw: np.cumsum(x, axis=axis, dtype=dtype, **kw), [a], out, "cupy.cumsum")


def count_nonzero(a, axis=None):
    """Count of nonzero elements: a 0-d device array (NumPy returns an int; CuPy does not)."""
    _dev(a)
    return compute(lambda x: np.asarray(np.count_nonzero(x, axis=axis), dtype=np.intp), [a], None, "cupy.count_nonzero")


# --- elementwise routines that are no ufuncs -------------------------------------------------------------------
def clip(a, a_min=None, a_max=None, out=None):
    """``a`` limited to ``[a_min, a_max]``."""
    _dev(a)
    ins = [a] + [x for x in (a_min, a_max) if x is not None]
    lo, hi = a_min is not None, a_max is not None

    def fn(x, *bounds, **kw):
        it = iter(bounds)
        return np.clip(x, next(it) if lo else None, next(it) if hi else None, **kw)

    return compute(fn, ins, out, "cupy.clip")


def around(a, decimals=0, out=None):
    """``a`` rounded to ``decimals`` (half to even)."""
    _dev(a)
    return compute(lambda x, **kw: np.round(x, decimals, **kw), [a], out, "cupy.around")


round = around  # noqa: A001


def where(condition, x=None, y=None):
    """Elements of ``x`` where ``condition`` holds, else of ``y``; with ``condition`` alone, its ``nonzero()``."""
    if x is None and y is None:
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("Must provide both 'x' and 'y' or neither.")
    _dev(condition, "condition")
    return compute(lambda c, a, b: np.where(c, a, b), [condition, x, y], None, "cupy.where")


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|a - b| <= atol + rtol |b|``."""
    return compute(lambda p, q: np.isclose(p, q, rtol, atol, equal_nan), [a, b], None, "cupy.isclose")


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether ``isclose`` holds everywhere: a 0-d device array."""
    return all(isclose(a, b, rtol, atol, equal_nan))


# --- search and sort -------------------------------------------------------------------------------------------
def _sized(a, fn, what):
    """A result whose size depends on the data: the count goes to the host first (a sync)."""
    _dev(a)
    streams.sync_point(None, what)
    fresh(what)
    counters.elementwise += 1
    return fn(a._a)


def nonzero(a):
    """Indices of the nonzero elements, one device array per axis (a sync: the count is read back)."""
    return tuple(result(i.astype(np.int64), "cupy.nonzero") for i in _sized(a, np.nonzero, "cupy.nonzero"))


def argwhere(a):
    """``(N, ndim)`` indices of the nonzero elements (a sync)."""
    return result(_sized(a, np.argwhere, "cupy.argwhere").astype(np.int64), "cupy.argwhere")


def flatnonzero(a):
    """Indices of the nonzero elements of ``a.ravel()`` (a sync)."""
    return result(_sized(a, np.flatnonzero, "cupy.flatnonzero").astype(np.int64), "cupy.flatnonzero")


def sort(a, axis=-1, kind=None):
    """A sorted copy."""
    _dev(a)
    return compute(lambda x: np.sort(x, axis=axis), [a], None, "cupy.sort")


def argsort(a, axis=-1, kind=None):
    """Indices that sort ``a`` (stable, as CuPy's)."""
    _dev(a)
    return compute(lambda x: np.argsort(x, axis=axis, kind="stable"), [a], None, "cupy.argsort")


# --- logic and memory ------------------------------------------------------------------------------------------
def array_equal(a1, a2, equal_nan=False):
    """Whether two device arrays have the same shape and elements: a 0-d device array, as CuPy returns."""
    if a1.shape != a2.shape:
        return array(False)
    if not equal_nan:
        return (a1 == a2).all()
    n1, n2 = table["isnan"](a1), table["isnan"](a2)
    if not (n1 == n2).all():
        return array(False)
    keep = ~n1
    return (a1[keep] == a2[keep]).all()


def may_share_memory(a, b, max_work=None):
    """Whether the byte ranges of two device arrays overlap (both must be device arrays, as in CuPy)."""
    _dev(a, "a")
    _dev(b, "b")
    if max_work is not None:
        raise NotImplementedError("Only supported for `max_work` is `None`")
    if a._alloc is None or a._alloc is not b._alloc or a.size == 0 or b.size == 0:
        return False
    return bool(np.may_share_memory(a._a, b._a))


def shares_memory(a, b, max_work=None):
    """Whether two device arrays share an element (computed on the device by CuPy, so a sync)."""
    if a is b and getattr(a, "size", 0) != 0:
        return True
    if max_work == "MAY_SHARE_BOUNDS":
        return may_share_memory(a, b)
    if max_work not in (None, "MAY_SHARE_EXACT"):
        raise NotImplementedError("Not supported for integer `max_work`.")
    operand(a)
    operand(b)
    _dev(a, "a")
    _dev(b, "b")
    streams.sync_point(None, "cupy.shares_memory")
    if a._alloc is None or a._alloc is not b._alloc:
        return False
    return bool(np.shares_memory(a._a, b._a))


# --- products (cuBLAS in CuPy) ---------------------------------------------------------------------------------
def matmul(x1, x2, /, out=None, **kwargs):
    """Matrix product; CuPy runs it on cuBLAS, so, like ``gemmEx``, it is refused inside a capture."""
    from .cublas import check_capture

    _dev(x1, "x1")
    _dev(x2, "x2")
    check_capture()
    return compute(lambda a, b, **kw: np.matmul(a, b, **kw), [x1, x2], out, "cupy.matmul", counter="blas")


def dot(a, b, out=None):
    """Dot product (cuBLAS in CuPy; refused inside a capture)."""
    from .cublas import check_capture

    _dev(a, "a")
    _dev(b, "b")
    check_capture()
    return compute(lambda p, q, **kw: np.dot(p, q, **kw), [a, b], out, "cupy.dot", counter="blas")


# --- type helpers ------------------------------------------------------------------------------------------------
def _dtype_of(x):
    return x.dtype if isinstance(x, ndarray) else x


def result_type(*arrays_and_dtypes):
    """NumPy's ``result_type`` over dtypes, scalars and device arrays."""
    return np.result_type(*[_dtype_of(x) for x in arrays_and_dtypes])


def can_cast(from_, to, casting="safe"):
    """NumPy's ``can_cast`` (a device array stands for its dtype)."""
    return np.can_cast(_dtype_of(from_), to, casting)


def get_array_module(*args):
    """The stand-in ``cupy`` module if an argument is one of its arrays, else ``numpy``."""
    from .namespaces import cupy_module

    for a in args:
        if isinstance(a, ndarray):
            return cupy_module()
    return np


def array_function(func, types, args, kwargs):
    """``ndarray.__array_function__``: NumPy's function on a device array runs the stand-in's of that name;
    ``NotImplemented`` (then NumPy's ``TypeError``) when CuPy has none or another array type takes part."""
    from .namespaces import cupy_module

    if func.__module__ != "numpy":
        return NotImplemented
    cupy_func = getattr(cupy_module(), func.__name__, None)
    if cupy_func is None or cupy_func is func:
        return NotImplemented
    for t in types:
        if not issubclass(t, (ndarray, np.ndarray)):
            return NotImplemented
    return cupy_func(*args, **kwargs)


NAMES = (
    "array asarray asanyarray ascontiguousarray asfortranarray asnumpy empty empty_like full full_like zeros "
    "zeros_like ones ones_like arange linspace copy copyto reshape ravel transpose swapaxes squeeze expand_dims "
    "broadcast_to concatenate stack vstack hstack sum prod mean var std amax amin max min all any argmax argmin "
    "cumsum count_nonzero clip around round where isclose allclose nonzero argwhere flatnonzero sort argsort "
    "array_equal may_share_memory shares_memory matmul dot result_type can_cast get_array_module"
).split()
