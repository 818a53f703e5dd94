"""Lines and cubic Béziers through the simplified corners of boundary chains.

After simplification (:mod:`dhtgraph.export.simplify`) each chain is a polyline through
some of its lattice points. Every polyline segment is drawn as a line, or as a cubic Bézier
with the same ends when the curve is smooth and stays close to the pixel boundary:

- at a kept point where the polyline turns by less than ``SMOOTH_TURN_DEGREES`` the
  tangent is the direction from the previous to the next kept point (Catmull–Rom); at a
  sharper corner and at the chain's ends the tangent is the segment's own direction;
- control points sit a third of the segment length along those tangents;
- the curve is kept only if it stays within the tolerance of the chain's lattice points
  between its ends, measured both ways (lattice points to the curve and curve to the
  lattice polyline), so the curve obeys the same tolerance as the polyline; otherwise, or
  when it is indistinguishable from the line, the segment stays a line.

Everything is vectorised over all segments of all chains. Both blocks next to a chain use
the same segments (the backward traversal swaps the control points), so curves are shared
exactly like lines.
"""

from __future__ import annotations

import numpy as np

from .boundary import BoundaryChains

__all__ = ["LINE", "CUBIC", "fit_chains"]

LINE = 0
CUBIC = 1
# A kept point with a turn below this angle is treated as a smooth point of the curve.
SMOOTH_TURN_DEGREES = 50.0
# Curve samples per segment for the distance checks.
_SAMPLES = 12
# A cubic whose control points are this close to its chord (in lattice units) is a line.
_STRAIGHT = 0.15


def _point_segment_distance(p, a, b):
    ab = b - a
    ap = p - a
    ab = np.broadcast_to(ab, ap.shape)
    length2 = (ab * ab).sum(axis=-1)
    t = np.clip(np.divide((ap * ab).sum(axis=-1), length2, out=np.zeros(length2.shape),
                          where=length2 > 0), 0.0, 1.0)
    q = ap - t[..., None] * ab
    return np.sqrt((q * q).sum(axis=-1))


def _bezier(p0, c1, c2, p1, t):
    """Points of cubics (S, 2 each) at parameters t (T,) -> (S, T, 2)."""
    t = t[None, :, None]
    u = 1.0 - t
    return (u ** 3) * p0[:, None] + 3 * u * u * t * c1[:, None] + 3 * u * t * t * c2[:, None] \
        + (t ** 3) * p1[:, None]


def fit_chains(chains: BoundaryChains, keep: np.ndarray, tolerance: float, curves: bool):
    """Segments of every chain after simplification.

    Parameters
    ----------
    chains : BoundaryChains
    keep : bool ndarray of shape (P,)
        Lattice points kept by the simplification (chain ends always kept).
    tolerance : float
        In lattice units (``chains.scale`` per pixel).
    curves : bool
        Try cubic Béziers (otherwise lines only).

    Returns
    -------
    kind : ndarray of shape (S,)  (LINE or CUBIC)
    start, end : ndarray of shape (S, 2), float64
    ctrl : ndarray of shape (S, 4), float64
        Control points ``(c1x, c1y, c2x, c2y)`` of cubics (zeros for lines).
    seg_offsets : ndarray of shape (M + 1,)
        Chain ``c`` owns segments ``seg_offsets[c]:seg_offsets[c + 1]``.
    """
    pts = chains.points.astype(np.float64)
    kept = np.flatnonzero(keep)
    chain_of = np.repeat(np.arange(chains.num_chains), np.diff(chains.offsets))[kept]
    counts = np.bincount(chain_of, minlength=chains.num_chains)
    seg_offsets = np.concatenate([[0], np.cumsum(counts - 1)]).astype(np.int64)
    is_last = np.r_[chain_of[1:] != chain_of[:-1], True]
    a_idx = kept[~is_last]  # segment start, global point index
    b_idx = kept[1:][~is_last[:-1]]
    start, end = pts[a_idx], pts[b_idx]
    n = len(start)
    kind = np.full(n, LINE, dtype=np.int64)
    ctrl = np.zeros((n, 4))
    if not curves or n == 0:
        return kind, start, ctrl, end, seg_offsets

    # Tangents at kept points (unit); chord direction at corners and chain ends.
    chord = end - start
    length = np.sqrt((chord * chord).sum(axis=1))
    unit = chord / np.maximum(length, 1e-12)[:, None]
    seg_chain = chain_of[~is_last]
    seg_first = np.r_[True, seg_chain[1:] != seg_chain[:-1]]
    seg_last = np.r_[seg_first[1:], True]
    # The tangent at a segment's start uses the previous segment, at its end the next one.
    prev_unit = np.roll(unit, 1, axis=0)
    next_unit = np.roll(unit, -1, axis=0)
    cos_turn = np.cos(np.radians(SMOOTH_TURN_DEGREES))
    smooth_start = ~seg_first & ((prev_unit * unit).sum(axis=1) > cos_turn)
    smooth_end = ~seg_last & ((unit * next_unit).sum(axis=1) > cos_turn)
    t_start = np.where(smooth_start[:, None], prev_unit + unit, unit)
    t_end = np.where(smooth_end[:, None], unit + next_unit, unit)
    t_start /= np.maximum(np.linalg.norm(t_start, axis=1), 1e-12)[:, None]
    t_end /= np.maximum(np.linalg.norm(t_end, axis=1), 1e-12)[:, None]
    c1 = start + t_start * (length / 3.0)[:, None]
    c2 = end - t_end * (length / 3.0)[:, None]
    bend = np.maximum(_point_segment_distance(c1, start, end), _point_segment_distance(c2, start, end))
    cand = np.flatnonzero((smooth_start | smooth_end) & (bend > _STRAIGHT))
    if cand.size == 0:
        return kind, start, ctrl, end, seg_offsets

    ts = np.linspace(0.0, 1.0, _SAMPLES + 1)
    curve = _bezier(start[cand], c1[cand], c2[cand], end[cand], ts)  # (C, T, 2)
    ok = np.ones(len(cand), dtype=bool)
    # Lattice points strictly inside each candidate segment -> distance to the curve.
    inner = b_idx[cand] - a_idx[cand] - 1
    if inner.sum():
        owner = np.repeat(np.arange(len(cand)), inner)
        first = np.cumsum(inner) - inner
        p_idx = np.arange(len(owner)) - first[owner] + a_idx[cand][owner] + 1
        poly = curve[owner]  # (Q, T, 2)
        d = _point_segment_distance(pts[p_idx][:, None], poly[:, :-1], poly[:, 1:]).min(axis=1)
        worst = np.zeros(len(cand))
        np.maximum.at(worst, owner, d)
        ok &= worst <= tolerance
    # Curve samples -> distance to the lattice polyline between the segment's ends.
    edges = b_idx[cand] - a_idx[cand]
    owner = np.repeat(np.arange(len(cand)), edges)
    first = np.cumsum(edges) - edges
    e_idx = np.arange(len(owner)) - first[owner] + a_idx[cand][owner]
    d = _point_segment_distance(curve[owner], pts[e_idx][:, None], pts[e_idx + 1][:, None])  # (E, T)
    best = np.full((len(cand), len(ts)), np.inf)
    np.minimum.at(best, owner, d)
    ok &= best.max(axis=1) <= tolerance
    chosen = cand[ok]
    kind[chosen] = CUBIC
    ctrl[chosen] = np.concatenate([c1[chosen], c2[chosen]], axis=1)
    return kind, start, ctrl, end, seg_offsets
