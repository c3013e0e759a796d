"""Checking a :class:`~nst_plugin.config.StyleConfig` before any work: every setting against the installed
plugins (:func:`validate`, :func:`resolve_options`), the size and the free memory (:func:`check_size`,
:func:`check_memory`, from a rough VGG16 estimate or the engine's own ``memory`` trait). Every refusal is one
:class:`~nst_plugin.errors.UserError` line. No TensorFlow import here."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

from .config import SOURCE_SIZE, StyleConfig
from .errors import UserError, suggest

MIN_SIZE = 32  # the longer side; five poolings still leave a map at block5
INIT_CHOICES = ("noise", "content")
POOLING_CHOICES = ("max", "avg")
NORMALIZATION_CHOICES = ("mean", "article", "relative")
OCCLUDED_INIT_CHOICES = ("warped", "background", "content", "residual")
WARM_STOP_CHOICES = ("anchored", "previous")


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
    _validate_optimisation(config, n_styles)
    if config.size != SOURCE_SIZE:  # 0: the source's resolution, with any engine (check_memory, once known)
        check_size(config.size, config)


def _validate_optimisation(config: StyleConfig, n_styles: int) -> None:
    """The optimiser's and the video chain's numbers and choices."""
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


def resolve_options(config: StyleConfig, registry) -> StyleConfig:
    """``config`` with its plugin options checked against what the plugins declare and converted to their
    types: ``w2.eps=1e-5`` needs a loss, optimizer, backbone or engine named ``w2`` that declares ``eps``."""
    per_frame = registry.per_frame_options()
    if not config.options:
        return replace(config, per_frame_options=per_frame)
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
            declaration = declared[option]
            if declaration.repeat:  # the failing item is in the message
                given = declaration.flag or f"--option {key}"
            else:
                given = f"{declaration.flag} {value!r}" if declaration.flag else f"--option {key}={value!r}"
            raise UserError(f"{given}: {exc}") from None
    return replace(config, options=typed, per_frame_options=per_frame)


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
