"""ctypes bindings of ``tokens.c`` (callers: :mod:`dhtgraph.nn.tokens`,
:mod:`dhtgraph.features.mean_injection`, :mod:`dhtgraph.features.pooling`,
:mod:`dhtgraph.selection.budget`).

Float kernels for float32 and float64 tensors only (:func:`float_kind`); callers use
them only when no gradient is recorded. Each function returns its tensors, or ``None``
when an index is out of range (nothing is raised here: the caller then runs its tensor
implementation, whose errors are the documented ones).
"""

from __future__ import annotations

import ctypes
from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, function, pointer

__all__ = ["float_kind", "mean_injection", "block_means", "ward_terms", "merged_rows",
           "merge_sizes", "count_labels", "budget_loss"]

_KINDS = {torch.float32: "f32", torch.float64: "f64"}


def float_kind(*tensors: Tensor) -> Optional[str]:
    """'f32' or 'f64' when every tensor has that one dtype, else None."""
    kinds = {_KINDS.get(t.dtype) for t in tensors}
    return kinds.pop() if len(kinds) == 1 and None not in kinds else None


def _long(t: Tensor) -> Tensor:
    return t.to(torch.long).contiguous()


def _rows(t: Tensor) -> tuple[ctypes.c_void_p, ctypes.c_void_p]:
    # The addresses of the two rows of a contiguous (2, m) tensor (no row views).
    first = pointer(t).value or 0
    return ctypes.c_void_p(first), ctypes.c_void_p(first + t.shape[1] * t.element_size())


def _values(t: Tensor) -> Tensor:
    # The stored values of a lazily negated tensor are not its values.
    return t.resolve_neg() if t.is_neg() else t


def mean_injection(image: Tensor, labels: Tensor, k: int, sizes: Tensor,
                   values: Optional[Tensor]) -> Optional[tuple[Tensor, Optional[Tensor]]]:
    """The token means (k, C) of a (B, C, H, W) image and, with ``values`` (k, C), the
    injected image ``x − mean[l] + values[l]`` (B, C, H, W), contiguous."""
    b, c, h, w = image.shape
    kind = float_kind(image) if values is None else float_kind(image, values)
    if kind is None or labels.numel() != b * h * w or sizes.numel() != k:
        return None
    image, labels, sizes = _values(image).contiguous(), _long(labels), _long(sizes)
    mean = image.new_empty(k, c)
    out = None
    if values is not None:
        values = _values(values).contiguous()
        out = torch.empty_like(image)
    status = function("tokens", f"dht_mean_injection_{kind}", I64, PTR, I64, I64, I64, PTR,
                      I64, PTR, PTR, PTR, PTR)(
        pointer(image), b, c, h * w, pointer(labels), k, pointer(sizes),
        None if values is None else pointer(values), pointer(mean),
        None if out is None else pointer(out))
    return None if status < 0 else (mean, out)


def block_means(x: Tensor, labels: Tensor, k: int, sizes: Tensor,
                weights: Optional[Tensor] = None) -> Optional[Tensor]:
    """``zeros(k, d).index_add_(0, labels, x [* weights]) / sizes`` (k, d)."""
    kind = float_kind(x)
    if kind is None or x.dim() != 2 or labels.numel() != x.shape[0] or sizes.numel() != k:
        return None
    if weights is not None and weights.numel() != x.shape[0]:
        return None
    x, labels, sizes = _values(x), _long(labels), _long(sizes)
    if weights is not None:
        weights = _long(weights)
    out = x.new_empty(k, x.shape[1])
    # Read x through its strides (the tokenizer's pixel features are a view of planes).
    status = function("tokens", f"dht_block_means_{kind}", I64, PTR, I64, I64, I64, I64, PTR,
                      I64, PTR, PTR, PTR)(
        ctypes.c_void_p(x.data_ptr()), x.shape[0], x.shape[1], x.stride(0), x.stride(1),
        pointer(labels), k,
        None if weights is None else pointer(weights), pointer(sizes), pointer(out))
    return None if status < 0 else out


