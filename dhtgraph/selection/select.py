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

from ..graph import connected_components
from ..hierarchy.contraction import BlockState
from ..partition import Partition
from .criteria import Criterion, check_criterion, information_criterion

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
        if not (isinstance(iota, (int, float)) and math.isfinite(iota) and iota > 0):
            raise ValueError(f"Expected 'iota' to be a positive finite number (got {iota!r})")
        self.iota = float(iota)
        self.num_images = int(num_images)
        self.pixels_per_image = int(pixels_per_image)
        n = level0.num_blocks
        device = level0.mean.device
        self.ic = torch.full((n,), -math.sqrt(self.pixels_per_image), dtype=torch.float32,
                             device=device)
        self.mean = level0.mean
        self.var = level0.var
        self.batch = level0.batch
        # Block of the current level that contains each stored block.
        self.current = torch.arange(n, device=device)
        # Stored block of every pixel.
        self.pixel_block = torch.arange(n, device=device)
        self.num_stored = n

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
        c = partition.labels[self.current]
        move = ic_new[c] >= self.ic
        if active is not None:
            move = move & active[self.batch]
        improved = torch.zeros(self.num_images, dtype=torch.bool, device=move.device)
        improved.index_fill_(0, self.batch[move], True)
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

    def finish(self, pixel_edge_index: Tensor) -> Selection:
        """Split the stored blocks into connected pieces of the pixel graph.

        Parameters
        ----------
        pixel_edge_index : LongTensor of shape (2, E)
            The pixel graph.

        Returns
        -------
        Selection
        """
        src, dst = pixel_edge_index[0], pixel_edge_index[1]
        inside = self.pixel_block[src] == self.pixel_block[dst]
        pieces = connected_components(pixel_edge_index[:, inside], self.pixel_block.numel())
        stored = torch.empty(pieces.num_blocks, dtype=torch.long, device=src.device)
        stored.scatter_(0, pieces.labels, self.pixel_block)
        return Selection(
            partition=pieces,
            mean=self.mean[stored],
            var=self.var[stored],
            ic=self.ic[stored],
            batch=self.batch[stored],
        )
