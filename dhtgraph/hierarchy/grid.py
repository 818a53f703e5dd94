"""The first contraction level computed on the pixel grid (a fast path of spec §3).

Level 0 of a tokenizer's hierarchy is the 4-neighbour pixel grid: every block is one
pixel (σ² = 0, m = 1, a one-pixel box) and there are no self-loops. Every edge joins two
pixels whose union box has extents 1 and 0, so its compactness is the constant
``4·2/3²``, and the argmax of a pixel runs over at most four neighbours. This module
computes that level with dense shifted-image operations instead of gathers over the
``(2, E)`` edge list (which at 3584² holds 51 M directed edges and is never built):

* the Gaussian potentials of the horizontal and vertical edges, each computed once
  (``K(u, v) = K(v, u)``);
* the argmax with the same 16-bit quantisation and tie rule (``'reference'``: the larger
  neighbour index wins: down > right > left > up, as packed keys ``q·4 + direction``;
  ``'hashed'``: along an edge between different pixels the larger
  :func:`~dhtgraph.hierarchy.contraction.tie_hash` of the edge's pixel indices within the
  image, then the larger index; along an edge between equal pixels the index alone);
* the components of the choices, pooled statistics (a block is constant in a channel iff
  no choice edge inside it differs there: shifted-grid compares, no row gathers), boxes
  and the level-1 block graph (:func:`~dhtgraph.graph.pixel.grid_quotient`: one sort of
  the block pairs, the directed list laid out in closed form).

The result is bit-for-bit what :func:`dhtgraph.hierarchy.contraction.contract` returns
on ``edge_affinity`` of the level-0 state built with ``grid_edge_index`` (the tests
compare them), only faster and with a fraction of the memory.

On the CPU the discrete steps run as native kernels (:mod:`dhtgraph._native.grid`, see
:mod:`dhtgraph._native`): the argmax (with the compactness mix and the quantisation)
straight to the choices, the blocks' sizes, boxes and images in one pass, the
constant-channel test; without a recorded gradient also the squared neighbour
differences, the 'size' moments and the chosen edge's potential — each with torch's
operations in torch's order, bit for bit. The channel sums and exp stay torch
operations; the tensor implementation here is the CUDA path and the
``DHTGRAPH_NATIVE=off`` one, with the same values.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import Tensor

from .. import _native
from .._union import functional_component_labels
from ..graph.pixel import grid_coordinates, grid_edge_index, grid_quotient
from ..partition import Partition
from .affinity import _SEQUENTIAL_SUM, edge_affinity
from .contraction import (POOL_WEIGHTINGS, BlockState, Contraction, PoolWeights, TieBreak,
                          _safe_sqrt, argmax_edge_weights, check_tie_break, contract,
                          quantize_potential, tie_hash, tie_keys, weighted_moments)

__all__ = ["pixel_state", "materialize_pixel_state", "grid_contraction"]

# Values per chunk of the potentials when no gradient is recorded, and pixels per chunk of
# the tie hashes (bounds the temporaries on large images).
_ROW_CHUNK_PIXELS = 1 << 20


def pixel_state(x: Tensor, num_images: int, batch: Optional[Tensor] = None) -> BlockState:
    """A lean level-0 state of row-major pixels for :func:`grid_contraction`.

    Variance and size are zero-stride views (no memory); there is no box and no edge
    list (``edge_index`` is None) — :func:`materialize_pixel_state` builds them when a
    general level is needed.
    """
    n, d = x.shape
    if batch is None:
        batch = torch.zeros((), dtype=torch.long, device=x.device).expand(n)
    return BlockState(
        mean=x,
        var=x.new_zeros(()).expand(n, d),
        size=torch.ones((), dtype=torch.long, device=x.device).expand(n),
        bbox=None,
        edge_index=None,
        batch=batch,
    )


def materialize_pixel_state(state: BlockState, num_images: int, height: int,
                            width: int) -> BlockState:
    """The full level-0 state (boxes, edge list) of a :func:`pixel_state`."""
    if state.edge_index is not None:
        return state
    device = state.mean.device
    pos = torch.stack(grid_coordinates(height, width, num_images, device=device), dim=1)
    return BlockState.from_pixels(state.mean, pos, grid_edge_index(height, width, num_images,
                                                                   device=device),
                                  state.batch.contiguous())


@functools.lru_cache(maxsize=64)
def _pixel_term(c: float, dtype: torch.dtype) -> float:
    # The compactness term c·C of two adjacent pixels (mass 2, perimeter 2 + 1 + 0) with
    # the float operations of edge_affinity (float32, then the dtype): a value of
    # ``dtype``, exact as a Python float, for the tensor and the native paths alike.
    mass = torch.full((1,), 2.0, dtype=torch.float32)
    perimeter = torch.full((1,), 3.0, dtype=torch.float32)
    return float(((4.0 * c) * mass.to(dtype) / perimeter.to(dtype).pow(2)).item())


def _potential(first: Tensor, second: Tensor, term: Optional[float], c: float) -> Tensor:
    # Same operations, in the same order, as edge_affinity on a pixel edge (``term``: the
    # value its compactness term has on every pixel edge, :func:`_pixel_term`).
    potential = (second - first).pow(2).sum(-1).neg().exp()
    if term is not None:
        potential = potential * (1.0 - c) + term
    return potential


def _grid_potentials(grid: Tensor, c: float) -> tuple[Tensor, Tensor]:
    """Potentials of the horizontal (B, H, W−1) and vertical (B, H−1, W) edges."""
    term = _pixel_term(c, grid.dtype) if c > 0 else None
    b, h, w, _ = grid.shape
    if (torch.is_grad_enabled() and grid.requires_grad) or grid.numel() <= _ROW_CHUNK_PIXELS:
        return (_potential(grid[:, :, :-1], grid[:, :, 1:], term, c),
                _potential(grid[:, :-1], grid[:, 1:], term, c))
    horizontal = grid.new_empty(b, h, max(w - 1, 0))
    vertical = grid.new_empty(b, max(h - 1, 0), w)
    for i, start, stop, stop_v in _row_chunks(b, h, w):
        block = grid[i, start:stop]
        horizontal[i, start:stop] = _potential(block[:, :-1], block[:, 1:], term, c)
        if stop_v > start:
            block = grid[i, start:stop_v + 1]
            vertical[i, start:stop_v] = _potential(block[:-1], block[1:], term, c)
    return horizontal, vertical


def _row_chunks(num_images: int, height: int, width: int):
    """``(image, start, stop, stop_v)``: rows ``start..stop−1`` of an image, about
    :data:`_ROW_CHUNK_PIXELS` pixels at a time, and ``stop_v`` = the end of the rows whose
    vertical edges (to the next row) the chunk computes."""
    rows = max(1, _ROW_CHUNK_PIXELS // max(width, 1))
    for i in range(num_images):
        for start in range(0, height, rows):
            stop = min(start + rows, height)
            yield i, start, stop, min(stop, height - 1)


def _native_layout(x: Tensor) -> bool:
    """Whether :func:`_native_potentials` can lay its squared differences out as torch
    lays out ``second − first`` of two grid views of ``x`` (N, d): channel-major features
    (the channel stride the largest: planes (d, B, H, W−1)) or row-major ones."""
    n, d = x.shape
    return d == 1 or x.is_contiguous() or (x.stride(0) == 1 and x.stride(1) >= n)


def _native_potentials(x: Tensor, num_images: int, height: int,
                       width: int) -> tuple[Tensor, Tensor]:
    """The Gaussian parts ``exp(−‖x_v − x_u‖²)`` of :func:`_grid_potentials` (no gradient,
    CPU, :func:`_native_layout`), bit for bit the tensor code's values.

    The squared differences come from one native pass per direction, negated. With ≤ 3
    float32 channels they are laid out channel-major whatever the layout of ``x``; with
    more channels or float64, as torch lays out the subtraction of two grid views. Then
    torch sums them over the channels and applies exp (in place), over the same shapes
    and chunks as the tensor code. The compactness mix follows in the argmax kernel.
    """
    from .._native.grid import grid_squared
    b, h, w = num_images, height, width
    hw = h * w
    # ≤ 3 float32 channels: laid out channel-major whatever x's layout — torch's sum gives
    # the same bits on either (affinity._SEQUENTIAL_SUM) and streams over the pixels
    # (~8x faster than per-pixel rows of three); otherwise as torch lays out the sub.
    channel_major = (True if x.dtype == torch.float32 and x.shape[1] <= _SEQUENTIAL_SUM
                     else None)

    def gaussian(base: int, images: int, rows: int, columns: int, step: int,
                 squeeze: bool) -> Tensor:
        # −(x_v − x_u)² (exact negation). Their channel sum has the bits of −‖x_v − x_u‖²
        # except for a zero sum (+0 here, −0 there); exp gives 1 for both, so the
        # potentials are equal bit for bit (NaN included).
        squared = grid_squared(x, base, hw, w, step, images, rows, columns, negated=True,
                               channel_major=channel_major)
        return (squared[0] if squeeze else squared).sum(-1).exp_()

    if x.numel() <= _ROW_CHUNK_PIXELS:
        return gaussian(0, b, h, w - 1, 1, False), gaussian(0, b, h - 1, w, w, False)
    horizontal = x.new_empty(b, h, max(w - 1, 0))
    vertical = x.new_empty(b, max(h - 1, 0), w)
    for i, start, stop, stop_v in _row_chunks(b, h, w):
        base = i * hw + start * w
        horizontal[i, start:stop] = gaussian(base, 1, stop - start, w - 1, 1, True)
        if stop_v > start:
            vertical[i, start:stop_v] = gaussian(base, 1, stop_v - start, w, w, True)
    return horizontal, vertical


def _grid_tie_candidates(grid: Tensor, qh: Tensor, qv: Tensor) -> tuple[Tensor, ...]:
    """Hashed-rule keys (int32, :func:`~dhtgraph.hierarchy.contraction.tie_keys`) of every
    pixel's up, left, right and down candidates.

    The hash reads the pixel indices within the image (``r·W + c``), the level-0 indices
    :func:`~dhtgraph.hierarchy.contraction.local_index` gives on the general path. An edge
    between two pixels of exactly equal features (inside a plateau,
    :func:`~dhtgraph.hierarchy.contraction.equal_ends`) drops the hash, so there the index
    decides, and the keys order every pixel's candidates as the general path's do. Both
    directions of an edge share one key (the hash and the equality are symmetric).
    """
    h, w = qv.shape[1] + 1, qh.shape[2] + 1
    # The hashes of the pixel pairs, a few rows at a time (tie_hash's int64 temporaries
    # stay bounded), kept as int32 (they hold TIE_HASH_BITS bits).
    hash_h = torch.empty((h, w - 1), dtype=torch.int32, device=qh.device)
    hash_v = torch.empty((h - 1, w), dtype=torch.int32, device=qh.device)
    rows = max(1, _ROW_CHUNK_PIXELS // w)
    for start in range(0, h, rows):
        stop = min(start + rows, h)
        index = torch.arange(start * w, (stop + 1) * w, device=qh.device).view(-1, w)
        hash_h[start:stop] = tie_hash(index[:-1, :-1], index[:-1, 1:])
        below = min(stop, h - 1)  # vertical pairs of rows start..below−1 (to the next row)
        if below > start:
            hash_v[start:below] = tie_hash(index[:below - start], index[1:below - start + 1])
        del index
    items = grid.detach()
    key_h = tie_keys(qh, hash_h, (items[:, :, :-1] == items[:, :, 1:]).all(-1))
    key_v = tie_keys(qv, hash_v, (items[:, :-1] == items[:, 1:]).all(-1))
    return key_v, key_h, key_h, key_v


def _grid_argmax(horizontal: Tensor, vertical: Tensor, tie_break: TieBreak = "reference",
                 grid: Optional[Tensor] = None) -> Tensor:
    """Direction of every pixel's best neighbour (B, H, W), int8: 0 up, 1 left, 2 right, 3 down.

    Candidates are visited in increasing neighbour index (up, left, right, down) and a
    later candidate wins ties (``>=``): the reference's larger-index tie rule. With
    ``tie_break='hashed'`` the compared values are the quantised potentials extended by
    the edges' tie hashes (:func:`_grid_tie_candidates`; ``grid`` (B, H, W, d) is then
    required), so the index decides only among equal keys.
    """
    qh = quantize_potential(horizontal, torch.int32)
    qv = quantize_potential(vertical, torch.int32)
    if tie_break == "reference":
        return _reference_argmax(qh, qv)
    up, left, right, down = _grid_tie_candidates(grid, qh, qv)
    del qh, qv
    b, hm1, w = up.shape
    h = hm1 + 1
    best = torch.full((b, h, w), -1, dtype=torch.int32, device=up.device)
    code = torch.zeros((b, h, w), dtype=torch.int8, device=up.device)
    # up: always taken where it exists (best is −1 there).
    best[:, 1:].copy_(up)
    # left
    view = best[:, :, 1:]
    take = left >= view
    code[:, :, 1:].masked_fill_(take, 1)
    view.copy_(torch.where(take, left, view))
    # right
    view = best[:, :, :-1]
    take = right >= view
    code[:, :, :-1].masked_fill_(take, 2)
    view.copy_(torch.where(take, right, view))
    # down
    take = down >= best[:, :-1]
    code[:, :-1].masked_fill_(take, 3)
    return code


def _reference_argmax(qh: Tensor, qv: Tensor) -> Tensor:
    """The ``'reference'`` argmax of :func:`_grid_argmax` from the quantised potentials.

    Each candidate's key is ``q·4 + direction`` (16 + 2 bits, int32): the largest key
    is the largest potential and, among equal ones, the largest direction, i.e. the
    larger neighbour index — the ``>=`` visiting order of the general path. Missing
    neighbours (image borders) keep the key −1. ``qh`` and ``qv`` are overwritten.
    """
    b, h, w = qv.shape[0], qv.shape[1] + 1, qh.shape[2] + 1
    best = torch.full((b, h, w), -1, dtype=torch.int32, device=qh.device)
    up = qv.mul_(4)  # keys of the up candidates (direction 0) of rows 1..H−1
    best[:, 1:].copy_(up)
    left = qh.mul_(4).add_(1)  # direction 1, columns 1..W−1
    view = best[:, :, 1:]
    torch.maximum(view, left, out=view)
    right = left.add_(1)  # direction 2, columns 0..W−2
    view = best[:, :, :-1]
    torch.maximum(view, right, out=view)
    down = up.add_(3)  # direction 3, rows 0..H−2
    view = best[:, :-1]
    torch.maximum(view, down, out=view)
    return best.bitwise_and_(3).to(torch.int8)


def _native_grid(x: Tensor, height: int, width: int) -> bool:
    """Whether the native kernels (:mod:`dhtgraph._native.grid`) take this level: CPU
    features they can read (float32/float64, any layout) and images of fewer than 2³¹
    pixels (the tie hash's 32-bit indices)."""
    if not _native.enabled("grid", x) or height * width >= 1 << 31:
        return False
    from .._native.grid import supports
    return supports(x)


def _grid_choice(horizontal: Tensor, vertical: Tensor, tie_break: TieBreak, x: Tensor,
                 num_images: int, height: int, width: int, native: bool,
                 mix: Optional[tuple[float, float]] = None) -> tuple[Tensor, Tensor]:
    """Direction codes (B, H, W) int8 (:func:`_grid_argmax`) and choices (B·H·W,) int64.

    ``mix`` (native only): ``(1 − c, c·C)``, when the potentials given are the Gaussian
    parts of :func:`_native_potentials`; the kernel mixes them in place first."""
    if native:
        from .._native.grid import grid_argmax
        scale, term = mix if mix is not None else (None, None)
        return grid_argmax(horizontal, vertical, num_images, height, width,
                           tie_break == "hashed", x, scale, term)
    n = x.shape[0]
    code = _grid_argmax(horizontal, vertical, tie_break,
                        x.view(num_images, height, width, x.shape[1]))
    small = torch.int32 if n < 2**31 - 1 else torch.long
    offsets = torch.tensor([-width, -1, 1, width], dtype=small, device=x.device)
    offset = offsets.index_select(0, code.view(-1).to(small))
    return code, torch.arange(n, device=x.device).add_(offset)


def _choice_differs(x: Tensor, code: Tensor) -> Tensor:
    """(d, B·H·W) bool: where a pixel's feature differs from the neighbour it chose.

    Every block of the level is connected by its pixels' choice edges, so a block is
    constant in a channel iff no choice edge inside it differs there: the test of
    :func:`~dhtgraph.hierarchy.contraction.snap_constant_blocks` (every item equals a
    representative) from shifted-grid comparisons, without gathering pixel rows.
    Channel-first planes: the direction masks broadcast over the leading channel axis
    (and an image's (N, d) features are usually channel-first in memory already).
    """
    b, h, w = code.shape
    d = x.shape[1]
    items = x.detach().t().reshape(d, b, h, w)
    differs = torch.zeros((d, b, h, w), dtype=torch.bool, device=x.device)
    if h > 1:
        ne = items[:, :, :-1] != items[:, :, 1:]
        differs[:, :, 1:] |= ne & (code[:, 1:] == 0)
        differs[:, :, :-1] |= ne & (code[:, :-1] == 3)
        del ne
    if w > 1:
        ne = items[..., :-1] != items[..., 1:]
        differs[..., 1:] |= ne & (code[:, :, 1:] == 1)
        differs[..., :-1] |= ne & (code[:, :, :-1] == 2)
    return differs.view(d, b * h * w)


def _constant_on_choice(differs: Tensor, labels: Tensor, k: int) -> Tensor:
    """(K, d) bool: the block is constant in the channel, from :func:`_choice_differs`."""
    count = torch.zeros((differs.shape[0], k), dtype=torch.int32,
                        device=differs.device).index_add_(1, labels, differs.to(torch.int32))
    return (count == 0).t()


def _snap_on_choice(constant: Tensor, new_var: Tensor) -> Tensor:
    """``snap_constant_blocks``'s variance for pixel items, from the (K, d) mask of
    constant channels (:func:`_constant_on_choice`)."""
    if torch.is_grad_enabled() and new_var.requires_grad:
        # Value 0, gradient of the pooled formula (as snap_constant_blocks).
        return torch.where(constant, (new_var - new_var.detach()).nan_to_num(0.0), new_var)
    return torch.where(constant, new_var.new_zeros(()), new_var)


def _chosen_potential(horizontal: Tensor, vertical: Tensor, code: Tensor,
                      native: bool = False) -> Tensor:
    """K̃(v, a(v)) per pixel from the direction codes (differentiable; ``native``: the
    kernel's copy when no gradient is recorded)."""
    if native and not (torch.is_grad_enabled() and (horizontal.requires_grad
                                                    or vertical.requires_grad)):
        from .._native.grid import grid_chosen
        return grid_chosen(horizontal, vertical, code)
    b, h, w = code.shape
    zero = horizontal.new_zeros(())
    # Potentials seen from each pixel in the four directions (0 where there is none).
    up = torch.nn.functional.pad(vertical, (0, 0, 1, 0))
    down = torch.nn.functional.pad(vertical, (0, 0, 0, 1))
    left = torch.nn.functional.pad(horizontal, (1, 0))
    right = torch.nn.functional.pad(horizontal, (0, 1))
    out = torch.where(code == 0, up, zero)
    out = torch.where(code == 1, left, out)
    out = torch.where(code == 2, right, out)
    out = torch.where(code == 3, down, out)
    return out.reshape(-1)


def _size_moments(x: Tensor, labels: Tensor, counts: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Block means and variances (k, d) of pixels ``x`` (N, d) under 'size' weights, before
    the snap: w = m = 1, so w·μ is μ and the totals are the counts (exact in float)."""
    d = x.shape[1]
    total = counts.to(x.dtype).unsqueeze(1)
    mean = x.new_zeros(k, d).index_add_(0, labels, x) / total
    spread = mean.index_select(0, labels)
    if torch.is_grad_enabled() and spread.requires_grad:
        # Autograd refuses out= and in-place pow on this graph: the same two elementwise
        # operations out of place (bit-identical values).
        spread = (x - spread).pow(2)
    else:
        # (x − μ[labels])², computed in place in one pixel-sized buffer.
        torch.sub(x, spread, out=spread).pow_(2)
    var = x.new_zeros(k, d).index_add_(0, labels, spread) / total
    return mean, var


def grid_contraction(state: BlockState, num_images: int, height: int, width: int, *,
                     compactness: float = 0.1,
                     weights: PoolWeights = "argmax_edge",
                     tie_break: TieBreak = "reference") -> Contraction:
    """Contract the pixel grid once (every pixel movable); see the module docstring.

    Parameters
    ----------
    state : BlockState
        Level 0 (one block per pixel, row-major, images concatenated), e.g.
        :func:`pixel_state`; only ``mean`` and ``batch`` are read. A block's image
        (``batch`` of the result) is ``state.batch`` of its pixels, expected constant on
        each image (the image index for a batch); where it is not, both paths give the
        block's last pixel's value on the CPU.
    num_images, height, width : int
        B, H, W; every image needs at least two pixels.
    compactness : float
        c of the potentials.
    weights : {'argmax_edge', 'size'} or another registered name
        Pooling weights, a name of
        :data:`~dhtgraph.hierarchy.contraction.POOL_WEIGHTINGS`. ``'argmax_edge'``'s
        function (under any name) and the weightings that return sizes
        (``returns_sizes``: ``'size'``) have their grid form here; any other runs the
        general level on the full pixel state (the ``contract`` below, with the edge list
        built).
    tie_break : {'reference', 'hashed'}, default 'reference'
        How the argmax breaks exact ties (see
        :data:`dhtgraph.hierarchy.contraction.TIE_BREAKS`).

    Returns
    -------
    Contraction
        Equal to ``contract(full_state, edge_affinity(full_state...), weights=weights,
        tie_break=tie_break)``, ``full_state`` = :func:`materialize_pixel_state`.

    Raises
    ------
    ValueError
        For unknown ``weights`` or ``tie_break``, images of fewer than two pixels, or a
        state without ``num_images·height·width`` blocks.
    """
    weighting = POOL_WEIGHTINGS.resolve(weights, "weights")
    check_tie_break(tie_break)
    x = state.mean
    n, d = x.shape
    if height * width < 2 or n != num_images * height * width:
        raise ValueError(f"Expected 'state' of {num_images} images of {height}×{width} ≥ 2 "
                         f"pixels (got {n} blocks)")
    sizes = bool(getattr(weighting, "returns_sizes", False))
    if not sizes and weighting is not argmax_edge_weights:
        # A registered weighting without a grid form (the registry's function decides,
        # whatever name it is registered under): the general level.
        full = materialize_pixel_state(state, num_images, height, width)
        potential = edge_affinity(full.mean, full.var, full.size, full.bbox, full.edge_index,
                                  compactness=compactness)
        return contract(full, potential, weights=weights, tie_break=tie_break)
    device = x.device
    native = _native_grid(x, height, width)
    c = float(compactness)
    grad = torch.is_grad_enabled() and x.requires_grad
    mix = None
    if native and not grad and _native_layout(x):
        horizontal, vertical = _native_potentials(x, num_images, height, width)
        if c > 0:
            mix = (1.0 - c, _pixel_term(c, x.dtype))
    else:
        horizontal, vertical = _grid_potentials(x.view(num_images, height, width, d), c)
    code, choice = _grid_choice(horizontal, vertical, tie_break, x, num_images, height,
                                width, native, mix)
    if sizes:
        del horizontal, vertical
        differs = None if native else _choice_differs(x, code)
        del code
    labels, k = functional_component_labels(choice)
    partition = Partition(labels, k, canonical=True)
    dtype = x.dtype
    if native:
        from .._native.grid import grid_blocks
        counts, bbox, new_batch = grid_blocks(labels, k, num_images, height, width,
                                              state.batch)
    else:
        counts = torch.bincount(labels, minlength=k)
    if sizes and native and not grad:
        # The same sums in pixel order, divisions and snap in one native pass each.
        from .._native.grid import grid_size_moments
        new_mean, new_var = grid_size_moments(x, choice, labels, counts, k)
    elif sizes:
        new_mean, new_var = _size_moments(x, labels, counts, k)
        if native:
            from .._native.grid import grid_constant
            constant = grid_constant(x, choice, labels, k)
        else:
            constant = _constant_on_choice(differs, labels, k)
            del differs
        new_var = _snap_on_choice(constant, new_var)
        del constant
    else:
        ones = torch.ones((), dtype=dtype, device=device)
        weight = _safe_sqrt(_chosen_potential(horizontal, vertical, code, native).to(dtype))
        del horizontal, vertical, code
        # Pixels: σ² = 0; a block whose weights are all zero falls back to sizes (1).
        new_mean, new_var = weighted_moments(x, None, labels, k, weight, ones.expand(n))
        del weight
    if not native:
        bbox, new_batch = _grid_boxes(labels, k, num_images, height, width, state.batch)
    edge_index = grid_quotient(labels, k, num_images, height, width, loops=True)
    new = BlockState(mean=new_mean, var=new_var, size=counts, bbox=bbox,
                     edge_index=edge_index, batch=new_batch)
    return Contraction(partition=partition, state=new, choice=choice)


def _grid_boxes(labels: Tensor, k: int, num_images: int, height: int, width: int,
                batch: Tensor) -> tuple[Tensor, Tensor]:
    """Boxes (K, 4) int64 (min/max of the pixel rows and columns, 32-bit while
    computing) and images (K,) of the blocks ``labels`` (the tensor path)."""
    device = labels.device
    small = torch.int32 if labels.numel() < 2**31 - 1 else torch.long
    row, col = grid_coordinates(height, width, num_images, dtype=small, device=device)
    bbox = torch.empty(k, 4, dtype=small, device=device)
    for j, (values, reduce) in enumerate(((row, "amin"), (col, "amin"), (row, "amax"),
                                          (col, "amax"))):
        bbox[:, j] = bbox.new_empty(k).scatter_reduce_(0, labels, values, reduce=reduce,
                                                       include_self=False)
    del row, col
    # The pixels' images, as the native kernel (a single image too: ``batch`` is the
    # caller's, not assumed zero).
    new_batch = torch.empty(k, dtype=torch.long, device=device).scatter_(0, labels, batch)
    return bbox.long(), new_batch
