"""``dhtgraph vectorize IN... -o OUT``: images (files or directories) to SVG files."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ._files import (FILE_ERRORS, add_output_argument, add_selection_arguments, collect_images,
                     non_negative_float, output_directory_problem, output_file_problem,
                     positive_int, progress, report, usage_error)

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "vectorize", help="convert images to SVG (one filled path per dHT region)",
        description="Tokenize each image with the library defaults and write it as SVG: one "
                    "path per region, filled with the region's mean colour. Prints one line "
                    "per file written.",
        epilog="files written: OUT itself when it ends in .svg (one input image), otherwise "
               "OUT/NAME.svg per image (sub-folders of a directory input mirrored). Exit "
               "status: 0 all done, 1 some inputs failed, 2 usage error.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or directories")
    add_output_argument(parser, "output: an .svg file (single input image) or a directory")
    parser.add_argument("--max-tokens", type=positive_int, default=None,
                        help="at most this many regions per image (coarser)")
    add_selection_arguments(
        parser, iota_help="information-criterion ι in {range}: larger gives more regions (finer)")
    parser.add_argument("--tolerance", type=non_negative_float, default=None,
                        help="boundary simplification tolerance in pixels (0 = exact pixels)")
    parser.add_argument("--max-bytes", type=positive_int, default=None,
                        help="byte budget per SVG (raises the tolerance until it fits)")
    parser.add_argument("--curves", choices=("lines", "cubic"), default=None,
                        help="draw boundaries with lines (default) or cubic Béziers")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def _budget_message(err) -> str:
    return (f"--max-bytes {err.max_bytes} cannot be met: the coarsest SVG of its "
            f"{err.num_blocks} regions (tolerance {err.tolerance:g} px) has {err.needed} bytes; "
            "use fewer regions (--max-tokens N) or a larger --max-bytes")


def run(args: argparse.Namespace) -> int:
    from ..export import vectorize
    from ..export.svg import ByteBudgetError

    out = Path(args.out)
    single_file = out.suffix.lower() == ".svg" and not out.is_dir()
    # Check the output place before any work.
    problem = output_file_problem(out) if single_file else output_directory_problem(out)
    if problem is not None:
        return usage_error("vectorize", f"--output: {problem}")
    items, errors = collect_images(args.inputs)
    if single_file and len(items) > 1:
        return usage_error("vectorize", f"--output {out} names one file but there are "
                                        f"{len(items)} images; give a directory")
    for message in errors:
        report(message, error=True)
    svg_options = {name: getattr(args, name) for name in ("tolerance", "max_bytes", "curves")
                   if getattr(args, name) is not None}
    failed, written, total_bytes = len(errors), 0, 0
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
        except ByteBudgetError as err:
            report(f"{image_path}: error: {_budget_message(err)}", error=True)
            failed += 1
            continue
        except FILE_ERRORS as err:
            report(f"{image_path}: error: {err}", error=True)
            failed += 1
            continue
        size = len(svg.encode())
        written, total_bytes = written + 1, total_bytes + size
        report(f"{image_path}: {svg.count('<path')} paths, {size / 1024:.1f} KB -> {target}")
    if written > 1:
        report(f"vectorized {written} of {len(items)} images, {total_bytes / 1024:.1f} KB in all")
    return 1 if failed else 0
