"""A comparison picture: chosen frames of a source above the same frames of an nst output folder.

``nst compare SOURCE OUTPUT_FOLDER -o picture.jpg [--frames 1,10,20]``. The output folder's manifest says
which frames are done; the picture is two rows of equal cells, each under a label band: "source" (the
source's frames, pixel for pixel unless a cell is narrower than the source) and "stylized" (the output's
frames, scaled to the cell). No TensorFlow; OpenCV is imported inside the functions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import UserError
from .images import WRITABLE_SUFFIXES, load_image, resize, save_image

DEFAULT_COUNT = 3  # frames picked when none are named: first, middle, last done frame
MAX_CELL_WIDTH = 640  # a wider source is scaled down in the picture (unless --width says otherwise)


def band_height(cell_width: int) -> int:
    """Height of the label band above each row."""
    return max(16, min(32, cell_width // 12))


def parse_frame_list(text: str | None) -> list[int] | None:
    """``"1,10,20"`` -> [1, 10, 20]; None or empty -> None (pick for me)."""
    if text is None or not text.strip():
        return None
    numbers = []
    for part in text.split(","):
        part = part.strip()
        if not (part.isdigit() and part.isascii()) or int(part) < 1:
            raise UserError(f"--frames must be frame numbers separated by commas (1,10,20), got {text!r}")
        numbers.append(int(part))
    return list(dict.fromkeys(numbers))


def done_frames(folder: str | os.PathLike) -> tuple[dict, dict[int, Path]]:
    """The output folder's manifest and its done frames (number -> file). One :class:`UserError` for a
    folder that is not an nst output folder."""
    from .safety import read_manifest
    from .video.output import MANIFEST

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UserError(f"{str(path)!r} is not an nst output folder (no such folder)")
    manifest = read_manifest(path)  # a damaged one: its own UserError
    if manifest is None:
        raise UserError(f"{str(path)!r} is not an nst output folder (it holds no {MANIFEST}): "
                        "give the folder that `nst video -o` wrote")
    done = {}
    for key, entry in (manifest.get("frames") or {}).items():
        file = path / (entry.get("file") or "")
        if entry.get("status") == "done" and entry.get("file") and file.is_file() and not file.is_symlink():
            done[int(key)] = file
    return manifest, dict(sorted(done.items()))


def pick_frames(done: list[int], count: int = DEFAULT_COUNT) -> list[int]:
    """Up to ``count`` of the done frames, evenly spread, the first and the last included."""
    if len(done) <= count:
        return list(done)
    return sorted({done[round(i * (len(done) - 1) / (count - 1))] for i in range(count)})


def _source_frames(source: str | os.PathLike, wanted: list[int], manifest: dict) -> dict[int, np.ndarray]:
    from .video.sources import open_source, ranges_text

    opened = open_source(source)
    if opened.kind == "camera":
        raise UserError("a camera is no source to compare with: give the video file or image sequence")
    recorded = manifest.get("source") or {}
    made = (recorded.get("width"), recorded.get("height"))
    if None not in made and made != (opened.width, opened.height):
        raise UserError(f"{str(source)!r} is {opened.width}x{opened.height}, but the output folder was made from a "
                        f"{made[0]}x{made[1]} source ({recorded.get('path')!r})")
    opened.first, opened.last = min(wanted), max(wanted)
    frames = {index: rgb for index, rgb in opened.read() if index in wanted}
    missing = [n for n in wanted if n not in frames]
    if missing:
        raise UserError(f"{str(source)!r} has no readable frame {ranges_text(missing)}")
    return frames


def _label(band: np.ndarray, text: str, x: int) -> None:
    import cv2

    height = band.shape[0]
    scale = height / 40
    thickness = 1 if height < 28 else 2
    cv2.putText(band, text, (x + 4, int(height * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)


def comparison(source: str | os.PathLike, output: str | os.PathLike, frames: list[int] | None = None,
               width: int | None = None) -> tuple[np.ndarray, list[int]]:
    """The comparison picture (uint8 RGB) and the frame numbers it shows. ``frames``: done frames of
    ``output`` (default: up to three, spread); ``width``: of each cell (default: the source's, at most 640)."""
    manifest, done = done_frames(output)
    if not done:
        raise UserError(f"output folder {str(output)!r} has no finished frame yet: run `nst video` first")
    if frames is None:
        frames = pick_frames(list(done))
    else:
        absent = [n for n in frames if n not in done]
        if absent:
            from .video.sources import ranges_text

            raise UserError(f"frame {ranges_text(absent)} is not done in {str(output)!r} (done: {ranges_text(done)})")
    sources = _source_frames(source, frames, manifest)
    src_h, src_w = sources[frames[0]].shape[:2]
    if width is not None and width < 16:
        raise UserError(f"--width must be at least 16, got {width}")
    cell_w = width or min(src_w, MAX_CELL_WIDTH)
    cell_h = max(1, round(src_h * cell_w / src_w))
    band = band_height(cell_w)
    rows = []
    for name, images in (("source", [sources[n] for n in frames]),
                         ("stylized", [load_image(done[n], "frame") for n in frames])):
        strip = np.zeros((band, cell_w * len(frames), 3), np.uint8)
        for column, number in enumerate(frames):
            _label(strip, f"{name}, frame {number}" if column == 0 else f"frame {number}", column * cell_w)
        rows.append(strip)
        rows.append(np.hstack([resize(image, cell_h, cell_w) for image in images]))
    return np.vstack(rows), frames


def write_comparison(source: str | os.PathLike, output: str | os.PathLike, picture: str | os.PathLike,
                     frames: list[int] | None = None, width: int | None = None) -> list[int]:
    """Write :func:`comparison`'s picture to ``picture`` (atomically; its suffix names the format). Returns
    the frame numbers shown."""
    suffix = Path(picture).suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise UserError(f"the picture {str(picture)!r} must end in one of {', '.join(WRITABLE_SUFFIXES)}")
    image, shown = comparison(source, output, frames, width)
    target = Path(picture).expanduser()
    if target.parent and not target.parent.is_dir():
        raise UserError(f"folder {str(target.parent)!r} for the picture does not exist")
    save_image(target, image)
    return shown
