"""The peers (PyTorch eager, torch.compile, JAX jit) compute fastae's function: checked against the float64 reference.

For every peer and configuration: the loss after one step and the encoder output match the reference within the
runner's tolerances, and the weights after one and two Adam steps match the reference's weights (a much sharper
check than the loss: a missing update, a wrong bias correction or an untied decoder all move weights by ~lr).
torch.compile is compiled for ``small`` only, to keep the file fast.
"""

import functools
import os
import subprocess
import sys

import numpy as np
import pytest

from fastae.benchmark import configs, runner
from fastae.benchmark.contestants import PEER, fastae_model, vae_eps

peers = pytest.importorskip("fastae.benchmark.peers", reason="fastae.benchmark.peers is not importable")

CONFIGS = tuple(configs.CONFIGS)
LR = configs.LEARNING_RATE
# Weights after k Adam steps, against the float64 reference: each step moves a weight by about lr, and float32
# rounding of a tiny gradient can tilt that; observed at most 0.02 lr over 3 steps.
WEIGHT_TOL = 0.1 * LR
ENCODE_ROWS = (33, 1)  # an odd batch and a single row (the latency case)

TORCH_REASON = "torch is not installed (pip install fastae[bench])"
JAX_REASON = "jax is not installed (pip install fastae[bench])"
PEER_MODULE = {
    "torch eager": "torch",
    "torch.compile": "torch",
    "jax jit": "jax",
    "torch autocast bf16": "torch",
    "torch bf16 module": "torch",
    "jax jit bf16": "jax",
}


def _peer(name):
    module = PEER_MODULE[name]
    pytest.importorskip(module, reason=TORCH_REASON if module == "torch" else JAX_REASON)
    every = (peers.TorchEager, peers.TorchCompile, peers.TorchAutocast, peers.TorchBF16Module, peers.JaxJit)
    return {c.name: c for c in (*every, peers.JaxJitBF16)}[name]()


@functools.lru_cache(maxsize=None)
def _reference(cfg_name, steps=2):
    """Starting weights, batch and eps of ``cfg_name``, and the float64 reference: the loss after one step and the
    weights after 1..``steps`` steps, every step with the same eps (the one at step 1) and Adam at t = 1, 2, ..."""
    cfg = configs.CONFIGS[cfg_name]
    params = configs.initial_weights(cfg)
    x = configs.data(cfg, cfg.batch)
    eps = vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
    model = fastae_model(cfg, params, "numpy", "float64")
    x64 = x.astype(np.float64)
    weights, loss1 = [], None
    for t in range(1, steps + 1):
        _, grads = model._loss_and_grads(x64, 1)  # step 1 of the noise stream: exactly `eps`
        model._optimizer.step(model._params, grads, t)
        weights.append({k: v.copy() for k, v in model._params.items()})
        if t == 1:
            loss1 = float(model._loss_and_grads(x64, 1)[0])
    return cfg, params, x, eps, loss1, weights


def _weights(case):
    return {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for k, v in case.P.items()}


def _check_train(contestant, cfg_name):
    cfg, params, x, eps, loss1, weights = _reference(cfg_name)
    case = contestant.train(cfg, params, x, eps)
    case.step()
    err = abs(case.loss() - loss1) / abs(loss1)
    assert err <= runner.TRAIN_TOL, f"{contestant.name} {cfg_name}: one-step loss off by {err:.3g}"
    for k, want in enumerate(weights):
        if k:
            case.step()
        got = _weights(case)
        assert set(got) == set(want), f"{contestant.name} {cfg_name}: parameters {sorted(set(got) ^ set(want))}"
        for name, w in want.items():
            assert got[name].dtype == np.float32, f"{contestant.name} {name}: {got[name].dtype}, not float32"
            diff = float(np.max(np.abs(got[name] - w)))
            assert diff <= WEIGHT_TOL, f"{contestant.name} {cfg_name} step {k + 1}: {name} off by {diff / LR:.3g} lr"
    return case


def _check_encode(contestant, cfg_name, rows):
    cfg, params = configs.CONFIGS[cfg_name], _reference(cfg_name)[1]
    x = configs.data(cfg, rows, seed_offset=1)
    ref = fastae_model(cfg, params, "numpy", "float64").encode(x.astype(np.float64))
    case = contestant.encode(cfg, params, x)
    case.run()
    got = case.result()
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (rows, cfg.code_size)
    err = runner._rel_error(got, ref)
    assert err <= runner.ENCODE_TOL, f"{contestant.name} {cfg_name} encode of {rows} rows off by {err:.3g}"
    case.run()  # a second run gives the same answer (no state carried between runs)
    np.testing.assert_array_equal(case.result(), got)
    return case


