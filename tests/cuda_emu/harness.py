"""Tier-2 CUDA emulation: compile CUDA C++ kernel sources with g++ against ``shim.h`` and launch them on the CPU.

:class:`Module` compiles a source (the text CuPy's ``RawModule`` would hand to NVRTC) into a shared library, one
launcher per ``extern "C" __global__`` entry point; :class:`Kernel` validates a launch as the CUDA driver and CuPy
would (dimensions, shared memory, exact argument types) and runs it: blocks one after another, the threads of a block
as cooperative fibers (see ``shim.h``), in a fixed-seed shuffled order by default so that a missing barrier shows
whichever way round its race goes.

What the emulation reports as :class:`RuntimeError` (the process carries on): a ``__syncthreads()`` not reached by
every thread of the block (or reached at different places), warp intrinsics with a partial mask, in a block that is
not whole warps, or not reached by every lane; ``__trap()``, a failed ``assert``; a segmentation fault, bus error,
integer division by zero or fiber stack overflow in kernel code; a write past either end of a pointer argument's
array or of the dynamic shared memory; a write through a ``const`` pointer. Kernels run on private copies of their
array arguments (overlapping arguments share one copy), between NaN-filled guards, so an out-of-bounds read gives NaN
and an out-of-bounds write never reaches the host heap; dynamic shared memory starts NaN-filled in every block.

The kernel translation unit sees only the shim (``-nostdinc``): what NVRTC lacks (system headers, ``std::``,
``INFINITY``), what CUDA forbids (exceptions, variable-length arrays, a constant ``warpSize``) and ill-formed
overload calls (``fmax(float, double)``) fail to compile here too.

Environment: ``FASTAE_CUDA_EMU_CACHE`` (the compiled libraries; default ``<tempdir>/fastae-cuda-emu``),
``FASTAE_CUDA_EMU_SANITIZE=1`` (build with AddressSanitizer and UBSan; the process needs :func:`sanitizer_env`),
``FASTAE_CUDA_EMU_GUARD=0`` (pass the arrays' own memory instead of guarded copies), ``FASTAE_CUDA_EMU_UCONTEXT=1``
(test knob: the portable ucontext fiber switch instead of the x86-64 one).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import math
import os
import re
import stat
import struct
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = ["Kernel", "Module", "Param", "sanitizer_env"]

SHIM = Path(__file__).with_name("shim.h")
_CXX = "g++"
_COMMON = ("-std=c++17", "-fPIC", "-shared", "-g")
_SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")
# the kernel TU sees only the shim (NVRTC has no system headers), and what CUDA device code may not do is an error
_KERNEL_FLAGS = (
    "-O1",
    "-nostdinc",
    "-nostdinc++",
    "-fno-exceptions",
    "-fno-rtti",
    "-Werror=vla",
    "-Werror=return-type",
    "-Werror=uninitialized",
    "-pedantic-errors",  # with -Wno-pedantic: what ISO C++ makes ill-formed (e.g. ambiguous overloads) is an error,
    "-Wno-pedantic",  # GNU extensions NVRTC also has (__int128, statement expressions) are not
    "-DFASTAE_EMULATION",
    "-D__CUDACC__",
    "-D__CUDACC_RTC__",
)
# shim.h's launch blob: 6 x u32 dims, u64 shared bytes, 2 x i32 orders, u32 parameter and span counts, 8 bytes per
# parameter, then per pointer parameter a span {u32 slot, u32 flags, u64 first byte, u64 bytes} of its array
_HEADER = "<6IQiiII"
_SPAN_VALID, _SPAN_CONST = 1, 2
_ORDERS = {"sequential": 0, "forward": 0, "shuffled": 1, "reverse": 2}
_THREAD_ORDERS = ("shuffled", "forward", "reverse")
_ERRLEN = 4096
_MAX_SHARED = 49152

# base C type -> (NumPy dtype, struct code for its 8-byte slot)
_TYPES: dict[str, tuple[np.dtype, str]] = {
    "float": (np.dtype(np.float32), "f4x"),
    "double": (np.dtype(np.float64), "d"),
    "unsigned short": (np.dtype(np.uint16), "H6x"),
    "int": (np.dtype(np.int32), "i4x"),
    "unsigned int": (np.dtype(np.uint32), "I4x"),
    "long long": (np.dtype(np.int64), "q"),
    "unsigned long long": (np.dtype(np.uint64), "Q"),
}
_PY_SCALARS = {"long long": int, "double": float}  # what CuPy itself passes for a Python int / float
_SPELLINGS = {
    "float": "float",
    "double": "double",
    "int": "int",
    "signed": "int",
    "signed int": "int",
    "unsigned": "unsigned int",
    "unsigned int": "unsigned int",
    "unsigned short": "unsigned short",
    "unsigned short int": "unsigned short",
    "long long": "long long",
    "long long int": "long long",
    "signed long long": "long long",
    "signed long long int": "long long",
    "unsigned long long": "unsigned long long",
    "unsigned long long int": "unsigned long long",
}
_IGNORED_OPTIONS = re.compile(
    r"(-arch=(sm|compute)_\d+a?|--gpu-architecture=(sm|compute)_\d+a?|--?std=c\+\+17|-Xptxas=-v|--fmad=(true|false))"
)
_compile_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL] = {}


class Param(NamedTuple):
    """One kernel parameter: ``ctype`` is the base type (``'float'``, ``'unsigned int'``, ...); ``const`` is the
    pointee's constness for a pointer."""

    name: str
    ctype: str
    pointer: bool
    const: bool


