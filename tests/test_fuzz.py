"""Fuzz (issue 8): random images 1..64 px of every accepted layout, channel count and dtype,
through from_image, tokenize and to_svg, keep their invariants and raise nothing."""

import xml.etree.ElementTree as ET

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.measure import label as connected_components

import dhtgraph
from dhtgraph import from_image, to_svg

NS = "{http://www.w3.org/2000/svg}"
DTYPES = ("uint8", "uint16", "float16", "float32", "float64")
PATTERNS = ("constant", "stripes", "gradient", "checkerboard", "noise")


@st.composite
def fuzz_images(draw):
    """(image input, height, width, channels, pattern) with values in range for the dtype.

    Sides are drawn by hypothesis (they shrink); channel count, dtype, pattern, layout and
    values come from one drawn seed, so that even 20 derandomized examples cover them all
    evenly (drawn directly, hypothesis' few-example draws favour the first choices).
    """
    h = draw(st.integers(1, 64))
    w = draw(st.integers(1, 64))
    rng = np.random.default_rng([draw(st.integers(0, 2**32 - 1)), h, w])
    c = int(rng.integers(1, 5))
    dtype = DTYPES[rng.integers(len(DTYPES))]
    pattern = PATTERNS[rng.integers(len(PATTERNS))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    period = int(rng.integers(1, 9))
    if pattern == "constant":
        base = np.full((h, w), rng.random())
    elif pattern == "stripes":
        base = ((xx if rng.random() < 0.5 else yy) // period) % 2
    elif pattern == "gradient":
        angle = rng.random() * 2 * np.pi
        ramp = xx * np.cos(angle) + yy * np.sin(angle)
        base = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-12)
    elif pattern == "checkerboard":
        base = ((xx // period) + (yy // period)) % 2
    else:
        base = rng.random((h, w))
    tint = rng.random(c)
    values = np.clip(base[..., None] * (0.5 + 0.5 * tint) + 0.1 * tint * (1 - base[..., None]), 0, 1)
    if c in (2, 4) and rng.random() < 0.5:
        values[..., -1] = rng.random((h, w)) if pattern == "noise" else base  # varied alpha
    if dtype.startswith("uint"):
        array = np.rint(values * np.iinfo(dtype).max).astype(dtype)
    else:
        array = values.astype(dtype)
    layout = rng.random()
    if layout < 0.4:
        image = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))  # (C, H, W)
    elif c == 1 and layout < 0.7:
        image = array[..., 0]  # (H, W)
    else:
        image = array
    return image, h, w, c, pattern


def budgets():
    return st.one_of(st.none(), st.integers(1, 64))


@settings(max_examples=15)  # a few seconds; HYPOTHESIS_PROFILE=dev runs more
@given(fuzz_images(), budgets())
def test_fuzz_from_image_tokenize_to_svg(case, budget):
    image, h, w, c, _ = case
    graph = from_image(image)
    assert graph.x.shape == (h * w, c) and bool(torch.isfinite(graph.x).all())
    assert graph.edge_index.shape[1] == 2 * (2 * h * w - h - w)

    tokens = dhtgraph.tokenize(image, max_tokens=budget)
    labels = tokens.labels()[0].numpy()
    k = int(tokens.num_tokens[0])
    assert labels.shape == (h, w)
    # Labels 0..K-1, each used, covering every pixel.
    assert np.array_equal(np.unique(labels), np.arange(k))
    # Every token is one 4-connected region.
    assert connected_components(labels, connectivity=1, background=-1).max() == k
    assert bool(torch.isfinite(tokens.features).all())
    if budget is not None:
        free = int(dhtgraph.tokenize(image).num_tokens[0])
        assert k == min(free, budget)

    svg = to_svg(image, tokens.partition)
    assert "nan" not in svg and "inf" not in svg
    paths = ET.fromstring(svg).findall(f".//{NS}path")
    assert len(paths) == k  # one path per token
