"""ctypes bindings of ``selection.c`` (callers: :mod:`dhtgraph.selection.budget`,
:mod:`dhtgraph.selection.select`, :mod:`dhtgraph.nn.tokens`).

Every function takes contiguous CPU tensors (converted here where needed) and returns
new tensors; the float tensors it reads are only compared or copied, never computed on.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, as_index, expect_shape, function, pointer

__all__ = ["BudgetWorkspace", "budget_round", "budget_compact", "budget_kept", "grid_pieces",
           "first_occurrence_groups", "grid_region_stats", "grid_pieces_of_slots",
           "selector_all_move", "selector_update", "images_of"]

_SET = "selection"


def _ptr(t: Optional[Tensor], dtype: torch.dtype = torch.long):
    # pointer() of an optional (named, live) tensor.
    return None if t is None else pointer(t, dtype)


def images_of(num_pixels: int, height: int, width: int) -> int:
    """The number of ``height × width`` images of ``num_pixels`` pixels.

    Raises
    ------
    ValueError
        Naming ``image_size`` when H or W is < 1 or the pixels are not whole images.
    """
    h, w = int(height), int(width)
    if h < 1 or w < 1 or num_pixels % (h * w):
        raise ValueError(f"Expected 'image_size' (H, W) with H, W >= 1 dividing the "
                         f"{num_pixels} pixels into whole images (got ({height}, {width}))")
    return num_pixels // (h * w)


def budget_round(edges: Tensor, cost: Tensor, union: Tensor, tie: Optional[Tensor],
                 unit_batch: Tensor, units: Tensor, excess: Tensor, *, packed: bool,
                 passes: int) -> tuple[Tensor, Tensor, Tensor]:
    """One round's merges of the budget: ``(pair (2, m), step (n,), target (m,))``.

    ``edges`` (2, e) unique pairs a < b sorted; ``cost``, ``union`` (e,) float32 or
    float64 (the same dtype); ``tie`` (e,) int64 random tie keys or None (the hash of the
    positions within the image); ``unit_batch`` (n,), ``units``, ``excess`` (B,)."""
    if cost.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"Expected float32 or float64 costs (got {cost.dtype})")
    edges = as_index(edges, "edges")
    unit_batch = as_index(unit_batch, "unit_batch")
    state = torch.empty(unit_batch.numel(), 1, dtype=cost.dtype)
    work = BudgetWorkspace(state, edges, as_index(units, "units").numel())
    pair = work.round(edges, cost, union, tie, unit_batch, as_index(units, "units"),
                      as_index(excess, "excess"), packed=packed, passes=passes)
    m = pair.shape[1]
    return pair.clone(), work.step[:unit_batch.numel()].clone(), work.target[:m].clone()


def budget_compact(state: Tensor, pair: Tensor, step: Tensor, target: Tensor, merged: Tensor,
                   unit_batch: Tensor, excess: Tensor, units: Tensor,
                   labels: Tensor) -> tuple[Tensor, Tensor]:
    """After :func:`budget_round`: the compacted state (n - m, width) and unit batch;
    ``excess``, ``units`` (B,) and ``labels`` (k,) are updated in place (int64, contiguous,
    owned by the caller)."""
    state = state.contiguous()
    merged = merged.to(state.dtype).contiguous()
    n, width = state.shape
    pair = as_index(pair, "pair")
    m = pair.numel() // 2
    if pair.shape != (2, m) or merged.shape != (m, width):
        raise ValueError(f"Expected 'pair' (2, m) and 'merged' (m, {width}) (got "
                         f"{tuple(pair.shape)}, {tuple(merged.shape)})")
    step, target = as_index(step, "step"), as_index(target, "target")
    unit_batch = as_index(unit_batch, "unit_batch")
    expect_shape("step", step, (n,))
    expect_shape("target", target, (m,))
    expect_shape("unit_batch", unit_batch, (n,))
    expect_shape("units", units, (excess.numel(),))
    new_state = state.new_empty(n - m, width)
    new_batch = torch.empty(n - m, dtype=torch.long)
    is_b = torch.empty(max(n, 1), dtype=torch.uint8)
    status = int(function(_SET, "dht_budget_compact", I64, PTR, I64, I64, PTR, I64, PTR, PTR, PTR,
                          PTR, PTR, PTR, PTR, PTR, I64, PTR, I64, PTR)(
        pointer(state), n, width * state.element_size(), pointer(pair), m, pointer(step),
        pointer(target), pointer(merged, state.dtype), pointer(new_state), pointer(unit_batch),
        pointer(new_batch), pointer(excess, torch.long), pointer(units, torch.long),
        excess.numel(), pointer(labels, torch.long), labels.numel(), pointer(is_b)))
    _raise_compact(status, n, m, excess.numel())
    return new_state, new_batch


def _raise_compact(status: int, n: int, m: int, num_images: int) -> None:
    if status == -1:
        raise IndexError(f"Expected 'pair' in [0, {n}) and 'step', 'target' in [0, {n - m})")
    if status == -2:
        raise IndexError(f"Expected 'unit_batch' in [0, {num_images})")
    if status == -3:
        raise IndexError(f"Expected 'labels' in [0, {n})")
    if status == -4:
        raise IndexError(f"Expected 'edges' in [0, {n})")


def budget_kept(labels: Tensor, size: Tensor, num_blocks: int) -> Tensor:
    """Bool (k,): the largest input token of every output token (ties: the first)."""
    labels, size = as_index(labels, "labels"), as_index(size, "size")
    k, n = labels.numel(), max(int(num_blocks), 1)
    expect_shape("size", size, (k,))
    largest, first = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
    kept = torch.empty(k, dtype=torch.bool)
    status = function(_SET, "dht_budget_kept", I64, PTR, PTR, I64, I64, PTR, PTR, PTR)(
        pointer(labels), pointer(size), k, n, pointer(largest), pointer(first), pointer(kept))
    if status < 0:
        raise IndexError(f"Expected 'labels' in [0, {n})")
    return kept


def grid_pieces(block_of: Tensor, height: int, width: int) -> tuple[Tensor, int]:
    """Canonical labels (N,) of the connected pieces of the blocks on the 4-neighbour grid
    of row-major ``height × width`` images, and their number."""
    block_of = as_index(block_of, "labels")
    n = block_of.numel()
    b = images_of(n, height, width)
    labels = torch.empty(n, dtype=torch.long)
    k = function(_SET, "dht_grid_pieces", I64, PTR, I64, I64, I64, PTR)(
        pointer(block_of), b, int(height), int(width), pointer(labels))
    return labels, int(k)


def first_occurrence_groups(key: Tensor, num_slots: int) -> tuple[Tensor, Tensor, int]:
    """Labels of ``key`` numbered by first occurrence, each group's first position, and
    the group count."""
    key = as_index(key, "key")
    s = key.numel()
    rank = torch.empty(max(int(num_slots), 1), dtype=torch.long)
    labels, first = torch.empty(s, dtype=torch.long), torch.empty(s, dtype=torch.long)
    k = int(function(_SET, "dht_first_occurrence_groups", I64, PTR, I64, I64, PTR, PTR, PTR)(
        pointer(key), s, int(num_slots), pointer(rank), pointer(labels), pointer(first)))
    if k < 0:
        raise IndexError(f"Expected 'key' in [0, {int(num_slots)})")
    return labels, first[:k], k


def grid_region_stats(labels: Tensor, num_blocks: int, num_images: int, height: int,
                      width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per block of the row-major pixel labels: the box (K, 4) ``(ymin, xmin, ymax, xmax)``,
    the integer sums (K, 2) of its rows and columns, and its (first) image (K,)."""
    labels = as_index(labels, "labels")
    if images_of(labels.numel(), height, width) != int(num_images):
        raise ValueError(f"Expected 'labels' of the {num_images}·{height}·{width} pixels "
                         f"(got {labels.numel()})")
    k = int(num_blocks)
    box = torch.empty(k, 4, dtype=torch.long)
    sums = torch.empty(k, 2, dtype=torch.long)
    image = torch.empty(k, dtype=torch.long)
    status = function(_SET, "dht_grid_region_stats", I64, PTR, I64, I64, I64, I64, PTR, PTR, PTR)(
        pointer(labels), int(num_images), int(height), int(width), k, pointer(box),
        pointer(sums), pointer(image))
    if status < 0:
        raise IndexError(f"Expected 'labels' in [0, {k})")
    return box, sums, image