# --- agreement with the reference -----------------------------------------------------------------------------
@pytest.mark.parametrize("cfg_name", ["shallow", "vae"])
@pytest.mark.parametrize("peer", ["torch autocast bf16", "torch bf16 module", "jax jit bf16"])
def test_bf16_peers_pass_their_check_and_compute_in_bf16(peer, cfg_name):
    """The bf16 peers land within the runner's bf16 tolerances, and outside the float32 ones: they do compute with
    bf16 products, not float32 ones."""
    c = _peer(peer)
    train_tol, encode_tol = runner.TOLERANCES["bfloat16"]
    cfg, params, x, eps, loss1, _ = _reference(cfg_name)
    case = c.train(cfg, params, x, eps)
    case.step()
    assert abs(case.loss() - loss1) / abs(loss1) <= train_tol
    x = configs.data(cfg, 64, seed_offset=1)
    ref = fastae_model(cfg, params, "numpy", "float64").encode(x.astype(np.float64))
    enc = c.encode(cfg, params, x)
    enc.run()
    err = runner._rel_error(enc.result(), ref)
    assert runner.ENCODE_TOL < err <= encode_tol, f"{peer}: encode error {err:.3g}"


@pytest.mark.parametrize("cfg_name", CONFIGS)
@pytest.mark.parametrize("peer", ["torch eager", "jax jit"])
def test_peer_matches_the_float64_reference(peer, cfg_name):
    c = _peer(peer)
    _check_train(c, cfg_name)
    for rows in ENCODE_ROWS:
        _check_encode(c, cfg_name, rows)


def test_torch_compile_matches_the_reference_and_never_recompiles_once_warm():
    c = _peer("torch.compile")
    from torch._dynamo.utils import counters

    case = _check_train(c, "small")
    enc = _check_encode(c, "small", ENCODE_ROWS[0])
    compiled = dict(counters["stats"])
    assert compiled.get("unique_graphs", 0) >= 2, f"nothing was compiled: {compiled}"
    for _ in range(3):  # what the timed loop does after the warm-up
        case.step()
        enc.run()
    assert dict(counters["stats"]) == compiled, "torch.compile recompiled after the warm-up"


# --- tied weights, eps --------------------------------------------------------------------------------------------
def _tied_loss(W, b, c, x):
    """fastae's tied 1-layer objective, written out in float64 with the decoder using ``Wᵀ``."""
    h = 1 / (1 + np.exp(-(x @ W.T + b)))
    a = h @ W + c
    return float((np.maximum(a, 0) - x * a + np.log1p(np.exp(-np.abs(a)))).sum(axis=1).mean())


@pytest.mark.parametrize("peer", ["torch eager", "jax jit"])
def test_tied_decoder_uses_the_encoder_weight_transposed(peer):
    c = _peer(peer)
    cfg, params, x, _, _, weights = _reference("small")
    assert cfg.tied
    case = c.train(cfg, params, x, None)
    assert "decoder.0.weight" not in case.P  # one weight, no copy to drift from it
    x64 = x.astype(np.float64)
    want = _tied_loss(
        params["encoder.0.weight"].astype(np.float64),
        params["encoder.0.bias"].astype(np.float64),
        params["decoder.0.bias"].astype(np.float64),
        x64,
    )
    assert case.loss() == pytest.approx(want, rel=1e-5)
    case.step()
    W = _weights(case)["encoder.0.weight"]
    assert np.max(np.abs(W - params["encoder.0.weight"])) > 0.5 * LR  # the step moved the tied weight ...
    np.testing.assert_allclose(W, weights[0]["encoder.0.weight"], rtol=0, atol=WEIGHT_TOL)  # ... by both terms
    got = _weights(case)
    assert case.loss() == pytest.approx(
        _tied_loss(*(got[k].astype(np.float64) for k in ("encoder.0.weight", "encoder.0.bias", "decoder.0.bias")), x64),
        rel=1e-5,
    )


def _vae_loss(cfg, params, x, eps):
    """fastae's VAE objective in float64 with an explicit ``eps`` (fastae itself draws it from its Philox stream)."""
    from fastae.backends import numpy_ref as R
    from fastae.models import network

    m = fastae_model(cfg, params, "numpy", "float64")
    x = x.astype(np.float64)
    _, mu, logvar = m._heads(x)
    z = mu + np.exp(0.5 * R.clamp_logvar(logvar)) * eps.astype(np.float64)
    h = network.forward(m._B, m._params, m._decoder[:-1], z)[-1]
    last = m._decoder[-1]
    rec = R.output_row_loss(h, m._params[last.weight], m._params[last.bias], x, "bce")
    return float(rec.mean() + R.gaussian_kl_rows(mu, logvar).mean())


@pytest.mark.parametrize("peer", ["torch eager", "jax jit"])
def test_vae_uses_the_eps_it_is_given(peer):
    c = _peer(peer)
    cfg, params, x, eps, _, _ = _reference("vae")
    want = _vae_loss(cfg, params, x, eps)
    assert want == pytest.approx(
        float(fastae_model(cfg, params, "numpy", "float64")._loss_and_grads(x.astype(np.float64), 1)[0]), rel=1e-8
    )  # the helper is fastae's objective (eps rounded to float32)
    rel = 1e-5
    assert c.train(cfg, params, x, eps).loss() == pytest.approx(want, rel=rel)
    for other in (np.random.default_rng(1).standard_normal(eps.shape).astype(np.float32), np.zeros_like(eps)):
        want_other = _vae_loss(cfg, params, x, other)
        assert abs(want_other - want) > 30 * rel * want  # the noise matters far beyond the agreement tolerance
        assert c.train(cfg, params, x, other).loss() == pytest.approx(want_other, rel=rel)


