"""Frozen oracle: ``merge_to_budget`` of dhtgraph 0.2.0 (main@3635097), verbatim: one round
at a time with three sorts, a rank scatter and several host round-trips per round.
``tests/selection/test_budget.py`` checks that the library's vectorised
:func:`dhtgraph.selection.merge_to_budget` gives the same partitions, losses and round
counts, bit for bit. Test support only; the library never imports it.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
from torch import Tensor

from dhtgraph._checks import check_edge_index
from dhtgraph.partition import Partition
from dhtgraph.selection.budget import (DEFAULT_BUDGET_NOISE, BudgetMerge, BudgetPriority,
                                       check_budget_priority, check_generator, check_max_tokens)

_MATCHING_PASSES = 2
_HASH_MASK = 0xFFFFFFFF
_HASH_SEED = 0x9E3779B1
_HASH_MIX = 0x045D9F3B


def _tie_hash(a_local: Tensor, b_local: Tensor) -> Tensor:
    """Fixed pseudo-random order of the pairs (a, b), a < b, of positions in an image."""
    x = ((a_local & _HASH_MASK) * _HASH_SEED) & _HASH_MASK
    x = x ^ (b_local & _HASH_MASK)
    x = ((x ^ (x >> 16)) * _HASH_MIX) & _HASH_MASK
    x = ((x ^ (x >> 16)) * _HASH_MIX) & _HASH_MASK
    return x ^ (x >> 16)


def _undirected(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Unique edges (a, b) with a < b, sorted; self-loops dropped."""
    a = torch.minimum(edge_index[0], edge_index[1])
    b = torch.maximum(edge_index[0], edge_index[1])
    keep = a != b
    n = max(num_nodes, 1)
    key = torch.unique(a[keep] * n + b[keep])
    return torch.stack([key // n, key % n])


def _local_index(unit_batch: Tensor, num_images: int) -> Tensor:
    """Position of every unit among its image's units (in index order)."""
    order = torch.argsort(unit_batch, stable=True)
    counts = torch.bincount(unit_batch, minlength=num_images)
    start = torch.cumsum(counts, 0) - counts
    local = torch.empty_like(order)
    local[order] = torch.arange(order.numel(), device=order.device)
    return local - start[unit_batch]


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


def reference_merge_to_budget(
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
) -> BudgetMerge:
    """0.2.0's merge_to_budget, verbatim (the oracle)."""
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
    labels = torch.arange(k, device=device)
    if k == 0:
        return BudgetMerge(Partition(labels, 0, canonical=True),
                           torch.zeros(0, dtype=torch.bool, device=device),
                           torch.zeros(0, dtype=torch.float64, device=device), 0)
    num_images = int(batch.max()) + 1
    counts = torch.bincount(batch, minlength=num_images)
    size0 = partition.sizes.to(device)
    # The budget as a Python int no larger than K: huge budgets never reach a tensor.
    budget = min(max_tokens, k)
    excess = (counts - budget).clamp_min(0)
    if not bool(excess.any()):
        return BudgetMerge(Partition(labels, k, canonical=True),
                           torch.ones(k, dtype=torch.bool, device=device),
                           torch.zeros(num_images, dtype=torch.float64, device=device), 0)

    if token_edge_index is not None:
        edges = check_edge_index(token_edge_index, k, "token_edge_index").to(device)
    else:
        edges = partition.quotient(pixel_edge_index, self_loops=False).to(device)
    # Work on the tokens sorted by image (stable: each image's order is kept), so that
    # every image's units stay contiguous: positions in an image are then plain offsets.
    sorted_batch = bool((batch[1:] >= batch[:-1]).all())
    perm = None if sorted_batch else torch.argsort(batch, stable=True)
    if perm is not None:
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(k, device=device)
        edges = inverse[edges]
    edges = _undirected(edges, k)
    dtype = torch.promote_types(features.dtype, torch.float32)
    # One state row per unit: [size, mean features] (gathered and merged together).
    state = torch.cat([size0.to(dtype).unsqueeze(1), features.detach().to(dtype)], 1)
    unit_batch = batch
    if perm is not None:
        state, unit_batch = state[perm], batch[perm]
    units = counts.clone()                       # units per image
    labels = torch.arange(k, device=device)      # unit of every (sorted) token
    n = k
    rounds = 0
    while True:
        a, b = edges[0], edges[1]
        edge_image = unit_batch[a]
        found = torch.bincount(edge_image, minlength=num_images)
        stuck = (excess > 0) & (found == 0)
        done, any_stuck = torch.stack([~excess.any(), stuck.any()]).tolist()
        if done:
            break
        if any_stuck:
            image = int(stuck.nonzero()[0, 0])
            _raise_disconnected(image, int(counts[image]), int(units[image]), max_tokens)
        pa, pb = state[a], state[b]
        sa, sb = pa[:, 0], pb[:, 0]
        diff = pa[:, 1:] - pb[:, 1:]
        cost = diff.mul_(diff).sum(-1).mul_(sa * sb / (sa + sb))     # ward_costs, inline
        if generator is not None:
            z = torch.randn(cost.shape, generator=generator, dtype=dtype,
                            device=generator.device).to(device)
            cost = cost * torch.exp(noise * z)
            tie = torch.randint(0, _HASH_MASK, cost.shape, generator=generator,
                                device=generator.device).to(device)
        else:
            offset = (torch.cumsum(units, 0) - units)[edge_image]
            tie = _tie_hash(a - offset, b - offset)
        # Strict total order of the edges: image, then (cost, union size, tie hash,
        # position). Sizes are < 2^31 pixels, so (size, hash) packs into one int64 key.
        order = torch.argsort((sa + sb).long() * (_HASH_MASK + 1) + tie, stable=True)
        order = order[torch.argsort(cost[order], stable=True)]
        if num_images > 1:
            order = order[torch.argsort(edge_image[order], stable=True)]
        num_edges = order.numel()
        rank = torch.empty_like(order)
        rank[order] = torch.arange(num_edges, device=device)
        within = rank - (torch.cumsum(found, 0) - found)[edge_image] if num_images > 1 else rank
        # Candidates: the `excess` cheapest edges of each image (the merges a sequential
        # greedy merge would make next). Merged: the mutually best candidates, then —
        # a second matching pass on the same costs — the mutually best candidates among
        # the edges of the units still unmatched. The pairs are disjoint, at most
        # `excess` per image (the count never undershoots), and the image's cheapest
        # edge always merges (every round makes progress).
        live = within < excess[edge_image]
        chosen = torch.zeros_like(live)
        ends = torch.cat([a, b])
        for matching_pass in range(_MATCHING_PASSES):
            if matching_pass:
                # Edges touching a unit matched by the earlier passes leave the candidates.
                free = torch.ones(n, dtype=torch.long, device=device).scatter_reduce_(
                    0, ends, (~chosen).long().repeat(2), reduce="amin")
                live = live & (free[a] > 0) & (free[b] > 0)
            key = torch.where(live, rank, num_edges).repeat(2)
            best = torch.full((n,), num_edges, dtype=torch.long, device=device)
            best.scatter_reduce_(0, ends, key, reduce="amin")
            chosen = chosen | (live & (best[a] == rank) & (best[b] == rank))
        pick = chosen.nonzero().squeeze(1)
        ca, cb = a[pick], b[pick]
        # Merge the pairs: the smaller unit index represents the union (canonical order).
        keep = torch.ones(n, dtype=torch.bool, device=device)
        keep[cb] = False                           # a < b: the pair's first unit stays
        step = torch.cumsum(keep, 0) - 1
        step[cb] = step[ca]
        qa, qb = state[ca], state[cb]
        merged_size = qa[:, :1] + qb[:, :1]
        merged = torch.cat([merged_size, (qa[:, 1:] * qa[:, :1] + qb[:, 1:] * qb[:, :1])
                            / merged_size], 1)
        state = state.index_copy(0, ca, merged)[keep]
        merges = torch.bincount(unit_batch[ca], minlength=num_images)
        excess = excess - merges
        units = units - merges
        unit_batch = unit_batch[keep]
        labels = step[labels]
        n = n - pick.numel()
        edges = _undirected(step[edges], n)
        rounds += 1
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
    f64 = features.detach().to(torch.float64)
    centre = feats.to(torch.float64)[labels]
    added = (f64 - centre).pow(2).sum(-1) * size0.to(torch.float64)
    loss = torch.zeros(num_images, dtype=torch.float64, device=device).index_add_(0, batch, added)
    # Representative: the largest input token of every output token (ties: the first).
    largest = torch.zeros(n, dtype=size0.dtype, device=device).scatter_reduce_(
        0, labels, size0, reduce="amax", include_self=False)
    candidate = torch.where(size0 == largest[labels], torch.arange(k, device=device),
                            torch.full_like(labels, k))
    first = torch.full((n,), k, dtype=torch.long, device=device).scatter_reduce_(
        0, labels, candidate, reduce="amin")
    kept = torch.zeros(k, dtype=torch.bool, device=device).index_fill_(0, first, True)
    return BudgetMerge(merge=merge, kept=kept, loss=loss, rounds=rounds)
