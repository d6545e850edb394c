"""Encoding 8192 rows into a new array (``encode(X)``) and into a preallocated one (``encode(X, out=buf)``), each
as a share of the GEMM-only floor, which also writes into preallocated arrays. Timed side by side with
``fastae.benchmark.timing.interleaved`` (each sample after a 0.15 s pause, as ``fastae bench`` does).

A new array is fresh memory: glibc returns a large freed block to the kernel and maps it again on the next
allocation, so the product's threads first fault every page in (README, "Encoding into a preallocated array").
``fastae bench`` times ``encode(X)``, what most callers write; this script measures what ``out=`` saves.
Before timing it checks that both forms give the same bits.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/encode_out.py [--configs small,shallow,vae,deep]
"""

import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="small,shallow,vae,deep")
    ap.add_argument("--samples", type=int, default=11)
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    from fastae.benchmark import timing
    from fastae.benchmark.configs import CONFIGS, ENCODE_BATCH, data, initial_weights
    from fastae.benchmark.contestants import Fastae, GemmFloor

    print("| config | encode(X) | encode(X, out=buf) | GEMM-only floor |")
    print("| --- | ---: | ---: | ---: |")
    with threadpool_limits(2):
        for name in args.configs.split(","):
            cfg = CONFIGS[name]
            params = initial_weights(cfg)
            x = data(cfg, ENCODE_BATCH, seed_offset=1)
            model = Fastae("numba", "float32").encode(cfg, params, x).model
            x = np.ascontiguousarray(x, dtype=np.float32)
            buf = np.empty((x.shape[0], cfg.code_size), np.float32)
            if not np.array_equal(model.encode(x, out=buf), model.encode(x)):
                raise SystemExit(f"{name}: encode(X, out=buf) differs from encode(X)")
            fns = {"new": lambda: model.encode(x), "out": lambda: model.encode(x, out=buf),
                   "floor": GemmFloor().encode(cfg, params, x).run}
            t = {k: v["median_s"] for k, v in
                 timing.interleaved(fns, samples=args.samples, target_s=0.1, settle_s=0.15).items()}
            cells = [f"{t[k] * 1e6:.0f} µs ({t['floor'] / t[k]:.0%})" for k in ("new", "out")]
            print(f"| {name} | {cells[0]} | {cells[1]} | {t['floor'] * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
