"""The ``dhtgraph`` command: dispatch, graph and demo subcommands, bad files."""

import numpy as np
import pytest
from PIL import Image

from dhtgraph.cli import main


def test_graph_reports_each_file_and_continues_after_errors(tmp_path, capsys):
    good = tmp_path / "a.png"
    Image.fromarray(np.zeros((3, 4, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "b.png"
    bad.write_text("nope")
    status = main(["graph", str(bad), str(good)])
    printed = capsys.readouterr()
    assert status == 1
    assert "b.png: error: Expected 'image' to be a readable image file" in printed.err
    out = printed.out
    assert "a.png: pixel graph: 1 image(s) of 3×4, 12 nodes, 34 directed edges" in out


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_demo_writes_every_output(tmp_path, monkeypatch, capsys):
    from dhtgraph.cli import demo

    rng = np.random.default_rng(0)
    small = np.repeat(np.repeat(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), 8, 0), 8, 1)
    monkeypatch.setattr(demo, "default_image", lambda: small)
    assert main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "tokenized: 16 tokens" in printed
    for name in ("astronaut.png", "astronaut_tokens.png", "astronaut_levels.png", "astronaut.json",
                 "astronaut.svg"):
        assert (tmp_path / name).stat().st_size > 0, name
