"""Building the hierarchy: chain property, stopping rules per graph, the top, general graph
batches and the pixel-grid fast path (spec §4)."""

import pytest
import torch

from dhtgraph.graph import grid_edge_index
from dhtgraph.hierarchy import build as build_module
from dhtgraph.hierarchy.build import (MIN_MERGED_FRACTION, PixelGrid, build_hierarchy,
                                      max_levels_for, prepare_edge_index)
from dhtgraph.hierarchy.contraction import BlockState
from dhtgraph.selection import ic_stopping, select_partition

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _features(images):
    b, c, h, w = images.shape
    return images.permute(0, 2, 3, 1).reshape(-1, c)


def _general(images):
    """(x, edge_index, batch, pos) of the same pixel grid, as a PyG user has it."""
    b, c, h, w = images.shape
    grid = PixelGrid(b, h, w)
    return _features(images), grid_edge_index(h, w, b), grid.batch(), grid.pos()


def _images(b=2, h=12, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, 3, 3, generator=g) * 4
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True) \
        + 0.05 * torch.rand(b, 3, h, w, generator=g)


def test_max_levels():
    assert max_levels_for(224, 224) == 8
    assert max_levels_for(1, 1) == 0
    assert max_levels_for(2, 2) == 1
    # Per graph of n nodes, same arithmetic.
    n = torch.tensor([1, 2, 4, 50176, 1000])
    assert build_module._max_levels_per_graph(n).tolist() == [max_levels_for(int(k)) for k in n]


def test_hierarchy_is_a_connected_chain_ending_in_one_block_per_image():
    images = _images()
    built = build_hierarchy(_features(images), PixelGrid(2, 12, 10), compactness=0.1)
    h = built.hierarchy
    edges = grid_edge_index(12, 10, 2)
    h.validate(edges)
    top = h.absolute(h.num_levels - 1)
    assert top.num_blocks == 2
    assert torch.equal(top.labels, torch.arange(2).repeat_interleave(120))
    # Level 1 has no loops: every pixel joins a neighbour, so the count at least halves.
    assert h.num_blocks[1] <= h.num_blocks[0] // 2
    assert len(built.levels) == h.num_levels
    for t, st in enumerate(built.levels):
        assert st.num_blocks == h.num_blocks[t]
        assert int(st.size.sum()) == 240
        # The kept statistics are those of the blocks: size = pixels of each block.
        assert torch.equal(st.size, h.absolute(t).sizes)
    assert built.nodes_per_graph.tolist() == [120, 120]


@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
@pytest.mark.parametrize("device", DEVICES)
def test_grid_fast_path_is_bit_identical_to_the_general_path(weights, device):
    images = _images(3, 13, 11, seed=4).to(device)
    x, edges, batch, pos = (t.to(device) for t in _general(images))
    options = dict(compactness=0.1, weights=weights)
    fast = build_hierarchy(x, PixelGrid(3, 13, 11), stop=ic_stopping("aicc", 5.0), **options)
    slow = build_hierarchy(x, edges, batch, pos=pos, stop=ic_stopping("aicc", 5.0), **options)
    assert fast.hierarchy.num_blocks == slow.hierarchy.num_blocks
    for t in range(fast.hierarchy.num_levels):
        assert fast.hierarchy.level(t) == slow.hierarchy.level(t)
        assert torch.equal(fast.levels[t].mean, slow.levels[t].mean)
        assert torch.equal(fast.levels[t].var, slow.levels[t].var)
    assert torch.equal(fast.num_levels, slow.num_levels)
    a, b = select_partition(fast, "aicc", 5.0), select_partition(slow, "aicc", 5.0)
    assert a.partition == b.partition and torch.equal(a.mean, b.mean)


def test_graphs_of_different_sizes_get_what_they_get_alone():
    """A PyG batch of graphs of any sizes: each graph's levels, stopping and selection are
    those it gets alone (per-graph max levels ⌈log₂ √n⌉ and IC normaliser n)."""
    parts = [_images(1, 12, 10, seed=1), _images(1, 5, 7, seed=2), _images(1, 16, 16, seed=3)]
    graphs = [_general(p) for p in parts]
    offsets = [0, 120, 155]
    x = torch.cat([g[0] for g in graphs])
    edges = torch.cat([g[1] + o for g, o in zip(graphs, offsets)], dim=1)
    batch = torch.cat([torch.full((g[0].shape[0],), i) for i, g in enumerate(graphs)])
    pos = torch.cat([g[3] for g in graphs])
    built = build_hierarchy(x, edges, batch, pos=pos, stop=ic_stopping())
    sel = select_partition(built)
    assert built.nodes_per_graph.tolist() == [120, 35, 256]
    for i, (xi, ei, _, pi) in enumerate(graphs):
        alone = build_hierarchy(xi, ei, pos=pi, stop=ic_stopping())
        assert int(alone.num_levels[0]) == int(built.num_levels[i])
        mine = select_partition(alone)
        keep = sel.batch == i
        assert int(keep.sum()) == mine.partition.num_blocks
        assert torch.equal(sel.mean[keep], mine.mean)
        start = offsets[i]
        labels = sel.partition.labels[start:start + xi.shape[0]]
        assert torch.equal(labels - labels.min(), mine.partition.labels)
    # ptr instead of batch gives the same.
    ptr = torch.tensor([0, 120, 155, 411])
    again = build_hierarchy(x, edges, ptr=ptr, pos=pos, stop=ic_stopping())
    assert select_partition(again).partition == sel.partition


