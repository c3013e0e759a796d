"""The Python API: numpy in, numpy out. ``import nst_plugin; nst_plugin.stylize_frame(content, style)``."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable, Iterable

import numpy as np

from .config import SOURCE_SIZE, StyleConfig, make_config
from .errors import UserError
from .images import load_image, to_rgb8
from .plugins import get_host, get_registry
from .result import FrameResult, SequenceResult
from .settings import overrides_from_settings
from .validation import INIT_CHOICES, resolve_options, validate


def _as_image(value, what: str) -> np.ndarray:
    if isinstance(value, (str, os.PathLike)):
        return load_image(value, what)
    array = np.asarray(value)
    if array.size == 0:
        raise UserError(f"{what} is empty")
    return to_rgb8(array)


def normalize_styles(style, required: bool = True) -> list[tuple[np.ndarray, float]]:
    """One style (array or path), or a list of them, or a list of ``(style, blend weight)`` pairs (an empty
    list only when not ``required``)."""
    if style is None and not required:
        style = []
    if isinstance(style, (str, os.PathLike)) or (isinstance(style, np.ndarray) and style.ndim >= 2):
        style = [style]
    styles = []
    for item in style:
        if isinstance(item, tuple) and len(item) == 2 and np.isscalar(item[1]):
            styles.append((_as_image(item[0], "style image"), float(item[1])))
        else:
            styles.append((_as_image(item, "style image"), 1.0))
    if not styles and required:
        raise UserError("at least one style image is needed (--style)")
    return styles


def prepare(styles, preset: str = "default", config: StyleConfig | None = None, **settings):
    """(config, styles, registry) validated for a run. ``settings``: the settings vocabulary of
    :func:`~nst_plugin.settings.overrides_from_settings` (StyleConfig fields, ``<loss>_weight``, ...)."""
    styles = normalize_styles(styles, required=False)
    registry = get_registry()
    if config is None:
        _, settings = overrides_from_settings({k: v for k, v in settings.items() if v is not None}, "settings")
        if settings.get("style_blend") is None and any(w != 1.0 for _, w in styles):
            settings["style_blend"] = tuple(w for _, w in styles)
        config = make_config(preset, **settings)
        if settings.get("size") is None and registry.traits(config.engine).output_size == "source":
            config = replace(config, size=SOURCE_SIZE)  # the engine's own default: the source's resolution
    config = resolve_options(config, registry)
    if not styles:  # an engine may take its look from elsewhere (style_optional), after the options are typed
        optional = registry.traits(config.engine).style_optional
        if optional is None or not optional(config):
            raise UserError("at least one style image is needed (--style)")
    validate(config, registry, n_styles=len(styles))
    if config.init not in INIT_CHOICES:  # an --init image must decode now, not after the output was made
        load_image(config.init, "--init image")
    return config, styles, registry


def stylize_frame(content, style, *, preset: str = "default", config: StyleConfig | None = None,
                  on_event: Callable[[object], None] | None = None, style_masks=None, mask=None,
                  **settings) -> FrameResult:
    """Stylize one image. ``content``: RGB array (or path); ``style``: see :func:`normalize_styles`;
    ``settings``: any :class:`~nst_plugin.config.StyleConfig` field, overriding the preset; ``on_event``
    receives :class:`~nst_plugin.events.FrameProgress` events while it runs. ``style_masks``: one entry per
    style, a mask (path, or (H, W) array: uint8 0..255 or float 0..1, the content's aspect ratio) or ``None``,
    each style matched over its region; a style without a mask gets what no mask covers
    (:mod:`nst_plugin.style_masks`). ``mask``: where the result shows the styled picture (path or array,
    white: styled, black: the content; :func:`nst_plugin.masks.image_mask`).
    Returns a :class:`~nst_plugin.result.FrameResult` (``.image`` uint8 RGB, ``.stats``)."""
    from .context import FrameControls
    from .masks import image_mask, masked_result
    from .style_masks import from_user

    config, styles, _ = prepare(style, preset, config, **settings)
    config = config.for_image()
    content = _as_image(content, "content image")
    masks = from_user(style_masks, len(styles), content.shape[:2])
    plane = image_mask(mask, content.shape[:2]) if mask is not None else None  # a bad mask: before any work
    host = get_host()
    result = host.stylize_frame(content, styles, config,
                                host.run_context(on_event, controls=FrameControls(style_masks=masks)))
    return masked_result(result, content, plane)


def stylize_sequence(frames: Iterable[tuple[int, np.ndarray]], style, sink: Callable[[int, FrameResult], None], *,
                     preset: str = "default", config: StyleConfig | None = None,
                     on_event: Callable[[object], None] | None = None, style_masks=None, mask=None,
                     **settings) -> SequenceResult:
    """Stylize ``(index, rgb)`` frames in order; ``sink(index, result)`` gets each finished frame. The same
    frames as ``nst video`` for the same settings (the preset owns every default, the temporal weight too).
    ``style_masks``: as in :func:`stylize_frame`, one still mask per style for every frame (an engine with the
    ``style_masks`` trait). ``mask``: as in :func:`stylize_frame`, one still mask for every frame (path or
    array with the frames' aspect ratio): each result is ``mask * styled + (1 - mask) * frame``."""
    from .context import FrameControls
    from .style_masks import check_frames, check_sequence_engine, from_user, load_mask

    config, styles, _ = prepare(style, preset, config, **settings)
    masks = from_user(style_masks, len(styles), None)
    if masks is not None:
        check_sequence_engine(config.engine)
        frames = check_frames(frames, masks)
    if mask is not None:  # a bad mask: before any work (its aspect ratio: against the first frame)
        masked = _Masked(frames, load_mask(mask, "mask"), sink)
        one_pass = iter(frames) is frames  # (an engine reads a list more than once, a generator once)
        frames, sink = iter(masked) if one_pass else masked, masked.sink
    host = get_host()
    context = host.run_context(on_event, controls=FrameControls(style_masks=masks))
    return host.stylize_sequence(frames, styles, config, context, sink)


class _Masked:
    """The frames of a masked :func:`stylize_sequence` (read as often as the given ones can be): each frame is
    kept (a reference) until its result comes, and the result composited over it
    (:func:`nst_plugin.masks.masked_result`) before the caller's ``sink`` gets it."""

    def __init__(self, frames, plane, sink):
        self.frames, self.plane, self.given, self.seen = frames, plane, sink, {}

    def __iter__(self):
        from .style_masks import check_aspect

        for number, (index, frame) in enumerate(self.frames):
            if number == 0:
                check_aspect(self.plane.shape, np.shape(frame)[:2], "mask")
            self.seen[index] = frame
            yield index, frame

    def sink(self, index, result) -> None:
        from .masks import masked_result

        self.given(index, masked_result(result, np.asarray(self.seen.pop(index)), self.plane))
