"""``dhtgraph train DATA --task T --out DIR``: fine-tune or train a DHTViT.

DATA is a classification folder (one sub-folder per class), a segmentation folder
(``images/`` + ``masks/``) or a shard directory written by ``dhtgraph tokenize-shards``
(it holds ``index.json``; its tokens are used, nothing is tokenized again). The model is
retrofitted from timm weights (``--from-timm WEIGHTS --timm-config JSON``), built fresh
(``--model-config JSON``), or restored with ``--resume``. Under ``torchrun`` it runs with
DistributedDataParallel; rank 0 logs and writes checkpoints.

Exit status: 0 done; 1 the data, weights or a model option value were refused (a
message, no traceback); 2 usage error (bad or conflicting flags, unknown option names).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ._files import add_device_argument, non_negative_float, positive_float, positive_int

#: TrainConfig fields settable by a flag of the same name (dashes for underscores).
_FLAGS = ("epochs", "steps", "batch_size", "lr", "weight_decay", "warmup_fraction", "image_size",
          "normalize", "seed", "num_workers", "checkpoint_every", "device")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="fine-tune a DHTViT (from timm weights or a fresh config) on an image folder",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", metavar="DATA", help="image folder or shard directory")
    parser.add_argument("--task", required=True, choices=("classification", "segmentation"))
    parser.add_argument("-o", "--output", "--out", dest="out", required=True,
                        help="output directory: checkpoints/, log.jsonl, metrics.json")
    source = parser.add_argument_group("model (one of)")
    source.add_argument("--from-timm", metavar="WEIGHTS",
                        help="timm VisionTransformer weights (.safetensors or .pth)")
    source.add_argument("--timm-config", metavar="JSON",
                        help="the timm constructor arguments (a config.json file or inline JSON)")
    source.add_argument("--model-config", metavar="JSON",
                        help="DHTViTConfig fields for a fresh model, or DHTViT's own options "
                             "(max_tokens, tokenizer, graph_bias...) added to --from-timm")
    source.add_argument("--resume", nargs="?", const="", metavar="CHECKPOINT",
                        help="continue from a checkpoint directory (default: the newest in --out)")
    parser.add_argument("--num-classes", type=positive_int, default=None,
                        help="head size (default: the data's class count for a fresh model; with "
                             "--from-timm a different count replaces the pretrained head)")
    parser.add_argument("--val", metavar="DIR", default=None,
                        help="evaluation folder (same layout); default: evaluate on DATA")
    parser.add_argument("--config", metavar="JSON", default=None,
                        help="TrainConfig fields (file or inline JSON); flags override them")
    parser.add_argument("--epochs", type=positive_int, default=None, help="passes over DATA (1)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="total optimizer steps (overrides --epochs)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="images per step per process (32)")
    parser.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (1e-4)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=None,
                        help="AdamW weight decay (0.05)")
    parser.add_argument("--warmup-fraction", type=non_negative_float, default=None,
                        help="share of steps with linear warm-up (0.05)")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help="resize images and masks to this square size")
    parser.add_argument("--normalize", choices=("none", "imagenet", "inception"), default=None,
                        help="input normalisation the model expects (none)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (0)")
    parser.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (0)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=None,
                        help="steps between checkpoints (default: every epoch)")
    add_device_argument(parser)
    parser.set_defaults(run=run)


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _fail(message: str, status: int) -> int:
    if _rank() == 0:
        print(f"dhtgraph train: error: {message}", file=sys.stderr)
    return status


def _train_config(args, saved: dict | None):
    from ..training import TrainConfig
    from ..training.models import read_json_option

    options = dict(saved or {})
    options.update(read_json_option(args.config, "--config"))
    for name in _FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.steps is not None:
        options["steps"] = args.steps
    elif args.epochs is not None:
        options["steps"] = None
    options["task"] = args.task
    if args.no_progress:
        options["progress"] = False
    return TrainConfig.from_dict(options)


def _dataset(path: str, config, name: str):
    from ..training import ClassificationFolder, SegmentationFolder
    from ..training.shards import INDEX_NAME, ShardDataset

    root = Path(path)
    if (root / INDEX_NAME).is_file():
        if config.image_size is not None:
            raise _Usage(f"--image-size does not apply to shards ({name} {path!r} holds "
                         f"{INDEX_NAME}); set the size when writing them")
        return ShardDataset(root)
    if config.task == "classification":
        return ClassificationFolder(root, config.image_size)
    return SegmentationFolder(root, config.image_size, config.ignore_index)


class _Usage(Exception):
    """A usage error found after parsing (exit status 2)."""


def run(args: argparse.Namespace) -> int:
    from ..training import train
    from ..training.checkpoint import resolve_checkpoint
    from ..training.distributed import teardown
    from ..training.models import build_model, model_from_checkpoint, read_json_option

    try:
        if (args.from_timm is None) != (args.timm_config is None):
            raise _Usage("--from-timm and --timm-config go together (the weights and the "
                         "constructor arguments they were made with)")
        checkpoint, saved = None, None
        if args.resume is not None:
            if args.from_timm is not None or args.model_config is not None or args.num_classes:
                raise _Usage("--resume restores the model from the checkpoint; drop --from-timm, "
                             "--timm-config, --model-config and --num-classes")
            try:
                checkpoint = resolve_checkpoint(args.resume or args.out)
            except ValueError as exc:
                raise _Usage(str(exc)) from None
            saved = json.loads((checkpoint / "config.json").read_text())["train_config"]
            if saved.get("task") != args.task:
                raise _Usage(f"--task {args.task} differs from the checkpoint's "
                             f"{saved.get('task')!r}")
        try:
            config = _train_config(args, saved)
            model_options = read_json_option(args.model_config, "--model-config")
            timm_options = read_json_option(args.timm_config, "--timm-config")
            if args.from_timm is None and checkpoint is None:
                from ..nn.vit import DHTViTConfig

                DHTViTConfig.from_dict(dict({"num_classes": 1}, **model_options))  # names, values
        except (TypeError, ValueError) as exc:
            raise _Usage(str(exc)) from None
    except _Usage as exc:
        return _fail(str(exc), 2)

    try:
        data = _dataset(args.data, config, "DATA")
        eval_data = _dataset(args.val, config, "--val") if args.val is not None else None
        if checkpoint is not None:
            model = model_from_checkpoint(checkpoint)
        else:
            num_classes = args.num_classes
            if num_classes is None and args.from_timm is None and "num_classes" not in model_options:
                num_classes = max(data.num_classes, 1)
            model = build_model(task=config.task, model_config=model_options,
                                from_timm=args.from_timm, timm_config=timm_options,
                                num_classes=num_classes, seed=config.seed)
        _check_size(model, data, config)
        result = train(model, data, config, out=args.out, resume=checkpoint, eval_data=eval_data)
    except (_Usage, TypeError) as exc:  # TypeError: an option name the model does not know
        return _fail(str(exc), 2)
    except (ValueError, OSError) as exc:  # refused data, weights or option values
        return _fail(str(exc), 1)
    finally:
        teardown()
    if _rank() == 0:
        ev = result.evaluation
        scored = f"{ev.metric} {ev.value:.4f} on {ev.count} images" if ev is not None else "no evaluation"
        print(f"trained {result.step}/{result.total_steps} steps, loss {result.loss:.4f}, "
              f"{result.images_per_second:.1f} images/s, {scored}; checkpoint {result.checkpoint}")
    return 0


def _check_size(model, data, config) -> None:
    cfg = getattr(model, "config", None)
    size = getattr(data, "size", None)
    if cfg is None or size is None or getattr(cfg, "dynamic_img_size", True):
        return
    if tuple(size) != tuple(cfg.img_size):
        raise _Usage(f"the images are {size[0]}×{size[1]} but the model takes "
                     f"{cfg.img_size[0]}×{cfg.img_size[1]}: pass --image-size "
                     f"{cfg.img_size[0]} (square models) or a model with dynamic_img_size")
