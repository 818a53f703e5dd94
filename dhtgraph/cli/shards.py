"""``dhtgraph tokenize-shards IMAGE_DIR --out DIR``: tokenize a folder once, for training.

Writes ``shard-NNNNN.safetensors`` files (each image's pixels, its token label map and
its class or mask) with a record beside each, then ``index.json``; ``dhtgraph train DIR``
and :class:`dhtgraph.training.ShardDataset` read them back. Under ``torchrun`` shard
``i`` is written by rank ``i mod WORLD_SIZE`` (every image by exactly one process).
Running the command again skips the shards already finished (same images and options,
file intact) and rewrites missing or damaged ones.

Exit status: 0 done; 1 the folder was refused; 2 usage error.
"""

from __future__ import annotations

import argparse
import sys

from ._files import (add_device_argument, add_output_argument, add_selection_arguments,
                     positive_int, selection_options, usage_error)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tokenize-shards", help="tokenize an image folder into safetensors shards for training",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image_dir", metavar="IMAGE_DIR",
                        help="class folders, images/ + masks/, or plain images")
    add_output_argument(parser, "shard directory (created if missing)")
    parser.add_argument("--layout", choices=("auto", "classification", "segmentation", "images"),
                        default="auto", help="folder layout (default: detected; ambiguous is an error)")
    parser.add_argument("--shard-size", type=positive_int, default=256,
                        help="images per shard (default: 256)")
    parser.add_argument("--max-tokens", type=positive_int, default=None,
                        help="token budget per image (default: no budget)")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help="resize to this square size before tokenizing (default: keep)")
    add_selection_arguments(
        parser, criterion_help="information criterion (default: the library's, aicc)",
        iota_help="granularity constant ι in {range} (default: the recommended configuration's)")
    add_device_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from ..training.distributed import setup, teardown
    from ..training.shards import plan_shards, write_index, write_shards

    options = selection_options(args)
    try:
        context = setup(args.device)
    except ValueError as exc:
        return usage_error("tokenize-shards", str(exc))
    try:
        try:
            plan = plan_shards(args.image_dir, shard_size=args.shard_size, layout=args.layout,
                               max_tokens=args.max_tokens, image_size=args.image_size,
                               options=options)
        except (TypeError, ValueError, OSError) as exc:
            if context.is_main:
                print(f"dhtgraph tokenize-shards: error: {exc}", file=sys.stderr)
            return 1
        report = write_shards(plan, args.out, rank=context.rank, world_size=context.world_size,
                              device=context.device, progress=not args.no_progress)
        rate = report.images / report.seconds if report.images else 0.0
        print(f"rank {context.rank}: wrote {len(report.written)} shard(s) ({report.images} images, "
              f"{report.seconds:.2f} s, {rate:.1f} images/s), skipped {len(report.skipped)} "
              "finished", file=sys.stderr)
        if dist.is_initialized():
            dist.barrier()
        if context.is_main:
            index = write_index(plan, args.out)
            print(f"{len(plan.items)} images in {plan.num_shards} shard(s) -> {index}")
    finally:
        teardown(context)
    return 0
