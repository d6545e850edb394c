"""Tests for fastae.io, the low-level model-file format."""

import ast
import json
import os
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("safetensors")
import safetensors.numpy  # noqa: E402

from fastae import io as fio  # noqa: E402

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _rng():
    return np.random.default_rng(12345)


def _valid_metadata(**overrides):
    """fastae metadata; an override of None removes that key."""
    md = {
        "format": "fastae",
        "format_version": "1",
        "kind": "Autoencoder",
        "config": json.dumps({"n_hidden": 3}),
        "state": json.dumps({"n_iter_": 7}),
    }
    for key, value in overrides.items():
        if value is None:
            md.pop(key, None)
        else:
            md[key] = value
    return md


def _write_raw(path, tensors, metadata):
    """Write a safetensors file bypassing fastae.io (to craft bad files)."""
    Path(path).write_bytes(safetensors.numpy.save(tensors, metadata=metadata))


def _write_good(path):
    fio.write_model(
        path,
        "Autoencoder",
        {"n_hidden": 4, "activation": "relu"},
        {"W": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4)},
        {"n_iter_": 10, "loss_curve_": [1.5, 0.75]},
    )


def _bits(a):
    """Exact bit pattern of an array (distinguishes -0.0 and NaN payloads)."""
    return np.ascontiguousarray(a).tobytes()


def _assert_same_array(got, expected):
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype.newbyteorder("=")
    assert got.shape == expected.shape
    assert _bits(got) == _bits(expected.astype(got.dtype))


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


def test_round_trip_bit_exact_float32_float64(tmp_path):
    rng = _rng()
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, 5e-324, 1.0 / 3.0]
    tensors = {
        "w32": rng.standard_normal((5, 7)).astype(np.float32),
        "w64": rng.standard_normal((3, 2, 4)),
        "special32": np.array(special, dtype=np.float32),
        "special64": np.array(special, dtype=np.float64),
    }
    path = tmp_path / "m.fae"
    fio.write_model(path, "VAE", {"a": 1}, tensors, {"b": 2})
    kind, config, got, state = fio.read_model(path)
    assert kind == "VAE"
    assert config == {"a": 1}
    assert state == {"b": 2}
    assert set(got) == set(tensors)
    for name, arr in tensors.items():
        _assert_same_array(got[name], arr)
    assert got["w32"].dtype == np.float32
    assert got["w64"].dtype == np.float64


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda W: W.T, id="transposed-view"),
        pytest.param(lambda W: np.asfortranarray(W), id="fortran-order"),
        pytest.param(lambda W: W[::2, 1::3], id="strided-view"),
        pytest.param(lambda W: W.astype(W.dtype.newbyteorder(">")), id="big-endian"),
        pytest.param(lambda W: W.T.astype(W.dtype.newbyteorder(">")), id="big-endian-transposed"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_non_contiguous_and_byte_order(tmp_path, make, dtype):
    W = _rng().standard_normal((6, 9)).astype(dtype)
    arr = make(W)
    expected = np.array(arr, dtype=dtype, order="C")  # logical values
    path = tmp_path / "m.fae"
    fio.write_model(path, "Autoencoder", {}, {"W": arr}, {})
    got = fio.read_model(path)[2]["W"]
    assert got.dtype == np.dtype(dtype)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert _bits(got) == _bits(expected)


def test_input_arrays_not_modified(tmp_path):
    W = _rng().standard_normal((4, 5)).astype(np.float32)
    Wt = W.T
    before = W.copy()
    fio.write_model(tmp_path / "m.fae", "Autoencoder", {}, {"Wt": Wt}, {})
    assert _bits(W) == _bits(before)
    assert Wt.base is W


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 5), ()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_zero_size_and_scalar(tmp_path, shape, dtype):
    arr = np.full(shape, 2.5, dtype=dtype)
    path = tmp_path / "m.fae"
    fio.write_model(path, "Autoencoder", {}, {"x": arr}, {})
    got = fio.read_model(path)[2]["x"]
    assert got.shape == shape
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, arr)


