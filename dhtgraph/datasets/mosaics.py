"""Seeded mosaics with exact ground truth (issue 12 §2).

A mosaic is a partition of the image into regions — the cells of a Voronoi diagram of
random seeds (``'voronoi'``) or of an arrangement of random lines (``'polygons'``, convex
polygons) — each filled with its own colour, optionally overlaid with a per-region
grating (texture) and a per-region linear ramp (gradient), then blurred and given
Gaussian noise. The region of every pixel is the ground truth; it is exact because the
image is rendered from it.

Image ``i`` of a set depends only on (config, seed, i): not on how many images are
generated together, nor on the device (random numbers are drawn on the CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_count
from ._random import (check_non_negative, compact_labels, gaussian_blur, image_generator,
                      index_chunks, resolve_config, uniform)

__all__ = ["MosaicConfig", "Mosaics", "generate_mosaics", "MosaicDataset"]

MosaicKind = Literal["voronoi", "polygons"]
_KINDS = ("voronoi", "polygons")
# Images rendered together (bounds the chunk's intermediate tensors to ~100 MB at 224²).
_CHUNK = 16
# Voronoi labelling: pixels of a _TILE² tile choose among the _CANDIDATES seeds nearest to
# the tile centre (exact unless a cell is far thinner than a tile).
_TILE = 8
_CANDIDATES = 8
# Grating frequencies in cycles per pixel: coarse enough to stay inside a region of a few
# hundred pixels, fine enough to look like texture rather than a gradient.
_FREQUENCY = (0.04, 0.2)


@dataclass(frozen=True)
class MosaicConfig:
    """How a mosaic set is drawn. Every strength is 0 (a clean piecewise-constant mosaic)
    by default.

    Attributes
    ----------
    kind : {'voronoi', 'polygons'}, default 'voronoi'
        Voronoi cells of uniform random seeds, or the cells of an arrangement of random
        lines (convex polygons of very different sizes).
    size : int, default 224
        H = W (the tokenizer's usual input size).
    regions : (int, int), default (16, 64)
        Range of the region count drawn per image (uniform, inclusive). Exact for
        Voronoi (cells smaller than a pixel aside); for polygons, L = round(√(2R)) lines
        are drawn, whose arrangement has up to 1 + L + L(L−1)/2 cells inside the image.
    texture : float, default 0
        Amplitude of a per-region sinusoidal grating (random orientation, frequency and
        phase), added to every channel.
    gradient : float, default 0
        Per-region linear ramp: the colour changes by up to ±gradient/2 across the image
        along a random direction of each region.
    blur : float, default 0
        σ in pixels of a Gaussian blur of the rendered image.
    noise : float, default 0
        σ of additive Gaussian noise (values are clipped to [0, 1] afterwards).
    """

    kind: MosaicKind = "voronoi"
    size: int = 224
    regions: tuple[int, int] = (16, 64)
    texture: float = 0.0
    gradient: float = 0.0
    blur: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Expected 'kind' to be one of {_KINDS} (got {self.kind!r})")
        check_count(self.size, "size", 2)
        if len(self.regions) != 2:
            raise ValueError(f"Expected 'regions' to be a pair (lo, hi) (got {self.regions!r})")
        lo, hi = (check_count(v, "regions", 1) for v in self.regions)
        if lo > hi:
            raise ValueError(f"Expected 'regions' lo <= hi (got {self.regions!r})")
        object.__setattr__(self, "regions", (lo, hi))
        check_non_negative(self, ("texture", "gradient", "blur", "noise"))


@dataclass(frozen=True)
class Mosaics:
    """A generated set.

    Attributes
    ----------
    images : Tensor of shape (N, 3, H, W), float32 in [0, 1]
    truth : LongTensor of shape (N, H, W)
        Ground-truth region of every pixel, numbered ``0..K_i−1`` within image i.
    config : MosaicConfig
    seed : int
    """

    images: Tensor
    truth: Tensor
    config: MosaicConfig
    seed: int

    def __len__(self) -> int:
        return self.images.shape[0]


def _table_size(config: MosaicConfig) -> int:
    hi = config.regions[1]
    if config.kind == "voronoi":
        return hi
    lines = _num_lines(hi)
    return 1 + lines + lines * (lines - 1) // 2


def _num_lines(regions: int) -> int:
    return max(1, round(math.sqrt(2 * regions)))


def _draw(config: MosaicConfig, seed: int, index: int) -> dict:
    """Every random number of one image, in a fixed order."""
    g = image_generator(seed, index, "mosaic-" + config.kind)
    lo, hi = config.regions
    n = config.size
    regions = int(torch.randint(lo, hi + 1, (1,), generator=g))
    table = _table_size(config)
    if config.kind == "voronoi":
        points = uniform(g, (hi, 2), 0.0, float(n))
        points[regions:] = float("inf")  # unused seeds: never the nearest
        geometry = points
    else:
        lines = _num_lines(hi)
        used = _num_lines(regions)
        through = uniform(g, (lines, 2), 0.0, float(n))
        angle = uniform(g, (lines,), 0.0, math.pi)
        normal = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        offset = -(normal * through).sum(1)
        geometry = torch.cat([normal, offset.unsqueeze(1)], 1)  # a·x + b·y + c
        geometry[used:] = torch.tensor([0.0, 0.0, 1.0])  # unused lines: every pixel on one side
    colour = uniform(g, (table, 3))
    texture = torch.stack([uniform(g, (table,), 0, math.pi),                   # orientation
                           uniform(g, (table,), *_FREQUENCY),                  # frequency
                           uniform(g, (table,), 0, 2 * math.pi)], 1)           # phase
    ramp = uniform(g, (table,), 0, 2 * math.pi)
    noise = torch.randn((3, n, n), generator=g) if config.noise > 0 else None
    return dict(geometry=geometry, colour=colour, texture=texture, ramp=ramp, noise=noise)


def _voronoi(points: Tensor, n: int) -> Tensor:
    """Nearest seed (B, H·W) of every pixel centre, among the ``_CANDIDATES`` seeds nearest
    to its ``_TILE``² tile's centre (a nearer seed farther from the tile centre would need
    cells far smaller than the tile; the labels are the ground truth either way)."""
    b, k, _ = points.shape
    tiles = -(-n // _TILE)
    centre = (torch.arange(tiles, dtype=torch.float32) + 0.5) * _TILE
    ty, tx = torch.meshgrid(centre, centre, indexing="ij")
    tile_xy = torch.stack([tx.reshape(-1), ty.reshape(-1)], 1)          # (T, 2)
    to_tile = (tile_xy.view(1, -1, 1, 2) - points.view(b, 1, k, 2)).square().sum(3)  # (B, T, K)
    m = min(k, _CANDIDATES)
    candidates = to_tile.topk(m, dim=2, largest=False).indices          # (B, T, m)
    axis = torch.arange(n, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    tile_of = ((y // _TILE) * tiles + x // _TILE).long().reshape(-1)     # (H·W,)
    near = candidates[:, tile_of]                                       # (B, H·W, m)
    seed_xy = torch.gather(points, 1, near.reshape(b, -1, 1).expand(-1, -1, 2)).view(b, -1, m, 2)
    distance = (seed_xy[..., 0] - x.reshape(1, -1, 1)).square() + \
        (seed_xy[..., 1] - y.reshape(1, -1, 1)).square()
    return torch.gather(near, 2, distance.argmin(dim=2, keepdim=True)).squeeze(2)


def _regions(config: MosaicConfig, geometry: Tensor) -> Tensor:
    """Raw region labels (B, H·W) of a chunk."""
    n = config.size
    axis = torch.arange(n, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    y, x = y.reshape(1, 1, -1), x.reshape(1, 1, -1)
    if config.kind == "voronoi":
        return _voronoi(geometry, n)
    a, b, c = geometry[..., 0:1], geometry[..., 1:2], geometry[..., 2:3]  # (B, L, 1) each
    raw = torch.zeros(geometry.shape[0], x.shape[2], dtype=torch.long)
    for line in range(geometry.shape[1]):  # bit `line`: the pixel's side of that line
        side = (a[:, line] * x[:, 0] + b[:, line] * y[:, 0] + c[:, line]) > 0
        raw |= side.long() << line
    return raw


def _render(config: MosaicConfig, truth: Tensor, draws: list[dict]) -> Tensor:
    n = config.size
    b = truth.shape[0]
    colour = torch.stack([d["colour"] for d in draws])             # (B, T, 3)
    index = truth.reshape(b, -1)
    pixel = torch.gather(colour, 1, index.unsqueeze(2).expand(-1, -1, 3))  # (B, H·W, 3)
    axis = torch.arange(n, dtype=torch.float32)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    y, x = y.reshape(1, -1), x.reshape(1, -1)
    if config.texture > 0:
        texture = torch.stack([d["texture"] for d in draws])        # (B, T, 3)
        theta, freq, phase = (torch.gather(texture[..., i], 1, index) for i in range(3))
        wave = torch.sin(2 * math.pi * freq * (x * torch.cos(theta) + y * torch.sin(theta)) + phase)
        pixel = pixel + config.texture * wave.unsqueeze(2)
    if config.gradient > 0:
        ramp = torch.gather(torch.stack([d["ramp"] for d in draws]), 1, index)
        along = ((x - n / 2) * torch.cos(ramp) + (y - n / 2) * torch.sin(ramp)) / n
        pixel = pixel + config.gradient * along.unsqueeze(2)
    images = pixel.reshape(b, n, n, 3).permute(0, 3, 1, 2)
    images = gaussian_blur(images, config.blur)
    if config.noise > 0:
        images = images + config.noise * torch.stack([d["noise"] for d in draws])
    return images.clamp(0, 1).contiguous()


def generate_mosaics(num_images: int, config: Optional[MosaicConfig] = None, *, seed: int = 0,
                     start: int = 0, device: torch.device | str | None = None,
                     **options) -> Mosaics:
    """Generate ``num_images`` mosaics with their ground truth.

    Parameters
    ----------
    num_images : int
        N.
    config : MosaicConfig, optional
        Default ``MosaicConfig()``; ``**options`` override its fields
        (``generate_mosaics(8, kind='polygons', noise=0.05)``).
    seed : int, default 0
    start : int, default 0
        Index of the first image: ``generate_mosaics(4, start=2)`` gives images 2..5 of
        the set.
    device : torch.device, optional
        Where the result lies (generation itself runs on the CPU).

    Returns
    -------
    Mosaics
        ``images`` (N, 3, H, W) float32 in [0, 1] and ``truth`` (N, H, W).

    Examples
    --------
    >>> sets = generate_mosaics(2, kind="polygons", noise=0.05, seed=1)
    >>> sets.images.shape, sets.truth.shape
    (torch.Size([2, 3, 224, 224]), torch.Size([2, 224, 224]))
    """
    num_images = check_count(num_images, "num_images")
    seed = check_count(seed, "seed")
    start = check_count(start, "start")
    config = resolve_config(config, MosaicConfig, options)
    n = config.size
    images, truths = [], []
    for indices in index_chunks(start, num_images, _CHUNK):
        draws = [_draw(config, seed, i) for i in indices]
        raw = _regions(config, torch.stack([d["geometry"] for d in draws]))
        truth = compact_labels(raw)
        images.append(_render(config, truth, draws))
        truths.append(truth.reshape(-1, n, n))
    if not images:
        images, truths = [torch.zeros(0, 3, n, n)], [torch.zeros(0, n, n, dtype=torch.long)]
    return Mosaics(torch.cat(images).to(device), torch.cat(truths).to(device), config, seed)


class MosaicDataset(Dataset):
    """A plain torch ``Dataset`` of mosaics: item ``i`` is ``(image (3, H, W), truth (H, W))``.

    Parameters
    ----------
    num_images : int
    config : MosaicConfig, optional
    seed : int, default 0
    **options
        MosaicConfig fields, as in :func:`generate_mosaics`.

    Notes
    -----
    The set is generated once, in the constructor (about a second per few hundred images
    of 224² on two CPU cores).
    """

    def __init__(self, num_images: int, config: Optional[MosaicConfig] = None, *, seed: int = 0,
                 **options):
        self.data = generate_mosaics(num_images, config, seed=seed, **options)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data.images[index], self.data.truth[index]
