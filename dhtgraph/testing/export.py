"""Strategies for the raster-to-vector export: label maps whose boundaries have long
slanted and curved pieces (what simplification and curve fitting act on).

Uniform random labels give one-pixel blocks, whose boundaries are all unit steps that
no tolerance simplifies; these maps are painted from a few discs, half-planes and
rectangles instead, so most chains are long.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

__all__ = ["label_maps"]


@st.composite
def label_maps(draw, *, min_side: int = 4, max_side: int = 32, max_shapes: int = 5) -> np.ndarray:
    """Canonical label maps ``(H, W)`` (labels ``0..K−1``, all used) painted from shapes.

    Parameters
    ----------
    min_side, max_side : int
        Bounds of ``H`` and ``W``.
    max_shapes : int
        At most this many shapes (discs, half-planes, axis-aligned rectangles), painted in
        order over a background block; each shape is one label (it may be cut into
        several pieces by later shapes — labels need not be connected).

    Returns
    -------
    SearchStrategy of ndarray (H, W), int64
        Shrinks towards a single-block map.
    """
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    labels = np.zeros((h, w), dtype=np.int64)
    yy, xx = np.mgrid[0:h, 0:w]
    for shape in range(1, draw(st.integers(0, max_shapes)) + 1):
        kind = draw(st.sampled_from(["disc", "halfplane", "rect"]))
        cy = draw(st.floats(-0.2 * h, 1.2 * h))
        cx = draw(st.floats(-0.2 * w, 1.2 * w))
        if kind == "disc":
            r = draw(st.floats(1.0, max(h, w) * 0.8))
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        elif kind == "halfplane":
            angle = draw(st.floats(0.0, 2 * np.pi))
            mask = (yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle) > 0
        else:
            ry, rx = draw(st.floats(0.5, h / 2)), draw(st.floats(0.5, w / 2))
            mask = (abs(yy - cy) < ry) & (abs(xx - cx) < rx)
        labels[mask] = shape
    # Canonical numbering: labels by first pixel, every label used.
    _, first, inverse = np.unique(labels.reshape(-1), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse].reshape(h, w)
