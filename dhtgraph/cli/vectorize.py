"""``dhtgraph vectorize IN... -o OUT``: images (files or directories) to SVG files."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._files import (FILE_ERRORS, collect_images, non_negative_float, positive_float, positive_int,
                     progress, report)

__all__ = ["add_parser", "run"]

def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "vectorize", help="convert images to SVG (one filled path per dHT region)",
        description="Tokenize each image with the library defaults and write it as SVG: one "
                    "path per region, filled with the region's mean colour.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or directories")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output: an .svg file (single input image) or a directory")
    parser.add_argument("--max-tokens", type=positive_int, default=None,
                        help="at most this many regions per image (coarser)")
    parser.add_argument("--iota", type=positive_float, default=None,
                        help="information-criterion ι: larger gives more regions (finer)")
    parser.add_argument("--tolerance", type=non_negative_float, default=None,
                        help="boundary simplification tolerance in pixels (0 = exact pixels)")
    parser.add_argument("--max-bytes", type=positive_int, default=None,
                        help="byte budget per SVG (raises the tolerance until it fits)")
    parser.add_argument("--curves", choices=("lines", "cubic"), default=None,
                        help="draw boundaries with lines (default) or cubic Béziers")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..export import vectorize

    items, errors = collect_images(args.inputs)
    for message in errors:
        report(message, error=True)
    out = Path(args.output)
    single_file = out.suffix.lower() == ".svg" and not out.is_dir()
    if single_file and len(items) > 1:
        print(f"error: -o {out} names one file but there are {len(items)} images; give a "
              "directory", file=sys.stderr)
        return 2
    svg_options = {name: getattr(args, name) for name in ("tolerance", "max_bytes", "curves")
                   if getattr(args, name) is not None}
    failed = len(errors)
    for image_path, name in progress(items, len(items), "vectorize", disable=args.no_progress):
        target = out if single_file else out / name.with_name(name.name + ".svg")
        try:
            # The title is the file name, minus characters that XML cannot hold.
            title = "".join(ch for ch in image_path.stem if ch.isprintable())
            svg = vectorize(image_path, max_tokens=args.max_tokens, iota=args.iota,
                            title=title, **svg_options)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_text(svg, encoding="utf-8")
            os.replace(tmp, target)
        except FILE_ERRORS as err:
            report(f"{image_path}: error: {err}", error=True)
            failed += 1
    return 1 if failed else 0
