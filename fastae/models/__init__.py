"""The estimators: :class:`Autoencoder` and :class:`VAE`."""

from .autoencoder import Autoencoder
from .vae import VAE

__all__ = ["Autoencoder", "VAE"]
