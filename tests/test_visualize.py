"""dhtgraph.visualize: exact boundary masks and mosaics on tiny images."""

import numpy as np
import pytest
import torch

from dhtgraph import Partition
from dhtgraph.visualize import BOUNDARY_COLOR, boundary_mask, draw_boundaries, hierarchy_strip, mean_mosaic


def test_boundary_mask_two_halves():
    labels = np.array([[0, 0, 1], [0, 0, 1]])
    assert boundary_mask(labels).tolist() == [[False, True, False], [False, True, False]]


def test_mean_mosaic_and_boundaries():
    image = torch.tensor([[[0.0, 1.0, 1.0]]])  # (C=1, H=1, W=3)
    p = Partition.from_labels(torch.tensor([0, 0, 1]))
    assert mean_mosaic(image, p)[0, :, 0].tolist() == [128, 128, 255]
    drawn = draw_boundaries(image, p.labels.view(1, 3))
    assert tuple(drawn[0, 1]) == BOUNDARY_COLOR and tuple(drawn[0, 0]) == (0, 0, 0)
    strip = hierarchy_strip(image, [p, Partition.indiscrete(3)])
    assert strip.shape == (1, 3 + 4 + 3, 3)


def test_level_panels_are_captioned_mean_colours_with_thin_boundaries():
    from dhtgraph.visualize import BOUNDARY_DARKEN, CAPTION_HEIGHT

    image = torch.full((3, 8, 8), 0.6)
    image[:, :, 4:] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # grey left, red right
    halves = Partition.from_labels(torch.tensor([0] * 4 + [1] * 4).repeat(8))
    pixels = Partition.discrete(64)
    strip = hierarchy_strip(image, [pixels, halves])
    assert strip.shape == (8, 8 + 4 + 8, 3)
    # No panel is a sheet of boundary colour: one-pixel blocks are drawn without outlines.
    assert not (strip == BOUNDARY_COLOR).all(axis=-1).any()
    assert (strip[:, :4] == 153).all() and (strip[:, 4:8] == (255, 0, 0)).all()  # the image itself
    # Two halves: mean colours, the boundary one pixel wide and darkened.
    second = strip[:, -8:]
    assert (second[:, :3] == 153).all() and (second[:, 4:] == (255, 0, 0)).all()
    assert (second[:, 3] == int(153 * BOUNDARY_DARKEN)).all()
    captioned = hierarchy_strip(image, [pixels, halves],
                                captions=["level 1: 64 blocks", "level 2: 2 blocks"])
    assert captioned.shape[0] == CAPTION_HEIGHT + 8
    assert (captioned[:CAPTION_HEIGHT] < 128).any()  # caption text is drawn
    with pytest.raises(ValueError, match="one caption per partition"):
        hierarchy_strip(image, [halves], captions=[])
