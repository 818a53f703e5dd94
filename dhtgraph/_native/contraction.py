"""ctypes bindings of ``contraction.c`` (callers: :mod:`dhtgraph.hierarchy.contraction`).

Every function returns the tensors of its tensor counterpart in
:mod:`dhtgraph.hierarchy.contraction` bit for bit (the tests compare both paths); inputs
are CPU tensors (the caller checks :func:`dhtgraph._native.enabled` and the dtypes and
shapes). Nothing here carries gradient: means, variances and potentials are read,
detached. The kernels check every index against its range (an ``IndexError`` here,
never a write out of bounds).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, address, as_index, expect_shape, function, pointer, rows

__all__ = ["tie_hash", "local_index", "equal_ends", "argmax_choice", "choice_labels",
           "constant_channels", "pool_integers", "weighted_moments", "pool_level",
           "POTENTIAL_DTYPES", "MEAN_DTYPES", "MOMENT_DTYPES"]

_SET = "contraction"
_DT_INT64, _DT_F32, _DT_F64 = 0, 1, 2
_FLOAT_CODES = {torch.float32: _DT_F32, torch.float64: _DT_F64}
#: Potential dtypes the kernels quantise themselves, exactly as ``quantize_potential``
#: (one correctly rounded product in the potential's type; float32 checked on all 2³²
#: bit patterns). Other dtypes are quantised by the caller and passed as int64.
POTENTIAL_DTYPES = (torch.float32, torch.float64)
#: Mean dtypes of the exact comparisons (float16 and bfloat16 are widened to float32,
#: which keeps every == and != as it was).
MEAN_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
#: Dtypes of the pooled moments (the same IEEE operations as torch's, in that type).
MOMENT_DTYPES = (torch.float32, torch.float64)
_OK, _ERR_INDEX, _ERR_LOCAL, _ERR_MEMORY, _ERR_CAST, _ERR_CHOICE = 0, -1, -2, -3, -4, -5
_LONG = torch.long


def _floats(t: Tensor) -> tuple[Tensor, int]:
    # A contiguous float32/float64 tensor and its kernel code (read through its data
    # pointer: no detach needed, and none made, for a tensor that requires grad).
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.detach().float()
    code = _FLOAT_CODES.get(t.dtype)
    if code is None:
        raise ValueError(f"Expected a floating tensor of one of {MEAN_DTYPES} for a native "
                         f"kernel (got {t.dtype})")
    if t.is_neg():  # a lazily negated view: its stored values are not its values
        t = t.detach().resolve_neg()
    return (t if t.is_contiguous() else t.detach().contiguous()), code


def _ends(edge_index: Tensor) -> Tensor:
    # A (2, E) index tensor as contiguous int64 (no copy when it is one): pass
    # ``rows(result)`` to the kernel and keep the result until the kernel has returned.
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"Expected 'edge_index' to have shape (2, E) (got "
                         f"{tuple(edge_index.shape)})")
    return as_index(edge_index, "edge_index")


def _check(rc: int, name: str, k: int) -> None:
    if rc == _ERR_INDEX:
        raise IndexError(f"Expected every entry of '{name}' in [0, {k}) (an index out of "
                         "range)")
    if rc == _ERR_MEMORY:
        raise MemoryError("native kernel: no memory for its scratch")


def tie_hash(a: Tensor, b: Tensor) -> Tensor:
    """``tie_hash(a, b)`` of two int64 tensors of one shape (any values: the kernel
    reduces them as the tensor code does)."""
    if a.shape != b.shape:
        raise ValueError(f"Expected 'a' and 'b' of the same shape (got {tuple(a.shape)} "
                         f"and {tuple(b.shape)})")
    a, b = as_index(a, "a"), as_index(b, "b")
    out = torch.empty(a.shape, dtype=_LONG)
    function(_SET, "dht_tie_hash", None, PTR, PTR, I64, PTR)(
        pointer(a, _LONG), pointer(b, _LONG), a.numel(), pointer(out, _LONG))
    return out


def local_index(batch: Tensor) -> Tensor:
    """``local_index(batch)``: every block's index within its run of equal ``batch``."""
    batch = as_index(batch, "batch")
    out = torch.empty(batch.shape, dtype=_LONG)
    function(_SET, "dht_local_index", None, PTR, I64, PTR)(
        pointer(batch, _LONG), batch.numel(), pointer(out, _LONG))
    return out


