"""``train``: fine-tune (or train) a model on a checked data set, one process or many.

The model is any module called as ``out = model(images, partition=None)`` whose result
has ``logits`` (B, num_classes) and, for segmentation, ``dense_logits``
(B, num_classes, H, W) — :class:`dhtgraph.DHTViT` is one. Samples holding ``'tokens'``
(a per-image token label map, e.g. from :class:`~dhtgraph.training.ShardDataset`) are
passed as a partition, so the model does not tokenize them again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..partition import Partition
from .checkpoint import load_checkpoint, save_checkpoint
from .config import NORMALIZATIONS, TrainConfig
from .distributed import Context, epoch_indices, eval_indices, setup
from .evaluate import Evaluation, evaluate
from .schedule import cosine_schedule

__all__ = ["train", "TrainResult", "tokens_to_partition", "model_num_classes", "compute_loss",
           "normalize_images", "TaskLogits"]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns (on every rank).

    Attributes
    ----------
    step : int
        Optimizer steps taken in total (including those before a resume).
    total_steps : int
        Steps the schedule runs for.
    loss : float
        Mean training loss of the last logged window (averaged over ranks).
    evaluation : Evaluation or None
        Top-1 or mIoU at the end (None when ``evaluate=False``).
    checkpoint : Path or None
        The last checkpoint written (None without ``out``).
    images_per_second : float
        Training throughput over all ranks (this invocation).
    """

    step: int
    total_steps: int
    loss: float
    evaluation: Optional[Evaluation]
    checkpoint: Optional[Path]
    images_per_second: float


def tokens_to_partition(tokens: Tensor) -> Partition:
    """A partition of the B·H·W pixels from per-image token label maps (B, H, W)
    (each image's labels 0..K_b−1); image b's tokens come after image b−1's."""
    b = tokens.shape[0]
    flat = tokens.reshape(b, -1).long()
    offset = torch.cumsum(flat.amax(1) + 1, 0) - (flat.amax(1) + 1)
    return Partition((flat + offset[:, None]).reshape(-1))


def model_num_classes(model: nn.Module) -> int:
    """``num_classes`` of a model (its attribute or its config's).

    Raises
    ------
    ValueError
        If the model has neither.
    """
    for source in (model, getattr(model, "config", None)):
        value = getattr(source, "num_classes", None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(f"Expected 'model' to have a positive 'num_classes' attribute or "
                     f"config field (got {type(model).__name__} without one)")


def normalize_images(images: Tensor, kind: str) -> Tensor:
    """``(images − mean) / std`` per channel for ``TrainConfig.normalize`` (identity for
    'none'); images (B, C, H, W) in [0, 1]."""
    stats = NORMALIZATIONS[kind]
    if stats is None:
        return images
    if images.shape[1] != len(stats[0]):
        raise ValueError(f"Expected 3-channel images for normalize={kind!r} "
                         f"(got {images.shape[1]} channels)")
    mean = images.new_tensor(stats[0]).view(1, -1, 1, 1)
    std = images.new_tensor(stats[1]).view(1, -1, 1, 1)
    return (images - mean) / std


def _forward(model, batch: dict, device, normalize: str = "none"):
    images = normalize_images(batch["image"].to(device, non_blocking=True), normalize)
    partition = None
    if "tokens" in batch:
        partition = tokens_to_partition(batch["tokens"].to(device, non_blocking=True))
    return model(images, partition=partition)


class TaskLogits(nn.Module):
    """``model(images, partition)`` reduced to the logits the task trains on:
    ``out.logits`` (classification) or ``out.dense_logits`` (segmentation).

    DistributedDataParallel wraps this, not the model: it then follows only the tensor
    the loss uses, so the other head's parameters count as unused instead of waiting
    for gradients that never come.
    """

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, images: Tensor, partition: Optional[Partition] = None) -> Tensor:
        out = self.model(images, partition=partition)
        name = "logits" if self.task == "classification" else "dense_logits"
        logits = getattr(out, name, None)
        if logits is None:
            raise ValueError(f"Expected the model output to have '{name}' for task "
                             f"{self.task!r} (got none{'; build the model with dense=True' if name == 'dense_logits' else ''})")
        return logits


