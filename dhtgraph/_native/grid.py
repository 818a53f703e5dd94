"""ctypes bindings of ``grid.c`` (callers: :mod:`dhtgraph.hierarchy.grid` and
:mod:`dhtgraph.hierarchy.affinity`).

Each function returns the tensors of the tensor implementation it replaces, bit for bit
(the tests compare both paths); :func:`supports` says which inputs the kernels take.
"""

from __future__ import annotations

import torch
from torch import Tensor

from typing import Optional

from . import F64, I64, PTR, address, as_index, expect_shape, function, pointer

__all__ = ["FEATURE_DTYPES", "supports", "grid_argmax", "grid_squared", "grid_size_moments",
           "grid_blocks", "grid_constant", "union_mass_perimeter",
           "edge_squared_difference", "edge_potentials", "grid_chosen"]

#: Feature dtypes the kernels that compare features read.
FEATURE_DTYPES = {torch.float32: "float", torch.float64: "double"}


def supports(x: Tensor) -> bool:
    """Whether ``x`` (N, d) can be read by the feature-comparing kernels: float32 or
    float64 CPU features of at least one channel with non-negative strides (any layout:
    row- or channel-major)."""
    return (x.dtype in FEATURE_DTYPES and x.dim() == 2 and x.shape[1] >= 1
            and x.device.type == "cpu" and min(x.stride(), default=0) >= 0)


def _features(x: Tensor) -> tuple:
    # Address, strides in elements and width of a (N, d) feature view of any layout
    # (the kernels index x + row·stride(0) + channel·stride(1)). The caller keeps x.
    if not supports(x):
        raise ValueError("Expected 'x' (N, d ≥ 1) float32/float64 CPU features with "
                         f"non-negative strides (got {x.dtype} {tuple(x.shape)} on "
                         f"{x.device}, strides {tuple(x.stride())})")
    return (PTR(x.data_ptr()), x.stride(0), x.stride(1), x.shape[1])


def _out_of_range(bad: int, labels: Tensor, num_blocks: int,
                  choice: Optional[Tensor] = None) -> None:
    # A kernel's 1 + first pixel with a label outside [0, K) (or a choice outside [0, N)).
    p = bad - 1
    if choice is not None and not 0 <= int(choice[p]) < choice.shape[0]:
        raise IndexError(f"Expected 'choice' entries in [0, {choice.shape[0]}) (got "
                         f"{int(choice[p])} at pixel {p})")
    raise IndexError(f"Expected 'labels' entries in [0, {num_blocks}) (got "
                     f"{int(labels[p])} at pixel {p})")


def _edge_out_of_range(bad: int, k: int, src: Tensor, dst: Tensor) -> None:
    e = bad - 1
    raise IndexError(f"Expected 'edge_index' entries in [0, {k}) (got edge "
                     f"{e}: ({int(src[e])}, {int(dst[e])}))")


def _length(name: str, tensor: Tensor) -> int:
    # The length of a 1-d tensor (edge ends), refusing any other shape.
    if tensor.dim() != 1:
        raise ValueError(f"Expected '{name}' of one dimension (got shape {tuple(tensor.shape)})")
    return tensor.shape[0]


