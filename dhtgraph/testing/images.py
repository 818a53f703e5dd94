"""Strategies for images in every layout :func:`dhtgraph.from_image` accepts.

Sizes are small (sides 1..``max_side``, including 1×1 images) so that properties over
pixel graphs stay fast; values are finite and in range for their dtype.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["image_shapes", "numpy_images", "torch_images", "images"]

NumpyLayout = Literal["HW", "HWC", "BHWC"]
_NUMPY_LAYOUTS = ("HW", "HWC", "BHWC")
_NUMPY_DTYPES = (np.uint8, np.float32, np.float64)
_TORCH_DTYPES = (torch.float32, torch.float64, torch.uint8)


def _check_bounds(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Expected '{name}' to be an int >= {low} (got {value!r})")
    return value


@st.composite
def image_shapes(
    draw,
    *,
    batched: bool | None = None,
    max_side: int = 6,
    max_channels: int = 4,
    max_images: int = 3,
) -> tuple[int, int, int, int]:
    """Shapes ``(B, C, H, W)`` of small images.

    Parameters
    ----------
    batched : bool, optional
        ``False`` forces ``B = 1``; ``True`` draws ``B`` in ``1..max_images``; ``None``
        (default) draws either.
    max_side : int, default 6
        Largest ``H`` and ``W``; the smallest is 1 (a 1×1 image is valid).
    max_channels : int, default 4
        Largest ``C``; the smallest is 1.
    max_images : int, default 3
        Largest ``B`` for batched shapes.

    Returns
    -------
    SearchStrategy of tuple (B, C, H, W)
        Shrinks towards ``(1, 1, 1, 1)``.
    """
    _check_bounds("max_side", max_side, 1)
    _check_bounds("max_channels", max_channels, 1)
    _check_bounds("max_images", max_images, 1)
    if batched is None:
        batched = draw(st.booleans())
    b = draw(st.integers(1, max_images)) if batched else 1
    c = draw(st.integers(1, max_channels))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    return b, c, h, w


def _arrays(dtype: np.dtype, shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    # Unsigned integers over their whole range, floats in [0, 1] at their own width.
    if dtype.kind == "u":
        elements = st.integers(0, np.iinfo(dtype).max)
    else:
        elements = st.floats(0.0, 1.0, width=32 if dtype.itemsize <= 4 else 64)
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def numpy_images(
    draw,
    *,
    layout: NumpyLayout | None = None,
    dtype: np.dtype | type | None = None,
    max_side: int = 6,
    max_channels: int = 4,
    max_images: int = 3,
) -> np.ndarray:
    """Numpy images: ``(H, W)``, ``(H, W, C)`` or ``(B, H, W, C)``.

    Parameters
    ----------
    layout : {'HW', 'HWC', 'BHWC'}, optional
        The array layout; drawn when ``None``.
    dtype : numpy dtype, optional
        ``uint8`` (values 0..255), ``float32`` or ``float64`` (values in [0, 1]); drawn
        among these when ``None``.
    max_side, max_channels, max_images : int
        Size bounds, as in :func:`image_shapes`.

    Returns
    -------
    SearchStrategy of numpy.ndarray
        Finite values; shrinks towards a 1×1 black image.
    """
    if layout is None:
        layout = draw(st.sampled_from(_NUMPY_LAYOUTS))
    elif layout not in _NUMPY_LAYOUTS:
        raise ValueError(f"Expected 'layout' to be one of {_NUMPY_LAYOUTS} (got {layout!r})")
    dtype = np.dtype(draw(st.sampled_from(_NUMPY_DTYPES)) if dtype is None else dtype)
    if dtype.kind not in "uf":
        raise ValueError(f"Expected 'dtype' to be an unsigned integer or float dtype (got {dtype})")
    b, c, h, w = draw(image_shapes(batched=layout == "BHWC", max_side=max_side,
                                   max_channels=max_channels, max_images=max_images))
    shape = {"HW": (h, w), "HWC": (h, w, c), "BHWC": (b, h, w, c)}[layout]
    return draw(_arrays(dtype, shape))


@st.composite
def torch_images(
    draw,
    *,
    batched: bool | None = None,
    dtype: torch.dtype | None = None,
    max_side: int = 6,
    max_channels: int = 4,
    max_images: int = 3,
) -> torch.Tensor:
    """Torch images: ``(C, H, W)`` or, batched, ``(B, C, H, W)``.

    Parameters
    ----------
    batched : bool, optional
        Whether the tensor has the batch dimension; drawn when ``None``. A batched
        tensor may have ``B = 1``.
    dtype : torch.dtype, optional
        ``float32`` or ``float64`` (values in [0, 1]) or ``uint8``; drawn among these when
        ``None``.
    max_side, max_channels, max_images : int
        Size bounds, as in :func:`image_shapes`.

    Returns
    -------
    SearchStrategy of Tensor of shape (C, H, W) or (B, C, H, W)
    """
    if batched is None:
        batched = draw(st.booleans())
    dtype = draw(st.sampled_from(_TORCH_DTYPES)) if dtype is None else dtype
    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"Expected 'dtype' to be one of {_TORCH_DTYPES} (got {dtype})")
    b, c, h, w = draw(image_shapes(batched=batched, max_side=max_side,
                                   max_channels=max_channels, max_images=max_images))
    np_dtype = {torch.float32: np.float32, torch.float64: np.float64, torch.uint8: np.uint8}[dtype]
    shape = (b, c, h, w) if batched else (c, h, w)
    return torch.from_numpy(draw(_arrays(np.dtype(np_dtype), shape)))


def images(
    *,
    batched: bool | None = None,
    max_side: int = 6,
    max_channels: int = 4,
    max_images: int = 3,
) -> st.SearchStrategy:
    """Any image input that :func:`dhtgraph.from_image` accepts (numpy or torch).

    Parameters
    ----------
    batched : bool, optional
        ``True``: only batched layouts (``(B, C, H, W)`` tensors, ``(B, H, W, C)`` arrays);
        ``False``: only single images; ``None`` (default): both.
    max_side, max_channels, max_images : int
        Size bounds, as in :func:`image_shapes`.

    Returns
    -------
    SearchStrategy of Tensor or numpy.ndarray
        Use :func:`dhtgraph.graph.as_image_tensor` to read its ``(B, C, H, W)`` shape.
    """
    sizes = dict(max_side=max_side, max_channels=max_channels, max_images=max_images)
    layouts = {None: _NUMPY_LAYOUTS, True: ("BHWC",), False: ("HW", "HWC")}[batched]
    return st.one_of(
        torch_images(batched=batched, **sizes),
        st.sampled_from(layouts).flatmap(lambda layout: numpy_images(layout=layout, **sizes)),
    )
