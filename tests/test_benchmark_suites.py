"""The kernel, coldstart and quality suites of the benchmark instrument, and the pytest-benchmark folder: rows
are well-formed, answers are checked, missing data gives a skipped row with its reason (all on tiny budgets)."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastae.benchmark import coldstart, kernels, quality

ROOT = Path(__file__).resolve().parents[1]
TINY = {"samples": 2, "target_s": 0.001, "warmup": 1}
STATUSES = {"ok", "skipped", "WRONG", "failed"}


def _common(row, suite):
    assert row["suite"] == suite
    assert row["kind"] in {"fastae", "peer", "floor", "baseline"}
    assert row["status"] in STATUSES
    assert isinstance(row["contestant"], str) and row["contestant"]
    if row["status"] == "ok" and "median_s" in row:
        assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"] and row["samples"] >= 1
    if row["status"] != "ok":
        assert row["note"]


def _cannot_run_here(row):
    """A fastae row of a backend that cannot run on this machine (the GPU's, without one): skipped, with the
    registry's reason."""
    from fastae.backends import registry

    name = row["contestant"].removeprefix("fastae[").removesuffix("]")
    reason = registry.unavailable(name)
    if reason is None:
        return False
    assert row["status"] == "skipped" and row.get("note"), row
    return True


def test_kernel_rows_declare_op_shape_bytes_and_small_errors():
    rows = kernels.run(quick=True, log=lambda s: None, settings=TINY)
    ops = {r["op"] for r in rows}
    assert {
        "dense_forward",
        "gemm",
        "output_loss_grad",
        "activation_backward",
        "gaussian_latent",
        "gaussian_latent_backward",
        "adam_update",
        "mask_noise",
    } <= ops
    fastae_rows = [r for r in rows if r["kind"] == "fastae"]
    assert {r["contestant"] for r in fastae_rows} >= {"fastae[numpy]"}
    for r in rows:
        _common(r, "kernel")
        assert r["dtype"] == "float32" and r["shape"] and r["bytes"] > 0 and r["flops"] >= 0
        if r["status"] == "ok":
            assert r["gbps"] == pytest.approx(r["bytes"] / r["median_s"] / 1e9)
    fastae_rows = [r for r in fastae_rows if not _cannot_run_here(r)]
    for r in fastae_rows:
        assert r["status"] == "ok", r
        assert 0 <= r["error"] <= kernels.KERNEL_TOL, r
    # ops ending in a product are timed beside the bare GEMM, and the epilogue is read off
    dense = [r for r in fastae_rows if r["op"] in ("dense_forward", "output_loss_grad")]
    assert dense and all(r["epilogue_s"] == pytest.approx(r["median_s"] - r["gemm_s"]) for r in dense)
    # the cases are told apart by their key
    keys = [(r["case"], r["contestant"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_kernel_bytes_count_the_arrays_an_op_must_touch():
    case = {c.key: c for c in kernels.cases()}
    assert case["activation_backward-shallow"].bytes == 4 * 3 * 256 * 256  # read dh, h; write da
    assert case["dense_forward-shallow-784x256"].bytes == 4 * (256 * 784 + 256 * 784 + 256 + 256 * 256)
    assert case["adam_update-shallow"].extra["n_params"] == 784 * 256 + 256 + 784


def test_a_wrong_kernel_is_reported_not_timed(monkeypatch):
    from fastae.backends import numpy_ref

    real = numpy_ref.activation_backward
    # float32 only: the float64 reference stays right, so the float32 answer is 1% off
    monkeypatch.setattr(
        numpy_ref,
        "activation_backward",
        lambda dh, h, a: real(dh, h, a) * (h.dtype.type(1.01) if h.dtype == np.float32 else 1),
    )
    rows = kernels.run(quick=True, log=lambda s: None, settings=TINY, ops={"activation_backward"})
    wrong = [r for r in rows if r["contestant"] == "fastae[numpy]"]
    assert wrong and all(r["status"] == "WRONG" and "median_s" not in r and r["error"] > 1e-3 for r in wrong)
    # the other backends compute the right answer and are timed as usual
    assert all(r["status"] == "ok" for r in rows if r["contestant"] != "fastae[numpy]" and not _cannot_run_here(r))


def test_coldstart_rows_are_well_formed():
    rows = coldstart.run(quick=True, log=lambda s: None, repeats=1, peers=False)
    by = {r["contestant"]: r for r in rows}
    assert by["python -c pass"]["kind"] == "baseline" and by["python -c pass"]["status"] == "ok"
    for r in rows:
        _common(r, "coldstart")
        assert r["command"].startswith("python -c ")
    for cache in ("cold", "warm"):
        r = by[f"fastae load+encode, Numba cache {cache}"]
        assert r["status"] == "ok" and r["samples"] == 1 and r["numba_cache"] == cache
        assert r["error"] <= 1e-6  # the subprocess encoded what the parent's model encodes
        assert r["forbidden_modules"] == [] and not {"sklearn", "scipy.stats", "matplotlib"} & set(r["heavy_modules"])
        assert r["over_baseline_s"] == pytest.approx(r["median_s"] - by["python -c pass"]["median_s"])
    assert by["import torch"]["status"] == "skipped" and "peers" in by["import torch"]["note"]


def test_coldstart_reports_a_missing_peer(monkeypatch):
    monkeypatch.setattr(coldstart, "_missing", lambda m: f"{m} is not installed")
    monkeypatch.setattr(coldstart, "run_once", lambda code, cwd, numba_cache=None: 0.01)
    monkeypatch.setattr(coldstart, "check_encode", lambda *a: {"heavy": [], "error": 0.0})
    rows = {r["contestant"]: r for r in coldstart.run(quick=True, log=lambda s: None, repeats=1)}
    assert rows["import jax"] == {
        **rows["import jax"],
        "status": "skipped",
        "note": "jax is not installed",
        "kind": "peer",
    }
    assert "median_s" not in rows["import jax"]


def test_quality_without_mnist_gives_a_skipped_row_with_the_folders_tried(monkeypatch, tmp_path):
    missing = tmp_path / "no-mnist-here"
    monkeypatch.setenv("FASTAE_MNIST_DIR", str(missing))
    (row,) = quality.run(quick=True, log=lambda s: None, datasets=("mnist",))
    assert row["suite"] == "quality" and row["config"] == "mnist" and row["status"] == "skipped"
    assert str(missing) in row["note"] and "not found" in row["note"]
    assert row["published_ae"] == 3.00 and row["published_pca"] == 13.87


def test_quality_mnist_trains_in_both_precisions(monkeypatch):
    """One row per precision, the bfloat16 one with its error over the float32 one's (the data replaced by a
    small random set, the model by a small one: this checks the rows, not the quality)."""
    from fastae import datasets

    X = np.random.default_rng(0).random((300, 784), dtype=np.float32)
    monkeypatch.setattr(datasets, "load_mnist", lambda path=None: X)
    monkeypatch.setattr(quality, "MNIST_N_TRAIN", 240)
    tiny = {"hidden": (16, 4), "epochs": 1, "pretrain_epochs": 1}
    rows = quality.run(quick=True, log=lambda s: None, datasets=("mnist",), mnist_overrides=tiny)
    assert [(r["precision"], r["status"]) for r in rows] == [("float32", "ok"), ("bfloat16", "ok")]
    fp32, bf16 = rows
    assert fp32["n_test"] == bf16["n_test"] == 60 and "ratio_to_float32" not in fp32
    assert bf16["ratio_to_float32"] == bf16["ae_error"] / fp32["ae_error"]
    assert bf16["ae_error"] != fp32["ae_error"]  # trained with other products, not float32 under another name


def test_quality_digits_on_a_tiny_budget_gives_both_errors():
    rows = quality.run(
        quick=True, log=lambda s: None, datasets=("digits",), digits_overrides={"epochs": 1, "pretrain_epochs": 1}
    )
    assert [r["config"] for r in rows] == ["digits", "digits"]
    for r in rows:
        _common(r, "quality")
        assert r["status"] == "ok" and r["epochs"] == 1
        assert math.isfinite(r["ae_error"]) and r["ae_error"] > 0
        assert math.isfinite(r["pca_error"]) and r["pca_error"] > 0
        assert r["n_train"] == 1437 and r["n_test"] == 360 and r["seconds"] >= 0
    assert rows[0]["pca_error"] == rows[1]["pca_error"]  # same code size (12), same split


def test_bench_folder_collects():
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    names = out.stdout
    for module in ("bench_train", "bench_encode", "bench_latency", "bench_kernels", "bench_coldstart", "bench_quality"):
        assert f"{module}.py::" in names, module
    assert "fastae[numpy]" in names and "GEMM-only floor" in names
