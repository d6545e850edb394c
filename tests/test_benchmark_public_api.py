"""The benchmark measures what a user gets: ``fastae/benchmark/`` reaches the library through public names only,
and no module of ``fastae/`` outside it imports a peer (torch, JAX)."""

import ast
from pathlib import Path

import fastae

ROOT = Path(fastae.__file__).parent
BENCHMARK = ROOT / "benchmark"


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(directory):
    """Every import of a private name from outside the benchmark package, and every read of a private attribute
    of anything but ``self``/``cls``, in the modules of ``directory``."""
    found = []
    for path in sorted(directory.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                inside = node.level == 1 or (node.module or "").startswith("fastae.benchmark")
                if not inside:
                    found += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names if _private(a.name)]
                    if any(_private(part) for part in (node.module or "").split(".")):
                        found.append(f"{path.name}:{node.lineno} imports from {node.module}")
            elif isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    found.append(f"{path.name}:{node.lineno} reads .{node.attr} of {ast.unparse(owner)}")
    return found


def test_the_benchmark_uses_no_private_name_of_the_library():
    assert _private_uses(BENCHMARK) == []


def test_the_scan_catches_what_it_is_for(tmp_path):
    """The test above is not vacuous: a benchmark module reaching a model's internals is found."""
    (tmp_path / "bad.py").write_text("from ..training import _step\n\ndef f(model):\n    return model._params\n")
    assert _private_uses(tmp_path) == ["bad.py:1 imports _step", "bad.py:4 reads ._params of model"]


def test_no_module_outside_the_benchmark_imports_a_peer():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if BENCHMARK in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            )
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[0] in ("torch", "jax", "jaxlib")
            ]
    assert found == []
