"""ViT-compatible region descriptors (method spec §7, items 1–5).

For every token (block) S of a partition of the B·H·W pixels and a ViT patch size P:

1. ``samples`` x̂(S) ∈ R^{C×P×P}: bilinear samples of the (mean-injected) image on a P×P
   grid spanning the block's bounding box, corners on pixel centres;
2. ``mask`` M⁺(S) ∈ [0, 1]^{P×P}: the same interpolation of the indicator [seg = S];
3. ``patches`` F(S) = (M⁺ + λM⁻) ⊙ x̂(S) + (1 − λ) M⁻ ⊙ β, M⁻ = 1 − M⁺;
4. ``position`` (Gh·Gw,): pixel votes for the cell (⌊Gh·y/H⌋, ⌊Gw·x/W⌋), divided by the
   block size;
5. ``gradient`` (P·P,), optional: Scharr gradient magnitude of the channel mean, each
   pixel voting into the cell of the P×P grid over its block's box, divided by the
   block size.

For the square-patch partition aligned to the grid (:func:`dhtgraph.grid_partition`)
``patches`` is the patch's pixels exactly and ``position`` is one-hot, so
``[vec F ‖ position] · [patch_embed ‖ pos_embed]`` is the ViT's patch + position embedding.

Everything is vectorised over all tokens of the batch (gathers and ``index_add_``);
gradients flow into the image values, λ and β (not into the mask or histograms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_count
from ..graph.pixel import grid_coordinates
from ..partition import Partition
from .pooling import region_boxes

__all__ = ["RegionDescriptors", "bounding_boxes", "token_batch", "sample_regions",
           "positional_histogram", "gradient_histogram", "mix_background", "region_features",
           "check_partition", "MIXING_INIT"]

#: λ at initialisation (spec §7.3): background pixels of a token's box keep 1 % of the image.
MIXING_INIT = 0.01
# Scharr derivative kernel (3·[1, 0, −1] ⊗ smoothing [3, 10, 3] / 32 normalisation omitted;
# magnitudes are relative within a token).
_SCHARR = ((-3.0, 0.0, 3.0), (-10.0, 0.0, 10.0), (-3.0, 0.0, 3.0))


@dataclass(frozen=True)
class RegionDescriptors:
    """Per-token descriptors of :func:`region_features`.

    Attributes
    ----------
    patches : Tensor of shape (K, C, P, P)
        F(S), the ViT patch of every token (differentiable in the image, λ and β).
    samples : Tensor of shape (K, C, P, P)
        x̂(S), the bilinear samples of the image over the token's box.
    mask : Tensor of shape (K, P, P)
        M⁺(S), the soft token mask on the sample grid (no gradient).
    position : Tensor of shape (K, Gh·Gw)
        The block-size-normalised positional histogram (rows sum to 1).
    gradient : Tensor of shape (K, P·P) or None
        The gradient histogram, when asked for.
    boxes : LongTensor of shape (K, 4)
        (ymin, xmin, ymax, xmax), inclusive pixel coordinates.
    batch : LongTensor of shape (K,)
        Image of every token.
    num_tokens : LongTensor of shape (B,)
        Tokens per image.
    grid_size : (int, int)
        (Gh, Gw) of the positional histogram.
    """

    patches: Tensor
    samples: Tensor
    mask: Tensor
    position: Tensor
    gradient: Optional[Tensor]
    boxes: Tensor
    batch: Tensor
    num_tokens: Tensor
    grid_size: tuple

    def __post_init__(self):
        k = self.patches.shape[0]
        for name in ("samples", "mask", "position", "boxes", "batch"):
            if getattr(self, name).shape[0] != k:
                raise ValueError(f"RegionDescriptors.{name} must have {k} rows "
                                 f"(got {tuple(getattr(self, name).shape)})")

    def flat(self) -> Tensor:
        """``[vec F ‖ position ‖ gradient]``, (K, C·P·P + Gh·Gw [+ P·P]): the input of the
        linear region embedding."""
        parts = [self.patches.flatten(1), self.position.to(self.patches.dtype)]
        if self.gradient is not None:
            parts.append(self.gradient.to(self.patches.dtype))
        return torch.cat(parts, 1)


def check_partition(partition, batch_size: int, height: int, width: int,
                    name: str = "partition") -> Partition:
    """Check that ``partition`` is a Partition of the B·H·W pixels (cheap checks only)."""
    if not isinstance(partition, Partition):
        raise TypeError(f"Expected '{name}' to be a dhtgraph.Partition of the B·H·W pixels "
                        f"(got {type(partition).__name__})")
    n = batch_size * height * width
    if partition.num_items != n:
        raise ValueError(f"Expected '{name}' to partition the B·H·W = {batch_size}·{height}·{width} "
                         f"= {n} pixels of the images (got a partition of {partition.num_items} "
                         f"items); build it for this batch and image size")
    if partition.num_blocks < batch_size:
        raise ValueError(f"Expected '{name}' to have at least one block per image "
                         f"(got {partition.num_blocks} blocks for {batch_size} images)")
    return partition


def token_batch(partition: Partition, batch_size: int, pixels_per_image: int) -> Tensor:
    """Image of every block, (K,); raises if a block holds pixels of two images.

    One host sync (the check).
    """
    pixel_image = torch.arange(partition.num_items, device=partition.device) // pixels_per_image
    lo = partition.reduce(pixel_image, "min")
    hi = partition.reduce(pixel_image, "max")
    if not bool(torch.equal(lo, hi)):
        raise ValueError("Expected every block of 'partition' to lie inside one image "
                         "(a block holds pixels of two images)")
    return lo


def _pixel_coordinates(partition: Partition, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Row and column of the B·H·W row-major pixels (:func:`dhtgraph.graph.pixel.grid_coordinates`)."""
    return grid_coordinates(height, width, partition.num_items // (height * width),
                            device=partition.device)


