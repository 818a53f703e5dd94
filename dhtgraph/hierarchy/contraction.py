"""One level of differentiable edge contraction (method spec §3.4–§3.7).

Every block ``v`` of the current block graph picks its best incident edge
``a(v) = argmax K̃(v, ·)`` over its neighbours and its own self-loop. The new blocks are
the connected components of the functional graph ``{(v, a(v))}`` (theory/ Theorem 2:
every new block is connected, and without self-loops the count at least halves). Block
statistics are pooled with weights ``w``:

    μ_S = Σ w_i μ_i / Σ w_i,   σ²_S = Σ w_i (σ²_i + (μ_i − μ_S)²) / Σ w_i,   m_S = Σ m_i

with ``w_i = m_i·√K̃(i, a(i))`` (``'argmax_edge'``: the paper's weights, which carry
gradient into the potentials) or ``w_i = m_i`` (``'size'``: exact statistics). Edges are
relabelled through the new partition (edges inside a block become its self-loop) and
bounding boxes merge by min/max.

All of it is scatter/gather over ``edge_index``; nothing is dense and nothing loops over
blocks in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Optional

import torch
from torch import Tensor

from .._union import functional_component_labels
from ..partition import Partition

__all__ = [
    "BlockState",
    "Contraction",
    "PoolWeights",
    "POOL_WEIGHTS",
    "QUANTIZATION_BITS",
    "quantize_potential",
    "argmax_choice",
    "chosen_potential",
    "pool_blocks",
    "snap_constant_blocks",
    "contract",
]

PoolWeights = Literal["argmax_edge", "size"]
POOL_WEIGHTS = ("argmax_edge", "size")
#: Bits of the potential kept by the argmax (the reference packs 16 value bits with
#: 47 index bits into one int64 and takes a scatter-max; ties go to the larger index).
QUANTIZATION_BITS = 16
_INDEX_BITS = 63 - QUANTIZATION_BITS


@dataclass
class BlockState:
    """Statistics of the K blocks of one level of the hierarchy.

    Attributes
    ----------
    mean : Tensor of shape (K, d)
        Block means μ of the pixel features.
    var : Tensor of shape (K, d)
        Diagonal variances σ².
    size : LongTensor of shape (K,)
        Pixels per block m.
    bbox : LongTensor of shape (K, 4) or None
        Inclusive bounding boxes ``(ymin, xmin, ymax, xmax)``; None only in the lean
        level-0 state of a pixel grid (:func:`dhtgraph.hierarchy.grid.pixel_state`).
    edge_index : LongTensor of shape (2, E) or None
        Coalesced block graph, both directions; a block that contains an edge of the pixel
        graph has a self-loop. None only in the lean level-0 state of a pixel grid.
    batch : LongTensor of shape (K,)
        Image of every block.
    """

    mean: Tensor
    var: Tensor
    size: Tensor
    bbox: Optional[Tensor]
    edge_index: Optional[Tensor]
    batch: Tensor

    @property
    def num_blocks(self) -> int:
        return self.mean.shape[0]

    def validate(self) -> "BlockState":
        """Check shapes (cheap); return ``self``. ``bbox`` and ``edge_index`` may be None."""
        if self.mean.dim() != 2 or self.var.shape != self.mean.shape:
            raise ValueError(f"Expected 'mean' and 'var' of shape (K, d) (got "
                             f"{tuple(self.mean.shape)} and {tuple(self.var.shape)})")
        k = self.mean.shape[0]
        for name, t, shape in (("size", self.size, (k,)), ("bbox", self.bbox, (k, 4)),
                               ("batch", self.batch, (k,))):
            if t is not None and tuple(t.shape) != shape:
                raise ValueError(f"Expected '{name}' of shape {shape} (got {tuple(t.shape)})")
        if self.edge_index is not None and (self.edge_index.dim() != 2
                                            or self.edge_index.shape[0] != 2):
            raise ValueError(f"Expected 'edge_index' of shape (2, E) (got "
                             f"{tuple(self.edge_index.shape)})")
        return self

    @classmethod
    def from_pixels(cls, x: Tensor, pos: Tensor, edge_index: Tensor,
                    batch: Optional[Tensor] = None) -> "BlockState":
        """Level 0: every pixel is a block (σ² = 0, m = 1, a one-pixel box).

        Parameters
        ----------
        x : Tensor of shape (N, d)
            Pixel features.
        pos : Tensor of shape (N, 2)
            Pixel (row, col).
        edge_index : LongTensor of shape (2, E)
            Pixel graph without self-loops.
        batch : LongTensor of shape (N,), optional
            Image of every pixel (zeros when None).
        """
        n = x.shape[0]
        rc = pos.round().long()
        if batch is None:
            batch = torch.zeros(n, dtype=torch.long, device=x.device)
        return cls(
            mean=x,
            var=torch.zeros_like(x),
            size=torch.ones(n, dtype=torch.long, device=x.device),
            bbox=torch.cat([rc, rc], dim=1),
            edge_index=edge_index,
            batch=batch,
        )


@dataclass
class Contraction:
    """The result of one contraction level.

    Attributes
    ----------
    partition : Partition of the K blocks of the input level
        Which new block every old block joined (the hierarchy's relative level).
    state : BlockState
        Statistics of the K' new blocks.
    choice : LongTensor of shape (K,)
        ``a(v)``: the block that every old block chose (itself for a self-loop).
    """

    partition: Partition
    state: BlockState
    choice: Tensor


def quantize_potential(potential: Tensor, dtype: torch.dtype = torch.long) -> Tensor:
    """``⌊clip(K̃, 0, 1)·(2¹⁶ − 1)⌋`` (the reference's argmax resolution); NaN → 0.

    ``dtype`` is the integer type of the result (int64 by default; int32 holds the same
    values in half the memory).
    """
    scale = float((1 << QUANTIZATION_BITS) - 1)
    # NaN (e.g. inf − inf on overflowing features) scores 0, never a garbage integer.
    return potential.detach().nan_to_num(nan=0.0).clamp(0, 1).mul(scale).to(dtype)


def argmax_choice(potential: Tensor, edge_index: Tensor, num_nodes: int,
                  movable: Optional[Tensor] = None) -> Tensor:
    """Every block's best incident edge, with the reference's quantisation and tie rule.

    Parameters
    ----------
    potential : Tensor of shape (E,)
        ``K̃`` of every edge (symmetric graphs: both directions carry the same value).
    edge_index : LongTensor of shape (2, E)
        Edges ``(v, u)``: ``u`` is a candidate for ``v``; a loop ``(v, v)`` lets ``v`` stay.
    num_nodes : int
        K.
    movable : BoolTensor of shape (K,), optional
        Blocks allowed to merge (used to freeze images that have stopped). A frozen
        block chooses itself and is no candidate for the others: a movable block picks
        its best edge among its movable neighbours and its own loop (itself when it has
        none), so no block ever merges with a frozen one.

    Returns
    -------
    LongTensor of shape (K,)
        ``a(v)``. Potentials are compared after quantisation to 16 bits; among equal
        values the larger neighbour index wins. A block without edges chooses itself.
    """
    src, dst = edge_index[0], edge_index[1]
    key = (quantize_potential(potential) << _INDEX_BITS) | dst
    if movable is not None:
        # Edges into frozen blocks are no candidates (a loop is one only for a movable
        # block, whose loop is an edge into a movable block).
        key = torch.where(movable.index_select(0, dst), key, key.new_full((), -1))
    best = torch.full((num_nodes,), -1, dtype=torch.long, device=key.device)
    best.scatter_reduce_(0, src, key, reduce="amax", include_self=True)
    own = torch.arange(num_nodes, device=key.device)
    choice = torch.where(best >= 0, best & ((1 << _INDEX_BITS) - 1), own)
    if movable is not None:
        choice = torch.where(movable, choice, own)
    return choice


def chosen_potential(potential: Tensor, edge_index: Tensor, choice: Tensor) -> Tensor:
    """``K̃(v, a(v))`` for every block (0 where the chosen edge does not exist).

    Differentiable in ``potential``. ``edge_index`` must hold no duplicate edges.
    """
    src, dst = edge_index[0], edge_index[1]
    hit = dst == choice[src]
    out = potential.new_zeros(choice.shape[0])
    return out.index_add(0, src[hit], potential[hit])


def _safe_sqrt(x: Tensor) -> Tensor:
    # √x with a zero (not infinite) gradient at x = 0.
    positive = x > 0
    return torch.where(positive, x.clamp_min(torch.finfo(x.dtype).tiny).sqrt(), x.new_zeros(()))


def _relabel_edges(partition: Partition, edge_index: Tensor) -> Tensor:
    """The quotient graph with self-loops, coalesced (same result as
    ``partition.quotient(edge_index, self_loops=True)``)."""
    labels = partition.labels
    k = max(partition.num_blocks, 1)
    key = labels.index_select(0, edge_index[0]).mul_(k).add_(labels.index_select(0, edge_index[1]))
    key = torch.unique(key)
    src = torch.div(key, k, rounding_mode="floor")
    key -= src * k
    return torch.stack([src, key])


def pool_blocks(state: BlockState, partition: Partition, weight: Tensor) -> BlockState:
    """Weighted pooling of block statistics into the blocks of ``partition`` (spec §3.6).

    Parameters
    ----------
    state : BlockState
        K blocks.
    partition : Partition of K items
        The grouping of the blocks into K' new blocks.
    weight : Tensor of shape (K,)
        Non-negative pooling weights ``w``. A new block whose weights are all zero falls
        back to size weights (no NaN).

    Returns
    -------
    BlockState
        K' blocks: pooled mean and variance, summed sizes, merged boxes, the quotient
        graph with self-loops, and the image of every block.
    """
    return _pool_blocks(state, partition, weight, positive=False)


def weighted_moments(mean: Tensor, var: Optional[Tensor], labels: Tensor, num_blocks: int,
                     weight: Tensor, fallback: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Pooled mean and variance of items grouped by ``labels`` (spec §3.6).

    ``μ_S = Σ w_i μ_i / Σ w_i`` and ``σ²_S = Σ w_i (σ²_i + (μ_i − μ_S)²) / Σ w_i``.

    Parameters
    ----------
    mean : Tensor of shape (K, d)
    var : Tensor of shape (K, d) or None
        None: every item has zero variance (pixels).
    labels : LongTensor of shape (K,)
        New block of every item.
    num_blocks : int
        K'.
    weight : Tensor of shape (K,)
        Pooling weights ≥ 0, in the dtype of ``mean``.
    fallback : Tensor of shape (K,) or None
        Weights used instead in a block whose weights are all zero; None when every
        weight is > 0 (the guard is skipped).

    Returns
    -------
    (Tensor of shape (K', d), Tensor of shape (K', d))
    """
    total = weight.new_zeros(num_blocks).index_add(0, labels, weight)
    if fallback is not None:
        # Zero-weight guard: a block whose weights are all zero uses the fallback instead.
        weight = torch.where(total.index_select(0, labels) > 0, weight, fallback)
        total = weight.new_zeros(num_blocks).index_add(0, labels, weight)
    w = weight.unsqueeze(1)
    total = total.unsqueeze(1)
    d = mean.shape[1]
    new_mean = mean.new_zeros(num_blocks, d).index_add(0, labels, w * mean) / total
    spread = (mean - new_mean.index_select(0, labels)).pow(2)
    if var is not None:
        spread = var + spread
    new_var = mean.new_zeros(num_blocks, d).index_add(0, labels, w * spread) / total
    return snap_constant_blocks(mean, var, labels, num_blocks, new_mean, new_var)


def snap_constant_blocks(mean: Tensor, var: Optional[Tensor], labels: Tensor, num_blocks: int,
                         new_mean: Tensor, new_var: Tensor) -> tuple[Tensor, Tensor]:
    """Zero variance, exactly, in the channels where every item of a block is the same.

    A float sum of n equal values is not n times the value (a 512² constant block of
    0.123 pools to 0.1229904 in float32), so a constant block's pooled variance is the
    square of that rounding error: noise proportional to the squared magnitude of the
    values (a constant image of 1e10 had blocks of variance ~1e14, which the information
    criterion read as texture, and stayed one token per pixel). Where ``min == max`` of
    the item means in a block channel and every item variance there is 0, the variance
    is set to 0, whatever the magnitude (±inf included). The mean keeps its pooled value
    (changing it by an ulp would move argmax ties on ordinary images); other channels
    are untouched. Gradients are those of the pooled formula (straight through).

    Parameters
    ----------
    mean : Tensor of shape (K, d)
        Item means.
    var : Tensor of shape (K, d) or None
        Item variances (None: all zero).
    labels : LongTensor of shape (K,)
        New block of every item.
    num_blocks : int
        K'.
    new_mean, new_var : Tensor of shape (K', d)
        The pooled statistics.

    Returns
    -------
    (Tensor of shape (K', d), Tensor of shape (K', d))
        ``new_mean`` unchanged and the snapped variance.
    """
    index = labels.unsqueeze(1).expand_as(mean)
    items = mean.detach()
    shape = (num_blocks, items.shape[1])
    low = items.new_empty(shape).scatter_reduce_(0, index, items, reduce="amin",
                                                 include_self=False)
    high = items.new_empty(shape).scatter_reduce_(0, index, items, reduce="amax",
                                                  include_self=False)
    constant = low == high
    del low, high
    if var is not None:
        spread = var.detach().new_zeros(shape).scatter_reduce_(0, index, var.detach(),
                                                               reduce="amax", include_self=True)
        constant &= spread == 0
    zero = new_var.new_zeros(())
    if torch.is_grad_enabled() and new_var.requires_grad:
        # Value 0, gradient of the pooled formula.
        return new_mean, torch.where(constant, (new_var - new_var.detach()).nan_to_num(0.0),
                                     new_var)
    return new_mean, torch.where(constant, zero, new_var)


def _pool_blocks(state: BlockState, partition: Partition, weight: Tensor, *,
                 positive: bool) -> BlockState:
    # positive=True: the caller guarantees every weight > 0 (sizes), so the zero-weight
    # guard is skipped.
    labels, k_new = partition.labels, partition.num_blocks
    mean = state.mean
    size_f = None if positive else state.size.to(mean.dtype)
    new_mean, new_var = weighted_moments(mean, state.var, labels, k_new, weight.to(mean.dtype),
                                         size_f)
    new_size = torch.zeros(k_new, dtype=state.size.dtype, device=labels.device).index_add_(
        0, labels, state.size)
    idx4 = labels.unsqueeze(1).expand(-1, 4)
    new_bbox = state.bbox.new_empty(k_new, 4)
    new_bbox[:, :2].copy_(new_bbox.new_empty(k_new, 2).scatter_reduce_(
        0, idx4[:, :2], state.bbox[:, :2], reduce="amin", include_self=False))
    new_bbox[:, 2:].copy_(new_bbox.new_empty(k_new, 2).scatter_reduce_(
        0, idx4[:, 2:], state.bbox[:, 2:], reduce="amax", include_self=False))
    new_batch = state.batch.new_empty(k_new).scatter_(0, labels, state.batch)
    return BlockState(
        mean=new_mean,
        var=new_var,
        size=new_size,
        bbox=new_bbox,
        edge_index=_relabel_edges(partition, state.edge_index),
        batch=new_batch,
    )


def pool_weights(state: BlockState, chosen: Tensor, weights: PoolWeights) -> Tensor:
    """The pooling weights ``w`` (K,) for ``weights`` in ``{'argmax_edge', 'size'}``."""
    size = state.size.to(state.mean.dtype)
    if weights == "argmax_edge":
        return size * _safe_sqrt(chosen.to(state.mean.dtype))
    if weights == "size":
        return size
    raise ValueError(f"Expected 'weights' to be one of {POOL_WEIGHTS} (got {weights!r})")


def contract(state: BlockState, potential: Tensor, *, weights: PoolWeights = "argmax_edge",
             movable: Optional[Tensor] = None) -> Contraction:
    """One contraction level: argmax, components of the choices, pooling (spec §3.4–§3.7).

    Parameters
    ----------
    state : BlockState
        The K blocks of the current level.
    potential : Tensor of shape (E,)
        ``K̃`` of every edge of ``state.edge_index`` (see
        :func:`dhtgraph.hierarchy.affinity.edge_affinity`).
    weights : {'argmax_edge', 'size'}, default 'argmax_edge'
        Pooling weights: ``m·√K̃(i, a(i))`` (differentiable through the potentials) or
        ``m`` (exact statistics).
    movable : BoolTensor of shape (K,), optional
        Blocks allowed to merge; the others stay as they are, statistics bit-for-bit
        unchanged (used to freeze images that have stopped). A movable block never
        merges into a frozen one (see :func:`argmax_choice`), whatever the mask: every
        block of the result is either one frozen block, unchanged, or a union of
        movable blocks with the pooled statistics of all of them.

    Returns
    -------
    Contraction
    """
    if weights not in POOL_WEIGHTS:
        raise ValueError(f"Expected 'weights' to be one of {POOL_WEIGHTS} (got {weights!r})")
    k = state.num_blocks
    choice = argmax_choice(potential, state.edge_index, k, movable)
    # choice follows edges of the graph (or is the node itself): a valid functional graph.
    partition = Partition(*functional_component_labels(choice), canonical=True)
    if weights == "argmax_edge":
        w = pool_weights(state, chosen_potential(potential, state.edge_index, choice), weights)
        new = _pool_blocks(state, partition, w, positive=False)
    else:
        # Sizes are ≥ 1: no zero-weight guard needed.
        new = _pool_blocks(state, partition, pool_weights(state, potential, weights),
                           positive=True)
    if movable is not None:
        frozen = (~movable).nonzero().squeeze(1)
        target = partition.labels[frozen]
        new = replace(
            new,
            mean=new.mean.index_put((target,), state.mean[frozen]),
            var=new.var.index_put((target,), state.var[frozen]),
        )
    return Contraction(partition=partition, state=new, choice=choice)
