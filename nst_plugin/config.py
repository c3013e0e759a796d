"""What a run is asked to do: plain dataclasses and presets. No TensorFlow import here."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import UserError, suggest

VGG_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

MIN_SIZE = 32  # the longer side; five poolings still leave a map at block5
MIN_SIDE = 16  # the shorter side: block5_conv1 still sees a 1-pixel-wide map
INIT_CHOICES = ("noise", "content")
POOLING_CHOICES = ("max", "avg")
NORMALIZATION_CHOICES = ("mean", "article", "relative")
# strength 0..1 moves the style weight over 10**STRENGTH_DECADES, on a log scale, around the preset's balance
# (strength 0.5); see make_config
STRENGTH_DECADES = 3.0
OCCLUDED_INIT_CHOICES = ("warped", "background", "content")


@dataclass(frozen=True)
class StyleConfig:
    """Every knob of one stylization. Build one with :func:`make_config` (a preset plus overrides)."""

    preset: str = "default"
    backbone: str = "vgg16"
    weights: str = "auto"
    pooling: str = "max"
    size: int = 384  # longer side of the working image, in pixels
    square: bool = False  # squash to size x size (the article does); default keeps the aspect ratio
    content_layer: str = "block4_conv2"
    # several content layers with their weights; empty: content_layer alone (weight 1)
    content_layers: tuple[str, ...] = ()
    content_layer_weights: tuple[float, ...] = ()
    style_layers: tuple[str, ...] = VGG_STYLE_LAYERS
    style_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    # "mean": mean squared errors, Gram / positions. "article": sums of squares, Gram / (positions * channels).
    # "relative": every layer's mean squared error divided by the mean square of its target (content features,
    # style Gram), so the content/style balance is a pure ratio, whatever the backbone's activation scale.
    loss_normalization: str = "mean"
    # 0 (barely styled) .. 1 (all style): scales the style weight by 10**(STRENGTH_DECADES * (strength - 0.5))
    # in make_config; None or 0.5: the preset's balance. Ignored when content or style weight is given.
    strength: float | None = None
    loss_weights: dict[str, float] = field(default_factory=lambda: {"content": 1.0, "style": 1.0, "tv": 0.0})
    optimizer: str = "lbfgs"
    rounds: int = 1  # the article restarts L-BFGS 30 times
    iterations: int = 100  # per round: optimizer iterations (L-BFGS) or steps (Adam)
    max_evaluations: int | None = None  # per round: loss evaluations (the article's maxfun)
    tolerance: float = 0.0  # stop when the relative loss change per iteration falls below this (0: never)
    tolerance_window: int = 1  # ... measured over this many iterations (cold frames; see Stylizer.run)
    learning_rate: float = 4.0  # Adam, in pixel units (0..255)
    init: str = "content"  # noise | content | a path to an image
    seed: int | None = None
    preserve_color: bool = False
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    # video (nst_stylize_sequence); a single image ignores these
    warm_start: bool = True  # frame t starts from stylized t-1 warped by the optical flow (Ruder et al.)
    warm_iterations: int = 40  # per-frame iteration cap of a warm-started frame (one round)
    warm_tolerance: float | None = None  # relative loss change that ends a warm-started frame (None: tolerance)
    # warm start where the flow check fails: "background" warps the previous frame by the dominant (median)
    # motion there, "warped" by the flow anyway (Ruder et al.), "content" starts from the content frame.
    # Measured (benchmarks/video_bench.py, 224 px): content leaves pale halos around moving people and needs
    # more evaluations; warped smears them; background keeps them sharpest at the same cost.
    occluded_init: str = "background"
    cut_threshold: float = 27.0  # PySceneDetect ContentDetector threshold; a cut starts the new shot cold
    coarse_to_fine: float | None = None  # cold frames: optimise at this fraction of --size first, then finish (0: off)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """A short hash of the settings, stable across runs."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def content_layer_set(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """(layers, weights) of the content loss: ``content_layers`` or, if empty, ``content_layer`` alone."""
        if self.content_layers:
            weights = self.content_layer_weights or (1.0,) * len(self.content_layers)
            return tuple(self.content_layers), tuple(weights)
        return (self.content_layer,), (1.0,)

    def active_losses(self) -> dict[str, float]:
        return {name: w for name, w in self.loss_weights.items() if w != 0}

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the image that is optimised for a content image of the given shape."""
        if self.square:
            return self.size, self.size
        scale = self.size / max(height, width)
        return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


