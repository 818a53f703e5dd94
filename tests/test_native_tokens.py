"""The native token-assembly kernels (``dhtgraph/_native/tokens.c``) give the tensor path's
results bit for bit: mean injection, block means (pooling and the budget's merged μ*), the
budget rounds' Ward terms and merged rows, and whole tokenize calls (every Tokens field,
and the gradients of the learned path)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import dhtgraph
from dhtgraph import _native
from dhtgraph.features.mean_injection import mean_injection
from dhtgraph.features.pooling import _block_means, pool_grid_regions
from dhtgraph.nn.tokens import _merge_means
from dhtgraph.partition import Partition
from dhtgraph.selection import budget
from dhtgraph.testing.partitions import labels as label_strategy

pytestmark = pytest.mark.skipif(
    _native.mode() == "off" or not _native.available("tokens"),
    reason=f"native tokens kernels not in use here ({_native.status()})")

DTYPES = [torch.float32, torch.float64]


def _both(fn, *args, **kwargs):
    native = fn(*args, **kwargs)
    with _native.disabled():
        tensor = fn(*args, **kwargs)
    return native, tensor


def _random_partition(n, k, generator, runs=False):
    labels = torch.randint(0, k, (n,), generator=generator)
    labels[:k] = torch.arange(k)  # every block non-empty
    if runs:
        # Long runs of equal labels (as in images), blocks revisited later as well.
        labels = labels[torch.randint(0, n, (n // 50,), generator=generator).sort().values
                        ].repeat_interleave(50)
        labels = torch.cat([labels, torch.arange(k)])[:n] if labels.numel() < n else labels[:n]
        labels[-k:] = torch.arange(k)
    return Partition(labels)


def _wide(shape, dtype, generator):
    # Values over many magnitudes and signs: sums of them round at every step.
    base = torch.randn(shape, generator=generator, dtype=torch.float64)
    scale = torch.exp2(torch.randint(-20, 20, shape, generator=generator).double())
    return (base * scale).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("runs", [False, True])
def test_mean_injection_large_random(dtype, b, c, runs):
    g = torch.Generator().manual_seed(1)
    h, w = 61, 173
    image = _wide((b, c, h, w), dtype, g)
    part = _random_partition(b * h * w, 257, g, runs)
    values = _wide((part.num_blocks, c), dtype, g)
    native, tensor = _both(mean_injection, image, part, values)
    assert torch.equal(native, tensor)
    assert native.dtype == dtype and native.shape == image.shape


def test_mean_injection_hand_case():
    image = torch.tensor([[[[1.0, 3.0], [10.0, 0.5]]]])            # 1 channel, 2x2
    part = Partition(torch.tensor([0, 0, 1, 1]))
    values = torch.tensor([[100.0], [-1.0]])
    want = torch.tensor([[[[99.0, 101.0], [3.75, -5.75]]]])
    native, tensor = _both(mean_injection, image, part, values)
    assert torch.equal(native, want) and torch.equal(tensor, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_injection_gradient_path(dtype):
    g = torch.Generator().manual_seed(2)
    image = _wide((2, 3, 9, 11), dtype, g)
    part = _random_partition(2 * 9 * 11, 17, g)
    grads = []
    outs = []
    for native in (True, False):
        values = _wide((part.num_blocks, 3), dtype, torch.Generator().manual_seed(3))
        values.requires_grad_(True)
        if native:
            out = mean_injection(image, part, values)
        else:
            with _native.disabled():
                out = mean_injection(image, part, values)
        assert out.requires_grad
        (out * torch.arange(out.numel(), dtype=dtype).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append(values.grad)
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(grads[0], grads[1])


def test_mean_injection_mixed_dtypes_and_views():
    g = torch.Generator().manual_seed(4)
    image = torch.rand(2, 3, 5, 7, generator=g)
    part = _random_partition(70, 9, g)
    values = torch.rand(part.num_blocks, 3, generator=g, dtype=torch.float64)
    native, tensor = _both(mean_injection, image, part, values)   # float32 image, float64 values
    assert torch.equal(native, tensor)
    flipped = image.flip(3)                                          # a copy; a strided view:
    strided = torch.rand(2, 3, 5, 14, generator=g)[..., ::2]
    negated = torch._neg_view(image)
    for img in (flipped, strided, negated):
        native, tensor = _both(mean_injection, img, part, values.float())
        assert torch.equal(native, tensor)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 3, 7])
@pytest.mark.parametrize("runs", [False, True])
def test_block_means_large_random(dtype, d, runs):
    g = torch.Generator().manual_seed(5)
    n = 40_000
    part = _random_partition(n, 300, g, runs)
    x = _wide((n, d), dtype, g)
    sizes = part.sizes
    for view in (x, x.t().contiguous().t(), torch._neg_view(x)):    # rows, planes, negated
        native, tensor = _both(_block_means, part, view, sizes)
        assert torch.equal(native, tensor)


def test_block_means_gradient_path_uses_torch():
    g = torch.Generator().manual_seed(6)
    part = _random_partition(500, 20, g)
    x = torch.rand(500, 4, generator=g, requires_grad=True)
    out = _block_means(part, x, part.sizes)
    assert out.requires_grad
    out.sum().backward()
    assert torch.equal(x.grad, (1.0 / part.sizes.float())[part.labels].unsqueeze(1).expand(-1, 4))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_pool_grid_regions_property(data):
    b = data.draw(st.integers(1, 2))
    h, w = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    labels = data.draw(label_strategy(b * h * w))
    part = Partition(labels)
    d = data.draw(st.integers(1, 4))
    dtype = data.draw(st.sampled_from(DTYPES))
    x = _wide((b * h * w, d), dtype, torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    native, tensor = _both(pool_grid_regions, part, x, b, h, w)
    for field in ("features", "sizes", "bbox", "centroids", "batch"):
        assert torch.equal(getattr(native, field), getattr(tensor, field)), field


@pytest.mark.parametrize("dtype", DTYPES)
def test_merge_means(dtype):
    g = torch.Generator().manual_seed(7)
    k = 5000
    step = _random_partition(k, 400, g)
    mu = _wide((k, 6), dtype, g)
    sizes = torch.randint(1, 10_000, (k,), generator=g)
    batch = torch.zeros(k, dtype=torch.long)
    native, tensor = _both(_merge_means, step, mu, sizes, batch)
    for a, b in zip(native, tensor):
        assert torch.equal(a, b)
    mu.requires_grad_(True)                                          # the learned path
    native, tensor = _both(_merge_means, step, mu, sizes, batch)
    assert native[0].requires_grad
    for a, b in zip(native, tensor):
        assert torch.equal(a.detach(), b.detach())
    weights = torch.rand(native[0].shape, generator=g, dtype=dtype)
    grads = []
    for means in (native[0], tensor[0]):
        mu.grad = None
        (means * weights).sum().backward()
        grads.append(mu.grad.clone())
    assert grads[0].abs().sum() > 0 and torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_budget_round_terms(dtype):
    g = torch.Generator().manual_seed(8)
    n, e = 3000, 9000
    state = torch.cat([torch.randint(1, 5000, (n, 1), generator=g).to(dtype),
                       _wide((n, 3), dtype, g)], 1)
    edges = torch.randint(0, n, (2, e), generator=g)
    (cost, union), (cost_t, union_t) = _both(budget._round_costs, state, edges)
    assert torch.equal(cost, cost_t) and torch.equal(union, union_t)
    pair = torch.randperm(n, generator=g)[:1000].view(2, 500)
    native, tensor = _both(budget._merged_rows, state, pair)
    assert torch.equal(native, tensor)


@pytest.mark.parametrize("runs", [False, True])
def test_sizes_and_compose(runs):
    g = torch.Generator().manual_seed(10)
    part = _random_partition(100_000, 997, g, runs)                  # above the native size
    native, tensor = _both(lambda: part.sizes)
    assert torch.equal(native, tensor)
    assert torch.equal(native, torch.bincount(part.labels, minlength=part.num_blocks))
    coarser = Partition(torch.randint(0, 50, (part.num_blocks,), generator=g))
    composed = part.compose(coarser)
    assert torch.equal(composed.labels, coarser.labels[part.labels])
    assert composed.num_blocks == coarser.num_blocks


@pytest.mark.parametrize("dtype", DTYPES)
def test_budget_loss(dtype):
    from dhtgraph._native.tokens import budget_loss
    g = torch.Generator().manual_seed(11)
    k, n, images = 20_000, 700, 5
    features = _wide((k, 3), dtype, g)
    state = _wide((n, 4), dtype, g)                                 # feats: a strided slice
    feats = state[:, 1:]
    labels = torch.randint(0, n, (k,), generator=g)
    sizes = torch.randint(1, 5000, (k,), generator=g)
    batch = torch.randint(0, images, (k,), generator=g)             # any order
    got = budget_loss(features, feats, labels, sizes, batch, images + 1)
    want = budget._budget_loss(features, feats, labels, sizes, batch, images + 1)
    assert got.dtype == torch.float64 and torch.equal(got, want)


@pytest.mark.parametrize("b", [1, 3])
def test_merge_to_budget_tokens_set(b):
    # The budget with the tokens kernels on and only them off: the same merge and loss.
    g = torch.Generator().manual_seed(12)
    images = torch.rand(b, 3, 30, 33, generator=g)
    full = dhtgraph.tokenize(images)
    part = full.partition
    real = _native.enabled
    runs = []
    for off in (False, True):
        _native.enabled = (lambda kernels, *t: False if kernels == "tokens" else real(kernels, *t)
                           ) if off else real
        try:
            runs.append(budget.merge_to_budget(part, full.projected, full.batch,
                                               None, 7, token_edge_index=full.edge_index))
        finally:
            _native.enabled = real
    a, c = runs
    assert torch.equal(a.merge.labels, c.merge.labels) and torch.equal(a.loss, c.loss)
    assert torch.equal(a.kept, c.kept) and a.rounds == c.rounds


def test_out_of_range_falls_back():
    from dhtgraph._native import tokens as kernels
    state = torch.rand(4, 3)
    assert kernels.ward_terms(state, torch.tensor([[0, 4], [1, 2]])) is None
    assert kernels.merged_rows(state, torch.tensor([[0], [-1]])) is None
    one = torch.ones(3, dtype=torch.long)
    assert kernels.block_means(state, torch.tensor([0, 1, 2, 3]), 3, one) is None
    image = torch.rand(1, 2, 2, 2)
    assert kernels.mean_injection(image, torch.tensor([0, 0, 1, 2]), 2, one[:2], None) is None
    assert kernels.merge_sizes(torch.tensor([0, 5]), 2, one[:2], one[:2] - 1) is None
    assert kernels.count_labels(torch.tensor([0, 2]), 2) is None
    assert kernels.mean_injection(image.half(), torch.tensor([0, 0, 1, 1]), 2, torch.ones(2),
                                  None) is None                     # float16: the tensor path


def _tokens_equal(a, b):
    assert a.partition == b.partition
    for name in ("features", "projected", "batch", "num_tokens", "injected", "num_levels",
                 "selected_mean", "sizes", "bbox", "centroids", "edge_index"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("max_tokens", [None, 1, 40])
@pytest.mark.parametrize("b", [1, 3])
def test_tokenize_all_fields(max_tokens, b):
    g = torch.Generator().manual_seed(9)
    images = torch.rand(b, 3, 37, 41, generator=g)
    native, tensor = _both(dhtgraph.tokenize, images, max_tokens=max_tokens)
    _tokens_equal(native, tensor)


def test_tokenize_batch_worker_threads():
    # Batch chunks in worker threads call the kernels concurrently (no shared state).
    g = torch.Generator().manual_seed(13)
    images = torch.rand(4, 3, 29, 31, generator=g)
    threaded = dhtgraph.tokenize(images, max_tokens=20, num_threads=2)
    with _native.disabled():
        tensor = dhtgraph.tokenize(images, max_tokens=20, num_threads=1)
    _tokens_equal(threaded, tensor)


def test_tokenizer_gradients_same():
    torch.manual_seed(0)
    model = dhtgraph.DHTTokenizer(dhtgraph.DHTConfig(encoder="learned"))
    images = torch.rand(2, 3, 24, 24)
    runs = []
    for native in (True, False):
        model.zero_grad()
        if native:
            tokens = model(images, max_tokens=12)
        else:
            with _native.disabled():
                tokens = model(images, max_tokens=12)
        (tokens.features.sum() + tokens.injected.square().sum() + tokens.selected_mean.sum()
         ).backward()
        runs.append((tokens, [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    _tokens_equal(runs[0][0], runs[1][0])
    assert len(runs[0][1]) > 0
    for a, b in zip(runs[0][1], runs[1][1]):
        assert torch.equal(a, b)


def test_bad_shapes_and_dtypes_fall_back():
    # Shapes the kernels would read past (a (1, E) edge list, short sizes/batch/values)
    # and float or bool indices (.to(long) would truncate them): None, the tensor path.
    from dhtgraph._native import tokens as kernels
    state = torch.rand(4, 3)
    one = torch.ones(4, dtype=torch.long)
    assert kernels.ward_terms(state, torch.tensor([[0, 1, 2]])) is None
    assert kernels.merged_rows(state, torch.tensor([[0, 1, 2]])) is None
    assert kernels.ward_terms(state, torch.tensor([[0.0], [1.0]])) is None
    assert kernels.block_means(state, torch.tensor([0.2, 0.7, 1.0, 1.0]), 2, one[:2]) is None
    assert kernels.block_means(state, torch.tensor([0, 0, 1, 1]), 2, torch.ones(2)) is None
    assert kernels.block_means(state, torch.tensor([0, 0, 1, 1]), 2, one[:2],
                               torch.tensor([True] * 4)) is None
    image = torch.rand(1, 2, 2, 2)
    labels = torch.tensor([0, 0, 1, 1])
    assert kernels.mean_injection(image, labels, 2, one[:2], torch.rand(1, 2)) is None
    assert kernels.mean_injection(image, labels.float(), 2, one[:2], None) is None
    assert kernels.mean_injection(image[0], labels, 2, one[:2], None) is None
    assert kernels.merge_sizes(labels, 2, one, labels.float()) is None
    assert kernels.count_labels(labels.float(), 2) is None
    assert kernels.count_labels(labels, -1) is None
    feats = torch.rand(2, 3, dtype=torch.float64)
    features = torch.rand(4, 3, dtype=torch.float64)
    assert kernels.budget_loss(features, feats, labels, one[:2], one, 2) is None
    assert kernels.budget_loss(features, feats, labels, one, one[:3] - 1, 2) is None
    assert kernels.budget_loss(features, feats, labels.float(), one, one - 1, 1) is None


def test_int32_and_strided_indices_equal_int64():
    from dhtgraph._native import tokens as kernels
    g = torch.Generator().manual_seed(0)
    state = torch.rand(6, 4, generator=g, dtype=torch.float64) + 1
    edges = torch.tensor([[0, 1, 2, 5, 4], [1, 2, 3, 0, 4]])
    wide = torch.zeros(2, 10, dtype=torch.long)
    wide[:, ::2] = edges
    for e in (edges.int(), wide[:, ::2], edges.t().contiguous().t()):
        for a, b in zip(kernels.ward_terms(state, e), kernels.ward_terms(state, edges)):
            assert torch.equal(a, b)
        assert torch.equal(kernels.merged_rows(state, e), kernels.merged_rows(state, edges))
    labels = torch.tensor([0, 1, 0, 2, 2, 1])
    sizes = torch.tensor([3, 1, 2, 5, 1, 1])
    x = torch.rand(6, 3, generator=g)
    for lab, w in ((labels.int(), sizes.int()), (torch.stack([labels, sizes], 1)[:, 0],
                                                  torch.stack([labels, sizes], 1)[:, 1])):
        assert torch.equal(kernels.block_means(x, lab, 3, sizes[:3].int(), w),
                           kernels.block_means(x, labels, 3, sizes[:3], sizes))
        for a, b in zip(kernels.merge_sizes(lab, 3, w, lab), kernels.merge_sizes(labels, 3, sizes, labels)):
            assert torch.equal(a, b)
        assert torch.equal(kernels.count_labels(lab, 3), kernels.count_labels(labels, 3))
    image = torch.rand(1, 3, 2, 3, generator=g)
    values = torch.rand(3, 3, generator=g)
    got = kernels.mean_injection(image, labels.int(), 3, sizes[:3].to(torch.int16), values)
    want = kernels.mean_injection(image, labels, 3, sizes[:3], values)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_public_callers_with_float_sizes_keep_the_tensor_result():
    # mean_injection's tensor path divides by float sizes as given: both paths agree.
    image = torch.rand(1, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    partition = Partition(torch.tensor([0, 0, 1, 1]), 2)
    values = torch.rand(2, 3)
    native, tensor = _both(mean_injection, image, partition, values,
                           sizes=torch.tensor([1.5, 2.5]))
    assert torch.equal(native, tensor)


def test_empty_inputs():
    from dhtgraph._native import tokens as kernels
    none = torch.zeros(0, dtype=torch.long)
    assert kernels.count_labels(none, 0).shape == (0,)
    merged, image = kernels.merge_sizes(none, 0, none, none)
    assert merged.shape == image.shape == (0,)
    assert kernels.block_means(torch.zeros(0, 3), none, 0, none).shape == (0, 3)
    assert kernels.ward_terms(torch.zeros(0, 3), none.view(2, 0))[0].shape == (0, 2)
    assert kernels.merged_rows(torch.zeros(0, 3), none.view(2, 0)).shape == (0, 3)
    mean, out = kernels.mean_injection(torch.zeros(0, 3, 2, 2), none, 0, none, torch.zeros(0, 3))
    assert mean.shape == (0, 3) and out.shape == (0, 3, 2, 2)
