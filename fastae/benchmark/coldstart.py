"""The "coldstart" suite: whole-process wall time of a fresh interpreter doing one small job.

Each case is a ``python -c ...`` command run as a subprocess, timed with ``time.perf_counter`` around
``subprocess.run``; the cases are run in interleaved rounds (A, B, C, A, B, C, ...) so that a slow spell of the
machine lands on all of them alike, and each row reports the median, min and max over ``repeats`` runs.

* ``python -c pass``: the interpreter alone (kind ``baseline``); every other row also reports
  ``over_baseline_s``, its median minus this one.
* ``import fastae``, and ``import fastae; fastae.load(p).encode(x)`` for a small saved model and one row, with
  the Numba cache cold (``NUMBA_CACHE_DIR`` a fresh empty folder for every run) and warm (a persistent folder
  primed by one run). The load-and-encode rows also report ``heavy_modules``: which heavy libraries that
  command leaves in ``sys.modules`` (scikit-learn, SciPy and matplotlib must not be among them:
  ``forbidden_modules`` lists any that are), and the encode's output is checked against the parent's.
* ``import torch`` and ``import jax`` (kind ``peer``), skipped with the reason when not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from .configs import CONFIGS, data
from .contestants import FASTAE, PEER

SUITE = "coldstart"
BASELINE = "baseline"
REPEATS = {True: 5, False: 10}
# Modules worth knowing about when they are imported at start-up. The inference path must never import the
# FORBIDDEN ones (issue 4: scikit-learn, scipy.stats, matplotlib); Numba itself loads scipy.linalg's BLAS bindings.
HEAVY = (
    "sklearn",
    "scipy",
    "scipy.stats",
    "matplotlib",
    "pandas",
    "torch",
    "jax",
    "cupy",
    "dask",
    "tqdm",
    "safetensors",
    "numba",
    "llvmlite",
    "threadpoolctl",
)
FORBIDDEN = ("sklearn", "scipy.stats", "matplotlib")
CONFIG = "small"
TIMEOUT_S = 300
# The script that the load-and-encode check runs (the timed command is the same without the report).
_ENCODE = "import numpy as np, fastae; h = fastae.load({path!r}).encode(np.full((1, {n}), 0.5, np.float32))"
_REPORT = (
    "; import sys, json; print(json.dumps({{'heavy': sorted(set(sys.modules) & set({heavy!r})), 'code': h.tolist()}}))"
)


@dataclass
class Case:
    """One command. ``cache`` is ``None`` (NUMBA_CACHE_DIR inherited), ``"cold"`` or ``"warm"``."""

    name: str
    kind: str
    code: str
    cache: str | None = None
    module: str | None = None  # a peer's top-level module: skipped when it is not installed
    times: list = field(default_factory=list)


def save_model(folder) -> tuple[str, np.ndarray]:
    """Write the small configuration's model (one epoch on its data, on the backend users get: ``"auto"``) to
    ``folder``; returns the path and the code the model gives for the row the command encodes."""
    cfg = CONFIGS[CONFIG]
    model = cfg.model(dtype="float32", backend="auto", random_state=0).set_params(epochs=1)
    model.fit(data(cfg, 256))
    path = os.path.join(folder, "small.safetensors")
    model.save(path)
    code = model.encode(np.full((1, cfg.n_features), 0.5, np.float32))
    return path, np.asarray(code)


def cases(model_path: str) -> list[Case]:
    n = CONFIGS[CONFIG].n_features
    encode = _ENCODE.format(path=model_path, n=n)
    return [
        Case("python -c pass", BASELINE, "pass"),
        Case("import numpy", BASELINE, "import numpy"),
        Case("import fastae", FASTAE, "import fastae"),
        Case("fastae load+encode, Numba cache cold", FASTAE, encode, cache="cold"),
        Case("fastae load+encode, Numba cache warm", FASTAE, encode, cache="warm"),
        Case("import torch", PEER, "import torch", module="torch"),
        Case("import jax", PEER, "import jax", module="jax"),
    ]


def _env(numba_cache: str | None) -> dict:
    env = dict(os.environ)
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    return env


def run_once(code: str, cwd: str, numba_cache: str | None = None) -> float:
    """Wall time of one ``python -c code`` in a fresh interpreter; raises ``RuntimeError`` if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=_env(numba_cache), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"exit status {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return dt


