"""The roofline of one training step and of an encode on a GPU, on paper, for the benchmark configurations.

For an NVIDIA H200 (defaults; change them with the options): about 4.8 TB/s of memory bandwidth, 60 TFLOP/s in
FP32, 495 in TF32 and 790 in bfloat16 (as measured on one). For each configuration it puts the matrix products'
time at peak beside the bytes the kernels around them move (elementwise passes and the optimiser) and the count of
kernel launches and cuBLAS calls one step makes, which it counts by running one step of the real backend on the
CPU stand-in of CuPy (tests/cupy_standin). Prints a Markdown table (docs/performance.md quotes it).

    python bench/gpu_roofline.py [--launch-us 6] [--bandwidth 4.8e12] [--fp32 60e12] [--tf32 495e12] [--bf16 790e12]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from fastae.benchmark.configs import CONFIGS, ENCODE_BATCH  # noqa: E402


def _epilogue_bytes(cfg, rows, train=True):
    """Bytes the kernels around the products move: each layer's output written by its product and read and
    written by its bias-activation pass; in training, the output layer's loss pass (reads a and x, writes delta),
    each backward activation pass (reads dh and h, writes), each bias gradient (reads delta), and Adam (reads p,
    g, m, v and writes m, v, p: 7 words per parameter)."""
    layers = cfg.layers() if train else cfg.encoder_layers()
    total = 0
    for _, o in layers:
        total += 2 * rows * o * 4  # bias + activation in place
        if train:
            total += 3 * rows * o * 4 + rows * o * 4  # activation backward, column sum
    if train:
        total += 3 * rows * cfg.n_features * 4  # the fused loss pass over the output
        total += 7 * cfg.n_params() * 4
    return total


def _launches(cfg):
    """``(kernels, gemms, elementwise, copies to the device, syncs)`` of one training step inside a fit: the counts
    of a fit of three batches less those of a fit of two (the same fit's once-only work, such as the input check,
    cancels), on the stand-in with batches of 8 rows (the counts do not depend on the batch). The optimiser's
    tables are uploaded in the first two steps only, so the difference is a later step's."""
    from fastae.backends import registry
    from tests import cupy_standin, gpu_standin

    gpu = gpu_standin.load()
    registry._MODULES["cupy"] = registry._loaded["cupy"] = gpu
    counts = []
    for batches in (2, 3):
        X = gpu.cp.asarray(np.random.default_rng(0).random((8 * batches, cfg.n_features), dtype=np.float32))
        m = cfg.model(backend="cupy").set_params(batch_size=8, epochs=1, shuffle=False)
        cupy_standin.reset()
        m.fit(X)
        c = cupy_standin.counters
        counts.append(np.array([c.kernels, c.blas, c.elementwise, c.h2d, c.syncs]))
    return tuple(int(v) for v in counts[1] - counts[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--launch-us", type=float, default=6.0, help="host cost of one launch or cuBLAS call, µs")
    ap.add_argument("--bandwidth", type=float, default=4.8e12)
    ap.add_argument("--fp32", type=float, default=60e12)
    ap.add_argument("--tf32", type=float, default=495e12)
    ap.add_argument("--bf16", type=float, default=790e12)
    a = ap.parse_args(argv)
    print(
        "| config | step GFLOP | GEMM at peak fp32 / tf32 / bf16 | epilogue MB (at bandwidth) | "
        "launches per step: kernels + gemm + elementwise (at launch cost) | copies to the device, syncs | "
        "encode 8192 rows: GEMM fp32 / epilogue |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, cfg in CONFIGS.items():
        flops = cfg.train_flops()
        eb = _epilogue_bytes(cfg, cfg.batch)
        k, g, e, h2d, syncs = _launches(cfg)
        enc_f, enc_b = cfg.encode_flops(ENCODE_BATCH), _epilogue_bytes(cfg, ENCODE_BATCH, train=False)
        print(
            f"| {name} | {flops / 1e9:.4g} | {flops / a.fp32 * 1e6:.2f} / {flops / a.tf32 * 1e6:.2f} / "
            f"{flops / a.bf16 * 1e6:.2f} µs | {eb / 1e6:.1f} MB ({eb / a.bandwidth * 1e6:.1f} µs) | "
            f"{k} + {g} + {e} ({(k + g + e) * a.launch_us:.0f} µs) | {h2d}, {syncs} | "
            f"{enc_f / a.fp32 * 1e6:.0f} µs / {enc_b / a.bandwidth * 1e6:.0f} µs |"
        )


if __name__ == "__main__":
    main()
