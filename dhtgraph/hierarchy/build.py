"""Build the hierarchy of a batch of images by repeated contraction (method spec §4).

Levels are built while, for an image, (blocks) > ``min_blocks`` and level <
``⌈log₂ √(H·W)⌉`` and its observer (the IC selection) still improves somewhere in it.
Then everything left in each image is merged into one block (the top ⊤), pooled with
exact size weights. The resulting chain ⊥ = π₀ ≤ π₁ ≤ … ≤ ⊤ refines at every step and
every block is connected (theory/ Theorem 2).

The stopping rules are applied **per image**: an image that has stopped is frozen (its
blocks choose their own loops and keep their statistics bit-for-bit) while the others go
on, so every image of a batch gets exactly the levels it gets alone. Frozen images show
identity steps in the batch's :class:`Hierarchy`; ``HierarchyResult.num_levels`` tells
how many real levels each image had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch
from torch import Tensor

from ..graph import connected_components
from ..partition import Partition
from .affinity import DEFAULT_LOOP_POTENTIAL, edge_affinity
from .chain import Hierarchy
from .contraction import POOL_WEIGHTS, BlockState, PoolWeights, contract, pool_blocks
from .grid import grid_contraction, materialize_pixel_state

__all__ = ["HierarchyResult", "LevelObserver", "build_hierarchy", "max_levels_for",
           "MIN_BLOCKS_PER_IMAGE"]

#: An image stops contracting once it has at most this many blocks (the reference's
#: ``min_avg_region``, applied per image instead of to the batch average).
MIN_BLOCKS_PER_IMAGE = 6


class LevelObserver(Protocol):
    """Called after each level: ``observer(partition, state, active) -> improved (B,)``."""

    def __call__(self, partition: Partition, state: BlockState,
                 active: Tensor) -> Optional[Tensor]: ...


@dataclass
class HierarchyResult:
    """A built hierarchy and the statistics of its levels.

    Attributes
    ----------
    hierarchy : Hierarchy
        Levels 0 (pixels) … T (contractions) and T + 1 (the top, one block per image).
    states : list of BlockState
        ``states[t]`` holds the blocks of level t (``states[0]``: the pixels).
    num_levels : LongTensor of shape (B,)
        Contraction levels each image really went through (the top not counted).
    """

    hierarchy: Hierarchy
    states: list
    num_levels: Tensor

    @property
    def top(self) -> BlockState:
        """The top level (one block per image)."""
        return self.states[-1]


def max_levels_for(height: int, width: int) -> int:
    """``⌈log₂ √(H·W)⌉``, the most contraction levels an image gets (spec §4)."""
    pixels = height * width
    return int(math.ceil(math.log2(math.sqrt(pixels)))) if pixels > 1 else 0


def build_hierarchy(
    state: BlockState,
    num_images: int,
    image_size: tuple[int, int],
    *,
    compactness: float = 0.1,
    var_projection: Optional[Callable[[Tensor], Tensor]] = None,
    loop_default: float = DEFAULT_LOOP_POTENTIAL,
    weights: PoolWeights = "argmax_edge",
    min_blocks: int = MIN_BLOCKS_PER_IMAGE,
    max_levels: Optional[int] = None,
    observer: Optional[LevelObserver] = None,
    pixel_grid: bool = False,
    keep_states: bool = True,
) -> HierarchyResult:
    """Contract a batch of pixel graphs level by level, then merge each image to ⊤.

    Parameters
    ----------
    state : BlockState
        Level 0: one block per pixel (:meth:`BlockState.from_pixels`).
    num_images : int
        B.
    image_size : (int, int)
        (H, W) of every image.
    compactness : float, default 0.1
        Compactness weight c of the potentials.
    var_projection : callable, optional
        Variance projection d → 1 for the self-loop potentials.
    loop_default : float, default 0.0
        Loop potential without a projection.
    weights : {'argmax_edge', 'size'}, default 'argmax_edge'
        Pooling weights of the contraction levels (the top always uses sizes).
    min_blocks : int, default 6
        An image stops once it has at most this many blocks.
    max_levels : int, optional
        Most contraction levels; default ``⌈log₂ √(H·W)⌉``.
    observer : callable, optional
        ``observer(partition, state, active) -> improved``; called after every level and
        after the top. An image whose observer reports no improvement stops (never after
        the first level, as in the reference). :class:`dhtgraph.selection.InformationSelector`
        is one.
    pixel_grid : bool, default False
        Promise that ``state`` is the row-major pixel grid of ``num_images`` images of
        ``image_size`` with 4-connectivity (``grid_edge_index``); its ``edge_index`` and
        ``bbox`` may then be None (:func:`dhtgraph.hierarchy.grid.pixel_state`). The
        first level is computed on the grid (same result, less time and memory).
    keep_states : bool, default True
        Keep every level's :class:`BlockState` in the result; False keeps only the top
        (and frees each level as soon as the next one is built).

    Returns
    -------
    HierarchyResult

    Notes
    -----
    Host syncs (device → host reads; free on CPU, a stall each on a GPU) per level:

    * the loop: 3 — ``active.any()``, ``active.all()`` and the per-image block counts
      (``bincount``);
    * the contraction: one per pointer-jumping step and one per round of the
      components of the choices (the steps grow with the depth of the choice trees),
      one for the ``unique`` of the relabelled edges, and one per boolean-mask
      compaction (``x[mask]``) in the component rounds;
    * the observer: :class:`dhtgraph.selection.InformationSelector` takes 1–3 (the
      canonical renumbering of the stored blocks and a mask).

    Counted by op dispatch on a 224² photograph with the recommended configuration:
    about 45 on the first (pixel-grid) level, where the choice trees are deepest, and
    12–28 on each later level, fewer as the graph shrinks; nothing in the loop is a
    Python loop over pixels or blocks.
    """
    if weights not in POOL_WEIGHTS:
        raise ValueError(f"Expected 'weights' to be one of {POOL_WEIGHTS} (got {weights!r})")
    height, width = image_size
    if max_levels is None:
        max_levels = max_levels_for(height, width)
    device = state.mean.device
    steps: list[Partition] = []
    num_items = state.num_blocks
    states = [state] if keep_states else []
    counts = torch.bincount(state.batch, minlength=num_images)
    active = counts > min_blocks
    levels = torch.zeros(num_images, dtype=torch.long, device=device)
    level = 0
    while level < max_levels and bool(active.any()):
        all_active = bool(active.all())
        if level == 0 and pixel_grid and all_active and height * width >= 2:
            step = grid_contraction(state, num_images, height, width, compactness=compactness,
                                    weights=weights)
        else:
            if state.edge_index is None:
                state = materialize_pixel_state(state, num_images, height, width)
            potential = edge_affinity(state.mean, state.var, state.size, state.bbox,
                                      state.edge_index, compactness=compactness,
                                      var_projection=var_projection, loop_default=loop_default)
            movable = None if all_active else active[state.batch]
            step = contract(state, potential, weights=weights, movable=movable)
            del potential
        state, relative = step.state, step.partition
        del step
        steps.append(relative)
        if keep_states:
            states.append(state)
        levels += active.long()
        level += 1
        stopped = torch.zeros_like(active)
        if observer is not None:
            improved = observer(relative, state, active)
            if improved is not None and level > 1:
                stopped = ~improved
        counts = torch.bincount(state.batch, minlength=num_images)
        active = active & (counts > min_blocks) & ~stopped
    # The top: everything connected in an image becomes one block, size-weighted.
    if state.edge_index is None:
        state = materialize_pixel_state(state, num_images, height, width)
    top = connected_components(state.edge_index, state.num_blocks)
    size_weight = state.size.to(state.mean.dtype)
    top_state = pool_blocks(state, top, size_weight)
    steps.append(top)
    states = states + [top_state] if keep_states else [top_state]
    if observer is not None:
        observer(top, top_state, torch.ones(num_images, dtype=torch.bool, device=device))
    return HierarchyResult(hierarchy=Hierarchy(steps, num_items), states=states,
                           num_levels=levels)
