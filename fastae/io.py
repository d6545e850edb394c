"""Low-level fastae model-file format.

A fastae model file is a plain `safetensors <https://github.com/huggingface/safetensors>`_
file: raw numbers plus JSON text.  Loading one never constructs arbitrary
Python objects or runs code from the file.

Layout::

    [8 bytes]  little-endian uint64 N: length of the JSON header
    [N bytes]  UTF-8 JSON header (safetensors): one entry per tensor plus
               "__metadata__", a flat str -> str mapping
    [rest]     raw little-endian tensor data

Tensors are float32 ("F32") or float64 ("F64") arrays of any shape, including
0-d and zero-size ones.  The ``__metadata__`` mapping holds exactly these keys::

    "format":         "fastae"
    "format_version": "1"            (decimal integer, as a string)
    "kind":           the model class, e.g. "Autoencoder" or "VAE"
    "config":         json.dumps of a JSON object: the constructor parameters
    "state":          json.dumps of a JSON object: non-tensor fitted state

``config`` and ``state`` are strict JSON: no NaN or Infinity, object keys are
strings, tuples come back as lists.

This module knows nothing about models; model classes call :func:`write_model`
and :func:`read_model`.  Only numpy is imported at module import time;
safetensors is imported when a file is actually written or read.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import struct
from collections.abc import Mapping

import numpy as np

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SUPPORTED_FORMAT_VERSIONS",
    "write_model",
    "read_model",
]

FORMAT_NAME = "fastae"
FORMAT_VERSION = 1
# Versions this code can read.  A future version 2 writer would keep reading 1.
SUPPORTED_FORMAT_VERSIONS = (1,)

# Little-endian is what safetensors stores on disk, independent of the host.
_WRITE_DTYPES: dict[int, np.dtype] = {4: np.dtype("<f4"), 8: np.dtype("<f8")}
_READ_DTYPES: dict[str, np.dtype] = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_METADATA_KEYS = ("format", "format_version", "kind", "config", "state")
_VERSION_RE = re.compile(r"[0-9]+")


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def write_model(path, kind: str, config: dict, tensors: dict, state: dict) -> None:
    """Write a fastae model file to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.  Its directory must exist.
    kind : str
        Model class name stored in the metadata, e.g. ``"Autoencoder"``.
    config : dict
        JSON-serialisable constructor parameters (str keys; tuples are stored
        as lists; numpy scalars are stored as Python numbers; NaN/inf rejected).
    tensors : dict[str, numpy.ndarray]
        Name -> float32 or float64 array.  Any memory layout or byte order is
        accepted; the values are stored C-ordered and little-endian.
    state : dict
        JSON-serialisable non-tensor fitted state, same rules as ``config``.

    The file is written to a temporary file in the same directory, flushed and
    fsync'ed, then moved over ``path`` with :func:`os.replace`.  On any error
    the temporary file is removed and an existing file at ``path`` is left
    untouched.

    Raises
    ------
    TypeError
        Wrong argument types, non-str tensor names or JSON keys, non-numpy or
        non-float32/float64 tensors, values JSON cannot represent.
    ValueError
        Empty ``kind``, reserved or empty tensor name, NaN/inf in config/state.
    FileNotFoundError
        The directory of ``path`` does not exist.
    IsADirectoryError
        ``path`` is an existing directory.
    """
    path = _check_path(path)
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, got {type(kind).__name__}")
    if not kind:
        raise ValueError("kind must be a non-empty str, got ''")
    config_json = _dump_json_object(config, "config")
    state_json = _dump_json_object(state, "state")
    arrays = _prepare_tensors(tensors)

    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config": config_json,
        "state": state_json,
    }

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot write fastae model: directory {directory!r} does not exist",
            path,
        )
    if os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR,
            "cannot write fastae model: path is a directory, expected a file path",
            path,
        )

    import safetensors.numpy

    # Serialise before touching the filesystem, so a serialisation failure
    # cannot leave anything behind.
    blob = safetensors.numpy.save(arrays, metadata=metadata)
    atomic_write_bytes(path, blob)


def _check_path(path) -> str:
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if not path:
        raise ValueError("path must be a non-empty file path, got ''")
    return path


def _prepare_tensors(tensors) -> dict[str, np.ndarray]:
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a dict of name -> numpy array, got {type(tensors).__name__}")
    out = {}
    for name, arr in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__} key {name!r}")
        if not name:
            raise ValueError("tensor name must be a non-empty str, got ''")
        if name == "__metadata__":
            # safetensors would write this name into the header slot reserved
            # for metadata and produce a file that cannot be read back.
            raise ValueError("tensor name '__metadata__' is reserved by safetensors")
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"tensor {name!r} must be a numpy.ndarray of float32 or float64, got {type(arr).__name__}")
        if arr.dtype.kind != "f" or arr.dtype.itemsize not in _WRITE_DTYPES:
            raise TypeError(f"tensor {name!r} must have dtype float32 or float64, got {arr.dtype}")
        # safetensors.numpy reads the raw buffer behind the data pointer, so a
        # non-C-contiguous array (e.g. a transposed view W.T) would be saved
        # with the wrong element order, or past its end for strided views.
        # asarray(order="C") rather than ascontiguousarray, which turns 0-d
        # arrays into shape (1,).  The dtype also makes big-endian input
        # little-endian, the byte order safetensors stores.
        out[name] = np.asarray(arr, dtype=_WRITE_DTYPES[arr.dtype.itemsize], order="C")
    return out


def _dump_json_object(obj, what: str) -> str:
    if not isinstance(obj, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(obj).__name__}")
    # Walk the value ourselves rather than relying on json.dumps errors: json
    # does not say *where* the bad value is, and it silently turns int keys
    # into strings, which would not round-trip.
    clean = _to_json_value(obj, what)
    return json.dumps(clean, allow_nan=False, separators=(",", ":"))


def _to_json_value(value, where: str):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number (strict JSON has no NaN/inf), got {value!r}")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a {type(key).__name__} key {key!r}; JSON object keys must be str")
            out[key] = _to_json_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where} must be JSON-serialisable (None, bool, int, float, str, list, "
        f"tuple or dict), got {type(value).__name__}"
    )


_TMP_RE = re.compile(r"\.(?P<base>.+)\.[0-9a-f]{12}\.tmp")


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it (locked while it is written), fsync,
    rename over ``path``, fsync of the directory.

    A symbolic link is written through: its target is replaced and the link stays. An existing file keeps its
    permission bits (a new one gets the umask's, as ``open`` would). Temporaries left by a killed save to the same
    path (their lock died with the process) are removed first."""
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    base = os.path.basename(path)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    _remove_stale_temporaries(directory, base)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{base}.{os.urandom(6).hex()}.tmp")
        try:
            # Mode 0o666 lets the umask decide the final permissions, like a
            # plain open(path, "wb") would (tempfile.mkstemp forces 0o600).
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        break
    try:
        _lock(fd)
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)  # while still locked, so no cleanup can take it for debris
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _lock(fd) -> bool:
    """An exclusive, non-blocking lock on ``fd`` (released when it is closed or its process dies); False if
    another holds it, True on systems without ``fcntl`` (where nothing is ever taken for debris)."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Remove ``.<base>.<hex>.tmp`` files in ``directory`` that no live writer holds locked."""
    try:
        import fcntl  # noqa: F401  (without locks, a live writer's temporary cannot be told from debris)

        names = os.listdir(directory)
    except (ImportError, OSError):
        return
    for name in names:
        m = _TMP_RE.fullmatch(name)
        if m is None or m.group("base") != base:
            continue
        tmp = os.path.join(directory, name)
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(fd):
                os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable across a power loss.  Not possible on
    # Windows or some filesystems; the file data is already synced, so a
    # failure here only loses durability of the rename, never correctness.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


