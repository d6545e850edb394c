"""Tests for the benchmark report (``fastae.benchmark.report``): Markdown, JSON and plots, from synthetic results."""

import json
import math
import re

import pytest

from fastae.benchmark import report
from fastae.benchmark.configs import CONFIGS

PEAK = 250.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Per configuration: median seconds of the train step and of encoding 8192 rows, per contestant.
_TRAIN = {
    "small": {"fastae[numpy]": 79e-6, "torch eager": 120e-6, "torch.compile": 61e-6, "GEMM-only floor": 8.2e-6},
    "shallow": {"fastae[numpy]": 3.6e-3, "torch eager": 3.4e-3, "torch.compile": 3.0e-3, "GEMM-only floor": 2.4e-3},
    "deep": {"fastae[numpy]": 41e-3, "torch eager": 35e-3, "torch.compile": 33e-3, "GEMM-only floor": 22e-3},
    "vae": {"fastae[numpy]": 1.9e-3, "torch eager": 2.6e-3, "torch.compile": None, "GEMM-only floor": 1.6e-3},
}
_ENCODE = {
    "small": {"fastae[numpy]": 1.9e-3, "torch eager": 0.9e-3, "torch.compile": 0.5e-3, "GEMM-only floor": 87e-6},
    "shallow": {"fastae[numpy]": 40e-3, "torch eager": 30e-3, "torch.compile": 28e-3, "GEMM-only floor": 14e-3},
    "deep": {"fastae[numpy]": 0.21, "torch eager": 0.18, "torch.compile": "failed", "GEMM-only floor": 0.11},
    "vae": {"fastae[numpy]": 30e-3, "torch eager": 28e-3, "torch.compile": 26e-3, "GEMM-only floor": 24e-3},
}
_KIND = {
    "fastae[numpy]": "fastae",
    "torch eager": "peer",
    "torch.compile": "peer",
    "jax jit": "peer",
    "GEMM-only floor": "floor",
}


def _timed(suite, cfg, name, median, flops, n_rows=None):
    row = {
        "suite": suite,
        "config": cfg,
        "contestant": name,
        "kind": _KIND[name],
        "error": None if _KIND[name] == "floor" else 2e-7,
        "status": "ok",
        "median_s": median,
        "min_s": median * 0.97,
        "max_s": median * 1.1,
        "samples": 5,
        "inner": 10,
        "flops": flops,
        "gflops": flops / median / 1e9,
        "frac_peak": flops / median / 1e9 / PEAK,
    }
    if n_rows:
        row["rows_per_s"] = n_rows / median
    return row


def _suite_rows(suite, table):
    rows = []
    for cfg, times in table.items():
        c = CONFIGS[cfg]
        flops = c.train_flops() if suite == "train" else c.encode_flops(8192)
        suite_rows = []
        for name in ("fastae[numpy]", "torch eager", "torch.compile", "jax jit", "GEMM-only floor"):
            base = {"suite": suite, "config": cfg, "contestant": name, "kind": _KIND[name], "error": None}
            t = times.get(name)
            if name == "jax jit":
                suite_rows.append({**base, "status": "skipped", "note": "jax not installed"})
            elif t is None:
                suite_rows.append(
                    {**base, "error": 0.37, "status": "WRONG", "note": "error 0.37 against the reference exceeds 0.001"}
                )
            elif t == "failed":
                suite_rows.append({**base, "status": "failed", "note": "RuntimeError: out of memory | boom"})
            else:
                suite_rows.append(_timed(suite, cfg, name, t, flops, None if suite == "train" else 8192))
        best = min(r["median_s"] for r in suite_rows if r["kind"] == "peer" and r["status"] == "ok")
        for r in suite_rows:
            if r["status"] == "ok":
                r["ratio_to_best_peer"] = r["median_s"] / best
        rows += suite_rows
    return rows


