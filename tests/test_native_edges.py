"""dhtgraph._native.edges: coalesced edge lists without a sort equal the tensor formulas."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtgraph import Partition, _native
from dhtgraph.testing import partitions, random_graphs

pytestmark = pytest.mark.skipif(not _native.available("edges"),
                                reason="native kernels 'edges' not in use")


def _native_edges():
    from dhtgraph._native import edges

    return edges


def _unique_pairs(lo, hi, n, self_loops=True):
    """The tensor formula: torch.unique of the keys lo·n + hi, decoded."""
    if not self_loops:
        keep = lo != hi
        lo, hi = lo[keep], hi[keep]
    n = max(n, 1)
    key = torch.unique(lo * n + hi)
    return torch.stack([key // n, key % n])


def test_relabel_edges_by_hand():
    # Blocks {0, 1}, {2, 3}, {4}: the path 0-1-2-3-4 (both directions) and a loop at 4.
    labels = torch.tensor([0, 0, 1, 1, 2])
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4],
                               [1, 0, 2, 1, 3, 2, 4, 3, 4]])
    got = _native_edges().relabel_edges(labels, 3, edge_index)
    assert got.tolist() == [[0, 0, 1, 1, 1, 2, 2], [0, 1, 0, 1, 2, 1, 2]]
    assert got.dtype == torch.long and got.is_contiguous()
    # A transposed (non-contiguous) or 32-bit edge_index gives the same list.
    transposed = edge_index.t().contiguous().t()
    assert not transposed.is_contiguous()
    assert torch.equal(_native_edges().relabel_edges(labels, 3, transposed), got)
    assert torch.equal(_native_edges().relabel_edges(labels.int(), 3, edge_index.int()), got)


def test_relabel_edges_of_no_edges_and_one_block():
    edges = _native_edges()
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert edges.relabel_edges(torch.zeros(4, dtype=torch.long), 1, empty).shape == (2, 0)
    assert edges.relabel_edges(torch.zeros(0, dtype=torch.long), 0, empty).shape == (2, 0)
    ring = torch.tensor([[0, 1, 2], [1, 2, 0]])
    assert edges.relabel_edges(torch.zeros(3, dtype=torch.long), 1, ring).tolist() == [[0], [0]]


def test_coalesce_pairs_by_hand():
    lo = torch.tensor([3, 1, 3, 0, 1, 2, 2])
    hi = torch.tensor([1, 2, 1, 0, 2, 2, 0])
    edges = _native_edges()
    assert edges.coalesce_pairs(lo, hi, 4).tolist() == [[0, 1, 2, 2, 3], [0, 2, 0, 2, 1]]
    assert edges.coalesce_pairs(lo, hi, 4, self_loops=False).tolist() == [[1, 2, 3], [2, 0, 1]]


@pytest.mark.parametrize("seed", range(6))
def test_relabel_edges_equals_the_quotient_on_random_graphs(seed):
    g = torch.Generator().manual_seed(seed)
    n = [1, 7, 60, 300, 2000, 5000][seed]
    edge_index = torch.randint(0, n, (2, 4 * n), generator=g)
    if seed % 2:  # sorted by source, as the contraction's edge lists are (runs of repeats)
        edge_index = edge_index[:, torch.argsort(edge_index[0] * n + edge_index[1])]
    p = Partition(torch.randint(0, max(1, n // 5), (n,), generator=g))
    got = _native_edges().relabel_edges(p.labels, p.num_blocks, edge_index)
    assert torch.equal(got, p.quotient(edge_index, self_loops=True))
    lo, hi = edge_index
    for loops in (True, False):
        assert torch.equal(_native_edges().coalesce_pairs(lo, hi, n, self_loops=loops),
                           _unique_pairs(lo, hi, n, loops))


def test_relabel_edges_of_a_contracted_grid_level():
    # A real level: the grid's quotient (with its loops) relabelled by a coarser partition.
    from dhtgraph.graph.pixel import grid_quotient

    g = torch.Generator().manual_seed(3)
    raw = torch.randint(0, 50, (1, 40, 20), generator=g).repeat_interleave(2, dim=2)
    fine = Partition(raw.reshape(-1))
    edge_index = grid_quotient(fine.labels, fine.num_blocks, 1, 40, 40, loops=True)
    coarse = Partition(torch.randint(0, 40, (fine.num_blocks,), generator=g))
    got = _native_edges().relabel_edges(coarse.labels, coarse.num_blocks, edge_index)
    assert torch.equal(got, coarse.quotient(edge_index, self_loops=True))


@st.composite
def _edge_lists(draw, max_nodes=40, max_edges=150):
    # random_graphs draws a median of 2 edges; a drawn edge count gives real quotients.
    n = draw(st.integers(1, max_nodes), label="n")
    m = draw(st.integers(0, max_edges), label="m")
    node = st.integers(0, n - 1)
    pairs = draw(st.lists(st.tuples(node, node), min_size=m, max_size=m), label="edges")
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous(), n


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_relabel_edges_property(data):
    # Any edge list (loops, repeats, isolated nodes) and any partition of its nodes
    # (measured over 300 draws: median 17 nodes, 83 edges, 5 blocks, 12 quotient edges;
    # 94 % merge repeats, 76 % have several blocks and more than 2 quotient edges).
    edge_index, n = data.draw(_edge_lists())
    p = data.draw(partitions(n), label="partition")
    if data.draw(st.booleans(), label="sorted"):
        edge_index = edge_index[:, torch.argsort(edge_index[0] * n + edge_index[1])]
    got = _native_edges().relabel_edges(p.labels, p.num_blocks, edge_index)
    assert torch.equal(got, p.quotient(edge_index, self_loops=True))
    lo, hi = edge_index
    loops = data.draw(st.booleans(), label="self_loops")
    assert torch.equal(_native_edges().coalesce_pairs(lo, hi, n, self_loops=loops),
                       _unique_pairs(lo, hi, n, loops))


@settings(max_examples=20, deadline=None)
@given(graph=random_graphs(max_nodes=12, max_edges=30, undirected=True))
def test_coalesced_lists_are_fixed_points(graph):
    # A coalesced list (PyG's undirected convention) comes back unchanged.
    lo, hi = graph.edge_index
    assert torch.equal(_native_edges().coalesce_pairs(lo, hi, graph.num_nodes), graph.edge_index)


def test_concurrent_calls_agree():
    # The kernels are re-entrant: batch worker threads call them at the same time.
    g = torch.Generator().manual_seed(0)
    n = 20000
    edge_index = torch.randint(0, n, (2, 5 * n), generator=g)
    p = Partition(torch.randint(0, 3000, (n,), generator=g))
    expected = p.quotient(edge_index, self_loops=True)
    relabel = _native_edges().relabel_edges
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: relabel(p.labels, p.num_blocks, edge_index), range(16)))
    assert all(torch.equal(r, expected) for r in results)


@pytest.mark.parametrize("call, match", [
    (lambda e: e.relabel_edges(torch.tensor([0, 1]), 2, torch.tensor([[0], [2]])),
     r"'edge_index' values in 0..1"),
    (lambda e: e.relabel_edges(torch.tensor([0, -1]), 2, torch.tensor([[0], [1]])),
     r"'labels' values in 0..1"),
    (lambda e: e.relabel_edges(torch.tensor([0, 2]), 2, torch.tensor([[0], [1]])),
     r"'labels' values in 0..1"),
    (lambda e: e.relabel_edges(torch.tensor([0, 1]), 2, torch.tensor([0, 1])),
     r"'edge_index' to have shape \(2, E\)"),
    (lambda e: e.coalesce_pairs(torch.tensor([0, 1]), torch.tensor([1]), 2), "same length"),
    (lambda e: e.coalesce_pairs(torch.tensor([0, 3]), torch.tensor([1, 1]), 3),
     r"'lo' and 'hi' values in 0..2"),
    (lambda e: e.grid_quotient(torch.tensor([0, 1, 2]), 2, 1, 1, 3), r"'labels' values in 0..1"),
    (lambda e: e.grid_quotient(torch.tensor([0, 1]), 2, 1, 1, 3), "3 entries"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(_native_edges())
