"""Side-by-side timing on a shared, noisy machine.

Contestants are timed in interleaved rounds (A, B, C, A, B, C, ...) rather than one after another, so a slow
spell of the machine lands on all of them alike; each sample is the mean of enough back-to-back calls to last at
least ``target_s``, and a row reports the median, min and max over samples.
"""

from __future__ import annotations

import statistics
import time


def calibrate(fn, target_s: float) -> int:
    """How many back-to-back calls of ``fn`` take at least ``target_s`` (at least 1)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target_s or n >= 1 << 20:
            return n
        n = max(n * 2, int(n * target_s / max(dt, 1e-9) * 1.1))


def interleaved(fns: dict, *, samples: int, target_s: float, warmup: int = 3) -> dict:
    """Time every callable of ``fns`` (name -> zero-argument function) in interleaved rounds.

    Returns name -> ``{"median_s", "min_s", "max_s", "samples", "inner"}``, seconds per call.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    inner = {name: calibrate(fn, target_s) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(samples):
        for name, fn in fns.items():
            k = inner[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append((time.perf_counter() - t0) / k)
    return {name: {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts), "samples": len(ts),
                   "inner": inner[name]} for name, ts in times.items()}