class _Entry(NamedTuple):
    name: str
    params: tuple[Param, ...]
    bounds: str | None  # the __launch_bounds__ maximum threads expression


# ---------------------------------------------------------------------------------------------------------------
# parsing the source
# ---------------------------------------------------------------------------------------------------------------

_TOKENS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def _strip_comments(code: str) -> str:
    """The code with comments blanked (newlines kept), string literals untouched."""

    def blank(m: re.Match[str]) -> str:
        text = m.group(0)
        return re.sub(r"[^\n]", " ", text) if text[0] == "/" else text

    return _TOKENS.sub(blank, code)


def _balanced(text: str, pos: int) -> int:
    """Index just past the parenthesis group opening at text[pos] == '('."""
    depth = 0
    for i in range(pos, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    raise ValueError("unbalanced parentheses in __launch_bounds__")


def _parse_param(text: str, index: int, kernel: str) -> Param:
    tokens = re.findall(r"[A-Za-z_]\w*|\*|&|\[|\]", text)
    if "&" in tokens or "[" in tokens:
        raise ValueError(f"kernel {kernel!r}: unsupported parameter {text.strip()!r}")
    stars = tokens.count("*")
    if stars > 1:
        raise ValueError(f"kernel {kernel!r}: unsupported parameter {text.strip()!r} (pointer to pointer)")
    pointee = tokens[: tokens.index("*")] if stars else tokens
    after = tokens[tokens.index("*") + 1 :] if stars else []
    const = "const" in pointee
    drop = {"const", "volatile", "__restrict__", "__restrict"}
    base = [t for t in pointee if t not in drop]
    name = [t for t in after if t not in drop]
    if not stars and " ".join(base) not in _SPELLINGS and " ".join(base[:-1]) in _SPELLINGS:
        name = base[-1:]
        base = base[:-1]
    spelled = " ".join(base)
    if spelled not in _SPELLINGS:
        raise ValueError(f"kernel {kernel!r}: unsupported parameter type {spelled!r} in {text.strip()!r}")
    ctype = _SPELLINGS[spelled]
    return Param(name[0] if name else f"arg{index}", ctype, bool(stars), const)


def _parse_entries(code: str) -> list[_Entry]:
    """Every ``extern "C" __global__ void NAME(...)`` of ``code`` (the parameter list ends at the first ``)``)."""
    text = _strip_comments(code)
    entries: dict[str, _Entry] = {}
    for m in re.finditer(r'\bextern\s+"C"', text):
        pos, words, bounds = m.end(), [], None
        while True:
            w = re.compile(r"\s*([A-Za-z_]\w*)\s*").match(text, pos)
            if not w:
                break
            word, pos = w.group(1), w.end()
            if word == "__launch_bounds__" and text.startswith("(", pos):
                end = _balanced(text, pos)
                bounds = _split_top_level(text[pos + 1 : end - 1])[0].strip()
                pos = end
                continue
            if text.startswith("(", pos):
                if "__global__" in words:
                    if "void" not in words:
                        raise ValueError(f"kernel {word!r}: a __global__ function must return void")
                    close = text.index(")", pos)
                    inner = text[pos + 1 : close].strip()
                    parts = [] if inner in ("", "void") else inner.split(",")
                    params = tuple(_parse_param(p, i, word) for i, p in enumerate(parts))
                    old = entries.get(word)
                    if old is not None and [p[1:] for p in old.params] != [p[1:] for p in params]:
                        raise ValueError(f"kernel {word!r} is declared twice with different parameters")
                    entries[word] = _Entry(word, params, bounds or (old.bounds if old else None))
                break
            words.append(word)
    return list(entries.values())


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def _glue(entries: Sequence[_Entry]) -> str:
    """The launchers: ``extern "C" int fastae_emu_launch_NAME(blob, err, errlen)`` calling NAME in every thread."""
    out = ['#line 1 "fastae_emu_glue.cpp"']
    for e in entries:
        args = ", ".join(
            f"::fastae_emu::arg<{'const ' if p.const and p.pointer else ''}{p.ctype}{'*' if p.pointer else ''}>(a, {i})"
            for i, p in enumerate(e.params)
        )
        out.append(f"static void fastae_emu_thunk_{e.name}(const unsigned char* a) {{ (void)a; {e.name}({args}); }}")
        out.append(
            f'extern "C" int fastae_emu_launch_{e.name}(const unsigned char* blob, char* err, int errlen) '
            f'{{ return fastae_emu_run("{e.name}", &fastae_emu_thunk_{e.name}, blob, err, errlen); }}'
        )
        if e.bounds:
            out.append(f'extern "C" const long long fastae_emu_bounds_{e.name} = (long long)({e.bounds});')
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# options, compiler, cache
# ---------------------------------------------------------------------------------------------------------------


def _parse_options(options: Sequence[str]) -> tuple[list[str], int]:
    """g++ flags (-I, -D) from NVRTC options, and the __CUDA_ARCH__ they ask for."""
    if isinstance(options, str):
        raise TypeError("options must be a sequence of strings, not a string")
    flags: list[str] = []
    arch = 900
    items = list(options)
    i = 0
    while i < len(items):
        opt = items[i]
        if not isinstance(opt, str):
            raise TypeError(f"option {opt!r} is not a string")
        m = re.fullmatch(r"(?:-arch=|--gpu-architecture=)(?:sm|compute)_(\d+)a?", opt)
        if m:
            arch = int(m.group(1)) * 10
        if _IGNORED_OPTIONS.fullmatch(opt):
            i += 1
            continue
        if opt in ("--use_fast_math", "-use_fast_math", "--use-fast-math"):
            raise ValueError(f"{opt}: fast math is not emulated (its approximate intrinsics differ from libm)")
        for short, long in (("-I", "--include-path="), ("-D", "--define-macro=")):
            if opt in (short, long.rstrip("=")):
                if i + 1 >= len(items):
                    raise ValueError(f"option {opt} needs a value")
                value, i = items[i + 1], i + 2
                break
            if opt.startswith(long) or (opt.startswith(short) and len(opt) > 2):
                value, i = opt[len(long) :] if opt.startswith(long) else opt[2:], i + 1
                break
        else:
            raise ValueError(f"unsupported compiler option {opt!r} for the CUDA emulation")
        flags.append(f"{short}{os.path.abspath(value) if short == '-I' else value}")
    return flags, arch


@functools.lru_cache(maxsize=None)
def _compiler_version() -> str:
    out = subprocess.run([_CXX, "--version"], capture_output=True, text=True, env=_clean_env(), check=True)
    return out.stdout.strip()


def _clean_env() -> dict[str, str]:
    """The environment for g++: no sanitizer preloads (they would instrument the compiler itself)."""
    env = dict(os.environ)
    for key in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
        env.pop(key, None)
    return env


def _cache_dir() -> Path:
    path = Path(os.environ.get("FASTAE_CUDA_EMU_CACHE") or Path(tempfile.gettempdir()) / "fastae-cuda-emu")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    # it holds shared libraries this process loads: it must be ours and nobody else's to write
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RuntimeError(f"CUDA emulation cache {path} is not private to this user; set FASTAE_CUDA_EMU_CACHE")
    return path


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _run_compiler(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=_clean_env())
    if proc.returncode:
        raise RuntimeError(f"CUDA emulation: g++ failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")


def _ucontext() -> bool:
    """Test knob: FASTAE_CUDA_EMU_UCONTEXT=1 builds the runtime's portable ucontext fiber switch (non-x86-64 path)."""
    return os.environ.get("FASTAE_CUDA_EMU_UCONTEXT") == "1"


def _runtime(sanitize: bool) -> Path:
    """The shared runtime library (fibers, scheduler) for this shim, compiler and sanitizer mode, built once."""
    shim = SHIM.read_bytes()
    cache = _cache_dir()
    lib = cache / f"runtime-{_digest(shim, _compiler_version(), str(sanitize), str(_ucontext()))[:24]}.so"
    if not lib.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            out = Path(tmp) / lib.name
            flags = [*_COMMON, "-O2", "-DFASTAE_EMU_RUNTIME", *(_SANITIZE if sanitize else ())]
            flags += ["-DFASTAE_EMU_USE_UCONTEXT"] if _ucontext() else []
            _run_compiler([_CXX, *flags, "-x", "c++", str(SHIM), "-o", str(out), "-pthread"], Path(tmp))
            os.replace(out, lib)
    return lib


def _deps_digest(deps: Sequence[str]) -> str:
    parts = []
    for dep in deps:
        try:
            parts.append(dep.encode() + b"\0" + Path(dep).read_bytes())
        except OSError:
            parts.append(dep.encode() + b"\0<missing>")
    return _digest(*parts)


def _parse_depfile(text: str, exclude: Path) -> list[str]:
    body = text.split(":", 1)[1] if ":" in text else ""
    names = re.findall(r"(?:\\ |[^\s\\])+", body.replace("\\\n", " "))
    paths = sorted({os.path.abspath(n.replace("\\ ", " ")) for n in names})
    return [p for p in paths if Path(p) != exclude]


def _asan_loaded() -> bool:
    return hasattr(ctypes.CDLL(None), "__asan_init")


# ---------------------------------------------------------------------------------------------------------------
# the public API
# ---------------------------------------------------------------------------------------------------------------


class Module:
    """A CUDA source compiled for the emulation (the stand-in for an NVRTC-compiled ``RawModule``).

    Parameters
    ----------
    code : str
        CUDA C++ source; its entry points are written ``extern "C" __global__ void NAME(...)``.
    options : sequence of str
        NVRTC options: ``-I<dir>`` / ``-I <dir>`` and ``-D...`` are forwarded to g++; ``-arch=sm_XX`` (sets
        ``__CUDA_ARCH__``), ``-std=c++17``, ``--std=c++17``, ``-Xptxas=-v`` and ``--fmad=...`` are accepted and
        ignored; ``--use_fast_math`` and anything else raise ``ValueError``.
    sanitize : bool or None
        Build with AddressSanitizer and UBSan (needs a process started with :func:`sanitizer_env`); ``None`` means
        the environment variable ``FASTAE_CUDA_EMU_SANITIZE == "1"``.
    source_name : str
        The file name g++ messages and emulation errors give the source.

    Attributes
    ----------
    kernels : dict of str to Kernel
        Every entry point of ``code``.
    library : pathlib.Path
        The compiled shared library (cached by content under ``$FASTAE_CUDA_EMU_CACHE`` or
        ``<tempdir>/fastae-cuda-emu``).

    Raises
    ------
    RuntimeError
        g++ failed (its output is in the message), or sanitizing without the sanitizer runtime preloaded.
    """

    def __init__(
        self,
        code: str,
        options: Sequence[str] = (),
        *,
        sanitize: bool | None = None,
        source_name: str = "kernel.cu",
    ) -> None:
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        if sanitize is None:
            sanitize = os.environ.get("FASTAE_CUDA_EMU_SANITIZE") == "1"
        self.sanitize = bool(sanitize)
        if self.sanitize and not _asan_loaded():
            raise RuntimeError(
                "sanitize=True needs AddressSanitizer loaded before Python starts: run the process with the "
                "environment from tests.cuda_emu.harness.sanitizer_env() (LD_PRELOAD of libasan and libubsan)"
            )
        self.code = code
        self.options = tuple(options)
        flags, arch = _parse_options(self.options)
        entries = _parse_entries(code)
        source = f'#line 1 "{source_name}"\n{code}\n{_glue(entries)}'
        self.library = self._build(source, [*flags, f"-D__CUDA_ARCH__={arch}"])
        lib = self._load(self.library)
        self.kernels: dict[str, Kernel] = {e.name: Kernel(self, e, lib) for e in entries}

    def _build(self, source: str, flags: list[str]) -> Path:
        runtime = _runtime(self.sanitize)
        cache = _cache_dir()
        parts = (SHIM.read_bytes(), source, "\0".join(flags), str(self.sanitize), str(runtime), _compiler_version())
        key = _digest(*parts)[:32]
        deps_file = cache / f"{key}.deps.json"
        with _compile_lock:
            if deps_file.exists():
                try:
                    deps = json.loads(deps_file.read_text())
                    lib = cache / f"{key}-{_deps_digest(deps)[:16]}.so"
                    if lib.exists():
                        return lib
                except (OSError, ValueError):
                    pass
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                src = Path(tmp) / "module.cpp"
                src.write_text(source)
                out = Path(tmp) / "module.so"
                args = [
                    _CXX,
                    *_COMMON,
                    *_KERNEL_FLAGS,
                    *(_SANITIZE if self.sanitize else ()),
                    "-include",
                    str(SHIM),
                    *flags,
                    "-MMD",
                    "-MF",
                    "module.d",
                    "-x",
                    "c++",
                    str(src),
                    "-x",
                    "none",
                    str(runtime),
                    "-o",
                    str(out),
                ]
                _run_compiler(args, Path(tmp))
                deps = _parse_depfile((Path(tmp) / "module.d").read_text(), src)
                lib = cache / f"{key}-{_deps_digest(deps)[:16]}.so"
                os.replace(out, lib)
                tmp_deps = Path(tmp) / "deps.json"
                tmp_deps.write_text(json.dumps(deps))
                os.replace(tmp_deps, deps_file)
        return lib

    @staticmethod
    def _load(path: Path) -> ctypes.CDLL:
        with _compile_lock:
            lib = _loaded.get(str(path))
            if lib is None:
                lib = _loaded[str(path)] = ctypes.CDLL(str(path))
        return lib

    def get_function(self, name: str) -> Kernel:
        """The entry point ``name``.

        Raises
        ------
        KeyError
            No ``extern "C" __global__`` function of that name in the module (the message lists those it has).
        """
        try:
            return self.kernels[name]
        except KeyError:
            raise KeyError(f"no kernel {name!r} in this module; its kernels: {sorted(self.kernels)}") from None


def _dims(what: str, kernel: str, value: Any) -> tuple[int, int, int]:
    items = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(items) <= 3:
        raise ValueError(f"kernel {kernel!r}: {what} must have 1 to 3 dimensions, got {value!r}")
    dims = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"kernel {kernel!r}: {what} dimensions must be integers, got {value!r}")
        dims.append(int(v))
    dims += [1] * (3 - len(dims))
    if min(dims) < 1:
        raise ValueError(f"kernel {kernel!r}: {what} {tuple(dims)}: every dimension must be >= 1")
    return dims[0], dims[1], dims[2]


