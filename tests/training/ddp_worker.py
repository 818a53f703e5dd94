"""Run by test_distributed.py under ``torchrun --nproc-per-node 2``: shards, then training.

Usage: ddp_worker.py WORKDIR (WORKDIR/cls holds the class folder).
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).parent))
from training_helpers import TinyConfig, TinyNet  # noqa: E402

from dhtgraph.training import (ShardDataset, TrainConfig, plan_shards, setup,  # noqa: E402
                               teardown, train, write_index, write_shards)


class Recording(Dataset):
    """The data set, noting every index this rank reads."""

    def __init__(self, data):
        self.data, self.seen = data, []

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        self.seen.append(int(index))
        return self.data[index]

    def __getattr__(self, name):
        return getattr(self.__dict__["data"], name)


def main(work: Path) -> None:
    context = setup("cpu")
    rank = context.rank
    plan = plan_shards(work / "cls", shard_size=5, max_tokens=6)
    report = write_shards(plan, work / "shards", rank=rank, world_size=context.world_size)
    dist.barrier()
    if rank == 0:
        write_index(plan, work / "shards")
    dist.barrier()
    data = Recording(ShardDataset(work / "shards"))
    torch.manual_seed(rank)  # different initial weights: DDP must start from rank 0's
    model = TinyNet(TinyConfig(num_classes=3))
    result = train(model, data, TrainConfig(steps=2, batch_size=3, lr=0.05, progress=False,
                                            log_every=1), out=work / "run")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(work / f"params-{rank}.safetensors"))
    record = {"written": report.written, "seen": data.seen, "step": result.step,
              "evaluated": result.evaluation.count, "partitions": len(model.partitions),
              "world_size": context.world_size}
    (work / f"rank-{rank}.json").write_text(json.dumps(record))
    teardown(context)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
