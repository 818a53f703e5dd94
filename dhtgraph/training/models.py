"""Building the DHTViT to train: fresh, retrofitted from timm, or from a checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from .._checks import check_count
from .checkpoint import load_weights, resolve_checkpoint

__all__ = ["build_model", "reset_head", "model_from_checkpoint", "read_json_option"]

#: The model class that :func:`model_from_checkpoint` rebuilds.
DHTVIT_CLASS = "dhtgraph.nn.vit.DHTViT"


def read_json_option(value: Any, name: str) -> dict:
    """A JSON object from a mapping, inline JSON text (``'{...}'``) or a ``.json`` file.

    Raises
    ------
    ValueError
        If it is not readable JSON or not an object.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value)
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"Expected '{name}' to be a JSON file or inline JSON object "
                             f"(got {text!r}, which is neither)")
        text = path.read_text()
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"Expected '{name}' to hold valid JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"Expected '{name}' to hold a JSON object (got {type(loaded).__name__})")
    return loaded


def reset_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give a DHTViT fresh classification (and dense) heads for ``num_classes`` classes,
    as timm's ``reset_classifier`` does (new ``nn.Linear``, default initialisation); the
    config follows. Unchanged when the count already matches. Returns ``model``."""
    num_classes = check_count(num_classes, "num_classes", minimum=1)
    config = model.config
    if config.num_classes == num_classes:
        return model
    width = config.embed_dim
    device = next(model.parameters()).device
    model.head = nn.Linear(width, num_classes, device=device)
    if getattr(model, "dense_head", None) is not None:
        model.dense_head = nn.Linear(width, num_classes, device=device)
    model.config = dataclasses.replace(config, num_classes=num_classes)
    return model


def build_model(*, task: str, model_config: Optional[Mapping] = None,
                from_timm=None, timm_config: Optional[Mapping] = None,
                num_classes: Optional[int] = None, seed: int = 0) -> nn.Module:
    """A DHTViT for ``task``: fresh from ``model_config`` (DHTViTConfig fields) or
    retrofitted from timm weights (``from_timm`` + ``timm_config``, the constructor
    arguments; ``model_config`` then adds DHTViT's own options such as ``max_tokens``).

    Segmentation turns the dense head on. ``num_classes`` sets the head size (fresh) or
    replaces the pretrained head when it differs (:func:`reset_head`). Parameters are
    drawn under ``torch.manual_seed(seed)`` (the same on every rank).

    Raises
    ------
    TypeError, ValueError
        For unknown or invalid config fields (named), ``dense=False`` with segmentation,
        or a state dict that does not match ``timm_config``.
    """
    from ..nn.vit import DHTViT, DHTViTConfig

    options = dict(model_config or {})
    if task == "segmentation":
        if options.get("dense") is False:
            raise ValueError("Expected 'dense' to be true for task 'segmentation' (got false)")
        options["dense"] = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if from_timm is not None:
            if timm_config is None:
                raise ValueError("Expected 'timm_config' (the VisionTransformer constructor "
                                 "arguments) with 'from_timm'")
            overlap = sorted(set(options) & set(timm_config) - {"dense"})
            if overlap:
                raise ValueError(f"Expected the model options {overlap} in one place, not in both "
                                 "the timm config and the model config")
            model = DHTViT.from_timm(from_timm, **dict(timm_config), **options)
            if num_classes is not None:
                reset_head(model, num_classes)
        else:
            if num_classes is not None:
                if "num_classes" in options and options["num_classes"] != num_classes:
                    raise ValueError(f"Expected one 'num_classes' (got {options['num_classes']} in "
                                     f"the model config and {num_classes} given)")
                options["num_classes"] = num_classes
            model = DHTViT(DHTViTConfig.from_dict(options))
    return model.train()


def model_from_checkpoint(checkpoint) -> nn.Module:
    """Rebuild the DHTViT a checkpoint holds (config.json) and load its weights.

    Raises
    ------
    ValueError
        For a checkpoint of another model class (build it yourself and use
        :func:`dhtgraph.training.load_weights`).
    """
    from ..nn.vit import DHTViT, DHTViTConfig

    checkpoint = resolve_checkpoint(checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    if config.get("model_class") != DHTVIT_CLASS or config.get("model_config") is None:
        raise ValueError(f"Expected checkpoint {str(checkpoint)!r} to hold a {DHTVIT_CLASS} (got "
                         f"{config.get('model_class')!r}); build that model and call "
                         "dhtgraph.training.load_weights(model, checkpoint)")
    model = DHTViT(DHTViTConfig.from_dict(config["model_config"]))
    return load_weights(model, checkpoint)
