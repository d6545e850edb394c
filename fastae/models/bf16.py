"""The backend's ops with bfloat16 products, for models with ``precision="bfloat16"``.

:class:`BF16Ops` stands in for the backend wherever a model computes (a training step, the scores): it has the
backend's ops, and the ones with a matrix product round its operands to bfloat16 and sum in float32 (the
backend's ``*_bf16`` ops of capability ``bf16_products``); every other op is the backend's own. So the models'
forward and backward passes are written once, for both precisions.

It is made for one set of weights: the bfloat16 copies of the weights are taken when it is made (in training,
those the optimiser's update wrote). The bfloat16 copy of each layer input and each ``delta`` is written by the
epilogue that makes it (``dense_forward_bf16_pair``, ``activation_backward_bf16``, ``output_loss_grad_bf16``)
and used by every product that reads it; an array made by any other op is rounded once, on first use.
"""

from __future__ import annotations

import numpy as np


class BF16Ops:
    """The ops of backend ``B`` with bfloat16 products, over the bfloat16 copies ``weights`` of the weights."""

    def __init__(self, B, weights):
        """``weights``: ``{name: (W, W's bf16 form)}`` (``BaseModel._w16``)."""
        self._B = B
        self._w = {id(W): (W, wb) for W, wb in weights.values()}
        self._x16: dict[int, tuple] = {}

    def __getattr__(self, name):
        return getattr(self._B, name)

    def _wb(self, W):
        """``W``'s bf16 form. Keyed by identity: each entry holds its weight, so no other array can take its id
        meanwhile. A weight published after the copies were made (a reader overlapping an update, which will run
        again) gets its copy here."""
        entry = self._w.get(id(W))
        if entry is None or entry[0] is not W:
            entry = self._w[id(W)] = (W, self._B.bf16_weight(W))
        return entry[1]

    def _r(self, x):
        """``x``'s bfloat16 patterns (``x`` itself if it holds patterns already), made once per array."""
        if x.dtype == np.uint16:
            return x
        entry = self._x16.get(id(x))
        if entry is not None and entry[0] is x:
            return entry[1]
        x16 = self._B.to_bf16(x)
        self._x16[id(x)] = (x, x16)
        return x16

    def known(self, x, x16):
        """``x``, with ``x16`` kept as its bfloat16 patterns (made by the op, or the input check, that made ``x``)."""
        self._x16[id(x)] = (x, x16)
        return x

    def dense_forward(self, x, W, b, activation, transpose=False, out=None):
        if out is not None:
            return self._B.dense_forward_bf16(self._r(x), self._wb(W), b, activation, transpose, out)
        h, h16 = self._B.dense_forward_bf16_pair(self._r(x), self._wb(W), b, activation, transpose)
        return self.known(h, h16)

    def activation_backward(self, dh, h, activation):
        delta, d16 = self._B.activation_backward_bf16(dh, h, activation)
        return self.known(delta, d16)

    def dense_backward(self, delta, x, W, transpose=False, need_dx=True):
        return self._B.dense_backward_bf16(delta, self._r(delta), self._r(x), self._wb(W), transpose, need_dx)

    def output_loss_grad(self, h, W, c, x, loss, transpose=False):
        value, delta, d16 = self._B.output_loss_grad_bf16(self._r(h), self._wb(W), c, x, loss, transpose)
        return value, self.known(delta, d16)

    def output_row_loss(self, h, W, c, x, loss, transpose=False):
        return self._B.output_row_loss_bf16(self._r(h), self._wb(W), c, x, loss, transpose)

    def contractive_penalty(self, h, W, activation, lam):
        raise ValueError("the contractive penalty has no bfloat16 form: use precision='float32' with contractive > 0")
