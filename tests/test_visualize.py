"""dhtgraph.visualize: exact boundary masks and mosaics on tiny images."""

import numpy as np
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
