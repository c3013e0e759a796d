"""``nst webcam --engine lbfgs`` (or a plugin's engine): the camera's newest frames through
``nst_stylize_sequence`` one after another (with ``lbfgs`` each frame warm-started from the one before), the
fps shown honest: frames finished per second of wall time, stylization included."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .display import QUIT, Window, draw
from .session import FpsMeter


def run_webcam(capture, styles, config, *, show: bool = True, max_frames: int | None = None,
               report: Callable[[dict], None] = lambda event: None, scale: int = 2,
               on_event: Callable[[object], None] | None = None, fps: float | None = None) -> dict:
    """Stylize the newest frames of ``capture`` (``cv2.VideoCapture``-like; ``fps``: pace a video file at
    its rate) until q/Esc, the window is closed, the source ends or ``max_frames``. ``report`` receives
    ``{"event": "frame", "index", "seconds", "fps", "warm"}`` per finished frame; ``on_event`` the engine's
    events."""
    from ..plugins import get_host
    from .capture import LatestFrame

    window = Window() if show else None
    camera = LatestFrame(capture, fps).start()
    state = {"stop": False, "frames": 0, "fps": 0.0}
    meter = FpsMeter()

    def frames():
        number = 0
        while not state["stop"] and (max_frames is None or state["frames"] < max_frames):
            frame = camera.newest(number)
            if frame is None:
                break
            number = frame.number
            yield number, frame.image

    def sink(index, result):
        fps_now = meter.tick()
        state["frames"] += 1
        state["fps"] = fps_now
        seconds = float(result.stats.get("seconds", 0.0))
        report({"event": "frame", "index": state["frames"], "number": index, "seconds": seconds, "fps": fps_now,
                "warm": bool(result.stats.get("warm"))})
        if window is not None:
            key = window.show(draw(np.asarray(result.image), f"{fps_now:.2f} fps  ({seconds:.2f} s/frame)", scale))
            state["stop"] = key in QUIT or window.closed

    host = get_host()
    started = time.perf_counter()
    try:
        host.stylize_sequence(frames(), styles, config, host.run_context(on_event), sink)
    finally:
        camera.stop()
        if window is not None:
            window.close()
    elapsed = time.perf_counter() - started
    return {"frames": state["frames"], "seconds": elapsed,
            "fps": state["frames"] / elapsed if elapsed > 0 else 0.0, "last_fps": state["fps"]}
