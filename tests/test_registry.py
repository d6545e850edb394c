"""Dispatch: explicit backends, honest 'auto', no silent fallback, complete op sets."""

import pytest

import fastae
from fastae.backends import numpy_ref, registry


def test_every_registered_backend_implements_every_op():
    for name in registry.available_backends():
        module = registry.get_backend(name, "float64")
        assert registry.missing_ops(module) == [], name


def test_reference_is_complete_and_nothing_extra_is_called_op():
    assert registry.missing_ops(numpy_ref) == []
    assert set(registry.OPS) <= set(dir(numpy_ref))


def test_auto_reports_what_it_chose():
    import numpy as np

    m = fastae.Autoencoder(hidden=(2,), epochs=0, random_state=0).fit(np.random.default_rng(0).uniform(size=(4, 3)))
    assert m.backend_ in registry.available_backends()
    assert m.backend_ == registry.resolve_backend("auto", "float32").NAME


def test_unknown_backend_and_dtype_are_refused():
    with pytest.raises(ValueError, match=r"backend must be 'auto' or one of \[.*'numpy'.*\], got 'tpu'"):
        registry.get_backend("tpu", "float32")
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'float64'\], got 'float16'"):
        registry.get_backend("numpy", "float16")


def test_incomplete_backend_is_reported(monkeypatch):
    import types

    fake = types.ModuleType("fake")
    fake.NAME, fake.DTYPES = "fake", ("float32",)
    assert registry.missing_ops(fake) == list(registry.OPS)
    monkeypatch.setitem(registry._MODULES, "fake", "fake")
    monkeypatch.setitem(registry._loaded, "fake", fake)
    with pytest.raises(ValueError, match="does not implement ops"):
        registry.get_backend("fake", "float32")
    assert not registry.supports("fake", "float32")
