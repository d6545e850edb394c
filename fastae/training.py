"""The minibatch loop: optimiser state, shuffling, validation, early stopping, progress and the divergence guard.

It is model-agnostic: a model supplies ``_loss_and_grads(x, step)`` and ``_validation_loss(X)``, owns its
parameters in ``model._params`` (a dict of backend arrays) and counts updates in ``model.t_`` and epochs in
``model.n_epochs_``.
"""

from __future__ import annotations

import math

import numpy as np

from . import rng
from .backends import contract
from .concurrency import publishing
from .errors import DivergenceError

# Updates are numbered in the 32-bit step of the Philox counter, so a model can take at most this many.
MAX_UPDATES = 2**32 - 2

# A batch loss above this many times the first batch loss of the fit (at least DIVERGENCE_FLOOR) is divergence:
# training lowers the loss from its first value, and a loss ten times above it has run away.
DIVERGENCE_GROWTH = 10.0
DIVERGENCE_FLOOR = 1e-3

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8


class Optimizer:
    """SGD, momentum (heavy-ball or Nesterov, as ``torch.optim.SGD``) or Adam (as ``torch.optim.Adam``).

    Updates are written into a second array per parameter (the consumed gradient, or for a fused step a buffer
    kept here) and swapped in only when every new parameter is finite, so a diverging step leaves the weights as
    they were.
    """

    STATE_NAMES = {
        "sgd": (),
        "momentum": ("momentum_buffer",),
        "nesterov": ("momentum_buffer",),
        "adam": ("exp_avg", "exp_avg_sq"),
    }

    def __init__(self, backend, name, learning_rate, momentum):
        self.B = backend
        self.name = name
        self.lr = learning_rate
        self.momentum = momentum
        self._scratch: dict[str, object] = {}
        # The parameters' arrays from before the last update, kept (not copied) so that a diverged batch can
        # fall back to the last weights whose loss was accepted.
        self._previous: dict[str, object] = {}
        self.state: dict[str, dict[str, object]] = {}

    @property
    def state(self):
        """``{parameter name: {state name: array}}``, PyTorch's names; assigning it (a reset, a loaded model)
        also forgets the buffers a fused step had looked up."""
        return self._state

    @state.setter
    def state(self, value):
        self._state = value
        self._buffers = None

    def reset(self, keep_previous=False):
        """Forget the optimizer state (and, unless ``keep_previous``, the parameters kept from before the last
        update)."""
        self.state = {}
        if not keep_previous:
            self._previous = {}

    def configure(self, name, learning_rate, momentum):
        """Take the model's current hyperparameters (after ``set_params``); a different method starts afresh."""
        if name != self.name:
            self.state = {}
        self.name, self.lr, self.momentum = name, learning_rate, momentum

    def _state_for(self, name, p):
        st = self.state.get(name)
        if st is None:
            st = {s: self.B.xp.zeros_like(p) for s in self.STATE_NAMES[self.name]}
            self.state[name] = st
        return st

    def _out_for(self, name, p):
        out = self._scratch.get(name)
        if out is None or out.shape != p.shape or out.dtype != p.dtype:
            out = self._scratch[name] = self.B.xp.empty_like(p)
        return out

    def buffers(self, params, names):
        """``(ps, outs, first, second)`` for the parameters ``names``: their current arrays, the buffers the
        update writes into, and the state it reads and writes (the momentum buffer, or Adam's ``exp_avg`` and
        ``exp_avg_sq``; the parameter's own ``out`` stands in where the method keeps less state, and is never
        read as state). Kept between calls while ``params`` still holds the arrays it returned, because a fused
        step of a small model costs about as much as this lookup."""
        c = self._buffers
        if c is not None and c[0] is names:
            for name, p in zip(names, c[1]):  # a loop, not all(<generator>): this runs once per small step
                if params[name] is not p:
                    break
            else:
                return c[1:]
        ps, outs, first, second = [], [], [], []
        for name in names:
            p = params[name]
            out = self._out_for(name, p)
            st = self._state_for(name, p)
            slots = [st[s] for s in self.STATE_NAMES[self.name]]
            ps.append(p)
            outs.append(out)
            first.append(slots[0] if slots else out)
            second.append(slots[1] if len(slots) > 1 else first[-1])
        self._buffers = (names, ps, outs, first, second)
        return ps, outs, first, second

    def commit(self, params, names):
        """Put the updated buffers in (after every update of ``names`` was finite): the parameters become the
        previous ones (kept for :meth:`restore_previous`), and the out buffers are those from two updates ago."""
        for name in names:
            old, new = params[name], self._scratch[name]
            spare = self._previous.get(name)
            params[name] = new
            self._scratch[name] = spare if spare is not None else self.B.xp.empty_like(new)
            self._previous[name] = old
        c = self._buffers
        if c is not None and c[0] is names:
            self._buffers = (names, [params[n] for n in names], [self._scratch[n] for n in names], c[3], c[4])

    def restore_previous(self, params):
        """Put back the parameters from before the last update; False if there are none."""
        if not self._previous:
            return False
        params.update(self._previous)
        self._previous = {}
        self._buffers = None
        return True

    def step(self, params, grads, t, out16=None):
        """Apply update number ``t`` (≥ 1) to every parameter. The new values are written over the gradients,
        which are consumed (a separate buffer would cost a read of every line it writes), and swapped in only when
        every one is finite. ``out16`` (``{name: uint16 array}``, for ``precision="bfloat16"``) receives the
        bfloat16 patterns of the named parameters' new values, written by the same update kernels. Returns the
        name of the first parameter whose update was non-finite (no parameter is changed then), or ``None`` on
        success."""
        B = self.B
        if contract.supports(B, contract.MULTI_TENSOR_UPDATE):
            return self._step_all(params, grads, t, out16)
        for name, g in grads.items():
            p = params[name]
            if not g.flags.c_contiguous or not getattr(g.flags, "writeable", True):
                g = grads[name] = g.copy()  # the kernels write through flat views
            st = self._state_for(name, p)
            o16 = None if out16 is None else out16.get(name)
            if self.name == "sgd":
                ok = B.sgd_update(p, g, g, self.lr) if o16 is None else B.sgd_update_bf16(p, g, g, o16, self.lr)
            elif self.name == "adam":
                m, v, hyper = st["exp_avg"], st["exp_avg_sq"], (self.lr, ADAM_BETA1, ADAM_BETA2, ADAM_EPS, t)
                if o16 is None:
                    ok = B.adam_update(p, g, m, v, g, *hyper)
                else:
                    ok = B.adam_update_bf16(p, g, m, v, g, o16, *hyper)
            else:
                buf, hyper = st["momentum_buffer"], (self.lr, self.momentum, self.name == "nesterov")
                if o16 is None:
                    ok = B.momentum_update(p, g, buf, g, *hyper)
                else:
                    ok = B.momentum_update_bf16(p, g, buf, g, o16, *hyper)
            if not ok:
                return name
        self._previous = {name: params[name] for name in grads}
        params.update(grads)
        return None

    def _step_all(self, params, grads, t, out16):
        """:meth:`step` in one backend call for every parameter (capability ``multi_tensor_update``): one launch
        on a GPU instead of one per parameter, and one read of the verdict. Unlike the per-parameter loop, every
        parameter's state moves even when the update is refused (the loop stops at the first non-finite one)."""
        names = list(grads)
        entries = []
        for name in names:
            g = grads[name]
            if not g.flags.c_contiguous:
                g = grads[name] = g.copy()
            st = [self._state_for(name, params[name])[s] for s in self.STATE_NAMES[self.name]]
            st += [None] * (2 - len(st))
            o16 = None if out16 is None else out16.get(name)
            entries.append((params[name], g, st[0], st[1], g, o16))
        bad = self.B.update_all(self.name, entries, self.lr, self.momentum, ADAM_BETA1, ADAM_BETA2, ADAM_EPS, t)
        if bad is not None:
            return names[bad]
        self._previous = {name: params[name] for name in grads}
        params.update(grads)
        return None


