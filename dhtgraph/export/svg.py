"""SVG export of a partition of an image: one filled path per block, shared boundaries.

Each block of the partition becomes one ``<path>`` filled with the block's mean colour.
Its outline is assembled from the boundary chains of :mod:`dhtgraph.export.boundary`
(each simplified once, :mod:`dhtgraph.export.simplify`, and fitted once,
:mod:`dhtgraph.export.curves`), traversed forwards by the block on the chain's left and
backwards by the block on its right. Adjacent blocks therefore draw the very same curve,
so there are never cracks between them (a ray from any point crosses the image frame once,
so some block's even–odd count is odd), and no overlaps as long as simplified chains do not
cross one another. Douglas–Peucker keeps every chain within the tolerance of its pixel
boundary and keeps its ends, and each block keeps a non-zero area, but crossings between
*different* chains that run closer than twice the tolerance are not checked: at large
tolerances thin slivers may overlap a neighbour (never leave a gap). Holes and
disconnected pieces are further subpaths of the same path, filled with the even–odd rule
(which depends only on the set of boundary curves, not on how they are joined into
subpaths).

References: spec/method.md §9 (raster to vector).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import torch

from .._checks import check_count, check_real
from .boundary import BoundaryChains, trace_boundaries
from .curves import CUBIC, LINE, fit_chains
from .simplify import corner_importance

#: Characters that XML 1.0 does not allow in a document (controls, surrogates, U+FFFE/F).
_XML_INVALID = re.compile("[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")

__all__ = ["SVGConfig", "to_svg", "label_map", "ByteBudgetError"]

ShapeRendering = Literal["auto", "crispEdges", "geometricPrecision", "optimizeSpeed"]
_SHAPE_RENDERING = ("auto", "crispEdges", "geometricPrecision", "optimizeSpeed")
_CURVES = ("lines", "cubic")
_VERTICES = ("corners", "midpoints")
# Byte-budget search: bisection steps on the tolerance and its largest value (pixels).
_BUDGET_STEPS = 12
_BUDGET_MAX_TOLERANCE = 16.0


class ByteBudgetError(ValueError):
    """``max_bytes`` is below the size of the coarsest SVG of the partition.

    Attributes ``max_bytes``, ``needed`` (bytes of the coarsest SVG), ``num_blocks`` and
    ``tolerance`` (the largest tolerance tried, pixels) let callers word their own hint
    (the command line names its flags).
    """

    def __init__(self, max_bytes: int, needed: int, num_blocks: int, tolerance: float):
        self.max_bytes, self.needed, self.num_blocks, self.tolerance = (
            max_bytes, needed, num_blocks, tolerance)
        super().__init__(
            f"Expected 'max_bytes' to be reachable (got {max_bytes}): the coarsest SVG of "
            f"these {num_blocks} blocks (tolerance {tolerance:g} px) has {needed} bytes; "
            "use fewer regions (e.g. vectorize(..., max_tokens=...)) or a larger budget")


def _real_option(value: Any, name: str, strict: bool) -> float:
    """A finite real ≥ 0 (> 0 when ``strict``); every error a ValueError naming ``name``."""
    try:
        return check_real(value, name, minimum=0.0, strict=strict)
    except TypeError:
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"Expected '{name}' to be a finite number {bound} (got {value!r})") from None


@dataclass(frozen=True)
class SVGConfig:
    """Options of :func:`to_svg` (every default with its reason).

    Attributes
    ----------
    tolerance : float
        Largest distance in pixels between a simplified boundary and the pixel boundary it
        replaces (the rate knob). ``0`` writes the exact pixel boundaries (lossless with
        respect to the partition). ``1.0``: removes the pixel staircase of slanted edges
        (a staircase corner lies ≤ 1/√2 px from the edge it approximates) while moving no
        boundary by more than one pixel.
    max_bytes : int or None
        Byte budget: when set, the smallest tolerance (bisection over
        ``[tolerance, 16]``) whose SVG fits in ``max_bytes`` is used. If even the largest
        tolerance does not fit, ``ValueError`` says how many bytes the coarsest SVG of this
        partition needs: fewer regions are then the way down (``max_tokens``).
    curves : {"lines", "cubic"}
        ``"lines"`` writes polygons; ``"cubic"`` draws a simplified segment as a cubic
        Bézier (Catmull–Rom tangents) wherever its ends are smooth and the curve stays
        within ``tolerance`` of the pixel boundary. Default ``"lines"``: on the benchmark
        photos the curves cost 20–70 % more bytes for no PSNR gain (they look smoother
        when magnified).
    precision : int
        Decimals of curve control points (corners are integers and always exact). 1 decimal
        = 0.1 px, far below the tolerance.
    background : str or None
        Fill of a rectangle drawn under all blocks: ``"auto"`` (the image's mean colour)
        hides the faint anti-aliasing seams that any renderer leaves between abutting
        shapes (no rectangle when the image has transparent pixels); a CSS colour string;
        or None for no rectangle.
    shape_rendering : {"auto", "crispEdges", "geometricPrecision", "optimizeSpeed"}
        The SVG ``shape-rendering`` of the drawing. ``"crispEdges"`` asks renderers not to
        anti-alias: with ``tolerance=0`` the rasterised SVG is then the partition filled
        with mean colours, pixel for pixel.
    seam_stroke : float
        Width in pixels of a stroke in each block's own colour. Renderers anti-alias each
        shape on its own, so two shapes that abut exactly still let some background
        through along a slanted shared edge (each covers about half of such a pixel); a
        thin stroke closes these seams. 0.3 px: the best PSNR on the benchmark photos
        (0.5 px and more start to move boundaries visibly). 0 disables it.
    vertices : {"corners", "midpoints"}
        Points the simplified boundaries may pass through: pixel corners (integer
        coordinates, the most compact text) or also the midpoints of pixel sides (the
        ``viewBox`` is then doubled to keep coordinates integer; slanted edges are centred
        on the staircase instead of touching its corners, at ~10 % more bytes and equal
        PSNR on the benchmark photos).
    title, description : str or None
        Text of ``<title>`` and ``<desc>`` (escaped).
    scale : float
        Display size = ``scale`` × image size (``width``/``height`` attributes); the
        ``viewBox`` is always the image in pixels.
    """

    tolerance: float = 1.0
    max_bytes: int | None = None
    curves: Literal["lines", "cubic"] = "lines"
    precision: int = 1
    background: str | None = "auto"
    shape_rendering: ShapeRendering = "auto"
    title: str | None = None
    description: str | None = None
    seam_stroke: float = 0.3
    scale: float = 1.0
    vertices: Literal["corners", "midpoints"] = "corners"

    def __post_init__(self) -> None:
        # Any real (numpy and 0-d torch scalars too); stored as a Python float / int.
        object.__setattr__(self, "tolerance", _real_option(self.tolerance, "tolerance", strict=False))
        if self.max_bytes is not None:  # frozen: store the checked int through object
            object.__setattr__(self, "max_bytes", check_count(self.max_bytes, "max_bytes", minimum=1))
        if self.curves not in _CURVES:
            raise ValueError(f"Expected 'curves' to be one of {_CURVES} (got {self.curves!r})")
        p = self.precision
        try:
            p = check_count(p, "precision")
        except (TypeError, ValueError):
            p = None
        if p is None or p > 6:
            raise ValueError(f"Expected 'precision' to be an int in [0, 6] (got {self.precision!r})")
        object.__setattr__(self, "precision", p)
        if self.background is not None and not isinstance(self.background, str):
            raise TypeError("Expected 'background' to be a colour string, 'auto' or None "
                            f"(got {type(self.background).__name__})")
        if self.shape_rendering not in _SHAPE_RENDERING:
            raise ValueError(f"Expected 'shape_rendering' to be one of {_SHAPE_RENDERING} "
                             f"(got {self.shape_rendering!r})")
        for name in ("title", "description", "background"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Expected '{name}' to be a str or None (got {type(value).__name__})")
            bad = None if value is None else _XML_INVALID.search(value)
            if bad:
                raise ValueError(f"Expected '{name}' to hold only characters allowed in XML 1.0 "
                                 f"(got {bad.group()!r} at position {bad.start()})")
        if self.vertices not in _VERTICES:
            raise ValueError(f"Expected 'vertices' to be one of {_VERTICES} (got {self.vertices!r})")
        object.__setattr__(self, "seam_stroke", _real_option(self.seam_stroke, "seam_stroke",
                                                             strict=False))
        object.__setattr__(self, "scale", _real_option(self.scale, "scale", strict=True))

    @classmethod
    def from_options(cls, options: dict[str, Any], caller: str = "to_svg") -> "SVGConfig":
        """Build from keyword options; unknown names raise a TypeError that lists the known."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"{caller}() got unknown option(s) {unknown}; expected some of {known}")
        return cls(**options)


# --------------------------------------------------------------------------- inputs
def _image_array(image: Any, channels_last: bool | None = None) -> np.ndarray:
    """One image as a float64 array (H, W, C) with C in {1, 3, 4}, values as given."""
    from ..graph.pixel import as_image_tensor

    # Straight alpha: the fill is the alpha-weighted mean colour, the opacity the mean alpha.
    tensor = as_image_tensor(image, channels_last=channels_last, alpha="straight")
    if tensor.shape[0] != 1:
        raise ValueError(f"Expected 'image' to be a single image (got a batch of {tensor.shape[0]})")
    array = tensor[0].detach().permute(1, 2, 0).double().cpu().numpy()
    if array.shape[2] == 2:  # grey + alpha: as RGBA
        array = np.concatenate([np.repeat(array[:, :, :1], 3, axis=2), array[:, :, 1:]], axis=2)
    if array.shape[2] not in (1, 3, 4):
        raise ValueError(f"Expected 'image' to have 1, 2, 3 or 4 channels (got {array.shape[2]})")
    return array


def label_map(partition: Any, height: int, width: int) -> np.ndarray:
    """Canonical block labels (H, W) of a Partition or of an integer label array."""
    from ..partition import Partition

    if isinstance(partition, Partition):
        if partition.num_items != height * width:
            raise ValueError(f"Expected 'partition' over the {height}x{width} = {height * width} "
                             f"pixels of the image (got {partition.num_items} items)")
        return partition.labels.cpu().numpy().reshape(height, width)
    if isinstance(partition, (np.ndarray, torch.Tensor)):
        labels = torch.as_tensor(partition)
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"Expected 'partition' labels to have an integer dtype (got {labels.dtype})")
        if tuple(labels.shape) != (height, width):
            raise ValueError(f"Expected 'partition' labels of shape {(height, width)} like the image "
                             f"(got {tuple(labels.shape)})")
        flat = labels.reshape(-1).cpu().numpy().astype(np.int64, copy=False)
        if flat.size and flat.min() < 0:
            raise ValueError(f"Expected 'partition' labels to be non-negative (got {flat.min()})")
        # Canonical numbering (blocks by first pixel), as Partition.from_labels would give.
        _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        return rank[inverse].reshape(height, width)
    raise TypeError("Expected 'partition' to be a dhtgraph.Partition or an integer label array "
                    f"(H, W) (got {type(partition).__name__})")


