"""Connected components by min-neighbour hooking and pointer jumping (few host syncs).

This is the foundation's only graph algorithm: :class:`dhtgraph.Partition` uses it for
``join`` and ``is_connected``, and :mod:`dhtgraph.graph.components` wraps it into
partitions. It is pure tensor code in the style of Shiloach–Vishkin:

1. every node points at its smallest neighbour (or itself, when that is smaller): a
   forest ``parent[v] <= v`` whose pointers stay inside the node's component;
2. pointer jumping (``p ← p[p]``) moves every node towards its tree's root;
3. every edge whose two ends reach different roots hooks the larger root under the
   smaller one (a scatter-min; only roots are re-pointed, so no pointer — possibly the
   only record of a link — is lost); repeat 2–3 until every node points at a root and
   no edge joins two roots.

Pointers only ever decrease and stay in the component, so the smallest node of every
component is a root throughout and, at the end, the only one: roots ranked in node order
number the components by their first node (canonical labels, no sort).

Host syncs: the edges are never compacted (an edge inside a tree is a no-op hook), and
the jumps run :data:`JUMPS_PER_READ` at a time between reads, so one round costs one host
read (``moving``, ``crossing`` and the component count together). Typical contraction
levels take one or two rounds.

Native path: on CPU tensors, with the kernels of :mod:`dhtgraph._native` in use, every
function here runs one C pass instead (``_native/components.c``: a union-find whose roots
are the smallest nodes, or a walk along the choices), with the same labels, dtype and
count; indices out of range fall back to the tensor code (and its errors).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _native

__all__ = ["component_labels", "forest_labels", "forest_components", "finish_components",
           "functional_component_labels", "JUMPS_PER_READ", "CHOICE_JUMPS_PER_READ"]

#: Pointer-jumping steps (doublings) between two host reads: a round resolves trees of
#: depth ≤ 2**JUMPS_PER_READ without a second read (contraction levels of photographs
#: have depth ≤ 32 at level 0 and ≤ 16 after); deeper trees take another round.
JUMPS_PER_READ = 4


def _index_dtype(n: int) -> torch.dtype:
    # int32 halves memory and bandwidth of the node-sized arrays; labels stay exact.
    return torch.int32 if n < 2**31 - 1 else torch.long


def forest_components(parent: Tensor, low: Tensor | None = None, high: Tensor | None = None,
                      jumps: int = JUMPS_PER_READ) -> tuple[Tensor, int]:
    """Canonical components of the graph made of the pointers ``v → parent[v]`` and the
    edges ``(low, high)``.

    Parameters
    ----------
    parent : IntTensor or LongTensor of shape (n,)
        ``parent[v] <= v`` and ``parent[v]`` in v's component (roots point at themselves).
    low, high : Tensor of shape (E,), optional
        Further edges (any order of the two ends; ``low == high`` is allowed and ignored).
    jumps : int, default JUMPS_PER_READ
        Doublings between two reads (more for forests known to be deep).

    Returns
    -------
    labels : Tensor of shape (n,), the dtype of ``parent``
        Component of every node, numbered by its smallest node in node order.
    num_components : int

    Notes
    -----
    One host read per round (see the module notes); no edge compaction.
    """
    n = parent.numel()
    if n == 0:
        return parent.clone(), 0
    if _native.enabled("components", parent, *((low, high) if low is not None else ())):
        from ._native.components import forest_components as native

        found = native(parent, low, high)
        if found is not None:
            return found[0].to(parent.dtype), found[1]
    device, dtype = parent.device, parent.dtype
    node = torch.arange(n, device=device, dtype=dtype)
    jumps = min(jumps, max(1, math.ceil(math.log2(n))))
    has_edges = low is not None and low.numel() > 0
    while True:
        for _ in range(jumps):
            parent = parent.index_select(0, parent)
        after = parent.index_select(0, parent)
        flags = [(after != parent).any()]
        if has_edges:
            a, b = after.index_select(0, low), after.index_select(0, high)
            flags.append((a != b).any())
        rank = torch.cumsum(after == node, 0, dtype=dtype)
        flags.append(rank[-1])
        read = torch.stack([f.to(torch.long) for f in flags]).tolist()  # the round's one sync
        parent = after
        moving, crossing = read[0], (read[1] if has_edges else 0)
        if not moving and not crossing:
            return rank.sub_(1).index_select(0, parent), read[-1]
        if crossing:
            # Hook roots only (a non-root's pointer may be the only record of its link).
            hi, lo = torch.maximum(a, b), torch.minimum(a, b)
            if moving:
                lo = torch.where(parent.index_select(0, hi) == hi, lo, hi)
            parent.scatter_reduce_(0, hi.long(), lo, reduce="amin")


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
    The first forest: every node's smallest neighbour is the low end of one of its
    edges (one scatter-min). Node-sized arrays are 32-bit below 2³¹ nodes (half the
    memory traffic of the gathers). Host syncs: one per round
    (:func:`forest_components`). The result does not depend on the order of the edges
    (only minima are taken), so it is the same under any thread count.
    """
    if _native.enabled("components", src, dst):
        from ._native.components import edge_components

        found = edge_components(src, dst, num_nodes)
        if found is not None:
            return found
    device = src.device
    dtype = _index_dtype(num_nodes)
    if src.numel() == 0:
        return torch.arange(num_nodes, device=device), num_nodes
    low, high = torch.minimum(src, dst), torch.maximum(src, dst)
    low, high = low.to(dtype), high.to(dtype)
    parent = torch.arange(num_nodes, device=device, dtype=dtype)
    parent.scatter_reduce_(0, high.long(), low, reduce="amin")
    labels, k = forest_components(parent, low, high)
    return labels.long(), k


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
    return forest_components(parent)


