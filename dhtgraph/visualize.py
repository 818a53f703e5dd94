"""Pictures of partitions: token boundaries over an image, block-mean mosaics.

numpy (and PIL's default font for captions), no matplotlib: the ``dhtgraph tokenize``
command writes these as PNG.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .partition import Partition

__all__ = ["boundary_mask", "draw_boundaries", "mean_mosaic", "hierarchy_strip"]

#: Colour of drawn boundaries (RGB, uint8): yellow reads well on photographs.
BOUNDARY_COLOR = (255, 221, 0)
#: Level panels darken boundary pixels to this fraction of their colour: visible on any
#: colour, yet the block colours stay readable.
BOUNDARY_DARKEN = 0.45
#: Level panels outline blocks only when they average at least this many panel pixels
#: (a 3×3 block): finer levels would be mostly outline.
MIN_OUTLINED_AREA = 9
#: Rows of the caption band above each level panel (fits PIL's default font).
CAPTION_HEIGHT = 14


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


def hierarchy_strip(image: Tensor, partitions: list[Partition], max_side: int = 256,
                    captions: list[str] | None = None) -> np.ndarray:
    """Side-by-side panels, one per partition: block-mean colours with thin boundaries.

    Parameters
    ----------
    image : Tensor of shape (C, H, W)
    partitions : list of Partition of the H·W pixels
        Typically the absolute levels of a hierarchy, finest first.
    max_side : int, default 256
        Panels larger than this are shown at a reduced size (nearest neighbour).
    captions : list of str, optional
        One line of text above each panel (e.g. ``"level 3: 812 blocks"``); each cell is
        then at least as wide as its caption.

    Returns
    -------
    ndarray of shape (h', total width, 3), uint8
        Without captions ``h' = h`` and the width is ``n·(w + 4) − 4`` (``h, w`` the panel
        size); with captions a band of :data:`CAPTION_HEIGHT` rows is added on top.

    Notes
    -----
    Every panel paints each block with its mean colour (so fine levels read as a slightly
    flattened image, never as a sheet of boundary colour). Boundaries are drawn one pixel
    wide by darkening the pixel (:data:`BOUNDARY_DARKEN`), and only when the panel's
    blocks average at least :data:`MIN_OUTLINED_AREA` pixels: below that, outlines would
    cover most of the panel.
    """
    if captions is not None and len(captions) != len(partitions):
        raise ValueError(f"Expected one caption per partition (got {len(captions)} captions for "
                         f"{len(partitions)} partitions)")
    _, h, w = image.shape
    step = max(1, -(-max(h, w) // max_side))
    panels = []
    for partition in partitions:
        labels = partition.labels.view(h, w)[::step, ::step]
        panel = mean_mosaic(image, partition)[::step, ::step].copy()
        if labels.numel() >= MIN_OUTLINED_AREA * int(labels.unique().numel()):
            mask = boundary_mask(labels)
            panel[mask] = (panel[mask].astype(np.float32) * BOUNDARY_DARKEN).astype(np.uint8)
        panels.append(panel)
    if captions is None:
        gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
        strip = [p for panel in panels for p in (panel, gap)][:-1]
        return np.concatenate(strip, axis=1)
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    widths = [int(np.ceil(font.getlength(text))) + 4 for text in captions]
    cells = []
    for panel, text, text_width in zip(panels, captions, widths):
        width = max(panel.shape[1], text_width)
        cell = np.full((CAPTION_HEIGHT + panel.shape[0], width, 3), 255, dtype=np.uint8)
        left = (width - panel.shape[1]) // 2
        cell[CAPTION_HEIGHT:, left:left + panel.shape[1]] = panel
        canvas = Image.fromarray(cell)
        ImageDraw.Draw(canvas).text((2, 1), text, fill=(0, 0, 0), font=font)
        cells.append(np.asarray(canvas))
    gap = np.full((cells[0].shape[0], 8, 3), 255, dtype=np.uint8)
    strip = [p for cell in cells for p in (cell, gap)][:-1]
    return np.concatenate(strip, axis=1)
