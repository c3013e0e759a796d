"""Which frames become keyframes: the plan of a keyframe run (shots, their frames and their keyframes).

Plain NumPy (OpenCV for thumbnails): a pass over the frames records, per frame, its shot (the same cut
detector as the L-BFGS engine) and a small grey thumbnail; keyframes are then chosen per shot.

With a ``follow`` factory and a ``coverage`` threshold (the engine's default), the same pass also follows
the latest keyframe along the shot (:class:`~.transport.Coverage`: how much of each frame its strokes can
still be carried to) and makes a frame a keyframe where that share falls under the threshold: where the
picture moved, turned or entered the frame so much that the last keyframe no longer says how to paint it.

Design, measurements and history: docs/design/keyframes.md#plan-shots-and-keyframes
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ...errors import UserError

THUMB = 64  # longer side of the thumbnails that measure how much the picture changed
# frames, at least, between a keyframe and the next one chosen by coverage, and after a keyframe before the
# shot ends: each keyframe costs a frame of the frame engine
MIN_GAP = 12


@dataclass
class Shot:
    number: int  # 0-based
    frames: list[int] = field(default_factory=list)
    keyframes: list[int] = field(default_factory=list)


@dataclass
class Plan:
    shots: list[Shot]
    shape: tuple[int, int]  # (height, width) of the source frames
    # with coverage: {frame: the share of it the latest keyframe before it reaches} (not the shots' first frames)
    reach: dict[int, float] = field(default_factory=dict)
    # with coverage: {keyframe: (the shot's keyframe before it, how that one reaches it)} for every keyframe but
    # the shots' first: its stylization starts from the one before, carried to it (a warm start)
    starts: dict[int, tuple[int, object]] = field(default_factory=dict)

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


class Follower(Protocol):
    """What ``make_plan`` follows a keyframe with (:class:`~.transport.Coverage`)."""

    def keyframe(self, frame: np.ndarray) -> None: ...  # a keyframe at this frame

    def next(self, frame: np.ndarray) -> float: ...  # the share of this frame the keyframe still reaches, 0..1

    def reached(self) -> object: ...  # how it reaches the last frame (a keyframe's warm start)


def _trimmed(shot: Shot, gap: int) -> list[int]:
    """A shot's keyframes without those (but the first) that fewer than ``gap`` frames of the shot follow."""
    position = {index: p for p, index in enumerate(shot.frames)}
    last = len(shot.frames) - 1
    return [k for n, k in enumerate(shot.keyframes) if n == 0 or last - position[k] >= gap]


def make_plan(frames, cut_threshold: float, interval: int, requested: tuple[int, ...] | None = None,
              follow: Callable[[tuple[int, int]], Follower] | None = None, coverage: float = 0.0) -> Plan:
    """One pass over ``frames`` ((index, RGB) pairs): shots by the cut detector, keyframes per shot.

    ``requested``: the user's keyframes (frame numbers); each must be a frame of this run (else a one-line
    :class:`UserError`). A shot the user gave no keyframe gets its first frame as one: every shot needs one.

    Otherwise, with ``follow`` (a factory of a :class:`Follower` for the frames' (height, width)) and
    ``coverage`` > 0: each shot's first frame, then the first frame at least ``MIN_GAP`` frames after the
    latest keyframe to which that one reaches less than ``coverage`` of the picture, or the frame ``interval``
    frames after it, whichever comes first; none that fewer than ``MIN_GAP`` (or ``interval``) frames of the
    shot follow. Without them: each shot's first frame and the most changed frame of each following window
    of ``interval`` frames (:func:`choose_keyframes`).
    """
    from ...shots import ShotDetector

    detector = ShotDetector(cut_threshold)
    shots: list[Shot] = []
    thumbs: dict[int, np.ndarray] = {}
    shape = None
    follower, latest = None, 0
    reach: dict[int, float] = {}
    starts: dict[int, tuple[int, object]] = {}
    for index, frame in frames:
        shape = shape or frame.shape[:2]
        if detector.is_cut(frame) or not shots:
            shots.append(Shot(len(shots)))
        shot = shots[-1]
        shot.frames.append(index)
        thumbs[index] = thumbnail(frame)
        if requested or follow is None or not coverage > 0:
            continue
        follower = follower or follow(tuple(shape))
        if shot.keyframes:  # frames since the shot's latest keyframe
            since = len(shot.frames) - 1 - latest
            reach[index] = follower.next(frame)
            if since < interval and (since < MIN_GAP or reach[index] >= coverage):
                continue
            starts[index] = (shot.keyframes[-1], follower.reached())
        shot.keyframes.append(index)
        latest = len(shot.frames) - 1
        follower.keyframe(frame)
    if not shots:
        raise UserError("the source gave no frames to stylize")
    if requested:
        _requested_keyframes(shots, requested, set(thumbs))
    elif follower is not None:
        for shot in shots:
            shot.keyframes = _trimmed(shot, min(MIN_GAP, max(1, interval)))
        kept = set(k for shot in shots for k in shot.keyframes)
        starts = {k: v for k, v in starts.items() if k in kept}
    else:
        for shot in shots:
            shot.keyframes = choose_keyframes(shot.frames, thumbs, max(1, interval))
    return Plan(shots, tuple(shape), reach, starts)


def _requested_keyframes(shots: list[Shot], requested: tuple[int, ...], known: set[int]) -> None:
    """The user's keyframes (``--keyframes``) into ``shots``; one that is not a frame of the run (``known``) is
    a one-line :class:`UserError`; a shot given none gets its first frame."""
    missing = [k for k in requested if k not in known]
    if missing:
        every = sorted(known)
        step = every[1] - every[0] if len(every) > 1 else 1
        raise UserError(f"--keyframes {','.join(map(str, missing))}: not among the frames of this run "
                        f"({every[0]}-{every[-1]}{', every ' + str(step) if step > 1 else ''})")
    for shot in shots:
        shot.keyframes = sorted(k for k in set(requested) if k in shot.frames) or [shot.frames[0]]
