"""Laws of graphs: pixel neighbourhoods, induced subgraphs, connectivity, reachability,
quotient graphs.

Every test names the statement of theory/ it checks; theory/ names the test back.
"""

from __future__ import annotations

import networkx as nx
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch_geometric.utils import coalesce, remove_self_loops

from dhtgraph import Partition, connected_components, from_image
from dhtgraph.graph import as_image_tensor
from dhtgraph.testing import grid_graphs, images, partitions, random_graphs


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(e) for e in edge_index.t().tolist()}


def to_networkx(edge_index: torch.Tensor, num_nodes: int) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(num_nodes))
    g.add_edges_from(edge_index.t().tolist())
    return g


def is_coalesced(edge_index: torch.Tensor, num_nodes: int) -> bool:
    return torch.equal(coalesce(edge_index, num_nodes=num_nodes), edge_index)


# ---------------------------------------------------------------- Definition 1, Proposition 1


@given(images())
def test_from_image_edge_count_4(image):
    """Checks theory/01-graphs.md Proposition 1 (edge count of the pixel graph): the
    4-neighbour graph of B images of H×W pixels has E = 2·B·(2HW − H − W) directed
    edges and N = B·H·W nodes."""
    b, _, h, w = as_image_tensor(image).shape
    g = from_image(image)
    assert g.num_nodes == b * h * w
    assert g.edge_index.shape == (2, 2 * b * (2 * h * w - h - w))


@given(images())
def test_from_image_edge_count_8(image):
    """Checks theory/01-graphs.md Proposition 1: the 8-neighbour graph has
    E = 2·B·(4HW − 3H − 3W + 2) directed edges."""
    b, _, h, w = as_image_tensor(image).shape
    g = from_image(image, connectivity=8)
    assert g.edge_index.shape == (2, 2 * b * (4 * h * w - 3 * h - 3 * w + 2))


@given(images(), st.sampled_from([4, 8]))
def test_from_image_edges_are_symmetric_coalesced_and_loopless(image, connectivity):
    """Checks theory/01-graphs.md Definition 1 (neighbourhood): the neighbourhood relation
    is symmetric and irreflexive, so the stored edges hold both directions, no
    self-loops, and no duplicates (coalesced, sorted)."""
    g = from_image(image, connectivity=connectivity)
    ei = g.edge_index
    assert ei.dtype == torch.long
    assert not bool((ei[0] == ei[1]).any())
    assert edge_set(ei) == edge_set(ei.flip(0))
    assert is_coalesced(ei, g.num_nodes)


