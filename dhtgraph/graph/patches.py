"""The square-patch partition of a plain ViT (method spec §7, "For a square-patch partition").

A ViT cuts an H×W image into (H/P)·(W/P) non-overlapping P×P patches and reads them in
row-major order. :func:`grid_partition` is that partition of the B·H·W pixels, numbered
like timm's patch sequence, so that a model fed with it reproduces the plain ViT.
"""

from __future__ import annotations

import torch

from .._checks import check_count
from ..partition import Partition

__all__ = ["grid_partition"]


def grid_partition(batch_size: int, height: int, width: int, patch_size: int, *,
                   device: torch.device | str | None = None) -> Partition:
    """Partition B images into square ``patch_size`` patches.

    Parameters
    ----------
    batch_size : int
        B ≥ 1.
    height, width : int
        H, W; each must be a multiple of ``patch_size``.
    patch_size : int
        P ≥ 1.
    device : torch.device or str, optional
        Where the labels live.

    Returns
    -------
    Partition of the B·H·W pixels
        Pixel ``b·H·W + y·W + x`` is in block ``b·Gh·Gw + (y // P)·Gw + x // P`` with
        ``Gh = H / P``, ``Gw = W / P``: blocks numbered row-major per image, images one
        after the other, exactly timm's patch order. These labels are already canonical.

    Raises
    ------
    ValueError
        If ``height`` or ``width`` is not divisible by ``patch_size``.

    Examples
    --------
    >>> grid_partition(1, 4, 4, 2).labels.view(4, 4).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    """
    b = check_count(batch_size, "batch_size", minimum=1)
    h = check_count(height, "height", minimum=1)
    w = check_count(width, "width", minimum=1)
    p = check_count(patch_size, "patch_size", minimum=1)
    for name, side in (("height", h), ("width", w)):
        if side % p:
            raise ValueError(f"Expected '{name}' to be a multiple of 'patch_size' {p} (got {side}); "
                             f"crop or pad the image, or use a patch size that divides it")
    gh, gw = h // p, w // p
    rows = torch.arange(h, device=device) // p
    cols = torch.arange(w, device=device) // p
    cell = (rows[:, None] * gw + cols[None, :]).reshape(1, h * w)
    offset = torch.arange(b, device=device)[:, None] * (gh * gw)
    return Partition((cell + offset).reshape(-1), b * gh * gw, canonical=True)
