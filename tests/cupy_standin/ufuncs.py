"""Elementwise work "on the device": CuPy's ufuncs, and the copy/fill/apply helpers every other operation uses.

Operands are checked as CuPy's kernels check them: device arrays and Python or NumPy scalars only; a
``numpy.ndarray`` (or a list) is ``TypeError: Unsupported type <class 'numpy.ndarray'>``. An output that partially
overlaps an input (``a[1:] += a[:-1]``) is refused: each GPU thread reads its input element and writes its output
element, so such a call races on a GPU (:class:`~tests.cupy_standin.errors.Hazard`). NumPy computes the elements,
with its floating-point warnings silenced (CuPy never warns about NaN).
"""

from __future__ import annotations

import numpy as np

from . import streams
from .arrays import host_value, is_scalar, ndarray, result
from .errors import Hazard
from .state import counters


def operand(x):
    """``x`` if it is a device array or a scalar, else CuPy's ``TypeError``."""
    if isinstance(x, ndarray) or is_scalar(x):
        return x
    raise TypeError(f"Unsupported type {type(x)}")


def fresh(what: str) -> None:
    """Checks before an operation that allocates its result on the current stream."""
    streams.check_alloc(what)
    stream = streams.current_stream()
    if stream.ptr == 0:
        streams.submit(stream, [], lambda _v: None, what)  # the legacy stream's rule (906) during a capture


def check_overlap(inputs, out: ndarray, what: str) -> None:
    """Refuse an input that shares memory with ``out`` without being exactly ``out``'s elements."""
    for x in inputs:
        if not isinstance(x, ndarray) or x is out or x._alloc is None or x._alloc is not out._alloc:
            continue
        if x._ptr == out._ptr and x.strides == out.strides and x.shape == out.shape:
            continue  # the same elements: each thread reads and writes its own
        if np.shares_memory(x._a, out._a):
            raise Hazard(
                f"{what}: an input (shape {x.shape}, strides {x.strides}) partially overlaps the output (shape "
                f"{out.shape}, strides {out.strides}); on a GPU the threads would race"
            )


def device_apply(arrays, fn, what: str, counter: str = "elementwise") -> None:
    """Run ``fn(views)`` on the current stream (or record it in its capture), counting it once per run."""

    def run(views):
        setattr(counters, counter, getattr(counters, counter) + 1)
        with np.errstate(all="ignore"):
            fn(views)

    streams.submit(None, list(arrays), run, what)


def device_copy(src: ndarray, dst: ndarray, what: str, casting: str = "unsafe") -> None:
    """``dst[...] = src`` on the device (broadcasting ``src``)."""
    check_overlap([src], dst, what)
    if np.broadcast_shapes(src.shape, dst.shape) != dst.shape:
        raise ValueError(f"could not broadcast input array from shape {src.shape} into shape {dst.shape}")
    device_apply([src, dst], lambda v: np.copyto(v[1]._a, v[0]._a, casting=casting), what)


def device_fill(a: ndarray, value) -> None:
    """``a.fill(value)``: ``value`` a 0-d device array or a host scalar (a NumPy array must be 0-d)."""
    if isinstance(value, ndarray):
        if value.shape != ():
            raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
        device_apply([value, a], lambda v: v[1]._a.fill(v[0]._a[()]), "ndarray.fill")
        return
    v = np.asarray(value, dtype=a.dtype)
    if v.shape != ():
        raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
    scalar = v[()]
    device_apply([a], lambda views: views[0]._a.fill(scalar), "ndarray.fill")


def compute(fn, ins, out=None, what: str = "", counter: str = "elementwise"):
    """``fn(*operands[, out=...])`` on the device: into a new array (returned), or into ``out``."""
    ins = [operand(x) for x in ins]
    if out is None:
        fresh(what)
        setattr(counters, counter, getattr(counters, counter) + 1)
        with np.errstate(all="ignore"):
            r = fn(*[host_value(x) for x in ins])
        return result(r, what)
    if not isinstance(out, ndarray):
        raise TypeError("Output arguments must be cupy.ndarray")
    check_overlap(ins, out, what)
    arrays = [x for x in ins if isinstance(x, ndarray)]
    scalars = [None if isinstance(x, ndarray) else x for x in ins]  # a captured node holds no array strongly
    slots = [isinstance(x, ndarray) for x in ins]

    def run(views):
        it = iter(views)
        ops = [next(it)._a if slot else x for slot, x in zip(slots, scalars)]
        fn(*ops, out=next(it)._a)

    device_apply(arrays + [out], run, what, counter)
    return out