# --------------------------------------------------------------------------- formatting
def _number(value: float, precision: int) -> str:
    """Shortest decimal of ``value`` rounded to ``precision``: 0.50 -> '.5', -0.5 -> '-.5'."""
    text = f"{value:.{precision}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.startswith("0."):
        text = text[1:]
    elif text.startswith("-0."):
        text = "-" + text[2:]
    return "0" if text in ("-0", "") else text


def _join(numbers: list[str]) -> str:
    """Path numbers separated by a space unless the next starts with '-' or can't merge."""
    out = numbers[0]
    for prev, nxt in zip(numbers, numbers[1:]):
        if nxt[0] == "-" or (nxt[0] == "." and "." in prev):
            out += nxt
        else:
            out += " " + nxt
    return out


def _colour(rgb: np.ndarray) -> str:
    r, g, b = (int(v) for v in rgb)
    if r % 17 == 0 and g % 17 == 0 and b % 17 == 0:
        return f"#{r // 17:x}{g // 17:x}{b // 17:x}"
    return f"#{r:02x}{g:02x}{b:02x}"


def _block_colours(image: np.ndarray, labels: np.ndarray, num_blocks: int) -> tuple[list[str], list]:
    """Mean colour of each block as '#rrggbb' (and its alpha when the image has one).

    With an alpha channel the colour is the alpha-weighted mean (transparent pixels do not
    tint a block) and the opacity is the mean alpha.
    """
    flat = labels.reshape(-1)
    pixels = image.reshape(-1, image.shape[2])
    counts = np.bincount(flat, minlength=num_blocks).astype(np.float64)

    def block_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=values, minlength=num_blocks)

    colour = pixels[:, :3] if pixels.shape[1] >= 3 else np.repeat(pixels[:, :1], 3, axis=1)
    alpha = None
    if pixels.shape[1] == 4:
        weight = np.clip(pixels[:, 3], 0.0, 1.0)
        alpha_sum = block_sum(weight)
        alpha = alpha_sum / counts
        opaque = alpha_sum > 0  # fully transparent blocks keep their plain mean colour
        totals = np.stack([block_sum(colour[:, c] * weight) for c in range(3)], axis=1)
        plain = np.stack([block_sum(colour[:, c]) for c in range(3)], axis=1) / counts[:, None]
        rgb = np.where(opaque[:, None], totals / np.where(opaque, alpha_sum, 1.0)[:, None], plain)
    else:
        rgb = np.stack([block_sum(colour[:, c]) for c in range(3)], axis=1) / counts[:, None]
    rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.int64)
    colours = [_colour(c) for c in rgb]
    alphas = [None] * num_blocks if alpha is None else [
        None if a >= 0.9995 else _number(float(a), 3) for a in alpha]
    return colours, alphas


