"""The result strip: the image-sequence strip that shows a job's frames, carrying its plan (custom property
``nst``) and the summary of its last run (``nst_last_run``).

Created on the first channel above the source that is free over the plan's frames once the first frame
exists; refreshed as frames arrive; on a re-run its elements follow the new plan, it is aligned with the
source again and renamed after the new style; found by name or by output folder.
"""

import json
import os

import bpy

from . import compat
from . import strips as S
from .plan import LAST_RUN, PROP, Plan, PlanError


def abspath(path: str) -> str:
    """An absolute path for a path that may be relative to the .blend (``//...``)."""
    return os.path.abspath(bpy.path.abspath(path)) if path else ""


def find(scene, name):
    """The strip called ``name`` anywhere in the scene's sequencer (inside metastrips too), or None."""
    if not name or scene is None or scene.sequence_editor is None:
        return None
    for strip in compat.all_strips(scene.sequence_editor):
        if strip.name == name:
            return strip
    return None


def find_by_output(scene, output: str):
    """The name of a result strip whose plan writes into the folder ``output``, or None."""
    if scene is None or scene.sequence_editor is None:
        return None
    wanted = abspath(output)
    for strip in compat.all_strips(scene.sequence_editor):
        if strip.get(PROP):
            try:
                if abspath(json.loads(strip[PROP]).get("output", "")) == wanted:
                    return strip.name
            except (ValueError, AttributeError, TypeError):
                continue
    return None


def create(scene, plan: Plan):
    """The result strip of ``plan``, created on the first free channel above the source when at least one
    of its frames exists (else None)."""
    output = abspath(plan.output)
    files = plan.files
    if not any(os.path.isfile(os.path.join(output, f)) for f in files):
        return None
    editor = scene.sequence_editor_create()
    lo, hi = plan.timeline
    occupied = [(s.channel, s.frame_final_start, s.frame_final_end) for s in compat.strips_of(editor)]
    channel = S.first_free_channel(occupied, plan.source_channel, lo, hi + 1)
    if channel is None:
        raise PlanError("no free channel above the source strip for the result")
    strip = compat.new_image(editor, plan.strip_name, os.path.join(output, files[0]), channel, lo)
    for name in files[1:]:
        strip.elements.append(name)
    if bpy.data.filepath:
        try:
            strip.directory = bpy.path.relpath(output) + os.sep
        except ValueError:  # another drive on Windows
            pass
    store_plan(strip, plan)
    return strip


def update(strip, plan: Plan, move: bool) -> None:
    """Resume / re-run into an existing result strip: its elements follow the plan's frames; a re-run also
    aligns it with the source strip again (Resume leaves it where the editor put it) and renames it after
    the style."""
    files = plan.files
    if [e.filename for e in strip.elements] != files:
        while len(strip.elements) > 1:
            strip.elements.pop(len(strip.elements) - 1)
        strip.elements[0].filename = files[0]
        for name in files[1:]:
            strip.elements.append(name)
    if move:
        strip.frame_start = plan.timeline[0] - strip.frame_offset_start
    strip.name = plan.strip_name
    store_plan(strip, plan)


def placement(strip) -> dict:
    """A strip's placement on the preview (see strips.cover_placement)."""
    transform, crop = strip.transform, strip.crop
    return {"scale_x": transform.scale_x, "scale_y": transform.scale_y, "offset_x": transform.offset_x,
            "offset_y": transform.offset_y, "rotation": transform.rotation, "origin": tuple(transform.origin),
            "flip_x": strip.use_flip_x, "flip_y": strip.use_flip_y,
            "crop": (crop.min_x, crop.max_x, crop.min_y, crop.max_y)}


def source_size(strip, known=None):
    """(width, height) of a source strip's frames as Blender shows them (what it read of its first
    element), else ``known`` (the engine's, from its start event), else None."""
    size = S.frame_size(strip)
    if size is not None:
        return size
    return tuple(known) if known else None


def cover(scene, strip, plan: Plan, known_size=None) -> bool:
    """Size and place the result strip so that it covers its source strip at the source's resolution: the
    source's scale times source/result size, its offset, rotation, pivot, flips and crop. False when the
    source strip is gone or a size is unknown (the strip is left as it is)."""
    source = find(scene, plan.source_strip)
    size = source_size(source, known_size) if source is not None else None
    result = next((S.png_size(os.path.join(abspath(plan.output), name)) for name in plan.files
                   if os.path.isfile(os.path.join(abspath(plan.output), name))), None)
    if size is None or result is None:
        return False
    place = S.cover_placement(placement(source), size, result)
    transform, crop = strip.transform, strip.crop
    transform.scale_x, transform.scale_y = place["scale_x"], place["scale_y"]
    transform.offset_x, transform.offset_y = place["offset_x"], place["offset_y"]
    transform.rotation, transform.origin = place["rotation"], place["origin"]
    strip.use_flip_x, strip.use_flip_y = place["flip_x"], place["flip_y"]
    crop.min_x, crop.max_x, crop.min_y, crop.max_y = place["crop"]
    return True


def show_progress(strip, plan: Plan, suffix: str) -> str:
    """Name the strip after its style plus ``suffix`` (a running job's ``"42% 3m left"``; empty: the plain
    name again); returns the name Blender gave it."""
    name = f"{plan.strip_name} {suffix}" if suffix else plan.strip_name
    if strip.name != name:
        strip.name = name
    return strip.name


def store_plan(strip, plan: Plan) -> None:
    strip[PROP] = plan.to_json()


def store_last_run(strip, summary: dict) -> None:
    strip[LAST_RUN] = json.dumps(summary)


def last_run(strip) -> dict | None:
    try:
        value = json.loads(strip[LAST_RUN]) if strip.get(LAST_RUN) else None
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def refresh(strip) -> None:
    """Make Blender read the strip's files again (new frames arrived)."""
    try:
        strip.invalidate_cache("RAW")
    except (AttributeError, TypeError, RuntimeError):
        pass
