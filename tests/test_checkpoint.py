"""fit(checkpoint=..., checkpoint_every=..., resume=True) (fastae/models/base.py, fastae/training.py): the
checkpoint is written atomically, always loads, and resuming from it ends bit for bit where an uninterrupted fit
ends, also after SIGKILL at random moments."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastae
from fastae import training

ROOT = Path(__file__).resolve().parents[1]
X = np.random.default_rng(0).uniform(0.05, 0.95, (300, 20))
CASES = {
    "tied": (fastae.Autoencoder, dict(hidden=(8,))),
    "deep-denoising": (fastae.Autoencoder, dict(hidden=(12, 6), noise=("mask", 0.2), tied=False)),
    "early-stopping": (fastae.Autoencoder, dict(hidden=(8,), early_stopping=True, patience=2, tol=1e-3)),
    "pretrained": (fastae.Autoencoder, dict(hidden=(12, 6), pretrain="layerwise", pretrain_epochs=2)),
    "vae": (fastae.VAE, dict(hidden=(10,), latent=3)),
}


def _model(name, **kw):
    cls, params = CASES[name]
    return cls(**{**params, "epochs": 8, "batch_size": 32, "random_state": 1, **kw})


def _same(a, b):
    return a.state_dict().keys() == b.state_dict().keys() and all(
        np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items()
    )


class _Killed(Exception):
    pass


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("stop_after", [1, 4])
def test_resume_reproduces_the_uninterrupted_fit(tmp_path, monkeypatch, name, stop_after):
    full = _model(name).fit(X)
    path = tmp_path / "ck.safetensors"
    target, done = _model(name), {"n": 0}
    run_epoch = training.run_epoch

    def interrupted(model, *a, **kw):  # stops the fit under test (not its pretraining layers) after some epochs
        if model is target:
            if done["n"] == stop_after:
                raise _Killed
            done["n"] += 1
        return run_epoch(model, *a, **kw)

    monkeypatch.setattr(training, "run_epoch", interrupted)
    with pytest.raises(_Killed):
        target.fit(X, checkpoint=path, checkpoint_every=1)
    monkeypatch.setattr(training, "run_epoch", run_epoch)
    ck = fastae.load(path)  # a checkpoint is a model file
    assert ck.n_epochs_ == stop_after
    resumed = _model(name, random_state=None).fit(X, checkpoint=path, resume=True)
    assert _same(resumed, full)
    assert resumed.history_ == full.history_ and resumed.t_ == full.t_
    np.testing.assert_array_equal(resumed.encode(X), full.encode(X))


def test_checkpoint_every_and_the_final_epoch(tmp_path):
    path = tmp_path / "ck.safetensors"
    m = _model("tied").fit(X, checkpoint=path, checkpoint_every=3)
    assert fastae.load(path).n_epochs_ == 8 and _same(fastae.load(path), m)  # the last epoch is always written


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    path = tmp_path / "none-yet.safetensors"
    assert _same(_model("tied").fit(X, checkpoint=path, resume=True), _model("tied").fit(X))
    assert path.exists()


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    path = tmp_path / "ck.safetensors"
    _model("tied").fit(X, checkpoint=path)
    with pytest.raises(ValueError, match=r"other parameters: \['hidden'\]"):
        _model("tied", hidden=(9,)).fit(X, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="is not a VAE checkpoint"):
        _model("vae").fit(X, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint"):
        _model("tied").fit(X, resume=True)


_CHILD = """
import sys, numpy as np, fastae
sys.path.insert(0, sys.argv[2])
from tests.test_checkpoint import X, _model
_model("deep-denoising", epochs=int(sys.argv[3])).fit(
    X, checkpoint=sys.argv[1], checkpoint_every=1, resume=True)
print("done", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint_and_resume_reproduces_the_fit(tmp_path):
    """20 children fit with a checkpoint every epoch, each resuming from the last one, and each is killed with
    SIGKILL after a random delay; after every kill the checkpoint loads, and a last resume to the end gives the
    bits of an uninterrupted fit."""
    epochs = 300
    path = tmp_path / "ck.safetensors"
    delays = np.random.default_rng(7).uniform(0.0, 0.6, 20)
    kills = 0
    for delay in delays:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(ROOT), str(epochs)], stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)  # the first child runs until its first checkpoint is on disk
        time.sleep(delay)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        child.stdout.close()
        assert fastae.load(path).n_epochs_ >= 1  # loadable after every kill
    assert kills >= 15, f"only {kills} of 20 children were still training when killed"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(ROOT), str(epochs)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-2000:]
    full = _model("deep-denoising", epochs=epochs).fit(X)
    assert _same(fastae.load(path), full)


def test_resume_may_train_on_past_the_checkpoints_end(tmp_path):
    path = tmp_path / "ck.safetensors"
    _model("tied", epochs=4).fit(X, checkpoint=path)
    longer = _model("tied", epochs=8).fit(X, checkpoint=path, resume=True)
    assert _same(longer, _model("tied", epochs=8).fit(X)) and len(longer.history_["loss"]) == 8
