"""Run the suites: check every contestant's answer against the float64 reference, then time the right ones side
by side, and return machine-readable rows.

A row is a dict with: ``suite`` (train, encode, latency, gemm), ``config``, ``contestant``, ``kind`` (fastae,
peer, floor), ``status`` (``ok``; ``skipped`` with the reason in ``note``; ``WRONG`` when the answer failed its
check, in which case it is not timed), ``median_s``/``min_s``/``max_s`` per call, ``samples``, ``inner``,
``flops``, ``gflops`` (at the median), ``frac_peak`` (of the measured float32 GEMM peak; float32 rows only),
``rows_per_s`` (encode suites), ``error`` (relative, against the reference) and ``ratio_to_best_peer`` (median
over the fastest peer's median of the same precision in the same suite and configuration: below 1 is faster than
every peer).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from . import timing
from .configs import CONFIGS, ENCODE_BATCH, data, initial_weights
from .contestants import FLOOR, PEER, Fastae, GemmFloor, vae_eps

# Relative error allowed against the float64 reference. Correct float32 contestants land near 1e-7; one Adam step
# moves the loss by about 1.6e-3 on the small config, so the bounds must sit far below that for a step that
# does nothing (or the wrong thing) to be caught.
TRAIN_TOL = 1e-5
ENCODE_TOL = 1e-4
# bfloat16 contestants: the codes within issue 13's bar (largest error over the largest code). A step's loss within
# 5e-4: a module kept in bf16 rounds its weights too, which moved the loss by 1.4-2.4e-4 here, while one Adam step
# moves it by 1.6e-3 (small) to 3.8e-2 (deep), so a step that does nothing is still caught.
TOLERANCES = {"float32": (TRAIN_TOL, ENCODE_TOL), "bfloat16": (5e-4, 2e-2)}
GEMM_N = 2048

SUITES = ("train", "encode", "latency")


def blas_info() -> dict:
    """Which BLAS kernels NumPy runs and the environment that pins them: ``OPENBLAS_CORETYPE`` (set on some
    machines here for old OpenBLAS builds) forces older kernels and understates the GEMM peak."""
    from threadpoolctl import threadpool_info

    pinned = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    libs = [
        {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for d in threadpool_info()
        if d.get("user_api") == "blas"
    ]
    warning = None
    if pinned:
        warning = (
            f"NumPy's OpenBLAS kernels are pinned by {pinned}: the GEMM peak and every NumPy/BLAS-based "
            f"contestant are understated. For a fair run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
            f"fastae bench ..."
        )
    return {"libraries": libs, "pinned_env": pinned, "warning": warning}


def settings(quick: bool) -> dict:
    """Timing settings (:func:`timing.interleaved`). ``settle_s`` outlasts OpenBLAS's idle spinning (about
    0.13 s here), so no contestant's sample shares the cores with the previous one's threads."""
    if quick:
        return {"samples": 5, "target_s": 0.02, "warmup": 2, "settle_s": 0.0}
    return {"samples": 15, "target_s": 0.1, "warmup": 3, "settle_s": 0.15}


def gemm_peak(quick: bool) -> dict:
    """float32 GEMM throughput of NumPy's BLAS on ``GEMM_N``² matrices: the machine's practical limit."""
    r = np.random.default_rng(0)
    a = r.random((GEMM_N, GEMM_N), dtype=np.float32)
    b = r.random((GEMM_N, GEMM_N), dtype=np.float32)
    out = np.empty_like(a)
    res = timing.interleaved({"gemm": lambda: np.matmul(a, b, out=out)}, **settings(quick))["gemm"]
    flops = 2 * GEMM_N**3
    return {
        "suite": "gemm",
        "config": f"{GEMM_N}x{GEMM_N}",
        "contestant": "numpy matmul",
        "kind": FLOOR,
        "status": "ok",
        "flops": flops,
        "gflops": flops / res["median_s"] / 1e9,
        "frac_peak": 1.0,
        **res,
    }


def _rel_error(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(want))), 1e-30)
    return float(np.max(np.abs(got - want))) / scale


def _suite_cases(suite, cfg, contestants, log, params=None):
    """Build, check and return ``(cases to time, rows)`` for one suite of one configuration, every contestant
    starting from ``params`` (the configuration's initial weights unless given)."""
    params = initial_weights(cfg) if params is None else params
    rows, fns = [], {}
    if suite == "train":
        x = data(cfg, cfg.batch)
        eps = vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
        ref = Fastae("numpy", "float64").train(cfg, params, x, eps)
        ref.step()
        want = ref.loss()
    else:
        x = data(cfg, ENCODE_BATCH if suite == "encode" else 1, seed_offset=1)
        ref = Fastae("numpy", "float64").encode(cfg, params, x)
        ref.run()
        want = ref.result()
    for c in contestants:
        precision = getattr(c, "precision", "float32")
        row = {
            "suite": suite,
            "config": cfg.name,
            "contestant": c.name,
            "kind": c.kind,
            "precision": precision,
            "error": None,
        }
        reason = c.unavailable()
        if reason:
            rows.append({**row, "status": "skipped", "note": reason})
            continue
        try:
            if suite == "train":
                case = c.train(cfg, params, x, eps)
                case.step()
                got = case.loss()
                err = None if c.kind == FLOOR else abs(got - want) / abs(want)
                fn, per = case.run, case.steps
            else:
                case = c.encode(cfg, params, x)
                case.run()
                err = None if c.kind == FLOOR else _rel_error(case.result(), want)
                fn, per = case.run, 1
        except Exception as exc:  # a contestant that crashes is reported, not hidden, and the others still run
            rows.append({**row, "status": "failed", "note": f"{type(exc).__name__}: {exc}"})
            log(f"  {suite} {cfg.name} {c.name}: FAILED {type(exc).__name__}: {exc}")
            continue
        row["error"] = err
        if precision not in TOLERANCES:
            rows.append({**row, "status": "failed", "note": f"unknown precision {precision!r}"})
            continue
        tol = TOLERANCES[precision][0 if suite == "train" else 1]
        if err is not None and not err <= tol:
            rows.append({**row, "status": "WRONG", "note": f"error {err:.3g} against the reference exceeds {tol}"})
            log(f"  {suite} {cfg.name} {c.name}: WRONG ANSWER, error {err:.3g} > {tol}; not timed")
            continue
        rows.append({**row, "status": "ok", "steps_per_call": per})
        fns[c.name] = fn
    return fns, rows


def run(configs=None, contestants=None, suites=SUITES, quick=False, log=print) -> dict:
    """Run ``suites`` for ``configs`` (names) with ``contestants``; returns ``{"meta": ..., "rows": [...]}``."""
    configs = list(configs or CONFIGS)
    contestants = contestants if contestants is not None else [Fastae("numpy"), GemmFloor()]
    st = settings(quick)
    started = time.time()
    blas = blas_info()
    if blas["warning"]:
        log(f"WARNING: {blas['warning']}")
    peak = gemm_peak(quick)
    log(f"float32 GEMM peak ({GEMM_N}x{GEMM_N}): {peak['gflops']:.1f} GFLOP/s")
    rows = [peak]
    for name in configs:
        cfg = CONFIGS[name]
        params = initial_weights(cfg)
        for suite in suites:
            fns, suite_rows = _suite_cases(suite, cfg, contestants, log, params)
            timed = timing.interleaved(fns, **st)
            for row in suite_rows:
                if row["status"] != "ok":
                    continue
                row.update(timed[row["contestant"]])
                per = row["steps_per_call"]  # a timed call of several training steps: report one step
                for k in ("median_s", "min_s", "max_s"):
                    row[k] /= per
                n_rows = cfg.batch if suite == "train" else (ENCODE_BATCH if suite == "encode" else 1)
                row["flops"] = cfg.train_flops() if suite == "train" else cfg.encode_flops(n_rows)
                row["gflops"] = row["flops"] / row["median_s"] / 1e9
                # the measured peak is float32's: a bf16 row's fraction of it would say nothing
                row["frac_peak"] = row["gflops"] / peak["gflops"] if row["precision"] == "float32" else None
                if suite != "train":
                    row["rows_per_s"] = n_rows / row["median_s"]
            for row in suite_rows:  # against the fastest peer of the same precision
                peers = [
                    r["median_s"]
                    for r in suite_rows
                    if r["kind"] == PEER and r["status"] == "ok" and r["precision"] == row["precision"]
                ]
                if row["status"] == "ok" and peers:
                    row["ratio_to_best_peer"] = row["median_s"] / min(peers)
                if row["status"] == "ok":
                    peak_note = "" if row["frac_peak"] is None else f", {row['frac_peak']:.0%} of peak"
                    log(
                        f"  {suite:8s} {name:8s} {row['contestant']:22s} median {row['median_s'] * 1e6:10.1f} us"
                        f"  ({row['gflops']:.1f} GFLOP/s{peak_note})"
                    )
            rows.extend(suite_rows)
    meta = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "quick": quick,
        "settings": st,
        "seconds": time.time() - started,
        "gemm_peak_gflops": peak["gflops"],
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "configs": configs,
        "contestants": [c.name for c in contestants],
        "blas": blas,
        "cpu_count": os.cpu_count(),
    }
    return {"meta": meta, "rows": rows, "wrong": [r for r in rows if r.get("status") in ("WRONG", "failed")]}
