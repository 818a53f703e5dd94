"""ctypes bindings of ``components.c`` (callers: :mod:`dhtgraph._union`)."""

from __future__ import annotations

import torch
from torch import Tensor

from . import I64, PTR, function, pointer

__all__ = ["choice_components", "edge_components"]


def choice_components(choice: Tensor) -> tuple[Tensor, int]:
    """Canonical components (n,) int64 of ``v → choice[v]`` and their number."""
    choice = choice.to(torch.long).contiguous()
    n = choice.numel()
    parent, labels = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long)
    k = function("components", "dht_choice_components", I64, PTR, I64, PTR, PTR)(
        pointer(choice), n, pointer(parent), pointer(labels))
    return labels, int(k)


def edge_components(src: Tensor, dst: Tensor, num_nodes: int) -> tuple[Tensor, int]:
    """Canonical components (n,) int64 of the undirected edges (src, dst) and their number."""
    src, dst = src.to(torch.long).contiguous(), dst.to(torch.long).contiguous()
    parent = torch.empty(num_nodes, dtype=torch.long)
    labels = torch.empty(num_nodes, dtype=torch.long)
    k = function("components", "dht_edge_components", I64, PTR, PTR, I64, I64, PTR, PTR)(
        pointer(src), pointer(dst), src.numel(), num_nodes, pointer(parent), pointer(labels))
    return labels, int(k)
