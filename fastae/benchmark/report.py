"""The benchmark's outputs: the result as JSON, as a Markdown report, and as PNG plots.

A *result* is what :func:`fastae.benchmark.runner.run` returns, possibly with the rows of other suites merged
in: ``{"meta": {...}, "rows": [...]}``. Rows follow the runner's schema (``suite``, ``config``, ``contestant``,
``kind``, ``status``, ``note``, ``median_s``, ``min_s``, ``max_s``, ``gflops``, ``frac_peak``, ``rows_per_s``,
``error``, ``ratio_to_best_peer``, ...); rows of suites this module does not know are shown generically, with
every column they carry. Nothing is dropped: a skipped contestant appears with its reason, and a WRONG or failed
one is flagged.

matplotlib is needed only by :func:`plots`, and imported there.
"""

from __future__ import annotations

import json
import math
import os

from .configs import CONFIGS, ENCODE_BATCH

# Statuses that make the benchmark fail (compared case-insensitively).
BAD_STATUSES = ("wrong", "failed", "error")

# Suites in report order, with their titles and what a row measures. Other suites follow, in order of appearance.
SUITE_INFO = {
    "train": (
        "Training step",
        "Time of one full training step (forward, backward, Adam update) on one float32 batch. GFLOP/s "
        "counts the matrix products only. The error is the relative difference of the loss after one step "
        "from the float64 reference.",
    ),
    "encode": (
        f"Encode throughput at batch {ENCODE_BATCH}",
        f"Time to encode {ENCODE_BATCH} rows (float32); rows/s at the median. The error is the largest "
        "absolute difference of the codes from the float64 reference, over the largest code.",
    ),
    "latency": (
        "Single-row latency",
        "Time to encode one row (float32): the per-call overhead. The error is as for encode.",
    ),
    "kernel": ("Kernels", ""),
    "coldstart": ("Cold start", ""),
    "quality": ("Quality", ""),
}
HIDDEN_SUITES = ("gemm",)  # shown in the header, not as a table

# Columns: key -> header. Core suites always show their columns; other suites show those they carry.
COLUMNS = {
    "config": "config",
    "contestant": "contestant",
    "precision": "precision",
    "median_s": "median",
    "min_s": "min",
    "max_s": "max",
    "rows_per_s": "rows/s",
    "gflops": "GFLOP/s",
    "frac_peak": "of GEMM peak",
    "ratio_to_best_peer": "vs best peer",
    "error": "error",
    "status": "status / note",
}
_HEAD = ("config", "contestant", "precision", "median_s", "min_s", "max_s")
_TAIL = ("gflops", "frac_peak", "ratio_to_best_peer", "error", "status")
CORE_COLUMNS = {"train": _HEAD + _TAIL, "encode": _HEAD + ("rows_per_s",) + _TAIL}
CORE_COLUMNS["latency"] = CORE_COLUMNS["encode"]
# Known keys never shown as columns of their own (folded into another column, or bookkeeping kept in the JSON).
QUIET_KEYS = {"suite", "kind", "note", "samples", "inner", "flops"}

DASH = "–"