def test_round_trip_empty_tensors_dict(tmp_path):
    path = tmp_path / "m.fae"
    fio.write_model(path, "Autoencoder", {"x": 1}, {}, {"fitted": False})
    assert fio.read_model(path) == ("Autoencoder", {"x": 1}, {}, {"fitted": False})


def test_returned_arrays_writable_contiguous_owned(tmp_path):
    path = tmp_path / "m.fae"
    fio.write_model(
        path,
        "Autoencoder",
        {},
        {"a": np.ones((3, 4), np.float32).T, "b": np.zeros(5), "e": np.zeros((0, 2))},
        {},
    )
    tensors = fio.read_model(path)[2]
    for name, arr in tensors.items():
        assert type(arr) is np.ndarray, name
        assert arr.flags.writeable, name
        assert arr.flags.c_contiguous, name
        assert arr.flags.owndata, name
        assert arr.base is None, name
        assert arr.dtype.isnative, name
    tensors["a"][0, 0] = 42.0  # would raise on a read-only buffer view
    assert tensors["a"][0, 0] == 42.0
    # The file is not affected by writing to a returned array.
    assert fio.read_model(path)[2]["a"][0, 0] == 1.0


def test_config_and_state_round_trip(tmp_path):
    config = {
        "hidden_layer_sizes": (64, 32, (8, 4)),  # tuples come back as lists
        "activation": "tanh",
        "alpha": 1e-4,
        "tied": True,
        "random_state": None,
        "schedule": {"kind": "step", "milestones": [10, 20], "gamma": 0.5},
        "name": "auto-encodeur \u00e9\u00e8 \u6f22\u5b57",
        "big": 2**70,
        "np_int": np.int64(7),
        "np_float": np.float32(0.25),
        "np_bool": np.bool_(False),
    }
    state = {
        "n_iter_": 12,
        "loss_curve_": [3.0, 2.5, 2.25],
        "best_loss_": -0.0,
        "classes": [[1, 2], [], [[3]]],
        "empty": {},
    }
    path = tmp_path / "m.fae"
    fio.write_model(path, "Autoencoder", config, {}, state)
    kind, got_config, _, got_state = fio.read_model(path)
    assert kind == "Autoencoder"
    assert got_config == {
        "hidden_layer_sizes": [64, 32, [8, 4]],
        "activation": "tanh",
        "alpha": 1e-4,
        "tied": True,
        "random_state": None,
        "schedule": {"kind": "step", "milestones": [10, 20], "gamma": 0.5},
        "name": "auto-encodeur \u00e9\u00e8 \u6f22\u5b57",
        "big": 2**70,
        "np_int": 7,
        "np_float": 0.25,
        "np_bool": False,
    }
    # numpy scalars are stored as plain Python / JSON values.
    assert type(got_config["np_int"]) is int
    assert type(got_config["np_float"]) is float
    assert type(got_config["np_bool"]) is bool
    assert got_state == state
    assert str(got_state["best_loss_"]) == "-0.0"


def test_metadata_layout_exact(tmp_path):
    path = tmp_path / "m.fae"
    fio.write_model(path, "VAE", {"latent": (2, 3)}, {"W": np.zeros((2, 2), np.float32)}, {"n": 1})
    with safetensors.safe_open(str(path), framework="np") as f:
        md = f.metadata()
        keys = list(f.keys())
    assert md == {
        "format": "fastae",
        "format_version": "1",
        "kind": "VAE",
        "config": md["config"],
        "state": md["state"],
    }
    assert set(md) == {"format", "format_version", "kind", "config", "state"}
    assert json.loads(md["config"]) == {"latent": [2, 3]}
    assert json.loads(md["state"]) == {"n": 1}
    assert keys == ["W"]
    assert fio.FORMAT_NAME == "fastae"
    assert fio.FORMAT_VERSION == 1
    # Plain safetensors readers see the tensors too: the file is just data.
    np.testing.assert_array_equal(safetensors.numpy.load_file(str(path))["W"], np.zeros((2, 2)))


