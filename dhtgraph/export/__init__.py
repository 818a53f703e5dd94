"""Raster to vector: SVG export of partitions (spec/method.md §9)."""

from .svg import SVGConfig, to_svg

__all__ = ["SVGConfig", "to_svg"]
