"""What this machine offers and what fastae uses of it: the processor, its instruction-set extensions, the BLAS
libraries loaded in this process (with their kernel family and threads) and the CPU Numba generates code for.

``fastae info`` prints :func:`describe`; the benchmark records it in its report's header, so every figure names
the processor it was measured on.
"""

from __future__ import annotations

import os
import platform

# The extensions that decide which kernels run here, as (name shown, /proc/cpuinfo flag, LLVM feature).
ISA_EXTENSIONS = (
    ("AVX2", "avx2", "avx2"),
    ("FMA", "fma", "fma"),
    ("AVX-512F", "avx512f", "avx512f"),
    ("AVX512-BF16", "avx512_bf16", "avx512bf16"),
    ("AMX-BF16", "amx_bf16", "amx-bf16"),
    ("AMX-INT8", "amx_int8", "amx-int8"),
)


def _cpuinfo_fields():
    """The first processor's fields of ``/proc/cpuinfo`` (``{}`` where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _cpuinfo():
    """``(model name, set of flags)`` from ``/proc/cpuinfo``, or ``(None, None)`` where there is none."""
    fields = _cpuinfo_fields()
    if not fields:
        return None, None
    flags = fields.get("flags")
    return fields.get("model name"), None if flags is None else set(flags.split())


def _llvm_host():
    """``(host CPU name, {feature: bool})`` as LLVM sees this processor."""
    import llvmlite.binding as llvm

    features = {}
    for item in llvm.get_host_cpu_features().flatten().split(","):
        if item:
            features[item[1:]] = item[0] == "+"
    return llvm.get_host_cpu_name(), features


def usable_cores() -> int:
    """The CPUs this process may run on.

    Returns
    -------
    cores : int
        The size of its affinity set where the OS reports one, else the machine's CPU count.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def isa(flags=None) -> dict:
    """Which of :data:`ISA_EXTENSIONS` the processor has.

    Parameters
    ----------
    flags : set of str or None, default=None
        The processor's flags as ``/proc/cpuinfo`` spells them; ``None`` reads them there, and where there is no
        ``/proc/cpuinfo`` LLVM's view of the host is used instead.

    Returns
    -------
    isa : dict
        ``{extension name: bool}``.
    """
    if flags is None:
        flags = _cpuinfo()[1]
    if flags is not None:
        return {name: flag in flags for name, flag, _ in ISA_EXTENSIONS}
    features = _llvm_host()[1]
    return {name: bool(features.get(feature)) for name, _, feature in ISA_EXTENSIONS}


def processor() -> dict:
    """The processor this process runs on.

    Returns
    -------
    info : dict
        ``model`` (str), ``family_model_stepping`` (str or None; as the CPU, or a hypervisor, reports them),
        ``machine`` (str, the architecture), ``cores`` (int, usable by this process), and ``isa``,
        ``{extension: bool}`` for each of :data:`ISA_EXTENSIONS` (from ``/proc/cpuinfo``, else LLVM's view).
    """
    model, flags = _cpuinfo()
    host = _llvm_host()[0]
    extensions = isa(flags)
    fields = _cpuinfo_fields()
    family = "/".join(fields[k] for k in ("cpu family", "model", "stepping") if k in fields) or None
    return {
        "model": model or platform.processor() or host,
        "family_model_stepping": family,
        "machine": platform.machine(),
        "cores": usable_cores(),
        "isa": extensions,
    }


def blas() -> list:
    """The BLAS libraries loaded in this process, as threadpoolctl reports them.

    NumPy and SciPy are imported first, so that their BLAS libraries are loaded and reported.

    Returns
    -------
    libraries : list of dict
        One dict per library: ``library`` (its API), ``version``, ``kernels`` (the kernel family it dispatched
        to, e.g. OpenBLAS's ``SkylakeX``), ``threads`` and ``path``; and ``pinned_by`` where
        ``OPENBLAS_CORETYPE`` pins OpenBLAS's kernels.
    """
    import numpy  # noqa: F401  (loads NumPy's BLAS, so it is reported)
    import scipy.linalg  # noqa: F401  (and SciPy's, which the fused CPU step calls)
    from threadpoolctl import threadpool_info

    out = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        out.append(
            {
                "library": lib.get("internal_api"),
                "version": lib.get("version"),
                "kernels": lib.get("architecture"),
                "threads": lib.get("num_threads"),
                "path": lib.get("filepath"),
            }
        )
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if pinned:
        for lib in out:
            if lib["library"] == "openblas":
                lib["pinned_by"] = f"OPENBLAS_CORETYPE={pinned}"
    return out


