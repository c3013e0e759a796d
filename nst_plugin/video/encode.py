"""Encoding finished frames into a video with the source's audio (PyAV; OpenCV without audio as the
fallback). Imported libraries load inside the functions."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import NstError, UserError, storage_error
from ..images import load_image


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
    given = Path(output)
    output = given.expanduser()
    if not frames:
        raise NstError("no finished frames to encode")
    try:  # the temporary file: in the same folder, a fresh name that can never be a file of the user's
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=f".part{output.suffix}", dir=output.parent)
        os.close(fd)
    except OSError as exc:
        raise UserError(f"--encode {str(given)!r} cannot be written: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        try:
            info = _encode_pyav(frames, tmp, fps, audio_from, audio_window, warn)
        except Exception as exc:  # noqa: BLE001 - any PyAV/FFmpeg failure falls back to OpenCV
            tmp.unlink(missing_ok=True)
            storage = storage_error(exc, given, action="write")
            if storage is not None and storage.errno != errno.EIO:  # a full disk, a read-only folder: OpenCV
                raise storage from exc  # would meet it too (EIO: FFmpeg's catch-all, the fallback may do)
            warn(f"PyAV could not encode {output.name} ({type(exc).__name__}: {exc}); "
                 "writing it with OpenCV instead, without audio")
            try:
                info = _encode_opencv(frames, tmp, fps)
            except NstError:
                if not os.access(output.parent, os.W_OK | os.X_OK):
                    raise UserError(f"--encode {str(given)!r} cannot be written: its folder is not writable") from None
                raise NstError(f"cannot encode {str(given)!r}: neither PyAV nor OpenCV could write it "
                               f"(PyAV: {type(exc).__name__}: {exc})") from None
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private: the usual permissions, as the frames have
            os.replace(tmp, output)
        except OSError as exc:
            raise UserError(f"--encode {str(given)!r} cannot be written: {exc.strerror or exc}") from None
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
                from ..images import resize

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
        from ..images import resize

        for p in frames:
            image = load_image(p, "frame")
            writer.write(np.ascontiguousarray(resize(image, height, width)[:, :, ::-1]))
    finally:
        writer.release()
    return {"encoder": "opencv/mp4v", "frames": len(frames), "fps": float(fps), "audio": None}
