"""Two processes on CPU under torchrun (gloo): shards cover the folder exactly once,
gradients are synchronised (parameters equal across ranks after the steps), the
DistributedSampler covers the data exactly once, rank 0 alone writes checkpoints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from training_helpers import write_class_folder

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_processes_with_torchrun(tmp_path):
    write_class_folder(tmp_path / "cls")  # 12 images: 3 shards of 5, 5, 2
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[2]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(WORKER), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]

    # shards: shard i by rank i mod 2; every image in exactly one shard
    assert ranks[0]["written"] == [0, 2] and ranks[1]["written"] == [1]
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    items = [item for shard in index["shards"] for item in shard["items"]]
    expected = sorted(str(p.relative_to(tmp_path / "cls")) for p in (tmp_path / "cls").rglob("*.png"))
    assert sorted(items) == expected and len(items) == len(set(items)) == 12

    # the sampler: 12 samples, 6 per rank (2 steps of 3): each exactly once over both ranks
    train_seen = [r["seen"][:6] for r in ranks]
    assert sorted(train_seen[0] + train_seen[1]) == list(range(12))
    # evaluation: each rank its stride, the counts summed over ranks
    assert [r["evaluated"] for r in ranks] == [12, 12]
    assert all(r["step"] == 2 and r["partitions"] > 0 for r in ranks)

    # gradients synchronised: the same parameters on both ranks, moved from rank 0's init
    p0, p1 = (load_file(str(tmp_path / f"params-{r}.safetensors")) for r in range(2))
    for key in p0:
        assert torch.equal(p0[key], p1[key]), key
    torch.manual_seed(0)
    from training_helpers import TinyConfig, TinyNet
    init = TinyNet(TinyConfig(num_classes=3)).state_dict()
    assert not torch.equal(init["head.weight"], p0["head.weight"])

    # rank 0 writes: one checkpoint holding both ranks' RNG states
    checkpoints = list((tmp_path / "run" / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["step-00000002"]
    state = load_file(str(checkpoints[0] / "state.safetensors"))
    assert {"rng.cpu.0", "rng.cpu.1"} <= set(state)
    assert json.loads((checkpoints[0] / "state.json").read_text())["world_size"] == 2
