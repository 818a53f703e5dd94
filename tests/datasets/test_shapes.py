"""dhtgraph.datasets.shapes: seeded labelled shapes, class per image, mask per pixel."""

import pytest
import torch

from dhtgraph.datasets import SHAPE_CLASSES, ShapesConfig, ShapesDataset, generate_shapes


def test_same_seed_same_set_and_image_i_independent_of_the_set():
    a = generate_shapes(70, size=32, seed=1)
    b = generate_shapes(70, size=32, seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    tail = generate_shapes(4, size=32, seed=1, start=66)  # across a generation chunk
    assert torch.equal(tail.images, a.images[66:]) and torch.equal(tail.labels, a.labels[66:])
    assert not torch.equal(generate_shapes(70, size=32, seed=2).labels, a.labels)


def test_masks_hold_the_class_and_classes_are_balanced():
    data = generate_shapes(300, size=32, seed=0)
    assert data.images.shape == (300, 3, 32, 32) and data.masks.shape == (300, 32, 32)
    counts = torch.bincount(data.labels, minlength=len(SHAPE_CLASSES))
    assert counts.min() >= 30, counts
    for mask, label in zip(data.masks, data.labels):
        values = torch.unique(mask)
        assert values.tolist() == [0, int(label) + 1]
    area = (data.masks > 0).float().mean(dim=(1, 2))
    assert area.min() > 0.01 and area.max() < 0.5


def test_shape_is_visible_in_clean_images():
    data = generate_shapes(30, size=48, seed=3, noise=0.0, blur=0.0, distractors=0)
    for image, mask in zip(data.images, data.masks):
        inside, outside = image[:, mask > 0], image[:, mask == 0]
        gap = (inside.mean(1) - outside.mean(1)).norm()
        assert gap > 0.1  # the contrast is at least 0.15 before the shading


def test_dataset_and_errors():
    data = ShapesDataset(5, size=16, seed=4)
    image, label, mask = data[4]
    assert image.shape == (3, 16, 16) and isinstance(label, int) and mask.shape == (16, 16)
    assert data.classes == SHAPE_CLASSES
    with pytest.raises(ValueError, match="'contrast' as 0 < lo <= hi <= 1"):
        ShapesConfig(contrast=(0.5, 0.2))
    with pytest.raises(ValueError, match="'size' to be an int >= 8"):
        ShapesConfig(size=4)
