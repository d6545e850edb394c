"""A stack of dense layers as data, with forward and backward passes over it written once in backend ops.

A :class:`Dense` names its parameters rather than holding them, so a tied decoder layer simply names the encoder's
weight with ``transpose=True`` and the backward pass adds both of its gradient terms into one entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dense:
    """``h = f(x Wᵀ + b)`` with ``W = params[weight]``; with ``transpose``, ``h = f(x W + b)``."""

    weight: str
    bias: str
    activation: str
    transpose: bool = False


def forward(B, params, layers, x, out=None, w16=None):
    """Run ``layers`` on ``x``; returns ``[x, h_1, ..., h_n]`` (the input of each layer, then the last output).
    With ``out``, the last layer writes ``h_n`` there (the layers before it use arrays of their own); callers pass
    ``out`` only with at least one layer.

    With ``w16`` (``{name: (W, W's bfloat16 form)}``, the model's copies of its weights) every product takes
    bfloat16 operands: ``x`` is float32 (rounded here) or already bfloat16 patterns, the layers before the last
    hand theirs on as bfloat16, and the last output is float32 (``precision="bfloat16"``, inference)."""
    if w16 is not None:
        return _forward_bf16(B, params, layers, x, out, w16)
    hs = [x]
    for L in layers[:-1]:
        hs.append(B.dense_forward(hs[-1], params[L.weight], params[L.bias], L.activation, L.transpose))
    if layers:
        L = layers[-1]
        hs.append(B.dense_forward(hs[-1], params[L.weight], params[L.bias], L.activation, L.transpose, out))
    return hs


def _forward_bf16(B, params, layers, x, out, w16):
    hs = [x if x.dtype == np.uint16 else B.to_bf16(x)]
    for i, L in enumerate(layers):
        last = i == len(layers) - 1
        hs.append(
            B.dense_forward_bf16(
                hs[-1], w16[L.weight][1], params[L.bias], L.activation, L.transpose, out if last else None, not last
            )
        )
    return hs


def accumulate(grads, name, g):
    """``grads[name] += g``, creating the entry on first use (a tied weight receives two terms)."""
    if name in grads:
        grads[name] += g
    else:
        grads[name] = g


def backward(B, params, layers, inputs, delta, grads, need_dx):
    """Backpropagate ``delta = dL/da`` of the last layer through ``layers``.

    ``inputs[i]`` is the input of ``layers[i]`` as returned by :func:`forward`. Weight and bias gradients are
    accumulated into ``grads``. Returns ``dL/d inputs[0]`` (before any activation of the layer below) when
    ``need_dx``, else ``None``.
    """
    dx = None
    for i in range(len(layers) - 1, -1, -1):
        L = layers[i]
        dW, db, dx = B.dense_backward(delta, inputs[i], params[L.weight], L.transpose, need_dx=i > 0 or need_dx)
        accumulate(grads, L.weight, dW)
        accumulate(grads, L.bias, db)
        if i > 0:
            delta = B.activation_backward(dx, inputs[i], layers[i - 1].activation)
    return dx
