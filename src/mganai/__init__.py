"""mganai: measure user-level privacy leakage in federated learning (mGAN-AI, INFOCOM 2019)."""

__version__ = "0.1.0"
