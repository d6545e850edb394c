"""Fuzzing ``fastae.load`` (fastae/io.py and the model's ``_from_file``): mutated model files either load or raise
``ValueError``, each in bounded time and memory, and nothing in them is ever executed.

CI runs ``FASTAE_FUZZ_FILES`` files (default 1,500) within ``FASTAE_FUZZ_SECONDS`` (default 30), from the seed
``FASTAE_FUZZ_SEED``; the full run is
``FASTAE_FUZZ_FILES=10000 python -m pytest tests/test_load_fuzz.py``.
"""

import json
import os
import pickle
import struct
import time
import tracemalloc

import numpy as np
import pytest

import fastae

FILES = int(os.environ.get("FASTAE_FUZZ_FILES", "1500"))
SECONDS = float(os.environ.get("FASTAE_FUZZ_SECONDS", "30"))
SEED = int(os.environ.get("FASTAE_FUZZ_SEED", "20261201"))


def _valid_files(tmp_path):
    X = np.random.default_rng(0).uniform(0.05, 0.95, (40, 10))
    out = []
    for i, model in enumerate(
        [
            fastae.Autoencoder(hidden=(4,), epochs=1, random_state=0),
            fastae.Autoencoder(hidden=(5, 3), tied=False, noise=("mask", 0.1), epochs=1),
            fastae.VAE(hidden=(5,), latent=2, epochs=1, random_state=0),
        ]
    ):
        path = tmp_path / f"valid{i}.safetensors"
        model.fit(X).save(path)
        out.append(path.read_bytes())
    return out


def _mutate_header(data, r):
    """A change inside the JSON header: a number, a string or a structure replaced by another JSON value."""
    (n,) = struct.unpack("<Q", data[:8])
    text = data[8 : 8 + n].decode("utf-8")
    header = json.loads(text)
    meta = header.get("__metadata__", {})
    choices = [None, -1, 0, 2**40, 1.5, "x", [], {}, [[[]]], True, "NaN", 1e308]
    target = r.integers(3)
    if target == 0 and meta:  # a metadata field: config and state are JSON inside JSON
        key = list(meta)[r.integers(len(meta))]
        try:
            inner = json.loads(meta[key])
        except ValueError:
            inner = None
        if isinstance(inner, dict) and inner:
            k = list(inner)[r.integers(len(inner))]
            inner[k] = choices[r.integers(len(choices))]
            meta[key] = json.dumps(inner)
        else:
            meta[key] = str(choices[r.integers(len(choices))])
    else:  # a tensor's description
        names = [k for k in header if k != "__metadata__"]
        name = names[r.integers(len(names))]
        field = ["dtype", "shape", "data_offsets"][r.integers(3)]
        header[name][field] = (
            choices[r.integers(len(choices))]
            if r.random() < 0.5
            else ["F16", "I64", [1], [0, 0], [2**31, 2], "BF16"][r.integers(6)]
        )
    raw = json.dumps(header).encode()
    if r.random() < 0.3:  # keep the old length: the header and the body now disagree
        return data[:8] + raw + data[8 + n :]
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def _mutate(data, r):
    kind = r.integers(7)
    b = bytearray(data)
    if kind == 0:  # flip bits
        for _ in range(r.integers(1, 8)):
            i = r.integers(len(b))
            b[i] ^= 1 << r.integers(8)
    elif kind == 1:  # random bytes over a random stretch
        i = r.integers(len(b))
        j = min(len(b), i + r.integers(1, 64))
        b[i:j] = r.bytes(j - i)
    elif kind == 2:  # truncate
        b = b[: r.integers(len(b))]
    elif kind == 3:  # insert or delete bytes
        i = r.integers(len(b))
        if r.random() < 0.5:
            b[i:i] = r.bytes(r.integers(1, 32))
        else:
            del b[i : i + r.integers(1, 32)]
    elif kind == 4:  # the length field
        b[:8] = struct.pack("<Q", int(r.choice([0, 1, 7, len(b), 2**32, 2**63, r.integers(2**20)])))
    elif kind == 5:
        return _mutate_header(data, r)
    else:  # a stretch duplicated
        i = r.integers(len(b))
        b[i:i] = b[i : i + r.integers(1, 256)]
    return bytes(b)


def _forbid(*_a, **_k):
    raise AssertionError("a model file made fastae unpickle something")


def test_mutated_model_files_load_or_raise_value_error_in_bounded_time_and_memory(tmp_path, monkeypatch):
    valid = _valid_files(tmp_path)
    for name in ("loads", "load", "Unpickler"):  # the way a file could run code: nothing may unpickle
        monkeypatch.setattr(pickle, name, _forbid)
    r = np.random.default_rng(SEED)
    path = tmp_path / "fuzz.safetensors"
    started = time.perf_counter()
    outcomes = {"loaded": 0, "ValueError": 0}
    worst_s, worst_mem = 0.0, 0
    tracemalloc.start()
    try:
        for i in range(FILES):
            if time.perf_counter() - started > SECONDS:
                break
            data = _mutate(valid[r.integers(len(valid))], r)
            path.write_bytes(data)
            tracemalloc.reset_peak()
            t0 = time.perf_counter()
            try:
                fastae.load(path)
                outcomes["loaded"] += 1
            except ValueError:
                outcomes["ValueError"] += 1
            except Exception as exc:  # any other type is a defect: report which file made it
                pytest.fail(f"file {i} (seed {SEED}) raised {type(exc).__name__}: {exc}")
            worst_s = max(worst_s, time.perf_counter() - t0)
            worst_mem = max(worst_mem, tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    total = sum(outcomes.values())
    print(f"fuzzed {total} files: {outcomes}; slowest load {worst_s * 1e3:.1f} ms, peak {worst_mem / 1024:.0f} KiB")
    assert total >= min(FILES, 200), f"only {total} files in {SECONDS} s"
    assert outcomes["ValueError"] > total // 2, outcomes  # most mutations must be caught, not loaded
    assert worst_s < 1.0, f"a load took {worst_s:.2f} s"
    assert worst_mem < 64 * 2**20, f"a load allocated {worst_mem / 2**20:.1f} MiB for a file of a few KiB"
