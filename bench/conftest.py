"""pytest-benchmark suites of fastae, on the configurations and contestants of :mod:`fastae.benchmark`.

Threads are fixed at import, before torch or jax can be imported (XLA reads its flags once). Every benchmark
checks its answer against the float64 reference first (an ``assert``: correctness, never time), then times.
"""

from fastae.benchmark.threads import set_threads

THREADS = 2
THREAD_INFO = set_threads(THREADS)  # noqa: E402 - must precede any import of torch or jax

import functools  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastae.benchmark import configs, lineup, timing  # noqa: E402
from fastae.benchmark.contestants import Fastae, vae_eps  # noqa: E402

# --- contestants: the list fastae bench uses (fastae.benchmark.lineup) -----------------------------------------
# pytest parameters: an unavailable contestant is collected and skipped with its reason, never silently dropped.
contestants = [
    pytest.param(c, id=c.name, marks=[pytest.mark.skip(reason=why)] if (why := c.unavailable()) else [])
    for c in lineup.contestants(("torch", "jax"), THREADS)
]


def pytest_addoption(parser):
    parser.addoption(
        "--bench-full",
        action="store_true",
        default=False,
        help="fastae: full budgets (more rounds, full quality training) instead of quick ones",
    )


def pytest_report_header(config):
    return [f"fastae bench: {THREADS} threads; {THREAD_INFO}"]


def pytest_generate_tests(metafunc):
    if "contestant" in metafunc.fixturenames:
        metafunc.parametrize("contestant", contestants)
    if "cfg" in metafunc.fixturenames:
        metafunc.parametrize("cfg", list(configs.CONFIGS.values()), ids=list(configs.CONFIGS))


# --- references, computed once per session --------------------------------------------------------------------
class References:
    """The shared inputs and the float64 answers every contestant is checked against."""

    @functools.lru_cache(maxsize=None)
    def weights(self, name):
        return configs.initial_weights(configs.CONFIGS[name])

    @functools.lru_cache(maxsize=None)
    def train(self, name):
        """``(x, eps, loss after one float64 step)`` of configuration ``name``."""
        cfg = configs.CONFIGS[name]
        x = configs.data(cfg, cfg.batch)
        eps = vae_eps(cfg, cfg.batch) if cfg.kind == "vae" else None
        ref = Fastae("numpy", "float64").train(cfg, self.weights(name), x, eps)
        ref.step()
        return x, eps, ref.loss()

    @functools.lru_cache(maxsize=None)
    def encode(self, name, rows):
        """``(x, float64 code)`` of ``rows`` rows of configuration ``name``."""
        cfg = configs.CONFIGS[name]
        x = configs.data(cfg, rows, seed_offset=1)
        ref = Fastae("numpy", "float64").encode(cfg, self.weights(name), x)
        ref.run()
        return x, np.asarray(ref.result())


@pytest.fixture(scope="session")
def refs():
    return References()


@pytest.fixture(scope="session")
def full(request):
    """True with ``--bench-full``."""
    return request.config.getoption("--bench-full")


def rel_error(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    return float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-30)


@pytest.fixture(scope="session")
def error():
    """``error(got, want)``: max |got − want| / max |want|."""
    return rel_error


@pytest.fixture
def timed(benchmark, full):
    """``timed(fn, group=..., **extra_info)``: time ``fn`` with pytest-benchmark after a warm-up, each round
    calling it enough times to last ``round_s``; ``flops``/``bytes`` in ``extra_info`` also give GFLOP/s and GB/s
    at the median. Returns ``fn``'s last result."""

    def run(fn, group, rounds=None, round_s=0.005, warmup_rounds=2, **extra_info):
        rounds = rounds or (30 if full else 10)
        benchmark.group = group
        benchmark.extra_info.update(extra_info)
        for _ in range(warmup_rounds):
            fn()
        iterations = timing.calibrate(fn, round_s)
        out = benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=0)
        median = _median(benchmark)
        if median:
            if extra_info.get("flops"):
                benchmark.extra_info["gflops_at_median"] = extra_info["flops"] / median / 1e9
            if extra_info.get("bytes"):
                benchmark.extra_info["gbps_at_median"] = extra_info["bytes"] / median / 1e9
        return out

    return run


def _median(benchmark):
    try:
        return benchmark.stats.stats.median
    except AttributeError:  # --benchmark-disable: nothing was timed
        return None
