"""Prediction heads and their losses: image classification and dense (per-pixel) prediction.

- Classification: pool the final token features as the source ViT did (the class token,
  or the mean of the region tokens over the valid slots), then ``fc_norm`` and ``head``.
- Dense, decoder-free: one logit vector per region token, broadcast to its pixels
  through the partition (every pixel takes its token's logits).

Losses are cross-entropies that honour an ignore label.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..partition import Partition

__all__ = ["GlobalPool", "pool_tokens", "broadcast_to_pixels", "classification_loss",
           "dense_loss", "IGNORE_INDEX", "DENSE_IGNORE_INDEX"]

GlobalPool = Literal["token", "avg"]
#: torch's default ignore label for class targets.
IGNORE_INDEX = -100
#: The "void" label of PNG segmentation masks (PASCAL VOC, ADE20K conversions): 255.
DENSE_IGNORE_INDEX = 255


def pool_tokens(x: Tensor, valid: Tensor, num_prefix: int, pool: GlobalPool) -> Tensor:
    """Pool the final sequence (B, S, D) to (B, D).

    ``'token'``: the first (class) token. ``'avg'``: the mean over the region tokens
    (prefix tokens excluded, as timm's ``global_pool='avg'``), padding slots excluded.
    """
    if pool == "token":
        return x[:, 0]
    if pool == "avg":
        tokens = x[:, num_prefix:]
        weight = valid[:, num_prefix:].to(x.dtype)[..., None]
        # One expression for padded and unpadded batches: no host sync to tell them apart.
        return (tokens * weight).sum(1) / weight.sum(1)
    raise ValueError(f"Expected 'global_pool' to be one of ('token', 'avg') (got {pool!r})")


def broadcast_to_pixels(token_logits: Tensor, partition: Partition, image_size: tuple) -> Tensor:
    """Token logits (K, M) → pixel logits (B, M, H, W) through the partition."""
    h, w = image_size
    pixels = partition.broadcast(token_logits)  # (B·H·W, M)
    return pixels.view(-1, h, w, token_logits.shape[1]).permute(0, 3, 1, 2)


def classification_loss(logits: Tensor, target: Tensor, *, ignore_index: int = IGNORE_INDEX,
                         label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy of (B, M) logits against (B,) class labels; ``ignore_index``
    labels are skipped."""
    if logits.dim() != 2:
        raise ValueError(f"Expected 'logits' of shape (B, num_classes) (got {tuple(logits.shape)})")
    if target.shape != logits.shape[:1]:
        raise ValueError(f"Expected 'target' of shape ({logits.shape[0]},) (got {tuple(target.shape)})")
    _check_labels(target, logits.shape[1], ignore_index)
    return F.cross_entropy(logits, target.long(), ignore_index=ignore_index,
                           label_smoothing=label_smoothing)


def dense_loss(dense_logits: Tensor, target: Tensor, *,
               ignore_index: int = DENSE_IGNORE_INDEX) -> Tensor:
    """Mean per-pixel cross-entropy of (B, M, H, W) logits against (B, H, W) labels;
    pixels labelled ``ignore_index`` are skipped."""
    if dense_logits.dim() != 4:
        raise ValueError(f"Expected 'dense_logits' of shape (B, num_classes, H, W) "
                         f"(got {tuple(dense_logits.shape)})")
    b, _, h, w = dense_logits.shape
    if target.shape != (b, h, w):
        raise ValueError(f"Expected 'target' of shape ({b}, {h}, {w}) (got {tuple(target.shape)})")
    _check_labels(target, dense_logits.shape[1], ignore_index)
    return F.cross_entropy(dense_logits, target.long(), ignore_index=ignore_index)


def _check_labels(target: Tensor, num_classes: int, ignore_index: int) -> None:
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"Expected 'target' to hold integer class labels (got {target.dtype})")
    target = target.long()
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        value = int(target[bad][0])
        raise ValueError(f"Expected 'target' labels in 0..{num_classes - 1} or the ignore label "
                         f"{ignore_index} (got {value})")
