"""Plant known bugs in the kernels, one at a time, and report which tests catch each: evidence that the tolerance
model of tests/tolerances.py is tight enough to matter. Not run in CI.

    python tests/mutations.py [--only NAME] [--pytest-args "-q -x"]

Each mutation edits one source file in place, runs the tests that cover it with a fresh Numba cache folder (so
no mutated kernel outlives the run), and puts the file back byte for byte, also on an interrupt. A mutation
that no test catches makes the script exit non-zero.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (file, text to replace, replacement, test paths, what the bug is)
MUTATIONS = {
    "col-sum-drops-last-row": (
        "kernels/cpu/dense.py",
        "    for i in range(d.shape[0]):\n        row = d[i, j0:j1]",
        "    for i in range(d.shape[0] - 1):\n        row = d[i, j0:j1]",
        [
            "tests/kernels/test_cpu_dense.py",
            "tests/kernels/test_cpu_products.py",
            "tests/test_parity.py",
            "tests/kernels/test_cpu_step.py",
        ],
        "the column sums (bias gradients) skip the last row of the batch",
    ),
    "tied-gradient-drops-decoder-term": (
        "kernels/cpu/step.py",
        "W_o[j, i] = gdec[j, i] + W_o[j, i]",
        "W_o[j, i] = W_o[j, i]",
        ["tests/kernels/test_cpu_step.py", "tests/test_autoencoder.py", "tests/test_backend_models.py"],
        "the fused step's tied weight gradient loses its decoder term h\u1d40 D",
    ),
    "pool-dx-transpose-swapped": (
        "kernels/cpu/products.py",
        "gemm(False, transposed, r1 - r0, dx.shape[1], o, delta[r0:], o, W,",
        "gemm(False, not transposed, r1 - r0, dx.shape[1], o, delta[r0:], o, W,",
        ["tests/kernels/test_cpu_products.py"],
        "the one-pool backward multiplies by W where it needs W\u1d40 (and the reverse)",
    ),
    "backend-dW-transpose-swapped": (
        "fastae/backends/numba_cpu.py",
        "    dW = x.T @ delta if transpose else delta.T @ x\n",
        "    dW = (x.T @ delta).T if transpose else (delta.T @ x).T\n",
        ["tests/test_parity.py", "tests/test_backend_models.py"],
        "the serial backend returns dW transposed",
    ),
    "row-loss-drops-a-term": (
        "kernels/cpu/loss.py",
        "    for k in range(w):\n        s = s + t[k]",
        "    for k in range(w - 1):\n        s = s + t[k]",
        ["tests/kernels/test_cpu_loss.py", "tests/test_parity.py"],
        "the ordered row sum of the loss leaves out one term",
    ),
}


def run(name, pytest_args, log=print):
    path, old, new, tests, what = MUTATIONS[name]
    file = ROOT / path
    original = file.read_bytes()
    text = original.decode("utf-8")
    mutated = text.replace(old, new, 1) if old in text else None
    if mutated is None:
        log(f"{name}: the text to mutate is not in {path}; update tests/mutations.py")
        return {"name": name, "what": what, "caught": None, "failed": []}
    try:
        file.write_text(mutated, encoding="utf-8")
        with tempfile.TemporaryDirectory(prefix="fastae-mutant-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args, *tests],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
    finally:
        file.write_bytes(original)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.M)
    summary = proc.stdout.strip().splitlines()[-1].strip("= ") if proc.stdout.strip() else proc.stderr[-300:]
    log(f"{name} ({what}): {summary}")
    return {"name": name, "what": what, "caught": proc.returncode != 0, "failed": failed, "summary": summary}


def by_file(failed):
    """``{test file: count}`` of failed test ids."""
    out = {}
    for t in failed:
        f = t.split("::")[0]
        out[f] = out.get(f, 0) + 1
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated mutation names (default: all)")
    parser.add_argument("--pytest-args", default="-q", help="arguments for pytest (default: -q)")
    args = parser.parse_args(argv)
    names = list(MUTATIONS) if not args.only else [n.strip() for n in args.only.split(",")]
    rows = [run(n, args.pytest_args.split()) for n in names]
    print("\n| mutation | caught | failing tests by file |\n| --- | --- | --- |")
    for r in rows:
        files = ", ".join(f"{f.removeprefix('tests/')}: {k}" for f, k in by_file(r["failed"]).items())
        print(f"| {r['name']}: {r['what']} | {r['caught']} | {files or r.get('summary', '')} |")
    return 0 if all(r["caught"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
