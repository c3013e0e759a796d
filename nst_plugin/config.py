"""What a run is asked to do: plain dataclasses and presets. No TensorFlow import here."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import UserError, suggest

VGG_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

MIN_SIZE = 32  # the longer side; five poolings still leave a map at block5
MIN_SIDE = 16
SOURCE_SIZE = 0  # size 0: the source's own resolution (the default of an engine whose output_size is "source")
# settings an engine records the effect of in each frame's key (see StyleConfig.output_fingerprint)
FRAME_KEYED_SETTINGS = ("keyframes", "keyframe_interval", "keyframe_size")  # the shorter side: block5_conv1 still sees a 1-pixel-wide map
INIT_CHOICES = ("noise", "content")
POOLING_CHOICES = ("max", "avg")
NORMALIZATION_CHOICES = ("mean", "article", "relative")
# strength 0..1 moves the style weight over 10**STRENGTH_DECADES, on a log scale, around the preset's balance
# (strength 0.5); see make_config
STRENGTH_DECADES = 3.0
OCCLUDED_INIT_CHOICES = ("warped", "background", "content", "residual")
WARM_STOP_CHOICES = ("anchored", "previous")


def setting(default, help: str, *, flags: tuple[str, ...] = (), video: bool = False, factory=None):
    """A :class:`StyleConfig` field that is also a user setting: its ``help`` is the CLI option's help,
    ``flags`` its option names when they are not ``--field-name``, ``video`` marks the settings a single
    image ignores. The CLI, ``--settings FILE`` and the Blender add-on all use these field names."""
    metadata = {"help": help, "flags": flags, "video": video}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class StyleConfig:
    """Every knob of one stylization. Build one with :func:`make_config` (a preset plus overrides).

    The field names are the settings vocabulary: ``nst image --size`` is ``size``, a ``--settings`` file's
    ``"size"`` key is ``size``. Loss weights are settings named ``<loss>_weight`` (``content_weight``,
    ``temporal_weight``, a plugin's ``w2_weight``); plugin options are ``options["<name>.<key>"]``.
    """

    preset: str = setting("default", "default (quality per second) or seed (the article's exact method).")
    backbone: str = setting("vgg16", "Backbone plugin name (see nst plugins).")
    weights: str = setting("auto", "Backbone weights: auto, imagenet, hed, or a weights file.")
    pooling: str = setting("max", "max or avg (the article uses avg).")
    size: int = setting(384, "Longer side of the result in pixels (default preset: 384; seed: 224); 0: the source's "
                             "own resolution (the keyframe engine's default).")  # working image
    square: bool = setting(False, "Squash to size x size, as the article.", flags=("--square/--keep-aspect",))
    content_layer: str = setting("block4_conv2", "Layer of the content loss (when --content-layers is empty).")
    # several content layers with their weights; empty: content_layer alone (weight 1)
    content_layers: tuple[str, ...] = setting((), "Comma-separated layers of the content loss (default preset: "
                                              "block3_conv2,block4_conv2).")
    content_layer_weights: tuple[float, ...] = setting((), "Comma-separated weights, one per content layer.")
    style_layers: tuple[str, ...] = setting(VGG_STYLE_LAYERS, "Comma-separated layers of the style loss.")
    style_layer_weights: tuple[float, ...] = setting((1.0, 1.0, 1.0, 1.0, 1.0), "Comma-separated weights, one per style layer.")
    # "mean": mean squared errors, Gram / positions. "article": sums of squares, Gram / (positions * channels).
    # "relative": every layer's mean squared error divided by the mean square of its target (content features,
    # style Gram), so the content/style balance is a pure ratio, whatever the backbone's activation scale.
    loss_normalization: str = setting("mean", "relative (default preset), mean, or article (sums, as the article).")
    # 0 (barely styled) .. 1 (all style): scales the style weight by 10**(STRENGTH_DECADES * (strength - 0.5))
    # in make_config; None or 0.5: the preset's balance. Ignored when content or style weight is given.
    strength: float | None = setting(None, "0 (barely styled) .. 1 (all style); the preset's balance is 0.5. "
                                     "--content-weight/--style-weight override it.")
    loss_weights: dict[str, float] = setting(None, "Weights of the loss terms, by name.", factory=lambda: {"content": 1.0, "style": 1.0, "tv": 0.0})
    optimizer: str = setting("lbfgs", "lbfgs, adam, or a plugin's optimizer.")
    rounds: int = setting(1, "Optimizer restarts (the article: 30).")
    iterations: int = setting(100, "Optimizer iterations per round.")  # L-BFGS iterations or Adam steps
    max_evaluations: int | None = setting(None, "Loss evaluations per round (the article's maxfun).", flags=("--max-evaluations", "--max-evals"))
    tolerance: float = setting(0.0, "Stop when the relative loss change per iteration falls below this (0: never).")
    tolerance_window: int = setting(1, "Measure the tolerance's loss change over this many iterations (cold frames).")
    learning_rate: float = setting(4.0, "Adam step size in pixel units (0..255).")
    init: str = setting("content", "Start image: noise, content or an image path.")
    seed: int | None = setting(None, "Random seed: makes a run reproducible.")
    preserve_color: bool = setting(False, "Transfer luminance only; keep the content's colours.", flags=("--preserve-color/--no-preserve-color",))
    style_blend: tuple[float, ...] | None = setting(None, "Blend weights of the styles, e.g. 0.7,0.3.")
    style_scale: float = setting(1.0, "Size of the style image relative to --size.")
    options: dict[str, object] = setting(None, "Plugin options NAME.KEY=VALUE (see nst plugins).", factory=dict)
    # video (nst_stylize_sequence); a single image ignores these
    engine: str = setting("lbfgs", "Sequence engine: lbfgs (frame by frame, Gatys et al. + Ruder et al.) or keyframes "
                          "(a few keyframes stylized, a small network learns them; every frame through it) or a "
                          "plugin's.", video=True)
    keyframes: tuple[int, ...] | None = setting(None, "Keyframe engine: frame numbers to stylize as keyframes, e.g. "
                                                "1,48,96 (default: the first frame of every shot, then a frame where "
                                                "the last keyframe's strokes reach less than keyframes.coverage of the "
                                                "picture, or --keyframe-interval frames after it).", video=True)
    keyframe_size: int | None = setting(None, "Keyframe engine: longer side at which keyframes are stylized (default: "
                                        "384, at most the output's); --size is the output's (default: the source's).",
                                        video=True)
    keyframe_interval: int = setting(48, "Keyframe engine: a shot gets a keyframe at least every this many frames.",
                                     video=True)
    warm_start: bool = setting(True, "Start each frame from the previous stylized frame warped by optical flow "
                               "(default preset: on; seed: off).", flags=("--warm-start/--cold-start",), video=True)
    warm_iterations: int = setting(40, "Iteration cap of a warm-started frame.", video=True)
    warm_tolerance: float | None = setting(None, "Relative loss change that ends a warm-started frame (default: --tolerance).", video=True)
    warm_stop: str = setting("anchored", "When a warm frame may stop early: anchored (once as good as the shot's cold "
                             "frame, content included) or previous (once its loss is the previous frame's).", video=True)
    # warm start where the flow check fails: "background" warps the previous frame by the dominant (median)
    # motion there, "warped" by the flow anyway (Ruder et al.), "content" starts from the content frame.
    # Measured (benchmarks/video_bench.py, 224 px): content leaves pale halos around moving people and needs
    # more evaluations; warped smears them; background keeps them sharpest at the same cost.
    occluded_init: str = setting("background", "Warm start: residual (the current frame plus the previous frame's "
                                 "stylization residual moved by the flow), or the previous output moved by the flow "
                                 "with, where the flow check fails, background (the dominant motion), warped (the "
                                 "flow anyway) or content (the content frame).", video=True)
    residual_keep: float = setting(1.0, "Warm start, residual: the share of the previous frame's stylization "
                                   "residual a frame starts with, the rest from its own content (default preset: "
                                   "0.9; below 1 a warm frame also keeps its shot's level of style).",
                                   video=True)
    cut_threshold: float = setting(27.0, "Shot-cut threshold (PySceneDetect content score).", video=True)
    coarse_to_fine: float | None = setting(None, "Cold frames: optimise at this fraction of --size first (default "
                                           "preset: 0.5; 0 turns it off).")

    def for_image(self) -> "StyleConfig":
        """The config of a single image: terms that only exist between frames (``temporal``) are dropped."""
        if "temporal" not in self.loss_weights:
            return self
        return replace(self, loss_weights={k: w for k, w in self.loss_weights.items() if k != "temporal"})

    def option(self, key: str, default=None):
        """A plugin option's value (``"w2.eps"``), or ``default`` when the user did not set it."""
        return self.options.get(key, default)

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self, leave_out: tuple[str, ...] = ()) -> str:
        """A short hash of the settings (without the fields named in ``leave_out``), stable across runs."""
        data = {k: v for k, v in self.to_dict().items() if k not in leave_out}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def output_fingerprint(self) -> str:
        """The hash an output folder resumes on: the settings without those whose effect an engine records
        per frame (``FRAME_KEYED_SETTINGS``: the keyframe engine keys every frame by its shot's keyframes), so
        choosing another keyframe re-makes only the frames it changes."""
        return self.fingerprint(leave_out=FRAME_KEYED_SETTINGS)

    def content_layer_set(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """(layers, weights) of the content loss: ``content_layers`` or, if empty, ``content_layer`` alone."""
        if self.content_layers:
            weights = self.content_layer_weights or (1.0,) * len(self.content_layers)
            return tuple(self.content_layers), tuple(weights)
        return (self.content_layer,), (1.0,)

    def active_losses(self) -> dict[str, float]:
        return {name: w for name, w in self.loss_weights.items() if w != 0}

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the image that is optimised for a content image of the given shape (``size`` 0:
        the content's own, the keyframe engine's default)."""
        if self.size == SOURCE_SIZE:
            return height, width
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
        loss_weights={"content": 4.0, "style": 0.03, "tv": 0.0},  # no temporal term: every frame independent
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
        # temporal: video frames are pulled toward the warped previous output (0.5: measured in
        # benchmarks/video_bench.py, same cost, lower E_warp); a single image has no previous frame
        loss_weights={"content": 1000.0, "style": 6000.0, "tv": 0.0, "temporal": 0.5},
        optimizer="lbfgs",
        rounds=1,
        iterations=40,
        max_evaluations=None,
        tolerance=0.05,
        tolerance_window=5,
        warm_tolerance=1e-3,
        coarse_to_fine=0.5,
        init="content",
        # video: a warm frame starts from the current frame plus the previous frame's stylization residual
        # moved by the flow, and may stop once it is as good as the shot's cold frame (content included).
        # Measured (benchmarks/drift_bench.py, held-out walkers.avi): the previous output warped (background
        # fill) and a stop at the previous frame's loss let walking people fade over a shot (edge correlation
        # 0.82x the cold frames' at frame 24); residual + anchored keeps them (1.17x) at a lower cost.
        occluded_init="residual",
        # measured (benchmarks/drift_bench.py, 40-frame shots): with all of the residual carried (1.0), a woman
        # turning her head (samples/face.avi) loses a fifth of her edges (0.82x the cold frames' at frame 40):
        # while a warm frame repairs the moving subject, its optimiser keeps stylizing the still background
        # too. Starting from 90 % of it keeps the edges (0.95x; walkers.avi 1.33x); the anchored stop then
        # also holds the style term at the cold frame's level (without that, the walkers' lawn went back to
        # green over the shot). Costs 1.2-1.9x the warm frames' time and ~1.6x their E_warp; fading the
        # residual only where the picture moved was worse (0.74x).
        residual_keep=0.9,
        warm_stop="anchored",
    ),
}


def strength_style_weight(style_weight: float, strength: float) -> float:
    """The style weight at ``strength`` (0..1) for a preset's ``style_weight``: the one formula of the
    strength, for a run (:func:`make_config`) and for one frame of an animated strength (nst_plugin.schedule)."""
    return style_weight * 10 ** (STRENGTH_DECADES * (strength - 0.5))


def make_config(preset: str = "default", **overrides) -> StyleConfig:
    """A preset with overrides applied. ``None`` means "keep the preset's value".

    ``loss_weights`` overrides are merged into the preset's weights (``{"tv": 1e-4}`` changes only tv).
    Turning ``warm_start`` off also turns the temporal loss off unless its weight is given: a frame that
    does not start from the previous one is not pulled toward it either (the article's method).
    """
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r} ({suggest(preset, PRESETS)})")
    values = dict(PRESETS[preset])
    names = {f.name for f in fields(StyleConfig)} - {"preset"}
    for key, value in overrides.items():
        if key not in names:
            raise TypeError(f"unknown setting {key!r}")
        if value is None:
            continue
        if key in ("loss_weights", "options"):
            value = {**values.get(key, {}), **value}
        values[key] = value
    for key in ("style_layers", "style_layer_weights", "style_blend", "content_layers", "content_layer_weights"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    layers_changed = overrides.get("style_layers") is not None
    if layers_changed and overrides.get("style_layer_weights") is None:
        values["style_layer_weights"] = (1.0,) * len(values["style_layers"])  # the preset's weights were per layer
    temporal_given = "temporal" in (overrides.get("loss_weights") or {})
    if overrides.get("warm_start") is False and not temporal_given and values.get("loss_weights", {}).get("temporal"):
        values["loss_weights"] = {**values["loss_weights"], "temporal": 0.0}
    if overrides.get("content_layers") is not None and overrides.get("content_layer_weights") is None:
        values["content_layer_weights"] = (1.0,) * len(values["content_layers"])
    if overrides.get("content_layer") is not None and overrides.get("content_layers") is None:
        values["content_layers"], values["content_layer_weights"] = (), ()  # an explicit single layer wins
    strength = values.get("strength")
    explicit = set(overrides.get("loss_weights") or {}) & {"content", "style"}
    if strength is not None and not explicit and isinstance(strength, (int, float)) and 0 <= strength <= 1:
        weights = dict(values["loss_weights"])
        weights["style"] = strength_style_weight(weights.get("style", 0.0), strength)
        values["loss_weights"] = weights
    return StyleConfig(preset=preset, **values)


# -- the settings vocabulary: one spelling for the CLI, --settings files, the API and the Blender add-on ------

SETTING_FIELDS = {f.name: f for f in fields(StyleConfig)}
LOSS_WEIGHT_SUFFIX = "_weight"


def setting_names() -> list[str]:
    """Every name a settings mapping may use (besides ``<loss>_weight``, ``loss`` and ``option``)."""
    return sorted(name for name in SETTING_FIELDS if name not in ("loss_weights", "options"))


def _coerce(name: str, value):
    """A settings value (from JSON or the CLI) as the field's type, with a one-line error."""
    kind = str(SETTING_FIELDS[name].type)
    if value is None:
        return None
    if "tuple" in kind:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, (list, tuple)):
            parts = list(value)
        else:
            raise UserError(f"setting {name!r} must be a list or comma-separated text, got {value!r}")
        if "float" in kind:
            return parse_floats(",".join(str(p) for p in parts), f"setting {name!r}")
        if "int" in kind:
            try:
                return tuple(int(str(p)) for p in parts)
            except ValueError:
                raise UserError(f"setting {name!r} must be comma-separated whole numbers, got {value!r}") from None
        return tuple(str(p) for p in parts)
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise UserError(f"setting {name!r} must be true or false, got {value!r}")
        return value
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise UserError(f"setting {name!r} must be a whole number, got {value!r}")
        return int(value)
    if kind.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise UserError(f"setting {name!r} must be a number, got {value!r}")
        return float(value)
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise UserError(f"setting {name!r} must be text, got {value!r}")
        return value
    return value


def parse_option(text: str) -> tuple[str, str]:
    """``"w2.eps=1e-5"`` -> ``("w2.eps", "1e-5")`` (typed later by the plugin's declaration)."""
    key, sep, value = str(text).partition("=")
    name, dot, option = key.strip().rpartition(".")
    if not sep or not dot or not name or not option:
        raise UserError(f"--option expects NAME.KEY=VALUE (e.g. w2.eps=1e-5), got {text!r}")
    return f"{name}.{option}", value.strip()


def overrides_from_settings(settings: dict, what: str = "settings") -> tuple[str | None, dict]:
    """(preset, :func:`make_config` overrides) from a flat settings mapping: a field name per key, loss
    weights as ``<loss>_weight``, extra losses as ``loss: ["name=weight", ...]``, plugin options as
    ``option: ["name.key=value", ...]`` or ``options: {"name.key": value}``. ``None`` values are skipped.
    The one mapping from the user's words to a config: the CLI, ``--settings`` files and the add-on use it."""
    if not isinstance(settings, dict):
        raise UserError(f"{what} must be a JSON object of setting names and values")
    overrides: dict = {}
    weights: dict[str, float] = {}
    options: dict[str, object] = {}
    preset = None
    for key, value in settings.items():
        if value is None:
            continue
        if key == "preset":
            preset = _coerce("preset", value)
        elif key == "loss":
            for text in [value] if isinstance(value, str) else value:
                name, weight = parse_loss_option(text)
                weights[name] = weight
        elif key == "option":
            for text in [value] if isinstance(value, str) else value:
                name, raw = parse_option(text)
                options[name] = raw
        elif key == "options":
            if not isinstance(value, dict):
                raise UserError(f"{what}: 'options' must map NAME.KEY to a value")
            options.update(value)
        elif key == "loss_weights":
            if not isinstance(value, dict):
                raise UserError(f"{what}: 'loss_weights' must map loss names to weights")
            weights.update({str(k): v for k, v in value.items()})
        elif key in SETTING_FIELDS:
            overrides[key] = _coerce(key, value)
        elif key.endswith(LOSS_WEIGHT_SUFFIX) and len(key) > len(LOSS_WEIGHT_SUFFIX):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise UserError(f"{what}: {key!r} must be a number, got {value!r}")
            weights[key[: -len(LOSS_WEIGHT_SUFFIX)]] = float(value)
        else:
            raise UserError(f"{what}: unknown setting {key!r} ({suggest(key, setting_names() + ['<loss>_weight', 'loss', 'option'])})")
    if weights:
        overrides["loss_weights"] = weights
    if options:
        overrides["options"] = options
    return preset, overrides


def load_settings_file(path: str | os.PathLike) -> dict:
    """A ``--settings`` JSON file as a flat settings mapping (see :func:`overrides_from_settings`)."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"settings file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"settings file {str(path)!r} cannot be read: {exc}") from None
    except ValueError as exc:
        raise UserError(f"settings file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"settings file {str(path)!r} must hold a JSON object of setting names and values")
    return data


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


def memory_needed(config: "StyleConfig", height: int, width: int, image: bool = False) -> int:
    """Rough peak memory (bytes) of stylizing a ``height`` x ``width`` content or source with ``config``, its
    size resolved (``size`` 0: the source's own): the sequence engine's own estimate (its ``memory`` trait),
    else the frame engine's VGG pass at the working size (``image``: a single image, whatever the engine)."""
    traits = None if image else _engine_traits(config.engine)
    if traits is not None and traits.memory is not None:
        return int(traits.memory(config, height, width))
    return estimated_bytes(*config.working_shape(height, width))


def _engine_traits(engine: str):
    from .plugins import get_registry

    entry = get_registry().engines.get(engine)
    return entry.traits if entry is not None else None


def _largest_size(config: "StyleConfig", height: int, width: int, have: int, image: bool = False) -> int | None:
    """The largest ``--size`` whose run fits in ``have`` bytes, or None (not even MIN_SIZE)."""
    low, high = MIN_SIZE, max(MIN_SIZE, max(height, width))
    if memory_needed(replace(config, size=low), height, width, image) > have:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if memory_needed(replace(config, size=middle), height, width, image) <= have:
            low = middle
        else:
            high = middle - 1
    return low


def _refuse_memory(what: str, need: int, have: int, largest: int | None) -> None:
    advice = (f"use --size {largest} or less" if largest is not None
              else "even the smallest --size does not fit: free some memory")
    raise UserError(f"{what} needs about {need / 2**30:.0f} GiB of memory and this machine has "
                    f"{have / 2**30:.0f} GiB free; {advice}")


def check_memory(config: "StyleConfig", height: int, width: int, source: str = "source",
                 image: bool = False) -> None:
    """Refuse (one line, :class:`UserError`) a run whose resolved size would not fit in the free memory, once
    the content's or source's ``height`` x ``width`` is known and before any model is built: ``--size 0``
    (the source's own size; the keyframe engine's default) is checked at that size. ``source``: what the
    size is of, for the message ("source", "content image"); ``image``: a single image (the frame engine,
    whatever ``config.engine`` says)."""
    have = available_memory_bytes()
    if have is None or not height or not width:
        return
    need = memory_needed(config, height, width, image)
    if need <= have:
        return
    out_h, out_w = config.working_shape(height, width)
    if config.size == SOURCE_SIZE:
        size = f"--size 0 (the {source}'s own size, {out_w}x{out_h})"
    else:
        size = f"--size {config.size} ({out_w}x{out_h} for this {source})"
    traits = None if image else _engine_traits(config.engine)
    what = f"the {config.engine} engine at {size}" if traits is not None and traits.memory is not None else size
    _refuse_memory(what, need, have, _largest_size(config, height, width, have, image))


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
    if not any(name != "temporal" for name in config.active_losses()):  # temporal alone only copies the last frame
        raise UserError("every loss weight is 0: nothing to optimise")
    registry.get("optimizers", config.optimizer)
    registry.get("engines", config.engine)
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
    if config.warm_stop not in WARM_STOP_CHOICES:
        raise UserError(f"--warm-stop must be {' or '.join(WARM_STOP_CHOICES)}, got {config.warm_stop!r}")
    if not 0.0 <= config.residual_keep <= 1.0:
        raise UserError(f"--residual-keep must be between 0 and 1, got {config.residual_keep}")
    if config.occluded_init not in OCCLUDED_INIT_CHOICES:
        raise UserError(f"--occluded-init must be {' or '.join(OCCLUDED_INIT_CHOICES)}, got {config.occluded_init!r}")
    if config.coarse_to_fine is not None and not (0 <= config.coarse_to_fine < 1):
        raise UserError(f"--coarse-to-fine must be a fraction between 0 and 1 (0: off), got {config.coarse_to_fine!r}")
    if config.size != SOURCE_SIZE:  # 0: the source's resolution, with any engine (check_memory, once known)
        check_size(config.size, config)
    if config.keyframe_size is not None:
        check_size(config.keyframe_size)
    if not isinstance(config.keyframe_interval, int) or config.keyframe_interval < 1:
        raise UserError(f"--keyframe-interval must be a whole number >= 1, got {config.keyframe_interval!r}")
    if config.keyframes is not None and (not config.keyframes or any(k < 0 for k in config.keyframes)):
        raise UserError(f"--keyframes must list frame numbers, got {','.join(map(str, config.keyframes)) or 'nothing'}")


def resolve_options(config: StyleConfig, registry) -> StyleConfig:
    """``config`` with its plugin options checked against what the plugins declare and converted to their
    types: ``w2.eps=1e-5`` needs a loss, optimizer, backbone or engine named ``w2`` that declares ``eps``."""
    if not config.options:
        return config
    typed = {}
    for key, value in config.options.items():
        name, _, option = str(key).rpartition(".")
        entries = registry.find(name)
        if not entries:
            raise UserError(f"--option {key}: no loss, optimizer, backbone or engine is named {name!r}")
        declared = {o.key: o for entry in entries for o in entry.options}
        if option not in declared:
            valid = ", ".join(f"{name}.{k}" for k in sorted(declared)) or "it declares none"
            raise UserError(f"--option {key}: {name!r} has no option {option!r} (valid: {valid})")
        try:
            typed[key] = declared[option].convert(value)
        except (TypeError, ValueError) as exc:
            raise UserError(f"--option {key}={value!r}: {exc}") from None
    return replace(config, options=typed)


def check_size(size: int, config: "StyleConfig | None" = None) -> None:
    """At least MIN_SIZE, and a size x size content would fit in the free memory (a VGG pass at that size, or
    ``config``'s run: the keyframe engine's keyframes and frames). The content's own shape is checked later
    (:func:`check_memory`)."""
    if not isinstance(size, int) or size < MIN_SIZE:
        raise UserError(f"--size must be at least {MIN_SIZE} pixels, got {size!r}")
    have = available_memory_bytes()
    if have is None:
        return
    if config is None:
        need = estimated_bytes(size, size)
        largest = int(math.sqrt(have / estimated_bytes(1, 1)))
        if need > have:
            _refuse_memory(f"--size {size}", need, have, largest if largest >= MIN_SIZE else None)
        return
    config = replace(config, size=size)
    need = memory_needed(config, size, size)
    if need > have:
        traits = _engine_traits(config.engine)
        what = f"the {config.engine} engine at --size {size}" if traits is not None and traits.memory else f"--size {size}"
        _refuse_memory(what, need, have, _largest_size(config, size, size, have))


def with_overrides(config: StyleConfig, **changes) -> StyleConfig:
    return replace(config, **changes)
