"""The tokenizer's output, :class:`Tokens`, and the stage that assembles it.

:func:`assemble_tokens` is the tail of the functional core: from a selection on a pixel
grid it applies the projection W, the optional budget
(:func:`dhtgraph.selection.merge_to_budget`), exact region statistics
(:func:`dhtgraph.features.pooling.pool_grid_regions`) and mean injection (spec §6–§7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .. import _native
from ..features.mean_injection import mean_injection
from ..features.pooling import pool_grid_regions
from ..graph.pixel import grid_quotient
from ..hierarchy import Hierarchy
from ..hierarchy.build import HierarchyResult
from ..partition import Partition
from ..selection.budget import merge_to_budget
from ..selection.select import Selection

__all__ = ["Tokens", "assemble_tokens", "concat_tokens"]


@dataclass(frozen=True)
class Tokens:
    """The output of :class:`~dhtgraph.nn.DHTTokenizer` / :func:`dhtgraph.tokenize`.

    K tokens of B images of H × W pixels (N = B·H·W). Frozen; shapes are checked when it
    is made.

    Attributes
    ----------
    partition : Partition of the N pixels
        The tokens: connected regions of the 4-neighbour pixel grid, numbered
        canonically; tokens of image b come before those of image b + 1.
    hierarchy : Hierarchy
        The chain of partitions the tokens were selected from (before any budget merge).
    features : Tensor of shape (K, d)
        The size-weighted mean of the encoder features over the token's pixels,
        ``Σ_{p∈S} f(x)_p / |S|`` — exact for every token, also after a budget merge
        (every pixel weighs 1). Differentiable in the encoder.
    projected : Tensor of shape (K, C)
        ``W μ*``: the projection of :attr:`selected_mean`, the colour injected into the
        image (differentiable; with 'argmax_edge' pooling its gradient reaches the
        potentials).
    batch : LongTensor of shape (K,)
        Image of every token.
    num_tokens : LongTensor of shape (B,)
        Tokens per image.
    injected : Tensor of shape (B, C, H, W)
        The mean-injected image ``x − x̄(S) + W μ*(S)``, ``x̄(S)`` the true mean colour of
        the token's pixels.
    image_size : (int, int)
        (H, W).
    num_levels : LongTensor of shape (B,)
        Contraction levels each image went through.
    selected_mean : Tensor of shape (K, d)
        μ*: the hierarchy's pooled mean of the stored block the token was selected from
        (:class:`dhtgraph.selection.Selection`; with 'size' pooling the exact mean of that
        block, which may be larger than the token); after a budget merge the
        size-weighted mean ``Σ |S_i| μ*_i / Σ |S_i|`` of the merged tokens.
    sizes : LongTensor of shape (K,)
        Pixels per token (``partition.sizes``).
    bbox : LongTensor of shape (K, 4)
        Inclusive pixel bounding boxes ``(ymin, xmin, ymax, xmax)`` within the image.
    centroids : Tensor of shape (K, 2), float32
        Mean pixel position (row, col) of every token (exact integer sums, one rounding).
    edge_index : LongTensor of shape (2, E)
        Region adjacency: ``(u, v)`` for every pair of distinct tokens with 4-neighbour
        pixels, both directions, coalesced (sorted, no duplicates), no self-loops.
    """

    partition: Partition
    hierarchy: Hierarchy
    features: Tensor
    projected: Tensor
    batch: Tensor
    num_tokens: Tensor
    injected: Tensor
    image_size: tuple
    num_levels: Tensor
    selected_mean: Optional[Tensor] = None
    sizes: Optional[Tensor] = None
    bbox: Optional[Tensor] = None
    centroids: Optional[Tensor] = None
    edge_index: Optional[Tensor] = None

    def __post_init__(self):
        if not isinstance(self.partition, Partition):
            raise TypeError(f"Expected 'partition' to be a Partition "
                            f"(got {type(self.partition).__name__})")
        k = self.partition.num_blocks
        h, w = self.image_size
        b = self.num_tokens.shape[0]
        checks = [("features", self.features, (k, None)), ("projected", self.projected, (k, None)),
                  ("batch", self.batch, (k,)), ("num_levels", self.num_levels, (b,)),
                  ("selected_mean", self.selected_mean, (k, None)), ("sizes", self.sizes, (k,)),
                  ("bbox", self.bbox, (k, 4)), ("centroids", self.centroids, (k, 2)),
                  ("edge_index", self.edge_index, (2, None)),
                  ("injected", self.injected, (b, None, h, w))]
        for name, value, shape in checks:
            if value is None:
                continue
            got = tuple(value.shape)
            if len(got) != len(shape) or any(s is not None and g != s for g, s in zip(got, shape)):
                want = tuple("*" if s is None else s for s in shape)
                raise ValueError(f"Expected Tokens '{name}' of shape {want} (got {got})")
        if self.partition.num_items != b * h * w:
            raise ValueError(f"Expected 'partition' of the {b}·{h}·{w} pixels "
                             f"(got {self.partition.num_items} items)")

    @property
    def num_images(self) -> int:
        return int(self.num_tokens.numel())

    def labels(self) -> Tensor:
        """Token label per pixel, (B, H, W), numbered within each image from 0."""
        h, w = self.image_size
        start = torch.cumsum(self.num_tokens, 0) - self.num_tokens
        pixel_batch = torch.arange(self.num_images, device=self.batch.device).repeat_interleave(h * w)
        return (self.partition.labels - start[pixel_batch]).view(self.num_images, h, w)


def assemble_tokens(images: Tensor, x: Tensor, built: HierarchyResult, selection: Selection,
                    project: Callable[[Tensor], Tensor], max_tokens: Optional[int] = None, *,
                    priority: str = "cost",
                    generator: Optional[torch.Generator] = None) -> Tokens:
    """Projection, budget, region statistics and mean injection (spec §6–§7).

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)
        The input images (mean injection works on them).
    x : Tensor of shape (B·H·W, d)
        Encoder features of the pixels, row-major.
    built : HierarchyResult
        Built on ``PixelGrid(B, H, W)``.
    selection : Selection
        The selected tokens (:func:`dhtgraph.selection.select_partition`).
    project : callable
        W: (K, d) → (K, C).
    max_tokens : int, optional
        Budget per image (exact: ``min(K_b, max_tokens)`` tokens).
    priority : {'cost', 'size'}, default 'cost'
        Passed to :func:`~dhtgraph.selection.merge_to_budget`, where it is deprecated
        and ignored ('size' warns): the budget always merges by Ward cost.
    generator : torch.Generator, optional
        Sample the kept tokens (training).

    Returns
    -------
    Tokens
    """
    grid = built.grid
    if grid is None:
        raise ValueError("Expected 'built' to be built on a PixelGrid (images)")
    b, h, w = grid.num_images, grid.height, grid.width
    partition, mu, batch = selection.partition, selection.mean, selection.batch
    projected = project(mu)
    token_edges = grid_quotient(partition.labels, partition.num_blocks, b, h, w)
    # Pixels per token, counted once over the pixels; a merge adds them up per token.
    sizes = partition.sizes
    if max_tokens is not None:
        merged = merge_to_budget(partition, projected, batch, None, max_tokens,
                                 priority=priority, generator=generator,
                                 token_edge_index=token_edges, sizes=sizes)
        step = merged.merge
        if step.num_blocks < partition.num_blocks:
            mu, batch, merged_sizes = _merge_means(step, mu, sizes, batch)
            token_edges = _quotient(step, token_edges)
            sizes = merged_sizes
            partition = partition.compose(step)
            projected = project(mu)
    # Features, sizes, boxes and centroids (row, col within the image) from the pixel grid.
    regions = pool_grid_regions(partition, x, b, h, w, sizes=sizes)
    injected = mean_injection(images, partition, projected, sizes=sizes)
    return Tokens(
        partition=partition,
        hierarchy=built.hierarchy,
        features=regions.features,
        projected=projected,
        batch=batch,
        num_tokens=torch.bincount(batch, minlength=b),
        injected=injected,
        image_size=(h, w),
        num_levels=built.num_levels,
        selected_mean=mu,
        sizes=sizes,
        bbox=regions.bbox,
        centroids=regions.centroids,
        edge_index=token_edges,
    )


def _merge_means(step: Partition, mu: Tensor, sizes: Tensor,
                 batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    # μ* of a merged token: the size-weighted mean of the μ* it merged; its image and size.
    merged = None
    if _native.enabled("tokens", step.labels, mu, sizes, batch):
        from .._native.tokens import merge_sizes
        merged = merge_sizes(step.labels, step.num_blocks, sizes, batch)
    if merged is None:
        merged_sizes = sizes.new_zeros(step.num_blocks).index_add_(0, step.labels, sizes)
        batch = batch.new_empty(step.num_blocks).scatter_(0, step.labels, batch)
    else:
        merged_sizes, batch = merged
        if not (torch.is_grad_enabled() and mu.requires_grad):
            # The same products, sums in index order and division (index_add_ on the CPU
            # adds the rows in index order).
            from .._native.tokens import block_means
            mean = block_means(mu, step.labels, step.num_blocks, merged_sizes, sizes)
            if mean is not None:
                return mean, batch, merged_sizes
    weight = sizes.to(mu.dtype).unsqueeze(1)
    mu = step.reduce(mu * weight, "sum") / merged_sizes.to(mu.dtype).unsqueeze(1)
    return mu, batch, merged_sizes


def _quotient(step: Partition, token_edges: Tensor) -> Tensor:
    # step.quotient(token_edges) (coalesced, no self-loops); natively without a sort.
    if _native.enabled("edges", step.labels, token_edges):
        from .._native.edges import coalesce_pairs
        return coalesce_pairs(token_edges[0], token_edges[1], step.num_blocks,
                              relabel=step.labels)
    return step.quotient(token_edges, self_loops=False)


def _concat_hierarchies(parts: Sequence[Hierarchy]) -> Hierarchy:
    """The batch hierarchy of consecutive image chunks (block labels offset per level).

    :func:`~dhtgraph.hierarchy.build_hierarchy` freezes an image that stopped: it shows
    identity steps until the last image of the batch stops, then the top step. A chunk
    that stopped earlier than the longest one gets those identity steps inserted before
    its top step, so the result equals the hierarchy of the whole batch built at once.
    """
    depth = max(len(h.steps) for h in parts)
    padded = []
    for h in parts:
        loops, top = h.steps[:-1], h.steps[-1]
        blocks = top.num_items  # blocks of the chunk's last contraction level
        identity = Partition(torch.arange(blocks, device=top.labels.device), blocks,
                             canonical=True)
        padded.append(list(loops) + [identity] * (depth - len(h.steps)) + [top])
    steps = []
    for t in range(depth):
        labels, offset = [], 0
        for chunk_steps in padded:
            step = chunk_steps[t]
            labels.append(step.labels + offset)
            offset += step.num_blocks
        steps.append(Partition(torch.cat(labels), offset, canonical=True))
    return Hierarchy(steps, sum(h.num_items for h in parts))


def _cat_optional(values: list) -> Optional[Tensor]:
    if any(v is None for v in values):
        return None
    return torch.cat(values)


def concat_tokens(parts: Sequence[Tokens]) -> Tokens:
    """Join the tokens of consecutive chunks of a batch into the tokens of the batch.

    With the tokenizer's batch independence (eval mode or an encoder-free
    configuration; no ``generator``: the budget's random draws depend on the whole
    batch), ``concat_tokens([tok(x[:i]), tok(x[i:])])`` equals ``tok(x)`` field by field,
    bit for bit (tested): the partition's labels, ``batch`` and ``edge_index`` are offset
    by the tokens (and images) of the chunks before, the hierarchy's levels by their
    blocks (see :func:`_concat_hierarchies`), and the per-token and per-image tensors are
    concatenated.

    Parameters
    ----------
    parts : sequence of Tokens
        Tokens of images of the same size, in batch order (at least one).

    Returns
    -------
    Tokens
        Of the ``Σ B_i`` images; a single part is returned as it is.

    Raises
    ------
    ValueError
        If ``parts`` is empty or its image sizes differ.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("Expected 'parts' to hold at least one Tokens (got none)")
    if not all(isinstance(t, Tokens) for t in parts):
        raise TypeError("Expected 'parts' to hold Tokens (got "
                        + ", ".join(sorted({type(t).__name__ for t in parts})) + ")")
    sizes = {tuple(t.image_size) for t in parts}
    if len(sizes) != 1:
        raise ValueError(f"Expected 'parts' of one image size (got {sorted(sizes)})")
    if len(parts) == 1:
        return parts[0]
    labels, batch, edges = [], [], []
    tokens = images = 0
    for t in parts:
        labels.append(t.partition.labels + tokens)
        batch.append(t.batch + images)
        if t.edge_index is not None:
            edges.append(t.edge_index + tokens)
        tokens += t.partition.num_blocks
        images += t.num_images
    return Tokens(
        partition=Partition(torch.cat(labels), tokens, canonical=True),
        hierarchy=_concat_hierarchies([t.hierarchy for t in parts]),
        features=torch.cat([t.features for t in parts]),
        projected=torch.cat([t.projected for t in parts]),
        batch=torch.cat(batch),
        num_tokens=torch.cat([t.num_tokens for t in parts]),
        injected=torch.cat([t.injected for t in parts]),
        image_size=parts[0].image_size,
        num_levels=torch.cat([t.num_levels for t in parts]),
        selected_mean=_cat_optional([t.selected_mean for t in parts]),
        sizes=_cat_optional([t.sizes for t in parts]),
        bbox=_cat_optional([t.bbox for t in parts]),
        centroids=_cat_optional([t.centroids for t in parts]),
        edge_index=torch.cat(edges, 1) if len(edges) == len(parts) else None,
    )
