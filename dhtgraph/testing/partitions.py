"""Strategies for label vectors and partitions of a finite set ``{0, …, n−1}``."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from ..partition import Partition

__all__ = ["labels", "partitions", "partition_pairs", "coarsenings", "refinements"]

# Labels drawn from a palette of distinct values up to this bound exercise both the
# direct-address and the sort-based path of canonicalize.
_LARGEST_LABEL = 2**40


def _sizes(n: int | None, min_items: int, max_items: int) -> st.SearchStrategy[int]:
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"Expected 'n' to be a non-negative int or None (got {n!r})")
        return st.just(n)
    if not 0 <= min_items <= max_items:
        raise ValueError(f"Expected 0 <= 'min_items' <= 'max_items' (got {min_items}, {max_items})")
    return st.integers(min_items, max_items)


@st.composite
def labels(
    draw,
    n: int | None = None,
    *,
    min_items: int = 0,
    max_items: int = 10,
    max_blocks: int | None = None,
    max_label: int = _LARGEST_LABEL,
) -> torch.Tensor:
    """Arbitrary (non-canonical) non-negative block labels.

    Parameters
    ----------
    n : int, optional
        The number of items; drawn in ``min_items..max_items`` when ``None``.
    min_items, max_items : int, default 0 and 10
        Bounds on ``n`` when it is drawn.
    max_blocks : int, optional
        At most this many distinct labels (default: ``n``).
    max_label : int, default 2**40
        Largest label value. Labels come from a palette of distinct values in
        ``0..max_label``, so both small and huge labels occur.

    Returns
    -------
    SearchStrategy of LongTensor of shape (n,)
        Shrinks towards all-zero labels.
    """
    n = draw(_sizes(n, min_items, max_items))
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    k_max = n if max_blocks is None else max(1, min(n, max_blocks))
    k_max = min(k_max, max_label + 1)
    k = draw(st.integers(1, k_max))
    palette = draw(st.lists(st.integers(0, max_label), min_size=k, max_size=k, unique=True))
    index = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    return torch.tensor(palette, dtype=torch.long)[torch.tensor(index, dtype=torch.long)]


def partitions(
    n: int | None = None,
    *,
    min_items: int = 0,
    max_items: int = 10,
    max_blocks: int | None = None,
) -> st.SearchStrategy[Partition]:
    """Partitions of ``n`` items (canonical, valid).

    Parameters
    ----------
    n : int, optional
        The number of items; drawn in ``min_items..max_items`` when ``None``.
    min_items, max_items : int, default 0 and 10
        Bounds on ``n`` when it is drawn.
    max_blocks : int, optional
        At most this many blocks.

    Returns
    -------
    SearchStrategy of Partition
        Shrinks towards the indiscrete partition ⊤.
    """
    return labels(n, min_items=min_items, max_items=max_items, max_blocks=max_blocks).map(
        Partition.from_labels
    )


@st.composite
def partition_pairs(
    draw,
    n: int | None = None,
    *,
    min_items: int = 0,
    max_items: int = 10,
) -> tuple[Partition, Partition]:
    """Two partitions of the same ``n`` items.

    Half of the time (as drawn) the second is a coarsening of the first, so that
    comparable pairs (``p ≤ q``) occur often, not only by chance.

    Parameters
    ----------
    n : int, optional
        The number of items; drawn in ``min_items..max_items`` when ``None``.
    min_items, max_items : int, default 0 and 10
        Bounds on ``n`` when it is drawn.

    Returns
    -------
    SearchStrategy of tuple (Partition, Partition)
    """
    n = draw(_sizes(n, min_items, max_items))
    first = draw(partitions(n))
    related = draw(st.sampled_from(("independent", "coarser", "finer")))
    if related == "coarser":
        second = draw(coarsenings(first))
    elif related == "finer":
        second = draw(refinements(first))
    else:
        second = draw(partitions(n))
    return first, second


def coarsenings(partition: Partition) -> st.SearchStrategy[Partition]:
    """Partitions that ``partition`` refines (a random grouping of its blocks).

    Parameters
    ----------
    partition : Partition of n items

    Returns
    -------
    SearchStrategy of Partition of n items
        ``q`` with ``partition.refines(q)``; it shrinks towards ⊤.
    """
    return partitions(partition.num_blocks).map(partition.compose)


def refinements(partition: Partition) -> st.SearchStrategy[Partition]:
    """Partitions that refine ``partition`` (its meet with a random partition).

    Parameters
    ----------
    partition : Partition of n items

    Returns
    -------
    SearchStrategy of Partition of n items
        ``r`` with ``r.refines(partition)``: each block of ``partition`` split by a
        random label vector. It shrinks towards ``partition``.
    """
    n = partition.num_items
    # Pairs (block of partition, label) computed here, not by Partition.meet, so that the
    # strategy does not depend on the operation the laws check.
    return labels(n, max_label=n).map(
        lambda split: Partition.from_labels(partition.labels * (n + 1) + split)
    )
