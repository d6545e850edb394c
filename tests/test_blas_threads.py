"""fastae/backends/blas_threads.py: SciPy's BLAS held at one thread while pool ops run, counted, from any thread."""

import threading
from types import SimpleNamespace

import pytest

from fastae.backends import blas_threads
from fastae.backends.blas_threads import CAP, BlasCap


def test_the_cap_holds_one_thread_and_restores_the_count():
    assert CAP.unsupported() is None, CAP.unsupported()  # pip's SciPy: its own OpenBLAS, pthreads
    before = CAP.threads()
    with CAP:
        assert CAP.threads() == [1] * len(before)
        with CAP:  # nested: still held, and leaving it keeps the outer hold
            pass
        assert CAP.threads() == [1] * len(before)
    assert CAP.threads() == before


def test_a_worker_thread_can_take_the_cap():
    """threadpoolctl's OpenBLAS setter ignores every thread but the first that ever used it; the cap calls the
    library itself, so a fit started from a worker thread is capped as well."""
    with CAP:
        pass  # the main thread has taken it once
    seen = []

    def work():
        with CAP:
            seen.append(CAP.threads())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen and all(n == 1 for n in seen[0]), seen


def test_concurrent_holders_keep_the_cap_until_the_last_leaves():
    before = CAP.threads()
    inside, release = threading.Barrier(3), threading.Event()
    seen = []

    def work():
        with CAP:
            inside.wait()
            release.wait()
            seen.append(CAP.threads())

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    seen.append(CAP.threads())
    release.set()
    for t in threads:
        t.join()
    assert all(s == [1] * len(before) for s in seen), seen
    assert CAP.threads() == before


def test_an_unsupported_blas_is_named_and_refused(monkeypatch):
    fake = SimpleNamespace(internal_api="mkl", threading_layer="intel", filepath="/opt/libmkl_rt.so", dynlib=None)
    monkeypatch.setattr(blas_threads, "_scipy_blas_controllers", lambda: [fake])
    cap = BlasCap()
    why = cap.unsupported()
    assert "mkl" in why and "/opt/libmkl_rt.so" in why and "pthreads" in why
    with pytest.raises(RuntimeError, match="mkl"):
        with cap:
            pass