def read_model(path) -> tuple[str, dict, dict[str, np.ndarray], dict]:
    """Read a fastae model file written by :func:`write_model`.

    Returns
    -------
    (kind, config, tensors, state)
        ``kind`` str; ``config`` and ``state`` dicts decoded from JSON;
        ``tensors`` name -> float32/float64 array, each writable, C-contiguous
        and owning its memory (no view into the file).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        The file is not a readable safetensors file (empty, truncated, corrupt),
        is a safetensors file without fastae metadata, has an unsupported
        ``format_version``, has ``config``/``state`` that are not JSON objects,
        or holds a tensor that is not float32/float64.
    """
    path = _check_path(path)
    data, header = _read_bounded(path)

    from safetensors import SafetensorError, deserialize

    try:
        entries = deserialize(data)
    except SafetensorError as exc:
        raise ValueError(f"{path!r} is not a readable fastae model file: {exc}") from exc

    # safetensors validated the header but does not return the metadata; _read_bounded parsed it already
    metadata = header.get("__metadata__")
    metadata = metadata if isinstance(metadata, dict) else {}
    del data  # the per-tensor buffers in `entries` are separate copies

    fmt = metadata.get("format")
    if fmt != FORMAT_NAME:
        found = "missing" if fmt is None else f"{fmt!r}"
        raise ValueError(
            f"{path!r} is a safetensors file but not a fastae model: "
            f"metadata 'format' is {found}, expected {FORMAT_NAME!r}"
        )
    _check_version(metadata.get("format_version"), path)

    kind = metadata.get("kind")
    if not kind:
        found = "missing" if kind is None else "empty"
        raise ValueError(f"{path!r}: fastae metadata 'kind' is {found}")
    config = _load_json_object(metadata, "config", path)
    state = _load_json_object(metadata, "state", path)

    tensors = {}
    for name, info in sorted(entries, key=lambda e: e[0]):
        dtype = _READ_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(
                f"{path!r}: tensor {name!r} has dtype {info['dtype']}, expected F32 (float32) or F64 (float64)"
            )
        # astype copies, which gives a native-endian array that owns its
        # memory instead of a view on the buffer safetensors returned.
        view = np.frombuffer(info["data"], dtype=dtype).reshape(info["shape"])
        tensors[name] = view.astype(dtype.newbyteorder("="), order="C", copy=True)
    return kind, config, tensors, state