def equal_ends(mean: Tensor, edge_index: Tensor) -> Tensor:
    """``equal_ends(mean, edge_index)``: BoolTensor (E,)."""
    if mean.dim() != 2:
        raise ValueError(f"Expected 'mean' of shape (K, d) (got {tuple(mean.shape)})")
    items, code = _floats(mean)
    ends = _ends(edge_index)
    m = ends.shape[1]
    out = torch.empty(m, dtype=torch.bool)
    rc = function(_SET, "dht_equal_ends", I64, PTR, I64, I64, I64, PTR, PTR, I64, PTR)(
        pointer(items), code, items.shape[1], items.shape[0], *rows(ends), m,
        pointer(out, torch.bool))
    del ends  # (alive until the kernel returned)
    _check(rc, "edge_index", items.shape[0])
    return out


def _choice_arguments(potential: Tensor, edge_index: Tensor, num_nodes: int,
                      movable: Optional[Tensor], hashed: bool, batch: Optional[Tensor],
                      mean: Optional[Tensor]) -> tuple[int, tuple, tuple]:
    # The checked arguments of dht_argmax_choice / dht_choice_labels before their outputs:
    # (k, the kernel arguments, the tensors they point into: keep them until it returned).
    code = _FLOAT_CODES.get(potential.dtype)
    if code is None:
        if potential.dtype is not _LONG:
            raise ValueError(f"Expected 'potential' of dtype float32, float64 or "
                             f"(quantised) int64 (got {potential.dtype})")
        code = _DT_INT64
    p = potential.detach().resolve_neg() if potential.is_neg() else potential
    p = p if p.is_contiguous() else p.detach().contiguous()
    ends = _ends(edge_index)
    m = ends.shape[1]
    expect_shape("potential", p, (m,))
    k = int(num_nodes)
    move = None
    if movable is not None:
        if movable.dtype != torch.bool:
            raise ValueError(f"Expected 'movable' of dtype bool (got {movable.dtype})")
        expect_shape("movable", movable, (k,))
        move = movable.contiguous()
    batch_t = as_index(batch, "batch") if hashed and batch is not None else None
    if batch_t is not None:
        expect_shape("batch", batch_t, (k,))
    items, mean_code, d = None, _DT_F32, 0
    if hashed and mean is not None:
        if mean.dim() != 2 or mean.shape[0] != k:
            raise ValueError(f"Expected 'mean' of shape ({k}, d) (got {tuple(mean.shape)})")
        items, mean_code = _floats(mean)
        d = items.shape[1]
    # (an empty tensor's data pointer may be NULL: the plateau rule is its own flag)
    arguments = (pointer(p), code, *rows(ends), m, k,
                 None if move is None else pointer(move, torch.bool), int(bool(hashed)),
                 None if batch_t is None else pointer(batch_t, _LONG), int(items is not None),
                 None if items is None else pointer(items), mean_code, d)
    return k, arguments, (p, ends, move, batch_t, items)


def _choice_error(rc: int, k: int, batch: Optional[Tensor]) -> None:
    if rc == _ERR_LOCAL:
        largest = int(local_index(batch).max()) if batch is not None else k - 1
        raise ValueError(f"Expected graphs of fewer than 2**31 blocks with "
                         f"tie_break='hashed' (got {largest + 1})")
    _check(rc, "edge_index", k)


_CHOICE_ARGTYPES = (PTR, I64, PTR, PTR, I64, I64, PTR, I64, PTR, I64, PTR, I64, I64, PTR)


def argmax_choice(potential: Tensor, edge_index: Tensor, num_nodes: int,
                  movable: Optional[Tensor], hashed: bool, batch: Optional[Tensor],
                  mean: Optional[Tensor]) -> Tensor:
    """``argmax_choice`` (LongTensor (K,)) in one pass over the edges.

    ``potential`` (E,) is float32/float64 (quantised in the kernel) or the int64 result
    of ``quantize_potential``; ``movable`` a BoolTensor (K,) or None; ``batch`` (K,) and
    ``mean`` (K, d) are read by the hashed rule only.
    """
    k, arguments, alive = _choice_arguments(potential, edge_index, num_nodes, movable, hashed,
                                            batch, mean)
    choice = torch.empty(k, dtype=_LONG)
    rc = function(_SET, "dht_argmax_choice", I64, *_CHOICE_ARGTYPES)(
        *arguments, pointer(choice, _LONG))
    del alive  # (alive until the kernel returned)
    if rc < 0:
        _choice_error(rc, k, batch if hashed else None)
    return choice


