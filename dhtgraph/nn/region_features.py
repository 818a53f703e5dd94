"""``RegionFeatures``: the learnable part of the ViT-compatible region descriptors (§7).

A thin module around :func:`dhtgraph.features.region.region_features`: it holds the
mixing logit θ (λ = sigmoid(θ)) and the background token β and calls the functional core.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_count
from ..features.region import MIXING_INIT, RegionDescriptors, region_features
from ..partition import Partition

__all__ = ["RegionFeatures"]


class RegionFeatures(nn.Module):
    """Per-token ViT patches and histograms of a partition (method spec §7).

    Parameters
    ----------
    in_channels : int
        C.
    patch_size : int
        P: tokens are resampled to C×P×P patches.
    mixing_init : float, default 0.01
        λ at initialisation (spec §7.3).
    gradient : bool, default False
        Also return the gradient histogram (spec §7.5).

    Attributes
    ----------
    theta : Parameter of shape ()
        λ = sigmoid(θ).
    background : Parameter of shape (C, P, P)
        β, zero-initialised (the mean colour of normalised inputs).

    Examples
    --------
    >>> from dhtgraph import grid_partition
    >>> feats = RegionFeatures(3, 4)
    >>> out = feats(torch.rand(1, 3, 8, 8), grid_partition(1, 8, 8, 4), (2, 2))
    >>> out.patches.shape, out.position.shape
    (torch.Size([4, 3, 4, 4]), torch.Size([4, 4]))
    """

    def __init__(self, in_channels: int, patch_size: int, *, mixing_init: float = MIXING_INIT,
                 gradient: bool = False):
        super().__init__()
        c = check_count(in_channels, "in_channels", minimum=1)
        p = check_count(patch_size, "patch_size", minimum=1)
        if not 0.0 < float(mixing_init) < 1.0:
            raise ValueError(f"Expected 'mixing_init' in (0, 1) (got {mixing_init!r})")
        self.patch_size = p
        self.gradient = bool(gradient)
        self.theta = nn.Parameter(torch.tensor(math.log(mixing_init / (1 - mixing_init))))
        self.background = nn.Parameter(torch.zeros(c, p, p))

    @property
    def mixing(self) -> Tensor:
        """λ = sigmoid(θ), shape ()."""
        return torch.sigmoid(self.theta)

    def forward(self, image: Tensor, partition: Partition, grid_size: tuple) -> RegionDescriptors:
        """image (B, C, H, W), partition of the B·H·W pixels, (Gh, Gw) → descriptors."""
        return region_features(image, partition, self.patch_size, grid_size, self.mixing,
                               self.background, gradient=self.gradient)
