"""dHT as a graph pooling layer in PyG's select–connect–reduce framework.

:class:`DHTPooling` coarsens any batch of graphs with the tokenizer's own stages: the
learnable contraction levels (:func:`dhtgraph.hierarchy.build_hierarchy`), the
information-criterion selection (:func:`dhtgraph.selection.select_partition`) and, when a
budget is asked for, the exact Ward merge (:func:`dhtgraph.selection.merge_to_budget`).
In the vocabulary of Grattarola et al., "Understanding Pooling in Graph Neural Networks":

- **select** — :class:`DHTSelect` (a ``torch_geometric.nn.pool.select.Select``): a hard
  assignment of every node to one cluster, a connected block of the hierarchy chosen by
  the information criterion; returned as a ``SelectOutput``;
- **connect** — :class:`DHTConnect` (a ``torch_geometric.nn.pool.connect.Connect``): the
  quotient graph of the assignment (:meth:`dhtgraph.Partition.quotient`), edge features
  summed onto the coarsened edges;
- **reduce** — the pooled features: ``'mean'``, ``'sum'``, ``'max'`` of the input ``x``
  over a cluster, or ``'weighted'``, the tokenizer's differentiable pooled mean μ* of the
  encoded features (argmax-edge weights ``m·√K̃``).

Learnable parts: the node-feature projection (the pixel encoder's role; a linear map,
identity at initialisation when it keeps the width, so an untrained layer contracts the
input features themselves) and the self-loop potential ``sigmoid(a·σ² + b)`` (the
variance projection). The assignment is discrete; gradients reach the parameters through
μ*, i.e. with ``pool='weighted'`` (with ``'mean'``/``'sum'``/``'max'`` only the input
``x`` receives gradients).

Graphs without positions: the compactness term needs node positions, so the layer runs
with compactness 0 (only feature similarity decides the merges).

Every graph of a batch is pooled independently: the hierarchy's stopping rules, the
selection's criterion (with each graph's own node count) and the budget's keys are per
graph, so a graph's clusters do not depend on the other graphs in the batch.

``torch.jit.script`` / ``torch.compile`` are not supported (the contraction has
data-dependent control flow and host syncs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn.pool.connect import Connect, ConnectOutput
from torch_geometric.nn.pool.select import Select, SelectOutput

from .._checks import check_count, check_real
from ..hierarchy.build import MIN_BLOCKS_PER_IMAGE, build_hierarchy
from ..partition import Partition
from ..selection.budget import check_max_tokens, merge_to_budget
from ..selection.criteria import check_iota
from ..selection.select import ic_stopping, resolve_criterion, select_partition

__all__ = ["DHTSelect", "DHTSelectOutput", "DHTConnect", "DHTPooling", "UnpoolInfo",
           "PoolReduce", "POOL_REDUCTIONS", "DEFAULT_POOL_IOTA"]

PoolReduce = Literal["weighted", "mean", "sum", "max"]
#: What the pooled ``x`` is: the tokenizer's differentiable μ* ('weighted') or an exact
#: reduction of the input features over the cluster.
POOL_REDUCTIONS = ("weighted", "mean", "sum", "max")

#: Default ι of the pooling layer: the tokenizer's default (spec §5). Graph-level tasks
#: have a few tens of nodes per graph, where the AICc with ι = 5 keeps clusters of a few
#: nodes; raise it for finer clusters.
DEFAULT_POOL_IOTA = 5.0

#: Loop potential at initialisation: ``sigmoid(−mean_c σ²_c + 0)``. The bias 0 makes a
#: homogeneous block (σ² = 0) stay alone unless a neighbour's Gaussian potential
#: exp(−‖Δh‖²) beats 1/2; the weight −1/H lets heterogeneous blocks merge more readily.
#: The weight must not start at 0: then every loop potential is 1/2, no block chosen by
#: another ever takes its own loop, and the loop parameters never receive a gradient.
_LOOP_BIAS_INIT = 0.0
_LOOP_WEIGHT_INIT = -1.0


def _check_x(x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected 'x' to be a Tensor of shape (N, F) (got {type(x).__name__})")
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"Expected 'x' of shape (N, F) with N ≥ 1 (got {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"Expected 'x' to be a float tensor (got {x.dtype}): convert it, e.g. "
                        "x.float()")


def _check_reduce(pool) -> str:
    if pool not in POOL_REDUCTIONS:
        raise ValueError(f"Expected 'pool' to be one of {POOL_REDUCTIONS} (got {pool!r})")
    return pool


@dataclass(frozen=True)
class DHTSelectOutput:
    """Everything :class:`DHTSelect` found (the ``SelectOutput`` and more).

    Attributes
    ----------
    select_output : SelectOutput
        ``node_index = arange(N)``, ``cluster_index`` (N,) the cluster of every node,
        ``num_clusters`` K, ``weight`` None (a hard assignment).
    partition : Partition of the N nodes
        The clusters (canonical: numbered by first node; graph b's clusters come before
        graph b + 1's).
    mean : Tensor of shape (K, H)
        μ* of every cluster: the hierarchy's pooled mean of the encoded features
        (differentiable in the projection and the loop potential); after a budget merge
        the size-weighted mean of the merged clusters' μ*.
    batch : LongTensor of shape (K,)
        Graph of every cluster.
    num_levels : LongTensor of shape (B,)
        Contraction levels each graph went through.
    """

    select_output: SelectOutput
    partition: Partition
    mean: Tensor
    batch: Tensor
    num_levels: Tensor


class DHTSelect(Select):
    """dHT node selection: contraction levels + information-criterion selection.

    Parameters
    ----------
    in_channels : int
        F, node feature width.
    hidden_channels : int, optional
        H, width of the node-feature projection the hierarchy is built on; default F
        (the projection is then the identity at initialisation).
    levels : int, optional
        Most contraction levels per graph; default ``⌈log₂ √n⌉`` for a graph of n nodes.
    criterion : {'aicc', 'aic', 'bic', 'cic'}, default 'aicc'
    iota : float, default :data:`DEFAULT_POOL_IOTA`
        ι > 0 of the criterion (higher: more, smaller clusters).
    max_clusters : int, optional
        Exact budget: every graph ends with ``min(K_b, max_clusters)`` clusters (Ward
        merge of adjacent clusters on μ*). A graph with more connected components than
        ``max_clusters`` is an error (clusters are connected).
    min_clusters : int, default 6
        A graph stops contracting once it has at most this many blocks
        (:data:`dhtgraph.hierarchy.build.MIN_BLOCKS_PER_IMAGE`).
    compactness : float, default 0.0
        Compactness weight; > 0 needs ``pos`` in :meth:`forward`.
    """

    def __init__(self, in_channels: int, hidden_channels: Optional[int] = None, *,
                 levels: Optional[int] = None, criterion: str = "aicc",
                 iota: float = DEFAULT_POOL_IOTA, max_clusters: Optional[int] = None,
                 min_clusters: int = MIN_BLOCKS_PER_IMAGE, compactness: float = 0.0):
        super().__init__()
        self.in_channels = check_count(in_channels, "in_channels", minimum=1)
        hidden = in_channels if hidden_channels is None else hidden_channels
        self.hidden_channels = check_count(hidden, "hidden_channels", minimum=1)
        self.levels = check_count(levels, "levels", minimum=0, or_none=True)
        self.criterion = resolve_criterion(criterion)[0]
        self.iota = check_iota(iota)
        self.max_clusters = check_max_tokens(max_clusters, "max_clusters")
        self.min_clusters = check_count(min_clusters, "min_clusters", minimum=1)
        self.compactness = check_real(compactness, "compactness", minimum=0.0, maximum=1.0)
        self.projection = nn.Linear(self.in_channels, self.hidden_channels)
        self.var_projection = nn.Linear(self.hidden_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Projection: identity when H = F (else PyTorch's default init), zero bias; loop
        potential: weight −1/H per channel, bias 0 (see :data:`_LOOP_WEIGHT_INIT`)."""
        if self.hidden_channels == self.in_channels:
            with torch.no_grad():
                self.projection.weight.copy_(torch.eye(self.in_channels))
        else:
            self.projection.reset_parameters()
        nn.init.zeros_(self.projection.bias)
        nn.init.constant_(self.var_projection.weight, _LOOP_WEIGHT_INIT / self.hidden_channels)
        nn.init.constant_(self.var_projection.bias, _LOOP_BIAS_INIT)

    def select(self, x: Tensor, edge_index: Tensor, batch: Optional[Tensor] = None, *,
               pos: Optional[Tensor] = None) -> DHTSelectOutput:
        """Cluster the nodes (see :class:`DHTSelectOutput`).

        Parameters
        ----------
        x : Tensor of shape (N, F)
        edge_index : LongTensor of shape (2, E)
            Read as undirected (both directions of every edge are used).
        batch : LongTensor of shape (N,), optional
            Sorted graph index of every node (PyG's convention); default one graph.
        pos : Tensor of shape (N, 2), optional
            Node positions, needed only with ``compactness > 0``.
        """
        _check_x(x)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"Expected 'x' to have {self.in_channels} channels (got "
                             f"{x.shape[1]})")
        h = self.projection(x)
        built = build_hierarchy(h, edge_index, batch, pos=pos, compactness=self.compactness,
                                var_projection=self.var_projection, max_levels=self.levels,
                                min_blocks=self.min_clusters,
                                stop=ic_stopping(self.criterion, self.iota))
        sel = select_partition(built, self.criterion, self.iota)
        partition, mean, cluster_batch = sel.partition, sel.mean, sel.batch
        if self.max_clusters is not None:
            # The top level has one block per connected part of every graph: parts of
            # different components never merge, so a budget below their count is unmet.
            parts = torch.bincount(built.top.batch, minlength=built.num_graphs)
            worst, most = torch.stack([parts.argmax(), parts.max()]).tolist()  # one sync
            if most > self.max_clusters:
                raise ValueError(
                    f"Expected every graph to have at most max_clusters={self.max_clusters} "
                    f"connected components (got graph {worst} with {most}): "
                    "clusters are connected, so components cannot share one; raise "
                    "'max_clusters' or connect the graph")
            merged = merge_to_budget(partition, mean.detach(), cluster_batch, built.edge_index,
                                     self.max_clusters)
            step = merged.merge
            if step.num_blocks < partition.num_blocks:
                weight = partition.sizes.to(mean.dtype).unsqueeze(1)
                mean = step.reduce(mean * weight, "sum") / step.reduce(weight, "sum")
                cluster_batch = cluster_batch.new_empty(step.num_blocks).scatter_(
                    0, step.labels, cluster_batch)
                partition = partition.compose(step)
        n = x.shape[0]
        out = SelectOutput(node_index=torch.arange(n, device=x.device), num_nodes=n,
                           cluster_index=partition.labels, num_clusters=partition.num_blocks)
        return DHTSelectOutput(select_output=out, partition=partition, mean=mean,
                               batch=cluster_batch, num_levels=built.num_levels)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Optional[Tensor] = None, *,
                pos: Optional[Tensor] = None):
        """The ``SelectOutput`` of :meth:`select`."""
        return self.select(x, edge_index, batch, pos=pos).select_output

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"criterion={self.criterion!r}, iota={self.iota}, levels={self.levels}, "
                f"max_clusters={self.max_clusters})")


