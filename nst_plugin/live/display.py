"""The picture on screen: a frame with its overlay (stage, fps, lag) drawn by :func:`draw`, shown by a
:class:`Window`, or by :class:`Offscreen` (the same drawing, no display: ``--no-window``, benchmarks, tests).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

WINDOW = "nst webcam (1-9: style, q or Esc: quit)"
QUIT = (27, ord("q"))


def draw(image: np.ndarray, text: str, scale: int = 1) -> np.ndarray:
    """``image`` (RGB) as the BGR uint8 picture a window shows: enlarged ``scale`` times (nearest), ``text``
    written at the top left, white on a black outline."""
    import cv2

    from ..images import to_uint8

    picture = np.ascontiguousarray(to_uint8(image)[:, :, ::-1])
    if scale > 1:
        picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    if text:
        cv2.putText(picture, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(picture, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return picture


class Window:
    """An OpenCV window. ``show(picture)`` returns the key pressed (-1: none); ``closed`` after the user
    closed the window. Without a display (Linux: neither DISPLAY nor WAYLAND_DISPLAY set) one ``error:``
    line, before any work: OpenCV's window toolkit would abort the process."""

    def __init__(self, title: str = WINDOW):
        import os
        import sys

        from ..errors import UserError

        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("no display to show the window on (DISPLAY is not set): use --no-window")
        self.title = title

    def show(self, picture: np.ndarray) -> int:
        import cv2

        cv2.imshow(self.title, picture)
        return cv2.waitKey(1) & 0xFF

    @property
    def closed(self) -> bool:
        import cv2

        return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()


class Offscreen:
    """No display: the pictures are drawn all the same. ``keys``: (after how many shown pictures, key) to
    press, in order (tests, benchmarks); ``keep``: keep the shown pictures in :attr:`shown`."""

    closed = False

    def __init__(self, keys: Iterable[tuple[int, int | str]] = (), keep: bool = False):
        self.keys = sorted((n, ord(k) if isinstance(k, str) else k) for n, k in keys)
        self.count, self.keep, self.shown = 0, keep, []

    def show(self, picture: np.ndarray) -> int:
        self.count += 1
        if self.keep:
            self.shown.append(picture)
        if self.keys and self.keys[0][0] <= self.count:
            return self.keys.pop(0)[1]
        return 0xFF

    def close(self) -> None:
        pass
