"""One frame of a video file or an image sequence by its index, in any order (a preview scrubbing the
playhead), with the indices of :mod:`.sources` (a video's frames count from 1; a ``####`` pattern keeps its
file numbers).

A video stays open between reads: a frame a little after the last one read is reached by decoding forward,
any other by the decoder's seek (``CAP_PROP_POS_FRAMES``), which is exact for intra-only files (MJPEG, image
codecs) and for FFmpeg's seekable inter-frame files with regular time stamps. OpenCV is imported inside.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..images import load_image
from .sources import FrameSource, ranges_text

FORWARD = 24  # frames a read decodes forward rather than seek (a seek decodes from the keyframe before)


class FrameSeeker:
    """``seeker.read(index)`` -> the RGB uint8 frame of ``source`` (a video file or an image sequence, not a
    camera) at ``index``; :class:`~..errors.UserError` for an index the source does not have or a frame that
    cannot be decoded. ``close()`` releases the video."""

    def __init__(self, source: FrameSource):
        if source.kind == "camera":
            raise UserError("a camera has no frames to seek: give a video file or an image sequence")
        self.source = source
        self.files = dict(source.files)
        self.capture = None
        self.position = 0  # the video frame last decoded (0: none)

    @property
    def indices(self) -> list[int]:
        return sorted(self.files) if self.source.kind == "images" else list(range(1, (self.source.count or 0) + 1))

    def read(self, index: int) -> np.ndarray:
        if isinstance(index, bool) or not isinstance(index, int):
            raise UserError(f"a frame index is a whole number, got {index!r}")
        if self.source.kind == "images":
            if index not in self.files:
                raise UserError(f"frame {index} is not in {self.source.spec!r} (frames {ranges_text(self.files)})")
            return load_image(self.files[index], "frame")
        if not 1 <= index <= (self.source.count or 0):
            raise UserError(f"frame {index} is not in {self.source.spec!r} (frames 1-{self.source.count})")
        return self._decode(index)

    def _decode(self, index: int) -> np.ndarray:
        import cv2

        if self.capture is None:
            self.capture, self.position = self.source.capture_factory(), 0
        if not self.position < index <= self.position + FORWARD:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, index - 1)
            self.position = index - 1
        ok = True
        while ok and self.position < index - 1:
            ok, self.position = self.capture.grab(), self.position + 1
        ok, bgr = self.capture.read() if ok else (False, None)
        if not (ok and bgr is not None and bgr.size > 0):
            self.close()  # the next read starts from a fresh decoder
            raise UserError(f"frame {index} of {self.source.spec!r} cannot be decoded")
        self.position = index
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
        self.capture, self.position = None, 0