# --- JSON -------------------------------------------------------------------------------------------------------
def _jsonable(value):
    """``value`` with NumPy scalars and arrays made plain, and non-finite floats as the strings "nan", "inf" and
    "-inf" (standard JSON has no such numbers; :func:`load_json` turns them back)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # NumPy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _from_json(value):
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value


def write_json(result: dict, path) -> str:
    """Write ``result`` to ``path`` as indented JSON, atomically (a temporary file moved over ``path``)."""
    text = json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n"
    _atomic_write(path, text.encode("utf-8"))
    return str(path)


def load_json(path) -> dict:
    """Read a result written by :func:`write_json`."""
    with open(path, encoding="utf-8") as f:
        return _from_json(json.load(f))


def write_text(text: str, path) -> str:
    """Write ``text`` to ``path`` atomically."""
    _atomic_write(path, text.encode("utf-8"))
    return str(path)


def _atomic_write(path, data: bytes) -> None:
    from ..io import atomic_write_bytes

    atomic_write_bytes(os.fspath(path), data)


# --- status -----------------------------------------------------------------------------------------------------
def is_bad(row: dict) -> bool:
    """Whether ``row`` is WRONG or failed (what makes ``fastae bench`` exit with status 1)."""
    return str(row.get("status", "")).lower() in BAD_STATUSES


def failures(result: dict) -> list[dict]:
    """The rows of ``result`` that are WRONG or failed."""
    return [r for r in result.get("rows", []) if is_bad(r)]


# --- number formatting ------------------------------------------------------------------------------------------
def _num(v):
    """``v`` as a float, or ``None`` if it is missing or not a number."""
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _sig3(v: float) -> str:
    """Three significant digits without an exponent for everyday magnitudes: 249, 39.8, 4.12, 0.168."""
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_time(s) -> str:
    """Seconds in a human unit: ``812 ns``, ``79.4 µs``, ``1.87 ms``, ``2.31 s``."""
    s = _num(s)
    if s is None:
        return DASH
    if not math.isfinite(s):
        return str(s)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(s) >= scale:
            return f"{_sig3(s / scale)} {unit}"
    return f"{_sig3(s / 1e-9)} ns"


def fmt_rate(v, unit="rows/s") -> str:
    """A rate with a k/M/G prefix: ``4.38 M rows/s``."""
    v = _num(v)
    if v is None:
        return DASH
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{_sig3(v / scale)} {prefix}{unit}"
    return f"{_sig3(v)} {unit}"


def fmt_gflops(v) -> str:
    v = _num(v)
    return DASH if v is None else _sig3(v)


def fmt_frac(v) -> str:
    """A fraction as a percentage: ``16%``, ``1.7%``, ``0.07%``, ``<0.01%``."""
    v = _num(v)
    if v is None:
        return DASH
    p = 100 * v
    if p >= 10:
        return f"{p:.0f}%"
    if p >= 1:
        return f"{p:.1f}%"
    if p >= 0.01:
        return f"{p:.2f}%"
    return "0%" if p == 0 else "<0.01%"


def fmt_ratio(v) -> str:
    """A ratio of times: ``0.83x`` (faster than the reference point), ``12.4x``."""
    v = _num(v)
    if v is None:
        return DASH
    return f"{v:.2f}x" if v < 10 else f"{v:.1f}x"


def fmt_error(v) -> str:
    v = _num(v)
    if v is None:
        return DASH
    return "0" if v == 0 else f"{v:.2g}"


def fmt_value(key: str, v) -> str:
    """Any column's value: known keys with their unit, times for ``*_s`` keys, other values compactly."""
    known = {
        "median_s": fmt_time,
        "min_s": fmt_time,
        "max_s": fmt_time,
        "rows_per_s": fmt_rate,
        "gflops": fmt_gflops,
        "frac_peak": fmt_frac,
        "ratio_to_best_peer": fmt_ratio,
        "error": fmt_error,
    }
    if key == "precision" and v is None:  # rows written before the column existed: all float32
        return "float32"
    if v is None:
        return DASH
    if key in known:
        return known[key](v) if _num(v) is not None else str(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if key.endswith("_s") and not key.endswith("per_s"):
            return "0" if v == 0 else fmt_time(v)
        if key.startswith("frac_") or key.endswith("_frac"):
            return fmt_frac(v)
        if isinstance(v, int):
            return str(v)
        return f"{v:.4g}"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(_jsonable(v), separators=(",", ":"))
    return str(v)


def fmt_status(row: dict) -> str:
    """``ok``; ``skipped: <reason>``; ``**WRONG**: <note>``; ``**FAILED**: <note>``."""
    status = str(row.get("status") or "?")
    note = row.get("note")
    low = status.lower()
    if low == "wrong":
        head = "**WRONG**"
    elif low in ("failed", "error"):
        head = f"**{status.upper()}**"
    else:
        head = status
    return f"{head}: {note}" if note else head


def _cell(text) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or DASH


# --- Markdown ---------------------------------------------------------------------------------------------------
def _table(header, rows, text_columns=None) -> list[str]:
    """A Markdown table; columns whose index is in ``text_columns`` (default: the first two) are left-aligned,
    the others (numbers) right-aligned."""
    text_columns = {0, 1} if text_columns is None else set(text_columns)
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join(" --- " if i in text_columns else " ---: " for i in range(len(header))) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_cell(c) for c in r) + " |")
    return lines


def suites_in(result: dict) -> list[str]:
    """The suites of ``result``'s rows in report order (known suites first), without the header-only ones."""
    seen = []
    for r in result.get("rows", []):
        s = str(r.get("suite", "?"))
        if s not in seen and s not in HIDDEN_SUITES:
            seen.append(s)
    known = [s for s in SUITE_INFO if s in seen]
    return known + [s for s in seen if s not in SUITE_INFO]


