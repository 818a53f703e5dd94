"""Pixel adjacency graphs: an image becomes a PyG ``Data`` graph.

Node ``b·H·W + y·W + x`` is the pixel at row ``y``, column ``x`` of image ``b``
(row-major per image, images concatenated; spec §1). Edges join 4-neighbours (or
8-neighbours) and are stored in PyG convention: both directions, coalesced, no
self-loops. Images never share an edge.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .. import _native
from .._checks import check_count

__all__ = ["from_image", "grid_edge_index", "as_image_tensor", "ImageRangeWarning",
           "MAX_IMAGE_CHANNELS", "FLOAT_RANGE_LIMIT"]

Connectivity = Literal[4, 8]
_CONNECTIVITIES = (4, 8)
# Neighbour offsets (dy, dx), listed in increasing node-id order so that the edge list
# comes out sorted by (source, target) without a sort.
_OFFSETS = {
    4: ((-1, 0), (0, -1), (0, 1), (1, 0)),
    8: ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
}
_UINT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_TORCH_UINT_SCALE = {torch.uint8: 255.0, torch.uint16: 65535.0}
_PIL_MODES_KEPT = ("L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B")
#: PIL's 32-bit modes 'I' and 'F' are on the 8-bit scale of the modes they convert from.
PIL_32BIT_SCALE = 255.0
#: Images have 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) channels; more, in the
#: position of the channel axis, is refused unless ``channels_last`` is given.
MAX_IMAGE_CHANNELS = 4
#: Float images are expected in [0, 1]; values beyond ±8 warn (a forgotten ``/ 255``),
#: leaving room for normalised images (ImageNet mean/std gives -2.2..2.7).
FLOAT_RANGE_LIMIT = 8.0
AlphaMode = Literal["premultiplied", "straight"]
_ALPHA_MODES = ("premultiplied", "straight")


class ImageRangeWarning(UserWarning):
    """Float image values far outside [0, 1], or a PIL image whose scale is ambiguous."""


def _warn(message: str) -> None:
    """Warn with the location of the first caller outside the dhtgraph package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, ImageRangeWarning, stacklevel=level)


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
    """Pixels of a PIL image at their full depth, as uint8, uint16 or float32 in [0, 1].

    Each mode maps to [0, 1] by its real range (the module's "PIL modes" notes): 8-bit modes
    stay uint8 (÷255 later), 16-bit grey (``I;16*``) stays uint16 (÷65535 later), and the
    32-bit modes ``I`` and ``F`` are on PIL's own 8-bit scale (``convert('I')`` and
    ``convert('F')`` of an ``L`` image keep its values 0..255, ``convert('L')`` reads them
    back), so they are divided by 255 here. Palette images become RGBA when they have a
    transparent colour, every other mode RGB.
    """
    if pil.mode in ("I", "F"):
        array = np.asarray(pil, dtype=np.float64)
        lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if pil.mode == "I" and (lo < 0 or hi > PIL_32BIT_SCALE):
            raise ValueError(
                f"Expected 'image' in PIL mode 'I' to hold values on PIL's 8-bit scale "
                f"0..255 (got {lo:g}..{hi:g}): for 16-bit data pass image.convert('I;16'), "
                "or pass a numpy array scaled to [0, 1]")
        if pil.mode == "F" and np.isfinite(array).all() and lo >= 0 and hi <= 1 \
                and not np.array_equal(array, np.rint(array)):
            _warn(
                "PIL mode 'F' images are read on PIL's 8-bit scale (values / 255), but this "
                "one holds fractional values in [0, 1]: if they already are intensities in "
                "[0, 1], pass np.asarray(image) instead of the PIL image (or file)")
        return (array / PIL_32BIT_SCALE).astype(np.float32)
    if pil.mode not in _PIL_MODES_KEPT:
        has_alpha = pil.mode in ("PA", "La") or (pil.mode == "P" and "transparency" in pil.info)
        pil = pil.convert("RGBA" if has_alpha else "RGB")
    array = np.asarray(pil)
    return array.astype(np.uint16) if array.dtype.kind == "u" and array.itemsize == 2 else array