class DHTConnect(Connect):
    """Quotient-graph connection: clusters adjacent when an edge joins them.

    ``forward(select_output, edge_index, edge_attr=None, batch=None) -> ConnectOutput``
    with ``edge_index`` = :meth:`dhtgraph.Partition.quotient` of the assignment (coalesced,
    no self-loops), ``edge_attr`` the sum of the attributes of the edges that map onto
    each coarsened edge (edges inside a cluster are dropped), and the pooled batch.
    """

    def forward(self, select_output, edge_index: Tensor, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None):
        if select_output.node_index.numel() != select_output.num_nodes:
            raise ValueError("Expected a SelectOutput that assigns every node to a cluster "
                             f"(got {select_output.node_index.numel()} of "
                             f"{select_output.num_nodes} nodes)")
        labels = torch.empty(select_output.num_nodes, dtype=torch.long,
                             device=select_output.cluster_index.device)
        labels[select_output.node_index] = select_output.cluster_index
        partition = Partition(labels, select_output.num_clusters)
        edges = partition.quotient(edge_index)
        attr = None
        if edge_attr is not None:
            if not isinstance(edge_attr, Tensor) or edge_attr.shape[0] != edge_index.shape[1]:
                got = tuple(edge_attr.shape) if isinstance(edge_attr, Tensor) else \
                    type(edge_attr).__name__
                raise ValueError(f"Expected 'edge_attr' to have one row per edge "
                                 f"({edge_index.shape[1]}, *) (got {got})")
            src, dst = labels[edge_index[0]], labels[edge_index[1]]
            keep = src != dst
            k = max(partition.num_blocks, 1)
            slot = torch.searchsorted(edges[0] * k + edges[1], (src * k + dst)[keep])
            attr = edge_attr.new_zeros((edges.shape[1],) + tuple(edge_attr.shape[1:]))
            attr = attr.index_add(0, slot, edge_attr[keep])
        return ConnectOutput(edges, attr, Connect.get_pooled_batch(select_output, batch))


