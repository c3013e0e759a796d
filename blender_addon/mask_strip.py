"""The mask picked in the panel (a Mask strip, a movie or an image strip) made into the engine's ``--mask``.

An image strip that shows one picture is sent as its file. Any other strip is rendered: a copy of the scene
that holds only that strip (unmuted, as it is placed, its opacity and blend included) renders the plan's
timeline frames through the sequencer (Standard view: white stays 1) into the add-on's private folder
(``masks/<run>/mask_NNNNNN.png``), one picture per frame of the run; the scene itself is not touched. The
engine matches them with the run's frames in order; a re-run renders again, and the engine re-makes only
the frames whose mask changed.
"""

import glob
import hashlib
import os
from dataclasses import replace

import bpy

from . import compat
from . import plan as P
from . import result_strip as R
from . import strips as S
from .preferences import private_folder

NAME = "mask_######.png"  # Blender's frame-number pattern; the engine reads it as a #### sequence
LONGEST = 2048  # a rendered mask's longer side at most (a mask is smooth: larger adds nothing)


def resolve(scene, plan: P.Plan) -> P.Plan:
    """The plan with its ``mask`` made from its ``mask_strip`` now (none: the plan as it is); PlanError when
    the strip is gone or cannot be the mask of the plan's frames."""
    if not plan.mask_strip:
        return plan
    editor = scene.sequence_editor
    strip = compat.strips_of(editor).get(plan.mask_strip) if editor is not None else None
    P.check_mask_strip(strip, plan.mask_strip, plan.timeline)
    still = P.still_mask(strip, R.abspath)
    if still is not None:
        return replace(plan, mask=still)
    source = compat.strips_of(editor).get(plan.source_strip)
    size = S.frame_size(source) if source is not None else None
    return replace(plan, mask=render(scene, strip, plan.timeline, size, folder_for(plan)))


def folder_for(plan: P.Plan) -> str:
    """The private folder of a run's rendered mask (one per output folder)."""
    key = hashlib.sha1(R.abspath(plan.output).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    folder = os.path.join(private_folder("masks"), key)
    os.makedirs(folder, exist_ok=True)
    return folder


def render_size(size, scene) -> tuple[int, int]:
    """(width, height) to render at: the source's frame size (the scene's output size when it is not known
    yet), its longer side at most :data:`LONGEST`."""
    if not size:
        percent = scene.render.resolution_percentage / 100
        size = (round(scene.render.resolution_x * percent), round(scene.render.resolution_y * percent))
    width, height = size
    scale = min(1.0, LONGEST / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(scene, strip, timeline: tuple[int, int], size, folder: str) -> str:
    """Render ``strip`` alone over ``timeline`` (first, last) into ``folder``; returns the engine's pattern."""
    for old in glob.glob(os.path.join(folder, "mask_*.png")):  # an earlier render's: never mixed in
        os.remove(old)
    copy = scene.copy()
    try:
        strips = compat.strips_of(copy.sequence_editor)
        for other in [s for s in strips if s.name != strip.name]:
            strips.remove(other)
        strips[strip.name].mute = False
        _output(copy, render_size(size, scene), timeline, os.path.join(folder, NAME))
        bpy.ops.render.render(animation=True, scene=copy.name)
    finally:
        bpy.data.scenes.remove(copy)
    made = glob.glob(os.path.join(folder, "mask_*.png"))
    if len(made) != timeline[1] - timeline[0] + 1:
        raise P.PlanError(f"the mask strip {strip.name!r} rendered {len(made)} of {timeline[1] - timeline[0] + 1} "
                          f"frames into {folder}")
    return os.path.join(folder, NAME)


def _output(copy, size: tuple[int, int], timeline: tuple[int, int], path: str) -> None:
    """The copy's render settings: the sequencer only, at ``size``, 8-bit RGB PNGs, no view transform."""
    render_settings = copy.render
    render_settings.resolution_x, render_settings.resolution_y = size
    render_settings.resolution_percentage = 100
    render_settings.use_sequencer, render_settings.use_compositing = True, False
    render_settings.image_settings.file_format = "PNG"
    render_settings.image_settings.color_mode = "RGB"
    render_settings.image_settings.color_depth = "8"
    render_settings.filepath = path
    copy.frame_start, copy.frame_end, copy.frame_step = timeline[0], timeline[1], 1
    view = copy.view_settings
    view.view_transform, view.look, view.exposure, view.gamma = "Standard", "None", 0.0, 1.0
