"""Connected components by repeated min-neighbour hooking and contraction.

This is the foundation's only graph algorithm: :class:`dhtgraph.Partition` uses it for
``join`` and ``is_connected``, and :mod:`dhtgraph.graph.components` wraps it into
partitions. It is pure tensor code in the style of Borůvka's algorithm:

1. every node points at its smallest neighbour (or itself, when that is smaller), a
   forest whose roots are the local minima;
2. pointer jumping (``p ← p[p]``) sends every node to its tree's root, in
   O(log depth) gathers over the nodes;
3. the roots become the nodes of the quotient graph; edges inside a tree disappear, the
   rest are relabelled; repeat until no edge is left.

Every node with an edge joins at least one other node in step 1, so each round at least
halves the number of non-isolated nodes, and edges inside merged groups vanish: on grid
graphs the work is a small constant times E (two or three rounds). Roots are the
smallest node of their group and are ranked in node order, so the final labels number
the components by their first node: canonical labels, no sort.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["component_labels", "forest_labels", "functional_component_labels"]


def _root_of_min_forest(parent: Tensor) -> Tensor:
    """Pointer jumping to the root of the forest ``parent`` (``parent[v] <= v``)."""
    while True:
        jumped = parent.index_select(0, parent)  # 1-D index_select: cheaper than parent[parent]
        if torch.equal(jumped, parent):
            return parent
        parent = jumped


def component_labels(src: Tensor, dst: Tensor, num_nodes: int) -> tuple[Tensor, int]:
    """Label the connected components of an undirected graph canonically.

    Parameters
    ----------
    src, dst : LongTensor of shape (E,)
        Edge end points; direction is ignored. Self-loops and repeated edges are allowed.
    num_nodes : int
        n; node ids are ``0..n−1``.

    Returns
    -------
    labels : LongTensor of shape (n,)
        Component of every node, numbered by the smallest node it contains, i.e.
        canonical (first occurrence) labels.
    num_components : int
        K.

    Notes
    -----
    Each edge is stored once as (low, high) end; a node's smallest neighbour is always
    the low end of one of its edges, so one scatter-min per round builds the min-forest.
    Node-sized arrays are 32-bit below 2³¹ nodes (half the memory traffic of the
    gathers). Host syncs: one per pointer-jumping step and one per round. The result
    does not depend on the order of the edges (only minima are taken), so it is the
    same under any thread count.
    """
    device = src.device
    dtype = _index_dtype(num_nodes)
    labels = None
    k = num_nodes
    low, high = torch.minimum(src, dst), torch.maximum(src, dst)
    keep = low != high
    low, high = low[keep], high[keep].long()
    while low.numel():
        parent = torch.arange(k, device=device, dtype=dtype)
        parent.scatter_reduce_(0, high, low.to(dtype), reduce="amin")
        group, k = forest_labels(parent)
        del parent
        labels = group if labels is None else group.index_select(0, labels)
        a, b = group.index_select(0, low), group.index_select(0, high)
        low, high = torch.minimum(a, b), torch.maximum(a, b)
        keep = low != high
        low, high = low[keep], high[keep].long()
    if labels is None:
        return torch.arange(num_nodes, device=device), k
    return labels.long(), k


def _index_dtype(n: int) -> torch.dtype:
    # int32 halves memory and bandwidth of the node-sized arrays; labels stay exact.
    return torch.int32 if n < 2**31 - 1 else torch.long


def forest_labels(parent: Tensor) -> tuple[Tensor, int]:
    """Canonical labels of the trees of a min-forest (``parent[v] <= v``).

    Parameters
    ----------
    parent : IntTensor or LongTensor of shape (n,)
        ``parent[v] <= v``; roots point at themselves.

    Returns
    -------
    labels : Tensor of shape (n,), the dtype of ``parent``
        Tree of every node, numbered by its root (the tree's smallest node) in node
        order, i.e. canonically.
    num_trees : int
    """
    n = parent.numel()
    if n == 0:
        return parent.clone(), 0
    root = _root_of_min_forest(parent)
    is_root = root == torch.arange(n, device=parent.device, dtype=parent.dtype)
    rank = torch.cumsum(is_root, 0, dtype=parent.dtype).sub_(1)
    return rank.index_select(0, root), int(rank[-1]) + 1


def finish_components(group: Tensor, k: int, src: Tensor, dst: Tensor) -> tuple[Tensor, int]:
    """Components of a graph whose nodes were already grouped into connected groups.

    ``group`` (n,) holds canonical labels ``0..k−1`` of connected groups; ``src``/``dst``
    are the group ids of the remaining edges (any direction). Returns the canonical
    component labels (n,) as LongTensor and their number.
    """
    keep = src != dst
    if bool(keep.any()):
        sub, k = component_labels(src[keep].long(), dst[keep].long(), k)
        return sub.index_select(0, group), k
    return group.long(), k


def functional_component_labels(choice: Tensor) -> tuple[Tensor, int]:
    """:func:`component_labels` of the functional graph ``v → choice[v]``.

    Same result as ``component_labels(arange(n), choice, n)``; the first hooking round is
    done without edge arrays (each node's smallest neighbour is the smallest of itself, its
    choice and the nodes that chose it) and in 32-bit indices.
    """
    n = choice.numel()
    device = choice.device
    dtype = _index_dtype(n)
    node = torch.arange(n, device=device, dtype=dtype)
    parent = torch.minimum(node, choice.to(dtype))
    parent.scatter_reduce_(0, choice.long(), node, reduce="amin")
    del node
    group, k = forest_labels(parent)
    del parent
    return finish_components(group, k, group, group.index_select(0, choice))
