import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from dhtgraph import Partition
from dhtgraph.export import SVGConfig, to_svg
from dhtgraph.testing.partitions import partitions

from svg_oracle import NS, coverage, parse, signed_area


def image_for(labels, seed=0):
    """A uint8 RGB image with one distinct colour per label."""
    k = int(labels.max()) + 1
    palette = (np.arange(k) * 2654435761 + seed) % 256 ** 3  # odd multiplier: distinct
    rgb = np.stack([(palette >> 16) & 255, (palette >> 8) & 255, palette & 255], axis=1)
    return rgb[labels].astype(np.uint8)


def assert_exact(labels, **options):
    """Every pixel centre lies in exactly the path of its own block."""
    h, w = labels.shape
    svg = to_svg(image_for(labels), labels, tolerance=0, **options)
    cov = coverage(svg, h, w)
    assert cov.shape[0] == labels.max() + 1  # one path per block
    expected = np.arange(cov.shape[0])[:, None, None] == labels[None]
    np.testing.assert_array_equal(cov, expected)
    return svg


def resvg_raster(svg, h, w):
    resvg_py = pytest.importorskip("resvg_py")
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, width=w, height=h, shape_rendering="crisp_edges")
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"))


# ---------------------------------------------------------------- exact small cases
def test_two_colour_image_gives_two_paths_rendering_it_exactly():
    labels = np.zeros((6, 8), dtype=np.int64)
    labels[:, 5:] = 1
    image = np.zeros((6, 8, 3), dtype=np.uint8)
    image[labels == 1] = (255, 128, 0)
    svg = to_svg(image, labels, tolerance=0, background=None, seam_stroke=0)
    root = ET.fromstring(svg)
    paths = root.findall(f".//{NS}path")
    assert [p.get("fill") for p in paths] == ["#000", "#ff8000"]
    assert [p.get("d") for p in paths] == ["M0 0v6h5v-6z", "M5 0v6h3v-6z"]
    np.testing.assert_array_equal(resvg_raster(svg, 6, 8), image)


def test_exact_with_resvg_on_nested_blocks():
    labels = np.zeros((9, 9), dtype=np.int64)
    labels[1:8, 1:8] = 1
    labels[3:6, 3:6] = 2
    labels[4, 4] = 3
    image = image_for(labels)
    svg = to_svg(image, labels, tolerance=0, background=None, seam_stroke=0)
    np.testing.assert_array_equal(resvg_raster(svg, 9, 9), image)


def test_holes_and_nested_blocks():
    labels = np.zeros((9, 9), dtype=np.int64)
    labels[1:8, 1:8] = 1          # ring around ...
    labels[3:6, 3:6] = 2          # ... a block with ...
    labels[4, 4] = 3              # ... a one-pixel island
    svg = assert_exact(labels)
    _, _, paths = parse(svg)
    assert [len(polys) for _, polys in paths] == [2, 2, 2, 1]  # outer boundary + hole each


def test_one_pixel_blocks_and_checkerboard():
    labels = (np.indices((5, 6)).sum(axis=0) % 2)  # diagonal contacts everywhere
    assert_exact(labels)
    labels = np.arange(20).reshape(4, 5)  # every pixel its own block
    assert_exact(labels)


def test_one_pixel_wide_blocks():
    labels = np.zeros((7, 9), dtype=np.int64)
    labels[:, 4] = 1          # a column
    labels[3, :] = 2          # a row crossing it
    labels[5, 1:8] = 3        # a row not touching the border
    assert_exact(labels)


def test_image_border_and_disconnected_block():
    labels = np.array([[0, 1, 0],
                       [1, 1, 1],
                       [0, 1, 0]])  # block 0 is four corner pixels
    svg = assert_exact(labels)
    _, _, paths = parse(svg)
    assert len(paths[0][1]) == 4
    root = ET.fromstring(svg)
    assert root.get("viewBox") == "0 0 3 3"
    assert (root.get("width"), root.get("height")) == ("3", "3")


def test_single_block_and_single_pixel():
    assert_exact(np.zeros((4, 3), dtype=np.int64))
    assert_exact(np.zeros((1, 1), dtype=np.int64))


@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_unsimplified_svg_reproduces_partition(h, w, data):
    partition = data.draw(partitions(h * w, max_blocks=6))
    labels = partition.labels.numpy().reshape(h, w)
    image = image_for(labels)
    svg = to_svg(image, partition, tolerance=0)
    cov = coverage(svg, h, w)
    np.testing.assert_array_equal(cov, np.arange(partition.num_blocks)[:, None, None] == labels)


