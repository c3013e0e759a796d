"""Video: frame sources, the resumable output folder (PNG frames + manifest), encoding, shot cuts, and the
``stylize_video`` job that ties them to ``nst_stylize_sequence``.

Frame indices: a video file's frames are numbered from 1; an image sequence given as a ``####`` pattern
keeps the numbers in its file names; a folder or a glob is numbered from 1 in natural file-name order.
Output frame ``i`` is ``frame_{i:06d}.png`` in the output folder.

OpenCV, PyAV and PySceneDetect are imported inside the functions that need them.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import NstError, UserError
from .images import WRITABLE_SUFFIXES, load_image, save_image, write_atomic

IMAGE_SUFFIXES = WRITABLE_SUFFIXES  # what an image sequence may be made of: what OpenCV reads and writes
MANIFEST = "nst_manifest.json"
FRAME_NAME = "frame_{:06d}.png"
FRAME_RE = re.compile(r"^frame_(\d+)\.png$")
DEFAULT_SEQUENCE_FPS = 24.0


def _ignore(event: dict) -> None:
    pass


# -- frame range ------------------------------------------------------------------------------------------

def parse_range(text: str | None) -> tuple[int | None, int | None]:
    """``"1-120"`` -> (1, 120); ``"10-"`` -> (10, None); ``"7"`` -> (7, 7); None -> (None, None)."""
    if text is None or not str(text).strip():
        return None, None
    match = re.fullmatch(r"\s*(\d+)?\s*(-)?\s*(\d+)?\s*", str(text))
    if not match or (match.group(1) is None and match.group(3) is None):
        raise UserError(f"--frames expects A-B, A- or N (frame numbers), got {text!r}")
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(3)) if match.group(3) else (None if match.group(2) else first)
    if first is not None and last is not None and last < first:
        raise UserError(f"--frames {text!r}: the last frame comes before the first")
    return first, last


# -- sources ------------------------------------------------------------------------------------------------

@dataclass
class FrameSource:
    """Frames of a video file, an image sequence or a camera, as ``(index, uint8 RGB)`` in order.

    ``count``: frames in the source (None for a camera); ``selected``: indices that the range and step pick
    (None when unknown). A frame that cannot be decoded is skipped and reported through ``on_warning``
    (an event dict with ``index``); ``unreadable`` collects their indices.
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
        if self.kind == "images":
            yield from self._iter_images()
        else:
            yield from self._iter_capture()

    def _warn(self, index: int, message: str) -> None:
        self.unreadable.append(index)
        self.on_warning({"event": "warning", "index": index, "message": message})

    def _iter_images(self):
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
                self._warn(number, f"frame {number} ({path.name}) skipped: {exc}")
                continue
            yield number, image

    def _iter_capture(self):
        import cv2

        capture = self.capture_factory()
        try:
            index = 0
            failures = 0
            while True:
                if self.count is not None and index >= self.count:
                    break
                if self.last is not None and index + 1 > self.last:
                    break
                wanted = self._wanted(index + 1)
                ok = capture.grab()
                if ok and wanted:
                    ok, bgr = capture.retrieve()
                    ok = ok and bgr is not None and bgr.size > 0
                index += 1
                if not ok:
                    if self.count is None or self.kind == "camera":
                        if index == 1 and self.kind == "camera":
                            raise UserError(f"camera {self.spec} gave no picture")
                        break
                    failures += 1
                    self._warn(index, f"frame {index} of {self.count} could not be decoded: skipped")
                    if failures >= 5:
                        self.on_warning({"event": "warning", "index": index,
                                         "message": f"stopped reading {self.spec} after frame {index}: 5 frames in a row could not be decoded"})
                        break
                    continue
                failures = 0
                if wanted:
                    yield index, np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()


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
    import cv2

    first, last = parse_range(frames)
    if not isinstance(step, int) or step < 1:
        raise UserError(f"--step must be a whole number >= 1, got {step!r}")
    text = str(spec)
    common = dict(first=first, last=last, step=step, on_warning=on_warning)
    if text.isdigit() and not Path(text).exists():
        camera = int(text)
        capture = cv2.VideoCapture(camera)
        if not capture.isOpened():
            raise UserError(f"camera {camera} cannot be opened (no such camera, or it is in use)")
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        camera_fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        capture.release()
        return FrameSource(text, "camera", fps or camera_fps, width, height, None,
                           capture_factory=lambda: cv2.VideoCapture(camera), **common)
    path = Path(text).expanduser()
    files: list[tuple[int, Path]] | None = None
    if "#" in path.name:
        run = re.search(r"#+", path.name)
        pattern = re.compile("^" + re.escape(path.name[:run.start()]) + r"(\d{%d,})" % len(run.group(0))
                             + re.escape(path.name[run.end():]) + "$")
        folder = path.parent
        if not folder.is_dir():
            raise UserError(f"image sequence {text!r}: folder {str(folder)!r} does not exist")
        matched = [(int(m.group(1)), folder / m.group(0)) for m in map(pattern.match, os.listdir(folder)) if m]
        files = sorted(matched)
        if not files:
            raise UserError(f"image sequence {text!r} matches no files")
    elif any(ch in text for ch in "*?["):
        found = _image_files(Path(p) for p in globlib.glob(os.path.expanduser(text)))
        if not found:
            raise UserError(f"{text!r} matches no image files ({', '.join(IMAGE_SUFFIXES)})")
        files = list(enumerate(found, start=1))
    elif path.is_dir():
        found = _image_files(path.iterdir())
        if not found:
            raise UserError(f"folder {text!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        files = list(enumerate(found, start=1))
    elif not path.exists():
        raise UserError(f"source {text!r} does not exist")
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        files = [(1, path)]
    if files is not None:
        width = height = 0
        for _, file in files[:3]:
            width, height = _probe_image(file)
            if width:
                break
        if not width:
            raise UserError(f"image sequence {text!r}: its first files cannot be read as images")
        return FrameSource(text, "images", fps or DEFAULT_SEQUENCE_FPS, width, height, len(files), files=files, **common)
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
    source = FrameSource(text, "video", fps or video_fps, width, height, count,
                         capture_factory=lambda: cv2.VideoCapture(str(path)), **common)
    if first is not None and first > count:
        raise UserError(f"--frames starts at {first} but {text!r} has {count} frames")
    return source


# -- shot cuts ----------------------------------------------------------------------------------------------

class ShotDetector:
    """Per-frame shot-cut detection: PySceneDetect's ContentDetector (HSV difference of consecutive frames),
    fed frame by frame, so a cut is known before the frame is stylized. Falls back to a colour-histogram
    comparison when PySceneDetect is not installed."""

    def __init__(self, threshold: float = 27.0):
        self.threshold = threshold
        self.count = 0
        self.previous_hist = None
        try:
            from scenedetect.detectors import ContentDetector

            self.detector = ContentDetector(threshold=threshold, min_scene_len=1)
        except ImportError:  # pragma: no cover - scenedetect is a dependency
            self.detector = None

    def _small_bgr(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8:
            rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        h, w = rgb.shape[:2]
        scale = min(1.0, 160 / max(h, w))
        small = cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small[:, :, ::-1])

    def is_cut(self, rgb: np.ndarray) -> bool:
        """True when ``rgb`` starts a new shot (never for the first frame)."""
        small = self._small_bgr(rgb)
        index = self.count
        self.count += 1
        if self.detector is not None:
            from scenedetect import FrameTimecode

            if getattr(self, "_shape", None) not in (None, small.shape):
                self.detector = type(self.detector)(threshold=self.threshold, min_scene_len=1)
                self._shape = small.shape
                return index > 0
            self._shape = small.shape
            cuts = self.detector.process_frame(FrameTimecode(index, fps=25.0), small)
            return index > 0 and any(c.frame_num == index for c in cuts)
        import cv2

        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 16], [0, 180, 0, 256])
        cv2.normalize(hist, hist)
        previous, self.previous_hist = self.previous_hist, hist
        if previous is None:
            return False
        return cv2.compareHist(previous, hist, cv2.HISTCMP_CORREL) < 1.0 - self.threshold / 100.0


