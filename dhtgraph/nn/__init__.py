"""Neural modules: pixel encoders and the dHT tokenizer."""

from .encoder import ColorEncoder, PixelEncoder, rgb_to_lab
from .tokenizer import DHTConfig, DHTTokenizer, Tokens, imagenet_normalize

__all__ = ["PixelEncoder", "ColorEncoder", "rgb_to_lab", "DHTConfig", "DHTTokenizer", "Tokens",
           "imagenet_normalize"]
# --- model ---
from .region_features import RegionFeatures
from .vit import DHTViT, DHTViTConfig, DHTViTOutput

__all__ += ["RegionFeatures", "DHTViT", "DHTViTConfig", "DHTViTOutput"]
# --- pyg ---
# The pooling layer subclasses torch_geometric's Select/Connect: imported on first use, so
# 'import dhtgraph' stays light (tests/test_package.py).
_POOL_NAMES = ("DHTPooling", "DHTSelect", "DHTConnect")
__all__ += list(_POOL_NAMES)


def __getattr__(name):
    if name in _POOL_NAMES:
        from . import pool

        return getattr(pool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
