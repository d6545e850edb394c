"""fastae/backends/blas_threads.py: SciPy's BLAS held at one thread while pool ops run, counted, from any thread."""

import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from fastae.backends import blas_threads
from fastae.backends.blas_threads import CAP, BlasCap

pytestmark = pytest.mark.skipif(CAP.unsupported() is not None, reason=f"no cap here: {CAP.unsupported()}")


@pytest.fixture
def two_threads():
    """SciPy's BLAS at two threads, so that a restored count is distinguishable from the cap's one."""
    before = [get() for get, _ in CAP._functions]
    for _, put in CAP._functions:
        put(2)
    yield [2] * len(before)
    for (_, put), n in zip(CAP._functions, before):
        put(n)


def test_the_cap_holds_one_thread_and_restores_the_count(two_threads):
    with CAP:
        assert CAP.threads() == [1] * len(two_threads)
        with CAP:  # nested: still held, and leaving it keeps the outer hold
            pass
        assert CAP.threads() == [1] * len(two_threads)
    assert CAP.threads() == two_threads


def test_a_worker_thread_can_take_the_cap(two_threads):
    """threadpoolctl's controller lets only the thread that controls it change an OpenBLAS count (the first to
    call it, until threadpoolctl's context managers release it); the cap calls the library itself, so a fit
    started from a worker thread is capped as well."""
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


def test_concurrent_holders_keep_the_cap_until_the_last_leaves(two_threads):
    before = two_threads
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


_FORK = r"""
import os
from fastae.backends.blas_threads import CAP
assert CAP.unsupported() is None  # and it has found the library's own setters
for _, put in CAP._functions:
    put(2)
r, w = os.pipe()
with CAP:
    pid = os.fork()
    if pid == 0:  # the child: released, count restored, and its own holds still work
        try:
            seen = [CAP._depth, CAP.threads()]
            with CAP:
                seen.append(CAP.threads())
            seen.append(CAP.threads())
            os.write(w, repr(seen).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
print(os.read(r, 1000).decode())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_while_the_cap_is_held_starts_released():
    """In a fresh interpreter, so that no other library's threads are around at the fork."""
    out = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n = len(CAP.threads())
    assert out.stdout.strip() == repr([0, [2] * n, [1] * n, [2] * n]), out.stdout


def test_an_unsupported_blas_is_named_and_refused(monkeypatch):
    fake = SimpleNamespace(internal_api="mkl", threading_layer="intel", filepath="/opt/libmkl_rt.so", dynlib=None)
    monkeypatch.setattr(blas_threads, "_scipy_blas_controllers", lambda: [fake])
    cap = BlasCap()
    why = cap.unsupported()
    assert "mkl" in why and "/opt/libmkl_rt.so" in why and "pthreads" in why
    with pytest.raises(RuntimeError, match="mkl"):
        with cap:
            pass