def numba_target() -> dict:
    """The CPU Numba compiles for, its features, its cache folder and the host CPU LLVM detects.

    Returns
    -------
    info : dict
        ``cpu`` (``NUMBA_CPU_NAME`` if set, else the host CPU), ``host`` (the host CPU LLVM detects),
        ``chosen_by`` (``"NUMBA_CPU_NAME"`` or ``"host"``), ``features`` (``"host"`` unless
        ``NUMBA_CPU_FEATURES`` is set), ``cache_dir`` (``NUMBA_CACHE_DIR``, else ``"beside the code"``) and
        ``version`` (Numba's).
    """
    import numba

    host, _ = _llvm_host()
    name = numba.config.CPU_NAME or host
    features = numba.config.CPU_FEATURES
    # Numba keeps the host's features unless NUMBA_CPU_FEATURES is set; empty means the named CPU's own set.
    features = "host" if features is None else (features or f"those of {name}")
    return {
        "cpu": name,
        "host": host,
        "chosen_by": "NUMBA_CPU_NAME" if numba.config.CPU_NAME else "host",
        "features": features,
        "cache_dir": numba.config.CACHE_DIR or "beside the code",
        "version": numba.__version__,
    }


def describe() -> dict:
    """What fastae runs on: the processor, the loaded BLAS libraries and Numba's target.

    Returns
    -------
    info : dict
        ``{"processor": ..., "blas": [...], "numba": ..., "gemm": ...}``: the results of :func:`processor`,
        :func:`blas`, :func:`numba_target` and :func:`fastae.backends.gemm.describe` (which provider takes the
        large float32 products, and MKL's threads).
    """
    from .backends import gemm

    return {"processor": processor(), "blas": blas(), "numba": numba_target(), "gemm": gemm.describe()}


def summary_lines(info: dict | None = None) -> list:
    """:func:`describe` as ``(label, text)`` rows, for ``fastae info`` and the benchmark header.

    Parameters
    ----------
    info : dict or None, default=None
        A result of :func:`describe`; ``None`` calls it.

    Returns
    -------
    rows : list of tuple of (str, str)
        ``("processor", ...)``, ``("ISA", ...)``, one ``("BLAS", ...)`` per library and ``("numba target", ...)``.
    """
    info = describe() if info is None else info
    cpu = info["processor"]
    isa = cpu["isa"]
    has = [k for k, v in isa.items() if v]
    lacks = [k for k, v in isa.items() if not v]
    fms = f", family/model/stepping {cpu['family_model_stepping']}" if cpu.get("family_model_stepping") else ""
    rows = [
        ("processor", f"{cpu['model']} ({cpu['machine']}{fms}, {cpu['cores']} cores)"),
        (
            "ISA",
            (", ".join(has) or "none of " + ", ".join(isa)) + (f"; lacks {', '.join(lacks)}" if lacks and has else ""),
        ),
    ]
    for lib in info["blas"]:
        text = f"{lib['library']} {lib['version']}, {lib['kernels'] or 'unknown'} kernels, {lib['threads']} threads"
        if lib.get("pinned_by"):
            text += f" (pinned by {lib['pinned_by']})"
        rows.append(("BLAS", f"{text}: {lib['path']}"))
    g = info.get("gemm")
    if g is not None:
        large = g.get("large_fp32") or ("mkl" if g["mkl"] == "available" else "openblas") + " (not loaded yet)"
        text = f"{large} for float32 products of at least {g['mkl_min_muladds']} multiply-adds"
        if g.get("forced"):
            text += " (FASTAE_BLAS)"
        if g.get("mkl_threading"):
            text += f"; MKL {g['mkl_threading']} threading, {g['mkl_threads']} threads"
        text += f"; bfloat16 units: {'yes' if g['bf16_units'] else 'no (bfloat16 products are emulated)'}"
        rows.append(("GEMM", text))
    nb = info["numba"]
    rows.append(
        (
            "numba target",
            f"{nb['cpu']}"
            + (" (NUMBA_CPU_NAME)" if nb["chosen_by"] != "host" else "")
            + f" with {nb['features']} features, host {nb['host']}; cache {nb['cache_dir']}",
        )
    )
    return rows