def test_pyg_data_input_and_learnable_potentials():
    """build_hierarchy + select_partition on a PyG Batch, with a learnable variance
    projection: gradients reach it and the features (gradients on)."""
    from torch_geometric.data import Batch, Data

    torch.manual_seed(0)
    graphs = []
    for seed, (h, w) in enumerate([(6, 5), (4, 9)]):
        xg, eg, _, pg = _general(_images(1, h, w, seed=seed))
        graphs.append(Data(x=xg, edge_index=eg, pos=pg.float()))
    data = Batch.from_data_list(graphs)
    x = data.x.clone().requires_grad_(True)
    data.x = x
    proj = torch.nn.Linear(3, 1)
    built = build_hierarchy(data, compactness=0.05, var_projection=proj, stop=ic_stopping())
    sel = select_partition(built)
    assert int(sel.batch.max()) == 1 and sel.partition.is_connected(data.edge_index)
    loss = sel.mean.pow(2).sum() + built.levels[1].mean.sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert proj.weight.grad is not None and torch.isfinite(proj.weight.grad).all()


def test_stopping_rules_are_per_image():
    images = _images(3, seed=1)
    calls = []

    def observer(partition, st, active):
        calls.append(active.clone())
        # Image 1 stops improving at once; the others keep going.
        return torch.tensor([True, False, True])

    x, edges, batch, pos = _general(images)
    state = BlockState.from_pixels(x, pos, edges, batch)
    with pytest.warns(DeprecationWarning, match="build_hierarchy"):
        built = build_hierarchy(state, 3, (12, 10), observer=observer)
    levels = built.num_levels.tolist()
    assert levels[1] == 2  # level 1 never stops; it stops after level 2
    assert levels[0] > 2 and levels[2] > 2
    for b in range(3):
        x, edges, _, pos = _general(images[b:b + 1])
        single = build_hierarchy(x, edges, pos=pos,
                                 observer=lambda p, s, a, b=b: torch.tensor([b != 1]))
        assert int(single.num_levels[0]) == levels[b]
        # Same blocks at the image's last level, same statistics.
        mine = built.levels[levels[b]]
        keep = mine.batch == b
        theirs = single.levels[levels[b]]
        assert torch.equal(mine.mean[keep], theirs.mean)
        assert torch.equal(mine.size[keep], theirs.size)


def test_min_blocks_stops_an_image():
    x = _features(_images(1, 16, 16))
    free = build_hierarchy(x, PixelGrid(1, 16, 16), min_blocks=6)
    assert free.hierarchy.num_blocks == [256, 90, 30, 8, 2, 1]
    built = build_hierarchy(x, PixelGrid(1, 16, 16), min_blocks=30)
    counts = built.hierarchy.num_blocks
    # It stopped at the first level with ≤ 30 blocks (before max_levels = 4), then the top.
    assert counts == [256, 90, 30, 1]
    assert built.num_levels.tolist() == [2] and max_levels_for(16, 16) == 4
    assert all(k > 30 for k in counts[:-2]) and counts[-2] <= 30


def test_stalled_levels_stop_the_graph():
    # Constant loop potential 1 beats every edge (compactness 0): nothing merges after
    # the first level, whose pixels have no loops.
    x = _features(_images(2, 16, 16))
    built = build_hierarchy(x, PixelGrid(2, 16, 16), compactness=0.0, loop_default=1.0)
    assert built.num_levels.tolist() == [2, 2]  # level 2 merged nothing: stalled
    assert built.stalled.tolist() == [True, True]
    counts = built.hierarchy.num_blocks
    assert counts[1] == counts[2] and counts[-1] == 2
    # A normal image never stalls.
    free = build_hierarchy(x, PixelGrid(2, 16, 16))
    assert not free.stalled.any()
    assert 0 < MIN_MERGED_FRACTION < 0.05


def test_one_pixel_image():
    built = build_hierarchy(torch.rand(1, 3), PixelGrid(1, 1, 1))
    assert built.hierarchy.num_blocks == [1, 1]


def test_prepare_edge_index_makes_a_simple_undirected_graph():
    edges = torch.tensor([[0, 1, 1, 2, 2], [1, 0, 1, 0, 0]])
    assert prepare_edge_index(edges, 3).tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]


@pytest.mark.parametrize("call, error, match", [
    (lambda: build_hierarchy(torch.rand(4, 3, device="meta"), PixelGrid(1, 2, 2)), ValueError,
     "'x'.*meta"),
    (lambda: build_hierarchy(torch.rand(5, 3), PixelGrid(1, 2, 2)), ValueError, "one row per pixel"),
    (lambda: build_hierarchy(torch.rand(4, 3), torch.tensor([[0], [1]])), ValueError, "'pos'"),
    (lambda: build_hierarchy(torch.rand(4, 3), torch.tensor([[0], [4]]), compactness=0),
     ValueError, r"'edge_index' values in \[0, 4\)"),
    (lambda: build_hierarchy(torch.rand(4, 3), torch.tensor([[0], [1]]), torch.tensor([1, 0, 0, 0]),
                             compactness=0), ValueError, "'batch'.*sorted"),
    (lambda: build_hierarchy(torch.rand(4, 3), PixelGrid(1, 2, 2), weights="mean"), ValueError,
     "'weights'"),
    (lambda: build_hierarchy(torch.rand(4, 3), None), TypeError, "'edge_index'"),
    (lambda: PixelGrid(0, 2, 2), ValueError, "'num_images'"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_keep_states_false_is_refused_loudly_not_silently():
    # 0.1.0's keep_states=False dropped the levels' statistics; they are always kept now,
    # so the flag warns instead of being ignored in silence.
    x = torch.rand(16, 3)
    with pytest.warns(DeprecationWarning, match="keep_states=False"):
        result = build_hierarchy(x, PixelGrid(1, 4, 4), keep_states=False)
    assert len(result.levels) == result.hierarchy.num_levels
