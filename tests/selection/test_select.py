"""Per-region selection across the hierarchy (spec §5)."""

import math

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
