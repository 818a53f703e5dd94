"""DHTViT.from_timm: timm ViT fixtures reproduced to 1e-5 with grid tokens; option and
state-dict errors."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dhtgraph import DHTViT, grid_partition
from dhtgraph.nn.retrofit import PROVENANCE_FIELDS

TOL = 1e-5
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FIXTURES = sorted([SHARED / "timm-vit-tiny"] + sorted(SHARED.glob("timm-vit-variants/*/"))) \
    if SHARED.is_dir() else []


def _load(folder: Path):
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    kwargs = {k: v for k, v in config.items() if k not in PROVENANCE_FIELDS}
    return kwargs, load_file(str(folder / "weights.safetensors")), load_file(str(folder / "io.safetensors"))


def _fixture(name: str):
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"timm fixture {folder} is absent (it exists only in the project's CI)")
    return _load(folder)


def _max(a, b):
    return (a - b).abs().max().item()


@pytest.mark.shared
@pytest.mark.parametrize("folder", FIXTURES or [pytest.param(None, marks=pytest.mark.skip(
    reason="../shared/data with the timm fixtures is absent (it exists only in the project's CI)"))],
    ids=lambda f: f if f is None else f.name)
def test_fixture_reproduced_with_grid_tokens(folder):
    kwargs, weights, io = _load(folder)
    model = DHTViT.from_timm(weights, **kwargs)
    x = io["x"]
    b, _, h, w = x.shape
    part = grid_partition(b, h, w, model.config.patch_size)
    with torch.no_grad():
        emb = model.embed(x, part)
        out = model(x, part)
        # timm's patch embedding (before positions): the descriptor times patch_embed.proj.
        patch = F.linear(emb.descriptors.patches.flatten(1), model.patch_embed.proj.weight.flatten(1),
                         model.patch_embed.proj.bias)
    assert _max(patch.view(b, -1, patch.shape[-1]), io["patch_embed"]) <= TOL
    assert _max(emb.tokens, io["tokens"]) <= TOL
    assert _max(out.features, io["features"]) <= TOL
    if "pre_logits" in io:
        assert _max(out.pre_logits, io["pre_logits"]) <= TOL
    assert _max(out.logits, io["logits"]) <= TOL


@pytest.mark.shared
def test_weights_from_files_and_provenance_fields(tmp_path):
    kwargs, weights, io = _fixture("timm-vit-tiny")
    folder = SHARED / "timm-vit-tiny"
    config = json.loads((folder / "config.json").read_text())  # provenance fields included
    pth = tmp_path / "vit.pth"
    torch.save(weights, pth)
    x = io["x"]
    part = grid_partition(2, 64, 64, 16)
    with torch.no_grad():
        for source in (folder / "weights.safetensors", str(pth), {"state_dict": weights}):
            model = DHTViT.from_timm(source, **config)
            assert _max(model(x, part).logits, io["logits"]) <= TOL
    with pytest.raises(ValueError, match="'class_name'"):
        DHTViT.from_timm(weights, **{**kwargs, "class_name": "timm.models.resnet.ResNet"})


class _FakeTimmViT(nn.Module):
    """Stands in for a timm VisionTransformer: the attributes from_timm reads (no timm here)."""

    def __init__(self, weights, **kw):
        super().__init__()
        d = kw["embed_dim"]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, d, 16, 16)
        self.patch_embed.img_size = (kw["img_size"],) * 2
        self.patch_embed.dynamic_img_pad = False
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.reg_token = None
        self.pos_embed = nn.Parameter(torch.zeros(1, 17, d))
        self.num_classes, self.global_pool, self.num_reg_tokens = kw["num_classes"], "token", 0
        self.no_embed_class, self.dynamic_img_size, self.attn_pool = False, False, None
        self.norm_pre = nn.Identity()
        blocks = []
        for _ in range(kw["depth"]):
            blk = nn.Module()
            blk.norm1, blk.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            blk.attn = nn.Module()
            blk.attn.num_heads = kw["num_heads"]
            blk.attn.qkv, blk.attn.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            blk.attn.q_norm = blk.attn.k_norm = nn.Identity()
            blk.ls1 = blk.ls2 = nn.Identity()
            blk.mlp = nn.Module()
            blk.mlp.fc1, blk.mlp.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            blocks.append(blk)
        self.blocks = nn.Sequential(*blocks)
        self.norm, self.fc_norm = nn.LayerNorm(d), nn.Identity()
        self.head = nn.Linear(d, kw["num_classes"])
        self.load_state_dict(weights)


_FakeTimmViT.__name__ = "VisionTransformer"


@pytest.mark.shared
def test_weights_from_a_module():
    kwargs, weights, io = _fixture("timm-vit-tiny")
    model = DHTViT.from_timm(_FakeTimmViT(weights, **kwargs))
    assert model.config.embed_dim == 96 and model.config.depth == 2 and model.config.num_heads == 3
    with torch.no_grad():
        assert _max(model(io["x"], grid_partition(2, 64, 64, 16)).logits, io["logits"]) <= TOL
    with pytest.raises(TypeError, match="VisionTransformer module \\(got Linear\\)"):
        DHTViT.from_timm(nn.Linear(2, 2))


@pytest.mark.shared
def test_fc_norm_after_token_pooling_gives_the_same_logits():
    kwargs, weights, io = _fixture("timm-vit-tiny")
    moved = {k.replace("norm.", "fc_norm.") if k.startswith("norm.") else k: v
             for k, v in weights.items()}
    model = DHTViT.from_timm(moved, **kwargs, fc_norm=True)
    assert isinstance(model.norm, nn.Identity)
    with torch.no_grad():
        out = model(io["x"], grid_partition(2, 64, 64, 16))
    # LayerNorm of the class token after pooling = pooling after LayerNorm of all tokens.
    assert _max(out.logits, io["logits"]) <= TOL


@pytest.mark.shared
def test_final_norm_off_leaves_features_unnormalised():
    kwargs, weights, io = _fixture("timm-vit-tiny")
    trimmed = {k: v for k, v in weights.items() if not k.startswith("norm.")}
    model = DHTViT.from_timm(trimmed, **kwargs, final_norm=False)
    with torch.no_grad():
        out = model(io["x"], grid_partition(2, 64, 64, 16))
    normed = F.layer_norm(out.features, (96,), weights["norm.weight"], weights["norm.bias"], 1e-6)
    assert _max(normed, io["features"]) <= TOL


@pytest.mark.shared
def test_pre_norm_normalises_the_embedding_without_patch_bias():
    kwargs, weights, io = _fixture("timm-vit-tiny")
    torch.manual_seed(0)
    state = {k: v for k, v in weights.items() if k != "patch_embed.proj.bias"}
    state["norm_pre.weight"] = torch.rand(96) + 0.5
    state["norm_pre.bias"] = torch.randn(96)
    model = DHTViT.from_timm(state, **kwargs, pre_norm=True)
    with torch.no_grad():
        tokens = model.embed(io["x"], grid_partition(2, 64, 64, 16)).tokens
    raw = io["tokens"].clone()
    raw[:, 1:] -= weights["patch_embed.proj.bias"]  # timm drops the patch bias with pre_norm
    expected = F.layer_norm(raw, (96,), state["norm_pre.weight"], state["norm_pre.bias"], 1e-6)
    assert _max(tokens, expected) <= TOL


@pytest.mark.shared
def test_other_input_size_needs_dynamic_img_size():
    kwargs, weights, io = _fixture("timm-vit-tiny")
    model = DHTViT.from_timm(weights, **kwargs)
    with pytest.raises(ValueError, match="size 64×64 \\(got 80×64\\); set dynamic_img_size=True"):
        model(torch.rand(1, 3, 80, 64), grid_partition(1, 80, 64, 16))
    dynamic = DHTViT.from_timm(weights, **{**kwargs, "dynamic_img_size": True})
    with torch.no_grad():  # the trained size goes through unchanged
        assert _max(dynamic(io["x"], grid_partition(2, 64, 64, 16)).logits, io["logits"]) <= TOL
        assert dynamic(torch.rand(1, 3, 80, 64), grid_partition(1, 80, 64, 16)).logits.shape == (1, 10)


@pytest.mark.shared
def test_options_and_state_dict_errors():
    kwargs, weights, _ = _fixture("timm-vit-tiny")
    with pytest.raises(TypeError, match="Unsupported timm VisionTransformer option 'drop_rate'"):
        DHTViT.from_timm(weights, **kwargs, drop_rate=0.1)
    with pytest.raises(ValueError, match="'global_pool'"):
        DHTViT.from_timm(weights, **{**kwargs, "global_pool": "map"})
    missing = {k: v for k, v in weights.items() if k != "head.weight"}
    with pytest.raises(ValueError, match="missing keys \\['head.weight'\\]; unexpected keys \\[\\]"):
        DHTViT.from_timm(missing, **kwargs)
    extra = {**weights, "blocks.2.norm1.weight": torch.ones(96)}
    with pytest.raises(ValueError, match="unexpected keys \\['blocks.2.norm1.weight'\\]"):
        DHTViT.from_timm(extra, **kwargs)
    with pytest.raises(ValueError, match="'pos_embed': expected \\(1, 17, 96\\), got \\(1, 26, 96\\)"):
        DHTViT.from_timm({**weights, "pos_embed": torch.zeros(1, 26, 96)}, **kwargs)
    with pytest.raises(ValueError, match="missing keys \\['reg_token'\\]"):
        DHTViT.from_timm(weights, **kwargs, reg_tokens=2)
    with pytest.raises(TypeError, match="'weights'"):
        DHTViT.from_timm(42, **kwargs)
    with pytest.raises(FileNotFoundError, match="'weights'"):
        DHTViT.from_timm("no/such/file.safetensors", **kwargs)


def test_unsafe_pickle_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        DHTViT.from_timm(path)


def test_fresh_weights_roundtrip_through_timm_keys():
    kw = dict(img_size=16, patch_size=4, embed_dim=16, depth=1, num_heads=2, num_classes=3,
              reg_tokens=1, init_values=0.1, qk_norm=True)
    torch.manual_seed(0)
    source = DHTViT(**kw).eval()
    state = {k: v for k, v in source.state_dict().items() if k in source.timm_state_keys()}
    assert not any("hop_bias" in k or k.startswith("tokenizer.") for k in state)
    copy = DHTViT.from_timm(state, **kw)
    x = torch.rand(2, 3, 16, 16)
    part = grid_partition(2, 16, 16, 4)
    with torch.no_grad():
        assert torch.equal(copy(x, part).logits, source(x, part).logits)
