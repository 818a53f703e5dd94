"""DHTViT: packing, graph bias, heads, gradients, batch independence, bad input."""

import pytest
import torch
import torch.nn.functional as F

from dhtgraph import DHTViT, DHTViTConfig, DHTViTOutput, Partition, grid_partition
from dhtgraph.nn.attention import hop_buckets, hop_distances
from dhtgraph.nn.heads import classification_loss, dense_loss

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TINY = dict(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2, num_classes=3,
            mlp_ratio=2.0)


def _model(**kw):
    torch.manual_seed(0)
    return DHTViT(**{**TINY, **kw})


def _random_partition(b, h, w, k, seed=0):
    """Block labels per image from a seeded generator (blocks need not be connected)."""
    g = torch.Generator().manual_seed(seed)
    labels = [torch.randint(0, k + i, (h * w,), generator=g) for i in range(b)]
    parts = [Partition(lab) for lab in labels]
    offset, out = 0, []
    for p in parts:
        out.append(p.labels + offset)
        offset += p.num_blocks
    return Partition(torch.cat(out))


@pytest.mark.parametrize("device", DEVICES)
def test_grid_forward_shapes(device):
    model = _model(reg_tokens=2).to(device)
    x = torch.rand(2, 3, 16, 16, device=device)
    out = model(x, grid_partition(2, 16, 16, 4, device=device))
    assert isinstance(out, DHTViTOutput)
    assert out.logits.shape == (2, 3) and out.dense_logits is None
    assert out.features.shape == (2, 3 + 16, 16) and bool(out.mask.all())
    assert out.num_tokens.tolist() == [16, 16]


def test_embedding_identity_with_timm_patch_and_position_embedding():
    """grid tokens: [vec F ‖ histogram] · [patch_embed ‖ pos_embed] = conv patch embedding + pos."""
    model = _model().double()
    with torch.no_grad():
        model.cls_token.normal_()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    emb = model.embed(x, grid_partition(2, 16, 16, 4))
    conv = F.conv2d(x, model.patch_embed.proj.weight, model.patch_embed.proj.bias, stride=4)
    patches = conv.flatten(2).transpose(1, 2)  # (B, 16, D), timm's patch order
    cls = model.cls_token.expand(2, -1, -1)
    expected = torch.cat([cls, patches], 1) + model.pos_embed
    torch.testing.assert_close(emb.tokens, expected, rtol=0, atol=1e-12)
    # The descriptor itself is exact: pixels and a one-hot position.
    desc = emb.descriptors
    assert torch.equal(desc.position, torch.eye(16, dtype=desc.position.dtype).repeat(2, 1))
    assert torch.equal(desc.patches.flatten(1),
                       F.unfold(x, 4, stride=4).transpose(1, 2).reshape(32, -1))


def test_hop_distances_hand_values():
    # One image, path 0-1-2-3 and an isolated token 4; cap 3.
    edges = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    dist = hop_distances(edges, torch.zeros(5, dtype=torch.long), torch.arange(5), 1, 5, 3)
    assert dist[0].tolist() == [[0, 1, 2, 3, 3], [1, 0, 1, 2, 3], [2, 1, 0, 1, 3],
                                [3, 2, 1, 0, 3], [3, 3, 3, 3, 0]]
    buckets = hop_buckets(dist, 1, 3)
    assert buckets.shape == (1, 6, 6)
    assert bool((buckets[0, 0] == 4).all()) and bool((buckets[0, :, 0] == 4).all())
    assert torch.equal(buckets[0, 1:, 1:], dist[0])


def test_zero_graph_bias_changes_nothing_and_a_trained_one_does():
    x = torch.rand(2, 3, 16, 16)
    part = _random_partition(2, 16, 16, 9)
    with_bias = _model(graph_bias=True).eval()
    without = DHTViT(**{**TINY, "graph_bias": False}).eval()
    missing, unexpected = without.load_state_dict(with_bias.state_dict(), strict=False)
    assert not missing and all(k.endswith("hop_bias") for k in unexpected)
    with torch.no_grad():
        a, b = with_bias(x, part), without(x, part)
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(a.features[a.mask], b.features[b.mask], rtol=0, atol=1e-6)
        with_bias.blocks[0].attn.hop_bias.normal_()
        c = with_bias(x, part)
    assert (c.logits - a.logits).abs().max() > 1e-3


def test_gradients_reach_tokenizer_features_and_transformer():
    torch.manual_seed(0)
    model = _model()  # learned encoder, train mode, gradients on
    x = torch.randn(2, 3, 16, 16)
    out = model(x)  # dHT tokens from model.tokenizer
    loss = model.loss(out, torch.tensor([0, 2]))
    loss.backward()
    named = dict(model.named_parameters())
    for name in ("tokenizer.conv.ds.0.weight", "tokenizer.conv.cv.0.weight",  # encoder f
                 "tokenizer.linear.weight",  # W
                 "region_features.theta", "region_features.background",  # λ, β
                 "patch_embed.proj.weight", "pos_embed", "cls_token",
                 "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.weight", "blocks.0.attn.hop_bias",
                 "head.weight"):
        grad = named[name].grad
        assert grad is not None, name
        assert bool(torch.isfinite(grad).all()), name
        assert grad.abs().sum() > 0, name


