"""Douglas–Peucker importance of chain corners, computed for all chains at once.

Douglas–Peucker (DP) simplification of a polyline keeps its ends, finds the corner
farthest from the segment joining them, keeps it when that distance exceeds the tolerance
and recurses on both halves. Running the recursion to the end and recording, for every
split corner, the distance at which it was split (capped by its parent's, so that the
values decrease down the recursion tree) gives an *importance* per corner: the
simplification at tolerance ``t`` is exactly the set of corners with importance ``> t``.
One pass therefore serves every tolerance, which a byte budget search needs.

The recursion runs level by level over all segments of all chains together (numpy
``reduceat`` over contiguous ranges), so the Python overhead is per level, not per chain.

Topology guards, so that no block can vanish: a chain that is not straight always keeps its
farthest corner (a block bounded by two chains between the same two junctions keeps an
area), and a closed chain keeps the splits of the first two levels (at least a triangle).
"""

from __future__ import annotations

import numpy as np

from .boundary import BoundaryChains

__all__ = ["corner_importance"]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of points ``p`` to the segments ``a``–``b`` (all (n, 2))."""
    ab = b - a
    ap = p - a
    length2 = (ab * ab).sum(axis=1)
    t = np.divide((ap * ab).sum(axis=1), length2, out=np.zeros(len(p)), where=length2 > 0)
    t = np.clip(t, 0.0, 1.0)
    q = ap - t[:, None] * ab
    return np.sqrt((q * q).sum(axis=1))


def corner_importance(chains: BoundaryChains, floor: float = 0.0) -> np.ndarray:
    """DP importance of every corner of ``chains.points``.

    Parameters
    ----------
    chains : BoundaryChains
    floor : float
        Segments whose farthest corner is at most ``floor`` away are not refined further
        (their corners get importance 0). ``0`` computes the complete recursion, which any
        tolerance can then use; a positive floor saves time when only tolerances
        ``≥ floor`` will be asked for.

    Returns
    -------
    ndarray of shape (P,), float64
        ``inf`` for chain ends and guarded corners, 0 for corners that are never needed.
    """
    pts = chains.points.astype(np.float64)
    importance = np.zeros(len(pts))
    start = chains.offsets[:-1].copy()
    end = chains.offsets[1:] - 1
    importance[start] = np.inf
    importance[end] = np.inf
    parent = np.full(len(start), np.inf)
    loop = chains.is_loop
    guard_depth = np.where(loop, 2, 1)  # levels whose split is always kept
    depth = np.zeros(len(start), dtype=np.int64)

    while True:
        inner = end - start - 1
        live = inner > 0
        if not live.any():
            break
        start, end, parent, inner = start[live], end[live], parent[live], inner[live]
        depth, guard_depth = depth[live], guard_depth[live]
        first = np.cumsum(inner) - inner  # position of each segment's first inner corner
        seg = np.repeat(np.arange(len(start)), inner)
        idx = np.arange(len(seg)) - first[seg] + start[seg] + 1
        dist = _segment_distance(pts[idx], pts[start[seg]], pts[end[seg]])
        far = np.maximum.reduceat(dist, first)
        hit = np.flatnonzero(dist == far[seg])
        hit = hit[np.r_[True, seg[hit][1:] != seg[hit][:-1]]]  # first maximum per segment
        split = idx[hit]
        value = np.minimum(far, parent)
        guarded = (depth < guard_depth) & (far > 0)
        value[guarded] = np.inf
        importance[split] = value
        go = (far > floor) | guarded
        start, end, parent, split = start[go], end[go], value[go], split[go]
        depth, guard_depth = depth[go] + 1, guard_depth[go]
        start, end = np.concatenate([start, split]), np.concatenate([split, end])
        parent = np.concatenate([parent, parent])
        depth = np.concatenate([depth, depth])
        guard_depth = np.concatenate([guard_depth, guard_depth])
    return importance
