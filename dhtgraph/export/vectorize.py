"""``dhtgraph.vectorize``: an image to SVG through the library's tokenizer."""

from __future__ import annotations

from typing import Any, Optional

from .svg import SVGConfig, to_svg

__all__ = ["vectorize"]


def vectorize(image: Any, *, max_tokens: Optional[int] = None, iota: Optional[float] = None,
              tokenizer_options: Optional[dict] = None, **options: Any) -> str:
    """Vectorise one image: tokenize with the library defaults, then :func:`to_svg`.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), ndarray of shape (H, W) or (H, W, C), PIL image or path
        One image (integer images map to [0, 1], float images are taken as [0, 1]).
    max_tokens : int, optional
        At most this many regions (paths): the coarse end of the rate knob.
    iota : float, optional
        ι of the tokenizer's information criterion: larger gives more, smaller regions
        (finer, more bytes). Default: the tokenizer's recommended value.
    tokenizer_options : dict, optional
        Further :func:`dhtgraph.tokenize` options (e.g. ``{"criterion": "aic"}``).
    **options
        :func:`to_svg` options (:class:`SVGConfig`), e.g. ``tolerance``, ``max_bytes``,
        ``title``.

    Returns
    -------
    str
        The SVG document.
    """
    from ..graph.pixel import as_image_tensor
    from ..tokenize import tokenize

    config = SVGConfig.from_options(options, caller="vectorize")  # validate before the work
    extra = dict(tokenizer_options or {})
    if iota is not None:
        extra["iota"] = iota
    images = as_image_tensor(image)
    if images.shape[0] != 1:
        raise ValueError(f"Expected 'image' to be a single image (got a batch of {images.shape[0]})")
    tokens = tokenize(images, max_tokens=max_tokens, **extra)
    return to_svg(images[0], tokens.partition, **{k: getattr(config, k) for k in options})
