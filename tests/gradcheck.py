"""Central finite differences over every entry of every parameter of a small float64 model."""

import numpy as np

EPS = 1e-6


def fitted_model(model, n_features):
    """Validate ``model``'s hyperparameters and give it fresh weights for ``n_features`` inputs, without training."""
    model._setup(n_features)
    return model


def check_gradients(model, x, step=1, rtol=1e-6, atol=1e-9):
    """Compare ``model._loss_and_grads`` with central differences ``(L(p+ε) − L(p−ε)) / 2ε`` for every entry."""
    loss, grads = model._loss_and_grads(x, step)
    assert set(grads) == set(model._params), (sorted(grads), sorted(model._params))
    for name, p in model._params.items():
        numeric = np.zeros_like(p)
        flat = p.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + EPS
            up = float(model._loss_and_grads(x, step)[0])
            flat[i] = old - EPS
            down = float(model._loss_and_grads(x, step)[0])
            flat[i] = old
            numeric.reshape(-1)[i] = (up - down) / (2 * EPS)
        np.testing.assert_allclose(grads[name], numeric, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")
    return loss, grads
