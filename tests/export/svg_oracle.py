"""Test oracle: parse dhtgraph's SVG paths and rasterise them exactly (no anti-aliasing).

Supports the path commands dhtgraph writes for polygons (M, h, v, l with implicit
repetition, z). Pixel (y, x) is inside a path when its centre is, under the even–odd rule.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np

NS = "{http://www.w3.org/2000/svg}"
_TOKEN = re.compile(r"[MmHhVvLlZzCc]|-?(?:\d+\.?\d*|\.\d+)")


def parse(svg: str):
    """(root element, unit per pixel, [(colour, [subpath (n, 2) arrays in pixels])])."""
    root = ET.fromstring(svg)
    view = [float(v) for v in root.get("viewBox").split()]
    unit = view[2] / float(root.get("width"))
    paths = []
    for el in root.iter(NS + "path"):
        colour = el.get("fill") or el.get("color")
        paths.append((colour, [p / unit for p in subpaths(el.get("d"))]))
    return root, unit, paths


def subpaths(d: str) -> list[np.ndarray]:
    out, current, cmd = [], [], None
    x = y = 0.0
    tokens = _TOKEN.findall(d)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.isalpha():
            cmd = tok
            i += 1
            if cmd in "Zz":
                out.append(np.array(current, dtype=np.float64))
                current = []
            continue
        if cmd == "M":
            x, y = float(tokens[i]), float(tokens[i + 1])
            current = [(x, y)]
            i += 2
        elif cmd == "h":
            x += float(tok)
            current.append((x, y))
            i += 1
        elif cmd == "v":
            y += float(tok)
            current.append((x, y))
            i += 1
        elif cmd == "l":
            x, y = x + float(tokens[i]), y + float(tokens[i + 1])
            current.append((x, y))
            i += 2
        else:
            raise ValueError(f"oracle does not handle command {cmd!r}")
    return out


def rasterise_path(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Bool (H, W): pixel centres inside the polygons under the even–odd rule."""
    py, px = np.mgrid[0:height, 0:width] + 0.5
    inside = np.zeros((height, width), dtype=bool)
    for poly in polygons:
        a, b = poly, np.roll(poly, -1, axis=0)
        for (x0, y0), (x1, y1) in zip(a, b):
            if y0 == y1:
                continue
            crosses = (y0 > py) != (y1 > py)
            xint = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (px < xint)
    return inside


def coverage(svg: str, height: int, width: int) -> np.ndarray:
    """Int (K, H, W): which paths cover each pixel centre."""
    _, _, paths = parse(svg)
    return np.stack([rasterise_path(polys, height, width) for _, polys in paths])


def signed_area(polygons: list[np.ndarray]) -> float:
    """Sum of the shoelace areas of the subpaths (y down: left-hand interiors count +)."""
    total = 0.0
    for p in polygons:
        q = np.roll(p, -1, axis=0)
        total += 0.5 * float((p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]).sum())
    return -total
