"""The dHT tokenizer as an ``nn.Module`` (method spec §2–§8).

``DHTTokenizer`` holds the parameters (pixel encoder f, variance projection, projection
W) and composes the functional core, each a pure stage:

1. :func:`dhtgraph.hierarchy.build_hierarchy` on a :class:`~dhtgraph.hierarchy.PixelGrid`
   (stopped per image by :func:`dhtgraph.selection.ic_stopping`);
2. :func:`dhtgraph.selection.select_partition`;
3. :func:`dhtgraph.nn.tokens.assemble_tokens`: projection W, the optional budget
   (:func:`dhtgraph.selection.merge_to_budget`), exact region statistics
   (:func:`dhtgraph.features.pooling.pool_regions`) and mean injection.

Input convention
----------------
``tokenizer(images)`` takes a float tensor (B, C, H, W) **in the normalisation the
encoder was trained with**. For the official dHT weights
(:meth:`DHTTokenizer.from_dht_checkpoint`) that is ImageNet normalisation::

    x = (rgb_in_0_1 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]   # per channel

(:func:`imagenet_normalize` does it). The mean-injected image comes back in that same
space. Encoder-free configurations take RGB in [0, 1].
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor, nn

from ..hierarchy.build import PixelGrid, build_hierarchy
from ..selection.budget import check_generator, check_max_tokens
from ..selection.select import ic_stopping, select_partition
from ..threads import batch_workers, map_chunks, run_with_policy
from .config import (ENCODERS, PRESETS, BudgetConfig, DHTConfig, EncoderConfig, EncoderKind,
                     HierarchyConfig, SelectionConfig, check_config_options)
from .tokens import Tokens, assemble_tokens, concat_tokens

__all__ = ["DHTConfig", "DHTTokenizer", "Tokens", "concat_tokens", "imagenet_normalize",
           "IMAGENET_MEAN",
           "IMAGENET_STD", "EncoderKind", "EncoderConfig", "HierarchyConfig",
           "SelectionConfig", "BudgetConfig", "PRESETS", "check_config_options"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Initial variance-projection bias (spec §3.2): sigmoid(−2π) ≈ 0.0019, so loops start
#: almost never chosen and blocks keep merging until the projection learns otherwise.
VARPROJ_BIAS_INIT = -2 * math.pi
#: Initial variance-projection weight scale (spec §3.2: a ~ 1e-4·N(0, 1)).
VARPROJ_WEIGHT_SCALE = 1e-4


def imagenet_normalize(images: Tensor) -> Tensor:
    """``(x − mean) / std`` per channel with the ImageNet statistics; (B, 3, H, W)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def _inverse_color_map(kind: str, channels: int, scale: float) -> tuple[Tensor, Tensor]:
    if kind == "rgb":
        return torch.eye(channels) / scale, torch.zeros(channels)
    from .encoder import rgb_to_lab

    axis = torch.linspace(0, 1, 17)
    rgb = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), 0).reshape(1, 3, -1, 1)
    lab = rgb_to_lab(rgb).reshape(3, -1).T.double() * scale
    design = torch.cat([lab, torch.ones(lab.shape[0], 1, dtype=lab.dtype)], 1)
    solution = torch.linalg.lstsq(design, rgb.reshape(3, -1).T.double()).solution  # (4, 3)
    return solution[:3].T.float(), solution[3].float()


def _check_checkpoint_path(path) -> Path:
    """``path`` as a Path to an existing file (FileNotFoundError / ValueError naming it)."""
    try:
        path = Path(path)
    except TypeError:
        raise TypeError(f"Expected 'path' to be a str or os.PathLike (got "
                        f"{type(path).__name__})") from None
    if not path.exists():
        raise FileNotFoundError(f"Expected 'path' to be an existing checkpoint file "
                                f"(got {str(path)!r}, which does not exist)")
    if path.is_dir():
        raise ValueError(f"Expected 'path' to be a checkpoint file (got {str(path)!r}, a "
                         "directory); pass the .pth file inside it")
    return path


