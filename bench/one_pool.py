"""The Numba backend's two modes side by side: serial kernels (the default) against one pool
(``FASTAE_NUMBA_PARALLEL=1``), each as a ratio to the GEMM-only floor measured in the same process.

The mode is fixed when the backend is imported, so each mode runs in its own process, and the two alternate for
``--rounds`` rounds. Within a process every case is timed in a block of its own (median of 11 samples, each at
least 0.1 s of back-to-back calls), the floor first, with a 0.4 s pause between blocks so that neither BLAS's
spinning workers nor Numba's carry over into the next block. Answers are checked by ``fastae bench``; this script
only times. ``fastae bench`` itself interleaves contestants sample by sample, which is fair to modes that share
NumPy's thread pool and unfair to the one-pool mode: after every NumPy product OpenBLAS's idle worker spins for
about 0.13 s on a core the pool needs (README, "Threads").

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/one_pool.py [--rounds 2]
"""

import argparse
import json
import os
import subprocess
import sys
import time

TRAIN = ("shallow", "deep", "vae")
ENCODE = ("small", "shallow", "vae")


def _block(fn):
    """Median seconds per call of ``fn`` timed alone: 11 samples of at least 0.1 s after 3 warm-up calls."""
    from fastae.benchmark import timing

    return timing.interleaved({"case": fn}, samples=11, target_s=0.1, warmup=3)["case"]["median_s"]


def measure():
    """One process: ``{"train shallow": (fastae_s, floor_s), ...}`` for the mode this process imported."""
    from threadpoolctl import threadpool_limits

    from fastae.backends import numba_cpu
    from fastae.benchmark.configs import CONFIGS, ENCODE_BATCH, data, initial_weights
    from fastae.benchmark.contestants import Fastae, GemmFloor, vae_eps

    out = {"mode": numba_cpu.describe()["kernels"]}
    with threadpool_limits(2):
        for suite, names in (("train", TRAIN), ("encode", ENCODE)):
            for name in names:
                cfg = CONFIGS[name]
                params = initial_weights(cfg)
                if suite == "train":
                    x = data(cfg, cfg.batch)
                    eps = vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
                    floor = GemmFloor().train(cfg, params, x, eps).step
                    ours = Fastae("numba", "float32").train(cfg, params, x, eps).step
                else:
                    x = data(cfg, ENCODE_BATCH, seed_offset=1)
                    floor = GemmFloor().encode(cfg, params, x).run
                    ours = Fastae("numba", "float32").encode(cfg, params, x).run
                t_floor = _block(floor)
                time.sleep(0.4)
                t_ours = _block(ours)
                time.sleep(0.4)
                out[f"{suite} {name}"] = (t_ours, t_floor)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return
    runs = {"serial": [], "one pool": []}
    for _ in range(args.rounds):
        for flag, mode in (("0", "serial"), ("1", "one pool")):
            env = dict(os.environ, FASTAE_NUMBA_PARALLEL=flag)
            res = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                                 check=True)
            got = json.loads(res.stdout.strip().splitlines()[-1])
            assert got.pop("mode") == mode, f"asked for {mode}"
            runs[mode].append(got)
    print("| case | serial: fastae / floor | one pool: fastae / floor |")
    print("| --- | --- | --- |")
    for case in runs["serial"][0]:
        cells = []
        for mode in ("serial", "one pool"):
            cells.append(", ".join(f"{o * 1e3:.3g} / {f * 1e3:.3g} ms = {o / f:.2f}x"
                                   for o, f in (r[case] for r in runs[mode])))
        print(f"| {case} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
