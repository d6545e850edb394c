"""A static check of the CUDA sources for what the CPU emulation (tests/cuda_emu) cannot honour or would hide.

Forbidden: curand, cub, cooperative groups, inline assembly, tensor-core intrinsics (wmma, mma), static
``__shared__`` arrays (shared memory only through ``FASTAE_SHARED``, which the emulation fills with NaN at every
block start), warp intrinsics without the full mask, division of one integer literal by another (``1/2`` is 0),
floating literals without the ``f`` suffix (a double literal silently promotes float arithmetic), and
``__syncthreads`` on a path that depends on the thread (inside an ``if``, loop or ``?:`` whose condition reads the
thread index or a variable computed from it, or after a thread-dependent ``return``).
"""

from __future__ import annotations

import re

FORBIDDEN = [
    (re.compile(r"\bcurand\w*"), "curand"),
    (re.compile(r"\bcub::|#\s*include\s*[<\"]cub/"), "cub"),
    (re.compile(r"cooperative_groups|\bthis_grid\b|\bgrid_group\b"), "cooperative groups"),
    (re.compile(r"\basm\b|__asm__"), "inline assembly"),
    (re.compile(r"\bwmma\b|nvcuda::|\bmma\b|__hmma|mma\.sync|__mma"), "tensor-core intrinsics"),
    (re.compile(r"(?<![\w.])\d+\s*/\s*\d+(?![\w.])"), "division of one integer literal by another"),
]
_DOUBLE_LITERAL = re.compile(r"(?<![\w.])(?:\d+\.\d*|\.\d+|\d+\.?\d*[eE][+-]?\d+)(?![\w.])")
_WARP = re.compile(r"__(?:shfl\w*|ballot|all|any|syncwarp|match\w*|reduce\w*)_sync\s*\(\s*([^,)]*)")
_WARP_NOSYNC = re.compile(r"__(?:shfl|shfl_up|shfl_down|shfl_xor|ballot|any|all)\s*\(")
_SHARED = re.compile(r"__shared__")
_THREAD_SOURCES = re.compile(r"\bthreadIdx\b|\bblock_rank\s*\(|\bflat_index\s*\(|\blaneid\b")


