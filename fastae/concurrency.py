"""One model shared by threads: updates are serialised, and a reader sees the weights from before an update or
after it, never a mix.

* ``fit`` and ``partial_fit`` hold the model's update lock for their whole call, so concurrent calls run one
  after the other and every update is counted.
* Every change of the weights is *published* under the commit lock with the model's version counter made odd
  during it (:func:`publishing`). A reader (``encode``, ``score_samples``, ``state_dict``, ...) runs without any
  lock and checks afterwards that the version was even and did not move (:func:`consistent`): a seqlock. If it
  moved, the reader runs again, and at the second retry under the commit lock, which holds the next commit back
  for as long as it reads. The weights a reader sees are never written in place while it could hold them: an
  update writes into buffers at least two commits old (fastae/training.py, ``Optimizer.commit``), and any such
  write happens after a commit that the version check sees.
"""

from __future__ import annotations

import functools
import threading

_LOCKS = threading.Lock()  # guards the lazy creation of a model's own locks


def locks(model):
    """``(update lock, commit lock)`` of ``model``, created on first use (not pickled, not in ``__init__``)."""
    d = model.__dict__
    pair = d.get("_locks")
    if pair is None:
        with _LOCKS:
            pair = d.get("_locks")
            if pair is None:
                pair = d["_locks"] = (threading.RLock(), threading.RLock())
    return pair


class publishing:
    """``with publishing(model):`` around every change of ``model``'s weights (or of what inference reads):
    readers that overlap it run again. A class, not a generator: a training step of a small model pays for it."""

    __slots__ = ("model", "lock")

    def __init__(self, model):
        self.model, self.lock = model, locks(model)[1]

    def __enter__(self):
        self.lock.acquire()
        self.model._version += 1

    def __exit__(self, *exc):
        self.model._version += 1
        self.lock.release()


def updating(method):
    """``method`` (``fit``, ``partial_fit``) under the model's update lock."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with locks(self)[0]:
            return method(self, *args, **kwargs)

    return wrapper


def consistent(method):
    """``method`` (a reader of the weights) run again if an update was published while it ran."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        v = self._version
        result = method(self, *args, **kwargs)
        if self._version == v and not v & 1:
            return result
        v = self._version
        result = method(self, *args, **kwargs)
        if self._version == v and not v & 1:
            return result
        with locks(self)[1]:
            return method(self, *args, **kwargs)

    return wrapper