def test_accepts_str_and_pathlike(tmp_path):
    _write_good(str(tmp_path / "s.fae"))
    _write_good(tmp_path / "p.fae")
    assert fio.read_model(str(tmp_path / "p.fae"))[0] == "Autoencoder"
    assert fio.read_model(tmp_path / "s.fae")[0] == "Autoencoder"


def test_overwrite_replaces_contents(tmp_path):
    path = tmp_path / "m.fae"
    _write_good(path)
    fio.write_model(path, "VAE", {"z": 2}, {"mu": np.ones(3)}, {})
    kind, config, tensors, _ = fio.read_model(path)
    assert (kind, config, list(tensors)) == ("VAE", {"z": 2}, ["mu"])
    assert os.listdir(tmp_path) == ["m.fae"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_file_gets_normal_permissions(tmp_path):
    # Same mode as a file created by plain open(): umask-based, not the 0o600
    # a tempfile.mkstemp-based writer would leave behind.
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    path = tmp_path / "m.fae"
    _write_good(path)
    assert (path.stat().st_mode & 0o777) == (reference.stat().st_mode & 0o777)


# ---------------------------------------------------------------------------
# atomicity
# ---------------------------------------------------------------------------


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in Path(directory).iterdir()}


def test_rejected_tensor_leaves_existing_file_untouched(tmp_path):
    path = tmp_path / "m.fae"
    _write_good(path)
    before = _snapshot(tmp_path)
    with pytest.raises(TypeError, match=r"tensor 'bad' must have dtype float32 or float64, got int64"):
        fio.write_model(path, "VAE", {}, {"ok": np.ones(3), "bad": np.arange(3, dtype=np.int64)}, {})
    assert _snapshot(tmp_path) == before


def test_serialiser_failure_leaves_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "m.fae"
    _write_good(path)
    before = _snapshot(tmp_path)

    def boom(*args, **kwargs):
        raise RuntimeError("injected serialiser failure")

    monkeypatch.setattr(safetensors.numpy, "save", boom)
    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    with pytest.raises(RuntimeError, match="injected serialiser failure"):
        fio.write_model(path, "VAE", {}, {"x": np.ones(3)}, {})
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("exc_type", [OSError, KeyboardInterrupt])
@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_failure_during_write_leaves_existing_file_and_no_temp(tmp_path, monkeypatch, target, exc_type):
    path = tmp_path / "m.fae"
    _write_good(path)
    before = _snapshot(tmp_path)
    seen = []
    real = getattr(os, target)

    def failing(*args, **kwargs):
        # The temporary file exists (and holds data) at this point.
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        raise exc_type("injected failure in os." + target)

    monkeypatch.setattr(os, target, failing)
    with pytest.raises(exc_type, match="injected failure"):
        fio.write_model(path, "VAE", {"new": True}, {"x": np.ones(100)}, {})
    monkeypatch.setattr(os, target, real)
    assert _snapshot(tmp_path) == before
    # The failure really happened mid-write, with a temp file next to the target.
    assert seen and len(seen[0]) == 2 and "m.fae" in seen[0]
    assert fio.read_model(path)[0] == "Autoencoder"