# -- output folder and manifest -----------------------------------------------------------------------------

def image_digest(image: np.ndarray) -> str:
    image = np.ascontiguousarray(image)
    return hashlib.sha256(str(image.shape).encode() + image.tobytes()).hexdigest()[:16]


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


class OutputFolder:
    """One PNG per frame (written atomically) plus ``nst_manifest.json``: the settings hash, the source,
    the style images' digests, and per frame its status, seconds, loss and evaluations. Re-running with the
    same settings resumes; other settings on a non-empty folder are refused unless ``overwrite``."""

    def __init__(self, path: str | os.PathLike, config, source: FrameSource, styles, overwrite: bool = False,
                 extra: dict | None = None):
        self.path = Path(path).expanduser().absolute()
        self.config = config
        self.header = {
            "format": "nst-video-manifest",
            "version": 1,
            "settings_hash": config.fingerprint(),
            "config": json.loads(json.dumps(config.to_dict(), default=str)),
            "styles": [image_digest(image) for image, _ in styles],
            "source": source.identity(),
            "step": source.step,
            "fps": source.fps,
            **(extra or {}),
        }
        self.frames: dict[int, dict] = {}
        self._prepare(overwrite)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def frame_path(self, index: int) -> Path:
        return self.path / FRAME_NAME.format(index)

    def _prepare(self, overwrite: bool) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise UserError(f"output folder {str(path)!r} is a file")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"output folder {str(path)!r} cannot be created: {exc.strerror or exc}") from None
        if not os.access(path, os.W_OK | os.X_OK) or not self._can_write():
            raise UserError(f"output folder {str(path)!r} is not writable")
        for stale in path.glob(".*.part"):  # left by a killed process: never a half-written PNG
            stale.unlink(missing_ok=True)
        old = None
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text())
            except (OSError, ValueError):
                old = None
        others = [p for p in path.iterdir() if p.name != MANIFEST]
        if old is None and others and not overwrite:
            raise UserError(f"output folder {str(path)!r} is not empty and holds no nst manifest: "
                            "choose an empty folder or add --overwrite")
        if old is not None and not overwrite:
            reasons = []
            if old.get("settings_hash") != self.header["settings_hash"]:
                reasons += _differences(old.get("config", {}), self.header["config"]) or ["settings"]
            if old.get("styles") != self.header["styles"]:
                reasons.append("style images")
            if old.get("source") != self.header["source"]:
                reasons.append(f"source {old.get('source', {}).get('path')!r} -> {self.header['source']['path']!r}")
            if old.get("step") != self.header["step"]:
                reasons.append(f"step {old.get('step')} -> {self.header['step']}")
            if reasons:
                shown = "; ".join(reasons[:4]) + ("; ..." if len(reasons) > 4 else "")
                raise UserError(f"output folder {str(path)!r} holds frames made with other settings ({shown}): "
                                "use another folder, or add --overwrite to replace them")
            for key, entry in (old.get("frames") or {}).items():
                if entry.get("status") == "done" and (path / entry.get("file", "")).is_file():
                    self.frames[int(key)] = entry
        if overwrite:
            for p in others:
                if FRAME_RE.match(p.name) and p.is_file():
                    p.unlink()
            self.manifest_path.unlink(missing_ok=True)
            self.frames = {}
        self._write_manifest()

    def _can_write(self) -> bool:
        try:
            probe = self.path / f".nst-write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            return True
        except OSError:
            return False

    def done(self) -> dict[int, Callable[[], np.ndarray]]:
        """Finished frames: index -> a loader of the stylized frame (for the engine's warm start)."""
        return {index: (lambda p=self.frame_path(index): load_image(p, "finished frame")) for index in self.frames}

    def done_objectives(self) -> dict[int, float]:
        return {index: e["objective"] for index, e in self.frames.items() if e.get("objective") is not None}

    def add(self, index: int, image: np.ndarray, stats: dict) -> Path:
        path = self.frame_path(index)
        save_image(path, image)
        self.frames[index] = {
            "file": path.name,
            "status": "done",
            "seconds": round(float(stats.get("seconds", 0.0)), 4),
            "loss": _finite(stats.get("loss")),
            "evaluations": stats.get("evaluations"),
            "objective": stats.get("objective"),
            "shot": stats.get("shot"),
            "warm": bool(stats.get("warm")),
            "result": stats.get("status", "ok"),
        }
        self._write_manifest()
        return path

    def mark(self, index: int, status: str, message: str) -> None:
        self.frames[index] = {"file": None, "status": status, "message": message}
        self._write_manifest()

    def _write_manifest(self) -> None:
        data = dict(self.header, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    frames={str(k): v for k, v in sorted(self.frames.items())})
        write_atomic(self.manifest_path, (json.dumps(data, indent=1) + "\n").encode())

    def finished_paths(self) -> list[tuple[int, Path]]:
        return [(i, self.path / e["file"]) for i, e in sorted(self.frames.items()) if e.get("status") == "done"]


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


