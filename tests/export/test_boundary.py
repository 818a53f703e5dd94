import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dhtgraph.export.boundary import trace_boundaries


def unit_edges(chains):
    """Multiset of lattice unit edges covered by the chains (undirected)."""
    edges = []
    for c in range(chains.num_chains):
        pts = chains.chain(c)
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
            n = abs(x1 - x0) + abs(y1 - y0)
            assert x0 == x1 or y0 == y1, "corner chains are axis-parallel"
            sx, sy = np.sign(x1 - x0), np.sign(y1 - y0)
            for k in range(n):
                a = (x0 + k * sx, y0 + k * sy)
                b = (x0 + (k + 1) * sx, y0 + (k + 1) * sy)
                edges.append((min(a, b), max(a, b)))
    return edges


def expected_edges(labels):
    h, w = labels.shape
    pad = np.full((h + 2, w + 2), -1)
    pad[1:-1, 1:-1] = labels
    edges = []
    for y in range(h + 1):
        for x in range(w):
            if pad[y, x + 1] != pad[y + 1, x + 1]:
                edges.append(((x, y), (x + 1, y)))
    for y in range(h):
        for x in range(w + 1):
            if pad[y + 1, x] != pad[y + 1, x + 1]:
                edges.append(((x, y), (x, y + 1)))
    return edges


def test_two_blocks_exact_chains():
    labels = np.array([[0, 0, 1],
                       [0, 0, 1]])
    chains = trace_boundaries(labels)
    got = {(int(chains.left[c]), int(chains.right[c]), tuple(map(tuple, chains.chain(c).tolist())))
           for c in range(chains.num_chains)}
    # Junctions: the 4 image corners and where the dividing line meets the border.
    assert got == {
        (1, 0, ((2, 0), (2, 2))),            # dividing line, block 1 on the left (walking down)
        (0, -1, ((2, 0), (0, 0))),           # top border of block 0, walking west
        (0, -1, ((0, 0), (0, 2))),
        (0, -1, ((0, 2), (2, 2))),
        (1, -1, ((3, 0), (2, 0))),
        (1, -1, ((3, 2), (3, 0))),
        (1, -1, ((2, 2), (3, 2))),
    }


def test_island_is_a_loop():
    labels = np.zeros((4, 4), dtype=int)
    labels[1:3, 1:3] = 1
    chains = trace_boundaries(labels)
    loops = np.flatnonzero(chains.is_loop)
    assert len(loops) == 1
    loop = chains.chain(loops[0])
    assert tuple(loop[0]) == tuple(loop[-1])  # the loop's anchor may be any boundary corner
    assert {tuple(p) for p in loop[1:-1].tolist()} == {(1, 1), (3, 1), (3, 3), (1, 3)}
    assert (chains.left[loops[0]], chains.right[loops[0]]) == (1, 0)


@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_chains_cover_every_boundary_edge_once(h, w, k, seed):
    labels = np.random.default_rng(seed).integers(0, k, size=(h, w))
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(h, w)
    chains = trace_boundaries(labels)
    assert sorted(unit_edges(chains)) == sorted(expected_edges(labels))
    assert (chains.left > chains.right).all()
    first = chains.points[chains.offsets[:-1]]
    last = chains.points[chains.offsets[1:] - 1]
    assert (chains.is_loop == (first == last).all(axis=1)).all()


@pytest.mark.parametrize("vertices", ["corners", "midpoints"])
def test_scale_of_vertex_modes(vertices):
    labels = np.array([[0, 1], [1, 1]])
    chains = trace_boundaries(labels, vertices)
    assert chains.scale == (1 if vertices == "corners" else 2)
    assert chains.points.max() == 2 * chains.scale
