"""Streams, events and stream capture, with CUDA's rules for what a capture forbids.

Work "runs" when it is submitted (the stand-in has no asynchrony), except on a capturing stream: there it is
recorded as a graph node and runs only when the graph is launched. While a capture is active:

* a synchronisation of the capturing stream, a device-to-host copy on it, a host-to-device copy from pageable
  memory to it, or a ``cudaDeviceSynchronize`` raise ``cudaErrorStreamCaptureUnsupported`` (900);
* work or a synchronisation on the legacy default stream while a *blocking* stream captures raises
  ``cudaErrorStreamCaptureImplicit`` (906), as the legacy stream's implicit synchronisation would;
* any device allocation by the capturing thread (or by any thread, in ``streamCaptureModeGlobal``) raises 900:
  stricter than CuPy's memory pool in relaxed mode, on purpose (an array allocated inside a capture is one buffer
  the graph writes on every launch, a classic aliasing bug);

and each of these errors invalidates the capture, so ``end_capture`` then raises
``cudaErrorStreamCaptureInvalidated`` (901), as CUDA does.
"""

from __future__ import annotations

import itertools
import threading
import time

from . import errors
from .errors import runtime_error
from .state import counters, devices, lock

# cudaStreamCaptureMode
CAPTURE_GLOBAL, CAPTURE_THREAD_LOCAL, CAPTURE_RELAXED = 0, 1, 2
LEGACY, PER_THREAD = 1, 2  # cudaStreamLegacy, cudaStreamPerThread

_handles = itertools.count(0x5C0000, 0x100)  # fake cudaStream_t / cudaEvent_t values: distinct, never 0, 1 or 2


class _Capture:
    def __init__(self, stream, mode):
        self.stream = stream
        self.mode = mode
        self.thread = threading.get_ident()
        self.nodes: list = []
        self.invalid: str | None = None  # what invalidated it


_captures: dict[int, _Capture] = {}  # stream ptr -> its active capture
_tls = threading.local()


def current_device() -> int:
    """This thread's current device (``cudaGetDevice``): fails as CUDA does when there is no device."""
    if devices.count == 0:
        raise runtime_error(devices.status, "there is no device (tests.cupy_standin.set_device_count(0))")
    return getattr(_tls, "device", 0)


def set_current_device(device_id: int) -> None:
    """``cudaSetDevice``."""
    if devices.count == 0:
        raise runtime_error(devices.status, "there is no device")
    if not 0 <= device_id < devices.count:
        raise runtime_error(errors.INVALID_DEVICE, f"device {device_id} of {devices.count}")
    _tls.device = device_id


def _stack() -> list:
    s = getattr(_tls, "streams", None)
    if s is None:
        s = _tls.streams = [Stream.null]
    return s


def current_stream():
    """This thread's current stream (``cupy.cuda.get_current_stream``)."""
    return _stack()[-1]


def _capture_of(stream) -> _Capture | None:
    return _captures.get(stream.ptr) if stream.ptr not in (0, LEGACY) else None


def _invalidate(cap: _Capture, reason: str) -> None:
    if cap.invalid is None:
        cap.invalid = reason


def _blocking_captures() -> list[_Capture]:
    return [c for c in _captures.values() if not c.stream.is_non_blocking]


def _check_legacy(stream, what: str) -> None:
    """Work on the legacy stream may not start while a blocking stream captures (it would wait on that stream)."""
    if stream.ptr in (0, LEGACY):
        caps = _blocking_captures()
        if caps:
            for c in caps:
                _invalidate(c, what)
            raise runtime_error(
                errors.CAPTURE_IMPLICIT,
                f"{what} on the legacy default stream while the blocking stream {caps[0].stream!r} is capturing",
            )


def is_capturing(ptr: int) -> bool:
    """``cudaStreamIsCapturing``: querying the legacy stream during a blocking capture is itself an error."""
    with lock:
        if ptr in (0, LEGACY):
            _check_legacy(Stream.null, "cudaStreamIsCapturing")
            return False
        return ptr in _captures


def any_capture() -> bool:
    """Whether some stream is capturing."""
    return bool(_captures)


def submit(stream, arrays, run, what: str) -> bool:
    """Run ``run(arrays)`` on ``stream`` (default: the current one) now, or record it in the stream's capture.

    ``arrays`` are the device arrays the work touches; a recorded node keeps only weak references to their memory
    and resolves them again at each graph launch. Returns whether the work ran now.
    """
    from .graphs import Node

    stream = current_stream() if stream is None else stream
    with lock:
        cap = _capture_of(stream)
        if cap is not None:
            if cap.invalid is not None:
                raise runtime_error(errors.CAPTURE_INVALIDATED, f"{what}: the capture failed earlier ({cap.invalid})")
            cap.nodes.append(Node(what, run, arrays))
            return False
        _check_legacy(stream, what)
    run(arrays)
    return True