def bounding_boxes(partition: Partition, height: int, width: int) -> Tensor:
    """Inclusive bounding box of every block, (K, 4) as (ymin, xmin, ymax, xmax).

    :func:`dhtgraph.features.pooling.region_boxes` of the (row, col) coordinates of the
    B·H·W row-major pixels.
    """
    row, col = _pixel_coordinates(partition, height, width)
    return region_boxes(partition, torch.stack([row, col], 1))


def _sample_axis(low: Tensor, high: Tensor, patch_size: int, side: int, dtype):
    """Sample coordinates along one axis, their floor/ceil pixel and the upper weight."""
    steps = torch.arange(patch_size, device=low.device, dtype=dtype)
    span = (high - low).to(dtype)
    if patch_size > 1:
        # (span · i) / (P − 1): exact integers when span = P − 1 (a grid patch).
        coord = low.to(dtype)[:, None] + span[:, None] * steps[None, :] / (patch_size - 1)
    else:
        coord = (low.to(dtype) + span / 2)[:, None]
    base = coord.floor()
    weight = coord - base
    first = base.long().clamp_(0, side - 1)
    second = (first + 1).clamp_(max=side - 1)
    return first, second, weight


def sample_regions(image: Tensor, partition: Partition, patch_size: int,
                   boxes: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """Bilinear samples x̂ and soft mask M⁺ on each token's P×P box grid.

    Parameters
    ----------
    image : Tensor of shape (B, C, H, W)
    partition : Partition of the B·H·W pixels
    patch_size : int
        P.
    boxes : LongTensor of shape (K, 4), optional
        From :func:`bounding_boxes` (computed when omitted).

    Returns
    -------
    samples : Tensor of shape (K, C, P, P)
        Differentiable in ``image``.
    mask : Tensor of shape (K, P, P)
        The interpolated indicator of the token (no gradient).
    """
    b, c, h, w = image.shape
    p = check_count(patch_size, "patch_size", minimum=1)
    if boxes is None:
        boxes = bounding_boxes(partition, h, w)
    labels = partition.labels
    k = partition.num_blocks
    dtype = image.dtype if image.is_floating_point() else torch.get_default_dtype()
    y0, y1, wy = _sample_axis(boxes[:, 0], boxes[:, 2], p, h, dtype)  # (K, P)
    x0, x1, wx = _sample_axis(boxes[:, 1], boxes[:, 3], p, w, dtype)
    # Pixel offset of every token's image: tokens never span images (token_batch checks).
    first_pixel = partition.reduce(torch.arange(labels.numel(), device=labels.device), "min")
    start = (first_pixel // (h * w)) * (h * w)
    pixels = image.permute(0, 2, 3, 1).reshape(b * h * w, c)
    own = torch.arange(k, device=labels.device)[:, None, None]
    samples = None
    mask = None
    for ys, wy_ in ((y0, 1 - wy), (y1, wy)):
        for xs, wx_ in ((x0, 1 - wx), (x1, wx)):
            index = start[:, None, None] + ys[:, :, None] * w + xs[:, None, :]  # (K, P, P)
            weight = wy_[:, :, None] * wx_[:, None, :]
            values = pixels.index_select(0, index.reshape(-1)).view(k, p, p, c)
            term = values * weight[..., None]
            inside = (labels[index] == own).to(dtype) * weight
            samples = term if samples is None else samples + term
            mask = inside if mask is None else mask + inside
    return samples.permute(0, 3, 1, 2), mask


def positional_histogram(partition: Partition, height: int, width: int,
                         grid_size: tuple) -> Tensor:
    """Block-size-normalised histogram of pixel positions on a Gh×Gw grid, (K, Gh·Gw).

    Pixel (y, x) votes for cell (⌊Gh·y/H⌋, ⌊Gw·x/W⌋) (integer arithmetic, so a pixel of
    grid patch (i, j) lands in cell (i, j) exactly). Rows sum to 1.
    """
    gh, gw = grid_size
    labels = partition.labels
    row, col = _pixel_coordinates(partition, height, width)
    cell = (gh * row) // height * gw + (gw * col) // width
    k = partition.num_blocks
    counts = torch.zeros(k * gh * gw, device=labels.device)
    counts.index_add_(0, labels * (gh * gw) + cell, torch.ones(labels.numel(), device=labels.device))
    counts = counts.view(k, gh * gw)
    return counts / partition.sizes.to(counts.dtype)[:, None]


def gradient_histogram(image: Tensor, partition: Partition, patch_size: int,
                       boxes: Optional[Tensor] = None) -> Tensor:
    """Scharr gradient magnitude of the channel mean, binned on each token's P×P box grid.

    Returns a (K, P·P) histogram divided by the block size; no gradient flows through it.
    """
    b, c, h, w = image.shape
    p = patch_size
    if boxes is None:
        boxes = bounding_boxes(partition, h, w)
    with torch.no_grad():
        grey = image.detach().mean(1, keepdim=True)
        kernel = grey.new_tensor(_SCHARR)
        kernels = torch.stack([kernel, kernel.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
        grad = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
        magnitude = grad.pow(2).sum(1).sqrt().reshape(-1)  # (B·H·W,)
        labels = partition.labels
        row, col = _pixel_coordinates(partition, h, w)
        box = boxes[labels]
        span_y = (box[:, 2] - box[:, 0] + 1)
        span_x = (box[:, 3] - box[:, 1] + 1)
        cy = ((row - box[:, 0]) * p) // span_y
        cx = ((col - box[:, 1]) * p) // span_x
        k = partition.num_blocks
        hist = magnitude.new_zeros(k * p * p)
        hist.index_add_(0, labels * (p * p) + cy * p + cx, magnitude)
        return hist.view(k, p * p) / partition.sizes.to(hist.dtype)[:, None]


def mix_background(samples: Tensor, mask: Tensor, mixing: Tensor, background: Tensor) -> Tensor:
    """F = (M⁺ + λM⁻) ⊙ x̂ + (1 − λ) M⁻ ⊙ β.

    Parameters
    ----------
    samples : Tensor of shape (K, C, P, P)
    mask : Tensor of shape (K, P, P)
    mixing : Tensor of shape () — λ ∈ (0, 1)
    background : Tensor of shape (C, P, P) — β
    """
    inside = mask[:, None]
    outside = 1 - inside
    return (inside + mixing * outside) * samples + (1 - mixing) * outside * background


def region_features(image: Tensor, partition: Partition, patch_size: int, grid_size: tuple,
                    mixing: Tensor, background: Tensor, *, gradient: bool = False
                    ) -> RegionDescriptors:
    """All region descriptors of §7 for one batch.

    Parameters
    ----------
    image : Tensor of shape (B, C, H, W)
        The mean-injected image x̃ (or the image itself for a fixed partition).
    partition : Partition of the B·H·W pixels
        The tokens; a block must lie inside one image.
    patch_size : int
        P.
    grid_size : (int, int)
        (Gh, Gw) of the positional histogram (the ViT's patch grid).
    mixing : Tensor of shape ()
        λ.
    background : Tensor of shape (C, P, P)
        β.
    gradient : bool, default False
        Also compute the gradient histogram.

    Returns
    -------
    RegionDescriptors
    """
    if not isinstance(image, Tensor) or image.dim() != 4:
        got = image.dim() if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"Expected 'image' to have 4 dimensions (B, C, H, W) (got {got})")
    b, c, h, w = image.shape
    p = check_count(patch_size, "patch_size", minimum=1)
    partition = check_partition(partition, b, h, w)
    if background.shape != (c, p, p):
        raise ValueError(f"Expected 'background' of shape ({c}, {p}, {p}) "
                         f"(got {tuple(background.shape)})")
    gh = check_count(grid_size[0], "grid_size[0]", minimum=1)
    gw = check_count(grid_size[1], "grid_size[1]", minimum=1)
    batch = token_batch(partition, b, h * w)
    boxes = bounding_boxes(partition, h, w)
    samples, mask = sample_regions(image, partition, p, boxes)
    patches = mix_background(samples, mask, mixing.to(samples.dtype), background.to(samples.dtype))
    position = positional_histogram(partition, h, w, (gh, gw)).to(samples.dtype)
    grad = gradient_histogram(image, partition, p, boxes).to(samples.dtype) if gradient else None
    return RegionDescriptors(patches=patches, samples=samples, mask=mask, position=position,
                             gradient=grad, boxes=boxes, batch=batch,
                             num_tokens=torch.bincount(batch, minlength=b), grid_size=(gh, gw))