def compute_loss(logits: Tensor, target: Tensor, config: TrainConfig) -> Tensor:
    """Cross-entropy of logits (B, K) or (B, K, H, W) against ``target`` (B,) or
    (B, H, W); mask pixels equal to ``config.ignore_index`` are left out (segmentation
    only: with 256 or more classes, 255 is a class)."""
    ignore = config.ignore_index if config.task == "segmentation" else -100
    return F.cross_entropy(logits, target, ignore_index=ignore,
                           label_smoothing=config.label_smoothing)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    # Biases, norm scales and other 1-d parameters (class/register tokens, λ, β) take no
    # weight decay, as in timm's ViT recipe; matrices and the positional table do.
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _rng_state(context: Context) -> dict[str, Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if context.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(context.device)
    if not dist.is_initialized():
        return {f"{k}.0": v for k, v in state.items()}
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {k: v.tolist() for k, v in state.items()})
    return {f"{k}.{rank}": torch.tensor(v, dtype=torch.uint8)
            for rank, entry in enumerate(gathered) for k, v in entry.items()}


def _restore_rng(rng: dict, context: Context, seed: int) -> None:
    key = f"cpu.{context.rank}"
    if key in rng:
        torch.set_rng_state(rng[key])
    else:  # resumed with more processes than wrote the checkpoint: a fresh, seeded state
        torch.manual_seed(seed + context.rank)
    if context.device.type == "cuda" and f"cuda.{context.rank}" in rng:
        torch.cuda.set_rng_state(rng[f"cuda.{context.rank}"], context.device)


