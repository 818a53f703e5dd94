"""PyG transforms: an image to its dHT region graph (``ToDHT``, in the role of ``ToSLIC``).

``ToDHT`` runs :func:`dhtgraph.tokenize` on one image and returns the region graph of its
tokens as a ``torch_geometric.data.Data``: the token's pooled features in ``x``, its
centroid in ``pos``, the region adjacency in ``edge_index``. It is a
``torch_geometric.transforms.BaseTransform``, so it goes into ``Compose``, a ``Dataset``'s
``transform`` / ``pre_transform`` or a torchvision pipeline after ``ToTensor()``, like
``ToSLIC``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.transforms import BaseTransform

from .features.pooling import pool_regions
from .graph.pixel import as_image_tensor, grid_coordinates
from .nn.config import DHTConfig, check_config_options
from .selection.budget import check_max_tokens
from .tokenize import _NEEDS_WEIGHTS, tokenize

__all__ = ["ToDHT", "NODE_FEATURES"]

#: Pooled features ``ToDHT`` can put into ``x`` (concatenated in the order asked), with
#: their widths (C = image channels): 'color' the mean colour (C), 'std' the per-channel
#: standard deviation of the colour (C), 'size' the token's share of the image's pixels
#: (1), 'centroid' the mean (row, col) divided by (H, W) (2), 'bbox' the inclusive box
#: (ymin, xmin, ymax, xmax) divided by (H, W) (4).
NODE_FEATURES = ("color", "std", "size", "centroid", "bbox")

# Attributes of an input Data that hold the image (ToSLIC's add_img layout is (1, C, H, W)).
_IMAGE_KEYS = ("img", "image")


def _check_node_features(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(value)
    except TypeError:
        names = None
    if not names or any(not isinstance(n, str) or n not in NODE_FEATURES for n in names) \
            or len(set(names)) != len(names):
        raise ValueError(f"Expected 'node_features' to be distinct names from {NODE_FEATURES} "
                         f"(got {value!r})")
    return names


class ToDHT(BaseTransform):
    """Convert an image to the region graph of its dHT tokens (the role of PyG's ``ToSLIC``).

    Parameters
    ----------
    max_tokens : int, optional
        Exact token budget (``min(K, max_tokens)`` tokens); default: as many as the
        information criterion selects.
    add_seg : bool, default False
        Add ``seg`` (1, H, W), the token of every pixel (LongTensor, values 0..K−1).
    add_img : bool, default False
        Add ``img`` (1, C, H, W), the image as float in [0, 1].
    node_features : str or sequence of str, default ('color',)
        What ``x`` holds, concatenated in this order; names in :data:`NODE_FEATURES`.
    **options
        :func:`dhtgraph.tokenize` options (any :class:`dhtgraph.nn.DHTConfig` field:
        ``iota``, ``criterion``, ``compactness``, ``min_blocks``, ...); validated here.

    Returns (of ``__call__``)
    -------------------------
    torch_geometric.data.Data
        ``x`` (K, F) float32, ``pos`` (K, 2) token centroids **(row, col)** in pixels (the
        library's convention; ``ToSLIC`` stores (x, y): use ``pos.flip(-1)``),
        ``edge_index`` (2, E) region adjacency (4-neighbour pixels, both directions,
        coalesced, no self-loops), ``num_nodes`` K, ``sizes`` (K,) pixels per token, and
        ``seg`` / ``img`` when asked. A ``Data`` input keeps its other attributes (``y``
        ...); its image is read from ``img`` or ``image`` (which are not copied unless
        ``add_img``).

    Raises
    ------
    TypeError
        For an unknown option (named in the message).
    ValueError
        For an option value out of range, or an input holding more than one image.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.transforms import Compose
    >>> data = Compose([ToDHT(max_tokens=8)])(torch.rand(3, 16, 16))
    >>> data.num_nodes <= 8
    True
    """

    def __init__(self, max_tokens: Optional[int] = None, *, add_seg: bool = False,
                 add_img: bool = False, node_features: Sequence[str] = ("color",),
                 **options: Any):
        check_config_options(options, "ToDHT")
        for name, value in _NEEDS_WEIGHTS.items():
            if name in options and options[name] == value:
                raise ValueError(f"Expected ToDHT option '{name}' to be an encoder-free "
                                 f"setting (got {options[name]!r}, which needs trained weights)")
        # Validate the values now (the channel count is only known per image).
        DHTConfig.preset("recommended", **options)
        for flag, value in (("add_seg", add_seg), ("add_img", add_img)):
            if not isinstance(value, bool):
                raise TypeError(f"Expected '{flag}' to be a bool (got {type(value).__name__})")
        self.max_tokens = check_max_tokens(max_tokens)
        self.add_seg = add_seg
        self.add_img = add_img
        self.node_features = _check_node_features(node_features)
        self.options = dict(options)

    def _image(self, data: Any) -> tuple[Tensor, Any]:
        from torch_geometric.data.data import BaseData

        if isinstance(data, BaseData):
            for key in _IMAGE_KEYS:
                if key in data:
                    return data[key], data
            raise ValueError(f"Expected the Data to hold its image in one of {_IMAGE_KEYS} "
                             f"(got attributes {sorted(data.keys())})")
        return data, None

    def forward(self, data: Any):
        """Tokenize one image (Tensor (C, H, W) / (1, C, H, W), array, PIL image, or a
        ``Data`` with ``img``) and return its region graph."""
        from torch_geometric.data import Data

        raw, source = self._image(data)
        images = as_image_tensor(raw)
        if images.shape[0] != 1:
            raise ValueError(f"Expected one image per call (got a batch of {images.shape[0]}): "
                             "ToDHT transforms one sample at a time")
        _, c, h, w = images.shape
        tokens = tokenize(images, self.max_tokens, **self.options)
        partition = tokens.partition
        pixels = images[0].permute(1, 2, 0).reshape(h * w, c)
        rows, cols = grid_coordinates(h, w, 1, device=images.device)
        pos = torch.stack([rows, cols], dim=1)
        regions = pool_regions(partition, pixels, pos=pos)
        scale = torch.tensor([h, w], dtype=torch.float32, device=images.device)
        parts = []
        for name in self.node_features:
            if name == "color":
                parts.append(regions.features)
            elif name == "std":
                second = pool_regions(partition, pixels * pixels).features
                parts.append((second - regions.features.pow(2)).clamp_min(0).sqrt())
            elif name == "size":
                parts.append(regions.sizes.to(torch.float32).unsqueeze(1) / (h * w))
            elif name == "centroid":
                parts.append(regions.centroids / scale)
            else:
                parts.append(regions.bbox.to(torch.float32) / scale.repeat(2))
        out = Data(x=torch.cat(parts, dim=1), pos=regions.centroids,
                   edge_index=tokens.edge_index, num_nodes=partition.num_blocks)
        out.sizes = regions.sizes
        if self.add_seg:
            out.seg = partition.labels.view(1, h, w)
        if self.add_img:
            out.img = images
        if source is not None:
            for key, value in source.items():
                if key not in _IMAGE_KEYS and key not in out:
                    out[key] = value
        return out

    def __repr__(self) -> str:
        args = [f"max_tokens={self.max_tokens}", f"add_seg={self.add_seg}",
                f"add_img={self.add_img}", f"node_features={self.node_features}"]
        args += [f"{k}={v!r}" for k, v in sorted(self.options.items())]
        return f"{self.__class__.__name__}({', '.join(args)})"