def _is_text(value) -> bool:
    return not isinstance(value, (int, float)) or isinstance(value, bool)


def _columns(suite: str, rows: list[dict]) -> tuple[list[str], set[str]]:
    """The columns of ``suite``'s table and which of them hold text. A core suite shows its fixed columns; any
    other suite the known columns its rows carry. Columns the report does not know are added: text ones (an op
    name, a shape) after the identifying columns, numeric ones before the status."""

    def present(key):
        return any(r.get(key) is not None for r in rows)

    if suite in CORE_COLUMNS:
        cols = list(CORE_COLUMNS[suite])
    else:
        cols = [k for k in COLUMNS if k == "status" or present(k)]
    text_extras, num_extras = [], []
    for r in rows:
        for k, v in r.items():
            if k in COLUMNS or k in QUIET_KEYS or v is None or k in text_extras or k in num_extras:
                continue
            values = [x.get(k) for x in rows if x.get(k) is not None]
            (text_extras if any(_is_text(x) for x in values) else num_extras).append(k)
    ident = [c for c in cols if c in ("config", "contestant", "precision")]
    rest = [c for c in cols if c not in ident and c != "status"]
    cols = ident + text_extras + rest + num_extras + ["status"]
    return cols, {"config", "contestant", "precision", "status", *text_extras}


def _contestant_cell(row: dict) -> str:
    name = str(row.get("contestant", DASH))
    if row.get("kind") == "floor":
        return f"*{name}*"
    if is_bad(row):
        return f"**{name}**"
    return name


def suite_table(suite: str, rows: list[dict]) -> list[str]:
    cols, text = _columns(suite, rows)
    header = [COLUMNS.get(c, c) for c in cols]
    body = []
    for r in rows:
        cells = []
        for c in cols:
            if c == "status":
                cells.append(fmt_status(r))
            elif c == "contestant":
                cells.append(_contestant_cell(r))
            elif c == "config":
                cells.append(str(r.get("config", DASH)))
            else:
                cells.append(fmt_value(c, r.get(c)))
        body.append(cells)
    return _table(header, body, [i for i, c in enumerate(cols) if c in text])


def _rows_of(result, suite):
    return [r for r in result.get("rows", []) if str(r.get("suite", "?")) == suite]


def _ok(r) -> bool:
    return str(r.get("status", "")).lower() == "ok" and _num(r.get("median_s")) is not None


def train_summary(result: dict) -> list[str]:
    """Per configuration and precision: the fastest fastae contestant, the fastest peer and the fastest GEMM-only
    floor of that precision, with ratios (rows written before precisions were recorded are float32)."""
    rows = _rows_of(result, "train")
    configs = _ordered(r.get("config") for r in rows)
    precisions = _ordered(r.get("precision") or "float32" for r in rows)
    body = []
    for cfg in configs:
        for prec in precisions:
            rs = [r for r in rows if r.get("config") == cfg and (r.get("precision") or "float32") == prec]
            if not rs:
                continue
            best = {
                kind: min(
                    (r for r in rs if r.get("kind") == kind and _ok(r)), key=lambda r: r["median_s"], default=None
                )
                for kind in ("fastae", "peer", "floor")
            }
            f, p, fl = best["fastae"], best["peer"], best["floor"]

            def who(r, kind, rs=rs):
                if r is not None:
                    return f"{fmt_time(r['median_s'])} ({r['contestant']})"
                others = [x for x in rs if x.get("kind") == kind]
                if not others:
                    return "not run"
                return "none ran: " + "; ".join(f"{x.get('contestant')} {str(x.get('status', '?'))}" for x in others)

            vs_peer = fmt_ratio(f["median_s"] / p["median_s"]) if f and p else DASH
            vs_floor = fmt_ratio(f["median_s"] / fl["median_s"]) if f and fl else DASH
            body.append(
                [
                    str(cfg),
                    prec,
                    who(f, "fastae"),
                    who(p, "peer"),
                    fmt_time(fl["median_s"]) if fl else DASH,
                    vs_peer,
                    vs_floor,
                    fmt_frac(f.get("frac_peak")) if f else DASH,
                ]
            )
    header = [
        "config",
        "precision",
        "fastae (fastest)",
        "best peer",
        "GEMM-only floor",
        "fastae vs best peer",
        "fastae vs floor",
        "fastae of GEMM peak",
    ]
    return _table(header, body, [0, 1])


