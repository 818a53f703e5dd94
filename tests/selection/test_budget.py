"""Token budget: least-Ward-cost merging, exact, connected, deterministic or seeded (spec §6)."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import dhtgraph
from dhtgraph._union import component_labels
from dhtgraph.graph import grid_edge_index
from dhtgraph.partition import Partition
from dhtgraph.selection.budget import (DEFAULT_BUDGET_NOISE, check_generator, check_max_tokens,
                                       keep_mask, merge_to_budget, ward_costs)
from dhtgraph.testing.graphs import grid_graphs
from dhtgraph.testing.partitions import labels as label_strategy

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _strip(values, sizes=None, device="cpu"):
    """One image, a 1×n strip of tokens with the given features (and pixel counts)."""
    n = len(values)
    sizes = sizes or [1] * n
    part = Partition(torch.arange(n, device=device).repeat_interleave(
        torch.tensor(sizes, device=device)), n)
    feats = torch.tensor(values, dtype=torch.float32, device=device).reshape(n, -1)
    edges = grid_edge_index(1, sum(sizes)).to(device)          # the pixel strip
    return part, feats, torch.zeros(n, dtype=torch.long, device=device), edges


@pytest.mark.parametrize("device", DEVICES)
def test_hand_case_on_a_strip(device):
    # Features 0, 0.1, 5, 5.2 (one pixel each): Ward costs 0.005, 12.005, 0.02. Two merges
    # are needed; both cheap pairs are mutually best and among the 2 cheapest edges.
    part, feats, batch, edges = _strip([0.0, 0.1, 5.0, 5.2], device=device)
    out = merge_to_budget(part, feats, batch, edges, 2)
    assert out.merge.labels.tolist() == [0, 0, 1, 1]
    assert out.loss.tolist() == pytest.approx([0.025], rel=1e-5)
    assert out.kept.tolist() == [True, False, True, False]    # equal sizes: the first
    # One merge: only the cheapest edge is a candidate.
    one = merge_to_budget(part, feats, batch, None, 3, token_edge_index=edges)
    assert one.merge.labels.tolist() == [0, 0, 1, 2]
    assert one.loss.tolist() == pytest.approx([0.005], rel=1e-5)


def test_ward_size_factor_decides():
    # Sizes 1, 1, 100 and features 0, 1, 1.8: Ward costs 1·1/2·1 = 0.5 and
    # 100/101·0.64 = 0.634, so the small pair merges; by feature distance alone (1 vs
    # 0.8) token 1 would join the large token.
    part, feats, batch, edges = _strip([0.0, 1.0, 1.8], sizes=[1, 1, 100])
    out = merge_to_budget(part, feats, batch, edges, 2)
    assert out.merge.labels.tolist() == [0, 0, 1]
    assert out.loss.item() == pytest.approx(0.5, rel=1e-6)
    # The representative is the largest token.
    assert out.kept.tolist() == [True, False, True]
    assert merge_to_budget(part, feats, batch, edges, 1).kept.tolist() == [False, False, True]
    assert ward_costs(feats, part.sizes, torch.tensor([[0, 1], [1, 2]])).tolist() == \
        pytest.approx([0.5, 0.64 * 100 / 101])


@pytest.mark.parametrize("sizes, expected", [([1, 1, 2], [0, 0, 1]), ([2, 1, 1], [0, 1, 1])])
def test_equal_costs_merge_the_smallest_union_first(sizes, expected):
    # Equal features, so every Ward cost is 0: the smaller union wins. (The tie hash alone
    # would merge (1, 2) in the first case, so this fails if the size rule changes.)
    part, feats, batch, edges = _strip([0.0, 0.0, 0.0], sizes=sizes)
    assert merge_to_budget(part, feats, batch, edges, 2).merge.labels.tolist() == expected


def test_full_ties_follow_the_fixed_hash_order_within_the_image():
    # Six equal one-pixel tokens: costs and union sizes tie, the hash of the positions in
    # the image decides: (2, 3) first — neither the smallest nor the largest index pair.
    part, feats, batch, edges = _strip([0.0] * 6)
    out = merge_to_budget(part, feats, batch, edges, 5)
    assert out.merge.labels.tolist() == [0, 1, 2, 2, 3, 4]
    assert merge_to_budget(part, feats, batch, edges, 3).merge.labels.tolist() == \
        [0, 0, 1, 1, 2, 2]
    # The same strip as the second image of a batch breaks its ties the same way.
    first = torch.tensor([[3.0], [7.0], [1.0]])
    both = merge_to_budget(Partition.discrete(9), torch.cat([first, feats]),
                           torch.tensor([0] * 3 + [1] * 6), _two_strips(3, 6), 5)
    assert both.merge.labels.tolist()[3:] == [3, 4, 5, 5, 6, 7]


def _two_strips(n1, n2):
    e1 = grid_edge_index(1, n1)
    e2 = grid_edge_index(1, n2) + n1
    return torch.cat([e1, e2], 1)


def test_ties_do_not_stall_on_a_uniform_image():
    # With index order as the tie-break only one pair per round would be mutual on a
    # uniform strip (63 rounds for 64 tokens); the hash order keeps rounds logarithmic.
    part, feats, batch, edges = _strip([0.0] * 64)
    out = merge_to_budget(part, feats, batch, edges, 1)
    assert out.merge.num_blocks == 1 and out.rounds <= 10


def test_budget_is_exact_per_image_and_connected():
    torch.manual_seed(0)
    h, w, b = 9, 11, 3
    edges = grid_edge_index(h, w, b)
    part = Partition.discrete(b * h * w)
    feats = torch.rand(b * h * w, 3)
    batch = torch.arange(b).repeat_interleave(h * w)
    for budget in (1, 7, 50, 99, 500):
        out = merge_to_budget(part, feats, batch, edges, budget)
        merged = part.compose(out.merge)
        assert merged.is_connected(edges)
        token_batch = torch.empty(merged.num_blocks, dtype=torch.long).scatter_(0, merged.labels, batch)
        assert torch.bincount(token_batch, minlength=b).tolist() == [min(budget, h * w)] * b
        assert int(out.kept.sum()) == out.merge.num_blocks


def test_loss_is_the_squared_error_added():
    torch.manual_seed(2)
    h, w = 8, 9
    edges = grid_edge_index(h, w)
    part = Partition(torch.arange(h * w) // 2)              # 36 two-pixel tokens
    feats = torch.rand(36, 3, dtype=torch.float64)
    out = merge_to_budget(part, feats, torch.zeros(36, dtype=torch.long), edges, 10)
    weight = part.sizes.double().unsqueeze(1)
    means = out.merge.reduce(feats * weight, "sum") / out.merge.reduce(weight, "sum")
    added = ((feats - out.merge.broadcast(means)).pow(2).sum(1) * part.sizes).sum()
    assert out.loss.item() == pytest.approx(added.item(), rel=1e-9)


def test_same_tokens_alone_in_a_batch_and_in_any_order():
    torch.manual_seed(3)
    h, w = 7, 8
    n = h * w
    feats = torch.rand(3 * n, 3)
    edges = grid_edge_index(h, w, 3)
    batch = torch.arange(3).repeat_interleave(n)
    together = merge_to_budget(Partition.discrete(3 * n), feats, batch, edges, 9)
    alone = merge_to_budget(Partition.discrete(n), feats[n:2 * n], batch[:n], grid_edge_index(h, w), 9)
    middle = together.merge.labels[n:2 * n]
    assert torch.equal(middle - middle.min(), alone.merge.labels)
    # Interleaved tokens (batch not sorted), shuffled and duplicated edges: same partition.
    perm = torch.randperm(3 * n)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(3 * n)
    token_edges = inverse[edges]
    token_edges = torch.cat([token_edges, token_edges.flip(0)], 1)[:, torch.randperm(2 * edges.shape[1])]
    shuffled = merge_to_budget(Partition.discrete(3 * n), feats[perm], batch[perm], None, 9,
                               token_edge_index=token_edges)
    assert Partition(shuffled.merge.labels[inverse]) == together.merge
    assert torch.allclose(shuffled.loss, together.loss)


@settings(max_examples=40, deadline=None)
@given(graph=grid_graphs(max_side=6, max_images=2), data=st.data())
def test_piecewise_constant_images_merge_without_loss(graph, data):
    # Pixels coloured by region (1-pixel tokens): any budget ≥ the number of connected
    # region parts of every image is met with zero loss and no token across regions.
    n = graph.num_nodes
    region = Partition(data.draw(label_strategy(n, max_blocks=4)))
    pixels = graph.height * graph.width
    image = torch.arange(graph.num_images).repeat_interleave(pixels)
    src, dst = graph.edge_index
    inside = region.labels[src] == region.labels[dst]
    parts, _ = component_labels(src[inside], dst[inside], n)
    per_image = [int(torch.unique(parts[image == i]).numel()) for i in range(graph.num_images)]
    budget = data.draw(st.integers(max(per_image), max(per_image) + 3))
    feats = region.labels.to(torch.float32).unsqueeze(1) * 3.0
    out = merge_to_budget(Partition.discrete(n), feats, image, graph.edge_index, budget)
    assert out.loss.abs().max().item() < 1e-9
    assert out.merge.refines(region)
    assert out.merge.is_connected(graph.edge_index)
    counts = torch.bincount(torch.empty(out.merge.num_blocks, dtype=torch.long).scatter_(
        0, out.merge.labels, image), minlength=graph.num_images)
    assert counts.tolist() == [min(pixels, budget)] * graph.num_images


def test_huge_budgets_merge_nothing():
    part, feats, batch, edges = _strip([0.0, 1.0, 2.0])
    for budget in (3, 2**63, 2**70):
        out = merge_to_budget(part, feats, batch, edges, budget)
        assert out.merge == part.discrete(3) and out.rounds == 0 and out.loss.item() == 0
    photo = np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    free = dhtgraph.tokenize(photo)
    assert dhtgraph.tokenize(photo, max_tokens=2**63).partition == free.partition
    assert dhtgraph.tokenize(photo, max_tokens=2**70).partition == free.partition


def test_features_after_a_budget_are_size_weighted_means():
    rng = np.random.default_rng(4)
    photo = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
    photo[:, 12:] //= 4
    free = dhtgraph.tokenize(photo)
    capped = dhtgraph.tokenize(photo, max_tokens=7)
    assert int(capped.num_tokens[0]) == 7 < int(free.num_tokens[0])
    # μ of a merged token: the size-weighted mean of the μ of the tokens it merged.
    weighted = capped.partition.reduce(free.partition.broadcast(free.features.double()))
    assert torch.allclose(capped.features.double(), weighted, atol=1e-4)


def test_deterministic_and_seeded():
    torch.manual_seed(1)
    edges = grid_edge_index(8, 8)
    part = Partition.discrete(64)
    feats = torch.rand(64, 3)
    batch = torch.zeros(64, dtype=torch.long)
    a = merge_to_budget(part, feats, batch, edges, 10)
    b = merge_to_budget(part, feats, batch, edges, 10)
    assert a.merge == b.merge
    s1 = merge_to_budget(part, feats, batch, edges, 10, generator=torch.Generator().manual_seed(3))
    s2 = merge_to_budget(part, feats, batch, edges, 10, generator=torch.Generator().manual_seed(3))
    s3 = merge_to_budget(part, feats, batch, edges, 10, generator=torch.Generator().manual_seed(4))
    assert s1.merge == s2.merge and s1.merge.num_blocks == 10
    assert s1.merge != s3.merge and s1.merge != a.merge
    assert part.compose(s3.merge).is_connected(edges)
    # Sampling costs loss (the deterministic merge is greedy-optimal), but not much.
    assert a.loss.item() <= s1.loss.item() < 2 * a.loss.item()
    # noise=0 only breaks ties at random: with distinct costs, the deterministic merge.
    s0 = merge_to_budget(part, feats, batch, edges, 10, generator=torch.Generator().manual_seed(3),
                         noise=0.0)
    assert s0.merge == a.merge
    assert DEFAULT_BUDGET_NOISE > 0


def test_keep_mask_counts():
    score = torch.tensor([3.0, 1.0, 2.0, 5.0, 4.0])
    batch = torch.tensor([0, 0, 0, 1, 1])
    assert keep_mask(score, batch, 2).tolist() == [True, False, True, True, True]
    assert keep_mask(score, batch, 1).tolist() == [True, False, False, True, False]
    assert keep_mask(score, batch, 2**70).all()


@pytest.mark.parametrize("bad", [0, -3])
def test_non_positive_budget_is_an_error(bad):
    with pytest.raises(ValueError, match="'max_tokens'"):
        check_max_tokens(bad)
    part, feats, batch, edges = _strip([0.0, 1.0])
    with pytest.raises(ValueError, match="'max_tokens' to be a positive int"):
        merge_to_budget(part, feats, batch, edges, bad)


@pytest.mark.parametrize("bad", [2.5, "10", True])
def test_non_int_budget_is_an_error(bad):
    with pytest.raises(TypeError, match="'max_tokens'"):
        check_max_tokens(bad)


def test_bad_generator_noise_priority_and_shapes():
    part, feats, batch, edges = _strip([0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match=r"'generator' to be a torch.Generator or None \(got str 'x'\)"):
        merge_to_budget(part, feats, batch, edges, 2, generator="x")
    with pytest.raises(TypeError, match="'generator'"):
        check_generator(3)
    with pytest.raises(TypeError, match="'generator'"):
        dhtgraph.tokenize(np.zeros((6, 6, 3), np.uint8), max_tokens=2, generator="x")
    with pytest.raises(ValueError, match="'noise'"):
        merge_to_budget(part, feats, batch, edges, 2, noise=-1.0)
    with pytest.raises(ValueError, match="'priority'"):
        merge_to_budget(part, feats, batch, edges, 2, priority="random")
    with pytest.warns(FutureWarning, match="priority='size'"):
        merge_to_budget(part, feats, batch, edges, 2, priority="size")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merge_to_budget(part, feats, batch, edges, 2, priority="cost")
    with pytest.raises(ValueError, match=r"'features' to have shape \(3, C\)"):
        merge_to_budget(part, feats[:2], batch, edges, 2)
    with pytest.raises(ValueError, match=r"'batch' to have shape \(3,\)"):
        merge_to_budget(part, feats, batch[:2], edges, 2)


def test_disconnected_token_graph_is_an_error_not_a_silent_overrun():
    # One image, four tokens in two parts with no edge between them: {0, 1} and {2, 3}.
    # With a budget of 1, the two parts cannot be merged into one.
    part = Partition.discrete(4)
    feats = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
    tokens = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    batch = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"connected \(got image 0 with 4 tokens, whose token "
                                         r"graph is disconnected: 2 parts.*max_tokens=1"):
        merge_to_budget(part, feats, batch, None, 1, token_edge_index=tokens)
    # A budget of one token per part is fine.
    out = merge_to_budget(part, feats, batch, None, 2, token_edge_index=tokens)
    assert out.merge.labels.tolist() == [0, 0, 1, 1]
    two = torch.tensor([0, 0, 1, 1])
    edges = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="image 1 with 2 tokens"):
        merge_to_budget(part, feats, two, None, 1, token_edge_index=edges)


def _oracle_cases():
    # Grid batches with many exact ties (features quantised to few levels), float64
    # features, unsorted batches, seeded sampling: the cases the vectorised rounds must
    # order exactly like 0.2.0's one-sort-at-a-time loop.
    for seed in range(60):
        g = torch.Generator().manual_seed(seed)
        b, h, w = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((1, 4), (1, 9), (2, 9)))
        n = b * h * w
        feats = torch.rand(n, 2 + seed % 2, generator=g)
        if seed % 2:
            feats = (feats * int(torch.randint(1, 4, (1,), generator=g))).floor()
        if seed % 5 == 0:
            feats = feats.double()
        batch = torch.arange(b).repeat_interleave(h * w)
        edges = grid_edge_index(h, w, b)
        if seed % 3 == 0:                       # tokens interleaved across images
            perm = torch.randperm(n, generator=g)
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(n)
            feats, batch, edges = feats[perm], batch[perm], inverse[edges]
        budget = int(torch.randint(1, h * w + 1, (1,), generator=g))
        yield seed, feats, batch, edges, budget


def test_rounds_equal_the_reference_loop_bit_for_bit():
    from budget_reference import reference_merge_to_budget

    merged = 0
    for seed, feats, batch, edges, budget in _oracle_cases():
        part = Partition.discrete(feats.shape[0])
        for gen in (None, seed):
            kw = {} if gen is None else {"generator": torch.Generator().manual_seed(gen)}
            want = reference_merge_to_budget(part, feats, batch, edges, budget, **kw)
            kw = {} if gen is None else {"generator": torch.Generator().manual_seed(gen)}
            got = merge_to_budget(part, feats, batch, edges, budget, **kw)
            assert got.merge == want.merge, (seed, gen)
            assert torch.equal(got.loss, want.loss) and torch.equal(got.kept, want.kept)
            assert got.rounds == want.rounds
            merged += got.rounds > 1
    assert merged >= 40                          # most cases run several rounds


def test_given_sizes_are_used_and_checked():
    part, feats, batch, edges = _strip([0.0, 1.0, 1.8], sizes=[1, 1, 100])
    same = merge_to_budget(part, feats, batch, edges, 2, sizes=part.sizes)
    assert same.merge.labels.tolist() == [0, 0, 1]
    # Other weights change the Ward costs: token 1 now weighs 100 and joins token 2.
    other = merge_to_budget(part, feats, batch, edges, 2, sizes=torch.tensor([100, 100, 1]))
    assert other.merge.labels.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match=r"'sizes' to have shape \(3,\)"):
        merge_to_budget(part, feats, batch, edges, 2, sizes=torch.ones(2, dtype=torch.long))


class _CountHostReads(TorchDispatchMode):
    """Dispatched ops whose result the host must read (sizes or values)."""

    SYNCS = ("_local_scalar_dense", "nonzero", "_unique2", "unique_dim", "masked_select")

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        boolean = name == "index" and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                                          for i in (args[1] if len(args) > 1 else ()) if i is not None)
        self.total += name in self.SYNCS or boolean
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("images", [1, 3])
def test_host_reads_per_round(images):
    # Two per round for one image (the merge count, the contracted edge count), three
    # for several (the candidate count), plus a few per call.
    torch.manual_seed(5)
    h = w = 12
    n = images * h * w
    feats = torch.rand(n, 3)
    batch = torch.arange(images).repeat_interleave(h * w)
    edges = grid_edge_index(h, w, images)
    part = Partition.discrete(n)
    with _CountHostReads() as reads:
        out = merge_to_budget(part, feats, batch, None, 20, token_edge_index=edges,
                              sizes=part.sizes)
    per_round = 2 if images == 1 else 3
    assert out.rounds >= 4
    assert reads.total <= per_round * out.rounds + 6, reads.total   # 0.2.0: 7 per round


@pytest.mark.parametrize("tokens_in_use", [True, False])
def test_kernel_sets_are_decided_once_per_call(monkeypatch, tokens_in_use):
    # One check per kernel set for the whole call (not one per round): with the 'tokens'
    # set reported out of use while the 'selection' set runs, the rounds' float work
    # takes its torch ops and the merge is the same, bit for bit.
    from dhtgraph import _native

    if not _native.available("selection"):
        pytest.skip("the selection kernels are not built here")
    torch.manual_seed(6)
    h = w = 12
    feats = torch.rand(h * w, 3)
    batch = torch.zeros(h * w, dtype=torch.long)
    edges = grid_edge_index(h, w)
    part = Partition.discrete(h * w)
    sizes = part.sizes
    expected = merge_to_budget(part, feats, batch, edges, 20, sizes=sizes)
    asked = []
    enabled = _native.enabled

    def counted(kernels, *tensors):
        asked.append(kernels)
        return enabled(kernels, *tensors) and (tokens_in_use or kernels != "tokens")

    monkeypatch.setattr(_native, "enabled", counted)
    out = merge_to_budget(part, feats, batch, edges, 20, sizes=sizes)
    assert out.rounds >= 3
    assert asked.count("tokens") == 1 and asked.count("selection") == 1, asked
    assert torch.equal(out.merge.labels, expected.merge.labels)
    assert torch.equal(out.loss, expected.loss) and torch.equal(out.kept, expected.kept)


@pytest.mark.parametrize("native", [True, False])
def test_sizes_of_any_dtype_with_the_same_values_give_the_same_merge(native):
    # The state's size column takes the features' dtype whatever the sizes' dtype
    # (integers converted as .to() converts them, float weights cast first): int64, int32
    # and float64 sizes of the same values give one merge, loss and representatives.
    from contextlib import nullcontext

    from dhtgraph import _native

    torch.manual_seed(7)
    h = w = 10
    feats = torch.rand(h * w, 3)
    batch = torch.zeros(h * w, dtype=torch.long)
    edges = grid_edge_index(h, w)
    part = Partition.discrete(h * w)
    sizes = torch.randint(1, 50, (h * w,)) * 2**20 + 1      # beyond float32's 2^24 steps
    with nullcontext() if native else _native.disabled():
        runs = [merge_to_budget(part, feats, batch, edges, 12, sizes=sizes.to(dtype))
                for dtype in (torch.long, torch.int32, torch.float64)]
    for other in runs[1:]:
        assert torch.equal(other.merge.labels, runs[0].merge.labels)
        assert torch.equal(other.loss, runs[0].loss) and torch.equal(other.kept, runs[0].kept)