def test_failure_during_write_without_existing_file_creates_nothing(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="disk full"):
        _write_good(tmp_path / "m.fae")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# write_model: bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"kind": 3}, TypeError, r"kind must be a str, got int"),
        ({"kind": ""}, ValueError, r"kind must be a non-empty str"),
        ({"config": [("a", 1)]}, TypeError, r"config must be a dict, got list"),
        ({"state": None}, TypeError, r"state must be a dict, got NoneType"),
        ({"config": {"lr": float("nan")}}, ValueError, r"config\['lr'\] must be a finite number.*nan"),
        ({"state": {"hist": [1.0, float("inf")]}}, ValueError, r"state\['hist'\]\[1\] must be a finite number.*inf"),
        ({"config": {"a": {"b": np.float64(-np.inf)}}}, ValueError, r"config\['a'\]\['b'\] must be a finite"),
        ({"config": {1: "x"}}, TypeError, r"config has a int key 1; JSON object keys must be str"),
        ({"state": {"m": {(1, 2): 3}}}, TypeError, r"state\['m'\] has a tuple key \(1, 2\)"),
        ({"config": {"f": object()}}, TypeError, r"config\['f'\] must be JSON-serialisable.*got object"),
        ({"state": {"w": np.ones(3)}}, TypeError, r"state\['w'\] must be JSON-serialisable.*got ndarray"),
        ({"state": {"s": {1, 2}}}, TypeError, r"state\['s'\] must be JSON-serialisable.*got set"),
        ({"tensors": [np.ones(2)]}, TypeError, r"tensors must be a dict of name -> numpy array, got list"),
        ({"tensors": {0: np.ones(2)}}, TypeError, r"tensor names must be str, got int key 0"),
        ({"tensors": {"": np.ones(2)}}, ValueError, r"tensor name must be a non-empty str"),
        ({"tensors": {"__metadata__": np.ones(2)}}, ValueError, r"'__metadata__' is reserved"),
        ({"tensors": {"W": [1.0, 2.0]}}, TypeError, r"tensor 'W' must be a numpy.ndarray .* got list"),
        ({"tensors": {"W": 1.0}}, TypeError, r"tensor 'W' must be a numpy.ndarray .* got float"),
        (
            {"tensors": {"W": np.ones(2, np.float16)}},
            TypeError,
            r"tensor 'W' must have dtype float32 or float64, got float16",
        ),
        ({"tensors": {"W": np.ones(2, np.int32)}}, TypeError, r"tensor 'W' .* got int32"),
        ({"tensors": {"W": np.ones(2, np.complex64)}}, TypeError, r"tensor 'W' .* got complex64"),
        ({"tensors": {"W": np.ones(2, bool)}}, TypeError, r"tensor 'W' .* got bool"),
        ({"tensors": {"W": np.array([1.0], dtype=object)}}, TypeError, r"tensor 'W' .* got object"),
        ({"path": 123}, TypeError, r"path must be a str or os.PathLike, got int"),
        ({"path": b"m.fae"}, TypeError, r"path must be a str or os.PathLike, got bytes"),
        ({"path": ""}, ValueError, r"path must be a non-empty file path"),
    ],
)
def test_write_rejects_bad_input(tmp_path, kwargs, exc, match):
    args = {
        "path": tmp_path / "m.fae",
        "kind": "Autoencoder",
        "config": {},
        "tensors": {"W": np.ones((2, 2))},
        "state": {},
    }
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fio.write_model(**args)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_directory(tmp_path):
    path = tmp_path / "no_such_dir" / "m.fae"
    with pytest.raises(FileNotFoundError, match=r"directory .*no_such_dir.* does not exist"):
        _write_good(path)
    assert not (tmp_path / "no_such_dir").exists()


def test_write_onto_directory_is_isadirectoryerror(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(IsADirectoryError, match=r"path is a directory"):
        _write_good(target)
    assert target.is_dir() and (target / "keep").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


# ---------------------------------------------------------------------------
# read_model: bad files
# ---------------------------------------------------------------------------


def test_read_missing_file(tmp_path):
    path = tmp_path / "missing.fae"
    with pytest.raises(FileNotFoundError, match=r"fastae model file not found: .*missing\.fae"):
        fio.read_model(path)


def test_read_directory_is_isadirectoryerror(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"expected a fastae model file, got a directory"):
        fio.read_model(tmp_path)


def test_read_bad_path_type():
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike, got float"):
        fio.read_model(1.5)


def test_read_zero_length_file(tmp_path):
    path = tmp_path / "empty.fae"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.fae' is not a readable fastae model file: 0 bytes, shorter than"):
        fio.read_model(path)


def _good_bytes(tmp_path):
    src = tmp_path / "src.fae"
    fio.write_model(
        src,
        "Autoencoder",
        {"n_hidden": 4},
        {"W": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4)},
        {"n_iter_": 3},
    )
    data = src.read_bytes()
    src.unlink()
    (n,) = struct.unpack("<Q", data[:8])
    return data, n