def synthetic_result():
    """A result as ``fastae bench`` would produce it with every suite, peers, a skipped peer, a WRONG answer and
    a crash, plus rows of suites the report does not know."""
    rows = [
        {
            "suite": "gemm",
            "config": "2048x2048",
            "contestant": "numpy matmul",
            "kind": "floor",
            "status": "ok",
            "flops": 2 * 2048**3,
            "gflops": PEAK,
            "frac_peak": 1.0,
            "median_s": 0.0687,
            "min_s": 0.0680,
            "max_s": 0.0701,
            "samples": 5,
            "inner": 1,
        }
    ]
    rows += _suite_rows("train", _TRAIN) + _suite_rows("encode", _ENCODE)
    rows += [
        _timed("latency", "small", "fastae[numpy]", 12e-6, 2048, 1),
        _timed("latency", "small", "GEMM-only floor", 1.0e-6, 2048, 1),
        {
            "suite": "kernel",
            "op": "dense_forward",
            "shape": [256, 784, 256],
            "dtype": "float32",
            "bytes": 1_200_000,
            "contestant": "fastae[numpy]",
            "status": "ok",
            "median_s": 3.3e-4,
            "gbytes_per_s": 3.6,
            "error": 1e-7,
        },
        {
            "suite": "coldstart",
            "contestant": "fastae[numpy]",
            "status": "ok",
            "median_s": 0.41,
            "note": "import + first fit",
            "over_baseline_s": 0.0,
            "epilogue_frac": 0.6488,
        },
        {
            "suite": "quality",
            "config": "digits",
            "contestant": "fastae[numpy]",
            "status": "ok",
            "metric": "held-out reconstruction error",
            "value": 0.8312,
            "pca": 1.03,
        },
        {
            "suite": "mystery",
            "config": "x",
            "contestant": "someone",
            "status": "skipped",
            "note": "module not available yet",
            "weird_column": True,
        },
    ]
    meta = {
        "machine": "x86_64",
        "cpu": "AMD EPYC",
        "system": "Linux 6.1",
        "python": "3.11.7",
        "versions": {"numpy": "2.1", "torch": "2.13.0"},
        "quick": True,
        "settings": {"samples": 5, "target_s": 0.02, "warmup": 2},
        "seconds": 93.2,
        "gemm_peak_gflops": PEAK,
        "started": "2026-11-24 06:00:00",
        "configs": list(CONFIGS),
        "threads": 2,
        "threads_info": {"threads": 2, "blas": ["openblas 0.3.31 (2 threads)"], "numba": 2},
        "command": "fastae bench --quick --config small,shallow,deep,vae --peers torch,jax --threads 2",
    }
    return {"meta": meta, "rows": rows}


def _table_lines(md, contestant, suite_title):
    """Table lines of section ``suite_title`` that name ``contestant``."""
    section = md.split(f"## {suite_title}\n", 1)[1].split("\n## ", 1)[0]
    return [ln for ln in section.splitlines() if ln.startswith("|") and contestant in ln]


# --- Markdown -----------------------------------------------------------------------------------------------
def test_markdown_has_a_row_for_every_row():
    result = synthetic_result()
    md = report.markdown(result)
    lines = md.splitlines()
    # A table is its header line, the alignment line, then one line per row.
    data_rows = [
        ln
        for prev, ln in zip(lines, lines[1:])
        if ln.startswith("|") and prev.startswith("|") and not re.match(r"\|( -+:? \|)+$", ln)
    ]
    summary_rows = len(_TRAIN)
    assert len(data_rows) == summary_rows + len([r for r in result["rows"] if r["suite"] != "gemm"])
    for r in result["rows"]:
        if r["suite"] not in ("gemm", "kernel", "coldstart"):
            assert any(f"| {r['config']} | " in ln and r["contestant"] in ln for ln in data_rows), r


def test_markdown_header():
    md = report.markdown(synthetic_result())
    assert md.startswith("# fastae benchmark")
    assert "AMD EPYC" in md and "torch 2.13.0" in md
    assert "2026-11-24 06:00:00" in md
    assert re.search(r"\*\*threads\*\*: 2 \(openblas", md)
    assert "**mode**: quick" in md
    assert "**measured GEMM peak**: 250 GFLOP/s" in md
    assert "`fastae bench --quick --config small,shallow,deep,vae --peers torch,jax --threads 2`" in md


