"""Who runs in a benchmark: the one contestant list that ``fastae bench`` and ``bench/`` both use.

A contestant that cannot run here stays in the list as a placeholder that every table reports as skipped, with
the reason; one whose availability check or thread setting breaks is reported as failed. Nothing is dropped
silently.
"""

from __future__ import annotations


def _placeholder(name, reason, kind="peer"):
    """A contestant that cannot run here: it appears in every table as skipped, with ``reason``."""
    from .contestants import Contestant

    class Unavailable(Contestant):
        def unavailable(self):
            return reason

    c = Unavailable()
    c.name, c.kind = name, kind
    return c


def _broken(contestant, message):
    """``contestant`` made to fail loudly in every case with ``message`` (reported as failed, not hidden)."""
    from .contestants import Contestant

    class Broken(Contestant):
        def train(self, *a):
            raise RuntimeError(message)

        encode = train

    c = Broken()
    c.name, c.kind = contestant.name, contestant.kind
    return c


def peers(names, log=print):
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
        return [_placeholder(n, f"cannot import fastae.benchmark.peers: {type(exc).__name__}: {exc}") for n in names]
    table = getattr(module, "PEERS", {})
    out = []
    for name in names:
        if name not in table:
            out.append(
                _placeholder(
                    name, f"no peer {name!r} in fastae.benchmark.peers.PEERS (it has {', '.join(table) or 'none'})"
                )
            )
            continue
        for entry in table[name]:
            try:
                out.append(entry() if isinstance(entry, type) else entry)
            except Exception as exc:
                out.append(
                    _placeholder(
                        getattr(entry, "name", None) or getattr(entry, "__name__", name),
                        f"cannot construct: {type(exc).__name__}: {exc}",
                    )
                )
    return out


def contestants(names, threads, log=print):
    """The contestant list of every benchmark: fastae on every available backend in float32, and in bfloat16 on
    the two Numba backends; the peers ``names`` (of ``torch``, ``jax``); and the GEMM-only floors: NumPy's, oneMKL's
    float32 and oneMKL's bfloat16 (skipped, with the reason, where MKL or bf16 units are missing). Each is told to
    use ``threads`` threads. (The float64 NumPy reference checks the answers; it is not a contestant.)"""
    from ..backends import available_backends
    from .contestants import Fastae, GemmFloor

    backends = available_backends()
    contestants = (
        [Fastae(b) for b in backends]
        + [Fastae(b, precision="bfloat16") for b in backends if b in ("numba", "numba-pool")]
        + peers(names, log)
        + [GemmFloor(), GemmFloor("mkl"), GemmFloor("mkl", "bfloat16")]
    )
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
