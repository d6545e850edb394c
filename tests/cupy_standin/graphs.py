"""CUDA graphs made by stream capture: a recorded list of device work, replayed by ``Graph.launch``.

A node holds its arrays only weakly (their allocation, offset and layout): on a GPU a graph writes through the
addresses it captured, and an array freed after the capture has returned its memory to CuPy's pool, where another
array may now live. Replaying a node whose memory is gone raises ``cudaErrorIllegalAddress`` instead.
"""

from __future__ import annotations

import weakref

from .errors import runtime_error
from .state import counters


class ArrayRef:
    """A weak handle on a device array's memory and layout, resolved again at each replay."""

    __slots__ = ("_alloc", "_offset", "_shape", "_strides", "_dtype", "_empty")

    def __init__(self, a):
        alloc = a._alloc
        self._empty = a if alloc is None else None  # a size-0 array owns no device memory: keep it as it is
        self._alloc = None if alloc is None else weakref.ref(alloc)
        self._offset = 0 if alloc is None else a._a.ctypes.data - alloc.ptr
        self._shape, self._strides, self._dtype = a.shape, a.strides, a.dtype

    def resolve(self, what: str):
        """The array again (a view of the same memory), or ``CUDARuntimeError`` 700 if that memory was freed."""
        from .arrays import _view

        if self._empty is not None:
            return self._empty
        alloc = self._alloc()
        if alloc is None:
            raise runtime_error(
                700,
                f"graph launch: {what} uses an array of shape {self._shape} ({self._dtype}) that was freed after the "
                "capture; on a GPU the graph would write into memory the pool may have given to another array",
            )
        return _view(alloc, self._offset, self._shape, self._strides, self._dtype)


class Node:
    """One captured piece of work: ``run(arrays)`` with the arrays it touches."""

    __slots__ = ("what", "run", "refs")

    def __init__(self, what: str, run, arrays):
        self.what, self.run = what, run
        self.refs = [ArrayRef(a) for a in arrays]

    def __repr__(self):
        return f"<graph node {self.what}>"


class Graph:
    """``cupy.cuda.Graph``: made only by ``Stream.end_capture``."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            "currently this class cannot be initiated by the user and must be created via stream capture"
        )

    @classmethod
    def _from_nodes(cls, nodes) -> Graph:
        g = cls.__new__(cls)
        g._nodes = list(nodes)
        return g

    def launch(self, stream=None):
        """Replay the captured work on ``stream`` (default: the current stream), in capture order."""
        from .streams import submit

        counters.graph_launches += 1
        for node in self._nodes:
            arrays = [r.resolve(node.what) for r in node.refs]
            submit(stream, arrays, node.run, node.what)

    def upload(self, stream=None):
        """``cudaGraphUpload``: nothing to do here."""
