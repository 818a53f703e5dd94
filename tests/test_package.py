"""Package hygiene: light imports, one-way imports along the pipeline, public API."""

import ast
import subprocess
import sys
from pathlib import Path

import dhtgraph

PACKAGE = Path(dhtgraph.__file__).parent
# (tqdm is not listed: torch itself imports it.)
HEAVY = ("matplotlib", "skimage", "PIL", "scipy", "hypothesis", "networkx", "torch_geometric")

# The pipeline, left to right (spec/architecture.md). A module may import from its own
# stage, from stages to its left, and from the foundation.
FOUNDATION = {"partition", "_union", "errors", "_typing"}
STAGES = ["graph", "hierarchy", "selection", "features", "nn", "metrics", "tokenize", "export",
          "visualize",
          "transforms", "cli"]


def test_import_dhtgraph_stays_light():
    code = ("import sys, dhtgraph; heavy = %r; "
            "print(','.join(m for m in heavy if m in sys.modules))" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"'import dhtgraph' imported {out.stdout.strip()}"


def _stage(module: str) -> str:
    return module.split(".")[0]


def test_imports_go_one_way_along_the_pipeline():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = relative.parts
        if parts[0] in ("testing", "__init__", "__main__"):
            continue
        here = _stage(parts[0])
        if here not in STAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                base = list(parts[:-1])[: len(parts) - node.level] if node.level > 1 else list(parts[:-1])
                target = ".".join(base + ([node.module] if node.module else []))
                if not target:
                    continue
                there = _stage(target)
                if there in FOUNDATION or there not in STAGES:
                    continue
                if STAGES.index(there) > STAGES.index(here):
                    problems.append(f"{relative} imports {target}")
    assert not problems, "imports against the pipeline: " + "; ".join(problems)


def test_public_names_exist_once():
    assert len(dhtgraph.__all__) == len(set(dhtgraph.__all__))
    for name in dhtgraph.__all__:
        assert hasattr(dhtgraph, name), name


def test_package_data_ships_every_native_source_and_header():
    """Every file a kernel set compiles from (its ``.c`` and the headers it includes)
    matches a pattern of setup.cfg's package_data, so an installed wheel can build it."""
    import configparser
    import fnmatch
    import re

    setup = configparser.ConfigParser()
    setup.read(PACKAGE.parent / "setup.cfg")
    patterns = [p.strip() for p in setup["options.package_data"]["dhtgraph._native"].split(",")]
    native = PACKAGE / "_native"
    needed = set()
    for source in native.glob("*.c"):
        needed.add(source.name)
        needed.update(re.findall(r'#include\s+"([^"]+)"', source.read_text()))
    for header in native.glob("*.h"):
        needed.update(re.findall(r'#include\s+"([^"]+)"', header.read_text()))
    missing = sorted(name for name in needed
                     if not any(fnmatch.fnmatch(name, p) for p in patterns))
    assert not missing, f"not in setup.cfg package_data {patterns}: {missing}"
