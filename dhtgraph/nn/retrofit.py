"""Retrofit a timm ``VisionTransformer`` into a :class:`~dhtgraph.nn.vit.DHTViT`, exactly.

:func:`from_timm` maps timm's constructor arguments onto :class:`DHTViTConfig` (same names
and meanings) and loads its state dict under the same keys. With
:func:`dhtgraph.grid_partition` tokens the result reproduces timm's outputs (the patch
embedding is the grid patch's descriptor times ``[patch_embed.proj ‖ pos_embed]``, method
spec §7); with dHT tokens it is the starting point for fine-tuning. timm is never imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from .tokenizer import _load_state_dict
from .vit import DHTViT, DHTViTConfig

__all__ = ["from_timm", "TIMM_OPTIONS", "PROVENANCE_FIELDS", "load_weights"]

#: The timm ``VisionTransformer`` constructor arguments DHTViT reproduces exactly.
TIMM_OPTIONS = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth",
                "num_heads", "mlp_ratio", "dynamic_img_size", "class_token", "reg_tokens",
                "no_embed_class", "global_pool", "fc_norm", "init_values", "qkv_bias", "qk_norm",
                "pre_norm", "final_norm")
#: Fields of a saved timm config that describe where it came from, not the model; accepted
#: and ignored (``class_name`` must name a VisionTransformer).
PROVENANCE_FIELDS = ("timm_version", "torch_version", "class_name", "notes")
#: DHTViT's own options (not timm's) that may be set while retrofitting.
DHT_OPTIONS = ("graph_bias", "max_hops", "gradient_features", "mixing_init", "dense",
               "max_tokens", "tokenizer")


def load_weights(weights) -> dict:
    """A state dict from a mapping, a ``.safetensors`` file or a PyTorch file.

    PyTorch files are read with ``torch.load(weights_only=True)``: tensors and plain
    containers only, never code. A checkpoint wrapping the weights under ``'state_dict'``
    or ``'model'`` is unwrapped.
    """
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"Expected 'weights' to be an existing file (got {str(path)!r})")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = _load_state_dict(path, "cpu")
    elif isinstance(weights, Mapping):
        state = dict(weights)
    else:
        raise TypeError(f"Expected 'weights' to be a state dict, a .safetensors/.pth path or a "
                        f"timm VisionTransformer module (got {type(weights).__name__})")
    for wrapper in ("state_dict", "model"):
        if set(state) == {wrapper} or (wrapper in state and isinstance(state[wrapper], Mapping)
                                        and not any(isinstance(v, Tensor) for v in state.values())):
            state = dict(state[wrapper])
            break
    return state


def _module_options(module: nn.Module) -> dict:
    """timm constructor arguments read from a VisionTransformer's attributes."""
    name = type(module).__name__
    if "VisionTransformer" not in name:
        raise TypeError(f"Expected 'weights' to be a timm VisionTransformer module (got {name})")

    def attr(path: str, default=None):
        obj = module
        for part in path.split("."):
            if not hasattr(obj, part):
                return default
            obj = getattr(obj, part)
        return obj

    unsupported = []
    if attr("attn_pool") is not None:
        unsupported.append("global_pool='map'/'prr' (attention pooling)")
    if attr("pos_embed") is None:
        unsupported.append("pos_embed='none'")
    if attr("patch_embed.dynamic_img_pad", False):
        unsupported.append("dynamic_img_pad=True")
    if attr("pool_include_prefix", False):
        unsupported.append("pool_include_prefix=True")
    if unsupported:
        raise ValueError("The timm VisionTransformer uses options DHTViT does not reproduce: "
                         + ", ".join(unsupported))
    proj = attr("patch_embed.proj")
    blocks = list(attr("blocks", []))
    if proj is None or not blocks:
        raise ValueError("Expected 'weights' to have 'patch_embed.proj' and 'blocks' like timm's "
                         "VisionTransformer")
    block = blocks[0]
    embed_dim = proj.out_channels
    options = dict(
        img_size=tuple(attr("patch_embed.img_size", (224, 224))),
        patch_size=tuple(proj.kernel_size),
        in_chans=proj.in_channels,
        num_classes=int(attr("num_classes", 0)),
        embed_dim=embed_dim,
        depth=len(blocks),
        num_heads=int(block.attn.num_heads),
        mlp_ratio=block.mlp.fc1.out_features / embed_dim,
        dynamic_img_size=bool(attr("dynamic_img_size", False)),
        class_token=attr("cls_token") is not None,
        reg_tokens=int(attr("num_reg_tokens", 0)),
        no_embed_class=bool(attr("no_embed_class", False)),
        global_pool=attr("global_pool", "token"),
        qkv_bias=block.attn.qkv.bias is not None,
        qk_norm=not isinstance(attr("blocks.0.attn.q_norm", nn.Identity()), nn.Identity),
        init_values=1.0 if hasattr(block.ls1, "gamma") else None,
        pre_norm=not isinstance(attr("norm_pre", nn.Identity()), nn.Identity),
    )
    has_norm = not isinstance(attr("norm", nn.Identity()), nn.Identity)
    has_fc_norm = not isinstance(attr("fc_norm", nn.Identity()), nn.Identity)
    options["final_norm"] = has_norm or has_fc_norm
    options["fc_norm"] = has_fc_norm if options["final_norm"] else None
    return options


