"""Laws of the selection, checked on the library's own selection code: the connected split
(:func:`dhtgraph.selection.select.connected_split`, both its grid and its edge-list path)
and :func:`dhtgraph.selection.select_partition` / ``InformationSelector``.

Every test names the statement of theory/ it checks; theory/ names the test back.
"""

from __future__ import annotations

import math
import random

import networkx as nx
import torch
from hypothesis import event, given
from hypothesis import strategies as st

from dhtgraph import Partition, connected_components
from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy
from dhtgraph.selection import ic_stopping, information_criterion, select_partition
from dhtgraph.selection.select import connected_split
from dhtgraph.testing import assignments, contraction_chains, cuts, grid_graphs


@st.composite
def grid_chain_partition(draw, pick):
    grid = draw(grid_graphs(max_side=5))
    h = draw(contraction_chains(grid.edge_index, grid.num_nodes))
    return grid, h, draw(pick(h))


def _splits(grid, sigma):
    """The library's split by its edge-list path and, for one image, its grid path."""
    out = [connected_split(sigma.labels, grid.edge_index)]
    h, w = getattr(grid, "height", None), getattr(grid, "width", None)
    if h is not None and w is not None and h * w == grid.num_nodes:
        out.append(connected_split(sigma.labels, image_size=(h, w)))
    return out


def _top(grid) -> Partition:
    return connected_components(grid.edge_index, grid.num_nodes)


@given(grid_chain_partition(assignments))
def test_connected_split_of_selection_is_connected_and_refines_top(ghp):
    """Checks theory/06-selection.md Theorem 3 (selection) (i), (ii), (iv) on the library's
    connected split: it refines σ, every block is connected, and it refines ⊤."""
    grid, _, sigma = ghp
    for split in _splits(grid, sigma):
        split.validate()
        assert split.refines(sigma)
        assert split.is_connected(grid.edge_index)
        assert split.refines(_top(grid))
        assert Partition.discrete(grid.num_nodes).refines(split)


@given(grid_chain_partition(assignments), st.integers(0, 2**32 - 1))
def test_connected_split_is_the_coarsest_connected_refinement(ghp, seed):
    """Checks theory/06-selection.md Definition 13 (connected split) and Theorem 3 (iii)
    as stated: for a drawn connected τ ≤ σ (components of a random subset of the edges
    inside σ's blocks, found by networkx), τ ≤ σ^G; and σ^G equals networkx's components
    of G without the edges between blocks."""
    grid, _, sigma = ghp
    lab = sigma.labels.tolist()
    inside = [(u, v) for u, v in grid.edge_index.t().tolist() if lab[u] == lab[v]]
    rng = random.Random(seed)
    keep = rng.random()
    g_tau = nx.Graph()
    g_tau.add_nodes_from(range(grid.num_nodes))
    g_tau.add_edges_from(e for e in inside if rng.random() < keep)
    tau = Partition.from_labels(_labels_of(nx.connected_components(g_tau), grid.num_nodes))
    g_sigma = nx.Graph()
    g_sigma.add_nodes_from(range(grid.num_nodes))
    g_sigma.add_edges_from(inside)
    expected = Partition.from_labels(_labels_of(nx.connected_components(g_sigma), grid.num_nodes))
    assert tau.refines(sigma) and tau.is_connected(grid.edge_index)
    event(f"tau == split: {tau == expected}")
    for split in _splits(grid, sigma):
        assert tau.refines(split)
        assert split == expected


def _labels_of(components, n) -> torch.Tensor:
    label = torch.empty(n, dtype=torch.long)
    for k, comp in enumerate(components):
        label[sorted(comp)] = k
    return label


@given(grid_chain_partition(cuts))
def test_cut_of_contraction_chain_is_connected(ghp):
    """Checks theory/06-selection.md Definition 12 (cut) and Corollary 3 on the library's
    split: a cut of a contraction chain is already connected, splitting leaves it
    unchanged, and it lies between ⊥ and the chain's top."""
    grid, h, cut = ghp
    for split in _splits(grid, cut):
        assert split == cut
    assert cut.refines(h.absolute(h.num_levels - 1))
    assert cut.refines(_top(grid))


