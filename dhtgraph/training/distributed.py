"""PyTorch's own distributed stack, set up from torchrun's environment.

Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in the environment) :func:`setup` joins the process group with the
``env://`` method, ``nccl`` on CUDA and ``gloo`` on CPU; without them it is a single
process and nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

__all__ = ["Context", "setup", "teardown", "epoch_indices", "eval_indices", "torchrun_env"]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Context:
    """Where this process stands.

    Attributes
    ----------
    rank, world_size, local_rank : int
        Global rank, number of processes, rank on this machine (0, 1, 0 when alone).
    device : torch.device
        The device this process computes on.
    initialized : bool
        Whether this call joined a process group (and :func:`teardown` should leave it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0


def torchrun_env() -> Optional[tuple[int, int, int]]:
    """(rank, world_size, local_rank) from torchrun's variables, or None outside torchrun.

    Raises
    ------
    ValueError
        If only some of them are set or one is not an integer.
    """
    present = [name for name in _ENV if name in os.environ]
    if not present:
        return None
    if len(present) != len(_ENV):
        missing = [name for name in _ENV if name not in os.environ]
        raise ValueError(f"Expected the torchrun environment variables {list(_ENV)} together "
                         f"(got {present}, missing {missing}); launch with torchrun")
    try:
        rank, world, local = (int(os.environ[name]) for name in _ENV)
    except ValueError:
        raise ValueError("Expected integer values in " + ", ".join(
            f"{n}={os.environ[n]!r}" for n in _ENV)) from None
    return rank, world, local


def setup(device: Optional[str] = None) -> Context:
    """Join torchrun's process group (when launched by it) and pick the device.

    Parameters
    ----------
    device : str, optional
        'cpu', 'cuda' or 'cuda:N'. Default: ``cuda:LOCAL_RANK`` when CUDA is available,
        else 'cpu'. Under torchrun a bare 'cuda' also becomes ``cuda:LOCAL_RANK``.

    Returns
    -------
    Context
    """
    env = torchrun_env()
    rank, world, local = env if env is not None else (0, 1, 0)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"Expected 'device' to be available (got {device!r}, but CUDA is not)")
        if dev.index is None:
            dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    initialized = False
    # An existing group (an earlier setup in this process) is reused: torch cannot join
    # the same torchrun group again after leaving it.
    if env is not None and world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, init_method="env://", rank=rank,
                                world_size=world, **kwargs)
        initialized = True
    return Context(rank=rank, world_size=world, local_rank=local, device=dev,
                   initialized=initialized)


def teardown(context: Optional[Context] = None) -> None:
    """Leave the process group if one is joined (call once, at the end of the program)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def epoch_indices(num_samples: int, epoch: int, rank: int, world_size: int, *, seed: int,
                  shuffle: bool = True) -> list[int]:
    """The sample indices rank ``rank`` takes in ``epoch``: exactly what
    ``DistributedSampler(..., seed=seed)`` with ``set_epoch(epoch)`` yields (padded by
    repetition to a multiple of ``world_size``, so every rank takes as many steps)."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(num_samples), num_replicas=world_size, rank=rank,
                                 shuffle=shuffle, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    return list(sampler)


def eval_indices(num_samples: int, rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s share of an evaluation: ``rank, rank + world_size, …`` (no
    padding, so summed counts see every sample exactly once)."""
    return list(range(rank, num_samples, world_size))
