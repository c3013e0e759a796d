"""Which frames become keyframes: the plan of a keyframe run (shots, their frames and their keyframes).

Plain NumPy (OpenCV for thumbnails): a pass over the frames records, per frame, its shot (the same cut
detector as the L-BFGS engine) and a small grey thumbnail; keyframes are then chosen per shot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import UserError

THUMB = 64  # longer side of the thumbnails that measure how much the picture changed


@dataclass
class Shot:
    number: int  # 0-based
    frames: list[int] = field(default_factory=list)
    keyframes: list[int] = field(default_factory=list)


@dataclass
class Plan:
    shots: list[Shot]
    shape: tuple[int, int]  # (height, width) of the source frames

    @property
    def keyframes(self) -> list[int]:
        return [k for shot in self.shots for k in shot.keyframes]


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = THUMB / max(h, w)
    small = cv2.resize(np.ascontiguousarray(rgb), (max(4, round(w * scale)), max(4, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


def change(a: np.ndarray, b: np.ndarray) -> float:
    """How different two thumbnails are: mean absolute difference of their grey levels (0..255)."""
    return float(np.abs(a - b).mean())


def choose_keyframes(frames: list[int], thumbs: dict[int, np.ndarray], interval: int) -> list[int]:
    """Keyframes of one shot: its first frame, then, in each following window of ``interval`` frames, the
    frame whose picture differs most from the previous keyframe's (where a keyframe teaches most)."""
    keys = [frames[0]]
    for start in range(interval, len(frames), interval):
        window = frames[start:start + interval]
        last = thumbs[keys[-1]]
        keys.append(max(window, key=lambda i: change(thumbs[i], last)))
    return keys


def make_plan(frames, cut_threshold: float, interval: int, requested: tuple[int, ...] | None = None) -> Plan:
    """One pass over ``frames`` ((index, RGB) pairs): shots by the cut detector, keyframes per shot.

    ``requested``: the user's keyframes (frame numbers); each must be a frame of this run (else a one-line
    :class:`UserError`). A shot the user gave no keyframe gets its first frame as one: every shot needs one.
    """
    from ...shots import ShotDetector

    detector = ShotDetector(cut_threshold)
    shots: list[Shot] = []
    thumbs: dict[int, np.ndarray] = {}
    shape = None
    for index, frame in frames:
        shape = shape or frame.shape[:2]
        if detector.is_cut(frame) or not shots:
            shots.append(Shot(len(shots)))
        shots[-1].frames.append(index)
        thumbs[index] = thumbnail(frame)
    if not shots:
        raise UserError("the source gave no frames to stylize")
    if requested:
        known = set(thumbs)
        missing = [k for k in requested if k not in known]
        if missing:
            every = sorted(known)
            raise UserError(f"--keyframes {','.join(map(str, missing))}: not among the frames of this run "
                            f"({every[0]}-{every[-1]}{', every ' + str(every[1] - every[0]) if len(every) > 1 and every[1] - every[0] > 1 else ''})")
        for shot in shots:
            shot.keyframes = sorted(k for k in set(requested) if k in shot.frames) or [shot.frames[0]]
    else:
        for shot in shots:
            shot.keyframes = choose_keyframes(shot.frames, thumbs, max(1, interval))
    return Plan(shots, tuple(shape))