def _ordered(items) -> list:
    out = []
    for it in items:
        if it not in out:
            out.append(it)
    return out


def _header(result: dict) -> list[str]:
    meta = result.get("meta", {})
    lines = ["# fastae benchmark", ""]
    machine = ", ".join(
        str(x) for x in (meta.get("cpu") or meta.get("processor"), meta.get("machine"), meta.get("system")) if x
    )
    versions = meta.get("versions") or {}
    if meta.get("python") and "python" not in versions:
        versions = {"python": meta["python"], **versions}
    if versions:
        machine += ("; " if machine else "") + ", ".join(f"{k} {v}" for k, v in versions.items())
    lines.append(f"- **machine**: {machine or 'not recorded'}")
    if meta.get("machine_info"):
        from ..machine import summary_lines

        lines += [f"- **{label}**: {text}" for label, text in summary_lines(meta["machine_info"])]
    date = meta.get("started") or meta.get("date") or "not recorded"
    took = _num(meta.get("seconds"))
    lines.append(f"- **date**: {date}" + (f" (the run took {took:.0f} s)" if took is not None else ""))
    threads = meta.get("threads")
    detail = meta.get("threads_info") or {}
    extra = "; ".join([*(detail.get("blas") or []), *([f"numba {detail['numba']}"] if "numba" in detail else [])])
    lines.append(
        f"- **threads**: {threads if threads is not None else 'not recorded'}" + (f" ({extra})" if extra else "")
    )
    if detail.get("xla"):
        lines.append(f"- **XLA threads**: {detail['xla']}")
    blas = meta.get("blas") or {}
    libs = [
        " ".join(str(x) for x in (lib.get("internal_api"), lib.get("version")) if x)
        + (f", {lib['architecture']} kernels" if lib.get("architecture") else "")
        for lib in blas.get("libraries") or []
    ]
    if libs and not meta.get("machine_info"):  # the machine section above names every BLAS already
        lines.append(f"- **BLAS**: {'; '.join(libs)}")
    quick = meta.get("quick")
    mode = "not recorded" if quick is None else ("quick" if quick else "full")
    st = meta.get("settings") or {}
    if {"samples", "target_s", "warmup"} <= set(st):
        mode += (
            f": {st['samples']} interleaved samples, each the mean of enough calls to last at least "
            f"{fmt_time(st['target_s'])}, after {st['warmup']} warm-up calls"
        )
        if st.get("settle_s"):
            mode += f"; each sample after a {fmt_time(st['settle_s'])} pause and one untimed call"
    lines.append(f"- **mode**: {mode}")
    peak = _num(meta.get("gemm_peak_gflops"))
    gemm = next((r for r in result.get("rows", []) if r.get("suite") == "gemm"), None)
    if peak is not None:
        how = f" (float32 {gemm.get('contestant', 'matmul')} on {gemm.get('config')}, median)" if gemm else ""
        lines.append(f"- **measured GEMM peak**: {_sig3(peak)} GFLOP/s{how}")
    else:
        lines.append("- **measured GEMM peak**: not measured")
    lines.append(f"- **reproduce**: `{meta.get('command') or reproduce_command(meta)}`")
    if blas.get("warning"):
        lines += ["", f"> **Warning**: {blas['warning']}"]
    bad = failures(result)
    if bad:
        lines += [
            "",
            f"> **{len(bad)} row{'s' if len(bad) != 1 else ''} WRONG or failed**: "
            + "; ".join(f"{r.get('suite')} {r.get('config', DASH)} {r.get('contestant', DASH)}" for r in bad),
        ]
    return lines


def reproduce_command(meta: dict) -> str:
    """The ``fastae bench`` command for a run described by ``meta`` (when it did not record its own)."""
    parts = ["fastae bench"]
    if meta.get("quick"):
        parts.append("--quick")
    if meta.get("configs"):
        parts.append("--config " + ",".join(meta["configs"]))
    if meta.get("threads") is not None:
        parts.append(f"--threads {meta['threads']}")
    return " ".join(parts)


