"""Device and pinned host memory of the stand-in.

Every device allocation is its own NumPy buffer, registered in an allocation table (address range -> allocation)
so that a raw address handed to cuBLAS or a kernel resolves to the allocation it points into, and is
bounds-checked. The address is the buffer's real host address: the emulated kernels dereference it directly.

Outside AddressSanitizer each allocation is 256-byte aligned (as CUDA's) and sits between two 64-byte redzones of a
known pattern that :func:`check_redzones` verifies (a kernel that wrote past either end is reported). Under ASan
(``__asan_init`` is in the process) the buffer is an exact-size ``malloc`` instead, so ASan itself sees overruns.
"""

from __future__ import annotations

import bisect
import ctypes
import os
import weakref

import numpy as np

from .errors import HostFault, runtime_error
from .state import counters, lock


def _asan_loaded() -> bool:
    try:
        ctypes.CDLL(None).__asan_init  # noqa: B018  (the lookup is the test)
    except AttributeError:
        return False
    return True


ASAN = _asan_loaded()
REDZONE = 0 if ASAN else 64
ALIGN = 1 if ASAN else 256
_PATTERN = 0xFD  # redzone bytes


class Allocation:
    """One device allocation: ``nbytes`` bytes at address ``ptr``.

    ``dtypes`` holds every dtype an array over this memory has been given (its creation and its views): the
    element types a raw pointer into it may be read as (cuBLAS's ``Atype``) without a type-confusion error.
    """

    __slots__ = ("ptr", "nbytes", "buffer", "offset", "dtypes", "device_id", "__weakref__")

    def __init__(self, nbytes: int, device_id: int = 0):
        if nbytes <= 0:
            raise ValueError("an allocation has at least one byte")
        pad = 0 if ASAN else ALIGN + 2 * REDZONE
        raw = np.empty(nbytes + pad, dtype=np.uint8)
        base = raw.ctypes.data
        offset = 0 if ASAN else REDZONE + (-(base + REDZONE)) % ALIGN
        if REDZONE:
            raw[:offset] = _PATTERN
            raw[offset + nbytes :] = _PATTERN
        self.buffer, self.offset, self.nbytes = raw, offset, nbytes
        self.ptr = base + offset
        self.dtypes: set[np.dtype] = set()
        self.device_id = device_id
        _register(self)
        counters.allocations += 1

    def bytes_view(self) -> np.ndarray:
        """The allocation's bytes (``uint8``), without the redzones."""
        return self.buffer[self.offset : self.offset + self.nbytes]

    def array(self, shape, dtype, offset: int = 0, strides=None, order: str = "C") -> np.ndarray:
        """A NumPy view of ``shape``/``dtype`` starting ``offset`` bytes into the allocation."""
        dtype = np.dtype(dtype)
        view = np.ndarray(shape, dtype, buffer=self.buffer, offset=self.offset + offset, strides=strides, order=order)
        if view.size:  # NumPy checks against the padded buffer; the allocation's own bounds are tighter
            lo = offset + sum((n - 1) * st for n, st in zip(view.shape, view.strides) if st < 0)
            hi = offset + sum((n - 1) * st for n, st in zip(view.shape, view.strides) if st > 0) + dtype.itemsize
            if lo < 0 or hi > self.nbytes:
                raise ValueError(f"an array of shape {view.shape} at offset {offset} reaches outside {self!r}")
        self.dtypes.add(dtype)
        return view

    def memory(self):
        """A :class:`Memory` (CuPy's ``BaseMemory``) of this allocation (a new one each time: caching it here would
        make a reference cycle, and the allocation would then outlive its last array until a garbage collection)."""
        return Memory(self)

    def redzone_damage(self) -> tuple[int, int]:
        """Bytes of the redzones before and after the allocation that no longer hold the pattern."""
        if not REDZONE:
            return 0, 0
        before = self.buffer[self.offset - REDZONE : self.offset]
        after = self.buffer[self.offset + self.nbytes : self.offset + self.nbytes + REDZONE]
        return int(np.count_nonzero(before != _PATTERN)), int(np.count_nonzero(after != _PATTERN))

    def repair_redzones(self) -> None:
        """Write the pattern back (after a reported overrun, so it is reported once)."""
        if REDZONE:
            self.buffer[: self.offset] = _PATTERN
            self.buffer[self.offset + self.nbytes :] = _PATTERN

    def __repr__(self):
        kinds = ",".join(sorted(str(d) for d in self.dtypes)) or "untyped"
        return f"<device allocation of {self.nbytes} bytes at {self.ptr:#x} ({kinds})>"


