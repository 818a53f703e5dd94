"""The native selection kernels (``dhtgraph/_native/selection.c``) give the tensor path's
results bit for bit: the budget's rounds, the pair coalescing, the grid pieces and groups of
the selection, the grid regions' integer statistics, and whole tokenize calls."""

from __future__ import annotations

import contextlib

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
# (the kernel itself: tests/test_native_edges.py)

@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), m=st.integers(0, 80), seed=st.integers(0, 2**31 - 1))
def test_coalesce_pairs_equals_the_library_tensor_paths(n, m, seed):
    # The callers' tensor paths: the budget's undirected unit graph and the token
    # quotient (Partition.quotient without self-loops).
    from dhtgraph.nn.tokens import _quotient
    from dhtgraph.selection.budget import _undirected
    g = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, n, (2, m), generator=g)
    native, tensor = _both(_undirected, edges, n)
    assert torch.equal(native, tensor)
    step = Partition(torch.randint(0, max(1, n // 2), (n,), generator=g))
    native, tensor = _both(_quotient, step, edges)
    assert torch.equal(native, tensor)


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


def _slot_selector(slot_ic, rows, current, slot_batch, b):
    # An InformationSelector after its first update, in the given slot state.
    from dhtgraph.hierarchy.contraction import BlockState
    from dhtgraph.selection.select import InformationSelector
    s = slot_batch.numel()
    level0 = BlockState(mean=torch.zeros(s, 1), var=torch.zeros(s, 1),
                        size=torch.ones(s, dtype=torch.long), bbox=None, edge_index=None,
                        batch=slot_batch)
    sel = InformationSelector(level0, b, 4, "aicc", 5.0)
    sel._initial = False
    sel._slot_ic, sel._slot_row, sel._slot_current = slot_ic, rows, current
    return sel


def _level(labels, ic_new, batch):
    from dhtgraph.hierarchy.contraction import BlockState
    k = ic_new.numel()
    state = BlockState(mean=torch.zeros(k, 1), var=torch.zeros(k, 1),
                       size=torch.ones(k, dtype=torch.long), bbox=None, edge_index=None,
                       batch=batch)
    return Partition(labels, k, canonical=True), state


@settings(max_examples=60, deadline=None)
@given(s=st.integers(1, 40), k=st.integers(1, 10), b=st.integers(1, 3),
       seed=st.integers(0, 2**31 - 1), with_current=st.booleans(), with_rows=st.booleans(),
       with_active=st.booleans(), broadcast=st.booleans())
def test_selector_kernels_equal_the_tensor_update(s, k, b, seed, with_current, with_rows,
                                                  with_active, broadcast):
    # InformationSelector.update natively vs its tensor path (under disabled()), two
    # updates in a row (the second writes into the slot tensors of the first), ICs from a
    # few values (ties: a block whose IC equals the slot's moves it), NaN and -inf among
    # them.
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([-math.inf, -3.0, -1.0, 0.0, -0.0, float("nan")])
    pick = lambda n: values[torch.randint(0, len(values), (n,), generator=g)]  # noqa: E731
    slot_ic = torch.full((), -1.0).expand(s) if broadcast else pick(s)
    current = torch.randint(0, s, (s,), generator=g) if with_current else None
    rows = torch.randint(0, s, (s,), generator=g) if with_rows else None
    slot_batch = torch.randint(0, b, (s,), generator=g)
    levels = []
    for size in (s, None):  # the first level has s items (the slots' current blocks)
        kk = k if size is not None else None
        n_items = size if size is not None else levels[-1][0].num_blocks
        labels = torch.randint(0, kk or max(1, n_items // 2), (n_items,), generator=g)
        labels = Partition(labels).labels
        kk = int(labels.max()) + 1
        ic_new = pick(kk)
        batch = torch.randint(0, b, (kk,), generator=g)
        active = torch.rand(b, generator=g) < 0.6 if with_active else None
        levels.append((*_level(labels, ic_new, batch), ic_new, active))

    def run():
        sel = _slot_selector(slot_ic, None if rows is None else rows.clone(),
                             None if current is None else current.clone(), slot_batch, b)
        out = []
        for partition, state, ic_new, active in levels:
            sel.block_ic = lambda state, ic=ic_new: ic
            improved = sel.update(partition, state, active)
            out.append((improved, sel._slot_ic.clone(), sel._rows_of_slots().clone(),
                        None if sel._slot_current is None else sel._slot_current.clone()))
        return out

    native, tensor = _both(run)
    for (i1, c1, r1, k1), (i2, c2, r2, k2) in zip(native, tensor):
        assert torch.equal(i1, i2)
        assert torch.equal(c1.view(torch.int32), c2.view(torch.int32))
        assert torch.equal(r1, r2)
        assert (k1 is None) == (k2 is None) and (k1 is None or torch.equal(k1, k2))


@settings(max_examples=40, deadline=None)
@given(s=st.integers(1, 30), k=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_selector_first_update_equals_the_tensor_path(s, k, seed):
    # The first update (every node moves, or not) through InformationSelector both ways.
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([-math.inf, -3.0, -2.0, 0.0, float("nan")])
    labels = Partition(torch.randint(0, k, (s,), generator=g)).labels
    kk = int(labels.max()) + 1
    ic_new = values[torch.randint(0, len(values), (kk,), generator=g)]
    partition, state = _level(labels, ic_new, torch.zeros(kk, dtype=torch.long))

    def run():
        sel = _slot_selector(torch.full((), -2.0).expand(s), None, None,
                             torch.zeros(s, dtype=torch.long), 1)
        sel._initial = True
        sel.block_ic = lambda state: ic_new
        improved = sel.update(partition, state)
        return improved, sel._slot_ic.clone(), sel._rows_of_slots().clone()

    (a1, b1, c1), (a2, b2, c2) = _both(run)
    assert torch.equal(a1, a2) and torch.equal(b1.view(torch.int32), b2.view(torch.int32))
    assert torch.equal(c1, c2)


# ---------------------------------------------------------------- bad inputs (review)
# (the selection's own checks on both paths: tests/selection/test_select.py)

def test_bindings_keep_converted_inputs_alive():
    # int32 and strided inputs are converted (copies that must live until the kernel
    # returns); the results equal those of contiguous int64 inputs.
    from dhtgraph._native.edges import coalesce_pairs
    from dhtgraph._native.selection import first_occurrence_groups
    g = torch.Generator().manual_seed(3)
    src, dst = torch.randint(0, 50, (400,), generator=g), torch.randint(0, 50, (400,), generator=g)
    relabel = torch.randint(0, 9, (50,), generator=g)
    want = coalesce_pairs(src, dst, 9, relabel=relabel)
    for _ in range(20):
        strided = torch.stack([relabel, relabel]).t().reshape(-1)[::2]  # stride 2
        wide = torch.zeros(50, 2, dtype=torch.long)
        wide[:, 0] = relabel
        for rel in (relabel.int(), wide[:, 0], strided):
            got = coalesce_pairs(src.int(), torch.stack([dst, dst])[0][::1], 9, relabel=rel)
            assert torch.equal(got, want)
        got = coalesce_pairs(torch.stack([src, dst], 1)[:, 0], torch.stack([src, dst], 1)[:, 1],
                             9, relabel=wide[:, 0])
        assert torch.equal(got, want)
    key = torch.randint(0, 7, (100,), generator=g)
    wide = torch.zeros(100, 3, dtype=torch.long)
    wide[:, 1] = key
    for got in (first_occurrence_groups(key.int(), 7), first_occurrence_groups(wide[:, 1], 7)):
        assert all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
                   for x, y in zip(got, first_occurrence_groups(key, 7)))


def test_update_with_assigned_out_of_range_slots_raises():
    # Assigned stored blocks whose batch or current are out of range: the tensor path
    # raises, the native path too (nothing is written out of bounds).
    from dhtgraph.hierarchy.contraction import BlockState
    from dhtgraph.selection.select import InformationSelector

    def make():
        x = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
        level0 = BlockState.from_pixels(x, torch.zeros(4, 2), grid_edge_index(1, 2, 2),
                                        torch.tensor([0, 0, 1, 1]))
        sel = InformationSelector(level0, 2, 2, "aic", 5.0)
        partition, state = _level(torch.tensor([0, 0, 1, 1]), torch.zeros(2), torch.tensor([0, 1]))
        sel.block_ic = lambda state: torch.tensor([5.0, 5.0])
        sel.update(partition, state)
        return sel

    top = _level(torch.tensor([0, 0]), torch.zeros(1), torch.tensor([0]))
    for name, value, error in (("batch", torch.tensor([0, 7]), (IndexError, RuntimeError)),
                               ("batch", torch.tensor([0, -1]), (IndexError, RuntimeError)),
                               ("current", torch.tensor([0, 9]), (IndexError, RuntimeError)),
                               ("batch", torch.tensor([0, 1, 1]), ValueError),
                               ("current", torch.tensor([0]), ValueError),
                               ("ic", torch.zeros(3), ValueError)):
        for disabled in (False, True):
            sel = make()
            setattr(sel, name, value)
            sel.block_ic = lambda state: torch.tensor([1.0])
            with _native.disabled() if disabled else contextlib.nullcontext():
                with pytest.raises(error):
                    sel.update(*top)


def test_selector_update_binding_range_checks_write_nothing():
    from dhtgraph._native.selection import selector_all_move, selector_update
    labels, ic = torch.tensor([0, 1, 1]), torch.zeros(2)
    slot_ic, batch = torch.ones(3), torch.tensor([0, 0, 1])
    keep = slot_ic.clone()
    for kwargs, match in (({"current": torch.tensor([0, 3, 1])}, "'current'"),
                          ({"labels": torch.tensor([0, 2, 1])}, "'labels'"),
                          ({"batch": torch.tensor([0, 2, 1])}, "'batch'"),
                          ({"batch": torch.tensor([0, -1, 1])}, "'batch'")):
        args = dict(labels=labels, current=None, batch=batch) | kwargs
        with pytest.raises(IndexError, match=match):
            selector_update(args["labels"], args["current"], ic, slot_ic, None, 0, None,
                            args["batch"], 2, in_place=True)
        assert torch.equal(slot_ic, keep)
    with pytest.raises(ValueError, match="'slot_ic'"):
        selector_update(labels, None, ic, torch.ones(2), None, 0, None, batch, 2)
    with pytest.raises(ValueError, match="'rows'"):
        selector_update(labels, None, ic, slot_ic, torch.zeros(2, dtype=torch.long), 0, None,
                        batch, 2)
    with pytest.raises(ValueError, match="'active'"):
        selector_update(labels, None, ic, slot_ic, None, 0, torch.ones(3, dtype=torch.bool),
                        batch, 2)
    with pytest.raises(IndexError, match="'labels'"):
        selector_all_move(torch.tensor([0, 5, 1]), ic, torch.full((3,), -1.0))
    assert not selector_all_move(torch.tensor([0, 1, 5]), ic, torch.tensor([-1.0, 1.0, 0.0]))
    # int32 and strided inputs: the same as int64 contiguous ones
    wide = torch.zeros(3, 2, dtype=torch.long)
    wide[:, 0] = batch
    a = selector_update(labels.int(), torch.tensor([2, 0, 1]).int(), ic, slot_ic, None, 3, None,
                        wide[:, 0], 2)
    b = selector_update(labels, torch.tensor([2, 0, 1]), ic, slot_ic, None, 3, None, batch, 2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_kernels_range_check_their_labels():
    from dhtgraph._native.selection import (budget_kept, first_occurrence_groups,
                                            grid_pieces_of_slots, grid_region_stats)
    with pytest.raises(IndexError, match="'key'"):
        first_occurrence_groups(torch.tensor([0, 4]), 4)
    with pytest.raises(IndexError, match="'key'"):
        first_occurrence_groups(torch.tensor([-1, 0]), 4)
    with pytest.raises(IndexError, match="'labels'"):
        grid_region_stats(torch.tensor([0, 1, 2, 3]), 3, 1, 2, 2)
    with pytest.raises(ValueError, match="'image_size'"):
        grid_region_stats(torch.tensor([0, 1, 2]), 3, 1, 2, 2)
    with pytest.raises(IndexError, match="'labels'"):
        budget_kept(torch.tensor([0, 2]), torch.tensor([1, 1]), 2)
    with pytest.raises(IndexError, match="'node_slot'"):
        grid_pieces_of_slots(torch.tensor([0, 1]), torch.tensor([0, 1, 2, 1]), 4, 2, 2)
    for node_slot in (None, torch.tensor([0, 0, 0, 0])):  # empty rows: no slot is valid
        with pytest.raises(IndexError, match="'node_slot' in \\[0, 0\\)"):
            grid_pieces_of_slots(torch.zeros(0, dtype=torch.long), node_slot, 4, 2, 2)
    with pytest.raises(ValueError, match="image_size"):
        grid_pieces_of_slots(None, None, 5, 2, 2)
    labels, k, slot = grid_pieces_of_slots(torch.tensor([0, 1]).int(), torch.tensor([0, 0, 1, 1]),
                                           4, 2, 2)
    assert labels.tolist() == [0, 0, 1, 1] and k == 2


def test_budget_workspace_checks_dtypes_shapes_and_ranges():
    from dhtgraph._native.selection import BudgetWorkspace
    state = torch.rand(4, 3)
    edges = torch.tensor([[0, 1, 2], [1, 2, 3]])
    batch, units, excess = torch.zeros(4, dtype=torch.long), torch.tensor([4]), torch.tensor([2])
    cost, union = torch.rand(3), torch.full((3,), 2.0)
    work = BudgetWorkspace(state, edges, 1)
    with pytest.raises(ValueError, match="int64"):
        work.round(edges.int(), cost, union, None, batch, units, excess, packed=False, passes=2)
    with pytest.raises(ValueError, match="int64"):
        work.round(edges, cost, union, None, batch.int(), units, excess, packed=False, passes=2)
    with pytest.raises(ValueError, match="contiguous"):
        work.round(torch.stack([edges[1], edges[0]], 1).t(), cost, union, None, batch, units,
                   excess, packed=False, passes=2)
    with pytest.raises(IndexError, match="'edges'"):
        work.round(torch.tensor([[0, 1, 2], [1, 2, 9]]), cost, union, None, batch, units,
                   excess, packed=False, passes=2)
    with pytest.raises(IndexError, match="'unit_batch'"):
        work.round(edges, cost, union, None, torch.tensor([0, 0, 1, 0]), units, excess,
                   packed=False, passes=2)
    with pytest.raises(ValueError, match="at most"):
        work.round(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]), torch.rand(4),
                   torch.full((4,), 2.0), None, torch.zeros(5, dtype=torch.long), torch.tensor([5]),
                   excess, packed=False, passes=2)
    # NaN / inf union sizes: converted by torch (.long(), as the tensor path's key)
    pair = work.round(edges, cost, torch.tensor([math.nan, math.inf, 2.0]), None, batch, units,
                      excess, packed=False, passes=2)
    assert pair.shape[0] == 2
    labels = torch.arange(4)
    merged = torch.rand(pair.shape[1], 3)
    with pytest.raises(ValueError, match="int64"):
        work.contract(state, merged, batch, excess, units, labels.int(), edges)
    work.round(edges, cost, union, None, batch, units, excess, packed=False, passes=2)
    with pytest.raises(IndexError, match="'labels'"):
        work.contract(state, merged, batch, excess.clone(), units.clone(), torch.tensor([0, 9]),
                      edges)


def test_tokenize_batch_with_worker_threads_native_equals_tensor():
    # The batch workers call the kernels concurrently (re-entrant: no globals, one
    # workspace per call).
    torch.manual_seed(1)
    x = (torch.rand(6, 3, 28, 28) * 5).floor() / 5
    native, tensor = _both(dhtgraph.tokenize, x, max_tokens=12, num_threads=2)
    assert native.partition == tensor.partition
    for name in ("batch", "sizes", "bbox", "centroids", "features", "edge_index"):
        assert torch.equal(getattr(native, name), getattr(tensor, name)), name


def test_budget_round_and_compact_functions_equal_the_workspace():
    from dhtgraph._native.selection import BudgetWorkspace, budget_compact, budget_round
    g = torch.Generator().manual_seed(5)
    state = torch.rand(6, 2, generator=g)
    edges = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    batch, units, excess = torch.zeros(6, dtype=torch.long), torch.tensor([6]), torch.tensor([3])
    cost, union = torch.rand(5, generator=g), torch.full((5,), 2.0)
    pair, step, target = budget_round(edges.int(), cost, union, None, batch.int(), units, excess,
                                      packed=False, passes=2)
    work = BudgetWorkspace(state, edges, 1)
    assert torch.equal(pair, work.round(edges, cost, union, None, batch, units, excess,
                                        packed=False, passes=2))
    merged = torch.rand(pair.shape[1], 2, generator=g)
    ex1, un1, lab1 = excess.clone(), units.clone(), torch.arange(6)
    new_state, new_batch = budget_compact(state, pair, step, target, merged, batch, ex1, un1, lab1)
    ex2, un2, lab2 = excess.clone(), units.clone(), torch.arange(6)
    s2, b2, _ = work.contract(state, merged, batch, ex2, un2, lab2, edges)
    assert torch.equal(new_state, s2) and torch.equal(new_batch, b2)
    assert torch.equal(ex1, ex2) and torch.equal(un1, un2) and torch.equal(lab1, lab2)
    with pytest.raises(IndexError, match="'labels'"):
        budget_compact(state, pair, step, target, merged, batch, ex1, un1, torch.tensor([7]))
    with pytest.raises(ValueError, match="int64"):
        budget_compact(state, pair, step, target, merged, batch, ex1.int(), un1, lab1)
