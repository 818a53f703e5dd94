"""The planar boundary graph of a label map, split into shared boundary chains.

A label map of H×W pixels is drawn on the *pixel-corner lattice*: the vertices are the
(H+1)·(W+1) corners ``(x, y)`` with ``0 ≤ x ≤ W`` and ``0 ≤ y ≤ H`` (SVG coordinates: x to
the right, y down), the edges are the unit sides of the pixels. A side is a *boundary edge*
when the two pixels it separates lie in different blocks, or when it lies on the image
border (the outside counts as block ``-1``).

A *junction* is a corner where three or more boundary edges meet (three or more blocks, the
outside included, or a diagonal "checkerboard" contact of two blocks) or one of the four
image corners. Cutting the boundary graph at the junctions leaves *chains*: lattice paths
whose interior corners have exactly two boundary edges. The two blocks on either side of a
chain are constant along it, so each chain is the whole common boundary piece of one pair
of blocks and can be simplified once and used, forwards and backwards, by both. A chain
without any junction is a closed *loop* (an island's boundary); it starts and ends at the
same corner.

Orientation: a chain is walked with its ``left`` block on the left-hand side (in SVG
coordinates), and ``left > right``; the outside (``-1``) is therefore always on the right.

Everything is vectorised: tracing and ordering the chains uses pointer jumping over the
boundary edges (O(E log E)), with no Python loop over pixels or edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BoundaryChains", "trace_boundaries"]


@dataclass(frozen=True)
class BoundaryChains:
    """Boundary chains of a label map on the pixel-corner lattice.

    Attributes
    ----------
    height, width : int
        Size of the label map in pixels.
    points : ndarray of shape (P, 2), int64
        Corner coordinates ``(x, y)`` of all chains, concatenated. Corners where a chain goes
        straight on are dropped: only the ends and the turning corners are kept.
    offsets : ndarray of shape (M + 1,), int64
        Chain ``c`` owns ``points[offsets[c]:offsets[c + 1]]`` (at least two points; a loop
        repeats its first point at the end).
    left, right : ndarray of shape (M,), int64
        Blocks on the left- and right-hand side of each chain; ``right`` is ``-1`` on the
        image border.
    num_blocks : int
        Number of blocks K of the label map.
    """

    height: int
    width: int
    points: np.ndarray
    offsets: np.ndarray
    left: np.ndarray
    right: np.ndarray
    num_blocks: int
    scale: int = 1

    @property
    def num_chains(self) -> int:
        return len(self.left)

    @property
    def is_loop(self) -> np.ndarray:
        """Bool array (M,): the chain starts and ends at the same corner."""
        first = self.points[self.offsets[:-1]]
        last = self.points[self.offsets[1:] - 1]
        return (first == last).all(axis=1)

    def chain(self, c: int) -> np.ndarray:
        """Corners of chain ``c`` as an (n, 2) array of ``(x, y)``."""
        return self.points[self.offsets[c]:self.offsets[c + 1]]


def _boundary_edges(labels: np.ndarray):
    """Oriented boundary edges: source and target corner ids, left and right blocks."""
    h, w = labels.shape
    padded = np.full((h + 2, w + 2), -1, dtype=np.int64)
    padded[1:-1, 1:-1] = labels
    stride = w + 1  # corner id = y * (W + 1) + x

    # Horizontal sides: corner (y, x) -- (y, x + 1), pixel above vs pixel below.
    above, below = padded[:-1, 1:-1], padded[1:, 1:-1]
    ys, xs = np.nonzero(above != below)
    a, b = above[ys, xs], below[ys, xs]
    east = a > b  # walking east (+x) the pixel above is on the left
    base = ys * stride + xs
    h_src = np.where(east, base, base + 1)
    h_dst = np.where(east, base + 1, base)
    h_left, h_right = np.where(east, a, b), np.where(east, b, a)

    # Vertical sides: corner (y, x) -- (y + 1, x), pixel to the west vs pixel to the east.
    west, east_px = padded[1:-1, :-1], padded[1:-1, 1:]
    ys, xs = np.nonzero(west != east_px)
    a, b = west[ys, xs], east_px[ys, xs]
    south = b > a  # walking south (+y) the pixel to the east is on the left
    base = ys * stride + xs
    v_src = np.where(south, base, base + stride)
    v_dst = np.where(south, base + stride, base)
    v_left, v_right = np.where(south, b, a), np.where(south, a, b)

    return (np.concatenate([h_src, v_src]), np.concatenate([h_dst, v_dst]),
            np.concatenate([h_left, v_left]), np.concatenate([h_right, v_right]))


def _rank(pred: np.ndarray, todo: np.ndarray, max_rounds: int):
    """Pointer jumping along ``pred`` for the edges ``todo``.

    Returns ``root`` (the first edge reached that is its own predecessor, a *head*) and
    ``dist`` (number of steps to it). Edges that reach no head within ``2**max_rounds``
    steps (those on a cycle) are returned in ``todo``.
    """
    head = pred == np.arange(len(pred))
    root = pred.copy()
    dist = (~head).astype(np.int64)
    for _ in range(max_rounds):
        todo = todo[~head[root[todo]]]
        if todo.size == 0:
            break
        r = root[todo]
        dist[todo] = dist[todo] + dist[r]
        root[todo] = root[r]
    return root, dist, todo[~head[root[todo]]]


def trace_boundaries(labels: np.ndarray, vertices: str = "corners") -> BoundaryChains:
    """Trace the boundary chains of a label map.

    Parameters
    ----------
    labels : ndarray of shape (H, W), integer
        Canonical block labels ``0..K−1`` (every label below the maximum is used).

    Returns
    -------
    BoundaryChains
    """
    labels = np.asarray(labels, dtype=np.int64)
    h, w = labels.shape
    num_blocks = int(labels.max()) + 1
    stride = w + 1
    src, dst, left, right = _boundary_edges(labels)
    num_edges = len(src)
    num_corners = (h + 1) * stride

    degree = np.bincount(src, minlength=num_corners) + np.bincount(dst, minlength=num_corners)
    junction = degree >= 3
    junction[[0, w, h * stride, h * stride + w]] = True

    # At a corner that is not a junction exactly one chain edge enters and one leaves.
    in_edge = np.full(num_corners, -1, dtype=np.int64)
    in_edge[dst] = np.arange(num_edges)
    edge_ids = np.arange(num_edges)
    pred = np.where(junction[src], edge_ids, in_edge[src])

    rounds = max(1, int(num_edges).bit_length() + 1)
    root, dist, cyclic = _rank(pred, edge_ids, rounds)
    if cyclic.size:
        # Loops without a junction: start each at its smallest edge id, then rank again.
        succ = np.arange(num_edges)
        succ[pred[cyclic]] = cyclic
        low, step = np.arange(num_edges), succ
        for _ in range(max(1, int(cyclic.size).bit_length() + 1)):
            nxt = step[cyclic]
            low[cyclic] = np.minimum(low[cyclic], low[nxt])
            step[cyclic] = step[nxt]
        starts = cyclic[low[cyclic] == cyclic]
        pred[starts] = starts
        root2, dist2, _ = _rank(pred, cyclic, rounds)
        root[cyclic], dist[cyclic] = root2[cyclic], dist2[cyclic]

    order = np.lexsort((dist, root))
    chain_of_sorted = np.concatenate([[0], np.cumsum(root[order][1:] != root[order][:-1])])
    heads = order[np.r_[True, chain_of_sorted[1:] != chain_of_sorted[:-1]]]
    num_chains = len(heads)
    edge_count = np.bincount(chain_of_sorted, minlength=num_chains)

    s, d = src[order], dst[order]
    direction = d - s
    new_chain = np.r_[True, chain_of_sorted[1:] != chain_of_sorted[:-1]]
    last_edge = np.r_[new_chain[1:], True]
    turn_before = new_chain | np.r_[True, direction[1:] != direction[:-1]]
    edge_pos = np.arange(num_edges) - np.repeat(np.cumsum(edge_count) - edge_count, edge_count)
    sx, sy, dx, dy = s % stride, s // stride, d % stride, d // stride
    if vertices == "corners":
        # The source corner of every edge where the direction changes, then the last target.
        xs = np.concatenate([sx[turn_before], dx[last_edge]])
        ys = np.concatenate([sy[turn_before], dy[last_edge]])
        chain_of = np.concatenate([chain_of_sorted[turn_before], np.arange(num_chains)])
        pos = np.concatenate([edge_pos[turn_before], edge_count])
        scale = 1
    else:
        # Doubled coordinates: the first corner, the midpoints of edges next to a turn,
        # the last corner.
        turn_after = np.r_[turn_before[1:], True]
        mid = turn_before | turn_after
        xs = np.concatenate([2 * sx[new_chain], (sx + dx)[mid], 2 * dx[last_edge]])
        ys = np.concatenate([2 * sy[new_chain], (sy + dy)[mid], 2 * dy[last_edge]])
        chain_of = np.concatenate([chain_of_sorted[new_chain], chain_of_sorted[mid],
                                   np.arange(num_chains)])
        pos = np.concatenate([np.full(num_chains, -1), edge_pos[mid], edge_count])
        scale = 2
    sel = np.lexsort((pos, chain_of))
    counts = np.bincount(chain_of, minlength=num_chains)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    points = np.stack([xs[sel], ys[sel]], axis=1).astype(np.int64)
    return BoundaryChains(height=h, width=w, points=points, offsets=offsets,
                          left=left[heads], right=right[heads], num_blocks=num_blocks,
                          scale=scale)
