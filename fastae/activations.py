"""The scalar math of every activation, written once.

Each entry gives the activation ``f(a)`` and its derivative expressed through the *output* ``h = f(a)``, so a
backward pass needs only the stored activations, never the pre-activations:

=========  ==========================  ==========================
name       f(a)                        f'(a) written with h = f(a)
=========  ==========================  ==========================
sigmoid    1 / (1 + exp(-a))           h (1 - h)
tanh       tanh(a)                     1 - h^2
relu       max(a, 0)                   1 if h > 0 else 0
linear     a                           1
=========  ==========================  ==========================

The NumPy reference, the Numba kernels, the CUDA preamble and the tests all read this table, so the twins cannot
drift apart in a branch that no test compares.
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")


def output_activation(loss: str) -> str:
    """The output nonlinearity that pairs with ``loss``: sigmoid for ``"bce"``, identity for ``"mse"`` (so that the
    gradient at the output pre-activation is ``x̂ − x`` for both)."""
    return "sigmoid" if loss == "bce" else "linear"


# Activations for which the contractive penalty is implemented: it needs f'' through h, which these two give.
CONTRACTIVE_ACTIVATIONS = ("sigmoid", "tanh")


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function ``1 / (1 + exp(-a))``: no overflow for large ``|a|``."""
    out = np.empty_like(a)
    pos = a >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-a[pos]))
    e = np.exp(a[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def apply(name: str, a: np.ndarray) -> np.ndarray:
    """``f(a)`` for the activation ``name``; returns a new array of ``a``'s dtype."""
    if name == "sigmoid":
        return sigmoid(a)
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0)
    if name == "linear":
        return a.copy()
    raise KeyError(name)


def derivative_from_output(name: str, h: np.ndarray) -> np.ndarray:
    """``f'(a)`` written through ``h = f(a)`` (see the table above)."""
    if name == "sigmoid":
        return h * (1 - h)
    if name == "tanh":
        return 1 - h * h
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "linear":
        return np.ones_like(h)
    raise KeyError(name)


def second_derivative_from_output(name: str, h: np.ndarray) -> np.ndarray:
    """``f''(a)`` written through ``h = f(a)``; defined for the contractive activations only.

    sigmoid: ``f'' = h (1 - h)(1 - 2h)``;  tanh: ``f'' = -2 h (1 - h^2)``.
    """
    if name == "sigmoid":
        return h * (1 - h) * (1 - 2 * h)
    if name == "tanh":
        return -2 * h * (1 - h * h)
    raise KeyError(name)
