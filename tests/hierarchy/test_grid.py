"""The grid fast path of the first level equals the general contraction bit for bit."""

from contextlib import ExitStack

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
@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
def test_grid_contraction_equals_contract(weights, b, h, w, levels, compactness, tie_break):
    x, full, batch = _pixels(b, h, w, seed=h * w + b, levels=levels)
    potential = edge_affinity(full.mean, full.var, full.size, full.bbox, full.edge_index,
                              compactness=compactness)
    expected = contract(full, potential, weights=weights, tie_break=tie_break)
    got = grid_contraction(pixel_state(x, b, batch if b > 1 else None), b, h, w,
                           compactness=compactness, weights=weights, tie_break=tie_break)
    assert got.partition == expected.partition
    assert torch.equal(got.choice, expected.choice)
    for name in ("mean", "var", "size", "bbox", "edge_index", "batch"):
        assert torch.equal(getattr(got.state, name), getattr(expected.state, name)), name


@pytest.fixture
def registered_weighting():
    # Registers test weightings in POOL_WEIGHTINGS for one test, removed after it.
    from dhtgraph.hierarchy.contraction import POOL_WEIGHTINGS

    with ExitStack() as stack:
        yield lambda name, fn: stack.enter_context(POOL_WEIGHTINGS.registered(name, fn))


