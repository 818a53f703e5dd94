"""The tokenizer's output, :class:`Tokens`, and the stage that assembles it.

:func:`assemble_tokens` is the tail of the functional core: from a selection on a pixel
grid it applies the projection W, the optional budget
(:func:`dhtgraph.selection.merge_to_budget`), exact region statistics
(:func:`dhtgraph.features.pooling.pool_grid_regions`) and mean injection (spec §6–§7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from ..features.mean_injection import mean_injection
from ..features.pooling import pool_grid_regions
from ..graph.pixel import grid_quotient
from ..hierarchy import Hierarchy
from ..hierarchy.build import HierarchyResult, PixelGrid
from ..partition import Partition
from ..selection.budget import merge_to_budget
from ..selection.select import Selection

__all__ = ["Tokens", "assemble_tokens"]


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
        Which tokens a budget keeps.
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
            # μ* of a merged token: the size-weighted mean of the μ* it merged.
            weight = sizes.to(mu.dtype).unsqueeze(1)
            total = step.reduce(weight, "sum")
            mu = step.reduce(mu * weight, "sum") / total
            batch = batch.new_empty(step.num_blocks).scatter_(0, step.labels, batch)
            token_edges = step.quotient(token_edges, self_loops=False)
            sizes = sizes.new_zeros(step.num_blocks).index_add_(0, step.labels, sizes)
            partition = Partition(step.labels.index_select(0, partition.labels),
                                  step.num_blocks, canonical=True)
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
