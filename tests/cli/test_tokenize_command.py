"""``dhtgraph tokenize``: outputs per image, directories, bad files, bad options."""

import json

import pytest
from PIL import Image

import dhtgraph
from dhtgraph.cli import main

from cli_helpers import write_step_images


@pytest.fixture()
def images(tmp_path):
    folder = write_step_images(tmp_path / "in", 24, 20)
    (folder / "broken.png").write_text("not an image")
    return folder


def test_writes_pngs_and_json_and_reports_bad_files(images, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["tokenize", str(images), "--out", str(out), "--max-tokens", "5"])
    printed = capsys.readouterr()
    assert status == 1  # broken.png failed, the others went on
    assert "broken.png: error: Expected 'image' to be a readable image file" in printed.err
    assert "a.png: " in printed.out and "tokens" in printed.out
    for name in ("a", "b"):
        summary = json.loads((out / f"{name}.json").read_text())
        unbudgeted = int(dhtgraph.tokenize(images / f"{name}.png").num_tokens[0])
        assert summary["tokens"] == min(unbudgeted, 5) and summary["size"] == [24, 20]
        assert summary["levels"][-1] == 1 and summary["levels"] == sorted(summary["levels"], reverse=True)
        assert set(summary["seconds"]) == {"load", "tokenize", "write"}
        assert Image.open(out / f"{name}_tokens.png").size == (20, 24)
        assert (out / f"{name}_levels.png").exists()


def test_same_stem_twice_gets_distinct_names(images, tmp_path):
    out = tmp_path / "out"
    (images / "a-2.png").write_bytes((images / "a.png").read_bytes())
    inputs = [str(images / "a.png"), str(images / "a.png"), str(images / "a-2.png")]
    assert main(["tokenize", *inputs, "--out", str(out)]) == 0
    # three inputs, three outputs: the repeat may not take the name a later input owns
    assert sorted(p.name for p in out.glob("*.json")) == ["a-2-2.json", "a-2.json", "a.json"]


def test_subfolders_are_mirrored(images, tmp_path):
    nested = images / "sub"
    nested.mkdir()
    (images / "a.png").rename(nested / "a.png")
    out = tmp_path / "out"
    main(["tokenize", str(images), "--out", str(out)])
    assert (out / "sub" / "a.json").exists() and (out / "b.json").exists()


def test_bad_options(images, tmp_path, capsys):
    for bad, message in ((["--max-tokens", "0"], "expected a positive integer (got '0')"),
                         (["--criterion", "mdl"], "invalid choice: 'mdl'"),
                         (["--iota", "-5"], "expected a finite number > 0 (got '-5')"),
                         (["--iota", "nan"], "expected a finite number > 0 (got 'nan')")):
        with pytest.raises(SystemExit) as exit_info:
            main(["tokenize", str(images / "a.png"), "--out", str(tmp_path), *bad])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
