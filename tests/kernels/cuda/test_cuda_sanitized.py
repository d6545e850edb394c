"""Tier 2 under AddressSanitizer and UndefinedBehaviorSanitizer: the kernel tests of this folder (but the planted
bugs), the op-level parity suite and the stand-in's end-to-end fits run again in a subprocess whose harness builds
every kernel with both sanitizers, and must come out clean; and the planted off-by-one bound of
test_cuda_mutations.py is reported by ASan there as a heap overflow."""

import pathlib
import subprocess
import sys

from ...cuda_emu.harness import sanitizer_env

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _run(args, tmp_path, timeout=900):
    env = sanitizer_env()
    env["FASTAE_CUDA_EMU_CACHE"] = str(tmp_path / "cache")  # builds of its own, never the plain ones
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_kernel_tests_are_clean_under_the_sanitizers(tmp_path):
    r = _run(
        [
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--capture=sys",  # a sanitizer's report, written to fd 2, reaches the output
            "tests/kernels/cuda/test_cuda_philox.py",
            "tests/kernels/cuda/test_cuda_bf16.py",
            "tests/test_parity.py",
            "tests/test_cupy_gpu.py",
            "-k",
            "cupy-standin or standin or cuda",
        ],
        tmp_path,
    )
    report = r.stdout[-4000:] + r.stderr[-4000:]
    assert r.returncode == 0, report
    assert "passed" in r.stdout and "ERROR: AddressSanitizer" not in r.stderr and "runtime error:" not in r.stderr


PLANTED = """
import numpy as np
from fastae.backends import cupy_kernels
from tests.kernels.cuda.emulated import family
code = cupy_kernels.source("loss").replace("j < m; j += block_threads()) acc += elementwise_loss",
                                           "j <= m; j += block_threads()) acc += elementwise_loss")
a, c, x = np.zeros((3, 40), np.float32), np.zeros(40, np.float32), np.zeros((3, 40), np.float32)
rows = np.zeros(3, np.float32)
args = (a, c, x, np.int64(3), np.int64(40), np.int32(0), rows)
family("loss", code).get_function("output_rows_f32")((3,), (32,), args, shared_mem=4)
print("not caught")
"""


def test_the_planted_overrun_is_reported_by_asan(tmp_path):
    r = _run(["-c", PLANTED], tmp_path, timeout=300)
    assert r.returncode == 86 and "not caught" not in r.stdout, r.stdout + r.stderr[-3000:]  # ASan's exit code
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in r.stderr and "in void output_rows<float>" in r.stderr
