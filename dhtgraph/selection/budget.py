"""Token budget: merge the selected tokens of each image down to ``max_tokens`` (spec §6).

The merge minimises the loss it causes. Replacing two adjacent tokens ``u, v`` (sizes
``m``, mean features ``f``) by their union raises the sum of squared errors of the
features by exactly their *Ward cost*

    ``Δ(u, v) = m_u m_v / (m_u + m_v) · ‖f_u − f_v‖²``,

so the total loss of a budget is the sum of the Ward costs of its merges (the
``loss`` of :class:`BudgetMerge`). :func:`merge_to_budget` merges agglomeratively on
the token (region-adjacency) graph in parallel rounds:

1. every edge gets a key: its Ward cost, then the size of the union (equal costs —
   e.g. the zero costs inside a flat region — merge the smallest pair first, which keeps
   tokens balanced), then a hash of the two endpoints' positions within their image
   (a fixed pseudo-random order: indices alone would order a uniform strip so that only
   one pair per round is mutual), then the edge itself. The keys are a strict total
   order, so ties are resolved deterministically;
2. every token proposes its cheapest edge; the *mutually best* pairs (both endpoints
   propose the same edge) are disjoint, and they merge — in an image that needs fewer
   merges than it has such pairs, only its cheapest ones (this last round makes the
   count exact);
3. sizes and means of the merged pairs are updated (two-term weighted means, so no
   scatter sum and no order-dependent rounding), the token graph is contracted, and the
   rounds repeat until every image has ``min(K_b, max_tokens)`` tokens.

Why this and not a Lagrangian cut of the hierarchy: the budget needs exactly
``max_tokens`` tokens, and a cut of a fixed hierarchy only reaches the counts its
levels allow, so it needs cheapest merges for the remainder anyway; the agglomeration
is that remainder step done everywhere, it needs nothing but the selected tokens (any
graph batch, no hierarchy kept), and it optimises exactly the loss being measured
(explained variation is one minus the normalised squared error). Mutually best pairs are
what a sequential greedy Ward merge would do first: the globally cheapest edge of an
image is always mutually best, so every round merges at least one pair in every image
that is still over budget (the loop ends), and a pair merges only when neither token has
a cheaper option. Merged tokens are unions of adjacent tokens, so every token stays
connected. On the grids of images a round merges about a third of the tokens over
budget, so the rounds are few (O(log K) in practice; at worst one merge per round).

Determinism: keys use positions *within an image*, so an image gets the same tokens
alone or in any batch, whatever the thread count. With a ``generator`` (training
augmentation) the Ward costs are multiplied by seeded log-normal noise
``exp(noise · z)`` and ties are broken at random: merges whose costs differ by less than
a factor of about ``e^noise`` are shuffled, clear boundaries (cost ratios of orders of
magnitude) are kept — the same mechanism, sampled around the deterministic result.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import Tensor

from .. import _native
from .._checks import check_count, check_edge_index
from ..partition import Partition


__all__ = ["BudgetPriority", "BUDGET_PRIORITIES", "BudgetMerge", "keep_mask", "merge_to_budget",
           "check_max_tokens", "check_generator", "check_budget_priority", "ward_costs",
           "DEFAULT_BUDGET_NOISE"]

BudgetPriority = Literal["cost", "size"]
BUDGET_PRIORITIES = ("cost", "size")

#: Scale of the log-normal perturbation of the Ward costs when a ``generator`` is given:
#: merges whose costs are within a factor of ~e² ≈ 7 trade places often, while the
#: cross-boundary merges of a clear edge (orders of magnitude above the merges inside a
#: region) stay last. Measured on four shared photographs at 196 tokens: six seeds give
#: six different partitions of a 24×24 test image (noise 0.5: two), and the mean
#: explained variation drops by 0.007 (0.961 → 0.954), still above 0.1's deterministic
#: budget (0.942). 0 keeps the deterministic costs and only breaks ties at random.
DEFAULT_BUDGET_NOISE = 2.0

#: Matching passes per round: a second pass merges ~1.8× as many pairs per round
#: (rounds 14 → 8 on the shared photographs at 196 tokens) at the same explained
#: variation (±0.0003); a third adds almost nothing.
_MATCHING_PASSES = 2
# 32-bit mixing constants of the tie-break hash (an integer hash with good avalanche;
# all products stay below 2^63, so int64 arithmetic is exact on every device).
_HASH_MASK = 0xFFFFFFFF
_HASH_SEED = 0x9E3779B1
_HASH_MIX = 0x045D9F3B
# The bits of a float32 without its sign: for costs ≥ 0 they order like the costs (NaN,
# of either sign, last), so (image, cost) packs into one int64 sort key.
_FLOAT32_MAGNITUDE = 0x7FFFFFFF


def check_max_tokens(max_tokens, name: str = "max_tokens") -> Optional[int]:
    """Validate a budget: None or a positive int (any size: a budget above the token count
    merges nothing)."""
    return check_count(max_tokens, name, minimum=1, or_none=True, hint="; use None for no budget")


def check_generator(generator, name: str = "generator") -> Optional[torch.Generator]:
    """Validate a seeded generator: None or a :class:`torch.Generator`."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"Expected '{name}' to be a torch.Generator or None (got "
                        f"{type(generator).__name__} {generator!r})")
    return generator


