"""One contraction level: argmax with the reference's tie rule, components, pooling (spec §3)."""

import pytest
import torch

from dhtgraph import _native
from dhtgraph.graph import grid_edge_index
from dhtgraph.hierarchy.contraction import (BlockState, argmax_choice, chosen_potential, contract,
                                            pool_blocks, pool_weights, quantize_potential)
from dhtgraph.partition import Partition


def test_quantization_is_16_bit_floor_of_clipped_values():
    got = quantize_potential(torch.tensor([-0.5, 0.0, 0.5, 1.0, 2.0]))
    assert got.tolist() == [0, 0, 32767, 65535, 65535]


def test_argmax_ties_go_to_the_larger_neighbour_after_quantization():
    # Node 0 has neighbours 1 and 2; 0.5 + 1e-7 and 0.5 quantise alike → 2 wins.
    edges = torch.tensor([[0, 0, 1, 2], [1, 2, 0, 0]])
    potential = torch.tensor([0.5 + 1e-7, 0.5, 0.5 + 1e-7, 0.5], dtype=torch.float64)
    assert argmax_choice(potential, edges, 3).tolist() == [2, 0, 0]
    # A clearly larger potential still wins over a larger index.
    potential = torch.tensor([0.6, 0.5, 0.6, 0.5])
    assert argmax_choice(potential, edges, 3).tolist() == [1, 0, 0]


def test_argmax_loops_isolated_nodes_and_frozen_blocks():
    edges = torch.tensor([[0, 0, 1, 1], [0, 1, 0, 1]])  # loop at 0 and 1, edge 0–1; node 2 alone
    potential = torch.tensor([0.9, 0.2, 0.2, 0.1])
    assert argmax_choice(potential, edges, 3).tolist() == [0, 0, 2]
    # Block 1 prefers frozen block 0 (0.2 > its loop's 0.1) but may not merge into it
    # (issue 7: it used to, and the merged block took block 0's statistics).
    movable = torch.tensor([False, True, True])
    assert argmax_choice(potential, edges, 3, movable).tolist() == [0, 1, 2]
    movable = torch.tensor([True, False, True])
    assert argmax_choice(potential, edges, 3, movable).tolist() == [0, 1, 2]


def test_chosen_potential_reads_the_edge_each_block_chose():
    edges = torch.tensor([[0, 0, 1, 2, 2], [1, 2, 0, 0, 2]])
    potential = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    choice = torch.tensor([2, 0, 2])
    assert torch.allclose(chosen_potential(potential, edges, choice), torch.tensor([0.2, 0.3, 0.5]))
    # A block that stays without a loop edge has no chosen edge: 0.
    assert chosen_potential(potential, edges, torch.tensor([0, 0, 2]))[0] == 0


def _state(mean, size, bbox, edges, var=None, batch=None):
    mean = torch.as_tensor(mean, dtype=torch.float64)
    return BlockState(mean=mean, var=torch.zeros_like(mean) if var is None else var,
                      size=torch.as_tensor(size), bbox=torch.as_tensor(bbox), edge_index=edges,
                      batch=torch.zeros(len(mean), dtype=torch.long) if batch is None else batch)


def test_size_pooling_hand_values():
    edges = torch.tensor([[0, 1], [1, 0]])
    state = _state([[0.0], [4.0]], [1, 3], [[0, 0, 0, 0], [0, 1, 2, 1]], edges,
                   var=torch.tensor([[0.0], [1.0]], dtype=torch.float64))
    part = Partition(torch.tensor([0, 0]))
    out = pool_blocks(state, part, state.size.double())
    # μ = (0 + 12)/4 = 3; σ² = (1·(0 + 9) + 3·(1 + 1)) / 4 = 15/4.
    assert torch.allclose(out.mean, torch.tensor([[3.0]], dtype=torch.float64))
    assert torch.allclose(out.var, torch.tensor([[15 / 4]], dtype=torch.float64))
    assert out.size.tolist() == [4]
    assert out.bbox.tolist() == [[0, 0, 2, 1]]
    assert out.edge_index.tolist() == [[0], [0]]  # the inner edge became the self-loop


def test_argmax_edge_weights_hand_values():
    edges = torch.tensor([[0, 1], [1, 0]])
    state = _state([[0.0], [4.0]], [1, 3], [[0, 0, 0, 0], [0, 1, 0, 3]], edges)
    w = pool_weights(state, torch.tensor([0.25, 1.0], dtype=torch.float64), "argmax_edge")
    assert torch.allclose(w, torch.tensor([0.5, 3.0], dtype=torch.float64))
    out = pool_blocks(state, Partition(torch.tensor([0, 0])), w)
    assert torch.allclose(out.mean, torch.tensor([[12 / 3.5]], dtype=torch.float64))
    with pytest.raises(ValueError, match="'weights'"):
        pool_weights(state, w, "edge")


