"""Side-by-side timing on a shared, noisy machine.

Contestants are timed in interleaved rounds (A, B, C, A, B, C, ...) rather than one after another, so a slow
spell of the machine lands on all of them alike; each sample is the mean of enough back-to-back calls to last at
least ``target_s``, and a row reports the median, min and max over samples.

Every contestant brings its own thread pool (NumPy's OpenBLAS, PyTorch's OpenMP, XLA's, Numba's), and an idle
pool keeps spinning on the cores for a while after its last call: OpenBLAS's workers for about 0.13 s here. A
sample that starts inside that window shares its cores with the previous contestant's spinners, which penalises
whoever uses a pool other than the previous contestant's (measured: an 8 ms encode on Numba's pool ran at half
speed for the first 0.13 s after NumPy products). So with ``settle_s``, each sample starts after a pause of that
length, which lets the previous contestant's workers go to sleep, and one untimed call, which wakes the
contestant's own.
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


def interleaved(fns: dict, *, samples: int, target_s: float, warmup: int = 3, settle_s: float = 0.0) -> dict:
    """Time every callable of ``fns`` (name -> zero-argument function) in interleaved rounds, each sample after a
    pause of ``settle_s`` and one untimed call when there is more than one callable (see the module docstring).

    Returns name -> ``{"median_s", "min_s", "max_s", "samples", "inner"}``, seconds per call.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    inner = {name: calibrate(fn, target_s) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    settle = settle_s if len(fns) > 1 else 0.0
    for _ in range(samples):
        for name, fn in fns.items():
            k = inner[name]
            if settle:
                time.sleep(settle)
                fn()
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            times[name].append((time.perf_counter() - t0) / k)
    return {
        name: {
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "samples": len(ts),
            "inner": inner[name],
        }
        for name, ts in times.items()
    }
