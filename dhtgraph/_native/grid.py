"""ctypes bindings of ``grid.c`` (callers: :mod:`dhtgraph.hierarchy.grid` and
:mod:`dhtgraph.hierarchy.affinity`).

Each function returns the tensors of the tensor implementation it replaces, bit for bit
(the tests compare both paths); :func:`supports` says which inputs the kernels take.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import I64, PTR, function, pointer

__all__ = ["FEATURE_DTYPES", "supports", "grid_argmax", "grid_blocks", "grid_constant",
           "union_mass_perimeter"]

#: Feature dtypes the kernels that compare features read.
FEATURE_DTYPES = {torch.float32: "float", torch.float64: "double"}


def supports(x: Tensor) -> bool:
    """Whether ``x`` (N, d) can be read by the feature-comparing kernels: float32 or
    float64 with non-negative strides (any layout: row- or channel-major)."""
    return x.dtype in FEATURE_DTYPES and x.dim() == 2 and min(x.stride(), default=0) >= 0


def _features(x: Tensor) -> tuple:
    # Address, strides in elements and width of a (N, d) feature view of any layout
    # (the kernels index x + row·stride(0) + channel·stride(1)).
    return (PTR(x.data_ptr()), x.stride(0), x.stride(1), x.shape[1])


def _expect_shape(name: str, tensor: Tensor, shape: tuple) -> None:
    # The kernels index by these shapes: a mismatch would read out of bounds.
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(f"Expected '{name}' of shape {tuple(shape)} (got {tuple(tensor.shape)})")


def grid_argmax(qh: Tensor, qv: Tensor, num_images: int, height: int, width: int,
                hashed: bool, x: Tensor) -> tuple[Tensor, Tensor]:
    """Direction codes (B, H, W) int8 and choices (B·H·W,) int64 of
    :func:`dhtgraph.hierarchy.grid._grid_argmax` from the quantised potentials ``qh``
    (B, H, W−1) and ``qv`` (B, H−1, W) (int32); ``x`` (B·H·W, d), read when ``hashed``."""
    n = num_images * height * width
    _expect_shape("qh", qh, (num_images, height, width - 1))
    _expect_shape("qv", qv, (num_images, height - 1, width))
    _expect_shape("x", x, (n, x.shape[1] if x.dim() == 2 else -1))
    qh = qh.to(torch.int32).contiguous()
    qv = qv.to(torch.int32).contiguous()
    code = torch.empty((num_images, height, width), dtype=torch.int8)
    choice = torch.empty(n, dtype=torch.long)
    scratch = torch.empty(4 * width, dtype=torch.int32)
    x = x.detach().resolve_neg()  # the kernels read the stored values
    kind = FEATURE_DTYPES[x.dtype]
    function("grid", f"dht_grid_argmax_{kind}", None, PTR, PTR, I64, I64, I64, I64, PTR,
             I64, I64, I64, PTR, PTR, PTR)(
        pointer(qh), pointer(qv), num_images, height, width, int(bool(hashed)),
        *_features(x), pointer(scratch), pointer(code), pointer(choice))
    return code, choice


def grid_blocks(labels: Tensor, num_blocks: int, num_images: int, height: int,
                width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Sizes (K,), boxes (K, 4) ``(ymin, xmin, ymax, xmax)`` and images (K,), int64, of
    the blocks ``labels`` (B·H·W,) of row-major pixels."""
    _expect_shape("labels", labels, (num_images * height * width,))
    labels = labels.to(torch.long).contiguous()
    counts = torch.empty(num_blocks, dtype=torch.long)
    bbox = torch.empty((num_blocks, 4), dtype=torch.long)
    batch = torch.empty(num_blocks, dtype=torch.long)
    function("grid", "dht_grid_blocks", None, PTR, I64, I64, I64, I64, PTR, PTR, PTR)(
        pointer(labels), num_images, height, width, num_blocks, pointer(counts),
        pointer(bbox), pointer(batch))
    return counts, bbox, batch


