"""The region adjacency graph: the quotient of the pixel graph by a partition.

Blocks (tokens) become nodes; two blocks are adjacent when a pixel edge joins them
(architecture: ``Partition.quotient``). The result is a PyG ``Data`` so region graphs
batch with ``torch_geometric.data.Batch`` like any other graph.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..partition import Partition

__all__ = ["region_graph"]


def _check_rows(value: Optional[Tensor], name: str, n: int) -> Optional[Tensor]:
    if value is None:
        return None
    if not isinstance(value, Tensor) or value.dim() not in (1, 2) or value.shape[0] != n:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"Expected '{name}' to have shape ({n}, F), one row per pixel (got {got})")
    return value


def region_graph(partition: Partition, edge_index: Tensor, x: Optional[Tensor] = None,
                 pos: Optional[Tensor] = None, *, batch: Optional[Tensor] = None):
    """The region adjacency graph of ``partition`` over a pixel graph.

    Parameters
    ----------
    partition : Partition of n pixels
        The regions (blocks, tokens), K of them.
    edge_index : LongTensor of shape (2, E)
        The pixel graph (e.g. ``from_image(img).edge_index``).
    x : Tensor of shape (n, F), optional
        Pixel features, pooled to their block mean.
    pos : Tensor of shape (n, 2), optional
        Pixel positions; the block centroid (mean position) is stored.
    batch : LongTensor of shape (n,), optional
        Image of every pixel (``from_image(batch).batch``); blocks inherit it. Without
        it all blocks belong to image 0.

    Returns
    -------
    torch_geometric.data.Data
        - ``edge_index`` : LongTensor (2, E') between blocks, both directions,
          coalesced, without self-loops;
        - ``sizes`` : LongTensor (K,), pixels per block;
        - ``x`` : Tensor (K, F) pooled mean (when ``x`` is given);
        - ``pos`` : Tensor (K, 2) centroid (when ``pos`` is given);
        - ``batch`` : LongTensor (K,), image of every block (zeros without ``batch``),
          so a region graph of a batch of images is a PyG mini-batch of their graphs;
        - ``num_nodes`` = K.
        ``Batch.from_data_list`` of several such graphs offsets ``edge_index`` and, as
        for any PyG graph, sets ``batch`` to the index of each graph in the list.

    Raises
    ------
    ValueError
        If ``edge_index``, ``x``, ``pos`` or ``batch`` do not fit the n pixels, or a block
        holds pixels of two images.
    """
    from torch_geometric.data import Data

    if not isinstance(partition, Partition):
        raise TypeError(f"Expected 'partition' to be a dhtgraph.Partition "
                        f"(got {type(partition).__name__})")
    n = partition.num_items
    edges = partition.quotient(edge_index)
    data = Data(edge_index=edges, num_nodes=partition.num_blocks)
    data.sizes = partition.sizes
    x = _check_rows(x, "x", n)
    if x is not None:
        data.x = partition.reduce(x.to(torch.get_default_dtype()) if not x.is_floating_point()
                                  else x, "mean")
    pos = _check_rows(pos, "pos", n)
    if pos is not None:
        data.pos = partition.reduce(pos.to(torch.get_default_dtype()) if not pos.is_floating_point()
                                    else pos, "mean")
    if batch is not None:
        if not isinstance(batch, Tensor) or batch.shape != (n,):
            got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise ValueError(f"Expected 'batch' to have shape ({n},) (got {got})")
        batch = batch.to(partition.device).long()
        lo = partition.reduce(batch, "min")
        hi = partition.reduce(batch, "max")
        if not torch.equal(lo, hi):
            raise ValueError("Expected every block of 'partition' to lie inside one image of "
                             "'batch' (a block holds pixels of two images)")
        data.batch = lo
    else:
        data.batch = torch.zeros(partition.num_blocks, dtype=torch.long, device=partition.device)
    return data