class ufunc:  # noqa: N801  (CuPy's name)
    """``cupy.ufunc``: a NumPy ufunc computed on device arrays, with ``out``, ``dtype`` and ``casting``."""

    def __init__(self, np_ufunc: np.ufunc, name: str):
        self._np = np_ufunc
        self.name = self.__name__ = f"cupy_{name}"
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs
        self.__doc__ = f"CuPy stand-in of numpy.{name}."

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    @property
    def types(self):
        """The loops' type signatures."""
        return list(self._np.types)

    def _check_types(self, ins, out, dtype, casting):
        # a captured call runs later: find dtype and shape errors now, as CuPy would at the call
        probes = [np.empty(0, x.dtype) if isinstance(x, ndarray) else x for x in ins]
        self._np(*probes, out=np.empty(0, out.dtype), dtype=dtype, casting=casting)
        shape = np.broadcast_shapes(*[x.shape for x in ins if isinstance(x, ndarray)], out.shape)
        if shape != out.shape:
            raise ValueError(f"non-broadcastable output operand with shape {out.shape} doesn't match {shape}")

    def __call__(self, *args, out=None, dtype=None, casting="same_kind", **kwargs):
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        if len(args) == self.nin + self.nout and self.nout == 1 and out is None:
            args, out = args[: self.nin], args[self.nin]
        if len(args) != self.nin:
            raise TypeError(
                f"Wrong number of arguments for {self.name!r}. It must be either {self.nin} or {self.nargs} (with "
                f"outputs), but given {len(args)}."
            )
        ins = [operand(x) for x in args]
        what = f"cupy.{self.name[5:]}"
        if isinstance(out, tuple):
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            out = out[0]
        if self.nout != 1:
            if out is not None:
                raise NotImplementedError(f"cupy stand-in: out= for {self.name}")
            fresh(what)
            counters.elementwise += 1
            with np.errstate(all="ignore"):
                rs = self._np(*[host_value(x) for x in ins], dtype=dtype, casting=casting)
            return tuple(result(r, what) for r in rs)
        if out is not None:
            if not isinstance(out, ndarray):
                raise TypeError("Output arguments must be cupy.ndarray")
            self._check_types(ins, out, dtype, casting)
        return compute(lambda *ops, **kw: self._np(*ops, dtype=dtype, casting=casting, **kw), ins, out, what)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        """Reduce ``array`` along ``axis`` with this ufunc."""
        if not isinstance(array, ndarray):
            raise TypeError(f"Unsupported type {type(array)}")
        fn = lambda a, **kw: self._np.reduce(a, axis=axis, dtype=dtype, keepdims=keepdims, **kw)  # noqa: E731
        return compute(fn, [array], out, f"cupy.{self.name[5:]}.reduce")

    def accumulate(self, array, axis=0, dtype=None, out=None):
        """Accumulate ``array`` along ``axis`` with this ufunc."""
        if not isinstance(array, ndarray):
            raise TypeError(f"Unsupported type {type(array)}")
        fn = lambda a, **kw: self._np.accumulate(a, axis=axis, dtype=dtype, **kw)  # noqa: E731
        return compute(fn, [array], out, f"cupy.{self.name[5:]}.accumulate")

    def outer(self, A, B, **kwargs):  # noqa: N803  (NumPy's names)
        """The ufunc of every pair of ``A`` and ``B`` elements."""
        return compute(lambda a, b: self._np.outer(a, b, **kwargs), [A, B], None, f"cupy.{self.name[5:]}.outer")

    def at(self, a, indices, b=None):
        """In place ``a[indices] = ufunc(a[indices], b)``, repeated indices accumulated."""
        from .indexing import host_index

        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        idx = host_index(indices)
        b_array = isinstance(operand(b), ndarray) if b is not None else False
        arrays = [a, b] if b_array else [a]
        extra = () if b is None or b_array else (b,)

        def run(views):
            self._np.at(views[0]._a, idx, *((views[1]._a,) if b_array else extra))

        device_apply(arrays, run, f"cupy.{self.name[5:]}.at")


_NAMES = (
    "abs absolute acos acosh add arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin asinh atan atan2 atanh "
    "bitwise_and bitwise_count bitwise_invert bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift "
    "bitwise_xor cbrt ceil conj conjugate copysign cos cosh deg2rad degrees divide divmod equal exp exp2 expm1 fabs "
    "float_power floor floor_divide fmax fmin fmod frexp gcd greater greater_equal heaviside hypot invert isfinite "
    "isinf isnan lcm ldexp left_shift less less_equal log log10 log1p log2 logaddexp logaddexp2 logical_and "
    "logical_not logical_or logical_xor maximum minimum mod modf multiply negative nextafter not_equal positive pow "
    "power rad2deg radians reciprocal remainder right_shift rint sign signbit sin sinh sqrt square subtract tan tanh "
    "true_divide trunc"
).split()

table: dict[str, ufunc] = {}  # NumPy ufunc __name__ -> the stand-in's
exported: dict[str, ufunc] = {}  # cupy attribute name -> the stand-in's (aliases share one object, as in CuPy)
for _name in _NAMES:
    _np_ufunc = getattr(np, _name)
    _f = table.get(_np_ufunc.__name__)
    if _f is None:
        _f = table[_np_ufunc.__name__] = ufunc(_np_ufunc, _np_ufunc.__name__)
    exported[_name] = _f

_COMPARISONS = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"}


def array_ufunc(np_ufunc, method, inputs, kwargs):
    """``ndarray.__array_ufunc__``: NumPy's ufunc call on a device array runs the stand-in's (a NumPy array
    among the operands is then CuPy's ``TypeError``); ``NotImplemented`` for what CuPy lacks."""
    f = table.get(np_ufunc.__name__)
    if f is None:
        return NotImplemented
    kwargs = dict(kwargs)
    outs = ()
    if "out" in kwargs:
        outs = kwargs["out"]
        if len(outs) != 1:
            raise ValueError("The 'out' parameter must have exactly one array value")
        kwargs["out"] = outs[0]
    for x in (*inputs, *outs):
        if not (is_scalar(x) or isinstance(x, (ndarray, np.ndarray))):
            return NotImplemented
    if np_ufunc.__name__ in _COMPARISONS:
        inputs = tuple(x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x for x in inputs)
    if method == "__call__":
        return f(*inputs, **kwargs)
    if method in ("reduce", "accumulate", "outer", "at"):
        return getattr(f, method)(*inputs, **kwargs)
    return NotImplemented
