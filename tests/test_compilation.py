"""fastae.warmup() (fastae/compilation.py): after it, fits and encodes of every model kind, in both dtypes,
compile (or load) no further kernel specialisation."""

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import importlib, pkgutil, sys
import numpy as np, numba
sys.path.insert(0, sys.argv[1])
import fastae
import fastae.kernels.cpu as cpu

def compiled():
    count = {}
    for info in pkgutil.iter_modules(cpu.__path__):
        mod = importlib.import_module(f"fastae.kernels.cpu.{info.name}")
        for name, obj in vars(mod).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                count[f"{info.name}.{name}"] = len(obj.signatures)
    return count

seconds = fastae.warmup()
before = compiled()
X = np.random.default_rng(0).uniform(0.05, 0.95, (40, 12))
for dtype in ("float32", "float64"):
    for cls, kw in ((fastae.Autoencoder, dict(hidden=(6,))), (fastae.Autoencoder, dict(hidden=(8, 4), tied=False)),
                    (fastae.Autoencoder, dict(hidden=(6,), noise=("gaussian", 0.1), sparsity=("l1", 1e-3))),
                    (fastae.Autoencoder, dict(hidden=(6,), contractive=0.1)),
                    (fastae.VAE, dict(hidden=(6,), latent=2))):
        m = cls(dtype=dtype, epochs=1, batch_size=8, random_state=0, **kw).fit(X)
        m.encode(X), m.encode(X[:1]), m.score_samples(X), m.reconstruct(X)
after = compiled()
new = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
print(sorted(seconds), sum(before.values()), new)
"""


def test_warmup_leaves_nothing_to_compile_for_fits_and_encodes():
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, root], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert line.endswith("{}"), f"compiled after warmup: {line}"
    assert "'numba'" in line and int(line.split("] ")[1].split(" ")[0]) > 20, line
