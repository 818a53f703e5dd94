"""Edge potentials of a block graph (method spec §3.1–§3.3).

A *potential* ``K̃(u, v) ∈ [0, 1]`` scores how well block ``u`` and block ``v`` fit
together. It has three ingredients:

* the Gaussian edge potential ``K(u, v) = exp(−‖μ_u − μ_v‖²)`` on the block means;
* the self-loop potential ``K(v, v) = sigmoid(a·σ²_v + b)`` — a learned linear map
  ("variance projection") of the block's diagonal variance — or a constant when no
  projection is given;
* compactness ``C(u, v) = 4·m / (2 + Δy + Δx)²``, with ``m = m_u + m_v`` for an edge and
  ``m = m_v`` for a loop, and ``Δy, Δx`` the extents of the union bounding box. It equals 1
  for a filled square box and falls as the union gets sparse or elongated.

The final potential mixes them: ``K̃ = (1 − c)·K + c·C`` for a compactness weight
``c ∈ [0, 1]``. All functions work on an ``edge_index`` (2, E) and never build dense
matrices.

References
----------
Aasan et al., "Differentiable Hierarchical Visual Tokenization", NeurIPS 2025, §3.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .. import _native

__all__ = [
    "gaussian_potential",
    "self_loop_potential",
    "compactness_potential",
    "edge_affinity",
    "DEFAULT_LOOP_POTENTIAL",
]

#: Loop potential used when no variance projection is given (spec §3.2: "default 0").
DEFAULT_LOOP_POTENTIAL = 0.0
# Edges processed per chunk: bounds the per-edge temporaries (~100 B an edge: the
# (E, d) mean gathers, the (E, 4) box gathers) to ~26 MB whatever the graph's size; the
# ~25 ops per chunk are noise against 2¹⁸ edges of work. The compactness term is always
# chunked (no gradient flows through sizes and boxes); the Gaussian part only when no
# gradient is recorded.
_EDGE_CHUNK = 1 << 18
# float32 channels up to which torch's CPU sum over the last dimension adds left to
# right from 0 whatever the layout (its cascade_sum: a contiguous row takes the vectorized
# path only from a vector's width, ≥ 4 float32 lanes on every build (128-bit SSE/NEON),
# and row_sum splits it into 4 partial sums only from 4 entries on; strided rows are
# summed row after row, cascading only from 16): the fused native path lays its squares
# out channel-major up to this width, where torch's sum streams over the edges (~8x
# faster than per-edge rows of three) to the same bits. float64 keeps the row-major
# layout (2 lanes on NEON: a 2- or 3-channel row could take the vectorized path there).
_SEQUENTIAL_SUM = 3


def _squared(x: Tensor, src: Tensor, dst: Tensor, native: bool) -> Tensor:
    """``(x[dst] − x[src])²`` (E, d), contiguous: one native pass (no gradient) or two
    gathers, a subtraction and pow(2) (the same values: one IEEE subtraction and one
    product per element)."""
    if native:
        from .._native.grid import edge_squared_difference
        return edge_squared_difference(x, src, dst)
    return (x.index_select(0, dst) - x.index_select(0, src)).pow(2)


def _use_native(native: Optional[bool], *tensors: Tensor) -> bool:
    # ``native`` is the caller's _native.enabled("grid", ...) (one check per edge_affinity
    # call: each check costs tens of µs), or None to check here.
    return _native.enabled("grid", *tensors) if native is None else native


def _squared_distance(x: Tensor, src: Tensor, dst: Tensor,
                      native: Optional[bool] = None) -> Tensor:
    """‖x[dst] − x[src]‖² per edge, chunked when no gradient is recorded."""
    num_edges = src.numel()
    grad = torch.is_grad_enabled() and x.requires_grad
    native = (not grad and x.dtype in (torch.float32, torch.float64) and x.dim() == 2
              and x.shape[1] >= 1 and _use_native(native, x, src, dst))
    if num_edges <= _EDGE_CHUNK or grad:
        return _squared(x, src, dst, native).sum(-1)
    out = x.new_empty(num_edges)
    for start in range(0, num_edges, _EDGE_CHUNK):
        stop = min(start + _EDGE_CHUNK, num_edges)
        out[start:stop] = _squared(x, src[start:stop], dst[start:stop], native).sum(-1)
    return out


def gaussian_potential(x: Tensor, edge_index: Tensor) -> Tensor:
    """Gaussian edge potential ``exp(−‖x_u − x_v‖²)`` of every edge.

    Parameters
    ----------
    x : Tensor of shape (K, d)
        Block means (features).
    edge_index : LongTensor of shape (2, E)
        Edges ``(u, v)``; loops give 1.

    Returns
    -------
    Tensor of shape (E,)
        Values in (0, 1], differentiable in ``x``.
    """
    return _gaussian(x, edge_index)


def _gaussian(x: Tensor, edge_index: Tensor, native: Optional[bool] = None) -> Tensor:
    return _squared_distance(x, edge_index[0], edge_index[1], native).neg().exp()


def self_loop_potential(
    var: Tensor,
    projection: Optional[Callable[[Tensor], Tensor]] = None,
    default: float = DEFAULT_LOOP_POTENTIAL,
) -> Tensor:
    """Potential of each block's self-loop, ``sigmoid(a·σ² + b)`` (spec §3.2).

    Parameters
    ----------
    var : Tensor of shape (K, d)
        Diagonal variance of every block.
    projection : callable, optional
        The learned variance projection, mapping (K, d) to (K, 1) (an ``nn.Linear(d, 1)``).
        Without it every loop gets ``default``.
    default : float, default 0.0
        Constant loop potential when ``projection`` is None.

    Returns
    -------
    Tensor of shape (K,)
    """
    if projection is None:
        return var.new_full((var.shape[0],), float(default))
    return projection(var).reshape(var.shape[0], -1)[:, 0].sigmoid()


#: Integer dtypes of sizes and boxes the native union kernel reads (others: tensor path).
_NATIVE_INTEGERS = (torch.int64, torch.int32)


def _union_mass_and_perimeter(size: Tensor, bbox: Tensor, edge_index: Tensor,
                              native: Optional[bool] = None) -> tuple[Tensor, Tensor]:
    """Union mass ``m_u + m_v`` (``m_v`` for a loop) and perimeter ``2 + Δy + Δx`` of every
    edge, float32 (E,) each."""
    src, dst = edge_index[0], edge_index[1]
    if (size.dtype in _NATIVE_INTEGERS and bbox.dtype in _NATIVE_INTEGERS
            and _use_native(native, size, bbox, edge_index)):
        # One pass of integer min/max per edge, the same float32 conversions and sums.
        from .._native.grid import union_mass_perimeter
        return union_mass_perimeter(size, bbox, src, dst)
    m = size.to(torch.float32)
    m_src = m.index_select(0, src)
    mass = torch.where(src == dst, m_src, m_src + m.index_select(0, dst))
    del m_src
    # Union box extents. Coordinates are integers, so min/max/difference in the box's
    # integer dtype followed by one conversion equal the float32 arithmetic exactly.
    box_src = bbox.index_select(0, src)
    box_dst = bbox.index_select(0, dst)
    low = torch.minimum(box_src[:, :2], box_dst[:, :2])
    high = torch.maximum(box_src[:, 2:], box_dst[:, 2:])
    del box_src, box_dst
    extent = (high - low).to(torch.float32)
    return mass, 2 + extent[:, 0] + extent[:, 1]


def compactness_potential(size: Tensor, bbox: Tensor, edge_index: Tensor) -> Tensor:
    """Compactness ``4·m / (2 + Δy + Δx)²`` of the union of an edge's two blocks.

    Parameters
    ----------
    size : Tensor of shape (K,)
        Pixels per block ``m``.
    bbox : Tensor of shape (K, 4)
        Inclusive bounding boxes ``(ymin, xmin, ymax, xmax)``.
    edge_index : LongTensor of shape (2, E)
        Edges; for a loop ``(v, v)`` the block's own size and box are used.

    Returns
    -------
    Tensor of shape (E,), float32
        Values in (0, 1]; 1 for a filled square union (``m ≤ (Δy+1)(Δx+1)`` bounds it).
    """
    mass, perimeter = _union_mass_and_perimeter(size, bbox, edge_index)
    return 4 * mass / perimeter.pow(2)


def edge_affinity(
    mean: Tensor,
    var: Tensor,
    size: Tensor,
    bbox: Tensor,
    edge_index: Tensor,
    *,
    compactness: float = 0.1,
    var_projection: Optional[Callable[[Tensor], Tensor]] = None,
    loop_default: float = DEFAULT_LOOP_POTENTIAL,
) -> Tensor:
    """The potential ``K̃`` of every edge and self-loop of a block graph (spec §3.1–§3.3).

    Parameters
    ----------
    mean, var : Tensor of shape (K, d)
        Block means and diagonal variances.
    size : Tensor of shape (K,)
        Pixels per block.
    bbox : Tensor of shape (K, 4)
        Bounding boxes ``(ymin, xmin, ymax, xmax)``.
    edge_index : LongTensor of shape (2, E)
        Block graph, loops ``(v, v)`` included where a block holds ≥ 2 pixels.
    compactness : float, default 0.1
        Weight ``c ∈ [0, 1]`` of the compactness term.
    var_projection : callable, optional
        Variance projection for the loop potential; see :func:`self_loop_potential`.
    loop_default : float, default 0.0
        Loop potential without a projection.

    Returns
    -------
    Tensor of shape (E,)
        ``(1 − c)·K + c·C``; differentiable in ``mean`` and through the projection.
    """
    c = float(compactness)
    if not 0.0 <= c <= 1.0:
        raise ValueError(f"Expected 'compactness' to lie in [0, 1] (got {compactness!r})")
    num_edges = edge_index.shape[1]
    loop_value = self_loop_potential(var, var_projection, loop_default)
    native = _native.enabled("grid", mean, size, bbox, edge_index)
    if num_edges <= _EDGE_CHUNK:
        return _edge_affinity(mean, loop_value, size, bbox, edge_index, c, native)
    if not (torch.is_grad_enabled() and (mean.requires_grad or loop_value.requires_grad)):
        # No gradient: the same per-edge arithmetic chunk by chunk (bounded temporaries).
        out = None
        for start in range(0, num_edges, _EDGE_CHUNK):
            part = _edge_affinity(mean, loop_value, size, bbox,
                                  edge_index[:, start:start + _EDGE_CHUNK], c, native)
            if out is None:
                out = part.new_empty(num_edges)
            out[start:start + part.numel()] = part
        return out
    # With a gradient: the differentiable part in one piece, the compactness term (sizes
    # and boxes only) chunk by chunk; the same operations per edge as _edge_affinity.
    src, dst = edge_index[0], edge_index[1]
    potential = torch.where(src == dst, loop_value.to(mean.dtype).index_select(0, src),
                            _gaussian(mean, edge_index, native))
    if c <= 0:
        return potential
    term = potential.new_empty(num_edges)
    for start in range(0, num_edges, _EDGE_CHUNK):
        part = _compactness_term(size, bbox, edge_index[:, start:start + _EDGE_CHUNK], c,
                                 potential.dtype, native)
        term[start:start + part.numel()] = part
    return potential * (1.0 - c) + term


def _compactness_term(size: Tensor, bbox: Tensor, edge_index: Tensor, c: float,
                      dtype: torch.dtype, native: Optional[bool] = None) -> Tensor:
    """``c·C(u, v)`` of every edge in ``dtype``, in the reference's operation order."""
    mass, perimeter = _union_mass_and_perimeter(size, bbox, edge_index, native)
    # Same operation order as the reference, so 16-bit ties quantise alike.
    return (4.0 * c) * mass.to(dtype) / perimeter.to(dtype).pow(2)