def sync_point(stream, what: str, count: bool = True) -> None:
    """The host waits for ``stream`` (a synchronisation, or a copy to the host that must complete)."""
    stream = current_stream() if stream is None else stream
    with lock:
        cap = _capture_of(stream)
        if cap is not None:
            _invalidate(cap, what)
            raise runtime_error(errors.CAPTURE_UNSUPPORTED, f"{what}: the host waits for a capturing stream")
        _check_legacy(stream, what)
    if count:
        counters.syncs += 1


def device_sync(what: str) -> None:
    """``cudaDeviceSynchronize``: it would wait for every stream, capturing ones included."""
    with lock:
        if _captures:
            for c in _captures.values():
                _invalidate(c, what)
            raise runtime_error(errors.CAPTURE_UNSUPPORTED, f"{what} while a stream is capturing")
    current_device()
    counters.syncs += 1


def check_alloc(what: str) -> None:
    """A device allocation is about to happen: refused while this thread captures (any thread, in global mode)."""
    if not _captures:
        return
    me = threading.get_ident()
    with lock:
        caps = [c for c in _captures.values() if c.mode == CAPTURE_GLOBAL or c.thread == me]
        for c in caps:
            _invalidate(c, what)
    if caps:
        raise runtime_error(
            errors.CAPTURE_UNSUPPORTED,
            f"{what}: allocating device memory while {caps[0].stream!r} is capturing (allocate every buffer the graph "
            "uses before begin_capture)",
        )


def copy_to_device(stream, pinned: bool, run, arrays, what: str) -> None:
    """A host-to-device copy: inside a capture only from pinned memory (pageable memory would be staged by the
    host at capture time, not at each launch: CUDA refuses it)."""
    stream = current_stream() if stream is None else stream

    def counted(views):
        counters.h2d += 1
        run(views)

    with lock:
        cap = _capture_of(stream)
        if cap is not None and not pinned:
            _invalidate(cap, what)
            raise runtime_error(errors.CAPTURE_UNSUPPORTED, f"{what}: a copy from pageable host memory in a capture")
    submit(stream, arrays, counted, what)


def copy_to_host(stream, pinned: bool, blocking: bool, run, arrays, what: str) -> None:
    """A device-to-host copy (counted as a sync): inside a capture only a non-blocking copy into pinned memory."""
    stream = current_stream() if stream is None else stream
    with lock:
        cap = _capture_of(stream)
        if cap is not None and (blocking or not pinned):
            _invalidate(cap, what)
            why = "the host waits for it" if blocking else "into pageable host memory"
            raise runtime_error(errors.CAPTURE_UNSUPPORTED, f"{what}: a device-to-host copy in a capture ({why})")

    def counted(views):
        counters.syncs += 1
        run(views)

    submit(stream, arrays, counted, what)


def abort_captures() -> None:
    """End every active capture, discarding it (stand-in only: for test teardown)."""
    with lock:
        _captures.clear()


class Event:
    """``cupy.cuda.Event``: a point in a stream's work, with its (host) time when it was reached."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        if interprocess and not disable_timing:
            raise ValueError("Timing must be disabled for interprocess events")
        self.ptr = next(_handles)
        self._block, self._timing = bool(block), not disable_timing
        self._time: float | None = None
        self._capture: _Capture | None = None  # the capture it was last recorded in

    def _captured(self, what):
        cap = self._capture
        if cap is not None:
            raise runtime_error(errors.CAPTURED_EVENT, f"{what} of an event last recorded in a capture")

    @property
    def done(self):
        """True if the event is done."""
        self._captured("Event.done")
        return True

    def record(self, stream=None):
        """Record the event on ``stream`` (default: the current stream)."""
        stream = current_stream() if stream is None else stream
        with lock:
            cap = _capture_of(stream)
        if cap is not None:
            self._capture = cap

            def mark(_views):
                self._time, self._capture = time.perf_counter(), None

            submit(stream, [], mark, "Event.record")
            return
        self._capture = None
        submit(stream, [], lambda _v: setattr(self, "_time", time.perf_counter()), "Event.record")

    def synchronize(self):
        """The host waits for the event."""
        self._captured("Event.synchronize")
        counters.syncs += 1


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events."""
    for e in (start_event, end_event):
        e._captured("get_elapsed_time")
        if e._time is None or not e._timing:
            raise runtime_error(errors.INVALID_RESOURCE_HANDLE, "an event not recorded, or made with disable_timing")
    return (end_event._time - start_event._time) * 1000.0


