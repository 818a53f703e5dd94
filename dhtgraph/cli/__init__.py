"""The ``dhtgraph`` command: ``dhtgraph {demo,graph,tokenize,vectorize} ...``.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and
``run(args) -> int``; this module only dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import demo, graph, tokenize, vectorize
from . import shards, train  # training (issue 10 §4, issue 14 §2)

__all__ = ["main"]

_SUBCOMMANDS = [demo, graph, tokenize, vectorize]
_SUBCOMMANDS += [train, shards]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dhtgraph",
        description="Images to graphs, graphs to adaptive tokens (differentiable hierarchical "
                    "visual tokenization).",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"dhtgraph {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 some inputs failed,
    2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
