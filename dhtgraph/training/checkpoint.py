"""Training checkpoints: safetensors weights and state, JSON config beside them.

A checkpoint is a directory ``OUT/checkpoints/step-00000120/`` holding

- ``model.safetensors``: the model's state dict (what :meth:`load_weights` reads);
- ``config.json``: the model's class and configuration and the :class:`TrainConfig`;
- ``state.safetensors``: the optimizer's tensors and every rank's RNG state;
- ``state.json``: step, epoch, world size, the scheduler's state and the optimizer's
  non-tensor state (hyper-parameters).

Nothing is unpickled: safetensors holds raw tensors, JSON plain values. A checkpoint is
written to a temporary directory and renamed into place, so a crash never leaves a
half-written ``step-*`` directory behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

__all__ = ["save_checkpoint", "load_checkpoint", "load_weights", "latest_checkpoint",
           "resolve_checkpoint", "CheckpointState", "model_config_dict", "CHECKPOINT_DIR"]

#: Sub-folder of the output directory holding the checkpoints.
CHECKPOINT_DIR = "checkpoints"
_PREFIX = "step-"
_FORMAT = 1


@dataclass(frozen=True)
class CheckpointState:
    """What :func:`load_checkpoint` restores besides module and optimizer state.

    Attributes
    ----------
    step : int
        Optimizer steps taken.
    epoch : int
        The epoch the next step belongs to.
    world_size : int
        Processes of the run that wrote it.
    rng : dict of str to ByteTensor
        ``'cpu.{rank}'`` and ``'cuda.{rank}'`` RNG states of every rank.
    config : dict
        The ``config.json`` contents.
    """

    step: int
    epoch: int
    world_size: int
    rng: dict
    config: dict


def model_config_dict(model: nn.Module) -> Optional[dict]:
    """``model.config`` as a JSON-ready dict when it is a dataclass, else None."""
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return None
    return json.loads(json.dumps(dataclasses.asdict(config), default=_jsonable))


def _jsonable(value: Any):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to config.json")


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, skeleton = {}, {}
    for pid, values in state["state"].items():
        entry = {}
        for key, value in values.items():
            if isinstance(value, Tensor):
                name = f"optimizer.{pid}.{key}"
                tensors[name] = value.detach().contiguous()
                entry[key] = {"tensor": name}
            else:
                entry[key] = value
        skeleton[str(pid)] = entry
    return tensors, {"state": skeleton, "param_groups": json.loads(
        json.dumps(state["param_groups"], default=_jsonable))}


def _optimizer_state(skeleton: dict, tensors: dict, device) -> dict:
    state = {}
    for pid, values in skeleton["state"].items():
        state[int(pid)] = {key: tensors[value["tensor"]].to(device)
                           if isinstance(value, dict) and "tensor" in value else value
                           for key, value in values.items()}
    groups = []
    for group in skeleton["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def save_checkpoint(out, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, step: int, epoch: int, *, train_config: dict,
                    rng: dict[str, Tensor], world_size: int = 1, keep: int = 2) -> Path:
    """Write ``out/checkpoints/step-{step:08d}/`` atomically and keep the ``keep`` newest.

    Parameters
    ----------
    out : path
        The run's output directory.
    model : nn.Module
        The bare model (not the DistributedDataParallel wrapper).
    rng : dict of str to ByteTensor
        RNG states, keys ``'cpu.{rank}'`` / ``'cuda.{rank}'``.

    Returns
    -------
    Path
        The checkpoint directory.
    """
    from safetensors.torch import save_file, save_model

    root = Path(out) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    opt_tensors, opt_rest = _optimizer_parts(optimizer)
    tensors = dict(opt_tensors)
    tensors.update({f"rng.{k}": v.contiguous() for k, v in rng.items()})
    save_file(tensors, str(tmp / "state.safetensors"))
    config = {"format": _FORMAT, "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
              "model_config": model_config_dict(model), "train_config": train_config}
    (tmp / "config.json").write_text(json.dumps(config, indent=1))
    state = {"step": step, "epoch": epoch, "world_size": world_size,
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "optimizer": opt_rest}
    (tmp / "state.json").write_text(json.dumps(state, indent=1, default=_jsonable))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in _checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)
                  and (p / "state.json").is_file())


def latest_checkpoint(out) -> Optional[Path]:
    """The newest complete checkpoint under ``out/checkpoints`` (None if there is none)."""
    found = _checkpoints(Path(out) / CHECKPOINT_DIR)
    return found[-1] if found else None


def resolve_checkpoint(path) -> Path:
    """A checkpoint directory, or a run's output directory (→ its newest checkpoint).

    Raises
    ------
    ValueError
        If ``path`` is neither.
    """
    path = Path(path)
    if (path / "state.json").is_file() and (path / "model.safetensors").is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise ValueError(f"Expected 'resume' to be a checkpoint directory (with model.safetensors "
                         f"and state.json) or a run's output directory holding {CHECKPOINT_DIR}/"
                         f"{_PREFIX}* (got {str(path)!r}, which holds neither)")
    return latest


def load_weights(model: nn.Module, checkpoint, device="cpu") -> nn.Module:
    """Load ``checkpoint/model.safetensors`` into ``model`` (strict); returns ``model``.

    Raises
    ------
    ValueError
        If the file does not match the model (missing, extra or mis-shaped keys).
    """
    from safetensors.torch import load_model

    path = Path(checkpoint) / "model.safetensors"
    try:
        load_model(model, str(path), strict=True, device=str(device))
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"Expected checkpoint {str(path)!r} to match the model "
                         f"({type(model).__name__}): {exc}") from None
    return model


def load_checkpoint(checkpoint, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
                    scheduler=None, device="cpu") -> CheckpointState:
    """Restore model, optimizer and scheduler from a checkpoint directory.

    Returns
    -------
    CheckpointState
        Step, epoch, world size, RNG states and the configuration.
    """
    from safetensors.torch import load_file

    checkpoint = resolve_checkpoint(checkpoint)
    load_weights(model, checkpoint, device)
    state = json.loads((checkpoint / "state.json").read_text())
    config = json.loads((checkpoint / "config.json").read_text())
    tensors = load_file(str(checkpoint / "state.safetensors"))
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_state(state["optimizer"], tensors, device))
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    rng = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}
    return CheckpointState(step=int(state["step"]), epoch=int(state["epoch"]),
                           world_size=int(state["world_size"]), rng=rng, config=config)
