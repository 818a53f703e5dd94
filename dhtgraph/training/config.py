"""The training configuration: one frozen dataclass, every default with its reason."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Optional

from .._checks import check_count

__all__ = ["TrainConfig", "Task", "TASKS", "Normalize", "NORMALIZATIONS"]

Task = Literal["classification", "segmentation"]
TASKS = ("classification", "segmentation")
Normalize = Literal["none", "imagenet", "inception"]
#: Per-channel (mean, std) applied to images in [0, 1] before the model.
NORMALIZATIONS = {
    "none": None,
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass(frozen=True)
class TrainConfig:
    """Configuration of :func:`dhtgraph.training.train`.

    Attributes
    ----------
    task : {'classification', 'segmentation'} = 'classification'
        Which head the loss and the evaluation use: ``out.logits`` (B, num_classes)
        against one class per image (top-1), or ``out.dense_logits``
        (B, num_classes, H, W) against a label per pixel (mIoU).
    epochs : int = 1
        Passes over the training set; ignored when ``steps`` is given.
    steps : int or None = None
        Total optimizer steps; overrides ``epochs`` (a short run or a fixed budget).
    batch_size : int = 32
        Images per step *per process* (under torchrun the global batch is
        ``batch_size × world_size``); 32 fits a ViT-S/16 at 224² on one 16 GB GPU.
    lr : float = 1e-4
        Peak AdamW learning rate after warm-up: a common fine-tuning rate for a
        pretrained ViT; from scratch ~1e-3 is usual.
    weight_decay : float = 0.05
        AdamW decoupled weight decay, DeiT's and timm's ViT recipe.
    betas : (float, float) = (0.9, 0.999)
        AdamW moment decay rates (PyTorch's defaults).
    eps : float = 1e-8
        AdamW denominator guard (PyTorch's default).
    warmup_fraction : float = 0.05
        Share of the steps over which the rate rises linearly to ``lr`` before the
        cosine decay: keeps early updates of a freshly initialised head from wrecking
        pretrained weights.
    min_lr_ratio : float = 0.0
        The cosine ends at ``lr × min_lr_ratio`` (plain cosine annealing to zero).
    grad_clip_norm : float or None = 1.0
        Clip the global gradient norm (the usual ViT recipe); None turns clipping off.
    label_smoothing : float = 0.0
        Cross-entropy label smoothing; off so a loss is the plain negative log-likelihood.
    ignore_index : int = 255
        Mask value that no loss or metric counts (the PASCAL VOC convention for
        "void" in 8-bit PNG masks). Segmentation only: class labels are never ignored.
    normalize : {'none', 'imagenet', 'inception'} = 'none'
        ``(x − mean) / std`` on the [0, 1] images before the model. 'none' suits fresh
        models (and the shared timm fixtures, trained on [0, 1]); a pretrained timm ViT
        wants the statistics it was trained with: 'imagenet' for most, 'inception'
        (0.5, 0.5) for the AugReg/CLIP-style weights.
    image_size : int or None = None
        Resize every image (bilinear) and mask (nearest) to ``image_size²``; None keeps
        the files' sizes, which must then all agree (checked before training).
    seed : int = 0
        Seeds the initial RNG state (rank ``r`` uses ``seed + r``) and the shuffling
        (``DistributedSampler(seed=seed)``), so a run is reproducible.
    num_workers : int = 0
        DataLoader worker processes; 0 loads in the training process (small machines,
        deterministic tests). Raise on a machine with spare cores.
    log_every : int = 10
        Steps between log lines in ``log.jsonl`` (rank 0).
    checkpoint_every : int or None = None
        Steps between checkpoints; None saves at the end of every epoch and at the end.
    keep_checkpoints : int = 2
        Checkpoints kept on disk (the newest); older ones are deleted.
    find_unused_parameters : bool = True
        Passed to DistributedDataParallel: a DHTViT has parameters a step may not use
        (the other task's head; the tokenizer when partitions come from shards).
    device : str or None = None
        None → ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``.
    progress : bool = True
        Show a tqdm bar (loss, images/s) on rank 0.
    """

    task: Task = "classification"
    epochs: int = 1
    steps: Optional[int] = None
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.0
    grad_clip_norm: Optional[float] = 1.0
    label_smoothing: float = 0.0
    ignore_index: int = 255
    normalize: Normalize = "none"
    image_size: Optional[int] = None
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    checkpoint_every: Optional[int] = None
    keep_checkpoints: int = 2
    find_unused_parameters: bool = True
    device: Optional[str] = None
    progress: bool = True

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if self.task not in TASKS:
            raise ValueError(f"Expected 'task' to be one of {TASKS} (got {self.task!r})")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"Expected 'normalize' to be one of {tuple(NORMALIZATIONS)} "
                             f"(got {self.normalize!r})")
        for name in ("epochs", "batch_size", "log_every", "keep_checkpoints"):
            set_(name, check_count(getattr(self, name), name, minimum=1))
        for name in ("steps", "checkpoint_every", "image_size"):
            set_(name, check_count(getattr(self, name), name, minimum=1, or_none=True))
        for name in ("seed", "num_workers", "ignore_index"):
            set_(name, check_count(getattr(self, name), name, minimum=0))
        set_("lr", _real("lr", self.lr, low=0, open_low=True))
        set_("weight_decay", _real("weight_decay", self.weight_decay, low=0))
        set_("eps", _real("eps", self.eps, low=0, open_low=True))
        for name in ("warmup_fraction", "min_lr_ratio"):
            set_(name, _real(name, getattr(self, name), low=0, high=1))
        set_("label_smoothing", _real("label_smoothing", self.label_smoothing, low=0, high=1,
                                      open_high=True))
        if self.grad_clip_norm is not None:
            set_("grad_clip_norm", _real("grad_clip_norm", self.grad_clip_norm, low=0, open_low=True))
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else None
        if betas is None or len(betas) != 2:
            raise ValueError(f"Expected 'betas' to be two numbers in [0, 1) (got {self.betas!r})")
        set_("betas", tuple(_real("betas", b, low=0, high=1, open_high=True) for b in betas))
        for name in ("find_unused_parameters", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Expected '{name}' to be a bool (got {getattr(self, name)!r})")
        if self.device is not None and not isinstance(self.device, str):
            raise TypeError(f"Expected 'device' to be a str such as 'cpu' or 'cuda:0' or None "
                            f"(got {type(self.device).__name__})")

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> "TrainConfig":
        """Build from a mapping (a JSON file's contents); unknown keys are a TypeError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"Unknown TrainConfig option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``betas`` as a list)."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


def _real(name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = False,
          open_high: bool = False) -> float:
    lo = "(" if open_low else "["
    hi = ")" if open_high or high == math.inf else "]"
    expected = f"a finite number in {lo}{low:g}, {high:g}{hi}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected '{name}' to be {expected} (got {type(value).__name__} {value!r})")
    value = float(value)
    bad = (not math.isfinite(value) or value < low or value > high
           or (open_low and value == low) or (open_high and value == high))
    if bad:
        raise ValueError(f"Expected '{name}' to be {expected} (got {value!r})")
    return value