# --------------------------------------------------------------------------- paths


def _segment_tokens(kind: np.ndarray, coords: np.ndarray, precision: int) -> list[str]:
    """Relative path commands of segments.

    kind (S,) in {LINE, CUBIC}; coords (S, 6): relative (c1, c2, end) for cubics and
    (end, 0, 0, 0, 0) for lines, all relative to the segment start.
    """
    if not (kind == CUBIC).any() and np.array_equal(coords[:, :2], np.rint(coords[:, :2])):
        # Lattice corners: integer steps, the common case, formatted without rounding.
        tokens = []
        for dx, dy in coords[:, :2].astype(np.int64).tolist():
            if dy == 0:
                tokens.append(f"h{dx}")
            elif dx == 0:
                tokens.append(f"v{dy}")
            else:
                tokens.append(f"l{dx}{dy}" if dy < 0 else f"l{dx} {dy}")
        return tokens
    tokens = []
    for k, row in zip(kind.tolist(), coords.tolist()):
        if k == LINE:
            dx, dy = row[0], row[1]
            if dy == 0:
                tokens.append("h" + _number(dx, precision))
            elif dx == 0:
                tokens.append("v" + _number(dy, precision))
            else:
                tokens.append("l" + _join([_number(dx, precision), _number(dy, precision)]))
        else:
            tokens.append("c" + _join([_number(v, precision) for v in row]))
    return tokens


