"""Frame sources: a video file, an image sequence (folder, glob, ``####`` pattern) or a camera, as
``(index, uint8 RGB)`` in order.

Frame indices: a video file's frames are numbered from 1; an image sequence given as a ``####`` pattern
keeps the numbers in its file names; a folder or a glob is numbered from 1 in natural file-name order.
OpenCV is imported inside the functions that need it.
"""

from __future__ import annotations

import glob as globlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import UserError
from ..images import WRITABLE_SUFFIXES, load_image
from .selection import parse_range

IMAGE_SUFFIXES = WRITABLE_SUFFIXES  # what an image sequence may be made of: what OpenCV reads and writes
DEFAULT_SEQUENCE_FPS = 24.0


def _ignore(event: dict) -> None:
    pass


@dataclass
class FrameSource:
    """Frames of a video file, an image sequence or a camera, as ``(index, uint8 RGB)`` in order.

    ``count``: frames in the source (None for a camera); ``selected``: indices that the range and step pick
    (None when unknown). :meth:`read` yields the frames; a frame that cannot be decoded is skipped and
    reported as a :class:`~nst_plugin.events.Warning` event; ``unreadable`` collects their indices. Each
    problem is reported once, however often the source is read. :meth:`frames` is what a sequence engine
    gets: readable more than once for a file source, one pass for a camera.
    """

    spec: str
    kind: str  # "video" | "images" | "camera"
    fps: float
    width: int
    height: int
    count: int | None
    first: int | None = None
    last: int | None = None
    step: int = 1
    files: list[tuple[int, Path]] = field(default_factory=list)
    on_warning: Callable[[dict], None] = _ignore
    unreadable: list[int] = field(default_factory=list)
    capture_factory: Callable | None = None  # camera or video: returns a cv2.VideoCapture-like object
    # a video file: returns the frames whose data the file cuts short (a truncated file), which the decoder
    # would give only in part; called once, at the first read
    damage_scan: Callable[[], set] | None = None
    _reported: set = field(default_factory=set, init=False, repr=False, compare=False)  # (what, index)
    _damaged: set | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def indices(self) -> list[int] | None:
        if self.kind == "images":
            numbers = [n for n, _ in self.files]
        elif self.count is not None:
            numbers = list(range(1, self.count + 1))
        else:
            return None
        lo = self.first if self.first is not None else (numbers[0] if numbers else 1)
        picked = [n for n in numbers if n >= lo and (self.last is None or n <= self.last)]
        return [n for n in picked if (n - lo) % self.step == 0]

    def identity(self) -> dict:
        """What a manifest compares to make sure a resume reads the same source."""
        path = self.spec if self.kind == "camera" else str(Path(self.spec).expanduser().resolve())
        return {"path": path, "kind": self.kind, "width": self.width, "height": self.height, "count": self.count}

    def _wanted(self, index: int) -> bool:
        lo = self.first if self.first is not None else 1
        if index < lo or (self.last is not None and index > self.last):
            return False
        return (index - lo) % self.step == 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        from ..events import as_dict

        return self.read(lambda event: self.on_warning(as_dict(event)))  # the older callback takes dicts

    def read(self, on_event: Callable = _ignore) -> Iterator[tuple[int, np.ndarray]]:
        """The selected frames in order; undecodable ones are skipped and reported to ``on_event``."""
        if self.kind == "images":
            yield from self._iter_images(on_event)
        else:
            yield from self._iter_capture(on_event)

    def frames(self, on_event: Callable = _ignore) -> Iterable[tuple[int, np.ndarray]]:
        """The frames for ``nst_stylize_sequence``: a :class:`SourceFrames` (every iteration reads the source
        anew) for a video file or an image sequence; for a camera, one pass (an iterator: a second iteration
        yields nothing)."""
        if self.kind == "camera":
            return self.read(on_event)
        return SourceFrames(self, on_event)

    def _report(self, on_event: Callable, index: int | None, message: str, what: str = "stopped") -> None:
        """Send a Warning event unless this source already reported ``what`` at ``index`` (an earlier pass)."""
        from ..events import Warning

        if (what, index) not in self._reported:
            self._reported.add((what, index))
            on_event(Warning(message, index))

    def _warn(self, on_event: Callable, index: int, message: str) -> None:
        """An unreadable frame: listed in ``unreadable`` and reported, once."""
        if index not in self.unreadable:
            self.unreadable.append(index)
        self._report(on_event, index, message, "unreadable")

    def _lost(self, on_event: Callable, after: int, message: str) -> None:
        """The selected frames after frame ``after`` that this pass could not read (the source is gone, or
        its decoder gave up): listed in ``unreadable``, and reported in one warning, ``message`` followed by
        the frames (none: nothing to report)."""
        end = self.count if self.last is None else min(self.last, self.count)
        lost = [n for n in range(after + 1, end + 1) if self._wanted(n)]
        if lost:
            self.unreadable.extend(n for n in lost if n not in self.unreadable)
            self._report(on_event, lost[0], f"{message}: frame{'s' if len(lost) > 1 else ''} {ranges_text(lost)} "
                                            "not read", "lost")

    def damaged(self) -> set:
        """The frames a truncated video file holds only in part (``damage_scan``; found once)."""
        if self._damaged is None:
            self._damaged = set(self.damage_scan()) if self.damage_scan is not None else set()
        return self._damaged

    def _iter_images(self, on_event):
        first_taken = None
        for number, path in self.files:
            if self.first is not None and number < self.first:
                continue
            if self.last is not None and number > self.last:
                break
            first_taken = number if first_taken is None else first_taken
            if (number - (self.first if self.first is not None else first_taken)) % self.step:
                continue
            try:
                image = load_image(path, "frame")
            except UserError as exc:
                self._warn(on_event, number, f"frame {number} ({path.name}) skipped: {exc}")
                continue
            yield number, image

    def _iter_capture(self, on_event):
        import cv2

        damaged = self.damaged() if self.kind == "video" else set()
        capture = self.capture_factory()
        try:
            if self.kind == "video" and not getattr(capture, "isOpened", lambda: True)():
                self._lost(on_event, 0, f"{self.spec} cannot be read any more (moved, deleted or replaced?)")
                return
            index = 0  # the frame last grabbed
            failures = 0  # grabs that failed since then
            # after a failed grab (or in a damaged file) the frames are numbered by their time stamps: a failed
            # grab need not have used up a frame, and a decoder may drop a damaged frame without failing
            stamped = bool(damaged)
            while True:
                if self.count is not None and index >= self.count:
                    break
                if self.last is not None and index + 1 > self.last:
                    break
                ok = capture.grab()
                if not ok:
                    if self.count is None or self.kind == "camera":
                        if index == 0 and self.kind == "camera":
                            raise UserError(f"camera {self.spec} gave no picture")
                        break
                    failures += 1
                    stamped = True
                    if failures >= 5 or index + failures >= self.count:
                        why = "5 frames in a row could not be decoded" if failures >= 5 else "its frames end early"
                        self._lost(on_event, index, f"stopped reading {self.spec} after frame {index} ({why})")
                        break
                    continue
                number = _stamped_number(capture, index, self.count) if stamped else None
                number = number or index + failures + 1
                for gap in range(index + 1, number):  # frames the decoder did not give
                    if self._wanted(gap):
                        self._warn(on_event, gap, f"frame {gap} of {self.count} could not be decoded: skipped")
                index, failures = number, 0
                if self.last is not None and index > self.last:
                    break
                if not self._wanted(index):  # a bad frame outside the range is none of this run's business
                    continue
                if index in damaged:
                    self._warn(on_event, index, f"frame {index} of {self.count} is damaged (the file ends inside it, "
                                                "so it decodes only in part): skipped")
                    continue
                ok, bgr = capture.retrieve()
                if not (ok and bgr is not None and bgr.size > 0):
                    if self.kind == "camera":
                        break
                    self._warn(on_event, index, f"frame {index} of {self.count} could not be decoded: skipped")
                    stamped = True
                    continue
                yield index, np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()