def _loss_accepted(model):
    """``accept(loss)``: finite, and at most ``DIVERGENCE_GROWTH`` times the first batch loss of the fit."""
    ref = model._loss_ref_
    if ref is None:
        return math.isfinite
    limit = DIVERGENCE_GROWTH * max(ref, DIVERGENCE_FLOOR)
    return lambda loss: math.isfinite(loss) and loss <= limit


def batches(n, batch_size):
    """``(start, stop)`` of each minibatch; the last one may be shorter."""
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def run_epoch(model, X, epoch_label, bar=None, on_divergence=None, X16=None):
    """One pass over ``X`` (shuffled by the epoch counter when ``model.shuffle``); returns the mean loss.

    Raises :class:`DivergenceError` naming the epoch and batch if a loss, gradient or update is non-finite, or if
    a batch loss exceeds ``DIVERGENCE_GROWTH`` times the first batch loss of the fit; that batch's update is not
    applied. ``on_divergence(model, info)`` may instead return True (after lowering ``learning_rate``, say) to
    skip the batch and continue; ``info`` has ``epoch``, ``batch``, ``loss`` and ``reason``. ``X16``: ``X``'s
    bfloat16 patterns, made by the pass that checked ``X`` (``precision="bfloat16"``), gathered with each batch.
    """
    n = X.shape[0]
    order = model._B.permutation(model._key, rng.STREAM_SHUFFLE, model.n_epochs_, n) if model.shuffle else None
    spans = batches(n, model.batch_size)
    if model.t_ + len(spans) > MAX_UPDATES:
        raise ValueError(
            f"the model has taken {model.t_} updates and this epoch needs {len(spans)} more, past the "
            f"{MAX_UPDATES} its 32-bit random-number steps can address; fit it again to start over"
        )
    total = 0.0
    fused = model._fused_stepper()
    accept = _loss_accepted(model)
    # Overflow on the way to divergence is expected and reported below with the epoch and batch; numpy's own
    # warnings (or errors, under np.seterr) would only get in the way of that report.
    published = publishing(model)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), model._B.session():
        for b, (s, e) in enumerate(spans):
            xb = X[order[s:e]] if order is not None else X[s:e]
            xb16 = None if X16 is None else (X16[order[s:e]] if order is not None else X16[s:e])
            try:
                with published:
                    loss = _step(model, xb, accept, fused, xb16)
                    if loss is None:
                        _diverged(
                            model,
                            model._refused,
                            f"at epoch {epoch_label}, batch {b + 1} of {len(spans)}",
                            {"epoch": epoch_label, "batch": b + 1},
                        )
            except DivergenceError as exc:
                if on_divergence is None or not on_divergence(model, exc.info):
                    raise
                # the callback may have changed the learning rate: the optimizer and the fused step take it
                model._optimizer.configure(model.optimizer, model.learning_rate, model.momentum)
                fused = model._fused_stepper()
                continue
            if accept is math.isfinite:  # the first accepted loss of a fit is the guard's reference from now on
                accept = _loss_accepted(model)
            total += loss * (e - s)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    model.n_epochs_ += 1
    return total / n


