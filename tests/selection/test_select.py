"""Per-region selection across the hierarchy (spec §5)."""

import math
from contextlib import ExitStack

import torch

from dhtgraph.graph import grid_edge_index
from dhtgraph.hierarchy.contraction import BlockState
from dhtgraph.partition import Partition
from dhtgraph.selection.criteria import information_criterion
from dhtgraph.selection.select import InformationSelector


def _level(mean, var, size, batch=None):
    mean = torch.tensor(mean)
    k = mean.shape[0]
    return BlockState(mean=mean, var=torch.tensor(var), size=torch.tensor(size),
                      bbox=torch.zeros(k, 4, dtype=torch.long),
                      edge_index=torch.zeros(2, 0, dtype=torch.long),
                      batch=torch.zeros(k, dtype=torch.long) if batch is None else batch)


def test_selection_moves_pixels_block_by_block():
    # A 1×4 strip: level 1 = {0,1} (good fit) and {2,3} (terrible fit); level 2 = ⊤.
    x = torch.tensor([[0.0], [0.0], [0.0], [9.0]])
    edges = grid_edge_index(1, 4)
    level0 = BlockState.from_pixels(x, torch.tensor([[0, i] for i in range(4)]), edges)
    # pixels_per_image = 9 (not 4) so that pixels start at −3 and a 2-pixel block can win.
    sel = InformationSelector(level0, 1, 9, "aic", 5.0)
    assert torch.equal(sel.ic, torch.full((4,), -3.0))
    lvl1 = _level([[0.0], [4.5]], [[0.0], [1e6]], [2, 2])
    ic1 = information_criterion(lvl1.var, lvl1.size, 9, "aic", 5.0)
    assert ic1[0] >= -3.0 > ic1[1]
    improved = sel.update(Partition(torch.tensor([0, 0, 1, 1])), lvl1)
    assert improved.tolist() == [True]
    assert sel.num_stored == 3  # {0,1} moved; pixels 2 and 3 stayed
    top = _level([[2.25]], [[1e7]], [4])
    improved = sel.update(Partition(torch.tensor([0, 0])), top)
    assert improved.tolist() == [False]
    out = sel.finish(edges)
    assert out.partition.labels.tolist() == [0, 0, 1, 2]
    assert torch.allclose(out.mean, torch.tensor([[0.0], [0.0], [9.0]]))
    assert out.ic[0] == ic1[0] and out.ic[1] == -3.0


def test_inactive_images_never_move():
    x = torch.zeros(4, 1)
    level0 = BlockState.from_pixels(x, torch.zeros(4, 2), grid_edge_index(1, 2, 2),
                                    torch.tensor([0, 0, 1, 1]))
    sel = InformationSelector(level0, 2, 9, "aic", 5.0)
    lvl = _level([[0.0], [0.0]], [[0.0], [0.0]], [2, 2], torch.tensor([0, 1]))
    improved = sel.update(Partition(torch.tensor([0, 0, 1, 1])), lvl, torch.tensor([True, False]))
    assert improved.tolist() == [True, False]
    out = sel.finish(grid_edge_index(1, 2, 2))
    assert out.partition.labels.tolist() == [0, 0, 1, 2]
    assert out.batch.tolist() == [0, 1, 1]


def test_stored_blocks_split_into_connected_pieces():
    # Stored block {0, 2} of a 1×3 strip is not connected: it becomes two tokens.
    x = torch.zeros(3, 1)
    edges = grid_edge_index(1, 3)
    sel = InformationSelector(BlockState.from_pixels(x, torch.zeros(3, 2), edges), 1, 3)
    sel.pixel_block = torch.tensor([0, 1, 0])
    sel.num_stored = 2
    sel.ic, sel.mean, sel.var = torch.zeros(2), torch.zeros(2, 1), torch.zeros(2, 1)
    sel.batch = torch.zeros(2, dtype=torch.long)
    out = sel.finish(edges)
    assert out.partition.num_blocks == 3
    assert math.isclose(float(out.ic.sum()), 0.0)


# ------------------------------------------------------------ selection as its own stage
import dataclasses  # noqa: E402

