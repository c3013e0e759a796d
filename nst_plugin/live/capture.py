"""The camera, read on its own thread: the newest frame wins.

A stylizer slower than the camera must show the newest picture, not a queue of old ones: the reading thread
keeps only the latest frame, and :meth:`LatestFrame.newest` hands out a frame newer than the one the caller
has. A video file standing in for a camera is released at its own frame rate, as a camera would deliver it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from ..errors import UserError


class Capture(Protocol):
    """What is read: ``cv2.VideoCapture`` or a stand-in (BGR frames)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class Frame:
    """A captured frame: its number (1, 2, ... in the camera's order, dropped ones counted), RGB uint8, and when
    it was captured (``time.perf_counter``)."""

    number: int
    image: np.ndarray
    captured: float


def open_camera(camera: str) -> tuple[Capture, float | None]:
    """A camera index ("0") or a video file standing in for a camera, opened; and the rate to pace it at (a
    file's own fps; None for a camera, whose reads wait for the next picture). One ``error:`` line when it
    cannot be opened."""
    import cv2

    from ..video.sources import quiet_capture

    target = int(camera) if str(camera).isdigit() else str(camera)
    capture = quiet_capture(target)
    if not capture.isOpened():
        what = f"camera {camera}" if isinstance(target, int) else f"video {camera!r}"
        raise UserError(f"{what} cannot be opened (no such camera, it is in use, or the file is not a video)")
    if isinstance(target, int):
        try:
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's own queue as short as it allows
        except Exception:  # noqa: BLE001 - not every backend has a buffer setting
            pass
        return capture, None
    fps = capture.get(cv2.CAP_PROP_FPS)
    return capture, (float(fps) if fps and fps > 0 else 25.0)


class LatestFrame:
    """Reads ``capture`` on a thread and keeps the newest frame only. ``fps``: release frames at this rate
    (a video file as a camera); None: as fast as ``capture.read()`` returns (a camera paces itself)."""

    def __init__(self, capture: Capture, fps: float | None = None, clock: Callable[[], float] = time.perf_counter):
        self.capture, self.fps, self.clock = capture, fps, clock
        self.produced = 0  # frames read so far (the newest one's number)
        self.ended = False
        self._latest: Frame | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nst-live-capture", daemon=True)

    def start(self) -> "LatestFrame":
        self._thread.start()
        return self

    def _run(self) -> None:
        import cv2

        started = self.clock()
        try:
            while not self._stop.is_set():
                ok, bgr = self.capture.read()
                if not ok or bgr is None:
                    break
                if self.fps:  # a file: wait until a camera would have delivered this frame
                    delay = started + self.produced / self.fps - self.clock()
                    if delay > 0 and self._stop.wait(delay):
                        break
                frame = Frame(self.produced + 1, np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), self.clock())
                with self._changed:
                    self._latest, self.produced = frame, frame.number
                    self._changed.notify_all()
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def newest(self, after: int = 0, timeout: float | None = None) -> Frame | None:
        """The newest frame, once there is one numbered above ``after``; None when the source has ended (or
        ``timeout`` seconds passed) without one."""
        with self._changed:
            self._changed.wait_for(lambda: self.ended or (self._latest is not None and self._latest.number > after),
                                   timeout)
            latest = self._latest
            return latest if latest is not None and latest.number > after else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)  # a camera's read returns within a frame's time
        self.capture.release()
