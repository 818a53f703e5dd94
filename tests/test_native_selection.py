"""The native selection kernels (``dhtgraph/_native/selection.c``) give the tensor path's
results bit for bit: the budget's rounds, the pair coalescing, the grid pieces and groups of
the selection, the grid regions' integer statistics, and whole tokenize calls."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

import dhtgraph
from dhtgraph import _native
from dhtgraph.features.pooling import pool_grid_regions
from dhtgraph.graph import grid_edge_index
from dhtgraph.partition import Partition
from dhtgraph.selection.budget import merge_to_budget
from dhtgraph.selection.select import _first_occurrence_groups, _grid_pieces, connected_split
from dhtgraph.testing.graphs import grid_graphs
from dhtgraph.testing.partitions import labels as label_strategy

needs_native = pytest.mark.skipif(
    _native.mode() == "off" or not _native.available("selection"),
    reason=f"native selection kernels not in use here ({_native.status()})")
pytestmark = needs_native


def _both(fn, *args, **kwargs):
    native = fn(*args, **kwargs)
    with _native.disabled():
        tensor = fn(*args, **kwargs)
    return native, tensor


def _same_merge(a, b):
    assert a.merge == b.merge
    assert torch.equal(a.merge.labels, b.merge.labels)
    assert torch.equal(a.kept, b.kept)
    assert torch.equal(a.loss, b.loss)
    assert a.rounds == b.rounds


# ---------------------------------------------------------------- coalesce_pairs

def _torch_coalesce(src, dst, n, relabel=None, undirected=False):
    if relabel is not None:
        src, dst = relabel[src], relabel[dst]
    if undirected:
        src, dst = torch.minimum(src, dst), torch.maximum(src, dst)
    keep = src != dst
    key = torch.unique(src[keep] * n + dst[keep])
    return torch.stack([key // n, key % n])


def test_coalesce_pairs_by_hand():
    from dhtgraph._native.selection import coalesce_pairs
    src = torch.tensor([3, 0, 2, 0, 1, 1, 2])
    dst = torch.tensor([0, 3, 2, 3, 0, 3, 1])
    assert coalesce_pairs(src, dst, 4).tolist() == [[0, 1, 1, 2, 3], [3, 0, 3, 1, 0]]
    assert coalesce_pairs(src, dst, 4, undirected=True).tolist() == [[0, 0, 1, 1], [1, 3, 2, 3]]
    relabel = torch.tensor([0, 0, 1, 1])
    assert coalesce_pairs(src, dst, 2, relabel=relabel).tolist() == [[0, 1], [1, 0]]
    empty = coalesce_pairs(torch.tensor([1]), torch.tensor([1]), 2)
    assert empty.shape == (2, 0) and empty.dtype == torch.long


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), m=st.integers(0, 80), seed=st.integers(0, 2**31 - 1),
       relabelled=st.booleans(), undirected=st.booleans())
def test_coalesce_pairs_equals_unique(n, m, seed, relabelled, undirected):
    from dhtgraph._native.selection import coalesce_pairs
    g = torch.Generator().manual_seed(seed)
    src, dst = torch.randint(0, n, (m,), generator=g), torch.randint(0, n, (m,), generator=g)
    relabel, k = None, n
    if relabelled:
        k = int(torch.randint(1, n + 1, (1,), generator=g))
        relabel = torch.randint(0, k, (n,), generator=g)
    got = coalesce_pairs(src, dst, k, relabel=relabel, undirected=undirected)
    assert torch.equal(got, _torch_coalesce(src, dst, k, relabel, undirected))
    assert got.is_contiguous()


# ---------------------------------------------------------------- the budget

def _grid_case(seed, b, h, w, *, levels=0, double=False, shuffle=False, channels=3):
    g = torch.Generator().manual_seed(seed)
    n = b * h * w
    feats = torch.rand(n, channels, generator=g)
    if levels:
        feats = (feats * levels).floor()
    if double:
        feats = feats.double()
    batch = torch.arange(b).repeat_interleave(h * w)
    edges = grid_edge_index(h, w, b)
    if shuffle:
        perm = torch.randperm(n, generator=g)
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(n)
        feats, batch, edges = feats[perm], batch[perm], inverse[edges]
    return Partition.discrete(n), feats, batch, edges


def test_budget_hand_case_strip():
    part = Partition.discrete(4)
    feats = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
    batch = torch.zeros(4, dtype=torch.long)
    edges = grid_edge_index(1, 4)
    native, tensor = _both(merge_to_budget, part, feats, batch, edges, 2)
    _same_merge(native, tensor)
    assert native.merge.labels.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("levels", [0, 1, 3])          # 1: every cost 0 (hash order only)
@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("images", [1, 3])
def test_budget_native_equals_tensor_on_grids(levels, double, shuffle, images):
    for seed in range(4):
        part, feats, batch, edges = _grid_case(seed, images, 9, 11, levels=levels,
                                               double=double, shuffle=shuffle)
        for budget in (1, 7, 40, 98):
            native, tensor = _both(merge_to_budget, part, feats, batch, edges, budget)
            _same_merge(native, tensor)


@pytest.mark.parametrize("images", [1, 2])
def test_budget_native_equals_tensor_with_a_generator(images):
    part, feats, batch, edges = _grid_case(3, images, 8, 8, levels=2)
    for noise in (0.0, 2.0):
        native = merge_to_budget(part, feats, batch, edges, 10, noise=noise,
                                 generator=torch.Generator().manual_seed(7))
        with _native.disabled():
            tensor = merge_to_budget(part, feats, batch, edges, 10, noise=noise,
                                     generator=torch.Generator().manual_seed(7))
        _same_merge(native, tensor)


def test_budget_native_orders_nan_inf_and_negative_costs_as_torch():
    # Weights of both signs, infinite and NaN features: the cost order of the tensor path
    # (float sort, NaN last; the magnitude bits for float32 batches) must be kept exactly.
    g = torch.Generator().manual_seed(0)
    for images in (1, 2):
        part, feats, batch, edges = _grid_case(1, images, 6, 7, levels=3)
        feats = feats.clone()
        feats[3, 0], feats[10, 1], feats[20, 2] = float("nan"), float("inf"), -0.0
        sizes = torch.randint(1, 4, (feats.shape[0],), generator=g).float()
        sizes[5] = -2.0
        for dtype in (torch.float32, torch.float64):
            native, tensor = _both(merge_to_budget, part, feats.to(dtype), batch, edges, 9,
                                   sizes=sizes)
            assert torch.equal(native.merge.labels, tensor.merge.labels)
            assert torch.equal(native.kept, tensor.kept)
            assert torch.equal(native.loss.isnan(), tensor.loss.isnan())
            assert native.rounds == tensor.rounds


def test_budget_native_keeps_the_disconnected_error():
    part = Partition.discrete(4)
    feats = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
    tokens = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    for batch in (torch.zeros(4, dtype=torch.long), torch.tensor([0, 0, 1, 1])):
        budget = 1
        with pytest.raises(ValueError, match="disconnected") as native:
            merge_to_budget(part, feats, batch, None, budget, token_edge_index=tokens[:, :2])
        with _native.disabled(), pytest.raises(ValueError, match="disconnected") as tensor:
            merge_to_budget(part, feats, batch, None, budget, token_edge_index=tokens[:, :2])
        assert str(native.value) == str(tensor.value)


@settings(max_examples=40, deadline=None)
@given(graph=grid_graphs(max_side=7, max_images=3), data=st.data())
def test_budget_native_equals_tensor_property(graph, data):
    n = graph.num_nodes
    region = Partition(data.draw(label_strategy(n, max_blocks=5)))
    pixels = graph.height * graph.width
    image = torch.arange(graph.num_images).repeat_interleave(pixels)
    seed = data.draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    feats = region.labels.to(torch.float32).unsqueeze(1) + 0.5 * torch.rand(n, 2, generator=g)
    if data.draw(st.booleans()):
        feats = feats.round()                              # many exact ties
    budget = data.draw(st.integers(1, pixels + 1))
    native, tensor = _both(merge_to_budget, Partition.discrete(n), feats, image,
                           graph.edge_index, budget)
    _same_merge(native, tensor)


def test_budget_round_refuses_integer_costs():
    from dhtgraph._native.selection import budget_round
    edges = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="float32 or float64 costs"):
        budget_round(edges, torch.ones(1, dtype=torch.long), torch.ones(1), None,
                     torch.zeros(2, dtype=torch.long), torch.tensor([2]), torch.tensor([1]),
                     packed=False, passes=2)
    with pytest.raises(ValueError, match="contiguous"):
        _native.pointer(torch.zeros(4, 2).t())


# ---------------------------------------------------------------- selection

def test_grid_pieces_by_hand():
    # Block 0 in two pieces (left column, right column), block 1 between them.
    block = torch.tensor([0, 1, 0,
                          0, 1, 0,
                          0, 0, 0,
                          5, 1, 5]).long()
    native, tensor = _both(_grid_pieces, block, 4, 3)
    assert native == tensor
    assert native.labels.tolist() == [0, 1, 0, 0, 1, 0, 0, 0, 0, 2, 3, 4]


@settings(max_examples=60, deadline=None)
@given(graph=grid_graphs(max_side=9, max_images=3), data=st.data())
def test_grid_pieces_native_equals_tensor_property(graph, data):
    n = graph.num_nodes
    block = data.draw(label_strategy(n, max_blocks=4)).long()
    native, tensor = _both(_grid_pieces, block, graph.height, graph.width)
    assert torch.equal(native.labels, tensor.labels) and native.num_blocks == tensor.num_blocks
    # And the edge-list path (the components kernel set or torch) agrees.
    assert native == connected_split(block, graph.edge_index)


def test_deep_winding_grid_pieces():
    # A spiral block: paths far deeper than a few pointer jumps.
    h = w = 40
    block = torch.zeros(h, w, dtype=torch.long)
    block[1::4, 1:-1] = 1
    block[3::4, 1:-1] = 1
    block[1:-1:4, -2] = 1
    block[3:-1:4, 1] = 1
    native, tensor = _both(_grid_pieces, block.view(-1), h, w)
    assert torch.equal(native.labels, tensor.labels)


@settings(max_examples=60, deadline=None)
@given(s=st.integers(0, 60), slots=st.integers(1, 20), seed=st.integers(0, 2**31 - 1))
def test_first_occurrence_groups_equals_tensor(s, slots, seed):
    key = torch.randint(0, slots, (s,), generator=torch.Generator().manual_seed(seed))
    (nl, nf, nk), (tl, tf, tk) = _both(_first_occurrence_groups, key, slots)
    assert torch.equal(nl, tl) and torch.equal(nf, tf) and nk == tk


# ---------------------------------------------------------------- grid regions

@settings(max_examples=50, deadline=None)
@given(graph=grid_graphs(max_side=9, max_images=3), data=st.data())
def test_pool_grid_regions_native_equals_tensor(graph, data):
    n = graph.num_nodes
    part = Partition(data.draw(label_strategy(n, max_blocks=6)))
    x = torch.rand(n, 3, generator=torch.Generator().manual_seed(n))
    native, tensor = _both(pool_grid_regions, part, x, graph.num_images, graph.height,
                           graph.width)
    for name in ("features", "sizes", "bbox", "centroids", "batch"):
        a, b = getattr(native, name), getattr(tensor, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name


# ---------------------------------------------------------------- whole calls

@pytest.mark.parametrize("shape,max_tokens", [((3, 24, 24), 10), ((2, 3, 32, 20), 7),
                                              ((3, 40, 40), 1)])
def test_tokenize_native_equals_tensor(shape, max_tokens):
    torch.manual_seed(0)
    x = (torch.rand(*shape) * 4).floor() / 4                  # plateaus and ties
    native, tensor = _both(dhtgraph.tokenize, x, max_tokens=max_tokens)
    assert native.partition == tensor.partition
    for name in ("batch", "sizes", "bbox", "centroids", "features", "edge_index",
                 "selected_mean", "num_tokens"):
        assert torch.equal(getattr(native, name), getattr(tensor, name)), name


# ---------------------------------------------------------------- IC selector

def _built(seed, b=3, h=14, w=12, stop=None):
    import dataclasses  # noqa: F401
    from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, 3, 4, generator=g) * 3
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="nearest") \
        + 0.1 * torch.rand(b, 3, h, w, generator=g)
    x = img.permute(0, 2, 3, 1).reshape(-1, 3)
    return build_hierarchy(x, PixelGrid(b, h, w), weights="size", stop=stop)


def _same_selection(a, b):
    assert a.partition == b.partition
    for name in ("mean", "var", "ic", "batch"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("criterion,iota", [("aicc", 5.0), ("bic", 2.0), ("aic", 0.05),
                                            ("cic", 50.0)])
def test_replayed_selection_native_equals_tensor(criterion, iota):
    # Replayed levels with images that stopped early (the `active` masks), and iotas that
    # make the first update move every pixel or not.
    from dhtgraph.selection.select import ic_stopping, select_partition
    for seed in range(3):
        built = _built(seed, stop=ic_stopping("aicc", 5.0))
        native, tensor = _both(select_partition, built, criterion, iota)
        _same_selection(native, tensor)
        built = _built(seed)  # running selection with no stopping rule
        native, tensor = _both(select_partition, built, criterion, iota)
        _same_selection(native, tensor)


def test_selector_update_by_hand():
    from dhtgraph.hierarchy.contraction import BlockState
    from dhtgraph.selection.select import InformationSelector

    def level(mean, var, size, batch):
        mean = torch.tensor(mean)
        k = mean.shape[0]
        return BlockState(mean=mean, var=torch.tensor(var), size=torch.tensor(size),
                          bbox=torch.zeros(k, 4, dtype=torch.long),
                          edge_index=torch.zeros(2, 0, dtype=torch.long), batch=batch)

    def run():
        x = torch.tensor([[0.0], [0.0], [0.0], [9.0], [1.0], [1.0]])
        level0 = BlockState.from_pixels(x, torch.zeros(6, 2), grid_edge_index(1, 3, 2),
                                        torch.tensor([0, 0, 0, 1, 1, 1]))
        sel = InformationSelector(level0, 2, 9, "aic", 5.0)
        lvl1 = level([[0.0], [4.5], [1.0]], [[0.0], [1e6], [0.0]], [2, 2, 2],
                     torch.tensor([0, 1, 1]))
        first = sel.update(Partition(torch.tensor([0, 0, 1, 1, 2, 2])), lvl1,
                           torch.tensor([True, True]))
        top = level([[1.5], [1.0]], [[1e7], [0.0]], [3, 3], torch.tensor([0, 1]))
        second = sel.update(Partition(torch.tensor([0, 0, 1])), top, torch.tensor([True, False]))
        out = sel.finish(grid_edge_index(1, 3, 2))
        return first, second, out

    (f1, s1, o1), (f2, s2, o2) = _both(run)
    assert torch.equal(f1, f2) and torch.equal(s1, s2)
    _same_selection(o1, o2)
    assert s1.tolist() == [False, False]


@settings(max_examples=60, deadline=None)
@given(s=st.integers(1, 40), k=st.integers(1, 10), b=st.integers(1, 3),
       seed=st.integers(0, 2**31 - 1), with_current=st.booleans(), with_rows=st.booleans(),
       with_active=st.booleans(), broadcast=st.booleans(), in_place=st.booleans())
def test_selector_kernels_equal_the_tensor_update(s, k, b, seed, with_current, with_rows,
                                                  with_active, broadcast, in_place):
    # ICs from a few values (ties: a block whose IC equals the slot's moves it), NaN and
    # -inf among them; the update's tensor formula of InformationSelector.update.
    from dhtgraph._native.selection import selector_all_move, selector_update
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([-math.inf, -3.0, -1.0, 0.0, -0.0, float("nan")])
    pick = lambda n: values[torch.randint(0, len(values), (n,), generator=g)]  # noqa: E731
    ic_new = pick(k)
    slot_ic = torch.full((), -1.0).expand(s) if broadcast else pick(s)
    current = torch.randint(0, s, (s,), generator=g) if with_current else None
    labels = torch.randint(0, k, (s,), generator=g)
    rows = torch.randint(0, 100, (s,), generator=g) if with_rows else None
    active = torch.rand(b, generator=g) < 0.6 if with_active else None
    slot_batch = torch.randint(0, b, (s,), generator=g)
    # In place: into copies of the slot tensors (the inputs themselves stay for the check).
    given = [None if t is None else t if t.stride(0) == 0 else t.clone()
             for t in (slot_ic, rows, current)]
    out_ic, out_row, out_c, improved = selector_update(labels, given[2], ic_new, given[0],
                                                       given[1], 7, active, slot_batch, b,
                                                       in_place=in_place)
    if in_place:  # the owned tensors were written (a broadcast IC cannot be)
        assert (out_ic is given[0]) == (not broadcast)
        assert (out_row is given[1]) == with_rows and (out_c is given[2]) == with_current
    else:
        assert all(t is None or torch.equal(t.view(torch.int32) if t.dtype == torch.float32
                                            else t, u.view(torch.int32)
                                            if u.dtype == torch.float32 else u)
                   for t, u in zip(given, (slot_ic, rows, current)))
    c = labels if current is None else labels.index_select(0, current)
    ic_c = ic_new.index_select(0, c)
    move = ic_c >= slot_ic
    if active is not None:
        move = move & active.index_select(0, slot_batch)
    want = torch.zeros(b, dtype=torch.uint8).scatter_reduce_(0, slot_batch, move.to(torch.uint8),
                                                             "amax").bool()
    assert torch.equal(improved, want)
    assert torch.equal(out_ic.view(torch.int32), torch.where(move, ic_c, slot_ic).view(torch.int32))
    assert torch.equal(out_row, torch.where(move, c + 7, torch.arange(s) if rows is None else rows))
    assert torch.equal(out_c, c)
    assert selector_all_move(labels, ic_new, slot_ic) == bool(
        (ic_new.index_select(0, labels) >= slot_ic).all())


def test_tokenize_batch_with_worker_threads_native_equals_tensor():
    # The batch workers call the kernels concurrently (re-entrant: no globals, one
    # workspace per call).
    torch.manual_seed(1)
    x = (torch.rand(6, 3, 28, 28) * 5).floor() / 5
    native, tensor = _both(dhtgraph.tokenize, x, max_tokens=12, num_threads=2)
    assert native.partition == tensor.partition
    for name in ("batch", "sizes", "bbox", "centroids", "features", "edge_index"):
        assert torch.equal(getattr(native, name), getattr(tensor, name)), name