# -- encoding -----------------------------------------------------------------------------------------------

def check_encode_path(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".avi"):
        raise UserError(f"--encode {str(path)!r} needs a video suffix (.mp4, .mov, .mkv, .avi)")
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not os.access(folder, os.W_OK):
        raise UserError(f"folder {str(folder)!r} of --encode is not writable")
    return path


def _even(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else image


def encode_video(frames: list[Path], output: str | os.PathLike, fps: float, audio_from: str | None = None,
                 audio_window: tuple[float, float] | None = None,
                 warn: Callable[[str], None] = lambda message: None) -> dict:
    """Encode PNG frames (in order) at ``fps``: H.264 in the container of the suffix, written to a temporary
    file and renamed. With ``audio_from``, the first audio track of that file (the part in ``audio_window``,
    seconds) is re-encoded as AAC and muxed in (PyAV). When PyAV fails, OpenCV's VideoWriter writes the
    video without audio, with a warning."""
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise NstError("no finished frames to encode")
    tmp = output.with_name(f".{output.stem}.part{output.suffix}")
    try:
        try:
            info = _encode_pyav(frames, tmp, fps, audio_from, audio_window, warn)
        except Exception as exc:  # noqa: BLE001 - any PyAV/FFmpeg failure falls back to OpenCV
            tmp.unlink(missing_ok=True)
            warn(f"PyAV could not encode {output.name} ({type(exc).__name__}: {exc}); "
                 "writing it with OpenCV instead, without audio")
            info = _encode_opencv(frames, tmp, fps)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)  # interrupted: never a half-written video under the final name
    info["path"] = str(output)
    return info


