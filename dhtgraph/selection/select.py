"""Per-region selection of blocks across a hierarchy by an information criterion (spec §5).

The selection keeps, for every pixel, the best block seen so far ("stored block" o) with
its IC, mean and variance. After each level every stored block ``o`` lies inside exactly
one new block ``c`` (the levels form a chain, and stored blocks are unions of blocks of
earlier levels), so the reference's comparison of every overlapping pair ``(c, o)`` is a
comparison per stored block: the pixels of ``o`` move to ``c`` when ``IC(c) ≥ IC(o)``.
The stored blocks that moved into the same ``c`` become one stored block. At the end the
stored blocks are split into their 4-connected pieces on the pixel graph; each piece
carries its stored block's mean and variance. The result is a connected partition that
refines the top of the hierarchy (it need not be one of its levels).

The work per level is a gather over the stored blocks (no sort over pixels); the pixel
map is one gather per level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .._union import finish_components, forest_labels
from ..graph import connected_components
from ..hierarchy.contraction import BlockState
from ..partition import Partition
from .criteria import Criterion, check_criterion, check_iota, information_criterion

__all__ = ["Selection", "InformationSelector"]


@dataclass
class Selection:
    """The IC-selected tokens.

    Attributes
    ----------
    partition : Partition of the N pixels
        Connected blocks (tokens), numbered canonically.
    mean : Tensor of shape (K, d)
        μ* of every token (the mean of the stored block it came from; differentiable).
    var : Tensor of shape (K, d)
        σ² of every token.
    ic : Tensor of shape (K,)
        The IC of the stored block every token came from.
    batch : LongTensor of shape (K,)
        Image of every token.
    """

    partition: Partition
    mean: Tensor
    var: Tensor
    ic: Tensor
    batch: Tensor


class InformationSelector:
    """Tracks the best block per pixel while a hierarchy is built.

    Parameters
    ----------
    level0 : BlockState
        The pixels (level 0): means are the pixel features.
    num_images : int
        B.
    pixels_per_image : int
        ``H·W``; the IC's normaliser and the pixels' starting IC ``−√(H·W)``.
    criterion : {'aic', 'aicc', 'bic', 'cic'}, default 'aicc'
    iota : float, default 5.0

    Notes
    -----
    Call :meth:`update` after every level (the top included) with the level's relative
    partition and statistics; it returns which images improved somewhere (the §4 stopping
    rule). :meth:`finish` splits the stored blocks into connected pieces.
    """

    def __init__(self, level0: BlockState, num_images: int, pixels_per_image: int,
                 criterion: Criterion = "aicc", iota: float = 5.0):
        self.criterion = check_criterion(criterion)
        self.iota = check_iota(iota)
        self.num_images = int(num_images)
        self.pixels_per_image = int(pixels_per_image)
        n = level0.num_blocks
        device = level0.mean.device
        # A zero-stride view: the pixels' IC costs no memory until the first update.
        self.ic = torch.full((), -math.sqrt(self.pixels_per_image), dtype=torch.float32,
                             device=device).expand(n)
        self.mean = level0.mean
        self.var = level0.var
        self.batch = level0.batch
        # Block of the current level that contains each stored block, and the stored
        # block of every pixel: both the identity until the first update (None = not
        # built; see the properties).
        self._current = None
        self._pixel_block = None
        self._device = device
        self.num_stored = n
        # True until the first update.
        self._initial = True

    @property
    def current(self) -> Tensor:
        """Block of the current level that contains each stored block (S,)."""
        if self._current is None:
            return torch.arange(self.num_stored, device=self._device)
        return self._current

    @current.setter
    def current(self, value: Tensor) -> None:
        self._current = value

    @property
    def pixel_block(self) -> Tensor:
        """Stored block of every pixel (N,)."""
        if self._pixel_block is None:
            return torch.arange(self.num_stored, device=self._device)
        return self._pixel_block

    @pixel_block.setter
    def pixel_block(self, value: Tensor) -> None:
        self._pixel_block = value

    def _materialize(self) -> None:
        # Zero-stride level-0 views (dhtgraph.hierarchy.grid.pixel_state and the initial
        # IC) become real tensors before the general update.
        if self.batch.dim() == 1 and self.batch.stride(0) == 0:
            self.batch = self.batch.contiguous()
        if self.ic.dim() == 1 and self.ic.stride(0) == 0:
            self.ic = self.ic.contiguous()

    def update(self, partition: Partition, state: BlockState,
               active: Optional[Tensor] = None) -> Tensor:
        """Compare every stored block with the new block that contains it.

        Parameters
        ----------
        partition : Partition of the previous level's blocks
            The relative level just built.
        state : BlockState
            Statistics of its blocks.
        active : BoolTensor of shape (B,), optional
            Images that took part in this level; stored blocks of other images never move.

        Returns
        -------
        BoolTensor of shape (B,)
            Images where at least one stored block moved (``IC(c) ≥ IC(o)``).
        """
        ic_new = information_criterion(state.var, state.size, self.pixels_per_image,
                                       self.criterion, self.iota)
        if self._initial:
            self._initial = False
            # Stored blocks are still the pixels (current = identity): when every pixel
            # moves, the stored blocks become the new blocks as they are (the general
            # regrouping below gives exactly this, at the cost of a few sorts over pixels).
            c = partition.labels
            if active is None or bool(active.all()):
                move = ic_new.index_select(0, c) >= self.ic
                if bool(move.all()):
                    del move
                    improved = torch.zeros(self.num_images, dtype=torch.bool, device=c.device)
                    improved.index_fill_(0, state.batch, True)
                    self.ic, self.mean, self.var = ic_new, state.mean, state.var
                    self.batch = state.batch
                    self.current = torch.arange(state.num_blocks, device=c.device)
                    self.pixel_block = c
                    self.num_stored = state.num_blocks
                    return improved
        self._materialize()
        c = partition.labels[self.current]
        move = ic_new[c] >= self.ic
        if active is not None:
            move = move & active[self.batch]
        # Images with a moved block; a scatter instead of a mask compaction (no host sync).
        improved = torch.zeros(self.num_images, dtype=torch.uint8, device=move.device)
        improved = improved.scatter_reduce_(0, self.batch, move.to(torch.uint8), "amax").bool()
        s = self.num_stored
        key = torch.where(move, c, state.num_blocks + torch.arange(s, device=c.device))
        regroup = Partition(key)
        first = torch.full((regroup.num_blocks,), s, dtype=torch.long, device=c.device)
        first.scatter_reduce_(0, regroup.labels, torch.arange(s, device=c.device), reduce="amin")
        rep_moved = move[first]
        rep_c = c[first]
        self.ic = torch.where(rep_moved, ic_new[rep_c], self.ic[first])
        self.mean = torch.where(rep_moved.unsqueeze(1), state.mean[rep_c], self.mean[first])
        self.var = torch.where(rep_moved.unsqueeze(1), state.var[rep_c], self.var[first])
        self.batch = self.batch[first]
        self.current = rep_c
        self.pixel_block = regroup.labels[self.pixel_block]
        self.num_stored = regroup.num_blocks
        return improved

    def finish(self, pixel_edge_index: Optional[Tensor] = None, *,
               image_size: Optional[tuple[int, int]] = None) -> Selection:
        """Split the stored blocks into connected pieces of the pixel graph.

        Parameters
        ----------
        pixel_edge_index : LongTensor of shape (2, E), optional
            The pixel graph.
        image_size : (int, int), optional
            Instead of ``pixel_edge_index``: (H, W) of the 4-neighbour pixel grid
            (``grid_edge_index(H, W, B)``); the pieces are found without an edge list.

        Returns
        -------
        Selection
        """
        if pixel_edge_index is None:
            if image_size is None:
                raise ValueError("Expected 'pixel_edge_index' or 'image_size' (got neither)")
            pieces = self._grid_pieces(*image_size)
        else:
            src, dst = pixel_edge_index[0], pixel_edge_index[1]
            inside = self.pixel_block[src] == self.pixel_block[dst]
            pieces = connected_components(pixel_edge_index[:, inside], self.pixel_block.numel())
        device = self.pixel_block.device
        stored = torch.empty(pieces.num_blocks, dtype=torch.long, device=device)
        stored.scatter_(0, pieces.labels, self.pixel_block)
        return Selection(
            partition=pieces,
            mean=self.mean[stored],
            var=self.var[stored],
            ic=self.ic[stored],
            batch=self.batch[stored],
        )

    def _grid_pieces(self, height: int, width: int) -> Partition:
        # Connected pieces of the stored blocks on the 4-neighbour grid. First hooking
        # round done densely (a pixel's smallest same-block neighbour is the one above,
        # else the one to the left), then the general algorithm on what is left.
        n = self.pixel_block.numel()
        b = n // (height * width)
        blocks = self.pixel_block.view(b, height, width)
        small = torch.int32 if n < 2**31 - 1 else torch.long
        node = torch.arange(n, dtype=small, device=blocks.device).view(b, height, width)
        parent = node.clone()
        same_left = blocks[:, :, 1:] == blocks[:, :, :-1]
        parent[:, :, 1:] = torch.where(same_left, node[:, :, :-1], parent[:, :, 1:])
        same_up = blocks[:, 1:] == blocks[:, :-1]
        parent[:, 1:] = torch.where(same_up, node[:, :-1], parent[:, 1:])
        del node
        group, k = forest_labels(parent.view(-1))
        del parent
        grid = group.view(b, height, width)
        rest = []
        for same, first, second in ((same_left, grid[:, :, :-1], grid[:, :, 1:]),
                                    (same_up, grid[:, :-1], grid[:, 1:])):
            mask = same & (first != second)
            rest.append((first[mask], second[mask]))
        del same_left, same_up
        labels, k = finish_components(group, k, torch.cat([r[0] for r in rest]),
                                      torch.cat([r[1] for r in rest]))
        return Partition(labels, k, canonical=True)