import pytest  # noqa: E402

from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy  # noqa: E402
from dhtgraph.selection import (CRITERION_FUNCTIONS, Selection, ic_stopping,  # noqa: E402
                                select_partition)


def _photo_features(b=2, h=14, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, 3, 4, generator=g) * 3
    img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="nearest") \
        + 0.1 * torch.rand(b, 3, h, w, generator=g)
    return img.permute(0, 2, 3, 1).reshape(-1, 3)


@pytest.mark.parametrize("criterion, iota", [("aicc", 5.0), ("bic", 2.0), ("aic", 20.0)])
def test_replayed_selection_equals_the_running_one(criterion, iota):
    x = _photo_features()
    built = build_hierarchy(x, PixelGrid(2, 14, 12), weights="size",
                            stop=ic_stopping(criterion, iota))
    running = select_partition(built, criterion, iota)
    replayed = select_partition(dataclasses.replace(built, stopping=None), criterion, iota)
    assert running.partition == replayed.partition
    for name in ("mean", "var", "ic", "batch"):
        assert torch.equal(getattr(running, name), getattr(replayed, name)), name


def test_reselecting_with_another_iota_changes_the_count_monotonically():
    x = _photo_features(1, 24, 24, seed=3)
    built = build_hierarchy(x, PixelGrid(1, 24, 24), weights="size")  # no IC stopping
    counts = [select_partition(built, "aicc", iota).partition.num_blocks
              for iota in (0.5, 5.0, 50.0)]
    assert counts[0] <= counts[1] <= counts[2] and counts[0] < counts[2]
    for iota in (0.5, 50.0):
        assert select_partition(built, "aicc", iota).partition.refines(
            built.hierarchy.absolute(built.hierarchy.num_levels - 1))


@pytest.fixture
def register_criterion():
    """``register(name, function)`` for one test: the criterion registry is process-wide,
    so what a test registers is removed after it."""
    with ExitStack() as stack:
        yield lambda name, function: stack.enter_context(
            CRITERION_FUNCTIONS.registered(name, function))


def test_a_registered_criterion_is_one_function(register_criterion):
    def everything_is_good(var, size, num_pixels, iota):
        # Every block beats its parts: the coarsest level (the top) wins everywhere.
        return size.to(torch.float32)

    register_criterion("test-size", everything_is_good)
    x = _photo_features(1)
    built = build_hierarchy(x, PixelGrid(1, 14, 12))
    sel = select_partition(built, "test-size", 1.0)
    assert sel.partition.num_blocks == 1
    from dhtgraph.nn import DHTConfig

    assert DHTConfig(criterion="test-size").criterion == "test-size"


def test_selection_is_frozen_and_validated():
    p = Partition(torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="'mean' and 'var' of shape"):
        Selection(p, torch.zeros(3, 1), torch.zeros(3, 1), torch.zeros(2),
                  torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="'ic' of shape"):
        Selection(p, torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(3),
                  torch.zeros(2, dtype=torch.long))
    sel = Selection(p, torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2),
                    torch.zeros(2, dtype=torch.long))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sel.mean = torch.ones(2, 1)


def test_bad_selection_input():
    with pytest.raises(TypeError, match="'result'"):
        select_partition("not a hierarchy")
    built = build_hierarchy(_photo_features(1), PixelGrid(1, 14, 12))
    with pytest.raises(ValueError, match="'criterion'"):
        select_partition(built, "xic")
    with pytest.raises(ValueError, match="'iota'"):
        select_partition(built, "aicc", -1.0)


@pytest.mark.parametrize("seed", range(2))
def test_grid_pieces_of_deep_winding_blocks_equal_the_edge_pieces(seed):
    # Two labels at random on 48×40: blocks wind through the whole image (forest paths
    # far deeper than one round of jumps resolves), several images.
    from dhtgraph.selection.select import connected_split

    g = torch.Generator().manual_seed(seed)
    b, h, w = 2, 48, 40
    labels = (torch.rand(b * h * w, generator=g) < 0.55).long()
    edges = grid_edge_index(h, w, b)
    by_grid = connected_split(labels, image_size=(h, w))
    by_edges = connected_split(labels, edges)
    inside = labels[edges[0]] == labels[edges[1]]
    from dhtgraph.graph import connected_components

    expected = connected_components(edges[:, inside], labels.numel())
    assert by_grid == expected and by_edges == expected
    assert by_grid.num_blocks == expected.num_blocks > 20


