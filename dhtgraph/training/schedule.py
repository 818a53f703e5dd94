"""Learning-rate schedule: linear warm-up, then cosine decay."""

from __future__ import annotations

import math

import torch

__all__ = ["cosine_factor", "cosine_schedule"]


def cosine_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak rate for optimizer step ``step`` (0-based).

    ``(step + 1) / warmup_steps`` during the warm-up (never 0, so the first step moves),
    then ``min_ratio + (1 − min_ratio) · ½ (1 + cos(π t))`` with
    ``t = (step − warmup_steps) / (total_steps − warmup_steps)`` going from 0 to < 1.

    Examples
    --------
    >>> [round(cosine_factor(s, 6, 2), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


class _Factor:
    """Picklable schedule callable (LambdaLR keeps it; only its numbers matter)."""

    def __init__(self, total_steps: int, warmup_steps: int, min_ratio: float):
        self.total_steps, self.warmup_steps, self.min_ratio = total_steps, warmup_steps, min_ratio

    def __call__(self, step: int) -> float:
        return cosine_factor(step, self.total_steps, self.warmup_steps, self.min_ratio)


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float,
                    min_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`cosine_factor` with
    ``warmup_steps = round(warmup_fraction · total_steps)``."""
    warmup = int(round(warmup_fraction * total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _Factor(total_steps, warmup, min_ratio))
