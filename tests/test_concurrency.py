"""One model shared by threads (fastae/concurrency.py): concurrent partial_fit calls are serialised, every update
counted, and an encode beside the updates returns the codes of one published set of weights, never of a mix."""

import threading

import numpy as np
import pytest

import fastae

X = np.random.default_rng(0).uniform(0.05, 0.95, (64, 24)).astype(np.float32)
PROBE = X[:5]
MODELS = {"shallow (fused step)": dict(hidden=(16,)), "deep": dict(hidden=(16, 8)), "vae": dict(hidden=(12,), latent=3)}


def _model(kind):
    cls = fastae.VAE if kind == "vae" else fastae.Autoencoder
    return cls(**MODELS[kind], batch_size=64, epochs=1, learning_rate=1e-2, random_state=0)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_concurrent_partial_fit_counts_every_update(kind):
    m = _model(kind).partial_fit(X)
    calls, threads = 60, 4
    errors = []

    def work():
        try:
            for _ in range(calls):
                m.partial_fit(X)
        except Exception as exc:  # reported to the main thread
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    assert m.t_ == 1 + calls * threads and m.n_epochs_ == 1 + calls * threads
    assert len(m.history_["loss"]) == 1 + calls * threads
    serial = _model(kind).partial_fit(X)
    for _ in range(calls * threads):
        serial.partial_fit(X)
    for k, v in serial.state_dict().items():  # the same updates in the same order: one batch, no shuffling
        np.testing.assert_array_equal(m.state_dict()[k], v)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_encode_beside_updates_sees_one_published_set_of_weights(kind):
    m = _model(kind).partial_fit(X)
    published = [m.state_dict()]
    seen, stop = [], threading.Event()

    def writer():
        for _ in range(150):
            m.partial_fit(X)  # one batch: one update a call
            published.append(m.state_dict())
        stop.set()

    def reader():
        while not stop.is_set():
            seen.append(m.encode(PROBE))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = _model(kind).partial_fit(X)
    allowed = set()
    for weights in published:
        check.load_state_dict(weights)
        allowed.add(check.encode(PROBE).tobytes())
    assert len(seen) > 10
    mixed = [i for i, codes in enumerate(seen) if codes.tobytes() not in allowed]
    assert not mixed, f"{len(mixed)} of {len(seen)} encodes match no published weights"
