"""The dense autoencoder: plain, deep, tied or untied, denoising, sparse and contractive."""

from __future__ import annotations

import numpy as np

from .. import activations as act
from .. import rng, training
from ..backends import contract
from ..concurrency import consistent, publishing
from ..errors import DivergenceError
from ..validation import check_choice, check_layer_sizes, check_number
from . import network
from .base import BaseModel
from .network import Dense


class Autoencoder(BaseModel):
    """Dense autoencoder ``x → h_1 → … → h_k (code) → … → x̂`` with a mirrored decoder.

    A scikit-learn-style estimator: plain, deep (with optional greedy layer-wise pretraining), tied or untied,
    denoising, sparse and contractive, all combinable. Encoder layers compute ``h_i = f(h_{i-1} W_iᵀ + b_i)`` with
    ``f = activation`` (``code_activation`` for the code layer; ``None`` means the same as ``activation``). The
    decoder mirrors them; tied, decoder layer ``i`` uses ``W_iᵀ`` (``h W_i + c_i``), untied it has its own weights.
    The output is ``x̂ = σ(a)`` with cross-entropy (``loss="bce"``, data in [0, 1]) or ``x̂ = a`` with
    ``½ Σ (x̂ − x)²`` (``loss="mse"``); both are summed over features and averaged over the batch, so the output
    gradient is ``(x̂ − x) / B``.

    Parameters
    ----------
    hidden : int or tuple of int, default=(256,)
        Widths of the encoder's layers, input side first; the last, ``hidden[-1]``, is the code size. A bare int
        means one layer. At least one layer, every width a positive integer. The decoder mirrors them:
        ``hidden=(h_1, …, h_k)`` gives ``n_features → h_1 → … → h_k → … → h_1 → n_features``.
    activation : {"sigmoid", "tanh", "relu", "linear"}, default="sigmoid"
        Nonlinearity ``f`` of the encoder's layers (the code layer's too unless ``code_activation`` is set) and of
        every decoder layer but the output one, whose nonlinearity follows from ``loss``.
    code_activation : {"sigmoid", "tanh", "relu", "linear"} or None, default=None
        Nonlinearity of the code layer ``h_k``; ``None`` means ``activation``.
    loss : {"bce", "mse"}, default="bce"
        Reconstruction loss, which also fixes the output layer. ``"bce"``: sigmoid output ``x̂ = σ(a)`` and
        cross-entropy ``−Σ_i [x_i log x̂_i + (1 − x_i) log(1 − x̂_i)]`` (computed from the logits ``a``); every value
        of the data given to ``fit``, ``partial_fit``, ``encode``, ``reconstruct`` and the scores must then lie in
        [0, 1] (``ValueError`` otherwise). ``"mse"``: linear output ``x̂ = a`` and ``½ Σ_i (x̂_i − x_i)²``.
    tied : bool, default=True
        Whether each decoder layer uses the transposed weights of the encoder layer it mirrors (only its bias is
        its own) instead of a weight matrix of its own.
    noise : None or tuple, default=None
        Input corruption during training (a denoising autoencoder), a tuple or list: ``("mask", p)`` with
        ``0 ≤ p < 1`` zeroes each input value independently with probability ``p`` (the kept values are not
        rescaled); ``("gaussian", sigma)`` with ``sigma ≥ 0`` adds ``sigma ε``, ``ε ~ N(0, 1)`` per value. The loss
        compares the reconstruction of the corrupted input with the clean input. Applied in ``fit``, ``partial_fit``
        and layer-wise pretraining; never in ``encode``, ``reconstruct``, the scores or the validation loss.
        ``None``: no corruption.
    sparsity : None or tuple, default=None
        Penalty on the code ``h_k`` added to the training loss, a tuple or list: ``("l1", lam)`` with ``lam ≥ 0``
        adds ``lam (1/B) Σ_b Σ_j |h_bj|``; ``("kl", rho, beta)`` with ``0 < rho < 1`` and ``beta ≥ 0`` adds
        ``beta Σ_j KL(rho ‖ ρ̂_j)`` on the batch-mean code activations ``ρ̂_j = (1/B) Σ_b h_bj``, with
        ``KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂))``; it needs a sigmoid code layer (``ValueError``
        otherwise). Not applied in pretraining. ``None``: no sparsity penalty.
    contractive : float, default=0.0
        Weight ``λ ≥ 0`` of the contractive penalty ``λ (1/B) Σ_b ‖∂h_b/∂x_b‖²_F``, the squared Frobenius norm of
        the encoder's Jacobian. ``λ > 0`` needs a single-layer encoder (``len(hidden) == 1``) whose code activation
        is ``"sigmoid"`` or ``"tanh"`` (``ValueError`` otherwise). Not applied in pretraining; 0 turns it off.
    weight_decay : float, default=0.0
        Coefficient ``wd ≥ 0`` of the L2 penalty ``½ wd Σ W²`` over every weight matrix (a tied one counted once),
        not the biases, added to the training loss (in pretraining too).
    pretrain : None or "layerwise", default=None
        ``"layerwise"``: ``fit`` first pretrains the encoder greedily, layer by layer. Layer ``i`` is trained as a
        shallow tied autoencoder with its own activation for ``pretrain_epochs`` epochs on the codes of the layers
        below (the data, for the first layer), with ``loss`` for the first layer and above it cross-entropy where
        the layer below is sigmoid (codes in (0, 1)) and squared error otherwise; it uses this model's ``noise``,
        ``weight_decay``, ``optimizer``, ``learning_rate``, ``momentum``, ``batch_size``, ``shuffle`` and backend,
        with no early stopping. Its weights and biases start encoder layer ``i`` and the decoder layer mirroring it
        (an untied decoder layer gets the transposed weights). Then the whole stack is fine-tuned for ``epochs``
        epochs. ``partial_fit`` and a ``fit`` that resumes from a checkpoint do not pretrain. ``None``: no
        pretraining.
    pretrain_epochs : int or None, default=None
        Epochs (``≥ 0``) of pretraining for each layer; ``None`` means ``epochs``. Used only with
        ``pretrain="layerwise"``.
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
    batch_size : int, default=256
        Rows per minibatch update (``≥ 1``); the last batch of an epoch holds the remaining rows and may be
        smaller. Each batch's loss is averaged over its rows.
    epochs : int, default=10
        Passes (``≥ 0``) over the training data in ``fit``; fewer run when ``early_stopping`` stops it. 0 fits the
        initial weights without training (pretraining, if asked for, still runs for ``pretrain_epochs`` epochs).
        ``partial_fit`` makes one pass whatever ``epochs`` is.
    shuffle : bool, default=True
        Whether each epoch visits the rows in a new random order, a permutation drawn from the seeded shuffle
        stream at the epoch count ``n_epochs_``; ``False`` visits them in the order given.
    early_stopping : bool, default=False
        Whether ``fit`` stops once the validation loss has not improved for ``patience`` epochs in a row, and
        then puts back the weights of the epoch with the lowest validation loss (``t_``, ``n_epochs_``,
        ``history_`` and the optimizer state stay those of the last epoch run). An epoch improves when its
        validation loss is below the best so far minus ``tol``. The validation set is ``fit``'s ``validation_data``
        when given, else ``validation_fraction`` of ``X``, held out and not trained on. The validation loss is
        the mean of :meth:`score_samples` over the validation set (no noise, no penalty). ``partial_fit`` neither
        validates nor stops early.
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
        Seed of all of the model's randomness (initial weights, shuffling, noise, the validation split), drawn
        through fastae's counter-based Philox generator. An int in [0, 2**64) is the seed itself; a ``Generator``
        or ``RandomState`` gives one draw in [0, 2**63) (advancing it) each time the model is initialised; ``None``
        takes fresh entropy from the OS each time. The seed used is kept in ``seed_``: ``random_state=seed_``
        repeats the fit.
    verbose : bool, default=False
        Whether ``fit`` shows a tqdm progress bar over the epochs (one per pretrained layer too) with the latest
        loss and validation loss.

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
        Number of optimizer updates (minibatches) of the fit so far, ``partial_fit`` included and pretraining
        excluded.
    n_epochs_ : int
        Number of epochs of training so far: the epochs ``fit`` ran, plus one per ``partial_fit`` (pretraining
        excluded).
    history_ : dict of str to list
        The per-epoch record of training; a key appears once something is recorded under it (after ``epochs=0``
        the dict is empty):

        * ``'loss'``: for each epoch of ``fit`` and each ``partial_fit``, the training loss of its batches
          averaged over its rows: the objective minimised, i.e. the reconstruction error of the corrupted input
          plus the sparsity, contractive and weight-decay penalties;
        * ``'val_loss'``: for each epoch of ``fit`` with ``validation_data`` or ``early_stopping``, the mean
          reconstruction error on the validation set after that epoch (no noise, no penalty);
        * ``'pretrain_loss'``: with ``pretrain="layerwise"``, one list per encoder layer of its pretraining loss
          per epoch.

    See Also
    --------
    VAE : The variational autoencoder.
    fastae.load : Read a model written by :meth:`save`.

    Notes
    -----
    The training objective of a batch ``X_B`` of ``B`` rows is
    ``(1/B) Σ_b ℓ(x̂(x̃_b), x_b) + sparsity + contractive + ½ wd Σ W²`` where ``x̃`` is the corrupted input
    (``x`` without noise) and ``ℓ`` the cross-entropy or ``½ ‖x̂ − x‖²``.

    Variants (all combinable):

    * ``noise=("mask", p)`` zeroes each input with probability ``p``; ``noise=("gaussian", σ)`` adds ``σ ε``.
      The loss compares the reconstruction of the corrupted input with the clean input.
    * ``sparsity=("l1", λ)`` adds ``λ mean_b Σ_j |h_bj|`` on the code; ``sparsity=("kl", ρ, β)`` adds
      ``β Σ_j KL(ρ ‖ ρ̂_j)`` on the mean code activations ``ρ̂`` (needs a sigmoid code layer).
    * ``contractive=λ`` adds ``λ mean_b ‖∂h/∂x‖²_F`` (single-layer sigmoid or tanh encoder).
    * ``weight_decay=wd`` adds ``½ wd Σ W²`` over the weights (not the biases).
    * ``pretrain="layerwise"``: greedy pretraining, each layer a shallow tied autoencoder trained on the codes of
      the layer below (cross-entropy where those codes are sigmoid outputs in (0, 1), squared error otherwise;
      with the same noise), for ``pretrain_epochs`` epochs (default ``epochs``); then the whole stack is
      fine-tuned for ``epochs`` epochs.

    Optimizers: ``"sgd"``, ``"momentum"``, ``"nesterov"`` (``momentum`` is the coefficient) and ``"adam"``
    (β = 0.9, 0.999, ε = 1e-8), with the update rules of ``torch.optim``.

    Weights start as ``W ~ U(−a, a)`` with ``a = √(6 / (n_in + n_out))`` (Glorot), biases at zero.

    Training stops with :class:`~fastae.DivergenceError` when a loss or an update is not finite or a batch loss
    exceeds 10 times the first batch loss of the fit (see :meth:`fit`).

    Examples
    --------
    >>> import numpy as np
    >>> import fastae
    >>> X = np.random.default_rng(0).uniform(size=(100, 8))
    >>> ae = fastae.Autoencoder(hidden=(3,), epochs=2, random_state=0).fit(X)
    >>> ae.encode(X).shape
    (100, 3)
    >>> ae.reconstruct(X).dtype
    dtype('float32')
    """

    _kind = "Autoencoder"
    _STRUCTURAL = ("hidden", "activation", "code_activation", "loss", "tied", "dtype")

    def __init__(
        self,
        hidden=(256,),
        activation="sigmoid",
        code_activation=None,
        loss="bce",
        tied=True,
        noise=None,
        sparsity=None,
        contractive=0.0,
        weight_decay=0.0,
        pretrain=None,
        pretrain_epochs=None,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        batch_size=256,
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
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.tied = tied
        self.noise = noise
        self.sparsity = sparsity
        self.contractive = contractive
        self.weight_decay = weight_decay
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
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

    # --- hyperparameters ------------------------------------------------------------------------------------
    def _validate_model_params(self):
        """Check the model's own hyperparameters; returns the parsed ones (stored only once all checks pass)."""
        hidden = check_layer_sizes("hidden", self.hidden, allow_empty=False)
        check_choice("activation", self.activation, act.ACTIVATIONS)
        if self.code_activation is not None:
            check_choice("code_activation", self.code_activation, act.ACTIVATIONS)
        if not isinstance(self.tied, (bool, np.bool_)):
            raise TypeError(f"tied must be True or False, got {self.tied!r}")
        noise = _parse_noise(self.noise)
        sparsity = _parse_sparsity(self.sparsity)
        check_number("contractive", self.contractive, low=0)
        code_act = self._code_activation()
        if self.contractive > 0:
            if len(hidden) != 1 or code_act not in act.CONTRACTIVE_ACTIVATIONS:
                raise ValueError(
                    f"contractive > 0 needs a single-layer encoder with activation in "
                    f"{list(act.CONTRACTIVE_ACTIVATIONS)}; got hidden={hidden} with code "
                    f"activation {code_act!r}"
                )
            if self.precision == "bfloat16":
                raise ValueError(
                    "the contractive penalty has no bfloat16 form: use precision='float32' with contractive > 0"
                )
        if sparsity and sparsity[0] == "kl" and code_act != "sigmoid":
            raise ValueError(
                f"sparsity=('kl', rho, beta) needs code activations in (0, 1), i.e. a sigmoid code "
                f"layer; got code activation {code_act!r}. Use ('l1', lam) for other activations"
            )
        if self.pretrain not in (None, "layerwise"):
            raise ValueError(f"pretrain must be None or 'layerwise', got {self.pretrain!r}")
        if self.pretrain_epochs is not None:
            check_number("pretrain_epochs", self.pretrain_epochs, low=0, integer=True)
        return {"_hidden": hidden, "_noise": noise, "_sparsity": sparsity}

    def _code_activation(self):
        return self.activation if self.code_activation is None else self.code_activation

    # --- structure ------------------------------------------------------------------------------------------
    def _build(self):
        """Lay out the encoder and decoder layers for ``n_features_in_`` inputs."""
        dims = (self.n_features_in_,) + self._hidden
        k = len(self._hidden)
        self._dims = dims
        self._encoder = [
            Dense(
                f"encoder.{i}.weight", f"encoder.{i}.bias", self._code_activation() if i == k - 1 else self.activation
            )
            for i in range(k)
        ]
        out_act = act.output_activation(self._fitted_structure["loss"])
        self._decoder = []
        for j in range(k):
            src = k - 1 - j  # decoder layer j inverts encoder layer k-1-j
            weight = f"encoder.{src}.weight" if self._fitted_structure["tied"] else f"decoder.{j}.weight"
            self._decoder.append(
                Dense(
                    weight,
                    f"decoder.{j}.bias",
                    out_act if j == k - 1 else self.activation,
                    transpose=self._fitted_structure["tied"],
                )
            )

    def _param_shapes(self):
        dims, k = self._dims, len(self._hidden)
        shapes = {}
        for i in range(k):
            shapes[f"encoder.{i}.weight"] = (dims[i + 1], dims[i])
            shapes[f"encoder.{i}.bias"] = (dims[i + 1],)
        for j in range(k):
            src = k - 1 - j
            if not self._fitted_structure["tied"]:
                shapes[f"decoder.{j}.weight"] = (dims[src], dims[src + 1])
            shapes[f"decoder.{j}.bias"] = (dims[src],)
        return shapes

    def _code_size(self):
        return self._hidden[-1]

    # --- objective ------------------------------------------------------------------------------------------
    def _loss_and_grads(self, x, step, row0=0, x16=None):
        """The training objective on batch ``x`` at update ``step`` and its gradient for every parameter."""
        B, P = self._ops(), self._params
        if x16 is not None:  # the batch's bfloat16 patterns, made by the input check
            B.known(x, x16)
        x_in = x
        if self._noise is not None:
            kind, level = self._noise
            noise = B.mask_noise if kind == "mask" else B.gaussian_noise
            x_in = noise(x, level, self._key, step, row0)
        enc_hs = network.forward(B, P, self._encoder, x_in)
        code = enc_hs[-1]
        dec_hs = network.forward(B, P, self._decoder[:-1], code)
        last = self._decoder[-1]
        loss, delta = B.output_loss_grad(
            dec_hs[-1], P[last.weight], P[last.bias], x, self._fitted_structure["loss"], last.transpose
        )
        grads = {}
        dcode = network.backward(B, P, self._decoder, dec_hs, delta, grads, need_dx=True)
        if self._sparsity is not None:
            if self._sparsity[0] == "l1":
                value, g = B.l1_penalty(code, self._sparsity[1])
            else:
                value, g = B.kl_sparsity(code, self._sparsity[1], self._sparsity[2])
            loss = loss + value
            dcode = dcode + g
        delta = B.activation_backward(dcode, code, self._encoder[-1].activation)
        if self.contractive > 0:
            W0 = P["encoder.0.weight"]
            value, dW_direct, dz = B.contractive_penalty(code, W0, self._encoder[0].activation, self.contractive)
            loss = loss + value
            delta = delta + dz
        network.backward(B, P, self._encoder, enc_hs, delta, grads, need_dx=False)
        if self.contractive > 0:
            grads["encoder.0.weight"] += dW_direct
        if self.weight_decay > 0:
            for name in P:
                if name.endswith(".weight"):
                    loss = loss + B.weight_decay(P[name], grads[name], self.weight_decay)
        return loss, grads

    def _fused_stepper(self):
        """For a one-hidden-layer model without penalties on a backend with the ``fused_ae1_step`` capability: a
        callable ``(x, step, t)`` that runs update ``t`` in one backend call and returns ``(loss, None)`` after
        committing a finite update, ``(loss, name)`` naming the first parameter whose update was not finite (nothing
        committed), or ``None`` for a batch too large for it (the caller then runs the op-by-op path). ``None``
        instead of a callable when the model or backend has no fused step. Built once per epoch: the settings it
        binds are fixed for an epoch."""
        B = self._B
        if (
            not contract.supports(B, contract.FUSED_AE1_STEP)
            or self.precision != "float32"  # its products are float32
            or len(self._hidden) != 1
            or self._sparsity is not None
            or self.contractive > 0
            or self.weight_decay > 0
        ):
            return None
        opt, P, k = self._optimizer, self._params, self._hidden[0]
        # Built again only when what it binds changes: partial_fit calls this once per call
        binds = (opt.name, opt.lr, opt.momentum, self._noise)
        cached = self.__dict__.get("_fused_cache")
        if cached is not None and cached[0] is P and cached[1] is opt and cached[2] == binds:
            return cached[3]
        tied = self._fitted_structure["tied"]
        names = _FUSED_TIED if tied else _FUSED_UNTIED
        run = B.ae1_stepper(
            tied,
            self._encoder[0].activation,
            self._fitted_structure["loss"],
            opt.name,
            opt.lr,
            opt.momentum,
            training.ADAM_BETA1,
            training.ADAM_BETA2,
            training.ADAM_EPS,
        )
        noise, key = None, self._key
        if self._noise is not None:
            kind, level = self._noise
            op = B.mask_noise if kind == "mask" else B.gaussian_noise
            noise = lambda x, step: op(x, level, key, step)  # noqa: E731

        spaces = {}  # workspace per batch shape (the last batch of an epoch may be shorter)

        def fused(x, step, t, accept):
            shape = x.shape
            ws = spaces.get(shape)
            if ws is None:
                if not B.fused_ae1_fits(shape[0], shape[1], k):
                    return None
                ws = spaces[shape] = B.xp.empty(B.ae1_workspace_size(shape[0], shape[1], k), dtype=x.dtype)
            x_in = x if noise is None else noise(x, step)
            ps, outs, first, second = opt.buffers(P, names)
            loss, status = run(x, x_in, ps, outs, first, second, ws, t)
            if status == 0 and accept(loss):
                opt.commit(P, names)
            return loss, (_FUSED_UNTIED[status - 1] if status > 0 else None)

        self._fused_cache = (P, opt, binds, fused)
        return fused

    def _validation_loss(self, X):
        return float(np.mean(self._row_loss(X)))

    # --- pretraining ----------------------------------------------------------------------------------------
    def _pretrain(self, X):
        if self.pretrain != "layerwise":
            return
        epochs = self.epochs if self.pretrain_epochs is None else self.pretrain_epochs
        below = X
        losses = []
        for i, L in enumerate(self._encoder):
            # Layer 0 reconstructs the data with the model's loss; higher layers reconstruct codes, which are
            # in (0, 1) only below a sigmoid layer.
            if i == 0:
                loss = self._fitted_structure["loss"]
            else:
                loss = "bce" if self._encoder[i - 1].activation == "sigmoid" else "mse"
            seed = rng.random_bits(self._key, rng.STREAM_INIT, 0x80000000 + i, 1, 2)[0]
            layer = Autoencoder(
                hidden=(self._hidden[i],),
                activation=L.activation,
                loss=loss,
                tied=True,
                noise=self.noise,
                weight_decay=self.weight_decay,
                optimizer=self.optimizer,
                learning_rate=self.learning_rate,
                momentum=self.momentum,
                batch_size=self.batch_size,
                epochs=epochs,
                shuffle=self.shuffle,
                backend=self.backend_,
                dtype=self._fitted_structure["dtype"],
                precision=self.precision,
                random_state=int(seed[0]) | (int(seed[1]) << 32),
                verbose=self.verbose,
            )
            layer._setup(below.shape[1])
            try:
                training.fit_loop(layer, below, None, epochs, layer.history_, desc=f"pretrain layer {i + 1}")
            except DivergenceError as exc:
                raise DivergenceError(
                    f"layer-wise pretraining of layer {i + 1} of {len(self._encoder)} diverged: {exc}"
                ) from exc
            losses.append(layer.history_.get("loss", []))
            W = layer._params["encoder.0.weight"]
            j = len(self._encoder) - 1 - i
            with publishing(self):
                self._params[L.weight] = W.copy()
                self._params[L.bias] = layer._params["encoder.0.bias"].copy()
                self._params[f"decoder.{j}.bias"] = layer._params["decoder.0.bias"].copy()
                if not self._fitted_structure["tied"]:
                    self._params[f"decoder.{j}.weight"] = self._B.xp.ascontiguousarray(W.T)
            if i + 1 < len(self._encoder):  # the next layer's data, in the model's precision
                below = self._ops().dense_forward(below, self._params[L.weight], self._params[L.bias], L.activation)
        self.history_["pretrain_loss"] = losses

    # --- inference ------------------------------------------------------------------------------------------
    @consistent
    def encode(self, X, out=None):
        """The code ``h_k`` of each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`fit` (in [0, 1] for ``loss="bce"``; a data frame's column names
            must be those of the fit).
        out : ndarray of shape (n_samples, hidden[-1]) or None, default=None
            Array that receives the codes and is returned, instead of a new array: in the model's dtype, C-contiguous,
            writeable and sharing no memory with ``X`` or the weights (an ``np.memmap`` works). It is checked before
            anything is written.

        Returns
        -------
        H : ndarray of shape (n_samples, hidden[-1])
            The codes, in the model's dtype; ``out`` itself when given.
        """
        self._check_fitted()
        X, w16 = self._inference_input(X)
        if out is None and X.shape[0] <= self._chunk(w16):  # one call: a one-row encode has no time for more
            return self._encode(X, None, w16)
        out = self._checked_out(out, X, self._code_size(), "the codes")
        return self._into(X, lambda c, _, dest: self._encode(c, dest, w16), self._code_size(), out, self._chunk(w16))

    def _encode(self, x, out=None, w16=None):
        return network.forward(self._forward_ops(w16), self._params, self._encoder, x, out, w16)[-1]

    @consistent
    def reconstruct(self, X, out=None):
        """The reconstruction ``decode(encode(X))`` of each row of ``X``, without noise.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`encode`.
        out : ndarray of shape (n_samples, n_features_in_) or None, default=None
            Array that receives the reconstructions and is returned, as ``out`` of :meth:`decode`.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features_in_)
            ``x̂``: the sigmoid outputs for ``loss="bce"``, the linear ones for ``loss="mse"``, in the model's dtype;
            ``out`` itself when given.
        """
        self._check_fitted()
        X, w16 = self._inference_input(X)
        out = self._checked_out(out, X, self.n_features_in_, "the reconstructions")
        return self._into(
            X,
            lambda c, _, dest: self._decode(self._encode(c, None, w16), dest, w16),
            self.n_features_in_,
            out,
            self._chunk(w16),
        )

    def _row_loss(self, X):
        w16, P = self._w16(), self._params

        def rows(x, _):
            ops = self._ops(w16)  # one per chunk: with bf16 products it keeps that chunk's bf16 copies, no more
            h = network.forward(ops, P, [*self._encoder, *self._decoder[:-1]], x)[-1]
            last = self._decoder[-1]
            return ops.output_row_loss(
                h, P[last.weight], P[last.bias], x, self._fitted_structure["loss"], last.transpose
            )

        return self._chunked(self._B.xp.asarray(X), rows)

    @consistent
    def score_samples(self, X):
        """Per-row reconstruction error, an anomaly score (higher is worse).

        The error of row ``x`` is the cross-entropy ``−Σ_i [x_i log x̂_i + (1 − x_i) log(1 − x̂_i)]``
        (``loss="bce"``) or ``½ Σ_i (x̂_i − x_i)²`` (``loss="mse"``) of ``x̂ = reconstruct(x)``: no noise, no penalty.
        Higher means worse reconstructed, so it serves directly as an anomaly score (note: the opposite sign of
        scikit-learn's outlier detectors).

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
        X = self._check_X(X, n_features=self.n_features_in_)
        return self._finite_rows(lambda: self._row_loss(X), "score_samples")

    def score(self, X, y=None):
        """Minus the mean reconstruction error (higher is better, as scikit-learn expects).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`encode`.
        y : None
            Ignored; accepted for scikit-learn.

        Returns
        -------
        score : float
            ``−mean(score_samples(X))``.
        """
        return -float(np.mean(self.score_samples(X)))


# The parameters of a one-hidden-layer model in the order of the fused step's status codes (1-based).
_FUSED_UNTIED = ("encoder.0.weight", "encoder.0.bias", "decoder.0.weight", "decoder.0.bias")
_FUSED_TIED = ("encoder.0.weight", "encoder.0.bias", "decoder.0.bias")


def _parse_noise(noise):
    if noise is None:
        return None
    if not isinstance(noise, (tuple, list)) or len(noise) != 2 or noise[0] not in ("mask", "gaussian"):
        raise ValueError(f"noise must be None, ('mask', p) or ('gaussian', sigma), got {noise!r}")
    if noise[0] == "mask":
        check_number("noise probability p", noise[1], low=0, high=1, high_open=True)
    else:
        check_number("noise sigma", noise[1], low=0)
    return noise[0], float(noise[1])


def _parse_sparsity(sparsity):
    if sparsity is None:
        return None
    ok = isinstance(sparsity, (tuple, list)) and len(sparsity) >= 1
    if ok and sparsity[0] == "l1" and len(sparsity) == 2:
        check_number("sparsity lam", sparsity[1], low=0)
        return "l1", float(sparsity[1])
    if ok and sparsity[0] == "kl" and len(sparsity) == 3:
        check_number("sparsity rho", sparsity[1], low=0, high=1, low_open=True, high_open=True)
        check_number("sparsity beta", sparsity[2], low=0)
        return "kl", float(sparsity[1]), float(sparsity[2])
    raise ValueError(f"sparsity must be None, ('l1', lam) or ('kl', rho, beta), got {sparsity!r}")
