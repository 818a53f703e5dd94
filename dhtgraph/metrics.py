"""Quality metrics of partitions (spec/benchmarks.md)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .graph.pixel import as_image_tensor
from .partition import Partition

__all__ = ["explained_variation"]


def explained_variation(image: Any, partition: Partition) -> Tensor:
    """Explained variation ``EV = Σ_p ‖μ_S(p) − μ‖² / Σ_p ‖x_p − μ‖²`` per image.

    Parameters
    ----------
    image : Tensor of shape (B, C, H, W) or (C, H, W), or any input of ``from_image``
        Pixel values (the benchmark uses RGB in [0, 1]; uint8 arrays are mapped there).
    partition : Partition of the B·H·W pixels
        Blocks (tokens); a block may not span two images.

    Returns
    -------
    Tensor of shape (B,), float64
        1 for a perfect fit (or a constant image), 0 for a single block.
    """
    if not isinstance(partition, Partition):
        raise TypeError(f"Expected 'partition' to be a Partition (got {type(partition).__name__})")
    image = as_image_tensor(image)
    b, c, h, w = image.shape
    if partition.num_items != b * h * w:
        raise ValueError(f"Expected 'partition' over {b * h * w} pixels (got {partition.num_items})")
    if b > 1:
        pixel_image = torch.arange(b, device=partition.device).repeat_interleave(h * w)
        if not torch.equal(partition.reduce(pixel_image, "min"), partition.reduce(pixel_image, "max")):
            raise ValueError("Expected every block of 'partition' to lie inside one image "
                             "(got a block spanning two images of the batch)")
    x = image.detach().to(torch.float64).permute(0, 2, 3, 1).reshape(b, h * w, c)
    mu = x.mean(dim=1, keepdim=True)
    block_mean = partition.reduce(x.reshape(-1, c), "mean")
    fitted = partition.broadcast(block_mean).reshape(b, h * w, c)
    explained = (fitted - mu).pow(2).sum(dim=(1, 2))
    total = (x - mu).pow(2).sum(dim=(1, 2))
    return torch.where(total > 0, explained / total.clamp_min(1e-300), torch.ones_like(total))
