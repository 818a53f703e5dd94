"""Input discovery and progress for the commands that take IMAGE_OR_DIR arguments."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

# IMAGE_SUFFIXES: the file suffixes taken from a directory (files named directly are always
# tried), the same list as the training folders read.
from ..training.data import IMAGE_SUFFIXES

#: Errors that fail one input file and let the others go on (anything else is a bug and
#: stops the run with a traceback).
FILE_ERRORS = (OSError, ValueError, TypeError, RuntimeError)


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


#: Range of ``--iota`` on the command line. ι enters the information criterion through its
#: logarithm: on a 64² photograph ι = 1e-6 … 1e6 gives 150 … 250 tokens, while beyond
#: ~1e30 the selection degenerates to one token per pixel. The bounds keep every accepted
#: value meaningful.
IOTA_RANGE = (1e-6, 1e6)


def iota(text: str) -> float:
    """argparse type: ι, a finite float in :data:`IOTA_RANGE`."""
    import argparse

    value = _real(text, strictly_positive=True)
    lo, hi = IOTA_RANGE
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"expected a number in [{lo:g}, {hi:g}] (got {text!r}); "
                                         "larger values give more tokens")
    return value


def add_output_argument(parser, help: str, metavar: str = "OUT") -> None:
    """``-o/--output`` and ``--out`` (the same option, every command accepts both)."""
    parser.add_argument("-o", "--output", "--out", dest="out", required=True, metavar=metavar,
                        help=help)


def add_device_argument(parser) -> None:
    """``--device`` and ``--no-progress`` (the commands that run under ``torchrun``)."""
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda:LOCAL_RANK if available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_selection_arguments(parser, iota_help: str, criterion_help: str | None = None) -> None:
    """``--criterion`` (unless ``criterion_help`` is None) and ``--iota``, the options that
    :func:`selection_options` reads; ``{range}`` in ``iota_help`` stands for :data:`IOTA_RANGE`."""
    from ..selection.criteria import CRITERIA

    if criterion_help is not None:
        parser.add_argument("--criterion", choices=CRITERIA, default=None, help=criterion_help)
    lo, hi = IOTA_RANGE
    parser.add_argument("--iota", type=iota, default=None,
                        help=iota_help.format(range=f"[{lo:g}, {hi:g}]"))


def selection_options(args) -> dict:
    """The tokenizer options ``--criterion`` and ``--iota`` give (the ones passed)."""
    return {name: getattr(args, name) for name in ("criterion", "iota")
            if getattr(args, name) is not None}


def usage_error(command: str, message: str) -> int:
    """Print ``dhtgraph COMMAND: error: MESSAGE`` to stderr; return the usage status 2."""
    print(f"dhtgraph {command}: error: {message}", file=sys.stderr)
    return 2


def output_directory_problem(path: Path) -> str | None:
    """Create the output directory ``path`` (and its parents); a message if that fails.

    Returns None when ``path`` is (now) a writable directory, else one sentence naming the
    path and the reason: an existing file, a file above it, or an OS error (permissions,
    read-only file system, …).
    """
    import os

    if path.exists() and not path.is_dir():
        return f"output directory {str(path)!r} is an existing file"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"output directory {str(path)!r} lies under {str(parent)!r}, which is a file"
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"output directory {str(path)!r} cannot be created ({err.strerror or err})"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"output directory {str(path)!r} is not writable"
    return None


def output_file_problem(path: Path) -> str | None:
    """Check that the file ``path`` can be written (its directory is created); a message if not."""
    if path.is_dir():
        return f"output file {str(path)!r} is an existing directory"
    problem = output_directory_problem(path.parent)
    if problem is not None:
        return problem.replace("output directory", "folder of the output file", 1)
    return None


def progress(items: Iterable, total: int, desc: str, disable: bool = False) -> Iterator:
    """A tqdm progress bar on stderr (hidden for a single item or when asked)."""
    from tqdm import tqdm

    return iter(tqdm(items, total=total, desc=desc, unit="image", disable=disable or total <= 1))


def report(message: str, error: bool = False) -> None:
    """Print a per-file message (errors to stderr) without breaking the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr if error else sys.stdout)