def test_zero_weights_fall_back_to_sizes():
    edges = torch.tensor([[0, 1], [1, 0]])
    state = _state([[0.0], [4.0]], [1, 3], [[0, 0, 0, 0], [0, 1, 0, 3]], edges)
    w = pool_weights(state, torch.zeros(2, dtype=torch.float64), "argmax_edge")
    out = pool_blocks(state, Partition(torch.tensor([0, 0])), w)
    assert torch.isfinite(out.mean).all() and torch.allclose(out.mean, torch.tensor([[3.0]], dtype=torch.float64))


def test_pooling_gradcheck_with_argmax_edge_weights():
    torch.manual_seed(0)
    edges = grid_edge_index(2, 3)
    labels = torch.tensor([0, 0, 1, 2, 1, 1])
    part = Partition(labels)
    size = torch.tensor([1, 2, 1, 3, 1, 2])
    bbox = torch.zeros(6, 4, dtype=torch.long)
    # Chosen edges (0,1), (1,0), (2,5), (4,5), (5,4); block 3 stays without a loop edge,
    # so its weight is 0 and the zero-weight guard is exercised too.
    choice = torch.tensor([1, 0, 5, 3, 5, 4])
    mean = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    var = torch.rand(6, 2, dtype=torch.float64, requires_grad=True)
    potential = (torch.rand(edges.shape[1], dtype=torch.float64) * 0.8 + 0.1).requires_grad_()

    def pooled(mean, var, potential):
        state = BlockState(mean, var, size, bbox, edges, torch.zeros(6, dtype=torch.long))
        chosen = chosen_potential(potential, edges, choice)
        out = pool_blocks(state, part, pool_weights(state, chosen, "argmax_edge"))
        return out.mean, out.var

    assert torch.autograd.gradcheck(pooled, (mean, var, potential))


@pytest.mark.parametrize("weights", ["argmax_edge", "size"])
@pytest.mark.parametrize("frozen", [False, True])
def test_contract_with_and_without_gradients_gives_the_same_values(weights, frozen):
    # Without a recorded gradient the pooled moments may run natively; with one they are
    # the tensor code's: the same values, and the gradients of the tensor path.
    torch.manual_seed(1)
    edges = grid_edge_index(6, 7, 2)
    n = 84
    pos = torch.stack(torch.meshgrid(torch.arange(6), torch.arange(7), indexing="ij"),
                      -1).reshape(-1, 2).repeat(2, 1)
    batch = torch.arange(2).repeat_interleave(42)
    movable = batch == 0 if frozen else None
    x0 = torch.rand(n, 3, dtype=torch.float64)
    x0[:10] = 0.5  # a constant block: snapped variance
    values, grads = [], []
    for off, grad in ((False, False), (True, False), (False, True), (True, True)):
        x = x0.clone().requires_grad_(grad)
        state = BlockState.from_pixels(x, pos, edges, batch)
        potential = (x[edges[0]] - x[edges[1]]).pow(2).sum(-1).neg().exp()
        with (_native.disabled() if off else torch.enable_grad()):
            step = contract(state, potential, weights=weights, movable=movable)
            values.append((step.state.mean.detach(), step.state.var.detach()))
            if grad:
                assert step.state.mean.grad_fn is not None
                grads.append(torch.autograd.grad(step.state.mean.sum() + step.state.var.sum(),
                                                 x)[0])
    for mean, var in values[1:]:
        assert torch.equal(mean, values[0][0]) and torch.equal(var, values[0][1])
    assert torch.equal(grads[0], grads[1])


def test_contract_a_strip_into_two_blocks():
    x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    edges = grid_edge_index(1, 4)
    pos = torch.tensor([[0, 0], [0, 1], [0, 2], [0, 3]])
    state = BlockState.from_pixels(x, pos, edges)
    potential = (x[edges[0]] - x[edges[1]]).pow(2).sum(-1).neg().exp()
    step = contract(state, potential, weights="size")
    assert step.choice.tolist() == [1, 0, 3, 2]
    assert step.partition.labels.tolist() == [0, 0, 1, 1]
    assert torch.allclose(step.state.mean, torch.tensor([[0.05], [5.05]]))
    assert step.state.size.tolist() == [2, 2]
    assert step.state.bbox.tolist() == [[0, 0, 0, 1], [0, 2, 0, 3]]
    assert step.state.edge_index.tolist() == [[0, 0, 1, 1], [0, 1, 0, 1]]


