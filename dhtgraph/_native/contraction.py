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

from . import I64, PTR, function

__all__ = ["quantize", "tie_hash", "local_index", "equal_ends", "argmax_choice",
           "constant_channels", "pool_integers", "weighted_moments", "POTENTIAL_DTYPES",
           "MEAN_DTYPES", "MOMENT_DTYPES"]

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
_OK, _ERR_INDEX, _ERR_LOCAL, _ERR_MEMORY, _ERR_CAST = 0, -1, -2, -3, -4
_LONG = torch.long


def _long(t: Tensor) -> Tensor:
    # Contiguous int64 (no copy, and almost no overhead, when it already is).
    if t.dtype is _LONG and t.is_contiguous():
        return t
    return t.to(_LONG).contiguous()


def _floats(t: Tensor) -> tuple[Tensor, int]:
    # A contiguous float32/float64 tensor and its kernel code (read through its data
    # pointer: no detach needed, and none made, for a tensor that requires grad).
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.detach().float()
    code = _FLOAT_CODES.get(t.dtype)
    if code is None:
        raise ValueError(f"Expected a floating tensor of one of {MEAN_DTYPES} for a native "
                         f"kernel (got {t.dtype})")
    return (t if t.is_contiguous() else t.detach().contiguous()), code


def _ends(edge_index: Tensor) -> tuple[int, int, int, tuple]:
    # Data pointers of the two rows of a (2, E) index tensor (no row views when it is
    # contiguous int64), E, and the tensors to keep alive during the call.
    m = edge_index.shape[1]
    if edge_index.dtype is _LONG and edge_index.is_contiguous():
        base = edge_index.data_ptr()
        return base, base + 8 * m, m, (edge_index,)
    src, dst = _long(edge_index[0]), _long(edge_index[1])
    return src.data_ptr(), dst.data_ptr(), m, (src, dst)


def _check(rc: int, name: str, k: int) -> None:
    if rc == _ERR_INDEX:
        raise IndexError(f"Expected every entry of '{name}' in [0, {k}) (an index out of "
                         "range)")
    if rc == _ERR_MEMORY:
        raise MemoryError("native kernel: no memory for its scratch")


def quantize(potential: Tensor) -> Tensor:
    """``quantize_potential(potential)`` (int64) of a float32 or float64 tensor."""
    if potential.dtype not in POTENTIAL_DTYPES:
        raise ValueError(f"Expected 'potential' of dtype float32 or float64 (got "
                         f"{potential.dtype})")
    p, code = _floats(potential)
    out = torch.empty(p.shape, dtype=_LONG)
    function(_SET, "dht_quantize", None, PTR, I64, I64, PTR)(
        p.data_ptr(), code, p.numel(), out.data_ptr())
    return out


def tie_hash(a: Tensor, b: Tensor) -> Tensor:
    """``tie_hash(a, b)`` of two int64 tensors of one shape (any values: the kernel
    reduces them as the tensor code does)."""
    if a.shape != b.shape:
        raise ValueError(f"Expected 'a' and 'b' of the same shape (got {tuple(a.shape)} "
                         f"and {tuple(b.shape)})")
    a, b = _long(a), _long(b)
    out = torch.empty(a.shape, dtype=_LONG)
    function(_SET, "dht_tie_hash", None, PTR, PTR, I64, PTR)(
        a.data_ptr(), b.data_ptr(), a.numel(), out.data_ptr())
    return out


def local_index(batch: Tensor) -> Tensor:
    """``local_index(batch)``: every block's index within its run of equal ``batch``."""
    batch = _long(batch)
    out = torch.empty(batch.shape, dtype=_LONG)
    function(_SET, "dht_local_index", None, PTR, I64, PTR)(
        batch.data_ptr(), batch.numel(), out.data_ptr())
    return out


def equal_ends(mean: Tensor, edge_index: Tensor) -> Tensor:
    """``equal_ends(mean, edge_index)``: BoolTensor (E,)."""
    items, code = _floats(mean)
    src, dst, m, keep = _ends(edge_index)
    out = torch.empty(m, dtype=torch.bool)
    rc = function(_SET, "dht_equal_ends", I64, PTR, I64, I64, I64, PTR, PTR, I64, PTR)(
        items.data_ptr(), code, items.shape[1], items.shape[0], src, dst, m, out.data_ptr())
    del keep
    _check(rc, "edge_index", items.shape[0])
    return out


