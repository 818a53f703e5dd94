"""Pool node features and geometry into regions (the blocks of a partition).

:func:`pool_regions` gives, for every block S of a partition of the N nodes, the exact
size-weighted statistics of its nodes: the feature mean ``(1/|S|) Σ_{p∈S} x_p``, the node
count ``|S|``, the bounding box and the centroid of the node positions, and the graph of
the block. It is the last stage of the tokenizer (:class:`dhtgraph.nn.Tokens`) and is
valid for any partition — the IC selection, a level of the hierarchy, or the tokens after
a budget merge.

:func:`pool_grid_regions` is the same for a partition of the pixels of B images of H × W
(the tokenizer's case), with the geometry read from the *runs* of equal labels along the
rows instead of every pixel: a run of token t on row y from column x0 to x1 adds
``x1 − x0 + 1`` pixels, row sum ``y·len`` and column sum ``(x0 + x1)·len / 2`` to t and
bounds its box, so the reductions run over the runs (a fraction of the pixels on photographs)
and the sums are exact integers (no pixel-position tensor is built).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .. import _native
from ..partition import Partition

__all__ = ["Regions", "pool_regions", "pool_grid_regions", "region_boxes"]


@dataclass(frozen=True)
class Regions:
    """Statistics of the K blocks of a partition of N nodes.

    Attributes
    ----------
    features : Tensor of shape (K, d)
        ``Σ_{p∈S} x_p / |S|``: the mean of the node features over the block's nodes
        (every node weighs 1; differentiable in ``x``).
    sizes : LongTensor of shape (K,)
        ``|S|``, nodes per block.
    bbox : LongTensor or Tensor of shape (K, 4) or None
        ``(ymin, xmin, ymax, xmax)`` of the node positions, inclusive (the positions'
        dtype); None without positions.
    centroids : Tensor of shape (K, 2) or None
        Mean node position ``Σ_{p∈S} pos_p / |S|`` (float32, float64 for float64
        positions); None without positions.
    batch : LongTensor of shape (K,)
        Graph of every block (zeros without ``batch``). A block never spans two graphs in
        the partitions the library makes; if one does, it gets the graph of one of its
        nodes (which one is unspecified).
    """

    features: Tensor
    sizes: Tensor
    bbox: Optional[Tensor]
    centroids: Optional[Tensor]
    batch: Tensor

    def __post_init__(self):
        k = self.sizes.shape[0]
        if self.features.dim() != 2 or self.features.shape[0] != k:
            raise ValueError(f"Expected 'features' of shape ({k}, d) "
                             f"(got {tuple(self.features.shape)})")
        for name, shape in (("bbox", (k, 4)), ("centroids", (k, 2)), ("batch", (k,))):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"Expected '{name}' of shape {shape} (got {tuple(value.shape)})")


def region_boxes(partition: Partition, pos: Tensor) -> Tensor:
    """Inclusive bounding boxes ``(ymin, xmin, ymax, xmax)`` (K, 4) of node positions (N, 2)."""
    k = partition.num_blocks
    idx = partition.labels.unsqueeze(1).expand(-1, 2)
    low = pos.new_empty(k, 2).scatter_reduce_(0, idx, pos, reduce="amin", include_self=False)
    high = pos.new_empty(k, 2).scatter_reduce_(0, idx, pos, reduce="amax", include_self=False)
    return torch.cat([low, high], dim=1)


def _check_sizes(sizes: Optional[Tensor], partition: Partition) -> Tensor:
    if sizes is None:
        return partition.sizes
    k = partition.num_blocks
    if not isinstance(sizes, Tensor) or sizes.shape != (k,) or sizes.dtype != torch.long:
        got = (f"{tuple(sizes.shape)} {sizes.dtype}" if isinstance(sizes, Tensor)
               else type(sizes).__name__)
        raise ValueError(f"Expected 'sizes' to be a LongTensor of shape ({k},), the nodes per "
                         f"block (got {got})")
    return sizes


def _block_means(partition: Partition, x: Tensor, sizes: Tensor) -> Tensor:
    if (not (torch.is_grad_enabled() and x.requires_grad)
            and _native.enabled("tokens", x, partition.labels, sizes)):
        # Without a gradient: the same sums (rows added in index order, as index_add
        # along dim 0 on the CPU) and division in one native pass.
        from .._native.tokens import block_means
        out = block_means(x, partition.labels, partition.num_blocks, sizes)
        if out is not None:
            return out
    count = sizes.to(x.dtype).unsqueeze(1)
    return x.new_zeros(partition.num_blocks, x.shape[1]).index_add(0, partition.labels, x) / count


def pool_regions(partition: Partition, x: Tensor, *, pos: Optional[Tensor] = None,
                 batch: Optional[Tensor] = None, sizes: Optional[Tensor] = None) -> Regions:
    """Exact per-block statistics of node features and positions.

    Parameters
    ----------
    partition : Partition of the N nodes
        The K regions.
    x : Tensor of shape (N, d)
        Node features.
    pos : Tensor of shape (N, 2), optional
        Node positions (pixels: (row, col)); gives ``bbox`` and ``centroids``.
    batch : LongTensor of shape (N,), optional
        Graph of every node.
    sizes : LongTensor of shape (K,), optional
        ``partition.sizes`` when the caller has counted them (saves a pass over the nodes).

    Returns
    -------
    Regions
    """
    n = partition.num_items
    if x.dim() != 2 or x.shape[0] != n:
        raise ValueError(f"Expected 'x' of shape ({n}, d) (got {tuple(x.shape)})")
    labels, k = partition.labels, partition.num_blocks
    sizes = _check_sizes(sizes, partition)
    features = _block_means(partition, x, sizes)
    bbox = centroids = None
    if pos is not None:
        if pos.shape != (n, 2):
            raise ValueError(f"Expected 'pos' of shape ({n}, 2) (got {tuple(pos.shape)})")
        bbox = region_boxes(partition, pos)
        dtype = torch.float64 if pos.dtype == torch.float64 else torch.float32
        centroids = torch.zeros(k, 2, dtype=dtype, device=pos.device).index_add_(
            0, labels, pos.to(dtype)) / sizes.to(dtype).unsqueeze(1)
    if batch is None:
        region_batch = torch.zeros(k, dtype=torch.long, device=labels.device)
    else:
        region_batch = torch.empty(k, dtype=torch.long, device=labels.device).scatter_(
            0, labels, batch.long())
    return Regions(features=features, sizes=sizes, bbox=bbox, centroids=centroids,
                   batch=region_batch)


def _centroids(sums: Tensor, sizes: Tensor) -> Tensor:
    # The exact integer position sums (K, 2) over the sizes (K,), divided in float64 (the
    # sizes convert exactly inside the in-place division) and rounded once to float32.
    return sums.double().div_(sizes.unsqueeze(1)).float()


def pool_grid_regions(partition: Partition, x: Tensor, num_images: int, height: int,
                      width: int, *, sizes: Optional[Tensor] = None) -> Regions:
    """:func:`pool_regions` of a partition of the pixels of ``num_images`` images of
    ``height`` × ``width``, row-major, with pixel positions (row, col) within the image.

    The same features and bounding boxes, bit for bit; the centroids are the exact means
    (integer sums, divided in float64, rounded once to float32), equal to
    :func:`pool_regions`' float32 sums wherever those are exact (below 2^24 per token and
    axis) and closer otherwise. ``batch`` is the image of every region (of its first pixel).

    Parameters
    ----------
    partition : Partition of the N = B·H·W pixels
    x : Tensor of shape (N, d)
        Pixel features (differentiable).
    num_images, height, width : int
        B, H, W.
    sizes : LongTensor of shape (K,), optional
        ``partition.sizes`` when the caller has counted them.

    Returns
    -------
    Regions
    """
    n = partition.num_items
    if n != num_images * height * width:
        raise ValueError(f"Expected 'partition' of the {num_images}·{height}·{width} pixels "
                         f"(got {n} items)")
    if x.dim() != 2 or x.shape[0] != n:
        raise ValueError(f"Expected 'x' of shape ({n}, d) (got {tuple(x.shape)})")
    labels, k = partition.labels, partition.num_blocks
    sizes = _check_sizes(sizes, partition)
    features = _block_means(partition, x, sizes)
    if _native.enabled("selection", labels):
        from .._native.selection import grid_region_stats
        bbox, sums, region_batch = grid_region_stats(labels, k, num_images, height, width)
        centroids = _centroids(sums, sizes)
        return Regions(features=features, sizes=sizes, bbox=bbox, centroids=centroids,
                       batch=region_batch)
    rows = labels.view(num_images * height, width)
    change = rows[:, 1:] != rows[:, :-1]                       # (B·H, W − 1)
    edge = torch.ones(num_images * height, 1, dtype=torch.bool, device=labels.device)
    first = torch.cat([edge, change], 1).view(-1).nonzero().squeeze(1)   # run starts
    # Runs tile the pixels in raster order (a row always starts a run): each ends just
    # before the next one starts.
    last = torch.cat([first[1:], first.new_full((1,), n)]) - 1
    run = labels.index_select(0, first)
    line = torch.div(first, width, rounding_mode="floor")      # row over all images
    x0 = first - line * width
    x1 = last - line * width
    y = line.remainder(height)
    length = x1 - x0 + 1
    index = run.unsqueeze(1).expand(-1, 2)
    # Extremes start from values every run beats (include_self: no masking pass).
    low = torch.full((k, 2), max(height, width), dtype=torch.long, device=labels.device)
    low.scatter_reduce_(0, index, torch.stack([y, x0], 1), reduce="amin")
    high = torch.full((k, 2), -1, dtype=torch.long, device=labels.device)
    high.scatter_reduce_(0, index, torch.stack([y, x1], 1), reduce="amax")
    # Exact integer sums of the rows and columns: (x0 + x1)·len is always even.
    sums = torch.zeros(k, 2, dtype=torch.long, device=labels.device).index_add_(
        0, run, torch.stack([y * length, torch.div((x0 + x1) * length, 2, rounding_mode="floor")], 1))
    centroids = _centroids(sums, sizes)
    # The image of a region: that of its first run (canonical labels: its first pixel).
    region_batch = torch.full((k,), num_images, dtype=torch.long, device=labels.device)
    region_batch.scatter_reduce_(0, run, torch.div(line, height, rounding_mode="floor"),
                                 reduce="amin")
    return Regions(features=features, sizes=sizes, bbox=torch.cat([low, high], 1),
                   centroids=centroids, batch=region_batch)