def grid_constant(x: Tensor, choice: Tensor, labels: Tensor, num_blocks: int) -> Tensor:
    """(K, d) bool: the block is constant in the channel (no pixel differs there from the
    pixel it chose)."""
    x = x.detach().resolve_neg()  # the kernels read the stored values
    n, d = x.shape
    _expect_shape("choice", choice, (n,))
    _expect_shape("labels", labels, (n,))
    choice = choice.to(torch.long).contiguous()
    labels = labels.to(torch.long).contiguous()
    constant = torch.empty((num_blocks, d), dtype=torch.bool)
    kind = FEATURE_DTYPES[x.dtype]
    function("grid", f"dht_grid_constant_{kind}", None, PTR, I64, I64, I64, PTR, PTR, I64,
             I64, PTR)(
        *_features(x), pointer(choice), pointer(labels), n, num_blocks, pointer(constant))
    return constant


def union_mass_perimeter(size: Tensor, bbox: Tensor, src: Tensor,
                         dst: Tensor) -> tuple[Tensor, Tensor]:
    """Union mass and perimeter ``2 + Δy + Δx`` (E,) float32 of the edges ``(src, dst)``
    (int64 sizes (K,) and boxes (K, 4))."""
    _expect_shape("bbox", bbox, (size.shape[0], 4))
    _expect_shape("dst", dst, tuple(src.shape))
    size = size.to(torch.long).contiguous()
    bbox = bbox.to(torch.long).contiguous()
    src, dst = src.to(torch.long).contiguous(), dst.to(torch.long).contiguous()
    m = src.numel()
    mass = torch.empty(m, dtype=torch.float32)
    perimeter = torch.empty(m, dtype=torch.float32)
    bad = function("grid", "dht_union_mass_perimeter", I64, PTR, PTR, I64, PTR, PTR, I64,
                   PTR, PTR)(pointer(size), pointer(bbox), size.numel(), pointer(src),
                             pointer(dst), m, pointer(mass), pointer(perimeter))
    if bad:
        e = bad - 1
        raise IndexError(f"Expected 'edge_index' entries in [0, {size.numel()}) (got edge "
                         f"{e}: ({int(src[e])}, {int(dst[e])}))")
    return mass, perimeter


def edge_difference(x: Tensor, src: Tensor, dst: Tensor) -> Tensor:
    """``x[dst] − x[src]`` (E, d), row-major, of float32/float64 features ``x`` (K, d) of
    any layout (no gradient)."""
    x = x.detach().resolve_neg()  # the kernels read the stored values
    _expect_shape("dst", dst, tuple(src.shape))
    src, dst = src.to(torch.long).contiguous(), dst.to(torch.long).contiguous()
    m = src.numel()
    out = torch.empty((m, x.shape[1]), dtype=x.dtype)
    kind = FEATURE_DTYPES[x.dtype]
    bad = function("grid", f"dht_edge_difference_{kind}", I64, PTR, I64, I64, I64, I64, PTR,
                   PTR, I64, PTR)(*_features(x), x.shape[0], pointer(src), pointer(dst), m,
                                  pointer(out))
    if bad:
        e = bad - 1
        raise IndexError(f"Expected 'edge_index' entries in [0, {x.shape[0]}) (got edge "
                         f"{e}: ({int(src[e])}, {int(dst[e])}))")
    return out


def grid_chosen(horizontal: Tensor, vertical: Tensor, code: Tensor) -> Tensor:
    """(B·H·W,) the potential of every pixel's chosen edge (direction ``code`` (B, H, W)
    int8) from the edge potentials (B, H, W−1) and (B, H−1, W) (no gradient)."""
    b, h, w = code.shape
    _expect_shape("horizontal", horizontal, (b, h, w - 1))
    _expect_shape("vertical", vertical, (b, h - 1, w))
    if code.dtype != torch.int8 or horizontal.dtype != vertical.dtype:
        raise ValueError(f"Expected int8 'code' and potentials of one dtype (got {code.dtype}, "
                         f"{horizontal.dtype}, {vertical.dtype})")
    horizontal = horizontal.detach().resolve_neg().contiguous()
    vertical = vertical.detach().resolve_neg().contiguous()
    code = code.contiguous()
    out = torch.empty(b * h * w, dtype=horizontal.dtype)
    kind = FEATURE_DTYPES[horizontal.dtype]
    function("grid", f"dht_grid_chosen_{kind}", None, PTR, PTR, PTR, I64, I64, I64, PTR)(
        pointer(horizontal), pointer(vertical), pointer(code), b, h, w, pointer(out))
    return out