def choice_labels(potential: Tensor, edge_index: Tensor, num_nodes: int,
                  movable: Optional[Tensor], hashed: bool, batch: Optional[Tensor],
                  mean: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor], int]:
    """:func:`argmax_choice` and the canonical components of its choices
    (``functional_component_labels``) in one kernel call: the same tensors as the two
    calls (``contract``'s level).

    Parameters
    ----------
    potential : Tensor of shape (E,)
        float32 / float64 (quantised in the kernel) or the int64 result of
        ``quantize_potential``.
    edge_index : integer Tensor of shape (2, E)
        Block graph (coalesced or not; every end in [0, K)).
    num_nodes : int
        K, the number of blocks.
    movable : BoolTensor of shape (K,) or None
        Blocks allowed to merge (None: all).
    hashed : bool
        The hashed tie rule (else the reference rule).
    batch : integer Tensor of shape (K,) or None
        Graph of every block, read by the hashed rule (None: one graph).
    mean : floating Tensor of shape (K, d) or None
        Block means, read by the hashed rule for its plateau test (None: no plateau).

    Returns
    -------
    choice : LongTensor of shape (K,)
        ``argmax_choice``.
    labels : LongTensor of shape (K,) or None
        Canonical component of every block; None when a choice lies outside [0, K) (a
        hashed choice along an edge between two images' blocks): the caller then runs
        ``functional_component_labels(choice)``, which refuses it as the tensor path does.
    num_components : int
        Number of components (-1 with ``labels`` None).

    Raises
    ------
    ValueError
        ``potential`` of another dtype or shape, ``edge_index`` not of shape (2, E),
        ``movable``, ``batch`` or ``mean`` of the wrong dtype or shape, a tensor not on
        the CPU, or (hashed) a graph of 2**31 blocks or more.
    TypeError
        ``edge_index`` or ``batch`` not of an integer dtype.
    IndexError
        An end of ``edge_index`` outside [0, K).
    MemoryError
        No memory for the kernel's scratch.
    """
    k, arguments, alive = _choice_arguments(potential, edge_index, num_nodes, movable, hashed,
                                            batch, mean)
    choice, labels = torch.empty(k, dtype=_LONG), torch.empty(k, dtype=_LONG)
    rc = function(_SET, "dht_choice_labels", I64, *_CHOICE_ARGTYPES, PTR)(
        *arguments, pointer(choice, _LONG), pointer(labels, _LONG))
    del alive  # (alive until the kernel returned)
    if rc == _ERR_CHOICE:
        return choice, None, -1
    if rc < 0:
        _choice_error(rc, k, batch if hashed else None)
    return choice, labels, int(rc)


def constant_channels(mean: Tensor, var: Optional[Tensor], labels: Tensor,
                      num_blocks: int) -> Tensor:
    """``snap_constant_blocks``'s mask, BoolTensor (K', d): every item of the block has
    the same mean in the channel (by ==) and zero variance there. ``var`` (None: all
    zero) has the dtype and shape of ``mean``."""
    items, code = _floats(mean)
    spread = None
    if var is not None:
        spread, var_code = _floats(var)
        if var_code != code or spread.shape != items.shape:
            raise ValueError("Expected 'var' of the dtype and shape of 'mean'")
    if items.dim() != 2:
        raise ValueError(f"Expected 'mean' of shape (K, d) (got {tuple(items.shape)})")
    labels = as_index(labels, "labels")
    expect_shape("labels", labels, items.shape[:1])
    k_new, d = int(num_blocks), items.shape[1]
    out = torch.empty((k_new, d), dtype=torch.bool)
    rc = function(_SET, "dht_constant_channels", I64, PTR, I64, I64, PTR, PTR, I64, I64, PTR)(
        pointer(labels, _LONG), labels.numel(), k_new, pointer(items),
        None if spread is None else pointer(spread), code, d, pointer(out, torch.bool))
    _check(rc, "labels", k_new)
    return out


