"""ctypes bindings of ``edges.c``: coalesced edge lists without a sort.

Callers: :func:`dhtgraph.graph.pixel.grid_quotient` (the grid's quotient by block labels),
the contraction's edge relabel (:func:`relabel_edges`), and :func:`coalesce_pairs`, the
generic form (``torch.unique`` of pair keys, relabelled and undirected on request: the
budget's unit graph and the token quotient). Every function returns a LongTensor
(2, E') sorted by (source, target) without duplicates — the tensor formulas' result,
exactly — in O(pairs + nodes): a counting sort by target, then a walk of the targets in
increasing order with a "last target seen" mark per source (see ``edges.c``).
Inputs are CPU tensors (the callers check :func:`dhtgraph._native.enabled`).
"""

from __future__ import annotations

import ctypes
from typing import Callable, Optional

import torch
from torch import Tensor

from . import I64, PTR, as_index, function, pointer, rows

__all__ = ["grid_quotient", "relabel_edges", "coalesce_pairs"]

_NULL = None  # a NULL pointer argument (ctypes passes None as NULL)
_LONG = torch.long
_WORK = ctypes.POINTER(ctypes.c_void_p)  # the prepare calls' work-area argument
_SKIP_LOOPS, _UNDIRECTED = 1, 2  # the flags of pairs.h

#: int32 scratch when every index and count fits in this (the kernels clamp it to
#: 2³¹ − 1); the tests lower it to run the int64 form on small inputs.
_NARROW_LIMIT = 2**31 - 1


def _coalesced(prepare: Callable[..., int], *args) -> tuple[Optional[Tensor], int]:
    """The two calls: ``prepare(*args, &work)`` (E' or a negative code), then the (2, E')
    output allocated and written from the work area. Returns the output and 0, or None
    and the code. The work area is freed in a ``finally`` whatever happens once the
    prepare call has returned one (the output's allocation failing, an interrupt), and
    only there: the write leaves it allocated."""
    free = function("edges", "dht_pairs_free", None, PTR)
    work = ctypes.c_void_p()  # NULL until a prepare call sets it (none on an error code)
    try:
        num_edges = prepare(*args, ctypes.byref(work))
        if num_edges < 0:
            return None, num_edges
        out = torch.empty((2, num_edges), dtype=_LONG)
        function("edges", "dht_pairs_write", None, PTR, PTR, PTR)(work, *rows(out))
        return out, 0
    finally:
        if work.value:
            free(work)


def grid_quotient(labels: Tensor, num_blocks: int, num_images: int, height: int, width: int,
                  loops: bool = False) -> Tensor:
    """:func:`dhtgraph.graph.pixel.grid_quotient` in one pass over the pixels.

    Raises
    ------
    ValueError
        For ``labels`` of the wrong size or with values outside ``0..num_blocks − 1``, a
        negative ``num_images``, ``height`` or ``width``, or a negative ``num_blocks``
        with ``loops`` (one loop per block; the tensor path raises torch's RuntimeError
        there, and takes a negative ``num_blocks`` as 1 without ``loops``, as here).
    TypeError
        For ``labels`` not of an integer dtype.
    MemoryError
        When the kernel's scratch cannot be allocated.
    """
    if min(num_images, height, width) < 0:
        raise ValueError(f"Expected non-negative 'num_images', 'height' and 'width' (got "
                         f"{num_images}, {height}, {width})")
    if loops and num_blocks < 0:
        raise ValueError(f"Expected a non-negative 'num_blocks' with loops=True (got "
                         f"{num_blocks})")
    n = num_images * height * width
    if labels.numel() != n:
        raise ValueError(f"Expected 'labels' to have {n} entries, one per pixel (got "
                         f"{labels.numel()})")
    labels = as_index(labels, "labels")
    k = max(int(num_blocks), 1)
    prepare = function("edges", "dht_grid_prepare", I64, PTR, I64, I64, I64, I64, I64, I64,
                       _WORK)
    out, num_edges = _coalesced(prepare, pointer(labels, _LONG), num_images, height, width, k,
                                int(num_blocks) if loops else 0, _NARROW_LIMIT)
    if num_edges == -1:
        raise ValueError(f"Expected 'labels' values in 0..{k - 1} (num_blocks={num_blocks})")
    if num_edges == -2:
        raise ValueError(f"Expected 'num_blocks' in 0..{k} for the loops (got {num_blocks})")
    if num_edges < 0:
        raise MemoryError(f"grid_quotient: no memory for the scratch of {n} pixels")
    return out


