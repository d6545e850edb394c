"""Tier 3: the real CuPy backend (fastae/backends/cupy_gpu.py) trains and runs every model kind end to end on the
strict CuPy stand-in (tests/cupy_standin), its kernels emulated on the CPU (tests/cuda_emu), and matches Numba.

The models see ``backend="cupy"`` exactly as on a GPU: CuPy arrays go in and come out, ``"auto"`` picks the GPU for
them, files and models move between devices. The parity of every op and of every model's objective and gradients
with the reference, within the error model, runs through the registered ``"cupy-standin"`` backends (the parity
and whole-model suites); here, whole fits are compared with Numba's.
"""

import numpy as np
import pytest

import fastae
from fastae.backends import registry

from . import cupy_standin, gpu_standin
from .test_autoencoder import VARIANTS


def _real_backend():
    reason = registry.unavailable("cupy")
    if reason is not None:
        pytest.skip(f"no GPU for the real CuPy backend here: {reason}")
    return registry.get_backend("cupy", "float32")


@pytest.fixture(params=["standin", pytest.param("gpu", marks=pytest.mark.gpu)])
def gpu(request, monkeypatch):
    """The backend the test runs on: the stand-in copy of the real backend (``backend="cupy"`` resolves to it for
    the test), or, marked ``gpu``, the real backend on a real device."""
    if request.param == "gpu":
        yield _real_backend()
        return
    module = gpu_standin.load()
    monkeypatch.setitem(registry._MODULES, "cupy", module)
    monkeypatch.setitem(registry._loaded, "cupy", module)
    yield module


def _data(n=96, d=12, loss="bce", seed=0):
    r = np.random.default_rng(seed)
    return r.uniform(0.02, 0.98, (n, d)) if loss == "bce" else r.normal(size=(n, d))


FITS = {f"ae-{k}": (fastae.Autoencoder, v) for k, v in VARIANTS.items()}
FITS.update(
    {
        "ae-deep-untied": (fastae.Autoencoder, dict(hidden=(10, 6, 3), tied=False, activation="tanh")),
        "ae-adam-wd": (fastae.Autoencoder, dict(hidden=(8,), weight_decay=1e-3)),
        "vae": (fastae.VAE, dict(hidden=(10,), latent=3)),
        "vae-mse-deep": (fastae.VAE, dict(hidden=(10, 6), latent=2, loss="mse", activation="tanh", beta=0.5)),
    }
)


def _fit(cls, kw, backend, dtype, X, precision="float32"):
    kw = dict(kw)
    kw.setdefault("learning_rate", 3e-3)
    if "hidden" in kw and cls is fastae.Autoencoder:
        kw["hidden"] = tuple(min(h, 10) for h in kw["hidden"])
    m = cls(backend=backend, dtype=dtype, epochs=2, batch_size=32, random_state=0, precision=precision, **kw)
    return m.fit(X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(FITS))
def test_fit_on_cupy_arrays_matches_numba(gpu, name, dtype):
    cp = gpu.cp
    cls, kw = FITS[name]
    X = _data(loss=kw.get("loss", "bce")).astype(dtype)
    got = _fit(cls, kw, "auto", dtype, cp.asarray(X))
    want = _fit(cls, kw, "numba", dtype, X)
    assert got.backend_ == "cupy"
    # Six updates from the same start: the trajectories part by the rounding of each step, far below these.
    rtol, atol = (1e-9, 1e-12) if dtype == "float64" else (2e-4, 2e-6)
    np.testing.assert_allclose(got.history_["loss"], want.history_["loss"], rtol=rtol)
    for k, v in want.state_dict().items():
        np.testing.assert_allclose(got.state_dict()[k], v, rtol=rtol, atol=atol, err_msg=k)
    codes = got.encode(cp.asarray(X))
    assert isinstance(codes, cp.ndarray) and codes.dtype == dtype
    np.testing.assert_allclose(codes.get(), want.encode(X), rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("name", ["ae-plain_tied", "ae-deep", "vae"])
def test_bf16_fit_matches_numba_bf16(gpu, name):
    cp = gpu.cp
    cls, kw = FITS[name]
    X = _data().astype("float32")
    got = _fit(cls, kw, "cupy", "float32", cp.asarray(X), precision="bfloat16")
    want = _fit(cls, kw, "numba", "float32", X, precision="bfloat16")
    # bfloat16 operands: a weight whose float32 value lies at a rounding tie of the two backends' sums may round
    # to the neighbouring bfloat16, 2**-8 relative, and move the next steps by that much
    np.testing.assert_allclose(got.history_["loss"], want.history_["loss"], rtol=2e-2)
    for k, v in want.state_dict().items():
        np.testing.assert_allclose(got.state_dict()[k], v, rtol=2e-2, atol=2e-3, err_msg=k)


def test_tf32_products_round_the_operands(gpu):
    cp = gpu.cp
    X = _data().astype("float32")
    fp32 = _fit(fastae.Autoencoder, dict(hidden=(8,)), "cupy", "float32", cp.asarray(X))
    tf32 = _fit(fastae.Autoencoder, dict(hidden=(8,)), "cupy", "float32", cp.asarray(X), precision="tf32")
    a, b = fp32.encode(cp.asarray(X)).get(), tf32.encode(cp.asarray(X)).get()
    if gpu is gpu_standin.load():  # its gemmEx always rounds TF32 operands; cuBLAS may pick a kernel that does not
        assert not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, rtol=5e-3, atol=5e-3)  # TF32's unit roundoff is 2**-11