PRESETS: dict[str, dict] = {
    # The article's method, exactly: average pooling, content after 13 convolutions, style at the first conv
    # of each block with its weights, Gram / number of elements, 4*content + 0.03*style, white noise,
    # 30 rounds of fmin_l_bfgs_b(maxfun=20), 224x224.
    "seed": dict(
        pooling="avg",
        size=224,
        square=True,
        content_layer="block5_conv3",
        style_layers=VGG_STYLE_LAYERS,
        style_layer_weights=(0.2, 0.4, 0.3, 0.5, 0.2),
        loss_normalization="article",
        loss_weights={"content": 4.0, "style": 0.03, "tv": 0.0},
        optimizer="lbfgs",
        rounds=30,
        iterations=15000,
        max_evaluations=20,
        tolerance=0.0,
        init="noise",
        warm_start=False,  # the article stylizes every video frame independently, from noise
    ),
    # Keeps the subject (benchmarks/fidelity_bench.py, held-out frames; tuned on samples/street.*): every
    # term relative to its target's magnitude, so content:style is a pure ratio on any backbone weights
    # (1:6); content at block3_conv2 + block4_conv2 (block4 alone let the style wipe out people and faces);
    # both weights x1000 because relative terms are O(1) and SciPy's gradient tolerance would stop L-BFGS
    # after a few iterations. Start from the content image; cold frames coarse-to-fine from half size; stop
    # when the loss falls by less than 5 % over 5 iterations, at the latest after 40 iterations per stage.
    # Warm video frames keep their rule: 1e-3 per iteration (warm_tolerance), at most warm_iterations.
    "default": dict(
        pooling="max",
        size=384,
        square=False,
        content_layer="block4_conv2",
        content_layers=("block3_conv2", "block4_conv2"),
        content_layer_weights=(1.0, 1.0),
        style_layers=VGG_STYLE_LAYERS,
        style_layer_weights=(1.0, 1.0, 1.0, 1.0, 1.0),
        loss_normalization="relative",
        loss_weights={"content": 1000.0, "style": 6000.0, "tv": 0.0},
        optimizer="lbfgs",
        rounds=1,
        iterations=40,
        max_evaluations=None,
        tolerance=0.05,
        tolerance_window=5,
        warm_tolerance=1e-3,
        coarse_to_fine=0.5,
        init="content",
    ),
}