def _cut_points(n, size):
    return {
        "inside-length-1": 1,
        "inside-length-7": 7,
        "length-only": 8,
        "inside-header-start": 9,
        "inside-header-middle": 8 + n // 2,
        "inside-header-end": 8 + n - 1,
        "header-only": 8 + n,
        "inside-data": 8 + n + 5,
        "last-byte-missing": size - 1,
    }


@pytest.mark.parametrize("where", list(_cut_points(100, 200)))
def test_read_truncated_file(tmp_path, where):
    data, n = _good_bytes(tmp_path)
    cut = _cut_points(n, len(data))[where]
    assert 0 < cut < len(data)
    path = tmp_path / "cut.fae"
    path.write_bytes(data[:cut])
    # Refused from the sizes alone, before the body is read: the header's declared lengths exceed the file.
    with pytest.raises(ValueError, match=r"cut\.fae' is not a readable fastae model file: .*(shorter|declares)"):
        fio.read_model(path)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is a text file, not a model\n", id="text"),
        pytest.param(struct.pack("<Q", 2**62) + b"{}", id="huge-header-length"),
        pytest.param(struct.pack("<Q", 4) + b"\xff\xfe{}", id="non-utf8-header"),
        pytest.param(struct.pack("<Q", 2) + b"[]", id="header-not-object"),
        pytest.param(struct.pack("<Q", 5) + b'{"a":', id="header-bad-json"),
    ],
)
def test_read_garbage(tmp_path, content):
    path = tmp_path / "junk.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"junk\.bin' is not a readable fastae model file: "):
        fio.read_model(path)


def test_read_corrupt_header_offsets(tmp_path):
    data, n = _good_bytes(tmp_path)
    header = data[8 : 8 + n]
    assert b'"data_offsets":[0,' in header
    bad = header.replace(b'"data_offsets":[0,', b'"data_offsets":[1,', 1)
    path = tmp_path / "corrupt.fae"
    path.write_bytes(data[:8] + bad + data[8 + n :])
    with pytest.raises(ValueError, match=r"is not a readable fastae model file: "):
        fio.read_model(path)


def test_read_foreign_safetensors_without_metadata(tmp_path):
    path = tmp_path / "torch_like.safetensors"
    safetensors.numpy.save_file({"weight": np.ones((2, 2), np.float32)}, str(path))
    with pytest.raises(
        ValueError,
        match=r"is a safetensors file but not a fastae model: metadata 'format' is missing",
    ):
        fio.read_model(path)


def test_read_foreign_safetensors_with_other_format(tmp_path):
    path = tmp_path / "torch.safetensors"
    _write_raw(path, {"weight": np.ones(2, np.float32)}, {"format": "pt"})
    with pytest.raises(
        ValueError,
        match=r"is a safetensors file but not a fastae model: metadata 'format' is 'pt', expected 'fastae'",
    ):
        fio.read_model(path)


@pytest.mark.parametrize(
    "version, match",
    [
        ("2", r"format_version 2 is newer than this fastae can read \(supported versions: 1\)"),
        ("10", r"format_version 10 is newer"),
        ("0", r"unknown fastae format_version 0 \(supported versions: 1\)"),
        ("abc", r"unknown fastae format_version 'abc' \(supported versions: 1\)"),
        (" 1", r"unknown fastae format_version ' 1'"),
        ("1.0", r"unknown fastae format_version '1.0'"),
        ("", r"unknown fastae format_version ''"),
        (None, r"'format_version' is missing \(supported versions: 1\)"),
    ],
)
def test_read_unsupported_format_version(tmp_path, version, match):
    path = tmp_path / "m.fae"
    md = _valid_metadata(format_version=version)
    _write_raw(path, {"W": np.ones(2)}, md)
    with pytest.raises(ValueError, match=match):
        fio.read_model(path)


