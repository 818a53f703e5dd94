"""Pictures of partitions: token boundaries over an image, block-mean mosaics.

numpy only (no matplotlib): the ``dhtgraph tokenize`` command writes these as PNG.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .partition import Partition

__all__ = ["boundary_mask", "draw_boundaries", "mean_mosaic", "hierarchy_strip"]

#: Colour of drawn boundaries (RGB, uint8): yellow reads well on photographs.
BOUNDARY_COLOR = (255, 221, 0)


def boundary_mask(labels: Tensor | np.ndarray) -> np.ndarray:
    """Pixels on a block boundary.

    Parameters
    ----------
    labels : array of shape (H, W)
        Block label of every pixel.

    Returns
    -------
    ndarray of shape (H, W), bool
        True where the pixel's right or lower neighbour lies in another block.
    """
    labels = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    if labels.ndim != 2:
        raise ValueError(f"Expected 'labels' to have shape (H, W) (got {labels.shape})")
    mask = np.zeros(labels.shape, dtype=bool)
    mask[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    mask[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return mask


def _to_uint8_hwc(image: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] → (H, W, 3) uint8 (grey images are repeated)."""
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    array = np.moveaxis(array, 0, -1)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def draw_boundaries(image: Tensor, labels: Tensor | np.ndarray) -> np.ndarray:
    """The image with block boundaries drawn over it.

    Parameters
    ----------
    image : Tensor of shape (C, H, W)
        Values in [0, 1].
    labels : array of shape (H, W)

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    canvas = _to_uint8_hwc(image)
    canvas[boundary_mask(labels)] = BOUNDARY_COLOR
    return canvas


def mean_mosaic(image: Tensor, partition: Partition) -> np.ndarray:
    """Every pixel painted with its block's mean colour.

    Parameters
    ----------
    image : Tensor of shape (C, H, W)
    partition : Partition of the H·W pixels (row-major)

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    c, h, w = image.shape
    pixels = image.reshape(c, h * w).t()
    means = partition.broadcast(partition.reduce(pixels.float()))
    return _to_uint8_hwc(means.t().reshape(c, h, w))


def hierarchy_strip(image: Tensor, partitions: list[Partition], max_side: int = 256) -> np.ndarray:
    """Side-by-side panels, one per partition: block-mean mosaic with boundaries.

    Parameters
    ----------
    image : Tensor of shape (C, H, W)
    partitions : list of Partition of the H·W pixels
        Typically the absolute levels of a hierarchy, finest first.
    max_side : int, default 256
        Panels larger than this are shown at a reduced size (nearest neighbour).

    Returns
    -------
    ndarray of shape (h, n·(w + 4) − 4, 3), uint8
    """
    _, h, w = image.shape
    step = max(1, -(-max(h, w) // max_side))
    panels = []
    for partition in partitions:
        panel = mean_mosaic(image, partition)[::step, ::step]
        panel[boundary_mask(partition.labels.view(h, w)[::step, ::step])] = BOUNDARY_COLOR
        panels.append(panel)
    gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
    strip = [p for panel in panels for p in (panel, gap)][:-1]
    return np.concatenate(strip, axis=1)


