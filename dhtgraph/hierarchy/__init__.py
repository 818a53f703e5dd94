"""Hierarchies of partitions built by differentiable edge contraction."""

from .chain import Hierarchy

__all__ = ["Hierarchy"]
