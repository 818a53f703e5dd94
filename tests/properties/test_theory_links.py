"""theory/ and the property tests point at each other, and agree.

Each numbered statement in theory/*.md lists, under "Checked by", the pytest node ids of
the tests that check it; each of those tests must exist and name the statement (file and
number) in its docstring. Conversely, every statement a test docstring names must exist
and list that test back.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THEORY = ROOT / "theory"
KINDS = "Definition|Lemma|Proposition|Theorem|Corollary"
HEADING = re.compile(rf"^## ({KINDS}) (\d+)\b")
NODE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
CITATION = re.compile(rf"\b({KINDS}) (\d+)\b")


def _statements() -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(file, 'Theorem 2') -> {(test path, test name)}."""
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for md in sorted(THEORY.glob("0*.md")):
        current = None
        for line in md.read_text(encoding="utf-8").splitlines():
            m = HEADING.match(line)
            if m:
                current = (md.name, f"{m.group(1)} {m.group(2)}")
                out.setdefault(current, set())
            elif line.startswith("#"):
                current = None
            elif current is not None:
                out[current].update(NODE.findall(line))
    return out


@functools.lru_cache(maxsize=None)
def _load(path: str):
    spec = importlib.util.spec_from_file_location(f"_theory_links_{Path(path).stem}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _citations(doc: str) -> set[tuple[str, str]]:
    """Statements named in a docstring: 'theory/<file>' followed by its statement names."""
    cited = set()
    for chunk in re.split(r"theory/", doc)[1:]:
        m = re.match(r"([\w.-]+\.md)", chunk)
        if m:
            for kind, num in CITATION.findall(chunk):
                cited.add((m.group(1), f"{kind} {num}"))
    return cited


STATEMENTS = _statements()
TEST_FILES = sorted({path for tests in STATEMENTS.values() for path, _ in tests})


def test_numbering_is_unique_and_sequential():
    """Definitions, lemmas, propositions, theorems and corollaries are numbered 1, 2, …
    without gaps or repeats across theory/ (library docstrings cite them by number)."""
    for kind in KINDS.split("|"):
        numbers = sorted(int(label.split()[1]) for _, label in STATEMENTS if label.startswith(kind))
        assert numbers == list(range(1, len(numbers) + 1)), (kind, numbers)
    assert {"Definition 8", "Definition 9", "Theorem 1", "Theorem 2"} <= {l for _, l in STATEMENTS}


@pytest.mark.parametrize("statement", sorted(STATEMENTS), ids=lambda s: f"{s[0]}:{s[1]}")
def test_every_statement_names_tests_that_name_it(statement):
    """Each theory/ statement lists at least one test, and each listed test exists and
    names the statement in its docstring."""
    tests = STATEMENTS[statement]
    assert tests, f"{statement} lists no test"
    for path, name in sorted(tests):
        func = getattr(_load(path), name, None)
        assert func is not None, f"{path}::{name} (listed by {statement}) does not exist"
        assert statement in _citations(func.__doc__ or ""), (
            f"{path}::{name} does not name theory/{statement[0]} {statement[1]} in its docstring")


@pytest.mark.parametrize("path", TEST_FILES)
def test_every_cited_statement_lists_the_test(path):
    """Every statement a property test names exists in theory/ and lists that test back;
    every test in these files names at least one statement."""
    module = _load(path)
    for name in dir(module):
        if not name.startswith("test_"):
            continue
        cited = _citations(getattr(module, name).__doc__ or "")
        assert cited, f"{path}::{name} names no theory/ statement"
        for statement in cited:
            assert statement in STATEMENTS, f"{path}::{name} cites unknown {statement}"
            assert (path, name) in STATEMENTS[statement], (
                f"theory/{statement[0]} {statement[1]} does not list {path}::{name}")