def _load_state_dict(path: Path, map_location) -> dict:
    """``torch.load(path, weights_only=True)`` with errors that name 'path'.

    Only tensors and plain containers are unpickled: a file that needs anything else
    (arbitrary objects, code) is refused before any of it runs.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as exc:
        # torch reports a truncated or damaged zip archive as OSError (e.g. Errno 22).
        raise ValueError(f"Expected 'path' to be a complete PyTorch state dict file (got "
                         f"{str(path)!r}, which cannot be read: {exc}); it may be truncated "
                         "— download it again") from None
    except Exception as exc:
        # torch's own message advises weights_only=False, i.e. running the file's code:
        # never pass that on. Keep only the name of what was refused, if torch gives one.
        found = re.search(r"Unsupported (?:global: GLOBAL [\w.]+|operand \d+)", str(exc))
        reason = found.group(0) if found else type(exc).__name__
        raise ValueError(f"Expected 'path' to be a PyTorch state dict file holding only tensors "
                         f"(got {str(path)!r}, which cannot be loaded safely: {reason})") from None
    if not isinstance(state, dict):
        raise ValueError(f"Expected 'path' to hold a state dict (got {type(state).__name__})")
    return state


class _Buffers(nn.Module):
    """Holds named buffers only (stores the reference's unused gradient parameters)."""

    def __init__(self, **buffers: Tensor):
        super().__init__()
        for name, value in buffers.items():
            self.register_buffer(name, value)


class DHTTokenizer(nn.Module):
    """Differentiable hierarchical tokenizer.

    Parameters
    ----------
    config : DHTConfig, optional
        Defaults to ``DHTConfig()``.
    **overrides
        Field overrides of the config, e.g. ``DHTTokenizer(encoder='lab')``.

    Attributes (parameter names follow the reference's state dict)
    ----------
    conv : PixelEncoder or ColorEncoder
        The pixel encoder f.
    linear : nn.Linear(d, C)
        The projection W.
    varproj : nn.Linear(d, 1) or None
        The variance projection of the loop potential.

    Notes
    -----
    Batch independence: each image gets exactly the tokens it would get alone in eval
    mode (and in encoder-free modes, always). In train mode the learned encoder's
    BatchNorm normalises with the statistics of the whole batch, so an image's
    features, and hence its tokens, depend on the other images of the batch.

    Examples
    --------
    >>> tok = DHTTokenizer(encoder="lab")
    >>> out = tok(torch.rand(2, 3, 32, 32), max_tokens=20)
    >>> out.num_tokens.tolist()
    [20, 20]
    """

    def __init__(self, config: Optional[DHTConfig] = None, **overrides):
        super().__init__()
        if config is None:
            config = DHTConfig()
        elif not isinstance(config, DHTConfig):
            raise TypeError(f"Expected 'config' to be a DHTConfig (got {type(config).__name__})")
        if overrides:
            check_config_options(overrides)
            config = config.replace(**overrides)
        self.config = config
        c, d = config.in_channels, config.feature_width
        self.conv = ENCODERS.resolve(config.encoder, "encoder")(c, config.features,
                                                                config.color_scale)
        self.linear = nn.Linear(d, c)
        if config.encoder != "learned":
            # Encoder-free: W starts as the inverse of the colour map (exact for 'rgb', the
            # least-squares affine fit of RGB from Lab for 'lab'), so W μ* ≈ x̄ and mean
            # injection leaves the image (nearly) unchanged.
            with torch.no_grad():
                weight, bias = _inverse_color_map(config.encoder, c, config.color_scale)
                self.linear.weight.copy_(weight)
                self.linear.bias.copy_(bias)
        self.varproj = nn.Linear(d, 1) if config.var_projection else None
        if self.varproj is not None:
            with torch.no_grad():
                self.varproj.weight.copy_(torch.randn(1, d) * VARPROJ_WEIGHT_SCALE)
                self.varproj.bias.fill_(VARPROJ_BIAS_INIT)
        if config.store_gradient_params:
            self.gradact = _Buffers(lmbda=torch.zeros(2, 1, 1))
            self.gradient = _Buffers(kernel=torch.zeros(1, 1, 3, 3))

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dht_checkpoint(cls, path, *, map_location="cpu", **overrides) -> "DHTTokenizer":
        """Load the official dHT raster-to-vector tokenizer weights.

        Configured with the ``'r2v'`` preset (:data:`dhtgraph.nn.config.PRESETS`, the
        reference's ``load_dht_ras2vec``: d = 8, compactness 0.01, ι = 5, AICc, the
        learned encoder, and exact ``'size'`` pooling weights — the reference's own
        weighting is defective, spec §3.6); returned in eval mode.
        Inputs must be ImageNet-normalised (see :func:`imagenet_normalize`).

        Parameters
        ----------
        path : str or Path
            The state dict file (``torch.load(..., weights_only=True)``).
        map_location : default 'cpu'
            Where tensors are loaded (the official file names CUDA devices).
        **overrides
            Config fields to change.

        Raises
        ------
        ValueError
            If ``path`` is a directory, the file cannot be read safely as tensors (not a
            PyTorch file, truncated, or a pickle that would run code: it is refused,
            never executed), or is not a state dict of this architecture (lists the
            missing and unexpected keys, values that are not tensors, the shape
            mismatches, or weights that are NaN or infinite).
        TypeError
            If an override is not a :class:`DHTConfig` field.
        FileNotFoundError
            If ``path`` does not exist.
        OSError
            If the file cannot be opened (permissions).
        """
        check_config_options(overrides, "from_dht_checkpoint")
        path = _check_checkpoint_path(path)
        model = cls(DHTConfig.preset("r2v", **overrides))
        state = _load_state_dict(path, map_location)
        if "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        model.load_checked_state_dict(state)
        return model.eval()

    def load_checked_state_dict(self, state: dict) -> None:
        """``load_state_dict`` with an error that lists missing/unexpected keys and shapes."""
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(map(str, set(state) - set(expected)))
        if missing or unexpected:
            raise ValueError(
                "The state dict does not match DHTTokenizer("
                f"encoder={self.config.encoder!r}, features={self.config.features}): "
                f"missing keys {missing}; unexpected keys {unexpected}")
        not_tensors = [f"{k!r} ({type(v).__name__})" for k, v in state.items()
                       if not isinstance(v, Tensor)]
        if not_tensors:
            raise ValueError("Expected every value of the state dict to be a Tensor (got "
                             + ", ".join(not_tensors) + ")")
        wrong = [f"{k}: expected {tuple(v.shape)}, got {tuple(state[k].shape)}"
                 for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
        if wrong:
            raise ValueError("The state dict has tensors of the wrong shape: " + "; ".join(wrong))
        bad = [k for k, v in state.items() if (v.is_floating_point() or v.is_complex())
               and v.device.type != "meta" and not bool(torch.isfinite(v).all())]
        if bad:
            raise ValueError("Expected the weights of the state dict to be finite (got NaN or "
                             f"inf in {sorted(map(str, bad))}); the checkpoint is damaged")
        self.load_state_dict(state, strict=True)

    # ------------------------------------------------------------------ forward
    def encode(self, images: Tensor) -> Tensor:
        """Per-pixel features (B·H·W, d)."""
        feats = self.conv(images)
        return feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])

    def forward(self, images: Tensor, max_tokens: Optional[int] = None, *,
                generator: Optional[torch.Generator] = None,
                num_threads: Optional[int] = None) -> Tokens:
        """Tokenize a batch.

        Parameters
        ----------
        images : Tensor of shape (B, C, H, W)
            Float images in the encoder's input normalisation (module docstring).
        max_tokens : int, optional
            Budget per image (spec §6): exactly ``min(K_b, max_tokens)`` tokens.
        generator : torch.Generator, optional
            Sample the kept tokens of the budget (training); deterministic otherwise.
        num_threads : int, optional
            CPU threads for the forward pass; None applies the policy of
            :mod:`dhtgraph.threads` (torch's count, fewer under load, one for tiny inputs).
            Tokens do not depend on it. See the notes for how they are spent.

        Returns
        -------
        Tokens

        Notes
        -----
        Each image gets exactly the tokens it would get alone in eval mode (and in
        encoder-free modes, always); in train mode the learned encoder's BatchNorm uses
        batch statistics, which couple the images of a batch.

        Threads. A CPU batch of B ≥ 2 images is split into k contiguous chunks run in k
        worker threads with one intra-op thread each, and the chunks' tokens are joined
        (:func:`~dhtgraph.nn.tokens.concat_tokens`; bit-identical to one call), when all
        of these hold:
        k = :func:`dhtgraph.threads.batch_workers` ≥ 2 (``num_threads`` or torch's count,
        at most B and the available CPUs); no gradient is needed (``torch.no_grad()``,
        ``torch.inference_mode()`` — as in :func:`dhtgraph.tokenize` — or nothing requires
        grad); no ``generator`` (the budget's draws depend on the whole batch); the
        images are batch independent (eval mode, or an encoder-free configuration); no
        CPU autocast. Otherwise the batch runs as one call with the intra-op count of
        :func:`dhtgraph.threads.choose_num_threads`. Either way torch's thread settings
        are what they were before the call, also when it raises.
        """
        images = self._check_images(images)
        max_tokens = check_max_tokens(max_tokens)
        check_generator(generator)

        def run(x: Tensor) -> Tokens:
            return self._forward(x, max_tokens, generator)

        workers = self._batch_workers(images, generator, num_threads)
        if workers > 1:
            return concat_tokens(map_chunks(run, images, workers))
        return run_with_policy(run, images, num_threads)

    def _batch_workers(self, images: Tensor, generator: Optional[torch.Generator],
                       num_threads: Optional[int]) -> int:
        """Worker threads for this batch (1: one call); the conditions of ``forward``."""
        b, _, h, w = images.shape
        if b < 2 or images.device.type != "cpu" or generator is not None:
            return 1
        if self.training and self.config.encoder == "learned":
            return 1  # BatchNorm's batch statistics couple the images
        if torch.is_grad_enabled() and (images.requires_grad or any(
                p.requires_grad for p in self.parameters())):
            return 1  # training: one call, one autograd graph, as before
        if torch.is_autocast_enabled("cpu"):
            return 1  # autocast is per thread: the workers would not see it
        return batch_workers(b, b * h * w, num_threads)

    def _forward(self, images: Tensor, max_tokens: Optional[int],
                 generator: Optional[torch.Generator]) -> Tokens:
        cfg = self.config
        b, _, h, w = images.shape
        x = self.encode(images)
        built = build_hierarchy(
            x, PixelGrid(b, h, w), compactness=cfg.compactness, var_projection=self.varproj,
            loop_default=cfg.loop_potential, weights=cfg.weights, min_blocks=cfg.min_blocks,
            max_levels=cfg.max_levels, stop=ic_stopping(cfg.criterion, cfg.iota),
            tie_break=cfg.tie_break)
        selection = select_partition(built, cfg.criterion, cfg.iota)
        return assemble_tokens(images, x, built, selection, self.linear, max_tokens,
                               priority=cfg.budget_priority, generator=generator)

    def _check_images(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor):
            raise TypeError(f"Expected 'images' to be a torch.Tensor of shape (B, C, H, W) "
                            f"(got {type(images).__name__}); dhtgraph.tokenize accepts other inputs")
        if images.dim() != 4:
            raise ValueError(f"Expected 'images' to have 4 dimensions (B, C, H, W) (got {images.dim()})")
        if images.shape[1] != self.config.in_channels:
            raise ValueError(f"Expected 'images' to have {self.config.in_channels} channels "
                             f"(got {images.shape[1]})")
        if images.device.type == "meta":
            raise ValueError("Expected 'images' to hold pixel values (got a tensor on the "
                             "'meta' device, which has none): create it on a real device, "
                             "e.g. 'cpu'")
        if min(images.shape) == 0:
            raise ValueError(f"Expected 'images' to have non-empty sides (got {tuple(images.shape)})")
        if not images.is_floating_point():
            raise TypeError(f"Expected 'images' to be a float tensor (got {images.dtype})")
        # NaN propagates into aminmax and ±inf is an extreme: one pass, not isfinite's five.
        if not bool(torch.isfinite(torch.stack(torch.aminmax(images.detach()))).all()):
            raise ValueError("Expected 'images' to hold finite values (got NaN or inf)")
        # Compute in the module's dtype (float32 unless the user converted the module).
        return images.to(self.linear.weight.dtype)
