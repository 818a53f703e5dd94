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
from typing import Literal

import torch
from torch import Tensor

__all__ = ["Criterion", "CRITERIA", "information_criterion", "penalty", "check_criterion",
           "check_iota"]

Criterion = Literal["aic", "aicc", "bic", "cic"]
CRITERIA = ("aic", "aicc", "bic", "cic")
# Added to m before the penalty (the reference's eps); invisible in float32 for m ≥ 1
# but keeps k finite should a caller pass fractional sizes.
_SIZE_EPS = 1e-8


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
    criterion = check_criterion(criterion)
    m = size.to(torch.float32) + _SIZE_EPS
    k = 1.0 / (2 * m - 2 * m.sqrt())
    if criterion == "aic":
        return 2 * k
    if criterion == "aicc":
        return 2 * k + 2 * (k.pow(2) + k) / (m - k - 1)
    if criterion == "bic":
        return m.log() * k
    return m.log().add(1) * k


def information_criterion(var: Tensor, size: Tensor, num_pixels: int | Tensor,
                          criterion: Criterion = "aicc", iota: float = 5.0) -> Tensor:
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

    Returns
    -------
    Tensor of shape (K,), float32
        −∞ for one-pixel blocks.
    """
    criterion = check_criterion(criterion)
    iota = check_iota(iota)
    var = var.detach().to(torch.float32)
    m = size.to(torch.float32)
    fit = (m / num_pixels) * (2 * math.pi * var).prod(-1).add(float(iota)).log()
    ic = (fit + penalty(size, criterion)).neg()
    return torch.where(size > 1, ic, torch.full_like(ic, -math.inf))
