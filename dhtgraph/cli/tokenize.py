"""``dhtgraph tokenize IMAGE_OR_DIR... --out DIR``: the main job.

For every image it writes ``NAME_tokens.png`` (token boundaries over the image),
``NAME_levels.png`` (the hierarchy levels as block-mean mosaics, finest first) and
``NAME.json`` (token count, blocks per level, timings). An unreadable file is reported
and the others go on; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ._files import (FILE_ERRORS, add_output_argument, add_selection_arguments, collect_images,
                     output_directory_problem, positive_int, progress, report, selection_options,
                     usage_error)


_WRITES = """files written for every image NAME (under DIR, sub-folders of a directory input
mirrored):
  NAME_tokens.png   the image with the token boundaries drawn over it
  NAME_levels.png   one panel per hierarchy level, finest first: block-mean colours with
                    thin boundaries, labelled with the level and its block count
  NAME.json         token count, blocks per level, budget, options and timings
exit status: 0 all images done, 1 some inputs failed (the others are written),
2 usage error (bad option, output folder that is a file or cannot be created)"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tokenize", help="tokenize images; write PNGs and a JSON summary",
        description="Tokenize images with the recommended configuration and write pictures "
                    "and a JSON summary per image.",
        epilog=_WRITES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or directories")
    add_output_argument(parser, "output directory (created if missing)", metavar="DIR")
    parser.add_argument("--max-tokens", type=positive_int, default=None,
                        help="token budget per image (default: no budget)")
    add_selection_arguments(
        parser, criterion_help="information criterion for the selection (default: the library's, aicc)",
        iota_help="granularity constant ι in {range}: larger gives more tokens "
                  "(default: the recommended configuration's)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def tokenize_file(path: Path, out: Path, name: str | Path, max_tokens: int | None, options: dict) -> dict:
    """Tokenize one image file and write its three outputs under ``out/name*``; return the summary."""
    from PIL import Image

    from ..graph.pixel import as_image_tensor
    from ..tokenize import tokenize
    from ..visualize import draw_boundaries, hierarchy_strip

    start = time.perf_counter()
    image = as_image_tensor(path)
    loaded = time.perf_counter()
    tokens = tokenize(image, max_tokens=max_tokens, **options)
    tokenized = time.perf_counter()
    h, w = tokens.image_size
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(draw_boundaries(image[0], tokens.labels()[0])).save(out / f"{name}_tokens.png")
    levels = [tokens.hierarchy.absolute(t) for t in range(1, tokens.hierarchy.num_levels)]
    if levels:
        captions = [f"level {t}: {p.num_blocks} blocks" for t, p in enumerate(levels, start=1)]
        Image.fromarray(hierarchy_strip(image[0], levels, captions=captions)).save(
            out / f"{name}_levels.png")
    summary = {
        "image": str(path),
        "size": [h, w],
        "tokens": int(tokens.num_tokens[0]),
        "max_tokens": max_tokens,
        "options": options,
        "levels": tokens.hierarchy.num_blocks[1:],
        "seconds": {
            "load": round(loaded - start, 4),
            "tokenize": round(tokenized - loaded, 4),
            "write": round(time.perf_counter() - tokenized, 4),
        },
    }
    (out / f"{name}.json").write_text(json.dumps(summary, indent=1))
    return summary


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    problem = output_directory_problem(out)
    if problem is not None:
        return usage_error("tokenize", f"--out: {problem}")
    items, problems = collect_images(args.inputs)
    for message in problems:
        report(message, error=True)
    options = selection_options(args)
    failed = len(problems)
    for path, name in progress(items, len(items), "tokenize", disable=args.no_progress):
        try:
            summary = tokenize_file(path, out, name, args.max_tokens, options)
        except FILE_ERRORS as err:
            report(f"{path}: error: {err}", error=True)
            failed += 1
            continue
        report(f"{path}: {summary['tokens']} tokens, {len(summary['levels'])} levels, "
               f"{summary['seconds']['tokenize'] * 1e3:.0f} ms -> {out / name}_tokens.png")
    return 1 if failed else 0
