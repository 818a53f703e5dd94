"""Strategies for graphs: pixel grid graphs, random graphs and functional-graph choices.

Graphs are ``edge_index`` LongTensors of shape (2, E) with an explicit node count, the
PyG convention; nodes are ``0..num_nodes−1``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from hypothesis import strategies as st
from torch import Tensor

from ..graph.pixel import grid_edge_index

__all__ = ["Graph", "GridGraph", "grid_graphs", "random_graphs", "choices"]


class Graph(NamedTuple):
    """A graph on the nodes ``0..num_nodes−1``.

    Attributes
    ----------
    edge_index : LongTensor of shape (2, E)
        Directed edges ``edge_index[:, e] = (source, target)``.
    num_nodes : int
        n; nodes need not appear in an edge (isolated nodes).
    """

    edge_index: Tensor
    num_nodes: int


class GridGraph(NamedTuple):
    """The pixel graph of ``num_images`` images of ``height × width`` pixels.

    Attributes
    ----------
    edge_index : LongTensor of shape (2, E)
        :func:`dhtgraph.grid_edge_index` (both directions, coalesced).
    num_nodes : int
        N = B·H·W.
    height, width, num_images : int
        H, W and B.
    connectivity : int
        4 or 8.
    """

    edge_index: Tensor
    num_nodes: int
    height: int
    width: int
    num_images: int
    connectivity: int


@st.composite
def grid_graphs(
    draw,
    *,
    max_side: int = 6,
    max_images: int = 2,
    connectivity: int | None = 4,
) -> GridGraph:
    """Pixel grid graphs of small images (sides 1..``max_side``).

    Parameters
    ----------
    max_side : int, default 6
        Largest H and W (the smallest is 1: a 1×1 image has one node and no edge).
    max_images : int, default 2
        Largest B (disjoint copies of the grid).
    connectivity : {4, 8, None}, default 4
        The pixel neighbourhood; drawn among 4 and 8 when ``None``.

    Returns
    -------
    SearchStrategy of GridGraph
    """
    if connectivity is None:
        connectivity = draw(st.sampled_from((4, 8)))
    elif connectivity not in (4, 8):
        raise ValueError(f"Expected 'connectivity' to be 4, 8 or None (got {connectivity!r})")
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    b = draw(st.integers(1, max_images))
    edge_index = grid_edge_index(h, w, b, connectivity=connectivity)
    return GridGraph(edge_index, b * h * w, h, w, b, connectivity)


@st.composite
def random_graphs(
    draw,
    *,
    min_nodes: int = 0,
    max_nodes: int = 10,
    max_edges: int = 20,
    self_loops: bool = True,
    multi_edges: bool = True,
    undirected: bool = False,
) -> Graph:
    """Random graphs, possibly with isolated nodes, self-loops and repeated edges.

    Parameters
    ----------
    min_nodes, max_nodes : int, default 0 and 10
        Bounds on n.
    max_edges : int, default 20
        Bound on the number of drawn edges (before ``undirected`` doubles them).
    self_loops : bool, default True
        Whether edges ``(v, v)`` may occur.
    multi_edges : bool, default True
        Whether the same edge may occur more than once (then in any order).
    undirected : bool, default False
        Store both directions of every edge, coalesced (sorted, no duplicates): the PyG
        convention for undirected graphs. ``multi_edges`` is then moot.

    Returns
    -------
    SearchStrategy of Graph
        Shrinks towards fewer nodes and fewer edges.
    """
    if not 0 <= min_nodes <= max_nodes:
        raise ValueError(f"Expected 0 <= 'min_nodes' <= 'max_nodes' (got {min_nodes}, {max_nodes})")
    n = draw(st.integers(min_nodes, max_nodes))
    if n == 0 or (n == 1 and not self_loops):
        return Graph(torch.zeros(2, 0, dtype=torch.long), n)
    node = st.integers(0, n - 1)
    pair = st.tuples(node, node)
    if not self_loops:
        pair = pair.filter(lambda e: e[0] != e[1])
    edges = draw(st.lists(pair, max_size=max_edges, unique=not multi_edges))
    edge_index = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t().contiguous()
    if undirected:
        both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        key = torch.unique(both[0] * n + both[1])
        edge_index = torch.stack([key // n, key % n])
    return Graph(edge_index, n)


def _neighbours(edge_index: Tensor, num_nodes: int) -> list[list[int]]:
    options: list[set[int]] = [set() for _ in range(num_nodes)]
    for u, v in edge_index.t().tolist():
        if u != v:
            options[u].add(v)
            options[v].add(u)
    return [sorted(o) for o in options]


@st.composite
def choices(
    draw,
    edge_index: Tensor,
    num_nodes: int,
    *,
    self_loops: bool | Tensor = True,
) -> Tensor:
    """A choice ``a(v)`` per node: a neighbour of ``v`` or ``v`` itself (a self-loop).

    This is one contraction step's selection (theory/05-contraction.md): the functional
    graph ``{(v, a(v))}`` is contracted by :func:`dhtgraph.choice_components`.

    Parameters
    ----------
    edge_index : LongTensor of shape (2, E)
        The graph; direction is ignored and its own self-loops are not neighbours.
    num_nodes : int
        n.
    self_loops : bool or BoolTensor of shape (n,), default True
        Which nodes may choose themselves. A node without neighbours always chooses
        itself (it has nothing else to choose), whatever this says.

    Returns
    -------
    SearchStrategy of LongTensor of shape (n,)
        ``choice[v] == v`` (a self-loop) or ``{v, choice[v]}`` is an edge. Shrinks
        towards each node choosing its smallest option.
    """
    if isinstance(self_loops, Tensor):
        may_loop = [bool(b) for b in self_loops.tolist()]
        if len(may_loop) != num_nodes:
            raise ValueError(f"Expected 'self_loops' to have shape ({num_nodes},) "
                             f"(got {tuple(self_loops.shape)})")
    else:
        may_loop = [bool(self_loops)] * num_nodes
    options = _neighbours(edge_index, num_nodes)
    for v in range(num_nodes):
        if may_loop[v] or not options[v]:
            options[v] = options[v] + [v]
    picks = draw(st.lists(st.integers(0, 2**16), min_size=num_nodes, max_size=num_nodes))
    return torch.tensor([o[i % len(o)] for o, i in zip(options, picks)], dtype=torch.long)