def test_numpy_input_is_copied_to_the_device_and_auto_keeps_numpy_on_the_cpu(gpu):
    cp = gpu.cp
    X = _data().astype("float32")
    m = fastae.Autoencoder(hidden=(4,), epochs=1, backend="cupy", random_state=0).fit(X)
    assert isinstance(m.encode(X), cp.ndarray)  # the model's arrays are the backend's
    assert fastae.Autoencoder(hidden=(4,), epochs=1, random_state=0).fit(X).backend_ == "numba"


def test_models_move_between_devices_and_files_load_on_the_other(gpu, tmp_path):
    cp = gpu.cp
    X = _data().astype("float32")
    gpu = fastae.Autoencoder(hidden=(6,), epochs=2, random_state=0).fit(cp.asarray(X))
    codes = gpu.encode(cp.asarray(X)).get()
    path = tmp_path / "gpu.safetensors"
    gpu.save(path)
    cpu = gpu.to("cpu")
    assert cpu is gpu and cpu.backend_ == "numba" and isinstance(cpu.encode(X), np.ndarray)
    np.testing.assert_allclose(cpu.encode(X), codes, rtol=1e-5, atol=1e-6)
    cpu.partial_fit(X)  # the optimizer state came along
    back = cpu.to("cuda")
    assert back.backend_ == "cupy" and isinstance(back.encode(cp.asarray(X)), cp.ndarray)
    loaded = fastae.load(path, backend="cupy")
    np.testing.assert_allclose(loaded.encode(cp.asarray(X)).get(), codes, rtol=1e-6)
    on_cpu = fastae.load(path)  # fitted with backend="auto": it loads where "auto" points without data, the CPU
    assert on_cpu.backend_ == "numba"
    with pytest.raises(TypeError, match=r"X is a GPU array .* model.to\('cuda'\)"):
        on_cpu.encode(cp.asarray(X))
    np.testing.assert_allclose(on_cpu.encode(X), codes, rtol=1e-5, atol=1e-6)


def test_a_gpu_file_on_a_machine_without_a_gpu_says_how_to_load_it(gpu, tmp_path, monkeypatch):
    X = _data().astype("float32")
    path = tmp_path / "gpu.safetensors"
    fastae.Autoencoder(hidden=(3,), epochs=1, backend="cupy", random_state=0).fit(X).save(path)
    monkeypatch.setattr(gpu, "unavailable", lambda: "no CUDA device: cupy.cuda.runtime.getDeviceCount() is 0")
    with pytest.raises(ValueError, match=r"saved with backend='cupy'.*no CUDA device.*backend='auto'"):
        fastae.load(path)
    assert fastae.load(path, backend="auto").backend_ == "numba"


def test_training_step_launch_count(monkeypatch):
    """Kernel launches and cuBLAS calls of one training step, op by op (no graph capture): the figure the
    performance account quotes (docs/performance.md), checked here so that it stays true."""
    module = gpu_standin.load()
    monkeypatch.setitem(registry._MODULES, "cupy", module)
    monkeypatch.setitem(registry._loaded, "cupy", module)
    X = module.cp.asarray(_data(n=32).astype("float32"))
    counts = {}
    for name, kw in {"shallow": dict(hidden=(8,)), "deep": dict(hidden=(10, 6, 3))}.items():
        m = fastae.Autoencoder(epochs=1, batch_size=32, random_state=0, backend="cupy", **kw).fit(X)
        cupy_standin.reset()
        m.partial_fit(X)
        counts[name] = (cupy_standin.counters.kernels, cupy_standin.counters.blas)
    print("launches per step (kernels, gemm):", counts)
    assert counts["shallow"][1] == 5  # forward 2, backward 3 (the first layer needs no dx)
    assert counts["deep"][1] == 3 * 2 + 3 * 2 + 3 * 2 - 1
    # the input scan, 1 bias-activation per layer, the loss pass and its sum, 1 bias gradient per layer, 1
    # activation backward per hidden activation, and one optimiser launch for every parameter
    assert counts["shallow"][0] == 1 + 1 + 2 + 2 + 1 + 1
    assert counts["deep"][0] == 1 + 5 + 2 + 6 + 5 + 1


