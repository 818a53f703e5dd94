"""Region features: pooling and mean injection."""

from .mean_injection import block_mean_image, mean_injection

__all__ = ["mean_injection", "block_mean_image"]
