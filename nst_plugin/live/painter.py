"""What a camera frame becomes on screen for the shown style at its stage: its palette (while it has no
network yet), or the network's picture filtered along the optical flow (:mod:`.filter`) with the keyframe's
strokes carried on it (:mod:`.strokes`), enlarged to the shown size with the camera's own fine detail."""

from __future__ import annotations

import numpy as np

from ..images import resize
from .stages import PALETTE, LiveSettings, StyleState, palette


class Painter:
    """``painter(state, frame)`` -> (the shown picture, RGB uint8 at ``settings.out_shape``; its stage) for a
    camera frame (RGB, any size). ``reset()`` when another style is shown: the filter and the strokes start
    again from that style's own past."""

    def __init__(self, settings: LiveSettings, keep: float | None = None):
        from ..builtin.keyframes.network import NetworkShape
        from .filter import KEEP, LiveFilter

        self.settings, self.shape = settings, NetworkShape()
        self.filter = LiveFilter(KEEP if keep is None else keep)
        self.tracks: dict = {}  # {style number: its StrokeTrack}

    def reset(self) -> None:
        self.filter.reset()
        self.tracks.clear()

    def __call__(self, state: StyleState, frame: np.ndarray) -> tuple[np.ndarray, str]:
        from ..builtin.keyframes.engine import enlarge

        view = resize(frame, *self.settings.out_shape)
        if not state.network_ready():
            self.reset()
            return palette(view, state.colours), PALETTE
        stage = state.stage
        small = resize(frame, *self.settings.net_shape)
        image = self.filter(small, state.stylize(small, self.shape))
        track = self._strokes(state, small)
        image = enlarge(track.apply(image, small) if track is not None else image, view)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8), stage

    def _strokes(self, state: StyleState, small: np.ndarray):
        """The style's stroke track: started from its keyframe, then one frame on along the filter's flow."""
        from .strokes import StrokeTrack

        track = self.tracks.get(state.number)
        if track is None and state.keyframe is not None and self.settings.strokes > 0:
            track = self.tracks[state.number] = StrokeTrack(*state.keyframe, self.settings.strokes)
            track.start(small)
        elif track is not None and self.filter.backward is not None:
            track.step(self.filter.backward, self.filter.trusted)
        return track
