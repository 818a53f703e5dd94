import argparse

import torch
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import dhtgraph
from dhtgraph.cli import vectorize as cli

NS = "{http://www.w3.org/2000/svg}"


def blocks_image(size=24):
    """Four flat quadrants with a disc: a few obvious regions."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.zeros((size, size, 3), dtype=np.uint8)
    image[: size // 2, : size // 2] = (200, 30, 30)
    image[: size // 2, size // 2:] = (30, 200, 30)
    image[size // 2:, : size // 2] = (30, 30, 200)
    image[(xx - size * 0.7) ** 2 + (yy - size * 0.7) ** 2 < (size / 6) ** 2] = (250, 250, 0)
    return image


def test_vectorize_one_path_per_token():
    image = blocks_image()
    svg = dhtgraph.vectorize(image, tolerance=0)
    tokens = dhtgraph.tokenize(image)
    paths = ET.fromstring(svg).findall(f".//{NS}path")
    assert len(paths) == int(tokens.num_tokens[0])
    assert svg == dhtgraph.to_svg(image, tokens.partition, tolerance=0)


def test_vectorize_knobs_and_errors():
    image = blocks_image()
    def paths(picture, **options):
        return len(ET.fromstring(dhtgraph.vectorize(picture, **options)).findall(f".//{NS}path"))

    assert int(dhtgraph.tokenize(image).num_tokens[0]) > 2
    assert paths(image, max_tokens=2) == 2
    # ι is the granularity knob: on a textured image a larger ι keeps more regions.
    from skimage import data
    from skimage.transform import resize

    textured = (resize(data.astronaut(), (48, 48)) * 255).astype(np.uint8)
    assert paths(textured, iota=100.0) > paths(textured, iota=1.0)
    with pytest.raises(TypeError, match="unknown option"):
        dhtgraph.vectorize(image, tolerence=1)
    with pytest.raises(ValueError, match="single image"):
        dhtgraph.vectorize(np.stack([image, image]))


def run_cli(argv):
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["vectorize", "--no-progress", *argv])
    return args.run(args)


def test_cli_files_directories_and_a_bad_file(tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(blocks_image()).save(src / "a.png")
    Image.fromarray(blocks_image(16)).save(src / "sub" / "b.png")
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    status = run_cli([str(src), str(tmp_path / "missing.png"), "-o", str(out), "--tolerance", "1"])
    assert status == 1  # some inputs failed, the others were written
    err = capsys.readouterr().err
    assert "broken.png: error" in err and "missing.png: error" in err
    for name in ("a.svg", "sub/b.svg"):
        root = ET.fromstring((out / name).read_text())
        assert root.findall(f".//{NS}path")
    assert not (out / "broken.svg").exists()
    # A single image to a named .svg file succeeds.
    assert run_cli([str(src / "a.png"), "-o", str(tmp_path / "one.svg")]) == 0
    assert (tmp_path / "one.svg").read_text().startswith("<svg")


# ---------------------------------------------------------------- inputs users pass (issue 8)
def test_vectorize_image_that_requires_grad():
    image = torch.from_numpy(blocks_image(12)).permute(2, 0, 1).float().div(255)
    assert dhtgraph.vectorize(image.requires_grad_()) == dhtgraph.vectorize(image.detach())


@pytest.mark.parametrize("options, match", [
    ([1], r"'tokenizer_options' to be a dict of tokenize\(\) options or None \(got list \[1\]\)"),
    ("iota", r"'tokenizer_options' to be a dict .*got str"),
    ({1: 2}, r"'tokenizer_options' keys to be option names \(got 1\)"),
])
def test_vectorize_bad_tokenizer_options(options, match):
    with pytest.raises(TypeError, match=match):
        dhtgraph.vectorize(blocks_image(8), tokenizer_options=options)


def test_vectorize_iota_given_twice_is_refused():
    with pytest.raises(ValueError, match="'iota' once"):
        dhtgraph.vectorize(blocks_image(8), iota=5.0, tokenizer_options={"iota": 6.0})


def test_vectorize_channel_layout_option():
    hwc = blocks_image(12)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    with pytest.raises(ValueError, match="pass channels_last=False"):
        dhtgraph.vectorize(chw)
    assert dhtgraph.vectorize(chw, channels_last=False) == dhtgraph.vectorize(hwc)


def test_transparent_pixels_do_not_split_on_their_hidden_colour():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)  # noisy hidden colours ...
    rgba[..., 3] = 0                                           # ... all fully transparent
    rgba[:8, :, :3], rgba[:8, :, 3] = (200, 30, 30), 255       # an opaque red top half
    tokens = dhtgraph.tokenize(rgba)
    assert int(tokens.num_tokens[0]) == 2
    assert tokens.labels()[0][:8].unique().numel() == 1 and tokens.labels()[0][8:].unique().numel() == 1
    svg = dhtgraph.vectorize(rgba, seam_stroke=0)
    paths = ET.fromstring(svg).findall(f".//{NS}path")
    assert [p.get("fill") for p in paths][0] == "#c81e1e"
    assert [p.get("fill-opacity") for p in paths] == [None, "0"]
    assert ET.fromstring(svg).find(f"{NS}rect") is None  # no background under transparency
