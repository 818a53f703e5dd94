"""Argument checks shared by the foundation (messages name the argument and what came)."""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any


def check_count(value: Any, name: str, minimum: int = 0, *, or_none: bool = False,
                hint: str = ""):
    """Return ``value`` as a Python int ≥ ``minimum`` (or None when ``or_none``).

    numpy and torch integers are accepted (``operator.index``).

    Raises
    ------
    TypeError
        For bools and non-integers: "Expected '{name}' to be a positive int (got float 2.5)".
    ValueError
        For values below ``minimum``, with ``hint`` appended when given.
    """
    if value is None and or_none:
        return None
    kind = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
    expected = kind + (" or None" if or_none else "")
    try:
        count = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        count = None
    if count is None:
        raise TypeError(f"Expected '{name}' to be {expected} (got {type(value).__name__} {value!r})")
    if count < minimum:
        raise ValueError(f"Expected '{name}' to be {expected} (got {count}){hint}")
    return int(count)


def check_real(value: Any, name: str, *, minimum: float | None = None,
               strict: bool = False, maximum: float | None = None) -> float:
    """Return ``value`` as a finite Python float (≥ ``minimum``, > it when ``strict``,
    ≤ ``maximum``).

    Any real number is accepted: Python ints and floats, every numpy integer and float
    scalar (``np.float32(1)`` as well as ``np.float64(1)``) and 0-dimensional real torch
    tensors; bools are not numbers here.

    Raises
    ------
    TypeError
        For bools, complex numbers, strings and other non-reals:
        "Expected 'tolerance' to be a real number (got str '1')".
    ValueError
        For NaN, infinities and values out of range: "Expected 'tolerance' to be a finite
        number >= 0 (got -1.0)".
    """
    number = _as_real(value)
    if number is None:
        raise TypeError(f"Expected '{name}' to be a real number (got {type(value).__name__} {value!r})")
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if strict else '>='} {minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    ok = math.isfinite(number)
    if ok and minimum is not None:
        ok = number > minimum if strict else number >= minimum
    if ok and maximum is not None:
        ok = number <= maximum
    if not ok:
        expected = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
        raise ValueError(f"Expected '{name}' to be {expected} (got {number!r})")
    return number


def _as_real(value: Any) -> float | None:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    if isinstance(value, numbers.Real):  # int, float, numpy ints and floats
        return float(value)
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor) and value.dim() == 0 \
            and value.device.type != "meta" and (value.dtype.is_floating_point or (
                not value.dtype.is_complex and value.dtype != torch.bool)):
        return float(value)
    return None


def is_integer_dtype(dtype: Any) -> bool:
    """Whether the torch ``dtype`` holds integers: not floating, complex or bool (the
    dtypes whose values an index conversion ``.long()`` keeps)."""
    import torch

    return not (dtype.is_floating_point or dtype.is_complex or dtype is torch.bool)


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
