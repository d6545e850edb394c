"""The ``fastae`` command: ``fastae demo`` (autoencoders against PCA on held-out digits), ``fastae bench`` (fastae
against its peers and the GEMM floor) and ``fastae info``.

``main(argv)`` returns the exit status (0 success, 1 a runtime failure such as a missing optional dependency, or
for ``bench`` any answer that was WRONG or any contestant that failed); argparse itself exits with status 2 on an
unknown command or bad arguments.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np


def main(argv=None):
    """Run the ``fastae`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    return args.func(args)


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(prog="fastae", description="fast autoencoders: demo and diagnostics")
    parser.add_argument("--version", action="version", version=f"fastae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from .demo import DEMO_N_TRAIN

    demo = sub.add_parser(
        "demo",
        help="train autoencoders and a VAE on held-out digits and compare with PCA",
        description="Train a tied autoencoder, a deep autoencoder with layer-wise pretraining "
        "and a VAE on scikit-learn's digits (fixed split: "
        f"{DEMO_N_TRAIN} training images, the rest held out), and report "
        "held-out reconstruction error beside PCA's at the same code size, and "
        "the VAE's held-out ELBO. Needs scikit-learn (pip install fastae[demo]).",
    )
    demo.add_argument("--quick", action="store_true", help="smaller models and fewer epochs (a few seconds)")
    demo.add_argument(
        "--seed",
        type=_seed,
        default=0,
        metavar="N",
        help="random_state of the models (default 0; the data split stays fixed)",
    )
    demo.set_defaults(func=_cmd_demo)
    info = sub.add_parser("info", help="versions, available backends and whether MNIST is found")
    info.set_defaults(func=_cmd_info)
    _add_bench_parser(sub)
    return parser


def _int_at_least(low, what):
    """An argparse type: an integer ``>= low``, refused with a message naming ``what`` was expected."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_seed = _int_at_least(0, "a non-negative integer")
_positive = _int_at_least(1, "a positive integer")


# --- fastae info ------------------------------------------------------------------------------------------------
def _cmd_info(args):
    from . import __version__, available_backends, datasets, machine

    rows = [
        ("fastae", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", np.__version__),
        ("numba", _version_of("numba")),
        ("scipy", _version_of("scipy")),
        ("scikit-learn", _version_of("sklearn") + "  (optional: fastae demo)"),
        ("backends", ", ".join(available_backends()) or "none"),
        *machine.summary_lines(),
    ]
    folder = datasets.find_mnist()
    if folder is not None:
        rows.append(("MNIST", f"found at {folder.resolve()}"))
    else:
        tried = ", ".join(str(c) for c in datasets.mnist_candidates())
        rows.append(("MNIST", f"not found (optional; set {datasets.MNIST_ENV}); tried {tried}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _version_of(module):
    import importlib

    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return "not installed"


# --- fastae demo ------------------------------------------------------------------------------------------------
def _cmd_demo(args):
    # The optional dependencies are checked up front, so a missing one fails before any training, in one line.
    for module in ("sklearn", "threadpoolctl"):
        try:
            __import__(module)
        except ImportError:
            print(
                f"fastae demo: needs {module}, which is not installed; install the demo's dependencies with "
                f"`pip install fastae[demo]`",
                file=sys.stderr,
            )
            return 1
    from . import demo

    mode = "quick" if args.quick else "full"
    print(f"fastae demo ({mode}): training {len(demo.DEMO_CONFIGS)} models on digits ...", flush=True)
    print(demo.format_demo(demo.run_demo(quick=args.quick, seed=args.seed)), flush=True)
    return 0


# --- fastae bench -----------------------------------------------------------------------------------------------
BENCH_SUITES = ("train", "encode", "latency", "kernel", "coldstart", "quality")
BENCH_RUNNER_SUITES = ("train", "encode", "latency")  # run by fastae.benchmark.runner
# The other suites: suite name -> module of fastae.benchmark exposing ``run(quick, log) -> rows``.
BENCH_SUITE_MODULES = {"kernel": "kernels", "coldstart": "coldstart", "quality": "quality"}
BENCH_PEERS = ("torch", "jax")
BENCH_OUT = "fastae-bench"


def _add_bench_parser(sub):
    from . import machine
    from .benchmark.configs import CONFIGS

    cores = machine.usable_cores()
    bench = sub.add_parser(
        "bench",
        help="benchmark fastae against its peers (PyTorch, JAX) and the GEMM-only floor",
        description="Check every contestant's answer against the float64 reference, then time them side by side "
        "on the standard configurations. Writes results.json, results.md and PNG plots into --out, "
        "prints the Markdown report, and exits with status 1 if any answer is WRONG or any "
        "contestant failed. Plots need matplotlib (pip install fastae[plot]).",
    )
    bench.add_argument(
        "--quick", action="store_true", help="fewer and shorter samples, reduced quality budget (a few minutes in all)"
    )
    bench.add_argument(
        "--config",
        type=_name_list("configuration", tuple(CONFIGS)),
        default=list(CONFIGS),
        metavar="NAMES",
        help=f"comma-separated configurations (default: all, {','.join(CONFIGS)})",
    )
    bench.add_argument(
        "--peers",
        type=_name_list("peer", None, allow_none=True),
        default=list(BENCH_PEERS),
        metavar="NAMES",
        help=f"comma-separated peers, or 'none' (default: {','.join(BENCH_PEERS)})",
    )
    bench.add_argument(
        "--suites",
        type=_name_list("suite", BENCH_SUITES),
        default=list(BENCH_SUITES),
        metavar="NAMES",
        help=f"comma-separated suites (default: all, {','.join(BENCH_SUITES)})",
    )
    bench.add_argument(
        "--threads",
        type=_positive,
        default=cores,
        metavar="N",
        help="threads for every contestant (BLAS, Numba, PyTorch, XLA); default: the cores this "
        f"process may use ({cores} here)",
    )
    bench.add_argument(
        "--out",
        default=BENCH_OUT,
        metavar="DIR",
        help=f"folder for results.json, results.md and the plots (default: ./{BENCH_OUT})",
    )
    bench.set_defaults(func=_cmd_bench)
    return bench


def _name_list(what, choices, allow_none=False):
    """An argparse type: comma-separated names, each one of ``choices`` (any if ``None``), without repeats;
    ``none`` (if allowed) is the empty list."""

    def parse(text):
        if allow_none and text.strip().lower() == "none":
            return []
        names = [t.strip() for t in text.split(",") if t.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} names, got {text!r}")
        for name in names:
            if choices is not None and name not in choices:
                raise argparse.ArgumentTypeError(f"unknown {what} {name!r}; choose from {', '.join(choices)}")
        return list(dict.fromkeys(names))

    return parse


def bench_command(args) -> str:
    """The exact ``fastae bench`` command line that reproduces a run with parsed ``args``.

    Some machines set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` to pin NumPy's BLAS to older kernels; a run made
    without them says so, since reproducing it on such a machine needs them unset."""
    import os
    import shlex

    unpinned = not any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    parts = ["env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"] if unpinned else []
    parts += ["fastae bench"] + (["--quick"] if args.quick else [])
    parts += [
        f"--config {','.join(args.config)}",
        f"--peers {','.join(args.peers) or 'none'}",
        f"--suites {','.join(args.suites)}",
        f"--threads {args.threads}",
        f"--out {shlex.quote(args.out)}",
    ]
    return " ".join(parts)


def run_other_suite(suite, quick, log=print):
    """Rows of ``suite`` from its module's ``run(quick, log)``; a missing module gives one skipped row, and an
    exception one failed row, so one suite can neither block nor hide the others."""
    import importlib

    module_name = f"fastae.benchmark.{BENCH_SUITE_MODULES[suite]}"
    base = {"suite": suite, "config": "-", "contestant": "-", "kind": "-"}
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return [{**base, "status": "skipped", "note": f"not available yet ({module_name} is missing)"}]
        return [{**base, "status": "failed", "note": f"cannot import {module_name}: {exc}"}]
    try:
        rows = list(module.run(quick, log=log))
    except Exception as exc:
        log(f"  {suite}: FAILED {type(exc).__name__}: {exc}")
        return [{**base, "status": "failed", "note": f"{module_name}.run raised {type(exc).__name__}: {exc}"}]
    out = []
    for row in rows:
        if not isinstance(row, dict):
            out.append(
                {
                    **base,
                    "status": "failed",
                    "note": f"{module_name}.run returned a {type(row).__name__} row, not a dict",
                }
            )
        else:
            out.append({"suite": suite, **row})
    return out


def run_bench(args, log=print) -> dict:
    """Run the benchmark described by parsed ``args``; returns the merged result (``meta`` and ``rows``).
    Sets the thread counts first, before anything imports PyTorch or JAX."""
    from .benchmark import threads as bench_threads

    started = time.time()
    threads_info = bench_threads.set_threads(args.threads)
    from .benchmark import lineup, runner

    contestants = lineup.contestants(args.peers, args.threads, log)
    for c in contestants:
        reason = c.unavailable()
        if reason:
            log(f"  {c.name}: skipped, {reason}")
    runner_suites = [s for s in args.suites if s in BENCH_RUNNER_SUITES]
    result = runner.run(configs=args.config, contestants=contestants, suites=runner_suites, quick=args.quick, log=log)
    rows = list(result["rows"])
    suite_seconds = {}
    for suite in args.suites:
        if suite in BENCH_SUITE_MODULES:
            t0 = time.time()
            log(f"{suite} suite ...")
            rows += run_other_suite(suite, args.quick, log)
            suite_seconds[suite] = time.time() - t0
    meta = dict(result["meta"])
    meta.update(_bench_meta(args, threads_info))
    meta["suite_seconds"] = suite_seconds
    meta["seconds"] = time.time() - started
    return {"meta": meta, "rows": rows}


def _bench_meta(args, threads_info):
    from importlib import metadata

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in ("numba", "torch", "jax", "jaxlib"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    from . import __version__, machine

    info = machine.describe()
    return {
        "command": bench_command(args),
        "threads": args.threads,
        "threads_info": threads_info,
        "cpu": info["processor"]["model"],
        "system": f"{platform.system()} {platform.release()}",
        "machine_info": info,
        "versions": {"fastae": __version__, **versions},
        "suites": list(args.suites),
        "peers": list(args.peers),
    }


def write_bench(result, out_dir, log=print) -> list:
    """Write ``results.json``, the PNG plots and ``results.md`` into ``out_dir``; returns the paths written.
    Without matplotlib the plots are left out, with a message."""
    import os

    from .benchmark import report

    os.makedirs(out_dir, exist_ok=True)
    paths = [report.write_json(result, os.path.join(out_dir, "results.json"))]
    try:
        images = report.plots(result, out_dir)
    except ImportError as exc:
        log(f"fastae bench: plots skipped ({exc}); pip install fastae[plot] to get them")
        images = []
    md = report.markdown(result, images=images)
    paths.append(report.write_text(md, os.path.join(out_dir, "results.md")))
    return paths + images


def _cmd_bench(args):
    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    mode = "quick" if args.quick else "full"
    log(f"fastae bench ({mode}): {bench_command(args)}")
    result = run_bench(args, log)
    from .benchmark import report

    paths = write_bench(result, args.out, log)
    print(report.markdown(result), flush=True)
    print("wrote " + ", ".join(paths), flush=True)
    if result["meta"].get("seconds") is not None:
        log(f"fastae bench: done in {result['meta']['seconds']:.0f} s")
    bad = report.failures(result)
    if bad:
        print(
            f"fastae bench: {len(bad)} row(s) WRONG or failed: "
            + "; ".join(
                f"{r.get('suite')} {r.get('config')} {r.get('contestant')}: {r.get('status')} ({r.get('note')})"
                for r in bad
            ),
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0
