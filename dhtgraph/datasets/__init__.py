"""Seeded, procedurally generated image sets with exact ground truth (no download).

- :mod:`~dhtgraph.datasets.mosaics`: Voronoi and polygon mosaics with texture, gradient,
  blur and noise of controlled strength, each with its ground-truth segmentation;
- :mod:`~dhtgraph.datasets.shapes`: a labelled shapes set (class per image, mask per
  pixel) for training studies.
"""

from .mosaics import MosaicConfig, MosaicDataset, Mosaics, generate_mosaics
from .shapes import SHAPE_CLASSES, Shapes, ShapesConfig, ShapesDataset, generate_shapes

__all__ = ["MosaicConfig", "Mosaics", "generate_mosaics", "MosaicDataset",
           "SHAPE_CLASSES", "ShapesConfig", "Shapes", "generate_shapes", "ShapesDataset"]
