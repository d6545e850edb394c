"""fastae on a GPU (``backend="cupy"``) against PyTorch on CUDA, side by side in one process.

For each benchmark configuration (fastae/benchmark/configs.py): one training step (forward, backward, Adam) on a
batch already on the device, and an encode of 8192 rows from device memory and from host memory, in float32,
TF32 and bfloat16 for both. Contestants alternate within every sample; each figure is the median of the samples.
Writes ``gpu_bench.json`` and ``gpu_bench.md`` into the folder given.

    python bench/gpu_bench.py OUT [--configs small,shallow,deep,vae] [--samples 11] [--steps 20] [--standin]

``--standin`` runs fastae on the CPU stand-in of CuPy (tests/cupy_standin: the same backend code, kernels
emulated): a check of this script where there is no GPU, whose times mean nothing.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastae.benchmark import configs, objective, peers  # noqa: E402
from fastae.benchmark.configs import CONFIGS, ENCODE_BATCH  # noqa: E402


def _fastae(cp, cfg, precision, X):
    """``(step, encode_device, encode_host)`` callables of a fastae model on the GPU with the shared start."""
    m = cfg.model(backend="cupy").set_params(epochs=0, precision=precision).fit(X[:2])
    m.load_state_dict(configs.initial_weights(cfg))
    m.set_params(epochs=1, shuffle=False)
    xb = cp.asarray(X[: cfg.batch])
    xd, xh = cp.asarray(X), np.ascontiguousarray(X)
    return (lambda: m.partial_fit(xb)), (lambda: m.encode(xd)), (lambda: m.encode(xh))


def _torch(cfg, precision, X):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    loss_fn, encode_fn = peers._torch_fns(objective.layout(cfg))
    P = {k: torch.nn.Parameter(torch.from_numpy(v.copy()).cuda()) for k, v in configs.initial_weights(cfg).items()}
    opt = torch.optim.Adam(list(P.values()), lr=configs.LEARNING_RATE, fused=True)
    xb = torch.from_numpy(X[: cfg.batch].copy()).cuda()
    eps = torch.randn(cfg.batch, cfg.latent, device="cuda") if cfg.kind == "vae" else None
    xd, xh = torch.from_numpy(X.copy()).cuda(), torch.from_numpy(X.copy()).pin_memory()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = loss_fn(P, xb, eps)
        loss.backward()
        opt.step()

    def encode(x):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            return encode_fn(P, x.cuda(non_blocking=True))

    return step, (lambda: encode(xd)), (lambda: encode(xh))


def _timed(fn, reps, sync):
    sync()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t) / reps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--configs", default="small,shallow,deep,vae")
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--standin", action="store_true")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.standin:
        from fastae.backends import registry
        from tests import gpu_standin

        gpu = gpu_standin.load()
        registry.register("cupy", gpu)
        cp = gpu.cp
    else:
        import cupy as cp
    try:
        import torch

        torch_reason = None if torch.cuda.is_available() else "torch sees no CUDA device"
    except ImportError as exc:
        torch_reason = f"torch is not installed ({exc})"
    device = (
        "stand-in (CPU emulation: times mean nothing)"
        if args.standin
        else cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    )
    rows, lines = (
        [],
        [f"# fastae GPU benchmark\n\ndevice: {device}; host: {platform.processor() or platform.machine()}", ""],
    )
    if torch_reason:
        lines.append(f"PyTorch skipped: {torch_reason}\n")
    lines += [
        "| config | precision | what | fastae | torch | fastae / torch |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        X = configs.data(cfg, ENCODE_BATCH)
        for precision in ("float32", "tf32", "bfloat16"):
            contestants = {"fastae": _fastae(cp, cfg, precision, X)}
            syncs = {"fastae": cp.cuda.Device().synchronize}
            if torch_reason is None:
                contestants["torch"] = _torch(cfg, precision, X)
                syncs["torch"] = torch.cuda.synchronize
            for what, i, reps in (
                ("train step", 0, args.steps),
                ("encode 8192 (device)", 1, 3),
                ("encode 8192 (host)", 2, 3),
            ):
                for c, fns in contestants.items():  # warm-up: compile, allocate, tune
                    _timed(fns[i], 2, syncs[c])
                times = {c: [] for c in contestants}
                for _ in range(args.samples):
                    for c, fns in contestants.items():
                        times[c].append(_timed(fns[i], reps, syncs[c]))
                med = {c: statistics.median(v) for c, v in times.items()}
                rows.append(dict(config=name, precision=precision, what=what, **{f"{c}_s": v for c, v in med.items()}))
                t = med.get("torch")
                ratio = f"{med['fastae'] / t:.2f}" if t else "-"
                lines.append(
                    f"| {name} | {precision} | {what} | {med['fastae'] * 1e6:.1f} µs | "
                    f"{'-' if t is None else f'{t * 1e6:.1f} µs'} | {ratio} |"
                )
                print(lines[-1], flush=True)
    (args.out / "gpu_bench.json").write_text(json.dumps(dict(device=device, rows=rows), indent=1))
    (args.out / "gpu_bench.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