# ---------------------------------------------------------------- simplified output
@pytest.mark.parametrize("tolerance", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("vertices", ["corners", "midpoints"])
def test_simplified_blocks_share_boundaries_and_none_is_lost(tolerance, vertices):
    rng = np.random.default_rng(0)
    # Blobby blocks: a coarse random map upsampled, plus one-pixel specks.
    labels = np.kron(rng.integers(0, 5, size=(6, 6)), np.ones((5, 5), dtype=np.int64))
    labels[rng.integers(0, 30, 8), rng.integers(0, 30, 8)] = np.arange(5, 13)
    from skimage.measure import label as connected

    labels = connected(labels, connectivity=1, background=-1)
    svg = to_svg(image_for(labels), labels, tolerance=tolerance, vertices=vertices)
    _, _, paths = parse(svg)
    assert len(paths) == labels.max()  # skimage labels start at 1: K blocks
    areas = np.array([signed_area(polys) for _, polys in paths])
    # No block vanishes, and shared chains cancel exactly: the areas tile the image.
    assert (areas > 0).all()
    assert areas.sum() == pytest.approx(30 * 30, abs=1e-9)


def test_tolerance_reduces_bytes_and_budget_is_met():
    yy, xx = np.mgrid[0:64, 0:64]
    labels = ((xx - 30) ** 2 + (yy - 34) ** 2 < 20 ** 2).astype(np.int64)
    labels[(xx + 2 * yy) % 37 < 3] = 2
    image = image_for(labels)
    sizes = [len(to_svg(image, labels, tolerance=t)) for t in (0, 1, 2)]
    assert sizes[0] > sizes[1] >= sizes[2]
    budget = (sizes[0] + sizes[2]) // 2
    assert len(to_svg(image, labels, tolerance=0, max_bytes=budget).encode()) <= budget
    with pytest.raises(ValueError, match=r"'max_bytes' to be reachable \(got 100\): the coarsest SVG"):
        to_svg(image, labels, max_bytes=100)


def test_cubic_curves_are_written_and_parse():
    yy, xx = np.mgrid[0:48, 0:48]
    labels = ((xx - 24) ** 2 + (yy - 24) ** 2 < 15 ** 2).astype(np.int64)
    svg = to_svg(image_for(labels), labels, tolerance=1.0, curves="cubic")
    d = [p.get("d") for p in ET.fromstring(svg).iter(f"{NS}path")]
    assert len(d) == 2 and "c" in d[1]
    # Both blocks use the same curves: the disc's commands appear (reversed) in the outside.
    assert d[0].count("c") == d[1].count("c")


# ---------------------------------------------------------------- inputs and options
def test_partition_tensor_and_numpy_inputs_agree():
    labels = np.array([[3, 3, 7], [9, 7, 7]])
    image = np.random.default_rng(1).random((2, 3, 3)).astype(np.float32)
    a = to_svg(image, labels)
    b = to_svg(torch.from_numpy(image).permute(2, 0, 1), Partition.from_labels(torch.tensor(labels).view(-1)))
    c = to_svg(image, torch.tensor(labels))
    assert a == b == c


def test_grayscale_and_alpha_images():
    labels = np.array([[0, 1], [1, 1]])
    svg = to_svg(np.array([[0, 255], [255, 255]], dtype=np.uint8), labels, seam_stroke=0)
    assert [p.get("fill") for p in ET.fromstring(svg).iter(f"{NS}path")] == ["#000", "#fff"]
    rgba = np.zeros((2, 2, 4), dtype=np.float32)
    rgba[..., 3] = 0.5
    svg = to_svg(rgba, labels, seam_stroke=0)
    assert {p.get("fill-opacity") for p in ET.fromstring(svg).iter(f"{NS}path")} == {".5"}


def test_errors_name_the_argument():
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    labels = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(TypeError, match="unknown option"):
        to_svg(image, labels, tolerence=1)
    with pytest.raises(ValueError, match="'tolerance'"):
        to_svg(image, labels, tolerance=-1)
    with pytest.raises(ValueError, match="'curves'"):
        to_svg(image, labels, curves="spline")
    with pytest.raises(ValueError, match="'partition'"):
        to_svg(image, np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="'partition'"):
        to_svg(image, Partition.discrete(5))
    with pytest.raises(TypeError, match="'partition'"):
        to_svg(image, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="single image"):
        to_svg(np.zeros((2, 2, 2, 3), dtype=np.uint8), labels)
    with pytest.raises(ValueError, match="'max_bytes'"):
        SVGConfig(max_bytes=0)


@pytest.mark.parametrize("name", ["title", "description", "background"])
@pytest.mark.parametrize("text", ["a\x01b", "red\x00", "\ud800", "x\ufffey"])
def test_strings_outside_xml_are_refused(name, text):
    with pytest.raises(ValueError, match=f"'{name}' to hold only characters allowed in XML 1.0"):
        to_svg(np.zeros((1, 2, 3), dtype=np.uint8), np.array([[0, 1]]), **{name: text})


def test_malicious_strings_cannot_inject_markup():
    evil = '"/><script>alert(1)</script><x a="&amp;\'<'
    labels = np.array([[0, 1]])
    svg = to_svg(np.zeros((1, 2, 3), dtype=np.uint8), labels, title=evil, description=evil,
                 background=evil)
    root = ET.fromstring(svg)  # valid XML
    assert root.find(f"{NS}title").text == evil
    assert root.find(f"{NS}desc").text == evil
    assert root.find(f"{NS}rect").get("fill") == evil
    assert not any(el.tag.endswith("script") or el.tag.endswith("x") for el in root.iter())
    assert "<script>" not in svg


def test_document_structure():
    labels = np.array([[0, 1], [2, 2]])
    svg = to_svg(image_for(labels), labels, scale=2.5, shape_rendering="crispEdges")
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("5", "5", "0 0 2 2")
    assert root.get("shape-rendering") == "crispEdges"
    assert len(root.findall(f".//{NS}path")) == 3


def test_transparent_pixels_stay_transparent_when_rendered():
    resvg_py = pytest.importorskip("resvg_py", reason="resvg-py renders the SVG (test extra)")
    import io

    from PIL import Image

    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2] = (200, 0, 0, 255)  # opaque red top, fully transparent bottom
    svg = to_svg(rgba, np.array([[0] * 4] * 2 + [[1] * 4] * 2))
    png = resvg_py.svg_to_bytes(svg_string=svg, width=4, height=4)
    out = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"))
    assert out[3, 0, 3] == 0 and tuple(out[0, 0]) == (200, 0, 0, 255)


