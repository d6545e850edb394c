"""Run the whole test suite as it would run on other x86-64 processors, and print a table of the results.

Not run in CI (CI must never pin ``OPENBLAS_CORETYPE``). Each combination pins NumPy's and SciPy's OpenBLAS to
another kernel family and makes Numba generate code for another CPU, with its own, empty Numba cache folder:

    python tests/other_cpus.py [--only Haswell,Zen] [--pytest-args "-x -q"]

Numba's ``NUMBA_CPU_NAME`` alone keeps the *host's* features (AVX-512 here), so ``NUMBA_CPU_FEATURES`` is set
empty as well: LLVM then takes the named CPU's own feature set (no FMA on Sandy Bridge, no AVX-512 on Haswell
or Zen). The table states what each run really used, as :func:`fastae.machine.describe` saw it in that
environment. A combination can only be run where the processor has the instructions it names (SkylakeX
kernels need AVX-512).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (OpenBLAS kernel family, Numba/LLVM CPU name): pairs that match one real processor each.
COMBINATIONS = (
    ("Haswell", "haswell"),
    ("Zen", "znver1"),
    ("SkylakeX", "skylake-avx512"),
    ("Sandybridge", "sandybridge"),
)

ROOT = Path(__file__).resolve().parents[1]
_PROBE = (
    "import json, fastae.machine as m; d = m.describe(); "
    "print(json.dumps({'blas': sorted({b['kernels'] for b in d['blas']}), 'numba': d['numba']}))"
)


def _env(coretype, cpu, cache):
    env = dict(
        os.environ, OPENBLAS_CORETYPE=coretype, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES="", NUMBA_CACHE_DIR=str(cache)
    )
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def run(coretype, cpu, pytest_args, log=print):
    """Run the suite under one combination; returns a row of the table as a dict."""
    with tempfile.TemporaryDirectory(prefix=f"fastae-numba-{cpu}-") as cache:
        env = _env(coretype, cpu, cache)
        probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=ROOT, capture_output=True, text=True)
        used = json.loads(probe.stdout) if probe.returncode == 0 else {"error": probe.stderr[-300:]}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.M)
    row = {
        "OPENBLAS_CORETYPE": coretype,
        "NUMBA_CPU_NAME": cpu,
        "used": used,
        "returncode": proc.returncode,
        "summary": tail.strip("= "),
        "seconds": round(seconds),
        "failed": failed,
    }
    log(f"{coretype}/{cpu}: {row['summary']} ({row['seconds']} s)")
    for name in failed[:20]:
        log(f"    {name}")
    return row


def table(rows):
    """The rows as a Markdown table."""
    lines = [
        "| OPENBLAS_CORETYPE | NUMBA_CPU_NAME | BLAS kernels used | Numba target | result | time |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    for r in rows:
        used = r["used"]
        blas = ", ".join(used.get("blas", [])) or used.get("error", "?")
        nb = used.get("numba", {})
        target = f"{nb.get('cpu')} (features: {nb.get('features')})" if nb else "?"
        lines.append(
            f"| {r['OPENBLAS_CORETYPE']} | {r['NUMBA_CPU_NAME']} | {blas} | {target} | {r['summary']} "
            f"| {r['seconds']} s |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated OpenBLAS kernel families to run (default: all)")
    parser.add_argument("--pytest-args", default="-q", help="arguments for pytest (default: -q)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    wanted = None if not args.only else {w.strip().lower() for w in args.only.split(",")}
    rows = [
        run(core, cpu, args.pytest_args.split())
        for core, cpu in COMBINATIONS
        if wanted is None or core.lower() in wanted
    ]
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
