"""Pixel encoders: image (B, C, H, W) → per-pixel features (B, d, H, W) (method spec §2).

:class:`PixelEncoder` is the reference's "SimpleDownsample" architecture, with the same
parameter names so that the official dHT state dict loads (``ds.0``, ``ds.1``, ``cv.0``,
``cv.1``, ``cv.3``, ``cv.4``)::

    f(x) = SiLU( BN(conv1×1(x)) + Up×4( BN(conv2×2/2( SiLU(BN(conv2×2/2(x))) )) ) )

with hidden width ``4·d`` in the middle and bilinear up-sampling with aligned corners
(``nn.UpsamplingBilinear2d``, as in the reference). Its ×4 down/up path needs sides
divisible by 4; other sizes are padded by edge replication to the next multiple of 4 and
the output is cropped back, so sizes that are multiples of 4 are computed exactly as the
reference does.

:class:`ColorEncoder` is the encoder-free mode: the features are the image colours,
optionally converted from RGB to CIE Lab and scaled.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PixelEncoder", "ColorEncoder", "rgb_to_lab", "ColorSpace"]

ColorSpace = Literal["rgb", "lab"]
# The encoder halves the resolution twice: sides must be multiples of this.
_STRIDE = 4


@contextlib.contextmanager
def _deterministic_cpu_convolutions(x: Tensor):
    """Use PyTorch's own CPU convolutions instead of oneDNN's.

    oneDNN picks its blocking from the batch size and the thread count, which changes the
    float summation order: an image would get (slightly) different features in a batch
    than alone, or with 1 vs 2 threads, and argmax ties would flip. The native kernels
    give bit-identical results in all these cases at a similar speed for these tiny
    convolutions.
    """
    if x.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an irrelevant TF32 notice
        with torch.backends.mkldnn.flags(enabled=False):
            yield


class PixelEncoder(nn.Module):
    """The reference's learnable pixel encoder.

    Parameters
    ----------
    in_channels : int
        C.
    features : int, default 8
        d, the feature width (hidden width ``4·d``).

    Shape
    -----
    (B, C, H, W) → (B, d, H, W), any H, W ≥ 1.
    """

    def __init__(self, in_channels: int, features: int = 8):
        super().__init__()
        hidden = _STRIDE * features
        self.in_channels = in_channels
        self.features = features
        self.ds = nn.Sequential(
            nn.Conv2d(in_channels, features, 1, 1, 0),
            nn.BatchNorm2d(features),
        )
        self.cv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 2, 2),
            nn.BatchNorm2d(hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, features, 2, 2),
            nn.BatchNorm2d(features),
            nn.UpsamplingBilinear2d(scale_factor=_STRIDE),
        )

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        pad_h = (-height) % _STRIDE
        pad_w = (-width) % _STRIDE
        x = image
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        with _deterministic_cpu_convolutions(x):
            out = F.silu(self.ds(x) + self.cv(x))
        if pad_h or pad_w:
            out = out[..., :height, :width]
        return out


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """CIE Lab (D65) of sRGB values in [0, 1]; (B, 3, H, W) → (B, 3, H, W), L in [0, 100]."""
    srgb = rgb.clamp(0, 1)
    linear = torch.where(srgb > 0.04045, ((srgb + 0.055) / 1.055).pow(2.4), srgb / 12.92)
    matrix = rgb.new_tensor([[0.412453, 0.357580, 0.180423],
                             [0.212671, 0.715160, 0.072169],
                             [0.019334, 0.119193, 0.950227]])
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear)
    white = rgb.new_tensor([0.95047, 1.0, 1.08883]).view(1, 3, 1, 1)
    t = xyz / white
    delta = 6.0 / 29.0
    f = torch.where(t > delta ** 3, t.clamp_min(1e-12).pow(1.0 / 3.0), t / (3 * delta ** 2) + 4.0 / 29.0)
    lightness = 116.0 * f[:, 1] - 16.0
    a = 500.0 * (f[:, 0] - f[:, 1])
    b = 200.0 * (f[:, 1] - f[:, 2])
    return torch.stack([lightness, a, b], dim=1)


class ColorEncoder(nn.Module):
    """Encoder-free features: the image colours times a scale (spec §2, SPiT-style).

    Parameters
    ----------
    in_channels : int
        C.
    color_space : {'rgb', 'lab'}, default 'rgb'
        'lab' converts RGB in [0, 1] to CIE Lab (needs C = 3).
    scale : float, default 1.0
        Multiplies the features; the Gaussian potential ``exp(−‖Δ‖²)`` is sharper for
        larger scales.

    Shape
    -----
    (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, in_channels: int, color_space: ColorSpace = "rgb", scale: float = 1.0):
        super().__init__()
        if color_space not in ("rgb", "lab"):
            raise ValueError(f"Expected 'color_space' to be 'rgb' or 'lab' (got {color_space!r})")
        if color_space == "lab" and in_channels != 3:
            raise ValueError(f"Expected 3 input channels for color_space='lab' (got {in_channels})")
        self.in_channels = in_channels
        self.features = in_channels
        self.color_space = color_space
        self.scale = float(scale)

    def forward(self, image: Tensor) -> Tensor:
        x = rgb_to_lab(image) if self.color_space == "lab" else image
        return x * self.scale if self.scale != 1.0 else x
