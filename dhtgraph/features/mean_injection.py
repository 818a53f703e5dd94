"""Mean injection (method spec §7): put the learned token colour into the image.

``x̃_p = x_p − x̄(S(p)) + W μ*(S(p))``: every pixel keeps its residual from the true mean
colour ``x̄`` of its token and receives the token's projected feature ``W μ*`` instead.
The residual is a constant (no gradient), so gradients from a loss on ``x̃`` flow into
``W μ*``; when ``W μ* = x̄`` the image comes back unchanged, which is what lets a pretrained
ViT take dHT tokens.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import _native
from ..partition import Partition

__all__ = ["mean_injection", "block_mean_image"]

# Pixels per chunk of the gradient-free mean injection.
_CHUNK = 1 << 20


def _pixels(image: Tensor) -> Tensor:
    b, c, h, w = image.shape
    return image.permute(0, 2, 3, 1).reshape(b * h * w, c)


def _image(pixels: Tensor, shape) -> Tensor:
    b, c, h, w = shape
    return pixels.reshape(b, h, w, c).permute(0, 3, 1, 2)


def _injected(image: Tensor, labels: Tensor, mean: Tensor, token_values: Tensor) -> Tensor:
    # ``x − x̄[l] + v[l]`` (B, C, H, W) from the token means ``mean`` (K, C), differentiable
    # in ``token_values`` (the residual is detached).
    residual = _pixels(image).detach() - mean.index_select(0, labels)
    return _image(residual + token_values.index_select(0, labels), image.shape)


def block_mean_image(image: Tensor, partition: Partition) -> Tensor:
    """Every pixel replaced by its block's mean colour: (B, C, H, W) → (B, C, H, W)."""
    pixels = _pixels(image)
    return _image(partition.broadcast(partition.reduce(pixels, "mean")), image.shape)


def mean_injection(image: Tensor, partition: Partition, token_values: Tensor, *,
                   sizes: Optional[Tensor] = None) -> Tensor:
    """``x − x̄(S) + v(S)`` for every pixel.

    Parameters
    ----------
    image : Tensor of shape (B, C, H, W)
        The input image x (in whatever normalisation the model sees).
    partition : Partition of the B·H·W pixels
        The tokens S.
    token_values : Tensor of shape (K, C)
        The value injected per token, ``W μ*``.
    sizes : LongTensor of shape (K,), optional
        ``partition.sizes`` when the caller has counted them (saves a pass over the pixels).

    Returns
    -------
    Tensor of shape (B, C, H, W)
        Differentiable in ``token_values``; the residual ``x − x̄`` is detached.
    """
    if token_values.shape != (partition.num_blocks, image.shape[1]):
        raise ValueError(f"Expected 'token_values' of shape ({partition.num_blocks}, {image.shape[1]}) "
                         f"(got {tuple(token_values.shape)})")
    labels = partition.labels
    if sizes is None:
        sizes = partition.sizes
    elif not isinstance(sizes, Tensor) or sizes.shape != (partition.num_blocks,):
        got = tuple(sizes.shape) if isinstance(sizes, Tensor) else type(sizes).__name__
        raise ValueError(f"Expected 'sizes' of shape ({partition.num_blocks},), the pixels per "
                         f"token (got {got})")
    b, c, h, w = image.shape
    if _native.enabled("tokens", image, labels, sizes, token_values):
        # x̄ natively (the same sequential sums in pixel order, the same division; x̄ is
        # never differentiated) and, without a gradient, the injection too.
        from .._native.tokens import mean_injection as native
        grad = torch.is_grad_enabled() and token_values.requires_grad
        # (The kernel only reads the tensors' memory: no detach needed.)
        done = native(image, labels, partition.num_blocks, sizes, None if grad else token_values)
        if done is not None:
            mean, out = done
            return _injected(image, labels, mean, token_values) if out is None else out
    # Channel planes (C, N), pixels row-major as in ``partition`` (a view for one image).
    planes = image.detach().transpose(0, 1).reshape(c, b * h * w)
    count = sizes.to(planes.dtype)
    # x̄ per channel: the block sums of Partition.reduce(pixels, 'mean') (one sequential
    # sum per block in pixel order, so the same bits), read from contiguous planes.
    mean = torch.stack([torch.bincount(labels, weights=plane, minlength=partition.num_blocks)
                        for plane in planes], 1).to(planes.dtype) / count.unsqueeze(1)
    if torch.is_grad_enabled() and token_values.requires_grad:
        return _injected(image, labels, mean, token_values)
    # No gradient: ``(x − x̄[labels]) + v[labels]`` plane by plane, chunk by chunk into one
    # output buffer (same operations and order, no pixel-sized temporaries).
    out = torch.empty_like(planes)
    means, values = mean.t(), token_values.t()
    for start in range(0, labels.numel(), _CHUNK):
        part = labels[start:start + _CHUNK]
        for ch in range(c):
            chunk = out[ch, start:start + _CHUNK]
            torch.sub(planes[ch, start:start + _CHUNK], means[ch].index_select(0, part), out=chunk)
            chunk.add_(values[ch].index_select(0, part))
    return out.view(c, b, h, w).transpose(0, 1)
