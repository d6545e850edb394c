"""What both estimators share: scikit-learn-style parameters, fitting, batching of inference and persistence."""

from __future__ import annotations

import inspect
import math
import operator
import os

import numpy as np

from .. import io, rng, training
from ..backends import contract, resolve_backend
from ..concurrency import consistent, publishing, updating
from ..errors import NotFittedError
from ..precision import PRECISIONS
from ..validation import FLOAT_DTYPES, check_array, check_choice, check_number, check_out
from . import network

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
LOSSES = ("bce", "mse")
# Rows per backend call at inference: large enough to keep BLAS busy, small enough to bound temporaries.
INFERENCE_CHUNK = 8192
# Rows per call with bfloat16 products: small enough that a layer's output is still in cache when its epilogue and
# the next product read it (docs/performance.md, *GEMM providers*).
BF16_CHUNK = 2048
# A training input above this size is not rounded whole by its check (its patterns would take half of it again in
# memory, which a memory-mapped input may not have): its batches are rounded one by one, with the same bits.
BF16_INPUT_MAX_BYTES = 1 << 30


class BaseModel:
    """Shared machinery; subclasses define the network (``_build``), its objective and its inference."""

    _kind = "BaseModel"
    _version = 0  # odd while an update is being published (fastae/concurrency.py)
    _loss_ref_ = None  # the first batch loss of a fit: the divergence guard's reference (fastae/training.py)

    # --- scikit-learn parameter protocol ------------------------------------------------------------------------
    @classmethod
    def _get_param_names(cls):
        names = cls.__dict__.get("_param_names")
        if names is None:  # once per class: inspecting a signature costs more than a small training step
            sig = inspect.signature(cls.__init__)
            names = tuple(sorted(p.name for p in sig.parameters.values() if p.name != "self"))
            cls._param_names = names
        return list(names)

    def get_params(self, deep=True):
        """The constructor parameters, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool, default=True
            Accepted for scikit-learn; without nested estimators it changes nothing.

        Returns
        -------
        params : dict of str to object
            Every constructor parameter's name and current value (set by the constructor or :meth:`set_params`).
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set constructor parameters; they are validated when they are next used.

        On a fitted model the parameters that fix what the weights mean (``_STRUCTURAL``: the layer sizes, the
        activations, the loss, ``tied``, ``latent``, ``dtype``) take effect only at the next ``fit``: until then
        every method, ``save`` included, uses the values the model was fitted with, and ``partial_fit`` refuses
        to continue with different ones. The others (the learning rate, the optimizer, the batch size, the
        penalties and the noise, ``epochs``, ``verbose``, ...) take effect at once, for the next ``partial_fit``
        or ``fit``.

        Parameters
        ----------
        **params : dict
            Constructor parameters by name, with their new values; a name that is not a constructor parameter raises
            ``ValueError`` (and nothing after it is set).

        Returns
        -------
        self : Autoencoder or VAE
            This model.
        """
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; valid parameters are {valid}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        changed = []
        for name, p in sig.parameters.items():
            if name == "self":
                continue
            value = getattr(self, name)
            if p.default is inspect.Parameter.empty or not _same(value, p.default):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so importing it here keeps it off fastae's own import path.
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=[self.dtype]),
            input_tags=InputTags(two_d_array=True, allow_nan=False),
        )

    # --- pickling (for users' own caches and multiprocessing; fastae's model files never use it) ------------
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_B", None)
        state.pop("_locks", None)
        state.pop("_fused_cache", None)  # closures over this process's buffers
        state.pop("_w16_cache", None)  # made again on first use
        opt = state.pop("_optimizer", None)
        if opt is not None:
            state["_optimizer_state"] = opt.state
        if "_params" in state:
            state["_params"] = {k: self._B.to_numpy(v) for k, v in state["_params"].items()}
        return state

    def __setstate__(self, state):
        opt_state = state.pop("_optimizer_state", None)
        state.setdefault("precision", "float32")  # pickled before the parameter existed
        self.__dict__.update(state)
        if "backend_" in state:
            self._B = resolve_backend(self.backend_, self._fitted_structure["dtype"])
            self._params = {k: self._B.xp.asarray(v) for k, v in self._params.items()}
            self._optimizer = training.Optimizer(self._B, self.optimizer, self.learning_rate, self.momentum)
            self._optimizer.state = opt_state or {}

    # --- validation -------------------------------------------------------------------------------------------
    def _validate_training_params(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("dtype", self.dtype, FLOAT_DTYPES)
        _check_precision(self.precision, self.dtype)
        check_number("learning_rate", self.learning_rate, low=0, low_open=True)
        check_number("momentum", self.momentum, low=0, high=1, high_open=True)
        check_number("weight_decay", self.weight_decay, low=0)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("epochs", self.epochs, low=0, integer=True)
        check_number("validation_fraction", self.validation_fraction, low=0, high=1, low_open=True, high_open=True)
        check_number("patience", self.patience, low=1, integer=True)
        check_number("tol", self.tol, low=0)
        for flag in ("shuffle", "early_stopping", "verbose"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise TypeError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        if not isinstance(self.backend, str):
            raise TypeError(f"backend must be a string such as 'auto' or 'numpy', got {self.backend!r}")

    # --- bfloat16 products (precision="bfloat16") ----------------------------------------------------------------
    def _w16(self):
        """``None`` for float32 products; for ``precision="bfloat16"``, the bfloat16 copies of the weights, made
        once per published set of weights. The cache is keyed by the model's version, which every update and load
        moves (the fused step reuses its arrays, so their identity would not do), and is kept only when no update
        was published while it was made. Inside an update (the version odd) the copies of the version it started
        from serve while every weight is still the array they were made from: the update's own passes read those
        weights, and a reader overlapping it runs again anyway (:mod:`fastae.concurrency`)."""
        if self.precision != "bfloat16":
            return None
        _check_precision(self.precision, self._fitted_structure["dtype"])
        _check_precision_backend(self.precision, self._B)
        v = self._version
        cached = self.__dict__.get("_w16_cache")
        if cached is not None and cached[0] == v - (v & 1):
            if not v & 1:
                return cached[1]
            P = self._params  # inside a publish: only while it has not replaced a weight yet
            if all(P.get(k) is W for k, (W, _) in cached[1].items()):
                return cached[1]
        snapshot = dict(self._params)
        w16 = {k: (snapshot[k], self._B.bf16_weight(a)) for k, a in snapshot.items() if a.ndim == 2}
        if self._version == v and not v & 1:
            self._w16_cache = (v, w16)
        return w16

    def _w16_targets(self, grads):
        """``None`` for float32 products; for ``precision="bfloat16"``, ``{weight name: uint16 array}`` for the
        optimiser's update to write the new weights' bfloat16 patterns into (``Optimizer.step``'s ``out16``)."""
        if self.precision != "bfloat16":
            return None
        xp = self._B.xp
        return {k: xp.empty(g.shape, dtype=xp.uint16) for k, g in grads.items() if g.ndim == 2}

    def _w16_updated(self, out16):
        """Keep the patterns an update wrote (``out16`` of :meth:`_w16_targets`, the update committed) as the
        bfloat16 copies of the weights it publishes, keyed by the version its publishing ends at; the copies of
        weights it did not update carry over from the version it started from."""
        v = self._version
        if not v & 1:  # the key below would then name the wrong version
            raise RuntimeError("_w16_updated runs only inside the publishing of the update that wrote out16")
        cached = self.__dict__.get("_w16_cache")
        w16 = dict(cached[1]) if cached is not None and cached[0] == v - 1 else {}
        P, B = self._params, self._B
        w16.update({k: (P[k], B.bf16_weight(P[k], bits)) for k, bits in out16.items()})
        self._w16_cache = (v + 1, w16)

    def _ops(self, w16=None):
        """The ops the model computes with: the backend's, or for ``precision="bfloat16"`` the backend's with
        bfloat16 products (:class:`fastae.models.bf16.BF16Ops`, over the current weights or the copies ``w16``)."""
        if self.precision == "float32":
            return self._B
        if self.precision == "tf32":
            _check_precision(self.precision, self._fitted_structure["dtype"])
            _check_precision_backend(self.precision, self._B)
            return self._B.tf32_ops()
        from .bf16 import BF16Ops

        return BF16Ops(self._B, w16 if w16 is not None else self._w16())

    def _forward_ops(self, w16):
        """The backend for an inference pass: itself (bfloat16 products go through ``w16``, see
        :func:`network.forward`), or its TF32 ops for ``precision="tf32"``."""
        return self._ops() if w16 is None and self.precision == "tf32" else self._B

    @staticmethod
    def _chunk(w16):
        """Rows per backend call at inference: :data:`BF16_CHUNK` with bfloat16 products, else
        :data:`INFERENCE_CHUNK`."""
        return INFERENCE_CHUNK if w16 is None else BF16_CHUNK

    def _inference_input(self, X):
        """``(X, w16)``: ``X`` checked for inference, as bfloat16 patterns (:meth:`_check_X16`) when the model's
        products are bfloat16, and the weights' bfloat16 copies (:meth:`_w16`; ``None`` in float32)."""
        w16 = self._w16()
        if w16 is None:
            X = self._check_X(X, n_features=self.n_features_in_)
            if self._streams_host(X):
                return X, None  # left on the host: _into streams it to the device chunk by chunk
            return self._B.xp.asarray(X), None
        return self._check_X16(X), w16

    def _streams_host(self, X):
        """Whether inference over the checked host array ``X`` streams it to a device backend chunk by chunk
        (capability ``host_stream``) instead of copying it whole first."""
        B = self._B
        return B.xp is not np and isinstance(X, np.ndarray) and contract.supports(B, contract.HOST_STREAM)

    def _check_X16(self, X):
        """``X`` checked and rounded to bfloat16 patterns, in one pass over it when it is a C-contiguous float32
        array of the fitted width (the common case); anything else is checked by :meth:`_check_X` first."""
        B, unit = self._B, self._fitted_structure["loss"] == "bce"
        if (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype == np.float32
            and X.flags.c_contiguous
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and "feature_names_in_" not in self.__dict__
        ):
            ok, x16 = B.bf16_input(X, unit)
            if ok:
                return x16
        X = self._B.xp.asarray(self._check_X(X, n_features=self.n_features_in_))
        return B.bf16_input(X, unit)[1]

    def _bf16_scan(self, backend):
        """``(scan, patterns)`` for training data: with ``precision="bfloat16"`` on a backend with bfloat16
        products, ``scan`` is the input check's one-pass value scan that also writes the bfloat16 patterns of what
        it scans (:meth:`_check_X`'s ``scan``), and ``patterns(X)`` gives them for the array the check returned,
        or ``None`` when the check took another path (the batches are then rounded one by one). Otherwise
        ``(None, patterns)`` with ``patterns`` always ``None``."""
        if (
            self.precision != "bfloat16"
            or not contract.supports(backend, contract.BF16_PRODUCTS)
            or getattr(self, "noise", None) is not None  # the products then read the corrupted batch, not X
        ):
            return None, _no_patterns
        seen: list = []

        def scan(x, unit_interval):
            if x.nbytes > BF16_INPUT_MAX_BYTES:  # the patterns would take half of it again in memory
                return contract.supports(backend, contract.VALUES_SCAN) and backend.values_ok(x, unit_interval)
            ok, x16 = backend.bf16_input(x, unit_interval)
            seen.append((x, x16))
            return ok

        def patterns(X):
            found = seen.pop() if seen else None  # not kept here: a split keeps only its training rows
            seen.clear()
            return found[1] if found is not None and found[0] is X else None

        return scan, patterns

    def _check_X(self, X, name="X", n_features=None, config=None, xp=None, scan=None):
        """``X`` checked for this model: by the configuration it was fitted with (or ``config``, the one about
        to be fitted, whose column names are then recorded), its column names against those of the fit. An array
        of the backend's own type (``xp``, by default the fitted backend's) is checked where it lives. ``scan``
        replaces the backend's one-pass value scan (:meth:`_bf16_scan`'s)."""
        if config is None:
            if type(X) is not np.ndarray or "feature_names_in_" in self.__dict__:  # a plain array has no names
                self._check_feature_names(X, name)
            config = self._config()
        B = self.__dict__.get("_B")
        if xp is None and B is not None:
            xp = B.xp
        return check_array(
            X,
            dtype=config["dtype"],
            name=name,
            n_features=n_features,
            in_unit_interval=config["loss"] == "bce",
            owner=type(self).__name__,
            scan=scan or (B.values_ok if B is not None and contract.VALUES_SCAN in B.CAPABILITIES else None),
            xp=xp,
        )

    def _record_feature_names_from(self, names):
        """``feature_names_in_`` from a data frame's string column names (none for an array)."""
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

    def _check_feature_names(self, X, name="X"):
        """A frame's columns must be the fitted ones, in the same order (as scikit-learn requires); a frame given
        to a model fitted on an array, or the reverse, only warns."""
        fitted = getattr(self, "feature_names_in_", None)
        names = _feature_names(X)
        if fitted is None and names is None:
            return
        if fitted is None or names is None:
            import warnings

            warnings.warn(
                f"{name} has feature names, but {type(self).__name__} was fitted without feature names"
                if fitted is None
                else f"{name} does not have valid feature names, but {type(self).__name__} was fitted with "
                f"feature names",
                UserWarning,
                stacklevel=3,
            )
            return
        if len(names) != len(fitted) or not all(a == b for a, b in zip(names, fitted)):
            unseen = [n for n in names if n not in set(fitted)]
            missing = [n for n in fitted if n not in set(names)]
            detail = (f"; unseen at fit: {unseen[:5]}" if unseen else "") + (
                f"; seen at fit, now missing: {missing[:5]}" if missing else ""
            )
            if not unseen and not missing:
                detail = "; the same names in another order"
            raise ValueError(f"The feature names should match those that were passed during fit{detail}")

    def _validated(self, like=None, fitted=None):
        """Check every hyperparameter without changing the model; returns the backend (for ``"auto"``, the one
        that takes ``like``'s array type, or ``fitted``, the backend a fitted model runs on: ``"auto"`` does not
        move a model) and the derived settings (``_validate_model_params`` returns those instead of storing them,
        so a refused call changes nothing)."""
        self._validate_training_params()
        derived = self._validate_model_params()
        if self.backend == "auto" and fitted is not None:
            backend = fitted
        else:
            backend = resolve_backend(self.backend, self.dtype, like)
        _check_precision_backend(self.precision, backend)
        return backend, derived

    def _param_snapshot(self):
        """The constructor parameters as ``(type, value)`` pairs (lists as tuples): equal snapshots were validated
        alike, so ``partial_fit`` checks them only when one changes."""
        getter = type(self).__dict__.get("_param_getter")
        if getter is None:
            getter = type(self)._param_getter = operator.attrgetter(*self._get_param_names())
        values = getter(self)
        types = tuple(map(type, values))
        if list in types:  # a list may change in place: keep what it holds now
            values = tuple(tuple(v) if type(v) is list else v for v in values)
        return values, types

    def _structure(self):
        """The parameters that fix the layout of the weights: ``partial_fit`` cannot change them."""
        return {name: getattr(self, name) for name in self._STRUCTURAL}

    def _config(self):
        """The structural parameters in force: those the model was fitted with, else the current ones."""
        return self._fitted_structure if "_fitted_structure" in self.__dict__ else self._structure()

    def _fused_stepper(self):
        """Where a model and its backend have one, a callable running a whole update in one backend call (see
        :meth:`Autoencoder._fused_stepper`); ``None`` means every step runs ``_loss_and_grads`` and the
        optimiser (:func:`fastae.training._step`)."""
        return None

    def _check_fitted(self):
        if not hasattr(self, "_params"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    # --- fitting ----------------------------------------------------------------------------------------------
    def _setup(self, n_features, init=True, like=None):
        """Choose the backend (by ``like``'s array type, for ``"auto"``), the seed and (with ``init``) fresh weights
        for ``n_features`` inputs."""
        backend, derived = self._validated(like)
        seed = rng.resolve_seed(self.random_state)
        # Every check has passed: only from here on does the model change.
        with publishing(self):
            self._setup_checked(backend, derived, seed, n_features, init)

    def _setup_checked(self, backend, derived, seed, n_features, init):
        self.__dict__.update(derived)
        self._B = backend
        self.backend_ = backend.NAME
        self.seed_ = seed
        self._fitted_structure = self._structure()
        self._key = rng.key_from_seed(self.seed_)
        self.n_features_in_ = int(n_features)
        self._build()
        if init:
            self._params = self._init_params()
        self._optimizer = training.Optimizer(self._B, self.optimizer, self.learning_rate, self.momentum)
        self.t_ = 0
        self._loss_ref_ = None  # the first batch loss of this fit: the divergence guard's reference
        self._checked_params = None
        self.n_epochs_ = 0
        self.history_ = {}

    def _init_params(self):
        """Weights ``W ~ U(−a, a)`` with ``a = √(6 / (n_in + n_out))`` (Glorot), each drawn from the init stream
        at its own step; biases zero."""
        dt = np.dtype(self._fitted_structure["dtype"])
        params = {}
        for i, (name, shape) in enumerate(self._param_shapes().items()):
            if name.endswith(".weight"):
                n_out, n_in = shape
                a = np.sqrt(6.0 / (n_in + n_out))
                u = rng.uniform(self._key, rng.STREAM_INIT, i, n_out, n_in, dtype=np.float64)
                params[name] = ((2.0 * u - 1.0) * a).astype(dt)
            else:
                params[name] = np.zeros(shape, dtype=dt)
        return {k: self._B.xp.asarray(v) for k, v in params.items()}

    @updating
    def fit(
        self, X, y=None, *, validation_data=None, on_divergence=None, checkpoint=None, checkpoint_every=1, resume=False
    ):
        """Train from scratch on ``X`` for ``epochs`` epochs.

        Every call starts over (unless it resumes from a checkpoint): a new seed from ``random_state``, new weights
        (first pretrained layer by layer with an Autoencoder's ``pretrain="layerwise"``), a new optimizer state and
        an empty ``history_``. Each epoch records its loss in ``history_['loss']``; ``validation_data`` (an array
        like ``X``) is scored after every epoch into ``history_['val_loss']``; with ``early_stopping`` and no
        ``validation_data``, ``validation_fraction`` of ``X`` is held out.

        Training stops with :class:`~fastae.DivergenceError` (naming the epoch and batch; the last weights whose
        loss was accepted are kept) when a loss or update is non-finite or a batch loss exceeds 10 times the
        first one. ``on_divergence(model, info)``, if given, is called first: returning True skips that batch and
        continues (typically after ``model.set_params(learning_rate=...)``); ``info`` is the error's ``info``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data: anything ``numpy.asarray`` turns into a 2-D array of real numbers (integer and boolean
            values are converted), every value finite, and in [0, 1] for ``loss="bce"``; converted to ``dtype``
            (without a copy when it already is a C-contiguous array of that dtype). Sparse matrices are refused. A data
            frame's column names, when all are strings, are recorded in ``feature_names_in_``.
        y : None
            Ignored (the model is unsupervised); it exists so that scikit-learn pipelines can pass it. A 2-D array as
            wide as ``X`` (of more than one column) raises ``TypeError``: pass it as ``validation_data``.
        validation_data : array-like of shape (n_val_samples, n_features) or None, default=None
            Data scored after every epoch into ``history_['val_loss']``, checked as ``X``; with ``early_stopping`` it is
            the validation set (and ``validation_fraction`` is unused). ``None``: with ``early_stopping``,
            ``validation_fraction`` of ``X`` is held out for it; without, nothing is validated.
        on_divergence : callable or None, default=None
            ``on_divergence(model, info) -> bool``, called when a batch diverges, before the error is raised:
            returning True skips that batch (its update is not applied) and continues with the current
            hyperparameters. ``info`` is the error's ``info`` (``epoch``, ``batch``, ``loss``, ``reason``). ``None``:
            raise.
        checkpoint : str or os.PathLike or None, default=None
            File that receives the whole training state (weights, optimizer state, epoch reached, early stopping's
            best weights and count) after every ``checkpoint_every``-th epoch of fine-tuning and after epoch
            ``epochs``, written atomically: a model file that :func:`fastae.load` also reads. ``None``: no checkpoint.
        checkpoint_every : int, default=1
            Epochs (``≥ 1``) between checkpoint writes.
        resume : bool, default=False
            With the file ``checkpoint`` present, continue from it instead of starting over, and end exactly where an
            uninterrupted fit would, bit for bit, given the same ``X`` and parameters (the file's seed is used;
            ``epochs`` may differ, to train on past the checkpoint's end; other parameters, ``verbose`` and
            ``random_state`` aside, must equal the file's, else ``ValueError``). Without the file, the fit starts from
            scratch. Needs ``checkpoint`` (``ValueError`` otherwise).

        Returns
        -------
        self : Autoencoder or VAE
            The fitted model.

        Raises
        ------
        DivergenceError
            When a batch diverges and ``on_divergence`` does not skip it.
        """
        _reject_positional_validation(y, X)
        if resume and checkpoint is None:
            raise ValueError("resume=True needs the checkpoint=path to resume from")
        if checkpoint is not None:
            checkpoint = io._check_path(checkpoint)
        check_number("checkpoint_every", checkpoint_every, low=1, integer=True)
        backend = self._validated(like=X)[0]
        xp = backend.xp
        config = self._structure()
        names, raw = _feature_names(X), X
        scan, patterns = self._bf16_scan(backend)
        X = self._check_X(X, config=config, xp=xp, scan=scan)
        X16 = patterns(X)
        X_val = None
        if validation_data is not None:
            X_val = self._check_X(validation_data, name="validation_data", n_features=X.shape[1], config=config, xp=xp)
        elif self.early_stopping:
            training.check_validation_split(X.shape[0], self.validation_fraction)
        progress = None
        if resume and os.path.exists(checkpoint):
            progress = self._resume_from(checkpoint, X.shape[1], backend.NAME)
        else:
            self._setup(X.shape[1], like=raw)
        self._record_feature_names_from(names)
        if X_val is None and self.early_stopping:
            X, X_val, X16 = training.split_validation(self, X, X16)
        X = self._B.xp.asarray(X)
        if progress is None:
            self._pretrain(X)
        write = None
        if checkpoint is not None:

            def write(epoch, early):
                if epoch % checkpoint_every == 0 or epoch == self.epochs:
                    self._write_checkpoint(checkpoint, epoch, early)

        training.fit_loop(
            self,
            X,
            X_val,
            self.epochs,
            self.history_,
            desc=type(self).__name__,
            on_divergence=on_divergence,
            progress=progress,
            after_epoch=write,
            X16=X16,
        )
        return self

    # --- checkpoints --------------------------------------------------------------------------------------------
    def _write_checkpoint(self, path, epoch, early):
        """The model file plus what resuming needs: the epoch reached, the guard's reference loss, early
        stopping's best loss, patience count and best weights."""
        best, best_params, wait = early
        extra = {f"checkpoint.best.{k}": self._B.to_numpy(v) for k, v in (best_params or {}).items()}
        state = {
            "epoch": epoch,
            "wait": wait,
            "best": None if not math.isfinite(best) else best,
            "loss_ref": self._loss_ref_,
        }
        self.save(path, _extra_tensors=extra, _checkpoint=state)

    def _resume_from(self, path, n_features, backend):
        """Load the checkpoint at ``path`` into this model (which must describe the same model), on ``backend``
        (the name ``fit`` resolved for its data), and return ``(epoch, (best, best_params, wait))`` for the
        training loop."""
        kind, config, tensors, state = io.read_model(path)
        where = f"the checkpoint {path!r}"
        if kind != self._kind or not isinstance(state.get("checkpoint"), dict):
            raise ValueError(f"{where} is not a {self._kind} checkpoint (written by fit(checkpoint=...))")
        mine = _jsonable({**self.get_params(), "random_state": None})
        theirs = {**config, "random_state": None}
        # epochs may grow (train on from where the checkpoint left); verbose changes nothing computed
        differ = sorted(
            k for k in set(mine) | set(theirs) if k not in ("epochs", "verbose") and mine.get(k) != theirs.get(k)
        )
        if differ:
            raise ValueError(f"{where} was written by a model with other parameters: {differ}")
        ck = state["checkpoint"]
        best_params = {k[len("checkpoint.best.") :]: v for k, v in tensors.items() if k.startswith("checkpoint.best.")}
        loaded = self._from_file(
            config, {k: v for k, v in tensors.items() if not k.startswith("checkpoint.")}, state, backend=backend
        )
        if loaded.n_features_in_ != n_features:
            raise ValueError(f"{where} has {loaded.n_features_in_} features, but X has {n_features}")
        epoch = _state_int(ck, "epoch", 0, MAX_UPDATES)
        wait = _state_int(ck, "wait", 0, MAX_UPDATES)
        best = ck.get("best")
        ref = ck.get("loss_ref")
        if not (best is None or isinstance(best, float)) or not (ref is None or isinstance(ref, (int, float))):
            raise ValueError(f"{where} has a malformed checkpoint state {ck!r}")
        keep = self.__dict__.get("random_state")
        with publishing(self):
            self.__dict__.update(
                {
                    k: v
                    for k, v in loaded.__dict__.items()
                    if k not in self._get_param_names() and k not in ("_locks", "_version")
                }
            )
            self.random_state = keep
            self._loss_ref_ = ref
        best_params = self._checked_weights(best_params) if best_params else None
        return epoch, (math.inf if best is None else best, best_params, wait)

    def _pretrain(self, X):
        """Hook for greedy layer-wise pretraining (Autoencoder); nothing by default."""

    @updating
    def partial_fit(self, X, y=None, *, on_divergence=None):
        """One epoch over ``X``, continuing from the current weights and optimizer state.

        The first call on a model that is not fitted initialises it as ``fit`` would (seed, weights, backend;
        without pretraining). Later calls use the current non-structural parameters (see :meth:`set_params`) and
        refuse to continue (``ValueError``) when a structural one changed or ``backend`` now resolves to another
        backend. The batches come in order when ``shuffle=False``. Appends the epoch's loss to ``history_['loss']``
        and adds one to ``n_epochs_``; ``epochs``, ``early_stopping`` and the validation parameters are not used.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, checked and converted as in :meth:`fit`; after the first call it must have
            ``n_features_in_`` columns.
        y : None
            Ignored; as in :meth:`fit`.
        on_divergence : callable or None, default=None
            As in :meth:`fit`.

        Returns
        -------
        self : Autoencoder or VAE
            The model, one epoch further.
        """
        _reject_positional_validation(y, X)
        if not hasattr(self, "_params"):
            backend = self._validated(like=X)[0]
            names, raw = _feature_names(X), X
            scan, patterns = self._bf16_scan(backend)
            X = self._check_X(X, config=self._structure(), xp=backend.xp, scan=scan)
            self._setup(X.shape[1], like=raw)
            self._record_feature_names_from(names)
        else:
            snapshot = self._param_snapshot()
            if snapshot != self.__dict__.get("_checked_params"):  # checked once per change of the parameters
                backend, derived = self._validated(like=X, fitted=self._B)
                for name, before in self._fitted_structure.items():
                    if not _same(getattr(self, name), before):
                        raise ValueError(
                            f"partial_fit continues the fitted model, whose {name} is {before!r}, "
                            f"but {name} is now {getattr(self, name)!r}; call fit to start over"
                        )
                if backend.NAME != self.backend_:
                    raise ValueError(
                        f"partial_fit continues the fitted model on backend {self.backend_!r}, but "
                        f"backend={self.backend!r} now resolves to {backend.NAME!r}"
                    )
                self.__dict__.update(derived)
                self._optimizer.configure(self.optimizer, self.learning_rate, self.momentum)
                self._checked_params = snapshot
            scan, patterns = self._bf16_scan(self._B)
            X = self._check_X(X, n_features=self.n_features_in_, scan=scan)
        X = self._B.xp.asarray(X)
        loss = training.run_epoch(self, X, self.n_epochs_ + 1, on_divergence=on_divergence, X16=patterns(X))
        self.history_.setdefault("loss", []).append(loss)
        return self

    # --- inference helpers ------------------------------------------------------------------------------------
    def _into(self, X, fn, width, out, chunk=None):
        """The ``(n, width)`` result of ``fn(chunk, row0, dest)`` over row chunks of ``X``: each call writes its
        chunk's rows into ``dest``, a slice of ``out`` (already checked by :meth:`_checked_out`) or of one array
        allocated here, so the result is never assembled from pieces. Returns ``out`` itself when given. Every
        input error is caught before the first row is written; a failure part-way (an interrupt, memory running
        out) leaves ``out`` holding the chunks done so far."""
        n = X.shape[0]
        chunk = INFERENCE_CHUNK if chunk is None else chunk
        if out is None:
            dest = self._B.xp.empty((n, width), dtype=self._config()["dtype"])
        else:
            dest = self._B.xp.asarray(out)
        with self._B.session():
            if self._streams_host(X):
                self._B.stream_rows(X, fn, dest, chunk)
            else:
                for s in range(0, n, chunk):
                    fn(X[s : s + chunk], s, dest[s : s + chunk])
        return dest if out is None else out

    def _checked_out(self, out, X, width, what):
        """``out`` (or ``None``), once checked to receive ``what`` for the rows of ``X`` (:func:`check_out`): it may
        share memory neither with ``X`` nor with the model's own weights."""
        if out is not None:
            inputs = [("the input", X)] + [(f"the model's weight {k!r}", p) for k, p in self._params.items()]
            check_out(
                out, shape=(X.shape[0], width), dtype=self._config()["dtype"], what=what, inputs=inputs, xp=self._B.xp
            )
        return out

    def _chunked(self, X, fn):
        """Apply ``fn(chunk, row0)`` to row chunks of ``X`` and concatenate the results."""
        n = X.shape[0]
        if n <= INFERENCE_CHUNK:
            return fn(X, 0)
        with self._B.session():
            parts = [fn(X[s : s + INFERENCE_CHUNK], s) for s in range(0, n, INFERENCE_CHUNK)]
        return self._B.xp.concatenate(parts, axis=0)

    def _finite_rows(self, compute, what):
        """The per-row scores ``compute()`` returns for finite, checked input, if every one is finite; else a
        ``ValueError`` naming the rows whose score overflowed the model's dtype, instead of returning inf (the
        overflow itself is not warned about: this error reports it)."""
        with np.errstate(over="ignore", invalid="ignore"):
            rows = compute()
        bad = np.flatnonzero(~np.isfinite(self._B.to_numpy(rows)))
        if bad.size:
            dtype = self._fitted_structure["dtype"]
            raise ValueError(
                f"{what} overflows {dtype} for {bad.size} row(s) of finite input, the first "
                f"{bad[:10].tolist()}: their values are too large for a {dtype} model's loss. Scale "
                f"the data" + (" or use dtype='float64'" if dtype == "float32" else "")
            )
        return rows

    def transform(self, X):
        """Same as :meth:`encode` (scikit-learn's transformer name).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            Data, checked and converted as in :meth:`encode`.

        Returns
        -------
        H : ndarray of shape (n_samples, n_codes)
            ``encode(X)``: the codes (``n_codes`` is ``hidden[-1]`` for an Autoencoder, ``latent`` for a VAE, whose
            codes are the means ``μ``), in the model's dtype.
        """
        return self.encode(X)

    # The codes' name and units in messages: ``H`` and code units, or for a VAE ``Z`` and latent units.
    _CODES = ("H", "code units")

    @consistent
    def decode(self, H, out=None):
        """The reconstruction ``x̂`` of codes (a VAE's: the decoder's mean for latent codes).

        Parameters
        ----------
        H : array-like of shape (n_samples, n_codes)
            Codes: ``hidden[-1]`` columns for an Autoencoder, ``latent`` for a VAE; any finite real values (no
            [0, 1] requirement), converted to the model's dtype.
        out : ndarray of shape (n_samples, n_features_in_) or None, default=None
            Array that receives the reconstructions and is returned, instead of a new array: in the model's dtype,
            C-contiguous, writeable and sharing no memory with ``H`` or the weights (an ``np.memmap`` works). It is
            checked before anything is written.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features_in_)
            The decoder's output (sigmoid for ``loss="bce"``, linear for ``loss="mse"``) in the model's dtype; ``out``
            itself when given.
        """
        self._check_fitted()
        name, units = self._CODES
        dtype, xp = self._config()["dtype"], self._B.xp
        H = check_array(H, dtype=dtype, name=name, n_features=self._code_size(), what_features=units, xp=xp)
        H = self._B.xp.asarray(H)
        out = self._checked_out(out, H, self.n_features_in_, "the reconstructions")
        w16 = self._w16()
        return self._into(H, lambda c, _, dest: self._decode(c, dest, w16), self.n_features_in_, out, self._chunk(w16))

    def _decode(self, h, out=None, w16=None):
        return network.forward(self._forward_ops(w16), self._params, self._decoder, h, out, w16)[-1]

    def inverse_transform(self, H):
        """Same as :meth:`decode`.

        Parameters
        ----------
        H : array-like of shape (n_samples, n_codes)
            Codes, as in :meth:`decode`.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features_in_)
            ``decode(H)``.
        """
        return self.decode(H)

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X).transform(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, as in :meth:`fit`.
        y : None
            Ignored; as in :meth:`fit`.
        **fit_params : dict
            Keyword arguments of :meth:`fit` (``validation_data``, ``on_divergence``, ``checkpoint``,
            ``checkpoint_every``, ``resume``).

        Returns
        -------
        H : ndarray of shape (n_samples, n_codes)
            The codes of ``X`` under the fitted model, as :meth:`transform`.
        """
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the code units: ``<classname><i>``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Accepted for scikit-learn; not used (the names of the code units do not depend on the input's).

        Returns
        -------
        names : ndarray of str of shape (n_codes,)
            ``"autoencoder0"``, ``"autoencoder1"``, ... (``"vae0"``, ... for a VAE), object dtype.
        """
        self._check_fitted()
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self._code_size())], dtype=object)

    # --- weights and files ------------------------------------------------------------------------------------
    @consistent
    def state_dict(self):
        """The weights as ``{name: numpy array}``, with PyTorch-style names.

        Returns
        -------
        state_dict : dict of str to ndarray
            Copies (C-contiguous, in the model's dtype) of every weight and bias, with the names and the ``nn.Linear``
            shapes ``(out, in)`` of PyTorch: ``encoder.{i}.weight`` and ``encoder.{i}.bias`` for encoder layer ``i``,
            ``decoder.{j}.weight`` (not for a tied Autoencoder, whose decoder uses the encoder's weights) and
            ``decoder.{j}.bias`` for decoder layer ``j``, and a VAE's heads ``mu.weight``, ``mu.bias``,
            ``logvar.weight`` and ``logvar.bias``.
        """
        self._check_fitted()
        return {k: np.ascontiguousarray(np.array(self._B.to_numpy(v), copy=True)) for k, v in self._params.items()}

    def load_state_dict(self, state_dict):
        """Replace the weights of a fitted model; the optimizer state is reset.

        Parameters
        ----------
        state_dict : dict of str to array-like
            Every name of :meth:`state_dict`, none other, each an array (NumPy's, the model's backend's, or a tensor
            with ``detach()`` such as PyTorch's, which is copied to the host) of exactly that name's shape and of the
            model's dtype, with finite values (no partial loads; a mismatch raises ``ValueError`` and changes nothing).
            The values are copied.

        Returns
        -------
        self : Autoencoder or VAE
            This model, with the new weights.
        """
        self._check_fitted()
        weights = self._checked_weights(state_dict)
        with publishing(self):
            self._params = weights
            self._optimizer.reset()
        return self

    @updating
    def to(self, device):
        """Move the fitted model, its weights and its optimizer state to ``device``.

        Parameters
        ----------
        device : {"cpu", "cuda"}
            ``"cuda"``: the GPU backend (``backend="cupy"``; ``ValueError`` naming what is missing where it cannot
            run). ``"cpu"``: the first host backend that runs the model's dtype (``"numba"``, else ``"numpy"``).
            ``backend`` and ``backend_`` name the new backend; the arrays are copied, so the values are the same.

        Returns
        -------
        self : Autoencoder or VAE
            This model, on ``device``; its methods take and return arrays of the new backend's type (NumPy's on the
            CPU; CuPy's, or NumPy input copied over, on the GPU).
        """
        check_choice("device", device, ("cpu", "cuda"))
        self._check_fitted()
        dtype = self._fitted_structure["dtype"]
        if device == "cuda":
            target = resolve_backend("cupy", dtype)
        else:
            target = resolve_backend("auto", dtype)
        _check_precision_backend(self.precision, target)
        old = self._B

        def moved(a):
            return target.xp.asarray(np.ascontiguousarray(old.to_numpy(a)))

        with publishing(self):
            state = {name: {k: moved(v) for k, v in slots.items()} for name, slots in self._optimizer.state.items()}
            self._params = {k: moved(v) for k, v in self._params.items()}
            self._B = target
            self.backend = self.backend_ = target.NAME
            self._optimizer = training.Optimizer(target, self.optimizer, self.learning_rate, self.momentum)
            self._optimizer.state = state
            self.__dict__.pop("_w16_cache", None)
            self.__dict__.pop("_fused_cache", None)
        return self

    def _checked_weights(self, state_dict):
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict of arrays, got {type(state_dict).__name__}")
        expected = self._param_shapes()
        dtype = self._config()["dtype"]
        missing = sorted(set(expected) - set(state_dict))
        extra = sorted(set(state_dict) - set(expected))
        if missing or extra:
            raise ValueError(
                f"state_dict does not match this {type(self).__name__}: missing {missing}, unexpected {extra}"
            )
        out = {}
        for name, shape in expected.items():
            a = state_dict[name]
            if isinstance(a, self._B.ARRAY_TYPES):
                a = self._B.to_numpy(a)
            elif hasattr(a, "detach"):  # a torch tensor: its values, on the host
                a = a.detach().cpu().numpy()
            a = np.asarray(a)
            if a.shape != shape:
                raise ValueError(f"state_dict[{name!r}] has shape {a.shape}, expected {shape}")
            if a.dtype != np.dtype(dtype):
                raise ValueError(f"state_dict[{name!r}] has dtype {a.dtype}, expected {dtype}")
            if not np.isfinite(a).all():
                raise ValueError(f"state_dict[{name!r}] contains non-finite values")
            out[name] = self._B.xp.asarray(np.array(a, order="C", copy=True))
        return out

    @consistent
    def save(self, path, *, _extra_tensors=None, _checkpoint=None):
        """Write the model to ``path`` (never with pickle): read it back with :func:`fastae.load`.

        The file is safetensors: the weights and the optimizer state (so ``partial_fit`` resumes exactly), with the
        JSON config (the constructor parameters, structural ones as fitted) and the fitted state in its metadata.
        Atomic: an existing file is replaced only once the new one is complete.

        Parameters
        ----------
        path : str or os.PathLike
            File to write; its folder must exist.
        """
        self._check_fitted()
        tensors = self.state_dict()
        tensors.update(_extra_tensors or {})
        for pname, st in self._optimizer.state.items():
            for sname, arr in st.items():
                tensors[f"optimizer.{pname}.{sname}"] = self._B.to_numpy(arr)
        state = {
            "n_features_in_": self.n_features_in_,
            "seed_": str(self.seed_),
            "t_": self.t_,
            "n_epochs_": self.n_epochs_,
            "history_": self.history_,
            "backend_": self.backend_,
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(n) for n in self.feature_names_in_]
        state.update(self._extra_state())
        if _checkpoint is not None:
            state["checkpoint"] = _checkpoint
        config = {**self.get_params(), **self._fitted_structure}  # what the weights mean, not a pending change
        io.write_model(path, self._kind, _jsonable(config), tensors, state)

    def _extra_state(self):
        return {}

    @classmethod
    def _from_file(cls, config, tensors, state, backend=None):
        """The model a file describes; every malformed part raises ``ValueError`` naming it (a file is data: its
        config and state are checked as strictly as its tensors)."""
        where = f"the model file's config for {cls.__name__}"
        unknown = sorted(set(config) - set(cls._get_param_names()))
        if unknown:
            raise ValueError(f"{where} has unknown parameters {unknown}")
        params = dict(config)
        for name in ("hidden", "noise", "sparsity"):
            value = params.get(name)
            if isinstance(value, list):
                params[name] = tuple(value)
            elif name == "hidden" and value is not None:
                raise ValueError(f"{where}: hidden is {value!r}, expected a list of layer sizes")
        if backend is not None:
            params["backend"] = backend
        else:
            _check_saved_backend(params.get("backend", "auto"), config.get("dtype", "float32"))
        try:
            model = cls(**params)
        except TypeError as exc:
            raise ValueError(f"{where} does not fit: {exc}") from exc
        n_features = _state_int(state, "n_features_in_", 1, 2**31)
        seed = _state_int(state, "seed_", 0, 2**64 - 1, as_text=True)
        t = _state_int(state, "t_", 0, MAX_UPDATES)
        n_epochs = _state_int(state, "n_epochs_", 0, MAX_UPDATES)
        history = state.get("history_", {})
        if not isinstance(history, dict) or not all(
            isinstance(v, list) and all(_is_history_entry(x) for x in v) for v in history.values()
        ):
            raise ValueError("the model file's history_ must map names to lists of numbers (or of lists of numbers)")
        model.random_state = seed
        try:
            model._setup(n_features, init=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where} is not valid: {exc}") from exc
        model.random_state = config.get("random_state")
        weights = {k: v for k, v in tensors.items() if not k.startswith(("optimizer.", "checkpoint."))}
        model._params = model._checked_weights(weights)
        model._optimizer.state = model._checked_optimizer_state(
            {k[len("optimizer.") :]: v for k, v in tensors.items() if k.startswith("optimizer.")}
        )
        model.t_, model.n_epochs_ = t, n_epochs
        model.history_ = history
        names = state.get("feature_names_in_")
        if names is not None:
            if not isinstance(names, list) or len(names) != n_features or not all(isinstance(v, str) for v in names):
                raise ValueError(f"the model file's feature_names_in_ must be {n_features} strings")
            model.feature_names_in_ = np.asarray(names, dtype=object)
        model._restore_extra_state(state)
        return model

    def _checked_optimizer_state(self, tensors):
        """``{param: {state: array}}`` from the file's ``optimizer.<param>.<state>`` tensors: each named for a
        weight and a state of this optimizer, of that weight's shape and the model's dtype, and every weight
        with either all of its optimizer's states or none (none: no step was taken, or the optimizer changed)."""
        names = training.Optimizer.STATE_NAMES[self.optimizer]
        dtype = np.dtype(self._fitted_structure["dtype"])
        out = {}
        for key, value in tensors.items():
            pname, _, sname = key.rpartition(".")
            if pname not in self._params or sname not in names:
                raise ValueError(
                    f"the model file's optimizer tensor 'optimizer.{key}' is not a state of the "
                    f"{self.optimizer} optimizer ({list(names) or 'none'}) of a weight of this model"
                )
            p = self._params[pname]
            if value.shape != p.shape or value.dtype != dtype:
                raise ValueError(
                    f"the model file's optimizer tensor 'optimizer.{key}' has shape {value.shape} "
                    f"and dtype {value.dtype}, expected {p.shape} and {dtype}"
                )
            if not np.isfinite(value).all():
                raise ValueError(f"the model file's optimizer tensor 'optimizer.{key}' has non-finite values")
            out.setdefault(pname, {})[sname] = self._B.xp.asarray(value)
        for pname, st in out.items():
            if set(st) != set(names):
                raise ValueError(
                    f"the model file's optimizer state of {pname!r} has {sorted(st)}, expected all of {list(names)}"
                )
        return out

    def _restore_extra_state(self, state):
        pass


