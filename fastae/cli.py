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

# The demo's models, in one place so they are easy to retune. Each entry: the estimator class name, a label for
# the table, its constructor parameters, and the overrides that `fastae demo --quick` applies on top.
# Why these (held-out errors on the demo's split, seed 0, PCA at code 12: 1.03): the shallow tied model needs a
# *linear* code layer to beat PCA (0.83; with a sigmoid code layer 1.27), and layer-wise pretraining is what makes
# the deep stack clearly better (0.47; the same stack without pretraining: 0.95 after 50 epochs, 0.80 after 100).
DEMO_CONFIGS = {
    "tied": {
        "model": "Autoencoder",
        "label": "tied Autoencoder",
        "params": dict(hidden=(12,), activation="sigmoid", code_activation="linear", loss="bce", tied=True,
                       optimizer="adam", learning_rate=1e-2, batch_size=32, epochs=100),
        "quick": dict(epochs=10),
    },
    "deep": {
        "model": "Autoencoder",
        "label": "deep Autoencoder, layerwise",
        "params": dict(hidden=(256, 128, 12), activation="sigmoid", code_activation="linear", loss="bce",
                       tied=True, pretrain="layerwise", pretrain_epochs=20, optimizer="adam",
                       learning_rate=1e-2, batch_size=32, epochs=50),
        "quick": dict(hidden=(128, 64, 12), pretrain_epochs=5, epochs=5),
    },
    "vae": {
        "model": "VAE",
        "label": "VAE",
        "params": dict(hidden=(256, 128), latent=12, activation="relu", loss="bce", optimizer="adam",
                       learning_rate=3e-3, batch_size=32, epochs=60),
        "quick": dict(hidden=(128,), epochs=10),
    },
}
# The held-out split is fixed (independent of --seed) so that numbers from different model seeds compare.
DEMO_SPLIT_SEED = 0
DEMO_N_TRAIN = 1437
# Draws of z per held-out image when estimating the VAE's ELBO.
DEMO_ELBO_SAMPLES = 10
# The demo's matrices are small (batches of 32 rows, layers of at most 256 units): a second OpenBLAS thread buys
# nothing, and on a busy 2-core machine its spinning made the deep model train 6-7x slower (15.5 s against 2.3 s).
DEMO_BLAS_THREADS = 1