@given(images(), st.sampled_from([4, 8]))
def test_from_image_edges_are_pixel_neighbourhoods(image, connectivity):
    """Checks theory/01-graphs.md Definition 1: u and v are joined exactly when they are
    pixels of the same image with ‖p_u − p_v‖₁ = 1 (4-neighbourhood) or
    ‖p_u − p_v‖_∞ = 1 (8-neighbourhood), where p = (row, col)."""
    b, _, h, w = as_image_tensor(image).shape
    g = from_image(image, connectivity=connectivity)
    expected = set()
    for img in range(b):
        for y in range(h):
            for x in range(w):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        if (dy, dx) == (0, 0) or (connectivity == 4 and dy and dx):
                            continue
                        if 0 <= y + dy < h and 0 <= x + dx < w:
                            u = img * h * w + y * w + x
                            expected.add((u, u + dy * w + dx))
    assert edge_set(g.edge_index) == expected
    node = torch.arange(b * h * w)
    assert torch.equal(g.pos, torch.stack([(node % (h * w)) // w, node % w], 1).float())


# ---------------------------------------------------------------- Definitions 2–4, Theorem 1


@st.composite
def graphs_with_partitions(draw):
    graph = draw(random_graphs())
    return graph, draw(partitions(graph.num_nodes))


@given(graphs_with_partitions())
def test_block_connectivity_matches_induced_subgraphs(gp):
    """Checks theory/01-graphs.md Definition 2 (induced subgraph) and Definition 3
    (connected set):
    ``Partition.is_connected`` holds exactly when the induced subgraph G[S] of every
    block S is connected (networkx on random graphs with loops, repeats and isolated
    nodes)."""
    (edge_index, n), p = gp
    g = to_networkx(edge_index, n)
    expected = all(nx.is_connected(g.subgraph(block))
                   for block in _blocks(p))
    assert p.is_connected(edge_index) == expected


@given(random_graphs())
def test_reachability_classes_equal_networkx_components(graph):
    """Checks theory/01-graphs.md Definition 4 (reachability), theory/02-equivalence.md
    Lemma 2 and theory/03-partitions.md Theorem 1, Corollary 1: the classes of
    reachability, as computed by ``connected_components``, are networkx's connected
    components."""
    edge_index, n = graph
    ours = connected_components(edge_index, n).validate()
    label = torch.empty(n, dtype=torch.long)
    for k, component in enumerate(nx.connected_components(to_networkx(edge_index, n))):
        label[sorted(component)] = k
    assert ours == Partition.from_labels(label)


@given(random_graphs(max_nodes=12, max_edges=10))
def test_reachability_classes_form_a_partition(graph):
    """Checks theory/01-graphs.md Definition 3 (connectivity) and theory/03-partitions.md
    Theorem 1 and Corollary 1 directly: the reachability classes are a valid partition;
    no edge leaves a class (closure) and every class is connected; so u ∼ v exactly when
    u and v share a block."""
    edge_index, n = graph
    p = connected_components(edge_index, n).validate()
    src, dst = edge_index
    assert torch.equal(p.labels[src], p.labels[dst])
    assert p.is_connected(edge_index)
    assert p.num_blocks == nx.number_connected_components(to_networkx(edge_index, n))


@given(grid_graphs(connectivity=None))
def test_grid_graph_components_are_the_images(grid):
    """Checks theory/01-graphs.md Definition 4 (reachability) and theory/03-partitions.md
    Corollary 1 on pixel graphs: the reachability
    classes of B images' pixel graph are the B images (each image is connected, images
    share no edge)."""
    p = connected_components(grid.edge_index, grid.num_nodes)
    hw = grid.height * grid.width
    assert p == Partition.from_labels(torch.arange(grid.num_nodes) // hw)


# ---------------------------------------------------------------- Definition 10, Proposition 7


@given(random_graphs())
def test_quotient_of_discrete_is_the_graph(graph):
    """Checks theory/05-contraction.md Proposition 7: G/⊥ is G itself, coalesced (sorted,
    no duplicates) and without self-loops; with ``self_loops=True`` the loops of G stay."""
    edge_index, n = graph
    bottom = Partition.discrete(n)
    expected = coalesce(remove_self_loops(edge_index)[0], num_nodes=n)
    assert torch.equal(bottom.quotient(edge_index), expected)
    with_loops = bottom.quotient(edge_index, self_loops=True)
    assert torch.equal(with_loops, coalesce(edge_index, num_nodes=n))


@given(graphs_with_partitions())
def test_quotient_edges_join_blocks_joined_in_graph(gp):
    """Checks theory/05-contraction.md Definition 10 (quotient graph): (A, B) is an edge of
    G/π exactly when some edge of G goes from block A to block B, A ≠ B (and, with
    self-loops, (A, A) when some edge of G lies inside A); the result is coalesced."""
    (edge_index, n), p = gp
    lab = p.labels.tolist()
    pairs = {(lab[u], lab[v]) for u, v in edge_index.t().tolist()}
    q = p.quotient(edge_index)
    assert edge_set(q) == {(a, b) for a, b in pairs if a != b}
    assert is_coalesced(q, max(p.num_blocks, 1))
    q_loops = p.quotient(edge_index, self_loops=True)
    assert edge_set(q_loops) == pairs
    assert is_coalesced(q_loops, max(p.num_blocks, 1))


@given(graphs_with_partitions().flatmap(
    lambda gp: st.tuples(st.just(gp), partitions(gp[1].num_blocks))))
def test_quotient_of_composite_is_quotient_of_quotient(gpq):
    """Checks theory/05-contraction.md Proposition 7 (b): quotients compose,
    G/(π∘ρ) = (G/π)/ρ, so contracting the quotient graph level by level is the same as
    contracting the pixel graph by the absolute partition."""
    ((edge_index, _), p), q = gpq
    assert torch.equal(p.compose(q).quotient(edge_index), q.quotient(p.quotient(edge_index)))
    assert torch.equal(p.compose(q).quotient(edge_index, self_loops=True),
                       q.quotient(p.quotient(edge_index, self_loops=True), self_loops=True))


def _blocks(p: Partition) -> list[list[int]]:
    out: dict[int, list[int]] = {}
    for i, label in enumerate(p.labels.tolist()):
        out.setdefault(label, []).append(i)
    return list(out.values())