def grid_argmax(horizontal: Tensor, vertical: Tensor, num_images: int, height: int,
                width: int, hashed: bool, x: Tensor, scale: Optional[float] = None,
                term: Optional[float] = None) -> tuple[Tensor, Tensor]:
    """Direction codes (B, H, W) int8 and choices (B·H·W,) int64 of
    :func:`dhtgraph.hierarchy.grid._grid_argmax` from the potentials ``horizontal``
    (B, H, W−1) and ``vertical`` (B, H−1, W) (x's dtype; quantised here as
    ``quantize_potential`` does); ``x`` (B·H·W, d), read when ``hashed``.

    With ``scale`` and ``term`` the potentials given are the Gaussian parts, contiguous
    and owned by the caller: they are replaced in place by ``p·scale + term`` (the
    compactness mix, the tensor version's two float operations) before quantisation.
    """
    n = num_images * height * width
    expect_shape("horizontal", horizontal, (num_images, height, width - 1))
    expect_shape("vertical", vertical, (num_images, height - 1, width))
    expect_shape("x", x, (n, x.shape[1] if x.dim() == 2 else -1))
    if not (horizontal.dtype == vertical.dtype == x.dtype):
        raise ValueError(f"Expected potentials of the features' dtype {x.dtype} (got "
                         f"{horizontal.dtype}, {vertical.dtype})")
    affine = scale is not None
    if affine:
        if not (horizontal.is_contiguous() and vertical.is_contiguous()):
            raise ValueError("Expected contiguous potentials to mix in place")
    else:
        horizontal = horizontal.detach().resolve_neg().contiguous()
        vertical = vertical.detach().resolve_neg().contiguous()
    code = torch.empty((num_images, height, width), dtype=torch.int8)
    choice = torch.empty(n, dtype=torch.long)
    scratch = torch.empty(4 * width, dtype=torch.int32)
    x = x.detach().resolve_neg()  # the kernels read the stored values
    kind = FEATURE_DTYPES[x.dtype]
    function("grid", f"dht_grid_argmax_{kind}", None, PTR, PTR, I64, I64, I64, I64, I64,
             F64, F64, PTR, I64, I64, I64, PTR, PTR, PTR)(
        pointer(horizontal, x.dtype), pointer(vertical, x.dtype), num_images, height, width,
        int(bool(hashed)), int(affine), float(scale) if affine else 0.0,
        float(term) if affine else 0.0, *_features(x), pointer(scratch, torch.int32),
        pointer(code, torch.int8), pointer(choice, torch.long))
    return code, choice


def grid_squared(x: Tensor, base: int, image: int, row: int, step: int, num_images: int,
                 rows: int, columns: int, negated: bool = False,
                 channel_major: Optional[bool] = None) -> Tensor:
    """``(x[p + step] − x[p])²`` (B', rows, columns, d) for the pixels ``p = base +
    b·image + r·row + c`` of float32/float64 features ``x`` (N, d), channel-major
    (``x.stride(0) == 1``: the result is laid out (d, B', rows, columns), as torch lays
    out the subtraction of two such grid views) or row-major (contiguous result); no
    gradient. Pixel ranges are the caller's (grid shapes). With ``negated``:
    ``−(x[p + step] − x[p])²`` (an exact negation). torch's channel sum of these has the
    bits of −(the sum of the squares) except for a zero sum, +0 where −(sum) is −0: only
    after an exp are the two equal bit for bit. ``channel_major`` True or False lays the
    result out channel-major or row-major whatever the layout of ``x``."""
    d = x.shape[1]
    if channel_major is None:
        channel_major = x.stride(0) == 1 and d > 1  # the layout of x itself, as torch's sub
    x = x.detach().resolve_neg()
    shape = (num_images, rows, columns)
    if channel_major:
        out = torch.empty((d,) + shape, dtype=x.dtype).permute(1, 2, 3, 0)
    else:
        out = torch.empty(shape + (d,), dtype=x.dtype)
    if base < 0 or (num_images and rows and columns and base + (num_images - 1) * image
                    + (rows - 1) * row + columns - 1 + step >= x.shape[0]):
        raise IndexError("Expected pixel ranges inside 'x'")
    kind = FEATURE_DTYPES[x.dtype]
    function("grid", f"dht_grid_squared_{kind}", None, PTR, I64, I64, I64, I64, I64, I64,
             I64, I64, I64, I64, PTR, I64, I64, I64, I64, I64)(
        *_features(x), base, image, row, step, num_images, rows, columns,
        PTR(out.data_ptr()), *out.stride(), int(bool(negated)))
    return out