MAX_UPDATES = training.MAX_UPDATES


def _state_int(state, key, low, high, as_text=False):
    """``state[key]`` as an int in ``[low, high]``: a JSON integer (a decimal string for ``as_text``), never a
    float, a bool or a missing key."""
    if key not in state:
        raise ValueError(f"the model file's fitted state has no {key!r}")
    value = state[key]
    if as_text:
        if not isinstance(value, str) or not value.isdigit():
            raise ValueError(f"the model file's {key} is {value!r}, expected a decimal integer string")
        value = int(value)
    elif type(value) is not int:
        raise ValueError(f"the model file's {key} is {value!r}, expected an integer")
    if not low <= value <= high:
        raise ValueError(f"the model file's {key} is {value}, expected an integer in [{low}, {high}]")
    return value


def _is_history_entry(x):
    if isinstance(x, list):
        return all(_is_history_entry(v) for v in x)
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _feature_names(X):
    """A data frame's column names as an object array when all are strings, else ``None`` (arrays, and frames
    with other column labels, as scikit-learn treats them); no data-frame library is imported."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray) or not hasattr(X, "shape"):
        return None
    names = list(columns)
    if not names or not all(isinstance(c, str) for c in names):
        return None
    return np.asarray(names, dtype=object)


def _reject_positional_validation(y, X):
    """``fit(X, X_val)`` would silently ignore ``X_val`` as ``y``; a 2-D ``y`` as wide as ``X`` is refused."""
    if y is None:
        return
    y_shape, x_shape = getattr(y, "shape", None), getattr(X, "shape", None)
    if y_shape is None or x_shape is None:
        return
    if len(y_shape) == 2 and len(x_shape) == 2 and y_shape[1] == x_shape[1] and y_shape[1] > 1:
        raise TypeError(
            f"the second argument of fit is y, which an autoencoder ignores, but got a 2-D array of "
            f"shape {y_shape} as wide as X: to validate on it, pass validation_data=..."
        )


def _same(a, b):
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False


def _jsonable(params):
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.generic):
            v = v.item()
        if k == "random_state" and v is not None and not isinstance(v, int):
            v = None  # a Generator cannot be stored; the drawn seed is kept in the fitted state instead
        out[k] = v
    return out


def _no_patterns(X):
    return None


def _check_precision(value, dtype):
    check_choice("precision", value, PRECISIONS)
    if value != "float32" and dtype != "float32":
        raise ValueError(
            f"precision={value!r} needs dtype='float32' (its products sum in float32), got dtype={dtype!r}"
        )


def _check_saved_backend(name, dtype):
    """A file names the backend its model was built with; one that cannot run here (a GPU model's file on a machine
    without one) is refused with the way to load it, rather than replaced silently."""
    from ..backends import registry

    if not isinstance(name, str) or name == "auto" or name not in registry._MODULES:
        return  # checked with the rest of the config
    reason = registry.unavailable(name, dtype if dtype in registry.DTYPES else None)
    if reason is not None:
        raise ValueError(
            f"the model was saved with backend={name!r}, which cannot run here ({reason}); load it with "
            "fastae.load(path, backend='auto') (or another backend) to run it on this machine"
        )


def _check_precision_backend(precision, backend):
    """Refuse a precision whose products ``backend`` cannot make (bfloat16 needs ``bf16_products``; TF32, a GPU's
    tensor-core format, ``tf32_products``)."""
    if precision == "bfloat16" and not contract.supports(backend, contract.BF16_PRODUCTS):
        raise ValueError(f"precision='bfloat16' needs a backend with bfloat16 products; {backend.NAME!r} has none")
    if precision == "tf32" and not contract.supports(backend, contract.TF32_PRODUCTS):
        raise ValueError(
            f"precision='tf32' is a GPU precision (TF32 tensor cores): it needs backend='cupy'; {backend.NAME!r} "
            "has no TF32 products (use precision='float32' or 'bfloat16' on the CPU)"
        )
