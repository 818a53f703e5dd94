"""Fine-tuning and scale-out: image-folder data sets, ``train``, checkpoints, shards.

See ``dhtgraph train`` and ``dhtgraph tokenize-shards`` for the command line; under
``torchrun`` both use PyTorch's distributed stack (DistributedDataParallel,
DistributedSampler, env:// initialisation).
"""

from .checkpoint import latest_checkpoint, load_checkpoint, load_weights, save_checkpoint
from .config import TASKS, Task, TrainConfig
from .data import ClassificationFolder, SegmentationFolder
from .distributed import Context, epoch_indices, eval_indices, setup, teardown
from .evaluate import Evaluation, confusion_matrix, evaluate, mean_iou
from .loop import TrainResult, compute_loss, tokens_to_partition, train
from .schedule import cosine_factor, cosine_schedule
from .shards import ShardDataset, ShardPlan, ShardReport, plan_shards, write_index, write_shards

__all__ = [
    "TrainConfig", "Task", "TASKS", "train", "TrainResult", "ClassificationFolder",
    "SegmentationFolder", "save_checkpoint", "load_checkpoint", "load_weights",
    "latest_checkpoint", "cosine_factor", "cosine_schedule", "Evaluation", "evaluate",
    "confusion_matrix", "mean_iou", "Context", "setup", "teardown", "epoch_indices",
    "eval_indices", "tokens_to_partition", "compute_loss", "ShardDataset", "ShardPlan",
    "ShardReport", "plan_shards", "write_shards", "write_index",
]
