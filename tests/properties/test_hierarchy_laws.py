"""Laws of hierarchies: composing chains, the contraction theorem, selection.

Every test names the statement of theory/ it checks; theory/ names the test back.
"""

from __future__ import annotations

import networkx as nx
import torch
from hypothesis import assume, event, given
from hypothesis import strategies as st

from dhtgraph import Hierarchy, Partition, choice_components, connected_components
from dhtgraph.hierarchy.contraction import BlockState, contract
from dhtgraph.selection.select import connected_split as library_connected_split
from dhtgraph.testing import (
    Graph,
    assignments,
    chains,
    choices,
    contraction_chains,
    cuts,
    grid_graphs,
    partitions,
    random_graphs,
)

# ---------------------------------------------------------------- Definition 9, Proposition 6


@given(partitions().flatmap(lambda p: st.tuples(st.just(p), partitions(p.num_blocks))))
def test_compose_of_canonical_partitions_is_canonical(pair):
    """Checks theory/04-hierarchies.md Proposition 6 (composition): composing canonical
    labels gives canonical labels, the partition item i ↦ ρ(π(i)), coarser than π."""
    p, q = pair
    composed = p.compose(q).validate()
    assert composed == Partition.from_labels(q.labels[p.labels])
    assert composed.num_blocks == q.num_blocks
    assert p.refines(composed)


@given(chains())
def test_chain_levels_refine_each_other(h):
    """Checks theory/04-hierarchies.md Definition 9 and Proposition 6: the absolute levels
    of a chain built from relative steps satisfy π_s ≤ π_t for all s ≤ t, with
    π_0 = ⊥, and ``Hierarchy.validate`` accepts it."""
    h.validate()
    levels = [h.absolute(t) for t in range(h.num_levels)]
    assert levels[0] == Partition.discrete(h.num_items)
    for s in range(h.num_levels):
        for t in range(s, h.num_levels):
            assert levels[s].refines(levels[t])
    assert [p.num_blocks for p in levels] == h.num_blocks


@given(chains())
def test_chain_from_absolute_levels_round_trips(h):
    """Checks theory/04-hierarchies.md Definition 9 and Proposition 6 (c): a chain is
    determined by its
    absolute levels; rebuilding it from them gives the same relative steps."""
    levels = [h.absolute(t) for t in range(1, h.num_levels)]
    again = Hierarchy.from_absolute(levels).validate()
    assert again.num_levels == h.num_levels
    for t in range(1, h.num_levels):
        assert again.level(t) == h.level(t)
        assert again.absolute(t) == h.absolute(t)


# ---------------------------------------------------------------- Lemma 2, Theorem 2


@st.composite
def graph_choices(draw, self_loops=True):
    # Random graphs (loops, repeated edges, isolated nodes) and pixel graphs (no isolated
    # node once H·W ≥ 2), so both forms of the count bound are exercised.
    graph = draw(st.one_of(
        random_graphs(max_nodes=12, max_edges=16, undirected=True),
        grid_graphs(max_side=4, connectivity=None).map(lambda g: Graph(g.edge_index, g.num_nodes)),
    ))
    return graph, draw(choices(*graph, self_loops=self_loops))


def _num_cycles(choice: list[int]) -> int:
    # Follow v → a(v) from every node; a cycle is counted once, at its smallest node.
    cycles = set()
    for v in range(len(choice)):
        seen = []
        while v not in seen:
            seen.append(v)
            v = choice[v]
        cycle = seen[seen.index(v):]
        cycles.add(min(cycle))
    return len(cycles)


@given(graph_choices())
def test_functional_graph_components_have_one_cycle_each(gc):
    """Checks theory/05-contraction.md Definition 11 (functional graph of a choice) and
    Lemma 3 (functional graphs): the components of {(v, a(v))} are as many as the cycles
    of a, and each holds v together with a(v)."""
    _, choice = gc
    comp = choice_components(choice).validate()
    assert comp.num_blocks == _num_cycles(choice.tolist())
    assert torch.equal(comp.labels, comp.labels[choice])


@given(grid_graphs(max_side=5, connectivity=None).flatmap(
    lambda g: st.tuples(st.just(g), contraction_chains(g.edge_index, g.num_nodes, max_levels=2),
                        st.integers(0, 2**16))))
