"""Quality metrics of segmentations (spec/benchmarks.md; issue 12 §1).

Every metric returns one value per image. Segmentations come as integer label images of
shape (H, W) or (B, H, W) (any non-negative labels; equal labels inside one image are one
segment, the same label in two images names two segments) or as a :class:`Partition` of
the B·H·W pixels (row-major per image, images concatenated, as ``tokenize`` returns it)
together with ``image_size=(H, W)``. Pure tensor code: the result lies on the labels'
device; a few host syncs per call (``torch.unique``).

Definitions follow the superpixel benchmark of Stutz, Hermans and Leibe (CVIU 2018):

- boundary pixels: ``'thin'`` (default) marks a pixel whose right or lower 4-neighbour has
  another label, so a label change costs one pixel, as in the benchmark's
  ``is_boundary``; ``'thick'`` marks every pixel with a differing 4-neighbour (both sides
  of the change; ``skimage.segmentation.find_boundaries(mode='thick')``);
- boundary recall / precision with a Chebyshev tolerance r (default
  ``round(0.0025·√(H²+W²))``, 1 pixel at 224²);
- undersegmentation error (Neubert–Protzel), achievable segmentation accuracy;
- compactness (Schick et al.) with the perimeter counted in pixel sides: every side of a
  pixel of S that faces another segment or the image border counts 1, so a k×k square
  has perimeter 4k and compactness π/4, the largest value a pixel set reaches.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_count
from .graph.pixel import as_image_tensor
from .partition import Partition

__all__ = [
    "explained_variation",
    "boundary_pixels",
    "boundary_recall",
    "boundary_precision",
    "undersegmentation_error",
    "achievable_segmentation_accuracy",
    "compactness",
    "intra_cluster_variation",
    "psnr",
    "num_tokens",
    "default_tolerance",
]

BoundaryMode = Literal["thin", "thick"]
_BOUNDARY_MODES = ("thin", "thick")
#: Boundary tolerance as a fraction of the image diagonal (Stutz et al., 2018).
TOLERANCE_FRACTION = 0.0025


# ---------------------------------------------------------------------- inputs
def _labels(seg: Any, name: str, image_size: Optional[Sequence[int]] = None) -> Tensor:
    """``seg`` as a LongTensor (B, H, W) of non-negative labels."""
    if isinstance(seg, Partition):
        if image_size is None:
            raise ValueError(f"Expected 'image_size' (H, W) with a Partition '{name}' "
                             "(a partition alone does not know the image shape)")
        if len(image_size) != 2:
            raise ValueError(f"Expected 'image_size' to be (H, W) (got {tuple(image_size)!r})")
        h, w = (check_count(v, "image_size", 1) for v in image_size)
        n = seg.num_items
        if n == 0:
            raise ValueError(f"Expected '{name}' to be a non-empty partition (got 0 items)")
        if n % (h * w):
            raise ValueError(f"Expected '{name}' to partition B·{h}·{w} pixels (got {n} items)")
        b = n // (h * w)
        if b > 1:
            owner = torch.arange(b, device=seg.device).repeat_interleave(h * w)
            if not torch.equal(seg.reduce(owner, "min"), seg.reduce(owner, "max")):
                raise ValueError(f"Expected every block of '{name}' to lie inside one image "
                                 "(got a block spanning two images of the batch)")
        return seg.labels.view(b, h, w)
    if not isinstance(seg, Tensor):
        try:
            seg = torch.as_tensor(seg)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"Expected '{name}' to be an integer label image (tensor or array) or a "
                            f"Partition (got {type(seg).__name__})") from None
    if seg.dtype.is_floating_point or seg.dtype.is_complex or seg.dtype == torch.bool:
        raise TypeError(f"Expected '{name}' to have an integer dtype (got {seg.dtype})")
    if seg.dim() == 2:
        seg = seg.unsqueeze(0)
    elif seg.dim() != 3:
        raise ValueError(f"Expected '{name}' to have 2 (H, W) or 3 (B, H, W) dimensions "
                         f"(got {seg.dim()})")
    if seg.numel() == 0:
        raise ValueError(f"Expected '{name}' to be non-empty (got shape {tuple(seg.shape)})")
    seg = seg.long()
    lowest = int(seg.min())
    if lowest < 0:
        raise ValueError(f"Expected '{name}' to hold non-negative labels (got minimum {lowest})")
    return seg


def _same_shape(truth: Tensor, seg: Tensor) -> None:
    if truth.shape[1:] != seg.shape[1:]:
        raise ValueError(f"Expected 'truth' to have the image size {tuple(seg.shape[1:])} of 'seg' "
                         f"(got {tuple(truth.shape[1:])})")
    if truth.shape[0] != seg.shape[0]:
        raise ValueError(f"Expected 'truth' to hold as many images as 'seg', {seg.shape[0]} "
                         f"(got {truth.shape[0]})")


def _image_and_labels(image: Any, seg: Any) -> tuple[Tensor, Tensor]:
    """(pixels (B, H·W, C) float64, labels (B, H, W)) with matching shapes."""
    x = as_image_tensor(image)
    b, c, h, w = x.shape
    labels = _labels(seg, "seg", (h, w))
    if labels.shape != (b, h, w):
        raise ValueError(f"Expected 'seg' to have shape {(b, h, w)} to match 'image' "
                         f"(got {tuple(labels.shape)})")
    x = x.detach().to(device=labels.device, dtype=torch.float64)
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c), labels


def _segments(labels: Tensor) -> tuple[Tensor, Tensor, int]:
    """Number the segments of all images together.

    Returns ``ids`` (B·H·W,) in ``0..K−1`` (image by image, so segment ids of image b
    come before those of image b+1), ``owner`` (K,) the image of each segment, and K.
    """
    b = labels.shape[0]
    span = int(labels.max()) + 1
    image = torch.arange(b, device=labels.device).view(b, 1, 1)
    key = (image * span + labels).reshape(-1)
    unique, ids = torch.unique(key, return_inverse=True)
    return ids, unique // span, unique.numel()


def _per_image(values: Tensor, owner: Tensor, b: int) -> Tensor:
    return values.new_zeros(b).index_add_(0, owner, values)


def _segment_means(x: Tensor, ids: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Segment sizes (K,) and mean rows (K, C) of ``x`` (N, C)."""
    sizes = torch.bincount(ids, minlength=k).to(x.dtype)
    sums = x.new_zeros(k, x.shape[1]).index_add_(0, ids, x)
    return sizes, sums / sizes.unsqueeze(1)


