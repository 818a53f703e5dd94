"""Input discovery and progress for the commands that take IMAGE_OR_DIR arguments."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

#: File suffixes taken from a directory (files named directly are always tried).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")


def collect_images(inputs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Expand files and directories into image paths.

    Parameters
    ----------
    inputs : sequence of str
        Files (taken as they are) and directories (their image files, sorted, not
        recursive).

    Returns
    -------
    paths : list of Path
        In the order given; directory contents sorted by name.
    problems : list of str
        One message per input that does not exist or is an empty directory.
    """
    paths, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{path}: error: no image files ({', '.join(IMAGE_SUFFIXES)}) in this directory")
            paths.extend(found)
        elif path.exists():
            paths.append(path)
        else:
            problems.append(f"{path}: error: no such file or directory")
    return paths, problems


def unique_stems(paths: Sequence[Path]) -> list[str]:
    """Output names for ``paths``: the file stem, with ``-2``, ``-3``… on repeats."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        names.append(path.stem if count == 1 else f"{path.stem}-{count}")
    return names


def progress(items: Iterable, total: int, desc: str) -> Iterator:
    """A tqdm progress bar on stderr (hidden for a single item or when not a terminal)."""
    from tqdm import tqdm

    disable = total <= 1 or not sys.stderr.isatty()
    return iter(tqdm(items, total=total, desc=desc, unit="image", disable=disable))
