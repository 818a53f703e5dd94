"""ctypes bindings of ``tokens.c`` (callers: :mod:`dhtgraph.nn.tokens`,
:mod:`dhtgraph.features.mean_injection`, :mod:`dhtgraph.features.pooling`,
:mod:`dhtgraph.selection.budget`).

Float kernels for float32 and float64 tensors only (:func:`float_kind`); callers use
them only when no gradient is recorded. Each function returns its tensors, or ``None``
when an index is out of range, an index tensor is not of an integer dtype or a shape
does not fit (nothing is raised here: the caller then runs its tensor implementation,
whose errors are the documented ones).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import I64, PTR, address, as_indices, function, pointer, rows

__all__ = ["float_kind", "mean_injection", "block_means", "ward_terms", "merged_rows",
           "merge_sizes", "count_labels", "budget_loss"]

_KINDS = {torch.float32: "f32", torch.float64: "f64"}


def float_kind(*tensors: Tensor) -> Optional[str]:
    """'f32' or 'f64' when every tensor has that one dtype, else None."""
    kinds = {_KINDS.get(t.dtype) for t in tensors}
    return kinds.pop() if len(kinds) == 1 and None not in kinds else None


_LONG = torch.long


def _state_pairs(state: Tensor, pairs: Tensor) -> Optional[tuple[str, Tensor, Tensor, tuple]]:
    # The float kind, the contiguous unit states (n, w >= 1), the (2, m) pairs as
    # contiguous int64 (keep them until the kernel returns) and the kernel's leading
    # arguments (state, n, w, the two rows of pairs, m), or None.
    kind = float_kind(state)
    if (kind is None or state.dim() != 2 or state.shape[1] < 1 or pairs.dim() != 2
            or pairs.shape[0] != 2):
        return None
    found = as_indices(pairs=pairs)
    if found is None:
        return None
    state, ends = _values(state).contiguous(), found[0]
    return kind, state, ends, (pointer(state, state.dtype), *state.shape, *rows(ends),
                               ends.shape[1])


def _values(t: Tensor) -> Tensor:
    # The stored values of a lazily negated tensor are not its values.
    return t.resolve_neg() if t.is_neg() else t


def mean_injection(image: Tensor, labels: Tensor, k: int, sizes: Tensor,
                   values: Optional[Tensor]) -> Optional[tuple[Tensor, Optional[Tensor]]]:
    """The token means (k, C) of a (B, C, H, W) image and, with ``values`` (k, C), the
    injected image ``x − mean[l] + values[l]`` (B, C, H, W), contiguous."""
    if image.dim() != 4:
        return None
    b, c, h, w = image.shape
    kind = float_kind(image) if values is None else float_kind(image, values)
    if kind is None or labels.numel() != b * h * w or sizes.numel() != k or k < 0:
        return None
    if values is not None and tuple(values.shape) != (k, c):
        return None
    found = as_indices(labels=labels, sizes=sizes)
    if found is None:
        return None
    labels, sizes = found
    image = _values(image).contiguous()
    dtype = image.dtype
    mean = image.new_empty(k, c)
    out = None
    if values is not None:
        values = _values(values).contiguous()
        out = torch.empty_like(image, memory_format=torch.contiguous_format)
    status = function("tokens", f"dht_mean_injection_{kind}", I64, PTR, I64, I64, I64, PTR,
                      I64, PTR, PTR, PTR, PTR)(
        pointer(image, dtype), b, c, h * w, pointer(labels, _LONG), k, pointer(sizes, _LONG),
        None if values is None else pointer(values, dtype), pointer(mean, dtype),
        None if out is None else pointer(out, dtype))
    return None if status < 0 else (mean, out)


def block_means(x: Tensor, labels: Tensor, k: int, sizes: Tensor,
                weights: Optional[Tensor] = None) -> Optional[Tensor]:
    """``zeros(k, d).index_add_(0, labels, x [* weights]) / sizes`` (k, d)."""
    kind = float_kind(x)
    if kind is None or x.dim() != 2 or labels.numel() != x.shape[0] or sizes.numel() != k:
        return None
    if (weights is not None and weights.numel() != x.shape[0]) or k < 0:
        return None
    found = as_indices(labels=labels, sizes=sizes,
                     **({} if weights is None else {"weights": weights}))
    if found is None:
        return None
    labels, sizes, *rest = found
    weights = rest[0] if rest else None
    x = _values(x)
    out = x.new_empty(k, x.shape[1])
    # Read x through its strides (the tokenizer's pixel features are a view of planes).
    status = function("tokens", f"dht_block_means_{kind}", I64, PTR, I64, I64, I64, I64, PTR,
                      I64, PTR, PTR, PTR)(
        address(x), x.shape[0], x.shape[1], x.stride(0), x.stride(1),
        pointer(labels, _LONG), k,
        None if weights is None else pointer(weights, _LONG), pointer(sizes, _LONG),
        pointer(out, x.dtype))
    return None if status < 0 else out


def ward_terms(state: Tensor, edges: Tensor) -> Optional[tuple[Tensor, Tensor, Tensor]]:
    """Per edge (a, b) of the unit states [size, f]: ``(f_a − f_b)²`` (E, C),
    ``s_a s_b / (s_a + s_b)`` (E,) and ``s_a + s_b`` (E,)."""
    found = _state_pairs(state, edges)
    if found is None:
        return None
    kind, state, ends, head = found
    sq = state.new_empty(ends.shape[1], state.shape[1] - 1)
    terms = state.new_empty(2, ends.shape[1])
    status = function("tokens", f"dht_ward_terms_{kind}", I64, PTR, I64, I64, PTR, PTR, I64,
                      PTR, PTR, PTR)(*head, pointer(sq, state.dtype), *rows(terms))
    del ends  # (alive until the kernel returned)
    if status < 0:
        return None
    weight, union = terms.unbind(0)
    return sq, weight, union


def merged_rows(state: Tensor, pair: Tensor) -> Optional[Tensor]:
    """The state rows [s_a + s_b, (f_a s_a + f_b s_b) / (s_a + s_b)] of the pairs (2, m)."""
    found = _state_pairs(state, pair)
    if found is None:
        return None
    kind, state, ends, head = found
    out = state.new_empty(ends.shape[1], state.shape[1])
    status = function("tokens", f"dht_merged_rows_{kind}", I64, PTR, I64, I64, PTR, PTR, I64,
                      PTR)(*head, pointer(out, state.dtype))
    del ends  # (alive until the kernel returned)
    return None if status < 0 else out


def merge_sizes(labels: Tensor, k: int, sizes: Tensor,
                batch: Tensor) -> Optional[tuple[Tensor, Tensor]]:
    """The summed sizes (k,) of the blocks ``labels`` and the image (k,) of each."""
    n = labels.numel()
    if sizes.numel() != n or batch.numel() != n or k < 0:
        return None
    found = as_indices(labels=labels, sizes=sizes, batch=batch)
    if found is None:
        return None
    labels, sizes, batch = found
    merged, image = torch.empty(k, dtype=_LONG), torch.empty(k, dtype=_LONG)
    status = function("tokens", "dht_merge_sizes", I64, PTR, I64, I64, PTR, PTR, PTR, PTR)(
        pointer(labels, _LONG), n, k, pointer(sizes, _LONG), pointer(batch, _LONG),
        pointer(merged, _LONG), pointer(image, _LONG))
    return None if status < 0 else (merged, image)


def count_labels(labels: Tensor, k: int) -> Optional[Tensor]:
    """``torch.bincount(labels, minlength=k)`` (k,) for labels in ``0..k−1``."""
    found = as_indices(labels=labels)
    if found is None or k < 0:
        return None
    (labels,) = found
    counts = torch.empty(k, dtype=_LONG)
    status = function("tokens", "dht_count_labels", I64, PTR, I64, I64, PTR)(
        pointer(labels, _LONG), labels.numel(), k, pointer(counts, _LONG))
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
    k, c = features.shape
    if sizes.numel() != k or batch.numel() != k or num_images < 0:
        return None
    found = as_indices(labels=labels, sizes=sizes, batch=batch)
    if found is None:
        return None
    labels, sizes, batch = found
    features, feats = _values(features), _values(feats)
    sq = torch.empty(k, c, dtype=torch.float64)
    status = function("tokens", f"dht_budget_loss_terms_{kind}", I64, PTR, I64, I64, I64, PTR,
                      I64, I64, PTR, PTR)(
        address(features), k, c, features.stride(0),
        address(feats), feats.shape[0], feats.stride(0), pointer(labels, _LONG),
        pointer(sq, torch.float64))
    if status < 0:
        return None
    added = sq.sum(-1)
    loss = torch.empty(num_images, dtype=torch.float64)
    status = function("tokens", "dht_budget_loss", I64, PTR, PTR, PTR, I64, I64, PTR)(
        pointer(added, torch.float64), pointer(sizes, _LONG), pointer(batch, _LONG), k,
        num_images, pointer(loss, torch.float64))
    return None if status < 0 else loss
