"""Training data from image folders, checked completely before training starts.

Two layouts:

- classification: ``ROOT/<class name>/<image>`` (one sub-folder per class, classes
  numbered in sorted name order, images found recursively);
- segmentation: ``ROOT/images/<name>.<ext>`` with ``ROOT/masks/<name>.png``, a
  single-channel mask of class indices (``ignore_index`` marks unlabelled pixels).

Every sample is a dict ``{'image': Tensor (C, H, W) float in [0, 1], 'target': LongTensor
() or (H, W), 'index': int}``; samples of one data set share their size, so the default
collate stacks them into a batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_count

__all__ = ["IMAGE_SUFFIXES", "ClassificationFolder", "SegmentationFolder", "load_image",
           "load_mask", "find_images"]

#: File suffixes taken as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
#: PIL modes accepted for masks: one channel of integer class indices.
MASK_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L")


def find_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursively, hidden files skipped), sorted by path."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _check_root(root, name: str = "root") -> Path:
    path = Path(root)
    if not path.is_dir():
        raise ValueError(f"Expected '{name}' to be a directory (got {str(path)!r}, which "
                         f"{'is a file' if path.exists() else 'does not exist'})")
    return path


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size[1], image.size[0]
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"Expected {str(path)!r} to be a readable image file ({exc})") from None


def _check_size(image_size) -> Optional[int]:
    return check_count(image_size, "image_size", minimum=1, or_none=True)


def load_image(path: Path, image_size: Optional[int] = None, channels: int = 3) -> Tensor:
    """Read an image as float (C, H, W) in [0, 1], resized (bilinear, antialiased) when
    ``image_size`` is given. Grey images are repeated to 3 channels; any other channel
    count that differs from ``channels`` is a ValueError."""
    from ..graph.pixel import as_image_tensor

    image = as_image_tensor(path)
    if image.shape[1] == 1 and channels == 3:
        image = image.expand(-1, 3, -1, -1)
    if image.shape[1] != channels:
        raise ValueError(f"Expected image {str(path)!r} to have {channels} channels "
                         f"(got {image.shape[1]})")
    if image_size is not None and tuple(image.shape[-2:]) != (image_size, image_size):
        image = F.interpolate(image, size=(image_size, image_size), mode="bilinear",
                              align_corners=False, antialias=True).clamp_(0, 1)
    return image[0].contiguous()


def load_mask(path: Path, image_size: Optional[int] = None) -> Tensor:
    """Read a single-channel mask of class indices as LongTensor (H, W), resized with
    nearest-neighbour sampling when ``image_size`` is given."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as mask:
        if mask.mode not in MASK_MODES:
            raise ValueError(f"Expected mask {str(path)!r} to have one channel of class indices "
                             f"(PIL mode in {MASK_MODES}; got mode {mask.mode!r})")
        if image_size is not None and mask.size != (image_size, image_size):
            mask = mask.resize((image_size, image_size), Image.NEAREST)
        array = np.asarray(mask).astype(np.int64)
    return torch.from_numpy(array)


