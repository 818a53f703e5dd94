"""``dhtgraph.vectorize``: an image to SVG through the library's tokenizer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from .svg import SVGConfig, to_svg

__all__ = ["vectorize"]


def vectorize(image: Any, *, max_tokens: Optional[int] = None, iota: Optional[float] = None,
              tokenizer_options: Optional[Mapping[str, Any]] = None,
              channels_last: Optional[bool] = None, **options: Any) -> str:
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
    channels_last : bool, optional
        The image's channel axis, as in :func:`dhtgraph.graph.as_image_tensor` (``None``
        refuses more than 4 channels as a probable layout mistake).
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
    if tokenizer_options is not None and not isinstance(tokenizer_options, Mapping):
        raise TypeError("Expected 'tokenizer_options' to be a dict of tokenize() options or "
                        f"None (got {type(tokenizer_options).__name__} {tokenizer_options!r})")
    extra = dict(tokenizer_options or {})
    bad_keys = [key for key in extra if not isinstance(key, str)]
    if bad_keys:
        raise TypeError(f"Expected 'tokenizer_options' keys to be option names (got {bad_keys[0]!r})")
    if iota is not None:
        if "iota" in extra:
            raise ValueError("Expected 'iota' once (got it both as an argument and in "
                             "'tokenizer_options')")
        extra["iota"] = iota
    # Straight alpha here: tokenize reads alpha itself, and to_svg needs the straight colours.
    images = as_image_tensor(image, channels_last=channels_last, alpha="straight").detach()
    if images.shape[0] != 1:
        raise ValueError(f"Expected 'image' to be a single image (got a batch of {images.shape[0]})")
    tokens = tokenize(images, max_tokens=max_tokens, **extra)
    return to_svg(images[0], tokens.partition, **{k: getattr(config, k) for k in options})