# safetensors' own limit on the JSON header; a model's header is a few kilobytes.
MAX_HEADER_BYTES = 100_000_000
_DTYPE_SIZES = {"F32": 4, "F64": 8}


def _read_bounded(path: str) -> tuple[bytes, dict]:
    """The whole file and its parsed JSON header, the body read only once the header's declared sizes are checked
    against the file's size: a regular
    file only (a FIFO, a device or a directory is refused before anything is read, so nothing can hang or grow
    without bound), whose header length and tensor extents fit in it exactly."""
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "fastae model file not found", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "expected a fastae model file, got a directory", path)
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a character device"
            if stat.S_ISCHR(st.st_mode)
            else "a block device"
            if stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise ValueError(f"{path!r} is {kind}, expected a regular fastae model file")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(
                f"{path!r} is not a readable fastae model file: {size} bytes, shorter than the 8-byte header length"
            )
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
            raise ValueError(
                f"{path!r} is not a readable fastae model file: its header declares {n} bytes, "
                f"but the file has {size - 8} after the length (and a header holds 2 to "
                f"{MAX_HEADER_BYTES})"
            )
        header_bytes = f.read(n)
        header = _parse_header(header_bytes, path)
        body = _declared_body_size(header, path)
        if 8 + n + body != size:
            raise ValueError(
                f"{path!r} is not a readable fastae model file: its header declares {body} bytes "
                f"of tensor data, but the file holds {size - 8 - n}"
            )
        rest = f.read(body + 1)
    if len(rest) != body:
        raise ValueError(f"{path!r} changed while it was read ({len(rest)} bytes of tensor data, expected {body})")
    return head + header_bytes + rest, header


def _parse_header(raw: bytes, path: str) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path!r} is not a readable fastae model file: bad header: {exc}") from None
    if not isinstance(header, dict):
        raise ValueError(
            f"{path!r} is not a readable fastae model file: its header is a "
            f"{type(header).__name__}, expected a JSON object"
        )
    return header


def _declared_body_size(header: dict, path: str) -> int:
    """The byte count the header's tensors cover, each extent checked to be its shape times its dtype's size and
    the extents to tile the body from 0 without gaps or overlaps."""
    extents = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        bad = f"{path!r} is not a readable fastae model file: tensor {name!r}"
        if not isinstance(info, dict):
            raise ValueError(f"{bad} is described by a {type(info).__name__}, expected an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPE_SIZES:
            shown = dtype if isinstance(dtype, str) else repr(dtype)
            raise ValueError(f"{bad} has dtype {shown}, expected F32 (float32) or F64 (float64)")
        if not isinstance(shape, list) or len(shape) > 8 or not all(type(d) is int and 0 <= d < 2**40 for d in shape):
            raise ValueError(f"{bad} has shape {shape!r}, expected a list of at most 8 non-negative integers")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets):
            raise ValueError(f"{bad} has data_offsets {offsets!r}, expected [begin, end]")
        nbytes = math.prod(shape) * _DTYPE_SIZES[dtype]
        if offsets[1] - offsets[0] != nbytes:
            raise ValueError(
                f"{bad} declares {offsets[1] - offsets[0]} bytes at {offsets}, but its shape "
                f"{shape} of {dtype} needs {nbytes}"
            )
        extents.append((offsets[0], offsets[1]))
    end = 0
    for begin, stop in sorted(extents):
        if begin != end:
            raise ValueError(
                f"{path!r} is not a readable fastae model file: its tensors' data do not tile the "
                f"body (a gap or an overlap at byte {min(begin, end)})"
            )
        end = stop
    return end


def _check_version(version, path: str) -> None:
    supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
    if version is None:
        raise ValueError(f"{path!r}: fastae metadata 'format_version' is missing (supported versions: {supported})")
    if not _VERSION_RE.fullmatch(version):
        raise ValueError(f"{path!r}: unknown fastae format_version {version!r} (supported versions: {supported})")
    number = int(version)
    if number in SUPPORTED_FORMAT_VERSIONS:
        return
    if number > max(SUPPORTED_FORMAT_VERSIONS):
        raise ValueError(
            f"{path!r}: fastae format_version {number} is newer than this fastae "
            f"can read (supported versions: {supported}); upgrade fastae"
        )
    raise ValueError(f"{path!r}: unknown fastae format_version {number} (supported versions: {supported})")


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _load_json_object(metadata: dict, key: str, path: str) -> dict:
    text = metadata.get(key)
    if text is None:
        raise ValueError(f"{path!r}: fastae metadata {key!r} is missing")
    if not isinstance(text, str):
        raise ValueError(f"{path!r}: fastae metadata {key!r} is a {type(text).__name__}, expected a JSON string")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path!r}: fastae metadata {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{path!r}: fastae metadata {key!r} must be a JSON object, got {type(value).__name__}")
    return value
