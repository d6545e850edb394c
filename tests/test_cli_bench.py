"""Tests for ``fastae bench``: end to end in a subprocess, and its pieces (contestants, other suites, exit
status) in process with fakes instead of slow runs."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fastae import cli
from fastae.benchmark import lineup, report, runner
from fastae.benchmark.contestants import Contestant, EncodeCase, Fastae, GemmFloor

REPO = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _quiet(_msg):
    pass


@pytest.fixture
def fast_runner(monkeypatch):
    """The runner without its one-second GEMM measurement, and thread setting recorded instead of applied (so
    the test process keeps its own BLAS threads)."""
    calls = []

    def fake_peak(quick):
        return {
            "suite": "gemm",
            "config": "2048x2048",
            "contestant": "numpy matmul",
            "kind": "floor",
            "status": "ok",
            "flops": 2 * 2048**3,
            "gflops": 100.0,
            "frac_peak": 1.0,
            "median_s": 0.17,
            "min_s": 0.17,
            "max_s": 0.18,
            "samples": 1,
            "inner": 1,
        }

    def fake_set_threads(n):
        calls.append(("set_threads", n))
        return {"threads": n, "blas": [f"fake ({n} threads)"]}

    monkeypatch.setattr(runner, "gemm_peak", fake_peak)
    monkeypatch.setattr("fastae.benchmark.threads.set_threads", fake_set_threads)
    return calls


# --- end to end -----------------------------------------------------------------------------------------------
def test_bench_quick_small_end_to_end(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastae",
            "bench",
            "--quick",
            "--config",
            "small",
            "--peers",
            "none",
            "--suites",
            "train,encode,latency",
            "--threads",
            "2",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = proc.stdout
    for title in ("## Training step", "## Encode throughput at batch 8192", "## Single-row latency"):
        section = md.split(title + "\n", 1)[1].split("\n## ", 1)[0]
        assert any(
            ln.startswith("| small | fastae[numpy] | ") and ln.endswith("| ok |") for ln in section.splitlines()
        ), section
        assert any(ln.startswith("| small | *GEMM-only floor* | ") for ln in section.splitlines()), section
    assert (
        f"fastae bench --quick --config small --peers none --suites train,encode,latency --threads 2 --out {out}`"
    ) in md
    expected = {"results.json", "results.md"} | ({"train_step.png", "throughput.png"} if _has("matplotlib") else set())
    assert {p.name for p in out.iterdir()} == expected
    assert f"wrote {out / 'results.json'}, {out / 'results.md'}" in md
    result = json.loads((out / "results.json").read_text())
    assert result["meta"]["threads"] == 2 and result["meta"]["quick"] is True
    suites = {(r["suite"], r["contestant"]): r["status"] for r in result["rows"]}
    for suite in ("train", "encode", "latency"):
        assert suites[(suite, "fastae[numpy]")] == "ok" and suites[(suite, "GEMM-only floor")] == "ok"
    assert not any(r["suite"] in ("kernel", "coldstart", "quality") for r in result["rows"])
    # results.md is the printed report, with the plots linked at its end
    assert (out / "results.md").read_text().split("\n![")[0].rstrip() == md.split("\nwrote ")[0].rstrip()
    for png in out.glob("*.png"):
        data = png.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 5000


# --- exit status ----------------------------------------------------------------------------------------------
def _result(status="ok", note=None):
    rows = [
        {
            "suite": "train",
            "config": "small",
            "contestant": "fastae[numpy]",
            "kind": "fastae",
            "status": "ok",
            "median_s": 1e-4,
            "min_s": 1e-4,
            "max_s": 1e-4,
            "gflops": 3.0,
            "frac_peak": 0.03,
            "error": 1e-8,
        },
        {
            "suite": "train",
            "config": "small",
            "contestant": "fast but wrong",
            "kind": "peer",
            "status": status,
            "error": 0.5 if status == "WRONG" else 1e-8,
            "note": note,
            **({"median_s": 1e-6, "min_s": 1e-6, "max_s": 1e-6} if status == "ok" else {}),
        },
    ]
    return {"meta": {"quick": True, "threads": 1, "gemm_peak_gflops": 100.0}, "rows": rows}


@pytest.mark.parametrize("status, code", [("ok", 0), ("skipped", 0), ("WRONG", 1), ("failed", 1)])
def test_exit_status_follows_the_rows(status, code, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "run_bench", lambda args, log: _result(status, "error 0.5 exceeds 0.001"))
    assert cli.main(["bench", "--quick", "--out", str(tmp_path)]) == code
    cap = capsys.readouterr()
    assert "fast but wrong" in cap.out and (tmp_path / "results.json").exists()
    if code:
        assert "1 row(s) WRONG or failed" in cap.err and "fast but wrong" in cap.err
        if status == "WRONG":
            assert "**WRONG**: error 0.5 exceeds 0.001" in cap.out


class _FastWrong(Contestant):
    """Encodes instantly and wrongly: must fail the run, never win it."""

    name, kind = "fast wrong", "peer"

    def encode(self, cfg, params, x):
        class Case(EncodeCase):
            def run(self):
                return None

            def result(self):
                return np.zeros((x.shape[0], cfg.code_size), np.float32)

        return Case()


def test_a_wrong_contestant_makes_the_bench_fail(monkeypatch, tmp_path, capsys, fast_runner):
    monkeypatch.setattr(lineup, "contestants", lambda peers, threads, log: [Fastae("numpy"), _FastWrong()])
    code = cli.main(
        ["bench", "--quick", "--config", "small", "--suites", "latency", "--threads", "1", "--out", str(tmp_path)]
    )
    assert code == 1
    cap = capsys.readouterr()
    (line,) = [ln for ln in cap.out.splitlines() if "fast wrong" in ln and ln.startswith("| small")]
    assert "**WRONG**: error 1 against the reference exceeds" in line and "| – | – | – |" in line
    rows = report.load_json(tmp_path / "results.json")["rows"]
    assert {r["contestant"]: r["status"] for r in rows if r["suite"] == "latency"} == {
        "fastae[numpy]": "ok",
        "fast wrong": "WRONG",
    }
    assert fast_runner == [("set_threads", 1)]


# --- contestants ------------------------------------------------------------------------------------------------
def test_threads_are_set_before_contestants_are_built(monkeypatch, tmp_path, fast_runner):
    def contestants(peers, threads, log):
        fast_runner.append(("contestants", peers, threads))
        return [GemmFloor()]

    monkeypatch.setattr(lineup, "contestants", contestants)
    monkeypatch.setattr(cli, "run_other_suite", lambda suite, quick, log: fast_runner.append(("suite", suite)) or [])
    args = cli._parser().parse_args(
        [
            "bench",
            "--quick",
            "--config",
            "small",
            "--peers",
            "jax",
            "--suites",
            "latency,quality",
            "--threads",
            "3",
            "--out",
            str(tmp_path),
        ]
    )
    result = cli.run_bench(args, _quiet)
    assert fast_runner == [("set_threads", 3), ("contestants", ["jax"], 3), ("suite", "quality")]
    meta = result["meta"]
    assert meta["threads"] == 3 and "fastae bench --quick --config small --peers jax" in meta["command"]
    assert meta["threads_info"] == {"threads": 3, "blas": ["fake (3 threads)"]}


def test_contestants_fastae_backends_peers_and_floor(monkeypatch):
    monkeypatch.setattr("fastae.backends.available_backends", lambda: ["numpy"])
    cs = lineup.contestants([], 1, _quiet)
    assert [(c.name, c.kind, c.precision) for c in cs] == [
        ("fastae[numpy]", "fastae", "float32"),
        ("GEMM-only floor", "floor", "float32"),
        ("GEMM-only floor (mkl)", "floor", "float32"),
        ("bf16 GEMM-only floor (mkl)", "floor", "bfloat16"),
    ]
    assert all(getattr(c, "dtype", "float32") == "float32" for c in cs)  # the float64 reference is no contestant


def test_missing_peers_module_gives_skipped_placeholders(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastae.benchmark.peers", None)  # as if peers.py were not there
    cs = lineup.peers(["torch", "jax"], _quiet)
    assert [(c.name, c.kind) for c in cs] == [("torch", "peer"), ("jax", "peer")]
    assert all("not available yet" in c.unavailable() for c in cs)


class _Peer(Contestant):
    kind = "peer"

    def __init__(self, name="p", threads_error=None):
        self.name, self.threads_error, self.set_to = name, threads_error, None

    def threads(self, n):
        if self.threads_error:
            raise self.threads_error
        self.set_to = n


def test_peers_from_the_table(monkeypatch):
    inst = _Peer("instance")

    class Cls(_Peer):
        def __init__(self):
            super().__init__("from a class")

    class Boom(_Peer):
        name = "boom"

        def __init__(self):
            raise OSError("no library")

    fake = types.ModuleType("fastae.benchmark.peers")
    fake.PEERS = {"torch": [inst, Cls], "jax": [Boom]}
    monkeypatch.setitem(sys.modules, "fastae.benchmark.peers", fake)
    cs = lineup.peers(["torch", "jax", "mxnet"], _quiet)
    assert [c.name for c in cs] == ["instance", "from a class", "boom", "mxnet"]
    assert cs[2].unavailable() == "cannot construct: OSError: no library"
    assert "no peer 'mxnet'" in cs[3].unavailable()


def test_peer_threads_are_set_and_a_failure_is_reported(monkeypatch):
    good, bad = _Peer("good"), _Peer("bad", threads_error=RuntimeError("nope"))
    fake = types.ModuleType("fastae.benchmark.peers")
    fake.PEERS = {"torch": [good, bad]}
    monkeypatch.setitem(sys.modules, "fastae.benchmark.peers", fake)
    monkeypatch.setattr("fastae.backends.available_backends", lambda: [])
    cs = lineup.contestants(["torch"], 2, _quiet)
    assert good.set_to == 2 and [c.name for c in cs][:3] == ["good", "bad", "GEMM-only floor"]
    with pytest.raises(RuntimeError, match="could not set 2 threads: RuntimeError: nope"):
        cs[1].train(None, None, None, None)


# --- the other suites -----------------------------------------------------------------------------------------
def test_other_suites_missing_failing_and_working(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastae.benchmark.kernels", None)
    (row,) = cli.run_other_suite("kernel", True, _quiet)
    assert row["suite"] == "kernel" and row["status"] == "skipped" and "not available yet" in row["note"]

    failing = types.ModuleType("fastae.benchmark.coldstart")

    def boom(quick, log=print):
        raise ValueError("bad")

    failing.run = boom
    monkeypatch.setitem(sys.modules, "fastae.benchmark.coldstart", failing)
    (row,) = cli.run_other_suite("coldstart", True, _quiet)
    assert row["status"] == "failed" and "ValueError: bad" in row["note"]
    assert report.is_bad(row)

    working = types.ModuleType("fastae.benchmark.quality")
    seen = []

    def run(quick, log=print):
        seen.append(quick)
        return [{"config": "digits", "contestant": "fastae[numpy]", "status": "ok", "value": 0.8}, "junk"]

    working.run = run
    monkeypatch.setitem(sys.modules, "fastae.benchmark.quality", working)
    rows = cli.run_other_suite("quality", False, _quiet)
    assert seen == [False]
    assert rows[0] == {
        "suite": "quality",
        "config": "digits",
        "contestant": "fastae[numpy]",
        "status": "ok",
        "value": 0.8,
    }
    assert rows[1]["status"] == "failed" and "not a dict" in rows[1]["note"]


# --- arguments ------------------------------------------------------------------------------------------------
def test_arguments_and_defaults(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    args = cli._parser().parse_args(["bench"])
    assert args.config == ["small", "shallow", "deep", "vae"] and args.peers == ["torch", "jax"]
    assert args.suites == list(cli.BENCH_SUITES) and args.out == "fastae-bench" and not args.quick
    args = cli._parser().parse_args(["bench", "--peers", "none", "--config", "deep,small,deep", "--threads", "1"])
    assert args.peers == [] and args.config == ["deep", "small"] and args.threads == 1
    assert cli.bench_command(args) == (
        "fastae bench --config deep,small --peers none --suites "
        "train,encode,latency,kernel,coldstart,quality --threads 1 --out fastae-bench"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--config", "huge"],
        ["bench", "--suites", "train,speed"],
        ["bench", "--threads", "0"],
        ["bench", "--config", ","],
        ["bench", "extra"],
    ],
)
def test_bad_bench_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bench_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--quick", "--config", "--peers", "--suites", "--threads", "--out"):
        assert flag in out


def test_a_crashing_availability_check_is_a_failure_not_a_skip(monkeypatch):
    class Crashy(_Peer):
        def unavailable(self):
            raise ImportError("half-installed")

    fake = types.ModuleType("fastae.benchmark.peers")
    fake.PEERS = {"jax": [Crashy("crashy")]}
    monkeypatch.setitem(sys.modules, "fastae.benchmark.peers", fake)
    monkeypatch.setattr("fastae.backends.available_backends", lambda: [])
    crashy, *_floors = lineup.contestants(["jax"], 1, _quiet)
    assert crashy.name == "crashy" and crashy.unavailable() is None
    with pytest.raises(RuntimeError, match="unavailable\\(\\) raised ImportError: half-installed"):
        crashy.encode(None, None, None)


def test_without_matplotlib_the_report_is_written_without_plots(monkeypatch, tmp_path, capsys):
    def no_plots(result, out_dir):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(report, "plots", no_plots)
    monkeypatch.setattr(cli, "run_bench", lambda args, log: _result("ok"))
    assert cli.main(["bench", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.md"]
    assert "plots skipped" in capsys.readouterr().err and "![" not in (tmp_path / "results.md").read_text()


def test_reproduce_command_says_when_the_blas_pin_was_lifted(monkeypatch):
    """A run without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE reproduces only with them unset on machines that set them."""
    args = cli._parser().parse_args(["bench", "--quick", "--peers", "none"])
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    assert cli.bench_command(args).startswith("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE fastae bench --quick ")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    assert cli.bench_command(args).startswith("fastae bench --quick ")
