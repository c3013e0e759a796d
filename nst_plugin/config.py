"""What a run is asked to do: :class:`StyleConfig` (its fields are the settings vocabulary), the presets and
:func:`make_config`, the one place where the defaults (the policy) live. The measurements behind the presets
are in docs/design/presets.md; the vocabulary's parsing is in :mod:`nst_plugin.settings`, the checks before a
run in :mod:`nst_plugin.validation`. No TensorFlow import here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

from .errors import UserError, suggest

VGG_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

MIN_SIDE = 16  # the shorter side: block5_conv1 still sees a 1-pixel-wide map
SOURCE_SIZE = 0  # size 0: the source's own resolution (the default of an engine whose output_size is "source")
# strength 0..1 moves the style weight over 10**STRENGTH_DECADES, on a log scale, around the preset's balance
# (strength 0.5); see make_config
STRENGTH_DECADES = 3.0


# The panels of ``nst image/video/webcam/grid --help``, in the order they are shown: the common ones first,
# the advanced ones last (a panel a command has no option in is not shown).
PANEL_IO = "Input and output"
PANEL_LOOK = "Look"
PANEL_ENGINE = "Engine and plugins"
PANEL_COHERENCE = "Video coherence"
PANEL_SCALE_OUT = "Scale-out"
PANEL_MODEL = "Model and losses (advanced)"
PANEL_OPTIMISATION = "Optimisation (advanced)"
HELP_PANELS = (PANEL_IO, PANEL_LOOK, PANEL_ENGINE, PANEL_COHERENCE, PANEL_SCALE_OUT, PANEL_MODEL, PANEL_OPTIMISATION)


def setting(default, help: str, *, flags: tuple[str, ...] = (), video: bool = False, factory=None,
            panel: str | None = None):
    """A :class:`StyleConfig` field that is also a user setting: its ``help`` is the CLI option's help,
    ``flags`` its option names when they are not ``--field-name``, ``video`` marks the settings a single
    image ignores, ``panel`` the ``--help`` panel the option is listed in (one of :data:`HELP_PANELS`; by
    default "Video coherence" for a video setting, "Optimisation (advanced)" for another). The CLI,
    ``--settings FILE`` and the Blender add-on all use these field names."""
    if panel is None:
        panel = PANEL_COHERENCE if video else PANEL_OPTIMISATION
    if panel not in HELP_PANELS:
        raise ValueError(f"unknown help panel {panel!r}: one of {', '.join(HELP_PANELS)}")
    metadata = {"help": help, "flags": flags, "video": video, "panel": panel}
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

    preset: str = setting("default", "default (quality per second) or seed (the article's exact method).", panel=PANEL_LOOK)
    backbone: str = setting("vgg16", "Backbone plugin name (see nst plugins).", panel=PANEL_MODEL)
    weights: str = setting("auto", "Backbone weights: auto, imagenet, hed, or a weights file.", panel=PANEL_MODEL)
    pooling: str = setting("max", "max or avg (the article uses avg).", panel=PANEL_MODEL)
    size: int = setting(384, "Longer side of the result in pixels (default preset: 384; seed: 224); 0: the source's "
                             "own resolution (the keyframe engine's default).", panel=PANEL_LOOK)  # working image
    square: bool = setting(False, "Squash to size x size, as the article.", flags=("--square/--keep-aspect",), panel=PANEL_LOOK)
    content_layer: str = setting("block4_conv2", "Layer of the content loss (when --content-layers is empty).", panel=PANEL_MODEL)
    # several content layers with their weights; empty: content_layer alone (weight 1)
    content_layers: tuple[str, ...] = setting((), "Comma-separated layers of the content loss (default preset: "
                                              "block3_conv2,block4_conv2).", panel=PANEL_MODEL)
    content_layer_weights: tuple[float, ...] = setting((), "Comma-separated weights, one per content layer.", panel=PANEL_MODEL)
    style_layers: tuple[str, ...] = setting(VGG_STYLE_LAYERS, "Comma-separated layers of the style loss.", panel=PANEL_MODEL)
    style_layer_weights: tuple[float, ...] = setting((1.0, 1.0, 1.0, 1.0, 1.0), "Comma-separated weights, one per style layer.", panel=PANEL_MODEL)
    # "mean": mean squared errors, Gram / positions. "article": sums of squares, Gram / (positions * channels).
    # "relative": every layer's mean squared error divided by the mean square of its target (content features,
    # style Gram), so the content/style balance is a pure ratio, whatever the backbone's activation scale.
    loss_normalization: str = setting("mean", "relative (default preset), mean, or article (sums, as the article).", panel=PANEL_MODEL)
    # 0 (barely styled) .. 1 (all style): scales the style weight by 10**(STRENGTH_DECADES * (strength - 0.5))
    # in make_config; None or 0.5: the preset's balance. Ignored when content or style weight is given.
    strength: float | None = setting(None, "0 (barely styled) .. 1 (all style); the preset's balance is 0.5. "
                                     "--content-weight or --style-weight overrides it.", panel=PANEL_LOOK)
    loss_weights: dict[str, float] = setting(None, "Weights of the loss terms, by name.", factory=lambda: {"content": 1.0, "style": 1.0, "tv": 0.0}, panel=PANEL_MODEL)
    optimizer: str = setting("lbfgs", "lbfgs, adam, or a plugin's optimizer.")
    rounds: int = setting(1, "Optimizer restarts (the article: 30).")
    iterations: int = setting(100, "Optimizer iterations per round.")  # L-BFGS iterations or Adam steps
    max_evaluations: int | None = setting(None, "Loss evaluations per round (the article's maxfun).", flags=("--max-evaluations", "--max-evals"))
    tolerance: float = setting(0.0, "Stop when the relative loss change per iteration falls below this (0: never).")
    tolerance_window: int = setting(1, "Measure the tolerance's loss change over this many iterations (cold frames).")
    learning_rate: float = setting(4.0, "Adam step size in pixel units (0..255).")
    init: str = setting("content", "Start image: noise, content or an image path.")
    seed: int | None = setting(None, "Random seed: makes a run reproducible.")
    preserve_color: bool = setting(False, "Transfer luminance only; keep the content's colours.", flags=("--preserve-color/--no-preserve-color",), panel=PANEL_LOOK)
    style_blend: tuple[float, ...] | None = setting(None, "Blend weights of the styles, e.g. 0.7,0.3.", panel=PANEL_LOOK)
    style_scale: float = setting(1.0, "Size of the style image relative to --size.", panel=PANEL_LOOK)
    options: dict[str, object] = setting(None, "Plugin options NAME.KEY=VALUE (see nst plugins).", factory=dict, panel=PANEL_ENGINE)
    # video (nst_stylize_sequence); a single image ignores these
    engine: str = setting("lbfgs", "Sequence engine: lbfgs (frame by frame, Gatys et al. + Ruder et al.) or keyframes "
                          "(a few keyframes stylized, a small network learns them; every frame through it) or a "
                          "plugin's.", video=True, panel=PANEL_ENGINE)
    warm_start: bool = setting(True, "Start each frame from the previous stylized frame warped by optical flow "
                               "(default preset: on; seed: off).", flags=("--warm-start/--cold-start",), video=True)
    warm_iterations: int = setting(40, "Iteration cap of a warm-started frame.", video=True)
    warm_tolerance: float | None = setting(None, "Relative loss change that ends a warm-started frame (default: --tolerance).", video=True)
    warm_stop: str = setting("anchored", "When a warm frame may stop early: anchored (once as good as the shot's cold "
                             "frame, content included) or previous (once its loss is the previous frame's).", video=True)
    # warm start where the flow check fails: "background" warps the previous frame by the dominant (median)
    # motion there, "warped" by the flow anyway (Ruder et al.), "content" starts from the content frame.
    # background: keeps moving people sharpest at the same cost (docs/design/presets.md#warm-frames).
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

    # the options whose effect their plugin records per frame (Registry.per_frame_options), set when the
    # options are checked against the plugins; not a setting, not part of any fingerprint
    per_frame_options: tuple[str, ...] = ()

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

    def fingerprint(self, leave_out: tuple[str, ...] = (), leave_out_options: tuple[str, ...] = ()) -> str:
        """A short hash of the settings (without the fields named in ``leave_out`` and the plugin options named
        in ``leave_out_options``), stable across runs."""
        data = {k: v for k, v in self.to_dict().items() if k not in leave_out and k != "per_frame_options"}
        if leave_out_options and "options" in data:
            data["options"] = {k: v for k, v in self.options.items() if k not in leave_out_options}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def output_fingerprint(self) -> str:
        """The hash an output folder resumes on: the settings without the options whose effect an engine
        records per frame (``per_frame_options``: the keyframe engine keys every frame by its shot's
        keyframes), so choosing another keyframe re-makes only the frames it changes."""
        return self.fingerprint(leave_out_options=self.per_frame_options)

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


# Every default of a run. One line of why stays next to a value; the measurements and history behind the
# values are in docs/design/presets.md.
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
    # Keeps the subject at a fraction of the seed's time (docs/design/presets.md#cold-frames).
    "default": dict(
        pooling="max",
        size=384,
        square=False,
        content_layer="block4_conv2",
        content_layers=("block3_conv2", "block4_conv2"),  # block4 alone let the style wipe out people and faces
        content_layer_weights=(1.0, 1.0),
        style_layers=VGG_STYLE_LAYERS,
        style_layer_weights=(1.0, 1.0, 1.0, 1.0, 1.0),
        loss_normalization="relative",  # content:style is a pure ratio, on any backbone weights
        # x1000: relative terms are O(1) and SciPy's gradient tolerance would stop L-BFGS after a few iterations;
        # temporal 0.5 (toward the warped previous output): the same cost, a lower E_warp; not on a single image
        loss_weights={"content": 1000.0, "style": 6000.0, "tv": 0.0, "temporal": 0.5},
        optimizer="lbfgs",
        rounds=1,
        iterations=40,  # per coarse-to-fine stage, at the latest
        max_evaluations=None,
        tolerance=0.05,  # stop when the loss falls by less than 5 % ...
        tolerance_window=5,  # ... over 5 iterations
        warm_tolerance=1e-3,  # warm video frames keep their rule: 1e-3 per iteration, at most warm_iterations
        coarse_to_fine=0.5,  # cold frames from half size first
        init="content",
        # video (docs/design/presets.md#warm-frames): a warm frame starts from the current frame plus the
        # previous frame's stylization residual moved by the flow: walking people do not fade over a shot
        occluded_init="residual",
        residual_keep=0.9,  # all of it (1.0) let a turning face lose a fifth of its edges over 40 frames
        warm_stop="anchored",  # stop once as good as the shot's cold frame, content included
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


def with_overrides(config: StyleConfig, **changes) -> StyleConfig:
    return replace(config, **changes)
