"""The Blender side of painted keyframes (painting.py has the rest): the frame under the playhead as a PNG
to paint, opened in an Image Editor (or the painter the preferences name), and saved before the engine reads
it."""

from __future__ import annotations

import os
import subprocess
import tempfile

import bpy

from . import compat, painting
from . import result_strip as R
from . import strips as S
from .plan import PROP, Plan, PlanError, frame_index


def _active(context):
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor is not None else None
    if strip is None:
        raise PlanError("no active strip: click a result strip or a movie or image-sequence strip first")
    return strip


def painted_folder() -> str:
    if not bpy.data.filepath:
        raise PlanError(f"save the .blend first: paintings are kept next to it ({painting.PAINTED_DIR}/)")
    return R.abspath(painting.PAINTED_DIR)


def edit_keyframe(context, painter: str = "") -> tuple[str, bool]:
    """Start (or reopen) the painting of the frame under the playhead of the active strip: a result strip's
    keyframe or frame, or a source strip's own frame. Returns (its path, whether it was made now)."""
    scene, strip = context.scene, _active(context)
    frame = scene.frame_current
    if strip.get(PROP):
        plan = Plan.from_result_strip(strip)
        index = painting.index_at(plan, frame)
        picture = painting.engine_picture(R.abspath(plan.output), index)
        if picture is None:
            raise PlanError(f"frame {index} of this result is not made yet: Resume it first")
        target = painting.painting_path(painted_folder(), plan.source_strip, index)
        created = painting.start_painting(picture, target)
    else:
        error = S.check_strip_type(strip.type)
        if error:
            raise PlanError(error)
        index = frame_index(strip, frame, R.abspath)
        target = painting.painting_path(painted_folder(), strip.name, index)
        created = False
        if not os.path.exists(target):
            with tempfile.TemporaryDirectory(prefix="nst-frame-") as folder:
                picture = os.path.join(folder, "frame.png")
                render_strip_frame(scene, strip, frame, picture)
                created = painting.start_painting(picture, target)
    open_painting(context, target, painter)
    return target, created


def render_strip_frame(scene, strip, frame: int, path: str) -> None:
    """Blender's own render of ``strip`` alone at timeline ``frame``, at the strip's size, to a PNG; the
    scene's frame, render settings and the other strips' mute flags are as they were afterwards."""
    size = S.frame_size(strip)
    render, image = scene.render, scene.render.image_settings
    kept = {"frame": scene.frame_current, "x": render.resolution_x, "y": render.resolution_y,
            "percentage": render.resolution_percentage, "filepath": render.filepath, "format": image.file_format,
            "mode": image.color_mode, "view": scene.view_settings.view_transform, "look": scene.view_settings.look}
    muted = {other: other.mute for other in compat.all_strips(scene.sequence_editor)}
    try:
        for other in muted:
            other.mute = other != strip
        scene.frame_set(frame)
        if size is not None:
            render.resolution_x, render.resolution_y = size
        render.resolution_percentage = 100
        render.filepath, image.file_format, image.color_mode = path, "PNG", "RGB"
        scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"  # the frame's own colours
        bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        for other, mute in muted.items():
            other.mute = mute
        scene.frame_set(kept["frame"])
        render.resolution_x, render.resolution_y = kept["x"], kept["y"]
        render.resolution_percentage, render.filepath = kept["percentage"], kept["filepath"]
        image.file_format, image.color_mode = kept["format"], kept["mode"]
        scene.view_settings.view_transform, scene.view_settings.look = kept["view"], kept["look"]
    if not os.path.isfile(path):
        raise PlanError(f"Blender could not render frame {frame} of strip {strip.name!r}")


def open_painting(context, path: str, painter: str = ""):
    """The painting as a Blender image, shown in every Image Editor of the window (and opened in
    ``painter``, a program the preferences name, when given)."""
    image = bpy.data.images.load(path, check_existing=True)
    image.reload()  # what is on disk now (a painter may have changed it)
    screen = getattr(context, "screen", None)
    for area in (screen.areas if screen is not None else ()):
        if area.type == "IMAGE_EDITOR":
            area.spaces.active.image = image
    if painter:
        try:
            subprocess.Popen([painter, path], start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise PlanError(f"cannot start the painter {painter!r} ({exc.strerror or exc}): check the add-on's "
                            "preferences") from None
    return image


def save_if_painted(path: str) -> None:
    """A Blender image of ``path`` with unsaved strokes is saved, so the engine reads what was painted."""
    real = os.path.realpath(path)
    for image in bpy.data.images:
        if image.filepath and os.path.realpath(bpy.path.abspath(image.filepath)) == real and image.is_dirty:
            image.save()


def use_painted_keyframe(context, path: str = "") -> Plan:
    """The active result strip's plan with ``path`` (default: the painting Edit Keyframe made for the frame
    under the playhead) as the keyframe of that frame, stored on the strip; the caller resumes the strip."""
    scene, strip = context.scene, _active(context)
    plan = Plan.from_result_strip(strip)  # one line for a source strip: stylize it first
    index = painting.index_at(plan, scene.frame_current)
    path = R.abspath(path) if path else painting.painting_path(painted_folder(), plan.source_strip, index)
    save_if_painted(path)
    plan = painting.with_painting(plan, index, path)
    R.store_plan(strip, plan)
    return plan