LEGEND = (
    "*median*, *min*, *max*: per call, over the interleaved samples. *GFLOP/s*: the matrix products' "
    "FLOPs at the median time. *of GEMM peak*: that over the measured float32 GEMM peak. *vs best peer*: "
    "median over the fastest peer's median in the same suite and configuration (below 1x: faster than "
    "every peer). *error*: relative, against the float64 NumPy reference; a contestant whose answer fails "
    "its check is marked **WRONG** and not timed. The GEMM-only floor (*in italics*) runs the matrix "
    "products alone: not a competitor, the bound that fused kernels are measured against."
)


def markdown(result: dict, images=()) -> str:
    """The whole report as Markdown: a header (machine, date, threads, mode, GEMM peak, command), a training-step
    summary, one table per suite, and ``images`` (paths relative to the report) at the end."""
    lines = _header(result)
    if _rows_of(result, "train"):
        lines += ["", "## Training step: fastae vs best peer vs GEMM floor", ""]
        lines += train_summary(result)
        lines += [
            "",
            "Ratios are of times: *fastae vs best peer* below 1x means fastae is faster than every peer; "
            "*fastae vs floor* is how many times longer fastae takes than the matrix products alone.",
        ]
    for suite in suites_in(result):
        title, about = SUITE_INFO.get(suite, (suite, ""))
        lines += ["", f"## {title}", ""]
        if about:
            lines += [about, ""]
        lines += suite_table(suite, _rows_of(result, suite))
    lines += ["", LEGEND]
    if images:
        lines.append("")
        for path in images:
            name = os.path.basename(os.fspath(path))
            lines.append(f"![{os.path.splitext(name)[0].replace('_', ' ')}]({name})")
    return "\n".join(lines) + "\n"


# --- plots ------------------------------------------------------------------------------------------------------
_FASTAE_COLORS = ("#1f5fa8", "#4f9bd9", "#0b3768", "#7fb8e6")
_PEER_COLORS = ("#e08a1e", "#3a9a4a", "#c23b3b", "#8a5cb8", "#8c6d31", "#d46aa6")
_FLOOR_STYLE = {"color": "#d0d0d0", "edgecolor": "#606060", "hatch": "///"}


def _styles(rows: list[dict]) -> dict:
    """Contestant name -> bar style: fastae in blues, peers in distinct colours, floors grey and hatched."""
    styles, n_fastae, n_peer = {}, 0, 0
    for r in rows:
        name = r.get("contestant")
        if name in styles:
            continue
        kind = r.get("kind")
        if kind == "floor":
            styles[name] = dict(_FLOOR_STYLE)
        elif kind == "fastae":
            styles[name] = {"color": _FASTAE_COLORS[n_fastae % len(_FASTAE_COLORS)], "edgecolor": "none"}
            n_fastae += 1
        else:
            styles[name] = {"color": _PEER_COLORS[n_peer % len(_PEER_COLORS)], "edgecolor": "none"}
            n_peer += 1
    return styles


def _config_label(name: str) -> str:
    cfg = CONFIGS.get(name)
    if cfg is None:
        return str(name)
    dims = "-".join(str(d) for d in cfg.dims) + (f"-{cfg.latent}" if cfg.kind == "vae" else "")
    kind = "VAE" if cfg.kind == "vae" else ("tied" if cfg.tied else "untied")
    return f"{name}\n{dims}\n{kind}, batch {cfg.batch}"


def _tick_time(v, _pos=None) -> str:
    """Axis ticks at powers of ten: ``10 µs``, ``1 ms`` (no trailing zeros)."""
    if v <= 0:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if v >= scale * 0.999:
            return f"{v / scale:g} {unit}"
    return f"{v:g} s"


def _missing_label(row: dict) -> str:
    status = str(row.get("status", "?"))
    note = str(row.get("note") or "")
    if status.lower() == "skipped":
        text = f"skipped: {note}" if note else "skipped"
    elif status.lower() == "wrong":
        text = "WRONG answer, not timed"
    else:
        text = f"{status}: {note}" if note else status
    return text if len(text) <= 60 else text[:57] + "..."