def _check_options(options: dict) -> dict:
    """Split timm kwargs into config fields; refuse anything unknown, naming it."""
    config = {}
    for key, value in options.items():
        if key in PROVENANCE_FIELDS:
            if key == "class_name" and "VisionTransformer" not in str(value):
                raise ValueError(f"Expected 'class_name' to name a timm VisionTransformer "
                                 f"(got {value!r})")
            continue
        if key not in TIMM_OPTIONS and key not in DHT_OPTIONS:
            raise TypeError(f"Unsupported timm VisionTransformer option {key!r} (= {value!r}); "
                            f"DHTViT reproduces {list(TIMM_OPTIONS)}")
        config[key] = value
    return config


def _check_state(model: DHTViT, state: dict) -> None:
    expected = model.state_dict()
    keys = model.timm_state_keys()
    bad_type = sorted(str(k) for k, v in state.items() if not isinstance(v, Tensor))
    if bad_type:
        raise ValueError(f"Expected every value of the state dict to be a Tensor (not: {bad_type})")
    missing = sorted(set(keys) - set(state))
    unexpected = sorted(map(str, set(state) - set(keys)))
    if missing or unexpected:
        raise ValueError(f"The state dict does not match the timm VisionTransformer options: "
                         f"missing keys {missing}; unexpected keys {unexpected}")
    wrong = [f"{k!r}: expected {tuple(expected[k].shape)}, got {tuple(state[k].shape)}"
             for k in keys if tuple(state[k].shape) != tuple(expected[k].shape)]
    if wrong:
        raise ValueError("The state dict has tensors of the wrong shape for these options: "
                         + "; ".join(wrong))


def from_timm(weights, **timm_kwargs) -> DHTViT:
    """Build a :class:`DHTViT` holding a timm ``VisionTransformer``'s weights.

    Parameters
    ----------
    weights : mapping, str/Path or nn.Module
        A timm state dict; a ``.safetensors`` file; a PyTorch ``.pth`` file (read with
        ``weights_only=True``); or a timm ``VisionTransformer`` module (its
        ``state_dict()`` and attributes are read; timm is not imported).
    **timm_kwargs
        The timm constructor arguments (``img_size``, ``patch_size``, ``in_chans``,
        ``num_classes``, ``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``,
        ``dynamic_img_size``, ``class_token``, ``reg_tokens``, ``no_embed_class``,
        ``global_pool`` ('token' or 'avg'), ``fc_norm``, ``init_values``, ``qkv_bias``,
        ``qk_norm``, ``pre_norm``, ``final_norm``) with timm's defaults; a saved config's
        provenance fields (``timm_version``, ``torch_version``, ``class_name``, ``notes``)
        are ignored. For a module they are read from its attributes and the given ones
        override them. DHTViT's own options (``graph_bias``, ``max_hops``, ``dense``,
        ``gradient_features``, ``mixing_init``, ``max_tokens``, ``tokenizer``) may be added;
        their parameters keep their initial values (zero graph bias: the ViT unchanged).

    Returns
    -------
    DHTViT
        In eval mode.

    Raises
    ------
    TypeError
        For an option that is not in the lists above (named), or an unsupported
        ``weights`` type.
    ValueError
        For an unsupported option value, or a state dict with missing, unexpected or
        mis-shaped keys (each named).

    Examples
    --------
    >>> import json
    >>> cfg = json.load(open("config.json"))                 # doctest: +SKIP
    >>> model = DHTViT.from_timm("weights.safetensors", **cfg)  # doctest: +SKIP
    >>> out = model(x, grid_partition(len(x), 224, 224, 16))    # doctest: +SKIP
    """
    if isinstance(weights, nn.Module):
        options = _module_options(weights)
        options.update(timm_kwargs)
        state = dict(weights.state_dict())
    else:
        options = dict(timm_kwargs)
        state = load_weights(weights)
    config = DHTViTConfig.from_dict(_check_options(options))
    model = DHTViT(config)
    _check_state(model, state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) & set(model.timm_state_keys()):
        raise ValueError(f"State dict loading failed: missing {missing}, unexpected {unexpected}")
    return model.eval()
