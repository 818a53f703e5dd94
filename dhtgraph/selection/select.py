"""Per-region selection of blocks across a hierarchy by an information criterion (spec §5).

The selection keeps, for every node, the best block seen so far ("stored block" o) with
its IC, mean and variance. After each level every stored block ``o`` lies inside exactly
one new block ``c`` (the levels form a chain, and stored blocks are unions of blocks of
earlier levels), so the reference's comparison of every overlapping pair ``(c, o)`` is a
comparison per stored block: the nodes of ``o`` move to ``c`` when ``IC(c) ≥ IC(o)``.
The stored blocks that moved into the same ``c`` become one stored block. At the end the
stored blocks are split into their connected pieces on the node graph (theory/
Definition 13, Theorem 3); each piece carries its stored block's mean and variance. The
result is a connected partition that refines the top of the hierarchy (it need not be one
of its levels).

Selection is a stage of its own: :func:`select_partition` selects from a built
:class:`~dhtgraph.hierarchy.build.HierarchyResult` (any criterion, any ι). The same
selector also serves as the hierarchy's §4 stopping rule (:func:`ic_stopping`: a graph
stops when no stored block moves); :func:`select_partition` reuses that running
selection when the criterion and ι agree, and replays the stored levels otherwise.

The work per level is a few gathers over the level-1 blocks (see
:class:`InformationSelector`: no renumbering, no node-sized gather, no host sync); the
nodes are mapped once, at the end. Graphs of any sizes: the IC's normaliser and the nodes'
starting IC ``−√n`` use each graph's own node count n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from .. import _native
from .._checks import is_integer_dtype
from .._registry import Registry
from .._union import component_labels, finish_components, forest_components
from ..hierarchy.build import HierarchyResult
from ..hierarchy.contraction import BlockState
from ..partition import Partition
from .criteria import (CRITERIA, PENALTY_TABLE_LIMIT, Criterion, check_iota,
                       information_criterion, penalty_table)

__all__ = ["Selection", "InformationSelector", "ICStopping", "ic_stopping", "select_partition",
           "CRITERION_FUNCTIONS", "resolve_criterion", "connected_split"]

#: Information criteria by name: ``criterion(var, size, num_pixels, iota) -> IC (K,)``,
#: higher is better; ``num_pixels`` is an int or a (K,) tensor (each block's graph size).
CRITERION_FUNCTIONS: Registry[Callable] = Registry("criterion")


def _criterion_function(name: str) -> Callable:
    def criterion(var: Tensor, size: Tensor, num_pixels, iota: float) -> Tensor:
        return information_criterion(var, size, num_pixels, name, iota)

    criterion.__name__ = name
    criterion.__doc__ = f"The {name.upper()} of every block (:func:`information_criterion`)."
    return criterion


for _name in CRITERIA:
    CRITERION_FUNCTIONS.register(_name, _criterion_function(_name))
del _name


def resolve_criterion(criterion, name: str = "criterion") -> tuple[str, Callable]:
    """``(canonical name, function)`` of a criterion (case-insensitive for strings).

    Raises
    ------
    ValueError
        If the name is not registered in :data:`CRITERION_FUNCTIONS`.
    """
    key = criterion.lower() if isinstance(criterion, str) else criterion
    if key not in CRITERION_FUNCTIONS:
        raise ValueError(f"Expected '{name}' to be one of {CRITERION_FUNCTIONS.names()} "
                         f"(got {criterion!r})")
    return key, CRITERION_FUNCTIONS.resolve(key)


@dataclass(frozen=True)
class Selection:
    """The IC-selected tokens.

    Attributes
    ----------
    partition : Partition of the N nodes
        Connected blocks (tokens), numbered canonically.
    mean : Tensor of shape (K, d)
        μ* of every token: the pooled mean (with the hierarchy's pooling weights) of the
        stored block it came from (differentiable). A token that is one connected piece
        of a larger stored block carries that block's mean, not its own pixel mean.
    var : Tensor of shape (K, d)
        σ² of the stored block every token came from.
    ic : Tensor of shape (K,)
        The IC of the stored block every token came from.
    batch : LongTensor of shape (K,)
        Graph of every token.
    """

    partition: Partition
    mean: Tensor
    var: Tensor
    ic: Tensor
    batch: Tensor

    def __post_init__(self):
        k = self.partition.num_blocks
        if self.mean.dim() != 2 or self.mean.shape[0] != k or self.var.shape != self.mean.shape:
            raise ValueError(f"Expected 'mean' and 'var' of shape ({k}, d) (got "
                             f"{tuple(self.mean.shape)}, {tuple(self.var.shape)})")
        for name in ("ic", "batch"):
            if tuple(getattr(self, name).shape) != (k,):
                raise ValueError(f"Expected '{name}' of shape ({k},) "
                                 f"(got {tuple(getattr(self, name).shape)})")

    @property
    def num_blocks(self) -> int:
        return self.partition.num_blocks


def _first_occurrence_groups(key: Tensor, num_slots: int) -> tuple[Tensor, Tensor, int]:
    """Canonical labels of ``key`` (values in [0, num_slots)), the first position of every
    group and the group count — :class:`Partition` of ``key`` with one host sync."""
    if key.dtype == torch.long and _native.enabled("selection", key):
        # One native pass on CPU: the same tensors.
        from .._native.selection import first_occurrence_groups
        return first_occurrence_groups(key, num_slots)
    s = key.numel()
    position = torch.arange(s, device=key.device)
    first = torch.full((num_slots,), s, dtype=torch.long, device=key.device)
    first.scatter_reduce_(0, key, position, reduce="amin")
    # Absent slots have first = s and sort last (stable: ties never occur among present).
    order = torch.argsort(first)
    k = int((first < s).sum())
    rank = torch.empty(num_slots, dtype=torch.long, device=key.device)
    rank[order] = torch.arange(num_slots, device=key.device)
    return rank[key], first[order[:k]], k


class InformationSelector:
    """Tracks the best block per node while a hierarchy is built (or replayed).

    Parameters
    ----------
    level0 : BlockState
        The nodes (level 0): means are the node features.
    num_images : int
        B, the number of graphs.
    pixels_per_image : int or LongTensor of shape (B,)
        n of every graph (``H·W`` for images): the IC's normaliser and the nodes'
        starting IC ``−√n``.
    criterion : str, default 'aicc'
        A name in :data:`CRITERION_FUNCTIONS` ('aic', 'aicc', 'bic', 'cic').
    iota : float, default 5.0

    Notes
    -----
    Call :meth:`update` after every level (the top included) with the level's relative
    partition and statistics; it returns which graphs improved somewhere (the §4 stopping
    rule). :meth:`finish` splits the stored blocks into connected pieces.

    The state is kept per *slot*, not per stored block: the slots are the blocks of
    level 1 (the nodes, when not every node moved to level 1), and a slot holds the IC of
    its stored block, the row of that block's statistics (level and index) and the block
    of the current level that contains it. Stored blocks that move into the same new
    block are not merged: their slots simply become equal, and they take the same
    decisions from then on. An update is a handful of gathers over the slots — no
    renumbering, no host sync, nothing of node size — and the stored blocks
    (``pixel_block``, ``mean``, ... as attributes) are only put together when read.
    """

    def __init__(self, level0: BlockState, num_images: int,
                 pixels_per_image: Union[int, Tensor], criterion: Criterion = "aicc",
                 iota: float = 5.0):
        self.criterion, self._ic = resolve_criterion(criterion)
        self.iota = check_iota(iota)
        self.num_images = int(num_images)
        n = level0.num_blocks
        device = level0.mean.device
        if isinstance(pixels_per_image, Tensor):
            if pixels_per_image.shape != (self.num_images,):
                raise ValueError(f"Expected 'pixels_per_image' of shape ({self.num_images},) "
                                 f"(got {tuple(pixels_per_image.shape)})")
            self.pixels_per_image = pixels_per_image.to(device)
            start = (-self.pixels_per_image.double().sqrt()).float()
            slot_ic = start.index_select(0, level0.batch)
        else:
            self.pixels_per_image = int(pixels_per_image)
            # A zero-stride view: the pixels' IC costs no memory until the first update.
            slot_ic = torch.full((), -math.sqrt(self.pixels_per_image), dtype=torch.float32,
                                 device=device).expand(n)
        self._device = device
        # Statistics tables (mean, var, batch) — level 0, then one per update — and the
        # first row of each in the concatenated row numbering.
        self._tables: list[tuple[Tensor, Tensor, Tensor]] = [(level0.mean, level0.var,
                                                              level0.batch)]
        self._offsets = [0]
        self._rows = n
        self._first_table = 0  # no slot refers to an earlier table
        # Per slot: IC, statistics row, graph, containing block of the current level
        # (None: the identity) and the slot of every node (None: the identity).
        self._slot_ic = slot_ic
        self._slot_row: Optional[Tensor] = None  # None: arange (level-0 rows)
        self._slot_batch = level0.batch
        self._slot_current: Optional[Tensor] = None
        self._node_slot: Optional[Tensor] = None
        self._num_slots = n
        self._stored: Optional[dict] = None  # the assembled stored blocks (cache)
        # The slot tensors the last native update made (it may then write into them).
        self._owned: Optional[tuple[Tensor, Tensor, Tensor]] = None
        self._penalties = self._penalty_table(level0)
        self._explicit = False  # the stored blocks were assigned: they are the state
        # True until the first update.
        self._initial = True

    # ------------------------------------------------------------ stored-block view
    def _arange(self, n: int) -> Tensor:
        return torch.arange(n, device=self._device)

    def _rows_of_slots(self) -> Tensor:
        return self._arange(self._num_slots) if self._slot_row is None else self._slot_row

    def _gather_rows(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # mean, var, batch of the given statistics rows (differentiable in the means).
        tables = self._tables[self._first_table:]
        base = self._offsets[self._first_table]
        if base:
            rows = rows - base
        if len(tables) == 1:
            mean, var, batch = tables[0]
        else:
            mean = torch.cat([t[0] for t in tables])
            var = torch.cat([t[1] for t in tables])
            batch = torch.cat([t[2] for t in tables])
        return mean.index_select(0, rows), var.index_select(0, rows), batch.index_select(0, rows)

    def _view(self) -> dict:
        # The stored blocks, numbered by their first slot (one host sync).
        if self._stored is None:
            rows = self._rows_of_slots()
            labels, first, k = _first_occurrence_groups(rows, self._rows)
            mean, var, batch = self._gather_rows(rows.index_select(0, first))
            current = (first if self._slot_current is None
                       else self._slot_current.index_select(0, first))
            self._stored = {
                "pixel_block": labels if self._node_slot is None
                else labels.index_select(0, self._node_slot),
                "ic": self._slot_ic.index_select(0, first), "mean": mean, "var": var,
                "batch": batch, "current": current, "num_stored": k,
            }
        return self._stored

    def _assign(self, name: str, value) -> None:
        self._view()[name] = value
        self._explicit = True

    def _adopt_stored(self) -> None:
        # Assigned stored blocks become the slots (one slot per stored block).
        view = self._view()
        _check_stored(view)
        self._tables = [(view["mean"], view["var"], view["batch"])]
        self._offsets, self._rows, self._first_table = [0], int(view["num_stored"]), 0
        self._slot_ic, self._slot_row = view["ic"], None
        self._slot_batch, self._slot_current = view["batch"], view["current"]
        self._node_slot, self._num_slots = view["pixel_block"], int(view["num_stored"])
        self._explicit = False

    pixel_block = property(lambda self: self._view()["pixel_block"],
                           lambda self, v: self._assign("pixel_block", v),
                           doc="Stored block of every node (N,).")
    ic = property(lambda self: self._view()["ic"], lambda self, v: self._assign("ic", v),
                  doc="IC of every stored block (S,).")
    mean = property(lambda self: self._view()["mean"], lambda self, v: self._assign("mean", v),
                    doc="Mean of every stored block (S, d).")
    var = property(lambda self: self._view()["var"], lambda self, v: self._assign("var", v),
                   doc="Variance of every stored block (S, d).")
    batch = property(lambda self: self._view()["batch"],
                     lambda self, v: self._assign("batch", v),
                     doc="Graph of every stored block (S,).")
    current = property(lambda self: self._view()["current"],
                       lambda self, v: self._assign("current", v),
                       doc="Block of the current level that contains each stored block (S,).")
    num_stored = property(lambda self: self._view()["num_stored"],
                          lambda self, v: self._assign("num_stored", int(v)),
                          doc="S, the number of stored blocks (one host sync to count).")

    def _penalty_table(self, level0: BlockState) -> Optional[Tensor]:
        # The built-in criteria read the penalties of the blocks' sizes from a table (the
        # same values, one gather instead of a dozen ops per level); one host sync.
        size = level0.size
        if self.criterion not in CRITERIA or size.dtype not in (torch.long, torch.int):
            return None
        if not size.numel():
            length = 1
        elif size.device.type == "cpu":
            # A graph's blocks have at most n nodes (a larger size, should a caller's
            # graphs not keep to it, is computed instead: information_criterion).
            n = self.pixels_per_image
            n = int(n.max()) if isinstance(n, Tensor) else n
            length = int(size.max()) * max(n, 0) + 1
        else:
            length = int(size.sum()) + 1  # no block is larger than all nodes together
        if length > PENALTY_TABLE_LIMIT:
            return None  # huge graphs: computed per level (the same values)
        return penalty_table(length, self.criterion, size.device)

    def block_ic(self, state: BlockState) -> Tensor:
        """The IC (K,) of the blocks of ``state`` under this selector's criterion and ι."""
        n = self.pixels_per_image
        if isinstance(n, Tensor):
            n = n.index_select(0, state.batch)
        if self._penalties is not None:
            return information_criterion(state.var, state.size, n, self.criterion, self.iota,
                                         penalties=self._penalties)
        return self._ic(state.var, state.size, n, self.iota)

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
            Graphs that took part in this level; stored blocks of other graphs never move.

        Returns
        -------
        BoolTensor of shape (B,)
            Graphs where at least one stored block moved (``IC(c) ≥ IC(o)``).

        Notes
        -----
        No host sync, except one at the first update (whether every node moved).
        """
        self._check_update(partition, state, active)
        if self._explicit:
            self._adopt_stored()
        self._stored = None
        ic_new = self.block_ic(state)
        table, offset = len(self._tables), self._rows
        self._tables.append((state.mean, state.var, state.batch))
        self._offsets.append(offset)
        self._rows += state.num_blocks
        labels = partition.labels
        device = labels.device
        # The native path: float32 ICs (the built-in criteria), CPU tensors.
        slot_tensors = [t for t in (self._slot_row, self._slot_current, active) if t is not None]
        native = (ic_new.dtype == torch.float32 == self._slot_ic.dtype
                  and self._slot_ic.dim() == 1
                  and _native.enabled("selection", labels, ic_new, self._slot_ic,
                                      self._slot_batch, *slot_tensors))
        if self._initial:
            self._initial = False
            # The slots are still the nodes: when every node moves, the slots become the
            # new blocks as they are (one slot per block instead of one per node).
            if native:
                from .._native.selection import selector_all_move
                every = (active is None or bool(active.all())) and selector_all_move(
                    labels, ic_new, self._slot_ic)
            else:
                move = ic_new.index_select(0, labels) >= self._slot_ic
                every = move.all() if active is None else move.all() & active.all()
            if bool(every):
                improved = torch.zeros(self.num_images, dtype=torch.bool, device=device)
                improved.index_fill_(0, state.batch, True)
                k = state.num_blocks
                self._slot_ic, self._slot_batch = ic_new, state.batch
                self._slot_row = self._arange(k).add_(offset)
                self._slot_current, self._node_slot = None, labels
                self._num_slots, self._first_table = k, table
                return improved
        if native:
            from .._native.selection import selector_update
            # Into the slot tensors of the last native update when they are still the
            # state (nobody else holds them: views and results are copies).
            owned = self._owned is not None and all(
                a is b for a, b in zip(self._owned, (self._slot_ic, self._slot_row,
                                                     self._slot_current)))
            self._slot_ic, self._slot_row, self._slot_current, improved = selector_update(
                labels, self._slot_current, ic_new, self._slot_ic, self._slot_row, offset,
                active, self._slot_batch, self.num_images, in_place=owned)
            self._owned = (None if self._slot_current is labels else
                           (self._slot_ic, self._slot_row, self._slot_current))
            return improved
        c = labels if self._slot_current is None else labels.index_select(0, self._slot_current)
        ic_c = ic_new.index_select(0, c)
        move = ic_c >= self._slot_ic
        if active is not None:
            move = move & active.index_select(0, self._slot_batch)
        # Graphs with a moved block; a scatter instead of a mask compaction (no host sync).
        improved = torch.zeros(self.num_images, dtype=torch.uint8, device=device)
        improved = improved.scatter_reduce_(0, self._slot_batch, move.to(torch.uint8),
                                            "amax").bool()
        self._slot_ic = torch.where(move, ic_c, self._slot_ic)
        self._slot_row = torch.where(move, c + offset, self._rows_of_slots())
        self._slot_current = c
        return improved

    def _check_update(self, partition: Partition, state: BlockState,
                      active: Optional[Tensor]) -> None:
        # The arguments of update(), before anything is gathered (the native kernels
        # range-check the indices themselves).
        if state.num_blocks != partition.num_blocks:
            raise ValueError(f"Expected 'state' with the partition's {partition.num_blocks} "
                             f"blocks (got {state.num_blocks})")
        if active is not None:
            if tuple(active.shape) != (self.num_images,):
                raise ValueError(f"Expected 'active' of shape ({self.num_images},) "
                                 f"(got {tuple(active.shape)})")
            if active.device != partition.labels.device:
                raise ValueError(f"Expected 'active' on {partition.labels.device} "
                                 f"(got {active.device})")

    def finish(self, pixel_edge_index: Optional[Tensor] = None, *,
               image_size: Optional[tuple[int, int]] = None) -> Selection:
        """Split the stored blocks into connected pieces of the node graph.

        Parameters
        ----------
        pixel_edge_index : LongTensor of shape (2, E), optional
            The node graph.
        image_size : (int, int), optional
            Instead of ``pixel_edge_index``: (H, W) of the 4-neighbour pixel grid
            (``grid_edge_index(H, W, B)``); the pieces are found without an edge list.

        Returns
        -------
        Selection
        """
        if pixel_edge_index is None and image_size is None:
            raise ValueError("Expected 'pixel_edge_index' or 'image_size' (got neither)")
        if self._explicit:
            view = self._view()
            block_of = view["pixel_block"]
            pieces = connected_split(block_of, pixel_edge_index, image_size=image_size)
            stored = torch.empty(pieces.num_blocks, dtype=torch.long, device=block_of.device)
            stored.scatter_(0, pieces.labels, block_of)
            return Selection(partition=pieces, mean=view["mean"][stored],
                             var=view["var"][stored], ic=view["ic"][stored],
                             batch=view["batch"][stored])
        slot_tensors = [t for t in (self._slot_row, self._node_slot) if t is not None]
        if image_size is not None and _native.enabled("selection", self._slot_ic, *slot_tensors):
            # Natively: the pieces of the rows without the node-sized gather and scatter.
            from .._native.selection import grid_pieces_of_slots
            n = self._num_slots if self._node_slot is None else self._node_slot.numel()
            labels, k, slot = grid_pieces_of_slots(self._slot_row, self._node_slot, n,
                                                   *image_size)
            pieces = Partition(labels, k, canonical=True)
            mean, var, batch = self._gather_rows(self._rows_of_slots().index_select(0, slot))
            return Selection(partition=pieces, mean=mean, var=var,
                             ic=self._slot_ic.index_select(0, slot), batch=batch)
        rows = self._rows_of_slots()
        # A stored block is a statistics row: nodes with the same row share one.
        node_row = rows if self._node_slot is None else rows.index_select(0, self._node_slot)
        pieces = connected_split(node_row, pixel_edge_index, image_size=image_size)
        slot = torch.empty(pieces.num_blocks, dtype=torch.long, device=node_row.device)
        slot.scatter_(0, pieces.labels, self._arange(node_row.numel()) if self._node_slot is None
                      else self._node_slot)
        mean, var, batch = self._gather_rows(rows.index_select(0, slot))
        return Selection(partition=pieces, mean=mean, var=var,
                         ic=self._slot_ic.index_select(0, slot), batch=batch)


def connected_split(labels: Tensor, edge_index: Optional[Tensor] = None, *,
                    image_size: Optional[tuple[int, int]] = None) -> Partition:
    """σ^G: every block of ``labels`` split into its connected pieces (theory/ Definition 13).

    Parameters
    ----------
    labels : LongTensor of shape (N,)
        Block of every node (any non-negative labels: the blocks of σ).
    edge_index : LongTensor of shape (2, E), optional
        The graph G.
    image_size : (int, int), optional
        Instead of ``edge_index``: G is the 4-neighbour grid of row-major images of this
        size (``grid_edge_index(H, W, N // (H·W))``); no edge list is built.

    Returns
    -------
    Partition
        Canonical; the coarsest partition that refines σ and is connected in G
        (theory/ Theorem 3).
    """
    if image_size is not None:
        return _grid_pieces(labels, *image_size)
    if edge_index is None:
        raise ValueError("Expected 'edge_index' or 'image_size' (got neither)")
    src, dst = edge_index[0], edge_index[1]
    inside = labels.index_select(0, src) == labels.index_select(0, dst)
    # Edges between blocks become loops (ignored): no compaction, no host sync for it.
    k_labels, k = component_labels(src, torch.where(inside, dst, src), labels.numel())
    return Partition(k_labels, k, canonical=True)


# Doublings per read for the dense up/left forest of the pieces: its paths run through
# whole regions (up to H + W long), so one read covers depth 2**8 = 256.
_PIECE_JUMPS = 8


def _grid_pieces(block_of: Tensor, height: int, width: int) -> Partition:
    # Connected pieces of the stored blocks on the 4-neighbour grid. The first forest is
    # built densely (a pixel's smallest same-block neighbour is the one above, else the
    # one to the left); every vertical same-block pair and every horizontal one whose
    # right pixel had no upper partner is then a pointer, so the only edges left are the
    # horizontal pairs whose right pixel hooked upwards.
    n = block_of.numel()
    b = _image_count(n, height, width)
    # Float labels are compared by the tensor path (the kernels take integers as they are).
    if is_integer_dtype(block_of.dtype) and _native.enabled("selection", block_of):
        from .._native.selection import grid_pieces
        labels, k = grid_pieces(block_of, height, width)
        return Partition(labels, k, canonical=True)
    blocks = block_of.view(b, height, width)
    small = torch.int32 if n < 2**31 - 1 else torch.long
    node = torch.arange(n, dtype=small, device=blocks.device).view(b, height, width)
    parent = node.clone()
    same_left = blocks[:, :, 1:] == blocks[:, :, :-1]
    parent[:, :, 1:] = torch.where(same_left, node[:, :, :-1], parent[:, :, 1:])
    same_up = blocks[:, 1:] == blocks[:, :-1]
    parent[:, 1:] = torch.where(same_up, node[:, :-1], parent[:, 1:])
    hooked_up = torch.zeros_like(blocks, dtype=torch.bool)
    hooked_up[:, 1:] = same_up
    missed = same_left & hooked_up[:, :, 1:]
    del same_left, same_up, hooked_up
    # The trees first (one read), then those pairs between trees on the k trees (one
    # compaction, a host sync; the rounds then run on k nodes, not on the pixels).
    group, k = forest_components(parent.view(-1), jumps=_PIECE_JUMPS)
    right = node[:, :, 1:][missed].long()
    labels, k = finish_components(group, k, group.index_select(0, right - 1),
                                  group.index_select(0, right))
    return Partition(labels, k, canonical=True)


def _check_stored(view: dict) -> None:
    # Assigned stored blocks: S of each, and a pixel block per node.
    k = int(view["num_stored"])
    for name in ("ic", "batch", "current"):
        t = view[name]
        if not isinstance(t, Tensor) or t.dim() != 1 or t.numel() != k:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"Expected '{name}' of shape ({k},) (got {shape})")
    for name in ("mean", "var"):
        t = view[name]
        if not isinstance(t, Tensor) or t.dim() != 2 or t.shape[0] != k:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"Expected '{name}' of shape ({k}, d) (got {shape})")
    block = view["pixel_block"]
    if not isinstance(block, Tensor) or block.dim() != 1:
        raise ValueError("Expected 'pixel_block' of shape (N,)")


def _image_count(n: int, height: int, width: int) -> int:
    # Whole images of height × width pixels (both paths).
    from .._native.selection import images_of  # plain Python (nothing is compiled)
    return images_of(n, height, width)


class ICStopping:
    """The §4 stopping rule of :func:`~dhtgraph.hierarchy.build.build_hierarchy`: a graph
    stops when no stored block of the IC selection moves (an :class:`InformationSelector`
    run while the hierarchy is built; :func:`select_partition` reuses it).

    Parameters
    ----------
    criterion : str, default 'aicc'
    iota : float, default 5.0
    """

    def __init__(self, criterion: Criterion = "aicc", iota: float = 5.0):
        self.criterion = resolve_criterion(criterion)[0]
        self.iota = check_iota(iota)
        self.selector: Optional[InformationSelector] = None

    def start(self, level0: BlockState, num_graphs: int,
              nodes_per_graph: Union[int, Tensor]) -> None:
        self.selector = InformationSelector(level0, num_graphs, nodes_per_graph,
                                            self.criterion, self.iota)

    def update(self, partition: Partition, state: BlockState,
               active: Optional[Tensor] = None) -> Tensor:
        if self.selector is None:
            raise RuntimeError("ICStopping.update called before start")
        return self.selector.update(partition, state, active)

    def matches(self, criterion: str, iota: float) -> bool:
        return self.selector is not None and (self.criterion, self.iota) == (criterion, iota)


def ic_stopping(criterion: Criterion = "aicc", iota: float = 5.0) -> ICStopping:
    """A fresh :class:`ICStopping` rule for ``build_hierarchy(..., stop=...)``."""
    return ICStopping(criterion, iota)


def select_partition(result: HierarchyResult, criterion: Criterion = "aicc",
                     iota: float = 5.0) -> Selection:
    """Select tokens from a built hierarchy by an information criterion (spec §5).

    Parameters
    ----------
    result : HierarchyResult
        From :func:`~dhtgraph.hierarchy.build.build_hierarchy`.
    criterion : str, default 'aicc'
        A name in :data:`CRITERION_FUNCTIONS`.
    iota : float, default 5.0
        ι > 0.

    Returns
    -------
    Selection
        A connected partition of the N nodes refining the top, with each token's μ*, σ²,
        IC and graph.

    Notes
    -----
    When the hierarchy was built with ``stop=ic_stopping(criterion, iota)`` its running
    selection is finished (no second pass); otherwise the stored levels are replayed:
    graph b takes part in level t iff ``t ≤ result.num_levels[b]``, and in the top. The
    levels themselves (where each graph stopped) are those the hierarchy was built with.
    """
    if not isinstance(result, HierarchyResult):
        raise TypeError(f"Expected 'result' to be a HierarchyResult (got "
                        f"{type(result).__name__})")
    criterion = resolve_criterion(criterion)[0]
    iota = check_iota(iota)
    rule = result.stopping
    grid = result.grid
    if isinstance(rule, ICStopping) and rule.matches(criterion, iota):
        selector = rule.selector
    else:
        nodes = grid.nodes_per_image if grid is not None else result.nodes_per_graph
        selector = InformationSelector(result.levels[0], result.num_graphs, nodes, criterion,
                                       iota)
        steps = result.hierarchy.steps
        last = len(steps) - 1
        for t, (step, state) in enumerate(zip(steps, result.levels[1:]), start=1):
            active = (torch.ones_like(result.num_levels, dtype=torch.bool) if t > last
                      else result.num_levels >= t)
            selector.update(step, state, active)
    if grid is not None:
        return selector.finish(image_size=(grid.height, grid.width))
    return selector.finish(result.graph)