def _bits(t):
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def test_the_selector_reads_penalties_from_a_table_with_the_same_values(monkeypatch):
    # The built-in criteria: one table per selector (no block is larger than all nodes);
    # the selection equals the one with the penalties computed per level, natively and
    # on the tensor path, with the running selection and replayed with other criteria.
    import dhtgraph
    from dhtgraph import _native
    from dhtgraph.selection import select as SE

    g = torch.Generator().manual_seed(5)
    x = (torch.rand(2, 3, 24, 20, generator=g) * 6).floor() / 6
    sel = InformationSelector(BlockState.from_pixels(torch.zeros(12, 1), torch.zeros(12, 2),
                                                     grid_edge_index(3, 4, 1)), 1, 12, "bic")
    assert sel._penalties is not None and sel._penalties.numel() >= 13

    def run():
        out = [dhtgraph.tokenize(x, max_tokens=30, criterion=c, iota=i)
               for c, i in (("aicc", 5.0), ("bic", 0.5), ("cic", 30.0), ("aic", 2.0))]
        return [(t.partition, t.features) for t in out]

    def both():
        native = run()
        with _native.disabled():
            return native, run()

    with_table = both()
    monkeypatch.setattr(SE.InformationSelector, "_penalty_table", lambda self, level0: None)
    without = both()
    for a, b in zip(with_table[0] + with_table[1], without[0] + without[1]):
        assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_no_table_for_a_registered_criterion(register_criterion):
    name = "test_table_free"
    register_criterion(name, lambda var, size, n, iota: -size.float())
    level0 = BlockState.from_pixels(torch.zeros(4, 1), torch.zeros(4, 2), grid_edge_index(2, 2, 1))
    assert InformationSelector(level0, 1, 4, name)._penalties is None
    assert name in CRITERION_FUNCTIONS


def test_views_read_before_an_update_keep_their_values():
    # Later updates write into the slot tensors of earlier ones (native, in place): what
    # was read from the selector before (ic, current, pixel_block, a Selection) keeps its
    # values.
    from dhtgraph import _native

    level0 = BlockState.from_pixels(torch.tensor([[0.0], [0.1], [5.0], [5.2], [9.0], [9.1]]),
                                    torch.zeros(6, 2), grid_edge_index(1, 6, 1))
    chain = [[0, 0, 1, 2, 3, 4], [0, 1, 1, 2, 3], [0, 0, 1, 2], [0, 1, 1], [0, 0]]
    levels, sizes = [], [1] * 6
    g = torch.Generator().manual_seed(6)
    for labels in chain:
        k = max(labels) + 1
        sizes = [sum(m for m, l in zip(sizes, labels) if l == j) for j in range(k)]
        var = (torch.rand(k, 1, generator=g) * 4).floor() / 4  # ties of the IC too
        levels.append((Partition(torch.tensor(labels)),
                       _level(torch.rand(k, 1, generator=g).tolist(), var.tolist(), sizes)))

    def run():
        sel = InformationSelector(level0, 1, 36, "aic", 0.5)
        seen = []
        for partition, state in levels:
            sel.update(partition, state)
            seen.append((sel.ic.clone(), sel.current.clone(), sel.pixel_block.clone(),
                         sel.ic, sel.current, sel.pixel_block))
            if len(seen) == 3:  # assigned stored blocks: the caller's tensors stay as given
                given_ic = sel.ic.clone()
                sel.ic = given_ic
                seen.append((given_ic.clone(), sel.current.clone(), sel.pixel_block.clone(),
                             given_ic, sel.current, sel.pixel_block))
        for ic, cur, pb, ic_view, cur_view, pb_view in seen:
            assert torch.equal(_bits(ic), _bits(ic_view)) and torch.equal(cur, cur_view)
            assert torch.equal(pb, pb_view)
        return [[_bits(t) for t in views[:3]] for views in seen]

    native = run()
    with _native.disabled():
        tensor = run()
    assert all(torch.equal(a, b) for u, v in zip(native, tensor) for a, b in zip(u, v))