def test_gluing_connected_blocks_along_an_edge(ghi):
    """Checks theory/01-graphs.md Lemma 1 (gluing): two connected blocks joined by an edge
    of G have a connected union (blocks of a contraction level, merged across one
    edge between them)."""
    grid, h, pick = ghi
    p = h.absolute(1)
    src, dst = grid.edge_index
    crossing = (p.labels[src] != p.labels[dst]).nonzero().squeeze(1)
    assume(crossing.numel() > 0)
    e = int(crossing[pick % crossing.numel()])
    a, b = int(p.labels[src[e]]), int(p.labels[dst[e]])
    glued = Partition.from_labels(torch.where(p.labels == b, a, p.labels))
    event("glued")
    assert p.is_connected(grid.edge_index)
    assert glued.num_blocks == p.num_blocks - 1
    assert glued.is_connected(grid.edge_index)


@given(graph_choices())
def test_contraction_step_refines(gc):
    """Checks theory/05-contraction.md Definition 11 (contraction by a choice) and
    Theorem 2 (i): the new partition π' = components of {(v, a(v))} is coarser than the
    old one, ⊥ ≤ π', and lifts through ``compose``."""
    (_, n), choice = gc
    step = choice_components(choice)
    # every chosen pair (v, a(v)) lies in one block …
    assert torch.equal(step.labels, step.labels[choice])
    # … and π' is the finest such partition: the components of the functional graph.
    functional = nx.Graph()
    functional.add_nodes_from(range(n))
    functional.add_edges_from(zip(range(n), choice.tolist()))
    assert step.num_blocks == nx.number_connected_components(functional)
    assert Partition.discrete(n).compose(step) == step


@given(graph_choices())
def test_contraction_step_keeps_blocks_connected(gc):
    """Checks theory/05-contraction.md Theorem 2 (ii), through theory/01-graphs.md Lemma 1
    (gluing): when every choice follows an edge of G (or is a self-loop), every new block
    induces a connected subgraph of G."""
    (edge_index, _), choice = gc
    assert choice_components(choice).is_connected(edge_index)


@given(graph_choices(self_loops=False))
def test_contraction_step_halves_without_self_loops(gc):
    """Checks theory/05-contraction.md Theorem 2 (iii): when no node with a neighbour
    chooses its self-loop, K' ≤ (n + s)/2 where s counts the isolated nodes (forced
    loops); on a graph without isolated nodes, K' ≤ n/2."""
    (edge_index, n), choice = gc
    isolated = int((choice == torch.arange(n)).sum())
    k = choice_components(choice).num_blocks
    assert 2 * k <= n + isolated
    proper = edge_index[:, edge_index[0] != edge_index[1]]  # a node's own loop is no neighbour
    degree = torch.zeros(n, dtype=torch.long).index_add_(
        0, proper.reshape(-1), torch.ones(proper.numel(), dtype=torch.long))
    assert isolated == int((degree == 0).sum())
    if bool((degree > 0).all()):
        event("no isolated node")
        assert 2 * k <= n


@given(graph_choices(self_loops=True))
def test_contraction_count_bound_with_self_loops(gc):
    """Checks theory/05-contraction.md Theorem 2 (iii), general form, and Lemma 3: with s
    self-loop choices, K' ≤ (n + s)/2 and K' ≥ s (each loop is its own cycle)."""
    (_, n), choice = gc
    loops = int((choice == torch.arange(n)).sum())
    k = choice_components(choice).num_blocks
    assert loops <= k
    assert 2 * k <= n + loops


# The same laws on the functions the library's contraction really calls
# (hierarchy/contraction.py: argmax_choice → functional_component_labels → pooling;
# hierarchy/grid.py: the pixel-grid fast path), not only on choice_components.


def _networkx_components(n: int, choice: torch.Tensor) -> int:
    functional = nx.Graph()
    functional.add_nodes_from(range(n))
    functional.add_edges_from(zip(range(n), choice.tolist()))
    return nx.number_connected_components(functional)


@given(graph_choices())
def test_functional_component_labels_obey_the_contraction_theorem(gc):
    """Checks theory/05-contraction.md Lemma 3 and Theorem 2 (i)–(iii) on
    ``functional_component_labels`` (the component function ``contract`` and
    ``grid_contraction`` call): canonical labels with v and a(v) together, one block per
    cycle (networkx), connected blocks, and s ≤ K' ≤ (n + s)/2."""
    from dhtgraph._union import component_labels, functional_component_labels

    (edge_index, n), choice = gc
    labels, k = functional_component_labels(choice)
    step = Partition(labels, k, canonical=True).validate()
    assert step == choice_components(choice)
    assert torch.equal(labels, component_labels(torch.arange(n), choice, n)[0])
    assert torch.equal(labels, labels[choice])
    assert k == _networkx_components(n, choice) == _num_cycles(choice.tolist())
    assert step.is_connected(edge_index)
    loops = int((choice == torch.arange(n)).sum())
    assert loops <= k and 2 * k <= n + loops


