"""Strip helpers: pure functions for channels, frame mapping, names and the result strip's placement.
Functions here take plain values or duck-typed strips; nothing imports bpy (the differences between Blender
versions are in compat)."""

from __future__ import annotations

import os
import re

SUPPORTED_TYPES = ("MOVIE", "IMAGE")
SUPPORTED_TEXT = "movie strips and image-sequence strips"
MAX_CHANNEL = 128
FRAME_NAME = "frame_{:06d}.png"  # the engine's file names (docs/events.md)


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


# -- the result strip over its source ------------------------------------------------------------------------

def png_size(path) -> tuple[int, int] | None:
    """(width, height) of a PNG file from its header, or None when it is not a readable PNG."""
    import struct

    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def cover_placement(source: dict, source_size, result_size) -> dict:
    """Where the result strip's picture goes so that it covers the source strip's exactly, whatever its
    resolution: ``source`` is the source strip's placement (``scale_x``, ``scale_y``, ``offset_x``,
    ``offset_y``, ``rotation``, ``origin``, ``flip_x``, ``flip_y``, ``crop``: min_x, max_x, min_y, max_y in
    its pixels); the result's scale is the source's times source/result size, its crop in its own pixels,
    the rest the same. Blender shows a strip's picture at its pixel size times its scale, so both show the
    same size at the same place."""
    fx, fy = source_size[0] / result_size[0], source_size[1] / result_size[1]
    min_x, max_x, min_y, max_y = source["crop"]
    return dict(source, scale_x=source["scale_x"] * fx, scale_y=source["scale_y"] * fy,
                crop=(round(min_x / fx), round(max_x / fx), round(min_y / fy), round(max_y / fy)))


# the panel's Resolution choices: a fraction of the strip's own resolution, or None: the Size field
RESOLUTIONS = {"STRIP": 1.0, "HALF": 0.5, "QUARTER": 0.25, "SIZE": None}


def frame_size(strip) -> tuple[int, int] | None:
    """(width, height) of a strip's frames as Blender read them (its first element), or None before it has."""
    elements = getattr(strip, "elements", ())
    element = elements[0] if len(elements) else None
    size = (int(getattr(element, "orig_width", 0)), int(getattr(element, "orig_height", 0))) if element is not None else (0, 0)
    return size if all(size) else None


def output_size(resolution: str, size: int, strip_size) -> int:
    """The engine's ``size`` for the panel's Resolution: 0 (the engine reads the source at its own
    resolution) for the strip's, the longer side times the fraction for half and quarter (at least 32), the
    Size field otherwise. ValueError (one line) when a fraction needs the strip's size and Blender has not
    read it yet."""
    fraction = RESOLUTIONS.get(resolution)
    if fraction is None:
        return int(size)
    if fraction == 1.0:
        return 0
    if not strip_size:
        raise ValueError("the strip's resolution is not known yet (Blender has not read its first frame): "
                         "choose the strip's resolution or Size")
    return max(32, round(max(strip_size) * fraction))
