"""ctypes bindings of ``components.c`` (callers: :mod:`dhtgraph._union`).

Each function returns the canonical labels (n,) int64 and their number, or ``None``
when an index is out of range or not of an integer dtype (nothing is raised here: the
caller then runs its tensor implementation, whose errors are the documented ones).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, as_indices, function, pointer

__all__ = ["choice_components", "edge_components", "forest_components"]


_LONG = torch.long


def choice_components(choice: Tensor) -> Optional[tuple[Tensor, int]]:
    """Canonical components (n,) int64 of ``v → choice[v]`` and their number."""
    found = as_indices(choice=choice)
    if found is None:
        return None
    (choice,) = found
    n = choice.numel()
    parent, labels = torch.empty(n, dtype=_LONG), torch.empty(n, dtype=_LONG)
    k = function("components", "dht_choice_components", I64, PTR, I64, PTR, PTR)(
        pointer(choice, _LONG), n, pointer(parent, _LONG), pointer(labels, _LONG))
    return None if k < 0 else (labels, int(k))


def edge_components(src: Tensor, dst: Tensor, num_nodes: int) -> Optional[tuple[Tensor, int]]:
    """Canonical components (n,) int64 of the undirected edges (src, dst) and their number."""
    if src.numel() != dst.numel():
        return None
    found = as_indices(src=src, dst=dst)
    if found is None or num_nodes < 0:
        return None
    src, dst = found
    parent = torch.empty(num_nodes, dtype=_LONG)
    labels = torch.empty(num_nodes, dtype=_LONG)
    k = function("components", "dht_edge_components", I64, PTR, PTR, I64, I64, PTR, PTR)(
        pointer(src, _LONG), pointer(dst, _LONG), src.numel(), num_nodes,
        pointer(parent, _LONG), pointer(labels, _LONG))
    return None if k < 0 else (labels, int(k))


def forest_components(forest: Tensor, low: Optional[Tensor] = None,
                      high: Optional[Tensor] = None) -> Optional[tuple[Tensor, int]]:
    """Canonical components (n,) int64 of the min-forest ``v → forest[v]``
    (``forest[v] <= v``) and the edges (low, high), and their number."""
    if low is None or high is None:
        low = high = forest.new_empty(0, dtype=_LONG)
    if low.numel() != high.numel():
        return None
    found = as_indices(forest=forest, low=low, high=high)
    if found is None:
        return None
    forest, low, high = found
    n = forest.numel()
    parent, labels = torch.empty(n, dtype=_LONG), torch.empty(n, dtype=_LONG)
    k = function("components", "dht_forest_components", I64, PTR, I64, PTR, PTR, I64, PTR,
                 PTR)(pointer(forest, _LONG), n, pointer(low, _LONG), pointer(high, _LONG),
                      low.numel(), pointer(parent, _LONG), pointer(labels, _LONG))
    return None if k < 0 else (labels, int(k))