def _contingency(seg: Tensor, truth: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Overlaps of segments and truth segments.

    Returns per overlapping pair (seg id, truth id, |S ∩ G|), the segment sizes (K,) and
    the owner image of every segment.
    """
    sid, owner, k = _segments(seg)
    tid, _, kt = _segments(truth)
    pair, count = torch.unique(sid * kt + tid, return_counts=True)
    sizes = torch.bincount(sid, minlength=k)
    return pair // kt, pair % kt, count, sizes, owner


def default_tolerance(height: int, width: int) -> int:
    """``round(0.0025·√(H² + W²))``, halves rounded up (1 at 224² and 481×321, 4 at 1024²)."""
    return int(math.floor(TOLERANCE_FRACTION * math.hypot(height, width) + 0.5))


# ---------------------------------------------------------------------- metrics
def explained_variation(image: Any, partition: Any) -> Tensor:
    """Explained variation ``EV = Σ_p ‖μ_S(p) − μ‖² / Σ_p ‖x_p − μ‖²`` per image.

    Parameters
    ----------
    image : Tensor of shape (B, C, H, W) or (C, H, W), or any input of ``from_image``
        Pixel values (the benchmark uses RGB in [0, 1]; uint8 arrays are mapped there).
    partition : Partition of the B·H·W pixels, or label images (B, H, W) / (H, W)
        Blocks (tokens); a block may not span two images.

    Returns
    -------
    Tensor of shape (B,), float64
        1 for a perfect fit (or a constant image), 0 for a single block.
    """
    if not isinstance(partition, (Partition, Tensor)) and not hasattr(partition, "__array__"):
        raise TypeError("Expected 'partition' to be a Partition or integer label images "
                        f"(got {type(partition).__name__})")
    if isinstance(partition, Partition):
        image = as_image_tensor(image)
        b, c, h, w = image.shape
        if partition.num_items != b * h * w:
            raise ValueError(f"Expected 'partition' over {b * h * w} pixels (got {partition.num_items})")
        if b > 1:
            pixel_image = torch.arange(b, device=partition.device).repeat_interleave(h * w)
            if not torch.equal(partition.reduce(pixel_image, "min"), partition.reduce(pixel_image, "max")):
                raise ValueError("Expected every block of 'partition' to lie inside one image "
                                 "(got a block spanning two images of the batch)")
        x = image.detach().to(device=partition.device, dtype=torch.float64)
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        block_mean = partition.reduce(x.reshape(-1, c), "mean")
        fitted = partition.broadcast(block_mean).reshape(b, h * w, c)
    else:
        x, labels = _image_and_labels(image, partition)
        b, n, c = x.shape
        ids, _, k = _segments(labels)
        _, means = _segment_means(x.reshape(-1, c), ids, k)
        fitted = means[ids].reshape(b, n, c)
    mu = x.mean(dim=1, keepdim=True)
    explained = (fitted - mu).pow(2).sum(dim=(1, 2))
    total = (x - mu).pow(2).sum(dim=(1, 2))
    return torch.where(total > 0, explained / total.clamp_min(1e-300), torch.ones_like(total))


def boundary_pixels(seg: Any, mode: BoundaryMode = "thin", *,
                    image_size: Optional[Sequence[int]] = None) -> Tensor:
    """Boundary pixels of a segmentation.

    Parameters
    ----------
    seg : label images (B, H, W) or (H, W), or a Partition with ``image_size``
    mode : {'thin', 'thick'}, default 'thin'
        'thin': the right or lower 4-neighbour has another label (one pixel per label
        change, the superpixel benchmark's convention); 'thick': any 4-neighbour has
        another label (equal to ``skimage.segmentation.find_boundaries(mode='thick')``).
    image_size : (H, W), optional
        Required when ``seg`` is a Partition.

    Returns
    -------
    BoolTensor of shape (B, H, W)
    """
    if mode not in _BOUNDARY_MODES:
        raise ValueError(f"Expected 'mode' to be one of {_BOUNDARY_MODES} (got {mode!r})")
    labels = _labels(seg, "seg", image_size)
    down = labels[:, 1:, :] != labels[:, :-1, :]   # (B, H−1, W): row y differs from y+1
    right = labels[:, :, 1:] != labels[:, :, :-1]  # (B, H, W−1)
    out = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    out[:, :-1, :] |= down
    out[:, :, :-1] |= right
    if mode == "thick":
        out[:, 1:, :] |= down
        out[:, :, 1:] |= right
    return out


def _check_tolerance(tolerance: Any, h: int, w: int) -> int:
    if tolerance is None:
        return default_tolerance(h, w)
    return check_count(tolerance, "tolerance", 0, or_none=True)


def _dilate(mask: Tensor, radius: int) -> Tensor:
    """Pixels within Chebyshev distance ``radius`` of a True pixel of ``mask`` (B, H, W)."""
    if radius == 0:
        return mask
    pooled = F.max_pool2d(mask.unsqueeze(1).to(torch.float32), 2 * radius + 1, stride=1,
                          padding=radius)
    return pooled.squeeze(1) > 0


def _hit_rate(target: Tensor, other: Tensor, radius: int) -> Tensor:
    """Per image: the share of True pixels of ``target`` within ``radius`` of ``other``
    (1 where ``target`` has none)."""
    hit = (target & _dilate(other, radius)).sum(dim=(1, 2)).to(torch.float64)
    total = target.sum(dim=(1, 2)).to(torch.float64)
    return torch.where(total > 0, hit / total.clamp_min(1), torch.ones_like(total))


def _two_segmentations(seg: Any, truth: Any, image_size) -> tuple[Tensor, Tensor]:
    seg = _labels(seg, "seg", image_size)
    truth = _labels(truth, "truth", image_size if image_size is not None else tuple(seg.shape[1:]))
    _same_shape(truth, seg)
    return seg, truth


def boundary_recall(seg: Any, truth: Any, tolerance: Optional[int] = None, *,
                    mode: BoundaryMode = "thin",
                    image_size: Optional[Sequence[int]] = None) -> Tensor:
    """Boundary recall: the share of truth boundary pixels within ``tolerance`` of a
    boundary pixel of ``seg``.

    Parameters
    ----------
    seg, truth : label images (B, H, W) or (H, W), or Partitions with ``image_size``
        The segmentation and the ground truth, of the same shape.
    tolerance : int, optional
        Chebyshev radius r in pixels; default ``round(0.0025·√(H²+W²))``.
    mode : {'thin', 'thick'}
        Boundary pixels (:func:`boundary_pixels`).

    Returns
    -------
    Tensor of shape (B,), float64
        In [0, 1]; 1 where the truth has no boundary.
    """
    seg, truth = _two_segmentations(seg, truth, image_size)
    r = _check_tolerance(tolerance, *seg.shape[1:])
    return _hit_rate(boundary_pixels(truth, mode), boundary_pixels(seg, mode), r)


def boundary_precision(seg: Any, truth: Any, tolerance: Optional[int] = None, *,
                       mode: BoundaryMode = "thin",
                       image_size: Optional[Sequence[int]] = None) -> Tensor:
    """Boundary precision: the share of boundary pixels of ``seg`` within ``tolerance``
    of a truth boundary pixel (arguments as :func:`boundary_recall`).

    Returns
    -------
    Tensor of shape (B,), float64
        In [0, 1]; 1 where ``seg`` has no boundary.
    """
    seg, truth = _two_segmentations(seg, truth, image_size)
    r = _check_tolerance(tolerance, *seg.shape[1:])
    return _hit_rate(boundary_pixels(seg, mode), boundary_pixels(truth, mode), r)


def undersegmentation_error(seg: Any, truth: Any, *,
                            image_size: Optional[Sequence[int]] = None) -> Tensor:
    """Undersegmentation error of Neubert and Protzel.

    ``UE = (1/N) Σ_G Σ_{S ∩ G ≠ ∅} min(|S ∩ G|, |S − G|)``: every segment that leaks out
    of a truth segment G pays its smaller part, inside or outside G.

    Parameters
    ----------
    seg, truth : label images (B, H, W) or (H, W), or Partitions with ``image_size``

    Returns
    -------
    Tensor of shape (B,), float64
        In [0, 1/2]; 0 when every segment lies inside one truth segment.
    """
    seg, truth = _two_segmentations(seg, truth, image_size)
    b, h, w = seg.shape
    sid, _, overlap, sizes, owner = _contingency(seg, truth)
    leak = torch.minimum(overlap, sizes[sid] - overlap).to(torch.float64)
    return _per_image(leak, owner[sid], b) / (h * w)


def achievable_segmentation_accuracy(seg: Any, truth: Any, *,
                                     image_size: Optional[Sequence[int]] = None) -> Tensor:
    """Achievable segmentation accuracy ``ASA = (1/N) Σ_S max_G |S ∩ G|``.

    The pixel accuracy of the best labelling that gives every segment one truth label
    (its majority label).

    Returns
    -------
    Tensor of shape (B,), float64
        In (0, 1]; 1 when every segment lies inside one truth segment.
    """
    seg, truth = _two_segmentations(seg, truth, image_size)
    b, h, w = seg.shape
    sid, _, overlap, sizes, owner = _contingency(seg, truth)
    best = torch.zeros(sizes.numel(), dtype=torch.long, device=seg.device)
    best.scatter_reduce_(0, sid, overlap, reduce="amax")
    return _per_image(best.to(torch.float64), owner, b) / (h * w)


def compactness(seg: Any, *, image_size: Optional[Sequence[int]] = None) -> Tensor:
    """Compactness of Schick et al. ``CO = Σ_S |S|/N · 4π|S| / P(S)²``.

    The perimeter P(S) counts the sides of the pixels of S that face another segment or
    the image border (4-connectivity): a k×k square has P = 4k and 4π|S|/P² = π/4.

    Returns
    -------
    Tensor of shape (B,), float64
        In (0, π/4]; higher is more compact.
    """
    labels = _labels(seg, "seg", image_size)
    b, h, w = labels.shape
    sides = torch.full(labels.shape, 4, dtype=torch.long, device=labels.device)
    down = (labels[:, 1:, :] == labels[:, :-1, :]).long()
    right = (labels[:, :, 1:] == labels[:, :, :-1]).long()
    sides[:, :-1, :] -= down
    sides[:, 1:, :] -= down
    sides[:, :, :-1] -= right
    sides[:, :, 1:] -= right
    ids, owner, k = _segments(labels)
    area = torch.bincount(ids, minlength=k).to(torch.float64)
    perimeter = torch.zeros(k, dtype=torch.float64, device=labels.device).index_add_(
        0, ids, sides.reshape(-1).to(torch.float64))
    score = area / (h * w) * 4 * math.pi * area / perimeter.square()
    return _per_image(score, owner, b)


def intra_cluster_variation(image: Any, seg: Any) -> Tensor:
    """Intra-cluster variation: the mean over segments of the colour standard deviation
    ``sqrt(Σ_{p∈S} ‖x_p − μ_S‖² / |S|)`` (Benesova and Kottman; Stutz et al.).

    Parameters
    ----------
    image : Tensor (B, C, H, W) / (C, H, W) or any input of ``from_image``
        Values as given (uint8 is mapped to [0, 1]).
    seg : label images (B, H, W) / (H, W), or a Partition of the B·H·W pixels

    Returns
    -------
    Tensor of shape (B,), float64
        0 for a piecewise-constant fit; lower is better.
    """
    x, labels = _image_and_labels(image, seg)
    b, n, c = x.shape
    ids, owner, k = _segments(labels)
    sizes, means = _segment_means(x.reshape(-1, c), ids, k)
    spread = (x.reshape(-1, c) - means[ids]).pow(2).sum(dim=1)
    deviation = (torch.zeros(k, dtype=torch.float64, device=x.device).index_add_(0, ids, spread)
                 / sizes).sqrt()
    count = torch.bincount(owner, minlength=b).to(torch.float64)
    return _per_image(deviation, owner, b) / count


def psnr(image: Any, seg: Any, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio of the mean-colour reconstruction, in dB.

    Every pixel is replaced by its segment's mean colour;
    ``PSNR = 10·log10(data_range² / MSE)`` with the MSE over pixels and channels.

    Parameters
    ----------
    image : Tensor (B, C, H, W) / (C, H, W) or any input of ``from_image``
        uint8 is mapped to [0, 1], hence the default ``data_range=1``.
    seg : label images (B, H, W) / (H, W), or a Partition of the B·H·W pixels
    data_range : float, default 1.0

    Returns
    -------
    Tensor of shape (B,), float64
        ``inf`` for an exact reconstruction.
    """
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"Expected 'data_range' to be a positive number (got {data_range!r})")
    x, labels = _image_and_labels(image, seg)
    b, n, c = x.shape
    ids, _, k = _segments(labels)
    _, means = _segment_means(x.reshape(-1, c), ids, k)
    mse = (x - means[ids].reshape(b, n, c)).pow(2).mean(dim=(1, 2))
    return 10 * torch.log10(float(data_range) ** 2 / mse)


def num_tokens(seg: Any, *, image_size: Optional[Sequence[int]] = None) -> Tensor:
    """Number of segments per image.

    Returns
    -------
    LongTensor of shape (B,)
    """
    labels = _labels(seg, "seg", image_size)
    _, owner, _ = _segments(labels)
    return torch.bincount(owner, minlength=labels.shape[0])
