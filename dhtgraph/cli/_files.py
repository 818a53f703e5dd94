"""Input discovery and progress for the commands that take IMAGE_OR_DIR arguments."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

#: Errors that fail one input file and let the others go on (anything else is a bug and
#: stops the run with a traceback).
FILE_ERRORS = (OSError, ValueError, TypeError, RuntimeError)

#: File suffixes taken from a directory (files named directly are always tried).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")


def collect_images(inputs: Sequence[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files and directories into images and the names their outputs get.

    Parameters
    ----------
    inputs : sequence of str
        Files (taken as they are) and directories (their image files, recursively,
        sorted by path).

    Returns
    -------
    items : list of (Path, Path)
        The image and its output name without suffix: the file stem for a file, the
        path below the directory for a directory's files (so sub-folders are mirrored).
        Repeated names get ``-2``, ``-3``… appended.
    problems : list of str
        One message per input that does not exist or is a directory without images.
    """
    items, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{path}: error: no image files ({', '.join(IMAGE_SUFFIXES)}) in this directory")
            items.extend((p, p.relative_to(path).with_suffix("")) for p in found)
        elif path.exists():
            items.append((path, Path(path.stem)))
        else:
            problems.append(f"{path}: error: no such file or directory")
    used: set[Path] = set()
    named = []
    for path, name in items:
        unique, count = name, 1
        while unique in used:  # never reuse a name, not even one that an input already has
            count += 1
            unique = name.with_name(f"{name.name}-{count}")
        used.add(unique)
        named.append((path, unique))
    return named, problems


def positive_int(text: str) -> int:
    """argparse type: an int ≥ 1 (a usage error, exit status 2, otherwise)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (got {text!r})")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    return _real(text, strictly_positive=True)


def non_negative_float(text: str) -> float:
    """argparse type: a finite float ≥ 0."""
    return _real(text, strictly_positive=False)


def _real(text: str, strictly_positive: bool) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (strictly_positive and value == 0):
        kind = "a finite number > 0" if strictly_positive else "a finite number >= 0"
        raise argparse.ArgumentTypeError(f"expected {kind} (got {text!r})")
    return value


def progress(items: Iterable, total: int, desc: str, disable: bool = False) -> Iterator:
    """A tqdm progress bar on stderr (hidden for a single item or when asked)."""
    from tqdm import tqdm

    return iter(tqdm(items, total=total, desc=desc, unit="image", disable=disable or total <= 1))


def report(message: str, error: bool = False) -> None:
    """Print a per-file message (errors to stderr) without breaking the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr if error else sys.stdout)
