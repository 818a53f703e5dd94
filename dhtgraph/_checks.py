"""Argument checks shared by the foundation (messages name the argument and what came)."""

from __future__ import annotations

import operator
from typing import Any


def check_count(value: Any, name: str, minimum: int = 0) -> int:
    """Return ``value`` as a Python int ≥ ``minimum``; numpy and torch integers are accepted.

    Raises
    ------
    ValueError
        "Expected '{name}' to be an int ≥ {minimum} (got {value!r})" for bools,
        non-integers and values below ``minimum``.
    """
    try:
        count = operator.index(value)
    except TypeError:
        count = None
    if isinstance(value, bool) or count is None or count < minimum:
        kind = "a non-negative int" if minimum == 0 else ("a positive int" if minimum == 1
                                                          else f"an int ≥ {minimum}")
        raise ValueError(f"Expected '{name}' to be {kind} (got {value!r})")
    return count


def check_edge_index(edge_index: Any, num_nodes: int, name: str = "edge_index"):
    """Return ``edge_index`` as a LongTensor of shape (2, E) with values in ``0..num_nodes−1``.

    Raises
    ------
    ValueError
        For another shape or an out-of-range node id (costs one host sync).
    """
    from torch import Tensor

    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"Expected '{name}' to have shape (2, E) (got {got})")
    if edge_index.dtype.is_floating_point or edge_index.dtype.is_complex:
        raise TypeError(f"Expected '{name}' to have an integer dtype (got {edge_index.dtype})")
    edge_index = edge_index.long()
    if edge_index.numel():
        lo, hi = (int(v) for v in edge_index.aminmax())
        if lo < 0 or hi >= num_nodes:
            raise ValueError(f"Expected '{name}' values in 0..{num_nodes - 1} (got {lo}..{hi})")
    return edge_index
