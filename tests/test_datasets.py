"""Tests for fastae.datasets: digits, and the MNIST IDX reader on synthetic files and (when present) real ones."""

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from fastae import datasets

N, SIDE = datasets.MNIST_TEST_SIZE, datasets.MNIST_SIDE
MNIST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- helpers ------------------------------------------------------------------------------------------------
def _idx_bytes(magic, dims, payload):
    return struct.pack(">i", magic) + struct.pack(f">{len(dims)}I", *dims) + bytes(payload)


def _write_gz(path, raw):
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(raw)


def _synthetic_images():
    # A pattern that uses every byte value 0..255, so scaling and the row order are both checked.
    return ((np.arange(N * SIDE * SIDE, dtype=np.int64) * 7) % 256).astype(np.uint8)


def _synthetic_labels():
    return (np.arange(N, dtype=np.int64) * 3 % 10).astype(np.uint8)


def _write_mnist(folder, images=None, labels=None):
    """Write a well-formed synthetic MNIST test set into ``folder``; ``images``/``labels`` override raw bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = _idx_bytes(2051, (N, SIDE, SIDE), _synthetic_images().tobytes())
    if labels is None:
        labels = _idx_bytes(2049, (N,), _synthetic_labels().tobytes())
    _write_gz(folder / datasets.MNIST_IMAGES, images)
    _write_gz(folder / datasets.MNIST_LABELS, labels)
    return folder


# --- digits -------------------------------------------------------------------------------------------------
def test_digits_shape_dtype_and_range():
    X, y = datasets.load_digits(return_labels=True)
    assert X.shape == (1797, 64)
    assert X.dtype == np.float64
    assert X.flags.c_contiguous
    assert X.min() == 0.0 and X.max() == 1.0  # pixels are 0..16, so /16 reaches 1 exactly
    # Every value is a multiple of 1/16: the scaling is pixels / 16, not a min-max rescale.
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    assert y.shape == (1797,) and y.dtype == np.int64
    assert sorted(np.unique(y)) == list(range(10))


def test_digits_without_labels_returns_the_same_array():
    X = datasets.load_digits()
    assert isinstance(X, np.ndarray)
    np.testing.assert_array_equal(X, datasets.load_digits(return_labels=True)[0])


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import raise ImportError
    with pytest.raises(ImportError, match=r"pip install fastae\[demo\]"):
        datasets.load_digits()


def test_return_labels_must_be_bool(tmp_path):
    with pytest.raises(TypeError, match="return_labels must be True or False, got 'yes'"):
        datasets.load_digits(return_labels="yes")
    with pytest.raises(TypeError, match="return_labels must be True or False"):
        datasets.load_mnist(_write_mnist(tmp_path), return_labels=1)


# --- MNIST on synthetic IDX files ---------------------------------------------------------------------------
def test_mnist_parses_synthetic_idx_files(tmp_path):
    folder = _write_mnist(tmp_path / "mnist")
    X, y = datasets.load_mnist(folder, return_labels=True)
    assert X.shape == (N, SIDE * SIDE) and X.dtype == np.float64
    np.testing.assert_array_equal(X, _synthetic_images().reshape(N, -1) / 255.0)
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(y, _synthetic_labels())
    assert y.dtype == np.int64
    np.testing.assert_array_equal(datasets.load_mnist(str(folder)), X)  # str paths work too


def test_mnist_found_through_environment_variable(tmp_path, monkeypatch):
    folder = _write_mnist(tmp_path / "elsewhere")
    monkeypatch.setenv(datasets.MNIST_ENV, str(folder))
    assert datasets.find_mnist() == folder
    np.testing.assert_array_equal(datasets.load_mnist(), _synthetic_images().reshape(N, -1) / 255.0)


def test_read_idx_small_file(tmp_path):
    path = tmp_path / "small.gz"
    payload = np.arange(2 * 3 * 4, dtype=np.uint8)
    _write_gz(path, _idx_bytes(2051, (2, 3, 4), payload.tobytes()))
    out = datasets.read_idx(path, 2051)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out.ravel(), payload)
    assert out.flags.writeable  # a copy, not a read-only view of the decompressed bytes


def test_truncated_images_name_file_and_byte_counts(tmp_path):
    full = _idx_bytes(2051, (N, SIDE, SIDE), _synthetic_images().tobytes())
    folder = _write_mnist(tmp_path, images=full[:-100])
    with pytest.raises(ValueError) as info:
        datasets.load_mnist(folder)
    msg = str(info.value)
    assert datasets.MNIST_IMAGES in msg and "truncated" in msg
    assert str(16 + N * SIDE * SIDE) in msg and str(16 + N * SIDE * SIDE - 100) in msg


def test_truncated_labels_name_file_and_byte_counts(tmp_path):
    full = _idx_bytes(2049, (N,), _synthetic_labels().tobytes())
    folder = _write_mnist(tmp_path, labels=full[:-1])
    datasets.load_mnist(folder)  # images alone are fine: labels are only read when asked for
    with pytest.raises(ValueError, match=rf"{datasets.MNIST_LABELS}.*expected {8 + N} bytes.*got {8 + N - 1}"):
        datasets.load_mnist(folder, return_labels=True)


def test_truncated_header(tmp_path):
    path = tmp_path / "header.gz"
    _write_gz(path, struct.pack(">i", 2051) + b"\x00\x00")
    with pytest.raises(ValueError, match=r"truncated IDX header: expected at least 16 bytes, got 6"):
        datasets.read_idx(path, 2051)


def test_trailing_bytes_rejected(tmp_path):
    path = tmp_path / "long.gz"
    _write_gz(path, _idx_bytes(2049, (3,), b"\x01\x02\x03\x04"))
    with pytest.raises(ValueError, match=r"trailing bytes: expected 11 bytes .* got 12"):
        datasets.read_idx(path, 2049)


def test_bad_magic(tmp_path):
    # The labels' magic where images belong: a swapped file must not be read as pixels.
    folder = _write_mnist(tmp_path, images=_idx_bytes(2049, (N,), bytes(N)))
    with pytest.raises(
        ValueError,
        match=rf"{datasets.MNIST_IMAGES}: bad IDX magic number: expected 2051.* "
        r"got 2049",
    ):
        datasets.load_mnist(folder)


def test_wrong_dimensions(tmp_path):
    folder = _write_mnist(tmp_path, images=_idx_bytes(2051, (N, 27, 29), bytes(N * 27 * 29)))
    with pytest.raises(
        ValueError,
        match=r"IDX dimensions \(10000, 27, 29\) differ from the expected "
        r"\(10000, 28, 28\)",
    ):
        datasets.load_mnist(folder)


def test_not_gzip(tmp_path):
    folder = _write_mnist(tmp_path)
    (folder / datasets.MNIST_IMAGES).write_bytes(b"this is not gzip data")
    with pytest.raises(ValueError, match=rf"{datasets.MNIST_IMAGES}: not a readable gzip file"):
        datasets.load_mnist(folder)


def test_labels_outside_0_9(tmp_path):
    folder = _write_mnist(tmp_path, labels=_idx_bytes(2049, (N,), bytes([10]) + bytes(N - 1)))
    with pytest.raises(ValueError, match="labels must be digits 0-9, found 10"):
        datasets.load_mnist(folder, return_labels=True)


def test_absent_folder_message(tmp_path):
    missing = tmp_path / "no-mnist-here"
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(missing)
    msg = str(info.value)
    assert "MNIST test set" in msg and "was not found" in msg
    assert str(missing) in msg
    assert datasets.MNIST_ENV in msg


def test_half_present_folder_counts_as_absent(tmp_path):
    folder = _write_mnist(tmp_path)
    (folder / datasets.MNIST_LABELS).unlink()
    with pytest.raises(FileNotFoundError, match="MNIST test set"):
        datasets.load_mnist(folder)


def test_environment_variable_is_obeyed_alone(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.MNIST_ENV, str(tmp_path / "wrong"))
    assert datasets.mnist_candidates() == [tmp_path / "wrong"]
    with pytest.raises(FileNotFoundError, match="wrong"):
        datasets.load_mnist()


def test_default_candidates_without_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.MNIST_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    repo = Path(datasets.__file__).resolve().parent.parent
    got = [c.resolve() for c in datasets.mnist_candidates()]
    assert got == [
        (repo / ".." / "shared" / "data" / "mnist").resolve(),
        (tmp_path / ".." / "shared" / "data" / "mnist").resolve(),
    ]


def test_path_must_be_pathlike():
    with pytest.raises(TypeError, match="path must be a str or os.PathLike folder, got int"):
        datasets.load_mnist(3)


# --- the real MNIST test set, when the shared folder is there ------------------------------------------------
_REAL = datasets.find_mnist()


@pytest.mark.skipif(
    _REAL is None,
    reason="MNIST test set not found (tried "
    + ", ".join(str(c) for c in datasets.mnist_candidates())
    + f"); it is optional: set {datasets.MNIST_ENV} to run this test",
)
def test_real_mnist():
    X, y = datasets.load_mnist(return_labels=True)
    assert X.shape == (10000, 784) and X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y, minlength=10).tolist() == MNIST_CLASS_COUNTS
