"""Helpers of the training tests: tiny PNG folders and a stand-in model.

``TinyNet`` only has DHTViT's call shape (``model(images, partition=None)`` → ``.logits``,
``.dense_logits``); it exists so the training loop can be tested quickly and
independently of the transformer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn


@dataclass(frozen=True)
class TinyConfig:
    num_classes: int = 3
    width: int = 8


@dataclass
class TinyOutput:  # a dataclass, as DHTViTOutput: DDP finds the tensors inside it
    logits: torch.Tensor
    dense_logits: torch.Tensor


class TinyNet(nn.Module):
    def __init__(self, config: TinyConfig = TinyConfig()):
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(3, config.width, 3, padding=1)
        self.drop = nn.Dropout(0.2)  # draws from the RNG: resume must restore it
        self.head = nn.Linear(config.width, config.num_classes)
        self.dense = nn.Conv2d(config.width, config.num_classes, 1)
        self.partitions = []

    def forward(self, images, partition=None):
        x = self.drop(torch.relu(self.conv(images)))
        if partition is not None:  # token-mean features, as a token model would see them
            self.partitions.append(partition)
            b, c, h, w = x.shape
            flat = x.permute(0, 2, 3, 1).reshape(-1, c)
            x = partition.broadcast(partition.reduce(flat)).view(b, h, w, c).permute(0, 3, 1, 2)
        return TinyOutput(logits=self.head(x.mean((2, 3))), dense_logits=self.dense(x))


def _noise(rng, h, w, base):
    arr = np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255)
    return arr.astype(np.uint8)


def write_class_folder(root, classes=("a", "b", "c"), per_class=4, size=16, seed=0):
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_noise(rng, size, size, 60 + 60 * k)).save(root / name / f"{i}.png")
    return root


def write_seg_folder(root, count=4, size=16, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        mask[:, size // 2:] = 1
        mask[size // 2:, :] = (i % (num_classes - 1)) + 1
        mask[0, 0] = 255  # ignored
        image = _noise(rng, size, size, 0) + (mask[..., None] % 255 * 70).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"im{i}.png")
    return root
