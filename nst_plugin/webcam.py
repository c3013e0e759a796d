"""``nst webcam``: a live preview of a camera (or any ``cv2.VideoCapture``-like source), stylized frame by
frame through ``nst_stylize_sequence``: with the ``lbfgs`` engine every frame after the first is
warm-started from the previous one; with ``keyframes`` the first frame is learnt, then every frame goes
through the network. The fps shown is honest: frames finished per second of wall time, stylization included.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np

from .errors import UserError

WINDOW = "nst webcam (q or Esc to quit)"


def open_capture(camera: str):
    """A camera index ("0") or a video file path standing in for a camera."""
    import cv2

    from .video.sources import quiet_capture

    target = int(camera) if str(camera).isdigit() else str(camera)
    capture = quiet_capture(target)
    if not capture.isOpened():
        what = f"camera {camera}" if isinstance(target, int) else f"video {camera!r}"
        raise UserError(f"{what} cannot be opened (no such camera, it is in use, or the file is not a video)")
    try:
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # always stylize a recent picture, not a queued one
    except Exception:  # noqa: BLE001 - not every backend has a buffer setting
        pass
    return capture


class FpsMeter:
    """Frames per second over the last ``window`` finished frames, measured on the wall clock."""

    def __init__(self, window: int = 10, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.times: deque[float] = deque(maxlen=window + 1)
        self.times.append(clock())

    def tick(self) -> float:
        self.times.append(self.clock())
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


def run_webcam(capture, styles, config, *, show: bool = True, max_frames: int | None = None,
               report: Callable[[dict], None] = lambda event: None, scale: int = 2,
               on_event: Callable[[object], None] | None = None) -> dict:
    """Stylize frames from ``capture`` until q/Esc, the window is closed, the source ends or ``max_frames``.
    ``report`` receives ``{"event": "frame", "index", "seconds", "fps", "warm"}`` per finished frame;
    ``on_event`` the engine's events (the keyframe engine's keyframe and training progress)."""
    import cv2

    from .plugins import get_host

    state = {"stop": False, "frames": 0, "fps": 0.0}
    meter = FpsMeter()

    def frames():
        index = 0
        while not state["stop"] and (max_frames is None or index < max_frames):
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            index += 1
            yield index, np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def sink(index, result):
        fps = meter.tick()
        state.update(frames=index, fps=fps)
        seconds = float(result.stats.get("seconds", 0.0))
        report({"event": "frame", "index": index, "seconds": seconds, "fps": fps, "warm": bool(result.stats.get("warm"))})
        if show:
            image = np.ascontiguousarray(result.image[:, :, ::-1])
            if scale > 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            text = f"{fps:.2f} fps  ({seconds:.2f} s/frame)"
            cv2.putText(image, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(image, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.imshow(WINDOW, image)
            key = cv2.waitKey(1) & 0xFF
            if key in (27, ord("q")):
                state["stop"] = True
            elif cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                state["stop"] = True

    host = get_host()
    started = time.perf_counter()
    try:
        host.stylize_sequence(frames(), styles, config, host.run_context(on_event), sink)
    finally:
        capture.release()
        if show:
            cv2.destroyAllWindows()
    elapsed = time.perf_counter() - started
    return {"frames": state["frames"], "seconds": elapsed,
            "fps": state["frames"] / elapsed if elapsed > 0 else 0.0, "last_fps": state["fps"]}
