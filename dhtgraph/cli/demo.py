"""``dhtgraph demo``: the main job on the bundled default image.

The default image is scikit-image's ``astronaut`` (bundled with scikit-image, no
download). The demo writes it to ``--out``, describes its pixel graph, tokenizes it (the
same outputs as ``dhtgraph tokenize``) and vectorises it to SVG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: Token budget of the demo: about √(H·W)/0.56 for a 512² image, the reference's
#: inference budget rule (spec §6) rounded.
DEMO_MAX_TOKENS = 900


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the main job on a bundled default image")
    parser.add_argument("-o", "--output", "--out", dest="out", default="out/demo", metavar="DIR",
                        help="output folder (default: out/demo)")
    parser.set_defaults(run=run)


def default_image():
    """The bundled default image, uint8 (512, 512, 3)."""
    from skimage import data

    return data.astronaut()


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..export import vectorize
    from ..graph import from_image
    from ._files import output_directory_problem, usage_error
    from .graph import describe
    from .tokenize import tokenize_file

    out = Path(args.out)
    problem = output_directory_problem(out)
    if problem is not None:
        return usage_error("demo", f"--out: {problem}")
    path = out / "astronaut.png"
    image = default_image()
    Image.fromarray(image).save(path)
    print(f"{path}: {describe(from_image(path))}")
    summary = tokenize_file(path, out, "astronaut", DEMO_MAX_TOKENS, {})
    print(f"tokenized: {summary['tokens']} tokens (budget {DEMO_MAX_TOKENS}), blocks per level "
          f"{summary['levels']}, {summary['seconds']['tokenize'] * 1e3:.0f} ms")
    for name in ("astronaut_tokens.png", "astronaut_levels.png", "astronaut.json"):
        print(f"  wrote {out / name}")
    svg = vectorize(image)
    (out / "astronaut.svg").write_text(svg)
    print(f"vectorized: {svg.count('<path')} paths, {len(svg.encode()) / 1024:.0f} KB -> {out / 'astronaut.svg'}")
    return 0