def _check_channels_last(channels_last: Any) -> bool | None:
    if channels_last is None or isinstance(channels_last, (bool, np.bool_)):
        return None if channels_last is None else bool(channels_last)
    raise TypeError("Expected 'channels_last' to be True, False or None "
                    f"(got {type(channels_last).__name__} {channels_last!r})")


def _refuse_many_channels(shape: tuple, channels: int, layout: str, other: str,
                          other_value: bool, this_value: bool, height: int, width: int) -> None:
    raise ValueError(
        f"Expected 'image' in {layout} layout with 1 to {MAX_IMAGE_CHANNELS} channels (got shape "
        f"{shape}, read as a {height}×{width} image with {channels} channels): for a {other} "
        f"image pass channels_last={other_value}; to use all {channels} channels pass "
        f"channels_last={this_value}")


def _numpy_to_tensor(array: np.ndarray, channels_last: bool | None) -> Tensor:
    given = tuple(array.shape)
    if array.ndim == 2:
        array = array[None, :, :, None]
    elif array.ndim in (3, 4):
        if array.ndim == 3:
            array = array[None]
        if channels_last is False:
            array = np.moveaxis(array, 1, -1)  # (B, C, H, W) -> (B, H, W, C)
        elif channels_last is None and array.shape[-1] > MAX_IMAGE_CHANNELS:
            layout, other = ("(H, W, C)", "(C, H, W)") if len(given) == 3 else \
                ("(B, H, W, C)", "(B, C, H, W)")
            _refuse_many_channels(given, array.shape[-1], layout, other, False, True,
                                  array.shape[1], array.shape[2])
    else:
        raise ValueError("Expected 'image' array to have 2 (H, W), 3 (H, W, C) or 4 "
                         f"(B, H, W, C) dimensions (got {array.ndim})")
    dtype = array.dtype
    if dtype in _UINT_SCALE:
        values = np.ascontiguousarray(array).astype(np.float32)
        tensor = torch.from_numpy(np.divide(values, np.float32(_UINT_SCALE[dtype]), out=values))
    elif dtype.kind == "f":
        tensor = torch.from_numpy(np.array(array, dtype=np.float32, order="C"))  # a writable copy
    else:
        raise TypeError("Expected 'image' array to have dtype uint8, uint16 or float "
                        f"(got {dtype}); convert it, e.g. image.astype(np.float32)")
    return tensor.permute(0, 3, 1, 2)


def _torch_to_tensor(tensor: Tensor, channels_last: bool | None) -> Tensor:
    if tensor.device.type == "meta":
        raise ValueError("Expected 'image' to hold pixel values (got a tensor on the 'meta' "
                         "device, which has none): create it on a real device, e.g. 'cpu'")
    given = tuple(tensor.shape)
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(0)
    elif tensor.dim() != 4:
        layout = "3 (H, W, C) or 4 (B, H, W, C)" if channels_last else "3 (C, H, W) or 4 (B, C, H, W)"
        raise ValueError(f"Expected 'image' tensor to have {layout} dimensions (got {tensor.dim()})")
    if channels_last:
        tensor = tensor.permute(0, 3, 1, 2)
    elif channels_last is None and tensor.shape[1] > MAX_IMAGE_CHANNELS:
        layout, other = ("(C, H, W)", "(H, W, C)") if len(given) == 3 else \
            ("(B, C, H, W)", "(B, H, W, C)")
        _refuse_many_channels(given, tensor.shape[1], layout, other, True, False,
                              tensor.shape[2], tensor.shape[3])
    if tensor.dtype in _TORCH_UINT_SCALE:
        # In place on the fresh float32 copy (one allocation): the same float32 division.
        return tensor.float().div_(_TORCH_UINT_SCALE[tensor.dtype])
    if not tensor.dtype.is_floating_point:
        raise TypeError("Expected 'image' tensor to have a float, uint8 or uint16 dtype "
                        f"(got {tensor.dtype})")
    return tensor.float()


def _apply_alpha(tensor: Tensor, alpha: str) -> Tensor:
    """Colours premultiplied by alpha for grey+alpha (C = 2) and RGBA (C = 4) images."""
    if alpha == "straight" or tensor.shape[1] not in (2, 4):
        return tensor
    weight = tensor[:, -1:].clamp(0.0, 1.0)
    return torch.cat([tensor[:, :-1] * weight, tensor[:, -1:]], dim=1)


