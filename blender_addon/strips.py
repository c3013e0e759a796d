"""Strip helpers: the Blender 4.2-4.5 / 5.0 compatibility layer and pure functions for channels, frame
mapping and names. Functions here take plain values or duck-typed strips; nothing imports bpy."""

from __future__ import annotations

import os
import re

SUPPORTED_TYPES = ("MOVIE", "IMAGE")
SUPPORTED_TEXT = "movie strips and image-sequence strips"
MAX_CHANNEL = 128
FRAME_NAME = "frame_{:06d}.png"  # the engine's file names (docs/events.md)


# -- 4.2-4.5 vs 5.0 -------------------------------------------------------------------------------------------

def strips_of(sequence_editor):
    """Top-level strips collection: ``strips`` (Blender 5.0) or ``sequences`` (4.2-4.5)."""
    return sequence_editor.strips if hasattr(sequence_editor, "strips") else sequence_editor.sequences


def all_strips(sequence_editor):
    """Every strip, inside metastrips too: ``strips_all`` (5.0) or ``sequences_all`` (4.2-4.5)."""
    return sequence_editor.strips_all if hasattr(sequence_editor, "strips_all") else sequence_editor.sequences_all


def new_image(sequence_editor, name: str, filepath: str, channel: int, frame_start: int):
    return strips_of(sequence_editor).new_image(name=name, filepath=filepath, channel=channel, frame_start=frame_start)


def new_movie(sequence_editor, name: str, filepath: str, channel: int, frame_start: int):
    return strips_of(sequence_editor).new_movie(name=name, filepath=filepath, channel=channel, frame_start=frame_start)


# -- pure helpers ---------------------------------------------------------------------------------------------

def first_free_channel(occupied, above: int, start: int, end: int, limit: int = MAX_CHANNEL) -> int | None:
    """The lowest channel above ``above`` with no strip overlapping the frames [start, end).
    ``occupied``: (channel, first frame, end frame exclusive) of the other strips."""
    for channel in range(above + 1, limit + 1):
        if all(not (c == channel and s < end and start < e) for c, s, e in occupied):
            return channel
    return None


def check_strip_type(strip_type: str) -> str | None:
    """None if the add-on can stylize this strip type, else the one-line reason."""
    if strip_type in SUPPORTED_TYPES:
        return None
    return f"cannot stylize a {strip_type.lower()} strip: select one of the {SUPPORTED_TEXT}"


def timeline_range(frame_final_start: int, frame_final_end: int, first: int | None = None,
                   last: int | None = None) -> tuple[int, int]:
    """The timeline frames [first, last] (inclusive) to stylize: the strip's visible frames by default,
    a custom range clamped to them."""
    lo, hi = int(frame_final_start), int(frame_final_end) - 1
    if first is not None:
        lo = max(lo, int(first))
    if last is not None:
        hi = min(hi, int(last))
    if hi < lo:
        raise ValueError(f"frame range {first}-{last} lies outside the strip's frames {frame_final_start}-{frame_final_end - 1}")
    return lo, hi


def movie_index(timeline_frame: int, frame_start: int, animation_offset_start: int = 0) -> int:
    """The engine's frame number (a video's frames count from 1) shown at a timeline frame."""
    return int(timeline_frame) - int(frame_start) + int(animation_offset_start) + 1


def sequence_pattern(filenames) -> tuple[str, list[int]] | None:
    """For image-sequence file names like ``shot_0001.png``..., the engine's ``####`` pattern and the
    number of each file; None if they do not share one prefix, digit count and suffix."""
    numbers, shape = [], None
    for name in filenames:
        match = re.fullmatch(r"(.*?)(\d+)(\.[^.]+)", name)
        if not match:
            return None
        key = (match.group(1), len(match.group(2)), match.group(3))
        if shape is None:
            shape = key
        elif key != shape:
            return None
        numbers.append(int(match.group(2)))
    if shape is None or len(set(numbers)) != len(numbers):
        return None
    return shape[0] + "#" * shape[1] + shape[2], numbers


def safe_name(text: str) -> str:
    """A file-system friendly version of a strip or style name."""
    stem = re.sub(r"[^\w.-]+", "_", text.strip()).strip("._")
    return stem or "strip"


def default_output_dir(strip_name: str, style_path: str) -> str:
    """``//nst/<strip>_<style>/`` (relative to the .blend)."""
    style = os.path.splitext(os.path.basename(style_path.rstrip("/\\")))[0] or "style"
    return f"//nst/{safe_name(os.path.splitext(strip_name)[0])}_{safe_name(style)}/"


def result_strip_name(style_path: str) -> str:
    style = os.path.splitext(os.path.basename(style_path.rstrip("/\\")))[0] or "style"
    return f"NST {style}"


def frame_files(indices) -> list[str]:
    return [FRAME_NAME.format(int(i)) for i in indices]
