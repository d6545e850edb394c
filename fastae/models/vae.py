"""The variational autoencoder (Kingma & Welling, 2014) with a Gaussian encoder and Bernoulli or Gaussian decoder."""

from __future__ import annotations

import math

import numpy as np

from .. import activations as act
from .. import rng
from ..concurrency import consistent
from ..validation import check_choice, check_layer_sizes, check_number
from . import base, network
from .base import BaseModel
from .network import Dense


# ELBO draws use steps from here on in the sample stream; sample() and encode(sample=True) count up from 1.
ELBO_STEP0 = 0x80000000


class VAE(BaseModel):
    """Variational autoencoder ``x → h_1 … h_m → (μ, log σ²) → z → … → x̂``.

    Encoder: ``h_i = f(h_{i-1} W_iᵀ + b_i)`` with ``f = activation``, then two linear heads ``μ`` and ``log σ²``
    (clamped to [-30, 20] for stability). ``z = μ + exp(½ log σ²) ε`` with ``ε ~ N(0, I)`` from fastae's Philox
    stream (the reparameterisation trick). The decoder mirrors the hidden layers and ends in a sigmoid with
    cross-entropy (``loss="bce"``, a Bernoulli decoder) or a linear layer with ``½ Σ (x̂ − x)²`` (``loss="mse"``,
    a Gaussian decoder with unit variance).

    The training objective per example is reconstruction + ``β KL(q(z|x) ‖ N(0, I))`` with
    ``KL = −½ Σ_j (1 + log σ²_j − μ_j² − σ²_j)``, averaged over the batch; ``β = 1`` is the negative ELBO.
    """

    _kind = "VAE"
    _STRUCTURAL = ("hidden", "latent", "activation", "loss", "dtype")
    _CODES = ("Z", "latent units")

    def __init__(self, hidden=(400,), latent=20, activation="relu", loss="bce", beta=1.0, weight_decay=0.0,
                 optimizer="adam", learning_rate=1e-3, momentum=0.9, batch_size=100, epochs=10, shuffle=True,
                 early_stopping=False, validation_fraction=0.1, patience=5, tol=1e-4, backend="auto",
                 dtype="float32", random_state=None, verbose=False):
        self.hidden = hidden
        self.latent = latent
        self.activation = activation
        self.loss = loss
        self.beta = beta
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.backend = backend
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _validate_model_params(self):
        """Check the model's own hyperparameters; returns the parsed ones (stored only once all checks pass)."""
        hidden = check_layer_sizes("hidden", self.hidden, allow_empty=True)
        check_number("latent", self.latent, low=1, integer=True)
        check_choice("activation", self.activation, act.ACTIVATIONS)
        check_number("beta", self.beta, low=0)
        return {"_hidden": hidden}

    # --- structure ------------------------------------------------------------------------------------------
    def _build(self):
        m = len(self._hidden)
        self._dims = (self.n_features_in_,) + self._hidden
        self._encoder = [Dense(f"encoder.{i}.weight", f"encoder.{i}.bias", self.activation) for i in range(m)]
        self._mu = Dense("mu.weight", "mu.bias", "linear")
        self._logvar = Dense("logvar.weight", "logvar.bias", "linear")
        out_act = self._B.output_activation(self._fitted_structure["loss"])
        self._decoder = [Dense(f"decoder.{j}.weight", f"decoder.{j}.bias", out_act if j == m else self.activation)
                         for j in range(m + 1)]

    def _param_shapes(self):
        dims, m, k = self._dims, len(self._hidden), int(self._fitted_structure["latent"])
        shapes = {}
        for i in range(m):
            shapes[f"encoder.{i}.weight"] = (dims[i + 1], dims[i])
            shapes[f"encoder.{i}.bias"] = (dims[i + 1],)
        for head in ("mu", "logvar"):
            shapes[f"{head}.weight"] = (k, dims[m])
            shapes[f"{head}.bias"] = (k,)
        dec_dims = (k,) + tuple(reversed(dims))  # latent -> h_m -> ... -> x
        for j in range(m + 1):
            shapes[f"decoder.{j}.weight"] = (dec_dims[j + 1], dec_dims[j])
            shapes[f"decoder.{j}.bias"] = (dec_dims[j + 1],)
        return shapes

    def _code_size(self):
        return int(self._fitted_structure["latent"])

    # --- objective ------------------------------------------------------------------------------------------
    def _heads(self, x):
        B, P = self._B, self._params
        hs = network.forward(B, P, self._encoder, x)
        h = hs[-1]
        mu = B.dense_forward(h, P[self._mu.weight], P[self._mu.bias], "linear")
        logvar = B.dense_forward(h, P[self._logvar.weight], P[self._logvar.bias], "linear")
        return hs, mu, logvar

    def _mean(self, x, out=None):
        """``μ`` alone (into ``out`` if given): what encoding, reconstructing and scoring at ``z = μ`` need (the
        log-variance head would be a product thrown away)."""
        h = network.forward(self._B, self._params, self._encoder, x)[-1]
        return self._B.dense_forward(h, self._params[self._mu.weight], self._params[self._mu.bias], "linear",
                                     out=out)

    def _loss_and_grads(self, x, step, row0=0):
        """Reconstruction + β KL on batch ``x`` with ``ε`` drawn at update ``step``, and the gradient of every
        parameter."""
        B, P = self._B, self._params
        hs, mu, logvar = self._heads(x)
        z, kl = B.gaussian_latent(mu, logvar, self.beta, self._key, step, row0)
        dec_hs = network.forward(B, P, self._decoder[:-1], z)
        last = self._decoder[-1]
        rec, delta = B.output_loss_grad(dec_hs[-1], P[last.weight], P[last.bias], x, self._fitted_structure["loss"])
        grads = {}
        dz = network.backward(B, P, self._decoder, dec_hs, delta, grads, need_dx=True)
        dmu, dlogvar = B.gaussian_latent_backward(dz, z, mu, logvar, self.beta)
        need = len(self._encoder) > 0
        h = hs[-1]
        dW, db, dh = B.dense_backward(dmu, h, P[self._mu.weight], need_dx=need)
        grads[self._mu.weight], grads[self._mu.bias] = dW, db
        dW, db, dh2 = B.dense_backward(dlogvar, h, P[self._logvar.weight], need_dx=need)
        grads[self._logvar.weight], grads[self._logvar.bias] = dW, db
        if need:
            delta = B.activation_backward(dh + dh2, h, self._encoder[-1].activation)
            network.backward(B, P, self._encoder, hs, delta, grads, need_dx=False)
        loss = rec + kl
        if self.weight_decay > 0:
            for name in P:
                if name.endswith(".weight"):
                    loss = loss + B.weight_decay(P[name], grads[name], self.weight_decay)
        return loss, grads

    def _validation_loss(self, X):
        return -float(np.mean(self._elbo(self._B.xp.asarray(X), 1)))

    # --- inference ------------------------------------------------------------------------------------------
    def _next_sample_step(self):
        # Each sampling call gets its own step of the sample stream: successive calls differ, and the sequence
        # is reproducible from random_state (the counter is saved with the model).
        self._sample_calls_ = getattr(self, "_sample_calls_", 0) + 1
        return self._sample_calls_

    @consistent
    def encode(self, X, sample=False, out=None):
        """``μ`` of ``q(z|x)`` for each row of ``X``, shape ``(n_samples, latent)``; with ``sample=True`` a draw
        ``z = μ + σ ε`` instead. ``out``: an array of that shape and dtype (C-contiguous, writeable, separate from
        ``X`` and the weights; an ``np.memmap`` works) that receives the codes and is returned, instead of a new
        array; it is checked before anything is written (a draw is computed per chunk and copied in)."""
        self._check_fitted()
        if not isinstance(sample, (bool, np.bool_)):
            raise TypeError(f"sample must be True or False, got {sample!r}")
        X = self._B.xp.asarray(self._check_X(X, n_features=self.n_features_in_))
        if not sample and out is None and X.shape[0] <= base.INFERENCE_CHUNK:  # one call: as Autoencoder.encode
            return self._mean(X)
        out = self._checked_out(out, X, self._code_size(), "the codes")
        step = self._next_sample_step() if sample else None

        def code(x, row0, dest):
            if step is None:
                return self._mean(x, dest)
            _, mu, logvar = self._heads(x)
            z, _ = self._B.gaussian_latent(mu, logvar, 0.0, self._key, step, row0, stream=rng.STREAM_SAMPLE)
            dest[...] = z
            return dest

        return self._into(X, code, self._code_size(), out)

    @consistent
    def reconstruct(self, X, out=None):
        """``decode(encode(X))``: the decoder's mean at ``z = μ``; ``out`` as in :meth:`decode`."""
        self._check_fitted()
        X = self._B.xp.asarray(self._check_X(X, n_features=self.n_features_in_))
        out = self._checked_out(out, X, self.n_features_in_, "the reconstructions")
        return self._into(X, lambda c, _, dest: self._decode(self._mean(c), dest), self.n_features_in_, out)

    @consistent
    def sample(self, n):
        """``n`` new data points: the decoder's mean at ``z ~ N(0, I)``, shape ``(n, n_features_in_)``."""
        self._check_fitted()
        check_number("n", n, low=1, integer=True)
        step = self._next_sample_step()
        dt = np.dtype(self._fitted_structure["dtype"])
        z = rng.normal(self._key, rng.STREAM_SAMPLE, step, int(n), self._code_size(), dtype=dt)
        return self._into(self._B.xp.asarray(z), lambda c, _, dest: self._decode(c, dest), self.n_features_in_,
                          None)

    def _rec_rows(self, x, z):
        B, P = self._B, self._params
        h = network.forward(B, P, self._decoder[:-1], z)[-1]
        last = self._decoder[-1]
        return B.output_row_loss(h, P[last.weight], P[last.bias], x, self._fitted_structure["loss"])

    def _elbo_rows(self, X, step):
        """Per-row ELBO ``log p(x|z) − KL`` with one ``z`` drawn from the sample stream at ``step``."""
        const = 0.0 if self._fitted_structure["loss"] == "bce" else 0.5 * self.n_features_in_ * math.log(2 * math.pi)

        def rows(x, row0):
            _, mu, logvar = self._heads(x)
            z, _ = self._B.gaussian_latent(mu, logvar, 0.0, self._key, step, row0, stream=rng.STREAM_SAMPLE)
            return -(self._rec_rows(x, z) + const) - self._B.gaussian_kl_rows(mu, logvar)

        return self._chunked(X, rows)

    @consistent
    def elbo(self, X, n_samples=1):
        """Per-row evidence lower bound ``E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I))``, estimated with ``n_samples``
        draws of ``z``; shape ``(n_samples_X,)``. For ``loss="mse"`` the decoder is ``N(x̂, I)`` and the
        ``−½ d log 2π`` constant is included, so this is a true bound on ``log p(x)``. The draws are fixed by the
        seed and the row's position, so repeated calls give the same estimate."""
        self._check_fitted()
        check_number("n_samples", n_samples, low=1, integer=True)
        X = self._B.xp.asarray(self._check_X(X, n_features=self.n_features_in_))
        return self._finite_rows(lambda: self._elbo(X, int(n_samples)), "elbo")

    def _elbo(self, X, n_samples):
        # Draw s of row r sits at a fixed address (sample stream, step ELBO_STEP0 + s, row r): the estimate is
        # reproducible, so scores and validation losses compare like with like across calls and epochs.
        total = 0
        for s in range(n_samples):
            total = total + self._elbo_rows(X, ELBO_STEP0 + s)
        return total / n_samples

    @consistent
    def score_samples(self, X):
        """Per-row reconstruction error at ``z = μ`` (cross-entropy or ``½ Σ (x̂ − x)²``): an anomaly score,
        higher is worse."""
        self._check_fitted()
        X = self._B.xp.asarray(self._check_X(X, n_features=self.n_features_in_))
        return self._finite_rows(lambda: self._chunked(X, lambda x, _: self._rec_rows(x, self._mean(x))),
                                 "score_samples")

    def score(self, X, y=None):
        """Mean ELBO (higher is better)."""
        return float(np.mean(self.elbo(X)))

    def _extra_state(self):
        return {"sample_calls_": getattr(self, "_sample_calls_", 0)}

    def _restore_extra_state(self, state):
        self._sample_calls_ = base._state_int({"sample_calls_": 0, **state}, "sample_calls_", 0, base.MAX_UPDATES)
