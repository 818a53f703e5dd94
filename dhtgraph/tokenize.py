"""``dhtgraph.tokenize``: one call from an image to tokens with the recommended settings."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Optional

import torch

from .graph.pixel import as_image_tensor
from .nn.config import DHTConfig, check_config_options, preset_options
from .nn.tokenizer import DHTTokenizer
from .nn.tokens import Tokens

__all__ = ["tokenize", "RECOMMENDED_CONFIG"]

#: The library's recommended configuration (the ``'recommended'`` preset of
#: :data:`dhtgraph.nn.config.PRESETS`, where its reasons are written down): encoder-free
#: RGB ×10, ι = 10, compactness 0.01, AICc, exact size-weighted statistics, constant loop
#: potential. A copy: changing it changes nothing.
RECOMMENDED_CONFIG = preset_options("recommended")

#: Options whose modules only make sense with trained weights: ``tokenize`` would run
#: them with a random initialisation (different tokens in every process).
_NEEDS_WEIGHTS = {"encoder": "learned", "var_projection": True}
#: Modules kept per thread (configurations × devices); the oldest is dropped beyond it.
_MODULES_PER_THREAD = 8

# One cache per thread: a module is built for one (configuration, device), never moved
# or shared between threads, so concurrent calls never touch the same module.
_local = threading.local()


def _tokenizer(config: DHTConfig, device: torch.device) -> DHTTokenizer:
    cache = getattr(_local, "modules", None)
    if cache is None:
        cache = _local.modules = OrderedDict()
    key = (config, str(device))
    module = cache.get(key)
    if module is None:
        # Building the modules draws their (here overwritten) initial weights from the
        # RNG: do it on a forked RNG so the caller's global random state is left alone.
        with torch.random.fork_rng(devices=[]):
            module = DHTTokenizer(config).eval().to(device)
        cache[key] = module
        while len(cache) > _MODULES_PER_THREAD:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return module


def _clear_cache() -> None:
    """Drop this thread's modules (tests)."""
    _local.modules = OrderedDict()


def tokenize(image: Any, max_tokens: Optional[int] = None, *,
             generator: Optional[torch.Generator] = None, channels_last: Optional[bool] = None,
             alpha: str = "premultiplied", num_threads: Optional[int] = None,
             **options: Any) -> Tokens:
    """Tokenize an image (or a batch) with the recommended configuration.

    Parameters
    ----------
    image : Tensor, ndarray, PIL.Image or path
        Anything :func:`dhtgraph.from_image` takes: (C, H, W) / (B, C, H, W) tensors,
        (H, W[, C]) / (B, H, W, C) arrays, uint8 (mapped to [0, 1]) or float in [0, 1].
    max_tokens : int, optional
        Token budget per image (exact; spec §6).
    generator : torch.Generator, optional
        Seeded random choice of the tokens kept by the budget (default deterministic).
    channels_last : bool, optional
        Layout of a 3-dimensional input (see :func:`dhtgraph.graph.pixel.as_image_tensor`):
        None reads it by the usual convention for its type and refuses an ambiguous one.
    alpha : {'premultiplied', 'straight'}, default 'premultiplied'
        What a 2- or 4-channel image's alpha means (see
        :func:`dhtgraph.graph.pixel.as_image_tensor`).
    num_threads : int, optional
        CPU threads for this call; None: torch's count (one for tiny inputs). A CPU batch
        of B ≥ 2 images runs in ``min(num_threads, B, CPUs)`` worker threads with one
        intra-op thread each, over contiguous chunks of the batch
        (:func:`dhtgraph.threads.map_chunks`; not with a ``generator``); a single image
        runs with that many intra-op threads, lowered under load when None
        (:func:`dhtgraph.threads.choose_num_threads`). See
        :meth:`dhtgraph.nn.DHTTokenizer.forward`. Tokens do not depend on it (bit for bit).
    **options
        Any :class:`dhtgraph.nn.DHTConfig` field overriding :data:`RECOMMENDED_CONFIG`
        (e.g. ``iota=20`` for more tokens, ``criterion='bic'``), except those that need
        trained weights (``encoder='learned'``, ``var_projection=True``): use
        :class:`dhtgraph.nn.DHTTokenizer` with your weights or
        :meth:`~dhtgraph.nn.DHTTokenizer.from_dht_checkpoint` for those.

    Returns
    -------
    Tokens
        See :class:`dhtgraph.nn.Tokens`; ``tokens.partition`` covers the B·H·W pixels.

    Raises
    ------
    TypeError
        For an option that is not a :class:`dhtgraph.nn.DHTConfig` field.
    ValueError
        For an option that needs trained weights, or a value out of range.

    Notes
    -----
    The global torch random state is not used (a budget samples only with
    ``generator``). No state is shared between calls of different threads: each thread
    builds its own module per (configuration, device) and keeps up to
    :data:`_MODULES_PER_THREAD` of them; a module is never moved between devices.

    Examples
    --------
    >>> import numpy as np
    >>> tokens = tokenize(np.zeros((16, 16, 3), dtype=np.uint8), max_tokens=4)
    >>> int(tokens.num_tokens[0]) <= 4
    True
    """
    check_config_options(options, "tokenize")
    for name, value in _NEEDS_WEIGHTS.items():
        if name in options and options[name] == value:
            raise ValueError(
                f"Expected tokenize option '{name}' to be an encoder-free setting (got "
                f"{options[name]!r}, which needs trained weights; tokenize would run it "
                "untrained, with random weights): use dhtgraph.nn.DHTTokenizer(...) with "
                "trained weights or DHTTokenizer.from_dht_checkpoint(path) instead")
    images = as_image_tensor(image, channels_last=channels_last, alpha=alpha)
    config = DHTConfig.preset("recommended", in_channels=int(images.shape[1]), **options)
    tokenizer = _tokenizer(config, images.device)
    with torch.no_grad():
        return tokenizer(images, max_tokens, generator=generator, num_threads=num_threads)