def check_encode(model_path: str, expected: np.ndarray, cwd: str, numba_cache: str) -> dict:
    """Run the load-and-encode command once with a report appended; returns ``{"heavy": [...], "error": e}``
    with ``e`` the relative error of the subprocess's code against ``expected``."""
    n = CONFIGS[CONFIG].n_features
    code = _ENCODE.format(path=model_path, n=n) + _REPORT.format(heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=_env(numba_cache), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    if proc.returncode != 0:
        raise RuntimeError(f"exit status {proc.returncode}: {proc.stderr.strip()[-500:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    got = np.asarray(out["code"], dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    err = (
        float("inf")
        if got.shape != want.shape
        else (float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-30))
    )
    return {"heavy": out["heavy"], "error": err}


def _missing(module: str) -> str | None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"{module} is not installed"


def run(quick: bool, log=print, repeats: int | None = None, peers: bool = True) -> list[dict]:
    """Time every case ``repeats`` times (default 5 quick, 10 full) in interleaved rounds; returns rows.

    ``peers=False`` leaves out ``import torch`` and ``import jax`` (as skipped rows). Never raises for a missing
    peer or a failing command: the row says so.
    """
    repeats = REPEATS[bool(quick)] if repeats is None else int(repeats)
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="fastae-coldstart-") as tmp:
        model_path, expected = save_model(tmp)
        warm_cache = tempfile.mkdtemp(prefix="numba-warm-", dir=tmp)
        all_cases = cases(model_path)
        notes = {}
        for c in all_cases:
            if c.module is not None:
                reason = _missing(c.module) if peers else "peers left out (peers=False)"
                if reason:
                    notes[c.name] = ("skipped", reason)
        extra = {}
        # Checked before timed: the encode gives the parent's answer, and what it imported is recorded. This
        # run also primes the warm Numba cache.
        try:
            chk = check_encode(model_path, expected, tmp, warm_cache)
            forbidden = sorted(set(chk["heavy"]) & set(FORBIDDEN))
            extra = {"heavy_modules": chk["heavy"], "forbidden_modules": forbidden, "error": chk["error"]}
            if forbidden:
                log(f"  coldstart: load+encode imports {forbidden}, which the inference path must not need")
            if not chk["error"] <= 1e-6:
                for c in all_cases:
                    if c.cache is not None:
                        notes[c.name] = (
                            "WRONG",
                            f"the subprocess's code differs from the parent's by {chk['error']:.3g}",
                        )
        except Exception as exc:
            for c in all_cases:
                if c.cache is not None:
                    notes[c.name] = ("failed", f"{type(exc).__name__}: {exc}")
        timed = [c for c in all_cases if c.name not in notes]
        for _ in range(repeats):
            for c in timed:
                if c.name in notes:
                    continue
                cache = None
                if c.cache == "cold":
                    cache = tempfile.mkdtemp(prefix="numba-cold-", dir=tmp)
                elif c.cache == "warm":
                    cache = warm_cache
                try:
                    c.times.append(run_once(c.code, tmp, cache))
                except Exception as exc:
                    notes[c.name] = ("failed", f"{type(exc).__name__}: {exc}")
                finally:
                    if c.cache == "cold":
                        shutil.rmtree(cache, ignore_errors=True)
        baseline = None
        for c in all_cases:
            row = {
                "suite": SUITE,
                "config": CONFIG if c.cache else "-",
                "contestant": c.name,
                "kind": c.kind,
                "command": f"python -c {c.code!r}",
            }
            if c.cache is not None:
                row["numba_cache"] = c.cache
                row.update(extra)
            if c.name in notes:
                status, note = notes[c.name]
                row.update(status=status, note=note)
                log(f"  coldstart {c.name:38s} {status}: {note}")
            else:
                ts = c.times
                row.update(
                    status="ok", median_s=statistics.median(ts), min_s=min(ts), max_s=max(ts), samples=len(ts), inner=1
                )
                if c.name == "python -c pass":
                    baseline = row["median_s"]
                if baseline is not None:
                    row["over_baseline_s"] = row["median_s"] - baseline
                over = f"  (+{row['over_baseline_s'] * 1e3:7.1f} ms over python)" if baseline is not None else ""
                log(
                    f"  coldstart {c.name:38s} median {row['median_s'] * 1e3:8.1f} ms  min "
                    f"{row['min_s'] * 1e3:8.1f}  max {row['max_s'] * 1e3:8.1f}{over}"
                )
            rows.append(row)
    if "heavy_modules" in extra:
        log(f"  coldstart load+encode imported: {', '.join(extra['heavy_modules']) or 'no heavy module'}")
    # With PYTHONDONTWRITEBYTECODE set, modules without an existing .pyc are compiled afresh by every process.
    for row in rows:
        row["pythondontwritebytecode"] = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    return rows
