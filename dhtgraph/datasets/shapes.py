"""A seeded labelled shapes set: one shape per image, a class per image and a mask per
pixel (issue 12 §2, for the training study).

Every image holds one shape of :data:`SHAPE_CLASSES` at a random position, size,
rotation and aspect ratio, in a colour a random contrast away from a background with a
linear shading, behind which lie a few distractor blobs (background in the mask), then
Gaussian noise. The classes differ in outline, not in colour or size, so a classifier
has to look at shape: learnable, not trivial. Image ``i`` depends only on
(config, seed, i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_count
from ._random import (check_non_negative, gaussian_blur, image_generator, index_chunks,
                      resolve_config, uniform)

__all__ = ["SHAPE_CLASSES", "ShapesConfig", "Shapes", "generate_shapes", "ShapesDataset"]

#: Class names; class ``k`` is drawn with mask value ``k + 1`` (0 is background).
SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
# Shape radius as a fraction of the side: large enough to be resolved at 32², small
# enough to leave background around it.
_RADIUS = (0.16, 0.32)
_CHUNK = 64


@dataclass(frozen=True)
class ShapesConfig:
    """How a shapes set is drawn.

    Attributes
    ----------
    size : int, default 64
        H = W.
    noise : float, default 0.08
        σ of the additive Gaussian noise (values clipped to [0, 1]).
    contrast : (float, float), default (0.15, 0.6)
        Range of the colour distance between shape and background.
    distractors : int, default 2
        Small ellipses of random colour drawn behind the shape (mask 0).
    blur : float, default 0.6
        σ of a Gaussian blur before the noise (soft, anti-aliased edges).
    """

    size: int = 64
    noise: float = 0.08
    contrast: tuple[float, float] = (0.15, 0.6)
    distractors: int = 2
    blur: float = 0.6

    def __post_init__(self) -> None:
        check_count(self.size, "size", 8)
        check_count(self.distractors, "distractors")
        check_non_negative(self, ("noise", "blur"))
        lo, hi = self.contrast
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"Expected 'contrast' as 0 < lo <= hi <= 1 (got {self.contrast!r})")


@dataclass(frozen=True)
class Shapes:
    """A generated shapes set.

    Attributes
    ----------
    images : Tensor of shape (N, 3, H, W), float32 in [0, 1]
    labels : LongTensor of shape (N,)
        Class index into :data:`SHAPE_CLASSES`.
    masks : LongTensor of shape (N, H, W)
        ``label + 1`` on the shape, 0 elsewhere.
    """

    images: Tensor
    labels: Tensor
    masks: Tensor
    config: ShapesConfig
    seed: int

    def __len__(self) -> int:
        return self.images.shape[0]


def _inside(kind: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """Whether local coordinates (u, v) (radius 1) lie in the shape of class ``kind``."""
    r = torch.sqrt(u * u + v * v)
    phi = torch.atan2(v, u)
    triangle = torch.ones_like(u, dtype=torch.bool)
    for k in range(3):
        a = math.pi / 2 + k * 2 * math.pi / 3
        triangle &= (u * math.cos(a) + v * math.sin(a)) >= -0.55
    masks = torch.stack([
        r <= 0.95,                                                        # circle
        torch.maximum(u.abs(), v.abs()) <= 0.8,                           # square
        triangle & (r <= 1.1),                                            # triangle
        r <= 0.62 + 0.38 * torch.cos(5 * phi),                            # star
        ((u.abs() <= 1) & (v.abs() <= 0.34)) | ((v.abs() <= 1) & (u.abs() <= 0.34)),  # cross
        (r >= 0.55) & (r <= 1.0),                                         # ring
    ])
    return torch.gather(masks, 0, kind.view(1, -1, 1, 1).expand(1, *u.shape)).squeeze(0)


def _draw(config: ShapesConfig, seed: int, index: int) -> dict:
    g = image_generator(seed, index, "shapes")
    n = config.size
    kind = int(torch.randint(len(SHAPE_CLASSES), (1,), generator=g))
    radius = float(uniform(g, (), *_RADIUS)) * n
    centre = uniform(g, (2,), 0.0, 1.0) * (n - 2.4 * radius) + 1.2 * radius
    rotation, aspect = float(uniform(g, (), 0, 2 * math.pi)), float(uniform(g, (), 0.75, 1.0))
    background = uniform(g, (3,), 0.1, 0.9)
    direction = torch.randn(3, generator=g)
    contrast = float(uniform(g, (), *config.contrast))
    foreground = (background + contrast * direction / direction.norm()).clamp(0, 1)
    shade = torch.cat([uniform(g, (1,), 0, 2 * math.pi), uniform(g, (1,), 0, 0.3)])
    blobs = torch.cat([uniform(g, (config.distractors, 2), 0, n),                 # centre
                       uniform(g, (config.distractors, 2), 0.04 * n, 0.1 * n),    # radii
                       uniform(g, (config.distractors, 3))], 1)                   # colour
    noise = torch.randn((3, n, n), generator=g) if config.noise > 0 else None
    return dict(kind=kind, radius=radius, centre=centre, rotation=rotation, aspect=aspect,
                background=background, foreground=foreground, shade=shade, blobs=blobs, noise=noise)


def _render(config: ShapesConfig, draws: list[dict]) -> tuple[Tensor, Tensor, Tensor]:
    n, b = config.size, len(draws)
    axis = torch.arange(n, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    y, x = y.expand(b, n, n), x.expand(b, n, n)

    def stack(key):
        return torch.as_tensor([d[key] for d in draws]) if not isinstance(draws[0][key], Tensor) \
            else torch.stack([d[key] for d in draws])

    kind = stack("kind")
    centre, radius = stack("centre"), stack("radius").view(b, 1, 1)
    rotation, aspect = stack("rotation").view(b, 1, 1), stack("aspect").view(b, 1, 1)
    dx, dy = x - centre[:, 0].view(b, 1, 1), y - centre[:, 1].view(b, 1, 1)
    u = (dx * torch.cos(rotation) + dy * torch.sin(rotation)) / (radius * aspect)
    v = (-dx * torch.sin(rotation) + dy * torch.cos(rotation)) / radius
    inside = _inside(kind, u, v)
    shade = stack("shade")
    ramp = (((x - n / 2) * torch.cos(shade[:, 0].view(b, 1, 1))
             + (y - n / 2) * torch.sin(shade[:, 0].view(b, 1, 1))) / n * shade[:, 1].view(b, 1, 1))
    image = stack("background").view(b, 3, 1, 1).expand(b, 3, n, n).clone()
    blobs = stack("blobs")
    for j in range(config.distractors):
        cx, cy, rx, ry = (blobs[:, j, i].view(b, 1, 1) for i in range(4))
        blob = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        image = torch.where(blob.unsqueeze(1), blobs[:, j, 4:7].view(b, 3, 1, 1), image)
    image = torch.where(inside.unsqueeze(1), stack("foreground").view(b, 3, 1, 1), image)
    image = gaussian_blur(image + ramp.unsqueeze(1), config.blur)
    if config.noise > 0:
        image = image + config.noise * stack("noise")
    masks = torch.where(inside, kind.view(b, 1, 1) + 1, 0)
    return image.clamp(0, 1).contiguous(), kind, masks


def generate_shapes(num_images: int, config: Optional[ShapesConfig] = None, *, seed: int = 0,
                    start: int = 0, device: torch.device | str | None = None,
                    **options) -> Shapes:
    """Generate ``num_images`` labelled shape images.

    Parameters
    ----------
    num_images : int
    config : ShapesConfig, optional
        ``**options`` override its fields (``generate_shapes(100, size=32)``).
    seed : int, default 0
    start : int, default 0
        Index of the first image of the set.
    device : torch.device, optional
        Where the result lies (generation runs on the CPU).

    Returns
    -------
    Shapes
        ``images`` (N, 3, H, W), ``labels`` (N,), ``masks`` (N, H, W).
    """
    num_images = check_count(num_images, "num_images")
    seed, start = check_count(seed, "seed"), check_count(start, "start")
    config = resolve_config(config, ShapesConfig, options)
    n = config.size
    parts = []
    for indices in index_chunks(start, num_images, _CHUNK):
        draws = [_draw(config, seed, i) for i in indices]
        parts.append(_render(config, draws))
    if not parts:
        parts = [(torch.zeros(0, 3, n, n), torch.zeros(0, dtype=torch.long),
                  torch.zeros(0, n, n, dtype=torch.long))]
    images, labels, masks = (torch.cat(p).to(device) for p in zip(*parts))
    return Shapes(images, labels, masks, config, seed)


class ShapesDataset(Dataset):
    """A plain torch ``Dataset``: item ``i`` is ``(image (3, H, W), label, mask (H, W))``.

    Parameters
    ----------
    num_images : int
    config : ShapesConfig, optional
    seed : int, default 0
    **options
        ShapesConfig fields.
    """

    classes = SHAPE_CLASSES

    def __init__(self, num_images: int, config: Optional[ShapesConfig] = None, *, seed: int = 0,
                 **options):
        self.data = generate_shapes(num_images, config, seed=seed, **options)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Tensor, int, Tensor]:
        return self.data.images[index], int(self.data.labels[index]), self.data.masks[index]
