"""Painted keyframes from Blender (issue 27): *Edit Keyframe* writes the frame under the playhead to a PNG the
artist paints (Blender's Image Editor and Texture Paint, or an editor of their own); *Use Painted Keyframe*
gives that PNG to the engine as the keyframe of that frame and resumes the result strip, which re-makes only
the frames it changes. No bpy here: the operators (operators.py) do the Blender side.

An engine takes painted keyframes when its listing has an option whose flag is :data:`PAINT_FLAG`; the
paintings travel in the plan's settings as that flag's setting name, ``["INDEX=PATH", ...]``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

from . import engines
from . import strips as S
from .plan import PAINT_SETTING, Plan, PlanError

PAINT_FLAG = "--keyframe-image"  # the flag of the engine option that takes a painted keyframe
PAINTED_DIR = "//nst/painted"  # next to the .blend: one folder per source strip


def painting_path(folder: str, source_strip: str, index: int) -> str:
    """Where the painting of engine frame ``index`` of ``source_strip`` lives."""
    return os.path.join(folder, S.safe_name(source_strip), f"keyframe_{index:06d}.png")


def index_at(plan: Plan, frame: int) -> int:
    """The engine's frame index under timeline ``frame`` of a result strip's plan."""
    lo, hi = plan.timeline
    if not lo <= frame <= hi:
        raise PlanError(f"the playhead (frame {frame}) is not over the result strip (frames {lo}-{hi}): move it "
                        "onto the frame to paint")
    return plan.indices[frame - lo]


def engine_picture(output: str, index: int) -> str | None:
    """The result's picture of frame ``index`` to start a painting from: the keyframe the engine kept for it
    (``keyframe_NNNNNN.png``, the look before it is carried along the shot) when it is as large as the stylized
    frame, else the stylized frame (``frame_NNNNNN.png``: a painting is scaled to the output's size, and one
    enlarged from the keyframe's smaller size would be soft), else the keyframe (its frame not made yet)."""
    keyframe, frame = (os.path.join(output, f"{name}_{index:06d}.png") for name in ("keyframe", "frame"))
    keyframe, frame = (p if os.path.isfile(p) and not os.path.islink(p) else None for p in (keyframe, frame))
    if keyframe and frame:
        (kw, kh), (fw, fh) = (S.png_size(p) or (0, 0) for p in (keyframe, frame))
        return keyframe if kw * kh >= fw * fh else frame
    return frame or keyframe


def start_painting(picture: str, target: str) -> bool:
    """Copy ``picture`` to ``target`` for painting, unless a painting is already there (it is the artist's:
    never replaced). True when a new painting was started."""
    if os.path.exists(target):
        return False
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = f"{target}.partial"
    shutil.copyfile(picture, partial)
    os.replace(partial, target)
    return True


def paintings(plan: Plan) -> dict[int, str]:
    """{engine frame index: painting} of a plan."""
    found = {}
    for text in plan.settings.get(PAINT_SETTING) or ():
        index, _, path = str(text).partition("=")
        if index.strip().isdigit() and path:
            found[int(index)] = path
    return found


def with_painting(plan: Plan, index: int, path: str) -> Plan:
    """The plan with ``path`` as the painted keyframe of frame ``index`` (replacing an earlier one there); the
    plan's engine must take paintings (by its listing; an engine the add-on has no listing of is asked)."""
    name = plan.settings.get("engine")
    engine = engines.get(name)
    if engine is not None and not any(option.flag == PAINT_FLAG for option in engine.options):
        raise PlanError(f"the {engine.label} engine takes no painted keyframes: re-run the strip with an engine that "
                        f"does (its options list {PAINT_FLAG})")
    if not os.path.isfile(path):
        raise PlanError(f"painting {path} does not exist: Edit Keyframe writes it, or choose an image file")
    found = {**paintings(plan), index: path}
    texts = [f"{i}={found[i]}" for i in sorted(found)]
    return replace(plan, settings={**plan.settings, PAINT_SETTING: texts})
