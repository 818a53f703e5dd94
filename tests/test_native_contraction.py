"""The native kernels of the general contraction level (dhtgraph/_native/contraction.c):
the same tensors as the tensor path (``_native.disabled()``), bit for bit — the argmax
under both tie rules (ties, plateaus, movable masks, batches, loops, NaN), the tie hash,
the quantisation, the equal-ends test, the constant-channel snap, the integer pooling,
the pooled moments (float32 and float64, zero weights, strided and expanded inputs,
frozen blocks) and whole contraction levels — and their errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dhtgraph import _native
from dhtgraph.hierarchy import contraction as C
from dhtgraph.hierarchy.contraction import (BlockState, argmax_choice, contract, equal_ends,
                                            local_index, pool_blocks, quantize_potential,
                                            snap_constant_blocks, tie_hash,
                                            weighted_moments)
from dhtgraph.partition import Partition
from dhtgraph.testing.graphs import random_graphs

pytestmark = pytest.mark.skipif(
    not _native.available("contraction"),
    reason=f"native contraction kernels not in use here ({_native.status()})")

NAN, INF = float("nan"), float("inf")
# A path 0 - 1 - 2 - 3 - 4 - 5, both directions (coalesced).
PATH = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5],
                     [1, 0, 2, 1, 3, 2, 4, 3, 5, 4]])


def both(fn, *args, **kwargs):
    """``fn`` on the native path and on the tensor path."""
    native = fn(*args, **kwargs)
    with _native.disabled():
        tensor = fn(*args, **kwargs)
    return native, tensor


def assert_same(native, tensor):
    if isinstance(native, (tuple, list)):
        assert len(native) == len(tensor)
        for a, b in zip(native, tensor):
            assert_same(a, b)
        return
    assert native.dtype == tensor.dtype and native.shape == tensor.shape
    assert torch.equal(native, tensor) or (native.is_floating_point()
                                           and torch.equal(native.isnan(), tensor.isnan())
                                           and torch.equal(native.nan_to_num(0),
                                                           tensor.nan_to_num(0)))


def choices_both_ways(potential, edge_index, k, movable=None, **kwargs):
    native, tensor = both(argmax_choice, potential, edge_index, k, movable, **kwargs)
    assert_same(native, tensor)
    return native


def undirected(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    both_ = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    key = torch.unique(both_[0] * n + both_[1])
    return torch.stack([key // n, key % n])


# -- hand cases -------------------------------------------------------------------------

def test_the_path_of_equal_potentials_by_hand():
    potential = torch.full((PATH.shape[1],), 0.5)
    assert choices_both_ways(potential, PATH, 6).tolist() == [1, 2, 3, 4, 5, 4]
    # Hashes of (0,1)..(4,5) = 13380, 25983, 4813, 3053, 4356 (test_ties).
    assert choices_both_ways(potential, PATH, 6,
                             tie_break="hashed").tolist() == [1, 2, 1, 2, 5, 4]
    mean = torch.tensor([[0.0], [1.0], [1.0], [1.0], [2.0], [2.0]])
    assert choices_both_ways(potential, PATH, 6, tie_break="hashed",
                             mean=mean).tolist() == [1, 0, 3, 4, 3, 4]


def test_non_contiguous_inputs():
    edges = PATH.t().contiguous().t()  # (2, E) with strides (1, 2)
    assert not edges.is_contiguous()
    potential = torch.arange(20.0)[::2] / 20
    mean = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 2.0], [2.0, 2.0],
                         [2.0, 2.0]]).t().contiguous().t()
    for tie in ("reference", "hashed"):
        choices_both_ways(potential, edges, 6, tie_break=tie, mean=mean)
        choices_both_ways(torch.full((10,), 0.5), edges, 6, tie_break=tie, mean=mean)
    assert_same(*both(equal_ends, mean, edges))


def test_quantised_ties_and_larger_potentials_by_hand():
    # Node 1: the edge to 0 has the larger potential although hash(1, 2) > hash(0, 1);
    # below the 16-bit quantisation the potentials tie and the hash decides.
    potential = torch.tensor([0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert choices_both_ways(potential, PATH, 6, tie_break="hashed")[1].item() == 0
    potential[:2] = 0.5 + 1e-7
    assert choices_both_ways(potential, PATH, 6, tie_break="hashed")[1].item() == 2


def test_loops_let_a_block_stay_and_blocks_without_edges_choose_themselves():
    # 0 - 1 with loops on 0 and 1; 2 has only its loop; 3 has no edge at all.
    edges = torch.tensor([[0, 0, 1, 1, 2], [0, 1, 0, 1, 2]])
    for tie in ("reference", "hashed"):
        potential = torch.tensor([0.9, 0.2, 0.2, 0.1, 0.3])
        assert choices_both_ways(potential, edges, 4, tie_break=tie).tolist() == [0, 0, 2, 3]
        potential = torch.full((5,), 0.4)  # all tied
        choices_both_ways(potential, edges, 4, tie_break=tie,
                          mean=torch.tensor([[1.0], [1.0], [2.0], [3.0]]))
    # NaN means: a loop's ends are not equal (NaN != NaN), as in torch.
    mean = torch.tensor([[NAN], [NAN], [0.0], [0.0]])
    choices_both_ways(torch.full((5,), 0.4), edges, 4, tie_break="hashed", mean=mean)
    assert equal_ends(mean, edges).tolist() == [False, False, False, False, True]


def test_movable_masks_by_hand():
    potential = torch.tensor([0.1, 0.1, 0.9, 0.9, 0.3, 0.3, 0.5, 0.5, 0.2, 0.2])
    movable = torch.tensor([True, True, False, True, True, True])
    for tie in ("reference", "hashed"):
        choice = choices_both_ways(potential, PATH, 6, movable, tie_break=tie)
        # 1 may not take 2 (frozen): 0; 2 stays; 3 may not take 2: 4.
        assert choice.tolist()[:4] == [1, 0, 2, 4]
    choices_both_ways(potential, PATH, 6, torch.zeros(6, dtype=torch.bool),
                      tie_break="hashed")


def test_batches_of_graphs_hash_local_indices():
    # Three copies of the path: every copy chooses as the path alone.
    edges = torch.cat([PATH + 6 * i for i in range(3)], dim=1)
    batch = torch.arange(3).repeat_interleave(6)
    potential = torch.full((edges.shape[1],), 0.5)
    choice = choices_both_ways(potential, edges, 18, tie_break="hashed", batch=batch)
    assert choice.view(3, 6).sub(torch.arange(3).unsqueeze(1) * 6).tolist() == \
        [[1, 2, 1, 2, 5, 4]] * 3
    assert_same(*both(local_index, batch))
    assert_same(*both(local_index, torch.tensor([3, 3, 1, 1, 1, 3, 0])))
    assert_same(*both(local_index, torch.zeros(0, dtype=torch.long)))


def test_special_potentials_and_dtypes():
    edges = undirected(torch.tensor([[0, 1, 2, 3, 0, 1], [1, 2, 3, 0, 2, 3]]), 4)
    e = edges.shape[1]
    values = torch.tensor([NAN, INF, -INF, -0.0, 0.0, 1.0, 2.0, -1.0, 1 - 1e-9, 1e-30])
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        potential = values[torch.arange(e) % values.numel()].to(dtype)
        mean = torch.tensor([[0.0, -0.0], [-0.0, 0.0], [1.0, NAN], [INF, 1.0]], dtype=dtype)
        for tie in ("reference", "hashed"):
            choices_both_ways(potential, edges, 4, tie_break=tie, mean=mean)
        assert_same(*both(equal_ends, mean, edges))
    # The kernel takes quantised int64 potentials as they are; integer potentials given
    # to argmax_choice are quantised first (clipped to 0 or 1), on both paths.
    from dhtgraph._native.contraction import argmax_choice as native_argmax
    potential = torch.rand(e)
    for hashed in (False, True):
        assert torch.equal(native_argmax(quantize_potential(potential), edges, 4, None, hashed,
                                         None, None),
                           native_argmax(potential, edges, 4, None, hashed, None, None))
    for tie in ("reference", "hashed"):
        choices_both_ways(torch.arange(e) % 3 - 1, edges, 4, tie_break=tie)
    # -0.0 == 0.0: those ends are equal.
    assert equal_ends(torch.tensor([[0.0, -0.0], [-0.0, 0.0]]),
                      torch.tensor([[0], [1]])).tolist() == [True]


def test_empty_graphs():
    for tie in ("reference", "hashed"):
        none = torch.zeros(2, 0, dtype=torch.long)
        assert choices_both_ways(torch.zeros(0), none, 3, tie_break=tie).tolist() == [0, 1, 2]
        assert choices_both_ways(torch.zeros(0), none, 0, tie_break=tie).tolist() == []
    assert equal_ends(torch.zeros(2, 0), torch.tensor([[0], [1]])).tolist() == [True]


def test_quantisation_is_the_tensor_one():
    # The kernel quantises float potentials itself; argmax_choice only compares the
    # quantised values, so the order they give every pair of neighbouring values (equal
    # or less) must be quantize_potential's. Test values: every float32 step boundary
    # k/65535 and its neighbours, specials, random values, sorted; one star per
    # consecutive pair (a, b) and orientation: source → (b, a) at increasing target
    # indices picks a's edge iff q(a) >= q(b) (ties: the larger index).
    k = torch.arange(65536, dtype=torch.float64) / 65535
    for dtype in (torch.float32, torch.float64):
        edge = k.to(dtype)
        x = torch.cat([edge, torch.nextafter(edge, torch.tensor(-1.0, dtype=dtype)),
                       torch.nextafter(edge, torch.tensor(2.0, dtype=dtype)),
                       torch.rand(10**5, dtype=dtype) * 1.2 - 0.1,
                       torch.tensor([NAN, INF, -INF, -0.0, 0.0, 1e-45, 5e-324, 1e38],
                                    dtype=torch.float64).to(dtype)]).sort().values
        a, b = torch.cat([x[:-1], x[1:]]), torch.cat([x[1:], x[:-1]])
        source = 3 * torch.arange(a.numel())
        edges = torch.stack([source.repeat_interleave(2),
                             torch.stack([source + 1, source + 2], 1).reshape(-1)])
        potential = torch.stack([b, a], 1).reshape(-1)
        choice = choices_both_ways(potential, edges, 3 * a.numel())[source]
        assert torch.equal(choice == source + 2, quantize_potential(a) >= quantize_potential(b))


def test_tie_hash_is_the_tensor_one_for_any_int64():
    a = torch.arange(0, 7)
    assert tie_hash(a, a + 1).tolist() == [13380, 25983, 4813, 3053, 4356, 6640, 15252]
    g = torch.Generator().manual_seed(5)
    for bits in (10, 31, 32, 40, 62):
        x = torch.randint(-2**bits, 2**bits, (5000,), generator=g)
        y = torch.randint(-2**bits, 2**bits, (5000,), generator=g)
        assert_same(*both(tie_hash, x, y))
    grid = torch.arange(30).view(5, 6)  # non-contiguous views, as the grid level passes
    assert_same(*both(tie_hash, grid[:-1, :-1], grid[:-1, 1:]))


# -- the pooling steps ------------------------------------------------------------------

def test_constant_channels_by_hand():
    # Blocks {0, 1}, {2, 3}, {4}: channel 0 constant in the first, NaN and -0.0 cases.
    mean = torch.tensor([[1.0, 2.0], [1.0, 3.0], [NAN, -0.0], [NAN, 0.0], [INF, 5.0]])
    var = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1e-30], [0.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    new_mean, new_var = torch.zeros(3, 2), torch.ones(3, 2)
    for v in (None, var):
        native, tensor = both(snap_constant_blocks, mean, v, labels, 3, new_mean, new_var)
        assert_same(native, tensor)
    out = snap_constant_blocks(mean, None, labels, 3, new_mean, new_var)[1]
    assert out.tolist() == [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    assert snap_constant_blocks(mean, var, labels, 3, new_mean, new_var)[1].tolist() == \
        [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]


def test_constant_channels_keep_the_gradient_of_the_pooled_formula():
    mean = torch.tensor([[1.0], [1.0], [2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    new_var = torch.tensor([[0.5], [0.25]], dtype=torch.float64, requires_grad=True)
    grads = []
    for off in (False, True):
        with (_native.disabled() if off else torch.enable_grad()):
            out = snap_constant_blocks(mean, None, labels, 2, torch.zeros(2, 1), new_var)[1]
            (g,) = torch.autograd.grad(out.sum(), new_var)
        assert out.tolist() == [[0.0], [0.0]]
        grads.append(g)
    assert torch.equal(grads[0], grads[1])


def test_pooled_integers_by_hand():
    state = BlockState(mean=torch.zeros(4, 1), var=torch.zeros(4, 1),
                       size=torch.tensor([1, 2, 3, 4]),
                       bbox=torch.tensor([[0, 0, 0, 0], [1, 5, 2, 6], [3, 1, 3, 9], [0, 2, 7, 2]]),
                       edge_index=torch.zeros(2, 0, dtype=torch.long),
                       batch=torch.tensor([0, 0, 1, 1]))
    labels = torch.tensor([1, 1, 0, 0])
    native, tensor = both(C._pool_integers, state, labels, 2)
    assert_same(native, tensor)
    assert native[0].tolist() == [7, 3]
    assert native[1].tolist() == [[0, 1, 7, 9], [0, 0, 2, 6]]
    assert native[2].tolist() == [1, 0]



def test_pooled_sizes_wrap_as_index_add():
    # Sizes past 2**63 - 1 wrap modulo 2**64 on both paths (torch's index_add_; the kernel
    # adds as uint64, no signed overflow).
    big = (1 << 63) - 1
    state = BlockState(mean=torch.zeros(4, 1), var=torch.zeros(4, 1),
                       size=torch.tensor([big, 2, -big, -3]),
                       bbox=torch.zeros(4, 4, dtype=torch.long),
                       edge_index=torch.zeros(2, 0, dtype=torch.long),
                       batch=torch.zeros(4, dtype=torch.long))
    native, tensor = both(C._pool_integers, state, torch.tensor([0, 0, 1, 1]), 2)
    assert_same(native, tensor)
    assert native[0].tolist() == [-big, big - 1]

# -- pooled moments -----------------------------------------------------------------------

def random_moments(seed, dtype, k=60000, d=3, with_var=True, blocks=None):
    """Items of magnitudes from 1e-3 to 1e3 in blocks of 1 to ~40 items (a tenth of them
    single-member), labels in random order, a third of the weights zero and whole blocks
    with zero weights."""
    g = torch.Generator().manual_seed(seed)
    k_new = blocks or k // 20
    labels = torch.randint(0, k_new, (k,), generator=g)
    labels[:k_new] = torch.randperm(k_new, generator=g)  # every block has an item
    scale = 10.0 ** torch.randint(-3, 4, (1, d), generator=g).to(dtype)
    mean = torch.randn(k, d, generator=g, dtype=dtype) * scale + scale
    var = torch.rand(k, d, generator=g, dtype=dtype) * scale if with_var else None
    if with_var:
        var[torch.rand(k, generator=g) < 0.5] = 0
    weight = torch.rand(k, generator=g, dtype=dtype) * 5
    weight[torch.rand(k, generator=g) < 0.3] = 0
    weight[labels % 7 == 0] = 0  # blocks of zero weight only: the fallback decides
    size = torch.randint(1, 50, (k,), generator=g)
    return mean, var, labels, k_new, weight, size


def assert_equal(native, tensor):
    for a, b in zip(native, tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_var", [True, False])
def test_moments_are_the_tensor_ones_on_large_random_inputs(dtype, with_var):
    for seed in range(3):
        mean, var, labels, k_new, weight, size = random_moments(seed, dtype, with_var=with_var)
        fallback = size.to(dtype)
        native, tensor = both(weighted_moments, mean, var, labels, k_new, weight, fallback)
        assert_equal(native, tensor)
        assert not any(t.isnan().any() for t in native)
        # positive weights, no guard; and a block per item; and one block of everything
        for w, labels_, k_ in ((fallback, labels, k_new), (weight + 1, torch.arange(labels.numel()), labels.numel()),
                               (weight + 1, torch.zeros_like(labels), 1)):
            assert_equal(*both(weighted_moments, mean, var, labels_, k_, w, None))


@pytest.mark.parametrize("d", [1, 16, 33])
@pytest.mark.parametrize("threads", [1, 2])
def test_moments_are_the_tensor_ones_for_wide_features_and_threads(d, threads):
    # From 16 channels torch's index_add rows take scatter_add's expanded-index path (a
    # stable sort, then rows in index order), and its loops run on several threads: still
    # the items' order.
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for dtype in (torch.float32, torch.float64):
            mean, var, labels, k_new, weight, size = random_moments(7, dtype, k=30000, d=d)
            assert_equal(*both(weighted_moments, mean, var, labels, k_new, weight,
                               size.to(dtype)))
    finally:
        torch.set_num_threads(before)


def test_moments_of_single_member_blocks():
    mean, var, labels, _, weight, size = random_moments(3, torch.float64, k=1000)
    labels = torch.randperm(1000)
    native, tensor = both(weighted_moments, mean, var, labels, 1000, weight, size.double())
    assert_equal(native, tensor)
    # unit weights: (1·μ)/1 = μ and var + 0² = var exactly (var 0: snapped to 0 anyway)
    new_mean, new_var = weighted_moments(mean, var, labels, 1000, torch.ones(1000).double(),
                                         None)
    assert torch.equal(new_mean[labels], mean) and torch.equal(new_var[labels], var)


def test_moments_read_strided_and_expanded_inputs():
    mean, var, labels, k_new, weight, size = random_moments(4, torch.float32, d=5)
    channel_first = mean.t().contiguous().t()  # (K, d) with strides (1, K), as pixels
    every_other = torch.stack([weight, weight], 1)[:, 0]  # stride 2
    ones = torch.ones((), dtype=torch.float32).expand(mean.shape[0])  # stride 0
    for args in ((channel_first, var.t().contiguous().t(), every_other, ones),
                 (channel_first, None, weight, ones), (torch._neg_view(-mean), var[:, :5], torch._neg_view(-(weight + 1)), None)):
        m, v, w, f = args  # (the last: lazily negated views, read by value)
        native, tensor = both(weighted_moments, m, v, labels, k_new, w, f)
        assert_equal(native, tensor)
        assert native[0].is_contiguous() and native[1].is_contiguous()


def test_moments_of_special_values_by_hand():
    # Blocks {0, 1}: zero weights -> sizes; {2, 3}: inf; {4}: NaN; {5, 6}: -0.0 and 0.0.
    mean = torch.tensor([[1.0], [3.0], [INF], [1.0], [NAN], [-0.0], [0.0]])
    weight = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0])
    size = torch.tensor([1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    labels = torch.tensor([0, 0, 1, 1, 2, 3, 3])
    for var in (None, torch.zeros(7, 1)):
        native, tensor = both(weighted_moments, mean, var, labels, 4, weight, size)
        assert_same(native, tensor)
        new_mean, new_var = native
        assert new_mean[0].item() == 2.5 and new_var[0].item() == 0.75
        assert new_mean[1].item() == INF and new_var[1].isnan().all()
        assert new_mean[2].isnan().all() and new_var[2].isnan().all()
        assert new_mean[3].item() == 0.0 and new_var[3].item() == 0.0  # constant: snapped
    # without the guard a zero-weight block is 0/0 on both paths
    native, tensor = both(weighted_moments, mean, None, labels, 4, weight, None)
    assert_same(native, tensor)
    assert native[0][0].isnan().all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pooled_blocks_with_integer_sizes_and_frozen_blocks(dtype):
    mean, var, labels, k_new, weight, size = random_moments(5, dtype, k=20000)
    k = labels.numel()
    # frozen items alone in their blocks: the last 500 blocks hold one frozen item each
    labels = torch.where(labels >= k_new - 500, labels - 500, labels)
    frozen_items = torch.randperm(k)[:500]
    labels[frozen_items] = torch.arange(k_new - 500, k_new)
    movable = torch.ones(k, dtype=torch.bool)
    movable[frozen_items] = False
    state = BlockState(mean=mean, var=var, size=size,
                       bbox=torch.zeros(k, 4, dtype=torch.long),
                       edge_index=torch.zeros(2, 0, dtype=torch.long),
                       batch=torch.zeros(k, dtype=torch.long))
    partition = Partition(labels, k_new)
    for w, positive in ((size, True), (weight, False), (size.to(dtype), True)):
        for mask in (None, movable):
            native, tensor = both(C._pool_blocks, state, partition, w, positive=positive,
                                  movable=mask)
            assert_equal((native.mean, native.var), (tensor.mean, tensor.var))
            if mask is not None:
                blocks = partition.labels[frozen_items]
                assert torch.equal(native.mean[blocks], mean[frozen_items])
                assert torch.equal(native.var[blocks], var[frozen_items])
    # sizes beyond 2^24 (float32) / 2^53 (float64): converted by torch, the same result
    big = size + (1 << 53 if dtype == torch.float64 else 1 << 24) - 1
    native, tensor = both(C._pool_blocks, state, partition, big, positive=False)
    assert_equal((native.mean, native.var), (tensor.mean, tensor.var))
    native, tensor = both(pool_blocks, state, partition, size.to(dtype))
    assert_equal((native.mean, native.var), (tensor.mean, tensor.var))


def test_moments_with_gradients_take_the_tensor_path():
    mean, var, labels, k_new, weight, size = random_moments(6, torch.float64, k=3000)
    weight = weight.requires_grad_()
    mean = mean.requires_grad_()
    grads = []
    for off in (False, True):
        with (_native.disabled() if off else torch.enable_grad()):
            new_mean, new_var = weighted_moments(mean, var, labels, k_new, weight,
                                                 size.double())
            assert new_mean.grad_fn is not None and new_var.grad_fn is not None
            grads.append(torch.autograd.grad((new_mean.sum() + new_var.sum()),
                                             (mean, weight)))
            values = (new_mean.detach(), new_var.detach())
            if off:
                assert_equal(values, kept)
            kept = values
    assert_equal(grads[0], grads[1])
    with torch.no_grad():  # no gradient recorded: the kernel, the same values
        assert_equal(weighted_moments(mean, var, labels, k_new, weight, size.double()), kept)


def test_moment_errors():
    from dhtgraph._native import contraction as N
    mean = torch.zeros(3, 2)
    with pytest.raises(IndexError, match=r"'labels' in \[0, 2\)"):
        N.weighted_moments(mean, None, torch.tensor([0, 2, 1]), 2, torch.ones(3), None)
    with pytest.raises(ValueError, match="dtype torch.float32 and shape"):
        N.weighted_moments(mean, None, torch.tensor([0, 1, 1]), 2, torch.ones(3).double(),
                           None)
    with pytest.raises(ValueError, match="'mean' of shape"):
        N.weighted_moments(mean.half(), None, torch.tensor([0, 1, 1]), 2, torch.ones(3),
                           None)
    with pytest.raises(ValueError, match="'movable'"):
        N.weighted_moments(mean, None, torch.tensor([0, 1, 1]), 2, torch.ones(3), None,
                           movable=torch.ones(3, dtype=torch.bool))
    # dtypes the kernel does not take: the tensor path
    half = weighted_moments(mean.half(), None, torch.tensor([0, 1, 1]), 2,
                            torch.ones(3).half(), None)
    assert half[0].dtype == torch.float16


# -- property tests ---------------------------------------------------------------------

@st.composite
def levels(draw, max_nodes=12, max_edges=30):
    """A block graph (coalesced, both directions, some loops) in 1-3 graphs, with tied
    potentials, plateau means, sizes, boxes and an optional movable mask."""
    graph = draw(random_graphs(min_nodes=1, max_nodes=max_nodes, max_edges=max_edges))
    n = graph.num_nodes
    edges = undirected(graph.edge_index, n) if graph.edge_index.numel() else graph.edge_index
    # Cut the nodes into contiguous graphs; keep only the edges inside one graph.
    cuts = sorted(draw(st.sets(st.integers(1, max(n - 1, 1)), max_size=2)))
    batch = torch.zeros(n, dtype=torch.long)
    for c in cuts:
        batch[c:] += 1
    edges = edges[:, batch[edges[0]] == batch[edges[1]]]
    e = edges.shape[1]
    levels_ = st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, NAN, 0.5 + 1e-7])
    pot = torch.tensor(draw(st.lists(levels_, min_size=e, max_size=e)), dtype=torch.float32)
    if draw(st.booleans()):  # symmetric, as the affinity gives them
        key = torch.minimum(edges[0], edges[1]) * n + torch.maximum(edges[0], edges[1])
        pot = pot[torch.searchsorted(key.unique(), key) % max(e, 1)] if e else pot
    d = draw(st.integers(0, 3))
    means = st.sampled_from([0.0, -0.0, 1.0, 2.0, NAN])
    mean = torch.tensor(draw(st.lists(st.lists(means, min_size=d, max_size=d),
                                      min_size=n, max_size=n)), dtype=torch.float32)
    mean = mean.view(n, d)
    var = torch.tensor(draw(st.lists(st.sampled_from([0.0, 0.0, 0.5]), min_size=n * d,
                                     max_size=n * d)), dtype=torch.float32).view(n, d)
    movable = None
    if draw(st.booleans()):
        movable = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    size = torch.tensor(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)))
    corner = torch.tensor(draw(st.lists(st.integers(0, 9), min_size=2 * n, max_size=2 * n)))
    bbox = torch.cat([corner.view(n, 2), corner.view(n, 2) + size.unsqueeze(1)], dim=1)
    state = BlockState(mean=mean, var=var, size=size, bbox=bbox, edge_index=edges, batch=batch)
    return state, pot, movable


@settings(max_examples=120)
@given(levels(), st.sampled_from(["reference", "hashed"]), st.booleans())
def test_argmax_is_the_tensor_one(level, tie, with_mean):
    state, pot, movable = level
    k = state.num_blocks
    choices_both_ways(pot, state.edge_index, k, movable, tie_break=tie, batch=state.batch,
                      mean=state.mean if with_mean else None)
    choices_both_ways(pot.double(), state.edge_index, k, movable, tie_break=tie,
                      batch=state.batch, mean=state.mean.double() if with_mean else None)
    assert_same(*both(equal_ends, state.mean, state.edge_index))


def _assert_same_level(native, tensor):
    # Two contract() results: the same choices, partition and block statistics, bit for bit.
    assert_same(native.choice, tensor.choice)
    assert native.partition == tensor.partition
    for name in ("mean", "var", "size", "bbox", "edge_index", "batch"):
        assert_same(getattr(native.state, name), getattr(tensor.state, name))


@settings(max_examples=60)
@given(levels(), st.sampled_from(["reference", "hashed"]),
       st.sampled_from(["argmax_edge", "size"]))
def test_contraction_levels_are_the_tensor_ones(level, tie, weights):
    state, pot, movable = level
    pot = pot.nan_to_num(0.3)  # affinities are finite; NaN is covered by the argmax test
    native, tensor = both(contract, state, pot, weights=weights, movable=movable,
                          tie_break=tie)
    _assert_same_level(native, tensor)


@settings(max_examples=60)
@given(levels())
def test_snap_and_integer_pooling_are_the_tensor_ones(level):
    state, _, _ = level
    k = state.num_blocks
    # Any grouping of the blocks within their graphs (not only connected ones), labels
    # by first occurrence (a block's image is any of its items': they agree).
    labels = Partition.from_labels(state.batch * k + torch.arange(k) % 2).labels
    k_new = int(labels.max()) + 1 if k else 0
    new = torch.rand(k_new, state.mean.shape[1])
    for var in (None, state.var):
        assert_same(*both(snap_constant_blocks, state.mean, var, labels, k_new, new, new))
    assert_same(*both(C._pool_integers, state, labels, k_new))


@settings(max_examples=80)
@given(levels(), st.booleans(), st.data())
def test_moments_are_the_tensor_ones_on_random_levels(level, guard, data):
    state, _, movable = level
    k = state.num_blocks
    labels = Partition.from_labels(state.batch * k + torch.arange(k) % 2).labels
    k_new = int(labels.max()) + 1 if k else 0
    weight = torch.tensor(data.draw(st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.5]),
                                             min_size=k, max_size=k)), dtype=torch.float32)
    for dtype in (torch.float32, torch.float64):
        mean, var, w = state.mean.to(dtype), state.var.to(dtype), weight.to(dtype)
        fallback = state.size.to(dtype) if guard else None
        for v in (None, var):
            assert_same(*both(weighted_moments, mean, v, labels, k_new, w, fallback))
        cast = replace(state, mean=mean, var=var)
        for wt, positive in ((w, not guard), (state.size, True)):
            native, tensor = both(C._pool_blocks, cast, Partition(labels, k_new), wt,
                                  positive=positive, movable=movable)
            assert_same((native.mean, native.var), (tensor.mean, tensor.var))


# -- errors -----------------------------------------------------------------------------

def test_indices_out_of_range_are_errors_not_writes():
    from dhtgraph._native import contraction as N
    bad = torch.tensor([[0, 3], [1, 0]])
    for hashed in (False, True):
        with pytest.raises(IndexError, match=r"'edge_index' in \[0, 3\)"):
            N.argmax_choice(torch.ones(2), bad, 3, None, hashed, None, None)
        with pytest.raises(IndexError, match="'edge_index'"):
            N.argmax_choice(torch.ones(2), bad.flip(0), 3, None, hashed, None, None)
        with pytest.raises(IndexError, match="'edge_index'"):
            N.argmax_choice(torch.ones(2), -bad, 3, None, hashed, None, None)
    with pytest.raises(IndexError, match="'edge_index'"):
        equal_ends(torch.zeros(3, 1), bad)
    with pytest.raises(IndexError, match=r"'labels' in \[0, 2\)"):
        N.constant_channels(torch.zeros(3, 1), None, torch.tensor([0, 2, 1]), 2)
    with pytest.raises(IndexError, match=r"'labels' in \[0, 2\)"):
        N.pool_integers(torch.tensor([0, -1]), 2, torch.ones(2, dtype=torch.long),
                        torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="'potential' of dtype"):
        N.argmax_choice(torch.ones(2, dtype=torch.int32), bad, 3, None, False, None, None)
    with pytest.raises(ValueError, match="floating tensor"):
        N.equal_ends(torch.zeros(3, 1, dtype=torch.long), bad)


def test_the_tensor_path_takes_what_the_kernels_do_not():
    # Integer means (no native equality for them) and int32 batches take the tensor path.
    potential = torch.full((PATH.shape[1],), 0.5)
    mean = torch.tensor([[0], [1], [1], [1], [2], [2]])
    assert argmax_choice(potential, PATH, 6, tie_break="hashed",
                         mean=mean).tolist() == [1, 0, 3, 4, 3, 4]
    assert argmax_choice(potential, PATH, 6, tie_break="hashed",
                         batch=torch.zeros(6, dtype=torch.int32)).tolist() == [1, 2, 1, 2, 5, 4]


# ------------------------------------------------- bad inputs to the bindings (review)

def test_equal_ends_of_an_edge_index_not_of_shape_2_by_e():
    # A contiguous (1, E) edge_index: the native path read its "second row" past the end.
    mean = torch.zeros(3, 2)
    for edges in (torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1], [1, 2], [2, 0]])):
        try:
            native = equal_ends(mean, edges)
        except IndexError as error:
            with _native.disabled(), pytest.raises(IndexError):
                equal_ends(mean, edges)
            assert "edge_index" not in str(error)  # the tensor path's own error
        else:
            with _native.disabled():
                assert_same(native, equal_ends(mean, edges))
    from dhtgraph._native import contraction as N
    with pytest.raises(ValueError, match="edge_index"):
        N.equal_ends(mean, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="edge_index"):
        N.argmax_choice(torch.rand(3), torch.tensor([[0, 1, 2]]), 3, None, False, None, None)


def test_bindings_take_int32_and_strided_indices():
    from dhtgraph._native import contraction as N
    edges = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 3]])
    mean = torch.tensor([[1.0], [1.0], [2.0], [3.0]])
    strided = torch.stack([edges, edges]).transpose(0, 1)[:, 0]  # (2, E), not contiguous
    wide = torch.zeros(2, 2 * edges.shape[1], dtype=torch.long)
    wide[:, ::2] = edges
    for e in (edges.int(), wide[:, ::2], strided):
        assert_same(N.equal_ends(mean, e), N.equal_ends(mean, edges))
        assert_same(N.argmax_choice(torch.rand(5, generator=torch.Generator().manual_seed(0)),
                                    e, 4, None, True, torch.zeros(4, dtype=torch.int32), mean),
                    N.argmax_choice(torch.rand(5, generator=torch.Generator().manual_seed(0)),
                                    edges, 4, None, True, torch.zeros(4, dtype=torch.long),
                                    mean))
    a, b = torch.arange(0, 40, 2), torch.arange(20)
    assert_same(N.tie_hash(a[::2].int(), b[::2]), N.tie_hash(a[::2].contiguous(),
                                                             b[::2].contiguous()))
    batch = torch.tensor([0, 0, 1, 1, 1], dtype=torch.int32)
    assert_same(N.local_index(batch), N.local_index(batch.long()))
    labels = torch.tensor([0, 1, 0, 1], dtype=torch.int16)
    size = torch.tensor([1, 2, 3, 4])
    bbox = torch.tensor([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3], [0, 3, 4, 4]])
    assert_same(N.pool_integers(labels, 2, size.int(), bbox.t().contiguous().t(),
                                size[:4].int()),
                N.pool_integers(labels.long(), 2, size, bbox, size))
    assert_same(N.constant_channels(mean, None, labels, 2),
                N.constant_channels(mean, None, labels.long(), 2))


def test_bindings_refuse_float_and_bool_indices():
    from dhtgraph._native import contraction as N
    with pytest.raises(TypeError, match="'labels'"):
        N.constant_channels(torch.zeros(2, 1), None, torch.tensor([0.2, 0.7]), 1)
    with pytest.raises(TypeError, match="'labels'"):
        N.pool_integers(torch.tensor([True, False]), 2, torch.ones(2, dtype=torch.long),
                        torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="'edge_index'"):
        N.equal_ends(torch.zeros(2, 1), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(TypeError, match="'a'"):
        N.tie_hash(torch.tensor([1.5]), torch.tensor([2]))
    with pytest.raises(TypeError, match="'labels'"):
        N.weighted_moments(torch.zeros(2, 1), None, torch.tensor([0.0, 1.0]), 2,
                           torch.ones(2), None)


def test_bindings_check_the_shapes_they_trust():
    from dhtgraph._native import contraction as N
    labels = torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match="'size'"):
        N.pool_integers(labels, 2, torch.ones(2, dtype=torch.long),
                        torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="'bbox'"):
        N.pool_integers(labels, 2, torch.ones(3, dtype=torch.long),
                        torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="'labels'"):
        N.constant_channels(torch.zeros(2, 1), None, labels, 2)
    with pytest.raises(ValueError, match="'movable'"):
        N.argmax_choice(torch.rand(2), torch.tensor([[0, 1], [1, 0]]), 2,
                        torch.ones(1, dtype=torch.bool), False, None, None)
    with pytest.raises(ValueError, match="'batch'"):
        N.argmax_choice(torch.rand(2), torch.tensor([[0, 1], [1, 0]]), 2, None, True,
                        torch.zeros(1, dtype=torch.long), None)
    with pytest.raises(ValueError, match="'potential'"):
        N.argmax_choice(torch.rand(3), torch.tensor([[0, 1], [1, 0]]), 2, None, False, None,
                        None)


def test_bindings_on_empty_tensors():
    from dhtgraph._native import contraction as N
    none = torch.zeros(0, dtype=torch.long)
    assert N.constant_channels(torch.zeros(0, 0), None, none, 0).shape == (0, 0)
    assert N.constant_channels(torch.zeros(0, 3), None, none, 2).all()
    sizes, boxes, images = N.pool_integers(none, 0, none, none.view(0, 4), none)
    assert sizes.shape == images.shape == (0,) and boxes.shape == (0, 4)
    assert N.equal_ends(torch.zeros(0, 2), none.view(2, 0)).shape == (0,)
    assert N.argmax_choice(torch.zeros(0), none.view(2, 0), 0, None, True, none,
                           torch.zeros(0, 2)).shape == (0,)
    assert N.tie_hash(none, none).shape == (0,) and N.local_index(none).shape == (0,)
    mean, var = N.weighted_moments(torch.zeros(0, 3), None, none, 0, torch.zeros(0), None)
    assert mean.shape == var.shape == (0, 3)


@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
def test_lazily_negated_inputs_are_read_by_value(tie_break):
    # torch._neg_view shares the data of its base: a kernel must read its values.
    g = torch.Generator().manual_seed(3)
    edge_index = torch.randint(0, 40, (2, 300), generator=g)
    potential = torch._neg_view(-torch.rand(300, generator=g))
    mean = torch._neg_view(-torch.rand(40, 3, generator=g).round(decimals=1))
    batch = torch.zeros(40, dtype=torch.long)
    got = argmax_choice(potential, edge_index, 40, tie_break=tie_break, batch=batch, mean=mean)
    with _native.disabled():
        expected = argmax_choice(potential, edge_index, 40, tie_break=tie_break, batch=batch,
                                 mean=mean)
    assert torch.equal(got, expected)


# ------------------------------------- choices and their components in one call (round 2)

def _tokenizer_level(seed, side=48, images=2, levels_=5):
    """A level like the tokenizer's first general one: a 4-neighbour grid of ``images``
    images with loops, float32 means of three channels quantised to ``levels_`` values
    (plateaus: many equal means), float32 potentials with ties."""
    from dhtgraph.graph import grid_edge_index
    g = torch.Generator().manual_seed(seed)
    n = images * side * side
    edges = grid_edge_index(side, side, images, connectivity=4)
    loops = torch.arange(n).repeat(2, 1)
    edges = undirected(torch.cat([edges, loops], dim=1), n)
    mean = torch.randint(0, levels_, (n, 3), generator=g).float() / levels_
    key = torch.minimum(edges[0], edges[1]) * n + torch.maximum(edges[0], edges[1])
    pot = (torch.rand(n * n if n < 3000 else 1 << 24, generator=g) * 8).round() / 8
    potential = pot[key % pot.numel()]  # symmetric, with ties
    batch = torch.arange(images).repeat_interleave(side * side)
    return edges, potential, mean, batch


@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
@pytest.mark.parametrize("kind", ["float32", "float64", "int64", "movable", "no_mean"])
def test_choice_labels_are_the_choices_and_their_components(tie_break, kind):
    from dhtgraph._native import contraction as N
    from dhtgraph._union import functional_component_labels
    edges, potential, mean, batch = _tokenizer_level(1)
    k = mean.shape[0]
    movable, given = None, potential  # (the binding's int64 potentials: already quantised)
    if kind == "float64":
        potential, mean = potential.double(), mean.double()
        given = potential
    elif kind == "int64":
        given = C.quantize_potential(potential)
    elif kind == "movable":
        movable = torch.rand(k, generator=torch.Generator().manual_seed(2)) > 0.2
    elif kind == "no_mean":
        mean = None
    hashed = tie_break == "hashed"
    choice, labels, k_new = N.choice_labels(given, edges, k, movable, hashed, batch, mean)
    with _native.disabled():
        expected = argmax_choice(potential, edges, k, movable, tie_break=tie_break,
                                 batch=batch, mean=mean)
        expected_labels, expected_k = functional_component_labels(expected)
    assert_same(choice, expected)
    assert_same(labels, expected_labels)
    assert k_new == expected_k and 0 < k_new < k


@pytest.mark.parametrize("tie_break", ["reference", "hashed"])
@pytest.mark.parametrize("weights", ["size", "argmax_edge"])
@pytest.mark.parametrize("frozen", [False, True])
def test_tokenizer_like_levels_are_the_tensor_ones(tie_break, weights, frozen):
    # contract's native level (choices and components in one kernel call) on a level of
    # the tokenizer's shape, against the tensor path.
    edges, potential, mean, batch = _tokenizer_level(4)
    k = mean.shape[0]
    state = BlockState(mean=mean, var=torch.zeros_like(mean), size=torch.ones(k).long(),
                       bbox=torch.zeros(k, 4, dtype=torch.long), edge_index=edges,
                       batch=batch)
    movable = batch == 0 if frozen else None
    native, tensor = both(contract, state, potential, weights=weights, movable=movable,
                          tie_break=tie_break)
    _assert_same_level(native, tensor)


@settings(max_examples=120)
@given(levels(), st.sampled_from(["reference", "hashed"]), st.booleans())
def test_choice_labels_are_the_tensor_ones(level, tie, with_mean):
    from dhtgraph._native import contraction as N
    from dhtgraph._union import functional_component_labels
    state, pot, movable = level
    k, hashed = state.num_blocks, tie == "hashed"
    mean = state.mean if with_mean else None
    for p, m in ((pot, mean), (pot.double(), None if mean is None else mean.double())):
        choice, labels, k_new = N.choice_labels(p, state.edge_index, k, movable, hashed,
                                                state.batch, m)
        with _native.disabled():
            expected = argmax_choice(p, state.edge_index, k, movable, tie_break=tie,
                                     batch=state.batch, mean=m)
            expected_labels, expected_k = functional_component_labels(expected)
        assert_same((choice, labels), (expected, expected_labels))
        assert k_new == expected_k


def test_choice_labels_errors():
    from dhtgraph._native import contraction as N
    bad = torch.tensor([[0, 3], [1, 0]])
    for hashed in (False, True):
        for edges in (bad, bad.flip(0), -bad):
            with pytest.raises(IndexError, match=r"'edge_index' in \[0, 3\)"):
                N.choice_labels(torch.ones(2), edges, 3, None, hashed, None, None)
    with pytest.raises(ValueError, match="'potential' of dtype"):
        N.choice_labels(torch.ones(2, dtype=torch.int32), bad, 3, None, False, None, None)
    with pytest.raises(ValueError, match="'movable'"):
        N.choice_labels(torch.rand(2), torch.tensor([[0, 1], [1, 0]]), 2,
                        torch.ones(1, dtype=torch.bool), False, None, None)
    none = torch.zeros(0, dtype=torch.long)
    choice, labels, k_new = N.choice_labels(torch.zeros(0), none.view(2, 0), 0, None, True,
                                            none, torch.zeros(0, 2))
    assert choice.shape == labels.shape == (0,) and k_new == 0
    choice, labels, k_new = N.choice_labels(torch.zeros(0), none.view(2, 0), 3, None, False,
                                            None, None)
    assert choice.tolist() == [0, 1, 2] and labels.tolist() == [0, 1, 2] and k_new == 3


def test_hashed_choices_across_images_are_refused_as_by_the_tensor_path():
    # An edge between blocks of two images (batch [0, 0, 0, 1], edges 2 <-> 3): the
    # hashed rule's choice of block 3 is 3 - local(3) + local(2) = 5, outside [0, 4).
    # choice_labels returns the choices without labels (no union-find on them), and
    # contract refuses the level as the tensor path does.
    from dhtgraph._native import contraction as N
    edges, batch = torch.tensor([[2, 3], [3, 2]]), torch.tensor([0, 0, 0, 1])
    mean, potential = torch.arange(4.0).unsqueeze(1), torch.tensor([0.5, 0.5])
    for m in (mean, None):
        choice, labels, k_new = N.choice_labels(potential, edges, 4, None, True, batch, m)
        with _native.disabled():
            expected = argmax_choice(potential, edges, 4, tie_break="hashed", batch=batch,
                                     mean=m)
        assert choice.tolist() == expected.tolist() == [0, 1, 0, 5]
        assert labels is None and k_new == -1
    state = BlockState(mean=mean, var=torch.zeros(4, 1), size=torch.ones(4, dtype=torch.long),
                       bbox=torch.zeros(4, 4, dtype=torch.long), edge_index=edges,
                       batch=batch)
    with pytest.raises(IndexError) as native:
        contract(state, potential, tie_break="hashed")
    with _native.disabled(), pytest.raises(IndexError) as tensor:
        contract(state, potential, tie_break="hashed")
    assert str(native.value) == str(tensor.value)


@settings(max_examples=60)
@given(levels(), st.booleans(), st.booleans())
def test_pool_level_is_the_moments_and_the_integers(level, guard, frozen):
    # The fused pooling (one kernel call) against its two bindings and the tensor path.
    from dhtgraph._native import contraction as N
    state, _, movable = level
    k = state.num_blocks
    labels = Partition.from_labels(state.batch * k + torch.arange(k) % 2).labels
    k_new = int(labels.max()) + 1 if k else 0
    movable = movable if frozen else None
    fallback = state.size if guard else None
    for weight in (state.size, state.size.float() * 0.5):
        got = N.pool_level(state.mean, state.var, labels, k_new, weight, fallback, movable,
                           state.size, state.bbox, state.batch)
        moments = N.weighted_moments(state.mean, state.var, labels, k_new, weight, fallback,
                                     movable=movable)
        assert_same(got, (*moments, *N.pool_integers(labels, k_new, state.size, state.bbox,
                                                     state.batch)))
    with _native.disabled():
        expected = C._pool_blocks(state, Partition(labels, k_new), state.size, positive=True,
                                  movable=movable)
    got = N.pool_level(state.mean, state.var, labels, k_new, state.size, None, movable,
                       state.size, state.bbox, state.batch)
    assert_same(got, tuple(getattr(expected, name)
                           for name in ("mean", "var", "size", "bbox", "batch")))


def test_pool_level_of_sizes_the_kernel_does_not_convert():
    # int64 weights above 2**24 with float32 means: torch's conversion (the ERR_CAST path).
    from dhtgraph._native import contraction as N
    mean = torch.tensor([[1.0], [2.0], [4.0]])
    labels = torch.tensor([0, 0, 1])
    size = torch.tensor([(1 << 25) + 1, 3, 1])
    bbox = torch.zeros(3, 4, dtype=torch.long)
    batch = torch.zeros(3, dtype=torch.long)
    got = N.pool_level(mean, torch.zeros_like(mean), labels, 2, size, None, None, size, bbox,
                       batch)
    with _native.disabled():
        expected = C.weighted_moments(mean, torch.zeros_like(mean), labels, 2, size.float(),
                                      None)
    assert_same(got[:2], expected)
    assert got[2].tolist() == [(1 << 25) + 4, 1]


def test_pool_level_errors():
    from dhtgraph._native import contraction as N
    mean, size = torch.zeros(3, 2), torch.ones(3, dtype=torch.long)
    bbox, batch = torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    with pytest.raises(IndexError, match=r"'labels' in \[0, 2\)"):
        N.pool_level(mean, None, torch.tensor([0, 2, 1]), 2, size, None, None, size, bbox,
                     batch)
    labels = torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match="'size'"):
        N.pool_level(mean, None, labels, 2, size, None, None, size[:2], bbox, batch)
    with pytest.raises(ValueError, match="'bbox'"):
        N.pool_level(mean, None, labels, 2, size, None, None, size, bbox[:, :2], batch)
    with pytest.raises(ValueError, match="'batch'"):
        N.pool_level(mean, None, labels, 2, size, None, None, size, bbox, batch[:1])
    with pytest.raises(TypeError, match="'bbox'"):
        N.pool_level(mean, None, labels, 2, size, None, None, size, bbox.float(), batch)
    with pytest.raises(ValueError, match="'mean' of shape"):
        N.pool_level(mean.long(), None, labels, 2, size, None, None, size, bbox, batch)
