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
blocks in Python. On CPU tensors the discrete steps — the argmax with its tie rules
(:func:`argmax_choice`, :func:`tie_hash`, :func:`equal_ends`, :func:`local_index`), the
constant-channel test of :func:`snap_constant_blocks`, the summed sizes, merged boxes
and images of the pooling (``dhtgraph/_native/contraction.c``) and the edge relabel
(``edges.c``) — run as native kernels, one pass each, that give the same tensors bit
for bit. When no gradient is recorded, the pooled moments (:func:`weighted_moments`,
with the zero-weight guard, the snap and the frozen blocks' restore) run natively too:
the same IEEE operations (+, −, ×, ÷) in the same order and dtype as the tensor code
(sums accumulated item by item in index order, as torch's CPU ``index_add``), so the
same values. The other floating-point steps (weights, ``K̃(v, a(v))``) and everything
with gradients are torch's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import Tensor

from .. import _native
from .._registry import Registry
from .._union import functional_component_labels
from ..partition import Partition

__all__ = [
    "BlockState",
    "Contraction",
    "PoolWeights",
    "POOL_WEIGHTS",
    "POOL_WEIGHTINGS",
    "TieBreak",
    "TIE_BREAKS",
    "QUANTIZATION_BITS",
    "TIE_HASH_BITS",
    "quantize_potential",
    "check_tie_break",
    "local_index",
    "tie_hash",
    "tie_keys",
    "equal_ends",
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

TieBreak = Literal["reference", "hashed"]
#: How the argmax breaks exact ties (equal 16-bit potentials).
#:
#: * ``'reference'``: the larger neighbour index wins — the reference implementation,
#:   bit-identical to it (the official checkpoint's preset). On a smooth image every
#:   pixel of a tied region points the same way, so one level chains the whole region
#:   into one block (a 512² float gradient: one token; uint8: one per 2×2 step).
#: * ``'hashed'``: the larger :func:`tie_hash` of the two blocks' indices within their
#:   graph wins, then the larger index. Tied regions contract like a graph with a random
#:   edge order (trees around mutually chosen edges, about a third of the blocks per
#:   level) instead of chaining. Along an edge *inside a plateau* — its two blocks have
#:   exactly the same mean (:func:`equal_ends`) — the hash is dropped and the larger
#:   index decides, as in the reference, so a flat region still merges whole in one
#:   level (a constant image, or a fully transparent area, is one token).
TIE_BREAKS = ("reference", "hashed")
#: Bits of :func:`tie_hash`: potential (16) and hash (15) share one int32 in the grid
#: fast path.
TIE_HASH_BITS = 15
# Bits of a block's index within its graph in the hashed key (16 + 15 + 31 = 62).
_LOCAL_INDEX_BITS = 31
_MASK32 = 0xFFFFFFFF
# Edges per chunk of the equal-means test and the hashed keys (bounds their temporaries).
_EQUAL_CHUNK = 1 << 20


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


def _use_native(native: Optional[bool], kernels: str, tensors: list) -> bool:
    # A step's native decision: the level's (``native``, see :func:`_level_natives`) or,
    # when it left it open (None), ``_native.enabled`` for the step's own tensors.
    return _native.enabled(kernels, *tensors) if native is None else native


def _level_natives(sets: tuple, tensors: list) -> tuple:
    """One decision per kernel set in ``sets`` for the steps of a level, the devices read
    once: True when the set is in use and every tensor the level reads (``tensors``; None
    entries are skipped) is a CPU tensor, False when it is not in use at all; None when
    some tensor is elsewhere (then each step asks for its own tensors, as
    :func:`_native.enabled` would for it alone: a step whose tensors are all on the CPU
    still runs natively)."""
    on_cpu = all(t.is_cpu for t in tensors if t is not None)
    return tuple((True if on_cpu else None) if _native.enabled(kernels) else False
                 for kernels in sets)


def quantize_potential(potential: Tensor, dtype: torch.dtype = torch.long) -> Tensor:
    """``⌊clip(K̃, 0, 1)·(2¹⁶ − 1)⌋`` (the reference's argmax resolution); NaN → 0.

    ``dtype`` is the integer type of the result (int64 by default; int32 holds the same
    values in half the memory).
    """
    scale = float((1 << QUANTIZATION_BITS) - 1)
    # NaN (e.g. inf − inf on overflowing features) scores 0, never a garbage integer.
    return potential.detach().nan_to_num(nan=0.0).clamp(0, 1).mul(scale).to(dtype)


def check_tie_break(tie_break) -> str:
    """``tie_break`` itself if it is one of :data:`TIE_BREAKS`, else a ValueError naming it."""
    if not isinstance(tie_break, str) or tie_break not in TIE_BREAKS:
        raise ValueError(f"Expected 'tie_break' to be one of {TIE_BREAKS} (got {tie_break!r})")
    return tie_break


def local_index(batch: Tensor) -> Tensor:
    """Index of every block within its graph: ``i − (first index of its graph's run)``.

    Blocks of one graph are contiguous and graphs are in order at every level of
    :func:`dhtgraph.hierarchy.build_hierarchy` (sorted node batches, canonical labels
    numbered by first occurrence), so this is the index the block would have if its
    graph were alone: the same whatever else is in the batch.

    Parameters
    ----------
    batch : LongTensor of shape (K,)
        Graph of every block (contiguous runs).

    Returns
    -------
    LongTensor of shape (K,)
    """
    if batch.dtype == torch.long and batch.dim() == 1 and _native.enabled("contraction", batch):
        from .._native.contraction import local_index as native_local_index
        return native_local_index(batch)
    k = batch.numel()
    index = torch.arange(k, device=batch.device)
    if k == 0:
        return index
    start = torch.ones(k, dtype=torch.bool, device=batch.device)
    start[1:] = batch[1:] != batch[:-1]
    first = torch.where(start, index, index.new_zeros(())).cummax(0).values
    return index - first


def _mul32_(x: Tensor, c: int) -> Tensor:
    # x ← (x·c) mod 2³² in place, for 0 ≤ x < 2³² in int64, without overflow: one product
    # when c < 2³¹ (x·c < 2⁶³), else c split in 16-bit halves.
    if c < 1 << 31:
        return x.mul_(c).bitwise_and_(_MASK32)
    high = (x * (c >> 16)).bitwise_and_(0xFFFF).bitwise_left_shift_(16)
    return x.mul_(c & 0xFFFF).add_(high).bitwise_and_(_MASK32)


def _mix32_(x: Tensor) -> Tensor:
    # A 32-bit integer finaliser (xor-shift / multiply rounds, "lowbias32" constants),
    # in place on a tensor the caller owns (in-place ops: no fresh (E,) buffer per step,
    # 3-4x faster at 10⁵ elements): every input bit changes about half the output bits,
    # so hashes of neighbouring indices are unrelated (a linear hash would order a row's
    # edges monotonically and chain it again).
    x.bitwise_xor_(x >> 16)
    _mul32_(x, 0x7FEB352D)
    x.bitwise_xor_(x >> 15)
    _mul32_(x, 0x846CA68B)
    return x.bitwise_xor_(x >> 16)


def tie_hash(a: Tensor, b: Tensor) -> Tensor:
    """A fixed symmetric integer hash of index pairs, in ``[0, 2^TIE_HASH_BITS)``.

    ``tie_hash(a, b) == tie_hash(b, a)``: both directions of an edge get the same value,
    so among exactly tied edges every block picks its locally largest one and the choices
    form trees around mutually chosen edges (no long chains). Pure integer arithmetic in
    int64 (no overflow): the same on every device and thread count.

    Parameters
    ----------
    a, b : LongTensor (same shape)
        Indices in ``[0, 2³¹)`` (blocks' indices within their graph).

    Returns
    -------
    LongTensor (same shape)
    """
    if (a.dtype == b.dtype == torch.long and a.shape == b.shape
            and _native.enabled("contraction", a, b)):
        from .._native.contraction import tie_hash as native_tie_hash
        return native_tie_hash(a, b)
    h = _mix32_(torch.minimum(a, b))  # a fresh tensor: mixed in place
    h.add_(torch.maximum(a, b)).bitwise_and_(_MASK32)
    return _mix32_(h).bitwise_right_shift_(32 - TIE_HASH_BITS)


def argmax_choice(potential: Tensor, edge_index: Tensor, num_nodes: int,
                  movable: Optional[Tensor] = None, *, tie_break: TieBreak = "reference",
                  batch: Optional[Tensor] = None, mean: Optional[Tensor] = None) -> Tensor:
    """Every block's best incident edge, with the reference's quantisation and a tie rule.

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
    tie_break : {'reference', 'hashed'}, default 'reference'
        Among equal quantised potentials: ``'reference'``, the larger neighbour index
        wins; ``'hashed'``, the larger ``tie_hash(i_v, i_u)`` of the blocks' indices
        within their graph (:func:`local_index`), then the larger index — except along
        edges between blocks of exactly equal means (:func:`equal_ends`, when ``mean``
        is given), where the index alone decides (the reference rule). See
        :data:`TIE_BREAKS`.
    batch : LongTensor of shape (K,), optional
        Graph of every block (contiguous runs), read by ``'hashed'`` (default: one graph).
    mean : Tensor of shape (K, d), optional
        Block means, read by ``'hashed'`` for the plateau rule (without it the hash
        breaks every tie).

    Returns
    -------
    LongTensor of shape (K,)
        ``a(v)``. Potentials are compared after quantisation to 16 bits, ties broken by
        ``tie_break``. A block without edges chooses itself.
    """
    check_tie_break(tie_break)
    return _argmax_choice(potential, edge_index, num_nodes, movable, tie_break, batch, mean)


def _argmax_choice(potential: Tensor, edge_index: Tensor, num_nodes: int,
                   movable: Optional[Tensor], tie_break: str, batch: Optional[Tensor],
                   mean: Optional[Tensor], native: Optional[bool] = None) -> Tensor:
    # argmax_choice after its check; ``native``: the level's decision (:func:`_level_natives`).
    if _native_choice(potential, edge_index, num_nodes, movable, tie_break, batch, mean, native):
        from .._native.contraction import argmax_choice as native_argmax_choice
        return native_argmax_choice(_native_potential(potential), edge_index, num_nodes,
                                    movable, tie_break == "hashed", batch, mean)
    if tie_break == "hashed":
        return _hashed_choice(potential, edge_index, num_nodes, movable, batch, mean)
    key = (quantize_potential(potential) << _INDEX_BITS) | edge_index[1]
    return _best_key_choice(key, edge_index, num_nodes, movable, _INDEX_BITS)


def _choice_partition(potential: Tensor, edge_index: Tensor, num_nodes: int,
                      movable: Optional[Tensor], tie_break: str, batch: Optional[Tensor],
                      mean: Optional[Tensor], native: Optional[bool]) -> tuple[Tensor, Partition]:
    # contract's choices and their components (the new blocks): on the native path one
    # kernel call for both (the same tensors as argmax_choice, then
    # functional_component_labels).
    if _native_choice(potential, edge_index, num_nodes, movable, tie_break, batch, mean, native):
        from .._native.contraction import choice_labels
        choice, labels, k_new = choice_labels(_native_potential(potential), edge_index,
                                              num_nodes, movable, tie_break == "hashed",
                                              batch, mean)
        if labels is None:  # a choice outside [0, K): the two-call path's result and errors
            return choice, Partition(*functional_component_labels(choice), canonical=True)
        return choice, Partition(labels, k_new, canonical=True)
    choice = _argmax_choice(potential, edge_index, num_nodes, movable, tie_break, batch, mean,
                            False)  # (the native choice was just refused)
    # choice follows edges of the graph (or is the node itself): a valid functional graph.
    return choice, Partition(*functional_component_labels(choice), canonical=True)


def _native_potential(potential: Tensor) -> Tensor:
    # The potentials as the choice kernels take them: float32/float64 as they are (the
    # kernels quantise them), any other dtype quantised here.
    from .._native.contraction import POTENTIAL_DTYPES
    return potential if potential.dtype in POTENTIAL_DTYPES else quantize_potential(potential)


def _native_choice(potential: Tensor, edge_index: Tensor, num_nodes: int,
                   movable: Optional[Tensor], tie_break: str, batch: Optional[Tensor],
                   mean: Optional[Tensor], native: Optional[bool] = None) -> bool:
    # The native argmax (one pass over the edges, the same keys) takes inputs whose types
    # the tensor code handles as documented; anything else stays on the tensor path.
    hashed = tie_break == "hashed"
    if edge_index.dtype != torch.long or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        return False
    if potential.dim() != 1 or potential.numel() != edge_index.shape[1]:
        return False
    if not (potential.is_floating_point() or potential.dtype == torch.long):
        return False
    k = (num_nodes,)
    if movable is not None and (movable.dtype != torch.bool or movable.shape != k):
        return False
    tensors = [potential, edge_index] + ([movable] if movable is not None else [])
    if hashed and batch is not None:
        if batch.dtype != torch.long or batch.shape != k:
            return False
        tensors.append(batch)
    if hashed and mean is not None:
        if not mean.is_floating_point() or mean.dim() != 2 or mean.shape[0] != num_nodes:
            return False
        tensors.append(mean)
    return _use_native(native, "contraction", tensors)


def _best_key_choice(key: Tensor, edge_index: Tensor, num_nodes: int, movable: Optional[Tensor],
                     index_bits: int, local: Optional[Tensor] = None) -> Tensor:
    # Every block's largest key (one scatter-max); the low ``index_bits`` of the key name
    # the candidate: its index (local None) or its index within the graph.
    src, dst = edge_index[0], edge_index[1]
    if movable is not None:
        # Edges into frozen blocks are no candidates (a loop is one only for a movable
        # block, whose loop is an edge into a movable block).
        key = torch.where(movable.index_select(0, dst), key, key.new_full((), -1))
    best = torch.full((num_nodes,), -1, dtype=torch.long, device=key.device)
    best.scatter_reduce_(0, src, key, reduce="amax", include_self=True)
    own = torch.arange(num_nodes, device=key.device)
    found = best & ((1 << index_bits) - 1)
    if local is not None:
        found = own - local + found
    choice = torch.where(best >= 0, found, own)
    if movable is not None:
        choice = torch.where(movable, choice, own)
    return choice


def equal_ends(mean: Tensor, edge_index: Tensor) -> Tensor:
    """BoolTensor (E,): the edge joins two blocks of exactly the same mean (loops: True).

    Symmetric (both directions of an edge agree). Chunked over edges (bounded (E, d)
    temporaries).

    Parameters
    ----------
    mean : Tensor of shape (K, d)
    edge_index : LongTensor of shape (2, E)

    Returns
    -------
    BoolTensor of shape (E,)
    """
    if (mean.is_floating_point() and mean.dim() == 2 and edge_index.dtype == torch.long
            and edge_index.dim() == 2 and edge_index.shape[0] == 2
            and _native.enabled("contraction", mean, edge_index)):
        from .._native.contraction import equal_ends as native_equal_ends
        return native_equal_ends(mean, edge_index)
    src, dst = edge_index[0], edge_index[1]
    items = mean.detach()
    out = torch.empty(src.numel(), dtype=torch.bool, device=mean.device)
    for start in range(0, src.numel(), _EQUAL_CHUNK):
        stop = start + _EQUAL_CHUNK
        out[start:stop] = (items.index_select(0, src[start:stop])
                           == items.index_select(0, dst[start:stop])).all(-1)
    return out


def tie_keys(quantized: Tensor, hashed: Tensor, flat: Optional[Tensor] = None) -> Tensor:
    """The hashed rule's order of edges: ``q·2^15 + hash`` (``q·2^15`` where ``flat``).

    ``flat`` (broadcast to ``quantized``) marks the edges inside a plateau (equal means at
    both ends, :func:`equal_ends`): their hash is dropped, so the index decides their ties
    (the reference rule). Same dtype as ``quantized``.
    """
    hashed = hashed.to(quantized.dtype)
    if flat is not None:
        hashed = torch.where(flat, hashed.new_zeros(()), hashed)
    return (quantized << TIE_HASH_BITS) | hashed


def _hashed_choice(potential: Tensor, edge_index: Tensor, num_nodes: int,
                   movable: Optional[Tensor], batch: Optional[Tensor],
                   mean: Optional[Tensor]) -> Tensor:
    # Key (16 | 15 | 31 bits): potential, tie hash, neighbour's index within its graph.
    # Every candidate of v lies in v's graph, so the last field orders them as the global
    # index does and a(v) = v − local(v) + field.
    src, dst = edge_index[0], edge_index[1]
    device = potential.device
    if batch is None:
        local = torch.arange(num_nodes, device=device)
    else:
        local = local_index(batch)
    if num_nodes > (1 << _LOCAL_INDEX_BITS):
        largest = int(local.max())
        if largest >= (1 << _LOCAL_INDEX_BITS):
            raise ValueError(f"Expected graphs of fewer than 2**{_LOCAL_INDEX_BITS} blocks with "
                             f"tie_break='hashed' (got {largest + 1})")
    # Built in chunks of edges: the hash's int64 temporaries stay bounded (the key itself
    # is the one (E,) array that must exist whole).
    key = quantize_potential(potential)
    for start in range(0, key.numel(), _EQUAL_CHUNK):
        stop = start + _EQUAL_CHUNK
        local_src = local.index_select(0, src[start:stop])
        local_dst = local.index_select(0, dst[start:stop])
        flat = None if mean is None else equal_ends(mean, edge_index[:, start:stop])
        part = tie_keys(key[start:stop], tie_hash(local_src, local_dst), flat)
        key[start:stop] = (part << _LOCAL_INDEX_BITS) | local_dst
        del local_src, local_dst, flat, part
    return _best_key_choice(key, edge_index, num_nodes, movable, _LOCAL_INDEX_BITS, local)


def chosen_potential(potential: Tensor, edge_index: Tensor, choice: Tensor) -> Tensor:
    """``K̃(v, a(v))`` for every block (0 where the chosen edge does not exist).

    Differentiable in ``potential``. ``edge_index`` must hold no duplicate edges.
    """
    src, dst = edge_index[0], edge_index[1]
    hit = dst == choice.index_select(0, src)
    # Other edges add an exact 0 (no mask compaction, no host sync).
    out = potential.new_zeros(choice.shape[0])
    return out.index_add(0, src, torch.where(hit, potential, potential.new_zeros(())))


def _safe_sqrt(x: Tensor) -> Tensor:
    # √x with a zero (not infinite) gradient at x = 0.
    positive = x > 0
    return torch.where(positive, x.clamp_min(torch.finfo(x.dtype).tiny).sqrt(), x.new_zeros(()))


def _relabel_edges(partition: Partition, edge_index: Tensor,
                   native: Optional[bool] = None) -> Tensor:
    """The quotient graph with self-loops, coalesced (same result as
    ``partition.quotient(edge_index, self_loops=True)``; ``native``: the level's decision
    for the 'edges' kernels, None: ask)."""
    labels = partition.labels
    if (labels.dtype == edge_index.dtype == torch.long
            and _use_native(native, "edges", [labels, edge_index])):
        # A counting sort and a deduplicating walk (edges.c): the same pairs, no sort.
        from .._native.edges import relabel_edges
        return relabel_edges(labels, partition.num_blocks, edge_index)
    # Keys src·K' + dst, sorted and deduplicated (the sort is most of the cost: 32-bit
    # keys, when K'² fits, sort in about half the time of 64-bit ones).
    k = max(partition.num_blocks, 1)
    if k * k < 2**31:
        labels = labels.to(torch.int32)
    key = labels.index_select(0, edge_index[0]).mul_(k).add_(labels.index_select(0, edge_index[1]))
    key = torch.unique(key)
    src = torch.div(key, k, rounding_mode="floor")
    key -= src * k
    return torch.stack([src, key]).long()


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
    read = [state.mean, state.var, state.size, state.bbox, state.edge_index, state.batch,
            partition.labels, weight]
    native, native_edges = _level_natives(("contraction", "edges"), read)
    return _pool_blocks(state, partition, weight, positive=False, native=native,
                        native_edges=native_edges)


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
        Snapped by :func:`snap_constant_blocks`. On CPU float32/float64 inputs without a
        recorded gradient a native kernel computes them (the same values bit for bit;
        NaN payloads aside); otherwise these tensor operations (differentiable).
    """
    if _native_moments(mean, var, labels, weight, fallback):
        from .._native.contraction import weighted_moments as native_moments
        return native_moments(mean, var, labels, num_blocks, weight, fallback)
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


def _native_moments(mean: Tensor, var: Optional[Tensor], labels: Tensor, weight: Tensor,
                    fallback: Optional[Tensor], integers: bool = False,
                    native: Optional[bool] = None) -> bool:
    # The native moments (contraction.c: the same IEEE operations in the same order and
    # dtype, one pass per sum) take float32/float64 CPU inputs of one dtype (weights and
    # fallback also int64 where ``integers``: sizes) when no gradient is recorded;
    # anything else stays on the tensor path.
    dtype = mean.dtype
    if dtype not in (torch.float32, torch.float64) or mean.dim() != 2:
        return False
    k = mean.shape[0]
    if labels.dtype != torch.long or labels.shape != (k,):
        return False
    tensors = [mean, labels]
    for t, shape, ints in ((var, mean.shape, False), (weight, (k,), integers),
                           (fallback, (k,), integers)):
        if t is not None:
            if not (t.dtype == dtype or (ints and t.dtype == torch.long)) or t.shape != shape:
                return False
            tensors.append(t)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    return _use_native(native, "contraction", tensors)


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
    constant = _native_constant(mean, var, labels, num_blocks)
    if constant is None:
        constant = _constant_channels(mean, var, labels, num_blocks)
    zero = new_var.new_zeros(())
    if torch.is_grad_enabled() and new_var.requires_grad:
        # Value 0, gradient of the pooled formula.
        return new_mean, torch.where(constant, (new_var - new_var.detach()).nan_to_num(0.0),
                                     new_var)
    return new_mean, torch.where(constant, zero, new_var)


def _native_constant(mean: Tensor, var: Optional[Tensor], labels: Tensor,
                     num_blocks: int) -> Optional[Tensor]:
    # snap_constant_blocks's mask in one C pass over the items (None: not available here).
    if not (mean.dtype in (torch.float32, torch.float64) and mean.dim() == 2
            and labels.dtype == torch.long and labels.shape == mean.shape[:1]
            and (var is None or (var.dtype == mean.dtype and var.shape == mean.shape))):
        return None
    if not _native.enabled("contraction", mean, labels, *([] if var is None else [var])):
        return None
    from .._native.contraction import constant_channels
    return constant_channels(mean, var, labels, num_blocks)


def _constant_channels(mean: Tensor, var: Optional[Tensor], labels: Tensor,
                       num_blocks: int) -> Tensor:
    # A block is constant in a channel iff every item there equals one representative
    # item (any member: the outcome does not depend on which) and has zero variance. One
    # 1-d scatter, one gather and one index_add instead of per-channel min/max scatters.
    items = mean.detach()
    rep = torch.empty(num_blocks, dtype=torch.long, device=items.device).scatter_(
        0, labels, torch.arange(labels.numel(), device=items.device))
    differs = items != items.index_select(0, rep.index_select(0, labels))
    if var is not None:
        differs |= var.detach() != 0
    count = items.new_zeros((num_blocks, items.shape[1])).index_add_(0, labels,
                                                                    differs.to(items.dtype))
    return count == 0


def _pool_blocks(state: BlockState, partition: Partition, weight: Tensor, *,
                 positive: bool, movable: Optional[Tensor] = None,
                 native: Optional[bool] = None,
                 native_edges: Optional[bool] = None) -> BlockState:
    # positive=True: the caller guarantees every weight > 0 (sizes), so the zero-weight
    # guard is skipped. ``weight`` is converted to the dtype of the means (int64 sizes
    # included). movable: contract's mask; a new block made of one frozen block keeps its
    # statistics exactly. native, native_edges: the level's decisions for the
    # 'contraction' and 'edges' kernels (:func:`_level_natives`; None: each step asks).
    labels, k_new = partition.labels, partition.num_blocks
    mean, var = state.mean, state.var
    fallback = None if positive else state.size
    if _native_moments(mean, var, labels, weight, fallback, integers=True, native=native) and (
            movable is None or (var is not None and movable.dtype == torch.bool
                                and movable.shape == labels.shape
                                and _use_native(native, "contraction", [movable]))):
        if _native_integers(state, labels, native):
            # One kernel call: weights, moments, snap, the frozen blocks' restore, sizes,
            # boxes and images.
            from .._native.contraction import pool_level
            new_mean, new_var, new_size, new_bbox, new_batch = pool_level(
                mean, var, labels, k_new, weight, fallback, movable, state.size, state.bbox,
                state.batch)
        else:
            # One kernel: weights, moments, snap and the frozen blocks' restore.
            from .._native.contraction import weighted_moments as native_moments
            new_mean, new_var = native_moments(mean, var, labels, k_new, weight, fallback,
                                               movable=movable)
            new_size, new_bbox, new_batch = _pool_integers(state, labels, k_new,
                                                           False)  # (just refused)
    else:
        new_mean, new_var = weighted_moments(
            mean, var, labels, k_new, weight.to(mean.dtype),
            None if fallback is None else fallback.to(mean.dtype))
        if movable is not None:
            new_mean, new_var = _restore_frozen(state, labels, k_new, movable, new_mean,
                                                new_var)
        new_size, new_bbox, new_batch = _pool_integers(state, labels, k_new, native)
    return BlockState(
        mean=new_mean,
        var=new_var,
        size=new_size,
        bbox=new_bbox,
        edge_index=_relabel_edges(partition, state.edge_index, native_edges),
        batch=new_batch,
    )


def _restore_frozen(state: BlockState, labels: Tensor, k_new: int, movable: Tensor,
                    new_mean: Tensor, new_var: Tensor) -> tuple[Tensor, Tensor]:
    # A frozen block is alone in its new block (it chose itself, nobody chose it): that
    # block keeps the frozen block's statistics exactly (no mask compaction).
    k = labels.shape[0]
    frozen = torch.zeros(k_new, dtype=torch.bool, device=labels.device).scatter_(
        0, labels, ~movable).unsqueeze(1)
    item = torch.empty(k_new, dtype=torch.long, device=labels.device).scatter_(
        0, labels, torch.arange(k, device=labels.device))
    return (torch.where(frozen, state.mean.index_select(0, item), new_mean),
            torch.where(frozen, state.var.index_select(0, item), new_var))


def _native_integers(state: BlockState, labels: Tensor, native: Optional[bool]) -> bool:
    # Whether the integer statistics run natively (int64 tensors of the shapes they need).
    size, bbox, batch = state.size, state.bbox, state.batch
    k = labels.shape
    return (labels.dtype == size.dtype == bbox.dtype == batch.dtype == torch.long
            and labels.dim() == 1 and size.shape == batch.shape == k and bbox.shape == (*k, 4)
            and _use_native(native, "contraction", [labels, size, bbox, batch]))


def _pool_integers(state: BlockState, labels: Tensor, k_new: int,
                   native: Optional[bool] = None) -> tuple[Tensor, Tensor, Tensor]:
    # Summed sizes, merged boxes (min / max) and the image of every new block.
    size, bbox, batch = state.size, state.bbox, state.batch
    if _native_integers(state, labels, native):
        from .._native.contraction import pool_integers
        return pool_integers(labels, k_new, size, bbox, batch)
    new_size = torch.zeros(k_new, dtype=size.dtype, device=labels.device).index_add_(
        0, labels, size)
    idx4 = labels.unsqueeze(1).expand(-1, 4)
    new_bbox = bbox.new_empty(k_new, 4)
    new_bbox[:, :2].copy_(new_bbox.new_empty(k_new, 2).scatter_reduce_(
        0, idx4[:, :2], bbox[:, :2], reduce="amin", include_self=False))
    new_bbox[:, 2:].copy_(new_bbox.new_empty(k_new, 2).scatter_reduce_(
        0, idx4[:, 2:], bbox[:, 2:], reduce="amax", include_self=False))
    new_batch = batch.new_empty(k_new).scatter_(0, labels, batch)
    return new_size, new_bbox, new_batch


#: Pooling weightings by name: ``weighting(state, chosen) -> w (K,)``, where ``chosen`` is
#: ``K̃(v, a(v))`` (K,) — or None for a weighting whose attribute ``reads_choice`` is
#: False. A weighting with ``positive = True`` promises every weight > 0 (the
#: contraction then skips the zero-weight guard); one with ``returns_sizes = True``
#: promises that its weights are the block sizes ``state.size`` in the dtype of the
#: means, so :func:`contract` pools with the int64 sizes themselves and does not call it
#: (the native pooling reads them without a conversion). Missing attributes read as
#: ``reads_choice = True``, ``positive = False``, ``returns_sizes = False``. Registering
#: one more function here is all a new weighting needs (``contract``,
#: ``build_hierarchy`` and the configs resolve names through this registry).
POOL_WEIGHTINGS: Registry = Registry("weights")


@POOL_WEIGHTINGS.register("argmax_edge")
def argmax_edge_weights(state: BlockState, chosen: Tensor) -> Tensor:
    """``w = m·√K̃(v, a(v))``: the paper's weights, differentiable in the potentials."""
    size = state.size.to(state.mean.dtype)
    return size * _safe_sqrt(chosen.to(state.mean.dtype))


@POOL_WEIGHTINGS.register("size")
def size_weights(state: BlockState, chosen: Optional[Tensor] = None) -> Tensor:
    """``w = m``: exact size-weighted statistics (sizes are ≥ 1)."""
    return state.size.to(state.mean.dtype)


argmax_edge_weights.reads_choice, argmax_edge_weights.positive = True, False
size_weights.reads_choice, size_weights.positive, size_weights.returns_sizes = False, True, True


def pool_weights(state: BlockState, chosen: Optional[Tensor], weights: PoolWeights) -> Tensor:
    """The pooling weights ``w`` (K,) of the weighting named ``weights``
    (:data:`POOL_WEIGHTINGS`: ``'argmax_edge'``, ``'size'``)."""
    return POOL_WEIGHTINGS.resolve(weights, "weights")(state, chosen)


def contract(state: BlockState, potential: Tensor, *, weights: PoolWeights = "argmax_edge",
             movable: Optional[Tensor] = None,
             tie_break: TieBreak = "reference") -> Contraction:
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
    tie_break : {'reference', 'hashed'}, default 'reference'
        How the argmax breaks exact ties (:func:`argmax_choice`, :data:`TIE_BREAKS`);
        ``'hashed'`` reads the graph of every block from ``state.batch`` and the
        plateau rule from ``state.mean``.

    Returns
    -------
    Contraction
    """
    weighting = POOL_WEIGHTINGS.resolve(weights, "weights")
    check_tie_break(tie_break)
    k = state.num_blocks
    # The kernel sets decided once for the level (the choices, labels and sizes derived
    # below live where these tensors do).
    read = [potential, state.mean, state.var, state.size, state.bbox, state.edge_index,
            state.batch, movable]
    native, native_edges = _level_natives(("contraction", "edges"), read)
    choice, partition = _choice_partition(potential, state.edge_index, k, movable, tie_break,
                                          state.batch, state.mean, native)
    if getattr(weighting, "returns_sizes", False):
        # The sizes themselves: _pool_blocks converts them (the kernel without a tensor op).
        weight = state.size
    else:
        chosen = (chosen_potential(potential, state.edge_index, choice)
                  if getattr(weighting, "reads_choice", True) else None)
        weight = weighting(state, chosen)
    new = _pool_blocks(state, partition, weight,
                       positive=bool(getattr(weighting, "positive", False)), movable=movable,
                       native=native if weight.device.type == "cpu" else None,
                       native_edges=native_edges)
    return Contraction(partition=partition, state=new, choice=choice)