@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
def test_a_registered_weighting_contracts_the_grid(registered_weighting, tie_break):
    # The grid level resolves 'weights' through the registry: a weighting without a grid
    # form (here: the chosen potential squared, no sizes) runs the general level, and
    # build_hierarchy on a PixelGrid gives the hierarchy of the explicit pixel graph.
    from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy

    def squared(state, chosen):
        return chosen.to(state.mean.dtype).pow(2)

    registered_weighting("test-squared", squared)
    b, h, w = 2, 6, 7
    x, full, batch = _pixels(b, h, w, seed=11)
    potential = edge_affinity(full.mean, full.var, full.size, full.bbox, full.edge_index,
                              compactness=0.1)
    expected = contract(full, potential, weights="test-squared", tie_break=tie_break)
    assert not torch.equal(expected.state.mean,
                           contract(full, potential, weights="argmax_edge",
                                    tie_break=tie_break).state.mean)
    got = grid_contraction(pixel_state(x, b, batch), b, h, w, compactness=0.1,
                           weights="test-squared", tie_break=tie_break)
    assert got.partition == expected.partition
    for name in ("mean", "var", "size", "bbox", "edge_index", "batch"):
        assert torch.equal(getattr(got.state, name), getattr(expected.state, name)), name
    on_grid = build_hierarchy(x, PixelGrid(b, h, w), weights="test-squared",
                              tie_break=tie_break)
    node = torch.arange(h * w)
    pos = torch.stack([node // w, node % w], 1).repeat(b, 1)
    on_edges = build_hierarchy(x, grid_edge_index(h, w, b), batch, pos=pos,
                               weights="test-squared", tie_break=tie_break)
    assert len(on_grid.hierarchy.steps) == len(on_edges.hierarchy.steps)
    for one, other in zip(on_grid.hierarchy.steps, on_edges.hierarchy.steps):
        assert one == other


def test_a_weighting_returning_sizes_takes_the_grid_size_path(registered_weighting,
                                                              monkeypatch):
    # returns_sizes = True: the grid pools with the sizes as 'size' does, bit for bit, in
    # its grid form (no pixel edge list is built), without calling the weighting.
    import dhtgraph.hierarchy.grid as grid

    def ones(state, chosen):
        raise AssertionError("a weighting that returns sizes is not called")

    ones.reads_choice, ones.positive, ones.returns_sizes = False, True, True
    registered_weighting("test-sizes", ones)
    x, _, batch = _pixels(2, 5, 6, seed=12)
    sized = grid_contraction(pixel_state(x, 2, batch), 2, 5, 6, weights="size")
    monkeypatch.setattr(grid, "materialize_pixel_state", None)  # the general level's
    got = grid_contraction(pixel_state(x, 2, batch), 2, 5, 6, weights="test-sizes")
    assert got.partition == sized.partition
    for name in ("mean", "var", "size", "bbox", "edge_index", "batch"):
        assert torch.equal(getattr(got.state, name), getattr(sized.state, name)), name
    with pytest.raises(ValueError, match=r"Expected 'weights' to be one of \("):
        grid_contraction(pixel_state(x, 2, batch), 2, 5, 6, weights="no-such-weighting")


def test_the_argmax_weighting_under_another_name_takes_the_grid_form(registered_weighting,
                                                                     monkeypatch):
    # The registry decides the grid form by the function, not by its name: argmax_edge's
    # weighting registered as an alias contracts on the grid, bit for bit as 'argmax_edge'.
    import dhtgraph.hierarchy.grid as grid
    from dhtgraph.hierarchy.contraction import argmax_edge_weights

    registered_weighting("test-argmax-alias", argmax_edge_weights)
    x, _, batch = _pixels(2, 5, 6, seed=13)
    expected = grid_contraction(pixel_state(x, 2, batch), 2, 5, 6, compactness=0.1)
    monkeypatch.setattr(grid, "materialize_pixel_state", None)  # the general level's
    got = grid_contraction(pixel_state(x, 2, batch), 2, 5, 6, compactness=0.1,
                           weights="test-argmax-alias")
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


# --------------------------------------------------------------- gradients ON (issue 8)
# The grid level is what every tokenizer call runs first; users train through it, so
# these run with autograd recording, as users call it (no no_grad anywhere).


@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
@pytest.mark.parametrize("b,h,w", [(1, 3, 3), (2, 6, 5), (1, 9, 12)])
def test_grid_contraction_forward_backward_with_gradients_on(weights, b, h, w):
    x, full, batch = _pixels(b, h, w, seed=11 * h + w, levels=None)
    with torch.no_grad():
        expected = grid_contraction(pixel_state(x, b, batch if b > 1 else None), b, h, w,
                                    weights=weights)
    xg = x.clone().requires_grad_()
    got = grid_contraction(pixel_state(xg, b, batch if b > 1 else None), b, h, w,
                           weights=weights)
    # Recording the graph changes no value, bit for bit.
    assert got.partition == expected.partition
    assert torch.equal(got.state.mean, expected.state.mean)
    assert torch.equal(got.state.var, expected.state.var)
    (got.state.mean.sum() + got.state.var.sum()).backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    assert xg.grad.abs().sum() > 0


@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
def test_grid_contraction_gradient_equals_the_general_contraction(weights):
    x, full, _ = _pixels(1, 5, 6, seed=8)
    grads = []
    for grid in (False, True):
        xg = x.clone().requires_grad_()
        if grid:
            out = grid_contraction(pixel_state(xg, 1), 1, 5, 6, weights=weights)
        else:
            state = BlockState.from_pixels(xg, torch.stack([torch.arange(30) // 6,
                                                            torch.arange(30) % 6], 1),
                                           grid_edge_index(5, 6))
            pot = edge_affinity(xg, state.var, state.size, state.bbox, state.edge_index)
            out = contract(state, pot, weights=weights)
        (out.state.mean.pow(2).sum() + out.state.var.sum()).backward()
        grads.append(xg.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
def test_grid_pooling_gradcheck_float64(weights):
    # Away from argmax ties (well separated random values), the partition is locally
    # constant, so the pooled mean/variance are smooth functions of the pixels.
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(4 * 5, 2, generator=g, dtype=torch.float64) * 2).requires_grad_()
    reference = grid_contraction(pixel_state(x.detach(), 1), 1, 4, 5, weights=weights)

    def pooled(x):
        out = grid_contraction(pixel_state(x, 1), 1, 4, 5, weights=weights)
        assert out.partition == reference.partition  # no choice flips under the probe
        return out.state.mean, out.state.var

    assert torch.autograd.gradcheck(pooled, (x,))


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
def test_tokenizer_trains_through_the_grid_level(weights, mode):
    # Issue 8: DHTTokenizer(weights='size') crashed with gradients on for inputs ≥ 3×3.
    from dhtgraph import DHTTokenizer, imagenet_normalize

    torch.manual_seed(0)
    model = getattr(DHTTokenizer(weights=weights), mode)()
    images = torch.rand(2, 3, 12, 13, generator=torch.Generator().manual_seed(1))
    out = model(imagenet_normalize(images))
    (out.features.sum() + out.injected.sum()).backward()
    grads = [p.grad for p in model.conv.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.shared
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_official_checkpoint_trains_with_gradients_on(shared_dir, mode):
    # Issue 8: the README's own usage, m(imagenet_normalize(x)), raised "sub(): functions
    # with out=... arguments don't support automatic differentiation".
    from dhtgraph import DHTTokenizer, imagenet_normalize

    weights = shared_dir / "data" / "dht-r2v" / "r2v.pth"
    if not weights.is_file():
        pytest.skip(f"official weights missing: {weights}")
    model = getattr(DHTTokenizer.from_dht_checkpoint(weights), mode)()
    images = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(2))
    out = model(imagenet_normalize(images))
    out.injected.pow(2).mean().backward()
    assert model.conv.parameters().__next__().grad is not None
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("b,h,w", [(1, 6, 7), (3, 4, 5), (1, 1, 9), (2, 8, 1)])
def test_grid_contraction_size_weights_with_gradient_match(b, h, w):
    # Half-flat images: constant blocks (variance snapped to 0, gradient straight through)
    # beside textured ones, with gradients on as a user's training step has them.
    x, full, batch = _pixels(b, h, w, seed=b + h * w, levels=2)
    x[: x.shape[0] // 2] = 0.1229  # pools with rounding error: snapping matters
    full.mean = x
    grads = []
    for fast in (False, True):
        leaf = x.clone().requires_grad_()
        if fast:
            got = grid_contraction(pixel_state(leaf, b, batch if b > 1 else None), b, h, w,
                                   compactness=0.1, weights="size")
        else:
            full.mean = leaf
            pot = edge_affinity(leaf, full.var, full.size, full.bbox, full.edge_index,
                                compactness=0.1)
            got = contract(full, pot, weights="size")
        (got.state.mean.pow(2).sum() + got.state.var.sum()).backward()
        grads.append((got.state.mean.detach(), got.state.var.detach(), leaf.grad))
    for slow, fast in zip(*grads):
        assert torch.equal(slow, fast)
    assert bool((grads[1][1] == 0).any())  # some block is constant
