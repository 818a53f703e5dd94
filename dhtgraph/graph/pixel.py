"""Pixel adjacency graphs: an image becomes a PyG ``Data`` graph.

Node ``b·H·W + y·W + x`` is the pixel at row ``y``, column ``x`` of image ``b``
(row-major per image, images concatenated; spec §1). Edges join 4-neighbours (or
8-neighbours) and are stored in PyG convention: both directions, coalesced, no
self-loops. Images never share an edge.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .._checks import check_count

__all__ = ["from_image", "grid_edge_index", "as_image_tensor"]

Connectivity = Literal[4, 8]
_CONNECTIVITIES = (4, 8)
# Neighbour offsets (dy, dx), listed in increasing node-id order so that the edge list
# comes out sorted by (source, target) without a sort.
_OFFSETS = {
    4: ((-1, 0), (0, -1), (0, 1), (1, 0)),
    8: ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
}
_UINT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_PIL_MODES_KEPT = ("L", "LA", "RGB", "RGBA", "F", "I;16", "I;16L", "I;16B")


def _check_connectivity(connectivity: Any) -> int:
    if isinstance(connectivity, bool) or connectivity not in _CONNECTIVITIES:
        raise ValueError(f"Expected 'connectivity' to be 4 or 8 (got {connectivity!r})")
    return int(connectivity)


def grid_coordinates(height: int, width: int, num_images: int = 1, *,
                     dtype: torch.dtype = torch.long,
                     device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Row and column of every node of ``num_images`` row-major ``height × width`` grids.

    Returns
    -------
    row, col : Tensor of shape (B·H·W,), ``dtype``
        Node ``b·H·W + y·W + x`` has row ``y`` and column ``x``.
    """
    node = torch.arange(num_images * height * width, dtype=dtype, device=device)
    col = node % width
    row = node.div_(width, rounding_mode="floor").remainder_(height)
    return row, col


def grid_edge_index(
    height: int,
    width: int,
    num_images: int = 1,
    connectivity: Connectivity = 4,
    device: torch.device | str | None = None,
) -> Tensor:
    """Edges of ``num_images`` disjoint ``height × width`` grid graphs.

    Parameters
    ----------
    height, width : int
        H and W, both ≥ 1.
    num_images : int, default 1
        B; image ``b`` owns nodes ``b·H·W … (b+1)·H·W − 1``.
    connectivity : {4, 8}, default 4
        4: horizontal and vertical neighbours; 8: diagonals too.
    device : torch.device, optional

    Returns
    -------
    LongTensor of shape (2, E)
        Both directions, sorted by (source, target), no duplicates, no self-loops.
        For 4-connectivity ``E = 2·B·(2HW − H − W)``; for 8-connectivity
        ``E = 2·B·(4HW − 3H − 3W + 2)``.
    """
    connectivity = _check_connectivity(connectivity)
    height = check_count(height, "height", minimum=1)
    width = check_count(width, "width", minimum=1)
    num_images = check_count(num_images, "num_images", minimum=1)
    n = num_images * height * width
    node = torch.arange(n, device=device)
    y, x = grid_coordinates(height, width, num_images, device=device)
    sources, targets = [], []
    for dy, dx in _OFFSETS[connectivity]:
        ok = (y + dy >= 0) & (y + dy < height) & (x + dx >= 0) & (x + dx < width)
        sources.append(torch.where(ok, node, -1))
        targets.append(node + (dy * width + dx))
    # (n, k) candidates, row-major: sorted by source, then by target offset.
    src = torch.stack(sources, dim=1).reshape(-1)
    dst = torch.stack(targets, dim=1).reshape(-1)
    keep = src >= 0
    return torch.stack([src[keep], dst[keep]])


def _describe(image: Any) -> str:
    if isinstance(image, (Tensor, np.ndarray)):
        return f"{type(image).__name__} of shape {tuple(image.shape)} and dtype {image.dtype}"
    return type(image).__name__


def _is_pil_image(image: Any) -> bool:
    pil = sys.modules.get("PIL.Image")  # never import PIL just to check
    return pil is not None and isinstance(image, pil.Image)


def _read_image_file(path: str | os.PathLike) -> np.ndarray:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Expected 'image' to be an existing image file (got {path!r}: "
                                "no such file)")
    if os.path.isdir(path):
        raise ValueError(f"Expected 'image' to be an image file (got {path!r}, a directory)")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as pil:
            pil.load()
            return _pil_to_array(pil)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"Expected 'image' to be a readable image file (got {path!r}: {err})") from err