def ward_terms(state: Tensor, edges: Tensor) -> Optional[tuple[Tensor, Tensor, Tensor]]:
    """Per edge (a, b) of the unit states [size, f]: ``(f_a − f_b)²`` (E, C),
    ``s_a s_b / (s_a + s_b)`` (E,) and ``s_a + s_b`` (E,)."""
    kind = float_kind(state)
    if kind is None or state.dim() != 2 or state.shape[1] < 1:
        return None
    state, edges = _values(state).contiguous(), _long(edges)
    n, w = state.shape
    e = edges.shape[1]
    sq = state.new_empty(e, w - 1)
    terms = state.new_empty(2, e)
    a, t = _rows(edges), _rows(terms)
    status = function("tokens", f"dht_ward_terms_{kind}", I64, PTR, I64, I64, PTR, PTR, I64,
                      PTR, PTR, PTR)(
        pointer(state), n, w, a[0], a[1], e, pointer(sq), t[0], t[1])
    if status < 0:
        return None
    weight, union = terms.unbind(0)
    return sq, weight, union


def merged_rows(state: Tensor, pair: Tensor) -> Optional[Tensor]:
    """The state rows [s_a + s_b, (f_a s_a + f_b s_b) / (s_a + s_b)] of the pairs (2, m)."""
    kind = float_kind(state)
    if kind is None or state.dim() != 2 or state.shape[1] < 1:
        return None
    state, pair = _values(state).contiguous(), _long(pair)
    n, w = state.shape
    m = pair.shape[1]
    out = state.new_empty(m, w)
    a, b = _rows(pair)
    status = function("tokens", f"dht_merged_rows_{kind}", I64, PTR, I64, I64, PTR, PTR, I64,
                      PTR)(
        pointer(state), n, w, a, b, m, pointer(out))
    return None if status < 0 else out


def merge_sizes(labels: Tensor, k: int, sizes: Tensor,
                batch: Tensor) -> Optional[tuple[Tensor, Tensor]]:
    """The summed sizes (k,) of the blocks ``labels`` and the image (k,) of each."""
    n = labels.numel()
    if sizes.numel() != n or batch.numel() != n:
        return None
    labels, sizes, batch = _long(labels), _long(sizes), _long(batch)
    merged, image = torch.empty(k, dtype=torch.long), torch.empty(k, dtype=torch.long)
    status = function("tokens", "dht_merge_sizes", I64, PTR, I64, I64, PTR, PTR, PTR, PTR)(
        pointer(labels), n, k, pointer(sizes), pointer(batch), pointer(merged), pointer(image))
    return None if status < 0 else (merged, image)


def count_labels(labels: Tensor, k: int) -> Optional[Tensor]:
    """``torch.bincount(labels, minlength=k)`` (k,) for labels in ``0..k−1``."""
    labels = _long(labels)
    counts = torch.empty(k, dtype=torch.long)
    status = function("tokens", "dht_count_labels", I64, PTR, I64, I64, PTR)(
        pointer(labels), labels.numel(), k, pointer(counts))
    return None if status < 0 else counts


def budget_loss(features: Tensor, feats: Tensor, labels: Tensor, sizes: Tensor,
                batch: Tensor, num_images: int) -> Optional[Tensor]:
    """``Σ_t m_t ‖f_t − g_T(t)‖²`` per image (float64), as the budget's tensor path
    computes it: squared differences here, the sum over the channels in torch, then the
    per-image sums of ``added * m`` in token order."""
    kind = float_kind(features, feats)
    if (kind is None or features.dim() != 2 or feats.dim() != 2 or sizes.dtype != torch.long
            or features.shape[1] != feats.shape[1] or labels.numel() != features.shape[0]
            or features.stride(1) != 1 or feats.stride(1) != 1):
        return None
    features, feats, labels = _values(features), _values(feats), _long(labels)
    k, c = features.shape
    sq = torch.empty(k, c, dtype=torch.float64)
    status = function("tokens", f"dht_budget_loss_terms_{kind}", I64, PTR, I64, I64, I64, PTR,
                      I64, I64, PTR, PTR)(
        ctypes.c_void_p(features.data_ptr()), k, c, features.stride(0),
        ctypes.c_void_p(feats.data_ptr()), feats.shape[0], feats.stride(0), pointer(labels),
        pointer(sq))
    if status < 0:
        return None
    added = sq.sum(-1)
    loss = torch.empty(num_images, dtype=torch.float64)
    sizes, batch = _long(sizes), _long(batch)
    status = function("tokens", "dht_budget_loss", I64, PTR, PTR, PTR, I64, I64, PTR)(
        pointer(added), pointer(sizes), pointer(batch), k, num_images, pointer(loss))
    return None if status < 0 else loss
