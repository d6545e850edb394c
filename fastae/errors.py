"""Exceptions of fastae."""


class DivergenceError(ValueError, FloatingPointError):
    """Training produced a non-finite loss, gradient or weight.

    Raised by ``fit``/``partial_fit`` with the epoch and batch where it happened; the model keeps the last
    finite weights it had, and its optimizer state is reset. It is a ``ValueError`` (the usual cause is a
    hyperparameter, most often ``learning_rate``) and a ``FloatingPointError``.
    """


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` (same bases as scikit-learn's)."""
