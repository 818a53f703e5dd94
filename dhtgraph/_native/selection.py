"""ctypes bindings of ``selection.c`` (callers: :mod:`dhtgraph.selection.budget`,
:mod:`dhtgraph.selection.select`, :mod:`dhtgraph.nn.tokens`).

Every function takes contiguous CPU tensors (converted here where needed) and returns
new tensors; the float tensors it reads are only compared or copied, never computed on.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, function, pointer

__all__ = ["BudgetWorkspace", "coalesce_pairs", "budget_round", "budget_compact", "budget_kept", "grid_pieces",
           "first_occurrence_groups", "grid_region_stats", "grid_pieces_of_slots",
           "selector_all_move", "selector_update"]

_SET = "selection"
_NULL = None


def _long(t: Tensor) -> Tensor:
    return t.to(torch.long).contiguous()


def coalesce_pairs(src: Tensor, dst: Tensor, num_nodes: int, *, relabel: Optional[Tensor] = None,
                   undirected: bool = False) -> Tensor:
    """Coalesced pairs (2, k): ``(relabel[src], relabel[dst])`` (or the pairs themselves),
    self-loops dropped, unique, sorted by (lo, hi); with ``undirected`` each pair as
    (min, max). ``num_nodes`` bounds the (relabelled) ends."""
    src, dst = _long(src), _long(dst)
    m = src.numel()
    n = max(int(num_nodes), 1)
    count = torch.empty(n + 1, dtype=torch.long)
    tmp = torch.empty(2 * m, dtype=torch.long)
    out = torch.empty(2 * m, dtype=torch.long)
    rel = pointer(_long(relabel)) if relabel is not None else _NULL
    k = int(function(_SET, "dht_coalesce_pairs", I64, PTR, PTR, I64, PTR, I64, I64, PTR, PTR,
                     PTR, PTR)(
        pointer(src), pointer(dst), m, rel, n, int(bool(undirected)), pointer(count),
        pointer(tmp), _offset(tmp, m), pointer(out)))
    return out[:2 * k].view(2, k)


def _offset(t: Tensor, elements: int) -> ctypes.c_void_p:
    # The address of element `elements` of a contiguous 1-D tensor.
    return ctypes.c_void_p(t.data_ptr() + elements * t.element_size())


def budget_round(edges: Tensor, cost: Tensor, union: Tensor, tie: Optional[Tensor],
                 unit_batch: Tensor, units: Tensor, excess: Tensor, *, packed: bool,
                 passes: int) -> tuple[Tensor, Tensor, Tensor]:
    """One round's merges of the budget: ``(pair (2, m), step (n,), target (m,))``.

    ``edges`` (2, e) unique pairs a < b sorted; ``cost``, ``union`` (e,) float32 or
    float64 (the same dtype); ``tie`` (e,) int64 random tie keys or None (the hash of the
    positions within the image); ``unit_batch`` (n,), ``units``, ``excess`` (B,)."""
    edges = _long(edges)
    e = edges.shape[1]
    cost, union = cost.contiguous(), union.to(cost.dtype).contiguous()
    if cost.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"Expected float32 or float64 costs (got {cost.dtype})")
    unit_batch, units, excess = _long(unit_batch), _long(units), _long(excess)
    n = unit_batch.numel()
    num_images = units.numel()
    keys = torch.empty(3 * e, dtype=torch.long)
    best = torch.empty(max(n, 1), dtype=torch.long)
    matched = torch.empty(max(n, 1), dtype=torch.uint8)
    chosen = torch.empty(max(e, 1), dtype=torch.uint8)
    start = torch.empty(max(num_images, 1), dtype=torch.long)
    pair = torch.empty(max(n, 1), dtype=torch.long)
    step = torch.empty(n, dtype=torch.long)
    target = torch.empty(max(n // 2, 1), dtype=torch.long)
    t = pointer(_long(tie)) if tie is not None else _NULL
    m = int(function(_SET, "dht_budget_round", I64, PTR, I64, PTR, PTR, I64, I64, PTR, PTR, I64,
                     PTR, PTR, I64, I64, PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR)(
        pointer(edges), e, pointer(cost), pointer(union), int(cost.dtype == torch.float64),
        int(bool(packed)), t, pointer(unit_batch), n, pointer(units), pointer(excess),
        num_images, int(passes), pointer(keys), pointer(best), pointer(matched), pointer(chosen),
        pointer(start), pointer(pair), pointer(step), pointer(target)))
    return pair[:2 * m].view(2, m), step, target[:m]


def budget_compact(state: Tensor, pair: Tensor, step: Tensor, target: Tensor, merged: Tensor,
                   unit_batch: Tensor, excess: Tensor, units: Tensor,
                   labels: Tensor) -> tuple[Tensor, Tensor]:
    """After :func:`budget_round`: the compacted state (n - m, width) and unit batch;
    ``excess``, ``units`` (B,) and ``labels`` (k,) are updated in place (int64, contiguous,
    owned by the caller)."""
    state, merged = state.contiguous(), merged.to(state.dtype).contiguous()
    n, width = state.shape
    m = pair.shape[1]
    pair = _long(pair)
    new_state = state.new_empty(n - m, width)
    new_batch = torch.empty(n - m, dtype=torch.long)
    is_b = torch.empty(max(n, 1), dtype=torch.uint8)
    for t in (excess, units, labels):
        if t.dtype != torch.long or not t.is_contiguous():
            raise ValueError("Expected int64 contiguous excess, units and labels")
    function(_SET, "dht_budget_compact", None, PTR, I64, I64, PTR, I64, PTR, PTR, PTR, PTR, PTR,
             PTR, PTR, PTR, PTR, I64, PTR)(
        pointer(state), n, width * state.element_size(), pointer(pair), m, pointer(_long(step)),
        pointer(_long(target)), pointer(merged), pointer(new_state), pointer(_long(unit_batch)),
        pointer(new_batch), pointer(excess), pointer(units), pointer(labels), labels.numel(),
        pointer(is_b))
    return new_state, new_batch


def budget_kept(labels: Tensor, size: Tensor, num_blocks: int) -> Tensor:
    """Bool (k,): the largest input token of every output token (ties: the first)."""
    labels, size = _long(labels), _long(size)
    k, n = labels.numel(), max(int(num_blocks), 1)
    largest, first = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
    kept = torch.empty(k, dtype=torch.bool)
    function(_SET, "dht_budget_kept", None, PTR, PTR, I64, I64, PTR, PTR, PTR)(
        pointer(labels), pointer(size), k, n, pointer(largest), pointer(first), pointer(kept))
    return kept


def grid_pieces(block_of: Tensor, height: int, width: int) -> tuple[Tensor, int]:
    """Canonical labels (N,) of the connected pieces of the blocks on the 4-neighbour grid
    of row-major ``height × width`` images, and their number."""
    block_of = _long(block_of)
    n = block_of.numel()
    b = n // (height * width) if height * width else 0
    labels = torch.empty(n, dtype=torch.long)
    k = function(_SET, "dht_grid_pieces", I64, PTR, I64, I64, I64, PTR)(
        pointer(block_of), b, int(height), int(width), pointer(labels))
    return labels, int(k)


def first_occurrence_groups(key: Tensor, num_slots: int) -> tuple[Tensor, Tensor, int]:
    """Labels of ``key`` numbered by first occurrence, each group's first position, and
    the group count."""
    key = _long(key)
    s = key.numel()
    rank = torch.empty(max(int(num_slots), 1), dtype=torch.long)
    labels, first = torch.empty(s, dtype=torch.long), torch.empty(s, dtype=torch.long)
    k = int(function(_SET, "dht_first_occurrence_groups", I64, PTR, I64, I64, PTR, PTR, PTR)(
        pointer(key), s, int(num_slots), pointer(rank), pointer(labels), pointer(first)))
    return labels, first[:k], k


def grid_region_stats(labels: Tensor, num_blocks: int, num_images: int, height: int,
                      width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per block of the row-major pixel labels: the box (K, 4) ``(ymin, xmin, ymax, xmax)``,
    the integer sums (K, 2) of its rows and columns, and its (first) image (K,)."""
    labels = _long(labels)
    k = int(num_blocks)
    box = torch.empty(k, 4, dtype=torch.long)
    sums = torch.empty(k, 2, dtype=torch.long)
    image = torch.empty(k, dtype=torch.long)
    function(_SET, "dht_grid_region_stats", None, PTR, I64, I64, I64, I64, PTR, PTR, PTR)(
        pointer(labels), int(num_images), int(height), int(width), k, pointer(box),
        pointer(sums), pointer(image))
    return box, sums, image


