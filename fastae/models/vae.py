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
    """Variational autoencoder ``x → h_1 … h_m → (μ, log σ²) → z → … → x̂`` (Kingma & Welling, 2014).

    A scikit-learn-style estimator with a Gaussian encoder ``q(z|x) = N(μ(x), diag σ²(x))`` and a Bernoulli or
    Gaussian decoder. Encoder: ``h_i = f(h_{i-1} W_iᵀ + b_i)`` with ``f = activation``, then two linear heads
    ``μ`` and ``log σ²`` (clamped to [-30, 20] for stability). ``z = μ + exp(½ log σ²) ε`` with ``ε ~ N(0, I)``
    from fastae's Philox stream (the reparameterisation trick). The decoder mirrors the hidden layers and ends in a
    sigmoid with cross-entropy (``loss="bce"``, a Bernoulli decoder) or a linear layer with ``½ Σ (x̂ − x)²``
    (``loss="mse"``, a Gaussian decoder with unit variance).

    Parameters
    ----------
    hidden : int or tuple of int, default=(400,)
        Widths of the encoder's hidden layers, input side first; a bare int means one layer, and ``()`` puts the
        heads ``μ`` and ``log σ²`` directly on the input. Every width a positive integer. The decoder mirrors
        them with weights of its own: ``latent → h_m → … → h_1 → n_features``.
    latent : int, default=20
        Dimension (``≥ 1``) of the latent code ``z``.
    activation : {"sigmoid", "tanh", "relu", "linear"}, default="relu"
        Nonlinearity ``f`` of the hidden layers of the encoder and of the decoder; the heads are linear and the
        output layer follows from ``loss``.
    loss : {"bce", "mse"}, default="bce"
        The decoder's likelihood, which also fixes its output layer. ``"bce"``: Bernoulli, sigmoid output
        ``x̂ = σ(a)`` and cross-entropy ``−Σ_i [x_i log x̂_i + (1 − x_i) log(1 − x̂_i)]``; every value of the data
        given to ``fit``, ``partial_fit``, ``encode``, ``reconstruct`` and the scores must then lie in [0, 1]
        (``ValueError`` otherwise). ``"mse"``: Gaussian with unit variance, linear output ``x̂ = a`` and
        ``½ Σ_i (x̂_i − x_i)²`` (:meth:`elbo` adds the constant ``−½ d log 2π``).
    beta : float, default=1.0
        Weight ``β ≥ 0`` of the KL term in the training objective; ``β = 1`` makes it the negative ELBO.
        :meth:`elbo`, :meth:`score` and the validation loss do not weight the KL term (``β = 1``).
    weight_decay : float, default=0.0
        Coefficient ``wd ≥ 0`` of the L2 penalty ``½ wd Σ W²`` over every weight matrix (not the biases), added to
        the training loss.
    optimizer : {"sgd", "momentum", "nesterov", "adam"}, default="adam"
        Update rule, as in ``torch.optim``: ``"sgd"`` ``p ← p − lr g``; ``"momentum"`` (heavy ball)
        ``v ← μ v + g``, ``p ← p − lr v``; ``"nesterov"`` the same ``v`` and ``p ← p − lr (g + μ v)``; ``"adam"``
        with ``β₁ = 0.9``, ``β₂ = 0.999``, ``ε = 1e-8`` and bias correction. Changing it (``set_params``) between
        ``partial_fit`` calls starts the new method with empty state.
    learning_rate : float, default=1e-3
        Step size ``lr > 0`` of the optimizer.
    momentum : float, default=0.9
        Momentum coefficient ``μ`` in [0, 1) of ``"momentum"`` and ``"nesterov"``; unused by ``"sgd"`` and
        ``"adam"``.
    batch_size : int, default=100
        Rows per minibatch update (``≥ 1``); the last batch of an epoch holds the remaining rows and may be
        smaller. Each batch's loss is averaged over its rows.
    epochs : int, default=10
        Passes (``≥ 0``) over the training data in ``fit``; fewer run when ``early_stopping`` stops it. 0 fits the
        initial weights without training. ``partial_fit`` makes one pass whatever ``epochs`` is.
    shuffle : bool, default=True
        Whether each epoch visits the rows in a new random order, a permutation drawn from the seeded shuffle
        stream at the epoch count ``n_epochs_``; ``False`` visits them in the order given.
    early_stopping : bool, default=False
        Whether ``fit`` stops once the validation loss has not improved for ``patience`` epochs in a row, and
        then puts back the weights of the epoch with the lowest validation loss (``t_``, ``n_epochs_``,
        ``history_`` and the optimizer state stay those of the last epoch run). An epoch improves when its
        validation loss is below the best so far minus ``tol``. The validation set is ``fit``'s ``validation_data``
        when given, else ``validation_fraction`` of ``X``, held out and not trained on. The validation loss is
        the negative mean of ``elbo(X_val, n_samples=1)`` (one draw of ``z`` per row at a fixed address, the same
        every epoch). ``partial_fit`` neither validates nor stops early.
    validation_fraction : float, default=0.1
        Fraction in (0, 1) of the rows of ``X`` held out as the validation set when ``early_stopping=True`` and
        ``fit`` gets no ``validation_data``: ``round(validation_fraction * n_samples)`` rows chosen by a seeded
        permutation; each side must keep at least one row (``ValueError`` otherwise). Unused in every other case.
    patience : int, default=5
        With ``early_stopping``: the number (``≥ 1``) of consecutive epochs without improvement after which
        ``fit`` stops.
    tol : float, default=1e-4
        With ``early_stopping``: the least decrease (``≥ 0``) of the validation loss that counts as an
        improvement, absolute, in the units of the validation loss.
    backend : str, default="auto"
        The engine that runs the model: a name listed by :func:`fastae.available_backends` (such as ``"numba"``,
        the compiled CPU kernels, or ``"numpy"``, the reference), or ``"auto"``, the first backend of the registry's
        preference order (``"numba"``, then ``"numpy"``) that can run ``dtype`` here. Resolved when ``fit`` (or the
        first ``partial_fit``) runs and recorded in ``backend_``; nothing falls back silently: an unknown backend,
        or one that cannot run ``dtype`` here, raises ``ValueError``, and one that does not import ``ImportError``.
        A later ``partial_fit`` refuses a ``backend`` that resolves to another one.
    dtype : {"float32", "float64"}, default="float32"
        Floating-point type of the weights and of every computation. Input is converted to it (float64 values too
        large for float32 raise ``ValueError``), and the arrays returned are in it.
    precision : {"float32", "bfloat16", "tf32"}, default="float32"
        Precision of the matrix products. ``"bfloat16"`` (float32 models only) rounds both operands of every
        product to bfloat16 (8 significant bits, round to nearest even) and sums in float32; weights, biases,
        activations and outputs stay float32, as under PyTorch's autocast. It runs on bfloat16 units (AMX,
        AVX512-BF16) through oneMKL where both are present and computes the same rounding more slowly elsewhere
        (``fastae.describe()`` says which). Training, inference and scores all use it; the bfloat16 copies of the
        weights are written by each training update. It may be switched on a fitted model with ``set_params`` and is
        saved with it. The contractive penalty has no bfloat16 form (``ValueError``). ``"tf32"`` (float32 models on
        ``backend="cupy"`` only; ``ValueError`` on the CPU backends) lets the GPU's tensor cores round the operands
        of the float32 products to TF32 (10 explicit mantissa bits) and sum in float32.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, default=None
        Seed of all of the model's randomness (initial weights, shuffling, the validation split, the ``ε`` of
        training, and the draws of :meth:`sample`, ``encode(sample=True)`` and :meth:`elbo`), drawn through
        fastae's counter-based Philox generator. An int in [0, 2**64) is the seed itself; a ``Generator`` or
        ``RandomState`` gives one draw in [0, 2**63) (advancing it) each time the model is initialised; ``None``
        takes fresh entropy from the OS each time. The seed used is kept in ``seed_``: ``random_state=seed_``
        repeats the fit.
    verbose : bool, default=False
        Whether ``fit`` shows a tqdm progress bar over the epochs with the latest loss and validation loss.

    Attributes
    ----------
    n_features_in_ : int
        Number of features (columns) of the data the model was fitted on.
    feature_names_in_ : ndarray of str of shape (n_features_in_,)
        Column names of ``X`` in ``fit`` (object dtype); set only when ``X`` was a data frame whose column names
        are all strings. Later calls must then pass the same columns in the same order.
    backend_ : str
        Name of the backend that runs the model (what ``backend``, ``"auto"`` included, resolved to).
    seed_ : int
        The 64-bit seed taken from ``random_state`` when the model was initialised.
    t_ : int
        Number of optimizer updates (minibatches) of the fit so far, ``partial_fit`` included.
    n_epochs_ : int
        Number of epochs of training so far: the epochs ``fit`` ran, plus one per ``partial_fit``.
    history_ : dict of str to list
        The per-epoch record of training; a key appears once something is recorded under it (after ``epochs=0``
        the dict is empty):

        * ``'loss'``: for each epoch of ``fit`` and each ``partial_fit``, the training loss of its batches
          averaged over its rows: reconstruction + ``β KL`` (+ weight decay), each batch with its own draw of ``ε``;
        * ``'val_loss'``: for each epoch of ``fit`` with ``validation_data`` or ``early_stopping``, the negative
          mean ELBO of the validation set after that epoch (see ``early_stopping``; for ``loss="mse"`` it includes
          ``½ d log 2π``, which ``'loss'`` does not).

    See Also
    --------
    Autoencoder : The dense (deterministic) autoencoder.
    fastae.load : Read a model written by :meth:`save`.

    Notes
    -----
    The training objective per example is reconstruction + ``β KL(q(z|x) ‖ N(0, I))`` with
    ``KL = −½ Σ_j (1 + log σ²_j − μ_j² − σ²_j)``, averaged over the batch; ``β = 1`` is the negative ELBO.

    Weights start as ``W ~ U(−a, a)`` with ``a = √(6 / (n_in + n_out))`` (Glorot), biases at zero. Training stops
    with :class:`~fastae.DivergenceError` when a loss or an update is not finite or a batch loss exceeds 10 times
    the first batch loss of the fit (see :meth:`fit`).

    Examples
    --------
    >>> import numpy as np
    >>> import fastae
    >>> X = np.random.default_rng(0).uniform(size=(100, 8))
    >>> vae = fastae.VAE(hidden=(6,), latent=2, epochs=2, random_state=0).fit(X)
    >>> vae.encode(X).shape
    (100, 2)
    >>> vae.sample(5).shape
    (5, 8)
    >>> vae.elbo(X).shape
    (100,)
    """

    _kind = "VAE"
    _STRUCTURAL = ("hidden", "latent", "activation", "loss", "dtype")
    _CODES = ("Z", "latent units")

    def __init__(
        self,
        hidden=(400,),
        latent=20,
        activation="relu",
        loss="bce",
        beta=1.0,
        weight_decay=0.0,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        batch_size=100,
        epochs=10,
        shuffle=True,
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        tol=1e-4,
        backend="auto",
        dtype="float32",
        precision="float32",
        random_state=None,
        verbose=False,
    ):
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
        self.precision = precision
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
        out_act = act.output_activation(self._fitted_structure["loss"])
        self._decoder = [
            Dense(f"decoder.{j}.weight", f"decoder.{j}.bias", out_act if j == m else self.activation)
            for j in range(m + 1)
        ]

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
    def _heads(self, x, B=None):
        B, P = (self._ops() if B is None else B), self._params
        hs = network.forward(B, P, self._encoder, x)
        h = hs[-1]
        mu = B.dense_forward(h, P[self._mu.weight], P[self._mu.bias], "linear")
        logvar = B.dense_forward(h, P[self._logvar.weight], P[self._logvar.bias], "linear")
        return hs, mu, logvar

    def _mean(self, x, out=None, w16=None):
        """``μ`` alone (into ``out`` if given): what encoding, reconstructing and scoring at ``z = μ`` need (the
        log-variance head would be a product thrown away)."""
        return network.forward(self._forward_ops(w16), self._params, [*self._encoder, self._mu], x, out, w16)[-1]

    def _loss_and_grads(self, x, step, row0=0, x16=None):
        """Reconstruction + β KL on batch ``x`` with ``ε`` drawn at update ``step``, and the gradient of every
        parameter."""
        B, P = self._ops(), self._params
        if x16 is not None:  # the batch's bfloat16 patterns, made by the input check
            B.known(x, x16)
        hs, mu, logvar = self._heads(x, B)
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
        """The mean ``μ`` of ``q(z|x)`` for each row of ``X``, or with ``sample=True`` a draw of ``z``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`fit` (in [0, 1] for ``loss="bce"``; a data frame's column names
            must be those of the fit).
        sample : bool, default=False
            Whether to return a draw ``z = μ + σ ε``, ``ε ~ N(0, I)``, instead of ``μ``. Each call with ``sample=True``
            (as each :meth:`sample`) draws at the next step of the seeded sample stream: successive calls differ, and
            their sequence is reproducible from ``random_state`` (the counter is saved with the model).
        out : ndarray of shape (n_samples, latent) or None, default=None
            Array that receives the codes and is returned, instead of a new array: in the model's dtype, C-contiguous,
            writeable and sharing no memory with ``X`` or the weights (an ``np.memmap`` works). It is checked before
            anything is written (a draw is computed per chunk and copied in).

        Returns
        -------
        Z : ndarray of shape (n_samples, latent)
            ``μ`` (or the draws), in the model's dtype; ``out`` itself when given.
        """
        self._check_fitted()
        if not isinstance(sample, (bool, np.bool_)):
            raise TypeError(f"sample must be True or False, got {sample!r}")
        X, w16 = self._inference_input(X)
        if not sample and out is None and X.shape[0] <= self._chunk(w16):  # one call: as Autoencoder.encode
            return self._mean(X, None, w16)
        out = self._checked_out(out, X, self._code_size(), "the codes")
        step = self._next_sample_step() if sample else None

        def code(x, row0, dest):
            if step is None:
                return self._mean(x, dest, w16)
            _, mu, logvar = self._heads(x)
            z, _ = self._B.gaussian_latent(mu, logvar, 0.0, self._key, step, row0, stream=rng.STREAM_SAMPLE)
            dest[...] = z
            return dest

        return self._into(X, code, self._code_size(), out, self._chunk(w16))

    @consistent
    def reconstruct(self, X, out=None):
        """The decoder's mean at ``z = μ``: ``decode(encode(X))``, with no draw.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`encode`.
        out : ndarray of shape (n_samples, n_features_in_) or None, default=None
            Array that receives the reconstructions and is returned, as ``out`` of :meth:`decode`.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features_in_)
            The decoder's mean (sigmoid outputs for ``loss="bce"``, linear ones for ``loss="mse"``) in the model's
            dtype; ``out`` itself when given.
        """
        self._check_fitted()
        X, w16 = self._inference_input(X)
        out = self._checked_out(out, X, self.n_features_in_, "the reconstructions")
        return self._into(
            X,
            lambda c, _, dest: self._decode(self._mean(c, None, w16), dest, w16),
            self.n_features_in_,
            out,
            self._chunk(w16),
        )

    @consistent
    def sample(self, n):
        """``n`` new data points: the decoder's mean at ``z ~ N(0, I)``.

        Each call draws at the next step of the seeded sample stream (shared with ``encode(sample=True)``):
        successive calls differ, and their sequence is reproducible from ``random_state`` (the counter is saved with
        the model).

        Parameters
        ----------
        n : int
            Number of points to generate (``≥ 1``).

        Returns
        -------
        X_new : ndarray of shape (n, n_features_in_)
            The generated points, in the model's dtype.
        """
        self._check_fitted()
        check_number("n", n, low=1, integer=True)
        step = self._next_sample_step()
        dt = np.dtype(self._fitted_structure["dtype"])
        z = rng.normal(self._key, rng.STREAM_SAMPLE, step, int(n), self._code_size(), dtype=dt)
        w16 = self._w16()
        return self._into(
            self._B.xp.asarray(z),
            lambda c, _, dest: self._decode(c, dest, w16),
            self.n_features_in_,
            None,
            self._chunk(w16),
        )

    def _rec_rows(self, x, z, B=None):
        B, P = (self._ops() if B is None else B), self._params
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
        """Per-row evidence lower bound ``E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I))``.

        Estimated with ``n_samples`` draws of ``z ~ q(z|x)``. For ``loss="mse"`` the decoder is ``N(x̂, I)`` and the
        ``−½ d log 2π`` constant is included, so this is a true bound on ``log p(x)``. The draws are fixed by the seed
        and the row's position, so repeated calls give the same estimate (and do not advance the counter of
        :meth:`sample`).

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features_in_)
            Data, checked and converted as in :meth:`encode`.
        n_samples : int, default=1
            Number of draws of ``z`` per row (``≥ 1``) whose bounds are averaged.

        Returns
        -------
        elbo : ndarray of shape (n_samples_X,)
            The estimate for each row (higher is better), in the model's dtype. A row whose value overflows the dtype
            raises ``ValueError`` instead of returning inf.
        """
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
        """Per-row reconstruction error at ``z = μ``, an anomaly score (higher is worse).

        The error of row ``x`` is the cross-entropy (``loss="bce"``) or ``½ Σ_i (x̂_i − x_i)²`` (``loss="mse"``) of
        ``x̂ = reconstruct(x)``; no KL term, no draw.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`encode`.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The error of each row, in the model's dtype. A row whose error overflows the dtype raises ``ValueError``
            instead of returning inf.
        """
        self._check_fitted()
        X, w16 = self._B.xp.asarray(self._check_X(X, n_features=self.n_features_in_)), self._w16()
        return self._finite_rows(
            lambda: self._chunked(X, lambda x, _: self._rec_rows(x, self._mean(x, None, w16))), "score_samples"
        )

    def score(self, X, y=None):
        """Mean ELBO (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`encode`.
        y : None
            Ignored; accepted for scikit-learn.

        Returns
        -------
        score : float
            ``mean(elbo(X))``, with one draw of ``z`` per row.
        """
        return float(np.mean(self.elbo(X)))

    def _extra_state(self):
        return {"sample_calls_": getattr(self, "_sample_calls_", 0)}

    def _restore_extra_state(self, state):
        self._sample_calls_ = base._state_int({"sample_calls_": 0, **state}, "sample_calls_", 0, base.MAX_UPDATES)
