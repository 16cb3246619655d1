"""Models: backbones, heads and the assembled classifier (TensorFlow imported lazily)."""

from kadvisor.models.assemble import build_model

__all__ = ["build_model"]