def plot_train(result: dict, path) -> str | None:
    """Grouped horizontal bars: time per training step by configuration and contestant, log scale, min-max
    whiskers; the GEMM-only floor grey and hatched; contestants without a time labelled with the reason."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator

    rows = _rows_of(result, "train")
    if not any(_ok(r) for r in rows):
        return None
    configs = _ordered(r.get("config") for r in rows)
    names = _ordered(r.get("contestant") for r in rows)
    styles = _styles(rows)
    n = len(names)
    bar_h, gap = 0.8, 0.9
    lo = min(_num(r.get("min_s")) or r["median_s"] for r in rows if _ok(r))
    hi = max(_num(r.get("max_s")) or r["median_s"] for r in rows if _ok(r))
    xmin, xmax = lo / 4, hi * 12
    height = max(3.0, 1.6 + 0.3 * n * len(configs) + 0.25 * len(configs))
    fig = Figure(figsize=(10, height), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    yticks, ylabels = [], []
    for gi, cfg in enumerate(configs):
        base = gi * (n * bar_h + gap)
        yticks.append(base + (n - 1) * bar_h / 2)
        ylabels.append(_config_label(cfg))
        for ci, name in enumerate(names):
            y = base + ci * bar_h
            row = next((r for r in rows if r.get("config") == cfg and r.get("contestant") == name), None)
            if row is None:
                continue
            if _ok(row):
                med = row["median_s"]
                lo_s, hi_s = _num(row.get("min_s")) or med, _num(row.get("max_s")) or med
                ax.barh(y, med - xmin, left=xmin, height=bar_h * 0.85, linewidth=0.8, **styles[name])
                ax.errorbar(
                    med, y, xerr=[[med - lo_s], [hi_s - med]], fmt="none", ecolor="#333333", elinewidth=0.8, capsize=2
                )
                ax.text(hi_s * 1.12, y, fmt_time(med), va="center", ha="left", fontsize=8.5)
            else:
                bad = is_bad(row)
                ax.text(
                    xmin * 1.15,
                    y,
                    _missing_label(row),
                    va="center",
                    ha="left",
                    fontsize=8.5,
                    color="#b00000" if bad else "#707070",
                    style="normal" if bad else "italic",
                    weight="bold" if bad else "normal",
                )
    ax.set_xscale("log")
    ax.set_xlim(xmin, xmax)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(_tick_time))
    ax.set_yticks(yticks, ylabels, fontsize=9)
    ax.set_ylim(-bar_h, len(configs) * (n * bar_h + gap) - gap)
    ax.invert_yaxis()
    ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.8)
    ax.grid(axis="x", which="minor", color="#f0f0f0", linewidth=0.5)
    ax.set_axisbelow(True)
    ax.set_xlabel("time per training step (median over samples, log scale; whiskers: min to max)")
    meta = result.get("meta", {})
    ax.set_title("One training step (forward, backward, Adam)" + _subtitle(meta) + "\nshorter is faster", fontsize=11)
    handles = _handles(names, styles, rows)
    fig.legend(
        handles=handles, loc="outside lower center", ncol=_legend_columns(handles, 10), fontsize=9, frameon=False
    )
    return _save(fig, path)


def _legend_columns(handles, fig_width_in: float) -> int:
    """As many legend columns as fit across the figure (9-point labels), in rows of equal length."""
    widest = max((len(h.get_label()) for h in handles), default=1) * 0.075 + 0.75  # inches per entry
    fit = max(1, int((fig_width_in - 0.3) / widest))
    rows = math.ceil(len(handles) / fit) if handles else 1
    return max(1, math.ceil(len(handles) / rows))


def _handles(names, styles, rows):
    """Legend patches for the contestants that have at least one bar."""
    from matplotlib.patches import Patch

    timed = {r.get("contestant") for r in rows if _ok(r)}
    return [
        Patch(
            facecolor=styles[nm]["color"],
            edgecolor=styles[nm].get("edgecolor", "none"),
            hatch=styles[nm].get("hatch"),
            label=nm,
        )
        for nm in names
        if nm in timed
    ]


def _subtitle(meta: dict) -> str:
    bits = []
    if meta.get("threads") is not None:
        bits.append(f"{meta['threads']} threads")
    if meta.get("quick") is not None:
        bits.append("quick run" if meta["quick"] else "full run")
    return f" ({', '.join(bits)})" if bits else ""


def plot_throughput(result: dict, path) -> str | None:
    """Achieved GFLOP/s per contestant and configuration, for the training step and for encoding (one panel
    each), against a line at the measured float32 GEMM peak; each bar labelled with its fraction of the peak."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    suites = [s for s in ("train", "encode") if any(_ok(r) and _num(r.get("gflops")) for r in _rows_of(result, s))]
    if not suites:
        return None
    all_rows = [r for s in suites for r in _rows_of(result, s)]
    names = _ordered(r.get("contestant") for r in all_rows)
    styles = _styles(all_rows)
    peak = _num(result.get("meta", {}).get("gemm_peak_gflops"))
    values = [r["gflops"] for r in all_rows if _ok(r) and _num(r.get("gflops"))]
    ymin = 10 ** math.floor(math.log10(min(values) / 2))
    ymax = max(values + ([peak] if peak else [])) * 5
    n = len(names)
    n_cfg = max(len(_ordered(r.get("config") for r in _rows_of(result, s))) for s in suites)
    fig_w = max(7.0, min(10.0, 1.6 + n_cfg * (0.42 * n + 0.5)))
    fig = Figure(figsize=(fig_w, 1.4 + 3.7 * len(suites)), dpi=110, layout="constrained")
    axes = fig.subplots(len(suites), 1, squeeze=False)[:, 0]
    titles = {"train": "training step (forward, backward, Adam)", "encode": f"encode, batch {ENCODE_BATCH}"}
    bar_w = min(0.84 / n, 0.25)
    wide = bar_w * (fig_w - 1.2) / (n_cfg + 0.1) > 0.5  # room for horizontal bar labels
    for ax, suite in zip(axes, suites):
        rows = _rows_of(result, suite)
        configs = _ordered(r.get("config") for r in rows)
        for gi, cfg in enumerate(configs):
            for ci, name in enumerate(names):
                row = next((r for r in rows if r.get("config") == cfg and r.get("contestant") == name), None)
                if row is None:
                    continue
                x = gi + (ci - (n - 1) / 2) * bar_w
                if _ok(row) and _num(row.get("gflops")):
                    g = row["gflops"]
                    ax.bar(x, g - ymin, bottom=ymin, width=bar_w * 0.88, linewidth=0.8, **styles[name])
                    label = fmt_frac(row.get("frac_peak")) if peak else _sig3(g)
                    ax.text(
                        x,
                        g * 1.12,
                        label,
                        ha="center",
                        va="bottom",
                        fontsize=9 if wide else 7.5,
                        rotation=0 if wide else 90,
                        zorder=4,
                        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
                    )
                else:
                    bad = is_bad(row)
                    ax.text(
                        x,
                        ymin * 1.2,
                        str(row.get("status", "?")).upper() if bad else "skipped",
                        ha="center",
                        va="bottom",
                        rotation=90,
                        fontsize=9 if wide else 7.5,
                        color="#b00000" if bad else "#707070",
                        weight="bold" if bad else "normal",
                    )
        if peak:
            ax.axhline(peak, color="#b00000", linestyle="--", linewidth=1.3, zorder=3)
        ax.set_xticks(range(len(configs)), [_config_label(c).replace("\n", ", ", 1) for c in configs], fontsize=8.5)
        ax.set_xlim(
            -0.5 - max(0.05, (1 - n * bar_w) / 2 - 0.25), len(configs) - 0.5 + max(0.05, (1 - n * bar_w) / 2 - 0.25)
        )
        ax.set_yscale("log")
        ax.set_ylim(ymin, ymax)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.grid(axis="y", which="major", color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_ylabel("GFLOP/s (log scale)")
        ax.set_title(titles.get(suite, suite), fontsize=10, loc="left")
    fig.suptitle(
        "Achieved GFLOP/s against the measured GEMM peak"
        + _subtitle(result.get("meta", {}))
        + "\nmatrix products only; bar labels: fraction of the peak; taller is better",
        fontsize=11,
    )
    handles = _handles(names, styles, all_rows)
    if peak:
        handles.append(
            Line2D(
                [],
                [],
                color="#b00000",
                linestyle="--",
                linewidth=1.3,
                label=f"float32 GEMM peak, {_sig3(peak)} GFLOP/s",
            )
        )
    fig.legend(
        handles=handles, loc="outside lower center", ncol=_legend_columns(handles, fig_w), fontsize=9, frameon=False
    )
    return _save(fig, path)


def _save(fig, path) -> str:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


PLOT_FILES = {"train_step.png": plot_train, "throughput.png": plot_throughput}


def plots(result: dict, out_dir) -> list[str]:
    """Write the PNG plots of ``result`` into ``out_dir`` (created if needed); returns the paths written (a plot
    with nothing to show is left out). Needs matplotlib (``pip install fastae[plot]``)."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, fn in PLOT_FILES.items():
        path = fn(result, os.path.join(os.fspath(out_dir), name))
        if path:
            written.append(path)
    return written