def _step(model, xb, accept, fused=None, xb16=None):
    """One minibatch update, number ``t_ + 1`` (which addresses its random draws: noise, ε); returns its loss, or
    ``None`` when it was refused, with ``(loss, name of the non-finite update or None)`` in ``model._refused``.
    ``accept`` is :func:`_loss_accepted`'s; ``fused``, the model's ``_fused_stepper()``, if it has one; ``xb16``,
    the batch's bfloat16 patterns if they were made already."""
    t = model.t_ + 1
    done = fused(xb, t, t, accept) if fused is not None else None
    out16 = None
    if done is None:
        # an on_divergence callback may have switched the precision since the patterns were made
        bf16 = xb16 is not None and model.precision == "bfloat16"
        loss, grads = model._loss_and_grads(xb, t, x16=xb16) if bf16 else model._loss_and_grads(xb, t)
        loss = float(loss)
        bad = None
        if accept(loss):
            out16 = model._w16_targets(grads)
            bad = model._optimizer.step(model._params, grads, t, out16)
    else:  # the whole update ran in one backend call, committed only if finite and its loss was accepted
        loss, bad = done
    if bad is None and accept(loss):
        if model._loss_ref_ is None:
            model._loss_ref_ = loss
        if out16 is not None:
            model._w16_updated(out16)
        model.t_ = t
        return loss
    model._refused = (loss, bad)
    return None