def _chain_strings(kind: np.ndarray, start: np.ndarray, ctrl: np.ndarray, end: np.ndarray,
                   seg_offsets: np.ndarray, precision: int):
    """Path commands of all segments, forwards and backwards, as two texts with offsets.

    Chain c forwards is ``fwd[fwd_end[a]:fwd_end[b]]`` for its segments ``a:b``; backwards
    the segments run in reverse order, so the backward text holds all segments reversed and
    chain c is ``bwd[bwd_end[S - b]:bwd_end[S - a]]``. Dropping the last offset step drops the
    last segment, which a closing ``z`` draws anyway.

    Segments of all chains are concatenated: ``start``/``end`` (S, 2) absolute points,
    ``ctrl`` (S, 4) absolute control points of cubics; chain c owns segments
    ``seg_offsets[c]:seg_offsets[c+1]``.
    """
    rel_f = np.zeros((len(kind), 6))
    rel_b = np.zeros((len(kind), 6))
    line = kind == LINE
    rel_f[line, :2] = end[line] - start[line]
    rel_b[line, :2] = start[line] - end[line]
    cub = ~line
    c1, c2 = ctrl[cub, :2], ctrl[cub, 2:]
    s, e = start[cub], end[cub]
    rel_f[cub] = np.concatenate([c1 - s, c2 - s, e - s], axis=1)
    rel_b[cub] = np.concatenate([c2 - e, c1 - e, s - e], axis=1)
    fwd = _segment_tokens(kind, rel_f, precision)
    bwd = _segment_tokens(kind, rel_b, precision)[::-1]  # a chain's backward run is contiguous
    fwd_end = np.cumsum([0] + [len(t) for t in fwd]).tolist()
    bwd_end = np.cumsum([0] + [len(t) for t in bwd]).tolist()
    return "".join(fwd), fwd_end, "".join(bwd), bwd_end