@pytest.mark.parametrize("pool", ["token", "avg"])
def test_batch_independence_eval(pool):
    model = _model(global_pool=pool, class_token=pool == "token", tokenizer={"encoder": "lab"},
                   dense=True).eval()
    torch.manual_seed(3)
    x = torch.rand(3, 3, 16, 16)
    x[1] = 0.5  # a flat image: few tokens, so the batch is padded
    with torch.no_grad():
        joint = model(x, max_tokens=12)
        assert len(set(joint.num_tokens.tolist())) > 1  # padding is exercised
        for i in range(3):
            alone = model(x[i:i + 1], max_tokens=12)
            torch.testing.assert_close(joint.logits[i], alone.logits[0], rtol=0, atol=1e-5)
            torch.testing.assert_close(joint.dense_logits[i], alone.dense_logits[0], rtol=0,
                                       atol=1e-5)


@pytest.mark.parametrize("graph_bias", [True, False])
def test_given_partition_with_padding_matches_images_alone(graph_bias):
    model = _model(graph_bias=graph_bias).eval()
    if graph_bias:
        with torch.no_grad():
            for block in model.blocks:
                block.attn.hop_bias.normal_()
    x = torch.rand(2, 3, 16, 16)
    part = _random_partition(2, 16, 16, 5)
    sizes = [int(v) for v in torch.bincount(torch.arange(512) // 256, minlength=2)]
    with torch.no_grad():
        joint = model(x, part)
        k0 = int(part.labels[:256].max()) + 1
        first = model(x[:1], Partition(part.labels[:256]))
        second = model(x[1:], Partition(part.labels[256:] - k0))
    assert sizes == [256, 256]
    assert joint.num_tokens.tolist() == [first.num_tokens.item(), second.num_tokens.item()]
    torch.testing.assert_close(joint.logits, torch.cat([first.logits, second.logits]),
                               rtol=0, atol=1e-5)


def test_dense_head_broadcasts_token_logits_and_honours_ignore():
    model = _model(dense=True).eval()
    x = torch.rand(1, 3, 16, 16)
    part = grid_partition(1, 16, 16, 4)
    out = model(x, part)
    assert out.dense_logits.shape == (1, 3, 16, 16)
    # Every pixel of a patch carries the same logits.
    patch = out.dense_logits[0, :, :4, :4].reshape(3, -1)
    assert torch.equal(patch, patch[:, :1].expand(-1, 16))
    target = torch.randint(0, 3, (1, 16, 16))
    ignored = target.clone()
    ignored[:, :8] = 255
    keep = ignored != 255
    expected = F.cross_entropy(out.dense_logits.permute(0, 2, 3, 1)[keep], target[keep])
    torch.testing.assert_close(model.loss(out, ignored), expected)
    with pytest.raises(ValueError, match="labels in 0..2 or the ignore label 255 \\(got 7\\)"):
        dense_loss(out.dense_logits, torch.full((1, 16, 16), 7))


def test_classification_loss_ignore_and_bad_labels():
    logits = torch.randn(3, 4)
    target = torch.tensor([1, -100, 3])
    torch.testing.assert_close(classification_loss(logits, target),
                               F.cross_entropy(logits[[0, 2]], target[[0, 2]]))
    with pytest.raises(ValueError, match="got 4"):
        classification_loss(logits, torch.tensor([0, 1, 4]))
    with pytest.raises(TypeError, match="integer class labels"):
        classification_loss(logits, torch.zeros(3))


def test_config_is_frozen_and_checked():
    cfg = DHTViTConfig(**TINY)
    assert cfg.grid_size == (4, 4) and cfg.num_prefix_tokens == 1 and cfg.img_size == (16, 16)
    with pytest.raises(Exception):
        cfg.depth = 3
    with pytest.raises(TypeError, match="Unknown DHTViTConfig option\\(s\\) \\['depht'\\]"):
        DHTViT(**{**TINY, "depht": 3})
    with pytest.raises(TypeError, match="Unknown DHTViTConfig"):
        DHTViTConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="'global_pool'"):
        DHTViTConfig(global_pool="max")
    with pytest.raises(ValueError, match="class_token=True"):
        DHTViTConfig(class_token=False)
    with pytest.raises(ValueError, match="divisible by 'num_heads'"):
        DHTViTConfig(embed_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="square"):
        DHTViTConfig(patch_size=(16, 8))
    assert DHTViTConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_input_messages():
    model = _model()
    with pytest.raises(ValueError, match="'images' to have 3 channels \\(got 1\\)"):
        model(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="'images' to have 4 dimensions"):
        model(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="partition the B·H·W = 2·16·16 = 512 pixels"):
        model(torch.rand(2, 3, 16, 16), grid_partition(1, 16, 16, 4))  # wrong length
    with pytest.raises(ValueError, match="partition the B·H·W"):
        model(torch.rand(1, 3, 16, 16), grid_partition(1, 20, 20, 4))  # another image size
    with pytest.raises(ValueError, match="size 16×16 \\(got 20×20\\); set dynamic_img_size"):
        model(torch.rand(1, 3, 20, 20))
    with pytest.raises(TypeError, match="'partition' to be a dhtgraph.Partition"):
        model(torch.rand(1, 3, 16, 16), torch.zeros(256, dtype=torch.long))
    with pytest.raises(ValueError, match="'max_tokens'"):
        model(torch.rand(1, 3, 16, 16), grid_partition(1, 16, 16, 4), max_tokens=4)


def test_dynamic_size_with_dht_tokens():
    model = _model(dynamic_img_size=True, tokenizer={"encoder": "rgb"}).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 20, 24))  # grid ⌈20/4⌉×⌈24/4⌉ = 5×6
    assert out.num_tokens.tolist() == [30]
    assert out.logits.shape == (1, 3)