def _edge_affinity(mean: Tensor, loop_value: Tensor, size: Tensor, bbox: Tensor,
                   edge_index: Tensor, c: float, native: Optional[bool] = None) -> Tensor:
    if native and _fused(mean, loop_value, size, bbox, c):
        # No gradient: −(x[dst] − x[src])² in one native pass (negation is exact and
        # round-to-nearest is sign-symmetric, so torch's channel sum of them has the bits
        # of −‖·‖² except for a zero sum, +0 where −‖·‖² is −0; after exp, 1 for both and
        # NaN bits alike), torch's sum over the channels and exp (in place), then one
        # native pass for the loops, the union mass and perimeter and the mix — the same
        # elementwise IEEE operations, in the same order and dtype, as the tensor code.
        from .._native.grid import edge_potentials
        return edge_potentials(mean, loop_value, size, bbox, edge_index, c,
                               mean.dtype == torch.float32 and mean.shape[1] <= _SEQUENTIAL_SUM)
    src, dst = edge_index[0], edge_index[1]
    loop = src == dst
    potential = _gaussian(mean, edge_index, native)
    loop_value = loop_value.to(potential.dtype)
    potential = torch.where(loop, loop_value.index_select(0, src), potential)
    if c > 0:
        potential = potential * (1.0 - c) + _compactness_term(size, bbox, edge_index, c,
                                                              potential.dtype, native)
    return potential


def _fused(mean: Tensor, loop_value: Tensor, size: Tensor, bbox: Tensor, c: float) -> bool:
    """Whether :func:`_edge_affinity` takes its fused native path: no gradient recorded,
    float32/float64 means (K, d), a loop value per block, integer sizes and boxes."""
    if torch.is_grad_enabled() and (mean.requires_grad or loop_value.requires_grad):
        return False
    if mean.dtype not in (torch.float32, torch.float64) or mean.dim() != 2:
        return False
    if mean.shape[1] < 1:  # no channel to read (the kernels want d ≥ 1)
        return False
    if loop_value.dim() != 1 or loop_value.shape[0] != mean.shape[0]:
        return False
    return c <= 0 or (size.dtype in _NATIVE_INTEGERS and bbox.dtype in _NATIVE_INTEGERS)