def make_config(preset: str = "default", **overrides) -> StyleConfig:
    """A preset with overrides applied. ``None`` means "keep the preset's value".

    ``loss_weights`` overrides are merged into the preset's weights (``{"tv": 1e-4}`` changes only tv).
    """
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r} ({suggest(preset, PRESETS)})")
    values = dict(PRESETS[preset])
    names = {f.name for f in fields(StyleConfig)}
    for key, value in overrides.items():
        if key not in names:
            raise TypeError(f"unknown setting {key!r}")
        if value is None:
            continue
        if key == "loss_weights":
            merged = dict(values.get("loss_weights", {}))
            merged.update(value)
            value = merged
        values[key] = value
    for key in ("style_layers", "style_layer_weights", "style_blend", "content_layers", "content_layer_weights"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    layers_changed = overrides.get("style_layers") is not None
    if layers_changed and overrides.get("style_layer_weights") is None:
        values["style_layer_weights"] = (1.0,) * len(values["style_layers"])  # the preset's weights were per layer
    if overrides.get("content_layers") is not None and overrides.get("content_layer_weights") is None:
        values["content_layer_weights"] = (1.0,) * len(values["content_layers"])
    if overrides.get("content_layer") is not None and overrides.get("content_layers") is None:
        values["content_layers"], values["content_layer_weights"] = (), ()  # an explicit single layer wins
    strength = values.get("strength")
    explicit = set(overrides.get("loss_weights") or {}) & {"content", "style"}
    if strength is not None and not explicit and isinstance(strength, (int, float)) and 0 <= strength <= 1:
        weights = dict(values["loss_weights"])
        weights["style"] = weights.get("style", 0.0) * 10 ** (STRENGTH_DECADES * (strength - 0.5))
        values["loss_weights"] = weights
    return StyleConfig(preset=preset, **values)


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """``"0.7,0.3"`` -> ``(0.7, 0.3)`` with a clear error."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers, got {text!r}") from None


def parse_loss_option(text: str) -> tuple[str, float]:
    """``"histogram=10"`` -> ``("histogram", 10.0)``; a bare name gets weight 1."""
    name, _, weight = text.partition("=")
    if not name.strip():
        raise UserError(f"--loss expects NAME or NAME=WEIGHT, got {text!r}")
    if not weight:
        return name.strip(), 1.0
    try:
        return name.strip(), float(weight)
    except ValueError:
        raise UserError(f"--loss {text!r}: the weight after '=' must be a number") from None


def _check_weight(value: float, what: str) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UserError(f"{what} must be a finite number >= 0, got {value!r}")


def estimated_bytes(height: int, width: int) -> int:
    """Rough peak memory of one VGG16 forward+backward pass at this size (activations and gradients)."""
    floats_per_pixel = 64 * 2 + 128 * 2 / 4 + 256 * 3 / 16 + 512 * 3 / 64 + 512 * 3 / 256 + 3
    return int(height * width * floats_per_pixel * 4 * 5)  # float32; x5 for gradients and workspace


def available_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def validate(config: StyleConfig, registry, n_styles: int = 1) -> None:
    """Check every setting against the installed plugins, before anything heavy is loaded."""
    backbone = registry.get("backbones", config.backbone)
    if config.pooling not in POOLING_CHOICES:
        raise UserError(f"unknown pooling {config.pooling!r} (valid: {', '.join(POOLING_CHOICES)})")
    if config.loss_normalization not in NORMALIZATION_CHOICES:
        raise UserError(f"unknown loss normalization {config.loss_normalization!r} (valid: {', '.join(NORMALIZATION_CHOICES)})")
    weights = config.weights
    if weights not in backbone.weight_sources and not Path(weights).expanduser().exists():
        raise UserError(
            f"--weights {weights!r} is neither a weight source of backbone {config.backbone!r} "
            f"({', '.join(backbone.weight_sources)}) nor an existing weights file"
        )
    if config.content_layers and config.content_layer_weights and len(config.content_layer_weights) != len(config.content_layers):
        raise UserError(
            f"{len(config.content_layers)} content layers but {len(config.content_layer_weights)} content layer "
            "weights: give one weight per layer"
        )
    for w in config.content_layer_weights:
        _check_weight(w, "a content layer weight")
    if config.strength is not None and (not isinstance(config.strength, (int, float))
                                        or not math.isfinite(config.strength) or not 0 <= config.strength <= 1):
        raise UserError(f"--strength must be a number from 0 (barely styled) to 1 (all style), got {config.strength!r}")
    for layer in (*config.content_layer_set()[0], *config.style_layers):
        if layer not in backbone.layers:
            raise UserError(f"unknown layer {layer!r} for backbone {config.backbone!r} ({suggest(layer, backbone.layers)})")
    if not config.style_layers:
        raise UserError("at least one style layer is needed")
    if len(config.style_layer_weights) != len(config.style_layers):
        raise UserError(
            f"{len(config.style_layers)} style layers but {len(config.style_layer_weights)} style layer weights: "
            "give one weight per layer"
        )
    for w in config.style_layer_weights:
        _check_weight(w, "a style layer weight")
    for name, w in config.loss_weights.items():
        registry.get("losses", name)
        _check_weight(w, f"the weight of loss {name!r}")
    if not config.active_losses():
        raise UserError("every loss weight is 0: nothing to optimise")
    registry.get("optimizers", config.optimizer)
    for value, what in ((config.rounds, "rounds"), (config.iterations, "iterations")):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{what} must be a whole number >= 1, got {value!r}")
    if not isinstance(config.tolerance_window, int) or config.tolerance_window < 1:
        raise UserError(f"the tolerance window must be a whole number >= 1, got {config.tolerance_window!r}")
    if config.max_evaluations is not None and config.max_evaluations < 1:
        raise UserError(f"max evaluations must be >= 1, got {config.max_evaluations}")
    _check_weight(config.tolerance, "the tolerance")
    if not math.isfinite(config.learning_rate) or config.learning_rate <= 0:
        raise UserError(f"the learning rate must be a finite number > 0, got {config.learning_rate!r}")
    if not math.isfinite(config.style_scale) or config.style_scale <= 0:
        raise UserError(f"the style scale must be a finite number > 0, got {config.style_scale!r}")
    if config.init not in INIT_CHOICES and not Path(config.init).expanduser().is_file():
        raise UserError(f"--init must be noise, content or an existing image file, got {config.init!r}")
    if config.style_blend is not None:
        if len(config.style_blend) != n_styles:
            raise UserError(f"--style-blend has {len(config.style_blend)} weights for {n_styles} style images: give one per style")
        for w in config.style_blend:
            _check_weight(w, "a style blend weight")
        if sum(config.style_blend) <= 0:
            raise UserError("the style blend weights add up to 0")
    if not isinstance(config.warm_iterations, int) or config.warm_iterations < 1:
        raise UserError(f"warm iterations must be a whole number >= 1, got {config.warm_iterations!r}")
    if config.warm_tolerance is not None:
        _check_weight(config.warm_tolerance, "the warm tolerance")
    _check_weight(config.cut_threshold, "the cut threshold")
    if config.occluded_init not in OCCLUDED_INIT_CHOICES:
        raise UserError(f"--occluded-init must be {' or '.join(OCCLUDED_INIT_CHOICES)}, got {config.occluded_init!r}")
    if config.coarse_to_fine is not None and not (0 <= config.coarse_to_fine < 1):
        raise UserError(f"--coarse-to-fine must be a fraction between 0 and 1 (0: off), got {config.coarse_to_fine!r}")
    check_size(config.size)


def check_size(size: int) -> None:
    if not isinstance(size, int) or size < MIN_SIZE:
        raise UserError(f"--size must be at least {MIN_SIZE} pixels, got {size!r}")
    need = estimated_bytes(size, size)
    have = available_memory_bytes()
    if have is not None and need > have:
        largest = int(math.sqrt(have / estimated_bytes(1, 1)))
        raise UserError(
            f"--size {size} needs about {need / 2**30:.0f} GiB of memory and this machine has "
            f"{have / 2**30:.0f} GiB free; use --size {largest} or less"
        )


def with_overrides(config: StyleConfig, **changes) -> StyleConfig:
    return replace(config, **changes)
