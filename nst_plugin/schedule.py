"""Animated settings: per-frame values of the strength and of the style and temporal weights (a Blender
F-curve, or any script's), applied frame by frame by a sequence engine. No TensorFlow import here.

A :class:`FrameSchedule` maps a source frame number (the output's ``frame_NNNNNN.png`` number) to the values
that frame takes instead of the run's constant settings. ``nst video --frame-settings FILE`` (or the key
``frame_settings`` of a ``--settings`` file) gives it as JSON::

    {"12": {"strength": 0.3}, "13": {"strength": 0.45, "temporal_weight": 0.8}}

The run's settings hash (the output folder's) leaves the schedule out; each frame's manifest record holds
the values it was made with and its key (:meth:`FrameSchedule.key`: the frame's loss weights where they are
not the run's), so a run with a changed schedule re-makes exactly the frames whose values changed.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Mapping

from .errors import UserError, suggest

FRAME_SETTING_KEYS = ("strength", "style_weight", "temporal_weight")
_WEIGHT_OF = {"style_weight": "style", "temporal_weight": "temporal"}


@dataclass(frozen=True)
class FrameSchedule:
    """Per-frame values (``FRAME_SETTING_KEYS``) by source frame number; frames not listed take the run's."""

    values: Mapping[int, Mapping[str, float]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.values)

    def config_at(self, config, index: int):
        """The config of frame ``index``: the weights a constant run with that frame's values would have
        (``strength`` moves the preset's style weight exactly as :func:`~nst_plugin.config.make_config`
        does; ``style_weight`` and ``temporal_weight`` replace those weights)."""
        from .config import PRESETS, strength_style_weight

        values = self.values.get(index)
        if not values:
            return config
        weights = dict(config.loss_weights)
        strength = config.strength
        if "strength" in values:
            strength = values["strength"]
            weights["style"] = strength_style_weight(PRESETS[config.preset]["loss_weights"].get("style", 0.0), strength)
        for key, loss in _WEIGHT_OF.items():
            if key in values:
                weights[loss] = values[key]
        return replace(config, strength=strength, loss_weights=weights)

    def key(self, config, index: int) -> str | None:
        """What the schedule changes in frame ``index``: its loss weights where they differ from the run's,
        else None (a finished frame is made again when its recorded key is not this one)."""
        weights = self.config_at(config, index).loss_weights
        if weights == config.loss_weights:
            return None
        return "weights " + json.dumps(weights, sort_keys=True)

    def record(self, config, index: int) -> dict | None:
        """The values frame ``index`` is made with, for its manifest record (None: the run's own)."""
        if index not in self.values:
            return None
        frame = self.config_at(config, index)
        strength = frame.strength if frame.strength is not None else 0.5
        return {"strength": strength, "style_weight": frame.loss_weights.get("style", 0.0),
                "temporal_weight": frame.loss_weights.get("temporal", 0.0)}

    def ignored(self, source) -> str | None:
        """A warning naming the frames the schedule gives values to that ``source`` (a
        :class:`~nst_plugin.video.FrameSource`: its selected frames) does not make, which it ignores; None when
        there are none or the frames are not known (a camera)."""
        from .video.sources import ranges_text

        frames = source.indices
        if not frames or not self.values:
            return None
        outside = sorted(set(self.values) - set(frames))
        if not outside:
            return None
        whole = source.first is None and source.last is None and source.step == 1
        span = f"{frames[0]}-{frames[-1]}" if len(frames) > 1 else str(frames[0])
        among = f"the clip's frames {span}" if whole else f"this run's frames {span}" + (
            f" (--step {source.step})" if source.step > 1 else "")
        many = len(outside) > 1
        return (f"frame-settings frame{'s' * many} {ranges_text(outside)} {'are' if many else 'is'} "
                f"{'not among' if source.step > 1 else 'outside'} {among}: ignored")


NO_SCHEDULE = FrameSchedule()


def parse_frame_schedule(data, what: str = "frame settings") -> FrameSchedule:
    """A schedule from its JSON form (frame number -> values), with a one-line :class:`UserError` for a
    frame that is not a number, an unknown setting, or a value out of range."""
    if not isinstance(data, dict):
        raise UserError(f"{what} must be a JSON object of frame numbers and their settings, e.g. "
                        '{"12": {"strength": 0.3}}')
    values: dict[int, dict[str, float]] = {}
    for frame, settings in data.items():
        try:
            index = int(str(frame))
        except ValueError:
            index = -1
        if index < 0:
            raise UserError(f"{what}: {frame!r} is not a frame number")
        if not isinstance(settings, dict):
            raise UserError(f"{what}, frame {index}: expected an object such as {{\"strength\": 0.3}}, got {settings!r}")
        frame_values = {}
        for key, value in settings.items():
            if key not in FRAME_SETTING_KEYS:
                raise UserError(f"{what}, frame {index}: {key!r} cannot be animated ({suggest(key, FRAME_SETTING_KEYS)})")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise UserError(f"{what}, frame {index}: {key} must be a number, got {value!r}")
            if key == "strength" and not 0 <= value <= 1:
                raise UserError(f"{what}, frame {index}: strength must be from 0 (barely styled) to 1 (all style), got {value!r}")
            if value < 0:
                raise UserError(f"{what}, frame {index}: {key} must be >= 0, got {value!r}")
            frame_values[key] = float(value)
        if "strength" in frame_values and "style_weight" in frame_values:
            raise UserError(f"{what}, frame {index}: strength and style_weight both set the style weight: animate one of them")
        if frame_values:
            values[index] = frame_values
    return FrameSchedule(values)


def load_frame_schedule(settings: dict, path=None) -> FrameSchedule:
    """The schedule of a run: the file ``path`` (``--frame-settings``), else the ``frame_settings`` key of
    its flat settings (a ``--settings`` file's; the key is taken out of ``settings``). An animated strength
    while the content or style weight is given is refused: a constant run ignores the strength then."""
    from .settings import load_settings_file, overrides_from_settings

    data = settings.pop("frame_settings", None)
    what = "settings: frame_settings"
    if path is not None:
        data, what = load_settings_file(path), f"frame settings file {str(path)!r}"
    if data is None:
        return NO_SCHEDULE
    schedule = parse_frame_schedule(data, what)
    animated = {key for values in schedule.values.values() for key in values}
    given = set(overrides_from_settings(settings)[1].get("loss_weights") or {})
    if "strength" in animated and {"content", "style"} & given:
        raise UserError(f"{what}: the strength is animated but the content or style weight is set, which overrides "
                        "the strength: animate style_weight instead, or leave the weights to the preset")
    return schedule


def check_engine(schedule: FrameSchedule, engine: str, registry=None) -> None:
    """Refuse a schedule for an engine that does not apply one frame by frame (its ``frame_settings`` trait)."""
    if not schedule:
        return
    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    if not registry.traits(engine).frame_settings:
        takers = sorted(name for name, entry in registry.engines.items() if entry.traits and entry.traits.frame_settings)
        which = f"the {' and '.join(takers)} engine{'s' if len(takers) > 1 else ''}" if takers else "no installed engine"
        raise UserError(f"per-frame settings (--frame-settings) work with {which}; the {engine} engine does not take "
                        "them: give it constant settings")