def test_crafted_valid_file_is_readable(tmp_path):
    # Guards the negative tests below: they fail only because of what they change.
    path = tmp_path / "m.fae"
    _write_raw(path, {"W": np.ones(2)}, _valid_metadata())
    kind, config, tensors, state = fio.read_model(path)
    assert (kind, config, state) == ("Autoencoder", {"n_hidden": 3}, {"n_iter_": 7})
    np.testing.assert_array_equal(tensors["W"], np.ones(2))


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"kind": None}, r"fastae metadata 'kind' is missing"),
        ({"kind": ""}, r"fastae metadata 'kind' is empty"),
        ({"config": None}, r"fastae metadata 'config' is missing"),
        ({"state": None}, r"fastae metadata 'state' is missing"),
        ({"config": "{not json"}, r"fastae metadata 'config' is not valid JSON"),
        ({"state": '{"a": 1'}, r"fastae metadata 'state' is not valid JSON"),
        ({"state": '{"loss": NaN}'}, r"fastae metadata 'state' is not valid JSON: non-standard JSON constant NaN"),
        ({"config": '{"x": -Infinity}'}, r"'config' is not valid JSON: non-standard JSON constant -Infinity"),
        ({"config": "[1, 2]"}, r"fastae metadata 'config' must be a JSON object, got list"),
        ({"state": "null"}, r"fastae metadata 'state' must be a JSON object, got NoneType"),
        ({"state": '"text"'}, r"fastae metadata 'state' must be a JSON object, got str"),
    ],
)
def test_read_bad_metadata(tmp_path, overrides, match):
    path = tmp_path / "m.fae"
    _write_raw(path, {"W": np.ones(2)}, _valid_metadata(**overrides))
    with pytest.raises(ValueError, match=match):
        fio.read_model(path)


@pytest.mark.parametrize(
    "arr, code",
    [
        (np.ones(3, np.int32), "I32"),
        (np.ones(3, np.float16), "F16"),
        (np.ones(3, np.uint8), "U8"),
        (np.ones(3, bool), "BOOL"),
    ],
)
def test_read_rejects_non_float_tensor(tmp_path, arr, code):
    path = tmp_path / "m.fae"
    _write_raw(path, {"W": np.ones(2, np.float32), "steps": arr}, _valid_metadata())
    with pytest.raises(
        ValueError, match=rf"tensor 'steps' has dtype {code}, expected F32 \(float32\) or F64 \(float64\)"
    ):
        fio.read_model(path)


# ---------------------------------------------------------------------------
# project rules
# ---------------------------------------------------------------------------


def test_module_imports_only_numpy_and_stdlib_and_never_pickle():
    source = Path(fio.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module.split(".")[0])
    allowed_third_party = {"numpy"}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    assert top_level - stdlib <= allowed_third_party, top_level
    # safetensors is imported lazily, inside the functions.
    assert "safetensors" not in top_level
    assert "pickle" not in source and "allow_pickle" not in source
    assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree))


# ---------------------------------------------------------------------------
# bounded reading: only regular files, sizes checked before the body is read
# ---------------------------------------------------------------------------