def pool_integers(labels: Tensor, num_blocks: int, size: Tensor, bbox: Tensor,
                  batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``_pool_blocks``'s integer statistics: summed sizes (K',), merged boxes (K', 4)
    (min of the first two columns, max of the last two) and the image of every block.
    ``labels``, ``size``, ``batch`` (K,) and ``bbox`` (K, 4) are int64."""
    labels, size = as_index(labels, "labels"), as_index(size, "size")
    bbox, batch = as_index(bbox, "bbox"), as_index(batch, "batch")
    if labels.dim() != 1:
        raise ValueError(f"Expected 'labels' of shape (K,) (got {tuple(labels.shape)})")
    k = labels.shape[0]
    expect_shape("size", size, (k,))
    expect_shape("bbox", bbox, (k, 4))
    expect_shape("batch", batch, (k,))
    k_new = int(num_blocks)
    new_size = torch.empty(k_new, dtype=_LONG)
    new_bbox = torch.empty((k_new, 4), dtype=_LONG)
    new_batch = torch.empty(k_new, dtype=_LONG)
    rc = function(_SET, "dht_pool_integers", I64, PTR, I64, I64, PTR, PTR, PTR, PTR, PTR, PTR)(
        pointer(labels, _LONG), k, k_new, pointer(size, _LONG), pointer(bbox, _LONG),
        pointer(batch, _LONG), pointer(new_size, _LONG), pointer(new_bbox, _LONG),
        pointer(new_batch, _LONG))
    _check(rc, "labels", k_new)
    return new_size, new_bbox, new_batch


def _strided(t: Optional[Tensor], dtype: torch.dtype, shape: tuple,
             integers: bool = False) -> tuple:
    # (tensor, data pointer, element strides) of a tensor of ``dtype`` (or int64 where
    # ``integers``) read in place (no copy for a view or an expanded tensor: the kernel
    # takes element strides).
    if t is None:
        return None, None, (0,) * len(shape)
    if t.is_neg():
        t = t.resolve_neg()  # a lazily negated view: its data are the unnegated values
    if not (t.dtype == dtype or (integers and t.dtype is _LONG)) or tuple(t.shape) != shape:
        raise ValueError(f"Expected a tensor of dtype {dtype} and shape {shape} (got "
                         f"{t.dtype} and {tuple(t.shape)})")
    return t, address(t), t.stride()


def _moments_arguments(mean: Tensor, var: Optional[Tensor], labels: Tensor, num_blocks: int,
                       weight: Tensor, fallback: Optional[Tensor], snap: bool,
                       movable: Optional[Tensor]) -> tuple:
    # The checked leading arguments of dht_weighted_moments / dht_pool_level: (labels as
    # int64, the arguments, the tensors they point into: keep them until it returned).
    if mean.dtype not in MOMENT_DTYPES or mean.dim() != 2:
        raise ValueError(f"Expected 'mean' of shape (K, d) and dtype float32 or float64 (got "
                         f"{tuple(mean.shape)}, {mean.dtype})")
    k, d = mean.shape
    dtype = mean.dtype
    mean = mean.resolve_neg() if mean.is_neg() else mean
    var, vp, vs = _strided(var, dtype, (k, d))
    weight, wp, (ws,) = _strided(weight, dtype, (k,), True)
    fallback, fp, (fs,) = _strided(fallback, dtype, (k,), True)
    labels = as_index(labels, "labels")
    if labels.shape != (k,):
        raise ValueError(f"Expected 'labels' of shape ({k},) (got {tuple(labels.shape)})")
    move = None
    if movable is not None:
        if var is None or movable.dtype != torch.bool or movable.shape != (k,):
            raise ValueError(f"Expected 'movable' of shape ({k},) and dtype bool, with 'var'")
        move = movable.contiguous()
    ms = mean.stride()
    arguments = (pointer(labels, _LONG), k, int(num_blocks), d, _FLOAT_CODES[dtype], address(mean),
                 ms[0], ms[1], vp, vs[0], vs[1], wp, ws, int(weight.dtype is _LONG), fp, fs,
                 int(fallback is not None and fallback.dtype is _LONG), int(bool(snap)),
                 None if move is None else pointer(move, torch.bool))
    return labels, arguments, (mean, var, weight, fallback, move)


_MOMENTS_ARGTYPES = (PTR, I64, I64, I64, I64, PTR, I64, I64, PTR, I64, I64, PTR, I64, I64, PTR,
                     I64, I64, I64, PTR, PTR, PTR)


def weighted_moments(mean: Tensor, var: Optional[Tensor], labels: Tensor, num_blocks: int,
                     weight: Tensor, fallback: Optional[Tensor], snap: bool = True,
                     movable: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """``weighted_moments`` (with ``snap_constant_blocks`` when ``snap``) without gradient:
    pooled means and variances, contiguous (K', d), bit for bit the tensor code's.

    ``mean`` (K, d) and ``var`` (K, d) or None are float32 or float64 tensors of one
    dtype; ``weight`` and ``fallback`` (K,) or None of that dtype or int64 (sizes: the
    kernel converts them, exactly, as ``.to(mean.dtype)`` does), all read in place through
    their strides (views and expanded tensors included); ``labels`` (K,) int64.
    ``movable`` (K,) bool or None: a new block whose (last) item is frozen keeps that
    item's mean and var (``contract``'s restore; needs ``var``).
    """
    labels, arguments, alive = _moments_arguments(mean, var, labels, num_blocks, weight,
                                                  fallback, snap, movable)
    k_new, dtype = int(num_blocks), mean.dtype
    new_mean = torch.empty((k_new, mean.shape[1]), dtype=dtype)
    new_var = torch.empty((k_new, mean.shape[1]), dtype=dtype)
    rc = function(_SET, "dht_weighted_moments", I64, *_MOMENTS_ARGTYPES)(
        *arguments, new_mean.data_ptr(), new_var.data_ptr())
    del alive  # (alive until the kernel returned)
    if rc == _ERR_CAST:
        # Integers the kernel does not convert exactly: torch's conversion, then again.
        return weighted_moments(mean, var, labels, k_new, weight.to(dtype),
                                None if fallback is None else fallback.to(dtype), snap,
                                movable)
    _check(rc, "labels", k_new)
    return new_mean, new_var


def pool_level(mean: Tensor, var: Optional[Tensor], labels: Tensor, num_blocks: int,
               weight: Tensor, fallback: Optional[Tensor], movable: Optional[Tensor],
               size: Tensor, bbox: Tensor, batch: Tensor) -> tuple[Tensor, ...]:
    """:func:`weighted_moments` (snapped) and :func:`pool_integers` in one kernel call:
    the same tensors as the two calls (``contract``'s pooling).

    Parameters
    ----------
    mean : Tensor of shape (K, d)
        Item means, float32 or float64 (read in place through their strides).
    var : Tensor of shape (K, d) or None
        Item variances, the dtype of ``mean`` (None: all zero).
    labels : integer Tensor of shape (K,)
        New block of every item, in [0, K').
    num_blocks : int
        K', the number of new blocks.
    weight : Tensor of shape (K,)
        Pooling weights, the dtype of ``mean`` or int64 (sizes, converted exactly as
        ``.to(mean.dtype)``).
    fallback : Tensor of shape (K,) or None
        Weights of the items of a block whose weights sum to 0 (None: no guard); dtype as
        ``weight``.
    movable : BoolTensor of shape (K,) or None
        A new block whose (last) item is frozen keeps that item's mean and var (needs
        ``var``).
    size, batch : integer Tensor of shape (K,)
        Pixels and image of every item.
    bbox : integer Tensor of shape (K, 4)
        Inclusive boxes ``(ymin, xmin, ymax, xmax)``.

    Returns
    -------
    mean, var : Tensor of shape (K', d)
        Pooled means and variances (contiguous, the dtype of ``mean``).
    size : LongTensor of shape (K',)
        Summed sizes (modulo 2**64, as ``index_add_``).
    bbox : LongTensor of shape (K', 4)
        Merged boxes (min of the first two columns, max of the last two).
    batch : LongTensor of shape (K',)
        Image of every new block.

    Raises
    ------
    ValueError
        ``mean``, ``var``, ``weight``, ``fallback``, ``labels``, ``movable``, ``size``,
        ``bbox`` or ``batch`` of the wrong dtype or shape, or a tensor not on the CPU.
    TypeError
        ``labels``, ``size``, ``bbox`` or ``batch`` not of an integer dtype.
    IndexError
        A label outside [0, K').
    MemoryError
        No memory for the kernel's scratch.
    """
    labels, arguments, alive = _moments_arguments(mean, var, labels, num_blocks, weight,
                                                  fallback, True, movable)
    k, k_new, dtype = labels.shape[0], int(num_blocks), mean.dtype
    size, bbox, batch = as_index(size, "size"), as_index(bbox, "bbox"), as_index(batch, "batch")
    expect_shape("size", size, (k,))
    expect_shape("bbox", bbox, (k, 4))
    expect_shape("batch", batch, (k,))
    new_mean = torch.empty((k_new, mean.shape[1]), dtype=dtype)
    new_var = torch.empty((k_new, mean.shape[1]), dtype=dtype)
    new_size, new_batch = torch.empty(k_new, dtype=_LONG), torch.empty(k_new, dtype=_LONG)
    new_bbox = torch.empty((k_new, 4), dtype=_LONG)
    rc = function(_SET, "dht_pool_level", I64, *_MOMENTS_ARGTYPES, PTR, PTR, PTR, PTR, PTR, PTR)(
        *arguments, new_mean.data_ptr(), new_var.data_ptr(), pointer(size, _LONG),
        pointer(bbox, _LONG), pointer(batch, _LONG), new_size.data_ptr(), new_bbox.data_ptr(),
        new_batch.data_ptr())
    del alive  # (alive until the kernel returned)
    if rc == _ERR_CAST:
        return (*weighted_moments(mean, var, labels, k_new, weight, fallback, True, movable),
                *pool_integers(labels, k_new, size, bbox, batch))
    _check(rc, "labels", k_new)
    return new_mean, new_var, new_size, new_bbox, new_batch
