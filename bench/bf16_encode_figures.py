"""Encode of 8192 rows in float32 and bfloat16 against PyTorch (eager, autocast, the module in bf16) on the same
weights, and one-row latency; a line per configuration (needs the bench extra). The figures of
docs/performance.md, *bfloat16 inference*."""

import copy
import statistics
import time

import numpy as np
import torch

from fastae.benchmark.configs import CONFIGS

ACTIVATIONS = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "linear": torch.nn.Identity}


def median(f, reps=15):
    for _ in range(3):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def torch_encoder(model):
    """The model's encoder (a VAE's: to ``μ``) as a torch module holding the same weights."""
    sd = model.state_dict()
    layers = [*model._encoder, model._mu] if hasattr(model, "_mu") else model._encoder
    mods = []
    for L in layers:
        lin = torch.nn.Linear(sd[L.weight].shape[1], sd[L.weight].shape[0])
        lin.weight.data = torch.from_numpy(sd[L.weight].copy())
        lin.bias.data = torch.from_numpy(sd[L.bias].copy())
        mods += [lin, ACTIVATIONS[L.activation]()]
    return torch.nn.Sequential(*mods).eval()


def main():
    torch.set_num_threads(2)
    r = np.random.default_rng(0)
    for name in ("shallow", "deep", "vae"):
        cfg = CONFIGS[name]
        m = cfg.model(backend="numba").set_params(epochs=0)
        X = r.random((8192, cfg.n_features)).astype(np.float32)
        m.fit(X[:2])
        net = torch_encoder(m)
        net16 = copy.deepcopy(net).to(torch.bfloat16)
        xt = torch.from_numpy(X)

        def autocast():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(xt)

        with torch.inference_mode():
            t_eager = median(lambda: net(xt))
            t_autocast = median(autocast)
            t_module = median(lambda: net16(xt.to(torch.bfloat16)))
            want = copy.deepcopy(net).double()(xt.double()).numpy()
        t32 = median(lambda: m.encode(X))
        one32 = median(lambda: m.encode(X[:1]), 200)
        m.set_params(precision="bfloat16")
        t16 = median(lambda: m.encode(X))
        one16 = median(lambda: m.encode(X[:1]), 200)
        err = np.abs(m.encode(X) - want).max() / np.abs(want).max()
        print(
            f"{name}: fastae fp32 {t32 * 1e3:.2f} ms, bf16 {t16 * 1e3:.2f} ms ({t32 / t16:.2f}x); torch eager "
            f"{t_eager * 1e3:.2f}, autocast {t_autocast * 1e3:.2f}, bf16 module {t_module * 1e3:.2f} ms; bf16 error "
            f"{err:.2e}; one row fp32 {one32 * 1e6:.1f} us, bf16 {one16 * 1e6:.1f} us"
        )


if __name__ == "__main__":
    main()
