"""dhtgraph: images to graphs, graphs to adaptive tokens.

Differentiable Hierarchical Visual Tokenization (dHT, Aasan et al., NeurIPS 2025) as a
graph-learning method on PyTorch Geometric. Public API only; see README.md.
"""

from .graph import choice_components, connected_components, from_image, grid_edge_index
from .hierarchy import Hierarchy
from .partition import Partition, canonicalize

__version__ = "0.5.0"

__all__ = [
    "Partition",
    "canonicalize",
    "from_image",
    "grid_edge_index",
    "connected_components",
    "choice_components",
    "Hierarchy",
]

# Each area adds its public names below, inside its own marked section.
# --- tokenizer ---
from .metrics import explained_variation
from .nn import DHTConfig, DHTTokenizer, Tokens, imagenet_normalize
from .tokenize import tokenize

__all__ += ["tokenize", "DHTTokenizer", "DHTConfig", "Tokens", "imagenet_normalize",
            "explained_variation"]
# --- inputs ---
from .graph.pixel import ImageRangeWarning

__all__ += ["ImageRangeWarning"]
# --- export ---
from .export import SVGConfig, to_svg, vectorize

__all__ += ["to_svg", "vectorize", "SVGConfig"]
# --- model ---
from .graph import grid_partition, region_graph
from .nn import DHTViT, DHTViTConfig, DHTViTOutput, RegionFeatures

__all__ += ["grid_partition", "region_graph", "DHTViT", "DHTViTConfig", "DHTViTOutput",
            "RegionFeatures"]
# --- threads ---
from .threads import num_threads

__all__ += ["num_threads"]
# --- native kernels ---
from ._native import status as native_status

__all__ += ["native_status"]
# --- pyg ---
# ToDHT and DHTPooling subclass torch_geometric classes: imported on first use, so
# 'import dhtgraph' stays light (tests/test_package.py).
__all__ += ["ToDHT", "DHTPooling"]


def __getattr__(name):
    if name == "ToDHT":
        from .transforms import ToDHT

        return ToDHT
    if name == "DHTPooling":
        from .nn.pool import DHTPooling

        return DHTPooling
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