def _slot_ic(slot_ic: Tensor, s: int) -> tuple[Tensor, int]:
    # A float32 slot IC of s entries: contiguous, or one value broadcast (stride 0).
    if slot_ic.dtype != torch.float32:
        raise ValueError(f"Expected a float32 'slot_ic' (got {slot_ic.dtype})")
    expect_shape("slot_ic", slot_ic, (s,))
    if s > 1 and slot_ic.stride(0) == 0:
        return slot_ic, 0
    return slot_ic.contiguous(), 1


def _ic(ic_new: Tensor) -> Tensor:
    if ic_new.dtype != torch.float32 or ic_new.dim() != 1:
        raise ValueError(f"Expected a float32 'ic_new' (K,) (got {ic_new.dtype}, "
                         f"{tuple(ic_new.shape)})")
    return ic_new.contiguous()


def selector_all_move(labels: Tensor, ic_new: Tensor, slot_ic: Tensor) -> bool:
    """Whether ``ic_new[labels] >= slot_ic`` everywhere (float32 ICs)."""
    labels, ic_new = as_index(labels, "labels"), _ic(ic_new)
    slot_ic, stride = _slot_ic(slot_ic, labels.numel())
    ok = int(function(_SET, "dht_selector_all_move", I64, PTR, I64, PTR, I64, PTR, I64)(
        pointer(labels), labels.numel(), pointer(ic_new), ic_new.numel(),
        slot_ic.data_ptr(), stride))
    if ok < 0:
        raise IndexError(f"Expected 'labels' in [0, {ic_new.numel()}) (the blocks of the state)")
    return bool(ok)