def check_budget_priority(priority, name: str = "budget_priority") -> str:
    """``priority`` itself if it is one of :data:`BUDGET_PRIORITIES`, else a ValueError
    naming ``name``."""
    if not isinstance(priority, str) or priority not in BUDGET_PRIORITIES:
        raise ValueError(f"Expected '{name}' to be one of {BUDGET_PRIORITIES} (got {priority!r})")
    return priority


@dataclass
class BudgetMerge:
    """Result of :func:`merge_to_budget`.

    Attributes
    ----------
    merge : Partition of the K input tokens
        Which output token every input token went to (K' blocks, canonical).
    kept : BoolTensor of shape (K,)
        One representative input token per output token: its largest input token (ties:
        the first). Nothing is "dropped" any more; kept for compatibility with 0.1.
    loss : Tensor of shape (B,), optional
        Per image, the increase in the sum of squared errors of the features caused by
        the merge, ``Σ_t m_t ‖f_t − f̄_T(t)‖²`` (the sum of the Ward costs of its merges;
        0 for an image within budget). B is ``batch.max() + 1``.
    rounds : int
        Number of parallel merge rounds run.
    """

    merge: Partition
    kept: Tensor
    loss: Optional[Tensor] = None
    rounds: int = 0


def ward_costs(features: Tensor, size: Tensor, edge_index: Tensor) -> Tensor:
    """Ward cost ``m_u m_v / (m_u + m_v) · ‖f_u − f_v‖²`` of every edge.

    Parameters
    ----------
    features : Tensor of shape (K, C)
        Mean feature of every token.
    size : Tensor of shape (K,)
        Size (number of pixels, or any positive weight) of every token.
    edge_index : LongTensor of shape (2, E)

    Returns
    -------
    Tensor of shape (E,)
        The increase in the sum of squared errors if the two tokens were merged
        (symmetric: the same value, bit for bit, for ``(u, v)`` and ``(v, u)``).
    """
    a, b = edge_index[0], edge_index[1]
    m = size.to(features.dtype)
    return (features[a] - features[b]).pow(2).sum(-1) * (m[a] * m[b] / (m[a] + m[b]))


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


