"""Configuration of the dHT tokenizer: one frozen config per stage, composed in :class:`DHTConfig`.

Stages and their configs (every default with its reason):

* :class:`EncoderConfig` — the parameters: pixel encoder f, projection W, variance
  projection;
* :class:`HierarchyConfig` — the contraction levels (potentials, pooling, stopping);
* :class:`SelectionConfig` — the information criterion of the per-region selection;
* :class:`BudgetConfig` — how a token budget chooses the tokens it keeps.

:class:`DHTConfig` holds one of each and still reads and builds like the flat config of
0.1.0: ``DHTConfig(iota=10, encoder='lab')``, ``config.iota``,
``dataclasses.replace(config, iota=3)`` all work. Named presets (:data:`PRESETS`) are the
one place where the library's recommended and official settings are written down.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field, fields
from typing import Callable, Literal, Optional

from .._checks import check_count
from .._registry import Registry
from ..hierarchy.build import MIN_BLOCKS_PER_IMAGE, POOL_WEIGHTINGS
from ..hierarchy.contraction import PoolWeights, TieBreak, check_tie_break
from ..selection.budget import BudgetPriority, check_budget_priority
from ..selection.criteria import Criterion, check_iota
from ..selection.select import resolve_criterion

__all__ = ["EncoderKind", "EncoderConfig", "HierarchyConfig", "SelectionConfig", "BudgetConfig",
           "DHTConfig", "PRESETS", "PresetName", "preset_options", "CONFIG_FIELDS", "ENCODERS",
           "check_config_options"]

EncoderKind = Literal["learned", "rgb", "lab"]
PresetName = Literal["recommended", "r2v"]


def _learned(in_channels: int, features: int, color_scale: float):
    from .encoder import PixelEncoder

    return PixelEncoder(in_channels, features)


def _colour(kind: str):
    def build(in_channels: int, features: int, color_scale: float):
        from .encoder import ColorEncoder

        return ColorEncoder(in_channels, kind, color_scale)

    build.__name__ = f"_{kind}"
    return build


#: Pixel encoders by name: ``factory(in_channels, features, color_scale) -> nn.Module``
#: mapping (B, C, H, W) to (B, d, H, W).
ENCODERS: Registry[Callable] = Registry("encoder")
ENCODERS.register("learned", _learned)
ENCODERS.register("rgb", _colour("rgb"))
ENCODERS.register("lab", _colour("lab"))


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


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"Expected '{name}' to be a bool (got {type(value).__name__} {value!r})")
    return value


def _set(obj, name: str, value) -> None:
    # Normalise a field of a frozen dataclass in __post_init__.
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class EncoderConfig:
    """The parameters of the tokenizer (spec §2, §3.2, §7).

    Attributes
    ----------
    in_channels : int = 3
        C; RGB images.
    features : int = 8
        d, the learned encoder's width (the reference's d = 8). Ignored by encoder-free
        modes (d = C there).
    encoder : {'learned', 'rgb', 'lab'} = 'learned'
        'learned' is the reference's architecture (trainable; loads official weights);
        'rgb' / 'lab' use the image colours (encoder-free, no weights needed).
    color_scale : float = 1.0
        Multiplies encoder-free features (sets the sharpness of exp(−‖Δ‖²)).
    var_projection : bool = True
        Learned self-loop potential from the variance (spec §3.2); off → constant loops.
    store_gradient_params : bool = False
        Hold the reference's unused image-gradient parameters (``gradact.lmbda``,
        ``gradient.kernel``) so its state dict loads strictly.
    """

    in_channels: int = 3
    features: int = 8
    encoder: EncoderKind = "learned"
    color_scale: float = 1.0
    var_projection: bool = True
    store_gradient_params: bool = False

    def __post_init__(self):
        for name in ("in_channels", "features"):
            _set(self, name, check_count(getattr(self, name), name, minimum=1))
        ENCODERS.check(self.encoder, "encoder")
        _set(self, "color_scale", _check_real("color_scale", self.color_scale, positive=True))
        for name in ("var_projection", "store_gradient_params"):
            _check_bool(name, getattr(self, name))

    @property
    def feature_width(self) -> int:
        """d as used: ``features`` for the learned encoder, C otherwise."""
        return self.features if self.encoder == "learned" else self.in_channels


@dataclass(frozen=True)
class HierarchyConfig:
    """The contraction levels (spec §3–§4).

    Attributes
    ----------
    compactness : float = 0.1
        Compactness weight c (spec §3.3 default; the raster-to-vector model uses 0.01).
    weights : {'argmax_edge', 'size'} = 'argmax_edge'
        Pooling weights; 'argmax_edge' carries gradient into the potentials (paper).
    loop_potential : float = 0.0
        The constant loop potential without a variance projection (spec §3.2).
    min_blocks : int = 6
        A graph stops contracting at ≤ this many blocks (the reference's value).
    max_levels : int or None = None
        Cap on contraction levels; None → ⌈log₂ √n⌉ for a graph of n nodes (spec §4).
    tie_break : {'reference', 'hashed'} = 'hashed'
        How a block chooses among exactly tied (16-bit quantised) potentials. 'hashed'
        (default): along an edge between blocks of different means, a fixed symmetric
        hash of the pair decides, so that smooth gradients do not chain a whole image into
        one block in one level (a 512² float gradient: 940 tokens instead of 1); along an
        edge inside a plateau (equal means) the larger index decides, so a flat region
        still collapses into one block. 'reference' (larger neighbour index everywhere)
        reproduces the reference implementation; the ``'r2v'`` preset and
        :meth:`DHTTokenizer.from_dht_checkpoint` use it, as the official weights are
        checked against it.
    """

    compactness: float = 0.1
    weights: PoolWeights = "argmax_edge"
    loop_potential: float = 0.0
    min_blocks: int = MIN_BLOCKS_PER_IMAGE
    max_levels: Optional[int] = None
    tie_break: TieBreak = "hashed"

    def __post_init__(self):
        _set(self, "compactness", _check_real("compactness", self.compactness, unit=True))
        POOL_WEIGHTINGS.check(self.weights, "weights")
        _set(self, "loop_potential", _check_real("loop_potential", self.loop_potential, unit=True))
        _set(self, "min_blocks", check_count(self.min_blocks, "min_blocks", minimum=0))
        _set(self, "max_levels", check_count(self.max_levels, "max_levels", minimum=1,
                                             or_none=True))
        check_tie_break(self.tie_break)


@dataclass(frozen=True)
class SelectionConfig:
    """The per-region selection (spec §5).

    Attributes
    ----------
    criterion : {'aic', 'aicc', 'bic', 'cic'} = 'aicc'
        Spec §5 default (any name registered in
        :data:`dhtgraph.selection.select.CRITERION_FUNCTIONS`).
    iota : float = 5.0
        ι of the information criterion (spec §5 default): the granularity knob.
    """

    criterion: Criterion = "aicc"
    iota: float = 5.0

    def __post_init__(self):
        _set(self, "criterion", resolve_criterion(self.criterion)[0])
        _set(self, "iota", check_iota(self.iota))


@dataclass(frozen=True)
class BudgetConfig:
    """The token budget (spec §6).

    Attributes
    ----------
    budget_priority : {'cost', 'size'} = 'cost'
        Deprecated and ignored since the budget became a least-Ward-cost agglomerative
        merge (:func:`dhtgraph.selection.merge_to_budget`), which keeps no fixed set of
        tokens; 'size' warns (FutureWarning). Kept so that 0.1.0 configurations load.
    """

    budget_priority: BudgetPriority = "cost"

    def __post_init__(self):
        check_budget_priority(self.budget_priority)


_STAGES = (("encoding", EncoderConfig), ("hierarchy", HierarchyConfig),
           ("selection", SelectionConfig), ("budget", BudgetConfig))
#: Stage of every flat option name.
_STAGE_OF = {f.name: stage for stage, cls in _STAGES for f in fields(cls)}
#: The flat option names, in 0.1.0's order (also the order of positional arguments).
CONFIG_FIELDS = ("in_channels", "features", "encoder", "color_scale", "compactness", "iota",
                 "criterion", "weights", "var_projection", "loop_potential", "min_blocks",
                 "max_levels", "budget_priority", "store_gradient_params", "tie_break")
assert set(CONFIG_FIELDS) == set(_STAGE_OF)  # a developer check, not on user input


@dataclass(frozen=True, init=False)
class DHTConfig:
    """Configuration of :class:`~dhtgraph.nn.DHTTokenizer`: one frozen config per stage.

    Build it from flat options, as in 0.1.0 (``DHTConfig(iota=10, encoder='lab')``), from
    stage configs (``DHTConfig(selection=SelectionConfig(iota=10))``), or from a preset
    (:meth:`preset`). Flat options override stage configs. Every flat option reads as an
    attribute (``config.iota``); see the stage configs for each default and its reason.

    Attributes
    ----------
    encoding : EncoderConfig
        in_channels, features, encoder, color_scale, var_projection, store_gradient_params.
    hierarchy : HierarchyConfig
        compactness, weights, loop_potential, min_blocks, max_levels, tie_break.
    selection : SelectionConfig
        criterion, iota.
    budget : BudgetConfig
        budget_priority.

    Raises
    ------
    TypeError
        For an unknown option or a value of the wrong type.
    ValueError
        For a value out of range or an unknown option value.
    """

    encoding: EncoderConfig = field(default_factory=EncoderConfig)
    hierarchy: HierarchyConfig = field(default_factory=HierarchyConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)

    def __init__(self, *args, encoding: Optional[EncoderConfig] = None,
                 hierarchy: Optional[HierarchyConfig] = None,
                 selection: Optional[SelectionConfig] = None,
                 budget: Optional[BudgetConfig] = None, **options):
        if args:
            if len(args) > len(CONFIG_FIELDS):
                raise TypeError(f"DHTConfig takes at most {len(CONFIG_FIELDS)} positional "
                                f"arguments (got {len(args)})")
            warnings.warn("Positional DHTConfig arguments are deprecated; pass options by name",
                          DeprecationWarning, stacklevel=2)
            for name, value in zip(CONFIG_FIELDS, args):
                if name in options:
                    raise TypeError(f"DHTConfig got multiple values for '{name}'")
                options[name] = value
        check_config_options(options, "DHTConfig")
        given = {"encoding": encoding, "hierarchy": hierarchy, "selection": selection,
                 "budget": budget}
        for stage, cls in _STAGES:
            base = given[stage]
            if base is None:
                base_values = {}
            elif isinstance(base, cls):
                base_values = {f.name: getattr(base, f.name) for f in fields(cls)}
            else:
                raise TypeError(f"Expected '{stage}' to be a {cls.__name__} "
                                f"(got {type(base).__name__})")
            mine = {k: v for k, v in options.items() if _STAGE_OF[k] == stage}
            object.__setattr__(self, stage, cls(**{**base_values, **mine}) if (mine or base is None)
                               else base)

    def __getattr__(self, name: str):
        # Flat options (0.1.0): ``config.iota`` reads ``config.selection.iota``.
        stage = _STAGE_OF.get(name)
        if stage is None:
            raise AttributeError(f"'DHTConfig' object has no attribute {name!r}")
        return getattr(object.__getattribute__(self, stage), name)

    @property
    def feature_width(self) -> int:
        """d as used: ``features`` for the learned encoder, C otherwise."""
        return self.encoding.feature_width

    def to_dict(self) -> dict:
        """The flat options ``{name: value}`` (``DHTConfig(**config.to_dict()) == config``)."""
        return {name: getattr(self, name) for name in CONFIG_FIELDS}

    def replace(self, **options) -> "DHTConfig":
        """A copy with flat options changed (as ``dataclasses.replace``)."""
        return DHTConfig(encoding=self.encoding, hierarchy=self.hierarchy,
                         selection=self.selection, budget=self.budget, **options)

    @classmethod
    def preset(cls, name: PresetName, **options) -> "DHTConfig":
        """The named preset (:data:`PRESETS`) with ``options`` overriding it."""
        return cls(**{**preset_options(name), **options})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"DHTConfig({inner})"


#: Named configurations, defined only here.
#:
#: ``'recommended'`` — :func:`dhtgraph.tokenize`'s defaults: encoder-free (no weights to
#: download or train), chosen by explained variation on the eight shared 224×224
#: photographs (EV 0.957 mean, 0.924 worst, at exactly 400 tokens; Lab colours gave
#: 0.948): RGB in [0, 1] scaled by 10 so that a colour step of ~0.1 halves the potential;
#: ι = 10 so that the selection yields more than ~400 tokens at 224² before a budget;
#: compactness 0.01 (shapes follow colour); exact size-weighted statistics (no weights
#: to train, so the 'argmax_edge' gradient path buys nothing); constant loop potential;
#: the 'hashed' tie rule (the default: smooth gradients become ~900 tokens at 512², not 1;
#: the eight photographs: free counts −4 %…+2 %, mean EV at 400 tokens 0.9571 vs 0.9575 with the reference's
#: rule).
#:
#: ``'r2v'`` — the official dHT raster-to-vector tokenizer (the reference's
#: ``load_dht_ras2vec``), used by :meth:`DHTTokenizer.from_dht_checkpoint`: d = 8,
#: compactness 0.01, ι = 5, AICc, the learned encoder and variance projection, and exact
#: ``'size'`` pooling weights (the reference's own weighting is defective, spec §3.6), the
#: reference's tie rule (its selected partitions are the conformance target); the
#: reference's unused gradient parameters are held so its state dict loads strictly.
PRESETS: dict[str, dict] = {
    "recommended": dict(encoder="rgb", color_scale=10.0, compactness=0.01, iota=10.0,
                        criterion="aicc", weights="size", var_projection=False),
    "r2v": dict(in_channels=3, features=8, encoder="learned", compactness=0.01, iota=5.0,
                criterion="aicc", weights="size", var_projection=True,
                store_gradient_params=True, tie_break="reference"),
}


def preset_options(name: PresetName) -> dict:
    """A copy of the flat options of preset ``name`` (ValueError naming 'preset')."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"Expected 'preset' to be one of {tuple(PRESETS)} (got {name!r})")
    return dict(PRESETS[name])


def check_config_options(options: dict, what: str = "DHTTokenizer") -> None:
    """Raise TypeError naming the unknown keys of ``options`` and listing the
    :class:`DHTConfig` option names."""
    unknown = sorted(set(map(str, options)) - set(CONFIG_FIELDS))
    if unknown:
        raise TypeError(f"Unknown {what} option(s) {unknown}; known: {sorted(CONFIG_FIELDS)}")
