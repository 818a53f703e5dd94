"""Connected-component roots by parallel hooking and pointer jumping (FastSV).

This is the foundation's only graph algorithm: :class:`dhtgraph.Partition` uses it for
``join`` and ``is_connected``, and :mod:`dhtgraph.graph.components` wraps it into
partitions. It is pure tensor code: every iteration is a constant number of gathers and
scatter-min operations over the edge list, and the number of iterations grows with the
logarithm of the component diameter, not with the number of nodes.

References
----------
Zhang, Azad, Hu. "FastSV: A distributed-memory connected component algorithm with fast
convergence." SIAM PP 2020.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["component_roots"]


def component_roots(src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
    """Return, for every node, the smallest node id in its connected component.

    Parameters
    ----------
    src, dst : LongTensor of shape (E,)
        Edge end points. Direction is ignored (the graph is treated as undirected).
    num_nodes : int
        Number of nodes n; ids are ``0..n-1``.

    Returns
    -------
    LongTensor of shape (n,)
        ``root[v] = min{u : u reachable from v}``. Nodes are their own root exactly when
        they are the smallest node of their component.

    Notes
    -----
    One host sync per iteration (the convergence test). The hooking steps only ever
    lower a pointer to a node id of the same component, so the result is the same
    whatever the order of the edges (deterministic under any thread count).
    """
    device = src.device
    parent = torch.arange(num_nodes, device=device)
    if src.numel() == 0 or num_nodes == 0:
        return parent
    u = torch.cat([src, dst])
    v = torch.cat([dst, src])
    grand = parent
    while True:
        gv = grand[v]
        nxt = parent.clone()
        # Stochastic hooking: the parent of u adopts v's grandparent when it is smaller.
        nxt.scatter_reduce_(0, parent[u], gv, reduce="amin")
        # Aggressive hooking: u itself adopts v's grandparent when it is smaller.
        nxt.scatter_reduce_(0, u, gv, reduce="amin")
        # Shortcutting.
        nxt = torch.minimum(nxt, grand)
        new_grand = nxt[nxt]
        parent = nxt
        if torch.equal(new_grand, grand):
            break
        grand = new_grand
    # Full path compression: every node points at its root.
    while True:
        jumped = parent[parent]
        if torch.equal(jumped, parent):
            return parent
        parent = jumped
