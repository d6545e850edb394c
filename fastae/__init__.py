"""fastae: fast autoencoders.

Tied and untied dense autoencoders (plain, deep with greedy layer-wise pretraining, denoising, sparse,
contractive) and variational autoencoders, behind a scikit-learn-style API, running on interchangeable backends.
"""

from .backends import available_backends
from .compilation import warmup
from .errors import DivergenceError, NotFittedError
from .machine import describe
from .models import VAE, Autoencoder

__version__ = "0.1.0"

_KINDS = {"Autoencoder": Autoencoder, "VAE": VAE}


def load(path, backend=None):
    """Load a model written by ``model.save(path)``.

    The file is safetensors with a JSON config; its config, every tensor name, shape and dtype are checked
    against the model it describes, and a truncated, corrupt or foreign file raises ``ValueError`` (a missing
    one ``FileNotFoundError``).

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    backend : str or None, default=None
        Backend to run the loaded model on (as the estimators' ``backend``: a backend name or ``"auto"``),
        overriding the backend stored in the config; ``None`` keeps the stored one.

    Returns
    -------
    model : Autoencoder or VAE
        The fitted model, with its weights, optimizer state (so ``partial_fit`` continues exactly), seed,
        update and epoch counts, ``history_`` and feature names as saved.
    """
    from . import io

    kind, config, tensors, state = io.read_model(path)
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"{str(path)!r} holds a model of kind {kind!r}; this fastae knows {sorted(_KINDS)}")
    return cls._from_file(config, tensors, state, backend=backend)


__all__ = [
    "Autoencoder",
    "VAE",
    "load",
    "warmup",
    "available_backends",
    "describe",
    "DivergenceError",
    "NotFittedError",
    "__version__",
]