def _pil_to_array(pil: Any) -> np.ndarray:
    """Pixels of a PIL image at their full depth.

    8-bit grey/RGB(A) and grey+alpha are kept, 16-bit grey stays uint16, 32-bit float ('F')
    stays float; 32-bit integer grey ('I') is read as uint16 when its values fit, palette
    images become RGBA when they have a transparent colour, everything else RGB.
    """
    if pil.mode == "I":
        array = np.asarray(pil)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError("Expected 'image' file with 32-bit integer pixels in 0..65535 "
                             f"(got {array.min()}..{array.max()}); convert it to 16-bit or float")
        return array.astype(np.uint16)
    if pil.mode not in _PIL_MODES_KEPT:
        has_alpha = pil.mode in ("PA", "La") or (pil.mode == "P" and "transparency" in pil.info)
        pil = pil.convert("RGBA" if has_alpha else "RGB")
    array = np.asarray(pil)
    return array.astype(np.uint16) if array.dtype.kind == "u" and array.itemsize == 2 else array


def _numpy_to_tensor(array: np.ndarray) -> Tensor:
    if array.ndim == 2:
        array = array[None, :, :, None]
    elif array.ndim == 3:
        array = array[None]
    elif array.ndim != 4:
        raise ValueError("Expected 'image' array to have 2 (H, W), 3 (H, W, C) or 4 "
                         f"(B, H, W, C) dimensions (got {array.ndim})")
    dtype = array.dtype
    if dtype in _UINT_SCALE:
        tensor = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32) / _UINT_SCALE[dtype])
    elif dtype.kind == "f":
        tensor = torch.from_numpy(np.array(array, dtype=np.float32, order="C"))  # a writable copy
    else:
        raise TypeError("Expected 'image' array to have dtype uint8, uint16 or float "
                        f"(got {dtype}); convert it, e.g. image.astype(np.float32)")
    return tensor.permute(0, 3, 1, 2)


def _torch_to_tensor(tensor: Tensor) -> Tensor:
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(0)
    elif tensor.dim() != 4:
        raise ValueError("Expected 'image' tensor to have 3 (C, H, W) or 4 (B, C, H, W) "
                         f"dimensions (got {tensor.dim()})")
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.dtype.is_floating_point:
        raise TypeError(f"Expected 'image' tensor to have a float or uint8 dtype (got {tensor.dtype})")
    return tensor.float()


def as_image_tensor(image: Any) -> Tensor:
    """Convert any supported image input to a float32 batch.

    Parameters
    ----------
    image : Tensor, ndarray, PIL.Image or path
        - ``torch.Tensor`` of shape (C, H, W) or (B, C, H, W), float (or uint8);
        - ``numpy.ndarray`` of shape (H, W), (H, W, C) or (B, H, W, C), uint8, uint16
          or float;
        - a ``PIL.Image.Image`` (palette and other modes are converted to RGB);
        - a path (``str`` or ``os.PathLike``) to an image file.
        Integer images are mapped to [0, 1]; float values are kept as they are.

    Returns
    -------
    Tensor of shape (B, C, H, W), float32
        On the input tensor's device (CPU otherwise).

    Raises
    ------
    TypeError
        For an unsupported type or dtype (bool, complex, object, other integers).
    ValueError
        For a wrong number of dimensions, a zero-sized side, NaN or infinite values, or a
        file that is not an image. ``FileNotFoundError`` for a missing path.
    """
    if isinstance(image, (str, os.PathLike)):
        image = _read_image_file(image)
    elif _is_pil_image(image):
        image = _pil_to_array(image)
    if isinstance(image, np.ndarray):
        tensor = _numpy_to_tensor(image)
    elif isinstance(image, Tensor):
        tensor = _torch_to_tensor(image)
    else:
        raise TypeError("Expected 'image' to be a torch.Tensor, numpy.ndarray, PIL.Image or "
                        f"a path (got {_describe(image)})")
    if min(tensor.shape) == 0:
        raise ValueError("Expected 'image' to have non-empty sides (got shape "
                         f"{tuple(tensor.shape)} as (B, C, H, W))")
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError("Expected 'image' to hold finite values (got NaN or inf)")
    return tensor