def main(argv=None):
    """Run the ``fastae`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    return args.func(args)


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(prog="fastae", description="fast autoencoders: demo and diagnostics")
    parser.add_argument("--version", action="version", version=f"fastae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = sub.add_parser("demo", help="train autoencoders and a VAE on held-out digits and compare with PCA",
                          description="Train a tied autoencoder, a deep autoencoder with layer-wise pretraining "
                                      "and a VAE on scikit-learn's digits (fixed split: "
                                      f"{DEMO_N_TRAIN} training images, the rest held out), and report "
                                      "held-out reconstruction error beside PCA's at the same code size, and "
                                      "the VAE's held-out ELBO. Needs scikit-learn (pip install fastae[demo]).")
    demo.add_argument("--quick", action="store_true", help="smaller models and fewer epochs (a few seconds)")
    demo.add_argument("--seed", type=_seed, default=0, metavar="N",
                      help="random_state of the models (default 0; the data split stays fixed)")
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

    rows = [("fastae", __version__), ("python", f"{platform.python_version()} ({sys.executable})"),
            ("numpy", np.__version__), ("numba", _version_of("numba")), ("scipy", _version_of("scipy")),
            ("scikit-learn", _version_of("sklearn") + "  (optional: fastae demo)"),
            ("backends", ", ".join(available_backends()) or "none"), *machine.summary_lines()]
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
def demo_configs(quick=False, seed=0):
    """``{name: (model class name, label, constructor parameters)}`` of the demo, with ``--quick`` overrides
    applied and ``random_state=seed``."""
    out = {}
    for name, entry in DEMO_CONFIGS.items():
        params = dict(entry["params"])
        if quick:
            params.update(entry["quick"])
        params["random_state"] = seed
        out[name] = (entry["model"], entry["label"], params)
    return out


def split_digits(X, n_train=DEMO_N_TRAIN, seed=DEMO_SPLIT_SEED):
    """``(X_train, X_test)``: the rows of ``X`` in a Philox permutation fixed by ``seed``, the first ``n_train``
    for training and the rest held out."""
    from . import rng

    order = rng.permutation(rng.key_from_seed(seed), rng.STREAM_SHUFFLE, 0, X.shape[0])
    return X[order[:n_train]], X[order[n_train:]]


def reconstruction_error(X, R):
    """Squared error summed over features, averaged over rows: ``mean_n Σ_d (x_nd − r_nd)²`` (Hinton and
    Salakhutdinov's metric), computed in float64."""
    diff = np.asarray(X, dtype=np.float64) - np.asarray(R, dtype=np.float64)
    return float(np.mean(np.sum(diff * diff, axis=1)))


def pca_error(X_train, X_test, n_components):
    """Held-out :func:`reconstruction_error` of scikit-learn's PCA with ``n_components``, fitted on ``X_train``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, svd_solver="full").fit(X_train)
    return reconstruction_error(X_test, pca.inverse_transform(pca.transform(X_test)))


def independent_pixel_loglik(X_train, X_test):
    """Mean over ``X_test`` of ``Σ_d [x log p_d + (1 − x) log(1 − p_d)]`` with ``p`` the training pixel means:
    the Bernoulli cross-entropy "likelihood" of a model with no latent variable, the floor a VAE should beat."""
    eps = 1e-7  # pixels that are always 0 in training would otherwise give log(0)
    p = np.clip(np.mean(X_train, axis=0), eps, 1 - eps)
    return float(np.mean(X_test @ np.log(p) + (1 - X_test) @ np.log1p(-p)))


def run_demo(quick=False, seed=0):
    """Train the demo's models and return a dict of results (errors, ELBO, backends, times); prints nothing.
    BLAS runs on ``DEMO_BLAS_THREADS`` threads meanwhile."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=DEMO_BLAS_THREADS, user_api="blas"):
        return _run_demo(quick, seed)


def _run_demo(quick, seed):
    import fastae

    from .datasets import load_digits

    t_start = time.perf_counter()
    X = load_digits()
    X_train, X_test = split_digits(X)
    results = {"n_train": X_train.shape[0], "n_test": X_test.shape[0], "n_features": X.shape[1],
               "quick": quick, "seed": seed, "blas_threads": DEMO_BLAS_THREADS, "models": []}
    for name, (kind, label, params) in demo_configs(quick, seed).items():
        cls = getattr(fastae, kind)
        t0 = time.perf_counter()
        model = cls(**params).fit(X_train)
        fit_time = time.perf_counter() - t0
        row = {"name": name, "label": label, "kind": kind, "params": params, "backend": model.backend_,
               "dtype": model.dtype, "fit_time": fit_time}
        if kind == "VAE":
            row["code"] = int(params["latent"])
            row["elbo"] = float(np.mean(model.elbo(X_test, n_samples=DEMO_ELBO_SAMPLES)))
            row["elbo_train"] = float(np.mean(model.elbo(X_train, n_samples=DEMO_ELBO_SAMPLES)))
        else:
            row["code"] = int(params["hidden"][-1])
            row["error"] = reconstruction_error(X_test, model.reconstruct(X_test))
            row["pca_error"] = pca_error(X_train, X_test, row["code"])
        results["models"].append(row)
    results["baseline_loglik"] = independent_pixel_loglik(X_train, X_test)
    results["wall_time"] = time.perf_counter() - t_start
    return results


def format_demo(results):
    """The demo's report as text: an aligned table for the autoencoders against PCA, then the VAE's ELBO."""
    r = results
    mode = "quick" if r["quick"] else "full"
    lines = [f"fastae demo ({mode}): scikit-learn digits, {r['n_train']} training / {r['n_test']} held-out "
             f"images of {r['n_features']} pixels in [0, 1]; model seed {r['seed']}; BLAS threads "
             f"{r['blas_threads']}",
             "",
             "Held-out reconstruction error: squared error summed over pixels, averaged over images "
             "(lower is better)"]
    aes = [m for m in r["models"] if "error" in m]
    header = ("model", "layers", "code", "autoencoder", "PCA", "AE / PCA", "backend", "fit time")
    table = [header]
    for m in aes:
        table.append((m["label"], _layers(m["params"]["hidden"]), str(m["code"]), f"{m['error']:.3f}",
                      f"{m['pca_error']:.3f}", f"{m['error'] / m['pca_error']:.2f}",
                      f"{m['backend']} {m['dtype']}", f"{m['fit_time']:.2f} s"))
    lines += _aligned(table)
    lines += ["", "Held-out mean ELBO per image in nats (higher is better). The Bernoulli decoder on grey levels "
              "makes it", "a cross-entropy bound, comparable between models but not a normalised "
              "log-likelihood."]
    table = [("model", "layers", "latent", "held-out ELBO", "train ELBO", "backend", "fit time")]
    for m in r["models"]:
        if "elbo" in m:
            table.append((m["label"], _layers(m["params"]["hidden"]), str(m["code"]), f"{m['elbo']:.2f}",
                          f"{m['elbo_train']:.2f}", f"{m['backend']} {m['dtype']}", f"{m['fit_time']:.2f} s"))
    table.append(("independent pixels", "-", "0", f"{r['baseline_loglik']:.2f}", "-", "-", "-"))
    lines += _aligned(table)
    lines += ["", f"total wall time {r['wall_time']:.1f} s"]
    return "\n".join(lines)


def _layers(hidden):
    return "-".join(str(h) for h in hidden)


def _aligned(table):
    """Rows of a table as text: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    out = []
    for row in table:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        out.append("  " + "  ".join(cells))
    return out


def _cmd_demo(args):
    # The optional dependencies are checked up front, so a missing one fails before any training, in one line.
    for module in ("sklearn", "threadpoolctl"):
        try:
            __import__(module)
        except ImportError:
            print(f"fastae demo: needs {module}, which is not installed; install the demo's dependencies with "
                  f"`pip install fastae[demo]`", file=sys.stderr)
            return 1
    mode = "quick" if args.quick else "full"
    print(f"fastae demo ({mode}): training {len(DEMO_CONFIGS)} models on digits ...", flush=True)
    print(format_demo(run_demo(quick=args.quick, seed=args.seed)), flush=True)
    return 0


# --- fastae bench -----------------------------------------------------------------------------------------------
BENCH_SUITES = ("train", "encode", "latency", "kernel", "coldstart", "quality")
BENCH_RUNNER_SUITES = ("train", "encode", "latency")  # run by fastae.benchmark.runner
# The other suites: suite name -> module of fastae.benchmark exposing ``run(quick, log) -> rows``.
BENCH_SUITE_MODULES = {"kernel": "kernels", "coldstart": "coldstart", "quality": "quality"}
BENCH_PEERS = ("torch", "jax")
BENCH_OUT = "fastae-bench"


def _add_bench_parser(sub):
    from .benchmark.configs import CONFIGS

    bench = sub.add_parser(
        "bench", help="benchmark fastae against its peers (PyTorch, JAX) and the GEMM-only floor",
        description="Check every contestant's answer against the float64 reference, then time them side by side "
                    "on the standard configurations. Writes results.json, results.md and PNG plots into --out, "
                    "prints the Markdown report, and exits with status 1 if any answer is WRONG or any "
                    "contestant failed. Plots need matplotlib (pip install fastae[plot]).")
    bench.add_argument("--quick", action="store_true",
                       help="fewer and shorter samples, reduced quality budget (a few minutes in all)")
    bench.add_argument("--config", type=_name_list("configuration", tuple(CONFIGS)), default=list(CONFIGS),
                       metavar="NAMES", help=f"comma-separated configurations (default: all, {','.join(CONFIGS)})")
    bench.add_argument("--peers", type=_name_list("peer", None, allow_none=True), default=list(BENCH_PEERS),
                       metavar="NAMES", help=f"comma-separated peers, or 'none' (default: {','.join(BENCH_PEERS)})")
    bench.add_argument("--suites", type=_name_list("suite", BENCH_SUITES), default=list(BENCH_SUITES),
                       metavar="NAMES", help=f"comma-separated suites (default: all, {','.join(BENCH_SUITES)})")
    bench.add_argument("--threads", type=_positive, default=_cpu_count(), metavar="N",
                       help="threads for every contestant (BLAS, Numba, PyTorch, XLA); default: the cores this "
                            f"process may use ({_cpu_count()} here)")
    bench.add_argument("--out", default=BENCH_OUT, metavar="DIR",
                       help=f"folder for results.json, results.md and the plots (default: ./{BENCH_OUT})")
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



def _cpu_count():
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def bench_command(args) -> str:
    """The exact ``fastae bench`` command line that reproduces a run with parsed ``args``.

    Some machines set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` to pin NumPy's BLAS to older kernels; a run made
    without them says so, since reproducing it on such a machine needs them unset."""
    import os
    import shlex

    unpinned = not any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    parts = ["env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"] if unpinned else []
    parts += ["fastae bench"] + (["--quick"] if args.quick else [])
    parts += [f"--config {','.join(args.config)}", f"--peers {','.join(args.peers) or 'none'}",
              f"--suites {','.join(args.suites)}", f"--threads {args.threads}", f"--out {shlex.quote(args.out)}"]
    return " ".join(parts)


def _placeholder(name, reason, kind="peer"):
    """A contestant that cannot run here: it appears in every table as skipped, with ``reason``."""
    from .benchmark.contestants import Contestant

    class Unavailable(Contestant):
        def unavailable(self):
            return reason

    c = Unavailable()
    c.name, c.kind = name, kind
    return c


def _broken(contestant, message):
    """``contestant`` made to fail loudly in every case with ``message`` (reported as failed, not hidden)."""
    from .benchmark.contestants import Contestant

    class Broken(Contestant):
        def train(self, *a):
            raise RuntimeError(message)

        encode = train

    c = Broken()
    c.name, c.kind = contestant.name, contestant.kind
    return c


def bench_peers(names, log=print):
    """The peer contestants for ``names`` from :data:`fastae.benchmark.peers.PEERS`; a peer that cannot be
    loaded becomes a placeholder that is reported as skipped with the reason."""
    import importlib

    try:
        module = importlib.import_module("fastae.benchmark.peers")
    except ModuleNotFoundError as exc:
        if exc.name != "fastae.benchmark.peers":  # peers.py is there, but something it imports is not
            return [_placeholder(n, f"cannot import fastae.benchmark.peers: {exc}") for n in names]
        return [_placeholder(n, "not available yet (fastae.benchmark.peers is missing)") for n in names]
    except Exception as exc:  # a broken peers.py must not stop fastae's own numbers
        log(f"fastae bench: importing fastae.benchmark.peers failed: {type(exc).__name__}: {exc}")
        return [_placeholder(n, f"cannot import fastae.benchmark.peers: {type(exc).__name__}: {exc}")
                for n in names]
    table = getattr(module, "PEERS", {})
    out = []
    for name in names:
        if name not in table:
            out.append(_placeholder(name, f"no peer {name!r} in fastae.benchmark.peers.PEERS "
                                          f"(it has {', '.join(table) or 'none'})"))
            continue
        for entry in table[name]:
            try:
                out.append(entry() if isinstance(entry, type) else entry)
            except Exception as exc:
                out.append(_placeholder(getattr(entry, "name", None) or getattr(entry, "__name__", name),
                                        f"cannot construct: {type(exc).__name__}: {exc}"))
    return out


def bench_contestants(peers, threads, log=print):
    """fastae on every available backend (float32), the peers, and the GEMM-only floor, each told to use
    ``threads`` threads. (The float64 NumPy reference checks the answers; it is not a contestant.)"""
    from . import available_backends
    from .benchmark.contestants import Fastae, GemmFloor

    contestants = [Fastae(b) for b in available_backends()] + bench_peers(peers, log) + [GemmFloor()]
    out = []
    for c in contestants:
        try:
            reason = c.unavailable()
        except Exception as exc:  # a broken availability check is a bug to see, not a skip
            out.append(_broken(c, f"unavailable() raised {type(exc).__name__}: {exc}"))
            continue
        if reason is None:
            try:
                c.threads(threads)
            except Exception as exc:
                c = _broken(c, f"could not set {threads} threads: {type(exc).__name__}: {exc}")
        out.append(c)
    return out


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
            out.append({**base, "status": "failed", "note": f"{module_name}.run returned a {type(row).__name__} "
                                                              f"row, not a dict"})
        else:
            out.append({"suite": suite, **row})
    return out


def run_bench(args, log=print) -> dict:
    """Run the benchmark described by parsed ``args``; returns the merged result (``meta`` and ``rows``).
    Sets the thread counts first, before anything imports PyTorch or JAX."""
    from .benchmark import threads as bench_threads

    started = time.time()
    threads_info = bench_threads.set_threads(args.threads)
    from .benchmark import runner

    contestants = bench_contestants(args.peers, args.threads, log)
    for c in contestants:
        reason = c.unavailable()
        if reason:
            log(f"  {c.name}: skipped, {reason}")
    runner_suites = [s for s in args.suites if s in BENCH_RUNNER_SUITES]
    result = runner.run(configs=args.config, contestants=contestants, suites=runner_suites, quick=args.quick,
                        log=log)
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
    return {"command": bench_command(args), "threads": args.threads, "threads_info": threads_info,
            "cpu": info["processor"]["model"], "system": f"{platform.system()} {platform.release()}",
            "machine_info": info,
            "versions": {"fastae": __version__, **versions}, "suites": list(args.suites),
            "peers": list(args.peers)}


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
        print(f"fastae bench: {len(bad)} row(s) WRONG or failed: "
              + "; ".join(f"{r.get('suite')} {r.get('config')} {r.get('contestant')}: {r.get('status')} "
                          f"({r.get('note')})" for r in bad), file=sys.stderr, flush=True)
        return 1
    return 0