_starts: list[int] = []
_table: dict[int, weakref.ref] = {}


def _forget(ptr: int, ref: weakref.ref) -> None:
    with lock:
        if _table.get(ptr) is ref:
            del _table[ptr]
            i = bisect.bisect_left(_starts, ptr)
            if i < len(_starts) and _starts[i] == ptr:
                del _starts[i]


def _register(alloc: Allocation) -> None:
    ptr = alloc.ptr
    with lock:
        ref = weakref.ref(alloc, lambda r, ptr=ptr: _forget(ptr, r))
        if ptr not in _table:
            bisect.insort(_starts, ptr)
        _table[ptr] = ref


def find(ptr: int) -> Allocation | None:
    """The live allocation that address ``ptr`` lies in, or ``None``."""
    with lock:
        i = bisect.bisect_right(_starts, ptr) - 1
        if i < 0:
            return None
        alloc = _table[_starts[i]]()
    if alloc is None or ptr >= alloc.ptr + alloc.nbytes:
        return None
    return alloc


def resolve(ptr: int, nbytes: int, what: str) -> tuple[Allocation, int]:
    """``(allocation, offset)`` for ``nbytes`` bytes at ``ptr``; ``CUDARuntimeError`` 700 (illegal address) when
    they are not all inside one live allocation."""
    alloc = find(ptr)
    if alloc is None:
        raise runtime_error(700, f"{what}: address {ptr:#x} is in no live device allocation")
    offset = ptr - alloc.ptr
    if offset + nbytes > alloc.nbytes:
        raise runtime_error(
            700,
            f"{what}: {nbytes} bytes at offset {offset} of {alloc!r} run {offset + nbytes - alloc.nbytes} bytes past "
            "its end",
        )
    return alloc, offset


def live_allocations() -> list[Allocation]:
    """Every live device allocation."""
    with lock:
        refs = list(_table.values())
    return [a for a in (r() for r in refs) if a is not None]


def check_redzones(allocations=None, what: str = "a kernel") -> None:
    """Check that nothing wrote just outside device allocations.

    Each launch checks the allocations it was given; call this (in a fixture's teardown, say) to sweep them all.

    Parameters
    ----------
    allocations : iterable of Allocation, optional
        What to check; every live allocation by default.
    what : str
        Who is blamed in the message.

    Raises
    ------
    CUDARuntimeError
        Status 700 (``cudaErrorIllegalAddress``) for the first damaged redzone, whose pattern is then restored so
        the damage is reported once. Nothing is checked under AddressSanitizer, which sees overruns itself.
    """
    if not REDZONE:
        return
    for alloc in live_allocations() if allocations is None else allocations:
        before, after = alloc.redzone_damage()
        if before or after:
            alloc.repair_redzones()
            where = f"{after} bytes past its end" if after else f"{before} bytes before its start"
            raise runtime_error(700, f"{what} wrote {where} of {alloc!r} (its redzone was overwritten)")


class Memory:
    """CuPy's ``Memory``: one device allocation (``ptr``, ``size``, ``device_id``)."""

    def __init__(self, alloc: Allocation | None):
        self._alloc = alloc
        self.ptr = 0 if alloc is None else alloc.ptr
        self.size = 0 if alloc is None else alloc.nbytes
        self.device_id = 0 if alloc is None else alloc.device_id

    def __int__(self):
        return self.ptr


_NO_MEMORY = Memory(None)


class MemoryPointer:
    """CuPy's ``MemoryPointer``: an address (``ptr``) inside a :class:`Memory` (``mem``), kept alive by it."""

    def __init__(self, mem: Memory, offset: int):
        self.mem = mem
        self.ptr = mem.ptr + offset
        self.device_id = mem.device_id

    @property
    def device(self):
        from .device import Device

        return Device(self.device_id)

    def __int__(self):
        return self.ptr

    def __add__(self, offset):
        return MemoryPointer(self.mem, self.ptr - self.mem.ptr + int(offset))

    def __sub__(self, offset):
        return self + -int(offset)

    def __repr__(self):
        return f"<MemoryPointer {self.ptr:#x} (device {self.device_id})>"


