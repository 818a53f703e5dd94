"""``dhtgraph demo``: the main job on the bundled default image.

The default image is scikit-image's ``astronaut`` (bundled with scikit-image, no
download). The demo writes it to ``--out`` and runs the pipeline on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the main job on a bundled default image")
    parser.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    parser.set_defaults(run=run)


def default_image():
    """The bundled default image, uint8 (512, 512, 3)."""
    from skimage import data

    return data.astronaut()


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..graph import from_image
    from .graph import describe

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "astronaut.png"
    Image.fromarray(default_image()).save(path)
    print(f"{path}: {describe(from_image(path))}")
    return 0
