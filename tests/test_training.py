"""The training loop: validation history, early stopping with best-weight restore, progress bar, batching."""

import numpy as np
import pytest

import fastae
from fastae import training


def test_batches_cover_every_row_once():
    assert training.batches(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert training.batches(3, 256) == [(0, 3)]


def test_validation_history(digits_split):
    Xtr, Xte = digits_split
    m = fastae.Autoencoder(hidden=(8,), epochs=3, random_state=0).fit(Xtr, validation_data=Xte)
    assert len(m.history_["loss"]) == 3 and len(m.history_["val_loss"]) == 3
    assert m.history_["val_loss"][-1] == pytest.approx(-m.score(Xte), rel=1e-5)


def test_early_stopping_stops_and_restores_best(digits_split):
    Xtr, Xte = digits_split
    # A learning rate far too high for SGD on this model makes validation loss stall or rise quickly.
    m = fastae.Autoencoder(
        hidden=(8,),
        epochs=60,
        early_stopping=True,
        patience=2,
        tol=0.0,
        optimizer="sgd",
        learning_rate=8.0,
        random_state=0,
    ).fit(Xtr, validation_data=Xte)
    val = m.history_["val_loss"]
    assert len(val) < 60
    best = int(np.argmin(val))
    assert len(val) - 1 - best >= 2  # stopped after `patience` epochs without improvement
    assert -m.score(Xte) == pytest.approx(val[best], rel=1e-5)  # and kept the best weights


def test_early_stopping_holds_out_a_fraction(digits_split):
    Xtr, _ = digits_split
    m = fastae.Autoencoder(
        hidden=(8,), epochs=2, early_stopping=True, validation_fraction=0.2, random_state=0, batch_size=1000
    ).fit(Xtr)
    assert len(m.history_["val_loss"]) == 2
    assert m.t_ == 2 * 2  # 1150 training rows -> 2 batches of up to 1000 per epoch


def test_early_stopping_needs_rows():
    with pytest.raises(ValueError, match="needs at least one training and one validation row"):
        fastae.Autoencoder(hidden=(2,), early_stopping=True).fit(np.full((1, 3), 0.5))


def test_verbose_shows_a_progress_bar_with_the_loss(capsys, digits_split):
    Xtr, _ = digits_split
    fastae.Autoencoder(hidden=(4,), epochs=2, verbose=True, random_state=0).fit(Xtr[:100])
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err


def test_optimizer_double_buffer_swaps_only_when_all_finite():
    from fastae.backends import numpy_ref

    opt = training.Optimizer(numpy_ref, "sgd", 1.0, 0.0)
    params = {"a": np.ones(2), "b": np.ones(2)}
    before = {k: v.copy() for k, v in params.items()}
    assert opt.step(params, {"a": np.ones(2), "b": np.array([np.nan, 0.0])}, 1) == "b"
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    assert opt.step(params, {"a": np.ones(2), "b": np.ones(2)}, 1) is None
    np.testing.assert_array_equal(params["a"], 0.0)


def test_partial_fit_refuses_a_changed_structure(digits_split):
    Xtr, _ = digits_split
    m = fastae.Autoencoder(hidden=(8,), epochs=1, random_state=0).fit(Xtr)
    m.set_params(hidden=(5,))
    with pytest.raises(ValueError, match=r"whose hidden is \(8,\), but hidden is now \(5,\); call fit to start over"):
        m.partial_fit(Xtr)


def test_partial_fit_takes_the_current_learning_rate_and_optimizer(digits_split):
    """set_params between partial_fit calls takes effect (after a DivergenceError the advice is to lower it)."""
    Xtr, _ = digits_split
    m = fastae.Autoencoder(hidden=(8,), optimizer="sgd", learning_rate=0.1, epochs=1, random_state=0).fit(Xtr)
    before = m.state_dict()
    m.set_params(learning_rate=1e-300).partial_fit(Xtr)  # a step this small cannot move float32 weights
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    m.set_params(optimizer="adam", learning_rate=1e-2).partial_fit(Xtr)
    assert set(m._optimizer.state["encoder.0.weight"]) == {"exp_avg", "exp_avg_sq"}
    assert not np.array_equal(m.state_dict()["encoder.0.weight"], before["encoder.0.weight"])


def test_optimizer_buffers_follow_the_parameters_and_the_state():
    """The fused step's buffer lookup is kept between steps only while it is still true: a replaced parameter
    array or a new optimizer state (reset, loaded model) is looked up afresh, and a commit swaps in the outs."""
    from fastae.backends import numpy_ref

    names = ("a", "b")
    opt = training.Optimizer(numpy_ref, "adam", 1e-3, 0.0)
    params = {"a": np.ones(3), "b": np.zeros(2)}
    ps, outs, m, v = opt.buffers(params, names)
    assert ps[0] is params["a"] and m[0] is opt.state["a"]["exp_avg"] and v[1] is opt.state["b"]["exp_avg_sq"]
    assert opt.buffers(params, names)[1][0] is outs[0]  # kept
    opt.commit(params, names)
    ps2, outs2, _, _ = opt.buffers(params, names)
    # the outs become the parameters; the parameters are kept as the previous ones, so the next outs are new
    assert ps2[0] is outs[0] and params["a"] is outs[0] and outs2[0] is not ps[0]
    opt.commit(params, names)
    ps3, outs3, _, _ = opt.buffers(params, names)
    assert ps3[0] is outs2[0] and outs3[0] is ps[0]  # the buffer from two updates ago is reused
    assert opt.restore_previous(params) and params["a"] is outs[0]  # one update back
    params["b"] = np.zeros(2)  # replaced from outside (load_state_dict, early stopping's restore)
    assert opt.buffers(params, names)[0][1] is params["b"]
    opt.reset()
    _, _, m3, _ = opt.buffers(params, names)
    assert m3[0] is opt.state["a"]["exp_avg"] and m3[0] is not m[0]
    opt.state = {"a": {"exp_avg": np.full(3, 7.0), "exp_avg_sq": np.ones(3)}}  # a loaded optimizer state
    assert opt.buffers(params, names)[2][0] is opt.state["a"]["exp_avg"]


@pytest.mark.parametrize(
    "cls,kw", [(fastae.Autoencoder, {}), (fastae.Autoencoder, dict(hidden=(8, 4))), (fastae.VAE, dict(latent=2))]
)
def test_divergence_is_caught_before_inf(cls, kw):
    """learning_rate=1e6 used to finish with a loss in the millions and weights of 1e7, saying nothing."""
    X = np.random.default_rng(0).uniform(0, 1, (256, 20))
    m = cls(
        **{
            "hidden": (8,),
            "learning_rate": 1e6,
            "optimizer": "sgd",
            "epochs": 5,
            "batch_size": 32,
            "random_state": 0,
            **kw,
        }
    )
    with pytest.raises(
        fastae.DivergenceError,
        match=r"diverged at epoch \d+, batch \d+ of 8.*more than 10 times"
        r"|non-finite",
    ) as info:
        m.fit(X)
    assert info.value.info["epoch"] >= 1 and info.value.info["batch"] >= 1
    weights = m.state_dict()
    assert all(np.isfinite(w).all() for w in weights.values())
    # the weights kept are those from before the diverging batch: their loss is within the guard's limit
    assert m._loss_and_grads(m._check_X(X[:32]), 1)[0] < 1e6 or info.value.info["reason"] != "loss growth"


def test_a_callback_can_lower_the_learning_rate_and_continue():
    X = np.random.default_rng(0).uniform(0, 1, (256, 20))
    m = fastae.Autoencoder(hidden=(8,), learning_rate=1e6, optimizer="sgd", epochs=3, batch_size=32, random_state=0)
    seen = []

    def lower(model, info):
        seen.append(info)
        model.set_params(learning_rate=model.learning_rate / 1e4)
        return True

    m.fit(X, on_divergence=lower)
    assert seen and seen[0]["reason"] in ("loss growth", "non-finite loss") and m.learning_rate <= 100
    assert len(m.history_["loss"]) == 3 and np.isfinite(m.history_["loss"]).all()
    assert all(np.isfinite(w).all() for w in m.state_dict().values())


def test_ordinary_training_never_trips_the_guard(digits_split):
    Xtr, _ = digits_split
    for cls in (fastae.Autoencoder, fastae.VAE):
        m = cls(hidden=(16,), epochs=5, random_state=0).fit(Xtr)
        assert len(m.history_["loss"]) == 5


def test_an_epoch_past_the_last_addressable_update_is_refused_before_it_starts():
    X = np.random.default_rng(0).random((8, 5))
    m = fastae.Autoencoder(hidden=(3,), epochs=1, batch_size=4, random_state=0).fit(X)  # 2 updates an epoch
    m.t_ = training.MAX_UPDATES - 1  # room for one more update, not two
    before = {k: v.copy() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=r"taken 4294967293 updates and this epoch needs 2 more, past the 4294967294"):
        m.partial_fit(X)
    assert m.t_ == training.MAX_UPDATES - 1 and m.n_epochs_ == 1
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    m.partial_fit(X[:4])  # one batch: the last update there is
    assert m.t_ == training.MAX_UPDATES