def finish_components(group: Tensor, k: int, src: Tensor, dst: Tensor) -> tuple[Tensor, int]:
    """Components of a graph whose nodes were already grouped into connected groups.

    ``group`` (n,) holds canonical labels ``0..k−1`` of connected groups; ``src``/``dst``
    are the group ids of the remaining edges (any direction; equal ends are ignored).
    Returns the canonical component labels (n,) as LongTensor and their number (one host
    read per round, none to test whether any edge is left).
    """
    sub, k = component_labels(src, dst, k)
    return sub.index_select(0, group.long()), k


#: Doublings of the choice pointers per read in :func:`functional_component_labels`:
#: in-trees of depth ≤ 2**5 = 32 (contraction levels of photographs) take one read.
CHOICE_JUMPS_PER_READ = 5


def functional_component_labels(choice: Tensor) -> tuple[Tensor, int]:
    """:func:`component_labels` of the functional graph ``v → choice[v]``.

    Same result as ``component_labels(arange(n), choice, n)``, usually with one host
    read. Every component of a functional graph is an in-tree around one cycle, and the
    contraction's choices (an argmax over a symmetric potential with a strict order on
    ties) only make cycles of length ≤ 2. So: jump along the choices
    (:data:`CHOICE_JUMPS_PER_READ` doublings) until every node sits on its cycle, take
    ``rep = min(p, choice[p])`` (the cycle's smaller node) and check on the device that
    every edge ``(v, a(v))`` joins equal representatives. If it does, the representatives
    are the components (each is a node of the same component, and equal along every
    edge), whatever the depth reached or the cycle lengths; numbering them by the
    smallest node of each gives the canonical labels. The read brings the check and the
    count together. A longer cycle, which never passes the check, falls back to the
    min-forest algorithm once the jumps have covered n.
    """
    if _native.enabled("components", choice):
        from ._native.components import choice_components

        found = choice_components(choice)
        if found is not None:
            return found
    n = choice.numel()
    device = choice.device
    dtype = _index_dtype(n)
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=device), 0
    node = torch.arange(n, device=device, dtype=dtype)
    target = choice.to(dtype)
    jumps = min(CHOICE_JUMPS_PER_READ, max(1, math.ceil(math.log2(n))))
    reach, p = 1, target
    while True:
        for _ in range(jumps):
            p = p.index_select(0, p)
        reach *= 2 ** jumps
        rep = torch.minimum(p, target.index_select(0, p))
        broken = (rep != rep.index_select(0, target)).any()
        smallest = torch.full((n,), n, dtype=dtype, device=device).scatter_reduce_(
            0, rep.long(), node, reduce="amin").index_select(0, rep)
        rank = torch.cumsum(smallest == node, 0, dtype=dtype)
        broken, k = torch.stack([broken.long(), rank[-1].long()]).tolist()  # one sync
        if not broken:
            return rank.sub_(1).index_select(0, smallest).long(), k
        if reach >= n:
            break
    # A cycle longer than 2: the general algorithm on the first min-forest.
    parent = torch.minimum(node, target)
    parent.scatter_reduce_(0, choice.long(), node, reduce="amin")
    labels, k = forest_components(parent, node, target)
    return labels.long(), k