def _walks(chains: BoundaryChains, first: np.ndarray, last: np.ndarray):
    """Closed walks of chain uses per block (even–odd needs any decomposition into cycles).

    Returns, for each block, a list of walks; a walk is a list of ``(chain, backwards)``.
    """
    m = chains.num_chains
    stride = chains.width * chains.scale + 1
    v_first = first[:, 1] * stride + first[:, 0]
    v_last = last[:, 1] * stride + last[:, 0]
    inner = chains.right >= 0
    use_chain = np.concatenate([np.arange(m), np.flatnonzero(inner)])
    use_back = np.concatenate([np.zeros(m, dtype=bool), np.ones(int(inner.sum()), dtype=bool)])
    use_block = np.concatenate([chains.left, chains.right[inner]])
    use_from = np.where(use_back, v_last[use_chain], v_first[use_chain])
    use_to = np.where(use_back, v_first[use_chain], v_last[use_chain])
    by_from = np.lexsort((use_from, use_block))
    by_to = np.lexsort((use_to, use_block))
    nxt = np.empty(len(use_chain), dtype=np.int64)
    nxt[by_to] = by_from
    walks: list[list] = [[] for _ in range(chains.num_blocks)]
    seen = np.zeros(len(use_chain), dtype=bool)
    nxt_l, chain_l, back_l, block_l = (nxt.tolist(), use_chain.tolist(), use_back.tolist(),
                                       use_block.tolist())
    for u in by_from.tolist():
        if seen[u]:
            continue
        walk, block = [], block_l[u]
        while not seen[u]:
            seen[u] = True
            walk.append((chain_l[u], back_l[u]))
            u = nxt_l[u]
        walks[block].append(walk)
    return walks


def _path_data(walks, text, kind: np.ndarray, seg_offsets: np.ndarray, first: np.ndarray,
               last: np.ndarray) -> list[str]:
    """The ``d`` attribute of every block: one ``M … z`` subpath per walk."""
    fwd, fwd_end, bwd, bwd_end = text
    is_line = (kind == LINE).tolist()
    total = len(fwd_end) - 1
    seg_a, seg_b = seg_offsets[:-1].tolist(), seg_offsets[1:].tolist()
    first_l, last_l = first.tolist(), last.tolist()
    out = []
    for block_walks in walks:
        parts = []
        for walk in block_walks:
            c0, back0 = walk[0]
            x, y = last_l[c0] if back0 else first_l[c0]
            parts.append(f"M{x} {y}")
            final = len(walk) - 1
            for i, (c, back) in enumerate(walk):
                # The closing z draws the walk's last segment when it is a line.
                drop = 1 if i == final and is_line[seg_a[c] if back else seg_b[c] - 1] else 0
                if back:
                    parts.append(bwd[bwd_end[total - seg_b[c]]:bwd_end[total - seg_a[c] - drop]])
                else:
                    parts.append(fwd[fwd_end[seg_a[c]]:fwd_end[seg_b[c] - drop]])
            parts.append("z")
        out.append("".join(parts))
    return out


# --------------------------------------------------------------------------- document
def _document(paths: list[str], colours: list[str], alphas: list, width: int, height: int,
              unit: int, background: str | None, config: SVGConfig) -> str:
    w_disp = _number(width * config.scale, 3)
    h_disp = _number(height * config.scale, 3)
    width, height = width * unit, height * unit
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{w_disp}" height="{h_disp}"']
    if config.shape_rendering != "auto":
        head.append(f' shape-rendering="{config.shape_rendering}"')
    head.append(">")
    if config.title is not None:
        head.append(f"<title>{escape(config.title)}</title>")
    if config.description is not None:
        head.append(f"<desc>{escape(config.description)}</desc>")
    if background is not None:
        head.append(f'<rect width="{width}" height="{height}" fill={quoteattr(background)}/>')
    if config.seam_stroke > 0:
        # Fill and stroke both take the path's `color`: one colour attribute per path.
        width_attr = _number(config.seam_stroke * unit, 3)
        head.append('<g fill-rule="evenodd" fill="currentColor" stroke="currentColor" '
                    f'stroke-width="{width_attr}" stroke-linejoin="round">')
        colour_attr, opacity_attr = "color", "opacity"
    else:
        head.append('<g fill-rule="evenodd">')
        colour_attr, opacity_attr = "fill", "fill-opacity"
    body = []
    for d, colour, alpha in zip(paths, colours, alphas):
        opacity = "" if alpha is None else f' {opacity_attr}="{alpha}"'
        body.append(f'<path {colour_attr}="{colour}"{opacity} d="{d}"/>')
    return "".join(head) + "\n".join(body) + "</g></svg>\n"