def test_sizes_beyond_the_selectors_table_are_computed(monkeypatch):
    # A normaliser n smaller than the graph (the CPU table then ends at n): larger blocks
    # get the formula's values, the same as the criterion function's.
    from dhtgraph.selection import criteria
    from dhtgraph.selection.select import CRITERION_FUNCTIONS

    monkeypatch.setattr(criteria, "_PENALTY_TABLES", {})

    level0 = BlockState.from_pixels(torch.zeros(6, 1), torch.zeros(6, 2), grid_edge_index(1, 6, 1))
    sel = InformationSelector(level0, 1, 2, "cic")
    state = _level([[0.0], [1.0]], [[0.5], [0.25]], [2, 4])
    want = CRITERION_FUNCTIONS.resolve("cic")(state.var, state.size, 2, sel.iota)
    assert sel._penalties is not None and sel._penalties.numel() == 3
    assert torch.equal(sel.block_ic(state), want)


# ------------------------------------------------------------- bad inputs (both paths)

def _strip_selector():
    x = torch.tensor([[0.0], [0.0], [0.0], [9.0]])
    level0 = BlockState.from_pixels(x, torch.tensor([[0, i] for i in range(4)]),
                                    grid_edge_index(1, 4))
    return InformationSelector(level0, 1, 9, "aic", 5.0)


@pytest.mark.parametrize("native", [True, False])
def test_update_refuses_a_state_with_other_blocks_and_a_bad_active(native):
    from dhtgraph import _native
    import contextlib
    lvl1 = _level([[0.0], [4.5]], [[0.0], [1e6]], [2, 2])
    small = _level([[0.0]], [[0.0]], [4])
    with contextlib.nullcontext() if native else _native.disabled():
        sel = _strip_selector()
        with pytest.raises(ValueError, match="'state'"):
            sel.update(Partition(torch.tensor([0, 0, 1, 1])), small)
        for active in (torch.tensor([True, True]), torch.tensor([[True]])):
            with pytest.raises(ValueError, match="'active'"):
                sel.update(Partition(torch.tensor([0, 0, 1, 1])), lvl1, active)
        # nothing was changed by the refused updates
        assert sel.update(Partition(torch.tensor([0, 0, 1, 1])), lvl1).tolist() == [True]
        assert sel.num_stored == 3


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("image_size", [(1, 3), (0, 4), (4, 0), (3, 3), (-2, -2), (-1, -4)])
def test_finish_and_connected_split_check_image_size(native, image_size):
    from dhtgraph import _native
    from dhtgraph.selection.select import connected_split
    import contextlib
    with contextlib.nullcontext() if native else _native.disabled():
        with pytest.raises(ValueError, match="image_size"):
            connected_split(torch.tensor([0, 0, 1, 1]), image_size=image_size)
        with pytest.raises(ValueError, match="image_size"):
            _strip_selector().finish(image_size=image_size)
        assert connected_split(torch.tensor([0, 1, 1, 0]), image_size=(2, 2)).num_blocks == 4


def test_connected_split_compares_float_labels():
    from dhtgraph import _native
    from dhtgraph.selection.select import connected_split
    for labels, image_size, blocks in (([0.2, 0.7, 0.7, 0.7], (1, 4), 2),
                                       ([0.2, 0.7, 0.7, 0.2], (2, 2), 4)):
        labels = torch.tensor(labels)  # 0.2 and 0.7: different blocks (not truncated to 0)
        native = connected_split(labels, image_size=image_size)
        with _native.disabled():
            tensor = connected_split(labels, image_size=image_size)
        assert native == tensor and native.num_blocks == blocks


def test_penalty_table_is_exported():
    import dhtgraph.selection as selection
    assert "penalty_table" in selection.__all__ and callable(selection.penalty_table)

