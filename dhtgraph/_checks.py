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