def keep_mask(score: Tensor, batch: Tensor, max_tokens: int, *,
              generator: Optional[torch.Generator] = None) -> Tensor:
    """Choose exactly ``min(K_b, max_tokens)`` tokens per image (highest scores).

    Not used by :func:`merge_to_budget` any more (which merges rather than keeps);
    kept as a public helper of 0.1.

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
    max_tokens = check_max_tokens(max_tokens)
    generator = check_generator(generator)
    score = score.detach().to(torch.float64)
    if generator is not None:
        uniform = torch.rand(score.shape, generator=generator, dtype=torch.float64,
                             device=generator.device).to(score.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-300, 1.0 - 1e-16)))
        score = torch.where(score > 0, score.clamp_min(1e-300).log() + gumbel,
                            torch.full_like(score, -float("inf")))
    if max_tokens >= score.numel():
        return torch.ones(score.shape, dtype=torch.bool, device=score.device)
    return _rank_within_image(score, batch) < max_tokens


def _tie_hash(a_local: Tensor, b_local: Tensor) -> Tensor:
    """Fixed pseudo-random order of the pairs (a, b), a < b, of positions in an image.

    Positions are below 2^32 (an image has fewer tokens), so they need no masking."""
    x = ((a_local * _HASH_SEED) & _HASH_MASK) ^ b_local
    x = ((x ^ (x >> 16)) * _HASH_MIX) & _HASH_MASK
    x = ((x ^ (x >> 16)) * _HASH_MIX) & _HASH_MASK
    return x ^ (x >> 16)


def _undirected(edge_index: Tensor, num_nodes: int, native: Optional[bool] = None) -> Tensor:
    """Unique edges (a, b) with a < b, sorted; self-loops dropped (``native``: whether
    the caller found the native 'edges' kernels enabled; None: ask)."""
    if native is None:
        native = _native.enabled("edges", edge_index)
    if native:
        from .._native.edges import coalesce_pairs
        return coalesce_pairs(edge_index[0], edge_index[1], num_nodes, undirected=True)
    a = torch.minimum(edge_index[0], edge_index[1])
    b = torch.maximum(edge_index[0], edge_index[1])
    keep = a != b
    n = max(num_nodes, 1)
    key = torch.unique(a[keep] * n + b[keep])
    return torch.stack([key // n, key % n])


def _raise_disconnected(image: int, tokens: int, parts: int, max_tokens: int) -> None:
    raise ValueError(
        f"Expected the token graph of every image to be connected (got image {image} with "
        f"{tokens} tokens, whose token graph is disconnected: {parts} parts without an edge "
        f"between them remain, more than max_tokens={max_tokens}, so they cannot be merged "
        "into fewer tokens)")


def _check_inputs(partition: Partition, features: Tensor, batch: Tensor) -> int:
    if not isinstance(partition, Partition):
        raise TypeError(f"Expected 'partition' to be a Partition (got {type(partition).__name__})")
    k = partition.num_blocks
    if not isinstance(features, Tensor) or features.dim() != 2 or features.shape[0] != k:
        got = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"Expected 'features' to have shape ({k}, C), one row per token (got {got})")
    if not isinstance(batch, Tensor) or batch.shape != (k,):
        got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
        raise ValueError(f"Expected 'batch' to have shape ({k},), the image of every token (got {got})")
    return k


def merge_to_budget(
    partition: Partition,
    features: Tensor,
    batch: Tensor,
    pixel_edge_index: Optional[Tensor],
    max_tokens: int,
    *,
    priority: Optional[BudgetPriority] = None,
    generator: Optional[torch.Generator] = None,
    token_edge_index: Optional[Tensor] = None,
    noise: float = DEFAULT_BUDGET_NOISE,
    sizes: Optional[Tensor] = None,
) -> BudgetMerge:
    """Merge adjacent tokens, cheapest Ward cost first, until no image has more than
    ``max_tokens`` (spec §6; the method is in the module docstring).

    Parameters
    ----------
    partition : Partition of the N pixels
        The K selected tokens (their sizes are ``partition.sizes``).
    features : Tensor of shape (K, C)
        Mean feature of every token (the tokenizer passes the projected colours W μ*);
        the Ward costs are computed on them. Not differentiated (the merge is discrete).
    batch : LongTensor of shape (K,)
        Image of every token.
    pixel_edge_index : LongTensor of shape (2, E), or None with ``token_edge_index``
        The pixel graph (tokens are adjacent when two of their pixels are).
    max_tokens : int
        Budget per image, ≥ 1. Any Python int: a budget at or above an image's token
        count leaves it unchanged (``max_tokens=2**70`` merges nothing).
    priority : {'cost', 'size'}, optional
        Deprecated and ignored: 0.1 chose tokens to *keep* by this priority; the merge
        now minimises the Ward cost. 'cost' is accepted silently (it names what the merge
        does), 'size' with a FutureWarning; anything else is an error.
    generator : torch.Generator, optional
        Seeded sampling for training: multiply the Ward costs by ``exp(noise · z)``,
        ``z ~ N(0, 1)`` per edge and round, and break ties at random. Reproducible with
        the generator's seed (the draws depend on the whole batch).
    token_edge_index : LongTensor of shape (2, E'), optional
        The token graph itself (``partition.quotient(pixel_edge_index)``) when the caller
        already has it; ``pixel_edge_index`` is then not read (it may be None). Any
        direction, order, duplicates or self-loops.
    noise : float, default :data:`DEFAULT_BUDGET_NOISE`
        Scale of the log-normal cost noise with a ``generator`` (ignored without one).
    sizes : LongTensor of shape (K,), optional
        ``partition.sizes`` when the caller has counted them already (saves a pass over
        the N pixels); any positive weights give the Ward costs of weighted tokens.

    Returns
    -------
    BudgetMerge
        Exactly ``min(K_b, max_tokens)`` tokens per image; every output token is a
        connected union of input tokens.

    Raises
    ------
    TypeError
        For a ``max_tokens`` that is not an int or a ``generator`` that is not a
        torch.Generator.
    ValueError
        For ``max_tokens < 1``, an unknown ``priority``, inputs of the wrong shape, or an
        image over budget whose token graph falls into more than ``max_tokens``
        disconnected parts (never for the tokens of a pixel grid).

    Examples
    --------
    >>> from dhtgraph.graph import grid_edge_index
    >>> part = Partition.discrete(4)                  # a 1×4 strip of one-pixel tokens
    >>> feats = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
    >>> out = merge_to_budget(part, feats, torch.zeros(4, dtype=torch.long),
    ...                       grid_edge_index(1, 4), 2)
    >>> out.merge.labels.tolist(), round(float(out.loss[0]), 3)
    ([0, 0, 1, 1], 0.025)
    """
    max_tokens = check_max_tokens(max_tokens)
    generator = check_generator(generator)
    if priority is not None and check_budget_priority(priority, "priority") == "size":
        warnings.warn("merge_to_budget(priority='size') is deprecated and ignored: the budget "
                      "now merges by least Ward cost", FutureWarning, stacklevel=2)
    noise = float(noise)
    if not noise >= 0.0 or noise == float("inf"):
        raise ValueError(f"Expected 'noise' to be a finite float >= 0 (got {noise})")
    k = _check_inputs(partition, features, batch)
    device = features.device
    batch = batch.to(device=device, dtype=torch.long)
    if k == 0:
        return BudgetMerge(Partition(torch.arange(0, device=device), 0, canonical=True),
                           torch.zeros(0, dtype=torch.bool, device=device),
                           torch.zeros(0, dtype=torch.float64, device=device), 0)
    if sizes is None:
        size0 = partition.sizes.to(device)
    else:
        if not isinstance(sizes, Tensor) or sizes.shape != (k,):
            got = tuple(sizes.shape) if isinstance(sizes, Tensor) else type(sizes).__name__
            raise ValueError(f"Expected 'sizes' to have shape ({k},), the size of every token "
                             f"(got {got})")
        size0 = sizes.to(device)
    # Two host reads: the image count with whether tokens are sorted by image, then the
    # total excess (the budget as a Python int no larger than K: huge budgets never reach
    # a tensor).
    budget = min(max_tokens, k)
    last, unsorted = torch.stack([batch.max(), (batch[1:] < batch[:-1]).sum()]).tolist()
    num_images = last + 1
    counts = torch.bincount(batch, minlength=num_images)
    excess = (counts - budget).clamp_min(0)
    remaining = int(excess.sum())
    if remaining == 0:
        return BudgetMerge(Partition(torch.arange(k, device=device), k, canonical=True),
                           torch.ones(k, dtype=torch.bool, device=device),
                           torch.zeros(num_images, dtype=torch.float64, device=device), 0)

    if token_edge_index is not None:
        edges = check_edge_index(token_edge_index, k, "token_edge_index").to(device)
    else:
        edges = partition.quotient(pixel_edge_index, self_loops=False).to(device)
    # Work on the tokens sorted by image (stable: each image's order is kept), so that
    # every image's units stay contiguous: positions in an image are then plain offsets.
    perm = torch.argsort(batch, stable=True) if unsorted else None
    if perm is not None:
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(k, device=device)
        edges = inverse[edges]
    # One check per kernel set for the whole call. Where the selection kernels run, every
    # tensor of the call is on the CPU, so the float kernels' check needs no tensors.
    native = _native.enabled("selection", features, batch, edges)
    native_tokens = native and _native.enabled("tokens")
    edges = _undirected(edges, k, native and _native.enabled("edges"))
    dtype = features.dtype
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.promote_types(dtype, torch.float32)
    # One state row per unit: [size, mean features] (gathered and merged together);
    # integer sizes are converted by the cat (the same conversion as .to(dtype)).
    values = features.detach()
    column = size0.unsqueeze(1) if not size0.is_floating_point() else size0.to(dtype).unsqueeze(1)
    state = torch.cat([column, values.to(dtype)], 1)
    unit_batch = batch
    if perm is not None:
        state, unit_batch = state[perm], batch[perm]
    if native:
        labels, state, rounds = _agglomerate_native(state, edges, unit_batch, counts, excess,
                                                    remaining, max_tokens, generator, noise,
                                                    native_tokens)
    else:
        labels, state, rounds = _agglomerate(state, edges, unit_batch, counts, excess,
                                             remaining, max_tokens, generator, noise)
    n = state.shape[0]
    feats = state[:, 1:]

    if perm is not None:
        # Back to the input order; canonical numbering by first input token.
        labels = labels[inverse]
        feats_of_token = feats[labels]
        merge = Partition(labels)
        feats = torch.zeros_like(feats).index_copy_(0, merge.labels, feats_of_token)
        labels = merge.labels
    merge = Partition(labels, n, canonical=True) if perm is None else merge
    # Loss: the squared error added, Σ_t m_t ‖f_t − f̄_T‖² per image (float64).
    loss = None
    if native_tokens:
        from .._native.tokens import budget_loss
        loss = budget_loss(values, feats, labels, size0, batch, num_images)
    if loss is None:
        loss = _budget_loss(values, feats, labels, size0, batch, num_images)
    # Representative: the largest input token of every output token (ties: the first).
    if native and not size0.is_floating_point():
        from .._native.selection import budget_kept
        return BudgetMerge(merge=merge, kept=budget_kept(labels, size0, n), loss=loss,
                           rounds=rounds)
    largest = torch.zeros(n, dtype=size0.dtype, device=device).scatter_reduce_(
        0, labels, size0, reduce="amax", include_self=False)
    candidate = torch.arange(k, device=device).masked_fill_(size0 != largest.index_select(0, labels), k)
    first = torch.full((n,), k, dtype=torch.long, device=device).scatter_reduce_(
        0, labels, candidate, reduce="amin")
    kept = torch.zeros(k, dtype=torch.bool, device=device).index_fill_(0, first, True)
    return BudgetMerge(merge=merge, kept=kept, loss=loss, rounds=rounds)


def _budget_loss(features: Tensor, feats: Tensor, labels: Tensor, size0: Tensor,
                 batch: Tensor, num_images: int) -> Tensor:
    # ``features``: detached by the caller.
    f64 = features.to(torch.float64)
    centre = feats.to(torch.float64).index_select(0, labels)
    added = (f64 - centre).pow_(2).sum(-1).mul_(size0.to(torch.float64))
    return torch.zeros(num_images, dtype=torch.float64, device=f64.device).index_add_(
        0, batch, added)


def _agglomerate(state: Tensor, edges: Tensor, unit_batch: Tensor, counts: Tensor,
                 excess: Tensor, remaining: int, max_tokens: int,
                 generator: Optional[torch.Generator], noise: float) -> tuple[Tensor, Tensor, int]:
    """The parallel merge rounds of :func:`merge_to_budget` (module docstring).

    ``state`` (n, 1 + C): [size, mean features] of the n units, sorted by image;
    ``edges`` (2, E): the unique unit pairs a < b, sorted; ``excess`` (B,): merges still
    needed per image (the caller's own tensor: :func:`_agglomerate_native` updates it in
    place), ``remaining`` their sum. Returns the unit of every input unit, the
    merged state and the number of rounds.

    Every round works on the edges in key order and then only on the *candidates* (the
    ``excess`` cheapest edges of each image): ranks are positions in that order, so no
    rank scatter is needed, and the matching passes run on at most ``remaining`` edges.
    Host reads per round: two (the number of merges, the number of contracted edges),
    three with several images (also the number of candidates); 0.2.0's loop made seven.
    """
    device = state.device
    n, width = state.shape
    num_images = counts.numel()
    batched = num_images > 1
    # (image, cost) packed into one int64 key for float32 costs: one stable sort fewer.
    packed = batched and state.dtype == torch.float32
    labels = torch.arange(n, device=device)
    units = counts
    rounds = 0
    while remaining > 0:
        e = edges.shape[1]
        if e == 0 and not batched:
            _raise_disconnected(0, int(counts[0]), n, max_tokens)
        a, b = edges[0], edges[1]
        ends = state.index_select(0, edges.view(-1)).view(2, e, width)
        sa, sb = ends[0, :, 0], ends[1, :, 0]
        union = sa + sb
        diff = ends[0, :, 1:] - ends[1, :, 1:]
        cost = diff.mul_(diff).sum(-1).mul_(sa * sb / union)          # ward_costs, inline
        if batched:
            edge_image = unit_batch.index_select(0, a)
        if generator is not None:
            z = torch.randn(cost.shape, generator=generator, dtype=state.dtype,
                            device=generator.device).to(device)
            cost = cost * torch.exp(noise * z)
            tie = torch.randint(0, _HASH_MASK, cost.shape, generator=generator,
                                device=generator.device).to(device)
        elif batched:
            local = edges - (torch.cumsum(units, 0) - units).index_select(0, edge_image)
            tie = _tie_hash(local[0], local[1])
        else:
            tie = _tie_hash(a, b)
        # Strict total order of the edges: image, then (cost, union size, tie hash,
        # position). Sizes are < 2^31 pixels, so (size, hash) packs into one int64 key,
        # and so do (image, cost) for float32 costs (≥ 0: their bits order like them).
        order = torch.argsort(union.long() * (_HASH_MASK + 1) + tie, stable=True)
        if packed:
            primary = (cost.view(torch.int32).long() & _FLOAT32_MAGNITUDE) | (edge_image << 31)
            order = order.index_select(0, torch.argsort(primary.index_select(0, order), stable=True))
        else:
            order = order.index_select(0, torch.argsort(cost.index_select(0, order), stable=True))
            if batched:
                order = order.index_select(0, torch.argsort(edge_image.index_select(0, order),
                                                            stable=True))
        # Candidates: the `excess` cheapest edges of each image (the merges a sequential
        # greedy merge would make next), cheapest first.
        if batched:
            found = torch.bincount(edge_image, minlength=num_images)
            end = torch.cumsum(found, 0) - found + excess       # first non-candidate position
            live = torch.arange(e, device=device) < end.index_select(0, edge_image.index_select(0, order))
            order = order.index_select(0, live.nonzero().squeeze(1))
        else:
            order = order[:remaining]
        cand = edges.index_select(1, order)
        num_cand = cand.shape[1]
        flat = cand.view(-1)
        rank = torch.arange(num_cand, device=device)
        # Merged: the mutually best candidates, then — a second matching pass on the same
        # costs — the mutually best candidates among the edges of the units still
        # unmatched. The pairs are disjoint, at most `excess` per image (the count never
        # undershoots), and the image's cheapest edge always merges (progress).
        chosen = matched = None
        for matching_pass in range(_MATCHING_PASSES):
            key = rank
            if matching_pass:
                # Edges touching a unit matched by the earlier passes leave the candidates.
                key = rank.masked_fill(matched.index_select(0, flat).view(2, num_cand).any(0),
                                       num_cand)
            best = torch.full((n,), num_cand, dtype=torch.long, device=device).scatter_reduce_(
                0, flat, torch.cat([key, key]), reduce="amin")
            mutual = (best.index_select(0, flat).view(2, num_cand) == rank).all(0)
            chosen = mutual if chosen is None else chosen | mutual
            if matching_pass + 1 < _MATCHING_PASSES:
                # A unit is matched when its best edge is: best[u] == num_cand for none.
                hit = torch.cat([chosen, chosen.new_zeros(1)]).index_select(0, best)
                matched = hit if matched is None else matched | hit
        pair = cand.index_select(1, chosen.nonzero().squeeze(1))
        merges = pair.shape[1]
        if merges == 0:
            # Some image over budget has no edge left (the others are done).
            image = int((excess > 0).nonzero()[0, 0])
            _raise_disconnected(image, int(counts[image]), int(units[image]), max_tokens)
        ca, cb = pair[0], pair[1]
        # Merge the pairs: the smaller unit index represents the union (canonical order).
        keep = torch.ones(n, dtype=torch.bool, device=device).index_fill_(0, cb, False)
        step = torch.cumsum(keep, 0).sub_(1)
        target = step.index_select(0, ca)                  # new index of every union
        step.index_copy_(0, cb, target)
        q = state.index_select(0, pair.view(-1)).view(2, merges, width)
        qa, qb = q[0], q[1]
        merged_size = qa[:, :1] + qb[:, :1]
        merged = torch.cat([merged_size, (qa[:, 1:] * qa[:, :1] + qb[:, 1:] * qb[:, :1])
                            / merged_size], 1)
        n = n - merges
        # Compact without a host read: both units of a pair land on one row, which the
        # union then overwrites (so the duplicate write is harmless on every device).
        state = state.new_empty(n, width).index_copy_(0, step, state).index_copy_(0, target, merged)
        if batched:
            per_image = torch.bincount(unit_batch.index_select(0, ca), minlength=num_images)
            excess = excess - per_image
            units = units - per_image
            unit_batch = unit_batch.new_empty(n).index_copy_(0, step, unit_batch)
        remaining -= merges
        labels = step.index_select(0, labels)
        # Contract the unit graph: unique pairs a < b, sorted. Every merged pair left a
        # self-loop, mapped to the key n², which sorts last: drop it without a host read.
        ends = step.index_select(0, edges.view(-1)).view(2, e)
        lo, hi = torch.minimum(ends[0], ends[1]), torch.maximum(ends[0], ends[1])
        key = torch.add(hi, lo, alpha=n).masked_fill_(lo == hi, n * n)
        key = torch.unique(key)[:-1]
        lo = torch.div(key, n, rounding_mode="floor")
        edges = torch.stack([lo, key - lo * n])
        rounds += 1
    return labels, state, rounds


def _round_costs(state: Tensor, edges: Tensor,
                 native: Optional[bool] = None) -> tuple[Tensor, Tensor]:
    # Ward cost and union size of every edge: the tensor path's arithmetic op for op (the
    # same values in the same ops, fewer views). The elementwise terms natively (the
    # state never carries a gradient); the channel sum stays torch's. ``native``: the
    # caller's decision for the 'tokens' kernels (None: ask).
    if (_native.enabled("tokens", state, edges) if native is None else native):
        from .._native.tokens import ward_terms
        terms = ward_terms(state, edges)
        if terms is not None:
            sq, weight, union = terms
            return sq.sum(-1).mul_(weight), union
    e, width = edges.shape[1], state.shape[1]
    ends = state.index_select(0, edges.view(-1)).view(2, e, width)
    sa, sb = ends[..., 0].unbind(0)
    union = sa + sb
    diff = torch.sub(*ends[..., 1:].unbind(0))
    return diff.mul_(diff).sum(-1).mul_(sa * sb / union), union


def _merged_rows(state: Tensor, pair: Tensor, native: Optional[bool] = None) -> Tensor:
    # [size, mean] of the unions of the pairs: two-term weighted means (as the tensor
    # path). ``native`` as in :func:`_round_costs`.
    if (_native.enabled("tokens", state, pair) if native is None else native):
        from .._native.tokens import merged_rows
        rows = merged_rows(state, pair)
        if rows is not None:
            return rows
    merges, width = pair.shape[1], state.shape[1]
    q = state.index_select(0, pair.view(-1)).view(2, merges, width)
    sa, sb = q[..., :1].unbind(0)
    fa, fb = q[..., 1:].unbind(0)
    merged_size = sa + sb
    return torch.cat([merged_size, (fa * sa + fb * sb) / merged_size], 1)


def _agglomerate_native(state: Tensor, edges: Tensor, unit_batch: Tensor, counts: Tensor,
                        excess: Tensor, remaining: int, max_tokens: int,
                        generator: Optional[torch.Generator], noise: float,
                        native_tokens: bool) -> tuple[Tensor, Tensor, int]:
    """:func:`_agglomerate` with the discrete steps of a round in C (``selection.c``).

    The float work stays in torch (the Ward costs, the noise, the merged means, op for
    op as in :func:`_agglomerate`; with ``native_tokens``, the caller's decision for
    the 'tokens' kernels, their elementwise terms in C, ``tokens.c``); one kernel orders
    the edges and picks the candidates and the matching (exact integer keys, the cost's
    order from its bits), another compacts the units, and a third contracts the unit
    graph (two counting sorts instead of a ``unique``). Same results bit for bit
    (tests/selection/test_budget.py)."""
    from .._native.selection import BudgetWorkspace

    n = state.shape[0]
    num_images = counts.numel()
    batched = num_images > 1
    packed = batched and state.dtype == torch.float32
    labels = torch.arange(n)
    units = counts.to(torch.long).clone()  # (counts: the images' sizes for the errors)
    excess = excess.to(torch.long)  # updated in place (see _agglomerate)
    unit_batch = unit_batch.to(torch.long).contiguous()
    state = state.contiguous()
    edges = edges.to(torch.long).contiguous()
    work = BudgetWorkspace(state, edges, num_images)
    rounds = 0
    while remaining > 0:
        e = edges.shape[1]
        if e == 0 and not batched:
            _raise_disconnected(0, int(counts[0]), n, max_tokens)
        cost, union = _round_costs(state, edges, native_tokens)
        tie = None
        if generator is not None:
            z = torch.randn(cost.shape, generator=generator, dtype=state.dtype,
                            device=generator.device).to(state.device)
            cost = cost * torch.exp(noise * z)
            tie = torch.randint(0, _HASH_MASK, cost.shape, generator=generator,
                                device=generator.device).to(state.device)
        pair = work.round(edges, cost, union, tie, unit_batch, units, excess, packed=packed,
                          passes=_MATCHING_PASSES)
        merges = pair.shape[1]
        if merges == 0:
            image = int((excess > 0).nonzero()[0, 0])
            _raise_disconnected(image, int(counts[image]), int(units[image]), max_tokens)
        merged = _merged_rows(state, pair, native_tokens)
        state, unit_batch, edges = work.contract(state, merged, unit_batch, excess, units,
                                                 labels, edges)
        n -= merges
        remaining -= merges
        rounds += 1
    return labels, state, rounds