def _pairs(src: int, dst: int, m: int, labels: Optional[Tensor], n: int, k: int,
           flags: int) -> tuple[Tensor, int]:
    """The steps of ``pairs.h`` on the m pairs (labels[src], labels[dst]) (no labels:
    (src, dst)); src and dst are the addresses of contiguous int64 arrays. Returns the
    pairs (2, E') and 0, or None and the prepare call's error code (-1: src or dst outside
    ``0..n − 1``, -2: labels outside ``0..k − 1``).

    Raises
    ------
    MemoryError
        When the kernel's scratch cannot be allocated.
    """
    table = _NULL if labels is None else pointer(labels, _LONG)
    prepare = function("edges", "dht_edges_prepare", I64, PTR, PTR, I64, PTR, I64, I64, I64,
                       I64, _WORK)
    out, status = _coalesced(prepare, src, dst, m, table, n, k, flags, _NARROW_LIMIT)
    if status == -3:
        raise MemoryError(f"coalescing {m} pairs: no memory for the kernel's scratch")
    return out, status


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
    TypeError
        For ``labels`` or ``edge_index`` not of an integer dtype.
    MemoryError
        When the kernel's scratch cannot be allocated.
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"Expected 'edge_index' to have shape (2, E) (got "
                         f"{tuple(edge_index.shape)})")
    labels, edge_index = as_index(labels, "labels"), as_index(edge_index, "edge_index")
    n, k = labels.numel(), max(int(num_blocks), 1)
    out, status = _pairs(*rows(edge_index), edge_index.shape[1], labels, n, k, 0)
    if status < 0:
        raise ValueError(f"Expected 'edge_index' values in 0..{n - 1} and 'labels' values in "
                         f"0..{k - 1}")
    return out


def coalesce_pairs(src: Tensor, dst: Tensor, num_nodes: int, *, relabel: Optional[Tensor] = None,
                   undirected: bool = False, self_loops: bool = False) -> Tensor:
    """The distinct pairs ``(relabel[src[e]], relabel[dst[e]])`` (or ``(src[e], dst[e])``),
    sorted: ``torch.unique`` of their keys ``lo·n + hi``, decoded.

    Parameters
    ----------
    src, dst : LongTensor of shape (E,)
        The two ends (no order between them is assumed), in ``0..num_nodes − 1``, or in
        ``0..len(relabel) − 1`` with ``relabel``.
    num_nodes : int
        n: the (relabelled) ends lie in ``0..n − 1``.
    relabel : LongTensor of shape (N,), optional
        A map of the ends, values in ``0..n − 1``.
    undirected : bool, default False
        Each pair as (min, max).
    self_loops : bool, default False
        Keep the pairs whose (relabelled) ends are equal.

    Returns
    -------
    LongTensor of shape (2, E')
        Sorted by (lo, hi), no duplicates.

    Raises
    ------
    ValueError
        For ``src`` and ``dst`` of different lengths.
    IndexError
        For an end (or a relabelled end) out of range.
    TypeError
        For ``src``, ``dst`` or ``relabel`` not of an integer dtype.
    MemoryError
        When the kernel's scratch cannot be allocated.
    """
    src, dst = as_index(src, "src").reshape(-1), as_index(dst, "dst").reshape(-1)
    if src.numel() != dst.numel():
        raise ValueError(f"Expected 'src' and 'dst' of the same length (got {src.numel()}, "
                         f"{dst.numel()})")
    n = max(int(num_nodes), 1)
    rel = None if relabel is None else as_index(relabel, "relabel").reshape(-1)
    ends = n if rel is None else rel.numel()
    flags = (0 if self_loops else _SKIP_LOOPS) | (_UNDIRECTED if undirected else 0)
    out, status = _pairs(pointer(src, _LONG), pointer(dst, _LONG), src.numel(), rel, ends, n,
                         flags)
    if status == -1:
        raise IndexError(f"Expected 'src' and 'dst' in [0, {ends})")
    if status == -2:
        raise IndexError(f"Expected 'relabel' in [0, {n})")
    return out
