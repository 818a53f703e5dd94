"""The grid fast path of the first level equals the general contraction bit for bit."""

import pytest
import torch

from dhtgraph.graph import grid_edge_index
from dhtgraph.graph.pixel import grid_quotient
from dhtgraph.hierarchy.affinity import edge_affinity
from dhtgraph.hierarchy.contraction import BlockState, contract
from dhtgraph.hierarchy.grid import grid_contraction, pixel_state
from dhtgraph.partition import Partition
from dhtgraph.selection.select import InformationSelector


def _pixels(b, h, w, seed, levels=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b * h * w, 3, generator=g) * 3
    if levels:  # few distinct colours: many exact ties
        x = (x * levels).floor() / levels
    node = torch.arange(h * w)
    pos = torch.stack([node // w, node % w], 1).repeat(b, 1)
    batch = torch.arange(b).repeat_interleave(h * w)
    return x, BlockState.from_pixels(x, pos, grid_edge_index(h, w, b), batch), batch


@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
@pytest.mark.parametrize("b,h,w,levels", [(1, 7, 9, None), (2, 5, 6, 2), (1, 1, 11, None),
                                          (3, 10, 1, 3), (1, 16, 16, 1)])
@pytest.mark.parametrize("compactness", [0.0, 0.1])
def test_grid_contraction_equals_contract(weights, b, h, w, levels, compactness):
    x, full, batch = _pixels(b, h, w, seed=h * w + b, levels=levels)
    potential = edge_affinity(full.mean, full.var, full.size, full.bbox, full.edge_index,
                              compactness=compactness)
    expected = contract(full, potential, weights=weights)
    got = grid_contraction(pixel_state(x, b, batch if b > 1 else None), b, h, w,
                           compactness=compactness, weights=weights)
    assert got.partition == expected.partition
    assert torch.equal(got.choice, expected.choice)
    for name in ("mean", "var", "size", "bbox", "edge_index", "batch"):
        assert torch.equal(getattr(got.state, name), getattr(expected.state, name)), name


def test_grid_contraction_gradient_matches():
    x, full, _ = _pixels(1, 6, 7, seed=3)
    x1 = x.clone().requires_grad_()
    full.mean = x1
    pot = edge_affinity(x1, full.var, full.size, full.bbox, full.edge_index, compactness=0.1)
    contract(full, pot, weights="argmax_edge").state.mean.sum().backward()
    x2 = x.clone().requires_grad_()
    grid_contraction(pixel_state(x2, 1), 1, 6, 7, compactness=0.1,
                     weights="argmax_edge").state.mean.sum().backward()
    assert torch.allclose(x1.grad, x2.grad)


@pytest.mark.parametrize("b,h,w", [(1, 6, 5), (2, 4, 7), (1, 1, 6)])
def test_grid_quotient_equals_partition_quotient(b, h, w):
    labels = torch.randint(0, 5, (b * h * w,), generator=torch.Generator().manual_seed(b + h))
    p = Partition(labels)
    expected = p.quotient(grid_edge_index(h, w, b))
    assert torch.equal(grid_quotient(p.labels, p.num_blocks, b, h, w), expected)


def test_selector_grid_pieces_equal_edge_pieces():
    b, h, w = 2, 7, 8
    x, full, batch = _pixels(b, h, w, seed=1)
    sel = InformationSelector(full, b, h * w)
    sel.pixel_block = torch.randint(0, 4, (b * h * w,), generator=torch.Generator().manual_seed(0))
    sel.num_stored = 4
    sel.ic, sel.mean, sel.var = torch.zeros(4), torch.zeros(4, 3), torch.zeros(4, 3)
    sel.batch = torch.zeros(4, dtype=torch.long)
    by_edges = sel.finish(grid_edge_index(h, w, b))
    by_grid = sel.finish(image_size=(h, w))
    assert by_grid.partition == by_edges.partition


def test_lean_pixel_state_validates_and_materializes():
    from dhtgraph.hierarchy.grid import materialize_pixel_state

    x, full, batch = _pixels(2, 3, 4, seed=5)
    lean = pixel_state(x, 2, batch)
    assert lean.bbox is None and lean.edge_index is None
    assert lean.validate() is lean
    made = materialize_pixel_state(lean, 2, 3, 4).validate()
    assert torch.equal(made.bbox, full.bbox) and torch.equal(made.edge_index, full.edge_index)
    bad = pixel_state(x, 2, batch[:5])
    with pytest.raises(ValueError, match="'batch' of shape"):
        bad.validate()


def test_grid_coordinates_and_quantization_are_shared():
    from dhtgraph.graph.pixel import grid_coordinates
    from dhtgraph.hierarchy.contraction import quantize_potential

    row, col = grid_coordinates(3, 4, 2)
    node = torch.arange(24)
    assert torch.equal(row, (node // 4) % 3) and torch.equal(col, node % 4)
    row32, col32 = grid_coordinates(3, 4, 2, dtype=torch.int32)
    assert row32.dtype == torch.int32 and torch.equal(row32.long(), row)
    p = torch.tensor([-0.5, 0.0, 0.3, 1.0, 2.0])
    q32 = quantize_potential(p, torch.int32)
    assert q32.dtype == torch.int32 and torch.equal(q32.long(), quantize_potential(p))