def train(model: nn.Module, data: Dataset, config: TrainConfig = TrainConfig(), *,
          out=None, resume=None, eval_data: Optional[Dataset] = None,
          evaluate_at_end: bool = True) -> TrainResult:
    """Train ``model`` on ``data`` with AdamW and a warm-up + cosine schedule.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(images, partition=...)``; has ``num_classes`` (itself or in its
        config). Its initial weights must be the same on every rank (DDP broadcasts
        rank 0's anyway).
    data : Dataset
        Samples ``{'image': (C, H, W), 'target': () or (H, W), 'index', ['tokens': (H, W)]}``
        (:class:`ClassificationFolder`, :class:`SegmentationFolder`, :class:`ShardDataset`).
    config : TrainConfig
    out : path, optional
        Output directory: checkpoints, ``log.jsonl``, ``metrics.json`` (rank 0 writes).
    resume : path, optional
        A checkpoint directory or an earlier run's ``out``: model, optimizer, scheduler,
        step and RNG states are restored and training continues from that step.
    eval_data : Dataset, optional
        Evaluated at the end; default: ``data`` itself (reported as such).
    evaluate_at_end : bool, default True

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        Before any step: an empty data set, a task that does not match the data set's,
        labels out of range for the model's ``num_classes``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"Expected 'config' to be a TrainConfig (got {type(config).__name__})")
    if len(data) == 0:
        raise ValueError("Expected 'data' to hold at least one sample (got an empty data set)")
    num_classes = model_num_classes(model)
    for name, dataset in (("data", data), ("eval_data", eval_data)):
        if dataset is None:
            continue
        task = getattr(dataset, "task", None)
        if task is not None and task != config.task:
            raise ValueError(f"Expected '{name}' to be a {config.task} data set (got a {task} "
                             f"one); set TrainConfig(task={task!r}) or pass the other layout")
        if hasattr(dataset, "check_num_classes"):
            dataset.check_num_classes(num_classes)

    # Under torchrun this joins the process group and leaves it joined (a group cannot be
    # joined twice): a script may call train() again; leave it with teardown(context) or
    # torch.distributed.destroy_process_group() at the end.
    context = setup(config.device)
    return _train(model, data, config, context, num_classes, out, resume, eval_data,
                  evaluate_at_end)


def _train(model, data, config, context, num_classes, out, resume, eval_data, evaluate_at_end):
    device = context.device
    out = Path(out) if out is not None else None
    main = context.is_main
    if out is not None and main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed + context.rank)
    model.to(device)
    model.train()
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr,
                                  betas=config.betas, eps=config.eps)
    per_rank = math.ceil(len(data) / context.world_size)
    steps_per_epoch = math.ceil(per_rank / config.batch_size)
    total_steps = config.steps if config.steps is not None else config.epochs * steps_per_epoch
    scheduler = cosine_schedule(optimizer, total_steps, config.warmup_fraction, config.min_lr_ratio)
    step = 0
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer, scheduler, device)
        step = state.step
        _restore_rng(state.rng, context, config.seed)
    net = TaskLogits(model, config.task)
    if context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            net, device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=config.find_unused_parameters)

    log = (out / "log.jsonl").open("a") if out is not None and main else None
    bar = None
    if main and config.progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    checkpoint, window_loss, window_steps = None, torch.zeros((), device=device), 0
    last_loss, images_seen, started = math.nan, 0, time.perf_counter()
    window_start = started

    def save(epoch_next: int):
        nonlocal checkpoint
        rng = _rng_state(context)  # every rank takes part in the gather
        if out is not None and main:
            checkpoint = save_checkpoint(out, model, optimizer, scheduler, step, epoch_next,
                                         train_config=config.to_dict(), rng=rng,
                                         world_size=context.world_size, keep=config.keep_checkpoints)
        if dist.is_initialized():
            dist.barrier()

    try:
        while step < total_steps:
            epoch, offset = divmod(step, steps_per_epoch)
            indices = epoch_indices(len(data), epoch, context.rank, context.world_size,
                                    seed=config.seed)
            batches = [indices[i:i + config.batch_size]
                       for i in range(0, len(indices), config.batch_size)][offset:]
            # Own generator: creating the loader must not draw from the global RNG, so a
            # resumed run's random stream is the uninterrupted run's.
            loader = DataLoader(data, batch_sampler=batches, num_workers=config.num_workers,
                                pin_memory=device.type == "cuda",
                                generator=torch.Generator().manual_seed(config.seed + epoch))
            for batch in loader:
                logits = _forward(net, batch, device, config.normalize)
                loss = compute_loss(logits, batch["target"].to(device), config)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                images_seen += batch["image"].shape[0] * context.world_size
                window_loss += loss.detach()
                window_steps += 1
                if step % config.log_every == 0 or step == total_steps:
                    mean = window_loss / window_steps
                    if dist.is_initialized():
                        dist.all_reduce(mean)
                        mean = mean / context.world_size
                    last_loss = float(mean)
                    now = time.perf_counter()
                    rate = window_steps * batch["image"].shape[0] * context.world_size / max(
                        now - window_start, 1e-9)
                    if log is not None:
                        log.write(json.dumps({"step": step, "epoch": epoch, "loss": last_loss,
                                              "lr": scheduler.get_last_lr()[0],
                                              "images_per_second": rate}) + "\n")
                        log.flush()
                    if bar is not None:
                        bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{rate:.1f}")
                    window_loss, window_steps, window_start = torch.zeros((), device=device), 0, now
                if bar is not None:
                    bar.update(1)
                due = config.checkpoint_every is not None and step % config.checkpoint_every == 0
                if due and step < total_steps:
                    save(step // steps_per_epoch)
                if step >= total_steps:
                    break
            if config.checkpoint_every is None and step < total_steps:
                save(step // steps_per_epoch)
        elapsed = time.perf_counter() - started
        save(step // steps_per_epoch)
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()

    evaluation = None
    if evaluate_at_end:
        target = eval_data if eval_data is not None else data
        share = eval_indices(len(target), context.rank, context.world_size)
        loader = DataLoader(target, batch_sampler=[share[i:i + config.batch_size]
                                                   for i in range(0, len(share), config.batch_size)],
                            num_workers=config.num_workers)
        evaluation = evaluate(model, loader, config.task, num_classes, config.ignore_index, device,
                              lambda m, b: _forward(m, b, device, config.normalize))
        if out is not None and main:
            record = dict(evaluation.to_dict(), step=step,
                          data="eval_data" if eval_data is not None else "training data")
            (out / "metrics.json").write_text(json.dumps(record, indent=1))
    return TrainResult(step=step, total_steps=total_steps, loss=last_loss, evaluation=evaluation,
                       checkpoint=checkpoint, images_per_second=images_seen / max(elapsed, 1e-9))