def argmax_choice(potential: Tensor, edge_index: Tensor, num_nodes: int,
                  movable: Optional[Tensor], hashed: bool, batch: Optional[Tensor],
                  mean: Optional[Tensor]) -> Tensor:
    """``argmax_choice`` (LongTensor (K,)) in one pass over the edges.

    ``potential`` (E,) is float32/float64 (quantised in the kernel) or the int64 result
    of ``quantize_potential``; ``movable`` a BoolTensor (K,) or None; ``batch`` (K,) and
    ``mean`` (K, d) are read by the hashed rule only.
    """
    code = _FLOAT_CODES.get(potential.dtype)
    if code is None:
        if potential.dtype is not _LONG:
            raise ValueError(f"Expected 'potential' of dtype float32, float64 or "
                             f"(quantised) int64 (got {potential.dtype})")
        code = _DT_INT64
    p = potential if potential.is_contiguous() else potential.detach().contiguous()
    src, dst, m, keep = _ends(edge_index)
    k = int(num_nodes)
    move = None if movable is None else movable.contiguous()
    batch_t = _long(batch) if hashed and batch is not None else None
    items, mean_code, d = None, _DT_F32, 0
    if hashed and mean is not None:
        items, mean_code = _floats(mean)
        d = items.shape[1]
    choice = torch.empty(k, dtype=_LONG)
    fn = function(_SET, "dht_argmax_choice", I64, PTR, I64, PTR, PTR, I64, I64, PTR, I64,
                  PTR, I64, PTR, I64, I64, PTR)
    # (an empty tensor's data pointer may be NULL: the plateau rule is its own flag)
    rc = fn(p.data_ptr(), code, src, dst, m, k,
            None if move is None else move.data_ptr(), int(bool(hashed)),
            None if batch_t is None else batch_t.data_ptr(), int(items is not None),
            None if items is None else items.data_ptr(), mean_code, d, choice.data_ptr())
    del keep
    if rc == _ERR_LOCAL:
        largest = int(local_index(batch_t).max()) if batch_t is not None else k - 1
        raise ValueError(f"Expected graphs of fewer than 2**31 blocks with "
                         f"tie_break='hashed' (got {largest + 1})")
    _check(rc, "edge_index", k)
    return choice


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
    labels = _long(labels)
    k_new, d = int(num_blocks), items.shape[1]
    out = torch.empty((k_new, d), dtype=torch.bool)
    rc = function(_SET, "dht_constant_channels", I64, PTR, I64, I64, PTR, PTR, I64, I64, PTR)(
        labels.data_ptr(), labels.numel(), k_new, items.data_ptr(),
        None if spread is None else spread.data_ptr(), code, d, out.data_ptr())
    _check(rc, "labels", k_new)
    return out


def pool_integers(labels: Tensor, num_blocks: int, size: Tensor, bbox: Tensor,
                  batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``_pool_blocks``'s integer statistics: summed sizes (K',), merged boxes (K', 4)
    (min of the first two columns, max of the last two) and the image of every block.
    ``labels``, ``size``, ``batch`` (K,) and ``bbox`` (K, 4) are int64."""
    labels, size, bbox, batch = _long(labels), _long(size), _long(bbox), _long(batch)
    k_new = int(num_blocks)
    new_size = torch.empty(k_new, dtype=_LONG)
    new_bbox = torch.empty((k_new, 4), dtype=_LONG)
    new_batch = torch.empty(k_new, dtype=_LONG)
    rc = function(_SET, "dht_pool_integers", I64, PTR, I64, I64, PTR, PTR, PTR, PTR, PTR, PTR)(
        labels.data_ptr(), labels.numel(), k_new, size.data_ptr(), bbox.data_ptr(),
        batch.data_ptr(), new_size.data_ptr(), new_bbox.data_ptr(), new_batch.data_ptr())
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
    return t, t.data_ptr(), t.stride()


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
    if mean.dtype not in MOMENT_DTYPES or mean.dim() != 2:
        raise ValueError(f"Expected 'mean' of shape (K, d) and dtype float32 or float64 (got "
                         f"{tuple(mean.shape)}, {mean.dtype})")
    k, d = mean.shape
    dtype = mean.dtype
    mean = mean.resolve_neg() if mean.is_neg() else mean
    var, vp, vs = _strided(var, dtype, (k, d))
    weight, wp, (ws,) = _strided(weight, dtype, (k,), True)
    fallback, fp, (fs,) = _strided(fallback, dtype, (k,), True)
    labels = _long(labels)
    if labels.shape != (k,):
        raise ValueError(f"Expected 'labels' of shape ({k},) (got {tuple(labels.shape)})")
    move = None
    if movable is not None:
        if var is None or movable.dtype != torch.bool or movable.shape != (k,):
            raise ValueError(f"Expected 'movable' of shape ({k},) and dtype bool, with 'var'")
        move = movable.contiguous()
    k_new = int(num_blocks)
    new_mean = torch.empty((k_new, d), dtype=dtype)
    new_var = torch.empty((k_new, d), dtype=dtype)
    ms = mean.stride()
    fn = function(_SET, "dht_weighted_moments", I64, PTR, I64, I64, I64, I64, PTR, I64, I64,
                  PTR, I64, I64, PTR, I64, I64, PTR, I64, I64, I64, PTR, PTR, PTR)
    rc = fn(labels.data_ptr(), k, k_new, d, _FLOAT_CODES[dtype], mean.data_ptr(), ms[0],
            ms[1], vp, vs[0], vs[1], wp, ws, int(weight.dtype is _LONG), fp, fs,
            int(fallback is not None and fallback.dtype is _LONG), int(bool(snap)),
            None if move is None else move.data_ptr(), new_mean.data_ptr(),
            new_var.data_ptr())
    if rc == _ERR_CAST:
        # Integers the kernel does not convert exactly: torch's conversion, then again.
        return weighted_moments(mean, var, labels, k_new, weight.to(dtype),
                                None if fallback is None else fallback.to(dtype), snap,
                                movable)
    _check(rc, "labels", k_new)
    return new_mean, new_var
