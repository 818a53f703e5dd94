"""Neural modules: pixel encoders and the dHT tokenizer."""

from .encoder import ColorEncoder, PixelEncoder, rgb_to_lab
from .tokenizer import DHTConfig, DHTTokenizer, Tokens, imagenet_normalize

__all__ = ["PixelEncoder", "ColorEncoder", "rgb_to_lab", "DHTConfig", "DHTTokenizer", "Tokens",
           "imagenet_normalize"]