class Kernel:
    """One entry point of a :class:`Module`; call it as CuPy's ``RawKernel``.

    Attributes
    ----------
    name : str
    params : list of Param
    max_threads_per_block : int
        1024, or the kernel's ``__launch_bounds__`` maximum.
    """

    def __init__(self, module: Module, entry: _Entry, lib: ctypes.CDLL) -> None:
        self.module = module
        self.name = entry.name
        self.params: list[Param] = list(entry.params)
        self._fn = getattr(lib, f"fastae_emu_launch_{entry.name}")
        self._fn.restype = ctypes.c_int
        self._fn.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)
        self.max_threads_per_block = 1024
        if entry.bounds:
            self.max_threads_per_block = int(ctypes.c_longlong.in_dll(lib, f"fastae_emu_bounds_{entry.name}").value)
        codes = "".join("Q" if p.pointer else _TYPES[p.ctype][1] for p in self.params)
        self._pointers = [i for i, p in enumerate(self.params) if p.pointer]
        self._blob = struct.Struct(_HEADER + codes + "IIQQ" * len(self._pointers))

    def __repr__(self) -> str:
        return f"<emulated kernel {self.name}({', '.join(p.name for p in self.params)})>"

    def __call__(
        self,
        grid: Any,
        block: Any,
        args: Sequence[Any],
        shared_mem: int = 0,
        *,
        block_order: str = "shuffled",
        thread_order: str = "shuffled",
    ) -> None:
        """Launch: validate like the CUDA driver and CuPy, run every block, raise ``RuntimeError`` on a kernel error.

        Parameters
        ----------
        grid, block : int or tuple of 1 to 3 ints
        args : tuple
            One per parameter: for a pointer, an object with ``__cuda_array_interface__``, a NumPy array or
            ``None`` (a null pointer); its typestr must be the parameter's type, and a read-only array needs a const
            pointer. For a scalar, a NumPy scalar of exactly the parameter's type (or a Python int for ``long long``,
            a Python float for ``double``). The kernel works on a copy of the memory each array describes (its
            shape and strides), written back after the launch.
        shared_mem : int
            Dynamic shared memory bytes per block (at most 49152), NaN-filled at each block's start.
        block_order : {"shuffled", "sequential"}
            The order blocks run in: a fixed-seed permutation, or by linear index.
        thread_order : {"shuffled", "forward", "reverse"}
            The order the scheduler starts and resumes the threads of a block between barriers (when shuffled, a
            permutation seeded by block, barrier phase and pass), so a missing barrier shows whichever way round
            its race goes. Every order is deterministic: a launch repeats exactly.

        Raises
        ------
        TypeError
            An argument of the wrong type (naming kernel, parameter, expected and received type).
        ValueError
            A launch the CUDA driver would refuse.
        RuntimeError
            An error inside the launch (see the module's documentation).
        """
        g = _dims("grid", self.name, grid)
        b = _dims("block", self.name, block)
        if b[0] > 1024 or b[1] > 1024 or b[2] > 64 or b[0] * b[1] * b[2] > 1024:
            raise ValueError(f"kernel {self.name!r}: block {b} exceeds the limits x, y <= 1024, z <= 64, x*y*z <= 1024")
        if b[0] * b[1] * b[2] > self.max_threads_per_block:
            raise ValueError(
                f"kernel {self.name!r}: block {b} has more threads than its __launch_bounds__ "
                f"({self.max_threads_per_block})"
            )
        if g[0] >= 2**31 or g[1] > 65535 or g[2] > 65535:
            raise ValueError(f"kernel {self.name!r}: grid {g} exceeds the limits x < 2**31, y, z <= 65535")
        if isinstance(shared_mem, bool) or not isinstance(shared_mem, (int, np.integer)):
            raise TypeError(f"kernel {self.name!r}: shared_mem must be an int, got {type(shared_mem).__name__}")
        if not 0 <= shared_mem <= _MAX_SHARED:
            raise ValueError(f"kernel {self.name!r}: shared_mem {shared_mem} is not in [0, {_MAX_SHARED}]")
        if block_order not in ("shuffled", "sequential"):
            raise ValueError(f"block_order must be 'shuffled' or 'sequential', got {block_order!r}")
        if thread_order not in _THREAD_ORDERS:
            raise ValueError(f"thread_order must be one of {_THREAD_ORDERS}, got {thread_order!r}")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"kernel {self.name!r}: args must be a tuple, got {type(args).__name__}")
        if len(args) != len(self.params):
            raise TypeError(f"kernel {self.name!r} takes {len(self.params)} arguments, got {len(args)}")
        values, spans = [], []
        for i, (p, a) in enumerate(zip(self.params, args)):
            if p.pointer:
                ptr, start, nbytes = self._array(i, p, a)
                values.append(ptr)
                spans += (i, (_SPAN_VALID if ptr else 0) | (_SPAN_CONST if p.const else 0), start, nbytes)
            else:
                values.append(self._scalar(i, p, a))
        header = (*g, *b, int(shared_mem), _ORDERS[block_order], _ORDERS[thread_order], len(self.params))
        nspans = len(self._pointers) if os.environ.get("FASTAE_CUDA_EMU_GUARD") != "0" else 0
        blob = self._blob.pack(*header, nspans, *values, *spans)
        err = ctypes.create_string_buffer(_ERRLEN)
        if self._fn(blob, err, _ERRLEN):
            raise RuntimeError(re.sub(r"argument #(\d+)", self._describe, err.value.decode(errors="replace")))

    def _describe(self, m: re.Match[str]) -> str:
        p = self.params[int(m.group(1))]
        return f"argument {m.group(1)} ({p.name}: {'const ' if p.const else ''}{p.ctype}*)"

    def _where(self, index: int, p: Param) -> str:
        return f"kernel {self.name!r} parameter {index} ({p.name}: {p.ctype}{'*' if p.pointer else ''})"

    def _array(self, index: int, p: Param, a: Any) -> tuple[int, int, int]:
        """(data pointer, first byte, bytes) of the memory the array argument describes."""
        dtype = _TYPES[p.ctype][0]
        if a is None:
            return 0, 0, 0
        iface = getattr(a, "__cuda_array_interface__", None)
        if iface is None and isinstance(a, np.ndarray):
            iface = a.__array_interface__
        if not isinstance(iface, dict) or "data" not in iface or "typestr" not in iface:
            raise TypeError(f"{self._where(index, p)}: expected a device array or NumPy array, got {type(a).__name__}")
        ptr, readonly = iface["data"]
        typestr = iface["typestr"]
        if typestr != dtype.str and (np.dtype(typestr) != dtype or np.dtype(typestr).byteorder not in "=<|"):
            raise TypeError(f"{self._where(index, p)}: expected an array of {dtype.str} ({dtype.name}), got {typestr}")
        if readonly and not p.const:
            raise TypeError(f"{self._where(index, p)}: a read-only array cannot be passed to a non-const pointer")
        ptr = int(ptr or 0)
        shape = tuple(int(n) for n in iface.get("shape", ()))
        strides = iface.get("strides")
        if 0 in shape:
            return ptr, ptr, 0
        if strides is None:
            return ptr, ptr, math.prod(shape) * dtype.itemsize
        lo = sum(min(0, (n - 1) * st) for n, st in zip(shape, strides))
        hi = sum(max(0, (n - 1) * st) for n, st in zip(shape, strides)) + dtype.itemsize
        return ptr, ptr + lo, hi - lo

    def _scalar(self, index: int, p: Param, a: Any) -> int | float:
        dtype = _TYPES[p.ctype][0]
        if isinstance(a, np.generic):
            if a.dtype == dtype:
                return a.item()
        elif type(a) is _PY_SCALARS.get(p.ctype):
            if p.ctype == "long long" and not -(2**63) <= a < 2**63:
                raise OverflowError(f"{self._where(index, p)}: {a} does not fit in a long long")
            return a
        where = self._where(index, p)
        expected = f"numpy.{dtype.name}" + (f" or {_PY_SCALARS[p.ctype].__name__}" if p.ctype in _PY_SCALARS else "")
        got = f"numpy.{a.dtype.name}" if isinstance(a, np.generic) else type(a).__name__
        raise TypeError(f"{where}: expected {expected}, got {got}")


def sanitizer_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a subprocess whose kernels are built with AddressSanitizer and UBSan.

    Parameters
    ----------
    base : dict, optional
        The environment to extend (default ``os.environ``).

    Returns
    -------
    dict
        ``base`` with ``LD_PRELOAD`` of g++'s libasan and libubsan, ``ASAN_OPTIONS`` (reports exit with code 86),
        ``UBSAN_OPTIONS`` and ``FASTAE_CUDA_EMU_SANITIZE=1``.
    """
    env = dict(os.environ if base is None else base)
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        path = subprocess.run(
            [_CXX, f"-print-file-name={name}"], capture_output=True, text=True, env=_clean_env(), check=True
        ).stdout.strip()
        if not os.path.isabs(path) or not os.path.exists(path):
            raise RuntimeError(f"{_CXX} has no {name}: the sanitizer runtime is not installed")
        libs.append(path)
    env["LD_PRELOAD"] = ":".join(libs)
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1:exitcode=86"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    env["FASTAE_CUDA_EMU_SANITIZE"] = "1"
    return env
