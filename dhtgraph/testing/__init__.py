"""Hypothesis strategies for dhtgraph objects, shipped with the library.

Property tests (in dhtgraph's own suite and in code built on it) state laws over these
strategies: images, label vectors and partitions, grid and random graphs, functional-graph
choices, and hierarchies (chains of partitions). See ``theory/`` for the laws themselves.

This subpackage needs `hypothesis <https://hypothesis.readthedocs.io>`_ (the ``test``
extra: ``pip install dhtgraph[test]``). ``import dhtgraph`` never imports it.

Examples
--------
>>> from hypothesis import given
>>> from dhtgraph.testing import partitions
>>> @given(partitions(max_items=6))
... def test_refines_is_reflexive(p):
...     assert p.refines(p)
"""

try:
    import hypothesis  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "dhtgraph.testing needs the 'hypothesis' package; install the test extra with "
        "`pip install dhtgraph[test]` (or `pip install hypothesis`)"
    ) from err

from .graphs import Graph, GridGraph, choices, grid_graphs, random_graphs
from .hierarchies import assignments, chains, contraction_chains, cuts
from .images import image_shapes, images, numpy_images, torch_images
from .partitions import coarsenings, labels, partition_pairs, partitions, refinements

__all__ = [
    # images
    "image_shapes",
    "numpy_images",
    "torch_images",
    "images",
    # labels and partitions
    "labels",
    "partitions",
    "partition_pairs",
    "coarsenings",
    "refinements",
    # graphs
    "Graph",
    "GridGraph",
    "grid_graphs",
    "random_graphs",
    "choices",
    # hierarchies
    "chains",
    "contraction_chains",
    "cuts",
    "assignments",
]
