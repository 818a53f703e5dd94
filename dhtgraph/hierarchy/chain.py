"""Hierarchies of partitions: chains ⊥ = π₀ ≤ π₁ ≤ … ≤ π_T (theory/ Definition 9)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from .._checks import check_count
from ..partition import Partition

__all__ = ["Hierarchy"]


class Hierarchy:
    """A chain of partitions of ``n`` items, each refining the next.

    Level 0 is always the discrete partition ⊥ of the items (the pixels). Level ``t ≥ 1``
    is stored *relative* to level ``t − 1``: a partition of the blocks of level ``t − 1``.
    Composing the relative steps gives the absolute partitions of the items, which form
    a chain by construction (theory/ Proposition 6 (c)).

    Parameters
    ----------
    steps : sequence of Partition
        ``steps[t − 1]`` partitions the ``K_{t−1}`` blocks of level ``t − 1``
        (``K_0 = n``), so ``steps[0].num_items == num_items`` and
        ``steps[t].num_items == steps[t − 1].num_blocks``.
    num_items : int
        n, the number of pixels (nodes of the pixel graph).

    Examples
    --------
    >>> h = Hierarchy([Partition.from_labels(torch.tensor([0, 0, 1, 1])),
    ...                Partition.from_labels(torch.tensor([0, 0]))], 4)
    >>> h.num_levels, [h.absolute(t).num_blocks for t in range(3)]
    (3, [4, 2, 1])
    """

    __slots__ = ("steps", "num_items", "_absolute")

    def __init__(self, steps: Sequence[Partition], num_items: int):
        steps = list(steps)
        num_items = check_count(num_items, "num_items")
        expected = num_items
        for t, step in enumerate(steps, start=1):
            if not isinstance(step, Partition):
                raise TypeError(f"Expected 'steps[{t - 1}]' to be a Partition (got {type(step).__name__})")
            if step.num_items != expected:
                raise ValueError(f"Expected 'steps[{t - 1}]' to partition the {expected} blocks of "
                                 f"level {t - 1} (got a partition of {step.num_items} items)")
            expected = step.num_blocks
        self.steps = steps
        self.num_items = num_items
        self._absolute: list[Partition] = []

    @classmethod
    def from_absolute(cls, partitions: Sequence[Partition]) -> "Hierarchy":
        """Build a hierarchy from absolute partitions of the items (levels 1..T).

        Parameters
        ----------
        partitions : sequence of Partition of the same n items
            Each must refine the next; level 0 (⊥) is implicit.

        Raises
        ------
        ValueError
            If a partition does not refine its successor.
        """
        partitions = list(partitions)
        if not partitions:
            raise ValueError("Expected 'partitions' to hold at least one Partition (got none)")
        n = partitions[0].num_items
        steps, previous = [], Partition.discrete(n, device=partitions[0].device)
        for t, current in enumerate(partitions):
            if not previous.refines(current):
                raise ValueError(f"Expected 'partitions' to form a chain: partitions[{t}] does not "
                                 "coarsen the level before it")
            # Each block of the previous level takes the label of its items at this level.
            steps.append(Partition(previous.reduce(current.labels, "min"), current.num_blocks,
                                   canonical=True))
            previous = current
        return cls(steps, n)

    @property
    def num_levels(self) -> int:
        """T + 1, counting ⊥."""
        return len(self.steps) + 1

    def __len__(self) -> int:
        return self.num_levels

    def _check_level(self, t: int) -> int:
        if isinstance(t, bool) or not isinstance(t, int) or not -self.num_levels <= t < self.num_levels:
            raise IndexError(f"Expected level 't' in 0..{self.num_levels - 1} (got {t!r})")
        return t % self.num_levels

    def level(self, t: int) -> Partition:
        """Level ``t`` relative to level ``t − 1`` (a partition of its blocks); ⊥ for ``t = 0``."""
        t = self._check_level(t)
        if t == 0:
            device = self.steps[0].device if self.steps else None
            return Partition.discrete(self.num_items, device=device)
        return self.steps[t - 1]

    def absolute(self, t: int) -> Partition:
        """Level ``t`` as a partition of the ``n`` items (composed down to the pixels)."""
        t = self._check_level(t)
        if t == 0:
            return self.level(0)
        while len(self._absolute) < t:
            k = len(self._absolute)
            below = self._absolute[-1] if self._absolute else self.level(0)
            self._absolute.append(below.compose(self.steps[k]))
        return self._absolute[t - 1]

    @property
    def num_blocks(self) -> list[int]:
        """Blocks per level, ``[n, K_1, …, K_T]``."""
        return [self.num_items] + [step.num_blocks for step in self.steps]

    def validate(self, edge_index: Tensor | None = None) -> "Hierarchy":
        """Check the chain (and, given the pixel graph, block connectivity); return ``self``.

        Parameters
        ----------
        edge_index : LongTensor of shape (2, E), optional
            The pixel graph. When given, every block of every level must induce a
            connected subgraph (theory/ Theorem 2, Corollary 2).
        """
        previous = self.level(0)
        for t in range(1, self.num_levels):
            self.steps[t - 1].validate()
            current = self.absolute(t).validate()
            if not previous.refines(current):
                raise ValueError(f"Hierarchy level {t - 1} does not refine level {t}")
            if edge_index is not None and not current.is_connected(edge_index):
                raise ValueError(f"Hierarchy level {t} has a block that is not connected in "
                                 "'edge_index'")
            previous = current
        return self

    def __repr__(self) -> str:
        return f"Hierarchy(num_levels={self.num_levels}, num_blocks={self.num_blocks})"
