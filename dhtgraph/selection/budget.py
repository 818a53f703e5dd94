"""Token budget: merge the selected tokens of each image down to ``max_tokens`` (spec §6).

When an image has more tokens than the budget, exactly ``max_tokens`` of them are kept and
every other ("dropped") token is merged into a kept one through the token graph:

1. every dropped unit chooses its most similar neighbour (largest Gaussian potential
   ``exp(−‖f_u − f_v‖²)`` of the token features, ties to the larger index); kept units
   choose themselves;
2. the components of these choices become the new units; a unit holding a kept token
   is kept (it holds exactly one: kept tokens are the only self-loops);
3. repeat on the contracted graph until every unit is kept.

Every round at least halves the number of units without a kept token, so the loop ends
after O(log K) rounds, and the result has exactly ``min(K_b, max_tokens)`` connected
tokens per image — provided each image's token graph is connected (always so for the
tokens of a pixel grid); otherwise a part without a kept token could not merge, and
:func:`merge_to_budget` raises ValueError rather than exceed the budget. Which tokens
are kept: deterministically the ``max_tokens`` with the highest priority, or — for training — a seeded random sample without replacement
(Gumbel top-k) with probabilities proportional to the priority.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import Tensor

from .._checks import check_count
from ..graph import choice_components
from ..partition import Partition


__all__ = ["BudgetPriority", "BUDGET_PRIORITIES", "BudgetMerge", "keep_mask", "merge_to_budget",
           "check_max_tokens"]

BudgetPriority = Literal["cost", "size"]
BUDGET_PRIORITIES = ("cost", "size")


def check_max_tokens(max_tokens, name: str = "max_tokens") -> Optional[int]:
    """Validate a budget: None or a positive int."""
    return check_count(max_tokens, name, minimum=1, or_none=True, hint="; use None for no budget")


@dataclass
class BudgetMerge:
    """Result of :func:`merge_to_budget`.

    Attributes
    ----------
    merge : Partition of the K input tokens
        Which output token every input token went to (K' blocks).
    kept : BoolTensor of shape (K,)
        The input tokens that were kept (one per output token).
    """

    merge: Partition
    kept: Tensor


def _token_edges(partition: Partition, pixel_edge_index: Tensor) -> Tensor:
    return partition.quotient(pixel_edge_index, self_loops=False)


def _rank_within_image(score: Tensor, batch: Tensor) -> Tensor:
    # Position of every token when its image's tokens are sorted by decreasing score
    # (ties: smaller index first). Two stable sorts, no loop over images.
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(batch[order], stable=True)]
    counts = torch.bincount(batch)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device)
    return rank - start[batch]


def _priority(features: Tensor, size: Tensor, edge_index: Tensor, priority: str) -> Tensor:
    size_f = size.to(torch.float32)
    if priority == "size":
        return size_f
    # 'cost': the Ward cost of merging a token into its most similar neighbour,
    # m_u m_v / (m_u + m_v) · ‖f_u − f_v‖²; cheap-to-merge tokens are dropped first.
    src, dst = edge_index[0], edge_index[1]
    f = features.detach().to(torch.float32)
    cost = (f[src] - f[dst]).pow(2).sum(-1) * (size_f[src] * size_f[dst] / (size_f[src] + size_f[dst]))
    best = torch.full_like(size_f, float("inf"))
    best.scatter_reduce_(0, src, cost, reduce="amin", include_self=True)
    return best


def keep_mask(score: Tensor, batch: Tensor, max_tokens: int, *,
              generator: Optional[torch.Generator] = None) -> Tensor:
    """Choose exactly ``min(K_b, max_tokens)`` tokens per image.

    Parameters
    ----------
    score : Tensor of shape (K,)
        Priority (higher is kept first); for sampling, the (unnormalised) probability
        weights, which must be ≥ 0.
    batch : LongTensor of shape (K,)
        Image of every token.
    max_tokens : int
        Budget per image.
    generator : torch.Generator, optional
        When given, sample without replacement with probabilities ∝ ``score`` (Gumbel
        top-k, reproducible with the generator's seed); otherwise deterministic.

    Returns
    -------
    BoolTensor of shape (K,)
    """
    score = score.detach().to(torch.float64)
    if generator is not None:
        uniform = torch.rand(score.shape, generator=generator, dtype=torch.float64,
                             device=generator.device).to(score.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-300, 1.0 - 1e-16)))
        score = torch.where(score > 0, score.clamp_min(1e-300).log() + gumbel,
                            torch.full_like(score, -float("inf")))
    return _rank_within_image(score, batch) < max_tokens


def _best_neighbour(features: Tensor, edge_index: Tensor, num_nodes: int) -> Tensor:
    """Most similar neighbour (smallest squared distance; ties to the larger index)."""
    src, dst = edge_index[0], edge_index[1]
    dist = (features[src] - features[dst]).pow(2).sum(-1)
    best = torch.full((num_nodes,), float("inf"), dtype=dist.dtype, device=dist.device)
    best.scatter_reduce_(0, src, dist, reduce="amin", include_self=True)
    hit = dist == best[src]
    choice = torch.full((num_nodes,), -1, dtype=torch.long, device=dist.device)
    choice.scatter_reduce_(0, src[hit], dst[hit], reduce="amax", include_self=True)
    own = torch.arange(num_nodes, device=dist.device)
    return torch.where(choice >= 0, choice, own)


def _raise_disconnected(labels: Tensor, num_units: int, kept_input: Tensor, batch: Tensor,
                        max_tokens: int) -> None:
    has_kept = torch.zeros(num_units, dtype=torch.bool, device=labels.device)
    has_kept[labels[kept_input]] = True
    unit_batch = batch.new_empty(num_units).scatter_(0, labels, batch)
    stranded = torch.bincount(unit_batch[~has_kept], minlength=int(batch.max()) + 1)
    tokens = torch.bincount(batch, minlength=stranded.numel())
    image = int(stranded.nonzero()[0, 0])
    raise ValueError(
        f"Expected the token graph of every image to be connected (got image {image} with "
        f"{int(tokens[image])} tokens, whose token graph is disconnected: "
        f"{int(stranded[image])} group(s) of its dropped tokens have no neighbour that leads "
        f"to a kept token, so it cannot be merged to max_tokens={max_tokens})")


def merge_to_budget(
    partition: Partition,
    features: Tensor,
    batch: Tensor,
    pixel_edge_index: Tensor,
    max_tokens: int,
    *,
    priority: BudgetPriority = "cost",
    generator: Optional[torch.Generator] = None,
    token_edge_index: Optional[Tensor] = None,
) -> BudgetMerge:
    """Merge tokens so that no image has more than ``max_tokens`` (spec §6).

    Parameters
    ----------
    partition : Partition of the N pixels
        The K selected tokens.
    features : Tensor of shape (K, C)
        Token features used for similarity (the projected features W μ*).
    batch : LongTensor of shape (K,)
        Image of every token.
    pixel_edge_index : LongTensor of shape (2, E)
        The pixel graph (tokens are adjacent when two of their pixels are).
    max_tokens : int
        Budget per image, ≥ 1.
    priority : {'cost', 'size'}, default 'cost'
        Which tokens are kept: 'cost' keeps those most expensive to merge into their most
        similar neighbour (Ward cost ``m_u m_v/(m_u+m_v)·‖Δf‖²``), 'size' the largest.
    generator : torch.Generator, optional
        Sample the kept tokens with probabilities ∝ priority instead (seeded, for
        training).
    token_edge_index : LongTensor of shape (2, E'), optional
        The token graph itself (``partition.quotient(pixel_edge_index)``) when the caller
        already has it; ``pixel_edge_index`` is then not read (it may be None).

    Returns
    -------
    BudgetMerge
        Exactly ``min(K_b, max_tokens)`` tokens per image; every output token is connected.

    Raises
    ------
    ValueError
        If an image with more than ``max_tokens`` tokens has a disconnected token graph
        and a part of it holds no kept token (it could not be merged into one). Token
        graphs of pixel grids are connected, so this does not happen for images.
    """
    max_tokens = check_max_tokens(max_tokens)
    if priority not in BUDGET_PRIORITIES:
        raise ValueError(f"Expected 'priority' to be one of {BUDGET_PRIORITIES} (got {priority!r})")
    k = partition.num_blocks
    size = partition.sizes
    edge_index = (token_edge_index if token_edge_index is not None
                  else _token_edges(partition, pixel_edge_index))
    feats = features.detach().to(torch.float32)
    kept_input = keep_mask(_priority(feats, size, edge_index, priority), batch, max_tokens,
                           generator=generator)
    labels = torch.arange(k, device=feats.device)
    kept = kept_input
    num_units = k
    while not bool(kept.all()):
        choice = _best_neighbour(feats, edge_index, num_units)
        own = torch.arange(num_units, device=feats.device)
        choice = torch.where(kept, own, choice)
        # A dropped unit without neighbours cannot merge: it is marked kept so that the
        # loop ends, and reported after it (only possible when an image's token graph is
        # disconnected; never for pixel grids).
        kept = kept | (choice == own)
        step = choice_components(choice)
        size_f = size.to(torch.float32).unsqueeze(1)
        pooled = feats.new_zeros(step.num_blocks, feats.shape[1]).index_add_(
            0, step.labels, feats * size_f)
        size = torch.zeros(step.num_blocks, dtype=size.dtype, device=size.device).index_add_(
            0, step.labels, size)
        feats = pooled / size.to(torch.float32).unsqueeze(1)
        kept = torch.zeros(step.num_blocks, dtype=torch.bool, device=kept.device).index_fill_(
            0, step.labels[kept], True)
        edge_index = step.quotient(edge_index, self_loops=False)
        labels = step.labels[labels]
        num_units = step.num_blocks
    # Every output unit holds exactly one kept input token, unless a dropped group had
    # no neighbour to merge into (one host sync, after the loop).
    if num_units != int(kept_input.sum()):
        _raise_disconnected(labels, num_units, kept_input, batch, max_tokens)
    # Composed canonical partitions are canonical (first items stay first).
    return BudgetMerge(merge=Partition(labels, num_units, canonical=True), kept=kept_input)
