"""The plan of a style-transfer job: what to stylize, with which settings, into which folder. No bpy here.

A :class:`Plan` is built from a source strip and the panel's settings (:meth:`Plan.from_source_strip`),
stored on the result strip as JSON (custom property ``nst``, :meth:`Plan.to_json`) and read back from it
(:meth:`Plan.from_result_strip`) for Resume, Re-run and Load Settings. Strips are duck-typed (Blender's, or
stand-ins in tests); paths that may be relative to the .blend (``//...``) go through an ``abspath``
function that the caller passes (Blender's ``bpy.path.abspath``; plain ``os.path.abspath`` by default).

The stored JSON format, version 1 (the only one so far; written by every release of the add-on)::

    {"version": 1, "source_strip": "street", "source": "/clips/street.avi", "source_type": "MOVIE",
     "source_channel": 2, "style": "/art/starry_night.jpg", "settings": {...the panel's...},
     "timeline": [12, 14], "indices": [3, 4, 5], "output": "//nst/street_starry_night/",
     "frame_settings": {"3": {"strength": 0.2}, "4": {"strength": 0.35}, "5": {"strength": 0.5}}}

``frame_settings`` (only when a setting is keyframed) holds the animated settings' values per engine frame
index: the engine's ``frame_settings`` (nst_plugin.schedule), sent in the ``--settings`` file.
``mask_strip`` and ``mask`` (only with a mask): the strip picked as the mask in the panel, and the engine's
``--mask`` made of it (a still image strip's file, or the frames the add-on rendered of any other strip,
mask_strip.render), sent as the ``mask`` key of the ``--settings`` file.
``settings`` uses the panel's names (see props.NST_Settings.engine_settings); :func:`engine_settings` turns
them into the engine's setting names, the keys of an ``nst video --settings`` file. Its ``engine`` is the
engine's name as the listing gave it (none: the engine's default) and ``option`` the engine's plugin options
changed from their defaults (``["crossfade.every=2"]``), both kept as stored for Resume and Load Settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace

from . import engines
from . import strips as S

PROP = "nst"  # custom property on a result strip: the plan (JSON) that made it
LAST_RUN = "nst_last_run"  # custom property: summary of the last run into it (JSON)
VERSION = 1  # of the stored JSON format
# painted keyframes ["INDEX=PATH", ...] (painting.py): the setting of the engine option whose flag is
# --keyframe-image; they belong to the result strip, so a re-run with changes keeps them
PAINT_SETTING = "keyframe_image"


class PlanError(Exception):
    """A problem the user can fix; its text is the one-line report."""


def plain_abspath(path: str) -> str:
    return os.path.abspath(path) if path else ""


# -- the panel's settings in the engine's words ----------------------------------------------------------------

def engine_settings(settings: dict) -> dict:
    """The panel's settings as the engine's setting names (StyleConfig fields, ``<loss>_weight`` and
    ``loss: ["name=weight"]``): the content of the ``--settings`` file. Only what the panel sets; the
    preset supplies the rest. ``iterations`` (0 or missing: the preset's) caps cold and warm-started frames
    alike; a negative weight means "the preset's"."""
    out: dict = {}
    if settings.get("preset"):
        out["preset"] = str(settings["preset"])
    if settings.get("engine"):  # none: the engine's default
        out["engine"] = str(settings["engine"])
    if settings.get("size") is not None:  # 0: the source's own resolution
        out["size"] = int(settings["size"])
    for key in ("content_weight", "style_weight", "temporal_weight"):
        value = settings.get(key)
        if value is not None and value >= 0:
            out[key] = float(value)
    if settings.get("preserve_color"):
        out["preserve_color"] = True
    if settings.get("strength") is not None:
        out["strength"] = float(settings["strength"])
    losses = [f"{name}={float(weight)!r}" for name, weight in (settings.get("extra_losses") or {}).items()]
    if losses:
        out["loss"] = losses
    if settings.get("iterations"):
        out["iterations"] = out["warm_iterations"] = int(settings["iterations"])
    options = settings.get("option")
    if options:  # the engine's plugin options changed from their defaults: ["ENGINE.KEY=VALUE", ...]
        out["option"] = [str(text) for text in ([options] if isinstance(options, str) else options)]
    if settings.get(PAINT_SETTING):
        out[PAINT_SETTING] = [str(text) for text in settings[PAINT_SETTING]]
    return out


def frame_schedule(indices, animation: dict) -> dict:
    """The engine's per-frame settings (``{"3": {"strength": 0.2}, ...}``) from the animated settings'
    values at each timeline frame of a plan (``animation``: name -> one value per entry of ``indices``)."""
    schedule: dict = {}
    for name, values in animation.items():
        if len(values) != len(indices):
            raise ValueError(f"{name}: {len(values)} values for {len(indices)} frames")
        for index, value in zip(indices, values):
            schedule.setdefault(str(int(index)), {})[name] = float(value)
    return schedule


PREVIEW_SIZE = 192  # Preview Frame: longer side at most this many pixels
PREVIEW_ITERATIONS = 10  # and at most this many optimizer iterations


def preview_settings(settings: dict) -> dict:
    """The panel's settings (its names) made small and fast for Preview Frame: one frame stylized on its own
    by the engine's default engine, whatever engine the panel names (so the preview shows the look, not that
    engine's way of making a sequence), at most :data:`PREVIEW_SIZE` pixels and :data:`PREVIEW_ITERATIONS`
    iterations; the look (preset, strength, weights, colour, extra loss) as set."""
    out = dict(settings)
    # one frame is single-frame work, not a sequence engine's: no engine named (nor its options), the default's path
    out.pop("engine", None)
    out.pop("option", None)
    out["size"] = min(int(settings.get("size") or PREVIEW_SIZE), PREVIEW_SIZE)
    out["iterations"] = min(int(settings.get("iterations") or PREVIEW_ITERATIONS), PREVIEW_ITERATIONS)
    return out


# -- where the frames come from ----------------------------------------------------------------------------------

def _source_of(strip, abspath):
    """(engine source spec, timeline frame -> engine frame index) of a movie or image-sequence strip."""
    if strip.type == "MOVIE":
        path = abspath(strip.filepath)
        if not os.path.isfile(path):
            raise PlanError(f"the movie of strip {strip.name!r} is missing: {path}")
        start, offset = int(strip.frame_start), int(getattr(strip, "animation_offset_start", 0))
        return path, lambda frame: S.movie_index(frame, start, offset)
    folder = abspath(strip.directory)
    names = [element.filename for element in strip.elements]
    found = S.sequence_pattern(names)
    if found is None:
        raise PlanError(f"image strip {strip.name!r}: its files are not one numbered sequence (name_0001.png, ...)")
    pattern, numbers = found
    by_name = dict(zip(names, numbers))

    def index(frame):
        element = strip.strip_elem_from_frame(frame)
        if element is None or element.filename not in by_name:
            raise PlanError(f"image strip {strip.name!r} shows no file at frame {frame}")
        return by_name[element.filename]

    return os.path.join(folder, pattern), index


def frame_index(strip, frame: int, abspath=plain_abspath) -> int:
    """The engine's frame index of a movie or image-sequence strip at timeline ``frame``."""
    if not strip.frame_final_start <= frame < strip.frame_final_end:
        raise PlanError(f"the playhead (frame {frame}) is not over strip {strip.name!r} (frames "
                        f"{strip.frame_final_start}-{strip.frame_final_end - 1}): move it onto the strip")
    return _source_of(strip, abspath)[1](frame)


# -- the mask ----------------------------------------------------------------------------------------------------

MASK_TYPES = ("MASK", "MOVIE", "IMAGE")


def check_mask_strip(strip, name: str, timeline: tuple[int, int]) -> None:
    """PlanError unless ``strip`` (the panel's mask, found by ``name``; None: not there) can be the mask of
    the timeline frames ``timeline`` (first, last): a mask, movie or image strip that covers them."""
    if strip is None:
        raise PlanError(f"the mask strip {name!r} is not in the sequencer: pick another mask in the Style Transfer "
                        "panel, or none")
    if strip.type not in MASK_TYPES:
        raise PlanError(f"strip {name!r} ({strip.type.lower()}) cannot be a mask: pick a mask, movie or image strip")
    lo, hi = timeline
    if not (strip.frame_final_start <= lo and hi < strip.frame_final_end):
        raise PlanError(f"the mask strip {name!r} (frames {strip.frame_final_start}-{strip.frame_final_end - 1}) "
                        f"does not cover the frames to stylize ({lo}-{hi})")


def still_mask(strip, abspath=plain_abspath) -> str | None:
    """The file of an image strip that shows one picture (it holds for every frame), else None."""
    if strip.type != "IMAGE" or len(strip.elements) != 1:
        return None
    return abspath(os.path.join(strip.directory, strip.elements[0].filename))


# -- the plan ----------------------------------------------------------------------------------------------------

@dataclass
class Plan:
    source_strip: str
    source: str  # the engine's source: a movie file or an image sequence pattern (``shot_####.png``)
    source_type: str  # MOVIE | IMAGE
    source_channel: int
    style: str  # absolute path of the style image
    settings: dict  # the panel's settings (props.NST_Settings.engine_settings)
    timeline: tuple[int, int]  # first and last timeline frame (inclusive)
    indices: list[int] = field(default_factory=list)  # the engine's frame index at each timeline frame
    output: str = ""  # as the user gave it: may be relative to the .blend (``//nst/...``)
    version: int = VERSION
    frame_settings: dict = field(default_factory=dict)  # engine index (text) -> the animated settings' values
    mask_strip: str = ""  # the strip picked as the mask ("": none)
    mask: str = ""  # the engine's --mask made of it (mask_strip.resolve: at the start of each run)

    # -- building ------------------------------------------------------------------------------------------------

    @classmethod
    def from_source_strip(cls, strip, panel, abspath=plain_abspath, frame: int | None = None) -> Plan:
        """The job for the panel's settings (``scene.nst``, or anything with its attributes) on a source
        strip: its visible frames, or the panel's range clamped to them; with ``frame``, that one timeline
        frame (Preview Frame: the frame under the playhead, with the settings' values there). Settings
        keyframed on the timeline (the panel's ``animated()`` names, their values per timeline frame from
        ``animation(frames)``) go to the engine frame by frame (``frame_settings``), not as constants."""
        error = S.check_strip_type(strip.type)
        if error:
            raise PlanError(error)
        if not panel.style_image:
            raise PlanError("choose a style image in the Style Transfer panel")
        style = abspath(panel.style_image)
        if not os.path.isfile(style):
            raise PlanError(f"style image {style} does not exist")
        source, index_of = _source_of(strip, abspath)
        if frame is not None:
            frame_index(strip, frame, abspath)  # the playhead is over the strip
        try:
            first, last = (None, None) if panel.use_strip_range else (panel.frame_first, panel.frame_last)
            if frame is not None:
                first = last = frame
            lo, hi = S.timeline_range(strip.frame_final_start, strip.frame_final_end, first, last)
        except ValueError as exc:
            raise PlanError(str(exc)) from None
        indices = [index_of(frame) for frame in range(lo, hi + 1)]
        output = panel.output_dir or S.default_output_dir(strip.name, style)
        animated = list(panel.animated()) if frame is None and hasattr(panel, "animated") else []
        try:
            settings = dict(panel.engine_settings(leave_out=animated, strip_size=S.frame_size(strip)) if animated
                            else panel.engine_settings(strip_size=S.frame_size(strip)))
        except ValueError as exc:
            raise PlanError(str(exc)) from None
        refusal = engines.per_frame_refusal(settings.get("engine"), animated)  # its listing: frame_settings false
        if refusal:
            raise PlanError(refusal)
        schedule = frame_schedule(indices, panel.animation(range(lo, hi + 1))) if animated else {}
        mask_strip = str(getattr(panel, "mask_strip", "") or "") if frame is None else ""
        if mask_strip:
            check_mask_strip(panel.find_strip(mask_strip), mask_strip, (lo, hi))
        return cls(source_strip=strip.name, source=source, source_type=strip.type,
                   source_channel=int(strip.channel), style=style, settings=settings,
                   timeline=(lo, hi), indices=indices, output=output, frame_settings=schedule, mask_strip=mask_strip)

    @classmethod
    def from_result_strip(cls, strip) -> Plan:
        text = strip.get(PROP)
        if not text:
            raise PlanError(f"strip {strip.name!r} is not a style-transfer result: select one made by Stylize strip")
        try:
            return cls.from_json(text)
        except PlanError as exc:
            raise PlanError(f"strip {strip.name!r}: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes | dict) -> Plan:
        """A stored plan; PlanError("its style-transfer settings are damaged") when it cannot be read, and
        a clear message for a version this add-on does not know."""
        damaged = PlanError("its style-transfer settings are damaged")
        try:
            data = json.loads(text) if isinstance(text, (str, bytes, bytearray)) else dict(text)
        except (ValueError, TypeError):
            raise damaged from None
        if not isinstance(data, dict):
            raise damaged
        version = data.get("version", 1)  # early plans had no version: they are version 1
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise damaged
        if version > VERSION:
            raise PlanError(f"its style-transfer settings are format {version}, newer than this add-on reads "
                            f"({VERSION}): update the add-on")
        try:
            lo, hi = (int(v) for v in data["timeline"])
            indices = [int(i) for i in data["indices"]]
            settings = data.get("settings") or {}
            frame_settings = data.get("frame_settings") or {}
            mask_strip, mask = data.get("mask_strip") or "", data.get("mask") or ""
            if (not isinstance(settings, dict) or not isinstance(frame_settings, dict)
                    or not isinstance(data["source"], str) or not indices
                    or not isinstance(mask_strip, str) or not isinstance(mask, str)):
                raise TypeError
            return cls(source_strip=str(data.get("source_strip") or ""), source=data["source"],
                       source_type=str(data.get("source_type") or ""), source_channel=int(data.get("source_channel") or 0),
                       style=str(data.get("style") or ""), settings=settings, timeline=(lo, hi), indices=indices,
                       output=str(data.get("output") or ""), version=VERSION, frame_settings=frame_settings,
                       mask_strip=mask_strip, mask=mask)
        except (KeyError, TypeError, ValueError):
            raise damaged from None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["timeline"] = list(self.timeline)
        if not self.frame_settings:  # nothing keyframed: the format as it always was
            del data["frame_settings"]
        for key in ("mask_strip", "mask"):  # no mask: the format as it always was
            if not data[key]:
                del data[key]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    # -- derived -------------------------------------------------------------------------------------------------

    @property
    def frames(self) -> tuple[int, int]:
        """The engine's ``--frames`` range."""
        return min(self.indices), max(self.indices)

    @property
    def files(self) -> list[str]:
        """The frame files of the result strip, one per timeline frame."""
        return S.frame_files(self.indices)

    @property
    def strip_name(self) -> str:
        return S.result_strip_name(self.style)

    def engine_settings(self) -> dict:
        """The ``--settings`` file's content: the constant settings, and the animated ones per frame."""
        values = engine_settings(self.settings)
        if self.frame_settings:
            values["frame_settings"] = dict(self.frame_settings)
        if self.mask:
            values["mask"] = self.mask
        return values

    def same_run(self, other: Plan) -> bool:
        """Whether ``other`` makes the same frames as this plan but for keyframed values (``frame_settings``)
        and the mask: the same source, frames, style, settings and folder."""
        return (self.source, self.indices, self.style, self.settings, self.output) == (
            other.source, other.indices, other.style, other.settings, other.output)

    def rerun(self, settings: dict, style: str, source_plan: Plan | None = None) -> Plan:
        """Re-run with changes: the panel's settings (and, when the source strip still exists, its frames
        as they are now: ``source_plan``) into this plan's output folder."""
        painted = {PAINT_SETTING: self.settings[PAINT_SETTING]} if self.settings.get(PAINT_SETTING) else {}
        if source_plan is not None:
            return replace(source_plan, output=self.output, settings={**source_plan.settings, **painted})
        return replace(self, settings={**settings, **painted}, style=style, frame_settings={})