def _refused_quickly(path, match):
    """read_model(path) raises ValueError matching ``match`` within a few seconds (a hang fails the test)."""
    import threading

    caught = []
    worker = threading.Thread(target=lambda: caught.append(_raises(path)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), f"read_model({path}) did not return"
    assert isinstance(caught[0], ValueError) and re.search(match, str(caught[0])), caught[0]


def _raises(path):
    try:
        fio.read_model(path)
    except Exception as exc:  # returned to the test thread, which checks its type
        return exc
    return None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_read_refuses_a_fifo_without_opening_it(tmp_path):
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    _refused_quickly(fifo, r"is a FIFO, expected a regular fastae model file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_read_refuses_a_device():
    _refused_quickly("/dev/zero", r"is a character device, expected a regular fastae model file")


def test_read_refuses_a_large_sparse_file_from_its_first_bytes(tmp_path):
    """3 GB of zeros (sparse: no disk is used) declares a 0-byte header: refused after reading 8 bytes."""
    import tracemalloc

    path = tmp_path / "zeros.fae"
    with open(path, "wb") as f:
        f.truncate(3 * 2**30)
    tracemalloc.start()
    try:
        _refused_quickly(path, r"its header declares 0 bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes allocated to refuse it"


def test_read_refuses_declared_sizes_that_do_not_fit_the_file(tmp_path):
    data, n = _good_bytes(tmp_path)
    header = json.loads(data[8 : 8 + n])
    name = next(k for k in header if k != "__metadata__")
    path = tmp_path / "lie.fae"
    # a tensor claiming far more data than the file holds
    size = {"F32": 4, "F64": 8}[header[name]["dtype"]]
    header[name]["shape"] = [2**30]
    header[name]["data_offsets"] = [0, size * 2**30]
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    _refused_quickly(path, r"declares .* bytes of tensor data, but the file holds|do not tile")
    # trailing bytes after the declared tensors
    path.write_bytes(data + b"\0" * 16)
    _refused_quickly(path, r"bytes of tensor data, but the file holds")
    # a deeply nested header is a ValueError, not a RecursionError
    deep = b"[" * 100000 + b"]" * 100000
    path.write_bytes(struct.pack("<Q", len(deep)) + deep)
    _refused_quickly(path, r"bad header|expected a JSON object")


# ---------------------------------------------------------------------------
# writes clean up after themselves, write through symlinks, keep permissions
# ---------------------------------------------------------------------------


def _save_one(path, value=1.0):
    fio.write_model(path, "Autoencoder", {"v": value}, {"W": np.full(3, value, np.float32)}, {})


def test_a_killed_saves_temporaries_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "m.fae"
    debris = [tmp_path / f".m.fae.{i:012x}.tmp" for i in range(3)]
    for d in debris:
        d.write_bytes(b"partial")  # what kill -9 leaves: nobody holds its lock any more
    other = tmp_path / ".other.fae.0123456789ab.tmp"
    other.write_bytes(b"another path's")
    _save_one(path)
    assert not any(d.exists() for d in debris)
    assert other.exists(), "only the temporaries of this path are removed"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.fae.0123456789ab.tmp", "m.fae"])


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_live_writers_temporary_is_left_alone(tmp_path):
    import fcntl

    live = tmp_path / ".m.fae.0000000000aa.tmp"
    with open(live, "wb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a save in progress holds it
        _save_one(tmp_path / "m.fae")
        assert live.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_save_killed_mid_write_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    """A child saves over a complete file and is killed with SIGKILL while its temporary is written (its fsync
    is made to wait, so the kill lands there every time); the old file stays complete, and the next save removes
    the children's temporaries."""
    import subprocess

    path = tmp_path / "m.fae"
    _save_one(path, 1.0)
    code = (
        f"import os, sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "import numpy as np; from fastae import io\n"
        "os.fsync = lambda fd: (print('writing', flush=True), time.sleep(60))\n"
        f"io.write_model({str(path)!r}, 'Autoencoder', {{'v': 9.0}}, {{'W': np.zeros(2**20, np.float32)}}, {{}})\n"
    )
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "writing"
        child.kill()
        child.wait()
        child.stdout.close()
    assert len(list(tmp_path.glob(".m.fae.*.tmp"))) == 1, "each save removed the killed one's before it"
    assert fio.read_model(path)[1] == {"v": 1.0}  # never a half-written model
    _save_one(path, 2.0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.fae"]
    assert fio.read_model(path)[1] == {"v": 2.0}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_save_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real.fae"
    _save_one(target, 1.0)
    link = tmp_path / "link.fae"
    os.symlink(target, link)
    _save_one(link, 2.0)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert fio.read_model(target)[1] == {"v": 2.0}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_save_keeps_an_existing_files_permissions(tmp_path):
    path = tmp_path / "m.fae"
    _save_one(path)
    os.chmod(path, 0o600)
    _save_one(path, 3.0)
    assert (os.stat(path).st_mode & 0o777) == 0o600
    assert fio.read_model(path)[1] == {"v": 3.0}