def _encode_pyav(frames, path: Path, fps: float, audio_from, audio_window, warn) -> dict:
    from fractions import Fraction

    import av

    rate = Fraction(fps).limit_denominator(1001)
    first = _even(load_image(frames[0], "frame"))
    container = av.open(str(path), mode="w")
    try:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = first.shape[1], first.shape[0]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "medium"}
        audio = _open_audio(audio_from, warn) if audio_from else None
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=audio[1].rate or 44100)
            audio_stream.layout = audio[1].layout.name if audio[1].layout else "stereo"
        for path_ in frames:
            image = _even(load_image(path_, "frame"))
            if image.shape != first.shape:
                from .images import resize

                image = resize(image, *first.shape[:2])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        audio_info = None
        if audio is not None:
            audio_info = _mux_audio(audio, audio_stream, container, audio_window)
    finally:
        container.close()
        if audio_from and audio is not None:
            audio[0].close()
    return {"encoder": f"pyav/{codec}", "frames": len(frames), "fps": float(fps), "audio": audio_info}


def _open_audio(source: str, warn):
    import av

    try:
        container = av.open(str(source))
    except Exception:  # noqa: BLE001 - an image sequence or a file FFmpeg cannot read has no audio
        return None
    if not container.streams.audio:
        container.close()
        return None
    return container, container.streams.audio[0]


def _mux_audio(audio, out_stream, container, window) -> dict:
    import av

    source, stream = audio
    start, end = window if window else (0.0, float("inf"))
    resampler = av.AudioResampler(format=out_stream.format.name if out_stream.format else "fltp",
                                  layout=out_stream.layout.name, rate=out_stream.rate)
    samples = 0
    for frame in source.decode(stream):
        if frame.time is not None and (frame.time + frame.samples / frame.sample_rate <= start or frame.time >= end):
            continue
        frame.pts = None
        for converted in resampler.resample(frame):
            samples += converted.samples
            for packet in out_stream.encode(converted):
                container.mux(packet)
    for converted in resampler.resample(None):
        for packet in out_stream.encode(converted):
            container.mux(packet)
    for packet in out_stream.encode(None):
        container.mux(packet)
    return {"codec": "aac", "seconds": samples / out_stream.rate}


def _encode_opencv(frames, path: Path, fps: float) -> dict:
    import cv2

    first = load_image(frames[0], "frame")
    height, width = first.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise NstError(f"cannot encode {path.name}: neither PyAV nor OpenCV could open a video writer")
    try:
        from .images import resize

        for p in frames:
            image = load_image(p, "frame")
            writer.write(np.ascontiguousarray(resize(image, height, width)[:, :, ::-1]))
    finally:
        writer.release()
    return {"encoder": "opencv/mp4v", "frames": len(frames), "fps": float(fps), "audio": None}