@pytest.mark.parametrize("peer", ["torch eager", "jax jit"])
def test_vae_clamps_logvar_as_the_reference(peer):
    """Heads pushed past [LOGVAR_MIN, LOGVAR_MAX]: the same clamped value, and no gradient through the clamp."""
    c = _peer(peer)
    cfg, params, x, eps, _, _ = _reference("vae")
    params = dict(params, **{"logvar.bias": params["logvar.bias"].copy()})
    params["logvar.bias"][:3] = 21.0  # above LOGVAR_MAX = 20
    params["logvar.bias"][3:6] = -31.0  # below LOGVAR_MIN = -30
    model = fastae_model(cfg, params, "numpy", "float64")
    x64 = x.astype(np.float64)
    _, grads = model._loss_and_grads(x64, 1)
    model._optimizer.step(model._params, grads, 1)
    case = c.train(cfg, params, x, eps)
    assert case.loss() == pytest.approx(_vae_loss(cfg, params, x, eps), rel=1e-5)
    case.step()
    got = _weights(case)
    for name in ("logvar.weight", "logvar.bias"):
        np.testing.assert_allclose(got[name], model._params[name], rtol=0, atol=WEIGHT_TOL, err_msg=name)


def test_jax_stays_float32_with_x64_enabled():
    jax = pytest.importorskip("jax", reason=JAX_REASON)
    cfg, params, x, eps, loss1, _ = _reference("vae")
    with jax.enable_x64(True):
        case = peers.JaxJit().train(cfg, params, x, eps)
        case.step()
        enc = peers.JaxJit().encode(cfg, params, x[:7])
        enc.run()
        assert {str(a.dtype) for a in jax.tree.leaves((case.P, case.state[1:]))} == {"float32"}
        assert enc.result().dtype == np.float32
        assert case.loss() == pytest.approx(loss1, rel=runner.TRAIN_TOL)


def test_the_starting_weights_are_not_modified():
    pytest.importorskip("torch", reason=TORCH_REASON)
    cfg, params, x, _, _, _ = _reference("small")
    before = {k: v.copy() for k, v in params.items()}
    case = peers.TorchEager().train(cfg, params, x, None)
    case.step()
    for k, v in before.items():
        np.testing.assert_array_equal(params[k], v)  # torch's in-place Adam works on copies


# --- the contestant interface ---------------------------------------------------------------------------------
def test_peers_table_for_the_cli():
    assert set(peers.PEERS) == {"torch", "jax"}
    made = [cls() for group in peers.PEERS.values() for cls in group]
    assert [(c.name, c.precision) for c in made] == [
        ("torch eager", "float32"),
        ("torch.compile", "float32"),
        ("torch autocast bf16", "bfloat16"),
        ("torch bf16 module", "bfloat16"),
        ("jax jit", "float32"),
        ("jax jit bf16", "bfloat16"),
    ]
    assert all(c.kind == PEER for c in made)


def test_unavailable_gives_a_reason_and_never_raises(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.split(".")[0] in ("torch", "jax", "jaxlib") else real(name, *a),
    )
    for c in (peers.TorchEager(), peers.TorchCompile(), peers.JaxJit()):
        reason = c.unavailable()
        assert isinstance(reason, str) and "not installed" in reason and "pip install fastae[bench]" in reason


def _python(code, **env):
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_importing_peers_and_asking_availability_imports_neither_torch_nor_jax():
    out = _python(
        "import sys; from fastae.benchmark import peers; peers.JaxJit().unavailable(); "
        "print('torch' in sys.modules, 'jax' in sys.modules)"
    )
    assert out.split() == ["False", "False"]  # so the XLA thread flags can still be set afterwards


def test_xla_thread_flags_are_valid_for_the_installed_jax():
    """An unknown flag in XLA_FLAGS aborts the process; the old ``intra_op_parallelism_threads`` was one."""
    pytest.importorskip("jax", reason=JAX_REASON)
    out = _python(
        "import os; from fastae.benchmark import peers; peers.JaxJit().threads(1); "
        "import jax, jax.numpy as jnp; print(float(jax.jit(lambda a: a @ a)(jnp.ones((4, 4))).sum())); "
        "print(os.environ['XLA_FLAGS'])",
        XLA_FLAGS="",
    )
    total, flags = out.strip().splitlines()
    assert float(total) == 64.0
    assert flags == "--xla_cpu_multi_thread_eigen=false"
    assert "intra_op_parallelism_threads" not in flags


def test_torch_threads():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    before = torch.get_num_threads()
    try:
        peers.TorchEager().threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
