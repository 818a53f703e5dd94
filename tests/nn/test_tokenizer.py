"""DHTTokenizer: functional core agreement, gradients (on by default, as users call it),
batch independence, threads, budget, the claims of Tokens' docstring, configuration and bad
input (spec §2–§8)."""

import dataclasses
import warnings

import pytest
import torch

from dhtgraph.features.pooling import pool_regions
from dhtgraph.graph import grid_edge_index
from dhtgraph.graph.pixel import grid_quotient
from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy
from dhtgraph.metrics import explained_variation
from dhtgraph.nn import DHTConfig, DHTTokenizer
from dhtgraph.nn.config import (PRESETS, BudgetConfig, EncoderConfig, HierarchyConfig,
                                SelectionConfig)
from dhtgraph.selection import ic_stopping, merge_to_budget, select_partition

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _images(b=3, h=20, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, 4, 5, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="nearest")
    return (smooth + 0.05 * torch.rand(b, 3, h, w, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def learned():
    torch.manual_seed(0)
    return DHTTokenizer(DHTConfig(compactness=0.05)).eval()


def _recommended(**options):
    return DHTTokenizer(DHTConfig.preset("recommended", **options))


def _same_tokens(a, b):
    assert a.partition == b.partition
    assert torch.equal(a.features, b.features)
    assert torch.equal(a.projected, b.projected)
    assert torch.equal(a.num_tokens, b.num_tokens)


@pytest.mark.parametrize("max_tokens", [None, 9])
def test_module_agrees_with_the_functional_core(learned, max_tokens):
    images = _images(2)
    tokens = learned(images, max_tokens)  # gradients on
    b, _, h, w = images.shape
    x = learned.encode(images)
    built = build_hierarchy(x, PixelGrid(b, h, w), compactness=0.05,
                            var_projection=learned.varproj, weights="argmax_edge",
                            stop=ic_stopping("aicc", 5.0))
    sel = select_partition(built, "aicc", 5.0)
    partition, mu, batch = sel.partition, sel.mean, sel.batch
    if max_tokens is not None:
        edges = grid_edge_index(h, w, b)
        merge = merge_to_budget(partition, learned.linear(mu), batch, edges, max_tokens).merge
        size = partition.sizes.to(mu.dtype).unsqueeze(1)
        mu = merge.reduce(mu * size, "sum") / merge.reduce(size, "sum")
        partition = partition.compose(merge)
    regions = pool_regions(partition, x)
    assert partition == tokens.partition
    assert torch.equal(mu, tokens.selected_mean)
    assert torch.equal(learned.linear(mu), tokens.projected)
    assert torch.allclose(regions.features, tokens.features, atol=1e-6)
    assert torch.equal(built.num_levels, tokens.num_levels)
    assert tokens.partition.is_connected(grid_edge_index(h, w, b))
    assert tokens.features.requires_grad and tokens.projected.requires_grad


@pytest.mark.parametrize("encoder, train", [("learned", False), ("lab", False), ("lab", True),
                                            ("rgb", True)])
def test_each_image_in_a_batch_gets_what_it_gets_alone(encoder, train):
    # Documented (DHTTokenizer.forward): identical in eval mode, and in encoder-free
    # modes in train mode too (only the learned encoder's BatchNorm couples a batch).
    torch.manual_seed(0)
    model = DHTTokenizer(encoder=encoder, compactness=0.05).train(train)
    images = _images(3, seed=2)
    batched = model(images, max_tokens=12)
    for b in range(3):
        alone = model(images[b:b + 1], max_tokens=12)
        keep = batched.batch == b
        assert int(batched.num_tokens[b]) == int(alone.num_tokens[0])
        assert torch.equal(batched.selected_mean[keep], alone.selected_mean)
        assert torch.equal(batched.labels()[b], alone.labels()[0])
        assert torch.equal(batched.num_levels[b:b + 1], alone.num_levels)


def test_same_tokens_with_one_and_two_threads(learned):
    images = _images(2, 32, 28, seed=3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = learned(images, max_tokens=15)
        torch.set_num_threads(2)
        two = learned(images, max_tokens=15)
    finally:
        torch.set_num_threads(threads)
    _same_tokens(one, two)


@pytest.mark.parametrize("weights", ["argmax_edge", "size"])
@pytest.mark.parametrize("train", [True, False])
def test_forward_and_backward_with_gradients_on(weights, train):
    """Issue 8: both pooling weightings, train and eval mode, forward and backward."""
    torch.manual_seed(0)
    model = DHTTokenizer(compactness=0.1, weights=weights).train(train)
    with torch.no_grad():
        model.varproj.bias.fill_(0.0)  # loops get chosen, so the projection matters
    images = _images(2, 16, 16, seed=4)
    tokens = model(images, max_tokens=20)
    loss = (tokens.injected - images).pow(2).mean() + tokens.projected.pow(2).mean() \
        + tokens.features.pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        if name.startswith("varproj.") and weights == "size":
            # Exact size weights: the loop potentials only steer the (discrete) argmax.
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    # 'argmax_edge' carries gradient into the potentials through every chosen loop (in
    # train mode the batch statistics make loops win here; in eval none may be chosen).
    prefixes = ("conv.", "linear.") + (("varproj.",) if weights == "argmax_edge" and train
                                        else ())
    for prefix in prefixes:
        total = sum(p.grad.abs().sum() for n, p in model.named_parameters() if n.startswith(prefix))
        assert total > 0, prefix


def test_gradcheck_of_the_token_values_in_float64():
    # The tokens are piecewise constant in the image; within a piece, W μ* and the features
    # are smooth: gradcheck through the whole module (partition fixed by the input).
    torch.manual_seed(0)
    model = DHTTokenizer(encoder="rgb", color_scale=10.0, weights="argmax_edge",
                         var_projection=False, compactness=0.01).double()
    images = _images(1, 6, 6, seed=7).double().requires_grad_(True)

    def values(img):
        tokens = model(img)
        return tokens.projected, tokens.features

    assert torch.autograd.gradcheck(values, (images,), eps=1e-7, atol=1e-5)


def test_tokens_claims_hold():
    """Each attribute of Tokens is what its docstring says."""
    model = _recommended()
    images = _images(2, 24, 24, seed=5)
    free = model(images)
    capped = model(images, max_tokens=10)
    b, c, h, w = images.shape
    pixels = images.permute(0, 2, 3, 1).reshape(-1, c)
    feats = model.encode(images).detach()
    for tokens in (free, capped):
        p = tokens.partition
        k = p.num_blocks
        # features: the size-weighted (per-pixel) mean of the encoder features, exactly.
        expected = torch.zeros(k, feats.shape[1]).index_add(0, p.labels, feats) \
            / torch.bincount(p.labels, minlength=k).unsqueeze(1)
        assert torch.allclose(tokens.features, expected, atol=1e-5, rtol=0)
        assert torch.equal(tokens.sizes, p.sizes)
        assert torch.equal(tokens.projected, model.linear(tokens.selected_mean))
        labels = tokens.labels()
        assert labels.shape == (b, h, w)
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        for j in range(0, k, max(1, k // 7)):
            img = int(tokens.batch[j])
            mask = labels[img] == j - int(tokens.num_tokens[:img].sum())
            ys, xs = rows[mask], cols[mask]
            assert tokens.bbox[j].tolist() == [int(ys.min()), int(xs.min()), int(ys.max()),
                                               int(xs.max())]
            assert torch.allclose(tokens.centroids[j], torch.stack([ys, xs], 1).float().mean(0))
        assert torch.equal(tokens.edge_index, p.quotient(grid_edge_index(h, w, b)))
        assert torch.equal(tokens.num_tokens, torch.bincount(tokens.batch, minlength=b))
        assert torch.equal(tokens.batch, torch.arange(b).repeat_interleave(h * w)[
            torch.zeros(k, dtype=torch.long).scatter_(0, p.labels, torch.arange(p.num_items))])
        injected = pixels - p.broadcast(p.reduce(pixels)) + p.broadcast(tokens.projected)
        assert torch.allclose(tokens.injected.permute(0, 2, 3, 1).reshape(-1, c), injected,
                              atol=1e-6)
    # After a merge, μ* is the size-weighted mean of the merged tokens' μ* (kills the
    # mutation "merged-token features pooled unweighted").
    assert free.partition.refines(capped.partition)
    inner = capped.partition.labels[
        torch.zeros(free.partition.num_blocks, dtype=torch.long).scatter_(
            0, free.partition.labels, torch.arange(free.partition.num_items))]
    size = free.sizes.double().unsqueeze(1)
    weighted = torch.zeros(capped.partition.num_blocks, free.selected_mean.shape[1],
                           dtype=torch.float64).index_add(0, inner, free.selected_mean.double() * size)
    weighted /= torch.zeros(capped.partition.num_blocks, 1, dtype=torch.float64).index_add(
        0, inner, size)
    assert torch.allclose(capped.selected_mean.double(), weighted, atol=1e-5)
    unweighted = torch.zeros_like(weighted).index_add(0, inner, free.selected_mean.double())
    unweighted /= torch.bincount(inner).unsqueeze(1)
    assert not torch.allclose(unweighted, weighted, atol=1e-3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        capped.features = capped.projected


def test_tokens_validate_their_shapes():
    tokens = _recommended()(_images(1, 8, 8))
    with pytest.raises(ValueError, match="Tokens 'features' of shape"):
        dataclasses.replace(tokens, features=tokens.features[:-1])
    with pytest.raises(ValueError, match="Tokens 'bbox' of shape"):
        dataclasses.replace(tokens, bbox=tokens.bbox[:, :2])


def test_budget_is_exact_and_mean_injection_is_consistent():
    model = _recommended()
    images = _images(2, 24, 24, seed=5)
    free = model(images)
    capped = model(images, max_tokens=10)
    assert (free.num_tokens > 10).all()
    assert capped.num_tokens.tolist() == [10, 10]
    assert capped.partition.is_connected(grid_edge_index(24, 24, 2))
    assert free.partition.refines(capped.partition)
    ev = explained_variation(images, capped.partition)
    assert (ev > 0.5).all()
    again = model(images, max_tokens=10)
    _same_tokens(capped, again)
    # The region adjacency is the budget's token graph, merged.
    assert torch.equal(capped.edge_index,
                       grid_quotient(capped.partition.labels, capped.partition.num_blocks, 2, 24, 24))


def test_seeded_budget_sampling_is_reproducible():
    model = _recommended()
    images = _images(1, 24, 24, seed=6)
    a = model(images, 20, generator=torch.Generator().manual_seed(0))
    b = model(images, 20, generator=torch.Generator().manual_seed(0))
    other_seed = model(images, 20, generator=torch.Generator().manual_seed(1))
    deterministic = model(images, 20)
    _same_tokens(a, b)
    assert a.num_tokens.tolist() == [20]
    # The generator is used: another seed keeps other tokens (36 → 20 here), and a seeded
    # sample differs from the deterministic choice.
    assert int(model(images).num_tokens[0]) > 20
    assert other_seed.num_tokens.tolist() == [20]
    assert a.partition != other_seed.partition
    assert a.partition != deterministic.partition


def test_bad_input():
    model = DHTTokenizer(encoder="rgb")
    images = _images(1, 8, 8)
    nan = images.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        model(nan)
    for value in (float("inf"), -float("inf")):
        bad = images.clone()
        bad[0, 2, 7, 7] = value
        with pytest.raises(ValueError, match=r"finite values \(got NaN or inf\)"):
            model(bad)
    with pytest.raises(ValueError, match="'max_tokens'"):
        model(images, max_tokens=0)
    with pytest.raises(ValueError, match="'max_tokens'"):
        model(images, max_tokens=-5)
    with pytest.raises(ValueError, match="'images'"):
        model(images[0])
    with pytest.raises(ValueError, match="channels"):
        model(images[:, :2])
    with pytest.raises(ValueError, match="'images'.*meta"):
        model(torch.empty(1, 3, 8, 8, device="meta"))
    with pytest.raises(ValueError, match="'criterion'"):
        DHTTokenizer(criterion="xic")
    with pytest.raises(ValueError, match="'encoder'"):
        DHTTokenizer(encoder="vit")
    with pytest.raises(TypeError, match="Unknown DHTTokenizer option"):
        DHTTokenizer(iotaa=3)
    with pytest.raises(TypeError, match="'config'"):
        DHTTokenizer({"iota": 3})


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_every_device(device):
    model = _recommended().to(device)
    tokens = model(_images(1, 12, 12).to(device), max_tokens=5)
    assert tokens.partition.labels.device.type == device
    assert tokens.num_tokens.tolist() == [5]


# ------------------------------------------------------------------- configuration
@pytest.mark.parametrize("field, value, error", [
    ("color_scale", 0, ValueError), ("color_scale", -1.0, ValueError),
    ("color_scale", float("inf"), ValueError), ("color_scale", "2", TypeError),
    ("min_blocks", -1, ValueError), ("min_blocks", 2.0, TypeError),
    ("max_levels", 0.5, TypeError), ("max_levels", 0, ValueError), ("max_levels", True, TypeError),
    ("loop_potential", 5, ValueError), ("loop_potential", float("nan"), ValueError),
    ("iota", "5", TypeError), ("iota", 0, ValueError), ("iota", float("nan"), ValueError),
    ("compactness", "0.5", TypeError), ("compactness", 1.5, ValueError),
    ("in_channels", 0, ValueError), ("features", 2.5, TypeError),
    ("weights", "mean", ValueError), ("budget_priority", "random", ValueError),
    ("var_projection", "yes", TypeError), ("store_gradient_params", 1, TypeError),
])
def test_config_checks_type_and_range_of_every_field(field, value, error):
    with pytest.raises(error, match=f"Expected '{field}' to be .*got"):
        DHTConfig(**{field: value})


def test_config_normalises_numbers_and_keeps_valid_values():
    config = DHTConfig(iota=10, color_scale=2, compactness=0, loop_potential=1, min_blocks=0,
                       max_levels=3)
    assert (config.iota, config.color_scale, config.compactness, config.loop_potential) == \
        (10.0, 2.0, 0.0, 1.0)
    assert isinstance(config.iota, float) and config.max_levels == 3 and config.min_blocks == 0


def test_config_is_frozen_and_composed_of_stage_configs():
    config = DHTConfig(iota=10, encoder="lab", weights="size", budget_priority="size")
    assert config.selection == SelectionConfig(iota=10.0)
    assert config.encoding == EncoderConfig(encoder="lab")
    assert config.hierarchy == HierarchyConfig(weights="size")
    assert config.budget == BudgetConfig(budget_priority="size")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.iota = 3.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.selection.iota = 3.0
    # Flat options override stage configs; replace (both spellings) works.
    assert DHTConfig(selection=SelectionConfig(iota=2.0), iota=7).iota == 7.0
    assert dataclasses.replace(config, iota=3).iota == 3.0 == config.replace(iota=3).iota
    assert dataclasses.replace(config, iota=3).encoder == "lab"
    assert DHTConfig(**config.to_dict()) == config and hash(config) == hash(DHTConfig(**config.to_dict()))
    with pytest.raises(TypeError, match="'selection' to be a SelectionConfig"):
        DHTConfig(selection=HierarchyConfig())
    with pytest.raises(TypeError, match="Unknown DHTConfig option"):
        DHTConfig(iotaa=1)
    with pytest.warns(DeprecationWarning, match="Positional"):
        assert DHTConfig(4, 16).features == 16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DHTTokenizer(encoder="lab", iota=2).config.iota == 2.0


def test_presets_are_defined_once():
    import dhtgraph

    assert dhtgraph.tokenize.__module__ == "dhtgraph.tokenize"
    from dhtgraph.tokenize import RECOMMENDED_CONFIG

    assert RECOMMENDED_CONFIG == PRESETS["recommended"]
    assert DHTConfig.preset("recommended").to_dict() == DHTConfig(**PRESETS["recommended"]).to_dict()
    r2v = DHTConfig.preset("r2v")
    assert (r2v.features, r2v.compactness, r2v.iota, r2v.weights, r2v.encoder) == \
        (8, 0.01, 5.0, "size", "learned")
    assert DHTConfig.preset("r2v", iota=3).iota == 3.0
    with pytest.raises(ValueError, match="'preset'"):
        DHTConfig.preset("best")
