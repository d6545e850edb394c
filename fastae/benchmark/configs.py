"""The standard configurations, used by the benchmarks, the report and the README, with their analytic FLOPs.

Every configuration is float32, Adam (lr 1e-3), sigmoid output with cross-entropy, on data in [0, 1] from a
fixed seed. FLOPs count the matrix products only (2·m·n·k each); the elementwise work around them is what the
fused kernels exist to make negligible, so it is deliberately not credited.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEARNING_RATE = 1e-3
ENCODE_BATCH = 8192
DATA_SEED = 20261124


@dataclass(frozen=True)
class Config:
    """One benchmark model. ``dims`` are the encoder widths from the input to the code (for a VAE, to the last
    hidden layer; ``latent`` is the code). Decoders mirror the encoder."""

    name: str
    kind: str  # "ae" or "vae"
    dims: tuple[int, ...]
    batch: int
    tied: bool = True
    activation: str = "sigmoid"
    code_activation: str | None = None
    latent: int | None = None
    description: str = ""

    def model(self, dtype="float32", backend="auto", random_state=0):
        """An unfitted fastae model of this configuration."""
        import fastae

        if self.kind == "vae":
            return fastae.VAE(
                hidden=self.dims[1:],
                latent=self.latent,
                activation=self.activation,
                loss="bce",
                learning_rate=LEARNING_RATE,
                batch_size=self.batch,
                dtype=dtype,
                backend=backend,
                random_state=random_state,
            )
        return fastae.Autoencoder(
            hidden=self.dims[1:],
            activation=self.activation,
            code_activation=self.code_activation,
            loss="bce",
            tied=self.tied,
            learning_rate=LEARNING_RATE,
            batch_size=self.batch,
            dtype=dtype,
            backend=backend,
            random_state=random_state,
        )

    def layers(self):
        """``(n_in, n_out)`` of every dense layer of the whole network, in forward order (VAE heads as two)."""
        enc = list(zip(self.dims[:-1], self.dims[1:]))
        if self.kind == "vae":
            heads = [(self.dims[-1], self.latent)] * 2
            dec_dims = (self.latent,) + tuple(reversed(self.dims))
            return enc + heads + list(zip(dec_dims[:-1], dec_dims[1:]))
        return enc + [(o, i) for i, o in reversed(enc)]

    def encoder_layers(self):
        """The layers ``encode`` runs (for a VAE: the encoder and the μ head)."""
        enc = list(zip(self.dims[:-1], self.dims[1:]))
        return enc + [(self.dims[-1], self.latent)] if self.kind == "vae" else enc

    @property
    def n_features(self):
        return self.dims[0]

    @property
    def code_size(self):
        return self.latent if self.kind == "vae" else self.dims[-1]

    def train_flops(self):
        """FLOPs of one training step: forward ``2·B·i·o`` per layer, backward ``2·B·i·o`` for ``dW`` and again
        for ``dx`` except where the input is the data (the first layer; both VAE heads share one ``dx`` each)."""
        B = self.batch
        total = 0
        for idx, (i, o) in enumerate(self.layers()):
            total += 2 * B * i * o * (2 if idx == 0 else 3)
        return total

    def encode_flops(self, rows):
        return sum(2 * rows * i * o for i, o in self.encoder_layers())

    def n_params(self):
        n = 0
        for idx, (i, o) in enumerate(self.layers()):
            decoder_half = self.kind == "ae" and idx >= len(self.dims) - 1
            n += o + (0 if (self.tied and decoder_half) else i * o)
        return n


CONFIGS = {
    "small": Config("small", "ae", (64, 16), 32, description="tied 64->16, batch 32 (overhead-bound)"),
    "shallow": Config("shallow", "ae", (784, 256), 256, description="tied 784->256, sigmoid, cross-entropy, batch 256"),
    "deep": Config(
        "deep",
        "ae",
        (784, 1000, 500, 250, 30),
        256,
        tied=False,
        code_activation="linear",
        description="784-1000-500-250-30, mirrored, untied, linear code, batch 256",
    ),
    "vae": Config(
        "vae",
        "vae",
        (784, 400),
        100,
        activation="relu",
        latent=20,
        description="784-400-20 VAE, relu, batch 100 (Kingma & Welling)",
    ),
}


def data(cfg: Config, rows: int, seed_offset: int = 0) -> np.ndarray:
    """``rows`` x ``n_features`` float32 values in [0, 1] from a fixed seed."""
    return np.random.default_rng(DATA_SEED + seed_offset).random((rows, cfg.n_features), dtype=np.float32)


def initial_weights(cfg: Config) -> dict[str, np.ndarray]:
    """The float32 starting weights every contestant uses (fastae's Glorot init, PyTorch names and shapes)."""
    X = data(cfg, 2)
    return cfg.model(dtype="float32", backend="numpy").set_params(epochs=0).fit(X).state_dict()