def test_block_colour_is_alpha_weighted():
    rgba = np.array([[[255, 0, 0, 255], [0, 0, 255, 0]]], dtype=np.uint8)  # red, invisible blue
    svg = to_svg(rgba, np.array([[0, 0]]), seam_stroke=0)
    assert '"#f00"' in svg and 'opacity=".5"' in svg


def test_grey_and_alpha_images_are_vectorised():
    la = np.zeros((2, 2, 2), dtype=np.uint8)
    la[..., 0], la[..., 1] = 128, 255
    root = ET.fromstring(to_svg(la, np.zeros((2, 2), dtype=int)))
    assert len(list(root.iter(f"{NS}path"))) == 1


# ---------------------------------------------------------------- inputs users pass (issue 8)
def test_image_that_requires_grad_is_vectorised_like_its_values():
    image = torch.rand(3, 4, 5, requires_grad=True)
    labels = np.arange(20).reshape(4, 5) // 7
    assert to_svg(image, labels) == to_svg(image.detach(), labels)


def test_meta_image_is_refused_by_name():
    with pytest.raises(ValueError, match="'meta' device"):
        to_svg(torch.empty(3, 2, 2, device="meta"), np.zeros((2, 2), dtype=np.int64))


@pytest.mark.parametrize("value", [np.float32(1), np.float64(1), np.float16(1), np.int64(1),
                                   np.uint8(1), torch.tensor(1.0), 1, 1.0])
def test_every_real_number_type_is_an_option_value(value):
    image = np.random.default_rng(0).random((6, 6, 3))
    labels = np.arange(36).reshape(6, 6) // 5
    expected = to_svg(image, labels, tolerance=1.0, seam_stroke=1.0, scale=1.0)
    got = to_svg(image, labels, tolerance=value, seam_stroke=value, scale=value)
    assert got == expected
    config = SVGConfig(tolerance=value, precision=np.int64(2))
    assert type(config.tolerance) is float and type(config.precision) is int


@pytest.mark.parametrize("name, value", [("tolerance", True), ("tolerance", "1"),
                                         ("tolerance", np.float32("nan")), ("scale", np.float64(0)),
                                         ("seam_stroke", complex(1, 0)), ("tolerance", torch.ones(2))])
def test_non_real_option_values_are_refused(name, value):
    with pytest.raises(ValueError, match=f"'{name}' to be a finite number"):
        SVGConfig(**{name: value})


def test_precision_accepts_numpy_ints_and_refuses_others():
    assert SVGConfig(precision=np.int32(3)).precision == 3
    for bad in (7, 1.5, True, -1):
        with pytest.raises(ValueError, match=r"'precision' to be an int in \[0, 6\]"):
            SVGConfig(precision=bad)


def test_channel_first_array_needs_the_layout_option():
    labels = np.arange(48).reshape(6, 8) // 9
    chw = np.random.default_rng(0).random((3, 6, 8))
    with pytest.raises(ValueError, match=r"read as a 3×6 image with 8 channels.*channels_last=False"):
        to_svg(chw, labels)
    assert to_svg(chw, labels, channels_last=False) == to_svg(chw.transpose(1, 2, 0), labels)
