"""The benchmark instrument's core: analytic FLOPs, checked-before-timed, honest rows for every contestant."""

import time

import numpy as np
import pytest

from fastae import rng
from fastae.benchmark import configs, runner, timing
from fastae.benchmark.contestants import Contestant, EncodeCase, Fastae, GemmFloor, TrainCase


def test_train_flops_count_every_product_of_a_step():
    """Count the 2·m·n·k of each product that a reference step performs, by intercepting the GEMMs."""
    from fastae.backends import numpy_ref

    for cfg in configs.CONFIGS.values():
        counted = []
        real = numpy_ref._product

        def counting(x, W, transpose):
            counted.append(2 * x.shape[0] * W.size)
            return real(x, W, transpose)

        params = configs.initial_weights(cfg)
        x = configs.data(cfg, cfg.batch)
        eps = runner.vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
        case = Fastae("numpy").train(cfg, params, x, eps)
        orig_backward = numpy_ref.dense_backward

        def counting_backward(delta, x_in, W, transpose=False, need_dx=True):
            counted.append(2 * delta.shape[0] * W.size * (2 if need_dx else 1))
            return orig_backward(delta, x_in, W, transpose, need_dx)

        numpy_ref._product, numpy_ref.dense_backward = counting, counting_backward
        try:
            case.step()
        finally:
            numpy_ref._product, numpy_ref.dense_backward = real, orig_backward
        assert sum(counted) == cfg.train_flops(), cfg.name


def test_parameter_counts_match_the_models():
    for cfg in configs.CONFIGS.values():
        assert sum(v.size for v in configs.initial_weights(cfg).values()) == cfg.n_params()


class _Wrong(Contestant):
    name, kind = "wrong", "peer"

    def train(self, cfg, params, x, eps):
        inner = Fastae("numpy").train(cfg, params, x, eps)

        class Case(TrainCase):
            step = inner.step

            def loss(self):
                return inner.loss() * 1.01  # 1% off: a fast wrong answer

        return Case()

    def encode(self, cfg, params, x):
        class Case(EncodeCase):
            def run(self):
                return None

            def result(self):
                return np.zeros((x.shape[0], cfg.code_size))

        return Case()


class _Missing(Contestant):
    name, kind = "missing", "peer"

    def unavailable(self):
        return "not installed here"


class _Crashing(Contestant):
    name, kind = "crashing", "peer"

    def train(self, cfg, params, x, eps):
        raise RuntimeError("boom")

    def encode(self, cfg, params, x):
        raise RuntimeError("boom")


def test_wrong_missing_and_crashing_contestants_are_reported_not_timed():
    res = runner.run(
        configs=["small"],
        contestants=[Fastae("numpy"), GemmFloor(), _Wrong(), _Missing(), _Crashing()],
        quick=True,
        log=lambda s: None,
    )
    rows = {(r["suite"], r["contestant"]): r for r in res["rows"]}
    for suite in runner.SUITES:
        ok = rows[(suite, "fastae[numpy]")]
        assert ok["status"] == "ok" and ok["error"] < 1e-5 and ok["min_s"] <= ok["median_s"] <= ok["max_s"]
        assert rows[(suite, "GEMM-only floor")]["status"] == "ok"
        wrong = rows[(suite, "wrong")]
        assert wrong["status"] == "WRONG" and "median_s" not in wrong and "exceeds" in wrong["note"]
        assert rows[(suite, "missing")] == {
            "suite": suite,
            "config": "small",
            "contestant": "missing",
            "kind": "peer",
            "precision": "float32",
            "error": None,
            "status": "skipped",
            "note": "not installed here",
        }
        assert rows[(suite, "crashing")]["status"] == "failed" and "boom" in rows[(suite, "crashing")]["note"]
        assert "ratio_to_best_peer" not in ok  # no peer produced a valid time
    assert len(res["wrong"]) == 6
    assert res["rows"][0]["suite"] == "gemm" and res["meta"]["gemm_peak_gflops"] > 0


def test_ratio_to_best_peer():
    class Peer(Contestant):
        name, kind = "peer", "peer"
        train = Fastae("numpy").train
        encode = Fastae("numpy").encode

    res = runner.run(
        configs=["small"], suites=("latency",), contestants=[Fastae("numpy"), Peer()], quick=True, log=lambda s: None
    )
    rows = {r["contestant"]: r for r in res["rows"] if r["suite"] == "latency"}
    assert rows["peer"]["ratio_to_best_peer"] == 1.0
    assert rows["fastae[numpy]"]["ratio_to_best_peer"] == pytest.approx(
        rows["fastae[numpy]"]["median_s"] / rows["peer"]["median_s"]
    )


