"""Whole-process wall time of a fresh interpreter doing one small job (see :mod:`fastae.benchmark.coldstart`):
each round is one ``python -c ...`` subprocess; a cold Numba cache is a fresh empty folder for every round."""

import tempfile

import pytest

from fastae.benchmark import coldstart


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with the small saved model, the model's expected code, and a primed warm Numba cache."""
    tmp = tmp_path_factory.mktemp("coldstart")
    path, expected = coldstart.save_model(str(tmp))
    warm = tmp / "numba-warm"
    warm.mkdir()
    check = coldstart.check_encode(path, expected, str(tmp), str(warm))  # also primes the warm cache
    return {"dir": str(tmp), "path": path, "warm": str(warm), "check": check}


NAMES = [c.name for c in coldstart.cases("model.safetensors")]


@pytest.mark.parametrize("name", NAMES)
def bench_coldstart(name, workspace, benchmark, full):
    (case,) = [c for c in coldstart.cases(workspace["path"]) if c.name == name]
    if case.module is not None:
        why = coldstart._missing(case.module)
        if why:
            pytest.skip(why)
    if case.cache is not None:
        chk = workspace["check"]
        assert chk["error"] <= 1e-6, f"the subprocess's code differs from the model's by {chk['error']:.3g}"
        forbidden = set(chk["heavy"]) & set(coldstart.FORBIDDEN)
        assert not forbidden, f"load+encode imports {sorted(forbidden)}"
        benchmark.extra_info["heavy_modules"] = chk["heavy"]
    tmp = workspace["dir"]

    def setup():
        if case.cache == "cold":
            cache = tempfile.mkdtemp(prefix="numba-cold-", dir=tmp)
        else:
            cache = workspace["warm"] if case.cache == "warm" else None
        return (case.code, tmp, cache), {}

    benchmark.group = "coldstart"
    benchmark.extra_info.update(kind=case.kind, command=f"python -c {case.code!r}", numba_cache=case.cache)
    benchmark.pedantic(coldstart.run_once, setup=setup, rounds=coldstart.REPEATS[not full], iterations=1)
