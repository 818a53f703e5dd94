"""Connected components of graphs as partitions (theory/ Definitions 3–4, Theorem 1)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_count, check_edge_index
from .._union import component_labels
from ..partition import Partition

__all__ = ["connected_components", "choice_components"]


def _partition_of_components(src: Tensor, dst: Tensor, num_nodes: int) -> Partition:
    labels, num_blocks = component_labels(src, dst, num_nodes)
    return Partition(labels, num_blocks, canonical=True)


def connected_components(edge_index: Tensor, num_nodes: int) -> Partition:
    """The partition of the nodes into connected components (reachability classes).

    Parameters
    ----------
    edge_index : LongTensor of shape (2, E)
        Edges; direction is ignored (components of the underlying undirected graph).
    num_nodes : int
        n. Nodes without edges form singleton blocks.

    Returns
    -------
    Partition of n items
        Canonical: component ``k`` is the k-th component met in node order.

    Notes
    -----
    Pure tensor code (min-neighbour hooking, pointer jumping and root hooking, see
    :mod:`dhtgraph._union`): on grid graphs a few rounds, each a small constant times E.
    Host syncs: the input check's one and one per round. No Python loop over nodes.
    """
    num_nodes = check_count(num_nodes, "num_nodes")
    edge_index = check_edge_index(edge_index, num_nodes)
    return _partition_of_components(edge_index[0], edge_index[1], num_nodes)


def choice_components(choice: Tensor) -> Partition:
    """Components of the functional graph ``v → choice[v]`` (one contraction step).

    Parameters
    ----------
    choice : LongTensor of shape (n,)
        The neighbour each node selected; ``choice[v] == v`` is a self-loop.

    Returns
    -------
    Partition of n items
        Nodes joined by chosen edges share a block (theory/ Theorem 2: when ``choice``
        follows graph edges, every block is connected, and without self-loops every
        block has at least two nodes).
    """
    if not isinstance(choice, Tensor) or choice.dim() != 1:
        got = tuple(choice.shape) if isinstance(choice, Tensor) else type(choice).__name__
        raise ValueError(f"Expected 'choice' to have shape (n,) (got {got})")
    n = choice.numel()
    choice = choice.long()
    if n and (int(choice.min()) < 0 or int(choice.max()) >= n):
        raise ValueError(f"Expected 'choice' values in 0..{n - 1} "
                         f"(got {int(choice.min())}..{int(choice.max())})")
    return _partition_of_components(torch.arange(n, device=choice.device), choice, n)
