"""Checks at the public boundary. Everything past here trusts its inputs.

Each check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, wrong value) with a message
that names what was expected and what was received, before any work is done.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = ("float32", "float64")


def _describe(a) -> str:
    return f"{a.ndim}-D array of shape {a.shape}"


def _namespace(X, xp):
    """The array namespace that checks ``X``: ``xp`` (a backend's, such as CuPy) when ``X`` is already one of its
    arrays, so it is checked where it lives and never copied to the host; NumPy for everything else."""
    if xp is not None and xp is not np and isinstance(X, xp.ndarray):
        return xp
    return np


def _value(arr, r: int, c: int):
    """Element ``(r, c)`` for a message: NumPy's own scalar (as the caller would print it) or a Python number."""
    v = arr[r, c]
    return v if isinstance(arr, np.ndarray) else v.item()


def check_array(
    X,
    *,
    dtype: str,
    name: str = "X",
    n_features: int | None = None,
    in_unit_interval: bool = False,
    what_features: str = "features",
    owner: str = "the model",
    scan=None,
    xp=None,
):
    """Validate a 2-D data matrix and return it C-contiguous in ``dtype``.

    Accepts anything ``np.asarray`` turns into a real numeric 2-D array: integer and boolean input is converted,
    and Fortran-ordered, strided or other-dtype arrays are copied once into a C-contiguous array (kernels see
    one layout only, always a plain ``np.ndarray``). C-contiguous input already in ``dtype`` (read-only and
    memory-mapped arrays included) is used without a copy, so nothing downstream may write into it.

    ``scan``, when the backend has one, checks values of an input that is already C-contiguous in ``dtype`` in a
    single compiled pass (``scan(X, in_unit_interval) -> True`` when every value is acceptable); anything it
    does not accept goes through the detailed checks, so it changes no outcome, only the cost.

    ``xp`` is the backend's array namespace (``numpy``, ``cupy``). An array of its own type is checked and
    converted by ``xp`` itself and returned as one (a GPU array stays on its device); anything else is checked
    as a NumPy array and returned as one, for the caller to move with ``xp.asarray``.

    Rejects: sparse matrices, masked arrays with masked values, object, complex, string and datetime dtypes, a
    number of dimensions other than 2, no rows, no columns, a column count other than ``n_features``, NaN or
    inf (reporting how many and where the first is), finite values too large for ``dtype`` (float64 data
    into a float32 model) and, with ``in_unit_interval``, values outside [0, 1]. ``owner`` names who expects
    ``n_features`` (an estimator's class name).

    The messages contain scikit-learn's phrases where ``check_estimator`` looks for them ("Complex data not
    supported", "Reshape your data", "0 feature(s) (shape=...) while a minimum of 1 is required", "X has 1
    features, but Name is expecting 4 features as input"); complex data is a ``ValueError`` for the same reason.
    """
    ns = _namespace(X, xp)
    if isinstance(X, np.ndarray) and type(X) is not np.ndarray and not isinstance(X, np.ma.MaskedArray):
        X = np.asarray(X)  # np.memmap, np.matrix: a plain view of the same memory, never a copy of the whole
    if (
        scan is not None
        and (xp is None or ns is xp)  # the scan is the backend's: it reads only the backend's own arrays
        and type(X) is ns.ndarray
        and X.ndim == 2
        and X.dtype == dtype
        and X.flags.c_contiguous
        and X.shape[0] > 0
        and X.shape[1] > 0
        and (n_features is None or X.shape[1] == n_features)
    ):
        # The common case, checked in one compiled pass; anything it does not accept goes through the detailed
        # checks below, which say what is wrong and where.
        if scan(X, in_unit_interval):
            return X
    if X is None:
        raise TypeError(f"{name} must be a 2-D array of numbers, got None")
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(
            f"{name} is a sparse matrix ({type(X).__name__}); fastae needs a dense array: pass {name}.toarray()"
        )
    if isinstance(X, np.ma.MaskedArray) and np.ma.is_masked(X):  # the mask would be dropped silently
        bad = np.argwhere(np.ma.getmaskarray(X))
        where = f"; the first is at row {int(bad[0][0])}, column {int(bad[0][1])}" if X.ndim == 2 else ""
        raise ValueError(
            f"{name} is a masked array with {len(bad)} masked value(s){where}; fastae needs every "
            f"value: pass {name}.filled(fill_value)"
        )
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a 2-D array of numbers, got {type(X).__name__}")
    if ns is np and hasattr(X, "__cuda_array_interface__"):
        raise TypeError(
            f"{name} is a GPU array ({type(X).__module__.split('.')[0]}.{type(X).__name__}), but the model runs on a "
            f"host backend: move the model with model.to('cuda') (backend='cupy'), or pass {name}.get()"
        )
    try:
        arr = ns.asarray(X)
    except Exception as exc:  # ragged lists and the like: say what failed, keep the cause
        raise ValueError(f"{name} could not be read as an array: {exc}") from exc
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has complex dtype {arr.dtype}; fastae needs real numbers")
    if kind not in "biuf":
        raise TypeError(f"{name} has dtype {arr.dtype}; expected a real numeric dtype (float, int or bool)")
    one = what_features.removesuffix("s")  # "feature", "code unit", "latent unit"
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1:
            hint = (
                f". Reshape your data: {name}.reshape(1, -1) if it is one sample, {name}.reshape(-1, 1) if it "
                f"is one {one}"
            )
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_{what_features.replace(' ', '_')}), got {_describe(arr)}{hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: found 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.shape[1] == 0:
        raise ValueError(
            f"{name} has no {what_features}: found 0 {one}(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} {what_features}, but {owner} is expecting {n_features} "
            f"{what_features} as input (got {_describe(arr)})"
        )
    if kind == "f":  # NaN/inf as given, reported with the values the caller passed
        count, r, c = _count_bad(ns, arr, lambda block: ~ns.isfinite(block))
        if count:
            raise ValueError(
                f"{name} contains {count} non-finite value(s) (NaN or inf); the first is "
                f"{_value(arr, r, c)} at row {r}, column {c}"
            )
    with np.errstate(over="ignore"):  # an overflowing cast is reported below, not warned about
        out = ns.ascontiguousarray(arr, dtype=dtype)  # a plain array of ns: arr is one (ns.asarray above)
    if kind == "f" and arr.dtype.itemsize > out.dtype.itemsize:  # float64 -> float32 may overflow
        count, r, c = _count_bad(ns, out, lambda block: ~ns.isfinite(block))
        if count:
            raise ValueError(
                f"{name} has {count} value(s) too large for dtype={dtype!r} (largest finite "
                f"{float(np.finfo(dtype).max):.4g}); the first is {_value(arr, r, c)} at row {r}, column "
                f"{c}. Scale the data or use dtype='float64'"
            )
    if in_unit_interval:
        count, r, c = _count_bad(ns, out, lambda block: (block < 0) | (block > 1))
        if count:
            raise ValueError(
                f"{name} has {count} value(s) outside [0, 1], which loss='bce' "
                f"(cross-entropy) needs as targets; the first is {_value(arr, r, c)} at row {r}, column "
                f"{c}. Scale the data to [0, 1] or use loss='mse'"
            )
    return out


# Rows per block of the detailed checks: their boolean temporaries stay near 4 MB whatever the input's size.
_CHECK_BLOCK_VALUES = 2**22


def _count_bad(ns, arr, bad):
    """``(count, row, column)``: how many elements ``bad(block)`` marks, and the first, block by block of rows
    (``(0, -1, -1)`` if none); ``ns`` is ``arr``'s array namespace."""
    rows = max(1, _CHECK_BLOCK_VALUES // max(arr.shape[1], 1))
    count, first = 0, (-1, -1)
    for s in range(0, arr.shape[0], rows):
        mask = bad(arr[s : s + rows])
        n = int(ns.count_nonzero(mask))
        if n and not count:
            r, c = ns.argwhere(mask)[0].tolist()
            first = (s + int(r), int(c))
        count += n
    return (count, *first)


def check_out(out, *, shape: tuple, dtype: str, what: str, inputs=(), xp=np) -> None:
    """Validate an ``out=`` array before anything is written to it (an ``np.memmap`` is accepted: results can go
    straight to a file).

    It must be an array of the backend's namespace ``xp`` (NumPy's, CuPy's) of exactly ``shape`` and ``dtype``,
    C-contiguous and writeable, and share no memory
    with any of ``inputs``, ``(description, array)`` pairs of what the call reads (rows being read would be
    overwritten by rows being written). Nothing is converted: a result silently cast or copied would not be where
    the caller looks for it."""
    if not isinstance(out, xp.ndarray):
        kind = "a NumPy array" if xp is np else f"an array of {xp.__name__} (the model's backend)"
        raise TypeError(f"out must be {kind} to receive {what}, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)} to receive {what}, got shape {out.shape}")
    if out.dtype != np.dtype(dtype):
        raise ValueError(
            f"out must have dtype {np.dtype(dtype).name} (the model's dtype) to receive {what}, got dtype {out.dtype}"
        )
    if not out.flags.c_contiguous:
        raise ValueError(
            f"out must be C-contiguous to receive {what}; got an array with strides {out.strides} "
            f"(use np.empty({tuple(shape)}, dtype={np.dtype(dtype).name!r}))"
        )
    if not getattr(out.flags, "writeable", True):  # a CuPy array has no read-only flag
        raise ValueError(f"out is read-only; it must be writeable to receive {what}")
    for name, x in inputs:
        if isinstance(x, xp.ndarray) and xp.may_share_memory(out, x):  # host and device memory never overlap
            raise ValueError(f"out shares memory with {name}; it must be a separate array to receive {what}")


# --- hyperparameters ----------------------------------------------------------------------------------------
def check_choice(name: str, value, allowed) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def check_number(name: str, value, *, low=None, high=None, low_open=False, high_open=False, integer=False) -> None:
    """Check a real (or integer) scalar lies in the interval; booleans are refused (``True`` is not a rate)."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        want = "an integer" if integer else "a real number"
        raise TypeError(f"{name} must be {want}, got {value!r} of type {type(value).__name__}")
    if not integer and not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        lb = "-inf" if low is None else f"{low}"
        hb = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lb}, {hb}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def check_layer_sizes(name: str, value, *, allow_empty: bool) -> tuple[int, ...]:
    """A tuple of positive layer widths; a bare integer means one layer."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise TypeError(
            f"{name} must be a tuple of positive integers such as (256,) or (1000, 500, 250, 30), got {value!r}"
        )
    sizes = tuple(value)
    if not sizes and not allow_empty:
        raise ValueError(f"{name} must name at least one layer, got {value!r}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"{name} must contain positive integers, got {value!r}")
    return tuple(int(s) for s in sizes)
