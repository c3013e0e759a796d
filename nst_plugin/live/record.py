"""``--record out.mp4``: the frames shown, each at the time it was shown (a variable frame rate: a frame
lasts on the recording as long as it lasted on screen), written with PyAV to a temporary file beside the
final one and renamed when the run ends. The overlay is not recorded: the clip is the styled picture.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError

TIME_BASE = Fraction(1, 1000)  # frame times in milliseconds


def check_record_path(path: Path) -> Path:
    """The path, checked before any long work: a video suffix and a folder that can be written."""
    from ..video.encode import check_encode_path

    try:
        return check_encode_path(path)
    except UserError as exc:
        raise UserError(str(exc).replace("--encode", "--record")) from None


class Recorder:
    """``write(rgb, seconds)`` per shown frame (``seconds``: when it was shown, from any origin); ``close()``
    finishes the file and returns {"path", "frames", "seconds", "fps"}."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.frames, self.first, self.last_ms = 0, None, -1
        self.container = self.stream = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".part{self.path.suffix}", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(name)

    def _open(self, height: int, width: int) -> None:
        import av

        self.container = av.open(str(self.tmp), mode="w", format=self.path.suffix.lstrip(".").replace("mkv", "matroska"))
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=30)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = TIME_BASE
        self.stream.codec_context.time_base = TIME_BASE
        if codec == "libx264":
            self.stream.options = {"crf": "18", "preset": "veryfast"}

    def write(self, rgb: np.ndarray, seconds: float) -> None:
        import av

        image = np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2], np.uint8)
        if self.container is None:
            self._open(*image.shape[:2])
            self.first = seconds
        ms = max(self.last_ms + 1, int(round((seconds - self.first) * 1000)))  # strictly increasing times
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = ms, TIME_BASE
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames, self.last_ms = self.frames + 1, ms

    def close(self) -> dict:
        """Finish the file under its final name (nothing is written when no frame was shown)."""
        try:
            if self.container is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
                self.container.close()
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)
        seconds = self.last_ms / 1000 if self.frames > 1 else 0.0
        return {"path": str(self.path), "frames": self.frames, "seconds": seconds,
                "fps": (self.frames - 1) / seconds if seconds > 0 else 0.0}
