"""Neural modules: pixel encoders and the dHT tokenizer."""

from .encoder import ColorEncoder, PixelEncoder, rgb_to_lab
from .tokenizer import DHTConfig, DHTTokenizer, Tokens, imagenet_normalize

__all__ = ["PixelEncoder", "ColorEncoder", "rgb_to_lab", "DHTConfig", "DHTTokenizer", "Tokens",
           "imagenet_normalize"]
# --- model ---
from .region_features import RegionFeatures
from .vit import DHTViT, DHTViTConfig, DHTViTOutput

__all__ += ["RegionFeatures", "DHTViT", "DHTViTConfig", "DHTViTOutput"]
