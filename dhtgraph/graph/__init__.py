"""Graphs built from images: pixel adjacency graphs and their connected components."""

from .components import choice_components, connected_components
from .pixel import as_image_tensor, from_image, grid_edge_index

from .patches import grid_partition  # model
from .region import region_graph  # model

__all__ = ["from_image", "grid_edge_index", "as_image_tensor", "connected_components",
           "choice_components"]
__all__ += ["grid_partition", "region_graph"]  # model
