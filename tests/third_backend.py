"""A third backend that exists only for the tests: the reference under another name, with ``dense_backward``
written another way (the bias gradient as a product with a vector of ones, the weight gradient through
``einsum``: the same sums, in another order).

``tests/conftest.py`` registers it, so every suite that runs over the registered backends (the parity suite, the
whole-model gradients, the adjoint test, ...) runs on it too, and ``tests/test_third_backend.py`` fits models on
it: the seam between models and backends needs nothing from a backend beyond the contract.
"""

import numpy as np

from fastae.backends.numpy_ref import (  # noqa: F401  every other op, and the lifecycle, as the reference's
    ARRAY_TYPES,
    CAPABILITIES,
    DTYPES,
    activation_backward,
    activation_backward_bf16,
    adam_update,
    adam_update_bf16,
    bf16_input,
    bf16_weight,
    contractive_penalty,
    dense_backward_bf16,
    dense_forward,
    dense_forward_bf16,
    dense_forward_bf16_pair,
    gaussian_kl_rows,
    gaussian_latent,
    gaussian_latent_backward,
    gaussian_noise,
    kl_sparsity,
    l1_penalty,
    mask_noise,
    momentum_update,
    momentum_update_bf16,
    output_loss_grad,
    output_loss_grad_bf16,
    output_row_loss,
    output_row_loss_bf16,
    permutation,
    session,
    sgd_update,
    sgd_update_bf16,
    to_bf16,
    to_numpy,
    unavailable,
    warmup,
    weight_decay,
    xp,
)

NAME = "reference-twin"


def dense_backward(delta, x, W, transpose=False, need_dx=True):
    """As the reference's: ``dW = deltaᵀ x`` (``xᵀ delta`` transposed), ``db = 1ᵀ delta``, ``dx = delta W``."""
    dW = np.einsum("bi,bo->io", x, delta) if transpose else np.einsum("bo,bi->oi", delta, x)
    db = np.ones(delta.shape[0], dtype=delta.dtype) @ delta
    dx = None
    if need_dx:
        dx = delta @ W.T if transpose else delta @ W
    return dW, db, dx