def _stamped_number(capture, index: int, count: int | None) -> int | None:
    """The number of the frame ``capture`` just grabbed, from its time stamp and frame rate; None when these
    are missing or do not give a frame after ``index`` within the file's ``count``."""
    import cv2

    try:
        msec, fps = float(capture.get(cv2.CAP_PROP_POS_MSEC)), float(capture.get(cv2.CAP_PROP_FPS))
    except Exception:  # noqa: BLE001 - a capture-like object without time stamps
        return None
    if not (np.isfinite(msec) and np.isfinite(fps) and msec >= 0 and fps > 0):
        return None
    number = int(round(msec * fps / 1000.0)) + 1
    return number if index < number and (count is None or number <= count) else None


def quiet_capture(target):
    """``cv2.VideoCapture(target)`` with OpenCV's own log lines silenced while it opens: for a camera that is
    not there every backend prints why it failed (some ten lines on stderr); the caller says it in one."""
    import cv2

    try:
        from cv2.utils import logging as cv_logging

        previous = cv_logging.getLogLevel()
        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)
    except Exception:  # noqa: BLE001 - an OpenCV build without its logging module: open it as it is
        return cv2.VideoCapture(target)
    try:
        return cv2.VideoCapture(target)
    finally:
        cv_logging.setLogLevel(previous)


