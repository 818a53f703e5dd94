"""Evaluation at the end of training: top-1 accuracy or mean IoU, summed over ranks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Evaluation", "confusion_matrix", "mean_iou", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    metric : {'top1', 'miou'}
        Which number ``value`` is.
    value : float
        Top-1 accuracy or mean IoU, in [0, 1].
    count : int
        Images evaluated (over all ranks).
    per_class : list of float or None
        IoU of every class (NaN for a class absent from both prediction and target),
        for segmentation.
    """

    metric: str
    value: float
    count: int
    per_class: Optional[list] = None

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "count": self.count,
                "per_class": self.per_class}


def confusion_matrix(prediction: Tensor, target: Tensor, num_classes: int,
                     ignore_index: int) -> Tensor:
    """Counts ``C[t, p]`` of pixels with target t predicted p; (num_classes, num_classes).

    ``prediction`` and ``target`` are integer tensors of one shape; pixels whose target
    is ``ignore_index`` are left out.
    """
    keep = target != ignore_index
    t, p = target[keep].long(), prediction[keep].long()
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(
        num_classes, num_classes)


def mean_iou(confusion: Tensor) -> tuple[float, list]:
    """Mean over classes of ``|t ∩ p| / |t ∪ p|``, counting only classes present in the
    target or the prediction; also returns the per-class list (NaN when absent)."""
    confusion = confusion.double()
    inter = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))
    present = union > 0
    value = float(iou[present].mean()) if bool(present.any()) else float("nan")
    return value, iou.tolist()


@torch.no_grad()
def evaluate(model, loader, task: str, num_classes: int, ignore_index: int, device,
             forward) -> Evaluation:
    """Run ``forward(model, batch) -> output`` over ``loader`` and score it.

    Counts are summed over all ranks when a process group is initialised (each rank
    evaluates its own share of the data).
    """
    was_training = model.training
    model.eval()
    if task == "classification":
        counts = torch.zeros(2, dtype=torch.long, device=device)  # correct, total
    else:
        counts = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)
    images = torch.zeros((), dtype=torch.long, device=device)
    for batch in loader:
        out = forward(model, batch)
        target = batch["target"].to(device)
        images += target.shape[0]
        if task == "classification":  # every image counts (255 may be a class)
            counts[0] += (out.logits.argmax(1) == target).sum()
            counts[1] += target.shape[0]
        else:
            counts += confusion_matrix(out.dense_logits.argmax(1), target, num_classes, ignore_index)
    if dist.is_initialized():
        dist.all_reduce(counts)
        dist.all_reduce(images)
    model.train(was_training)
    if task == "classification":
        correct, total = counts.tolist()
        return Evaluation("top1", correct / total if total else float("nan"), int(images))
    value, per_class = mean_iou(counts)
    return Evaluation("miou", value, int(images), per_class)
