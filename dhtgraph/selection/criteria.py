"""Information criteria that score a block as a Gaussian model of its pixels (spec §5).

For a block S with ``m`` pixels, per-channel variance ``σ²_c`` of the pixel features and an
image of ``N_img = H·W`` pixels:

* fit term ``L(S) = (m / N_img) · log(ι + Π_c 2πσ²_c)``;
* effective parameter count ``k(m) = 1 / (2m − 2√m)``, the reciprocal of the number of
  edges of a ``√m × √m`` square of pixels;
* penalty ``P(m)``: AIC ``2k``; AICc ``2k + 2(k² + k)/(m − k − 1)``; BIC ``k·ln m``;
  CIC ``k·(ln m + 1)``;
* ``IC(S) = −(L(S) + P(m))`` — higher is better.

``ι`` (iota) is the granularity knob: a larger ι flattens the fit term, so small blocks
win more often and more tokens come out. A single pixel has no edges (``k = ∞``); its IC
is −∞ here (the reference gets NaN for AICc), and pixels start the selection at
``−√N_img`` instead (spec §5).
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, Optional, Union

import torch
from torch import Tensor

from .. import _native
from .._checks import is_integer_dtype

__all__ = ["Criterion", "CRITERIA", "information_criterion", "penalty", "penalty_table",
           "check_criterion", "check_iota", "PENALTY_TABLE_LIMIT"]

Criterion = Literal["aic", "aicc", "bic", "cic"]
CRITERIA = ("aic", "aicc", "bic", "cic")
# Added to m before the penalty (the reference's eps); invisible in float32 for m ≥ 1
# but keeps k finite should a caller pass fractional sizes.
_SIZE_EPS = 1e-8
#: The longest penalty table :func:`penalty_table` keeps (entries; float32: 16 MiB).
PENALTY_TABLE_LIMIT = 1 << 22
# The kept tables, one per (criterion, device), grown on demand (see penalty_table).
_PENALTY_TABLES: dict[tuple[str, torch.device], Tensor] = {}


def check_criterion(criterion: str, name: str = "criterion") -> str:
    """Return the lower-cased criterion name; raise ValueError naming ``name`` otherwise."""
    if not isinstance(criterion, str) or criterion.lower() not in CRITERIA:
        raise ValueError(f"Expected '{name}' to be one of {CRITERIA} (got {criterion!r})")
    return criterion.lower()


def check_iota(iota, name: str = "iota") -> float:
    """Return ``iota`` as a float; it must be a real number, finite and > 0.

    Python and NumPy real numbers are accepted, and so is a 0-dimensional real tensor or
    array (``torch.tensor(3.)``, ``np.array(3.)``): ι is a hyper-parameter, read once on
    the host (no gradient flows into it).

    Raises
    ------
    TypeError
        If ``iota`` is not a real number (strings, bools, complex numbers and tensors
        with more than one element or of bool/complex dtype are refused).
    ValueError
        If it is not finite or not positive.
    """
    iota = _real_scalar(iota, name)
    if isinstance(iota, bool) or not isinstance(iota, numbers.Real):
        raise TypeError(f"Expected '{name}' to be a positive finite number "
                        f"(got {type(iota).__name__} {iota!r})")
    if not (math.isfinite(iota) and iota > 0):
        raise ValueError(f"Expected '{name}' to be a positive finite number (got {iota!r})")
    return float(iota)


def _real_scalar(value, name: str):
    """A 0-dim real tensor/array as a Python number; anything else unchanged."""
    if isinstance(value, Tensor) or type(value).__name__ == "ndarray":
        shape = tuple(value.shape)
        dtype = value.dtype
        is_real = (not (dtype.is_complex or dtype == torch.bool) if isinstance(value, Tensor)
                   else getattr(dtype, "kind", "") in "iuf")
        if shape != () or not is_real:
            raise TypeError(f"Expected '{name}' to be a positive finite number or a "
                            f"0-dimensional real tensor (got {type(value).__name__} of shape "
                            f"{shape} and dtype {dtype})")
        if isinstance(value, Tensor):
            if value.is_meta:
                raise TypeError(f"Expected '{name}' to be a positive finite number (got a "
                                "meta tensor, which holds no value)")
            return value.detach().cpu().item()
        return value.item()
    return value


def penalty(size: Tensor, criterion: Criterion = "aicc") -> Tensor:
    """The penalty ``P(m)`` (K,) of a block of ``size`` pixels (float32 arithmetic)."""
    return _penalty(size, check_criterion(criterion))


def _penalty(size: Tensor, criterion: str) -> Tensor:
    # Elementwise float32 ops only: every value depends on its own size alone (what
    # penalty_table relies on).
    m = size.to(torch.float32) + _SIZE_EPS
    k = 1.0 / (2 * m - 2 * m.sqrt())
    if criterion == "aic":
        return 2 * k
    if criterion == "aicc":
        return 2 * k + 2 * (k.pow(2) + k) / (m - k - 1)
    if criterion == "bic":
        return m.log() * k
    return m.log().add(1) * k


def penalty_table(length: int, criterion: Criterion = "aicc",
                  device: Union[str, torch.device, None] = None) -> Tensor:
    """``P(m)`` for the integer sizes ``m = 0, 1, …`` (float32, at least ``length`` entries).

    The table is :func:`penalty` of an integer ``arange``: the same elementwise float32
    ops on the same values, so ``penalty_table(L)[size]`` equals ``penalty(size)`` bit for
    bit for every integer size below ``L``. One gather per level then replaces the
    penalty's dozen ops.

    Tables of up to :data:`PENALTY_TABLE_LIMIT` entries are kept for the process, one per
    criterion and device, and grown (at least doubling, up to the limit) when a longer
    one is asked for; do not write into the returned tensor. Longer tables are built on
    every call and not kept.

    Raises
    ------
    ValueError
        If ``length`` is negative or ``criterion`` unknown.
    """
    criterion = check_criterion(criterion)
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"Expected 'length' to be a non-negative integer (got {length!r})")
    length = int(length)
    device = torch.device("cpu") if device is None else torch.device(device)
    if device.type != "cpu" and device.index is None:
        device = torch.empty(0, device=device).device  # the current device's index
    key = (criterion, device)
    table = _PENALTY_TABLES.get(key)
    if table is not None and table.numel() >= length:
        return table
    if length > PENALTY_TABLE_LIMIT:
        return _build_table(length, criterion, device)
    kept = 0 if table is None else table.numel()
    table = _build_table(max(length, min(2 * kept, PENALTY_TABLE_LIMIT)), criterion, device)
    _PENALTY_TABLES[key] = table  # threads may race here: their tables are equal
    return table


def _build_table(length: int, criterion: str, device: torch.device) -> Tensor:
    # A plain tensor even inside inference_mode (it outlives the call), never recorded.
    with torch.inference_mode(False), torch.no_grad():
        return _penalty(torch.arange(length, device=device), criterion)


def information_criterion(var: Tensor, size: Tensor, num_pixels: int | Tensor,
                          criterion: Criterion = "aicc", iota: float = 5.0, *,
                          penalties: Optional[Tensor] = None) -> Tensor:
    """``IC(S) = −(L(S) + P(m))`` for every block (higher is better).

    Parameters
    ----------
    var : Tensor of shape (K, d)
        Per-channel variance of the pixel features in each block.
    size : Tensor of shape (K,)
        Pixels per block m.
    num_pixels : int or Tensor of shape (K,)
        Pixels of the block's image, ``H·W``.
    criterion : {'aic', 'aicc', 'bic', 'cic'}, default 'aicc'
    iota : float, default 5.0
        ι > 0; larger → more, smaller blocks.
    penalties : Tensor, optional
        ``penalty_table(L, criterion)`` with every size below L: the penalties of integer
        sizes are read from it (the same values; fractional sizes are computed).

    Returns
    -------
    Tensor of shape (K,), float32
        −∞ for one-pixel blocks.

    Notes
    -----
    ``log`` and the product over channels run in torch; for integer sizes on CPU the
    rest (the float32 division, product, penalty gather, sum, negation and −∞ mask) is
    one native pass when the kernels are in use (``dhtgraph._native``, set ``levels``),
    bit for bit the same (no gradient flows here: ``var`` is detached).
    """
    criterion = check_criterion(criterion)
    iota = check_iota(iota)
    if var.requires_grad:
        var = var.detach()
    var = var.to(torch.float32)
    integer = size.dim() == 1 and is_integer_dtype(size.dtype)
    logdet = (2 * math.pi * var).prod(-1).add_(iota).log_()
    if integer and _native_end(size, logdet, num_pixels, penalties):
        return _native_information_criterion(size, logdet, num_pixels, criterion, penalties)
    fit = (size.to(torch.float32) / num_pixels) * logdet
    p = None
    if penalties is not None and size.dtype in (torch.long, torch.int) and size.dim() == 1:
        try:
            p = penalties.index_select(0, size)
        except IndexError:  # (CPU) a size outside the table: computed instead
            p = None
    if p is None:
        p = _penalty(size, criterion)
    ic = fit.add_(p).neg_()
    if integer:  # size <= 1 is not (size > 1) for integers
        return ic.masked_fill_(size <= 1, -math.inf)
    return torch.where(size > 1, ic, -math.inf)


def _native_end(size: Tensor, logdet: Tensor, num_pixels, penalties: Optional[Tensor]) -> bool:
    # The native end of information_criterion: integer sizes (K,), a float32 logdet of
    # the same shape, an int divisor or an integer one per block, a float32 table; CPU.
    # (No gradient to keep: var is detached, and integer tensors carry none.)
    if logdet.dtype != torch.float32 or logdet.shape != size.shape:
        return False
    tensors = [size, logdet]
    if isinstance(num_pixels, Tensor):
        if num_pixels.shape != size.shape or not is_integer_dtype(num_pixels.dtype):
            return False
        tensors.append(num_pixels)
    elif not _native.is_int64(num_pixels):
        return False
    if penalties is not None:
        if (size.dtype not in (torch.long, torch.int) or penalties.dtype != torch.float32
                or penalties.dim() != 1):
            return False
        tensors.append(penalties)
    return _native.enabled("levels", *tensors)


def _native_information_criterion(size: Tensor, logdet: Tensor, num_pixels: Union[int, Tensor],
                                  criterion: str, penalties: Optional[Tensor]) -> Tensor:
    # The division, product, penalty gather, sum, negation and −∞ mask of the tensor
    # path in one float32 pass (bit for bit); sizes outside the table: computed penalties.
    from .._native.levels import information_criterion_end

    if penalties is not None:
        ic = information_criterion_end(size, logdet, num_pixels, penalties=penalties)
        if ic is not None:
            return ic
    return information_criterion_end(size, logdet, num_pixels, penalty=_penalty(size, criterion))

