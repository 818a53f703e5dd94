"""The research notebooks run from top to bottom, and the stored .ipynb match their sources."""

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)

pytest.importorskip("matplotlib", reason="the notebooks draw with matplotlib (the 'test' extra)")


@pytest.mark.parametrize("source", build.sources(), ids=lambda p: p.name)
def test_notebook_runs_and_is_built_from_its_source(source):
    cells = build.split_cells(source.read_text())
    build.run_cells(cells, source.name)
    stored = json.loads(source.with_suffix(".ipynb").read_text())
    assert ["".join(c["source"]) for c in stored["cells"]] == [text for _, text in cells], (
        f"{source.with_suffix('.ipynb').name} is stale: run `python notebooks/build.py {source.name}`")
