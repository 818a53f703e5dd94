"""ctypes bindings of ``edges.c``: coalesced edge lists without a sort.

Callers: :func:`dhtgraph.graph.pixel.grid_quotient` (the grid's quotient by block labels)
and the contraction's edge relabel (:func:`relabel_edges`); :func:`coalesce_pairs` is the
generic form (``torch.unique`` of pair keys). Every function returns a LongTensor
(2, E') sorted by (source, target) without duplicates — the tensor formulas' result,
exactly — in O(pairs + nodes): a counting sort by target, then a walk of the targets in
increasing order with a "last target seen" mark per source (see ``edges.c``).
Inputs are CPU tensors (the callers check :func:`dhtgraph._native.enabled`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, function, pointer

__all__ = ["grid_quotient", "relabel_edges", "coalesce_pairs"]

_NULL = None  # a NULL pointer argument (ctypes passes None as NULL)


def _long(t: Tensor) -> Tensor:
    return t.to(torch.long).contiguous()


def _empty(n: int) -> Tensor:
    return torch.empty(n, dtype=torch.long)


def _coalesce(count: Tensor, total: int, fill_pass, k: int) -> Tensor:
    """Passes 2 and 3 of ``edges.c`` once pass 1 has counted ``total`` candidates."""
    start, bucket, last, fill = _empty(k + 1), _empty(total), _empty(k), _empty(k)
    num_edges = fill_pass(pointer(start), pointer(bucket), pointer(last), pointer(fill))
    out = torch.empty((2, num_edges), dtype=torch.long)
    function("edges", "dht_write_pairs", None, PTR, PTR, I64, PTR, PTR, PTR, PTR)(
        pointer(start), pointer(bucket), k, pointer(last), pointer(fill),
        pointer(out[0]), pointer(out[1]))
    return out


def grid_quotient(labels: Tensor, num_blocks: int, num_images: int, height: int, width: int,
                  loops: bool = False) -> Tensor:
    """:func:`dhtgraph.graph.pixel.grid_quotient` in three passes over the pixels.

    Raises
    ------
    ValueError
        For ``labels`` of the wrong size or with values outside ``0..num_blocks − 1``.
    """
    n = num_images * height * width
    if labels.numel() != n:
        raise ValueError(f"Expected 'labels' to have {n} entries, one per pixel (got "
                         f"{labels.numel()})")
    labels = _long(labels)
    k = max(int(num_blocks), 1)
    num_loops = int(num_blocks) if loops else 0
    count, pair = _empty(k), _empty(4 * width)
    total = function("edges", "dht_grid_count", I64, PTR, I64, I64, I64, I64, PTR, PTR)(
        pointer(labels), num_images, height, width, k, pointer(pair), pointer(count))
    if total < 0:
        raise ValueError(f"Expected 'labels' values in 0..{k - 1} (num_blocks={num_blocks})")
    start, bucket, last, up, down = _empty(k + 1), _empty(total), _empty(k), _empty(k), _empty(k)
    num_edges = function("edges", "dht_grid_fill", I64, PTR, I64, I64, I64, I64, I64, PTR, PTR,
                         PTR, PTR, PTR, PTR, PTR)(
        pointer(labels), num_images, height, width, k, num_loops, pointer(pair), pointer(count),
        pointer(start), pointer(bucket), pointer(last), pointer(up), pointer(down))
    out, row = torch.empty((2, num_edges), dtype=torch.long), _empty(k + 1)
    function("edges", "dht_grid_write", None, PTR, PTR, I64, I64, PTR, PTR, PTR, PTR, PTR, PTR)(
        pointer(start), pointer(bucket), k, num_loops, pointer(last), pointer(up), pointer(down),
        pointer(row), pointer(out[0]), pointer(out[1]))
    return out


def _pairs(src: Tensor, dst: Tensor, labels: Optional[Tensor], n: int, k: int,
           skip_loops: bool, names: tuple[str, str]) -> Tensor:
    src, dst = _long(src), _long(dst)
    if src.numel() != dst.numel():
        raise ValueError(f"Expected '{names[0]}' and '{names[1]}' of the same length (got "
                         f"{src.numel()} and {dst.numel()})")
    table = _NULL if labels is None else pointer(labels)
    count, seen = _empty(k), _empty(k)
    total = function("edges", "dht_edges_count", I64, PTR, PTR, I64, PTR, I64, I64, I64, PTR,
                     PTR)(pointer(src), pointer(dst), src.numel(), table, n, k, int(skip_loops),
                          pointer(seen), pointer(count))
    if total < 0:
        if labels is None:
            raise ValueError(f"Expected '{names[0]}' and '{names[1]}' values in 0..{n - 1}")
        raise ValueError(f"Expected '{names[0]}' values in 0..{n - 1} and 'labels' values in "
                         f"0..{k - 1}")
    fill = function("edges", "dht_edges_fill", I64, PTR, PTR, I64, PTR, I64, I64, PTR, PTR, PTR,
                    PTR, PTR, PTR)
    return _coalesce(count, total, lambda *scratch: fill(
        pointer(src), pointer(dst), src.numel(), table, k, int(skip_loops), pointer(seen),
        pointer(count), *scratch), k)


def relabel_edges(labels: Tensor, num_blocks: int, edge_index: Tensor) -> Tensor:
    """The quotient of ``edge_index`` by ``labels``, with self-loops, coalesced.

    Parameters
    ----------
    labels : LongTensor of shape (n,)
        Block of every node, in ``0..num_blocks − 1``.
    num_blocks : int
        K'.
    edge_index : LongTensor of shape (2, E)
        Edges on the n nodes.

    Returns
    -------
    LongTensor of shape (2, E')
        The distinct pairs ``(labels[src], labels[dst])`` sorted by (source, target):
        ``Partition(labels).quotient(edge_index, self_loops=True)``, i.e. ``torch.unique``
        of the keys ``labels[src]·K' + labels[dst]``, decoded.

    Raises
    ------
    ValueError
        For an ``edge_index`` not of shape (2, E) or with values outside ``0..n − 1``, or
        ``labels`` outside ``0..num_blocks − 1``.
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"Expected 'edge_index' to have shape (2, E) (got "
                         f"{tuple(edge_index.shape)})")
    labels = _long(labels)
    return _pairs(edge_index[0], edge_index[1], labels, labels.numel(), max(int(num_blocks), 1),
                  False, ("edge_index", "edge_index"))


def coalesce_pairs(lo: Tensor, hi: Tensor, num_nodes: int, *, self_loops: bool = True) -> Tensor:
    """The distinct pairs ``(lo[e], hi[e])``, sorted: ``torch.unique(lo·n + hi)``, decoded.

    Parameters
    ----------
    lo, hi : LongTensor of shape (E,)
        The two ends, in ``0..num_nodes − 1`` (no order between them is assumed).
    num_nodes : int
        n.
    self_loops : bool, default True
        False leaves out the pairs ``lo == hi``.

    Returns
    -------
    LongTensor of shape (2, E')
        Sorted by (lo, hi), no duplicates.
    """
    n = max(int(num_nodes), 1)
    return _pairs(lo, hi, None, n, n, not self_loops, ("lo", "hi"))
