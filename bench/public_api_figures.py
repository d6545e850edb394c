"""Public-API figures of the fastae tree first on sys.path (for before/after comparisons of two trees, run alternately
in separate processes): a training step (partial_fit of an epoch of copies of the batch, per step), encode of 8192
rows, encode of one row; on backend="numba" in float32 unless FIG_BACKEND / FIG_PRECISION say otherwise. Prints JSON:
{config: {"train", "encode", "latency"} in seconds}."""

import json
import os
import statistics as st
import time

import numpy as np

from fastae.benchmark.configs import CONFIGS

REPS = int(os.environ.get("REPS", "11"))
BACKEND = os.environ.get("FIG_BACKEND", "numba")
PRECISION = os.environ.get("FIG_PRECISION", "float32")
out = {}
r = np.random.default_rng(0)
for name, cfg in CONFIGS.items():
    m = cfg.model(backend=BACKEND).set_params(epochs=0, shuffle=False, precision=PRECISION)
    x = r.random((cfg.batch, cfg.n_features)).astype(np.float32)
    m.fit(x[:1])
    steps = int(max(1, min(64, round(2e7 / cfg.train_flops()))))
    epoch = np.ascontiguousarray(np.tile(x, (steps, 1)))
    X8 = r.random((8192, cfg.n_features)).astype(np.float32)
    x1 = X8[:1].copy()
    for _ in range(3):
        m.partial_fit(epoch)
        m.encode(X8)
        m.encode(x1)

    def med(f, k, reps=REPS):
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            f()
            ts.append((time.perf_counter() - t) / k)
        return st.median(ts)

    def lat():
        for _ in range(200):
            m.encode(x1)

    out[name] = {
        "train": med(lambda: m.partial_fit(epoch), steps),
        "encode": med(lambda: m.encode(X8), 1),
        "latency": med(lat, 200),
    }
print(json.dumps(out))
