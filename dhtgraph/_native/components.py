"""ctypes bindings of ``components.c`` (callers: :mod:`dhtgraph._union`).

Each function returns the canonical labels (n,) int64 and their number, or ``None``
when an index is out of range (nothing is raised here: the caller then runs its tensor
implementation, whose errors are the documented ones).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, function, pointer

__all__ = ["choice_components", "edge_components", "forest_components"]


def _long(t: Tensor) -> Tensor:
    return t.to(torch.long).contiguous()


def choice_components(choice: Tensor) -> Optional[tuple[Tensor, int]]:
    """Canonical components (n,) int64 of ``v → choice[v]`` and their number."""
    choice = _long(choice)
    n = choice.numel()
    parent, labels = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
    k = function("components", "dht_choice_components", I64, PTR, I64, PTR, PTR)(
        pointer(choice), n, pointer(parent), pointer(labels))
    return None if k < 0 else (labels, int(k))


def edge_components(src: Tensor, dst: Tensor, num_nodes: int) -> Optional[tuple[Tensor, int]]:
    """Canonical components (n,) int64 of the undirected edges (src, dst) and their number."""
    if src.numel() != dst.numel():
        return None
    src, dst = _long(src), _long(dst)
    parent = torch.empty(num_nodes, dtype=torch.long)
    labels = torch.empty(num_nodes, dtype=torch.long)
    k = function("components", "dht_edge_components", I64, PTR, PTR, I64, I64, PTR, PTR)(
        pointer(src), pointer(dst), src.numel(), num_nodes, pointer(parent), pointer(labels))
    return None if k < 0 else (labels, int(k))


def forest_components(forest: Tensor, low: Optional[Tensor] = None,
                      high: Optional[Tensor] = None) -> Optional[tuple[Tensor, int]]:
    """Canonical components (n,) int64 of the min-forest ``v → forest[v]``
    (``forest[v] <= v``) and the edges (low, high), and their number."""
    forest = _long(forest)
    n = forest.numel()
    if low is None or high is None:
        low = high = forest.new_empty(0)
    if low.numel() != high.numel():
        return None
    low, high = _long(low), _long(high)
    parent, labels = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
    k = function("components", "dht_forest_components", I64, PTR, I64, PTR, PTR, I64, PTR,
                 PTR)(pointer(forest), n, pointer(low), pointer(high), low.numel(),
                      pointer(parent), pointer(labels))
    return None if k < 0 else (labels, int(k))