def grid_size_moments(x: Tensor, choice: Tensor, labels: Tensor, counts: Tensor,
                      num_blocks: int) -> tuple[Tensor, Tensor]:
    """The grid level's 'size'-weighted means and snapped variances (K, d) (no gradient):
    ``index_add_`` sums in pixel order divided by the counts, the variance 0 where the
    block is constant in the channel (:func:`grid_constant`)."""
    x = x.detach().resolve_neg()
    features = _features(x)
    n, d = x.shape
    expect_shape("choice", choice, (n,))
    expect_shape("labels", labels, (n,))
    expect_shape("counts", counts, (num_blocks,))
    choice = as_index(choice, "choice")
    labels = as_index(labels, "labels")
    counts = as_index(counts, "counts")
    mean = torch.empty((num_blocks, d), dtype=x.dtype)
    var = torch.empty((num_blocks, d), dtype=x.dtype)
    kind = FEATURE_DTYPES[x.dtype]
    bad = function("grid", f"dht_grid_size_moments_{kind}", I64, PTR, I64, I64, I64, PTR,
                   PTR, PTR, I64, I64, PTR, PTR)(
        *features, pointer(choice, torch.long), pointer(labels, torch.long),
        pointer(counts, torch.long), n, num_blocks, pointer(mean, x.dtype),
        pointer(var, x.dtype))
    if bad < 0:
        raise MemoryError("grid_size_moments: no memory for the constant-channel scratch")
    if bad:
        _out_of_range(bad, labels, num_blocks, choice)
    return mean, var