def test_markdown_shows_skipped_peers_with_their_reason():
    md = report.markdown(synthetic_result())
    for title in ("Training step", "Encode throughput at batch 8192"):
        lines = _table_lines(md, "jax jit", title)
        assert len(lines) == len(CONFIGS)
        assert all("skipped: jax not installed" in ln for ln in lines)
    mystery = _table_lines(md, "someone", "mystery")
    assert len(mystery) == 1 and "skipped: module not available yet" in mystery[0]


def test_markdown_flags_wrong_and_failed_rows():
    md = report.markdown(synthetic_result())
    wrong = [ln for ln in _table_lines(md, "torch.compile", "Training step") if "| vae |" in ln]
    assert len(wrong) == 1
    assert "**WRONG**: error 0.37 against the reference exceeds 0.001" in wrong[0]
    assert "**torch.compile**" in wrong[0]  # the name stands out too
    assert "| 0.37 |" in wrong[0]  # the error column
    failed = [ln for ln in _table_lines(md, "torch.compile", "Encode throughput at batch 8192") if "| deep |" in ln]
    assert len(failed) == 1 and "**FAILED**: RuntimeError: out of memory \\| boom" in failed[0]
    # and the header says so before any table
    top = md.split("\n## ", 1)[0]
    assert "**2 rows WRONG or failed**" in top and "train vae torch.compile" in top


def test_markdown_formats_units_ratios_and_fractions():
    md = report.markdown(synthetic_result())
    (small,) = [ln for ln in _table_lines(md, "fastae[numpy]", "Training step") if "| small |" in ln]
    cells = [c.strip() for c in small.strip("|").split("|")]
    cfg = CONFIGS["small"]
    gflops = cfg.train_flops() / 79e-6 / 1e9
    assert cells[:6] == ["small", "fastae[numpy]", "float32", "79.0 µs", "76.6 µs", "86.9 µs"]
    assert cells[6] == f"{gflops:.2f}"
    assert cells[7] == f"{100 * gflops / PEAK:.1f}%"
    assert cells[8] == f"{79 / 61:.2f}x"
    assert cells[9] == "2e-07" and cells[10] == "ok"
    (enc,) = [ln for ln in _table_lines(md, "GEMM-only floor", "Encode throughput at batch 8192") if "| small |" in ln]
    assert "*GEMM-only floor*" in enc and "94.2 Mrows/s" in enc and "| – |" in enc  # floor: no error
    (deep,) = [ln for ln in _table_lines(md, "fastae[numpy]", "Encode throughput at batch 8192") if "| deep |" in ln]
    assert "210 ms" in deep and "39.0 krows/s" in deep


def test_train_summary_compares_fastae_best_peer_and_floor():
    md = report.markdown(synthetic_result())
    section = md.split("## Training step: fastae vs best peer vs GEMM floor\n", 1)[1].split("\n## ", 1)[0]
    (small,) = [ln for ln in section.splitlines() if ln.startswith("| small |")]
    assert "79.0 µs (fastae[numpy])" in small and "61.0 µs (torch.compile)" in small and "8.20 µs" in small
    assert f"{79 / 61:.2f}x" in small and f"{79 / 8.2:.2f}x" in small
    (vae,) = [ln for ln in section.splitlines() if ln.startswith("| vae |")]
    assert "2.60 ms (torch eager)" in vae  # the WRONG torch.compile is not the best peer


def test_markdown_shows_unknown_suites_and_columns_generically():
    md = report.markdown(synthetic_result())
    kernel = md.split("## Kernels\n", 1)[1].split("\n## ", 1)[0]
    header = next(ln for ln in kernel.splitlines() if ln.startswith("| "))
    for col in ("op", "shape", "dtype", "bytes", "gbytes_per_s", "median", "error", "status / note"):
        assert f"| {col} |" in header or header.startswith(f"| {col} |")
    assert "| dense_forward |" in kernel and "[256,784,256]" in kernel and "330 µs" in kernel
    quality = md.split("## Quality\n", 1)[1].split("\n## ", 1)[0]
    assert "held-out reconstruction error" in quality and "0.8312" in quality and "| pca |" in quality
    assert "| yes |" in md.split("## mystery\n", 1)[1]
    cold = md.split("## Cold start\n", 1)[1].split("\n## ", 1)[0]
    assert "410 ms" in cold and "ok: import + first fit" in cold and "| 0 | 65% |" in cold
    # Known suites come first, in the report's order; the GEMM peak is in the header, not a table.
    order = [m for m in re.findall(r"^## (.+)$", md, re.M)]
    assert order == [
        "Training step: fastae vs best peer vs GEMM floor",
        "Training step",
        "Encode throughput at batch 8192",
        "Single-row latency",
        "Kernels",
        "Cold start",
        "Quality",
        "mystery",
    ]