def _render(chains: BoundaryChains, importance: np.ndarray, colours, alphas, background,
            tolerance: float, config: SVGConfig) -> str:
    keep = importance > tolerance * chains.scale
    use_curves = config.curves == "cubic" and tolerance > 0
    kind, start, ctrl, end, seg_offsets = fit_chains(chains, keep, tolerance * chains.scale,
                                                     use_curves)
    text = _chain_strings(kind, start, ctrl, end, seg_offsets, config.precision)
    first = chains.points[chains.offsets[:-1]]
    last = chains.points[chains.offsets[1:] - 1]
    walks = _walks(chains, first, last)
    paths = _path_data(walks, text, kind, seg_offsets, first, last)
    return _document(paths, colours, alphas, chains.width, chains.height, chains.scale,
                     background, config)


def to_svg(image: Any, partition: Any, *, channels_last: bool | None = None, **options: Any) -> str:
    """Vectorise an image over a partition of its pixels: one filled path per block.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), ndarray of shape (H, W) or (H, W, C), PIL image or path
        One image (anything :func:`dhtgraph.graph.pixel.as_image_tensor` accepts, batch
        size 1). Integer images map to [0, 1]; float images are taken as [0, 1].
    partition : Partition over the H·W pixels (row-major), or integer array of shape (H, W)
        The blocks to draw. Blocks need not be connected: a disconnected block is one path
        with several subpaths.
    channels_last : bool, optional
        The image's channel axis, as in :func:`dhtgraph.graph.as_image_tensor` (``None``
        refuses more than 4 channels as a probable layout mistake).
    **options
        See :class:`SVGConfig`: ``tolerance``, ``max_bytes``, ``curves``, ``precision``,
        ``background``, ``shape_rendering``, ``seam_stroke``, ``title``, ``description``,
        ``scale``, ``vertices``.

    Returns
    -------
    str
        An SVG document (UTF-8 text) with ``viewBox="0 0 W H"``, one ``<path>`` per block in
        block order, filled with the block's mean colour under the even–odd rule.

    Notes
    -----
    Boundaries are traced on the pixel-corner lattice and cut into chains at junctions
    (corners where ≥ 3 blocks or the border meet); each chain is simplified (Douglas–Peucker,
    ends fixed) and fitted with lines or cubic Béziers once, and both neighbouring blocks
    use that same curve, so the drawing has no cracks between blocks and no block vanishes
    (see the module notes for overlaps at large tolerances). With ``tolerance=0`` the paths
    are the exact pixel boundaries.
    """
    config = SVGConfig.from_options(options)
    array = _image_array(image, channels_last)
    height, width = array.shape[:2]
    labels = label_map(partition, height, width)
    num_blocks = int(labels.max()) + 1
    colours, alphas = _block_colours(array, labels, num_blocks)
    background = config.background
    if background == "auto" and array.shape[2] == 4 and array[:, :, 3].min() < 1.0:
        background = None  # an opaque rectangle would fill the image's transparent parts
    if background == "auto":
        mean = array.reshape(-1, array.shape[2]).mean(axis=0)
        rgb = mean[:3] if len(mean) >= 3 else np.repeat(mean[:1], 3)
        background = _colour(np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.int64))
    lo = float(config.tolerance)
    chains = trace_boundaries(labels, config.vertices)
    importance = corner_importance(chains, floor=lo * chains.scale)
    svg = _render(chains, importance, colours, alphas, background, lo, config)
    if config.max_bytes is None or len(svg.encode()) <= config.max_bytes:
        return svg
    # Bisection on the tolerance for the byte budget (bytes decrease with the tolerance).
    hi = max(lo, _BUDGET_MAX_TOLERANCE)
    best = _render(chains, importance, colours, alphas, background, hi, config)
    if len(best.encode()) > config.max_bytes:
        raise ByteBudgetError(config.max_bytes, len(best.encode()), len(colours), hi)
    for _ in range(_BUDGET_STEPS):
        mid = 0.5 * (lo + hi)
        svg = _render(chains, importance, colours, alphas, background, mid, config)
        if len(svg.encode()) <= config.max_bytes:
            hi, best = mid, svg
        else:
            lo = mid
    return best
