"""``dhtgraph graph IMAGE_OR_DIR...``: build pixel graphs and print what they hold."""

from __future__ import annotations

import argparse

from ._files import FILE_ERRORS, collect_images, report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("graph", help="build the pixel graph of images and describe it")
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                        help="image files or directories (their image files, recursively)")
    parser.add_argument("--connectivity", type=int, choices=(4, 8), default=4,
                        help="pixel neighbourhood (default: 4)")
    parser.set_defaults(run=run)


def describe(data) -> str:
    """One line per fact about a pixel graph returned by :func:`dhtgraph.from_image`."""
    h, w = data.image_size
    return (f"pixel graph: {data.num_images} image(s) of {h}×{w}, {data.num_nodes} nodes, "
            f"{data.edge_index.shape[1]} directed edges, {data.x.shape[1]} channel(s), "
            f"x {tuple(data.x.shape)} {data.x.dtype}, pos {tuple(data.pos.shape)}")


def run(args: argparse.Namespace) -> int:
    from ..graph import from_image

    items, problems = collect_images(args.images)
    for message in problems:
        report(message, error=True)
    failed = len(problems)
    for path, _ in items:
        try:
            report(f"{path}: {describe(from_image(path, connectivity=args.connectivity))}")
        except FILE_ERRORS as err:
            report(f"{path}: error: {err}", error=True)
            failed += 1
    return 1 if failed else 0
