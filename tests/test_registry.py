"""Dispatch: explicit backends, the contract checked on load, honest 'auto', no silent fallback."""

import types

import numpy as np
import pytest

import fastae
from fastae.backends import contract, numpy_ref, registry


def test_every_registered_backend_meets_the_contract():
    for name in registry.available_backends():
        module = registry.get_backend(name, "float64")
        assert contract.problems(module) == [], name


def test_the_contract_lists_the_reference_ops_and_nothing_else():
    public = {
        n
        for n, v in vars(numpy_ref).items()
        if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == numpy_ref.__name__
    }
    helpers = {"adam_scalars", "clamp_logvar"}  # the reference's own pieces of math, not ops a model calls
    bf16 = set(contract._methods(contract.BF16Products))  # the one capability the reference offers
    assert public - helpers == set(contract.OPS) | set(contract.LIFECYCLE) | bf16
    assert numpy_ref.CAPABILITIES == {contract.BF16_PRODUCTS}
    assert contract.CAPABILITIES.keys() == {
        contract.FUSED_AE1_STEP,
        contract.VALUES_SCAN,
        contract.BF16_PRODUCTS,
        contract.TF32_PRODUCTS,
        contract.MULTI_TENSOR_UPDATE,
        contract.HOST_STREAM,
    }


def test_auto_reports_what_it_chose():
    m = fastae.Autoencoder(hidden=(2,), epochs=0, random_state=0).fit(np.random.default_rng(0).uniform(size=(4, 3)))
    assert m.backend_ in registry.available_backends()
    assert m.backend_ == registry.resolve_backend("auto", "float32").NAME


def test_unknown_backend_and_dtype_are_refused():
    with pytest.raises(ValueError, match=r"backend must be 'auto' or one of \[.*'numpy'.*\], got 'tpu'"):
        registry.get_backend("tpu", "float32")
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'float64'\], got 'float16'"):
        registry.get_backend("numpy", "float16")


def _copy_of(module, **changes):
    fake = types.ModuleType(f"fake_{module.NAME}")
    fake.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    fake.__dict__.update(changes)
    return fake


@pytest.fixture
def fake_backend():
    names = []

    def register(module, auto=False):
        name = f"fake{len(names)}"
        names.append(name)
        registry.register(name, module, auto=auto)
        return name

    yield register
    for name in names:
        registry.unregister(name)


def test_a_backend_breaking_the_contract_is_refused_naming_each_problem(fake_backend):
    def dense_forward(x, W, b, act, transpose=False, out=None):  # 'act': the reference's name is 'activation'
        return numpy_ref.dense_forward(x, W, b, act, transpose, out)

    def sgd_update(p, g, out, lr=None):
        return numpy_ref.sgd_update(p, g, out, lr)

    fake = _copy_of(
        numpy_ref,
        NAME="",
        DTYPES=("float16",),
        CAPABILITIES=frozenset({"fused_ae1_step", "warp"}),
        dense_forward=dense_forward,
        sgd_update=sgd_update,
    )
    del fake.gaussian_kl_rows, fake.warmup
    found = contract.problems(fake)
    for expected in (
        "NAME must be a non-empty string",
        "DTYPES must be a non-empty tuple",
        "dense_forward('x', 'W', 'b', 'act', 'transpose', 'out') should take",
        "gaussian_kl_rows is missing",
        "warmup is missing",
        "capability 'warp' is unknown",
        "capability 'fused_ae1_step': ae1_stepper is missing",
    ):
        assert any(expected in p for p in found), (expected, found)
    assert not any("sgd_update" in p for p in found)  # an extra default is allowed
    name = fake_backend(fake)
    with pytest.raises(TypeError, match="breaks the backend contract: NAME must be"):
        registry.get_backend(name, "float32")
    assert not registry.can_run(name, "float32")
    missing_default = _copy_of(numpy_ref, mask_noise=lambda x, p, key, step, row0: x)
    assert contract.problems(missing_default) == ["mask_noise gives no default to ['row0']"]


def test_a_backend_that_cannot_run_here_says_why(fake_backend):
    name = fake_backend(_copy_of(numpy_ref, NAME="later", unavailable=lambda: "no such device"))
    assert registry.unavailable(name) == "no such device"
    assert name not in registry.available_backends()
    with pytest.raises(ValueError, match="cannot run here: no such device"):
        fastae.Autoencoder(hidden=(2,), epochs=0, backend=name).fit(np.ones((3, 2)) / 2)


def test_supports_asks_the_declared_capabilities():
    from fastae.backends import numba_cpu

    assert contract.supports(numba_cpu, contract.FUSED_AE1_STEP)
    assert not contract.supports(numpy_ref, contract.FUSED_AE1_STEP)
    with pytest.raises(ValueError, match="capability must be one of"):
        contract.supports(numpy_ref, "fused")


class _DeviceArray:
    """An array type of its own, not NumPy's, standing for a device array."""


def test_auto_chooses_by_the_input_array_type(fake_backend):
    device = _copy_of(numpy_ref, NAME="device", ARRAY_TYPES=(_DeviceArray,))
    name = fake_backend(device, auto=True)
    assert registry.resolve_backend("auto", "float32", like=_DeviceArray()) is registry._load(name)
    host = registry.resolve_backend("auto", "float32", like=np.zeros((2, 2)))
    assert host.NAME == registry.resolve_backend("auto", "float32").NAME != "device"
    assert registry.resolve_backend("auto", "float32", like=[[0.0]]) is host  # lists and frames go to the host
