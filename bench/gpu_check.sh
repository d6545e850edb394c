#!/usr/bin/env bash
# The GPU path on a machine with an NVIDIA GPU, in one go (under 10 minutes on an H200): install fastae beside the
# machine's CuPy, run the GPU-marked tests and the parity suites on the real device, then the GPU benchmark.
#   bash bench/gpu_check.sh OUT            # results into OUT (created)
#   bash bench/gpu_check.sh OUT --standin  # the same script on the CPU stand-in of CuPy (no GPU): a dry run
# Installs nothing from the network when CuPy, NumPy, Numba and safetensors are already there (--no-deps).
set -uo pipefail
out=${1:?usage: bash bench/gpu_check.sh OUT [--standin]}
mode=${2:-}
mkdir -p "$out"
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "nvidia-smi: none"
    $py -c "import sys, numpy, numba; print(sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__)"
    $py -c "import cupy; print('cupy', cupy.__version__)" 2>&1
} | tee "$out/environment.txt"
$py -m pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | tail -3
status=0
if [ "$mode" = "--standin" ]; then
    $py -m pytest -q -p no:cacheprovider tests/test_cupy_gpu.py -k "standin" 2>&1 | tee "$out/tests.txt" | tail -5
    status=${PIPESTATUS[0]}
    $py bench/gpu_bench.py "$out" --standin --configs small --samples 2 --steps 1 2>&1 | tee "$out/bench.txt"
else
    # the gpu-marked tests skip where the backend cannot run: say why and fail, rather than report a pass of nothing
    if ! $py -c "import sys; from fastae.backends import registry; r = registry.unavailable('cupy'); print(r or 'cupy backend: ready'); sys.exit(r is not None)" 2>&1 | tee -a "$out/environment.txt"; then
        echo "gpu_check: the cupy backend cannot run here" | tee -a "$out/environment.txt"
        exit 1
    fi
    $py -m pytest -q -p no:cacheprovider -m gpu tests/test_cupy_gpu.py 2>&1 | tee "$out/tests.txt" | tail -15
    status=${PIPESTATUS[0]}
    FASTAE_GPU_PARITY=1 $py -m pytest -q -p no:cacheprovider tests/test_parity.py tests/test_backend_models.py \
        -k "cupy-gpu" 2>&1 | tee "$out/parity.txt" | tail -8
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    timeout 300 $py bench/gpu_bench.py "$out" 2>&1 | tee "$out/bench.txt"
fi
echo "gpu_check: tests exit status $status" | tee -a "$out/environment.txt"
exit $status
