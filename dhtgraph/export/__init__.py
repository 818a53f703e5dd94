"""Raster to vector: SVG export of partitions (spec/method.md §9).

- :mod:`.boundary`: the planar boundary graph of a label map, cut into shared chains;
- :mod:`.simplify`: Douglas–Peucker importance of chain points, for all chains at once;
- :mod:`.curves`: lines and cubic Béziers through the kept points;
- :mod:`.svg`: :func:`to_svg`, the document writer;
- :mod:`.vectorize`: :func:`vectorize`, tokenizer + :func:`to_svg`.
"""

from .svg import SVGConfig, to_svg
from .vectorize import vectorize

__all__ = ["SVGConfig", "to_svg", "vectorize"]
