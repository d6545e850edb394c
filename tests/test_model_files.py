"""Loading model files that are well-formed safetensors but describe no valid model (fastae/models/base.py
``_from_file``): every such file raises ``ValueError`` at load time, naming what is wrong, on every backend."""

import json

import numpy as np
import pytest

import fastae
from fastae import io
from fastae.backends import available_backends

X = np.random.default_rng(0).uniform(0.05, 0.95, (40, 10))
BACKENDS = available_backends()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A fitted Autoencoder and VAE (Adam state present), saved once."""
    d = tmp_path_factory.mktemp("models")
    paths = {}
    for name, model in (
        ("ae", fastae.Autoencoder(hidden=(4,), epochs=1, random_state=0)),
        ("vae", fastae.VAE(hidden=(5,), latent=2, epochs=1, random_state=0)),
    ):
        paths[name] = d / f"{name}.safetensors"
        model.fit(X).save(paths[name])
    return paths


def _rewrite(src, dst, config=None, state=None, tensors=None):
    """``src`` with its config, state or tensors changed by the given functions, written to ``dst``."""
    kind, c, t, s = io.read_model(src)
    c = config(c) if config else c
    s = state(s) if state else s
    t = tensors(t) if tensors else t
    io.write_model(dst, kind, c, t, s)
    return dst


def _with(d, **kw):
    return {**d, **kw}


def _without(d, key):
    return {k: v for k, v in d.items() if k != key}


CASES = {
    "hidden-a-number": ("ae", dict(config=lambda c: _with(c, hidden=4)), r"hidden is 4, expected a list"),
    "hidden-a-string": ("ae", dict(config=lambda c: _with(c, hidden="4")), r"hidden"),
    "unknown-parameter": ("ae", dict(config=lambda c: _with(c, colour="red")), r"unknown parameters \['colour'\]"),
    "activation-a-number": ("ae", dict(config=lambda c: _with(c, activation=5)), r"activation"),
    "missing-n-features": ("ae", dict(state=lambda s: _without(s, "n_features_in_")), r"no 'n_features_in_'"),
    "fractional-n-features": ("ae", dict(state=lambda s: _with(s, n_features_in_=10.5)), r"n_features_in_ is 10.5"),
    "bool-n-features": ("ae", dict(state=lambda s: _with(s, n_features_in_=True)), r"expected an integer"),
    "negative-t": ("ae", dict(state=lambda s: _with(s, t_=-1)), r"t_ is -1, expected an integer in"),
    "vae-t-at-the-limit": ("vae", dict(state=lambda s: _with(s, t_=2**32 - 1)), r"t_ is 4294967295"),
    "seed-not-a-number": ("ae", dict(state=lambda s: _with(s, seed_="x")), r"seed_ is 'x'"),
    "history-not-numbers": ("ae", dict(state=lambda s: _with(s, history_={"loss": ["a"]})), r"history_"),
    "sample-calls-negative": ("vae", dict(state=lambda s: _with(s, sample_calls_=-3)), r"sample_calls_ is -3"),
    "unknown-optimizer-tensor": (
        "ae",
        dict(tensors=lambda t: _with(t, **{"optimizer.encoder.0.weight.velocity": t["encoder.0.weight"]})),
        r"'optimizer.encoder.0.weight.velocity' is not a state",
    ),
    "optimizer-tensor-of-no-weight": (
        "ae",
        dict(tensors=lambda t: _with(t, **{"optimizer.nothing.exp_avg": t["encoder.0.bias"]})),
        r"'optimizer.nothing.exp_avg' is not a state",
    ),
    "missing-optimizer-entry": (
        "ae",
        dict(tensors=lambda t: _without(t, "optimizer.encoder.0.weight.exp_avg_sq")),
        r"optimizer state of 'encoder.0.weight' has \['exp_avg'\]",
    ),
    "float64-optimizer-state": (
        "ae",
        dict(
            tensors=lambda t: _with(
                t, **{"optimizer.encoder.0.bias.exp_avg": t["optimizer.encoder.0.bias.exp_avg"].astype(np.float64)}
            )
        ),
        r"dtype float64, expected \(4,\) and float32",
    ),
    "wrongly-shaped-optimizer-state": (
        "ae",
        dict(tensors=lambda t: _with(t, **{"optimizer.encoder.0.bias.exp_avg": np.zeros(3, np.float32)})),
        r"shape \(3,\)",
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_model_file_is_a_value_error(saved, tmp_path, case, backend):
    which, change, match = CASES[case]
    path = _rewrite(saved[which], tmp_path / "bad.safetensors", **change)
    with pytest.raises(ValueError, match=match):
        fastae.load(path, backend=backend)


def test_a_deeply_nested_config_is_a_value_error(saved, tmp_path):
    """JSON nested beyond Python's recursion limit: a ValueError, not a RecursionError."""
    import struct

    data = saved["ae"].read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["config"] = "[" * 50000 + "]" * 50000
    raw = json.dumps(header).encode()
    bad = tmp_path / "deep.safetensors"
    bad.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    with pytest.raises(ValueError, match="config"):
        fastae.load(bad)


@pytest.mark.parametrize("which", ["ae", "vae"])
def test_the_good_files_still_load(saved, which):
    m = fastae.load(saved[which])
    assert m.t_ > 0 and m._optimizer.state