def test_frozen_blocks_keep_their_statistics_exactly():
    x = torch.rand(6, 3)
    edges = grid_edge_index(1, 3, 2)
    pos = torch.tensor([[0, 0], [0, 1], [0, 2]] * 2)
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    state = BlockState.from_pixels(x, pos, edges, batch)
    potential = (x[edges[0]] - x[edges[1]]).pow(2).sum(-1).neg().exp()
    movable = batch == 0
    step = contract(state, potential, movable=movable)
    frozen_labels = step.partition.labels[3:]
    assert frozen_labels.unique().numel() == 3
    assert torch.equal(step.state.mean[frozen_labels], x[3:])
    assert torch.equal(step.state.var[frozen_labels], torch.zeros(3, 3))


def test_edge_relabelling_equals_the_quotient_with_loops():
    from dhtgraph.hierarchy.contraction import _relabel_edges

    edges = grid_edge_index(9, 7, 2)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        part = Partition(torch.randint(0, 40, (126,), generator=g))
        assert torch.equal(_relabel_edges(part, edges), part.quotient(edges, self_loops=True))


# ------------------------------------------------ magnitude-robust statistics (issue 8)


def test_quantization_maps_nan_to_zero():
    # inf − inf on overflowing features gave NaN potentials, which became garbage
    # integers and an "index -8 is out of bounds" in the components.
    got = quantize_potential(torch.tensor([float("nan"), 0.5, float("inf"), -float("inf")]))
    assert got.tolist() == [0, 32767, 65535, 0]
    edges = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    choice = argmax_choice(torch.full((4,), float("nan")), edges, 3)
    assert ((choice >= 0) & (choice < 3)).all()


@pytest.mark.parametrize("value", [0.123, 1e10, 1e20, 3e38, float("inf")])
def test_constant_blocks_pool_to_zero_variance_at_any_magnitude(value):
    from dhtgraph.hierarchy.contraction import snap_constant_blocks, weighted_moments

    n = 1000  # a float32 sum of 1000 equal values is not exact
    mean = torch.cat([torch.full((n, 2), value), torch.rand(4, 2)])
    labels = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(4, dtype=torch.long)])
    weight = torch.ones(n + 4)
    new_mean, new_var = weighted_moments(mean, None, labels, 2, weight, None)
    assert new_var[0].tolist() == [0.0, 0.0]
    # The non-constant block keeps the pooled formula, bit for bit.
    plain = ((mean[n:] - new_mean[1]).pow(2).sum(0) / 4)
    assert torch.allclose(new_var[1], plain)
    # A member with a variance is not constant; one channel constant is snapped alone.
    var = torch.zeros_like(mean)
    var[3, 1] = 1.0
    _, snapped = snap_constant_blocks(mean, var, labels, 2, new_mean, torch.ones(2, 2))
    assert snapped[0].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
@pytest.mark.parametrize("value", [1.0, 1e10, 1e18, 1e20, 3e38])
def test_a_constant_image_is_one_token_whatever_its_magnitude(value, weights):
    # Issue 8: 1e10 and 1e20 gave one token per pixel, 3e38 crashed.
    from dhtgraph import DHTTokenizer

    model = DHTTokenizer(encoder="rgb", color_scale=10.0, var_projection=False,
                         weights=weights)
    out = model(torch.full((2, 3, 24, 20), value))
    assert out.num_tokens.tolist() == [1, 1]


def test_constant_image_of_huge_values_through_tokenize():
    import warnings

    import dhtgraph

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the input-range warning (helper 'inputs')
        for value in (1e10, 1e18, 1e20, 3e38):
            assert dhtgraph.tokenize(torch.full((3, 40, 40), value)).num_tokens.tolist() == [1]


def test_constant_block_variance_keeps_its_gradient():
    from dhtgraph.hierarchy.contraction import weighted_moments

    mean = torch.full((5, 1), 2.0, dtype=torch.float64, requires_grad=True)
    var = torch.rand(5, 1, dtype=torch.float64).requires_grad_()
    labels = torch.zeros(5, dtype=torch.long)
    _, new_var = weighted_moments(mean, var * 0, labels, 1, torch.ones(5, dtype=torch.float64),
                                  None)
    assert new_var.item() == 0.0
    new_var.sum().backward()
    assert torch.allclose(var.grad, torch.zeros(5, 1, dtype=torch.float64))  # ∂/∂var·0
    assert mean.grad is not None


