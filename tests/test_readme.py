"""The README's example runs as written, and the commands it names exist."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_ten_line_example_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"## Ten lines\n\n```python\n(.*?)```", README, re.S).group(1)
    assert len(code.strip().splitlines()) == 10
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert "400 tokens from a hierarchy of" in printed
    assert (tmp_path / "astronaut.svg").read_text().startswith("<svg")


def test_named_commands_exist():
    from dhtgraph.cli import build_parser

    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    for command in re.findall(r"^dhtgraph (\w+)", README, re.M):
        assert command in choices, command
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    for target in re.findall(r"^make (\w+)", README, re.M):
        assert re.search(rf"^{target}:", makefile, re.M), target