class Stream:
    """``cupy.cuda.Stream(null=False, non_blocking=False, ptds=False, priority=None)``.

    ``Stream.null`` (``ptr`` 0) is the legacy default stream, ``Stream.ptds`` (``ptr`` 2) the per-thread one.
    """

    null = None
    ptds = None

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        if null:
            self.ptr, self.device_id = 0, -1
        elif ptds:
            self.ptr, self.device_id = PER_THREAD, -1
        else:
            self.device_id = current_device()
            self.ptr = next(_handles)
        self._non_blocking = bool(non_blocking) and not null and not ptds
        self._priority = 0 if priority is None else int(priority)

    def __eq__(self, other):
        return isinstance(other, Stream) and self.ptr == other.ptr

    def __hash__(self):
        return self.ptr

    def __repr__(self):
        return f"<{type(self).__name__} {self.ptr} (device {self.device_id})>"

    def __cuda_stream__(self):
        return (0, self.ptr)

    def _check_device(self):
        if self.device_id not in (-1, current_device()):
            raise RuntimeError(
                f"The device that the stream is created on ({self.device_id}) does not match with the current device "
                f"({current_device()})"
            )

    def __enter__(self):
        self._check_device()
        _stack().append(self)
        return self

    def __exit__(self, *args):
        _stack().pop()

    def use(self):
        """Make this stream current (until another ``use`` or the end of an enclosing ``with``)."""
        self._check_device()
        _stack()[-1] = self
        return self

    @property
    def done(self):
        """True if all work on this stream has been done (``cudaStreamQuery``)."""
        with lock:
            cap = _capture_of(self)
            if cap is not None:
                _invalidate(cap, "Stream.done")
                raise runtime_error(errors.CAPTURE_UNSUPPORTED, "cudaStreamQuery of a capturing stream")
        return True

    def synchronize(self):
        """The host waits for the stream's work."""
        sync_point(self, "Stream.synchronize")

    def add_callback(self, callback, arg):
        """``callback(stream, status, arg)`` once queued work is done (not capturable, as in CUDA)."""
        with lock:
            cap = _capture_of(self)
            if cap is not None:
                _invalidate(cap, "Stream.add_callback")
                raise runtime_error(errors.CAPTURE_UNSUPPORTED, "cudaStreamAddCallback in a capture")
        submit(self, [], lambda _v: callback(self, 0, arg), "Stream.add_callback")

    def launch_host_func(self, callback, arg):
        """``callback(arg)`` on the host once queued work is done (captured as a host node)."""
        submit(self, [], lambda _v: callback(arg), "Stream.launch_host_func")

    def record(self, event=None):
        """Record ``event`` (a new one by default) on this stream and return it."""
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        """Make future work on this stream wait for ``event``."""
        cap = event._capture
        if cap is not None and cap.stream is not self and _capture_of(self) is None:
            # joining another stream into a capture (fork/join capture): not modelled
            raise NotImplementedError("cupy stand-in: cross-stream capture (waiting on an event recorded in a capture)")

    def begin_capture(self, mode=None):
        """Start capturing this stream's work into a graph (default mode: ``streamCaptureModeRelaxed``, as CuPy)."""
        if self.ptr in (0, LEGACY):
            raise RuntimeError("cannot capture on the default (legacy) stream")
        mode = CAPTURE_RELAXED if mode is None else int(mode)
        if mode not in (CAPTURE_GLOBAL, CAPTURE_THREAD_LOCAL, CAPTURE_RELAXED):
            raise runtime_error(1, f"capture mode {mode}")
        with lock:
            if self.ptr in _captures:
                raise runtime_error(errors.ILLEGAL_STATE, "begin_capture on a stream that is already capturing")
            _captures[self.ptr] = _Capture(self, mode)

    def end_capture(self):
        """End the capture and return its :class:`~tests.cupy_standin.graphs.Graph`."""
        from .graphs import Graph

        with lock:
            cap = _captures.pop(self.ptr, None)
        if cap is None:
            raise runtime_error(errors.ILLEGAL_STATE, "end_capture on a stream that is not capturing")
        if cap.invalid is not None:
            raise runtime_error(errors.CAPTURE_INVALIDATED, f"the capture was invalidated by: {cap.invalid}")
        return Graph._from_nodes(cap.nodes)

    def is_capturing(self):
        """Whether the stream is capturing."""
        return is_capturing(self.ptr)

    @property
    def is_non_blocking(self):
        """True if the stream does not synchronise with the legacy default stream."""
        return self._non_blocking

    @property
    def priority(self):
        """The stream's priority."""
        return self._priority


Stream.null = Stream(null=True)
Stream.ptds = Stream(ptds=True)


def get_current_stream(device_id=-1):
    """``cupy.cuda.get_current_stream``."""
    return current_stream()