def selector_update(labels: Tensor, current: Optional[Tensor], ic_new: Tensor, slot_ic: Tensor,
                    rows: Optional[Tensor], offset: int, active: Optional[Tensor],
                    slot_batch: Tensor, num_images: int, *,
                    in_place: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The slots' new IC (float32), statistics row and current block, and the graphs that
    improved (bool (B,)); see ``dht_selector_update``.

    ``in_place``: the new IC, rows and current blocks are written into ``slot_ic``,
    ``rows`` and ``current`` themselves (the kernel reads every entry before it writes
    it) when these are contiguous tensors of the right dtype (else new ones are made);
    only for tensors the caller owns.

    Raises
    ------
    ValueError
        For slot tensors of different lengths, or an ``active`` that is not (B,).
    IndexError
        For ``current``, ``labels`` or ``slot_batch`` out of range (nothing is written).
    """
    labels, ic_new = as_index(labels, "labels"), _ic(ic_new)
    slot_batch = as_index(slot_batch, "batch")
    s, num_images = slot_batch.numel(), int(num_images)
    own = in_place and _writable(slot_ic, torch.float32, s)
    slot_ic, stride = _slot_ic(slot_ic, s)
    out_ic = slot_ic if own else torch.empty(s, dtype=torch.float32)
    cur = as_index(current, "current") if current is not None else None
    if cur is not None:
        expect_shape("current", cur, (s,))
    rws = as_index(rows, "rows") if rows is not None else None
    if rws is not None:
        expect_shape("rows", rws, (s,))
    out_row = rws if in_place and _writable(rows, torch.long, s) else torch.empty(
        s, dtype=torch.long)
    if current is None:
        out_c = None
    else:
        out_c = cur if in_place and _writable(current, torch.long, s) else torch.empty(
            s, dtype=torch.long)
    improved = torch.empty(num_images, dtype=torch.bool)
    act = None
    if active is not None:
        if active.device.type != "cpu" or tuple(active.shape) != (num_images,):
            raise ValueError(f"Expected 'active' of shape ({num_images},) on the CPU (got "
                             f"{tuple(active.shape)} on {active.device})")
        act = active.to(torch.bool).contiguous()
    status = int(function(_SET, "dht_selector_update", I64, PTR, I64, PTR, I64, PTR, I64, PTR,
                          I64, PTR, I64, PTR, PTR, I64, PTR, PTR, PTR, PTR)(
        pointer(labels), labels.numel(), _ptr(cur), s, pointer(ic_new), ic_new.numel(),
        slot_ic.data_ptr(), stride, _ptr(rws), int(offset),
        _ptr(act, torch.bool), pointer(slot_batch), num_images, pointer(out_ic, torch.float32),
        pointer(out_row), _ptr(out_c), pointer(improved, torch.bool)))
    if status == -1:
        raise IndexError(f"Expected 'current' in [0, {labels.numel()}) (the previous level's "
                         "blocks)")
    if status == -2:
        raise IndexError(f"Expected 'labels' in [0, {ic_new.numel()}) (the blocks of the state)")
    if status == -3:
        raise IndexError(f"Expected 'batch' in [0, {num_images})")
    return out_ic, out_row, (labels if out_c is None else out_c), improved


def _writable(t: Optional[Tensor], dtype: torch.dtype, n: int) -> bool:
    # An output the kernel may write over: its own memory, contiguous, n entries.
    return (t is not None and t.dtype == dtype and t.dim() == 1 and t.numel() == n
            and t.is_contiguous() and (n == 0 or t.stride(0) == 1))


class BudgetWorkspace:
    """The buffers of the budget's rounds, allocated once per call (sized by the first
    round: units and edges only shrink), with the round's two kernels.

    ``state``, ``unit_batch`` and ``edges`` go back and forth between two buffers each
    (a round reads one and writes the other); the tensors returned are views that stay
    valid until the round after next."""

    def __init__(self, state: Tensor, edges: Tensor, num_images: int):
        n, width = state.shape
        e = edges.shape[1]
        self.width, self.row_bytes = width, width * state.element_size()
        self.dtype, self.capacity = state.dtype, (n, e, int(num_images))
        long, byte = torch.long, torch.uint8
        self.keys = torch.empty(3 * e, dtype=long)
        self.best = torch.empty(max(n, 1), dtype=long)
        self.matched = torch.empty(max(n, 1), dtype=byte)
        self.chosen = torch.empty(max(e, 1), dtype=byte)
        self.start = torch.empty(max(num_images, 1), dtype=long)
        self.pair = torch.empty(max(n, 1), dtype=long)
        self.step = torch.empty(max(n, 1), dtype=long)
        self.target = torch.empty(max(n // 2, 1), dtype=long)
        self.is_b = torch.empty(max(n, 1), dtype=byte)
        # dht_pairs_coalesce's scratch: 5 (n - m) + 1 + e <= 5 n + 1 + e.
        self.scratch = torch.empty(5 * max(n, 1) + 1 + max(e, 1), dtype=long)
        self.edge_buffers = [torch.empty(max(2 * e, 1), dtype=long) for _ in range(2)]
        self.state_buffers = [state.new_empty(max(n, 1) * width) for _ in range(2)]
        self.batch_buffers = [torch.empty(max(n, 1), dtype=long) for _ in range(2)]
        self.flip = 0
        # The buffers' addresses, once (a pointer() per argument and round costs ~1 us).
        self._p = {name: pointer(getattr(self, name)) for name in
                   ("keys", "best", "matched", "chosen", "start", "pair", "step", "target",
                    "is_b", "scratch")}
        self._round = function(_SET, "dht_budget_round", I64, PTR, I64, PTR, PTR, I64, I64, PTR,
                               PTR, I64, PTR, PTR, I64, I64, PTR, PTR, PTR, PTR, PTR, PTR, PTR,
                               PTR)
        self._contract = function(_SET, "dht_budget_contract", I64, PTR, I64, I64, PTR, I64, PTR,
                                  PTR, PTR, PTR, PTR, PTR, PTR, PTR, I64, PTR, I64, PTR, PTR, I64,
                                  PTR, PTR)
        self.merges = self.n = None

    def round(self, edges: Tensor, cost: Tensor, union: Tensor, tie: Optional[Tensor],
              unit_batch: Tensor, units: Tensor, excess: Tensor, *, packed: bool,
              passes: int) -> Tensor:
        """:func:`budget_round` into the workspace: the merged pairs (2, m) (``step`` and
        ``target`` are kept for :meth:`contract`)."""
        if cost.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"Expected float32 or float64 costs (got {cost.dtype})")
        if edges.dim() != 2 or edges.shape[0] != 2:
            raise ValueError(f"Expected 'edges' of shape (2, e) (got {tuple(edges.shape)})")
        e = edges.shape[1]
        n = unit_batch.numel()
        b = units.numel()
        if n > self.capacity[0] or e > self.capacity[1] or b > self.capacity[2]:
            raise ValueError(f"Expected at most {self.capacity} units, edges and images for "
                             f"this workspace (got {(n, e, b)})")
        expect_shape("cost", cost, (e,))
        expect_shape("union", union, (e,))
        expect_shape("excess", excess, (b,))
        cost = cost.contiguous()
        # The union sizes as the tensor path's key takes them (torch's .long(): the same
        # conversion of any float, NaN and infinities included).
        usize = union.long().contiguous()
        tie_keys = as_index(tie, "tie") if tie is not None else None
        if tie_keys is not None:
            expect_shape("tie", tie_keys, (e,))
        m = int(self._round(
            pointer(edges, torch.long), e, pointer(cost), pointer(usize),
            int(cost.dtype == torch.float64), int(bool(packed)), _ptr(tie_keys),
            pointer(unit_batch, torch.long), n, pointer(units, torch.long),
            pointer(excess, torch.long), b, int(passes),
            *(self._p[name] for name in ("keys", "best", "matched", "chosen", "start", "pair",
                                         "step", "target"))))
        if m == -1:
            raise IndexError(f"Expected 'edges' in [0, {n})")
        if m == -2:
            raise IndexError(f"Expected 'unit_batch' in [0, {b})")
        self.merges, self.n = m, n
        return self.pair[:2 * m].view(2, m)

    def contract(self, state: Tensor, merged: Tensor, unit_batch: Tensor, excess: Tensor,
                 units: Tensor, labels: Tensor, edges: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """After :meth:`round`: the compacted state, unit batch and contracted edges;
        ``excess``, ``units`` and ``labels`` are updated in place."""
        m, n = self.merges, self.n
        if m is None:
            raise RuntimeError("BudgetWorkspace.contract before round")
        if state.shape != (n, self.width) or state.dtype != self.dtype:
            raise ValueError(f"Expected 'state' ({n}, {self.width}) {self.dtype} (got "
                             f"{tuple(state.shape)} {state.dtype})")
        if tuple(merged.shape) != (m, self.width):
            raise ValueError(f"Expected 'merged' of shape ({m}, {self.width}) (got "
                             f"{tuple(merged.shape)})")
        if edges.dim() != 2 or edges.shape[0] != 2 or edges.shape[1] > self.capacity[1]:
            raise ValueError(f"Expected 'edges' of shape (2, e <= {self.capacity[1]}) (got "
                             f"{tuple(edges.shape)})")
        expect_shape("unit_batch", unit_batch, (n,))
        expect_shape("units", units, (excess.numel(),))
        merged = merged.to(state.dtype).contiguous()
        side = self.flip
        self.flip ^= 1
        new_state = self.state_buffers[side][:(n - m) * self.width].view(n - m, self.width)
        new_batch = self.batch_buffers[side][:n - m]
        out = self.edge_buffers[side]
        e = edges.shape[1]
        k = int(self._contract(
            pointer(state), n, self.row_bytes, self._p["pair"], m, self._p["step"],
            self._p["target"], pointer(merged), pointer(new_state), pointer(unit_batch, torch.long),
            pointer(new_batch), pointer(excess, torch.long), pointer(units, torch.long),
            excess.numel(), pointer(labels, torch.long), labels.numel(), self._p["is_b"],
            pointer(edges, torch.long), e, self._p["scratch"], pointer(out)))
        _raise_compact(k, n, m, excess.numel())
        self.merges = None
        return new_state, new_batch, out[:2 * k].view(2, k)


def grid_pieces_of_slots(rows: Optional[Tensor], node_slot: Optional[Tensor], num_pixels: int,
                         height: int, width: int) -> tuple[Tensor, int, Tensor]:
    """:func:`grid_pieces` of the blocks ``rows[node_slot]`` (either may be None: the
    identity) of ``num_pixels`` pixels, and the slot of the last pixel of every piece."""
    n = int(num_pixels)
    b = images_of(n, height, width)
    r = as_index(rows, "rows") if rows is not None else None
    ns = as_index(node_slot, "node_slot") if node_slot is not None else None
    if ns is not None:
        expect_shape("node_slot", ns, (n,))
    if r is not None and r.numel() == 0 and n > 0:  # (its NULL address means "no rows")
        raise IndexError("Expected 'node_slot' in [0, 0) (the slots): 'rows' is empty")
    labels = torch.empty(n, dtype=torch.long)
    slot = torch.empty(max(n, 1), dtype=torch.long)  # only the first k entries are touched
    keys = torch.empty(max(2 * int(width), 1), dtype=torch.long)
    k = int(function(_SET, "dht_grid_pieces_of_slots", I64, PTR, I64, PTR, I64, I64, I64, PTR,
                     PTR, PTR)(
        _ptr(r), r.numel() if r is not None else 0, _ptr(ns), b, int(height), int(width),
        pointer(labels), pointer(slot), pointer(keys)))
    if k < 0:
        raise IndexError(f"Expected 'node_slot' in [0, {r.numel()}) (the slots)")
    return labels, k, slot[:k].clone()