def null_pointer() -> MemoryPointer:
    """The pointer of an empty array (CuPy gives size-0 arrays address 0)."""
    return MemoryPointer(_NO_MEMORY, 0)


# --- pinned host memory ---------------------------------------------------------------------------------------
_pinned: weakref.WeakValueDictionary[int, PinnedMemory] = weakref.WeakValueDictionary()


class PinnedMemory:
    """CuPy's ``PinnedMemory``: ``size`` bytes of page-locked host memory at ``ptr``."""

    def __init__(self, size: int, flags: int = 0):
        size = int(size)
        if size < 0:
            raise OverflowError("can't convert negative value to size_t")
        self.size = size
        self._buf = (ctypes.c_ubyte * size)() if size else None
        self.ptr = ctypes.addressof(self._buf) if size else 0
        if size:
            with lock:
                _pinned[self.ptr] = self

    def __int__(self):
        return self.ptr


def pinned_find(ptr: int, nbytes: int) -> PinnedMemory | None:
    """The live pinned allocation holding all of ``nbytes`` bytes at ``ptr``, or ``None`` (pageable memory)."""
    with lock:
        items = list(_pinned.items())
    for start, mem in items:
        if start <= ptr and ptr + nbytes <= start + mem.size:
            return mem
    return None


_buffer_types: dict[int, type] = {}


class PinnedMemoryPointer:
    """CuPy's ``PinnedMemoryPointer``: ``ptr`` inside ``mem``. Like CuPy's it exports the buffer protocol (1-D
    bytes from ``ptr`` to the end of ``mem``), so ``numpy.frombuffer(p, dtype, count)`` wraps it without a copy.

    Each instance is of a per-size subclass that also derives from a ``ctypes`` byte array laid over the memory:
    that is how a Python class exports a buffer before Python 3.12.
    """

    def __new__(cls, mem: PinnedMemory, offset: int):
        offset = int(offset)
        size = mem.size - offset
        if offset < 0 or size < 0:
            raise ValueError(f"offset {offset} is outside the pinned allocation of {mem.size} bytes")
        sub = _buffer_types.get(size)
        if sub is None:
            sub = _buffer_types[size] = type("PinnedMemoryPointer", (PinnedMemoryPointer, ctypes.c_ubyte * size), {})
        return sub.from_address(mem.ptr + offset) if size else sub()

    def __init__(self, mem: PinnedMemory, offset: int):
        self.mem = mem  # keeps the memory alive as long as the pointer (and any NumPy view of it)
        self.ptr = mem.ptr + int(offset)

    def size(self) -> int:
        """Bytes from ``ptr`` to the end of the allocation."""
        return self.mem.size - (self.ptr - self.mem.ptr)

    def __int__(self):
        return self.ptr

    def __add__(self, offset):
        return PinnedMemoryPointer(self.mem, self.ptr - self.mem.ptr + int(offset))

    def __sub__(self, offset):
        return self + -int(offset)

    def __repr__(self):
        return f"<PinnedMemoryPointer {self.ptr:#x} ({self.size()} bytes)>"


def alloc_pinned_memory(size: int) -> PinnedMemoryPointer:
    """``cupy.cuda.alloc_pinned_memory``: ``size`` bytes of pinned host memory."""
    return PinnedMemoryPointer(PinnedMemory(size), 0)


# --- reading host memory through an address, without crashing on a bad one -------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.write.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t)
_libc.write.restype = ctypes.c_ssize_t


def read_host(ptr: int, nbytes: int, what: str) -> bytes:
    """``nbytes`` bytes of host memory at ``ptr``. The kernel copies them into a pipe, so an unmapped address is
    an ``EFAULT`` (a :class:`HostFault`), not a segfault of the test process. A device address is refused too:
    on a GPU the host cannot dereference it."""
    if find(ptr) is not None:
        raise HostFault(f"{what}: {ptr:#x} is a device address, read on the host (a segfault on a real GPU)")
    r, w = os.pipe()
    try:
        n = _libc.write(w, ptr, nbytes)
        if n != nbytes:
            raise HostFault(f"{what}: {ptr:#x} is not a readable host address (errno {ctypes.get_errno()})")
        return os.read(r, nbytes)
    finally:
        os.close(r)
        os.close(w)