class UnpoolInfo(NamedTuple):
    """What :meth:`DHTPooling.unpool` needs: the input graph and the assignment."""

    edge_index: Tensor
    cluster: Tensor
    batch: Tensor


class DHTPooling(nn.Module):
    """Differentiable hierarchical tokenization as a graph pooling layer.

    Same shape as PyG's ``EdgePooling`` / ``ClusterPooling``:
    ``forward(x, edge_index, batch=None) -> (x, edge_index, batch, unpool_info)`` and
    ``unpool(x, unpool_info) -> (x, edge_index, batch)``.

    Parameters
    ----------
    in_channels : int
        F, node feature width.
    hidden_channels : int, optional
        H, width of the learnable node-feature projection (default F).
    levels : int, optional
        Most contraction levels per graph (default ``⌈log₂ √n⌉``).
    criterion : {'aicc', 'aic', 'bic', 'cic'}, default 'aicc'
    iota : float, default :data:`DEFAULT_POOL_IOTA`
    max_clusters : int, optional
        Exact per-graph budget of clusters, ``min(K_b, max_clusters)``; a graph with more
        connected components than that raises ValueError.
    pool : {'weighted', 'mean', 'sum', 'max'}, default 'weighted'
        The pooled ``x``: μ* of the projected features (K, H), differentiable in the
        layer's parameters; or the mean / sum / max of the input ``x`` (K, F).
    min_clusters : int, default 6
        A graph stops contracting at this many blocks.
    compactness : float, default 0.0
        0 for graphs without positions; > 0 needs ``pos`` in :meth:`forward`.

    Attributes
    ----------
    out_channels : int
        H for ``'weighted'``, F otherwise.

    Examples
    --------
    >>> import torch
    >>> pool = DHTPooling(4)
    >>> x = torch.randn(10, 4)
    >>> edge_index = torch.tensor([[i for i in range(9)], [i + 1 for i in range(9)]])
    >>> x2, e2, b2, info = pool(x, edge_index)
    >>> pool.unpool(x2, info)[0].shape
    torch.Size([10, 4])
    """

    def __init__(self, in_channels: int, hidden_channels: Optional[int] = None, *,
                 levels: Optional[int] = None, criterion: str = "aicc",
                 iota: float = DEFAULT_POOL_IOTA, max_clusters: Optional[int] = None,
                 pool: PoolReduce = "weighted", min_clusters: int = MIN_BLOCKS_PER_IMAGE,
                 compactness: float = 0.0):
        super().__init__()
        self.pool = _check_reduce(pool)
        self.select = DHTSelect(in_channels, hidden_channels, levels=levels,
                                criterion=criterion, iota=iota, max_clusters=max_clusters,
                                min_clusters=min_clusters, compactness=compactness)
        self.connect = DHTConnect()
        self.in_channels = self.select.in_channels
        self.out_channels = self.select.hidden_channels if pool == "weighted" else in_channels

    def reset_parameters(self) -> None:
        self.select.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, batch: Optional[Tensor] = None, *,
                edge_attr: Optional[Tensor] = None, pos: Optional[Tensor] = None,
                return_edge_attr: bool = False):
        """Pool a batch of graphs.

        Parameters
        ----------
        x : Tensor of shape (N, F)
        edge_index : LongTensor of shape (2, E)
        batch : LongTensor of shape (N,), optional
        edge_attr : Tensor of shape (E, *), optional
            Summed onto the coarsened edges (returned with ``return_edge_attr=True``).
        pos : Tensor of shape (N, 2), optional
            Node positions (only with ``compactness > 0``).

        Returns
        -------
        x : Tensor of shape (K, out_channels)
        edge_index : LongTensor of shape (2, E')
            The quotient graph (coalesced, no self-loops).
        batch : LongTensor of shape (K,)
        unpool_info : UnpoolInfo
        edge_attr : Tensor of shape (E', *)
            Only with ``return_edge_attr=True`` (then a 5-tuple).
        """
        if batch is None:
            batch = torch.zeros(x.shape[0] if isinstance(x, Tensor) and x.dim() else 0,
                                dtype=torch.long, device=getattr(x, "device", None))
        found = self.select.select(x, edge_index, batch, pos=pos)
        connected = self.connect(found.select_output, edge_index.long(), edge_attr, batch)
        if self.pool == "weighted":
            out = found.mean
        else:
            out = found.partition.reduce(x, self.pool)
        info = UnpoolInfo(edge_index=edge_index, cluster=found.partition.labels, batch=batch)
        if return_edge_attr:
            return out, connected.edge_index, found.batch, info, connected.edge_attr
        return out, connected.edge_index, found.batch, info

    def unpool(self, x: Tensor, unpool_info: UnpoolInfo):
        """Give every node its cluster's row: ``(x[cluster], edge_index, batch)``."""
        return x[unpool_info.cluster], unpool_info.edge_index, unpool_info.batch

    def __repr__(self) -> str:
        s = self.select
        return (f"{self.__class__.__name__}({s.in_channels}, {s.hidden_channels}, "
                f"pool={self.pool!r}, criterion={s.criterion!r}, iota={s.iota}, "
                f"levels={s.levels}, max_clusters={s.max_clusters})")
