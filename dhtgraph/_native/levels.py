"""ctypes bindings of ``levels.c`` (callers: :mod:`dhtgraph.hierarchy.build`,
:mod:`dhtgraph.selection.criteria`).

Inputs are CPU tensors of the documented dtypes and shapes (the callers check
:func:`dhtgraph._native.enabled` and take their tensor path otherwise); a tensor of
another dtype or shape raises ``ValueError`` naming it, an index out of range
``IndexError``. Every result is bit for bit the tensor code's (the tests compare both
paths). Nothing here carries gradient: the float inputs are read, the outputs are new.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from . import F32, I64, PTR, as_index, function, is_int64, pointer

__all__ = ["levels_start", "levels_step", "information_criterion_end"]

_SET = "levels"
_ERR_INDEX, _ERR_TABLE = -1, -2
_LONG, _BOOL, _F32 = torch.long, torch.bool, torch.float32


def _vector(name: str, t: Tensor, dtype: torch.dtype, n: int) -> Tensor:
    # ``t`` as a contiguous (n,) tensor of ``dtype`` (no copy when it is one).
    if not isinstance(t, Tensor) or t.dtype != dtype or t.shape != (n,):
        raise ValueError(f"Expected '{name}' to be a {dtype} tensor of shape ({n},) (got "
                         f"{getattr(t, 'dtype', type(t).__name__)} of shape "
                         f"{tuple(getattr(t, 'shape', ()))})")
    return t if t.is_contiguous() else t.contiguous()


def _int64(name: str, value) -> int:
    if not is_int64(value):
        raise ValueError(f"Expected '{name}' to be an int in the int64 range (got {value!r})")
    return value


def _flags(rc: int) -> tuple[bool, bool]:
    return bool(rc & 1), bool(rc & 2)


def levels_start(nodes: Tensor, level_cap: Tensor, min_blocks: int
                 ) -> tuple[Tensor, tuple[bool, bool]]:
    """``active = (nodes > min_blocks) & (level_cap > 0)`` (B,) bool and
    ``(active.any(), active.all())``; ``nodes`` and ``level_cap`` (B,) int64."""
    b = nodes.numel() if isinstance(nodes, Tensor) else 0
    nodes = _vector("nodes", nodes, _LONG, b)
    level_cap = _vector("level_cap", level_cap, _LONG, b)
    min_blocks = _int64("min_blocks", min_blocks)
    active = torch.empty(b, dtype=_BOOL)
    rc = function(_SET, "dht_levels_start", I64, I64, PTR, PTR, I64, PTR)(
        b, pointer(nodes), pointer(level_cap), min_blocks, pointer(active))
    return active, _flags(rc)


def levels_step(active: Tensor, counts: Tensor, batch: Tensor, improved: Optional[Tensor],
                level_cap: Tensor, min_blocks: int, level: int, fraction: float,
                levels: Tensor, stalled: Tensor) -> tuple[Tensor, Tensor, tuple[bool, bool]]:
    """One level's update of the B graphs (``build_hierarchy``'s bookkeeping).

    Parameters
    ----------
    active : BoolTensor of shape (B,)
        Graphs that took part in the level.
    counts : LongTensor of shape (B,)
        Blocks of every graph before the level.
    batch : LongTensor of shape (K,)
        Graph of every block after it, in ``[0, B)``.
    improved : BoolTensor of shape (B,) or None
        Graphs whose stopping rules still improve (None: all).
    level_cap : LongTensor of shape (B,)
        Most levels of every graph.
    min_blocks, level : int
        A graph stops at ``≤ min_blocks`` blocks or once ``level_cap ≤ level``.
    fraction : float
        A graph that merged fewer than ``fraction · counts`` blocks stalls (the product
        in float32).
    levels : LongTensor of shape (B,)
        Levels per graph, incremented in place where ``active``.
    stalled : BoolTensor of shape (B,)
        Or-ed in place with the graphs that stalled now.

    Returns
    -------
    (next_active (B,) bool, new_counts (B,) int64, (any, all) of next_active)

    Raises
    ------
    ValueError
        For a tensor of another dtype or shape, or ints outside the int64 range.
    IndexError
        When an entry of ``batch`` is outside ``[0, B)`` (``levels`` and ``stalled``
        are then unchanged).
    """
    b = active.numel() if isinstance(active, Tensor) else 0
    active = _vector("active", active, _BOOL, b)
    counts = _vector("counts", counts, _LONG, b)
    level_cap = _vector("level_cap", level_cap, _LONG, b)
    if improved is not None:
        improved = _vector("improved", improved, _BOOL, b)
    for name, t, dtype in (("levels", levels, _LONG), ("stalled", stalled, _BOOL)):
        _vector(name, t, dtype, b)
        if not t.is_contiguous():
            raise ValueError(f"Expected '{name}' to be contiguous (it is updated in place)")
    if not isinstance(batch, Tensor) or batch.dim() != 1:
        raise ValueError(f"Expected 'batch' of shape (K,) (got "
                         f"{tuple(getattr(batch, 'shape', ()))})")
    batch = as_index(batch, "batch")
    min_blocks, level = _int64("min_blocks", min_blocks), _int64("level", level)
    new_counts = torch.empty(b, dtype=_LONG)
    next_active = torch.empty(b, dtype=_BOOL)
    rc = function(_SET, "dht_levels_step", I64, I64, PTR, I64, PTR, PTR, PTR, PTR, I64, I64,
                  F32, PTR, PTR, PTR, PTR)(
        b, pointer(batch), batch.numel(), pointer(active), pointer(counts),
        None if improved is None else pointer(improved), pointer(level_cap), min_blocks, level,
        float(fraction), pointer(new_counts), pointer(levels), pointer(stalled),
        pointer(next_active))
    if rc == _ERR_INDEX:
        raise IndexError(f"Expected every entry of 'batch' in [0, {b}) (an index out of range)")
    return next_active, new_counts, _flags(rc)


def information_criterion_end(size: Tensor, logdet: Tensor, num_pixels: Union[int, Tensor],
                              penalties: Optional[Tensor] = None,
                              penalty: Optional[Tensor] = None) -> Optional[Tensor]:
    """``-((size / num_pixels) · logdet + P)`` (K,) float32, −∞ where ``size ≤ 1``.

    Parameters
    ----------
    size : integer Tensor of shape (K,)
        Pixels per block (converted to int64).
    logdet : Tensor of shape (K,), float32
        ``log(ι + Π_c 2πσ²_c)`` of every block.
    num_pixels : int or integer Tensor of shape (K,)
        The divisor (rounded to float32, as torch's division does).
    penalties : Tensor of shape (L,), float32, optional
        A penalty table: ``P = penalties[size]``.
    penalty : Tensor of shape (K,), float32, optional
        ``P`` itself (exactly one of ``penalties`` and ``penalty``).

    Returns
    -------
    Tensor of shape (K,), float32, or None when a size is outside ``[0, L)`` of the
    table (the caller then passes ``penalty``).
    """
    if (penalties is None) == (penalty is None):
        raise ValueError("Expected exactly one of 'penalties' and 'penalty'")
    if not isinstance(size, Tensor) or size.dim() != 1:
        raise ValueError(f"Expected 'size' of shape (K,) (got "
                         f"{tuple(getattr(size, 'shape', ()))})")
    size = as_index(size, "size")
    k = size.numel()
    logdet = _vector("logdet", logdet, _F32, k)
    if isinstance(num_pixels, Tensor):
        if num_pixels.shape != (k,):
            raise ValueError(f"Expected 'num_pixels' of shape ({k},) (got "
                             f"{tuple(num_pixels.shape)})")
        divisors, pixels = as_index(num_pixels, "num_pixels"), 0
    else:
        divisors, pixels = None, _int64("num_pixels", num_pixels)
    if penalties is not None:
        if not isinstance(penalties, Tensor) or penalties.dtype != _F32 or penalties.dim() != 1:
            raise ValueError(f"Expected 'penalties' to be a float32 tensor of shape (L,) (got "
                             f"{getattr(penalties, 'dtype', type(penalties).__name__)} of "
                             f"shape {tuple(getattr(penalties, 'shape', ()))})")
        if penalties.numel() == 0:
            return None  # every size is outside an empty table (and its address is NULL)
        penalties = penalties.contiguous()
    else:
        penalty = _vector("penalty", penalty, _F32, k)
    out = torch.empty(k, dtype=_F32)
    rc = function(_SET, "dht_information_criterion", I64, I64, PTR, PTR, I64, PTR, PTR, I64,
                  PTR, PTR)(
        k, pointer(size), pointer(logdet), pixels,
        None if divisors is None else pointer(divisors),
        None if penalties is None else pointer(penalties),
        0 if penalties is None else penalties.numel(),
        None if penalty is None else pointer(penalty), pointer(out))
    return None if rc == _ERR_TABLE else out