def test_markdown_of_a_bare_result():
    md = report.markdown(
        {
            "meta": {},
            "rows": [{"suite": "train", "config": "small", "contestant": "x", "status": "ok", "median_s": 1e-3}],
        }
    )
    assert "| small | x | float32 | 1.00 ms |" in md and "not recorded" in md


@pytest.mark.parametrize(
    "value, text", [(812e-9, "812 ns"), (79.4e-6, "79.4 µs"), (1.87e-3, "1.87 ms"), (2.314, "2.31 s"), (None, "–")]
)
def test_fmt_time(value, text):
    assert report.fmt_time(value) == text


def test_other_formats():
    assert report.fmt_ratio(0.834) == "0.83x" and report.fmt_ratio(12.44) == "12.4x"
    assert report.fmt_frac(0.1598) == "16%" and report.fmt_frac(0.0166) == "1.7%"
    assert report.fmt_frac(0.00068) == "0.07%" and report.fmt_frac(1e-7) == "<0.01%"
    assert report.fmt_rate(4.375e6) == "4.38 Mrows/s" and report.fmt_rate(820) == "820 rows/s"
    assert report.fmt_error(3.26e-8) == "3.3e-08" and report.fmt_error(math.inf) == "inf"


def test_failures():
    bad = report.failures(synthetic_result())
    assert sorted(r["status"] for r in bad) == ["WRONG", "failed"]


# --- JSON -----------------------------------------------------------------------------------------------------
def test_json_round_trip(tmp_path):
    np = pytest.importorskip("numpy")
    result = synthetic_result()
    result["rows"][1]["error"] = math.inf  # a shape mismatch
    result["rows"][1]["samples"] = np.int64(5)
    result["rows"][1]["gflops"] = np.float32(1.5)
    path = tmp_path / "results.json"
    assert report.write_json(result, path) == str(path)
    text = path.read_text()
    json.loads(text)  # strict JSON: no NaN or Infinity tokens
    assert "Infinity" not in text
    again = report.load_json(path)
    assert again["rows"][1]["error"] == math.inf and again["rows"][1]["samples"] == 5
    again["rows"][1]["error"] = result["rows"][1]["error"] = None
    again["rows"][1]["samples"] = result["rows"][1]["samples"] = None
    again["rows"][1]["gflops"] = result["rows"][1]["gflops"] = None
    assert again == result
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left behind


# --- plots ----------------------------------------------------------------------------------------------------
def _assert_png(path, min_bytes=10_000):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 600 <= width <= 2000 and 300 <= height <= 2000


def test_plots_write_png_files(tmp_path):
    pytest.importorskip("matplotlib")
    paths = report.plots(synthetic_result(), tmp_path / "plots")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["train_step.png", "throughput.png"]
    for p in paths:
        _assert_png(p)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["throughput.png", "train_step.png"]


def test_plots_of_a_small_result_and_of_nothing(tmp_path):
    pytest.importorskip("matplotlib")
    result = synthetic_result()
    result["rows"] = [
        r
        for r in result["rows"]
        if r.get("config") in ("small", "2048x2048")
        and r.get("contestant") in ("fastae[numpy]", "GEMM-only floor", "numpy matmul")
    ]
    paths = report.plots(result, tmp_path)
    assert len(paths) == 2
    for p in paths:
        _assert_png(p, min_bytes=5_000)
    assert report.plots({"meta": {}, "rows": []}, tmp_path / "empty") == []


def test_markdown_links_images():
    md = report.markdown(synthetic_result(), images=["/some/where/train_step.png"])
    assert md.rstrip().endswith("![train step](train_step.png)")
