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
    distinct: bool = True,
) -> tuple[Partition, Partition]:
    """Two partitions of the same ``n`` items, distinct whenever ``n ≥ 2``.

    A third of the time (as drawn) the second is a strict coarsening of the first, a
    third a strict refinement, a third an independent partition, so that comparable
    pairs (``p < q``, ``q < p``) occur often, not only by chance. A drawn pair that
    happens to be equal is repaired by one move of the kind asked for (two blocks
    merged, one item split off, or either), so no draw is wasted on ``p == q``; when
    ``p`` is ⊤ (⊥) there is no strict coarsening (refinement) and a refinement
    (coarsening) is returned instead. Laws that need equal pairs draw them from
    :func:`partitions` directly, or pass ``distinct=False`` (the 0.1.0 behaviour, which
    drew equal pairs about half the time).

    Parameters
    ----------
    n : int, optional
        The number of items; drawn in ``min_items..max_items`` when ``None``.
    min_items, max_items : int, default 0 and 10
        Bounds on ``n`` when it is drawn.
    distinct : bool, default True
        Repair equal pairs (impossible for ``n ≤ 1``: one partition exists).

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
    if distinct and n >= 2 and second == first:
        second = _one_move(draw, first, related)
    return first, second


def _one_move(draw, partition: Partition, related: str) -> Partition:
    # A partition one move from `partition`: two blocks merged (strictly coarser) or one
    # item split off into its own block (strictly finer).
    labels, k = partition.labels, partition.num_blocks
    splittable = (partition.sizes >= 2).nonzero().squeeze(1)
    can_merge, can_split = k >= 2, splittable.numel() > 0
    if related == "independent":
        move = draw(st.sampled_from([m for m, ok in (("merge", can_merge),
                                                      ("split", can_split)) if ok]))
    else:
        move = "merge" if (related == "coarser" and can_merge) or not can_split else "split"
    if move == "merge":
        a = draw(st.integers(0, k - 2))
        b = draw(st.integers(a + 1, k - 1))
        return Partition.from_labels(torch.where(labels == b, a, labels))
    block = int(splittable[draw(st.integers(0, splittable.numel() - 1))])
    members = (labels == block).nonzero().squeeze(1)
    item = int(members[draw(st.integers(0, members.numel() - 1))])
    moved = labels.clone()
    moved[item] = k
    return Partition.from_labels(moved)


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
