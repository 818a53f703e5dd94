"""Pool node features and geometry into regions (the blocks of a partition).

:func:`pool_regions` gives, for every block S of a partition of the N nodes, the exact
size-weighted statistics of its nodes: the feature mean ``(1/|S|) Σ_{p∈S} x_p``, the node
count ``|S|``, the bounding box and the centroid of the node positions, and the graph of
the block. It is the last stage of the tokenizer (:class:`dhtgraph.nn.Tokens`) and is
valid for any partition — the IC selection, a level of the hierarchy, or the tokens after
a budget merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from ..partition import Partition

__all__ = ["Regions", "pool_regions", "region_boxes"]


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
        the partitions the library makes; if one does, it gets the graph of its last node.
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


def pool_regions(partition: Partition, x: Tensor, *, pos: Optional[Tensor] = None,
                 batch: Optional[Tensor] = None) -> Regions:
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

    Returns
    -------
    Regions
    """
    n = partition.num_items
    if x.dim() != 2 or x.shape[0] != n:
        raise ValueError(f"Expected 'x' of shape ({n}, d) (got {tuple(x.shape)})")
    labels, k = partition.labels, partition.num_blocks
    sizes = partition.sizes
    count = sizes.to(x.dtype).unsqueeze(1)
    features = x.new_zeros(k, x.shape[1]).index_add(0, labels, x) / count
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