def as_image_tensor(image: Any, *, channels_last: bool | None = None,
                    alpha: AlphaMode = "premultiplied") -> Tensor:
    """Convert any supported image input to a float32 batch.

    Parameters
    ----------
    image : Tensor, ndarray, PIL.Image or path
        - ``torch.Tensor`` of shape (C, H, W) or (B, C, H, W), float, uint8 or uint16;
        - ``numpy.ndarray`` of shape (H, W), (H, W, C) or (B, H, W, C), uint8, uint16
          or float;
        - a ``PIL.Image.Image`` (palette and other modes are converted to RGB);
        - a path (``str`` or ``os.PathLike``) to an image file.
        Integer images are mapped to [0, 1] by their dtype's range (÷255, ÷65535); float
        values are kept as they are and should lie in [0, 1] (see Warns). PIL modes: see
        the notes.
    channels_last : bool, optional
        The channel axis. ``None`` (default): tensors are channels-first, arrays
        channels-last, and more than :data:`MAX_IMAGE_CHANNELS` channels is refused as a
        probable layout mistake (``torch.rand(64, 64, 3)`` would otherwise be a 64×3 image
        with 64 channels). ``True``: (H, W, C) / (B, H, W, C) for tensors and arrays alike;
        ``False``: (C, H, W) / (B, C, H, W) for both. Either explicit value accepts any
        channel count. PIL images and files are channels-last: ``False`` is refused.
    alpha : {"premultiplied", "straight"}, default "premultiplied"
        Images with 2 channels are grey+alpha and with 4 channels RGBA (PIL's, PNG's and
        :func:`dhtgraph.to_svg`'s convention). ``"premultiplied"``: the colour channels are
        multiplied by alpha (clipped to [0, 1]) and alpha stays the last channel, a feature
        of weight 1 like each colour. Fully transparent pixels then all read (0, …, 0)
        whatever their hidden colour, and a block's mean colour divided by its mean alpha
        is the alpha-weighted colour that :func:`dhtgraph.to_svg` fills it with.
        ``"straight"``: every channel as given (e.g. for 4-band data that is not RGBA).

    Returns
    -------
    Tensor of shape (B, C, H, W), float32
        On the input tensor's device (CPU otherwise); keeps ``requires_grad``.

    Raises
    ------
    TypeError
        For an unsupported type or dtype (bool, complex, object, other integers).
    ValueError
        For a wrong number of dimensions, more than 4 channels without ``channels_last``,
        a zero-sized side, NaN or infinite values, a meta tensor, or a file that is not an
        image. ``FileNotFoundError`` for a missing path.

    Warns
    -----
    ImageRangeWarning
        For float input with values outside [-:data:`FLOAT_RANGE_LIMIT`,
        :data:`FLOAT_RANGE_LIMIT`] (typically 0..255 without ``/ 255``): the tokens would
        not follow the documented [0, 1] scale. Divide by 255 (or pass uint8). Normalised
        images (e.g. ImageNet mean/std, within ±2.7) do not warn.

    Notes
    -----
    PIL modes map to [0, 1] by their real range: ``1``, ``L``, ``LA``, ``P``, ``RGB``,
    ``RGBA`` (and other 8-bit modes, converted to RGB/RGBA) ÷255; ``I;16``, ``I;16L``,
    ``I;16B`` ÷65535; ``I`` and ``F`` are PIL's 32-bit modes on PIL's 8-bit scale (what
    ``convert('I')``/``convert('F')`` give for an ``L`` image), ÷255 — ``I`` outside
    0..255 is refused (convert it to ``I;16``), ``F`` with fractional values in [0, 1]
    warns (pass ``np.asarray(image)`` to take such values as they are).
    """
    channels_last = _check_channels_last(channels_last)
    if alpha not in _ALPHA_MODES:
        raise ValueError(f"Expected 'alpha' to be one of {_ALPHA_MODES} (got {alpha!r})")
    if isinstance(image, (str, os.PathLike)) or _is_pil_image(image):
        if channels_last is False:
            raise ValueError("Expected 'channels_last' to be None or True for a PIL image or "
                             "an image file (got False): their pixels are always (H, W, C)")
        image = _read_image_file(image) if not _is_pil_image(image) else _pil_to_array(image)
    if isinstance(image, np.ndarray):
        tensor = _numpy_to_tensor(image, channels_last)
    elif isinstance(image, Tensor):
        float_input = image.dtype.is_floating_point
        tensor = _torch_to_tensor(image, channels_last)
    else:
        raise TypeError("Expected 'image' to be a torch.Tensor, numpy.ndarray, PIL.Image or "
                        f"a path (got {_describe(image)})")
    if isinstance(image, np.ndarray):
        float_input = image.dtype.kind == "f"
    if min(tensor.shape) == 0:
        raise ValueError("Expected 'image' to have non-empty sides (got shape "
                         f"{tuple(tensor.shape)} as (B, C, H, W))")
    lo, hi = torch.stack(torch.aminmax(tensor.detach())).tolist()  # one host sync
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("Expected 'image' to hold finite values (got NaN or inf)")
    if float_input and (lo < -FLOAT_RANGE_LIMIT or hi > FLOAT_RANGE_LIMIT):
        _warn(
            f"Expected float 'image' values in [0, 1] (got {lo:g}..{hi:g}): 8-bit values "
            "need '/ 255' (or pass the uint8 image itself); results are computed on the "
            "values as given")
    return _apply_alpha(tensor, alpha)