# -- the job ------------------------------------------------------------------------------------------------

@dataclass
class VideoJob:
    output: OutputFolder
    source: FrameSource
    written: list[int] = field(default_factory=list)
    encoded: dict | None = None
    sequence_stats: dict = field(default_factory=dict)


def stylize_video(source: FrameSource, styles, config, output: str | os.PathLike, *, overwrite: bool = False,
                  encode: str | os.PathLike | None = None, emit: Callable[[dict], None] = _ignore,
                  progress: Callable[[dict], None] | None = None) -> VideoJob:
    """Stylize ``source`` into the folder ``output`` through ``nst_stylize_sequence``, resuming after the
    frames a previous run with the same settings finished. ``emit`` receives the job's events (see
    docs/events.md); ``progress`` the engine's per-iteration events."""
    from .context import RunContext
    from .errors import PluginError
    from .plugins import get_plugin_manager, get_registry

    folder = OutputFolder(output, config, source, styles, overwrite=overwrite)
    job = VideoJob(folder, source)
    wanted = source.indices
    resumed = sorted(i for i in folder.frames if wanted is None or i in set(wanted))
    total = len(wanted) if wanted is not None else None
    emit({"event": "start", "schema": 1, "source": source.spec, "kind": source.kind, "output": str(folder.path),
          "manifest": str(folder.manifest_path), "fps": source.fps, "width": source.width, "height": source.height,
          "source_frames": source.count, "frames": wanted, "total": total, "resumed": len(resumed),
          "settings_hash": config.fingerprint(), "step": source.step})
    source.on_warning = emit
    started = time.perf_counter()
    done_count = [len(resumed)]

    def sink(index, result):
        path = folder.add(index, result.image, result.stats)
        job.written.append(index)
        done_count[0] += 1
        stats = result.stats
        emit({"event": "frame_done", "index": index, "path": str(path), "seconds": round(float(stats.get("seconds", 0)), 4),
              "loss": _finite(stats.get("loss")), "evaluations": stats.get("evaluations"),
              "warm": bool(stats.get("warm")), "shot": stats.get("shot"), "done": done_count[0], "total": total,
              "status": stats.get("status", "ok")})
        if stats.get("status") == "nan":
            emit({"event": "warning", "index": index, "message": f"frame {index}: the loss turned non-finite; kept the best image so far"})

    def engine_progress(event):
        if event.get("event") == "cut":
            emit({"event": "cut", "index": event["index"], "shot": event["shot"]})
        if progress is not None:
            progress(event)

    pm = get_plugin_manager()
    context = RunContext(registry=get_registry(), plugin_manager=pm, progress=engine_progress,
                         extras={"done": folder.done(), "done_objectives": folder.done_objectives()})
    try:
        from .plugins import call_work_hook
    except ImportError:  # pragma: no cover - older plugin module
        call_work_hook = None
    kwargs = dict(frames=iter(source), styles=styles, config=config, context=context, sink=sink)
    result = call_work_hook("nst_stylize_sequence", **kwargs) if call_work_hook else pm.hook.nst_stylize_sequence(**kwargs)
    if result is None:
        raise PluginError("no plugin returned a result from nst_stylize_sequence")
    job.sequence_stats = dict(result.stats)
    for index in source.unreadable:
        if index not in folder.frames:
            folder.mark(index, "unreadable", f"frame {index} could not be read")
    if encode is not None:
        paths = [p for i, p in folder.finished_paths() if wanted is None or i in set(wanted)]
        indices = [i for i, _ in folder.finished_paths() if wanted is None or i in set(wanted)]
        window = None
        if source.kind == "video" and indices:
            window = ((indices[0] - 1) / source.fps, (indices[-1] - 1 + source.step) / source.fps)
        job.encoded = encode_video(paths, encode, source.fps / source.step,
                                   audio_from=source.spec if source.kind == "video" else None, audio_window=window,
                                   warn=lambda message: emit({"event": "warning", "index": None, "message": message}))
    emit({"event": "done", "status": "ok" if not source.unreadable else "incomplete", "written": len(job.written),
          "resumed": len(resumed), "total": total, "unreadable": list(source.unreadable),
          "seconds": round(time.perf_counter() - started, 3), "output": str(folder.path),
          "encoded": job.encoded["path"] if job.encoded else None,
          "cuts": job.sequence_stats.get("cuts", [])})
    return job
