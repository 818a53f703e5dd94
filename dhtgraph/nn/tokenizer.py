"""The dHT tokenizer as an ``nn.Module`` (method spec §2–§8).

``DHTTokenizer`` holds the parameters (pixel encoder f, variance projection, projection
W) and calls the functional core: :func:`dhtgraph.hierarchy.build.build_hierarchy` with an
:class:`dhtgraph.selection.InformationSelector`, the optional token budget
(:func:`dhtgraph.selection.merge_to_budget`) and mean injection.

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
import numbers
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal, Optional

import torch
from torch import Tensor, nn

from .._checks import check_count
from ..graph.pixel import grid_quotient
from ..hierarchy import Hierarchy
from ..hierarchy.build import MIN_BLOCKS_PER_IMAGE, build_hierarchy
from ..hierarchy.contraction import POOL_WEIGHTS, PoolWeights
from ..hierarchy.grid import pixel_state
from ..partition import Partition
from ..selection.budget import BUDGET_PRIORITIES, BudgetPriority, check_max_tokens, merge_to_budget
from ..selection.criteria import Criterion, check_criterion, check_iota
from ..selection.select import InformationSelector
from ..features.mean_injection import mean_injection
from .encoder import ColorEncoder, PixelEncoder

__all__ = ["DHTConfig", "DHTTokenizer", "Tokens", "imagenet_normalize", "IMAGENET_MEAN",
           "IMAGENET_STD", "EncoderKind"]

EncoderKind = Literal["learned", "rgb", "lab"]
_ENCODERS = ("learned", "rgb", "lab")
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


@dataclass
class DHTConfig:
    """Configuration of :class:`DHTTokenizer`; every default with its reason.

    Attributes
    ----------
    in_channels : int = 3
        C; RGB images.
    features : int = 8
        d, the encoder width (the reference's d = 8). Ignored by encoder-free modes
        (d = C there).
    encoder : {'learned', 'rgb', 'lab'} = 'learned'
        'learned' is the reference's architecture (trainable; loads official weights);
        'rgb' / 'lab' use the image colours (encoder-free, no weights needed).
    color_scale : float = 1.0
        Multiplies encoder-free features (sets the sharpness of exp(−‖Δ‖²)).
    compactness : float = 0.1
        Compactness weight c (spec §3.3 default; the raster-to-vector model uses 0.01).
    iota : float = 5.0
        ι of the information criterion (spec §5 default): the granularity knob.
    criterion : {'aic', 'aicc', 'bic', 'cic'} = 'aicc'
        Spec §5 default.
    weights : {'argmax_edge', 'size'} = 'argmax_edge'
        Pooling weights; 'argmax_edge' carries gradient into the potentials (paper).
    var_projection : bool = True
        Learned self-loop potential from the variance (spec §3.2); off → constant loops.
    loop_potential : float = 0.0
        The constant loop potential without a projection (spec §3.2).
    min_blocks : int = 6
        An image stops contracting at ≤ this many blocks (the reference's value).
    max_levels : int or None = None
        Cap on contraction levels; None → ⌈log₂ √(H·W)⌉ (spec §4).
    budget_priority : {'cost', 'size'} = 'cost'
        Which tokens survive a budget: 'cost' (highest Ward merge cost) gave the best
        explained variation in our measurements.
    store_gradient_params : bool = False
        Hold the reference's unused image-gradient parameters (``gradact.lmbda``,
        ``gradient.kernel``) so its state dict loads strictly.
    """

    in_channels: int = 3
    features: int = 8
    encoder: EncoderKind = "learned"
    color_scale: float = 1.0
    compactness: float = 0.1
    iota: float = 5.0
    criterion: Criterion = "aicc"
    weights: PoolWeights = "argmax_edge"
    var_projection: bool = True
    loop_potential: float = 0.0
    min_blocks: int = MIN_BLOCKS_PER_IMAGE
    max_levels: Optional[int] = None
    budget_priority: BudgetPriority = "cost"
    store_gradient_params: bool = False

    def __post_init__(self):
        # Type and range of every field, once; numbers are normalised to int / float.
        for name in ("in_channels", "features"):
            setattr(self, name, check_count(getattr(self, name), name, minimum=1))
        self.min_blocks = check_count(self.min_blocks, "min_blocks", minimum=0)
        self.max_levels = check_count(self.max_levels, "max_levels", minimum=1, or_none=True)
        _check_choice("encoder", self.encoder, _ENCODERS)
        _check_choice("weights", self.weights, POOL_WEIGHTS)
        _check_choice("budget_priority", self.budget_priority, BUDGET_PRIORITIES)
        self.criterion = check_criterion(self.criterion)
        self.iota = check_iota(self.iota)
        self.color_scale = _check_real("color_scale", self.color_scale, positive=True)
        self.compactness = _check_real("compactness", self.compactness, unit=True)
        self.loop_potential = _check_real("loop_potential", self.loop_potential, unit=True)
        for name in ("var_projection", "store_gradient_params"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"Expected '{name}' to be a bool (got {type(value).__name__} "
                                f"{value!r})")

    @property
    def feature_width(self) -> int:
        """d as used: ``features`` for the learned encoder, C otherwise."""
        return self.features if self.encoder == "learned" else self.in_channels


def _check_real(name: str, value, *, positive: bool = False, unit: bool = False) -> float:
    expected = ("a finite number > 0" if positive else "a number in [0, 1]" if unit
                else "a finite number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected '{name}' to be {expected} "
                        f"(got {type(value).__name__} {value!r})")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0) or (unit and not 0 <= value <= 1):
        raise ValueError(f"Expected '{name}' to be {expected} (got {value!r})")
    return value


def _check_choice(name: str, value, choices: tuple) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Expected '{name}' to be one of {choices} (got {value!r})")


def check_config_options(options: dict, what: str = "DHTTokenizer") -> None:
    """Raise TypeError naming the unknown keys of ``options`` and listing the
    :class:`DHTConfig` fields."""
    known = {f.name for f in fields(DHTConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"Unknown {what} option(s) {unknown}; known: {sorted(known)}")


@dataclass
class Tokens:
    """The output of :class:`DHTTokenizer` / :func:`dhtgraph.tokenize`.

    Attributes
    ----------
    partition : Partition of the B·H·W pixels
        The tokens (connected regions), numbered canonically; tokens of image b come
        before those of image b + 1.
    hierarchy : Hierarchy
        The chain of partitions the tokens were selected from.
    features : Tensor of shape (K, d)
        μ*, the encoder-feature mean of every token (differentiable).
    projected : Tensor of shape (K, C)
        W μ*, the token colour injected into the image (differentiable).
    batch : LongTensor of shape (K,)
        Image of every token.
    num_tokens : LongTensor of shape (B,)
        Tokens per image.
    injected : Tensor of shape (B, C, H, W)
        The mean-injected image ``x − x̄(S) + W μ*(S)``.
    image_size : (int, int)
        (H, W).
    num_levels : LongTensor of shape (B,)
        Contraction levels each image went through.
    """

    partition: Partition
    hierarchy: Hierarchy
    features: Tensor
    projected: Tensor
    batch: Tensor
    num_tokens: Tensor
    injected: Tensor
    image_size: tuple
    num_levels: Tensor

    @property
    def num_images(self) -> int:
        return int(self.num_tokens.numel())

    def labels(self) -> Tensor:
        """Token label per pixel, (B, H, W), numbered within each image from 0."""
        h, w = self.image_size
        start = torch.cumsum(self.num_tokens, 0) - self.num_tokens
        pixel_batch = torch.arange(self.num_images, device=self.batch.device).repeat_interleave(h * w)
        return (self.partition.labels - start[pixel_batch]).view(self.num_images, h, w)


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


def _load_state_dict(path: Path, map_location) -> dict:
    """``torch.load(path, weights_only=True)`` with errors that name 'path'.

    Only tensors and plain containers are unpickled: a file that needs anything else
    (arbitrary objects, code) is refused before any of it runs.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
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
        config = config if config is not None else DHTConfig()
        if overrides:
            check_config_options(overrides)
            config = replace(config, **overrides)
        self.config = config
        c, d = config.in_channels, config.feature_width
        if config.encoder == "learned":
            self.conv = PixelEncoder(c, d)
        else:
            self.conv = ColorEncoder(c, config.encoder, config.color_scale)
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

        Configured as the reference's ``load_dht_ras2vec``: d = 8, compactness 0.01,
        ι = 5, AICc, the learned encoder, and exact ``'size'`` pooling weights (the
        reference's own weighting is defective, spec §3.6); returned in eval mode.
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
            If the file cannot be read safely as tensors (not a PyTorch file, or a pickle
            that would run code: it is refused, never executed), or is not a state dict
            of this architecture (lists the missing and unexpected keys, values that are
            not tensors, or the shape mismatches).
        TypeError
            If an override is not a :class:`DHTConfig` field.
        OSError
            If the file cannot be opened.
        """
        check_config_options(overrides, "from_dht_checkpoint")
        base = dict(in_channels=3, features=8, encoder="learned", compactness=0.01, iota=5.0,
                    criterion="aicc", weights="size", var_projection=True,
                    store_gradient_params=True)
        base.update(overrides)
        model = cls(DHTConfig(**base))
        state = _load_state_dict(Path(path), map_location)
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
        self.load_state_dict(state, strict=True)

    # ------------------------------------------------------------------ forward
    def encode(self, images: Tensor) -> Tensor:
        """Per-pixel features (B·H·W, d)."""
        feats = self.conv(images)
        return feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])

    def forward(self, images: Tensor, max_tokens: Optional[int] = None, *,
                generator: Optional[torch.Generator] = None) -> Tokens:
        """Tokenize a batch.

        Parameters
        ----------
        images : Tensor of shape (B, C, H, W)
            Float images in the encoder's input normalisation (module docstring).
        max_tokens : int, optional
            Budget per image (spec §6): exactly ``min(K_b, max_tokens)`` tokens.
        generator : torch.Generator, optional
            Sample the kept tokens of the budget (training); deterministic otherwise.

        Returns
        -------
        Tokens

        Notes
        -----
        Each image gets exactly the tokens it would get alone in eval mode (and in
        encoder-free modes, always); in train mode the learned encoder's BatchNorm uses
        batch statistics, which couple the images of a batch.
        """
        images = self._check_images(images)
        max_tokens = check_max_tokens(max_tokens)
        cfg = self.config
        b, c, h, w = images.shape
        device = images.device
        x = self.encode(images)
        # Level 0 is the pixel grid: no pixel edge list, boxes or positions are built
        # (the first level and the final split work on the grid; see hierarchy.grid).
        pixel_batch = (torch.arange(b, device=device).repeat_interleave(h * w) if b > 1
                       else None)
        level0 = pixel_state(x, b, pixel_batch)
        selector = InformationSelector(level0, b, h * w, cfg.criterion, cfg.iota)
        built = build_hierarchy(
            level0, b, (h, w), compactness=cfg.compactness, var_projection=self.varproj,
            loop_default=cfg.loop_potential, weights=cfg.weights, min_blocks=cfg.min_blocks,
            max_levels=cfg.max_levels, observer=selector.update, pixel_grid=True,
            keep_states=False)
        del level0
        selection = selector.finish(image_size=(h, w))
        del selector
        partition, mu, batch = selection.partition, selection.mean, selection.batch
        projected = self.linear(mu)
        if max_tokens is not None:
            token_edges = grid_quotient(partition.labels, partition.num_blocks, b, h, w)
            merged = merge_to_budget(partition, projected, batch, None, max_tokens,
                                     priority=cfg.budget_priority, generator=generator,
                                     token_edge_index=token_edges)
            step = merged.merge
            weight = partition.sizes.to(mu.dtype).unsqueeze(1)
            total = step.reduce(weight, "sum")
            mu = step.reduce(mu * weight, "sum") / total
            batch = batch.new_empty(step.num_blocks).scatter_(0, step.labels, batch)
            partition = partition.compose(step)
            projected = self.linear(mu)
        injected = mean_injection(images, partition, projected)
        return Tokens(
            partition=partition,
            hierarchy=built.hierarchy,
            features=mu,
            projected=projected,
            batch=batch,
            num_tokens=torch.bincount(batch, minlength=b),
            injected=injected,
            image_size=(h, w),
            num_levels=built.num_levels,
        )

    def _check_images(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor):
            raise TypeError(f"Expected 'images' to be a torch.Tensor of shape (B, C, H, W) "
                            f"(got {type(images).__name__}); dhtgraph.tokenize accepts other inputs")
        if images.dim() != 4:
            raise ValueError(f"Expected 'images' to have 4 dimensions (B, C, H, W) (got {images.dim()})")
        if images.shape[1] != self.config.in_channels:
            raise ValueError(f"Expected 'images' to have {self.config.in_channels} channels "
                             f"(got {images.shape[1]})")
        if min(images.shape) == 0:
            raise ValueError(f"Expected 'images' to have non-empty sides (got {tuple(images.shape)})")
        if not images.is_floating_point():
            raise TypeError(f"Expected 'images' to be a float tensor (got {images.dtype})")
        if not bool(torch.isfinite(images).all()):
            raise ValueError("Expected 'images' to hold finite values (got NaN or inf)")
        # Compute in the module's dtype (float32 unless the user converted the module).
        return images.to(self.linear.weight.dtype)
