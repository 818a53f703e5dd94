"""Per-image random streams: image ``i`` of a set seeded ``seed`` is the same whatever the
set's size, the chunking and the device (everything random is drawn on the CPU)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import fields, replace

import torch
from torch import Tensor


def image_generator(seed: int, index: int, stream: str) -> torch.Generator:
    """A CPU generator for image ``index`` of the set ``(stream, seed)``."""
    digest = hashlib.blake2b(f"dhtgraph:{stream}:{seed}:{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def check_non_negative(config, names) -> None:
    """Raise ValueError unless every field ``names`` of ``config`` is a number ≥ 0 (not a bool)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"Expected '{name}' to be a non-negative number (got {value!r})")


def resolve_config(config, config_type: type, options: dict):
    """``config`` (``config_type()`` when None) with the fields named in ``options`` replaced.

    Raises TypeError for a ``config`` of another type or an option that is not a field of
    ``config_type``.
    """
    name = config_type.__name__
    config = config if config is not None else config_type()
    if not isinstance(config, config_type):
        raise TypeError(f"Expected 'config' to be a {name} (got {type(config).__name__})")
    if options:
        unknown = sorted(set(options) - {field.name for field in fields(config)})
        if unknown:
            raise TypeError(f"Expected {name} fields as options (got unknown {unknown})")
        config = replace(config, **options)
    return config


def index_chunks(start: int, count: int, size: int) -> Iterator[range]:
    """The image indices ``start .. start + count − 1`` in consecutive ranges of ``size``."""
    stop = start + count
    for first in range(start, stop, size):
        yield range(first, min(first + size, stop))


def uniform(g: torch.Generator, shape, lo: float = 0.0, hi: float = 1.0) -> Tensor:
    return torch.rand(shape, generator=g) * (hi - lo) + lo


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding (σ in pixels)."""
    if sigma <= 0:
        return images
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    b, c, h, w = images.shape
    flat = images.reshape(b * c, 1, h, w)
    pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)
    flat = torch.nn.functional.pad(flat, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    kh = kernel[radius - pad_h: radius + pad_h + 1].view(1, 1, -1, 1)
    kw = kernel[radius - pad_w: radius + pad_w + 1].view(1, 1, 1, -1)
    flat = torch.nn.functional.conv2d(flat, kh)
    flat = torch.nn.functional.conv2d(flat, kw)
    return flat.reshape(b, c, h, w)


def compact_labels(raw: Tensor) -> Tensor:
    """Renumber raw labels (B, N) to ``0..K_b−1`` within every image (sorted order)."""
    b = raw.shape[0]
    span = int(raw.max()) + 1
    image = torch.arange(b, device=raw.device).view(b, 1)
    unique, ids = torch.unique(image * span + raw, return_inverse=True)
    counts = torch.bincount(unique // span, minlength=b)
    offset = torch.cumsum(counts, 0) - counts
    return ids - offset.view(b, 1)
