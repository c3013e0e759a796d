"""The result strip: the image-sequence strip that shows a job's frames, carrying its plan (custom property
``nst``) and the summary of its last run (``nst_last_run``).

Created on the first channel above the source that is free over the plan's frames once the first frame
exists; refreshed as frames arrive; on a re-run its elements follow the new plan, it is aligned with the
source again and renamed after the new style; found by name or by output folder.
"""

import json
import os

import bpy

from . import strips as S
from .plan import LAST_RUN, PROP, Plan, PlanError


def abspath(path: str) -> str:
    """An absolute path for a path that may be relative to the .blend (``//...``)."""
    return os.path.abspath(bpy.path.abspath(path)) if path else ""


def find(scene, name):
    """The strip called ``name`` anywhere in the scene's sequencer (inside metastrips too), or None."""
    if not name or scene is None or scene.sequence_editor is None:
        return None
    for strip in S.all_strips(scene.sequence_editor):
        if strip.name == name:
            return strip
    return None


def find_by_output(scene, output: str):
    """The name of a result strip whose plan writes into the folder ``output``, or None."""
    if scene is None or scene.sequence_editor is None:
        return None
    wanted = abspath(output)
    for strip in S.all_strips(scene.sequence_editor):
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
    occupied = [(s.channel, s.frame_final_start, s.frame_final_end) for s in S.strips_of(editor)]
    channel = S.first_free_channel(occupied, plan.source_channel, lo, hi + 1)
    if channel is None:
        raise PlanError("no free channel above the source strip for the result")
    strip = S.new_image(editor, plan.strip_name, os.path.join(output, files[0]), channel, lo)
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