def _ic_pointer(slot_ic: Tensor) -> tuple[ctypes.c_void_p, int]:
    # A float32 slot IC: contiguous, or one value broadcast (stride 0).
    if slot_ic.dim() == 1 and slot_ic.numel() > 1 and slot_ic.stride(0) == 0:
        return ctypes.c_void_p(slot_ic.data_ptr()), 0
    return pointer(slot_ic.contiguous()), 1


def selector_all_move(labels: Tensor, ic_new: Tensor, slot_ic: Tensor) -> bool:
    """Whether ``ic_new[labels] >= slot_ic`` everywhere (float32 ICs)."""
    labels, ic_new = _long(labels), ic_new.contiguous()
    slot_ic = slot_ic if slot_ic.stride(0) == 0 else slot_ic.contiguous()
    ic_ptr, stride = _ic_pointer(slot_ic)
    return bool(function(_SET, "dht_selector_all_move", I64, PTR, I64, PTR, PTR, I64)(
        pointer(labels), labels.numel(), pointer(ic_new), ic_ptr, stride))


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
    """
    labels, ic_new, slot_batch = _long(labels), ic_new.contiguous(), _long(slot_batch)
    s = slot_batch.numel()
    own = in_place and _writable(slot_ic, torch.float32, s)
    slot_ic = slot_ic if slot_ic.stride(0) == 0 else slot_ic.contiguous()
    ic_ptr, stride = _ic_pointer(slot_ic)
    out_ic = slot_ic if own else torch.empty(s, dtype=torch.float32)
    cur = _long(current) if current is not None else None
    rws = _long(rows) if rows is not None else None
    out_row = rws if in_place and _writable(rows, torch.long, s) else torch.empty(
        s, dtype=torch.long)
    if current is None:
        out_c = None
    else:
        out_c = cur if in_place and _writable(current, torch.long, s) else torch.empty(
            s, dtype=torch.long)
    improved = torch.empty(int(num_images), dtype=torch.bool)
    act = active.to(torch.bool).contiguous() if active is not None else None
    function(_SET, "dht_selector_update", None, PTR, PTR, I64, PTR, PTR, I64, PTR, I64, PTR, PTR,
             I64, PTR, PTR, PTR, PTR)(
        pointer(labels), pointer(cur) if cur is not None else _NULL, s, pointer(ic_new), ic_ptr,
        stride, pointer(rws) if rws is not None else _NULL, int(offset),
        pointer(act) if act is not None else _NULL, pointer(slot_batch), int(num_images),
        pointer(out_ic), pointer(out_row), pointer(out_c) if out_c is not None else _NULL,
        pointer(improved))
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
        self.count = torch.empty(n + 1, dtype=long)
        self.tmp = torch.empty(max(2 * e, 1), dtype=long)
        self.edge_buffers = [torch.empty(max(2 * e, 1), dtype=long) for _ in range(2)]
        self.state_buffers = [state.new_empty(max(n, 1) * width) for _ in range(2)]
        self.batch_buffers = [torch.empty(max(n, 1), dtype=long) for _ in range(2)]
        self.flip = 0
        # The buffers' addresses, once (a pointer() per argument and round costs ~1 us).
        self._p = {name: pointer(getattr(self, name)) for name in
                   ("keys", "best", "matched", "chosen", "start", "pair", "step", "target",
                    "is_b", "count", "tmp")}
        self._round = function(_SET, "dht_budget_round", I64, PTR, I64, PTR, PTR, I64, I64, PTR,
                               PTR, I64, PTR, PTR, I64, I64, PTR, PTR, PTR, PTR, PTR, PTR, PTR,
                               PTR)
        self._contract = function(_SET, "dht_budget_contract", I64, PTR, I64, I64, PTR, I64, PTR,
                                  PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, I64, PTR, PTR, I64,
                                  PTR, PTR, PTR)

    def round(self, edges: Tensor, cost: Tensor, union: Tensor, tie: Optional[Tensor],
              unit_batch: Tensor, units: Tensor, excess: Tensor, *, packed: bool,
              passes: int) -> Tensor:
        """:func:`budget_round` into the workspace: the merged pairs (2, m) (``step`` and
        ``target`` are kept for :meth:`contract`)."""
        if cost.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"Expected float32 or float64 costs (got {cost.dtype})")
        e = edges.shape[1]
        n = unit_batch.numel()
        cost, union = cost.contiguous(), union.to(cost.dtype).contiguous()
        t = pointer(_long(tie)) if tie is not None else _NULL
        m = int(self._round(
            pointer(edges), e, pointer(cost), pointer(union), int(cost.dtype == torch.float64),
            int(bool(packed)), t, pointer(unit_batch), n, pointer(units), pointer(excess),
            units.numel(), int(passes), *(self._p[name] for name in
                                          ("keys", "best", "matched", "chosen", "start", "pair",
                                           "step", "target"))))
        self.merges, self.n = m, n
        return self.pair[:2 * m].view(2, m)

    def contract(self, state: Tensor, merged: Tensor, unit_batch: Tensor, excess: Tensor,
                 units: Tensor, labels: Tensor, edges: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """After :meth:`round`: the compacted state, unit batch and contracted edges;
        ``excess``, ``units`` and ``labels`` are updated in place."""
        m, n = self.merges, self.n
        merged = merged.to(state.dtype).contiguous()
        side = self.flip
        self.flip ^= 1
        new_state = self.state_buffers[side][:(n - m) * self.width].view(n - m, self.width)
        new_batch = self.batch_buffers[side][:n - m]
        out = self.edge_buffers[side]
        e = edges.shape[1]
        k = int(self._contract(
            pointer(state), n, self.row_bytes, self._p["pair"], m, self._p["step"],
            self._p["target"], pointer(merged), pointer(new_state), pointer(unit_batch),
            pointer(new_batch), pointer(excess), pointer(units), pointer(labels), labels.numel(),
            self._p["is_b"], pointer(edges), e, self._p["count"], self._p["tmp"],
            pointer(out)))
        return new_state, new_batch, out[:2 * k].view(2, k)


def grid_pieces_of_slots(rows: Optional[Tensor], node_slot: Optional[Tensor], num_pixels: int,
                         height: int, width: int) -> tuple[Tensor, int, Tensor]:
    """:func:`grid_pieces` of the blocks ``rows[node_slot]`` (either may be None: the
    identity) of ``num_pixels`` pixels, and the slot of the last pixel of every piece."""
    n = int(num_pixels)
    b = n // (height * width) if height * width else 0
    labels = torch.empty(n, dtype=torch.long)
    slot = torch.empty(max(n, 1), dtype=torch.long)  # only the first k entries are touched
    keys = torch.empty(max(2 * int(width), 1), dtype=torch.long)
    r = _long(rows) if rows is not None else None
    ns = _long(node_slot) if node_slot is not None else None
    k = int(function(_SET, "dht_grid_pieces_of_slots", I64, PTR, PTR, I64, I64, I64, PTR, PTR,
                     PTR)(
        pointer(r) if r is not None else _NULL, pointer(ns) if ns is not None else _NULL, b,
        int(height), int(width), pointer(labels), pointer(slot), pointer(keys)))
    return labels, k, slot[:k].clone()
