"""What ships: the wheel holds fastae (with kernels as fastae.kernels) and nothing at the top level besides it;
importing fastae stays light."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], check=True)
    (whl,) = out.glob("fastae-*.whl")
    return zipfile.ZipFile(whl).namelist()


def test_wheel_ships_kernels_inside_the_package(wheel_names):
    assert "fastae/kernels/__init__.py" in wheel_names
    cuda = {p.name for p in (ROOT / "kernels" / "cuda").glob("*.cu*")}
    assert cuda and {f"fastae/kernels/cuda/{n}" for n in cuda} <= set(wheel_names)  # NVRTC compiles them there
    top = {n.split("/")[0] for n in wheel_names}
    assert top == {"fastae", next(t for t in top if t.endswith(".dist-info"))}, top  # no kernels/, bench/, tests/


def test_import_is_light():
    """``import fastae`` must not pull in scikit-learn, SciPy, matplotlib, tqdm, safetensors or any GPU/peer
    library: they cost start-up time and the inference path does not need them."""
    code = (
        "import sys, fastae; heavy = {'sklearn', 'scipy', 'matplotlib', 'tqdm', 'safetensors', 'cupy', "
        "'torch', 'jax', 'dask'}; print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]", out.stdout
