"""Hierarchies of partitions built by differentiable edge contraction."""

from .affinity import compactness_potential, edge_affinity, gaussian_potential, self_loop_potential
from .build import HierarchyResult, PixelGrid, build_hierarchy, max_levels_for
from .chain import Hierarchy
from .contraction import BlockState, Contraction, argmax_choice, contract, pool_blocks

__all__ = ["Hierarchy", "BlockState", "Contraction", "HierarchyResult", "PixelGrid",
           "build_hierarchy", "max_levels_for", "contract", "pool_blocks", "argmax_choice",
           "edge_affinity", "gaussian_potential", "self_loop_potential", "compactness_potential"]
