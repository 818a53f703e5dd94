"""Simplification and curve fitting keep every boundary within the tolerance (issue 7:
Douglas–Peucker importance capped by its parent's, the cubic-fit tolerance checks, colours
rounded)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dhtgraph.export import to_svg
from dhtgraph.export.boundary import BoundaryChains, trace_boundaries
from dhtgraph.export.curves import CUBIC, LINE, fit_chains
from dhtgraph.export.simplify import corner_importance
from dhtgraph.testing.export import label_maps

# Samples per cubic for the distance checks: 4× the library's own, so that a curve that
# leaves the band between the library's samples is also seen.
SAMPLES = 48


def one_chain(points):
    points = np.asarray(points, dtype=np.int64)
    return BoundaryChains(height=1, width=1, points=points, offsets=np.array([0, len(points)]),
                          left=np.array([1]), right=np.array([0]), num_blocks=2)


def test_importance_of_a_split_is_capped_by_its_parents():
    # A=(0,0) P Q B=(100,0) E: B is the guarded first split of A..E; in A..B the farthest
    # corner is Q (10 from AB), and P, 9 from AB, is 13.7 from AQ: DP at any tolerance in
    # [10, 13.7) stops at AB and never looks at P, so P's importance is Q's, 10.
    chains = one_chain([(0, 0), (25, -9), (50, 10), (100, 0), (100, -400)])
    importance = corner_importance(chains)
    assert importance[[0, 3, 4]].tolist() == [np.inf] * 3
    assert importance[2] == pytest.approx(10.0)
    assert importance[1] == pytest.approx(10.0)
    keep = importance > 12.0
    assert keep.tolist() == [True, False, False, True, True]


def _segment_distance(p, a, b):
    """Distance of points p (..., 2) to the segment a-b (2,)."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def _bezier(p0, c1, c2, p1, t):
    t = t[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t * t * c2 + t ** 3 * p1


def assert_within_tolerance(chains, tolerance, curves):
    """Every fitted segment lies within ``tolerance`` of the traced chain piece it replaces,
    both ways: traced corners to the segment, segment to the traced polyline."""
    keep = corner_importance(chains) > tolerance * chains.scale
    tol = tolerance * chains.scale
    kind, start, ctrl, end, seg_offsets = fit_chains(chains, keep, tol, curves)
    pts = chains.points.astype(np.float64)
    slack = 1e-9
    for c in range(chains.num_chains):
        lo, hi = chains.offsets[c], chains.offsets[c + 1]
        kept = lo + np.flatnonzero(keep[lo:hi])
        assert kept[0] == lo and kept[-1] == hi - 1  # chain ends are kept
        for s, (a, b) in enumerate(zip(kept[:-1], kept[1:]), start=seg_offsets[c]):
            assert np.array_equal(start[s], pts[a]) and np.array_equal(end[s], pts[b])
            piece = pts[a:b + 1]
            if kind[s] == LINE:
                assert _segment_distance(piece, pts[a], pts[b]).max() <= tol + slack
                continue
            assert kind[s] == CUBIC
            curve = _bezier(pts[a], ctrl[s, :2], ctrl[s, 2:], pts[b], np.linspace(0, 1, SAMPLES + 1))
            to_curve = np.min([_segment_distance(piece, p, q) for p, q in zip(curve[:-1], curve[1:])],
                              axis=0)
            assert to_curve.max() <= tol + slack, "a traced corner is off the curve"
            to_trace = np.min([_segment_distance(curve, p, q) for p, q in zip(piece[:-1], piece[1:])],
                              axis=0)
            # Between the library's 12 samples the curve may bulge by a hair.
            assert to_trace.max() <= tol + 0.02 * chains.scale, "the curve leaves the tolerance band"


@given(label_maps(), st.sampled_from([0.5, 1.0, 2.0, 3.5]), st.sampled_from(["corners", "midpoints"]),
       st.booleans())
def test_every_simplified_boundary_stays_within_tolerance(labels, tolerance, vertices, curves):
    assert_within_tolerance(trace_boundaries(labels, vertices), tolerance, curves)


def test_cubic_fits_obey_the_tolerance_on_shapes_that_tempt_them():
    # Discs of many radii and a slanted half-plane: smooth chains with many cubic
    # candidates, some of which overshoot (the checks must refuse those).
    yy, xx = np.mgrid[0:40, 0:40]
    count = 0
    for r in (3.5, 6.2, 9.7, 14.1, 17.3):
        for tol in (0.5, 1.0, 2.0):
            labels = ((yy - 19.6) ** 2 + (xx - 20.3) ** 2 < r * r).astype(np.int64)
            labels[(2 * yy - xx) > 45] = 2
            _, labels = np.unique(labels, return_inverse=True)
            chains = trace_boundaries(labels.reshape(40, 40))
            assert_within_tolerance(chains, tol, True)
            keep = corner_importance(chains) > tol
            count += int((fit_chains(chains, keep, tol, True)[0] == CUBIC).sum())
    assert count > 0  # curves are actually fitted here


def test_block_colours_are_rounded_not_truncated():
    image = np.full((1, 3, 3), 101, dtype=np.uint8)
    image[0, 0] = 100  # mean 100.67 -> 101 (0x65); truncation would give 100 (0x64)
    svg = to_svg(image, np.zeros((1, 3), dtype=np.int64), background="auto")
    assert 'fill="#656565"' in svg and "#646464" not in svg
    assert 'color="#656565"' in svg  # the path (seam stroke on: colour attribute)


def test_cubic_without_lattice_points_inside_still_obeys_the_tolerance():
    # B–C has no traced corner between its ends, so only the curve-to-trace check can see
    # that a Catmull–Rom curve through B (38.7° turn, smooth) bows ~1 px off the chord.
    chains = one_chain([(0, 0), (10, 0), (20, 8), (30, 16)])
    keep = np.ones(4, dtype=bool)
    for tol in (0.25, 0.5, 2.0):
        kind, start, ctrl, end, _ = fit_chains(chains, keep, tol, True)
        for s in np.flatnonzero(kind == CUBIC):
            curve = _bezier(start[s], ctrl[s, :2], ctrl[s, 2:], end[s], np.linspace(0, 1, SAMPLES + 1))
            assert _segment_distance(curve, start[s], end[s]).max() <= tol + 1e-9, (tol, s)
    assert (fit_chains(chains, keep, 2.0, True)[0] == CUBIC).any()  # large tolerance: a curve
