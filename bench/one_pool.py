"""The two Numba backends side by side: ``numba`` (serial kernels beside NumPy's BLAS threads) against
``numba-pool`` (one pool), each as a ratio to the GEMM-only floor measured in the same process.

Both run in one process, alternating for ``--rounds`` rounds. Every case is timed in a block of its own (median of
11 samples, each at least 0.1 s of back-to-back calls), the floor first, with a 0.4 s pause between blocks so that
neither BLAS's spinning workers nor Numba's carry over into the next block. Answers are checked by ``fastae
bench``; this script only times. ``fastae bench`` itself interleaves contestants sample by sample, which is fair
to backends that share NumPy's thread pool and unfair to the pool: after every NumPy product OpenBLAS's idle
worker spins on a core the pool needs (docs/performance.md, "Threads").

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/one_pool.py [--rounds 2]
"""

import argparse
import time

TRAIN = ("shallow", "deep", "vae")
ENCODE = ("small", "shallow", "vae")
BACKENDS = ("numba", "numba-pool")


def _block(fn):
    """Median seconds per call of ``fn`` timed alone: 11 samples of at least 0.1 s after 3 warm-up calls."""
    from fastae.benchmark import timing

    return timing.interleaved({"case": fn}, samples=11, target_s=0.1, warmup=3)["case"]["median_s"]


def measure():
    """``{backend: {"train shallow": (fastae_s, floor_s), ...}}``, one round."""
    from threadpoolctl import threadpool_limits

    from fastae.benchmark.configs import CONFIGS, ENCODE_BATCH, data, initial_weights
    from fastae.benchmark.contestants import Fastae, GemmFloor, vae_eps

    out = {b: {} for b in BACKENDS}
    with threadpool_limits(2):
        for suite, names in (("train", TRAIN), ("encode", ENCODE)):
            for name in names:
                cfg = CONFIGS[name]
                params = initial_weights(cfg)
                for backend in BACKENDS:
                    if suite == "train":
                        x = data(cfg, cfg.batch)
                        eps = vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
                        floor = GemmFloor().train(cfg, params, x, eps).run
                        case = Fastae(backend, "float32").train(cfg, params, x, eps)
                        ours, steps = case.run, case.steps
                    else:
                        x = data(cfg, ENCODE_BATCH, seed_offset=1)
                        floor = GemmFloor().encode(cfg, params, x).run
                        ours, steps = Fastae(backend, "float32").encode(cfg, params, x).run, 1
                    t_floor = _block(floor)
                    time.sleep(0.4)
                    t_ours = _block(ours) / steps
                    time.sleep(0.4)
                    out[backend][f"{suite} {name}"] = (t_ours, t_floor)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from fastae.backends import registry

    reason = registry.unavailable("numba-pool")
    if reason:
        raise SystemExit(f"numba-pool cannot run here: {reason}")
    runs = [measure() for _ in range(args.rounds)]
    print("| case | numba: fastae / floor | numba-pool: fastae / floor |")
    print("| --- | --- | --- |")
    for case in runs[0]["numba"]:
        cells = [
            ", ".join(f"{o * 1e3:.3g} / {f * 1e3:.3g} ms = {o / f:.2f}x" for o, f in (r[b][case] for r in runs))
            for b in BACKENDS
        ]
        print(f"| {case} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
