"""Encoding 8192 rows into a new array (``encode(X)``) and into a preallocated one (``encode(X, out=buf)``), each
as a share of the GEMM-only floor, which also writes into preallocated arrays. Timed side by side with
``fastae.benchmark.timing.interleaved`` (each sample after a 0.15 s pause, as ``fastae bench`` does).

A new array may be fresh memory, which the product's threads first fault in page by page. Whether it is depends
on what the caller does with the previous result, so ``encode(X)`` is timed twice: with the previous result kept
until the next call replaces it (what ``fastae bench`` does, and ``codes = model.encode(batch)`` in a loop), and
with each result dropped at once (then glibc returns the freed block to the kernel and maps a new one for the
next call). Before timing, the script checks that ``out=`` gives the same bits as a new array.

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

    print(
        "| config | encode(X), previous result kept | encode(X), each result dropped | encode(X, out=buf) | "
        "GEMM-only floor |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
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
            last = [None]

            def kept():
                last[0] = model.encode(x)

            fns = {
                "kept": kept,
                "dropped": lambda: model.encode(x),
                "out": lambda: model.encode(x, out=buf),
                "floor": GemmFloor().encode(cfg, params, x).run,
            }
            t = {
                k: v["median_s"]
                for k, v in timing.interleaved(fns, samples=args.samples, target_s=0.1, settle_s=0.15).items()
            }
            cells = [f"{t[k] * 1e6:.0f} µs ({t['floor'] / t[k]:.0%})" for k in ("kept", "dropped", "out")]
            print(f"| {name} | {' | '.join(cells)} | {t['floor'] * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
