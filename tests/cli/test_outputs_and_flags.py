"""Command line (issue 8): output places checked before any work, one output flag spelling
for every command, bounded ι, CLI-worded hints, a line per written file, directories for
``graph``, ``--help`` lists the files written."""

import pytest

from dhtgraph.cli import main

from cli_helpers import write_step_images


@pytest.fixture()
def image_dir(tmp_path):
    return write_step_images(tmp_path / "in", 12, 10)


def _bad_places(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return [(a_file, "is an existing file"),
            (a_file / "sub", "lies under .*file.txt.*, which is a file"),
            (locked / "new", "cannot be created|is not writable")]


@pytest.mark.parametrize("command", ["tokenize", "vectorize"])
def test_bad_output_place_is_a_usage_error_without_traceback(command, image_dir, tmp_path, capsys,
                                                              monkeypatch):
    import importlib
    import os
    import re

    module = importlib.import_module(f"dhtgraph.cli.{command}")
    monkeypatch.setattr(module, "collect_images", lambda *a: pytest.fail("started the work"))
    for place, reason in _bad_places(tmp_path):
        if "locked" in str(place) and os.geteuid() == 0:
            continue  # root may write anywhere
        status = main([command, str(image_dir), "--out", str(place), "--no-progress"])
        err = capsys.readouterr().err
        assert status == 2, (place, err)
        assert err.startswith(f"dhtgraph {command}: error: --")
        assert "Traceback" not in err
        assert re.search(reason, err), err


def test_vectorize_single_file_output_is_checked_before_any_work(image_dir, tmp_path, capsys,
                                                                  monkeypatch):
    from dhtgraph.cli import vectorize as command

    monkeypatch.setattr(command, "collect_images", lambda *a: pytest.fail("started the work"))
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    status = main(["vectorize", str(image_dir / "a.png"), "-o", str(blocker / "a.svg")])
    assert status == 2
    assert "folder of the output file" in capsys.readouterr().err


def test_vectorize_one_file_for_many_images_is_a_usage_error(image_dir, capsys):
    status = main(["vectorize", str(image_dir), "-o", str(image_dir / "one.svg")])
    assert status == 2 and "names one file but there are 2 images" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--out", "-o", "--output"])
@pytest.mark.parametrize("command", ["tokenize", "vectorize"])
def test_every_output_flag_spelling_works(flag, command, image_dir, tmp_path):
    out = tmp_path / "o"
    assert main([command, str(image_dir / "a.png"), flag, str(out), "--no-progress"]) == 0
    assert (out / ("a.json" if command == "tokenize" else "a.svg")).exists()


def test_demo_accepts_every_output_flag_spelling():
    from dhtgraph.cli import build_parser

    for flag in ("--out", "-o", "--output"):
        assert build_parser().parse_args(["demo", flag, "x"]).out == "x"


@pytest.mark.parametrize("command", ["tokenize", "vectorize", "tokenize-shards"])
@pytest.mark.parametrize("value", ["1e300", "1e7", "1e-7"])
def test_iota_outside_its_range_is_a_usage_error(command, value, image_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, str(image_dir), "-o", str(tmp_path / "o"), "--iota", value])
    assert exit_info.value.code == 2
    assert f"expected a number in [1e-06, 1e+06] (got '{value}')" in capsys.readouterr().err


def test_max_bytes_hint_names_the_command_line_flags(image_dir, tmp_path, capsys):
    status = main(["vectorize", str(image_dir / "a.png"), "-o", str(tmp_path / "o"),
                   "--max-bytes", "50", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1
    assert "--max-bytes 50 cannot be met" in err and "(--max-tokens N)" in err
    assert "vectorize(" not in err and "'max_bytes'" not in err


def test_vectorize_prints_a_line_per_file_and_a_summary(image_dir, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["vectorize", str(image_dir), "-o", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{image_dir / 'a.png'}: ") and lines[0].endswith(f"-> {out / 'a.svg'}")
    assert " paths, " in lines[0] and " KB " in lines[0]
    assert lines[2].startswith("vectorized 2 of 2 images")


def test_graph_accepts_directories(image_dir, capsys):
    assert main(["graph", str(image_dir)]) == 0
    out = capsys.readouterr().out
    assert "a.png: pixel graph: 1 image(s) of 12×10" in out and "b.png: pixel graph" in out


def test_tokenize_help_lists_the_files_it_writes(capsys):
    with pytest.raises(SystemExit):
        main(["tokenize", "--help"])
    text = capsys.readouterr().out
    for name in ("NAME_tokens.png", "NAME_levels.png", "NAME.json", "-o DIR, --output DIR, --out DIR"):
        assert name in text, name


def test_output_folder_that_cannot_be_created_is_a_usage_error(image_dir, tmp_path, capsys,
                                                                 monkeypatch):
    import errno
    import pathlib

    target = tmp_path / "denied"
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    status = main(["tokenize", str(image_dir), "-o", str(target), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "cannot be created (Permission denied)" in err and "Traceback" not in err