def _diverged(model, refused, where, info):
    """Raise the :class:`DivergenceError` of a refused batch (its update was not applied; ``refused`` is
    ``(loss, name of the non-finite update or None)``), after resetting the optimizer state and, for a loss grown
    past the limit, putting back the weights from before the update that led to it."""
    loss, bad = refused
    info = {**info, "loss": loss}
    model._optimizer.reset(keep_previous=True)
    keep = (
        "the model keeps the weights from before this batch and its optimizer state is reset. Try a smaller "
        f"learning_rate (now {model.learning_rate})"
    )
    if not math.isfinite(loss):
        raise DivergenceError(
            f"the training loss became non-finite ({loss}) {where}; {keep} or check the data scale",
            info={**info, "reason": "non-finite loss"},
        )
    if bad is not None:
        raise DivergenceError(
            f"the update of {bad!r} became non-finite {where} (loss was {loss}); {keep}",
            info={**info, "reason": f"non-finite update of {bad}"},
        )
    if model._optimizer.restore_previous(model._params):  # the update that led here was the bad one
        model.t_ -= 1
        keep = keep.replace(
            "from before this batch", "from before the previous batch (the last whose loss was accepted)"
        )
    raise DivergenceError(
        f"the training loss diverged {where}: {loss:.6g} is more than {DIVERGENCE_GROWTH:g} "
        f"times the first batch's {model._loss_ref_:.6g}; {keep}",
        info={**info, "reason": "loss growth"},
    )


def fit_loop(
    model, X, X_val, epochs, history, desc="fit", on_divergence=None, progress=None, after_epoch=None, X16=None
):
    """Train for up to ``epochs`` epochs, recording ``history['loss']`` (and ``'val_loss'``), with early stopping
    on the validation loss when ``model.early_stopping``; the best weights are restored at the end.

    ``progress``: ``(epochs done, (best, best_params, wait))`` to continue from (a resumed checkpoint);
    ``after_epoch(epochs done, (best, best_params, wait))`` runs after every epoch (writing a checkpoint);
    ``X16``: ``X``'s bfloat16 patterns (:func:`run_epoch`)."""
    start, (best, best_params, wait) = progress if progress is not None else (0, (math.inf, None, 0))
    bar = None
    if model.verbose:
        from tqdm.auto import tqdm  # imported only when asked for: it is not on the inference path

        bar = tqdm(total=epochs, initial=start, desc=desc, unit="epoch", leave=True)
    stopped = model.early_stopping and wait >= model.patience
    try:
        for epoch in range(start, epochs if not stopped else start):
            loss = run_epoch(model, X, epoch + 1, bar, on_divergence, X16)
            history.setdefault("loss", []).append(loss)
            info = {"loss": f"{loss:.4g}"}
            if X_val is not None:
                val = float(model._validation_loss(X_val))
                history.setdefault("val_loss", []).append(val)
                info["val_loss"] = f"{val:.4g}"
                if model.early_stopping:
                    if val < best - model.tol:
                        best, wait = val, 0
                        best_params = {k: v.copy() for k, v in model._params.items()}
                    else:
                        wait += 1
            if bar is not None:
                bar.set_postfix(info, refresh=False)
                bar.update(1)
            if after_epoch is not None:
                after_epoch(epoch + 1, (best, best_params, wait))
            if model.early_stopping and wait >= model.patience:
                break
    finally:
        if bar is not None:
            bar.close()
    if best_params is not None:
        with publishing(model):
            model._params.update(best_params)
    return history


def check_validation_split(n, fraction):
    """The number of rows ``split_validation`` holds out; raises unless both sides get at least one row."""
    n_val = int(round(fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(
            f"early_stopping with validation_fraction={fraction} needs at least one "
            f"training and one validation row, but X has {n} row(s); pass validation_data instead"
        )
    return n_val


def split_validation(model, X, X16=None):
    """Hold out ``validation_fraction`` of ``X`` (a seeded permutation, at least one row on each side): ``(training
    rows, validation rows, the training rows of X16)`` (``None`` without ``X16``, ``X``'s bfloat16 patterns)."""
    n = X.shape[0]
    n_val = check_validation_split(n, model.validation_fraction)
    order = rng.permutation(model._key, rng.STREAM_SHUFFLE, 0xFFFFFFFF, n)
    train = np.sort(order[n_val:])
    return X[train], X[np.sort(order[:n_val])], None if X16 is None else X16[train]
