"""Every op of every registered backend against known answers (tests/known_answers.json).

The answers were derived by hand from the math of :mod:`fastae.backends.numpy_ref` (each case says how in its
``why``), not by running the library; only the cases marked ``recorded`` pin the reference's Philox draws of seed
0, so that a saved seed keeps reproducing its noise on every backend. A case marked ``exact`` has an answer that is
exact in both dtypes and must match bit for bit; every other is compared through :func:`tests.tolerances.close`.
"""

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from fastae import activations, rng
from fastae.backends import contract, registry
from fastae.backends import numpy_ref as ref

from .tolerances import close

CASES = json.loads((Path(__file__).parent / "known_answers.json").read_text())["cases"]
BACKENDS = registry.available_backends()  # tests/conftest.py has registered the test-only "reference-twin"
DTYPES = ["float32", "float64"]
LOSSES = ("bce", "mse")  # fastae.activations.output_activation: sigmoid for "bce", identity for the other

# The names of what each op returns, in order, and of the arguments it updates in place.
RETURNS = {
    "dense_forward": ("h",),
    "dense_backward": ("dW", "db", "dx"),
    "activation_backward": ("dz",),
    "output_loss_grad": ("loss", "delta"),
    "output_row_loss": ("rows",),
    "l1_penalty": ("value", "grad"),
    "kl_sparsity": ("value", "grad"),
    "contractive_penalty": ("value", "dW_direct", "dz"),
    "weight_decay": ("value",),
    "mask_noise": ("x_tilde",),
    "gaussian_noise": ("x_tilde",),
    "gaussian_latent": ("z", "kl"),
    "gaussian_latent_backward": ("dmu", "dlogvar"),
    "gaussian_kl_rows": ("rows",),
    "sgd_update": ("finite",),
    "momentum_update": ("finite",),
    "adam_update": ("finite",),
    "permutation": ("order",),
}
MUTATES = {
    "weight_decay": ("grad",),
    "sgd_update": ("out",),
    "momentum_update": ("out", "buf"),
    "adam_update": ("out", "m", "v"),
}
OPTIMISERS = ("sgd_update", "momentum_update", "adam_update")
NOISE_OPS = ("mask_noise", "gaussian_noise", "gaussian_latent", "permutation")
INT_ARGS = ("step", "row0", "stream", "t_step", "n")


def _array(value, dtype):
    """A JSON list as a C-contiguous array of ``dtype`` (the strings "inf", "-inf" are infinities)."""
    return np.ascontiguousarray(np.array(value, dtype=object).astype(np.float64), dtype=dtype)


def _args(case, dtype):
    args = {}
    for name, value in case["args"].items():
        if isinstance(value, list):
            args[name] = _array(value, dtype)
        elif isinstance(value, dict):
            args[name] = rng.key_from_seed(value["seed"])
        elif isinstance(value, bool) or isinstance(value, str) or name in INT_ARGS:
            args[name] = value
        else:
            args[name] = float(value)
    return args


def _variants(op):
    """``(label, how out= is given)``: the optimisers write into a fresh array and over the gradient itself (how
    the optimiser calls them); ``dense_forward`` returns a new array and writes into a given one."""
    if op in OPTIMISERS:
        return [("out=fresh", "fresh"), ("out=g", "g")]
    if op == "dense_forward":
        return [("", None), ("out=given", "fresh")]
    return [("", None)]


def _run(B, case, dtype, out_mode):
    """Call the case's op on ``B``; returns ``{name: result}`` of its returns and updated arguments, and the
    arguments that must come back unchanged."""
    op = case["op"]
    args = _args(case, dtype)
    if out_mode is not None:
        shape = args["p"].shape if op in OPTIMISERS else np.shape(case["expected"]["h"])
        args["out"] = args["g"] if out_mode == "g" else np.full(shape, np.nan, dtype=dtype)
    keep = {"p": args["p"].copy()} if op in OPTIMISERS else {}
    got = getattr(B, op)(**args)
    names = RETURNS[op]
    got = got if len(names) > 1 else (got,)
    results = dict(zip(names, got, strict=True))
    results.update((name, args[name]) for name in MUTATES.get(op, ()))
    if op == "dense_forward" and out_mode is not None:
        assert got[0] is args["out"], "dense_forward(out=...) must return out"
    return results, {name: (args[name], was) for name, was in keep.items()}