def test_interleaved_timing_reports_per_call_statistics():
    calls = {"a": 0, "b": 0}

    def a():
        calls["a"] += 1

    def b():
        calls["b"] += 1

    res = timing.interleaved({"a": a, "b": b}, samples=4, target_s=0.001, warmup=1)
    for name in "ab":
        r = res[name]
        assert r["samples"] == 4 and r["inner"] >= 1 and 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
        assert calls[name] >= 1 + 4 * r["inner"]


def test_settling_pauses_before_each_sample_and_wakes_the_contestant_untimed():
    events = []

    def a():
        events.append(("a", time.perf_counter()))

    def b():
        events.append(("b", time.perf_counter()))

    timing.interleaved({"a": a, "b": b}, samples=3, target_s=0.0, warmup=0, settle_s=0.02)
    timed = events[2:]  # after calibration (one call each at target 0)
    assert [name for name, _ in timed] == ["a", "a", "b", "b"] * 3  # an untimed call, then the timed one
    for (_, t_prev), (_, t_next) in zip(timed[1::2], timed[2::2]):  # each sample's first call follows a pause
        assert t_next - t_prev >= 0.02


def test_a_step_that_does_nothing_is_caught():
    """The check must be tight enough that skipping the update is a WRONG answer, not a fast one."""

    class Lazy(Contestant):
        name, kind = "lazy", "peer"

        def train(self, cfg, params, x, eps):
            inner = Fastae("numpy").train(cfg, params, x, eps)

            class Case(TrainCase):
                def step(self):
                    pass

                loss = inner.loss

            return Case()

    for cfg in ("small", "vae"):
        res = runner.run(configs=[cfg], suites=("train",), contestants=[Lazy()], quick=True, log=lambda s: None)
        (row,) = [r for r in res["rows"] if r["suite"] == "train"]
        assert row["status"] == "WRONG", row


@pytest.mark.parametrize("name", ["small", "vae"])
def test_fastae_train_case_is_a_users_partial_fit(name):
    """The timed fastae step is the public API's: ``step`` is one ``partial_fit`` of the batch and ``run`` one of
    ``steps`` copies of it, exactly what a user's calls give (ε drawn at each update's own step)."""
    cfg = configs.CONFIGS[name]
    params = configs.initial_weights(cfg)
    x = configs.data(cfg, cfg.batch)
    eps = runner.vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
    case = Fastae("numpy").train(cfg, params, x, eps)
    case.step()
    case.run()
    assert case.model.t_ == 1 + case.steps and (case.steps > 1) == (name == "small")
    user = cfg.model(backend="numpy", random_state=0).set_params(epochs=0, shuffle=False)
    user.fit(np.full((1, cfg.n_features), 0.5, np.float32)).load_state_dict(params)
    user.partial_fit(x).partial_fit(np.tile(x, (case.steps, 1)))
    for k, v in user.state_dict().items():
        np.testing.assert_array_equal(case.model.state_dict()[k], v)


@pytest.mark.parametrize("name", ["shallow", "deep", "vae"])
def test_the_check_objective_is_the_models_training_loss(name):
    """``objective.loss``, written apart from the library, agrees with the float64 reference model's own loss at
    step 1 (whose ε is ``vae_eps``)."""
    from fastae.benchmark import objective

    cfg = configs.CONFIGS[name]
    params = configs.initial_weights(cfg)
    x = configs.data(cfg, cfg.batch)
    eps = runner.vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
    model = Fastae("numpy", "float64").train(cfg, params, x, None).model
    want = float(model._loss_and_grads(x.astype(np.float64), 1)[0])
    got = objective.loss(
        cfg,
        params,
        x,
        None if eps is None else rng.normal(model._key, rng.STREAM_EPS, 1, cfg.batch, cfg.latent, dtype=np.float64),
    )
    assert got == pytest.approx(want, rel=1e-12)
    if eps is not None:
        assert objective.loss(cfg, params, x, eps) == pytest.approx(want, rel=1e-5)  # eps in float32
