"""``DHTViT``: a graph-aware Vision Transformer on dHT (or any) region tokens.

    image ─► tokens (model.tokenizer, or a given Partition)
          ─► region descriptors [vec F(S) ‖ positional histogram ‖ (gradient histogram)]
          ─► one linear embedding  W = [patch_embed.proj ‖ pos_embed ‖ (grad_proj)]
          ─► prefix tokens (class, registers) ─► norm_pre ─► pre-norm blocks ─► norm
          ─► heads (classification: token / avg pooling; dense: per-token logits → pixels)

Parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``pos_embed``,
``cls_token``, ``reg_token``, ``blocks.i.{norm1,attn.qkv,attn.q_norm,attn.k_norm,attn.proj,
ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}``, ``norm_pre``, ``norm``, ``fc_norm``, ``head``) so
its state dicts load directly (:meth:`DHTViT.from_timm`). With
:func:`dhtgraph.grid_partition` tokens the model *is* the timm ViT: a grid patch's
descriptor is its pixels and a one-hot position, so the embedding is timm's patch + position
embedding (method spec §7).

Variable token counts are packed into (B, S, D) with a key-padding mask; attention runs
through ``scaled_dot_product_attention``. The graph bias (``blocks.i.attn.hop_bias``) is a
learned per-head bias by capped hop distance in the region graph, zero at initialisation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_count
from ..features.region import MIXING_INIT, RegionDescriptors
from ..graph.pixel import grid_quotient
from ..partition import Partition
from .attention import LAYER_NORM_EPS, Attention, bias_index, hop_buckets, hop_distances
from .heads import (DENSE_IGNORE_INDEX, IGNORE_INDEX, GlobalPool, broadcast_to_pixels,
                    classification_loss, dense_loss, pool_tokens)
from .region_features import RegionFeatures
from .tokenizer import DHTTokenizer

__all__ = ["DHTViT", "DHTViTConfig", "DHTViTOutput", "Embedding", "Block",
           "resample_position_table"]

_POOLS = ("token", "avg")
#: Default graph-bias cap: hop distances 0..3 get their own bias, ≥ 4 (and unreachable)
#: share one; local structure is what a region graph adds over a padding mask, and the
#: all-pairs search costs one batched matrix product per hop.
MAX_HOPS = 4


def _pair(value, name: str) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"Expected '{name}' to be an int or a pair (H, W) (got {value!r})")
        return (check_count(value[0], name, minimum=1), check_count(value[1], name, minimum=1))
    v = check_count(value, name, minimum=1)
    return (v, v)


def _check_bool(name: str, value, or_none: bool = False):
    if value is None and or_none:
        return
    if not isinstance(value, bool):
        raise TypeError(f"Expected '{name}' to be a bool{' or None' if or_none else ''} "
                        f"(got {type(value).__name__} {value!r})")


@dataclass(frozen=True)
class DHTViTConfig:
    """Configuration of :class:`DHTViT`; every default with its reason.

    The first group has timm ``VisionTransformer``'s names, meanings and defaults (a
    ViT-B/16 at 224²), so a timm config maps onto it one to one.

    Attributes
    ----------
    img_size : int or (int, int) = 224
        The size the position table was trained for; its grid is ``img_size // patch_size``.
    patch_size : int = 16
        P: every token is resampled to a P×P patch. Square patches only.
    in_chans : int = 3
        C; RGB.
    num_classes : int = 1000
        ImageNet-1k; 0 means no classification head (``logits`` are the pooled features).
    embed_dim : int = 768
        D (ViT-B).
    depth : int = 12
        Number of blocks (ViT-B).
    num_heads : int = 12
        h (ViT-B); D must be divisible by h.
    mlp_ratio : float = 4.0
        MLP hidden width ``int(D · mlp_ratio)`` (timm's rule).
    qkv_bias : bool = True
        timm's default.
    qk_norm : bool = False
        LayerNorm on queries and keys per head (timm).
    init_values : float or None = None
        LayerScale init (``ls1``/``ls2``); None: no LayerScale (timm).
    class_token : bool = True
        A class token first in the sequence (timm).
    reg_tokens : int = 0
        Register tokens after the class token (timm, DINOv2).
    no_embed_class : bool = False
        True: ``pos_embed`` covers the patch grid only, prefix tokens get no position (timm).
    pre_norm : bool = False
        LayerNorm after the embedding (``norm_pre``); the patch embedding then has no bias
        (timm, CLIP).
    final_norm : bool = True
        The final LayerNorm (``norm``, or ``fc_norm`` after pooling) (timm).
    fc_norm : bool or None = None
        Norm after pooling instead of before; None: on for ``global_pool='avg'`` (timm).
    global_pool : {'token', 'avg'} = 'token'
        Class-token or mean pooling of the region tokens (timm).
    dynamic_img_size : bool = False
        Accept other input sizes, resampling the position table as timm does (bicubic,
        antialiased); False: inputs must be ``img_size`` (timm's default, strict).
    graph_bias : bool = True
        The learned hop-distance attention bias (zero-initialised, so it changes nothing
        until trained); off: a padding mask only, as the reference.
    max_hops : int = 4
        Cap of the hop distance (see ``MAX_HOPS``).
    gradient_features : bool = False
        Add the gradient histogram to the descriptor (spec §7.5; its weights
        ``patch_embed.grad_proj`` start at zero). Off: the descriptor a ViT was trained on.
    mixing_init : float = 0.01
        λ at initialisation (spec §7.3): a token's background pixels keep 1 % weight.
    dense : bool = False
        Add the dense head (``dense_head``, per-token logits broadcast to pixels);
        ``out.dense_logits`` is then (B, num_classes, H, W).
    max_tokens : int or None = None
        Token budget per image for the built-in tokenizer; None: the patch grid's token
        count (Gh·Gw), so dHT tokens cost what the plain ViT costs.
    tokenizer : mapping or None = None
        :class:`dhtgraph.DHTConfig` fields of ``model.tokenizer``; None: the tokenizer's
        defaults with ``in_channels = in_chans``.
    """

    img_size: object = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_norm: bool = False
    init_values: Optional[float] = None
    class_token: bool = True
    reg_tokens: int = 0
    no_embed_class: bool = False
    pre_norm: bool = False
    final_norm: bool = True
    fc_norm: Optional[bool] = None
    global_pool: GlobalPool = "token"
    dynamic_img_size: bool = False
    graph_bias: bool = True
    max_hops: int = MAX_HOPS
    gradient_features: bool = False
    mixing_init: float = MIXING_INIT
    dense: bool = False
    max_tokens: Optional[int] = None
    tokenizer: Optional[Mapping] = None

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("img_size", _pair(self.img_size, "img_size"))
        ps = self.patch_size
        if isinstance(ps, (tuple, list)):
            pair = _pair(ps, "patch_size")
            if pair[0] != pair[1]:
                raise ValueError(f"Expected 'patch_size' to be square (got {tuple(ps)}); "
                                 "DHTViT resamples tokens to P×P patches")
            ps = pair[0]
        set_("patch_size", check_count(ps, "patch_size", minimum=1))
        for name, minimum in (("in_chans", 1), ("num_classes", 0), ("embed_dim", 1), ("depth", 0),
                              ("num_heads", 1), ("reg_tokens", 0), ("max_hops", 1)):
            set_(name, check_count(getattr(self, name), name, minimum=minimum))
        set_("max_tokens", check_count(self.max_tokens, "max_tokens", minimum=1, or_none=True))
        if self.embed_dim % self.num_heads:
            raise ValueError(f"Expected 'embed_dim' ({self.embed_dim}) to be divisible by "
                             f"'num_heads' ({self.num_heads})")
        for name in ("qkv_bias", "qk_norm", "class_token", "no_embed_class", "pre_norm",
                     "final_norm", "dynamic_img_size", "graph_bias", "gradient_features", "dense"):
            _check_bool(name, getattr(self, name))
        _check_bool("fc_norm", self.fc_norm, or_none=True)
        if self.global_pool not in _POOLS:
            raise ValueError(f"Expected 'global_pool' to be one of {_POOLS} (got {self.global_pool!r})")
        if self.global_pool == "token" and not self.class_token:
            raise ValueError("Expected 'class_token=True' for global_pool='token' "
                             "(or use global_pool='avg')")
        ratio = self.mlp_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
            raise ValueError(f"Expected 'mlp_ratio' to be a number > 0 (got {ratio!r})")
        set_("mlp_ratio", float(ratio))
        if self.init_values is not None:
            iv = self.init_values
            if isinstance(iv, bool) or not isinstance(iv, (int, float)) or not math.isfinite(iv):
                raise ValueError(f"Expected 'init_values' to be a finite number or None (got {iv!r})")
            set_("init_values", float(iv))
        mi = self.mixing_init
        if isinstance(mi, bool) or not isinstance(mi, (int, float)) or not 0 < mi < 1:
            raise ValueError(f"Expected 'mixing_init' in (0, 1) (got {mi!r})")
        if self.tokenizer is not None:
            if not isinstance(self.tokenizer, Mapping):
                raise TypeError(f"Expected 'tokenizer' to be a mapping of DHTConfig fields or None "
                                f"(got {type(self.tokenizer).__name__})")
            set_("tokenizer", dict(self.tokenizer))

    @classmethod
    def from_dict(cls, options: Mapping) -> "DHTViTConfig":
        """Build from a mapping; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(options) - known))
        if unknown:
            raise TypeError(f"Unknown DHTViTConfig option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)

    def to_dict(self) -> dict:
        """Plain JSON-serialisable fields (``img_size`` as a list)."""
        out = asdict(self)
        out["img_size"] = list(self.img_size)
        return out

    @property
    def grid_size(self) -> tuple:
        """(Gh, Gw) of the trained position table: ``img_size // patch_size``."""
        return (self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size)

    @property
    def num_prefix_tokens(self) -> int:
        return int(self.class_token) + self.reg_tokens

    @property
    def use_fc_norm(self) -> bool:
        return self.global_pool == "avg" if self.fc_norm is None else self.fc_norm


def resample_position_table(table: Tensor, old_size: tuple, new_size: tuple) -> Tensor:
    """Resample a (G, D) patch-position table from grid ``old_size`` to ``new_size``.

    Exactly timm's ``resample_abs_pos_embed`` (dynamic_img_size): unchanged when the new
    grid has as many cells as the table and is square; otherwise bicubic, antialiased
    ``F.interpolate`` (align_corners=False) of the (D, Gh, Gw) image, computed in float32
    for half-precision tables as timm does.
    """
    gh, gw = new_size
    if gh * gw == table.shape[0] and gh == gw:
        return table
    d = table.shape[1]
    work = table if table.dtype in (torch.float32, torch.float64) else table.float()
    grid = work.reshape(1, old_size[0], old_size[1], d).permute(0, 3, 1, 2)
    out = F.interpolate(grid, size=(gh, gw), mode="bicubic", antialias=True)
    return out.permute(0, 2, 3, 1).reshape(gh * gw, d).to(table.dtype)


class LayerScale(nn.Module):
    """``x · γ`` (timm ``LayerScale``, parameter ``gamma``)."""

    def __init__(self, dim: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` (timm ``Mlp``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + ls1(attn(norm1(x)))``, ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, config: DHTViTConfig):
        super().__init__()
        d = config.embed_dim
        buckets = config.max_hops + 2 if config.graph_bias else 0
        self.norm1 = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.attn = Attention(d, config.num_heads, qkv_bias=config.qkv_bias,
                              qk_norm=config.qk_norm, hop_buckets=buckets)
        iv = config.init_values
        self.ls1 = LayerScale(d, iv) if iv else nn.Identity()
        self.norm2 = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(d, int(d * config.mlp_ratio))
        self.ls2 = LayerScale(d, iv) if iv else nn.Identity()

    def forward(self, x: Tensor, valid: Optional[Tensor] = None,
                index: Optional[Tensor] = None) -> Tensor:
        """x (B, S, D); ``valid`` (B, S) or None; ``index`` graph-bias indices or None."""
        x = x + self.ls1(self.attn(self.norm1(x), valid, index))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    """Holds ``proj`` (timm's patch conv, (D, C, P, P)) and the optional ``grad_proj``."""

    def __init__(self, config: DHTViTConfig):
        super().__init__()
        p = config.patch_size
        self.proj = nn.Conv2d(config.in_chans, config.embed_dim, p, stride=p,
                              bias=not config.pre_norm)
        if config.gradient_features:
            self.grad_proj = nn.Parameter(torch.zeros(config.embed_dim, p * p))
        else:
            self.grad_proj = None


@dataclass(frozen=True)
class Embedding:
    """The packed token sequence entering the blocks (after ``norm_pre``).

    Attributes
    ----------
    tokens : Tensor of shape (B, S, D)
        Prefix tokens first, then each image's region tokens in partition order, then
        padding; S = num_prefix + max(num_tokens).
    mask : BoolTensor of shape (B, S)
        True for real tokens, False for padding.
    batch, slot : LongTensor of shape (K,)
        Image and sequence slot (after the prefix) of every region token.
    num_tokens : LongTensor of shape (B,)
    descriptors : RegionDescriptors
    padded : bool
        Whether any image has padding (then ``mask`` is passed to attention).
    """

    tokens: Tensor
    mask: Tensor
    batch: Tensor
    slot: Tensor
    num_tokens: Tensor
    descriptors: RegionDescriptors
    padded: bool


@dataclass(frozen=True)
class DHTViTOutput:
    """What :class:`DHTViT` returns.

    Attributes
    ----------
    logits : Tensor of shape (B, num_classes)
        Classification logits (the pooled features when ``num_classes = 0``).
    dense_logits : Tensor of shape (B, num_classes, H, W) or None
        Per-pixel logits of the dense head (None without it).
    pre_logits : Tensor of shape (B, D)
        Pooled features after ``fc_norm`` (timm's ``forward_head(pre_logits=True)``).
    features : Tensor of shape (B, S, D)
        Final token features (timm's ``forward_features``), padding slots included.
    mask : BoolTensor of shape (B, S)
        True for real tokens.
    partition : Partition of the B·H·W pixels
        The tokens used.
    num_tokens : LongTensor of shape (B,)
        Region tokens per image (prefix tokens not counted).
    """

    logits: Tensor
    dense_logits: Optional[Tensor]
    pre_logits: Tensor
    features: Tensor
    mask: Tensor
    partition: Partition
    num_tokens: Tensor

    def __post_init__(self):
        b = self.logits.shape[0]
        for name in ("pre_logits", "features", "mask", "num_tokens"):
            if getattr(self, name).shape[0] != b:
                raise ValueError(f"DHTViTOutput.{name} must have {b} rows")


class DHTViT(nn.Module):
    """A ViT on region tokens, loadable from timm (see the module docstring).

    Parameters
    ----------
    config : DHTViTConfig, optional
        Defaults to ``DHTViTConfig()``.
    **overrides
        Config fields to change, e.g. ``DHTViT(embed_dim=192, depth=12, num_heads=3)``;
        unknown names are an error.

    Examples
    --------
    >>> model = DHTViT(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2,
    ...                num_classes=5, tokenizer={"encoder": "lab"}).eval()
    >>> out = model(torch.rand(2, 3, 32, 32))            # dHT tokens, 16 per image
    >>> out.logits.shape, out.num_tokens.tolist()
    (torch.Size([2, 5]), [16, 16])
    """

    def __init__(self, config: Optional[DHTViTConfig] = None, **overrides):
        super().__init__()
        if config is None:
            config = DHTViTConfig.from_dict(overrides)
        elif overrides:
            merged = {f.name: getattr(config, f.name) for f in fields(DHTViTConfig)}
            unknown = sorted(set(overrides) - set(merged))
            if unknown:
                raise TypeError(f"Unknown DHTViTConfig option(s) {unknown}")
            merged.update(overrides)
            config = DHTViTConfig(**merged)
        if not isinstance(config, DHTViTConfig):
            raise TypeError(f"Expected 'config' to be a DHTViTConfig (got {type(config).__name__})")
        self.config = cfg = config
        d = cfg.embed_dim
        tok_options = {"in_channels": cfg.in_chans}
        tok_options.update(cfg.tokenizer or {})
        self.tokenizer = DHTTokenizer(**tok_options)
        if self.tokenizer.config.in_channels != cfg.in_chans:
            raise ValueError(f"Expected tokenizer 'in_channels' to equal 'in_chans' {cfg.in_chans} "
                             f"(got {self.tokenizer.config.in_channels})")
        self.region_features = RegionFeatures(cfg.in_chans, cfg.patch_size,
                                              mixing_init=cfg.mixing_init,
                                              gradient=cfg.gradient_features)
        self.patch_embed = _PatchEmbed(cfg)
        gh, gw = cfg.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, cfg.reg_tokens, d)) if cfg.reg_tokens else None
        embed_len = gh * gw + (0 if cfg.no_embed_class else cfg.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, d) * 0.02)
        self.norm_pre = nn.LayerNorm(d, eps=LAYER_NORM_EPS) if cfg.pre_norm else nn.Identity()
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        final = cfg.final_norm
        self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS) if final and not cfg.use_fc_norm else nn.Identity()
        self.fc_norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS) if final and cfg.use_fc_norm else nn.Identity()
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        if cfg.dense:
            if cfg.num_classes == 0:
                raise ValueError("Expected 'num_classes' > 0 for the dense head (got 0)")
            self.dense_head = nn.Linear(d, cfg.num_classes)
        else:
            self.dense_head = None
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        if self.reg_token is not None:
            nn.init.normal_(self.reg_token, std=1e-6)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_timm(cls, weights, **timm_kwargs) -> "DHTViT":
        """A DHTViT holding a timm ``VisionTransformer``'s weights (see
        :func:`dhtgraph.nn.retrofit.from_timm` for the accepted inputs and errors)."""
        from .retrofit import from_timm

        return from_timm(weights, **timm_kwargs)

    def timm_state_keys(self) -> list:
        """The state-dict keys that a timm ``VisionTransformer`` of this config has."""
        ours = ("tokenizer.", "region_features.", "dense_head.", "patch_embed.grad_proj")
        return [k for k in self.state_dict()
                if not k.startswith(ours) and not k.endswith(".attn.hop_bias")]

    # ------------------------------------------------------------------ pieces
    def grid_size_for(self, height: int, width: int) -> tuple:
        """(Gh, Gw) of the positional histogram for an H×W input: ``⌈H/P⌉ × ⌈W/P⌉``
        (= the patch grid when P divides the sides)."""
        p = self.config.patch_size
        return (-(-height // p), -(-width // p))

    def position_table(self, grid_size: tuple) -> Tensor:
        """The patch part of ``pos_embed`` for a (Gh, Gw) grid, (Gh·Gw, D), resampled as
        timm's dynamic_img_size when the grid differs from the trained one."""
        cfg = self.config
        start = 0 if cfg.no_embed_class else cfg.num_prefix_tokens
        table = self.pos_embed[0, start:]
        if tuple(grid_size) == cfg.grid_size and not cfg.dynamic_img_size:
            return table
        return resample_position_table(table, cfg.grid_size, grid_size)

    def embedding_weight(self, grid_size: tuple) -> Tensor:
        """The one linear embedding's weight, (D, C·P·P + Gh·Gw [+ P·P]):
        ``[patch_embed.proj ‖ pos_embed (patch part, resampled) ‖ grad_proj]``."""
        parts = [self.patch_embed.proj.weight.flatten(1), self.position_table(grid_size).T]
        if self.patch_embed.grad_proj is not None:
            parts.append(self.patch_embed.grad_proj)
        return torch.cat(parts, 1)

    def _check_images(self, images) -> Tensor:
        cfg = self.config
        if not isinstance(images, Tensor):
            raise TypeError(f"Expected 'images' to be a torch.Tensor of shape (B, C, H, W) "
                            f"(got {type(images).__name__})")
        if images.dim() != 4:
            raise ValueError(f"Expected 'images' to have 4 dimensions (B, C, H, W) "
                             f"(got {images.dim()})")
        if images.shape[1] != cfg.in_chans:
            raise ValueError(f"Expected 'images' to have {cfg.in_chans} channels "
                             f"(got {images.shape[1]})")
        if min(images.shape) == 0:
            raise ValueError(f"Expected 'images' to have non-empty sides (got {tuple(images.shape)})")
        if not images.is_floating_point():
            raise TypeError(f"Expected 'images' to be a float tensor (got {images.dtype})")
        h, w = images.shape[-2:]
        if not cfg.dynamic_img_size and (h, w) != cfg.img_size:
            raise ValueError(f"Expected 'images' of size {cfg.img_size[0]}×{cfg.img_size[1]} "
                             f"(got {h}×{w}); set dynamic_img_size=True to accept other sizes")
        return images

    def embed(self, images: Tensor, partition: Partition, *,
              injected: Optional[Tensor] = None) -> Embedding:
        """Region descriptors → the packed token sequence (after ``norm_pre``).

        Parameters
        ----------
        images : Tensor of shape (B, C, H, W)
        partition : Partition of the B·H·W pixels
        injected : Tensor of shape (B, C, H, W), optional
            The mean-injected image to sample (default: ``images`` themselves).
        """
        cfg = self.config
        images = self._check_images(images)
        b, _, h, w = images.shape
        grid = self.grid_size_for(h, w)
        source = images if injected is None else injected
        desc = self.region_features(source, partition, grid)
        weight = self.embedding_weight(grid).to(desc.patches.dtype)
        bias = self.patch_embed.proj.bias
        emb = F.linear(desc.flat(), weight, bias)  # (K, D)
        counts = desc.num_tokens
        longest = int(counts.max())  # host sync: the padded length
        start = torch.cumsum(counts, 0) - counts
        slot = torch.arange(emb.shape[0], device=emb.device) - start[desc.batch]
        seq = emb.new_zeros(b, longest, emb.shape[1])
        seq[desc.batch, slot] = emb
        valid = torch.zeros(b, longest, dtype=torch.bool, device=emb.device)
        valid[desc.batch, slot] = True
        padded = bool(partition.num_blocks != b * longest)
        prefix = []
        if self.cls_token is not None:
            prefix.append(self.cls_token.expand(b, -1, -1))
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(b, -1, -1))
        if prefix:
            head = torch.cat(prefix, 1).to(seq.dtype)
            if not cfg.no_embed_class:
                head = head + self.pos_embed[:, :cfg.num_prefix_tokens].to(seq.dtype)
            seq = torch.cat([head, seq], 1)
            valid = torch.cat([valid.new_ones(b, head.shape[1]), valid], 1)
        return Embedding(tokens=self.norm_pre(seq), mask=valid, batch=desc.batch, slot=slot,
                         num_tokens=counts, descriptors=desc, padded=padded)

    def attention_buckets(self, partition: Partition, embedding: Embedding,
                          image_size: tuple) -> Optional[Tensor]:
        """Graph-bias bucket of every token pair, (B, S, S), or None without graph bias."""
        cfg = self.config
        if not cfg.graph_bias:
            return None
        h, w = image_size
        b = embedding.num_tokens.numel()
        edges = grid_quotient(partition.labels, partition.num_blocks, b, h, w)
        length = embedding.tokens.shape[1] - cfg.num_prefix_tokens
        dist = hop_distances(edges, embedding.batch, embedding.slot, b, length, cfg.max_hops)
        return hop_buckets(dist, cfg.num_prefix_tokens, cfg.max_hops)

    # ------------------------------------------------------------------ forward
    def forward(self, images: Tensor, partition: Optional[Partition] = None, *,
                max_tokens: Optional[int] = None,
                generator: Optional[torch.Generator] = None) -> DHTViTOutput:
        """Classify (and densely predict) a batch.

        Parameters
        ----------
        images : Tensor of shape (B, C, H, W)
            Float images in the normalisation the ViT (and the tokenizer) expects.
        partition : Partition of the B·H·W pixels, optional
            Tokens to use (e.g. :func:`dhtgraph.grid_partition` for the plain ViT);
            None: tokenize with ``model.tokenizer`` end to end (differentiable, spec §8).
        max_tokens : int, optional
            Tokenizer budget per image (default ``config.max_tokens`` or Gh·Gw).
        generator : torch.Generator, optional
            Seeded stochastic budget sampling (training).

        Returns
        -------
        DHTViTOutput
        """
        cfg = self.config
        images = self._check_images(images)
        b, _, h, w = images.shape
        injected = None
        if partition is None:
            if max_tokens is None:
                gh, gw = self.grid_size_for(h, w)
                max_tokens = cfg.max_tokens if cfg.max_tokens is not None else gh * gw
            tokens = self.tokenizer(images, max_tokens, generator=generator)
            partition, injected = tokens.partition, tokens.injected
        elif max_tokens is not None or generator is not None:
            raise ValueError("'max_tokens' and 'generator' apply to the built-in tokenizer; "
                             "pass them without a 'partition'")
        emb = self.embed(images, partition, injected=injected)
        buckets = self.attention_buckets(partition, emb, (h, w))
        index = (None if buckets is None else
                 bias_index(buckets, cfg.num_heads, cfg.max_hops + 2))
        valid = emb.mask if emb.padded else None
        x = emb.tokens
        for block in self.blocks:
            x = block(x, valid, index)
        x = self.norm(x)
        pooled = self.fc_norm(pool_tokens(x, emb.mask, cfg.num_prefix_tokens, cfg.global_pool))
        logits = self.head(pooled)
        dense = None
        if self.dense_head is not None:
            region = self.fc_norm(x[:, cfg.num_prefix_tokens:][emb.batch, emb.slot])
            dense = broadcast_to_pixels(self.dense_head(region), partition, (h, w))
        return DHTViTOutput(logits=logits, dense_logits=dense, pre_logits=pooled, features=x,
                            mask=emb.mask, partition=partition, num_tokens=emb.num_tokens)

    def loss(self, output: DHTViTOutput, target: Tensor, *, ignore_index: Optional[int] = None
             ) -> Tensor:
        """Cross-entropy of ``output`` against ``target``: (B, H, W) masks for the dense
        head (ignore label 255 by default), (B,) class labels otherwise (−100)."""
        if output.dense_logits is not None:
            return dense_loss(output.dense_logits, target,
                              ignore_index=DENSE_IGNORE_INDEX if ignore_index is None else ignore_index)
        return classification_loss(output.logits, target,
                                   ignore_index=IGNORE_INDEX if ignore_index is None else ignore_index)
