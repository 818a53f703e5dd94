"""Build the hierarchy of a batch of graphs by repeated contraction (method spec §4).

:func:`build_hierarchy` takes node features ``x``, the graph and which graph every node
belongs to — a PyG batch ``(x, edge_index, batch)`` of graphs of any sizes, or a
:class:`PixelGrid` descriptor in place of ``edge_index`` for images (the fast path:
chosen by the type of the input, bit-for-bit the general path's result, with no edge
list built for the first level).

Levels are built while, for a graph of ``n`` nodes, (blocks) > ``min_blocks``, level <
``⌈log₂ √n⌉``, the last level made progress (it merged at least
:data:`MIN_MERGED_FRACTION` of the graph's blocks) and the optional stopping rule (the IC
selection, :func:`dhtgraph.selection.ic_stopping`) still improves somewhere in it. Then
every connected part left is merged into one block (the top ⊤), pooled with exact size
weights. The chain ⊥ = π₀ ≤ π₁ ≤ … ≤ ⊤ refines at every step and every block is
connected (theory/ Theorem 2).

The stopping rules are applied **per graph**: a graph that has stopped is frozen (its
blocks choose their own loops and keep their statistics bit-for-bit) while the others go
on, so every graph of a batch gets exactly the levels it gets alone. Frozen graphs show
identity steps in the batch's :class:`Hierarchy`; ``HierarchyResult.num_levels`` tells
how many real levels each graph had. The statistics of every level are kept in the
result, so a selection (:func:`dhtgraph.selection.select_partition`) can be made, and
remade with another criterion, from the built hierarchy.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union

import torch
from torch import Tensor

from .. import _native
from .._checks import check_count
from .._union import component_labels
from ..graph.pixel import grid_coordinates, grid_edge_index
from ..partition import Partition
from .affinity import DEFAULT_LOOP_POTENTIAL, edge_affinity
from .chain import Hierarchy
from .contraction import (POOL_WEIGHTINGS, BlockState, PoolWeights, TieBreak, check_tie_break,
                          contract, pool_blocks)
from .grid import grid_contraction, materialize_pixel_state, pixel_state

__all__ = ["PixelGrid", "HierarchyResult", "LevelObserver", "StoppingRule", "build_hierarchy",
           "max_levels_for", "MIN_BLOCKS_PER_IMAGE", "MIN_MERGED_FRACTION", "POOL_WEIGHTINGS",
           "prepare_edge_index"]

#: A graph stops contracting once it has at most this many blocks (the reference's
#: ``min_avg_region``, applied per graph instead of to the batch average).
MIN_BLOCKS_PER_IMAGE = 6
#: A level that merges fewer than this fraction of a graph's blocks is *stalled*: the
#: graph stops after it (issue 8: on 4096² uniform noise 9 of 14 levels each merged
#: almost nothing at full price). 1/256 never triggers on the shared photographs (their
#: levels merge ≥ 25 % of the blocks until the IC stops them), and a level that merges
#: nothing is a fixed point, so stopping there changes no token.
MIN_MERGED_FRACTION = 1.0 / 256

# Pooling weightings by name (re-exported): defined with the contraction,
# :data:`dhtgraph.hierarchy.contraction.POOL_WEIGHTINGS`.


@dataclass(frozen=True)
class PixelGrid:
    """``num_images`` row-major pixel grids of ``height × width`` with 4-connectivity.

    Passed as the graph (in place of ``edge_index``) it stands for
    ``grid_edge_index(height, width, num_images)`` with node positions (row, col) and
    ``batch = arange(num_images).repeat_interleave(height·width)``, none of which is built
    unless a stage needs it.
    """

    num_images: int
    height: int
    width: int

    def __post_init__(self):
        for name in ("num_images", "height", "width"):
            object.__setattr__(self, name, check_count(getattr(self, name), name, minimum=1))

    @property
    def nodes_per_image(self) -> int:
        return self.height * self.width

    @property
    def num_nodes(self) -> int:
        return self.num_images * self.height * self.width

    def batch(self, device=None) -> Tensor:
        """Image of every pixel (N,)."""
        return torch.arange(self.num_images, device=device).repeat_interleave(self.nodes_per_image)

    def edge_index(self, device=None) -> Tensor:
        """The 4-neighbour pixel graph (2, E), both directions."""
        return grid_edge_index(self.height, self.width, self.num_images, device=device)

    def pos(self, device=None) -> Tensor:
        """Pixel (row, col) of every node (N, 2), int64."""
        return torch.stack(grid_coordinates(self.height, self.width, self.num_images,
                                            device=device), dim=1)


class LevelObserver(Protocol):
    """Called after each level: ``observer(partition, state, active) -> improved (B,)``."""

    def __call__(self, partition: Partition, state: BlockState,
                 active: Tensor) -> Optional[Tensor]: ...


class StoppingRule(Protocol):
    """A per-graph stopping rule fed with every level (e.g. the IC selection, spec §4).

    ``start(level0, num_graphs, nodes_per_graph)`` is called once with the nodes;
    ``update(partition, state, active)`` after every level (the top included) returns
    which graphs improved (B,) — a graph that did not improve stops (never after the
    first level).
    """

    def start(self, level0: BlockState, num_graphs: int,
              nodes_per_graph: Union[int, Tensor]) -> None: ...

    def update(self, partition: Partition, state: BlockState,
               active: Tensor) -> Optional[Tensor]: ...


def _stats(state: BlockState) -> BlockState:
    # A level's statistics without its graph (the boxes and edges are only needed to
    # build the next level).
    if state.bbox is None and state.edge_index is None:
        return state
    return BlockState(mean=state.mean, var=state.var, size=state.size, bbox=None,
                      edge_index=None, batch=state.batch)


@dataclass(frozen=True)
class HierarchyResult:
    """A built hierarchy and the block statistics of every level.

    Attributes
    ----------
    hierarchy : Hierarchy
        Levels 0 (nodes) … T (contractions) and T + 1 (the top: one block per connected
        part of every graph).
    levels : tuple of BlockState
        ``levels[t]``: ``mean`` (K_t, d), ``var`` (K_t, d), ``size`` (K_t,) and ``batch``
        (K_t,) of the blocks of level t (``levels[0]``: the nodes); ``bbox`` and
        ``edge_index`` are None (not kept).
    num_levels : LongTensor of shape (B,)
        Contraction levels each graph really went through (the top not counted).
    nodes_per_graph : LongTensor of shape (B,)
        n of every graph.
    graph : PixelGrid or LongTensor of shape (2, E)
        The node graph the hierarchy was built on (``edge_index`` undirected, coalesced,
        without self-loops).
    pos : Tensor of shape (N, 2) or None
        Node positions (None for a :class:`PixelGrid`, whose positions are implied).
    stalled : BoolTensor of shape (B,)
        Graphs that stopped because a level merged fewer than :data:`MIN_MERGED_FRACTION`
        of their blocks.
    stopping : StoppingRule or None
        The stopping rule as it ended (the IC selection keeps its running selection,
        which :func:`dhtgraph.selection.select_partition` reuses).
    """

    hierarchy: Hierarchy
    levels: tuple
    num_levels: Tensor
    nodes_per_graph: Tensor
    graph: Any
    pos: Optional[Tensor] = None
    stalled: Optional[Tensor] = None
    stopping: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if len(self.levels) != self.hierarchy.num_levels:
            raise ValueError(f"Expected one BlockState per level ({self.hierarchy.num_levels}) "
                             f"(got {len(self.levels)})")
        if self.num_levels.shape != self.nodes_per_graph.shape or self.num_levels.dim() != 1:
            raise ValueError(f"Expected 'num_levels' and 'nodes_per_graph' of shape (B,) (got "
                             f"{tuple(self.num_levels.shape)}, {tuple(self.nodes_per_graph.shape)})")

    @property
    def num_graphs(self) -> int:
        return int(self.num_levels.numel())

    @property
    def grid(self) -> Optional[PixelGrid]:
        """The :class:`PixelGrid` when the hierarchy was built on one, else None."""
        return self.graph if isinstance(self.graph, PixelGrid) else None

    @property
    def edge_index(self) -> Tensor:
        """The node graph (2, E) (built for a :class:`PixelGrid`)."""
        if isinstance(self.graph, PixelGrid):
            return self.graph.edge_index(self.num_levels.device)
        return self.graph

    @property
    def states(self) -> list:
        """``list(levels)`` (0.1.0 name)."""
        return list(self.levels)

    @property
    def top(self) -> BlockState:
        """The top level (one block per connected part of every graph)."""
        return self.levels[-1]


def max_levels_for(height: int, width: int = 1) -> int:
    """``⌈log₂ √(H·W)⌉``, the most contraction levels a graph of ``H·W`` nodes gets (spec §4)."""
    pixels = height * width
    return int(math.ceil(math.log2(math.sqrt(pixels)))) if pixels > 1 else 0


def _max_levels_per_graph(nodes: Tensor) -> Tensor:
    """``⌈log₂ √n⌉`` per graph (B,), 0 for n ≤ 1 (same float64 arithmetic as
    :func:`max_levels_for`)."""
    n = nodes.to(torch.float64)
    levels = torch.ceil(torch.log2(torch.sqrt(n.clamp_min(1))))
    return torch.where(nodes > 1, levels, torch.zeros_like(levels)).long()


def prepare_edge_index(edge_index: Tensor, num_nodes: int, name: str = "edge_index") -> Tensor:
    """Undirected, coalesced, without self-loops (2, E'): the node graph contraction needs.

    Raises
    ------
    TypeError, ValueError
        For a tensor that is not an integer (2, E) edge list with values in
        ``[0, num_nodes)``.
    """
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"Expected '{name}' to be a LongTensor of shape (2, E) or a PixelGrid "
                        f"(got {type(edge_index).__name__})")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"Expected '{name}' of shape (2, E) (got {tuple(edge_index.shape)})")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
        raise TypeError(f"Expected '{name}' to have an integer dtype (got {edge_index.dtype})")
    edge_index = edge_index.long()
    if edge_index.numel():
        lo, hi = torch.aminmax(edge_index)
        lo, hi = torch.stack([lo, hi]).tolist()
        if lo < 0 or hi >= num_nodes:
            raise ValueError(f"Expected '{name}' values in [0, {num_nodes}) (got {lo}..{hi})")
    src, dst = edge_index
    keep = src != dst
    src, dst = src[keep], dst[keep]
    n = max(num_nodes, 1)
    key = torch.unique(torch.cat([src * n + dst, dst * n + src]))
    first = torch.div(key, n, rounding_mode="floor")
    return torch.stack([first, key - first * n])


def _check_features(x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected 'x' to be a Tensor of shape (N, d) (got {type(x).__name__})")
    if x.device.type == "meta":
        raise ValueError("Expected 'x' to hold values (got a tensor on the 'meta' device, which "
                         "has none): create it on a real device, e.g. 'cpu'")
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"Expected 'x' of shape (N, d) with N ≥ 1 (got {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"Expected 'x' to be a float tensor (got {x.dtype})")


def _graph_batch(batch: Optional[Tensor], ptr: Optional[Tensor], num_nodes: int,
                 num_graphs: Optional[int], device) -> tuple[Tensor, int]:
    if batch is not None and ptr is not None:
        raise ValueError("Expected one of 'batch' and 'ptr' (got both)")
    if ptr is not None:
        if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.numel() < 2:
            raise ValueError("Expected 'ptr' to be a LongTensor of shape (B + 1,) with B ≥ 1")
        counts = ptr[1:] - ptr[:-1]
        first, last, low = torch.stack([ptr[0], ptr[-1], counts.min()]).tolist()
        if first != 0 or last != num_nodes or low < 0:
            raise ValueError(f"Expected 'ptr' to rise from 0 to N = {num_nodes} (got "
                             f"{first}..{last}, smallest step {low})")
        b = counts.numel()
        return torch.arange(b, device=device).repeat_interleave(counts, output_size=num_nodes), b
    if batch is None:
        b = 1 if num_graphs is None else check_count(num_graphs, "num_graphs", minimum=1)
        return torch.zeros(num_nodes, dtype=torch.long, device=device), b
    if not isinstance(batch, Tensor) or batch.shape != (num_nodes,) or \
            batch.dtype.is_floating_point or batch.dtype == torch.bool:
        raise ValueError(f"Expected 'batch' to be an integer tensor of shape ({num_nodes},) "
                         f"(got {getattr(batch, 'dtype', type(batch).__name__)} of shape "
                         f"{tuple(getattr(batch, 'shape', ()))})")
    batch = batch.long()
    lo, hi, unsorted = torch.stack([batch.min(), batch.max(),
                                    (batch[1:] < batch[:-1]).any().long()]).tolist()
    if lo < 0 or unsorted:
        raise ValueError("Expected 'batch' to be non-negative and sorted (nodes of graph b "
                         "before those of b + 1, as PyG batches are)")
    b = hi + 1 if num_graphs is None else check_count(num_graphs, "num_graphs", minimum=1)
    if hi >= b:
        raise ValueError(f"Expected 'batch' values below num_graphs = {b} (got {hi})")
    return batch, b


def build_hierarchy(
    x: Any,
    edge_index: Union[Tensor, PixelGrid, None] = None,
    batch: Optional[Tensor] = None,
    *,
    pos: Optional[Tensor] = None,
    ptr: Optional[Tensor] = None,
    num_graphs: Optional[int] = None,
    compactness: float = 0.1,
    var_projection: Optional[Callable[[Tensor], Tensor]] = None,
    loop_default: float = DEFAULT_LOOP_POTENTIAL,
    weights: PoolWeights = "argmax_edge",
    min_blocks: int = MIN_BLOCKS_PER_IMAGE,
    max_levels: Optional[int] = None,
    stop: Optional[StoppingRule] = None,
    tie_break: Optional[TieBreak] = None,
    observer: Optional[LevelObserver] = None,
    pixel_grid: bool = False,
    keep_states: bool = True,
) -> HierarchyResult:
    """Contract a batch of graphs level by level, then merge each connected part to ⊤.

    Parameters
    ----------
    x : Tensor of shape (N, d)
        Node features (differentiable). A ``torch_geometric.data.Data``/``Batch`` is
        read as ``(x, edge_index, batch, pos)``.
    edge_index : LongTensor of shape (2, E) or PixelGrid
        The node graph (made undirected and coalesced; self-loops dropped), or a
        :class:`PixelGrid` for images (the grid fast path; ``batch`` and ``pos`` are then
        implied and must be None).
    batch : LongTensor of shape (N,), optional
        Graph of every node, sorted (PyG's convention); default: one graph.
    pos : Tensor of shape (N, 2), optional
        Node positions (row, col) in units of the node spacing; blocks' bounding boxes
        come from them (the compactness term). Required when ``compactness > 0``.
    ptr : LongTensor of shape (B + 1,), optional
        Instead of ``batch``: graph b holds nodes ``ptr[b]..ptr[b+1]−1``.
    num_graphs : int, optional
        B, when ``batch`` does not show it (trailing empty graphs) or to save a sync.
    compactness : float, default 0.1
        Compactness weight c of the potentials.
    var_projection : callable, optional
        Variance projection d → 1 for the self-loop potentials (learnable).
    loop_default : float, default 0.0
        Loop potential without a projection.
    weights : str, default 'argmax_edge'
        Pooling weights of the contraction levels (the top always uses sizes): a name
        registered in :data:`~dhtgraph.hierarchy.contraction.POOL_WEIGHTINGS` ('argmax_edge'
        and 'size' are built in).
    tie_break : {'hashed', 'reference'}, optional
        How a block chooses among exactly tied potentials
        (:func:`dhtgraph.hierarchy.contraction.argmax_choice`). 'hashed' (the default) —
        along an edge between different means a fixed symmetric hash of the pair, so
        that ties on smooth gradients do not chain a whole image into one block in one
        level; inside a plateau the larger index, so flat regions still merge whole.
        'reference' — the larger neighbour index everywhere, as the reference
        implementation (needed to reproduce it; the default of the deprecated 0.1.0 call
        form, which keeps 0.1.0's results).
    min_blocks : int, default 6
        A graph stops once it has at most this many blocks.
    max_levels : int, optional
        Most contraction levels; default ``⌈log₂ √n⌉`` for a graph of n nodes.
    stop : StoppingRule, optional
        Per-graph stopping rule fed with every level, e.g.
        ``dhtgraph.selection.ic_stopping('aicc', 5.0)`` (spec §4: a graph stops when the
        IC selection no longer improves in it, never after the first level).
    observer, pixel_grid, keep_states
        Deprecated (0.1.0): ``build_hierarchy(state, num_images, image_size, ...)`` with
        a level-0 :class:`BlockState`, a callable observer and a flag for the grid.
        Pass ``x`` and a :class:`PixelGrid` or ``edge_index``, and ``stop=``.
        ``keep_states=False`` is ignored with a DeprecationWarning (every level is kept).

    Returns
    -------
    HierarchyResult

    Raises
    ------
    TypeError, ValueError
        For inputs of the wrong type or shape, a meta tensor, ``compactness > 0`` without
        ``pos``, an unknown ``weights``, or a ``min_blocks`` that is not a non-negative
        int.

    Notes
    -----
    Host syncs (device → host reads; free on CPU, a stall each on a GPU): per level one
    in this loop (which graphs are active; none with the native kernels, whose one pass
    per level returns it), plus those of the contraction (one read for its components,
    one ``unique`` for the relabelled edges); the stopping rule
    (:func:`dhtgraph.selection.ic_stopping`) has none after its first update. About 3
    per level at 224²; ``tests/hierarchy/test_syncs.py`` counts them and bounds them.
    """
    POOL_WEIGHTINGS.check(weights, "weights")
    # (No graph has more than 2⁶³ blocks: a larger min_blocks stops them all the same.)
    min_blocks = min(check_count(min_blocks, "min_blocks"), _native.INT64_MAX)
    if tie_break is None:
        tie_break = "reference" if isinstance(x, BlockState) else "hashed"
    tie_break = check_tie_break(tie_break)
    if not keep_states:
        warnings.warn("build_hierarchy(keep_states=False) is deprecated and ignored: every "
                      "level's statistics are kept (select_partition re-selects from them)",
                      DeprecationWarning, stacklevel=2)
    if isinstance(x, BlockState):
        warnings.warn("build_hierarchy(state, num_images, image_size, ...) is deprecated: pass "
                      "build_hierarchy(x, PixelGrid(...) or edge_index, batch, pos=..., stop=...)",
                      DeprecationWarning, stacklevel=2)
        state, num_images, image_size = x, edge_index, batch
        if pixel_grid:
            graph: Union[PixelGrid, Tensor] = PixelGrid(num_images, *image_size)
            x, batch, pos = state.mean, None, None
        else:
            x, graph, batch = state.mean, state.edge_index, state.batch
            pos = state.bbox[:, :2] if state.bbox is not None else None
            num_graphs = num_images
        del state
    elif _is_pyg_data(x):
        data = x
        if edge_index is not None or batch is not None:
            raise ValueError("Expected 'edge_index' and 'batch' to be None with a PyG Data "
                             "input (they are read from it)")
        x, graph = data.x, data.edge_index
        batch = getattr(data, "batch", None)
        ptr = getattr(data, "ptr", None) if batch is None else None
        pos = getattr(data, "pos", None) if pos is None else pos
        if num_graphs is None and hasattr(data, "num_graphs") and batch is not None:
            num_graphs = int(data.num_graphs)
    else:
        graph = edge_index
    _check_features(x)
    n, d = x.shape
    device = x.device
    if isinstance(graph, PixelGrid):
        if batch is not None or pos is not None or ptr is not None:
            raise ValueError("Expected 'batch', 'ptr' and 'pos' to be None with a PixelGrid "
                             "(they are implied by it)")
        if graph.num_nodes != n:
            raise ValueError(f"Expected 'x' to have one row per pixel of {graph} "
                             f"({graph.num_nodes}) (got {n})")
        num_graphs = graph.num_images
        node_batch = graph.batch(device) if num_graphs > 1 else None
        state = pixel_state(x, num_graphs, node_batch)
        nodes: Union[int, Tensor] = graph.nodes_per_image
        nodes_per_graph = torch.full((num_graphs,), nodes, dtype=torch.long, device=device)
        cap = max_levels if max_levels is not None else max_levels_for(graph.height, graph.width)
        level_cap = torch.full((num_graphs,), cap, dtype=torch.long, device=device)
    else:
        if graph is None:
            raise TypeError("Expected 'edge_index' (a LongTensor of shape (2, E) or a PixelGrid) "
                            "(got None)")
        graph = prepare_edge_index(graph, n)
        node_batch, num_graphs = _graph_batch(batch, ptr, n, num_graphs, device)
        compactness_f = float(compactness)
        if pos is None:
            if compactness_f > 0:
                raise ValueError(f"Expected 'pos' (node positions, shape (N, 2)) with "
                                 f"compactness = {compactness_f} > 0: the compactness term "
                                 "needs bounding boxes; pass pos or compactness=0")
            box = torch.zeros(n, 2, dtype=torch.long, device=device)
        else:
            if not isinstance(pos, Tensor) or pos.shape != (n, 2):
                raise ValueError(f"Expected 'pos' of shape ({n}, 2) (got "
                                 f"{tuple(getattr(pos, 'shape', ()))})")
            box = pos if pos.is_floating_point() else pos.long()
        state = BlockState(mean=x, var=torch.zeros_like(x),
                           size=torch.ones(n, dtype=torch.long, device=device),
                           bbox=torch.cat([box, box], dim=1), edge_index=graph, batch=node_batch)
        nodes_per_graph = torch.zeros(num_graphs, dtype=torch.long, device=device).index_add_(
            0, node_batch, torch.ones_like(node_batch))
        nodes = nodes_per_graph
        level_cap = (torch.full((num_graphs,), max_levels, dtype=torch.long, device=device)
                     if max_levels is not None else _max_levels_per_graph(nodes_per_graph))
        cap = int(level_cap.max())
    result_pos = None if isinstance(graph, PixelGrid) else pos
    if stop is not None:
        stop.start(state, num_graphs, nodes)
    levels_kept = [_stats(state)]
    steps: list[Partition] = []
    levels = torch.zeros(num_graphs, dtype=torch.long, device=device)
    stalled = torch.zeros(num_graphs, dtype=torch.bool, device=device)
    active, flags = _first_active(nodes_per_graph, level_cap, min_blocks)
    counts = nodes_per_graph
    level = 0
    while level < cap:
        any_active, all_active = flags if flags is not None else _any_all(active)
        if not any_active:
            break
        if level == 0 and isinstance(graph, PixelGrid) and all_active and nodes >= 2:
            step = grid_contraction(state, num_graphs, graph.height, graph.width,
                                    compactness=compactness, weights=weights,
                                    tie_break=tie_break)
        else:
            if state.edge_index is None:
                state = materialize_pixel_state(state, num_graphs, graph.height, graph.width)
            potential = edge_affinity(state.mean, state.var, state.size, state.bbox,
                                      state.edge_index, compactness=compactness,
                                      var_projection=var_projection, loop_default=loop_default)
            movable = None if all_active else active[state.batch]
            step = contract(state, potential, weights=weights, movable=movable,
                            tie_break=tie_break)
            del potential
        state, relative = step.state, step.partition
        del step
        steps.append(relative)
        levels_kept.append(_stats(state))
        level += 1
        improved = None  # every graph, unless a rule says otherwise
        for rule in (stop.update if stop is not None else None, observer):
            if rule is not None:
                better = rule(relative, state, active)
                if better is not None and level > 1:
                    better = better.to(device=device, dtype=torch.bool)
                    improved = better if improved is None else improved & better
        active, counts, flags = _next_active(active, counts, state.batch, improved, level_cap,
                                             min_blocks, level, levels, stalled)
    # The top: everything connected in a graph becomes one block, size-weighted.
    if state.edge_index is None:
        state = materialize_pixel_state(state, num_graphs, graph.height, graph.width)
    # (The block graph is built here and valid: no input check, no sync for it.)
    top = Partition(*component_labels(state.edge_index[0], state.edge_index[1],
                                      state.num_blocks), canonical=True)
    top_state = pool_blocks(state, top, state.size.to(state.mean.dtype))
    steps.append(top)
    levels_kept.append(_stats(top_state))
    everyone = torch.ones(num_graphs, dtype=torch.bool, device=device)
    if stop is not None:
        stop.update(top, top_state, everyone)
    if observer is not None:
        observer(top, top_state, everyone)
    return HierarchyResult(hierarchy=Hierarchy(steps, n), levels=tuple(levels_kept),
                           num_levels=levels, nodes_per_graph=nodes_per_graph, graph=graph,
                           pos=result_pos, stalled=stalled, stopping=stop)


def _any_all(active: Tensor) -> tuple[bool, bool]:
    """``(active.any(), active.all())`` in one host read."""
    return tuple(torch.stack([active.any(), active.all()]).tolist())


def _first_active(nodes_per_graph: Tensor, level_cap: Tensor, min_blocks: int
                  ) -> tuple[Tensor, Optional[tuple[bool, bool]]]:
    """The graphs (B,) bool that build a first level, and ``(any, all)`` of them when
    known without a host read (the native path; None otherwise)."""
    if _native.enabled("levels", nodes_per_graph, level_cap):
        from .._native.levels import levels_start

        return levels_start(nodes_per_graph, level_cap, min_blocks)
    return (nodes_per_graph > min_blocks) & (level_cap > 0), None


def _next_active(active: Tensor, counts: Tensor, batch: Tensor, improved: Optional[Tensor],
                 level_cap: Tensor, min_blocks: int, level: int, levels: Tensor,
                 stalled: Tensor) -> tuple[Tensor, Tensor, Optional[tuple[bool, bool]]]:
    """The bookkeeping after ``level`` levels: which graphs go on.

    Parameters
    ----------
    active : BoolTensor of shape (B,)
        The graphs that took part in the level.
    counts : LongTensor of shape (B,)
        Their blocks before it.
    batch : LongTensor of shape (K,)
        Graph of every block after it.
    improved : BoolTensor of shape (B,) or None
        Where the stopping rules still improve (None: everywhere).
    level_cap, min_blocks, level
        Most levels per graph (B,); a graph stops at ≤ ``min_blocks`` blocks or once
        ``level_cap ≤ level``.
    levels, stalled : Tensor of shape (B,)
        Levels per graph (int64) and the stalled graphs (bool), updated in place.

    Returns
    -------
    (active (B,) bool, counts (B,) int64, (any, all) of active or None)
        The graphs that go on and the blocks per graph; ``(any, all)`` when known without
        a host read (the native path: one kernel for the ~20 tensor ops here).
    """
    if _native.enabled("levels", active, counts, batch, level_cap, levels, stalled,
                       *(() if improved is None else (improved,))) and (
            improved is None or improved.shape == active.shape):
        from .._native.levels import levels_step

        return levels_step(active, counts, batch, improved, level_cap, min_blocks, level,
                           MIN_MERGED_FRACTION, levels, stalled)
    levels += active.long()
    new_counts = torch.zeros_like(counts).index_add_(0, batch, torch.ones_like(batch))
    # Stalled: merged fewer than MIN_MERGED_FRACTION of the graph's blocks.
    now_stalled = active & ((counts - new_counts).double()
                           < counts.to(torch.float32) * MIN_MERGED_FRACTION)
    stalled |= now_stalled
    active = active & (new_counts > min_blocks) & ~now_stalled & (level_cap > level)
    if improved is not None:
        active = active & improved
    return active, new_counts, None


def _is_pyg_data(obj) -> bool:
    if isinstance(obj, Tensor):
        return False
    from torch_geometric.data.data import BaseData

    return isinstance(obj, BaseData)