@st.composite
def contraction_inputs(draw):
    # A pixel graph with loops on some nodes (blocks of ≥ 2 pixels have one in dHT),
    # symmetric potentials from a small palette (many exact ties, as on flat images),
    # and a movable mask that need not follow whole images.
    grid = draw(grid_graphs(max_side=4, max_images=2, connectivity=None))
    n = grid.num_nodes
    loops = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=torch.bool)
    node = loops.nonzero().squeeze(1)
    edges = torch.cat([grid.edge_index, torch.stack([node, node])], 1)
    key = torch.unique(edges[0] * n + edges[1])
    edges = torch.stack([key // n, key % n])
    palette = [0.0, 0.25, 0.5, 0.5 + 1e-7, 0.9, 1.0]
    low, high = torch.minimum(edges[0], edges[1]), torch.maximum(edges[0], edges[1])
    pick = draw(st.lists(st.integers(0, len(palette) - 1), min_size=n * n, max_size=n * n))
    potential = torch.tensor(palette, dtype=torch.float64)[torch.tensor(pick)[low * n + high]]
    movable = draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n).map(
        lambda bits: torch.tensor(bits, dtype=torch.bool))))
    weights = draw(st.sampled_from(["size", "argmax_edge"]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    mean = torch.rand(n, 2, generator=g, dtype=torch.float64)
    row = (torch.arange(n) % (grid.height * grid.width)) // grid.width
    col = torch.arange(n) % grid.width
    batch = torch.arange(n) // (grid.height * grid.width)
    state = BlockState.from_pixels(mean, torch.stack([row, col], 1), edges, batch)
    return grid, state, potential, movable, weights


@given(contraction_inputs())
def test_contract_obeys_the_contraction_theorem(inputs):
    """Checks theory/05-contraction.md Definition 11 and Theorem 2 (i)–(iii) on
    ``contract`` itself: its choice a follows an edge or is a loop, its partition is the
    contraction by a (networkx), every block is connected, s ≤ K' ≤ (n + s)/2; frozen
    blocks choose themselves, no block merges into one, and they keep their statistics
    bit for bit while merged blocks get the pooled size."""
    grid, state, potential, movable, weights = inputs
    n = state.num_blocks
    step = contract(state, potential, weights=weights, movable=movable)
    choice, part = step.choice, step.partition.validate()
    edges = {tuple(e) for e in state.edge_index.t().tolist()}
    assert all(a == v or (v, a) in edges for v, a in enumerate(choice.tolist()))
    assert torch.equal(part.labels, part.labels[choice])
    assert part.num_blocks == _networkx_components(n, choice)
    assert part.is_connected(grid.edge_index)
    loops = int((choice == torch.arange(n)).sum())
    assert loops <= part.num_blocks and 2 * part.num_blocks <= n + loops
    assert torch.equal(step.state.size, part.sizes)
    if movable is not None:
        frozen = (~movable).nonzero().squeeze(1)
        assert torch.equal(choice[frozen], frozen)
        target = part.labels[frozen]
        assert bool((part.sizes[target] == 1).all())
        assert torch.equal(step.state.mean[target], state.mean[frozen])
        event("movable mask")


@given(image_values=st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(2, 5),
                              st.integers(1, 3), st.integers(0, 2**16)),
       weights=st.sampled_from(["size", "argmax_edge"]))
def test_grid_fast_path_is_the_general_contraction(image_values, weights):
    """Checks theory/05-contraction.md Theorem 2 (ii)–(iii) on ``grid_contraction`` (the
    first level of every tokenizer call): on images with few colour levels (exact
    ties) it equals ``contract`` on the pixel graph bit for bit, its blocks are connected
    and, without loops at level 0, K' ≤ n/2."""
    from dhtgraph.graph import grid_edge_index
    from dhtgraph.hierarchy.affinity import edge_affinity
    from dhtgraph.hierarchy.grid import grid_contraction, pixel_state

    b, h, w, levels, seed = image_values
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b * h * w, 3, generator=g) * levels).floor() / levels
    node = torch.arange(h * w)
    pos = torch.stack([node // w, node % w], 1).repeat(b, 1)
    batch = torch.arange(b).repeat_interleave(h * w)
    edge_index = grid_edge_index(h, w, b)
    full = BlockState.from_pixels(x, pos, edge_index, batch)
    potential = edge_affinity(full.mean, full.var, full.size, full.bbox, edge_index)
    expected = contract(full, potential, weights=weights)
    got = grid_contraction(pixel_state(x, b, batch if b > 1 else None), b, h, w,
                           weights=weights)
    assert got.partition == expected.partition and torch.equal(got.choice, expected.choice)
    for name in ("mean", "var", "size", "bbox", "edge_index", "batch"):
        assert torch.equal(getattr(got.state, name), getattr(expected.state, name)), name
    assert got.partition.is_connected(edge_index)
    assert 2 * got.partition.num_blocks <= b * h * w


@given(grid_graphs(max_side=5, connectivity=None).flatmap(
    lambda g: st.tuples(st.just(g), contraction_chains(g.edge_index, g.num_nodes))))
def test_contraction_chain_on_grid_graphs_validates(gh):
    """Checks theory/05-contraction.md Corollary 2 (chains by contraction): a hierarchy built
    by contracting one chosen edge per block on a pixel graph is a chain whose every
    block is connected; ``Hierarchy.validate(edge_index)`` passes."""
    grid, h = gh
    h.validate(grid.edge_index)
    for t in range(1, h.num_levels):
        assert h.absolute(t - 1).refines(h.absolute(t))
        assert h.absolute(t).is_connected(grid.edge_index)


@given(grid_graphs(max_side=5).flatmap(
    lambda g: st.tuples(st.just(g), contraction_chains(g.edge_index, g.num_nodes,
                                                       max_levels=8, self_loops=False))))
def test_contraction_chain_without_loops_halves_every_level(gh):
    """Checks theory/05-contraction.md Corollary 2: without self-loops the count of blocks
    at least halves at every level until each image is one block, so the chain reaches
    the images' components in at most ⌈log₂(HW)⌉ levels."""
    grid, h = gh
    counts = h.num_blocks
    for before, after in zip(counts, counts[1:]):
        # Blocks already alone in their image have no neighbour and must loop.
        assert 2 * after <= before + grid.num_images
    top = h.absolute(h.num_levels - 1)
    if h.num_levels - 1 < 8:  # stopped because no block had a neighbour left
        assert top == connected_components(grid.edge_index, grid.num_nodes)
    hw = grid.height * grid.width
    assert h.num_levels - 1 <= max(1, (hw - 1).bit_length())


# ---------------------------------------------------------------- Theorem 3 (selection)


def connected_split(p: Partition, edge_index: torch.Tensor) -> Partition:
    """σ^G by the library (:func:`dhtgraph.selection.select.connected_split`), not a copy."""
    return library_connected_split(p.labels, edge_index)


def _top(grid) -> Partition:
    return connected_components(grid.edge_index, grid.num_nodes)


@st.composite
def grid_chain_partition(draw, pick):
    grid = draw(grid_graphs(max_side=5))
    h = draw(contraction_chains(grid.edge_index, grid.num_nodes))
    return grid, h, draw(pick(h))


@given(grid_chain_partition(assignments))
def test_connected_split_of_selection_is_connected_and_refines_top(ghp):
    """Checks theory/06-selection.md Theorem 3 (selection): splitting the blocks of a
    per-region selection into connected pieces gives a partition that refines the
    selection, whose every block is connected, and that refines ⊤ (one block per
    image)."""
    grid, _, sigma = ghp
    split = connected_split(sigma, grid.edge_index).validate()
    assert split.refines(sigma)
    assert split.is_connected(grid.edge_index)
    assert split.refines(_top(grid))


@given(grid_chain_partition(assignments))
def test_connected_split_is_the_coarsest_connected_refinement(ghp):
    """Checks theory/06-selection.md Definition 13 (connected split) and Theorem 3 (iii):
    the split is the coarsest connected
    partition refining σ: items of one block of σ joined by a path inside that block
    share a block of the split, i.e. σ^G = σ ∧ reach(G restricted to σ) (networkx)."""
    grid, _, sigma = ghp
    split = connected_split(sigma, grid.edge_index)
    g = nx.Graph()
    g.add_nodes_from(range(grid.num_nodes))
    lab = sigma.labels.tolist()
    g.add_edges_from((u, v) for u, v in grid.edge_index.t().tolist() if lab[u] == lab[v])
    label = torch.empty(grid.num_nodes, dtype=torch.long)
    for k, comp in enumerate(nx.connected_components(g)):
        label[sorted(comp)] = k
    assert split == Partition.from_labels(label)


@given(grid_chain_partition(cuts))
def test_cut_of_contraction_chain_is_connected(ghp):
    """Checks theory/06-selection.md Definition 12 (cut) and Corollary 3: a cut of a chain
    built by contraction
    is already connected, so splitting leaves it unchanged; it lies between ⊥ and ⊤."""
    grid, h, cut = ghp
    assert cut.is_connected(grid.edge_index)
    assert connected_split(cut, grid.edge_index) == cut
    assert Partition.discrete(grid.num_nodes).refines(cut)
    assert cut.refines(h.absolute(h.num_levels - 1))
    assert cut.refines(_top(grid))