def test_movable_blocks_never_merge_into_frozen_ones():
    # Issue 7: with a mask not aligned to whole images, pixel 2 chose frozen pixel 3 and
    # the merged block got pixel 3's mean instead of pooled statistics.
    x = torch.tensor([[0.0], [0.1], [5.0], [5.05], [9.0]], dtype=torch.float64)
    edges = grid_edge_index(1, 5)
    pos = torch.stack([torch.zeros(5, dtype=torch.long), torch.arange(5)], 1)
    state = BlockState.from_pixels(x, pos, edges)
    potential = (x[edges[0]] - x[edges[1]]).pow(2).sum(-1).neg().exp()
    movable = torch.tensor([True, True, True, False, True])
    for weights in ("size", "argmax_edge"):
        step = contract(state, potential, weights=weights, movable=movable)
        # 2's best edge (to 3) is refused; its best movable neighbour is 1.
        assert step.choice.tolist() == [1, 0, 1, 3, 4]
        assert step.partition.labels.tolist() == [0, 0, 0, 1, 2]
        assert step.state.mean[1].tolist() == [5.05]  # frozen, bit for bit
        assert step.state.size.tolist() == [3, 1, 1]
        expected = contract(state, potential, weights=weights)  # unrestricted
        w = (state.size.double() if weights == "size" else
             torch.sqrt(chosen_potential(potential, edges, step.choice)))
        pooled = (w[:3] * x[:3, 0]).sum() / w[:3].sum()
        assert torch.allclose(step.state.mean[0], pooled.reshape(1))
        assert not torch.equal(step.partition.labels, expected.partition.labels)


def test_a_registered_pooling_weighting_is_one_function():
    # contract resolves 'weights' through POOL_WEIGHTINGS: a weighting registered there
    # (here: the chosen potential alone, no sizes) is what pools the blocks.
    from dhtgraph.hierarchy.contraction import POOL_WEIGHTINGS

    def potential_only(state, chosen):
        return chosen.to(state.mean.dtype)

    edges = torch.tensor([[0, 1], [1, 0]])
    state = _state([[0.0], [4.0]], [1, 3], [[0, 0, 0, 0], [0, 1, 0, 3]], edges)
    potential = torch.tensor([0.25, 0.25], dtype=torch.float64)
    with POOL_WEIGHTINGS.registered("test-potential", potential_only):
        out = contract(state, potential, weights="test-potential").state
        assert torch.allclose(out.mean, torch.tensor([[2.0]], dtype=torch.float64))
        sized = contract(state, potential, weights="size").state
        assert torch.allclose(sized.mean, torch.tensor([[3.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"Expected 'weights' to be one of \('argmax_edge', 'size'\)"):
        contract(state, potential, weights="test-potential")


@pytest.mark.parametrize("native", [True, False])
def test_a_weighting_registered_as_returning_sizes_pools_with_the_sizes(native):
    # The registry carries the promise: a weighting with returns_sizes = True is not
    # called, contract pools with state.size itself (as 'size' does, bit for bit); the
    # same function without the attribute is called. (This one returns ones, so the two
    # differ: size-weighted mean 3, unweighted 2.)
    from contextlib import nullcontext

    from dhtgraph.hierarchy.contraction import POOL_WEIGHTINGS

    def ones(state, chosen):
        return torch.ones_like(state.size, dtype=state.mean.dtype)

    ones.reads_choice, ones.positive, ones.returns_sizes = False, True, True
    edges = torch.tensor([[0, 1], [1, 0]])
    state = _state([[0.0], [4.0]], [1, 3], [[0, 0, 0, 0], [0, 1, 0, 3]], edges)
    potential = torch.tensor([0.25, 0.25], dtype=torch.float64)
    with POOL_WEIGHTINGS.registered("test-sizes", ones), \
            (nullcontext() if native else _native.disabled()):
        promised = contract(state, potential, weights="test-sizes").state
        sized = contract(state, potential, weights="size").state
        assert torch.equal(promised.mean, sized.mean) and torch.equal(promised.var, sized.var)
        assert promised.mean.tolist() == [[3.0]]
        ones.returns_sizes = False
        assert contract(state, potential, weights="test-sizes").state.mean.tolist() == [[2.0]]


def test_a_level_decides_its_kernel_sets_together_as_one_by_one():
    # _level_natives (contract's and pool_blocks's two sets, the devices read once): per
    # set, True on the CPU, None with a tensor elsewhere, False when not in use.
    from dhtgraph.hierarchy.contraction import _level_natives

    cpu, meta = torch.zeros(2), torch.zeros(2, device="meta")
    sets = ("contraction", "edges")
    with _native.disabled():
        for tensors in ([cpu, None], [cpu, meta], [meta], []):
            assert _level_natives(sets, tensors) == (False, False)
    in_use = tuple(_native.available(name) for name in sets)
    for tensors, where in (([cpu, None], True), ([cpu, meta], None), ([meta], None),
                           ([], True)):
        assert _level_natives(sets, tensors) == tuple(where if used else False
                                                      for used in in_use)
        assert _level_natives(sets[:1], tensors) == (where if in_use[0] else False,)
