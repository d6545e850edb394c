"""Loaders for data that is available offline: scikit-learn's digits and the MNIST test set in IDX files.

Every loader returns ``float64`` rows scaled into [0, 1], ready for ``loss="bce"``.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

MNIST_ENV = "FASTAE_MNIST_DIR"
MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = "t10k-labels-idx1-ubyte.gz"
# The shared data folder sits beside the repository: <repo>/../shared/data/mnist.
_MNIST_RELATIVE = Path("..") / "shared" / "data" / "mnist"
_REPO_ROOT = Path(__file__).resolve().parent.parent

# IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte) and the number of dimensions.
IDX_IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dims (n, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dim (n,)
MNIST_TEST_SIZE = 10000
MNIST_SIDE = 28


def load_digits(return_labels=False):
    """scikit-learn's 8x8 handwritten digits, scaled into [0, 1].

    The data ships inside scikit-learn's wheel, so no download happens; scikit-learn is an optional dependency
    (the ``demo`` extra), and without it this raises ``ImportError``.

    Parameters
    ----------
    return_labels : bool, default=False
        Whether to return the digit classes too.

    Returns
    -------
    X : ndarray of shape (1797, 64)
        float64 ``pixels / 16`` in [0, 1].
    y : ndarray of shape (1797,)
        The int64 digit classes 0-9; returned (as ``(X, y)``) only with ``return_labels=True``.
    """
    _check_flag("return_labels", return_labels)
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:
        raise ImportError(
            "load_digits needs scikit-learn, which is not installed; install it with "
            "`pip install fastae[demo]` (or `pip install scikit-learn`)"
        ) from exc
    bunch = _sk_load_digits()
    # The digits' pixels are counts 0..16 (of a 4x4 block of the 32x32 original).
    X = np.ascontiguousarray(bunch.data, dtype=np.float64) / 16.0
    if return_labels:
        return X, np.asarray(bunch.target, dtype=np.int64)
    return X


def mnist_candidates(path=None):
    """The folders :func:`load_mnist` tries, in order.

    Parameters
    ----------
    path : str or os.PathLike or None, default=None
        A folder: if given, it is the only candidate.

    Returns
    -------
    folders : list of pathlib.Path
        ``[path]`` if ``path`` is given; else ``[FASTAE_MNIST_DIR]`` if that environment variable is set (and only
        it); else ``<repository>/../shared/data/mnist`` and then ``../shared/data/mnist`` relative to the current
        directory (once, if they are the same folder).
    """
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike folder, got {type(path).__name__}")
        return [Path(path)]
    env = os.environ.get(MNIST_ENV)
    if env:
        # An explicit setting is obeyed alone: falling back to another copy would hide a wrong setting.
        return [Path(env)]
    candidates = [_REPO_ROOT / _MNIST_RELATIVE, Path.cwd() / _MNIST_RELATIVE]
    unique = []
    for c in candidates:
        if c.resolve() not in [u.resolve() for u in unique]:
            unique.append(c)
    return unique


def find_mnist(path=None):
    """The first folder of :func:`mnist_candidates` that holds both MNIST test-set files.

    Parameters
    ----------
    path : str or os.PathLike or None, default=None
        As in :func:`mnist_candidates`.

    Returns
    -------
    folder : pathlib.Path or None
        The folder holding both ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``, or ``None``.
    """
    for folder in mnist_candidates(path):
        if (folder / MNIST_IMAGES).is_file() and (folder / MNIST_LABELS).is_file():
            return folder
    return None


def load_mnist(path=None, return_labels=False):
    """The MNIST test set, scaled into [0, 1], rows in file order.

    Reads ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (gzip-compressed IDX files) from
    ``path``; without ``path`` from the folder in the environment variable ``FASTAE_MNIST_DIR`` if set, else from
    ``../shared/data/mnist`` beside the repository or else relative to the current directory.

    The IDX header is checked (magic 2051 for images with dims 10000x28x28, 2049 for labels with 10000 items)
    and so is the payload size: a wrong, truncated or padded file raises ``ValueError`` naming the file. A
    missing file raises ``FileNotFoundError`` listing the folders tried.

    Parameters
    ----------
    path : str or os.PathLike or None, default=None
        The folder holding both files; ``None`` searches :func:`mnist_candidates`.
    return_labels : bool, default=False
        Whether to return the classes too.

    Returns
    -------
    X : ndarray of shape (10000, 784)
        float64 ``pixels / 255`` in [0, 1].
    y : ndarray of shape (10000,)
        The int64 classes 0-9; returned (as ``(X, y)``) only with ``return_labels=True``.
    """
    _check_flag("return_labels", return_labels)
    folder = find_mnist(path)
    if folder is None:
        tried = "\n".join(f"  - {c}" for c in mnist_candidates(path))
        raise FileNotFoundError(
            f"the MNIST test set ({MNIST_IMAGES} and {MNIST_LABELS}) was not found. Folders tried:\n{tried}\n"
            f"Point fastae to the folder holding both files with load_mnist(path=...) or the environment "
            f"variable {MNIST_ENV}=/path/to/mnist. MNIST is optional: only loaders, tests and benchmarks that "
            f"ask for it need it."
        )
    images = read_idx(folder / MNIST_IMAGES, IDX_IMAGES_MAGIC, (MNIST_TEST_SIZE, MNIST_SIDE, MNIST_SIDE))
    X = images.reshape(MNIST_TEST_SIZE, MNIST_SIDE * MNIST_SIDE).astype(np.float64) / 255.0
    if not return_labels:
        return X
    labels = read_idx(folder / MNIST_LABELS, IDX_LABELS_MAGIC, (MNIST_TEST_SIZE,))
    if labels.max() > 9:
        raise ValueError(f"{folder / MNIST_LABELS}: labels must be digits 0-9, found {int(labels.max())}")
    return X, labels.astype(np.int64)


def read_idx(file, magic, shape=None):
    """The uint8 array of a gzip-compressed IDX file.

    IDX layout (big-endian): a 4-byte magic ``0x0000 08 D`` (unsigned bytes, ``D`` dimensions, so 2049 for
    ``D = 1`` and 2051 for ``D = 3``), ``D`` 4-byte sizes, then ``prod(sizes)`` bytes of data. The magic must equal
    ``magic``; with ``shape`` the sizes must equal it; the payload must be exactly ``prod(sizes)`` bytes. Any
    mismatch, or a file that is not readable gzip, raises ``ValueError`` naming the file.

    Parameters
    ----------
    file : str or os.PathLike
        The ``.gz`` file.
    magic : int
        The expected magic number; its low byte is the number of dimensions ``D``.
    shape : tuple of int or None, default=None
        The expected sizes; ``None`` accepts any.

    Returns
    -------
    data : ndarray of uint8 of shape sizes
        The payload, a writeable array of its own.
    """
    file = Path(file)
    try:
        with gzip.open(file, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a cut-off stream is an EOFError
        raise ValueError(f"{file}: not a readable gzip file ({exc})") from exc
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{file}: truncated IDX header: expected at least {header} bytes, got {len(raw)}")
    (found,) = struct.unpack(">i", raw[:4])
    if found != magic:
        raise ValueError(f"{file}: bad IDX magic number: expected {magic} (uint8, {ndim} dims), got {found}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if shape is not None and tuple(dims) != tuple(shape):
        raise ValueError(f"{file}: IDX dimensions {tuple(dims)} differ from the expected {tuple(shape)}")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(
            f"{file}: {what}: expected {expected} bytes ({header}-byte header + data for dims "
            f"{tuple(dims)}), got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