def from_image(image: Any, *, connectivity: Connectivity = 4, channels_last: bool | None = None,
               alpha: AlphaMode = "premultiplied") -> "torch_geometric.data.Data":  # noqa: F821
    """Build the pixel adjacency graph of an image (or a batch of images).

    Parameters
    ----------
    image : Tensor, ndarray, PIL.Image or path
        See :func:`as_image_tensor` for the accepted shapes, dtypes and value ranges.
        Unbatched inputs ((C, H, W) tensors, (H, W[, C]) arrays, PIL images, paths) give
        one graph; batched inputs (4-dimensional tensors and arrays) give B disjoint
        graphs in one ``Data`` with a ``batch`` vector.
    connectivity : {4, 8}, default 4
        Pixel neighbourhood (theory/ Definition 1).
    channels_last : bool, optional
        The channel axis (see :func:`as_image_tensor`): ``None`` refuses more than 4
        channels as a probable layout mistake.
    alpha : {"premultiplied", "straight"}, default "premultiplied"
        How 2-channel (grey+alpha) and 4-channel (RGBA) images are read (see
        :func:`as_image_tensor`).

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
    tensor = as_image_tensor(image, channels_last=channels_last, alpha=alpha)
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


def _pair_keys(labels: Tensor, num_images: int, height: int, width: int, k: int,
               key_dtype: torch.dtype) -> Tensor:
    """Keys ``lo·k + hi`` of the label pairs of the 4-neighbour pixel edges whose labels
    differ, one direction each, with the repeats a grid scan gives for free removed.

    A horizontal edge repeats the pair of the edge above it on a vertical boundary, a
    vertical edge the pair of the edge to its left on a horizontal one: those are
    dropped before the sort (more than half of the pairs at the first level). The
    remaining keys still hold repeats; the caller's ``unique`` removes them.
    """
    grid = labels.view(num_images, height, width).to(key_dtype)
    pieces = []
    for first, second, along in ((grid[:, :, :-1], grid[:, :, 1:], 1),
                                 (grid[:, :-1, :], grid[:, 1:, :], 2)):
        if first.numel() == 0:
            continue
        keep = first != second
        lo = torch.minimum(first, second)
        key = lo.mul_(k).add_(torch.maximum(first, second))
        # The same pair as the previous edge along the boundary: a repeat.
        repeat = key.narrow(along, 1, key.shape[along] - 1) == key.narrow(along, 0, key.shape[along] - 1)
        keep.narrow(along, 1, key.shape[along] - 1).logical_and_(repeat.logical_not_())
        del repeat
        pieces.append(key[keep])
        del keep, key
    if not pieces:
        return labels.new_empty(0, dtype=key_dtype)
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def _counts(index: Tensor, size: int) -> Tensor:
    """``bincount(index, minlength=size)`` as int64 without a host sync (CUDA's bincount reads
    the maximum)."""
    return torch.zeros(size, dtype=torch.long, device=index.device).index_add_(
        0, index, torch.ones((), dtype=torch.long, device=index.device).expand(index.numel()))


def grid_quotient(labels: Tensor, num_blocks: int, num_images: int, height: int, width: int,
                  *, loops: bool = False) -> Tensor:
    """Quotient of the 4-neighbour grid graph by ``labels``, coalesced, both directions.

    Equals ``Partition(labels).quotient(grid_edge_index(height, width, num_images))``
    (no self-loops) for canonical ``labels`` (B·H·W,) with ``num_blocks`` blocks, without
    building the pixel edge list. With ``loops=True`` a self-loop ``(v, v)`` is added for
    **every** block (correct when every block holds a grid edge, e.g. after a full
    contraction of the pixels).

    Notes
    -----
    One ``unique`` (a sort) of the block pairs found on the grid (32-bit keys when
    ``num_blocks² < 2³¹``) gives the undirected edges ``lo < hi`` sorted by
    ``(lo, hi)``; the directed list is then laid out in closed form: a block ``v``'s
    row holds its lower neighbours (sorted: one stable sort of the ``hi`` ends),
    its loop, then its higher neighbours, at offsets from the degree counts — no sort
    of the directed list. Host syncs: the ``unique`` and two boolean selections.

    On the CPU with the native kernels (:mod:`dhtgraph._native`), one scan of the pixels
    (after the labels' range check) gives the same list without a sort (a counting sort
    of the block pairs and a deduplicating walk, :func:`dhtgraph._native.edges.grid_quotient`).

    Raises
    ------
    TypeError, ValueError
        For a ``num_blocks`` that is not a non-negative int (on both paths).
    """
    num_blocks = check_count(num_blocks, "num_blocks")
    # Integer labels only (as_indices): other dtypes get the tensor path's result.
    if _native.enabled("edges", labels) and _native.as_indices(labels=labels) is not None:
        from .._native.edges import grid_quotient as native

        return native(labels, num_blocks, num_images, height, width, loops=loops)
    k = max(int(num_blocks), 1)
    device = labels.device
    key_dtype = torch.int32 if k * k < 2**31 else torch.long
    undirected = torch.unique(_pair_keys(labels, num_images, height, width, k, key_dtype))
    lo = torch.div(undirected, k, rounding_mode="floor")
    hi = undirected.sub_(lo * k)
    del undirected
    lo, hi = lo.long(), hi.long()  # the output's dtype (no conversions further on)
    num_loops = int(num_blocks) if loops else 0
    num_edges = lo.numel()
    count_up = _counts(lo, k)  # higher neighbours of each block
    count_down = _counts(hi, k)  # lower neighbours
    row = count_up + count_down
    if loops:
        row += 1
    # Exclusive prefix sums: where each block's row starts, and where each block's
    # higher neighbours start in the (lo, hi)-sorted undirected list.
    start = torch.cumsum(row, 0).sub_(row)
    del row
    first_up = torch.cumsum(count_up, 0).sub_(count_up)
    del count_up
    rank = torch.arange(num_edges, device=device)
    out = torch.empty((2, 2 * num_edges + num_loops), dtype=torch.long, device=device)
    # Higher neighbours: after the lower ones and the loop, in (lo, hi) order.
    base = start + count_down
    if loops:
        base += 1
    position = base.index_select(0, lo).add_(rank).sub_(first_up.index_select(0, lo))
    del base, first_up
    out[0].index_copy_(0, position, lo)
    out[1].index_copy_(0, position, hi)
    # Lower neighbours: the edges grouped by hi, lo ascending within (a stable sort).
    hi_sorted, order = torch.sort(hi, stable=True)
    lo_sorted = lo.index_select(0, order)
    del order, lo, hi
    first_down = torch.cumsum(count_down, 0).sub_(count_down)
    position = start.index_select(0, hi_sorted).add_(rank).sub_(first_down.index_select(0, hi_sorted))
    del rank, first_down
    out[0].index_copy_(0, position, hi_sorted)
    out[1].index_copy_(0, position, lo_sorted)
    del position, hi_sorted, lo_sorted
    if loops:
        block = torch.arange(num_loops, device=device)
        position = start[:num_loops].add_(count_down[:num_loops])
        out[0].index_copy_(0, position, block)
        out[1].index_copy_(0, position, block)
    return out