@st.composite
def small_images(draw):
    b = draw(st.integers(1, 2))
    h, w = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    levels = draw(st.sampled_from([1.0, 3.0, 8.0]))
    coarse = torch.rand(b, 3, 3, 3, generator=g) * levels
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="nearest") \
        + draw(st.sampled_from([0.0, 0.05, 0.3])) * torch.rand(b, 3, h, w, generator=g)
    criterion = draw(st.sampled_from(["aic", "aicc", "bic", "cic"]))
    iota = draw(st.sampled_from([0.5, 5.0, 50.0]))
    return img.permute(0, 2, 3, 1).reshape(-1, 3), PixelGrid(b, h, w), criterion, iota


@given(small_images())
def test_selection_keeps_each_nodes_best_block(case):
    """Checks theory/06-selection.md Definition 12 (selection) and Theorem 3 on
    select_partition (InformationSelector): every node ends in the block of the last
    level that maximises IC over the levels its graph took part in (ties to the later,
    coarser level: IC(c) ≥ IC(o) moves); its token is the connected piece of the nodes
    that chose that same block at that same level; the tokens are connected and refine
    the top."""
    x, grid, criterion, iota = case
    built = build_hierarchy(x, grid, weights="size", stop=ic_stopping(criterion, iota))
    sel = select_partition(built, criterion, iota)
    hier = built.hierarchy
    n = grid.num_nodes
    node_graph = torch.arange(grid.num_images).repeat_interleave(grid.nodes_per_image)
    best = torch.full((n,), -math.sqrt(grid.nodes_per_image))
    level_of = torch.zeros(n, dtype=torch.long)
    block_of = torch.arange(n)
    top = hier.num_levels - 1
    for t in range(1, hier.num_levels):
        state = built.levels[t]
        ic = information_criterion(state.var, state.size, grid.nodes_per_image, criterion, iota)
        absolute = hier.absolute(t).labels
        took_part = (built.num_levels[node_graph] >= t) | (t == top)
        better = (ic[absolute] >= best) & took_part
        best = torch.where(better, ic[absolute], best)
        level_of = torch.where(better, torch.full_like(level_of, t), level_of)
        block_of = torch.where(better, absolute, block_of)
    chosen = Partition.from_labels(level_of * (n + 1) + block_of)
    edges = grid.edge_index()
    assert sel.partition == connected_split(chosen.labels, edges)
    assert torch.equal(sel.ic, best[_first_node(sel.partition)])
    assert sel.partition.is_connected(edges)
    assert sel.partition.refines(hier.absolute(top))
    moved = int((level_of > 0).sum())
    event(f"share of nodes that left their pixel: {round(moved / n, 1)}")


def _first_node(p: Partition) -> torch.Tensor:
    first = torch.full((p.num_blocks,), p.num_items, dtype=torch.long)
    return first.scatter_reduce_(0, p.labels, torch.arange(p.num_items), reduce="amin")


def test_ties_move_to_the_coarser_block():
    """Checks theory/06-selection.md Definition 12 (selection): on equal IC the stored
    block moves to the new, coarser block (IC(c) ≥ IC(o)), and a worse block never takes
    it. With a criterion that scores every block 0 (registered for the test), every level
    ties with the one before, so the selection ends at the top: one token per image."""
    from dhtgraph.selection import CRITERION_FUNCTIONS

    CRITERION_FUNCTIONS.register("test-tie", lambda var, size, n, iota: torch.zeros(size.shape))
    try:
        x = torch.rand(2 * 36, 3)
        built = build_hierarchy(x, PixelGrid(2, 6, 6), weights="size", compactness=0.0)
        assert built.hierarchy.num_levels > 3
        sel = select_partition(built, "test-tie", 1.0)
        assert sel.partition.num_blocks == 2 and sel.batch.tolist() == [0, 1]
    finally:
        CRITERION_FUNCTIONS._items.pop("test-tie")
    # A strip whose halves differ: the top is worse than the halves, which are kept.
    x = torch.zeros(8, 3)
    x[4:] = 10.0
    built = build_hierarchy(x, PixelGrid(1, 1, 8), weights="size", compactness=0.0)
    sel = select_partition(built, "aic", 5.0)
    assert sel.partition.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