def from_image(image: Any, *, connectivity: Connectivity = 4) -> "torch_geometric.data.Data":  # noqa: F821
    """Build the pixel adjacency graph of an image (or a batch of images).

    Parameters
    ----------
    image : Tensor, ndarray, PIL.Image or path
        See :func:`as_image_tensor` for the accepted shapes and dtypes. Unbatched
        inputs ((C, H, W) tensors, (H, W[, C]) arrays, PIL images, paths) give one
        graph; batched inputs ((B, C, H, W) tensors, (B, H, W, C) arrays) give B
        disjoint graphs in one ``Data`` with a ``batch`` vector.
    connectivity : {4, 8}, default 4
        Pixel neighbourhood (theory/ Definition 1).

    Returns
    -------
    torch_geometric.data.Data
        - ``x`` : Tensor of shape (N, C), float32 pixel values, N = B·H·W;
        - ``pos`` : Tensor of shape (N, 2), float32 (row, col);
        - ``edge_index`` : LongTensor of shape (2, E), both directions, coalesced;
        - ``batch`` : LongTensor of shape (N,), only for batched input;
        - ``image_size`` : tuple (H, W); ``num_images`` : int B.

    Examples
    --------
    >>> g = from_image(torch.rand(3, 4, 5))
    >>> g.x.shape, g.edge_index.shape
    (torch.Size([20, 3]), torch.Size([2, 62]))
    """
    from torch_geometric.data import Data

    connectivity = _check_connectivity(connectivity)
    batched = (isinstance(image, Tensor) and image.dim() == 4) or (
        isinstance(image, np.ndarray) and image.ndim == 4
    )
    tensor = as_image_tensor(image)
    b, c, h, w = tensor.shape
    device = tensor.device
    x = tensor.permute(0, 2, 3, 1).reshape(b * h * w, c)
    pos = torch.stack(grid_coordinates(h, w, b, device=device), dim=1).to(torch.float32)
    data = Data(
        x=x,
        pos=pos,
        edge_index=grid_edge_index(h, w, b, connectivity, device=device),
        image_size=(h, w),
        num_images=b,
    )
    if batched:
        data.batch = torch.arange(b, device=device).repeat_interleave(h * w)
    return data


def _grid_pairs(labels: Tensor, num_images: int, height: int, width: int, *,
                equal: bool) -> tuple[Tensor, Tensor]:
    """Label pairs of the 4-neighbour pixel edges, one direction each (internal helper).

    ``labels`` (B·H·W,) in node order. Returns ``(a, b)``: the labels of the left/upper
    and right/lower pixel of every horizontal, then vertical, edge whose labels differ
    (``equal=False``) — without building the pixel edge list.
    """
    grid = labels.view(num_images, height, width)
    pieces_a, pieces_b = [], []
    for first, second in ((grid[:, :, :-1], grid[:, :, 1:]), (grid[:, :-1, :], grid[:, 1:, :])):
        if first.numel() == 0:
            continue
        mask = first != second if not equal else first == second
        pieces_a.append(first[mask])
        pieces_b.append(second[mask])
        del mask
    if not pieces_a:
        empty = labels.new_empty(0)
        return empty, empty
    return torch.cat(pieces_a), torch.cat(pieces_b)


def grid_quotient(labels: Tensor, num_blocks: int, num_images: int, height: int, width: int,
                  *, loops: bool = False) -> Tensor:
    """Quotient of the 4-neighbour grid graph by ``labels``, coalesced, both directions.

    Equals ``Partition(labels).quotient(grid_edge_index(height, width, num_images))``
    (no self-loops) for canonical ``labels`` (B·H·W,) with ``num_blocks`` blocks, without
    building the pixel edge list. With ``loops=True`` a self-loop ``(v, v)`` is added for
    **every** block (correct when every block holds a grid edge, e.g. after a full
    contraction of the pixels).
    """
    k = max(int(num_blocks), 1)
    a, b = _grid_pairs(labels, num_images, height, width, equal=False)
    lo = torch.minimum(a, b)
    hi = torch.maximum(a, b)
    del a, b
    undirected = torch.unique(lo.long() * k + hi)
    del lo, hi
    lo = torch.div(undirected, k, rounding_mode="floor")
    hi = undirected - lo * k
    keys = [undirected, hi * k + lo]
    del undirected
    if loops:
        keys.append(torch.arange(int(num_blocks), device=labels.device) * (k + 1))
    key = torch.sort(torch.cat(keys)).values
    del keys, lo, hi
    src = torch.div(key, k, rounding_mode="floor")
    key -= src * k
    return torch.stack([src, key])
