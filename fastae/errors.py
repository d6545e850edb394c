"""Exceptions of fastae."""


class DivergenceError(ValueError, FloatingPointError):
    """Training diverged: a non-finite loss, gradient or weight, or a batch loss far above the first one.

    Raised by ``fit``/``partial_fit`` with the epoch and batch where it happened; the model keeps the weights from
    before that batch (for a loss grown past the limit, from before the previous one: the last whose loss was
    accepted), and its optimizer state is reset. It is a ``ValueError`` (the usual cause is a
    hyperparameter, most often ``learning_rate``) and a ``FloatingPointError``.

    Parameters
    ----------
    message : str, default=""
        The error message.
    info : dict or None, default=None
        What is known about the divergence, copied into ``info``; ``None`` means an empty dict.

    Attributes
    ----------
    info : dict
        ``epoch``, ``batch`` (1-based), ``loss`` and ``reason`` of the batch that diverged (empty when raised
        elsewhere).
    """

    def __init__(self, message="", info=None):
        super().__init__(message)
        self.info = dict(info or {})


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` (same bases as scikit-learn's)."""