def ranges_text(numbers) -> str:
    """Frame numbers as compact ranges: ``1-5, 7, 9-12``."""
    numbers = sorted(set(numbers))
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(n) if n == start else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def damaged_frames(path: str | os.PathLike) -> set[int]:
    """The frames (numbered from 1, by their time stamps) of the video file ``path`` whose data the file cuts
    short: the demuxer flags such a packet corrupt (a truncated file), and the decoder would give the frame
    only in part. Reads the packets without decoding them; empty when PyAV cannot read the file."""
    try:
        import av
    except ImportError:  # pragma: no cover - a dependency
        return set()
    found: set[int] = set()
    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            start = stream.start_time or 0
            position = 0
            for packet in container.demux(stream):
                if packet.size == 0 and packet.pts is None:  # the flush packet at the end
                    continue
                position += 1
                if not packet.is_corrupt:
                    continue
                if packet.pts is not None and rate and packet.time_base:
                    found.add(int(round(float((packet.pts - start) * packet.time_base * rate))) + 1)
                else:
                    found.add(position)
    except Exception:  # noqa: BLE001 - OpenCV decides what is readable; this only looks for cut-short frames
        return found
    return found


class SourceFrames:
    """The selected frames of a video file or an image sequence, readable more than once: each iteration
    reads the source anew from its first selected frame (a sequence engine may take one pass to choose
    keyframes and another to stylize every frame). An unreadable frame is reported to ``on_event`` and
    listed in ``source.unreadable`` once, however many passes there are."""

    def __init__(self, source: FrameSource, on_event: Callable = _ignore):
        if source.kind == "camera":
            raise ValueError("a camera cannot be read twice: iterate source.read() once")
        self.source = source
        self.on_event = on_event

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return self.source.read(self.on_event)

    def __repr__(self) -> str:
        return f"SourceFrames({self.source.spec!r})"


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _image_files(paths) -> list[Path]:
    return sorted((p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)


def _probe_image(path: Path) -> tuple[int, int]:
    try:
        image = load_image(path, "frame")
    except UserError:
        return 0, 0
    return image.shape[1], image.shape[0]


def open_source(spec: str | os.PathLike, frames: str | None = None, step: int = 1, fps: float | None = None,
                on_warning: Callable[[dict], None] = _ignore) -> FrameSource:
    """A :class:`FrameSource` for a video file, a folder of images, a glob, a ``####`` pattern or a camera
    index ("0"). Raises :class:`UserError` with a clear message for a missing or unreadable source."""
    first, last = parse_range(frames)
    if not isinstance(step, int) or step < 1:
        raise UserError(f"--step must be a whole number >= 1, got {step!r}")
    if fps is not None and not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise UserError(f"--fps must be a finite number > 0, got {fps!r}")
    text = str(spec)
    common = dict(first=first, last=last, step=step, on_warning=on_warning)
    if text.isdigit() and not Path(text).exists():
        return _open_camera(text, fps, common)
    files = _sequence_files(text)
    if files is not None:
        width = height = 0
        for _, file in files[:3]:
            width, height = _probe_image(file)
            if width:
                break
        if not width:
            raise UserError(f"image sequence {text!r}: its first files cannot be read as images")
        return FrameSource(text, "images", fps or DEFAULT_SEQUENCE_FPS, width, height, len(files), files=files, **common)
    return _open_video(text, fps, common)


def _open_camera(text: str, fps: float | None, common: dict) -> FrameSource:
    import cv2

    camera = int(text)
    capture = quiet_capture(camera)
    if not capture.isOpened():
        raise UserError(f"camera {camera} cannot be opened (no such camera, or it is in use)")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    camera_fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    capture.release()
    return FrameSource(text, "camera", fps or camera_fps, width, height, None,
                       capture_factory=lambda: quiet_capture(camera), **common)


def _sequence_files(text: str) -> list[tuple[int, Path]] | None:
    """The numbered image files ``text`` names (a ``####`` pattern, a glob, a folder or one image), or None
    for anything else (a video file); a missing source or one that names no image is a :class:`UserError`."""
    path = Path(text).expanduser()
    if "#" in path.name:
        run = re.search(r"#+", path.name)
        pattern = re.compile("^" + re.escape(path.name[:run.start()]) + r"(\d{%d,})" % len(run.group(0))
                             + re.escape(path.name[run.end():]) + "$")
        folder = path.parent
        if not folder.is_dir():
            raise UserError(f"image sequence {text!r}: folder {str(folder)!r} does not exist")
        files = sorted((int(m.group(1)), folder / m.group(0)) for m in map(pattern.match, os.listdir(folder)) if m)
        if not files:
            raise UserError(f"image sequence {text!r} matches no files")
        return files
    if any(ch in text for ch in "*?["):
        found = _image_files(Path(p) for p in globlib.glob(os.path.expanduser(text)))
        if not found:
            raise UserError(f"{text!r} matches no image files ({', '.join(IMAGE_SUFFIXES)})")
        return list(enumerate(found, start=1))
    if path.is_dir():
        found = _image_files(path.iterdir())
        if not found:
            raise UserError(f"folder {text!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return list(enumerate(found, start=1))
    if not path.exists():
        raise UserError(f"source {text!r} does not exist")
    return [(1, path)] if path.suffix.lower() in IMAGE_SUFFIXES else None


def _open_video(text: str, fps: float | None, common: dict) -> FrameSource:
    import cv2

    path = Path(text).expanduser()
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"video {text!r} cannot be opened (not a video file, or damaged)")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    video_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    ok, _ = capture.read()
    capture.release()
    if count <= 0 or not ok or not width or not height:
        raise UserError(f"video {text!r} has no frames (empty, or its frames cannot be decoded)")
    if video_fps <= 0 or not np.isfinite(video_fps):
        video_fps = DEFAULT_SEQUENCE_FPS
    first = common["first"]
    if first is not None and first > count:
        raise UserError(f"--frames starts at {first} but {text!r} has {count} frames")
    return FrameSource(text, "video", fps or video_fps, width, height, count,
                       capture_factory=lambda: cv2.VideoCapture(str(path)),
                       damage_scan=lambda: damaged_frames(path), **common)
