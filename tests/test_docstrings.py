"""The public API's docstrings are numpydoc: every parameter of every public class, method and function reachable
from ``fastae.__all__`` is documented under ``Parameters`` (no more, no fewer), and the two estimators list their
fitted attributes under ``Attributes``."""

import inspect
import re

import numpy as np
import pytest

import fastae
import fastae.datasets
import fastae.machine

ESTIMATORS = (fastae.Autoencoder, fastae.VAE)

# An entry of a numpydoc section: ``name : type`` (or ``a, b : type``; ``*args``/``**kwargs`` may omit the type).
_ENTRY = re.compile(r"^(?P<names>\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)(?:\s+:(?:\s+(?P<type>.*))?)?$")


def _sections(doc):
    """``{header: [(line, text)]}`` of a cleaned docstring: a header is a line followed by a line of dashes."""
    lines = inspect.cleandoc(doc or "").splitlines()
    heads = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip() and set(lines[i + 1].strip()) == {"-"} and len(lines[i + 1].strip()) >= 3
    ]
    out = {}
    for j, i in enumerate(heads):
        end = heads[j + 1] if j + 1 < len(heads) else len(lines)
        indent = len(lines[i]) - len(lines[i].lstrip())
        out[lines[i].strip()] = (indent, lines[i + 2 : end])
    return out


def _entries(doc, section, where):
    """The names documented in ``section`` of ``doc``, in order (an absent section documents none)."""
    found = _sections(doc).get(section)
    if found is None:
        return []
    indent, body = found
    names = []
    for k, line in enumerate(body):
        if not line.strip() or len(line) - len(line.lstrip()) > indent:
            continue
        m = _ENTRY.match(line[indent:].rstrip())
        assert m, f"{where}: malformed {section} entry {line.strip()!r} (expected 'name : type')"
        group = [n.strip() for n in m.group("names").split(",")]
        if not m.group("type"):
            assert all(n.startswith("*") for n in group), (
                f"{where}: {section} entry {line.strip()!r} has no type (expected 'name : type')"
            )
        rest = body[k + 1 :]
        described = rest and rest[0].strip() and len(rest[0]) - len(rest[0].lstrip()) > indent
        assert described, f"{where}: {section} entry {line.strip()!r} has no description below it"
        names += [n.lstrip("*") for n in group]
    return names


def _signature_names(func):
    return {
        p.name for p in inspect.signature(func).parameters.values() if p.name != "self" and not p.name.startswith("_")
    }


def _public_methods(cls):
    """``{name: function}`` of the public methods of ``cls`` that fastae defines (its own or inherited)."""
    out = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        func = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        if inspect.isfunction(func) and func.__module__.startswith("fastae"):
            out[name] = getattr(cls, name)
    return out


def _targets():
    """``(id, docstring owner, callable whose signature it documents)`` for everything public."""
    out = []
    for name in fastae.__all__:
        obj = getattr(fastae, name)
        if inspect.isclass(obj):
            init = obj.__dict__.get("__init__")
            if init is not None and inspect.isfunction(init):  # numpydoc: the constructor's in the class docstring
                out.append((name, obj, init))
            for meth_name, meth in sorted(_public_methods(obj).items()):
                out.append((f"{name}.{meth_name}", meth, meth))
        elif inspect.isfunction(obj):
            out.append((name, obj, obj))
    for module in (fastae.datasets, fastae.machine):  # public helpers outside __all__
        for name, obj in sorted(vars(module).items()):
            if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
                out.append((f"{module.__name__}.{name}", obj, obj))
    return out


TARGETS = _targets()


def test_targets_cover_the_api():
    ids = {t[0] for t in TARGETS}
    expected = {
        "Autoencoder",
        "VAE",
        "load",
        "warmup",
        "describe",
        "available_backends",
        "Autoencoder.fit",
        "Autoencoder.partial_fit",
        "Autoencoder.encode",
        "Autoencoder.decode",
        "Autoencoder.reconstruct",
        "Autoencoder.transform",
        "Autoencoder.inverse_transform",
        "Autoencoder.fit_transform",
        "Autoencoder.score",
        "Autoencoder.score_samples",
        "Autoencoder.state_dict",
        "Autoencoder.load_state_dict",
        "Autoencoder.save",
        "Autoencoder.get_params",
        "Autoencoder.set_params",
        "Autoencoder.get_feature_names_out",
        "VAE.elbo",
        "VAE.sample",
        "VAE.encode",
        "fastae.datasets.load_mnist",
        "fastae.machine.describe",
    }
    assert expected <= ids, sorted(expected - ids)


@pytest.mark.parametrize("where, owner, func", TARGETS, ids=[t[0] for t in TARGETS])
def test_parameters_section_matches_signature(where, owner, func):
    doc = inspect.getdoc(owner)
    assert doc, f"{where} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.strip(), f"{where}: the docstring does not start with a one-line summary"
    documented = _entries(doc, "Parameters", where)
    duplicated = sorted({n for n in documented if documented.count(n) > 1})
    assert not duplicated, f"{where}: parameters documented twice: {duplicated}"
    expected = _signature_names(func)
    missing = sorted(expected - set(documented))
    extra = sorted(set(documented) - expected)
    assert not missing and not extra, (
        f"{where}: Parameters section does not match the signature: undocumented "
        f"{missing}, documented but not parameters {extra}"
    )


@pytest.mark.parametrize("cls", ESTIMATORS, ids=[c.__name__ for c in ESTIMATORS])
def test_estimators_document_fitted_attributes(cls):
    doc = inspect.getdoc(cls)
    assert "Attributes" in _sections(doc), f"{cls.__name__} has no Attributes section"
    documented = set(_entries(doc, "Attributes", cls.__name__))
    X = np.random.default_rng(0).uniform(size=(20, 5))
    model = cls(hidden=(3,), epochs=2, batch_size=8, early_stopping=True, backend="numpy", random_state=0).fit(X)
    fitted = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
    assert fitted, "the fitted model sets no public attributes"
    missing = sorted(fitted - documented)
    assert not missing, f"{cls.__name__}: fitted attributes not in its Attributes section: {missing}"
    keys = set(model.history_)
    if cls is fastae.Autoencoder:
        pretrained = cls(hidden=(3,), epochs=1, pretrain="layerwise", backend="numpy", random_state=0).fit(X)
        keys |= set(pretrained.history_)
    attrs = _sections(doc)["Attributes"][1]
    text = "\n".join(attrs)
    for key in sorted(keys):
        assert f"'{key}'" in text or f'"{key}"' in text, f"{cls.__name__}: history_ key {key!r} is not described"