def test_host_input_is_streamed_through_two_buffers_not_copied_whole(gpu, monkeypatch):
    """encode/reconstruct of a NumPy array on the GPU: chunk by chunk through two pinned buffers and a copy stream
    (``stream_rows``), the same results as the whole array moved first, and the device never holds the input."""
    from fastae.models import base

    cp = gpu.cp
    X = _data(n=1000).astype("float32")
    ae = fastae.Autoencoder(hidden=(6,), epochs=1, random_state=0, backend="cupy").fit(X[:64])
    vae = fastae.VAE(hidden=(6,), latent=2, epochs=1, random_state=0, backend="cupy").fit(X[:64])
    whole = {
        "ae": ae.encode(cp.asarray(X)).get(),
        "rec": ae.reconstruct(cp.asarray(X)).get(),
        "vae": vae.encode(cp.asarray(X)).get(),
    }
    monkeypatch.setattr(base, "INFERENCE_CHUNK", 96)
    calls, peaks = [], []
    real = gpu.stream_rows
    standin = gpu is gpu_standin.load()  # the stand-in knows every live allocation; earlier tests' may be among them
    before = {a.ptr for a in cupy_standin.memory.live_allocations()} if standin else set()

    def watched(X, fn, dest, chunk):
        calls.append(chunk)
        peaks.append(0)

        def step(rows, row0, out):
            fn(rows, row0, out)
            if standin:
                new = [a.nbytes for a in cupy_standin.memory.live_allocations() if a.ptr not in before]
                peaks[-1] = max(peaks[-1], *new)

        return real(X, step, dest, chunk)

    monkeypatch.setattr(gpu, "stream_rows", watched)
    copies, waits = [], []
    if standin:  # what the stand-in cannot run out of order, it can at least see asked for
        from .cupy_standin import streams

        real_copy, real_wait = streams.copy_to_device, streams.Stream.wait_event
        monkeypatch.setattr(
            streams, "copy_to_device", lambda st, pinned, *a: copies.append((st, pinned)) or real_copy(st, pinned, *a)
        )
        monkeypatch.setattr(streams.Stream, "wait_event", lambda st, e: waits.append(st) or real_wait(st, e))
    got = {"ae": ae.encode(X), "vae": vae.encode(X), "rec": ae.reconstruct(X)}
    assert calls == [96, 96, 96]
    # while the codes are made, the largest device allocation is the AE's codes (1000 x 6), never an input's copy
    assert not standin or peaks[:2] == [1000 * 6 * 4] * 2
    if standin:
        chunks = 3 * -(-1000 // 96)
        copy_stream, compute = gpu._copy_stream(), gpu.stream()
        # every chunk crosses from pinned memory on the copy stream; the compute stream waits for each copy, and the
        # copy stream for each buffer's last chunk (two buffers: all but the first two chunks of each call) and once
        # for the compute stream's queued work
        assert [c for c in copies if c[0] is copy_stream] == [(copy_stream, True)] * chunks
        assert waits.count(compute) >= chunks and waits.count(copy_stream) == 3 * (1 + -(-1000 // 96) - 2)
    for k, v in got.items():
        assert isinstance(v, cp.ndarray)
        np.testing.assert_array_equal(v.get(), whole[k])
    out = cp.empty((1000, 6), dtype="float32")
    assert ae.encode(X, out=out) is out
    np.testing.assert_array_equal(out.get(), whole["ae"])


def test_without_a_device_the_error_names_what_is_missing(monkeypatch):
    module = gpu_standin.load()
    monkeypatch.setitem(registry._MODULES, "cupy", module)
    monkeypatch.setitem(registry._loaded, "cupy", module)
    cupy_standin.set_device_count(0, status=35)
    try:
        reason = registry.unavailable("cupy")
        assert reason.startswith("no usable CUDA device: CUDARuntimeError") and "InsufficientDriver" in reason, reason
        with pytest.raises(ValueError, match=r"backend 'cupy' cannot run here: no usable CUDA device"):
            fastae.Autoencoder(hidden=(2,), epochs=1, backend="cupy").fit(_data(n=8))
    finally:
        cupy_standin.set_device_count(1)


def test_without_cupy_the_error_says_how_to_install_it():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['cupy'] = None\n"  # CuPy absent: its import raises ImportError
        "import numpy as np, fastae\n"
        "try:\n"
        "    fastae.Autoencoder(hidden=(2,), epochs=1, backend='cupy').fit(np.ones((4, 3)) / 2)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "backend 'cupy' is not available here" in out and "pip install 'fastae[gpu]'" in out, out


def test_auto_keeps_a_fitted_gpu_model_where_it_is(gpu, tmp_path):
    """partial_fit and a resumed fit of a model fitted with backend="auto" on CuPy input continue on the GPU."""
    cp = gpu.cp
    X = cp.asarray(_data().astype("float32"))
    m = fastae.Autoencoder(hidden=(4,), epochs=2, random_state=0).fit(X)
    m.partial_fit(X)
    m.partial_fit(X.get())  # host rows too: "auto" does not move a fitted model
    assert m.backend_ == "cupy" and len(m.history_["loss"]) == 4
    path = tmp_path / "ck.safetensors"
    full = fastae.Autoencoder(hidden=(4,), epochs=3, random_state=0).fit(X)
    part = fastae.Autoencoder(hidden=(4,), epochs=1, random_state=0).fit(X, checkpoint=path)
    resumed = fastae.Autoencoder(hidden=(4,), epochs=3, random_state=0).fit(X, checkpoint=path, resume=True)
    assert part.backend_ == resumed.backend_ == "cupy"
    np.testing.assert_array_equal(resumed.encode(X).get(), full.encode(X).get())


def test_the_session_stream_waits_for_the_callers_work(monkeypatch):
    """A non-blocking stream does not wait for the legacy stream, where the uploads before a fit ran: the session
    makes its stream wait for an event of the caller's stream on entry (the stand-in runs everything at once, so
    the order itself cannot be seen here; that the wait is asked for can)."""
    module = gpu_standin.load()
    waited, recorded, synced = [], [], []
    s = module.stream()
    Stream = type(s)
    real_wait, real_record, real_sync = Stream.wait_event, Stream.record, Stream.synchronize
    monkeypatch.setattr(Stream, "wait_event", lambda self, e: waited.append((self, e)) or real_wait(self, e))
    monkeypatch.setattr(Stream, "record", lambda self, e=None: recorded.append(self) or real_record(self, e))
    monkeypatch.setattr(Stream, "synchronize", lambda self: synced.append(self) or real_sync(self))
    caller = module.cp.cuda.get_current_stream()
    with pytest.raises(KeyError):
        with module.session():
            raise KeyError("a fit that fails")
    assert [w[0] for w in waited] == [s] and recorded == [caller]  # the event it waits for is the caller's
    assert synced == [s]  # and the caller waits for it, also when the session ends by an exception


def test_tiny_launches_are_tiny():
    tiny = gpu_standin.load(tiny=True)
    kernels = tiny.kernels
    assert kernels.THREADS == 32 and kernels.blocks_for(200) == 3 and kernels.col_blocks(70) == 3
    assert gpu_standin.load().kernels.blocks_for(200) == 1


def test_the_gpu_benchmark_script_runs_on_the_standin(tmp_path):
    """bench/gpu_bench.py, which bench/gpu_check.sh runs on a GPU, works end to end (here on the stand-in, whose
    times mean nothing): every configuration and precision gets its rows."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    args = [sys.executable, "bench/gpu_bench.py", str(tmp_path), "--standin", "--configs", "small", "--samples", "1"]
    subprocess.run([*args, "--steps", "1"], cwd=root, check=True, capture_output=True, timeout=600)
    table = (tmp_path / "gpu_bench.md").read_text()
    assert "stand-in" in table and table.count("| small |") == 9, table


def test_a_second_device_gets_streams_of_its_own(monkeypatch):
    module = gpu_standin.load()
    monkeypatch.setitem(registry._MODULES, "cupy", module)
    monkeypatch.setitem(registry._loaded, "cupy", module)
    cupy_standin.set_device_count(2)
    first = module.stream()  # made on device 0
    try:
        X = _data(n=64).astype("float32")
        with module.cp.cuda.Device(1):
            m = fastae.Autoencoder(hidden=(3,), epochs=1, random_state=0, backend="cupy").fit(X)
            codes = m.encode(X[:40]).get()
            assert module.stream() is not first
        assert module.stream() is first
        want = fastae.Autoencoder(hidden=(3,), epochs=1, random_state=0).fit(X).encode(X[:40])
        np.testing.assert_allclose(codes, want, rtol=2e-4, atol=2e-6)
    finally:
        cupy_standin.set_device_count(1)
