"""Tests for the ``fastae`` command line and for the README: its commands and its Python examples."""

import math
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import fastae
from fastae import cli, demo

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
FLOAT = r"-?\d+\.\d+"


def _run(*args, timeout=120):
    """``python -m fastae ARGS`` in a subprocess from the repository root."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "fastae", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


# --- fastae info --------------------------------------------------------------------------------------------
def test_info_in_process(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^fastae\s+{re.escape(fastae.__version__)}$", out, re.M)
    assert re.search(rf"^numpy\s+{re.escape(np.__version__)}$", out, re.M)
    assert re.search(r"^numba\s+\S", out, re.M)
    assert re.search(r"^backends\s+" + re.escape(", ".join(fastae.available_backends())), out, re.M)
    assert re.search(r"^MNIST\s+(found at|not found)", out, re.M)


def test_info_reports_missing_mnist(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FASTAE_MNIST_DIR", str(tmp_path / "nothing"))
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^MNIST\s+not found .*FASTAE_MNIST_DIR.*nothing", out, re.M)


def test_info_as_module():
    proc = _run("info")
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^fastae\s+{re.escape(fastae.__version__)}$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^backends\s+\w", proc.stdout, re.M), proc.stdout


# --- fastae demo --------------------------------------------------------------------------------------------
def test_demo_quick_end_to_end():
    proc = _run("demo", "--quick")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "PCA" in out and "ELBO" in out
    rows = {}
    for label in ("tied Autoencoder", "deep Autoencoder, layerwise"):
        # label, layers, code, autoencoder error, PCA error, ratio, backend, dtype, fit time
        m = re.search(
            rf"^\s*{re.escape(label)}\s+[\d-]+\s+(\d+)\s+({FLOAT})\s+({FLOAT})\s+({FLOAT})\s+(\w+) "
            rf"(float32|float64)\s+({FLOAT}) s$",
            out,
            re.M,
        )
        assert m, f"no table row for {label!r} in:\n{out}"
        code, ae, pca, ratio, backend = int(m[1]), float(m[2]), float(m[3]), float(m[4]), m[5]
        assert backend in fastae.available_backends()
        assert all(math.isfinite(v) and v > 0 for v in (ae, pca))
        assert ratio == pytest.approx(ae / pca, abs=0.01)
        rows[label] = (code, ae, pca)
    # The demo's point: at the same code size, the autoencoders reconstruct held-out digits better than PCA.
    for label, (code, ae, pca) in rows.items():
        assert ae < pca, f"{label} (code {code}) did not beat PCA: {ae} vs {pca}\n{out}"
    m = re.search(rf"^\s*VAE\s+[\d-]+\s+\d+\s+({FLOAT})\s+({FLOAT})\s+\w+ float\d\d\s+{FLOAT} s$", out, re.M)
    assert m, f"no VAE row in:\n{out}"
    vae_elbo = float(m[1])
    m = re.search(rf"^\s*independent pixels\s+-\s+0\s+({FLOAT})", out, re.M)
    assert m, f"no baseline row in:\n{out}"
    assert vae_elbo < 0 and vae_elbo > float(m[1]), "the VAE's ELBO should beat independent pixels"
    assert re.search(rf"total wall time {FLOAT} s", out)


def test_demo_configs_quick_overrides_and_seed():
    full, quick = demo.demo_configs(quick=False, seed=3), demo.demo_configs(quick=True, seed=3)
    assert set(full) == set(quick) == set(demo.DEMO_CONFIGS)
    for name, entry in demo.DEMO_CONFIGS.items():
        assert full[name][2]["random_state"] == 3
        for key, value in entry["quick"].items():
            assert quick[name][2][key] == value
        # Every demo configuration builds a valid estimator of its kind.
        model = getattr(fastae, full[name][0])(**full[name][2])
        assert model.get_params()["random_state"] == 3
    assert demo.DEMO_CONFIGS["deep"]["params"]["pretrain"] == "layerwise"


def test_split_is_fixed_disjoint_and_complete():
    X = np.arange(1797 * 2, dtype=np.float64).reshape(1797, 2)
    tr, te = demo.split_digits(X)
    tr2, te2 = demo.split_digits(X)
    np.testing.assert_array_equal(tr, tr2)
    assert tr.shape == (demo.DEMO_N_TRAIN, 2) and te.shape == (1797 - demo.DEMO_N_TRAIN, 2)
    assert sorted(np.concatenate([tr[:, 0], te[:, 0]]).tolist()) == X[:, 0].tolist()
    assert not np.array_equal(tr, X[: demo.DEMO_N_TRAIN])  # actually shuffled


def test_metrics():
    X = np.array([[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]])
    R = np.array([[0.5, 1.0, 0.5], [0.0, 0.0, 0.0]])
    assert demo.reconstruction_error(X, R) == pytest.approx((0.25 + 2.0) / 2)
    rng = np.random.default_rng(0)
    A = rng.random((50, 6))
    assert demo.pca_error(A, A, 6) == pytest.approx(0.0, abs=1e-20)  # all components: exact reconstruction
    assert demo.pca_error(A, A, 2) > demo.pca_error(A, A, 4) > 0
    p = np.clip(A.mean(axis=0), 1e-7, 1 - 1e-7)
    expected = np.mean(np.sum(A * np.log(p) + (1 - A) * np.log(1 - p), axis=1))
    assert demo.independent_pixel_loglik(A, A) == pytest.approx(expected)


def test_demo_without_sklearn_fails_clearly(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    assert cli.main(["demo", "--quick"]) == 1
    err = capsys.readouterr().err
    assert "pip install fastae[demo]" in err


# --- argument errors and help -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv", [[], ["bogus"], ["demo", "--seed", "x"], ["demo", "--seed", "-1"], ["demo", "--bogus"], ["info", "extra"]]
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_unknown_command_as_module_exits_2():
    proc = _run("bogus")
    assert proc.returncode == 2
    assert "invalid choice: 'bogus'" in proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["info", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    assert "usage: fastae" in capsys.readouterr().out


def test_console_script_points_to_main():
    scripts = {ep.name: ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "fastae"}
    assert "fastae" in scripts, "the fastae console script is not installed (pip install -e .)"
    assert scripts["fastae"].value == "fastae.cli:main"
    assert scripts["fastae"].load() is cli.main


# --- README -------------------------------------------------------------------------------------------------
def _readme_blocks(lang):
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


README_PYTHON = _readme_blocks("python")


def test_readme_has_an_example_per_model_kind():
    text = "\n".join(README_PYTHON)
    assert len(README_PYTHON) >= 6
    for needle in (
        'pretrain="layerwise"',
        "noise=(",
        "sparsity=(",
        "contractive=",
        "fastae.VAE(",
        ".sample(",
        ".elbo(",
        ".save(",
        "fastae.load(",
    ):
        assert needle in text, f"README examples do not show {needle}"


@pytest.mark.parametrize("index", range(len(README_PYTHON)))
def test_readme_python_example_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # an example that writes a file must not write into the repository
    code = compile(README_PYTHON[index], f"README.md python block {index + 1}", "exec")
    exec(code, {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "every README example prints something to look at"


def test_readme_quick_start_commands_and_ci_agree():
    bash = [line for block in _readme_blocks("bash") for line in block.splitlines() if line.strip()]
    demo = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[demo]" && fastae demo'
    tests = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && python -m pytest -q'
    assert bash == [demo, tests]
    # CI runs the README's test command, step for step (pip quieted and upgraded first; the lint extra and its
    # checks before the tests).
    ci = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "python3 -m venv .venv" in ci and ". .venv/bin/activate" in ci
    assert 'python -m pip install --quiet -e ".[test,lint]"' in ci
    assert ci[-4:] == ["ruff check .", "ruff format --check .", "mypy", "python -m pytest -q"]