def _compare(got, want, dtype, exact, err, what):
    if want is None:
        assert got is None, f"{what}: expected None, got {got!r}"
        return
    if isinstance(want, bool):
        assert isinstance(got, bool) and got is want, f"{what}: expected {want}, got {got!r}"
        return
    want = np.array(want, dtype=object).astype(np.float64)
    close(got, want, dtype, err, what)
    if exact:
        np.testing.assert_array_equal(np.asarray(got, dtype=np.float64), want, err_msg=f"{what}: not bit-exact")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_known_answer(backend, dtype, case):
    if not registry.can_run(backend, dtype):
        pytest.skip(registry.unavailable(backend, dtype))
    B = registry.get_backend(backend, dtype)
    for label, out_mode in _variants(case["op"]):
        results, unchanged = _run(B, case, dtype, out_mode)
        where = f"{backend} {dtype} {case['name']}{' ' + label if label else ''}"
        for name, want in case["expected"].items():
            err = case.get("err", {}).get(name, 0.0)
            if case["op"] == "permutation":  # row indices: int64, exactly
                got = np.asarray(results[name])
                assert got.dtype == np.int64 and got.tolist() == want, f"{where}: {name} {got!r}"
                continue
            _compare(results[name], want, dtype, case["exact"], err, f"{where}: {name}")
        for name, (now, was) in unchanged.items():
            np.testing.assert_array_equal(now, was, err_msg=f"{where}: {name} must not change")


def _parameters(op):
    return inspect.signature(getattr(ref, op)).parameters


def test_every_op_has_a_known_answer():
    """A new op in the contract fails here until it has a case (and its outputs are named in RETURNS)."""
    ops = [c["op"] for c in CASES]
    assert set(contract.OPS) - set(ops) == set(), "ops without a known answer"
    assert set(ops) - set(contract.OPS) == set(), "cases of ops the contract does not have"
    assert set(RETURNS) == set(contract.OPS)


def test_cases_are_well_formed():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    for case in CASES:
        op, name = case["op"], case["name"]
        assert set(case) <= {"name", "op", "exact", "recorded", "why", "args", "expected", "err"}, name
        assert case["why"].strip(), f"{name}: say how the answer was derived"
        params = _parameters(op)
        required = {p for p, v in params.items() if v.default is inspect.Parameter.empty} - {"out"}
        assert required <= set(case["args"]) <= set(params) - {"out"}, f"{name}: args {sorted(case['args'])}"
        assert set(case["expected"]) == set(RETURNS[op]) | set(MUTATES.get(op, ())), f"{name}: expected"
        assert set(case.get("err", {})) <= set(case["expected"]), name
        assert not case.get("recorded") or op in NOISE_OPS, f"{name}: only draws are recorded"
        if case["exact"]:  # an exact answer from exact inputs: every number must be a float32 as well
            for what in ("args", "expected"):
                for key, value in case[what].items():
                    if isinstance(value, list):
                        v = np.array(value, dtype=object).astype(np.float64)
                        assert np.array_equal(v.astype(np.float32), v), f"{name}: {what} {key} is not a float32"


def _branches(op, arg):
    return {c["args"].get(arg) for c in CASES if c["op"] == op}


def test_every_branch_has_a_known_answer():
    for op in ("dense_forward", "activation_backward"):
        assert _branches(op, "activation") == set(activations.ACTIVATIONS), op
    assert _branches("contractive_penalty", "activation") == set(activations.CONTRACTIVE_ACTIVATIONS)
    for op in ("output_loss_grad", "output_row_loss"):
        assert _branches(op, "loss") == set(LOSSES), op
        losses_tied = {(c["args"]["loss"], c["args"]["transpose"]) for c in CASES if c["op"] == op}
        assert losses_tied == {(loss, t) for loss in LOSSES for t in (False, True)}, op
    for op in ("dense_forward", "dense_backward"):
        assert _branches(op, "transpose") == {False, True}, op
    assert _branches("dense_backward", "need_dx") == {False, True}
    assert _branches("momentum_update", "nesterov") == {False, True}
    for op in NOISE_OPS:  # an answer independent of the draw, and the draws themselves pinned
        assert {bool(c.get("recorded")) for c in CASES if c["op"] == op} == {False, True}, op
