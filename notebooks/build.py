"""Build the research notebooks: run their cells and store the outputs in ``.ipynb`` files.

The notebooks are written here as Python sources (``*.py`` beside this file, cells
separated by ``# %%`` lines, Markdown cells by ``# %% [markdown]``), so they can be
reviewed as code and tested (tests/test_notebooks.py runs every code cell). This script
executes each source top to bottom in one namespace — printed text and matplotlib
figures become cell outputs — and writes the notebook JSON (nbformat 4) next to it.
No Jupyter installation is needed.

Run: ``python notebooks/build.py [NAME.py ...]``
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def split_cells(source: str) -> list[tuple[str, str]]:
    """``[(kind, text)]`` with kind ``'code'`` or ``'markdown'``."""
    cells, kind, lines = [], None, []
    for line in source.splitlines():
        if line.startswith("# %%"):
            if kind is not None:
                cells.append((kind, "\n".join(lines).strip("\n")))
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line[2:] if kind == "markdown" and line.startswith("# ") else
                         ("" if kind == "markdown" and line == "#" else line))
    if kind is not None:
        cells.append((kind, "\n".join(lines).strip("\n")))
    return [c for c in cells if c[1]]


def _figures() -> list[dict]:
    import matplotlib.pyplot as plt

    outputs = []
    for number in plt.get_fignums():
        buffer = io.BytesIO()
        plt.figure(number).savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": base64.b64encode(buffer.getvalue()).decode(),
                                 "text/plain": ["<Figure>"]}})
    plt.close("all")
    return outputs


def run_cells(cells: list[tuple[str, str]], name: str, capture: bool = True) -> list[list[dict]]:
    """Execute the code cells in one namespace; return the outputs of every cell."""
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__main__"}
    all_outputs = []
    for index, (kind, text) in enumerate(cells):
        outputs: list[dict] = []
        if kind == "code":
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout) if capture else contextlib.nullcontext():
                exec(compile(text, f"{name}[cell {index}]", "exec"), namespace)
            if stdout.getvalue():
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": stdout.getvalue().splitlines(keepends=True)})
            outputs.extend(_figures())
        all_outputs.append(outputs)
    return all_outputs


def build(path: Path) -> Path:
    cells = split_cells(path.read_text())
    outputs = run_cells(cells, path.name)
    notebook = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "cells": [],
    }
    count = 0
    for index, ((kind, text), out) in enumerate(zip(cells, outputs)):
        cell = {"cell_type": kind, "id": f"cell-{index}", "metadata": {},
                "source": text.splitlines(keepends=True)}
        if kind == "code":
            count += 1
            cell.update(execution_count=count, outputs=out)
        notebook["cells"].append(cell)
    target = path.with_suffix(".ipynb")
    target.write_text(json.dumps(notebook, indent=1) + "\n")
    return target


def sources() -> list[Path]:
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


if __name__ == "__main__":
    chosen = [HERE / a for a in sys.argv[1:]] or sources()
    for source in chosen:
        print("built", build(source))