def grid_blocks(labels: Tensor, num_blocks: int, num_images: int, height: int,
                width: int, batch: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Sizes (K,), boxes (K, 4) ``(ymin, xmin, ymax, xmax)`` and images (K,), int64, of
    the blocks ``labels`` (B·H·W,) in [0, K) of row-major pixels.

    A block's image is ``batch`` (B·H·W,) of its last pixel (what a sequential
    ``scatter_`` of the pixels' ``batch`` gives), or without ``batch`` the index of the
    image it lies in. Labels outside [0, K) raise IndexError.
    """
    n = num_images * height * width
    expect_shape("labels", labels, (n,))
    labels = as_index(labels, "labels")
    constant = None
    if batch is not None:
        expect_shape("batch", batch, (n,))
        if n and batch.stride(0) == 0:  # one value expanded (pixel_state's): no copy
            constant, batch = int(batch[0]), None
        else:
            batch = as_index(batch, "batch")
    counts = torch.empty(num_blocks, dtype=torch.long)
    bbox = torch.empty((num_blocks, 4), dtype=torch.long)
    images = torch.empty(num_blocks, dtype=torch.long)
    bad = function("grid", "dht_grid_blocks", I64, PTR, PTR, I64, I64, I64, I64, PTR, PTR,
                   PTR)(
        pointer(labels, torch.long), PTR(0) if batch is None else pointer(batch, torch.long),
        num_images, height, width, num_blocks, pointer(counts, torch.long),
        pointer(bbox, torch.long), pointer(images, torch.long))
    if bad:
        _out_of_range(bad, labels, num_blocks)
    if constant is not None and (constant != 0 or num_images != 1):
        images.fill_(constant)
    return counts, bbox, images


def grid_constant(x: Tensor, choice: Tensor, labels: Tensor, num_blocks: int) -> Tensor:
    """(K, d) bool: the block is constant in the channel (no pixel differs there from the
    pixel it chose)."""
    x = x.detach().resolve_neg()  # the kernels read the stored values
    features = _features(x)
    n, d = x.shape
    expect_shape("choice", choice, (n,))
    expect_shape("labels", labels, (n,))
    choice = as_index(choice, "choice")
    labels = as_index(labels, "labels")
    constant = torch.empty((num_blocks, d), dtype=torch.bool)
    kind = FEATURE_DTYPES[x.dtype]
    bad = function("grid", f"dht_grid_constant_{kind}", I64, PTR, I64, I64, I64, PTR, PTR,
                   I64, I64, PTR)(
        *features, pointer(choice, torch.long), pointer(labels, torch.long), n, num_blocks,
        pointer(constant, torch.bool))
    if bad:
        _out_of_range(bad, labels, num_blocks, choice)
    return constant


def union_mass_perimeter(size: Tensor, bbox: Tensor, src: Tensor,
                         dst: Tensor) -> tuple[Tensor, Tensor]:
    """Union mass and perimeter ``2 + Δy + Δx`` (E,) float32 of the edges ``(src, dst)``
    (int64 sizes (K,) and boxes (K, 4))."""
    # K from a 1-d size, else from the boxes: a (K, 2) size was once read as 2K blocks.
    k = size.shape[0] if size.dim() == 1 else (bbox.shape[0] if bbox.dim() >= 1 else -1)
    expect_shape("size", size, (k,))
    expect_shape("bbox", bbox, (k, 4))
    m = _length("src", src)
    expect_shape("dst", dst, (m,))
    size, bbox = as_index(size, "size"), as_index(bbox, "bbox")
    src, dst = as_index(src, "edge_index"), as_index(dst, "edge_index")
    mass = torch.empty(m, dtype=torch.float32)
    perimeter = torch.empty(m, dtype=torch.float32)
    bad = function("grid", "dht_union_mass_perimeter", I64, PTR, PTR, I64, PTR, PTR, I64,
                   PTR, PTR)(pointer(size, torch.long), pointer(bbox, torch.long), k,
                             pointer(src, torch.long), pointer(dst, torch.long), m,
                             pointer(mass, torch.float32), pointer(perimeter, torch.float32))
    if bad:
        _edge_out_of_range(bad, k, src, dst)
    return mass, perimeter


def grid_chosen(horizontal: Tensor, vertical: Tensor, code: Tensor) -> Tensor:
    """(B·H·W,) the potential of every pixel's chosen edge (direction ``code`` (B, H, W)
    int8) from the edge potentials (B, H, W−1) and (B, H−1, W) (no gradient)."""
    b, h, w = code.shape
    expect_shape("horizontal", horizontal, (b, h, w - 1))
    expect_shape("vertical", vertical, (b, h - 1, w))
    if code.dtype != torch.int8 or horizontal.dtype != vertical.dtype:
        raise ValueError(f"Expected int8 'code' and potentials of one dtype (got {code.dtype}, "
                         f"{horizontal.dtype}, {vertical.dtype})")
    if horizontal.dtype not in FEATURE_DTYPES:
        raise ValueError(f"Expected float32/float64 potentials (got {horizontal.dtype})")
    horizontal = horizontal.detach().resolve_neg().contiguous()
    vertical = vertical.detach().resolve_neg().contiguous()
    code = code.contiguous()
    dtype = horizontal.dtype
    out = torch.empty(b * h * w, dtype=dtype)
    kind = FEATURE_DTYPES[dtype]
    function("grid", f"dht_grid_chosen_{kind}", None, PTR, PTR, PTR, I64, I64, I64, PTR)(
        pointer(horizontal, dtype), pointer(vertical, dtype), pointer(code, torch.int8), b,
        h, w, pointer(out, dtype))
    return out


def _squares(x: Tensor, src: int, dst: int, m: int, out: Tensor, negate: bool) -> int:
    # dht_edge_squared_difference of the features x (K, d) (read through _features) and
    # the edge ends at the addresses src, dst (m int64 each, checked by the caller) into
    # out (m, d) of any strides: 0, or 1 + the first edge with an end outside [0, K).
    return function("grid", f"dht_edge_squared_difference_{FEATURE_DTYPES[x.dtype]}", I64,
                    PTR, I64, I64, I64, I64, PTR, PTR, I64, PTR, I64, I64, I64)(
        *_features(x), x.shape[0], src, dst, m, out.data_ptr(), *out.stride(), int(negate))


def edge_squared_difference(x: Tensor, src: Tensor, dst: Tensor) -> Tensor:
    """``(x[dst] − x[src])²`` (E, d), contiguous (the gathers, sub and pow(2) of the
    tensor version, bit for bit), of float32/float64 features ``x`` (K, d) of any layout
    and edge ends ``src``, ``dst`` (E,) (no gradient)."""
    x = x.detach().resolve_neg()  # the kernels read the stored values
    _features(x)  # (checked before the edge ends, as before)
    m = _length("src", src)
    expect_shape("dst", dst, (m,))
    src, dst = as_index(src, "edge_index"), as_index(dst, "edge_index")
    out = torch.empty((m, x.shape[1]), dtype=x.dtype)
    bad = _squares(x, pointer(src, torch.long), pointer(dst, torch.long), m, out, False)
    if bad:
        _edge_out_of_range(bad, x.shape[0], src, dst)
    return out


def edge_potentials(mean: Tensor, loop_value: Tensor, size: Optional[Tensor],
                    bbox: Optional[Tensor], edge_index: Tensor, c: float,
                    channel_major: bool = False) -> Tensor:
    """edge_affinity's potentials of the edges ``edge_index`` (no gradient).

    :func:`edge_squared_difference` negated (laid out channel-major with
    ``channel_major``), torch's channel sum and exp (in place), then one native pass for
    the loops and the compactness mix: the tensor version's operations, in its order and
    dtype.

    Parameters
    ----------
    mean : Tensor
        (K, d ≥ 1) float32 or float64 block means, any layout with non-negative strides.
    loop_value : Tensor
        (K,) the potential of a loop ``(u, u)``, converted to ``mean``'s dtype.
    size : Tensor or None
        (K,) integer block sizes; read only when ``c > 0``.
    bbox : Tensor or None
        (K, 4) integer boxes ``(ymin, xmin, ymax, xmax)``; read only when ``c > 0``.
    edge_index : Tensor
        (2, E) integer edges of CPU blocks; int64 rows of unit stride (a column slice)
        are read in place, others copied as int64.
    c : float
        The compactness weight: ``p·(1 − c) + (4c)·mass / perimeter²`` when ``c > 0``.
    channel_major : bool
        Lay the squares out (d, E) for the channel sum (the caller's choice: bit-identical
        to the row-major sum only where torch's sum adds each row left to right).

    Returns
    -------
    Tensor
        (E,) the potentials, ``mean``'s dtype, contiguous.

    Raises
    ------
    ValueError
        Features the kernels cannot read, ``edge_index`` not (2, E) or not on the CPU,
        ``loop_value`` not (K,), or with ``c > 0`` ``size`` / ``bbox`` missing or not
        (K,) / (K, 4).
    TypeError
        A non-integer ``edge_index``, ``size`` or ``bbox``.
    IndexError
        An edge end outside [0, K).
    """
    x = mean.detach().resolve_neg()  # the kernels read the stored values
    _features(x)
    k, d = x.shape
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"Expected 'edge_index' of shape (2, E) (got {tuple(edge_index.shape)})")
    m = edge_index.shape[1]
    expect_shape("loop_value", loop_value, (k,))
    # Rows of int64 entries read in place (a chunk's column slice too), else a copy.
    edges = (edge_index if edge_index.dtype is torch.long and edge_index.stride(1) == 1
             else as_index(edge_index, "edge_index"))
    src = address(edges)  # the rows' addresses (the second stride(0) entries on)
    dst = src + 8 * edges.stride(0)
    dtype = x.dtype
    c = float(c)
    if c > 0:
        for name, tensor in (("size", size), ("bbox", bbox)):
            if tensor is None:
                raise ValueError(f"Expected an integer tensor '{name}' with c > 0 (got None)")
        expect_shape("size", size, (k,))
        expect_shape("bbox", bbox, (k, 4))
        size, bbox = as_index(size, "size"), as_index(bbox, "bbox")
        size_ptr, bbox_ptr = pointer(size), pointer(bbox)
    else:
        size_ptr = bbox_ptr = 0
    loop_value = loop_value.detach().to(dtype).resolve_neg().contiguous()
    squared = (torch.empty((d, m), dtype=dtype).t() if channel_major
               else torch.empty((m, d), dtype=dtype))
    bad = _squares(x, src, dst, m, squared, True)
    if bad:
        _edge_out_of_range(bad, k, edges[0], edges[1])
    potential = squared.sum(-1).exp_()
    del squared
    function("grid", f"dht_edge_combine_{FEATURE_DTYPES[dtype]}", I64, PTR, PTR, PTR, PTR,
             I64, PTR, PTR, I64, I64, F64, F64)(
        potential.data_ptr(), pointer(loop_value, dtype), size_ptr, bbox_ptr, k, src, dst, m,
        int(c > 0), 1.0 - c, 4.0 * c)  # (the ends were checked above: returns 0)
    return potential
