"""fastae/machine.py: the processor, its ISA extensions, the BLAS libraries and Numba's target, as describe()
returns them and as ``fastae info`` and the benchmark header print them."""

import json
import os
import platform
import subprocess
import sys

import numba
import pytest

import fastae
from fastae import machine


def test_describe_has_every_part():
    info = fastae.describe()
    cpu = info["processor"]
    assert cpu["model"] and cpu["machine"] and cpu["cores"] >= 1
    assert list(cpu["isa"]) == [name for name, _, _ in machine.ISA_EXTENSIONS]
    assert all(isinstance(v, bool) for v in cpu["isa"].values())
    assert info["blas"], "NumPy's BLAS is always loaded"
    for lib in info["blas"]:
        assert {"library", "version", "kernels", "threads", "path"} <= set(lib)
        assert lib["threads"] >= 1
    assert info["numba"]["cpu"] and info["numba"]["version"] == numba.__version__


def test_isa_agrees_with_the_kernel_flags():
    """/proc/cpuinfo's flags and LLVM's view of the host must agree on every extension listed."""
    model, flags = machine._cpuinfo()
    if flags is None:
        pytest.skip("no /proc/cpuinfo on this system: the LLVM view is the only one")
    _, features = machine._llvm_host()
    for name, flag, feature in machine.ISA_EXTENSIONS:
        assert (flag in flags) == bool(features.get(feature)), name


def test_the_fallback_without_cpuinfo_uses_llvm(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: (None, None))
    _, features = machine._llvm_host()
    isa = machine.processor()["isa"]
    assert isa == {name: bool(features.get(feature)) for name, _, feature in machine.ISA_EXTENSIONS}


def _in_env(env):
    code = "import json, fastae; print(json.dumps(fastae.describe()))"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS's x86-64 kernel families")
def test_numba_target_and_pinned_blas_are_reported():
    """Nehalem (SSE4.2) kernels run on any x86-64 processor of the last 15 years; nothing is compiled here."""
    info = _in_env({"NUMBA_CPU_NAME": "nehalem", "NUMBA_CPU_FEATURES": "", "OPENBLAS_CORETYPE": "Nehalem"})
    assert info["numba"]["cpu"] == "nehalem" and info["numba"]["chosen_by"] == "NUMBA_CPU_NAME"
    assert info["numba"]["features"] == "those of nehalem"
    openblas = [lib for lib in info["blas"] if lib["library"] == "openblas"]
    if not openblas:
        pytest.skip(f"NumPy and SciPy use another BLAS here: {info['blas']}")
    for lib in openblas:
        assert lib["kernels"] == "Nehalem" and lib["pinned_by"] == "OPENBLAS_CORETYPE=Nehalem"


def test_summary_lines_name_everything():
    info = fastae.describe()
    rows = dict(machine.summary_lines(info))
    assert info["processor"]["model"] in rows["processor"]
    for name, present in info["processor"]["isa"].items():
        assert (name in rows["ISA"]) or not present
    assert info["numba"]["cpu"] in rows["numba target"]
    blas_rows = [text for label, text in machine.summary_lines(info) if label == "BLAS"]
    assert len(blas_rows) == len(info["blas"])


def test_the_benchmark_header_names_the_processor():
    from fastae.benchmark import report

    info = fastae.describe()
    text = "\n".join(report._header({"meta": {"machine_info": info}, "rows": []}))
    for label, line in machine.summary_lines(info):
        assert f"- **{label}**: {line}" in text