class ClassificationFolder(Dataset):
    """One sub-folder of ``root`` per class; checked on construction.

    Parameters
    ----------
    root : path
        The folder of class folders.
    image_size : int, optional
        Resize to ``image_size²``; without it every image must have the same size.
    channels : int, default 3
        Channels the model takes (grey files are repeated to RGB).

    Attributes
    ----------
    classes : list of str
        Class names; class ``k`` is ``classes[k]``.
    samples : list of (Path, int)
        Every image with its class.

    Raises
    ------
    ValueError
        For a missing or empty folder, image files directly in ``root`` (not in a class
        folder), a class folder without images, an unreadable image or (without
        ``image_size``) images of different sizes.
    """

    task = "classification"

    def __init__(self, root, image_size: Optional[int] = None, channels: int = 3):
        self.root = _check_root(root)
        self.image_size = _check_size(image_size)
        self.channels = check_count(channels, "channels", minimum=1)
        folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        loose = [p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if loose:
            raise ValueError(f"Expected 'root' {str(self.root)!r} to hold one sub-folder per class "
                             f"(got {len(loose)} image file(s) directly in it, e.g. {loose[0].name!r})")
        if not folders:
            raise ValueError(f"Expected 'root' {str(self.root)!r} to hold one sub-folder per class "
                             "(got an empty folder)")
        self.classes = [p.name for p in folders]
        self.samples: list[tuple[Path, int]] = []
        for label, folder in enumerate(folders):
            found = find_images(folder)
            if not found:
                raise ValueError(f"Expected class folder {str(folder)!r} to hold image files "
                                 f"({', '.join(IMAGE_SUFFIXES)}) (got none)")
            self.samples.extend((p, label) for p in found)
        self.size = _common_size([p for p, _ in self.samples], self.image_size)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def check_num_classes(self, num_classes: int) -> None:
        """Raise ValueError if a class index is out of range for a head of ``num_classes``."""
        if self.num_classes > num_classes:
            raise ValueError(f"Expected at most {num_classes} class folders in {str(self.root)!r} "
                             f"(the model's num_classes; got {self.num_classes}: labels up to "
                             f"{self.num_classes - 1} are out of range)")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        path, label = self.samples[index]
        return {"image": load_image(path, self.image_size, self.channels),
                "target": torch.tensor(label), "index": index}


class SegmentationFolder(Dataset):
    """``root/images`` + ``root/masks`` pairs matched by file stem; checked on construction.

    Parameters
    ----------
    root : path
        The folder holding ``images/`` and ``masks/``.
    image_size : int, optional
        Resize images (bilinear) and masks (nearest) to ``image_size²``; without it every
        image must have the same size.
    ignore_index : int, default 255
        Mask value of unlabelled pixels (never counted).
    channels : int, default 3
        Channels the model takes.

    Attributes
    ----------
    samples : list of (Path, Path)
        Every image with its mask.
    max_label : int
        The largest class index in any mask (ignore_index excluded; -1 if none).

    Raises
    ------
    ValueError
        For a missing folder, no images, an image without a mask (or a mask without an
        image), a mask whose size differs from its image's, a mask that is not one
        channel, or (without ``image_size``) images of different sizes.
    """

    task = "segmentation"

    def __init__(self, root, image_size: Optional[int] = None, ignore_index: int = 255,
                 channels: int = 3):
        self.root = _check_root(root)
        self.image_size = _check_size(image_size)
        self.ignore_index = check_count(ignore_index, "ignore_index")
        self.channels = check_count(channels, "channels", minimum=1)
        for sub in ("images", "masks"):
            if not (self.root / sub).is_dir():
                raise ValueError(f"Expected 'root' {str(self.root)!r} to hold the folders 'images' "
                                 f"and 'masks' (no {sub!r} folder)")
        images = find_images(self.root / "images")
        masks = find_images(self.root / "masks")
        if not images:
            raise ValueError(f"Expected {str(self.root / 'images')!r} to hold image files (got none)")
        by_stem = {}
        for mask in masks:
            key = mask.relative_to(self.root / "masks").with_suffix("")
            if key in by_stem:
                raise ValueError(f"Expected one mask per image (got {str(by_stem[key])!r} and "
                                 f"{str(mask)!r} for the same name)")
            by_stem[key] = mask
        self.samples: list[tuple[Path, Path]] = []
        for image in images:
            key = image.relative_to(self.root / "images").with_suffix("")
            if key not in by_stem:
                raise ValueError(f"Expected a mask {str(self.root / 'masks' / key)}.png for image "
                                 f"{str(image)!r} (got none)")
            self.samples.append((image, by_stem.pop(key)))
        if by_stem:
            extra = sorted(by_stem.values())
            raise ValueError(f"Expected an image for every mask (got {len(extra)} mask(s) without "
                             f"one, e.g. {str(extra[0])!r})")
        max_label = -1
        for image, mask in self.samples:
            size, mask_size = _image_size(image), _image_size(mask)
            if size != mask_size:
                raise ValueError(f"Expected mask {str(mask)!r} to have the size of its image "
                                 f"{str(image)!r} (H, W) = {size} (got {mask_size})")
            values = load_mask(mask).unique()
            values = values[values != self.ignore_index]
            if values.numel():
                max_label = max(max_label, int(values.max()))
        self.max_label = max_label
        self.size = _common_size([p for p, _ in self.samples], self.image_size)

    @property
    def num_classes(self) -> int:
        return self.max_label + 1

    def check_num_classes(self, num_classes: int) -> None:
        """Raise ValueError if a mask holds a label ≥ ``num_classes`` (other than ignore_index)."""
        if self.max_label >= num_classes:
            for _, mask in self.samples:
                values = load_mask(mask).unique()
                bad = values[(values >= num_classes) & (values != self.ignore_index)]
                if bad.numel():
                    raise ValueError(
                        f"Expected mask labels in 0..{num_classes - 1} (the model's num_classes) "
                        f"or {self.ignore_index} (ignore_index) (got {int(bad.max())} in "
                        f"{str(mask)!r})")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        image, mask = self.samples[index]
        return {"image": load_image(image, self.image_size, self.channels),
                "target": load_mask(mask, self.image_size), "index": index}


def _common_size(paths: list[Path], image_size: Optional[int]) -> tuple[int, int]:
    """The (H, W) every sample will have; images of different sizes are an error without
    ``image_size``."""
    if image_size is not None:
        for path in paths:
            _image_size(path)  # readable
        return image_size, image_size
    first = _image_size(paths[0])
    for path in paths[1:]:
        size = _image_size(path)
        if size != first:
            raise ValueError(f"Expected every image to have the same size (H, W) = {first} as "
                             f"{str(paths[0])!r} (got {size} for {str(path)!r}); pass "
                             "image_size to resize them")
    return first
