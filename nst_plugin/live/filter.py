"""A live temporal filter: each stylized frame blended with the previous output moved onto it by the optical
flow, where the flow passes the offline engine's trust checks (:func:`nst_plugin.flow.trust_mask`).

Only frames already seen are used (the offline filter, :mod:`..builtin.keyframes.smoothing`, also averages
frames that come later, which a camera has not delivered yet). The blend is recursive, so a stroke that
stays where the picture stays is kept, and one the network draws in a single frame fades; where the flow
cannot be trusted (what moved in front, what came into view) the frame is the network's own.
"""

from __future__ import annotations

import numpy as np

KEEP = 0.7  # the previous output's share where the flow is trusted (see docs/benchmarks-live.md)
PRESET = "fast"  # the DIS preset of the filter's flows


class LiveFilter:
    """``filter(source, stylized)`` frame after frame: ``source`` the camera frame (RGB, at the size of
    ``stylized``, float RGB 0..255); returns the filtered frame (float32). After a call, ``backward`` (the flow
    from this frame to the previous one) and ``trusted`` (its trust mask) are the step's, None at the first
    frame. ``reset()`` forgets the past (a new style)."""

    def __init__(self, keep: float = KEEP, preset: str = PRESET):
        self.keep, self.preset = float(keep), preset
        self.reset()

    def reset(self) -> None:
        self.previous_source = None  # grey uint8
        self.previous_output = None  # float32 RGB
        self.backward = self.trusted = None

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        from ..flow import flow, gray, trust_mask, warp

        output = np.asarray(stylized, np.float32)
        grey = gray(source)
        self.backward = self.trusted = None
        if self.previous_output is not None and self.previous_output.shape == output.shape:
            self.backward = flow(grey, self.previous_source, self.preset)  # this frame -> the previous one
            forward = flow(self.previous_source, grey, self.preset)
            self.trusted = trust_mask(grey, self.previous_source, self.backward, forward)
            if self.keep > 0:
                weight = self.trusted[..., None] * np.float32(self.keep)
                output = output + weight * (warp(self.previous_output, self.backward) - output)
        self.previous_source, self.previous_output = grey, output
        return output