def _strip(text: str) -> str:
    """The source without comments and string literals, lines kept (so findings keep their line numbers)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def _tainted_names(code: str) -> set[str]:
    """Identifiers whose value depends on the thread: assigned (or loop-initialised) from an expression that reads
    the thread index, a thread-dependent helper, or another such identifier (to a fixed point)."""
    names: set[str] = set()
    assign = re.compile(r"\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*(?:[-+*/|&^]?=)(?!=)\s*([^;,{}]*)")
    while True:
        grown = set(names)
        for m in assign.finditer(code):
            rhs = m.group(2)
            if _THREAD_SOURCES.search(rhs) or any(re.search(rf"\b{re.escape(n)}\b", rhs) for n in names):
                grown.add(m.group(1))
        if grown == names:
            return names
        names = grown


def _thread_dependent(condition: str, tainted: set[str]) -> bool:
    return bool(_THREAD_SOURCES.search(condition)) or any(re.search(rf"\b{re.escape(n)}\b", condition) for n in tainted)


def barrier_functions(text: str) -> set[str]:
    """Names of the functions of ``text`` whose bodies hold a barrier (``block_sum``, say): a call of one is a
    barrier too."""
    code = _strip(text)
    names = set()
    for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\([^;{)]*\)\s*\{", code):
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        if "__syncthreads" in code[m.end() : j] and m.group(1) not in ("if", "for", "while", "switch"):
            names.add(m.group(1))
    return names


def _barrier_findings(code: str, barriers: set[str]) -> list[tuple[int, str]]:
    """``__syncthreads`` (or a call of a function in ``barriers``) under a thread-dependent condition, by brace
    nesting (with single-statement bodies), or after a thread-dependent early ``return`` in the same function."""
    found = []
    barrier = re.compile(
        r"\b(?:__syncthreads|" + "|".join(map(re.escape, sorted(barriers))) + r")\s*\("
        if barriers
        else r"\b__syncthreads\s*\("
    )
    tainted: set[str] = set()  # of the function being read: names are scoped by function, not by file
    header = re.compile(r"\b(if|while|for|switch)\s*\(")
    stack: list[bool] = []  # per open brace: whether it opened a thread-dependent region
    pending = False  # the last control header was thread-dependent and its body has not started
    returned = False  # a thread-dependent return has been seen in the current function
    i, line = 0, 1
    while i < len(code):
        ch = code[i]
        if ch == "\n":
            line += 1
        m = header.match(code, i) if (i == 0 or not (code[i - 1].isalnum() or code[i - 1] == "_")) else None
        if m:
            depth, j = 1, m.end()
            while j < len(code) and depth:
                depth += {"(": 1, ")": -1}.get(code[j], 0)
                j += 1
            cond = code[m.end() : j - 1]
            line += code[i:j].count("\n")
            pending = _thread_dependent(cond, tainted)
            i = j
            continue
        b = barrier.match(code, i) if (i == 0 or not (code[i - 1].isalnum() or code[i - 1] == "_")) else None
        if b:
            if pending or any(stack) or returned:
                found.append((line, f"{b.group(0).rstrip('( ')} (a barrier) on a thread-dependent path"))
            i = b.end()
            continue
        if code.startswith("return", i) and not (code[i - 1].isalnum() or code[i - 1] == "_"):
            if pending or any(stack):
                returned = True
        if ch == "?":
            cond_start = max(code.rfind(c, 0, i) for c in "=(;{,")
            if _thread_dependent(code[cond_start + 1 : i], tainted):
                end = code.find(";", i)
                if barrier.search(code, i, end):
                    found.append((line, "a barrier on a thread-dependent path"))
        if ch == "{":
            if not stack:
                depth, j = 1, i + 1
                while j < len(code) and depth:
                    depth += {"{": 1, "}": -1}.get(code[j], 0)
                    j += 1
                tainted = _tainted_names(code[i:j])
            stack.append(pending)
            pending = False
        elif ch == "}":
            if stack:
                stack.pop()
            if not stack:
                returned = False  # the end of a function
        elif ch == ";":
            pending = False
        i += 1
    return found


def check(text: str, barriers: set[str] = frozenset()) -> list[tuple[int, str]]:
    """Every finding in CUDA source ``text``: ``[(line, what)]``, empty for a clean file. ``barriers``: functions
    (of the headers it includes) that hold a barrier, as :func:`barrier_functions` finds them."""
    code = _strip(text)
    found: list[tuple[int, str]] = []
    continued = False
    for n, src in enumerate(code.split("\n"), start=1):
        directive = continued or src.lstrip().startswith("#")
        continued = directive and src.rstrip().endswith("\\")
        if directive and not src.lstrip().startswith("#include"):
            continue  # macro definitions: FASTAE_SHARED's own extern __shared__ among them
        for pattern, what in FORBIDDEN:
            if pattern.search(src):
                found.append((n, what))
        for lit in _DOUBLE_LITERAL.finditer(src):
            tail = src[lit.end() : lit.end() + 1]
            if tail not in ("f", "F"):
                found.append((n, f"floating literal {lit.group(0)!r} without the f suffix"))
        for w in _WARP.finditer(src):
            if w.group(0).startswith("__syncwarp") and not w.group(1).strip():
                continue  # __syncwarp() is the full mask
            if w.group(1).strip() not in ("FASTAE_FULL_MASK", "0xffffffffu", "0xffffffff", "0xFFFFFFFF", "0xFFFFFFFFu"):
                found.append((n, f"warp intrinsic without the full mask: {w.group(0).strip()}"))
        if _WARP_NOSYNC.search(src):
            found.append((n, "warp intrinsic without _sync"))
        if _SHARED.search(src):
            found.append((n, "__shared__ outside FASTAE_SHARED (static shared memory is not NaN-filled)"))
    found.extend(_barrier_findings(code, set(barriers) | barrier_functions(text)))
    return sorted(set(found))
