"""Strategies for hierarchies (chains of partitions) and for partitions read off them.

:func:`chains` coarsens at random (any chain); :func:`contraction_chains` builds a chain
the way dHT does, by contracting one selected edge per block on a graph
(theory/05-contraction.md, Theorem 2). :func:`cuts` and :func:`assignments` draw the
partitions a per-region selection can return (theory/06-selection.md).
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import Tensor

from ..graph.components import choice_components
from ..hierarchy.chain import Hierarchy
from ..partition import Partition
from .graphs import choices
from .partitions import _sizes, partitions

__all__ = ["chains", "contraction_chains", "cuts", "assignments"]


@st.composite
def chains(
    draw,
    n: int | None = None,
    *,
    min_items: int = 0,
    max_items: int = 10,
    max_levels: int = 4,
) -> Hierarchy:
    """Hierarchies built from random coarsenings.

    Each step is an arbitrary partition of the blocks of the level below, so every
    chain ``⊥ = π₀ ≤ π₁ ≤ … ≤ π_T`` of partitions of ``n`` items can occur.

    Parameters
    ----------
    n : int, optional
        The number of items; drawn in ``min_items..max_items`` when ``None``.
    min_items, max_items : int, default 0 and 10
        Bounds on ``n`` when it is drawn.
    max_levels : int, default 4
        Largest T (levels above ⊥); the smallest is 1.

    Returns
    -------
    SearchStrategy of Hierarchy
    """
    n = draw(_sizes(n, min_items, max_items))
    num_steps = draw(st.integers(1, max(1, max_levels)))
    steps, k = [], n
    for _ in range(num_steps):
        step = draw(partitions(k))
        steps.append(step)
        k = step.num_blocks
    return Hierarchy(steps, n)


@st.composite
def contraction_chains(
    draw,
    edge_index: Tensor,
    num_nodes: int,
    *,
    max_levels: int = 4,
    self_loops: bool = True,
) -> Hierarchy:
    """Hierarchies built by contraction on a graph (theory/ Theorem 2).

    Level ``t + 1`` contracts the quotient graph ``G/π_t``: every block ``v`` chooses
    ``a(v)``, a neighbour in ``G/π_t`` or itself, and the new blocks are the components
    of the functional graph ``{(v, a(v))}`` (:func:`dhtgraph.choice_components`).

    Parameters
    ----------
    edge_index : LongTensor of shape (2, E)
        The graph G on ``num_nodes`` nodes (a pixel graph, say).
    num_nodes : int
        n.
    max_levels : int, default 4
        Largest T; building also stops once no block has a neighbour left.
    self_loops : bool, default True
        Whether a block of two or more items may choose its own loop (as in dHT, where a
        pixel has no loop but a larger block has one). With ``False`` no block with a
        neighbour chooses itself, so every level at least halves the count of blocks
        that have neighbours.

    Returns
    -------
    SearchStrategy of Hierarchy
        At least one level above ⊥.
    """
    current = Partition.discrete(num_nodes)
    steps: list[Partition] = []
    while True:
        graph = current.quotient(edge_index)
        may_loop = (current.sizes >= 2) if self_loops else False
        choice = draw(choices(graph, current.num_blocks, self_loops=may_loop))
        step = choice_components(choice)
        steps.append(step)
        current = current.compose(step)
        if len(steps) >= max_levels or current.quotient(edge_index).shape[1] == 0:
            return Hierarchy(steps, num_nodes)


def _levels_per_block(draw, hierarchy: Hierarchy) -> list[Tensor]:
    # One bit per block per level: "the selection stops at this block".
    bits = [torch.ones(hierarchy.num_items, dtype=torch.bool)]  # level 0 always stops
    for t in range(1, hierarchy.num_levels):
        k = hierarchy.num_blocks[t]
        bits.append(torch.tensor(draw(st.lists(st.booleans(), min_size=k, max_size=k)),
                                 dtype=torch.bool))
    return bits


@st.composite
def cuts(draw, hierarchy: Hierarchy, *, mixed: bool = True) -> Partition:
    """Per-region cuts of a hierarchy: partitions whose blocks are blocks of some level.

    Reading the hierarchy from the top, each block either is kept whole or is replaced
    by its children; level 0 (single items) always stops the descent. Different regions
    stop at different levels, so a cut need not be one level of the chain — and with
    ``mixed`` (the default) it is not, whenever the hierarchy has such a cut: a descent
    that ends on a whole level is replaced by one of the cuts that level gives when one
    of its blocks ``B`` (level t) is replaced by its blocks at a lower level s < t,
    among those equal to no level (0.1.0 drew a single level 9 times in 10). A chain
    whose every cut is a level (e.g. each step merges one block into a growing one)
    still gives levels.

    Parameters
    ----------
    hierarchy : Hierarchy of n items
    mixed : bool, default True
        Prefer cuts that are not a level of the chain.

    Returns
    -------
    SearchStrategy of Partition of n items
        Every block of the result is a block of ``hierarchy.absolute(t)`` for some ``t``.
    """
    n, top = hierarchy.num_items, hierarchy.num_levels - 1
    stops = _levels_per_block(draw, hierarchy)
    # Each item takes the highest level at which its block stops the descent.
    chosen = torch.full((n,), -1, dtype=torch.long)
    for t in range(top, -1, -1):
        block = hierarchy.absolute(t).labels
        take = (chosen < 0) & stops[t][block]
        chosen[take] = t
    cut = _blocks_at(hierarchy, chosen)
    if not mixed:
        return cut
    levels = [hierarchy.absolute(t) for t in range(top + 1)]
    if not any(cut == level for level in levels):
        return cut
    candidates = []
    for t in range(1, top + 1):
        for b in range(levels[t].num_blocks):
            inside = levels[t].labels == b
            for s in range(t):
                if levels[s].labels[inside].unique().numel() < 2:
                    continue  # B is already a block of level s
                level_of_item = torch.full((n,), t, dtype=torch.long)
                level_of_item[inside] = s
                candidate = _blocks_at(hierarchy, level_of_item)
                if not any(candidate == level for level in levels):
                    candidates.append(candidate)
    if not candidates:
        return cut
    return candidates[draw(st.integers(0, len(candidates) - 1))]


@st.composite
def assignments(draw, hierarchy: Hierarchy) -> Partition:
    """Partitions whose blocks lie inside blocks of a hierarchy, not necessarily whole.

    Every item ``i`` is assigned a level ``t(i)`` at random; two items share a block when
    they have the same level and the same block at that level. This is the shape of what
    a per-pair selection rule (method §5) may return before it is split into connected
    pieces: each block is a subset, possibly disconnected, of a block of the chain.

    Parameters
    ----------
    hierarchy : Hierarchy of n items

    Returns
    -------
    SearchStrategy of Partition of n items
    """
    n = hierarchy.num_items
    levels = draw(st.lists(st.integers(0, hierarchy.num_levels - 1), min_size=n, max_size=n))
    return _blocks_at(hierarchy, torch.tensor(levels, dtype=torch.long))


def _blocks_at(hierarchy: Hierarchy, level_of_item: Tensor) -> Partition:
    n = hierarchy.num_items
    label = torch.zeros(n, dtype=torch.long)
    for t in range(hierarchy.num_levels):
        here = level_of_item == t
        label[here] = t * max(n, 1) + hierarchy.absolute(t).labels[here]
    return Partition.from_labels(label)
